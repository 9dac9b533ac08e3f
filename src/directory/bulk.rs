//! Changes of many directory records at once (a batch deactivation of thousands of users): the
//! same rule as every other change — durable in the store first, applied in memory after — but in
//! chunks of [`BULK_CHUNK`] records, each one store transaction (one fsync), instead of one
//! transaction per record.
//!
//! Why chunks and not one transaction for everything: the store's single writer folds REGISTERs'
//! binding writes into whatever transaction it runs next, so a REGISTER arriving during a
//! 10,000-row transaction would wait for all of it. A chunk is short (a few milliseconds), the
//! writer lock is released between chunks so other admin changes interleave, and the task yields
//! so the REGISTER path keeps its share of the runtime.

use std::collections::{HashMap, HashSet};

use super::store::{StoreError, StoreOp};
use super::{records, Device, Directory, DirectoryError, LastContact, Mac, User, UserStatus};

/// Users per store transaction in a bulk status change (each transaction is fsync'd).
pub const BULK_CHUNK: usize = 500;
/// Devices per store transaction in a bulk device change: each device is re-encrypted and
/// serialised on the runtime, so smaller slices keep a worker thread from being held for long.
pub const DEVICE_CHUNK: usize = 100;

/// What a status change of many users did, name by name.
#[derive(Debug, Default)]
pub struct StatusChanges {
    /// Users whose status changed (as they are now).
    pub changed: Vec<User>,
    /// Users that already had the status: nothing written.
    pub unchanged: Vec<String>,
    /// Names with no user.
    pub unknown: Vec<String>,
    /// Users whose change could not be made durable (store failure): nothing changed for them.
    pub failed: Vec<(String, StoreError)>,
}

impl Directory {
    /// Sets the status of every user named. `extra` adds store writes per changed user (e.g. an
    /// audit record), committed in the same transaction as its status.
    pub async fn set_status_many(
        &self,
        usernames: &[String],
        status: UserStatus,
        extra: impl Fn(&User) -> Vec<StoreOp>,
    ) -> StatusChanges {
        let mut out = StatusChanges::default();
        for chunk in usernames.chunks(BULK_CHUNK) {
            let _w = self.writer.lock().await;
            let mut changed: Vec<User> = Vec::with_capacity(chunk.len());
            {
                let state = self.state.read();
                for name in chunk {
                    match state.users.get(name) {
                        None => out.unknown.push(name.clone()),
                        Some(u) if u.status == status => out.unchanged.push(name.clone()),
                        Some(u) => {
                            let mut u = u.clone();
                            u.status = status;
                            changed.push(u);
                        }
                    }
                }
            }
            if changed.is_empty() {
                continue;
            }
            let ops: Vec<StoreOp> =
                changed.iter().flat_map(|u| std::iter::once(records::put_user(u)).chain(extra(u))).collect();
            if let Err(e) = self.store.commit(ops).await {
                tracing::error!(error = %e, users = changed.len(), "bulk status change not stored");
                out.failed.extend(changed.into_iter().map(|u| (u.username, e.clone())));
                continue;
            }
            {
                let mut state = self.state.write();
                for u in &changed {
                    state.users.insert(u.username.clone(), u.clone());
                }
            }
            out.changed.extend(changed);
            drop(_w);
            tokio::task::yield_now().await;
        }
        out
    }

    /// The devices of each user named (sorted by MAC per user): one pass over the devices for
    /// their MACs, then the records copied [`DEVICE_CHUNK`] at a time with a yield in between.
    pub async fn devices_of_users(&self, usernames: &HashSet<&str>) -> HashMap<String, Vec<Device>> {
        let mut macs: Vec<(String, Mac)> = {
            let state = self.state.read();
            state
                .devices
                .values()
                .filter_map(|d| {
                    d.user.as_deref().filter(|u| usernames.contains(u)).map(|u| (u.to_owned(), d.mac.clone()))
                })
                .collect()
        };
        macs.sort();
        let mut out: HashMap<String, Vec<Device>> = HashMap::new();
        for chunk in macs.chunks(DEVICE_CHUNK) {
            {
                let state = self.state.read();
                for (user, mac) in chunk {
                    if let Some(d) = state.devices.get(mac).filter(|d| d.user.as_ref() == Some(user)) {
                        out.entry(user.clone()).or_default().push(d.clone());
                    }
                }
            }
            tokio::task::yield_now().await;
        }
        out
    }

