//! The SIP torture corpora on the wire against a real `deskline serve`.
//!
//! Every message of `tests/data/sip-torture/rfc4475/*.dat`, `rfc5118/wire/*.dat` and
//! `variants/*.dat` is sent over UDP (top Via sent-by rewritten to the test socket, `received` /
//! `maddr` in the top Via removed, so no answer can leave loopback) and over TCP (a fresh
//! connection each, bytes unchanged); the answer is checked against the table below, condensed from
//! `tests/data/sip-torture/MANIFEST.md`. After every message an authenticated REGISTER over UDP
//! must still get its 200.
//!
//! The server is configured with `aliases = ["example.com", "2001:db8::10"]`, so that the
//! corpus's REGISTERs (addressed to `sip:example.com` and `sip:[2001:db8::10]`) reach the registrar
//! proper (401 challenge, 400 for a non-SIP To) instead of stopping at "domain not served here";
//! and with `idle_timeout = 3` so that a TCP message that never completes (clerr) is closed within
//! the test's patience.
//!
//! `protos_c07_sip` sends every PROTOS c07-sip sample (`protos/*.sip`, with its teardown) over UDP
//! and TCP: no crash, no hang, registrations keep working.
//!
//! This file holds the server set-up and the helpers every test uses; the rest is in
//! `torture_wire/`: the expectation table ([`manifest`]), the top-Via rewrite ([`via`]), sending one
//! message and judging what came back ([`observe`]), the corpus test ([`corpus`]) and the PROTOS
//! test ([`protos`]).

mod support;

#[path = "torture_wire/corpus.rs"]
mod corpus;
#[path = "torture_wire/manifest.rs"]
mod manifest;
#[path = "torture_wire/observe.rs"]
mod observe;
#[path = "torture_wire/protos.rs"]
mod protos;
#[path = "torture_wire/via.rs"]
mod via;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::server::toml_set;
use support::{Algorithm, ReceivedMessage, SipUa, TestServer};

const EXT: &str = "1001";
const MAC: &str = "0004f2c0ffee";
const SIP_USER: &str = "dev1001";
const SIP_PASS: &str = "torture-1001-pw";
/// The server's `[sip] idle_timeout` in these tests (seconds).
const IDLE_TIMEOUT: u64 = 3;

/// How long a "no answer" is waited for.
const NO_ANSWER_WAIT: Duration = Duration::from_millis(300);
/// How long an answer is waited for.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sip-torture")
}

/// Collects final responses until `first_wait` passes without the first one, then `more_wait`
/// for further ones.
async fn collect(ua: &mut SipUa, first_wait: Duration, more_wait: Duration) -> Vec<ReceivedMessage> {
    let mut out = Vec::new();
    let mut wait = first_wait;
    while let Some(m) = ua.recv_message(wait).await {
        if m.status().is_some_and(|s| s < 200) {
            continue;
        }
        out.push(m);
        wait = more_wait;
    }
    out
}

/// An authenticated REGISTER over UDP must get its 200 (the server still serves).
async fn assert_still_serving(reg: &mut SipUa, after: &str) {
    let resp = reg.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "the authenticated REGISTER after {after} failed:\n{}", resp.raw);
}

async fn torture_server() -> TestServer {
    let srv = TestServer::start_with(|cfg| {
        toml_set(cfg, "sip", "aliases", r#"["example.com", "2001:db8::10"]"#);
        toml_set(cfg, "sip", "idle_timeout", &IDLE_TIMEOUT.to_string());
    });
    let admin = srv.admin();
    admin.create_user("alice", EXT).await;
    admin.create_device(MAC, "alice", Some(EXT), Some(SIP_USER), Some(SIP_PASS)).await;
    srv
}
