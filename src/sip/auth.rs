//! Digest authentication, server side (RFC 7616, RFC 8760 algorithm names, RFC 3261 §22).
//!
//! Nonces carry their own integrity: `hex(issued_at ‖ slot)` followed by a SipHash-2-4-128 tag
//! over them under a random per-process key, so validating one needs no table lookup. SipHash is
//! a keyed pseudo-random function built for exactly this (short inputs, a secret key, forgeries as
//! hard as guessing 128 bits); it replaced HMAC-SHA-256, whose two SHA-256 compressions per mint
//! and per check were a tenth of a REGISTER's CPU on machines without SHA instructions.
//!
//! Replays are refused by nonce-count: each nonce owns a slot in a fixed ring of atomics holding
//! (nonce serial, highest nc seen); an nc that does not grow is a replay, and a nonce whose slot
//! was reused by a newer one is treated as stale. Memory is fixed, lookups O(1), and nothing needs
//! sweeping.
//!
//! Retransmissions: over UDP a phone resends a request whose answer it did not get, byte for byte.
//! Its nonce-count is then already used, yet it is no attack and must be answered as the first
//! copy was (RFC 3261 §17.2.2), or the phone's registration fails. So each slot also keeps a
//! fingerprint of the whole request that last advanced its count (a keyed SipHash of the method,
//! URI, every header and the body): the same count with the same fingerprint is
//! [`Verdict::Retransmission`]. An attacker replaying a captured request changed in any way (its
//! Contact, say) gets a different fingerprint, and is refused as a replay. Count and fingerprint
//! are one 128-bit atomic (`portable-atomic`: `cmpxchg16b` on x86-64), so a retransmission handled
//! on one thread while its first copy is on another sees both or neither.

use std::hash::Hasher as _;
use std::sync::atomic::{AtomicU64, Ordering};

use md5::{Digest, Md5};
use portable_atomic::AtomicU128;
use sha2::Sha256;
use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128 as _, SipHasher24};
use subtle::ConstantTimeEq;

use super::headers::{DigestAlgorithm, DigestCredentials};
use super::response::push_hex;

/// Slots in the nonce-count ring (a power of two). A nonce stays checkable until this many newer
/// nonces have been issued.
const SLOTS: usize = 1 << 20;

/// A slot no nonce was minted for.
const UNUSED: u128 = (u64::MAX as u128) << 64;

/// The outcome of checking an Authorization header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right and the nonce-count is new.
    Valid,
    /// The response is right but its nonce-count was already used by another request: a replay.
    Replayed,
    /// The very request that used this nonce-count, again (same fingerprint): a retransmission.
    Retransmission,
    /// The nonce is ours but too old (or its slot was reused): challenge again with `stale=true`.
    Stale,
    /// The nonce is not one of ours (another realm, a restart, a forgery): challenge afresh.
    UnknownNonce,
    /// The nonce is ours and the response is wrong: a wrong password (or an unknown user).
    Invalid,
}

pub struct DigestAuthority {
    realm: String,
    /// SipHash keyed once with the per-process secret.
    keyed: SipHasher24,
    lifetime: u64,
    serial: AtomicU64,
    /// Per slot: `(serial << 24 | nc) << 64 | fingerprint of the request that set nc` (0: none).
    slots: Box<[AtomicU128]>,
    /// SipHash keyed with a second secret, for request fingerprints.
    print_key: SipHasher13,
    algorithms: Vec<DigestAlgorithm>,
}

/// A parsed, integrity-checked nonce.
struct NonceParts {
    issued_at: u64,
    serial: u64,
}

