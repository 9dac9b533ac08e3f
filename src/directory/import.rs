//! Bulk import: many users and devices created in one durable step (one store transaction, one
//! fsync), for migrating a site from another PBX or provisioning a large test bench. Every entry is
//! checked exactly as [`Directory::create_user`] and [`Directory::create_device`] check one, and
//! against the directory and the rest of the batch; the first bad entry refuses the whole import
//! (its error names it, e.g. `devices[17]: ...`), so nothing is half-imported.
//!
//! Cost: a user without a password costs a JSON document (no argon2); a user with one costs an
//! argon2id hash (tens of milliseconds), so imports of users with passwords are slow by design.
//! A device costs two ChaCha20-Poly1305 seals (its SIP and provisioning secrets).

use std::collections::{HashMap, HashSet};

use super::mac::{InvalidMac, Mac};
use super::model::*;
use super::secrets::Secret;
use super::{records, Directory, DirectoryError, State};

/// Most users (and, separately, devices) one import takes.
pub const MAX_IMPORT: usize = 10_000;

/// What an import created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub users: usize,
    pub devices: usize,
}

/// Prefixes an error with the entry it is about; a missing user becomes a bad entry.
fn at(list: &'static str, i: usize) -> impl Fn(DirectoryError) -> DirectoryError {
    move |e| match e {
        DirectoryError::Invalid(m) | DirectoryError::NotFound(m) => {
            DirectoryError::Invalid(format!("{list}[{i}]: {m}"))
        }
        DirectoryError::Conflict(m) => DirectoryError::Conflict(format!("{list}[{i}]: {m}")),
        other => other,
    }
}

/// The extension a device assigned to `user` serves: the one named (which must be the user's),
/// or the user's first. `found` is the user named, if it exists.
pub(super) fn assigned_extension(
    user: Option<&str>,
    found: Option<&User>,
    extension: Option<&str>,
) -> Result<Option<String>, DirectoryError> {
    let Some(user) = user else {
        return match extension {
            Some(_) => Err(DirectoryError::Invalid("an extension needs a user".into())),
            None => Ok(None),
        };
    };
    let u = found.ok_or_else(|| DirectoryError::NotFound(format!("user {user}")))?;
    match extension {
        Some(ext) if u.extensions.iter().any(|e| e == ext) => Ok(Some(ext.to_owned())),
        Some(ext) => Err(DirectoryError::Invalid(format!("extension {ext} does not belong to {user}"))),
        None => Ok(u.extensions.first().cloned()),
    }
}

/// A device's SIP username: the one given (checked), or `dl<mac>`.
pub(super) fn sip_username(mac: &Mac, given: Option<String>) -> Result<String, DirectoryError> {
    match given {
        Some(u) => {
            records::check_name("sip_username", &u)?;
            Ok(u)
        }
        None => Ok(format!("dl{}", mac.as_str())),
    }
}

/// A device's SIP secret: the password given (checked), or a generated one.
pub(super) fn sip_secret(given: Option<String>) -> Result<Secret, DirectoryError> {
    match given {
        Some(p) => {
            records::check_password(&p)?;
            Ok(Secret::new(p))
        }
        None => Ok(Secret::generate()),
    }
}

/// A fresh device record (what [`Directory::create_device`] and the import both make).
pub(super) fn new_device(
    mac: Mac,
    new: NewDevice,
    extension: Option<String>,
    username: String,
    secret: Secret,
) -> Device {
    Device {
        mac,
        user: new.user,
        extension,
        vendor: new.vendor,
        model: new.model,
        firmware: None,
        credentials: DeviceCredentials { username, secret },
        previous_credentials: None,
        provisioning_secret: Secret::generate(),
        last_config_fetch: None,
        last_contact: None,
        resync_pending: false,
        created_at: crate::events::now_rfc3339(),
    }
}