    /// Changes many devices, chunk by chunk; `change` returns false for "nothing to do". Devices
    /// that no longer exist are skipped. The credentials' username is never changed here. `soft`
    /// changes (where a device was last reachable) are written like bindings, without an fsync.
    pub async fn update_devices<T>(
        &self,
        changes: Vec<(Mac, T)>,
        soft: bool,
        change: impl Fn(&mut Device, T) -> bool,
    ) -> Result<usize, DirectoryError> {
        let mut written = 0;
        let mut changes = changes.into_iter().peekable();
        while changes.peek().is_some() {
            let _w = self.writer.lock().await;
            let mut updated: Vec<Device> = Vec::with_capacity(DEVICE_CHUNK);
            for (mac, value) in changes.by_ref().take(DEVICE_CHUNK) {
                let Some(mut device) = self.device(&mac) else { continue };
                if change(&mut device, value) {
                    updated.push(device);
                }
            }
            if updated.is_empty() {
                continue;
            }
            let ops = updated
                .iter()
                .map(|d| match records::put_device(&self.cipher, d) {
                    StoreOp::PutDevice { mac, doc } if soft => StoreOp::PutDeviceSoft { mac, doc },
                    op => op,
                })
                .collect();
            self.store.commit(ops).await?;
            {
                let mut state = self.state.write();
                for d in &updated {
                    state.devices.insert(d.mac.clone(), d.clone());
                }
            }
            written += updated.len();
            drop(_w);
            tokio::task::yield_now().await;
        }
        Ok(written)
    }

    /// Records where each device was last reachable (its bindings are about to be gone). Soft
    /// state, like the bindings it comes from: written without an fsync of its own.
    pub async fn set_last_contacts(&self, contacts: Vec<(Mac, LastContact)>) -> Result<usize, DirectoryError> {
        self.update_devices(contacts, true, |d, c| d.last_contact.replace(c.clone()).as_ref() != Some(&c)).await
    }

    /// Marks (or clears) "resync pending" on many devices.
    pub async fn set_resync_pending_many(&self, macs: Vec<Mac>, pending: bool) -> Result<usize, DirectoryError> {
        let changes = macs.into_iter().map(|m| (m, pending)).collect();
        self.update_devices(changes, false, |d, p| std::mem::replace(&mut d.resync_pending, p) != p).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::secrets::SecretCipher;
    use crate::directory::store::{Store, Table};
    use crate::directory::NewUser;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn status_of_many_users_is_stored_and_reported_per_name() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _snap) = Store::open(dir.path(), Arc::new(Metrics::new())).unwrap();
        let cipher = SecretCipher::open(dir.path()).unwrap();
        let directory = Directory::load(store, cipher).unwrap();
        for i in 0..3 {
            let new = NewUser {
                username: format!("u{i}"),
                display_name: None,
                password: None,
                extension: Some(format!("10{i}")),
            };
            directory.create_user(new).await.unwrap();
        }
        directory.set_status("u2", UserStatus::Suspended).await.unwrap();
        let names: Vec<String> = ["u0", "u1", "u2", "nobody"].iter().map(|s| s.to_string()).collect();
        let c = directory.set_status_many(&names, UserStatus::Suspended, |_| Vec::new()).await;
        let changed: Vec<&str> = c.changed.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(changed, ["u0", "u1"]);
        assert_eq!(c.unchanged, ["u2"]);
        assert_eq!(c.unknown, ["nobody"]);
        assert!(c.failed.is_empty());
        assert_eq!(directory.user("u1").unwrap().status, UserStatus::Suspended);
        drop(directory);
        let (store, _snap) = Store::open(dir.path(), Arc::new(Metrics::new())).unwrap();
        let mut suspended = 0;
        store
            .for_each_doc(Table::Users, |doc| {
                suspended += usize::from(doc.contains("\"suspended\""));
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(suspended, 3);
    }
}
