//! What the admin API answers: the directory's records as operators see them (never a password
//! hash nor a device secret, except in [`SipCredentialsView`]), and the request bodies it takes.
//! Each derives `ToSchema`, so the OpenAPI document describes exactly these shapes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Role;
use crate::directory::{ConfigFetchRecord, Device, User, UserStatus};

/// A user, with status, extensions and devices.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    /// `active` or `suspended`.
    pub status: String,
    pub extensions: Vec<String>,
    /// MACs of the devices assigned to the user.
    pub devices: Vec<String>,
    /// Whether a login password is set.
    pub has_password: bool,
    pub created_at: String,
}

impl UserView {
    pub fn new(user: &User, devices: &[Device]) -> UserView {
        UserView {
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            status: status_str(user.status).to_owned(),
            extensions: user.extensions.clone(),
            devices: devices.iter().map(|d| d.mac.to_string()).collect(),
            has_password: user.password_hash.is_some(),
            created_at: user.created_at.clone(),
        }
    }
}

pub fn status_str(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Active => "active",
        UserStatus::Suspended => "suspended",
    }
}

/// A phone's last config fetch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FetchView {
    pub at: String,
    pub address: String,
    pub user_agent: Option<String>,
    pub file: String,
}

impl From<&ConfigFetchRecord> for FetchView {
    fn from(f: &ConfigFetchRecord) -> FetchView {
        FetchView {
            at: f.at.clone(),
            address: f.address.clone(),
            user_agent: f.user_agent.clone(),
            file: f.file.clone(),
        }
    }
}

/// A device: never its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// Twelve lowercase hex digits.
    pub mac: String,
    pub user: Option<String>,
    pub extension: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub last_config_fetch: Option<FetchView>,
    /// Whether the device has at least one live binding.
    pub registered: bool,
    /// A check-sync could not be delivered, or was not followed by a fetch yet.
    pub resync_pending: bool,
    /// The SIP digest username it registers with (not a secret).
    pub sip_username: String,
    pub created_at: String,
}

impl DeviceView {
    pub fn new(d: &Device, registered: bool) -> DeviceView {
        DeviceView {
            mac: d.mac.to_string(),
            user: d.user.clone(),
            extension: d.extension.clone(),
            vendor: d.vendor.clone(),
            model: d.model.clone(),
            firmware: d.firmware.clone(),
            last_config_fetch: d.last_config_fetch.as_ref().map(FetchView::from),
            registered,
            resync_pending: d.resync_pending,
            sip_username: d.credentials.username.clone(),
            created_at: d.created_at.clone(),
        }
    }
}

/// A device's SIP credentials, for configuring a phone by hand (admin only, audited).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SipCredentialsView {
    pub username: String,
    pub password: String,
    pub realm: String,
}

/// What an account action did (the lead's `ActionReport`, as documented).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionReportDoc {
    pub bindings_removed: usize,
    pub devices_notified: Vec<String>,
    pub devices_unreachable: Vec<String>,
    pub changed: bool,
    /// Present when part of what was done could not be stored (e.g. bindings removed from service
    /// whose removal the store refused: a restart before they expire would bring them back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A live binding (the registrar's `BindingView`, as documented).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistrationDoc {
    pub aor: String,
    pub contact: String,
    pub device: Option<String>,
    pub user: Option<String>,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// The phone's address and port as seen by deskline.
    pub source: String,
    pub user_agent: Option<String>,
    pub registered_at: String,
    pub expires_in: u64,
    pub instance: Option<String>,
    pub path: Vec<String>,
}

/// `POST /api/v1/users`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewUserBody {
    pub username: String,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub extension: Option<String>,
}

/// `POST /api/v1/login`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// Answer to a login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginAnswer {
    pub token: String,
    /// Seconds.
    pub expires_in: u64,
}

/// `POST /api/v1/users/{username}/password`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PasswordBody {
    pub password: String,
}

/// `POST /api/v1/devices`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewDeviceBody {
    pub mac: String,
    pub user: Option<String>,
    pub extension: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub sip_username: Option<String>,
    pub sip_password: Option<String>,
}

/// `PUT /api/v1/devices/{mac}/user`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AssignBody {
    pub user: String,
}

/// Answer to a resync.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResyncAnswer {
    /// Whether the phone acknowledged the check-sync NOTIFY.
    pub notified: bool,
}

/// `POST /api/v1/tokens`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewTokenBody {
    pub name: String,
    pub role: Role,
    /// Lifetime in seconds; none for no expiry.
    pub expires_in: Option<u64>,
}

/// A new token: its value is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewTokenAnswer {
    pub name: String,
    pub role: Role,
    pub token: String,
}

/// Who a token belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub name: String,
    pub role: Role,
    pub user: Option<String>,
}

/// Paging of a listing; the total before paging is in the `X-Total-Count` header.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// At most this many items (default: all).
    pub limit: Option<usize>,
    /// Skip this many first.
    pub offset: Option<usize>,
}

impl Paging {
    pub fn apply<T>(&self, items: Vec<T>) -> Vec<T> {
        let offset = self.offset.unwrap_or(0);
        let limit = self.limit.unwrap_or(usize::MAX);
        items.into_iter().skip(offset).take(limit).collect()
    }
}

/// Counts by state, for the dashboard and monitoring.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub users_active: usize,
    pub users_suspended: usize,
    pub devices_total: usize,
    pub devices_registered: usize,
    pub devices_unregistered: usize,
    pub devices_resync_pending: usize,
    pub bindings_total: usize,
    /// Bindings by transport (`udp`, `tcp`, `tls`).
    pub bindings_by_transport: std::collections::BTreeMap<String, usize>,
    pub uptime_seconds: u64,
}

/// `POST /api/v1/users/deactivate` and `POST /api/v1/users/reactivate`: the users to act on
/// (1 to 100,000 login names; a name given twice counts once). Like the one-user actions, there
/// is nothing else to say: the suspended message is the `suspended_message` setting.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchUsersBody {
    pub usernames: Vec<String>,
}

/// One name a batch action did not act on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchItemErrorDoc {
    pub username: String,
    /// `not_found` (no such user) or `store` (the change could not be made durable).
    pub error: String,
    pub detail: String,
}

/// What a batch action did (the lead's `BatchReport`, as documented).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchReportDoc {
    /// `deactivate` or `reactivate`.
    pub action: String,
    /// Distinct usernames in the request.
    pub requested: usize,
    /// Users whose status changed now.
    pub changed: usize,
    /// Users already suspended (deactivate) or already active (reactivate): nothing done.
    pub unchanged: Vec<String>,
    /// Names not acted on, each with why; the others were acted on all the same.
    pub errors: Vec<BatchItemErrorDoc>,
    pub bindings_removed: usize,
    /// Devices of the changed users; each is sent a check-sync NOTIFY.
    pub devices: usize,
    /// Devices that answered the NOTIFY before this answer.
    pub devices_notified: usize,
    /// Devices that could not be reached: marked resync pending, retried with backoff.
    pub devices_unreachable: usize,
    /// Devices whose NOTIFY was still under way (it goes on; `notify_batch_done` event at the end).
    pub devices_pending: usize,
    /// Milliseconds from the request to this answer.
    pub elapsed_ms: u64,
}
