//! The directory: users, extensions, devices and their credentials. It knows no SIP and no HTTP.
//!
//! Reads come from memory (a read-write lock over plain maps: REGISTER looks a device up on every
//! request). Every change is made durable in the store first and applied in memory after, one change
//! at a time (a writer mutex), so memory never shows a state the store does not hold.

mod binding_lane;
pub use binding_lane::HeldWrites;
pub mod bulk;
mod import;
pub mod journal;
pub mod mac;
pub mod model;
mod records;
pub mod secrets;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

pub use import::{ImportReport, MAX_IMPORT};
pub use mac::Mac;
pub use model::*;
use secrets::{Secret, SecretCipher};
use store::{Store, StoreError, StoreOp, Table};

/// Why a directory change was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
}

#[derive(Default)]
struct State {
    users: HashMap<String, User>,
    /// extension number → username
    extensions: HashMap<String, String>,
    devices: HashMap<Mac, Device>,
    /// SIP digest username → device
    by_sip_username: HashMap<String, Mac>,
}

pub struct Directory {
    state: RwLock<State>,
    store: Store,
    cipher: SecretCipher,
    /// Serialises changes so each one is durable before the next starts.
    writer: tokio::sync::Mutex<()>,
    /// When each device's last config fetch was last written to the store: a phone fetching
    /// every few seconds is recorded in memory each time, in the store at most once a minute.
    fetch_written: dashmap::DashMap<Mac, std::time::Instant>,
}