impl DigestAuthority {
    pub fn new(realm: &str, lifetime_secs: u32, algorithms: Vec<DigestAlgorithm>) -> DigestAuthority {
        let mut key = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        let slots = (0..SLOTS).map(|_| AtomicU128::new(UNUSED)).collect::<Vec<_>>().into_boxed_slice();
        let mut print_key = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut print_key);
        DigestAuthority {
            realm: realm.to_owned(),
            keyed: SipHasher24::new_with_key(&key),
            lifetime: lifetime_secs as u64,
            serial: AtomicU64::new(rand::random::<u32>() as u64),
            slots,
            print_key: SipHasher13::new_with_key(&print_key),
            algorithms,
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Mints a nonce valid from `now` (unix seconds).
    pub fn nonce(&self, now: u64) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        // Slot layout: serial (low 40 bits) << 24 | nc (24 bits). A fresh nonce has nc 0.
        let slot = (serial as usize) & (SLOTS - 1);
        self.slots[slot].store((((serial & 0xff_ffff_ffff) << 24) as u128) << 64, Ordering::Relaxed);
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&now.to_be_bytes());
        body[8..].copy_from_slice(&serial.to_be_bytes());
        let mut out = String::with_capacity(32 + 32);
        push_hex(&mut out, &body);
        push_hex(&mut out, &self.tag(&body));
        out
    }

    fn tag(&self, body: &[u8; 16]) -> [u8; 16] {
        let mut mac = self.keyed;
        std::hash::Hasher::write(&mut mac, body);
        mac.finish128().as_bytes()
    }

    fn open(&self, nonce: &str) -> Option<NonceParts> {
        if nonce.len() != 64 {
            return None;
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(nonce, &mut raw).ok()?;
        let mut body = [0u8; 16];
        body.copy_from_slice(&raw[..16]);
        if !bool::from(self.tag(&body).ct_eq(&raw[16..])) {
            return None;
        }
        Some(NonceParts {
            issued_at: u64::from_be_bytes(body[..8].try_into().ok()?),
            serial: u64::from_be_bytes(body[8..].try_into().ok()?),
        })
    }

    /// The `WWW-Authenticate` values to send, one per offered algorithm, in order.
    pub fn challenges(&self, now: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        self.algorithms
            .iter()
            .map(|alg| {
                let mut v = String::with_capacity(128);
                v.push_str("Digest realm=\"");
                v.push_str(&self.realm);
                v.push_str("\", nonce=\"");
                v.push_str(&nonce);
                v.push_str("\", algorithm=");
                v.push_str(alg.as_str());
                v.push_str(", qop=\"auth\"");
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// A request's fingerprint from its parts (method, URI, each header name and value, body), to
    /// pass to [`verify`](Self::verify). Keyed, so nobody can make two requests that share one.
    pub fn fingerprint<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
        let mut h = self.print_key;
        for part in parts {
            h.write(part);
            h.write_u8(0xff);
        }
        // Never 0, which marks a slot no request has used.
        h.finish() | 1
    }

    /// Checks credentials against a password; `method` is the request's method, `print` its
    /// [`fingerprint`](Self::fingerprint).
    pub fn verify(&self, creds: &DigestCredentials, method: &str, password: &str, now: u64, print: u64) -> Verdict {
        let Some(parts) = self.open(&creds.nonce) else { return Verdict::UnknownNonce };
        if creds.realm != self.realm || !self.algorithms.contains(&creds.algorithm) {
            return Verdict::UnknownNonce;
        }
        let expected = response(creds, method, password);
        if !bool::from(expected.as_bytes().ct_eq(creds.response.to_ascii_lowercase().as_bytes())) {
            return Verdict::Invalid;
        }
        if now > parts.issued_at + self.lifetime || parts.issued_at > now + 5 {
            return Verdict::Stale;
        }
        self.count(&parts, creds, print)
    }

    /// Spends the time of a real check, for an unknown user: answers must not tell users apart.
    pub fn verify_unknown(&self, creds: &DigestCredentials, method: &str) -> Verdict {
        let _ = std::hint::black_box(response(creds, method, "not a password: unknown user"));
        if self.open(&creds.nonce).is_none() || creds.realm != self.realm {
            return Verdict::UnknownNonce;
        }
        Verdict::Invalid
    }

    /// Records the nonce-count; a count that does not grow is a replay, unless the same request
    /// used it (a retransmission).
    fn count(&self, parts: &NonceParts, creds: &DigestCredentials, print: u64) -> Verdict {
        let nc = match (creds.qop.as_deref(), creds.nc) {
            (Some(_), Some(nc)) if nc > 0 && nc < (1 << 24) => nc as u64,
            (Some(_), _) => return Verdict::Invalid,
            // RFC 2069 style without qop: no count, so every reuse is a replay after the first.
            (None, _) => 1,
        };
        let index = (parts.serial as usize) & (SLOTS - 1);
        let slot = &self.slots[index];
        let serial = parts.serial & 0xff_ffff_ffff;
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let (count, seen) = ((current >> 64) as u64, current as u64);
            if current == UNUSED || count >> 24 != serial {
                return Verdict::Stale;
            }
            if count & 0xff_ffff >= nc {
                let same = count & 0xff_ffff == nc && seen == print;
                return if same { Verdict::Retransmission } else { Verdict::Replayed };
            }
            let next = ((((serial << 24) | nc) as u128) << 64) | print as u128;
            match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Verdict::Valid,
                Err(actual) => current = actual,
            }
        }
    }
}

