//! What the templates see: `DeviceView` (one device, filled in by the backend), `CommonView` (a
//! bootstrap file, no device), and the serialisable contexts built from them. Building a context
//! enforces the state rules whatever the view holds: only an active device's context carries its
//! SIP secret, and an unassigned device has no line at all. Time zones are parsed once here into
//! the forms each vendor wants.

use std::fmt;

use serde::Serialize;

use crate::config::ProvisioningConfig;
use crate::directory::mac::Mac;
use crate::provisioning::vendor::Vendor;

/// Where a device stands, which decides what its config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Assigned to an active user: the line enabled with the device's own credentials.
    Active,
    /// The user is suspended: the line disabled, no secret, the suspended message.
    Suspended,
    /// Not assigned to any user: no line, the "not assigned" message.
    Unassigned,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Active => "active",
            DeviceState::Suspended => "suspended",
            DeviceState::Unassigned => "unassigned",
        }
    }
}

/// The SIP line a device registers. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LineView {
    /// The user part of the address of record (`1001`).
    pub extension: String,
    pub display_name: String,
    /// The text on the line key (`1001 Alice`).
    pub label: String,
    /// The device's own SIP digest username.
    pub auth_user: String,
    /// The device's own SIP digest secret.
    pub secret: String,
    pub registrar_host: String,
    pub registrar_port: u16,
    /// `tls`, `tcp` or `udp`.
    pub transport: String,
    /// The registration expiry the phone asks for, in seconds.
    pub expires: u32,
}

impl fmt::Debug for LineView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineView")
            .field("extension", &self.extension)
            .field("display_name", &self.display_name)
            .field("label", &self.label)
            .field("auth_user", &self.auth_user)
            .field("secret", &"<redacted>")
            .field("registrar_host", &self.registrar_host)
            .field("registrar_port", &self.registrar_port)
            .field("transport", &self.transport)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Everything the templates need for one device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceView {
    pub mac: Mac,
    /// The vendor recorded on the device (set by an admin or detected earlier), if any.
    pub vendor: Option<Vendor>,
    pub model: Option<String>,
    pub state: DeviceState,
    /// The line; templates see it only when active (with the secret) or suspended (without).
    pub line: Option<LineView>,
    /// The text to show on the phone (suspended / not assigned); `None` when active.
    pub message: Option<String>,
    /// Seconds between the periodic re-fetches the phone is told to do.
    pub resync_interval: u32,
    pub ntp_server: String,
    /// `UTC`, `UTC+1`, `+05:30`, `GMT-5`...; other names are passed on but give no offset.
    pub timezone: String,
    /// The base URL the phone fetches from (`https://host:8443/`). Left empty, the server fills
    /// it from the request (the Host the phone used and the folder of the path).
    pub provisioning_url: String,
}

impl DeviceView {
    /// A view with the config's message, re-fetch interval (long when active, short otherwise),
    /// NTP server and time zone; the caller sets `vendor`, `model` and `provisioning_url`.
    pub fn new(config: &ProvisioningConfig, mac: Mac, state: DeviceState, line: Option<LineView>) -> DeviceView {
        let (message, resync_interval) = match state {
            DeviceState::Active => (None, config.resync_interval),
            DeviceState::Suspended => (Some(config.suspended_message.clone()), config.short_resync_interval),
            DeviceState::Unassigned => (Some(config.unassigned_message.clone()), config.short_resync_interval),
        };
        DeviceView {
            mac,
            vendor: None,
            model: None,
            state,
            line,
            message,
            resync_interval,
            ntp_server: config.ntp_server.clone(),
            timezone: config.timezone.clone(),
            provisioning_url: String::new(),
        }
    }
}

/// What a bootstrap (common) file is rendered from: no device, no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonView {
    pub vendor: Vendor,
    pub model: Option<String>,
    pub resync_interval: u32,
    pub ntp_server: String,
    pub timezone: String,
    pub provisioning_url: String,
}