impl Directory {
    /// Creates `users` then `devices` (which may name users of the same import) in one durable
    /// step; all or nothing.
    pub async fn import(&self, users: Vec<NewUser>, devices: Vec<NewDevice>) -> Result<ImportReport, DirectoryError> {
        if users.len() > MAX_IMPORT || devices.len() > MAX_IMPORT {
            return Err(DirectoryError::Invalid(format!(
                "at most {MAX_IMPORT} users and {MAX_IMPORT} devices per import"
            )));
        }
        let mut hashes = Vec::with_capacity(users.len());
        for (i, u) in users.iter().enumerate() {
            records::check_name("username", &u.username).map_err(at("users", i))?;
            if let Some(ext) = &u.extension {
                records::check_extension(ext).map_err(at("users", i))?;
            }
            hashes.push(match &u.password {
                Some(p) => Some(super::hash_blocking(p.clone()).await.map_err(at("users", i))?),
                None => None,
            });
        }
        let _w = self.writer.lock().await;
        let (users, devices) = {
            let state = self.state.read();
            let users = plan_users(&state, users, hashes)?;
            let devices = plan_devices(&state, &users, devices)?;
            (users, devices)
        };
        let mut ops = Vec::with_capacity(users.len() + devices.len());
        ops.extend(users.iter().map(records::put_user));
        ops.extend(devices.iter().map(|d| records::put_device(&self.cipher, d)));
        self.store.commit(ops).await?;
        let report = ImportReport { users: users.len(), devices: devices.len() };
        let mut state = self.state.write();
        for user in users {
            for ext in &user.extensions {
                state.extensions.insert(ext.clone(), user.username.clone());
            }
            state.users.insert(user.username.clone(), user);
        }
        for device in devices {
            state.by_sip_username.insert(device.credentials.username.clone(), device.mac.clone());
            state.devices.insert(device.mac.clone(), device);
        }
        Ok(report)
    }
}

/// The users to create, or the first entry that clashes with the directory or the batch.
fn plan_users(state: &State, users: Vec<NewUser>, hashes: Vec<Option<String>>) -> Result<Vec<User>, DirectoryError> {
    let mut names = HashSet::with_capacity(users.len());
    let mut extensions = HashSet::with_capacity(users.len());
    let mut out = Vec::with_capacity(users.len());
    for (i, (new, password_hash)) in users.into_iter().zip(hashes).enumerate() {
        if state.users.contains_key(&new.username) || !names.insert(new.username.clone()) {
            return Err(at("users", i)(DirectoryError::Conflict(format!("user {} already exists", new.username))));
        }
        if let Some(ext) = &new.extension {
            if let Some(owner) = state.extensions.get(ext) {
                return Err(at("users", i)(DirectoryError::Conflict(format!(
                    "extension {ext} already belongs to {owner}"
                ))));
            }
            if !extensions.insert(ext.clone()) {
                return Err(at("users", i)(DirectoryError::Conflict(format!("extension {ext} is imported twice"))));
            }
        }
        out.push(User {
            display_name: new.display_name.unwrap_or_else(|| new.username.clone()),
            username: new.username,
            status: UserStatus::Active,
            password_hash,
            extensions: new.extension.into_iter().collect(),
            created_at: crate::events::now_rfc3339(),
        });
    }
    Ok(out)
}

