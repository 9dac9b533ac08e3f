//! The server's settings: the TOML file of `../spec/interface.md`, with every key defaulted to the
//! embedded single-machine set-up. Unknown keys are refused (`deny_unknown_fields`), so a typo stops
//! start-up with a message naming the key and the line instead of being silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The SIP domain of every address of record.
    pub domain: String,
    /// Where the embedded store (and the first admin token) live.
    pub data_dir: PathBuf,
    pub sip: SipConfig,
    pub tls: TlsConfig,
    pub provisioning: ProvisioningConfig,
    pub admin: AdminConfig,
    pub store: StoreConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Whether every commit holding only bindings is also fsync'd. Off (the default), a binding
    /// that got its 200 OK survives a crash of deskline (kill -9) but may be lost with the machine
    /// (power loss) — phones re-register then anyway; directory changes (users, devices,
    /// suspensions, tokens, audit) are always fsync'd before they are answered.
    pub bindings_fsync: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    /// Below this a REGISTER gets 423 Interval Too Brief with Min-Expires.
    pub min_expires: u32,
    /// Granted expiry is capped here.
    pub max_expires: u32,
    /// Used when a REGISTER names no expiry.
    pub default_expires: u32,
    /// Beyond this the oldest binding of the address of record is dropped.
    pub max_contacts_per_aor: usize,
    /// The digest realm of our challenges.
    pub realm: String,
    /// Offered in this order, one WWW-Authenticate header each.
    pub digest_algorithms: Vec<String>,
    /// Seconds a nonce stays valid before `stale=true`.
    pub nonce_lifetime: u32,
    /// Idle TCP/TLS connections are closed after this many seconds.
    pub idle_timeout: u64,
    /// Host names and addresses (besides `domain` and the listeners) that mean "this registrar".
    pub aliases: Vec<String>,
    /// Failed digest attempts from one source address before it is throttled.
    pub auth_failures_before_throttle: u32,
    /// Receive threads per UDP listener; 0 picks one per CPU (at most eight).
    pub udp_threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundles that sign phones' client certificates.
    pub device_ca: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    pub https: Vec<SocketAddr>,
    pub templates: PathBuf,
    /// Operator overrides (`<vendor>/<model>.*` or `<mac>.*`) that win over `templates`.
    pub overrides: Option<PathBuf>,
    /// `client-cert` and/or `digest`.
    pub device_auth: Vec<String>,
    /// Seconds between the periodic re-fetches an active phone is told to do.
    pub resync_interval: u32,
    /// Seconds between re-fetches for a suspended or unassigned phone.
    pub short_resync_interval: u32,
    pub suspended_message: String,
    pub unassigned_message: String,
    /// The address phones are told to register to; defaults to `domain`.
    pub sip_server: Option<String>,
    /// `tls`, `tcp` or `udp`: the transport written into configs.
    pub sip_transport: String,
    pub ntp_server: String,
    pub timezone: String,
    /// Largest accepted PUT upload (Poly logs and overrides), in bytes.
    pub max_upload_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub tls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "pbx.example.com".into(),
            data_dir: "./data".into(),
            sip: SipConfig::default(),
            tls: TlsConfig::default(),
            provisioning: ProvisioningConfig::default(),
            admin: AdminConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: vec!["0.0.0.0:5060".parse().expect("literal")],
            tcp: vec!["0.0.0.0:5060".parse().expect("literal")],
            tls: vec!["0.0.0.0:5061".parse().expect("literal")],
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts_per_aor: 10,
            realm: "pbx.example.com".into(),
            digest_algorithms: vec!["SHA-256".into(), "MD5".into()],
            nonce_lifetime: 300,
            idle_timeout: 3900,
            aliases: Vec::new(),
            auth_failures_before_throttle: 10,
            udp_threads: 0,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { cert: "./certs/server.pem".into(), key: "./certs/server.key".into(), device_ca: Vec::new() }
    }
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            https: vec!["0.0.0.0:8443".parse().expect("literal")],
            templates: "./provisioning-templates".into(),
            overrides: None,
            device_auth: vec!["client-cert".into(), "digest".into()],
            resync_interval: 86400,
            short_resync_interval: 300,
            suspended_message:
                "Account Suspended - Your account has been suspended. Contact the administrator of your account.".into(),
            unassigned_message: "This phone is not assigned to a user.".into(),
            sip_server: None,
            sip_transport: "tls".into(),
            ntp_server: "pool.ntp.org".into(),
            timezone: "UTC".into(),
            max_upload_bytes: 1 << 20,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: "127.0.0.1:9080".parse().expect("literal"), tls: false }
    }
}

impl Config {
    /// Reads and checks a TOML file; the error names the key (and the line, from toml's message).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.to_owned(), message },
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: PathBuf::new(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| Err(ConfigError::Invalid { key, message: message.into() });
        if self.domain.trim().is_empty() {
            return invalid("domain", "must not be empty");
        }
        if self.sip.realm.trim().is_empty() {
            return invalid("sip.realm", "must not be empty");
        }
        if self.sip.min_expires == 0 {
            return invalid("sip.min_expires", "must be at least 1");
        }
        if self.sip.max_expires < self.sip.min_expires {
            return invalid("sip.max_expires", "must not be below sip.min_expires");
        }
        if self.sip.default_expires < self.sip.min_expires || self.sip.default_expires > self.sip.max_expires {
            return invalid("sip.default_expires", "must lie between sip.min_expires and sip.max_expires");
        }
        if self.sip.max_contacts_per_aor == 0 {
            return invalid("sip.max_contacts_per_aor", "must be at least 1");
        }
        if self.sip.digest_algorithms.is_empty() {
            return invalid("sip.digest_algorithms", "must offer at least one algorithm");
        }
        for algorithm in &self.sip.digest_algorithms {
            if !matches!(algorithm.as_str(), "SHA-256" | "MD5") {
                return invalid(
                    "sip.digest_algorithms",
                    &format!("unknown algorithm {algorithm:?} (known: \"SHA-256\", \"MD5\")"),
                );
            }
        }
        if self.sip.nonce_lifetime < 10 {
            return invalid("sip.nonce_lifetime", "must be at least 10 seconds");
        }
        for method in &self.provisioning.device_auth {
            if !matches!(method.as_str(), "client-cert" | "digest") {
                return invalid(
                    "provisioning.device_auth",
                    &format!("unknown method {method:?} (known: \"client-cert\", \"digest\")"),
                );
            }
        }
        if !matches!(self.provisioning.sip_transport.as_str(), "tls" | "tcp" | "udp") {
            return invalid("provisioning.sip_transport", "must be \"tls\", \"tcp\" or \"udp\"");
        }
        if self.provisioning.resync_interval == 0 || self.provisioning.short_resync_interval == 0 {
            return invalid("provisioning.resync_interval", "intervals must be at least 1 second");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.sip.min_expires, 60);
        assert_eq!(c.admin.listen.port(), 9080);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::from_toml("domain = \"a\"\n[sip]\nmin_expirse = 3\n").unwrap_err().to_string();
        assert!(err.contains("min_expirse"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = Config::from_toml("[sip]\nmin_expires = 100\nmax_expires = 50\n").unwrap_err().to_string();
        assert!(err.contains("sip.max_expires"), "{err}");
        let err = Config::from_toml("[sip]\nmin_expires = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("min_expires"), "{err}");
    }
}
