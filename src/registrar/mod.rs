//! The registrar: REGISTER as RFC 3261 §10.3 says, with digest authentication against the
//! directory's device credentials, and the location table of bindings.
//!
//! Order of checks for a REGISTER (each answer is final):
//! 1. throttled source → 503 + Retry-After; Request-URI not ours → 404; To not a SIP URI → 400,
//!    To not in our domain → 404;
//! 2. no usable credentials → 401 (SHA-256 and MD5 challenges); stale or replayed → 401 stale
//!    (a byte-identical retransmission is not a replay: `sip/auth.rs`); wrong secret or unknown
//!    device → 403, the same for both;
//! 3. the device is not assigned to the To extension → 403;
//! 4. `*` misuse → 400; an expiry under `min_expires` → 423 + Min-Expires;
//! 5. under the address of record's lock: the user is suspended → 403 Account Suspended; the
//!    bindings are updated and the store write queued (an out-of-order CSeq → 400);
//! 6. once the store has it durable: 200 OK with every binding — unless the user was suspended
//!    meanwhile, then 403 Account Suspended. A write the store refuses (a disk error) is taken
//!    back out of memory (`rules::undo`) and answered 500 + Retry-After.

pub mod binding;
mod compact;
pub mod location;
mod register;
pub mod rules;

use std::sync::Arc;

use crate::config::Config;
use crate::directory::Directory;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::sip::auth::DigestAuthority;
use crate::sip::headers::DigestAlgorithm;
use crate::sip::throttle::AuthThrottle;
use crate::sip::uri::Host;

pub use binding::{AddressOfRecord, Binding, BindingView, Flow, TransportKind};
pub use location::{LocationTable, RemovalCause};

/// The limits and names REGISTER is checked against.
#[derive(Debug, Clone)]
pub struct RegistrarSettings {
    pub domain: String,
    /// Every other name or address that means "this registrar" (aliases, listener addresses).
    pub local_names: Vec<String>,
    /// Those of `local_names` that are IP addresses, parsed once (checked on every REGISTER).
    pub local_addresses: Vec<std::net::IpAddr>,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
    pub suspended_warning: String,
}

impl RegistrarSettings {
    pub fn from_config(config: &Config, listener_hosts: Vec<String>) -> RegistrarSettings {
        let mut local_names: Vec<String> = config.sip.aliases.iter().map(|a| a.to_ascii_lowercase()).collect();
        local_names.extend(listener_hosts);
        local_names.push(config.domain.to_ascii_lowercase());
        let local_addresses = local_names.iter().filter_map(|n| n.parse().ok()).collect();
        RegistrarSettings {
            domain: config.domain.to_ascii_lowercase(),
            local_names,
            local_addresses,
            min_expires: config.sip.min_expires,
            max_expires: config.sip.max_expires,
            default_expires: config.sip.default_expires,
            max_contacts: config.sip.max_contacts_per_aor,
            suspended_warning: "399 deskline \"Account suspended by its administrator\"".into(),
        }
    }

    /// Whether a host names this registrar ("myself").
    pub fn is_local(&self, host: &Host) -> bool {
        let ip = match host {
            Host::Name(n) => return self.local_names.iter().any(|l| l.eq_ignore_ascii_case(n)),
            Host::V4(a) if a.is_unspecified() => return false,
            Host::V4(a) => std::net::IpAddr::V4(*a),
            Host::V6(a) => std::net::IpAddr::V6(*a),
        };
        self.local_addresses.contains(&ip)
    }
}

pub struct Registrar {
    settings: RegistrarSettings,
    directory: Arc<Directory>,
    location: LocationTable,
    auth: DigestAuthority,
    throttle: AuthThrottle,
    events: EventBus,
    metrics: Arc<Metrics>,
}

impl Registrar {
    pub fn new(
        config: &Config,
        settings: RegistrarSettings,
        directory: Arc<Directory>,
        location: LocationTable,
        events: EventBus,
        metrics: Arc<Metrics>,
    ) -> Registrar {
        let algorithms = config.sip.digest_algorithms.iter().filter_map(|a| DigestAlgorithm::parse(a)).collect();
        Registrar {
            auth: DigestAuthority::new(&config.sip.realm, config.sip.nonce_lifetime, algorithms),
            throttle: AuthThrottle::new(config.sip.auth_failures_before_throttle),
            settings,
            directory,
            location,
            events,
            metrics,
        }
    }

    pub fn location(&self) -> &LocationTable {
        &self.location
    }

    pub fn settings(&self) -> &RegistrarSettings {
        &self.settings
    }

    pub fn auth(&self) -> &DigestAuthority {
        &self.auth
    }

    pub fn throttle(&self) -> &AuthThrottle {
        &self.throttle
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// The address of record of an extension in our domain.
    pub fn aor(&self, extension: &str) -> AddressOfRecord {
        AddressOfRecord::new(extension, &self.settings.domain)
    }
}
