//! REGISTER as `/work/shared/spec/registrar.md` (and RFC 3261 §10.3, RFC 5626, RFC 3327) says,
//! checked from the outside against a real `deskline serve`: one rule per test.
//!
//! This file holds what the tests share (the provisioned server, the two test extensions, REGISTER
//! builders and binding checks); the tests themselves are grouped by rule in `register_rules/`:
//! [`addressing`], [`digest_auth`], [`bindings`], [`methods`] and [`transports`].

mod support;

#[path = "register_rules/addressing.rs"]
mod addressing;
#[path = "register_rules/bindings.rs"]
mod bindings;
#[path = "register_rules/digest_auth.rs"]
mod digest_auth;
#[path = "register_rules/methods.rs"]
mod methods;
#[path = "register_rules/transports.rs"]
mod transports;

use serde_json::Value;
use support::digest::{self, Challenge};
use support::sip_ua::{ContactSpec, RegisterParams};
use support::{Admin, ReceivedMessage, SipUa, TestServer, DOMAIN};

const EXT: &str = "1001";
const MAC: &str = "0004f2aa1001";
const SIP_USER: &str = "dev1001";
const SIP_PASS: &str = "rules-1001-pw";

const EXT2: &str = "1002";
const MAC2: &str = "0004f2aa1002";
const SIP_USER2: &str = "dev1002";
const SIP_PASS2: &str = "rules-1002-pw";

struct Env {
    srv: TestServer,
    admin: Admin,
}

async fn provision(srv: &TestServer) -> Admin {
    let admin = srv.admin();
    assert_eq!(admin.healthz().await, 200, "GET /healthz");
    admin.create_user("alice", EXT).await;
    admin.create_device(MAC, "alice", Some(EXT), Some(SIP_USER), Some(SIP_PASS)).await;
    admin.create_user("bob", EXT2).await;
    admin.create_device(MAC2, "bob", Some(EXT2), Some(SIP_USER2), Some(SIP_PASS2)).await;
    admin
}

async fn env() -> Env {
    env_with(|_| {}).await
}

async fn env_with(edit: impl FnOnce(&mut String)) -> Env {
    let srv = TestServer::start_with(edit);
    let admin = provision(&srv).await;
    Env { srv, admin }
}

fn aor(ext: &str) -> String {
    format!("sip:{ext}@{DOMAIN}")
}

async fn udp(e: &Env) -> SipUa {
    SipUa::udp(e.srv.udp_addr()).await
}

/// A REGISTER for EXT with this exact Contact value (None: no Contact) and Expires header.
fn params(contact: Option<&str>, expires: Option<u32>) -> RegisterParams {
    let mut p = RegisterParams::new(EXT, SIP_USER, SIP_PASS);
    p.contact = match contact {
        Some(c) => ContactSpec::Raw(c.to_string()),
        None => ContactSpec::NoContact,
    };
    p.expires = expires;
    p
}

/// `<sip:1001@127.0.0.1:PORT>` (a contact nobody listens on; deskline never calls it here).
fn fake_contact(port: u16) -> String {
    format!("<sip:{EXT}@127.0.0.1:{port}>")
}

fn expires_of(resp: &ReceivedMessage, needle: &str) -> Option<u32> {
    resp.contact_expires().into_iter().find(|(u, _)| u.contains(needle)).and_then(|(_, e)| e)
}

fn assert_lists(resp: &ReceivedMessage, needle: &str, range: std::ops::RangeInclusive<u32>) {
    let e = expires_of(resp, needle)
        .unwrap_or_else(|| panic!("the {:?} does not list {needle} with ;expires=:\n{}", resp.status(), resp.raw));
    assert!(range.contains(&e), "{needle}: expires {e} not in {range:?}:\n{}", resp.raw);
}

async fn bindings(admin: &Admin, ext: &str) -> Vec<Value> {
    admin.registrations(&[("aor", &aor(ext))]).await
}

/// A REGISTER for EXT carrying `Authorization` for (`ch`, `nc`), sent once (no retry on 401).
async fn register_authed(ua: &mut SipUa, ch: &Challenge, nc: u32, headers: &[(&str, String)]) -> ReceivedMessage {
    let uri = ua.request_uri.clone();
    let auth = digest::authorization(ch, SIP_USER, SIP_PASS, "REGISTER", &uri, nc, &digest::new_cnonce());
    register_with_authorization(ua, &auth, headers).await
}

async fn register_with_authorization(
    ua: &mut SipUa,
    authorization: &str,
    headers: &[(&str, String)],
) -> ReceivedMessage {
    let uri = ua.request_uri.clone();
    let mut h: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    h.push(("Authorization".into(), authorization.to_string()));
    ua.request("REGISTER", &uri, &aor(EXT), &aor(EXT), &h, b"").await
}
