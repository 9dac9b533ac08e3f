//! Proof that a phone owns the MAC it asks about, before anything about that MAC is revealed.
//!
//! Two proofs: a client certificate — already checked to chain to a configured device CA — whose
//! subject names exactly the requested MAC (vendors' shared "generic" certificates, which name no
//! MAC, prove nothing), or HTTP Digest (RFC 7616, SHA-256 or MD5, `qop=auth`) in the realm
//! `deskline-provisioning` with the MAC as username and the device's provisioning secret as
//! password. Nonces are stateless (time + random + HMAC) and a nonce's `nc` must grow, so a
//! captured Authorization header cannot be replayed. A digest for an unknown MAC is checked
//! against a derived dummy secret, so known and unknown MACs cost the same and answer the same.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use hmac::{Hmac, Mac as _};
use md5::Md5;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::directory::mac::Mac;

/// The digest realm of provisioning challenges.
pub const REALM: &str = "deskline-provisioning";
/// How long a nonce we issued stays usable.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Above this many tracked nonces, expired ones are dropped.
const MAX_TRACKED_NONCES: usize = 50_000;

type HmacSha256 = Hmac<Sha256>;

/// How a phone proved it owns the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    ClientCertificate,
    Digest,
}

/// The verdict on a request for a MAC-named file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Proven(Proof),
    /// No credentials (or a certificate naming no MAC): challenge, not a failure.
    Missing,
    /// Our nonce expired but the digest was right: challenge again with `stale=true`.
    Stale,
    /// Wrong credentials: a failure, counted and logged. The reason is for logs only.
    Failed(&'static str),
}

/// What a request offers as proof.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The leaf client certificate (DER), if the phone sent one that chains to a device CA.
    pub peer_certificate: Option<&'a [u8]>,
    /// The `Authorization` header value.
    pub authorization: Option<&'a str>,
    pub method: &'a str,
    /// The request target as sent (path and query), which the digest `uri` must equal.
    pub uri: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash(self, input: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(input.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(input.as_bytes())),
        }
    }
}

pub struct DeviceAuthenticator {
    allow_certificate: bool,
    allow_digest: bool,
    key: [u8; 32],
    opaque: String,
    /// nonce → highest `nc` accepted with it, and when it was first used.
    used: DashMap<String, (u32, Instant)>,
}

impl DeviceAuthenticator {
    /// `methods` is the config's `device_auth` list (`client-cert`, `digest`).
    pub fn new(methods: &[String]) -> DeviceAuthenticator {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let mut authenticator = DeviceAuthenticator {
            allow_certificate: methods.iter().any(|m| m == "client-cert"),
            allow_digest: methods.iter().any(|m| m == "digest"),
            key,
            opaque: String::new(),
            used: DashMap::new(),
        };
        authenticator.opaque = hex::encode(&authenticator.tag(b"opaque")[..8]);
        authenticator
    }

    pub fn digest_enabled(&self) -> bool {
        self.allow_digest
    }

    fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Checks the proof for `mac`. `secret` looks up the device's provisioning secret; it is
    /// called (at most once) only for a digest, and an unknown MAC is checked against a dummy.
    pub fn verify(
        &self,
        mac: &Mac,
        creds: &Credentials<'_>,
        secret: impl FnOnce(&Mac) -> Option<String>,
    ) -> AuthOutcome {
        if self.allow_certificate {
            if let Some(der) = creds.peer_certificate {
                match certificate_mac_cached(der) {
                    Some(owner) if owner == *mac => return AuthOutcome::Proven(Proof::ClientCertificate),
                    Some(_) => return AuthOutcome::Failed("client certificate of another MAC"),
                    None => {} // a generic certificate: no proof, the phone may still use digest
                }
            }
        }
        match creds.authorization {
            Some(header) if self.allow_digest => self.verify_digest(mac, header, creds, secret),
            _ => AuthOutcome::Missing,
        }
    }