impl CommonView {
    /// Bootstrap files use the short re-fetch interval: the phone should come back for its own file.
    pub fn new(
        config: &ProvisioningConfig,
        vendor: Vendor,
        model: Option<String>,
        provisioning_url: String,
    ) -> CommonView {
        CommonView {
            vendor,
            model,
            resync_interval: config.short_resync_interval,
            ntp_server: config.ntp_server.clone(),
            timezone: config.timezone.clone(),
            provisioning_url,
        }
    }
}

/// The context of a device template.
#[derive(Debug, Serialize)]
pub(crate) struct DeviceContext<'a> {
    mac: &'a str,
    mac_upper: String,
    mac_colons: String,
    vendor: &'static str,
    model: &'a str,
    state: DeviceState,
    /// Active and with a line: the only case that carries a secret.
    active: bool,
    suspended: bool,
    unassigned: bool,
    line: Option<LineContext<'a>>,
    message: &'a str,
    #[serde(flatten)]
    common: SharedContext<'a>,
}

#[derive(Debug, Serialize)]
struct LineContext<'a> {
    extension: &'a str,
    display_name: &'a str,
    label: &'a str,
    auth_user: &'a str,
    secret: &'a str,
    registrar_host: &'a str,
    registrar_port: u16,
    transport: &'a str,
    expires: u32,
}

/// The context of a common template (and the shared part of a device one).
#[derive(Debug, Serialize)]
pub(crate) struct SharedContext<'a> {
    resync_interval: u32,
    /// `resync_interval` in whole minutes, at least 1 (Yealink and Grandstream count minutes).
    resync_minutes: u32,
    ntp_server: &'a str,
    timezone: TimeZone,
    provisioning_url: &'a str,
    /// The URL without scheme and trailing slash (`host:8443/dir`), for Poly and Grandstream.
    provisioning_host: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct CommonContext<'a> {
    vendor: &'static str,
    model: &'a str,
    #[serde(flatten)]
    common: SharedContext<'a>,
}

impl<'a> DeviceContext<'a> {
    pub(crate) fn new(view: &'a DeviceView, vendor: Vendor, model: Option<&'a str>) -> DeviceContext<'a> {
        let line = match view.state {
            DeviceState::Unassigned => None,
            _ => view.line.as_ref(),
        };
        let active = view.state == DeviceState::Active && line.is_some();
        DeviceContext {
            mac: view.mac.as_str(),
            mac_upper: view.mac.to_upper(),
            mac_colons: view.mac.with_colons(),
            vendor: vendor.as_str(),
            model: model.or(view.model.as_deref()).unwrap_or_default(),
            state: view.state,
            active,
            suspended: view.state == DeviceState::Suspended,
            unassigned: view.state == DeviceState::Unassigned,
            line: line.map(|l| LineContext {
                extension: &l.extension,
                display_name: &l.display_name,
                label: &l.label,
                auth_user: &l.auth_user,
                secret: if active { &l.secret } else { "" },
                registrar_host: &l.registrar_host,
                registrar_port: l.registrar_port,
                transport: &l.transport,
                expires: l.expires,
            }),
            message: view.message.as_deref().unwrap_or_default(),
            common: SharedContext::new(view.resync_interval, &view.ntp_server, &view.timezone, &view.provisioning_url),
        }
    }
}

impl<'a> CommonContext<'a> {
    pub(crate) fn new(view: &'a CommonView) -> CommonContext<'a> {
        CommonContext {
            vendor: view.vendor.as_str(),
            model: view.model.as_deref().unwrap_or_default(),
            common: SharedContext::new(view.resync_interval, &view.ntp_server, &view.timezone, &view.provisioning_url),
        }
    }
}

impl<'a> SharedContext<'a> {
    fn new(resync_interval: u32, ntp_server: &'a str, timezone: &str, provisioning_url: &'a str) -> SharedContext<'a> {
        let host = provisioning_url
            .strip_prefix("https://")
            .or_else(|| provisioning_url.strip_prefix("http://"))
            .unwrap_or(provisioning_url)
            .trim_end_matches('/');
        SharedContext {
            resync_interval,
            resync_minutes: resync_interval.div_ceil(60).max(1),
            ntp_server,
            timezone: TimeZone::parse(timezone),
            provisioning_url,
            provisioning_host: host,
        }
    }
}

