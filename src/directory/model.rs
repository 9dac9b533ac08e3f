//! The directory's records: users, devices and the credentials a device registers with. These are
//! the in-memory forms; `doc` types are what the store keeps (secrets encrypted).

use serde::{Deserialize, Serialize};

use super::mac::Mac;
use super::secrets::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Suspended,
}

/// A person: logs in with a password (argon2 hash), owns extensions, uses devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub status: UserStatus,
    /// argon2id PHC string; `None` until a password is set (the user cannot log in).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Extension numbers; each is the address of record `sip:<number>@<domain>`.
    pub extensions: Vec<String>,
    pub created_at: String,
}

/// The SIP credentials a device registers with, issued by deskline (or set by an admin for a phone
/// configured by hand). Not the user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredentials {
    pub username: String,
    pub secret: Secret,
}

/// Credentials replaced by a rotation, still accepted until `valid_until` (unix seconds) or until
/// the phone has authenticated once with the new ones.
#[derive(Debug, Clone)]
pub struct PreviousCredentials {
    pub secret: Secret,
    pub valid_until: u64,
}

/// What a phone's last config fetch looked like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFetchRecord {
    pub at: String,
    pub address: String,
    pub user_agent: Option<String>,
    pub file: String,
}

/// Where a device was last reachable over SIP, kept so it can be notified after its bindings are
/// gone (reactivation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastContact {
    pub contact: String,
    pub aor: String,
    /// The flow it registered on (its connection id means nothing after a restart).
    pub flow: crate::registrar::binding::Flow,
}

/// A phone, keyed by its MAC.
#[derive(Debug, Clone)]
pub struct Device {
    pub mac: Mac,
    pub user: Option<String>,
    pub extension: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub credentials: DeviceCredentials,
    pub previous_credentials: Option<PreviousCredentials>,
    /// The HTTP digest secret the phone proves its MAC with when it has no client certificate.
    pub provisioning_secret: Secret,
    pub last_config_fetch: Option<ConfigFetchRecord>,
    pub last_contact: Option<LastContact>,
    /// A check-sync NOTIFY could not be delivered (or was not yet followed by a fetch).
    pub resync_pending: bool,
    pub created_at: String,
}

/// The stored form of a device: secrets sealed by the [`super::secrets::SecretCipher`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceDoc {
    pub mac: Mac,
    pub user: Option<String>,
    pub extension: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub sip_username: String,
    pub sip_secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_valid_until: Option<u64>,
    pub provisioning_secret_sealed: String,
    pub last_config_fetch: Option<ConfigFetchRecord>,
    pub last_contact: Option<LastContact>,
    pub resync_pending: bool,
    pub created_at: String,
}

/// What the registrar needs to authenticate a REGISTER: looked up by the digest username.
#[derive(Debug, Clone)]
pub struct SipAccount {
    pub mac: Mac,
    pub username: String,
    pub secret: Secret,
    /// A rotated-out secret still inside its overlap window.
    pub previous_secret: Option<Secret>,
    pub extension: Option<String>,
    pub user: Option<String>,
    pub resync_pending: bool,
}

/// Whether an extension may register right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionState {
    Active,
    Suspended,
    Unknown,
}

/// Input of [`super::Directory::create_user`].
#[derive(Debug, Clone, Deserialize)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub extension: Option<String>,
}

/// Input of [`super::Directory::create_device`].
#[derive(Debug, Clone, Deserialize)]
pub struct NewDevice {
    pub mac: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub extension: Option<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub sip_username: Option<String>,
    #[serde(default)]
    pub sip_password: Option<String>,
}
