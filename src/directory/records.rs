//! Conversions between directory records and their stored documents, and the checks on names and
//! passwords that come from outside.

use super::model::*;
use super::secrets::SecretCipher;
use super::store::StoreOp;
use super::DirectoryError;

/// A valid argon2id hash of a random string, verified against when a user has no hash, so a
/// login for an unknown user costs the same time as one for a known user.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0+6JzGkR5nKq0l5qkLr2p4yHgm3Y0m3k0Q2i3g7y1aA";

/// Wrapper so a stored device document deserialises in one call.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct DeviceDocRef(pub DeviceDoc);

pub fn put_user(user: &User) -> StoreOp {
    StoreOp::PutUser { username: user.username.clone(), doc: serde_json::to_string(user).unwrap_or_default() }
}

pub fn put_device(cipher: &SecretCipher, d: &Device) -> StoreOp {
    let doc = DeviceDoc {
        mac: d.mac.clone(),
        user: d.user.clone(),
        extension: d.extension.clone(),
        vendor: d.vendor.clone(),
        model: d.model.clone(),
        firmware: d.firmware.clone(),
        sip_username: d.credentials.username.clone(),
        sip_secret_sealed: cipher.encrypt(&d.credentials.secret),
        previous_secret_sealed: d.previous_credentials.as_ref().map(|p| cipher.encrypt(&p.secret)),
        previous_valid_until: d.previous_credentials.as_ref().map(|p| p.valid_until),
        provisioning_secret_sealed: cipher.encrypt(&d.provisioning_secret),
        last_config_fetch: d.last_config_fetch.clone(),
        last_contact: d.last_contact.clone(),
        resync_pending: d.resync_pending,
        created_at: d.created_at.clone(),
    };
    StoreOp::PutDevice { mac: d.mac.to_string(), doc: serde_json::to_string(&doc).unwrap_or_default() }
}

pub fn open_device(cipher: &SecretCipher, doc: DeviceDoc) -> Result<Device, DirectoryError> {
    let previous_credentials = match (doc.previous_secret_sealed, doc.previous_valid_until) {
        (Some(sealed), Some(valid_until)) => {
            Some(PreviousCredentials { secret: cipher.decrypt(&sealed)?, valid_until })
        }
        _ => None,
    };
    Ok(Device {
        credentials: DeviceCredentials { username: doc.sip_username, secret: cipher.decrypt(&doc.sip_secret_sealed)? },
        previous_credentials,
        provisioning_secret: cipher.decrypt(&doc.provisioning_secret_sealed)?,
        mac: doc.mac,
        user: doc.user,
        extension: doc.extension,
        vendor: doc.vendor,
        model: doc.model,
        firmware: doc.firmware,
        last_config_fetch: doc.last_config_fetch,
        last_contact: doc.last_contact,
        resync_pending: doc.resync_pending,
        created_at: doc.created_at,
    })
}

/// Names (usernames, SIP usernames) are 1–64 characters of `A-Za-z0-9._-@+`.
pub fn check_name(field: &str, name: &str) -> Result<(), DirectoryError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!("{field} must be 1-64 characters of A-Z a-z 0-9 . _ - @ +")))
    }
}

/// Usernames that name an admin API path of their own (`POST /api/v1/users/deactivate` is the
/// batch action), so no user may be called so.
pub const RESERVED_USERNAMES: [&str; 2] = ["deactivate", "reactivate"];

/// A username: a name (as [`check_name`]) that is not reserved.
pub fn check_username(name: &str) -> Result<(), DirectoryError> {
    check_name("username", name)?;
    if RESERVED_USERNAMES.contains(&name) {
        return Err(DirectoryError::Invalid(format!("username {name} is reserved")));
    }
    Ok(())
}

/// Extensions are 1–32 digits (they are SIP user parts: `sip:1001@domain`).
pub fn check_extension(ext: &str) -> Result<(), DirectoryError> {
    if !ext.is_empty() && ext.len() <= 32 && ext.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(DirectoryError::Invalid("extension must be 1-32 digits".into()))
    }
}

pub fn check_password(password: &str) -> Result<(), DirectoryError> {
    if password.len() < 4 || password.len() > 256 || password.chars().any(|c| c.is_control()) {
        return Err(DirectoryError::Invalid("password must be 4-256 printable characters".into()));
    }
    Ok(())
}