/// A time zone as each vendor writes it. Only fixed offsets are understood (`UTC`, `UTC+1`,
/// `GMT-05:00`, `+0530`); any other name has `known = false` and templates leave the zone out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TimeZone {
    name: String,
    known: bool,
    offset_minutes: i32,
    offset_seconds: i32,
    /// Yealink `local_time.time_zone`: `+1`, `-5`, `+5:30`.
    yealink: String,
    /// Cisco `Time_Zone`: `GMT+01:00`.
    cisco: String,
    /// POSIX TZ (Grandstream P64): `UTC-1` for UTC+1 (POSIX inverts the sign).
    posix: String,
}

impl TimeZone {
    pub(crate) fn parse(name: &str) -> TimeZone {
        let offset = parse_offset(name.trim());
        let minutes = offset.unwrap_or(0);
        let (sign, abs) = (if minutes < 0 { '-' } else { '+' }, minutes.unsigned_abs());
        let (h, m) = (abs / 60, abs % 60);
        let short = if m == 0 { format!("{h}") } else { format!("{h}:{m:02}") };
        let posix_sign = if minutes > 0 {
            "-"
        } else if minutes < 0 {
            "+"
        } else {
            ""
        };
        TimeZone {
            name: name.to_owned(),
            known: offset.is_some(),
            offset_minutes: minutes,
            offset_seconds: minutes * 60,
            yealink: format!("{sign}{short}"),
            cisco: format!("GMT{sign}{h:02}:{m:02}"),
            posix: format!("UTC{posix_sign}{short}"),
        }
    }
}

/// Minutes east of UTC for the fixed-offset forms; `None` for anything else.
fn parse_offset(s: &str) -> Option<i32> {
    let upper = s.to_ascii_uppercase();
    let rest = ["UTC", "GMT", "Z"].iter().find_map(|p| upper.strip_prefix(p)).unwrap_or(&upper);
    if rest.is_empty() {
        return (!upper.is_empty()).then_some(0);
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let all_digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || !all_digits(m) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_in_every_vendor_form() {
        let tz = TimeZone::parse("UTC+1");
        assert_eq!((tz.known, tz.offset_seconds), (true, 3600));
        assert_eq!((tz.yealink.as_str(), tz.cisco.as_str(), tz.posix.as_str()), ("+1", "GMT+01:00", "UTC-1"));
        let tz = TimeZone::parse("-05:30");
        assert_eq!((tz.yealink.as_str(), tz.cisco.as_str(), tz.posix.as_str()), ("-5:30", "GMT-05:30", "UTC+5:30"));
        let tz = TimeZone::parse("UTC");
        assert_eq!((tz.known, tz.yealink.as_str(), tz.posix.as_str()), (true, "+0", "UTC0"));
        assert_eq!(TimeZone::parse("gmt+0530").offset_minutes, 330);
        for unknown in ["Europe/Berlin", "", "UTC+25", "+1:75", "UTC+x"] {
            assert!(!TimeZone::parse(unknown).known, "{unknown}");
        }
    }

    #[test]
    fn only_an_active_context_carries_the_secret() {
        let config = ProvisioningConfig::default();
        let line = LineView {
            extension: "1001".into(),
            display_name: "Alice".into(),
            label: "1001 Alice".into(),
            auth_user: "dev-1".into(),
            secret: "s3cret".into(),
            registrar_host: "sip.example.com".into(),
            registrar_port: 5061,
            transport: "tls".into(),
            expires: 600,
        };
        assert!(!format!("{line:?}").contains("s3cret"));
        let mac: Mac = "805ec0a1b2c3".parse().unwrap();
        for (state, secret, has_line) in [
            (DeviceState::Active, true, true),
            (DeviceState::Suspended, false, true),
            (DeviceState::Unassigned, false, false),
        ] {
            let view = DeviceView::new(&config, mac.clone(), state, Some(line.clone()));
            let json = serde_json::to_string(&DeviceContext::new(&view, Vendor::Yealink, None)).unwrap();
            assert_eq!(json.contains("s3cret"), secret, "{state:?}");
            assert_eq!(json.contains("sip.example.com"), has_line, "{state:?}");
        }
    }
}