/// The devices to create, with their extension resolved as [`Directory::create_device`] does.
fn plan_devices(state: &State, users: &[User], devices: Vec<NewDevice>) -> Result<Vec<Device>, DirectoryError> {
    let batch_users: HashMap<&str, &User> = users.iter().map(|u| (u.username.as_str(), u)).collect();
    let mut macs = HashSet::with_capacity(devices.len());
    let mut sip_names = HashSet::with_capacity(devices.len());
    let mut out = Vec::with_capacity(devices.len());
    for (i, mut new) in devices.into_iter().enumerate() {
        let err = at("devices", i);
        let mac: Mac = new.mac.parse().map_err(|e: InvalidMac| err(DirectoryError::Invalid(e.to_string())))?;
        let found = new.user.as_deref().and_then(|u| state.users.get(u).or_else(|| batch_users.get(u).copied()));
        let extension = assigned_extension(new.user.as_deref(), found, new.extension.as_deref()).map_err(&err)?;
        let username = sip_username(&mac, new.sip_username.take()).map_err(&err)?;
        if state.devices.contains_key(&mac) || !macs.insert(mac.clone()) {
            return Err(err(DirectoryError::Conflict(format!("device {mac} already exists"))));
        }
        if state.by_sip_username.contains_key(&username) || !sip_names.insert(username.clone()) {
            return Err(err(DirectoryError::Conflict(format!("SIP username {username} is already in use"))));
        }
        let secret = sip_secret(new.sip_password.take()).map_err(&err)?;
        out.push(new_device(mac, new, extension, username, secret));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::secrets::SecretCipher;
    use crate::directory::store::Store;

    fn open(dir: &std::path::Path) -> Directory {
        let (store, _snap) = Store::open(dir, Arc::new(crate::metrics::Metrics::new())).unwrap();
        Directory::load(store, SecretCipher::open(dir).unwrap()).unwrap()
    }

    fn user(name: &str, ext: &str) -> NewUser {
        NewUser { username: name.into(), display_name: None, password: None, extension: Some(ext.into()) }
    }

    fn device(mac: &str, user: &str, sip: &str) -> NewDevice {
        NewDevice {
            mac: mac.into(),
            user: Some(user.into()),
            extension: None,
            vendor: None,
            model: None,
            sip_username: Some(sip.into()),
            sip_password: Some(format!("pw{sip}")),
        }
    }

    #[tokio::test]
    async fn imports_users_and_their_devices_durably() {
        let dir = tempfile::tempdir().unwrap();
        let d = open(dir.path());
        let report = d
            .import(vec![user("a", "1001"), user("b", "1002")], vec![device("0200000003e9", "a", "1001")])
            .await
            .unwrap();
        assert_eq!(report, ImportReport { users: 2, devices: 1 });
        drop(d);
        let d = open(dir.path());
        assert_eq!(d.extension_state("1002"), ExtensionState::Active);
        let account = d.sip_account("1001").unwrap();
        assert_eq!((account.extension.as_deref(), account.secret.expose()), (Some("1001"), "pw1001"));
        assert!(d.user("a").unwrap().password_hash.is_none());
    }

    #[tokio::test]
    async fn one_bad_entry_refuses_the_whole_import() {
        let dir = tempfile::tempdir().unwrap();
        let d = open(dir.path());
        d.import(vec![user("a", "1001")], vec![]).await.unwrap();
        let cases: Vec<(Vec<NewUser>, Vec<NewDevice>, &str)> = vec![
            (vec![user("x", "2000"), user("a", "2001")], vec![], "users[1]: user a already exists"),
            (vec![user("x", "2000"), user("y", "2000")], vec![], "users[1]: extension 2000 is imported twice"),
            (vec![user("x", "1001")], vec![], "users[0]: extension 1001 already belongs to a"),
            (vec![user("x", "20a")], vec![], "users[0]: extension must be 1-32 digits"),
            (vec![user("x", "2000")], vec![device("nope", "x", "s")], "devices[0]: "),
            (vec![user("x", "2000")], vec![device("020000000001", "ghost", "s")], "devices[0]: user ghost"),
            (
                vec![user("x", "2000")],
                vec![device("020000000001", "x", "2000"), device("020000000002", "x", "2000")],
                "devices[1]: SIP username 2000 is already in use",
            ),
        ];
        for (users, devices, want) in cases {
            let err = d.import(users, devices).await.unwrap_err().to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
            assert!(d.user("x").is_none(), "nothing of a refused import is kept");
        }
        let too_many = (0..=MAX_IMPORT).map(|i| user(&format!("u{i}"), &i.to_string())).collect();
        assert!(matches!(d.import(too_many, vec![]).await, Err(DirectoryError::Invalid(_))));
    }
}