    fn verify_digest(
        &self,
        mac: &Mac,
        header: &str,
        creds: &Credentials<'_>,
        secret: impl FnOnce(&Mac) -> Option<String>,
    ) -> AuthOutcome {
        let Some(params) = parse_digest(header) else {
            return if header.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("digest ")) {
                AuthOutcome::Failed("malformed digest")
            } else {
                AuthOutcome::Missing
            };
        };
        let field = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) =
            (field("username"), field("realm"), field("nonce"), field("uri"), field("response"))
        else {
            return AuthOutcome::Failed("incomplete digest");
        };
        let algorithm = match field("algorithm").unwrap_or("MD5") {
            a if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            a if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            _ => return AuthOutcome::Failed("unsupported digest algorithm"),
        };
        let (Some("auth"), Some(nc_hex), Some(cnonce)) = (field("qop"), field("nc"), field("cnonce")) else {
            return AuthOutcome::Failed("digest without qop=auth");
        };
        let Some(nc) = (nc_hex.len() == 8).then(|| u32::from_str_radix(nc_hex, 16).ok()).flatten() else {
            return AuthOutcome::Failed("bad nonce count");
        };
        if realm != REALM || uri != creds.uri {
            return AuthOutcome::Failed("digest for another realm or uri");
        }
        if username_mac(username).as_ref() != Some(mac) {
            return AuthOutcome::Failed("digest username is not the requested MAC");
        }
        let fresh = match self.check_nonce(nonce) {
            Some(fresh) => fresh,
            None => return AuthOutcome::Failed("forged nonce"),
        };
        // Always compute, known MAC or not, so both take the same time.
        let known = secret(mac);
        let password = known.clone().unwrap_or_else(|| hex::encode(self.tag(format!("dummy:{mac}").as_bytes())));
        let ha1 = algorithm.hash(&format!("{username}:{REALM}:{password}"));
        let ha2 = algorithm.hash(&format!("{}:{uri}", creds.method));
        let expected = algorithm.hash(&format!("{ha1}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}"));
        let matches: bool = expected.as_bytes().ct_eq(response.to_ascii_lowercase().as_bytes()).into();
        if !(matches && known.is_some()) {
            return AuthOutcome::Failed("wrong digest response");
        }
        if !fresh {
            return AuthOutcome::Stale;
        }
        if !self.accept_nonce_count(nonce, nc) {
            return AuthOutcome::Failed("replayed digest");
        }
        AuthOutcome::Proven(Proof::Digest)
    }

    /// A new nonce: 8 bytes of time, 8 random bytes, 16 bytes of HMAC, in hex.
    pub fn nonce(&self) -> String {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&secs.to_be_bytes());
        rand::thread_rng().fill_bytes(&mut body[8..]);
        format!("{}{}", hex::encode(body), hex::encode(&self.tag(&body)[..16]))
    }

    /// `Some(fresh)` for a nonce we issued, `None` for anything else.
    fn check_nonce(&self, nonce: &str) -> Option<bool> {
        let bytes = hex::decode(nonce).ok().filter(|b| b.len() == 32)?;
        let ok: bool = self.tag(&bytes[..16])[..16].ct_eq(&bytes[16..]).into();
        if !ok {
            return None;
        }
        let issued = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Some(now.saturating_sub(issued) <= NONCE_LIFETIME.as_secs() && issued <= now + 5)
    }

    /// Records `nc` for `nonce`; false when it does not exceed the last one accepted.
    fn accept_nonce_count(&self, nonce: &str, nc: u32) -> bool {
        let now = Instant::now();
        if self.used.len() > MAX_TRACKED_NONCES {
            self.used.retain(|_, (_, first)| now.duration_since(*first) <= NONCE_LIFETIME);
        }
        let mut entry = self.used.entry(nonce.to_owned()).or_insert((0, now));
        if nc <= entry.0 {
            return false;
        }
        entry.0 = nc;
        true
    }

    /// The `WWW-Authenticate` values of a challenge: SHA-256 first, then MD5, one fresh nonce.
    pub fn challenge(&self, stale: bool) -> [String; 2] {
        let nonce = self.nonce();
        let stale = if stale { ", stale=true" } else { "" };
        ["SHA-256", "MD5"].map(|algorithm| {
            format!(
                "Digest realm=\"{REALM}\", qop=\"auth\", algorithm={algorithm}, nonce=\"{nonce}\", opaque=\"{}\"{stale}",
                self.opaque
            )
        })
    }
}

/// The MAC a digest username stands for: the MAC itself in any form, or `dev-<mac>`.
fn username_mac(username: &str) -> Option<Mac> {
    username.strip_prefix("dev-").unwrap_or(username).parse().ok()
}

/// The parameters of a `Digest ...` header, or `None` if it is not one or is malformed.
pub fn parse_digest(header: &str) -> Option<Vec<(String, String)>> {
    if header.len() > 4096 {
        return None;
    }
    let (scheme, mut rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => value.push(chars.next()?.1),
                    (_, c) => value.push(c),
                }
            };
            (value, &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if params.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return None;
        }
        params.push((name.to_owned(), value));
        rest = tail;
    }
    Some(params)
}

/// [`certificate_mac`], remembered per certificate: a phone sends the same one on every request
/// of its keep-alive connection, and parsing X.509 each time was a large part of a fetch.
fn certificate_mac_cached(der: &[u8]) -> Option<Mac> {
    use std::hash::{BuildHasher, Hasher};
    static SEEN: std::sync::OnceLock<(std::collections::hash_map::RandomState, dashmap::DashMap<u64, Option<Mac>>)> =
        std::sync::OnceLock::new();
    let (state, seen) = SEEN.get_or_init(Default::default);
    let mut h = state.build_hasher();
    h.write(der);
    let key = h.finish();
    if let Some(hit) = seen.get(&key) {
        return hit.clone();
    }
    let mac = certificate_mac(der);
    if seen.len() >= 100_000 {
        seen.clear();
    }
    seen.insert(key, mac.clone());
    mac
}

/// The MAC a client certificate's subject names (CN, or the stateOrProvince `S=` Cisco uses).
/// `None` when it names none (a vendor's generic certificate), or two different ones.
pub fn certificate_mac(der: &[u8]) -> Option<Mac> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let values =
        subject.iter_common_name().chain(subject.iter_state_or_province()).filter_map(|attr| attr.as_str().ok());
    let mut found: Option<Mac> = None;
    for value in values {
        let Some(mac) = value.trim().parse::<Mac>().ok().or_else(|| Mac::find_in(value)) else {
            continue;
        };
        match &found {
            Some(first) if *first != mac => return None,
            _ => found = Some(mac),
        }
    }
    found
}

#[cfg(test)]
#[path = "device_auth_tests.rs"]
pub(crate) mod tests;