/// How often a device's fetch record reaches the store when nothing else about it changed.
const FETCH_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Directory {
    /// Builds the directory from what the store holds, streaming its rows (a million users and
    /// devices are read without first copying them all); users and devices in parallel.
    pub fn load(store: Store, cipher: SecretCipher) -> Result<Directory, DirectoryError> {
        let (users, devices) = std::thread::scope(|s| {
            let users = s.spawn(|| load_users(&store));
            let devices = load_devices(&store, &cipher);
            (joined(users), devices)
        });
        let ((users, extensions), (devices, by_sip_username)) = (users?, devices?);
        Ok(Directory {
            state: RwLock::new(State { users, extensions, devices, by_sip_username }),
            store,
            cipher,
            writer: tokio::sync::Mutex::new(()),
            fetch_written: dashmap::DashMap::new(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    // ----- reads -----

    pub fn user(&self, username: &str) -> Option<User> {
        self.state.read().users.get(username).cloned()
    }

    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.state.read().users.values().cloned().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }

    pub fn device(&self, mac: &Mac) -> Option<Device> {
        self.state.read().devices.get(mac).cloned()
    }

    /// Visits every user and device without copying them (counting a million of each); holds the
    /// directory's read lock meanwhile, so keep `f` quick.
    pub fn visit(&self, mut on_user: impl FnMut(&User), mut on_device: impl FnMut(&Device)) {
        let state = self.state.read();
        state.users.values().for_each(&mut on_user);
        state.devices.values().for_each(&mut on_device);
    }

    pub fn devices(&self) -> Vec<Device> {
        let mut devices: Vec<Device> = self.state.read().devices.values().cloned().collect();
        devices.sort_by(|a, b| a.mac.cmp(&b.mac));
        devices
    }

    pub fn devices_of_user(&self, username: &str) -> Vec<Device> {
        let mut devices: Vec<Device> =
            self.state.read().devices.values().filter(|d| d.user.as_deref() == Some(username)).cloned().collect();
        devices.sort_by(|a, b| a.mac.cmp(&b.mac));
        devices
    }

    /// The account a REGISTER's digest username names (the hot path).
    pub fn sip_account(&self, sip_username: &str) -> Option<SipAccount> {
        let state = self.state.read();
        let device = state.devices.get(state.by_sip_username.get(sip_username)?)?;
        let previous_secret =
            device.previous_credentials.as_ref().filter(|p| p.valid_until > unix_now()).map(|p| p.secret.clone());
        Some(SipAccount {
            mac: device.mac.clone(),
            username: device.credentials.username.clone(),
            secret: device.credentials.secret.clone(),
            previous_secret,
            extension: device.extension.clone(),
            user: device.user.clone(),
            resync_pending: device.resync_pending,
        })
    }

    /// Whether an extension exists and may register. The registrar asks this while it holds the
    /// address of record's lock, so a suspension that lands first is always seen.
    pub fn extension_state(&self, extension: &str) -> ExtensionState {
        let state = self.state.read();
        let Some(username) = state.extensions.get(extension) else { return ExtensionState::Unknown };
        match state.users.get(username).map(|u| u.status) {
            Some(UserStatus::Active) => ExtensionState::Active,
            Some(UserStatus::Suspended) => ExtensionState::Suspended,
            None => ExtensionState::Unknown,
        }
    }

    /// Checks a user's login password (argon2: slow, runs on a blocking thread). A suspended user,
    /// an unknown user and a wrong password are all `false`, alike.
    pub async fn verify_login(&self, username: &str, password: &str) -> bool {
        let hash = match self.user(username) {
            Some(u) if u.status == UserStatus::Active => u.password_hash,
            _ => None,
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || match hash {
            Some(h) => secrets::verify_password(&password, &h),
            None => {
                // Spend the same time as a real check, so timing tells nothing.
                let _ = secrets::verify_password(&password, records::DUMMY_HASH);
                false
            }
        })
        .await
        .unwrap_or(false)
    }

    // ----- changes -----

    pub async fn create_user(&self, new: NewUser) -> Result<User, DirectoryError> {
        records::check_username(&new.username)?;
        if let Some(ext) = &new.extension {
            records::check_extension(ext)?;
        }
        let password_hash = match new.password.clone() {
            Some(p) => Some(hash_blocking(p).await?),
            None => None,
        };
        let _w = self.writer.lock().await;
        {
            let state = self.state.read();
            if state.users.contains_key(&new.username) {
                return Err(DirectoryError::Conflict(format!("user {} already exists", new.username)));
            }
            if let Some(ext) = &new.extension {
                if let Some(owner) = state.extensions.get(ext) {
                    return Err(DirectoryError::Conflict(format!("extension {ext} already belongs to {owner}")));
                }
            }
        }
        let user = User {
            display_name: new.display_name.clone().unwrap_or_else(|| new.username.clone()),
            username: new.username,
            status: UserStatus::Active,
            password_hash,
            extensions: new.extension.into_iter().collect(),
            created_at: crate::events::now_rfc3339(),
        };
        self.store.commit(vec![records::put_user(&user)]).await?;
        let mut state = self.state.write();
        for ext in &user.extensions {
            state.extensions.insert(ext.clone(), user.username.clone());
        }
        state.users.insert(user.username.clone(), user.clone());
        Ok(user)
    }

    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), DirectoryError> {
        records::check_password(password)?;
        let hash = hash_blocking(password.to_owned()).await?;
        self.update_user(username, |u| {
            u.password_hash = Some(hash);
            Ok(true)
        })
        .await
        .map(|_| ())
    }

    /// Sets a user's status; `Ok(false)` when it already was. (The one-user case of
    /// [`Directory::set_status_many`].)
    pub async fn set_status(&self, username: &str, status: UserStatus) -> Result<bool, DirectoryError> {
        let mut c = self.set_status_many(&[username.to_owned()], status, |_| Vec::new()).await;
        if let Some((_, e)) = c.failed.pop() {
            return Err(e.into());
        }
        if !c.unknown.is_empty() {
            return Err(DirectoryError::NotFound(format!("user {username}")));
        }
        Ok(!c.changed.is_empty())
    }

    async fn update_user(
        &self,
        username: &str,
        change: impl FnOnce(&mut User) -> Result<bool, DirectoryError>,
    ) -> Result<bool, DirectoryError> {
        let _w = self.writer.lock().await;
        let mut user = self.user(username).ok_or_else(|| DirectoryError::NotFound(format!("user {username}")))?;
        if !change(&mut user)? {
            return Ok(false);
        }
        self.store.commit(vec![records::put_user(&user)]).await?;
        self.state.write().users.insert(user.username.clone(), user);
        Ok(true)
    }

    /// Deletes a user: its extensions go, its devices become unassigned with revoked (rotated)
    /// credentials. Returns the devices that were unassigned.
    pub async fn delete_user(&self, username: &str) -> Result<Vec<Mac>, DirectoryError> {
        let _w = self.writer.lock().await;
        let user = self.user(username).ok_or_else(|| DirectoryError::NotFound(format!("user {username}")))?;
        let mut devices = self.devices_of_user(username);
        let mut ops = vec![StoreOp::DeleteUser { username: username.to_owned() }];
        for d in &mut devices {
            d.user = None;
            d.extension = None;
            d.credentials.secret = Secret::generate();
            d.previous_credentials = None;
            ops.push(records::put_device(&self.cipher, d));
        }
        self.store.commit(ops).await?;
        let mut state = self.state.write();
        for ext in &user.extensions {
            state.extensions.remove(ext);
        }
        state.users.remove(username);
        let macs = devices.iter().map(|d| d.mac.clone()).collect();
        for d in devices {
            state.devices.insert(d.mac.clone(), d);
        }
        Ok(macs)
    }

    pub async fn create_device(&self, mut new: NewDevice) -> Result<Device, DirectoryError> {
        let mac: Mac = new.mac.parse().map_err(|e: mac::InvalidMac| DirectoryError::Invalid(e.to_string()))?;
        let _w = self.writer.lock().await;
        let extension = self.resolve_assignment(new.user.as_deref(), new.extension.as_deref())?;
        let username = import::sip_username(&mac, new.sip_username.take())?;
        {
            let state = self.state.read();
            if state.devices.contains_key(&mac) {
                return Err(DirectoryError::Conflict(format!("device {mac} already exists")));
            }
            if state.by_sip_username.contains_key(&username) {
                return Err(DirectoryError::Conflict(format!("SIP username {username} is already in use")));
            }
        }
        let secret = import::sip_secret(new.sip_password.take())?;
        let device = import::new_device(mac.clone(), new, extension, username, secret);
        self.store.commit(vec![records::put_device(&self.cipher, &device)]).await?;
        let mut state = self.state.write();
        state.by_sip_username.insert(device.credentials.username.clone(), mac.clone());
        state.devices.insert(mac, device.clone());
        Ok(device)
    }

    /// The extension a device assigned to `user` serves: the one named (which must be the user's),
    /// or the user's first.
    fn resolve_assignment(
        &self,
        user: Option<&str>,
        extension: Option<&str>,
    ) -> Result<Option<String>, DirectoryError> {
        let found = user.and_then(|u| self.user(u));
        import::assigned_extension(user, found.as_ref(), extension)
    }

    pub async fn delete_device(&self, mac: &Mac) -> Result<Device, DirectoryError> {
        let _w = self.writer.lock().await;
        let device = self.device(mac).ok_or_else(|| DirectoryError::NotFound(format!("device {mac}")))?;
        self.store.commit(vec![StoreOp::DeleteDevice { mac: mac.to_string() }]).await?;
        let mut state = self.state.write();
        state.by_sip_username.remove(&device.credentials.username);
        state.devices.remove(mac);
        Ok(device)
    }

    /// Changes a device in one durable step. `change` returns false for "nothing to do".
    pub async fn update_device(
        &self,
        mac: &Mac,
        change: impl FnOnce(&mut Device) -> Result<bool, DirectoryError>,
    ) -> Result<Device, DirectoryError> {
        let _w = self.writer.lock().await;
        let mut device = self.device(mac).ok_or_else(|| DirectoryError::NotFound(format!("device {mac}")))?;
        let old_username = device.credentials.username.clone();
        if !change(&mut device)? {
            return Ok(device);
        }
        self.store.commit(vec![records::put_device(&self.cipher, &device)]).await?;
        let mut state = self.state.write();
        if old_username != device.credentials.username {
            state.by_sip_username.remove(&old_username);
            state.by_sip_username.insert(device.credentials.username.clone(), mac.clone());
        }
        state.devices.insert(mac.clone(), device.clone());
        Ok(device)
    }

    /// Assigns a device to a user (and one of the user's extensions) with fresh credentials.
    pub async fn assign_device(
        &self,
        mac: &Mac,
        user: &str,
        extension: Option<&str>,
    ) -> Result<Device, DirectoryError> {
        let extension = self.resolve_assignment(Some(user), extension)?;
        self.update_device(mac, |d| {
            d.user = Some(user.to_owned());
            d.extension = extension;
            d.credentials.secret = Secret::generate();
            d.previous_credentials = None;
            Ok(true)
        })
        .await
    }

    /// Issues a new secret. With `overlap` the old one stays valid that many seconds, or until the
    /// phone has used the new one; without, it is refused at once.
    pub async fn rotate_credentials(&self, mac: &Mac, overlap: Option<u64>) -> Result<Device, DirectoryError> {
        self.update_device(mac, |d| {
            let old = std::mem::replace(&mut d.credentials.secret, Secret::generate());
            d.previous_credentials =
                overlap.map(|secs| PreviousCredentials { secret: old, valid_until: unix_now() + secs });
            Ok(true)
        })
        .await
    }

    /// The phone authenticated with its current secret: the previous one is retired.
    pub async fn retire_previous_credentials(&self, mac: &Mac) -> Result<(), DirectoryError> {
        self.update_device(mac, |d| Ok(d.previous_credentials.take().is_some())).await.map(|_| ())
    }

    /// Records a config fetch; a fetch of the file that carries the device's state
    /// (`carries_state`) clears "resync pending". Returns whether it cleared it. This is soft state
    /// written on every fetch: memory at once, the store without waiting and without an fsync.
    pub fn record_fetch(
        &self,
        mac: &Mac,
        fetch: ConfigFetchRecord,
        carries_state: bool,
        vendor: Option<String>,
        model: Option<String>,
        firmware: Option<String>,
    ) -> Result<bool, DirectoryError> {
        let mut state = self.state.write();
        let device = state.devices.get_mut(mac).ok_or_else(|| DirectoryError::NotFound(format!("device {mac}")))?;
        let was_pending = carries_state && device.resync_pending;
        if carries_state {
            device.resync_pending = false;
        }
        let identity = (device.vendor.clone(), device.model.clone(), device.firmware.clone());
        device.last_config_fetch = Some(fetch);
        device.vendor = vendor.or(device.vendor.take());
        device.model = model.or(device.model.take());
        device.firmware = firmware.or(device.firmware.take());
        let changed = was_pending || identity != (device.vendor.clone(), device.model.clone(), device.firmware.clone());
        let recent = self.fetch_written.get(mac).is_some_and(|at| at.elapsed() < FETCH_WRITE_INTERVAL);
        if recent && !changed {
            return Ok(false);
        }
        self.fetch_written.insert(mac.clone(), std::time::Instant::now());
        let op = match records::put_device(&self.cipher, device) {
            StoreOp::PutDevice { mac, doc } => StoreOp::PutDeviceSoft { mac, doc },
            other => other,
        };
        // Queued while the state lock is held: the store sees device writes in memory's order.
        self.store.submit(vec![op], store::Completion::None);
        Ok(was_pending)
    }

    pub async fn set_resync_pending(&self, mac: &Mac, pending: bool) -> Result<(), DirectoryError> {
        self.update_device(mac, |d| Ok(std::mem::replace(&mut d.resync_pending, pending) != pending)).await.map(|_| ())
    }

    pub async fn set_last_contact(&self, mac: &Mac, contact: LastContact) -> Result<(), DirectoryError> {
        self.set_last_contacts(vec![(mac.clone(), contact)]).await.map(|_| ())
    }
}

/// Users by name, and extension → username.
type UserMaps = (HashMap<String, User>, HashMap<String, String>);
/// Devices by MAC, and SIP username → MAC.
type DeviceMaps = (HashMap<Mac, Device>, HashMap<String, Mac>);

/// A scoped thread's result (its panic carries on here).
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn load_users(store: &Store) -> Result<UserMaps, DirectoryError> {
    let n = store.count(Table::Users)?;
    let (mut users, mut extensions) = (HashMap::with_capacity(n), HashMap::with_capacity(n));
    store.for_each_doc(Table::Users, |doc| {
        let user: User = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for ext in &user.extensions {
            extensions.insert(ext.clone(), user.username.clone());
        }
        users.insert(user.username.clone(), user);
        Ok::<_, DirectoryError>(())
    })?;
    Ok((users, extensions))
}

fn load_devices(store: &Store, cipher: &SecretCipher) -> Result<DeviceMaps, DirectoryError> {
    let n = store.count(Table::Devices)?;
    let (mut devices, mut by_sip_username) = (HashMap::with_capacity(n), HashMap::with_capacity(n));
    store.for_each_doc(Table::Devices, |doc| {
        let doc: records::DeviceDocRef = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let device = records::open_device(cipher, doc.0)?;
        by_sip_username.insert(device.credentials.username.clone(), device.mac.clone());
        devices.insert(device.mac.clone(), device);
        Ok::<_, DirectoryError>(())
    })?;
    Ok((devices, by_sip_username))
}

async fn hash_blocking(password: String) -> Result<String, DirectoryError> {
    records::check_password(&password)?;
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| DirectoryError::Invalid(e.to_string()))?
        .map_err(DirectoryError::from)
}

/// Shared handle.
pub type SharedDirectory = Arc<Directory>;
