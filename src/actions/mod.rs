//! The operations that touch several parts at once: the directory (durable state), the location
//! table (bindings) and the phones (check-sync NOTIFY). Each follows the order of
//! `spec/lifecycle.md`: first the new state is made durable, then bindings are removed, then the
//! phones are notified. Each is idempotent and leaves an audit record.

mod batch;
mod notify_batch;
mod notify_devices;
mod status;

pub use batch::{BatchAction, BatchItemError, BatchReport, MAX_BATCH_USERS};
pub use notify_batch::{NotifyCounts, NOTIFY_CONCURRENCY, NOTIFY_RATE};
use notify_devices::HeldSecrets;

use std::sync::Arc;

use serde::Serialize;

use crate::directory::store::StoreOp;
use crate::directory::{Device, Directory, DirectoryError, Mac, UserStatus};
use crate::events::{Event, EventBus};
use crate::metrics::Metrics;
use crate::registrar::location::{RemovalNotStored, REMOVAL_ATTEMPTS};
use crate::registrar::{AddressOfRecord, Binding, Registrar, RemovalCause};
use crate::sip::notify::Notifier;

/// An audit log record of an action (`detail` holds no secret).
fn audit_op(actor: &str, action: &str, target: &str, detail: &serde_json::Value) -> StoreOp {
    StoreOp::Audit {
        at: crate::events::now_rfc3339(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_string(),
    }
}

/// Default overlap of old and new credentials after a rotation: 24 hours.
pub const ROTATION_GRACE_SECS: u64 = 24 * 3600;

/// What an action did, as the API answers it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActionReport {
    pub bindings_removed: usize,
    pub devices_notified: Vec<String>,
    pub devices_unreachable: Vec<String>,
    /// False when the action found nothing to change (e.g. deactivating a suspended user).
    pub changed: bool,
    /// What was done but not stored (e.g. bindings removed whose removal the store refused).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DirectoryError> for ActionError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound(what) => ActionError::NotFound(what),
            DirectoryError::Conflict(m) => ActionError::Conflict(m),
            DirectoryError::Invalid(m) => ActionError::Invalid(m),
            other => ActionError::Internal(other.to_string()),
        }
    }
}

pub struct Actions {
    directory: Arc<Directory>,
    registrar: Arc<Registrar>,
    notifier: Arc<Notifier>,
    events: EventBus,
    metrics: Arc<Metrics>,
}

impl Actions {
    pub fn new(
        directory: Arc<Directory>,
        registrar: Arc<Registrar>,
        notifier: Arc<Notifier>,
        events: EventBus,
        metrics: Arc<Metrics>,
    ) -> Actions {
        Actions { directory, registrar, notifier, events, metrics }
    }

    async fn audit(&self, actor: &str, action: &str, target: &str, detail: serde_json::Value) {
        let op = audit_op(actor, action, target, &detail);
        if let Err(e) = self.directory.store().commit(vec![op]).await {
            tracing::error!(error = %e, action, target, "audit record not written");
        }
    }

    /// Removes every binding of a user's extensions (optionally only one device's); remembers
    /// where each device was so it can still be notified. The warning says when the store refused
    /// the removal: a restart before the bindings expire would bring them back, and the operator
    /// should know (unless their user is deleted: start-up drops such bindings anyway).
    async fn remove_bindings(
        &self,
        extensions: &[String],
        cause: RemovalCause,
        only: Option<&Mac>,
    ) -> (Vec<Binding>, Option<String>) {
        let aors: Vec<AddressOfRecord> = extensions.iter().map(|e| self.registrar.aor(e)).collect();
        let location = self.registrar.location();
        let outcome = match only {
            None => location.remove_all_of(&aors, cause).await,
            Some(m) => location.remove_where(&aors, cause, |b| b.device.as_deref() == Some(m.as_str())).await,
        };
        let (removed, refused) = match outcome {
            Ok(removed) => (removed, None),
            Err(RemovalNotStored { removed, error }) => (removed, Some(error)),
        };
        self.remember_last_contacts(&removed).await;
        let warning = refused.map(|e| {
            format!(
                "{} binding(s) removed from service, but the store refused their removal {} times ({e}): \
                 a restart before they expire would bring them back",
                removed.len(),
                REMOVAL_ATTEMPTS
            )
        });
        (removed.into_iter().map(|(_, b)| b).collect(), warning)
    }