/// The expected `response` for these credentials (lowercase hex).
pub fn response(creds: &DigestCredentials, method: &str, password: &str) -> String {
    let alg = &creds.algorithm;
    let mut ha1 = hash(alg, &[&creds.username, ":", &creds.realm, ":", password]);
    if matches!(alg, DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess | DigestAlgorithm::Sha512_256Sess) {
        let cnonce = creds.cnonce.as_deref().unwrap_or("");
        ha1 = hash(alg, &[&ha1, ":", &creds.nonce, ":", cnonce]);
    }
    let ha2 = hash(alg, &[method, ":", &creds.uri]);
    match (&creds.qop, creds.nc) {
        (Some(qop), Some(nc)) => {
            let mut nc_hex = String::with_capacity(8);
            push_hex(&mut nc_hex, &nc.to_be_bytes());
            let nc = nc_hex;
            let cnonce = creds.cnonce.as_deref().unwrap_or("");
            hash(alg, &[&ha1, ":", &creds.nonce, ":", &nc, ":", cnonce, ":", qop, ":", &ha2])
        }
        _ => hash(alg, &[&ha1, ":", &creds.nonce, ":", &ha2]),
    }
}

/// H(parts joined) in lowercase hex, for the digest's algorithm.
pub fn hash(alg: &DigestAlgorithm, parts: &[&str]) -> String {
    let mut out = String::with_capacity(64);
    match alg {
        DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => {
            let mut h = Md5::new();
            parts.iter().for_each(|p| h.update(p.as_bytes()));
            push_hex(&mut out, &h.finalize());
        }
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => {
            let mut h = Sha256::new();
            parts.iter().for_each(|p| h.update(p.as_bytes()));
            push_hex(&mut out, &h.finalize());
        }
        DigestAlgorithm::Sha512_256 | DigestAlgorithm::Sha512_256Sess => {
            let mut h = sha2::Sha512_256::new();
            parts.iter().for_each(|p| h.update(p.as_bytes()));
            push_hex(&mut out, &h.finalize());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(auth: &DigestAuthority, alg: DigestAlgorithm, nc: u32, nonce: &str) -> DigestCredentials {
        let mut c = DigestCredentials {
            username: "1001".into(),
            realm: auth.realm().into(),
            nonce: nonce.into(),
            uri: "sip:pbx.test;transport=tls".into(),
            response: Default::default(),
            algorithm: alg,
            cnonce: Some("0a4f113b".into()),
            qop: Some("auth".into()),
            nc: Some(nc),
            opaque: None,
        };
        c.response = response(&c, "REGISTER", "secret").into();
        c
    }

    #[test]
    fn rfc_7616_sha256_example_matches() {
        // RFC 7616 §3.9.1 (SHA-256, qop=auth).
        let c = DigestCredentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: Default::default(),
            algorithm: DigestAlgorithm::Sha256,
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
            qop: Some("auth".into()),
            nc: Some(1),
            opaque: None,
        };
        assert_eq!(
            response(&c, "GET", "Circle of Life"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let md5 = DigestCredentials { algorithm: DigestAlgorithm::Md5, ..c };
        assert_eq!(response(&md5, "GET", "Circle of Life"), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn valid_then_replay_then_higher_nc() {
        let a = DigestAuthority::new("pbx.test", 300, vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5]);
        let nonce = a.nonce(1000);
        for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Md5] {
            let nonce = a.nonce(1000);
            assert_eq!(a.verify(&creds(&a, alg.clone(), 1, &nonce), "REGISTER", "secret", 1001, 3), Verdict::Valid);
        }
        let c1 = creds(&a, DigestAlgorithm::Md5, 1, &nonce);
        assert_eq!(a.verify(&c1, "REGISTER", "secret", 1001, 3), Verdict::Valid);
        assert_eq!(a.verify(&c1, "REGISTER", "secret", 1002, 3), Verdict::Retransmission, "the same request again");
        assert_eq!(a.verify(&c1, "REGISTER", "secret", 1002, 5), Verdict::Replayed, "another request, same count");
        let c2 = creds(&a, DigestAlgorithm::Md5, 2, &nonce);
        assert_eq!(a.verify(&c2, "REGISTER", "secret", 1002, 3), Verdict::Valid);
        assert_eq!(a.verify(&c2, "REGISTER", "wrong", 1002, 3), Verdict::Invalid);
        let c3 = creds(&a, DigestAlgorithm::Md5, 3, &nonce);
        assert_eq!(a.verify(&c3, "REGISTER", "secret", 1000 + 301, 3), Verdict::Stale);
    }

    #[test]
    fn forged_or_foreign_nonces_are_invalid() {
        let a = DigestAuthority::new("pbx.test", 300, vec![DigestAlgorithm::Md5]);
        let mut nonce = a.nonce(1000);
        nonce.replace_range(0..1, if nonce.starts_with('0') { "1" } else { "0" });
        assert_eq!(
            a.verify(&creds(&a, DigestAlgorithm::Md5, 1, &nonce), "REGISTER", "secret", 1001, 3),
            Verdict::UnknownNonce
        );
        let other = DigestAuthority::new("pbx.test", 300, vec![DigestAlgorithm::Md5]);
        let theirs = other.nonce(1000);
        assert_eq!(
            a.verify(&creds(&a, DigestAlgorithm::Md5, 1, &theirs), "REGISTER", "secret", 1001, 3),
            Verdict::UnknownNonce
        );
        // Not offered: SHA-256 when only MD5 is configured.
        let n = a.nonce(1000);
        assert_eq!(
            a.verify(&creds(&a, DigestAlgorithm::Sha256, 1, &n), "REGISTER", "secret", 1001, 3),
            Verdict::UnknownNonce
        );
        let ch = a.challenges(5, true);
        assert_eq!(ch.len(), 1);
        assert!(ch[0].contains("stale=true") && ch[0].contains("algorithm=MD5") && ch[0].contains("qop=\"auth\""));
    }

    #[test]
    fn fingerprints_tell_requests_apart_and_are_keyed() {
        let a = DigestAuthority::new("pbx.test", 300, vec![DigestAlgorithm::Md5]);
        let req = |contact: &'static str| -> [&[u8]; 3] { [b"REGISTER", b"Contact", contact.as_bytes()] };
        assert_eq!(a.fingerprint(req("<sip:a@127.0.0.1>")), a.fingerprint(req("<sip:a@127.0.0.1>")));
        assert_ne!(a.fingerprint(req("<sip:a@127.0.0.1>")), a.fingerprint(req("<sip:a@127.0.0.2>")));
        // Part boundaries count: "ab" + "c" is not "a" + "bc".
        assert_ne!(a.fingerprint([&b"ab"[..], b"c"]), a.fingerprint([&b"a"[..], b"bc"]));
        let other = DigestAuthority::new("pbx.test", 300, vec![DigestAlgorithm::Md5]);
        assert_ne!(a.fingerprint(req("x")), other.fingerprint(req("x")), "another process, another key");
        assert_ne!(a.fingerprint(req("x")), 0);
    }
}
