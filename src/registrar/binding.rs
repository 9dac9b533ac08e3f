//! A binding: one contact address registered for an address of record, with everything the
//! registrar must remember about it (RFC 3261 §10.3, RFC 5626 instance/reg-id, RFC 3327 Path) and
//! the flow it arrived on, so requests can be sent back the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use super::compact::{intern_user_agent, Tag};

/// `sip:<extension>@<domain>`: the key of the location table. Shared (`Arc`), so the table and
/// its expiry heap hold one copy of it between them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressOfRecord(pub Arc<str>);

impl AddressOfRecord {
    pub fn new(extension: &str, domain: &str) -> AddressOfRecord {
        let mut aor = String::with_capacity(5 + extension.len() + domain.len());
        aor.push_str("sip:");
        aor.push_str(extension);
        aor.push('@');
        aor.push_str(domain);
        AddressOfRecord(aor.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user part (the extension).
    pub fn extension(&self) -> &str {
        let rest = self.0.strip_prefix("sip:").unwrap_or(&self.0);
        rest.split('@').next().unwrap_or(rest)
    }
}

impl Serialize for AddressOfRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AddressOfRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| AddressOfRecord(s.into()))
    }
}

impl std::fmt::Display for AddressOfRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

impl TransportKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
        }
    }

    /// As written in a Via: `UDP`, `TCP`, `TLS`.
    pub fn via_name(&self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }
}

/// The path a request came over: transport, the phone's address as seen by us, the local socket
/// it reached, and for TCP/TLS the connection (so a NOTIFY can go back on it, through any NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub transport: TransportKind,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Connection id for stream transports; 0 for UDP. Not meaningful after a restart.
    pub connection: u64,
}

/// One registered contact. Memory per binding is a bar (it must not exceed Kamailio's), so what
/// is only ever compared (Call-ID, branch) is kept as a 64-bit digest and the User-Agent is shared
/// between the phones that send the same one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Binding {
    /// The key within the address of record: the instance id (+reg-id) when the phone sent one,
    /// else the contact URI.
    pub key: String,
    /// The contact URI as the phone sent it.
    pub contact: String,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
    pub q: Option<f32>,
    /// Digest of the Call-ID of the REGISTER that last set this binding (compared, never shown).
    pub call_id: Tag,
    pub cseq: u32,
    /// Branch of the REGISTER that last set this binding: a retransmission carries the same one.
    pub branch: Tag,
    /// Unix seconds.
    pub expires_at: u64,
    pub registered_at: u64,
    pub flow: Flow,
    #[serde(with = "super::compact::shared_agent")]
    pub user_agent: Option<Arc<str>>,
    pub path: Vec<String>,
    /// MAC of the device that authenticated this binding.
    pub device: Option<String>,
    pub user: Option<String>,
}

impl Binding {
    pub fn expires_in(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

/// A binding as the admin API and the dashboard show it.
#[derive(Debug, Clone, Serialize)]
pub struct BindingView {
    pub aor: String,
    pub contact: String,
    pub device: Option<String>,
    pub user: Option<String>,
    pub transport: &'static str,
    pub source: String,
    pub user_agent: Option<String>,
    pub registered_at: String,
    pub expires_in: u64,
    pub instance: Option<String>,
    pub path: Vec<String>,
}

impl BindingView {
    pub fn new(aor: &AddressOfRecord, b: &Binding, now: u64) -> BindingView {
        let registered = time::OffsetDateTime::from_unix_timestamp(b.registered_at as i64)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        BindingView {
            aor: aor.0.to_string(),
            contact: b.contact.clone(),
            device: b.device.clone(),
            user: b.user.clone(),
            transport: b.flow.transport.as_str(),
            source: b.flow.remote.to_string(),
            user_agent: b.user_agent.as_deref().map(str::to_owned),
            registered_at: crate::events::rfc3339(registered),
            expires_in: b.expires_in(now),
            instance: b.instance.clone(),
            path: b.path.clone(),
        }
    }
}