    fn user_extensions(&self, username: &str) -> Result<(Vec<String>, UserStatus), ActionError> {
        let user = self.directory.user(username).ok_or_else(|| ActionError::NotFound(format!("user {username}")))?;
        Ok((user.extensions, user.status))
    }

    /// Suspends a user: durable first, then every binding removed, then every phone notified.
    pub async fn deactivate(&self, username: &str, actor: &str) -> Result<ActionReport, ActionError> {
        let outcome = self.suspend_users(&[username.to_owned()], |_| Vec::new()).await;
        if !outcome.single(username)? {
            self.audit(actor, "deactivate", username, serde_json::json!({"changed": false})).await;
            return Ok(ActionReport::default());
        }
        let removed = outcome.removed_bindings();
        let mut report = self.notify_devices(&outcome.devices, &removed, &HeldSecrets::new()).await;
        report.bindings_removed = removed.len();
        report.changed = true;
        self.events
            .publish(Event::new("user_deactivated").with("user", username).with("bindings_removed", removed.len()));
        self.audit(actor, "deactivate", username, serde_json::to_value(&report).unwrap_or_default()).await;
        Ok(report)
    }

    /// Lifts a suspension and tells the phones to fetch their (now enabled) config.
    pub async fn reactivate(&self, username: &str, actor: &str) -> Result<ActionReport, ActionError> {
        let outcome = self.reactivate_users(&[username.to_owned()], |_| Vec::new()).await;
        if !outcome.single(username)? {
            self.audit(actor, "reactivate", username, serde_json::json!({"changed": false})).await;
            return Ok(ActionReport::default());
        }
        let mut report = self.notify_devices(&outcome.devices, &[], &HeldSecrets::new()).await;
        report.changed = true;
        self.events.publish(Event::new("user_reactivated").with("user", username));
        self.audit(actor, "reactivate", username, serde_json::to_value(&report).unwrap_or_default()).await;
        Ok(report)
    }

    /// Sign out everywhere: new secrets for every device (the old ones refused at once), every
    /// binding removed, every phone told to fetch its new credentials and register again.
    pub async fn sign_out(&self, username: &str, actor: &str) -> Result<ActionReport, ActionError> {
        let (extensions, _) = self.user_extensions(username)?;
        let devices = self.directory.devices_of_user(username);
        let held: HeldSecrets =
            devices.iter().map(|d| (d.mac.clone(), d.credentials.secret.expose().to_owned())).collect();
        for d in &devices {
            self.directory.rotate_credentials(&d.mac, None).await?;
        }
        let (removed, warning) = self.remove_bindings(&extensions, RemovalCause::SignedOut, None).await;
        let devices = self.directory.devices_of_user(username);
        let mut report = self.notify_devices(&devices, &removed, &held).await;
        report.bindings_removed = removed.len();
        report.changed = true;
        report.warnings.extend(warning);
        self.events.publish(Event::new("user_signed_out").with("user", username));
        self.audit(actor, "sign_out", username, serde_json::to_value(&report).unwrap_or_default()).await;
        Ok(report)
    }

    /// Deletes a user: its devices become unassigned (credentials revoked) and are told to fetch
    /// the "not assigned" config.
    pub async fn delete_user(&self, username: &str, actor: &str) -> Result<ActionReport, ActionError> {
        let (extensions, _) = self.user_extensions(username)?;
        let held: HeldSecrets = self
            .directory
            .devices_of_user(username)
            .iter()
            .map(|d| (d.mac.clone(), d.credentials.secret.expose().to_owned()))
            .collect();
        let macs = self.directory.delete_user(username).await?;
        // A refused removal is only logged here: start-up drops a deleted user's bindings.
        let (removed, _) = self.remove_bindings(&extensions, RemovalCause::Deactivated, None).await;
        let devices: Vec<Device> = macs.iter().filter_map(|m| self.directory.device(m)).collect();
        let mut report = self.notify_devices(&devices, &removed, &held).await;
        report.bindings_removed = removed.len();
        report.changed = true;
        self.events.publish(Event::new("user_deleted").with("user", username));
        self.audit(actor, "delete_user", username, serde_json::to_value(&report).unwrap_or_default()).await;
        Ok(report)
    }

