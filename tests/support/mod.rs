//! Test support for deskline's integration tests: a real `deskline serve` child process
//! ([`server`]), a small admin API client ([`admin`]), an independent RFC 7616 digest
//! implementation ([`digest`]), a raw SIP user agent over UDP/TCP/TLS ([`sip_ua`]) and a simulated
//! deskphone built on it ([`phone`]).
//!
//! Nothing here uses deskline's own code: the tests check the server from the outside, the way
//! a phone or an operator would. Each test binary includes this with `mod support;`.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod digest;
pub mod message;
pub mod phone;
pub mod server;
pub mod sip_ua;

pub use admin::Admin;
pub use digest::{Algorithm, Challenge};
pub use phone::{fetch_config, Phone};
pub use server::TestServer;
pub use sip_ua::{ReceivedMessage, SipUa, Transport};

/// The SIP domain and digest realm every [`TestServer`] is configured with.
pub const DOMAIN: &str = "pbx.test";
pub const REALM: &str = "pbx.test";

/// A random lowercase hex string of `n` characters (tags, branches, cnonces, MACs).
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap()).collect()
}

/// A valid, lowercase MAC address (12 hex digits) with a Poly OUI, never the same twice in one
/// test process: a random start (so runs differ), then counting up. Drawing 24 random bits per
/// call once gave two devices of one server the same MAC (a 409 in CI, 2026-11-27).
pub fn random_mac() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    static START: OnceLock<u32> = OnceLock::new();
    static ISSUED: AtomicU32 = AtomicU32::new(0);
    let start = *START.get_or_init(|| rand::Rng::gen::<u32>(&mut rand::thread_rng()));
    let n = start.wrapping_add(ISSUED.fetch_add(1, Ordering::Relaxed)) & 0xff_ffff;
    format!("0004f2{n:06x}")
}

/// Polls `f` every 50 ms until it returns `Some`, or `timeout` passes.
pub async fn wait_until<T, F, Fut>(timeout: std::time::Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
