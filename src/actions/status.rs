//! The shared part of suspending and reactivating users, for one user (`POST
//! /users/{u}/deactivate`) or thousands (`POST /users/deactivate`): the new status made durable
//! first (in a few large store transactions), then every binding of the suspended users'
//! extensions removed (in bulk, with each device's last contact recorded so it can still be
//! notified), and the devices to notify gathered in one pass. What follows — notifying the phones,
//! the events, the audit, the answer — is the caller's, as the one-user and batch answers differ.

use std::collections::{HashMap, HashSet};

use super::{ActionError, Actions};
use crate::directory::bulk::StatusChanges;
use crate::directory::store::StoreOp;
use crate::directory::{Device, LastContact, Mac, User, UserStatus};
use crate::registrar::{AddressOfRecord, Binding, RemovalCause};

/// What suspending (or reactivating) users did before the phones are told.
pub(super) struct StatusOutcome {
    pub status: StatusChanges,
    /// Bindings removed (suspension only), each with its address of record.
    pub removed: Vec<(AddressOfRecord, Binding)>,
    /// Devices of the users whose status changed, as they are now.
    pub devices: Vec<Device>,
    /// Bindings removed from each suspended user's extensions.
    pub removed_per_user: HashMap<String, usize>,
}

impl StatusOutcome {
    /// For the one-user actions: whether the user's status changed, or why it could not.
    pub fn single(&self, username: &str) -> Result<bool, ActionError> {
        if let Some((_, e)) = self.status.failed.first() {
            return Err(ActionError::Internal(e.to_string()));
        }
        if !self.status.unknown.is_empty() {
            return Err(ActionError::NotFound(format!("user {username}")));
        }
        Ok(!self.status.changed.is_empty())
    }

    pub fn removed_bindings(&self) -> Vec<Binding> {
        self.removed.iter().map(|(_, b)| b.clone()).collect()
    }
}

impl Actions {
    /// Suspends the users named: durable first, then every binding of their extensions removed.
    /// `extra` adds store writes per suspended user to its status change's transaction.
    pub(super) async fn suspend_users(
        &self,
        usernames: &[String],
        extra: impl Fn(&User) -> Vec<StoreOp>,
    ) -> StatusOutcome {
        let started = std::time::Instant::now();
        let status = self.directory.set_status_many(usernames, UserStatus::Suspended, extra).await;
        let stored = started.elapsed();
        let owners: HashMap<AddressOfRecord, &str> = status
            .changed
            .iter()
            .flat_map(|u| u.extensions.iter().map(|e| (self.registrar.aor(e), u.username.as_str())))
            .collect();
        let aors: Vec<AddressOfRecord> =
            status.changed.iter().flat_map(|u| u.extensions.iter()).map(|e| self.registrar.aor(e)).collect();
        // A removal the store refused is only logged: the suspension is stored, and start-up drops
        // the bindings of suspended users, so none of them can come back.
        let removed = match self.registrar.location().remove_all_of(&aors, RemovalCause::Deactivated).await {
            Ok(removed) => removed,
            Err(not_stored) => not_stored.removed,
        };
        let mut removed_per_user: HashMap<String, usize> = HashMap::new();
        for (aor, _) in &removed {
            if let Some(user) = owners.get(aor) {
                *removed_per_user.entry((*user).to_owned()).or_default() += 1;
            }
        }
        let unbound = started.elapsed();
        self.remember_last_contacts(&removed).await;
        let devices = self.devices_of(&status.changed).await;
        tracing::debug!(
            users = status.changed.len(),
            bindings = removed.len(),
            stored_ms = stored.as_millis() as u64,
            unbound_ms = unbound.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "users suspended"
        );
        StatusOutcome { status, removed, devices, removed_per_user }
    }

    /// Lifts the suspension of the users named (durable); their devices are to be told.
    pub(super) async fn reactivate_users(
        &self,
        usernames: &[String],
        extra: impl Fn(&User) -> Vec<StoreOp>,
    ) -> StatusOutcome {
        let status = self.directory.set_status_many(usernames, UserStatus::Active, extra).await;
        let devices = self.devices_of(&status.changed).await;
        StatusOutcome { status, removed: Vec::new(), devices, removed_per_user: HashMap::new() }
    }

    /// Every device of these users, in one pass over the directory.
    async fn devices_of(&self, users: &[User]) -> Vec<Device> {
        let names: HashSet<&str> = users.iter().map(|u| u.username.as_str()).collect();
        let mut by_user = self.directory.devices_of_users(&names).await;
        users.iter().flat_map(|u| by_user.remove(&u.username).unwrap_or_default()).collect()
    }

    /// Records where each device of the removed bindings was, so it can be notified (and retried)
    /// once its bindings are gone.
    pub(super) async fn remember_last_contacts(&self, removed: &[(AddressOfRecord, Binding)]) {
        let contacts: Vec<(Mac, LastContact)> = removed
            .iter()
            .filter_map(|(aor, b)| {
                let mac = b.device.as_deref()?.parse::<Mac>().ok()?;
                Some((mac, LastContact { contact: b.contact.clone(), aor: aor.0.to_string(), flow: b.flow }))
            })
            .collect();
        if let Err(e) = self.directory.set_last_contacts(contacts).await {
            tracing::warn!(error = %e, "last contacts not recorded");
        }
    }
}