    /// A new login password. Phones are not touched: their bindings and credentials stay.
    pub async fn reset_password(&self, username: &str, password: &str, actor: &str) -> Result<(), ActionError> {
        self.directory.set_password(username, password).await?;
        self.events.publish(Event::new("password_reset").with("user", username));
        self.audit(actor, "reset_password", username, serde_json::json!({})).await;
        Ok(())
    }

    /// Gives a device to another user: the old user's bindings from it go, new credentials are
    /// issued, the phone fetches its new config and registers as the new user.
    pub async fn reassign_device(&self, mac: &Mac, user: &str, actor: &str) -> Result<ActionReport, ActionError> {
        let device = self.directory.device(mac).ok_or_else(|| ActionError::NotFound(format!("device {mac}")))?;
        let old_extensions: Vec<String> = device.extension.iter().cloned().collect();
        let held: HeldSecrets = [(mac.clone(), device.credentials.secret.expose().to_owned())].into();
        let updated = self.directory.assign_device(mac, user, None).await?;
        let (removed, warning) = self.remove_bindings(&old_extensions, RemovalCause::SignedOut, Some(mac)).await;
        let mut report = self.notify_devices(std::slice::from_ref(&updated), &removed, &held).await;
        report.bindings_removed = removed.len();
        report.changed = true;
        report.warnings.extend(warning);
        self.events.publish(Event::new("device_reassigned").with("mac", mac.to_string()).with("user", user));
        self.audit(actor, "reassign_device", mac.as_str(), serde_json::json!({"user": user})).await;
        Ok(report)
    }

    /// New credentials with an overlap window: bindings stay, the phone fetches the new secret.
    pub async fn rotate_credentials(&self, mac: &Mac, actor: &str) -> Result<ActionReport, ActionError> {
        let device = self.directory.rotate_credentials(mac, Some(ROTATION_GRACE_SECS)).await?;
        let mut report = self.notify_devices(std::slice::from_ref(&device), &[], &HeldSecrets::new()).await;
        report.changed = true;
        self.audit(actor, "rotate_credentials", mac.as_str(), serde_json::json!({})).await;
        Ok(report)
    }

    /// Deletes a device: its credentials stop working at once (durable first), then its bindings go.
    pub async fn delete_device(&self, mac: &Mac, actor: &str) -> Result<(Device, ActionReport), ActionError> {
        let device = self.directory.delete_device(mac).await?;
        let extensions: Vec<String> = device.extension.iter().cloned().collect();
        let (removed, warning) = self.remove_bindings(&extensions, RemovalCause::SignedOut, Some(mac)).await;
        let report = ActionReport {
            bindings_removed: removed.len(),
            changed: true,
            warnings: warning.into_iter().collect(),
            ..ActionReport::default()
        };
        self.events.publish(Event::new("device_deleted").with("mac", mac.to_string()));
        self.audit(
            actor,
            "delete_device",
            mac.as_str(),
            serde_json::json!({"user": device.user, "bindings_removed": removed.len()}),
        )
        .await;
        Ok((device, report))
    }

    /// Sends a check-sync NOTIFY to one device; true when it reached the phone.
    pub async fn resync(&self, mac: &Mac, actor: &str) -> Result<bool, ActionError> {
        let device = self.directory.device(mac).ok_or_else(|| ActionError::NotFound(format!("device {mac}")))?;
        let report = self.notify_devices(std::slice::from_ref(&device), &[], &HeldSecrets::new()).await;
        self.audit(actor, "resync", mac.as_str(), serde_json::to_value(&report).unwrap_or_default()).await;
        Ok(!report.devices_notified.is_empty())
    }
}
