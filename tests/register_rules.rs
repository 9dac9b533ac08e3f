//! REGISTER as `/work/shared/spec/registrar.md` (and RFC 3261 §10.3, RFC 5626, RFC 3327) says,
//! checked from the outside against a real `deskline serve`: one rule per test.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::digest::{self, Challenge};
use support::server::toml_set;
use support::sip_ua::{ContactSpec, RegisterParams};
use support::{Admin, Algorithm, ReceivedMessage, SipUa, TestServer, Transport, DOMAIN};

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

/// The SHA-256 challenge of a fresh 401 (REGISTER without credentials).
async fn fresh_challenge(ua: &mut SipUa) -> Challenge {
    let mut p = params(None, None);
    p.auth = None;
    let resp = ua.register_with(&p).await;
    assert_eq!(resp.status(), Some(401), "unauthenticated REGISTER:\n{}", resp.raw);
    digest::pick_challenge(&resp.www_authenticate(), Algorithm::Sha256)
        .unwrap_or_else(|| panic!("no SHA-256 challenge:\n{}", resp.raw))
}

/// A fresh challenge, the Request-URI, the UA's Contact and an Authorization for nc=1 of it.
async fn first_authorization(ua: &mut SipUa) -> (Challenge, String, String, String) {
    let ch = fresh_challenge(ua).await;
    let uri = ua.request_uri.clone();
    let contact = ua.local_contact(EXT);
    let auth1 = digest::authorization(&ch, SIP_USER, SIP_PASS, "REGISTER", &uri, 1, &digest::new_cnonce());
    (ch, uri, contact, auth1)
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

// ---------------------------------------------------------------------------------------------
// Addressing
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_uri_not_ours_is_404() {
    let e = env().await;
    let mut ua = udp(&e).await;
    ua.request_uri = "sip:elsewhere.example".into();
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(404), "REGISTER sip:elsewhere.example:\n{}", resp.raw);
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_in_another_domain_is_404() {
    let e = env().await;
    let mut ua = udp(&e).await;
    ua.domain = "elsewhere.example".into(); // From/To sip:1001@elsewhere.example, R-URI still ours
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(404), "To in another domain:\n{}", resp.raw);
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_registering_another_extension_is_403() {
    let e = env().await;
    let mut ua = udp(&e).await;
    // dev1001's credentials, but the AOR of 1002.
    let resp = ua.register(EXT2, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(403), "dev1001 registering sip:1002:\n{}", resp.raw);
    assert!(bindings(&e.admin, EXT2).await.is_empty());
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Digest authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_authorization_gets_two_challenges_sha256_first() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let mut p = params(Some(&ua.local_contact(EXT)), Some(600));
    p.auth = None;
    let resp = ua.register_with(&p).await;
    assert_eq!(resp.status(), Some(401), "{}", resp.raw);
    let rows = resp.www_authenticate();
    assert_eq!(rows.len(), 2, "exactly two WWW-Authenticate rows:\n{}", resp.raw);
    let ch: Vec<Challenge> = rows.iter().map(|r| digest::parse_challenge(r).unwrap()).collect();
    assert_eq!(ch[0].algorithm(), Some(Algorithm::Sha256), "SHA-256 first:\n{}", resp.raw);
    assert_eq!(ch[1].algorithm(), Some(Algorithm::Md5), "MD5 second:\n{}", resp.raw);
    for (row, c) in rows.iter().zip(&ch) {
        assert!(c.is_digest(), "{row}");
        assert!(row.contains("qop=\"auth\""), "qop=\"auth\" (quoted, RFC 3261 qop-options) in {row}");
        assert_eq!(c.realm(), support::REALM, "{row}");
        assert!(!c.nonce().is_empty(), "{row}");
        assert!(!c.stale(), "a first challenge is not stale: {row}");
    }
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

/// Status line and header shape with per-request values blanked out.
fn shape(m: &ReceivedMessage) -> (String, Vec<String>) {
    let mut rows = Vec::new();
    for (name, value) in &m.headers {
        let n = support::sip_ua::canonical_header_name(name);
        let v = match n.as_str() {
            "via" | "from" | "to" | "call-id" | "cseq" | "date" | "content-length" => String::from("*"),
            "www-authenticate" | "proxy-authenticate" => match digest::parse_challenge(value) {
                Ok(c) => c
                    .params
                    .iter()
                    .map(|(k, v)| if k == "nonce" || k == "opaque" { format!("{k}=*") } else { format!("{k}={v}") })
                    .collect::<Vec<_>>()
                    .join(","),
                Err(_) => value.clone(),
            },
            _ => value.clone(),
        };
        rows.push(format!("{n}: {v}"));
    }
    (m.start_line.clone(), rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_look_the_same() {
    let e = env().await;
    let mut a = udp(&e).await;
    let unknown = a.register(EXT, "no-such-device", "whatever-pw", Some(600), "", Algorithm::Sha256).await;
    let mut b = udp(&e).await;
    let wrong = b.register(EXT, SIP_USER, "not-the-password", Some(600), "", Algorithm::Sha256).await;
    assert!(unknown.status().is_some_and(|s| s >= 400), "unknown user:\n{}", unknown.raw);
    assert!(wrong.status().is_some_and(|s| s >= 400), "wrong password:\n{}", wrong.raw);
    assert_eq!(
        shape(&unknown),
        shape(&wrong),
        "an unknown user and a wrong password must be answered identically\n--- unknown user ---\n{}\n--- wrong password ---\n{}",
        unknown.raw,
        wrong.raw
    );
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_authorization_is_refused_and_next_nc_accepted() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let (ch, _, contact, auth1) = first_authorization(&mut ua).await;
    let ok =
        register_with_authorization(&mut ua, &auth1, &[("Contact", contact.clone()), ("Expires", "600".into())]).await;
    assert_eq!(ok.status(), Some(200), "nc=1:\n{}", ok.raw);

    // The same Authorization (nonce, nc, cnonce, response) on a new transaction (new branch,
    // CSeq+1), trying to remove the binding.
    let replay =
        register_with_authorization(&mut ua, &auth1, &[("Contact", contact.clone()), ("Expires", "0".into())]).await;
    let st = replay.status().unwrap_or(0);
    assert!(!(200..300).contains(&st), "a replayed Authorization was accepted:\n{}", replay.raw);
    if st == 401 {
        let stale = replay.www_authenticate().iter().filter_map(|v| digest::parse_challenge(v).ok()).any(|c| c.stale());
        println!("replay answered 401, stale={stale}");
    } else {
        println!("replay answered {st}");
    }
    let regs = bindings(&e.admin, EXT).await;
    assert_eq!(regs.len(), 1, "the replay must not have removed the binding: {regs:#?}");

    // nc=2 with the same nonce: accepted.
    let next = register_authed(&mut ua, &ch, 2, &[("Contact", contact.clone()), ("Expires", "600".into())]).await;
    assert_eq!(next.status(), Some(200), "nc=2 on the same nonce:\n{}", next.raw);
}

/// Over UDP a phone resends a request whose answer it lost, byte for byte. The copy must be answered
/// like the first (200), even once the binding was refreshed by another Call-ID meanwhile; a copy
/// changed in any way (here its Contact) is a replay and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_identical_retransmission_is_answered_like_the_first_and_a_changed_copy_is_not() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let (_, uri, contact, auth1) = first_authorization(&mut ua).await;
    let headers = vec![
        ("Contact".to_string(), contact.clone()),
        ("Expires".to_string(), "600".to_string()),
        ("Authorization".to_string(), auth1),
    ];
    let (first, branch) = ua.build_request("REGISTER", &uri, &aor(EXT), &aor(EXT), &headers, b"");
    ua.send_raw(first.as_bytes()).await;
    let ok = ua.wait_response(&branch, "REGISTER").await.expect("an answer to the first copy");
    assert_eq!(ok.status(), Some(200), "first copy:\n{}", ok.raw);

    // The same contact refreshed under another Call-ID and nonce (as when a phone restarts).
    ua.new_call_id();
    let ch2 = fresh_challenge(&mut ua).await;
    let other = register_authed(&mut ua, &ch2, 1, &[("Contact", contact.clone()), ("Expires", "600".into())]).await;
    assert_eq!(other.status(), Some(200), "new Call-ID:\n{}", other.raw);

    ua.send_raw(first.as_bytes()).await;
    let again = ua.wait_response(&branch, "REGISTER").await.expect("an answer to the retransmission");
    assert_eq!(again.status(), Some(200), "a retransmission must be answered like the first copy:\n{}", again.raw);

    let hijack = first.replace(&contact, &fake_contact(9));
    assert_ne!(hijack, first);
    ua.send_raw(hijack.as_bytes()).await;
    let refused = ua.wait_response(&branch, "REGISTER").await.expect("an answer to the changed copy");
    assert_eq!(refused.status(), Some(401), "a changed copy of a used Authorization:\n{}", refused.raw);
    let regs = bindings(&e.admin, EXT).await;
    assert_eq!(regs.len(), 1, "only the phone's own contact: {regs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_nonce_gets_stale_challenge() {
    let e = env_with(|cfg| toml_set(cfg, "sip", "nonce_lifetime", "10")).await;
    let mut ua = udp(&e).await;
    let ch = fresh_challenge(&mut ua).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let contact = ua.local_contact(EXT);
    let resp = register_authed(&mut ua, &ch, 1, &[("Contact", contact.clone()), ("Expires", "600".into())]).await;
    assert_eq!(resp.status(), Some(401), "a nonce older than nonce_lifetime:\n{}", resp.raw);
    let challenges: Vec<Challenge> =
        resp.www_authenticate().iter().filter_map(|v| digest::parse_challenge(v).ok()).collect();
    assert!(
        !challenges.is_empty() && challenges.iter().all(|c| c.stale()),
        "every challenge must carry stale=true:\n{}",
        resp.raw
    );
    let fresh = challenges.iter().find(|c| c.algorithm() == Some(Algorithm::Sha256)).expect("a SHA-256 challenge");
    assert_ne!(fresh.nonce(), ch.nonce(), "a new nonce");
    let ok = register_authed(&mut ua, fresh, 1, &[("Contact", contact), ("Expires", "600".into())]).await;
    assert_eq!(ok.status(), Some(200), "with the new nonce:\n{}", ok.raw);
}

// ---------------------------------------------------------------------------------------------
// Bindings
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_contacts_per_aor() {
    let e = env().await;
    let mut ua = udp(&e).await;
    // Two values in one Contact header.
    let two = format!("{}, {}", fake_contact(5001), fake_contact(5002));
    let resp = ua.register_with(&params(Some(&two), Some(600))).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_lists(&resp, ":5001", 590..=600);
    assert_lists(&resp, ":5002", 590..=600);

    // Two Contact rows.
    let mut p = params(None, Some(600));
    p.extra_headers.push(("Contact".into(), fake_contact(5003)));
    p.extra_headers.push(("Contact".into(), fake_contact(5004)));
    let resp = ua.register_with(&p).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    for port in [5001, 5002, 5003, 5004] {
        assert_lists(&resp, &format!(":{port}"), 590..=600);
    }
    assert_eq!(resp.contacts().len(), 4, "exactly the four bindings:\n{}", resp.raw);
    assert_eq!(bindings(&e.admin, EXT).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_expires_param_wins_over_expires_header() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let c = format!("{};expires=120, {}", fake_contact(5001), fake_contact(5002));
    let resp = ua.register_with(&params(Some(&c), Some(300))).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_lists(&resp, ":5001", 110..=120);
    assert_lists(&resp, ":5002", 290..=300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_below_min_is_423_with_min_expires() {
    let e = env_with(|cfg| toml_set(cfg, "sip", "min_expires", "120")).await;
    let mut ua = udp(&e).await;
    let contact = ua.local_contact(EXT);
    let resp = ua.register_with(&params(Some(&contact), Some(30))).await;
    assert_eq!(resp.status(), Some(423), "Expires: 30 below min_expires 120:\n{}", resp.raw);
    assert_eq!(resp.header("Min-Expires").map(str::trim), Some("120"), "{}", resp.raw);
    // The same through the contact's own parameter.
    let c = format!("{contact};expires=30");
    let resp = ua.register_with(&params(Some(&c), Some(600))).await;
    assert_eq!(resp.status(), Some(423), "contact expires=30:\n{}", resp.raw);
    assert_eq!(resp.header("Min-Expires").map(str::trim), Some("120"), "{}", resp.raw);
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_above_max_is_capped() {
    let e = env_with(|cfg| {
        toml_set(cfg, "sip", "max_expires", "1800");
        toml_set(cfg, "sip", "default_expires", "1800");
    })
    .await;
    let mut ua = udp(&e).await;
    let contact = ua.local_contact(EXT);
    let resp = ua.register_with(&params(Some(&contact), Some(86400))).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_lists(&resp, &ua.local_hostport(), 1790..=1800);
    let c = format!("{};expires=99999", fake_contact(5009));
    let resp = ua.register_with(&params(Some(&c), None)).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_lists(&resp, ":5009", 1790..=1800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_with_expires_zero_removes_all_of_that_aor_only() {
    let e = env().await;
    let mut a = udp(&e).await;
    let two = format!("{}, {}", fake_contact(5001), fake_contact(5002));
    assert_eq!(a.register_with(&params(Some(&two), Some(600))).await.status(), Some(200));
    let mut b = udp(&e).await;
    let resp = b.register(EXT2, SIP_USER2, SIP_PASS2, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);

    let resp = a.unregister_all(EXT, SIP_USER, SIP_PASS, Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "Contact: *, Expires: 0:\n{}", resp.raw);
    assert!(resp.contacts().is_empty(), "no binding left to list:\n{}", resp.raw);
    assert!(bindings(&e.admin, EXT).await.is_empty(), "1001's bindings are gone");
    assert_eq!(bindings(&e.admin, EXT2).await.len(), 1, "1002's binding is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_with_nonzero_expires_is_400() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let contact = ua.local_contact(EXT);
    assert_eq!(ua.register_with(&params(Some(&contact), Some(600))).await.status(), Some(200));
    let mut p = params(None, Some(60));
    p.contact = ContactSpec::Star;
    let resp = ua.register_with(&p).await;
    assert_eq!(resp.status(), Some(400), "Contact: * with Expires: 60:\n{}", resp.raw);
    assert_eq!(bindings(&e.admin, EXT).await.len(), 1, "nothing removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_call_id_with_old_cseq_is_refused() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let contact = ua.local_contact(EXT);
    let ok = ua.register_with(&params(Some(&contact), Some(600))).await;
    assert_eq!(ok.status(), Some(200), "{}", ok.raw);
    let stored = ua.cseq;
    let (ch, mut nc) = ua.last_challenge.clone().expect("a challenge was answered");
    let before = bindings(&e.admin, EXT).await;
    assert_eq!(before.len(), 1);

    for (what, cseq) in [("lower", stored - 1), ("equal", stored)] {
        ua.cseq = cseq - 1; // build_request adds one
        nc += 1;
        let resp = register_authed(&mut ua, &ch, nc, &[("Contact", contact.clone()), ("Expires", "0".into())]).await;
        assert_eq!(resp.cseq().map(|c| c.0), Some(cseq));
        let st = resp.status().unwrap_or(0);
        assert!(
            (400..500).contains(&st),
            "same Call-ID, {what} CSeq {cseq} (stored {stored}) must be refused with a 4xx:\n{}",
            resp.raw
        );
        let now = bindings(&e.admin, EXT).await;
        assert_eq!(now.len(), 1, "binding unchanged after the {what}-CSeq REGISTER: {now:#?}");
        assert_eq!(now[0]["contact"], before[0]["contact"]);
    }
    // A higher CSeq with the same credentials works (the refusals were about the CSeq).
    ua.cseq = stored;
    nc += 1;
    let resp = register_authed(&mut ua, &ch, nc, &[("Contact", contact.clone()), ("Expires", "0".into())]).await;
    assert_eq!(resp.status(), Some(200), "higher CSeq:\n{}", resp.raw);
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_call_id_replaces_the_binding() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let contact = ua.local_contact(EXT);
    assert_eq!(ua.register_with(&params(Some(&contact), Some(600))).await.status(), Some(200));
    ua.new_call_id();
    ua.cseq = 0; // a new Call-ID may start low
    let resp = ua.register_with(&params(Some(&contact), Some(300))).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_eq!(resp.contacts().len(), 1, "one binding, replaced:\n{}", resp.raw);
    assert_lists(&resp, &ua.local_hostport(), 290..=300);
    assert_eq!(bindings(&e.admin, EXT).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_and_reg_id_replace_across_addresses() {
    let e = env().await;
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-00000000a001>\";reg-id=1";
    let mut first = udp(&e).await;
    let resp = first.register(EXT, SIP_USER, SIP_PASS, Some(600), &format!(";{inst}"), Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    // The same phone from a new address (new socket, new Call-ID).
    let mut second = udp(&e).await;
    assert_ne!(first.local_hostport(), second.local_hostport());
    let resp = second.register(EXT, SIP_USER, SIP_PASS, Some(600), &format!(";{inst}"), Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_eq!(resp.contacts().len(), 1, "one binding for the instance:\n{}", resp.raw);
    assert!(resp.contact_containing(&second.local_hostport()).is_some(), "the new address:\n{}", resp.raw);
    let regs = bindings(&e.admin, EXT).await;
    assert_eq!(regs.len(), 1, "{regs:#?}");
    assert!(regs[0]["contact"].as_str().unwrap_or("").contains(&second.local_hostport()), "{regs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_is_stored_and_returned() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let contact = ua.local_contact(EXT);
    let path = "<sip:edge1.pbx.test;lr>";
    let mut p = params(Some(&contact), Some(600));
    p.extra_headers.push(("Supported".into(), "path".into()));
    p.extra_headers.push(("Path".into(), path.into()));
    let resp = ua.register_with(&p).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_eq!(resp.header_list("path"), vec![path.to_string()], "Path in the 200:\n{}", resp.raw);
    let regs = bindings(&e.admin, EXT).await;
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0]["path"], serde_json::json!([path]), "stored Path: {regs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_without_contact_lists_bindings() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let two = format!("{}, {}", fake_contact(5001), fake_contact(5002));
    assert_eq!(ua.register_with(&params(Some(&two), Some(600))).await.status(), Some(200));
    let resp = ua.query(EXT, SIP_USER, SIP_PASS, Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    assert_lists(&resp, ":5001", 580..=600);
    assert_lists(&resp, ":5002", 580..=600);
    assert_eq!(resp.contacts().len(), 2, "{}", resp.raw);
    assert!(resp.header("Date").is_some(), "the 200 carries a Date:\n{}", resp.raw);
    assert_eq!(bindings(&e.admin, EXT).await.len(), 2, "a query changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_contacts_per_aor_drops_the_oldest() {
    let e = env_with(|cfg| toml_set(cfg, "sip", "max_contacts_per_aor", "2")).await;
    let mut ua = udp(&e).await;
    let mut last = None;
    for (i, port) in [5001u16, 5002, 5003].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(1100)).await; // distinct registration times
        }
        let resp = ua.register_with(&params(Some(&fake_contact(port)), Some(600))).await;
        assert_eq!(resp.status(), Some(200), "contact {port}:\n{}", resp.raw);
        last = Some(resp);
    }
    let resp = last.unwrap();
    assert_eq!(resp.contacts().len(), 2, "two bindings at most:\n{}", resp.raw);
    assert!(resp.contact_containing(":5001").is_none(), "the oldest (5001) is dropped:\n{}", resp.raw);
    assert!(resp.contact_containing(":5002").is_some() && resp.contact_containing(":5003").is_some(), "{}", resp.raw);
    let regs = bindings(&e.admin, EXT).await;
    assert_eq!(regs.len(), 2, "{regs:#?}");
}

// ---------------------------------------------------------------------------------------------
// Other methods and extensions
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_is_200_with_allow_accept_supported() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let resp = ua.options().await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    let allow = resp.header_list("allow");
    for m in ["REGISTER", "OPTIONS"] {
        assert!(allow.iter().any(|a| a == m), "Allow lists {m}: {allow:?}");
    }
    assert!(resp.header("Accept").is_some(), "Accept:\n{}", resp.raw);
    assert!(resp.header("Supported").is_some(), "Supported:\n{}", resp.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_is_405_with_allow() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let (from, to) = (aor(EXT), aor(EXT2));
    let resp =
        ua.request("MESSAGE", &to.clone(), &from, &to, &[("Content-Type".into(), "text/plain".into())], b"hello").await;
    assert_eq!(resp.status(), Some(405), "{}", resp.raw);
    let allow = resp.header_list("allow");
    assert!(allow.iter().any(|a| a == "REGISTER"), "Allow: {allow:?}\n{}", resp.raw);
    assert!(!allow.iter().any(|a| a == "MESSAGE"), "Allow must not list MESSAGE: {allow:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_is_501() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let uri = ua.request_uri.clone();
    let resp = ua.request("FOO", &uri, &aor(EXT), &uri, &[], b"").await;
    assert_eq!(resp.status(), Some(501), "{}", resp.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_unknown_extension_is_420() {
    let e = env().await;
    let mut ua = udp(&e).await;
    let contact = ua.local_contact(EXT);
    let mut p = params(Some(&contact), Some(600));
    p.extra_headers.push(("Require".into(), "foo".into()));
    let resp = ua.register_with(&p).await;
    assert_eq!(resp.status(), Some(420), "{}", resp.raw);
    assert_eq!(resp.header_list("unsupported"), vec!["foo".to_string()], "Unsupported: foo\n{}", resp.raw);
    assert!(bindings(&e.admin, EXT).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_registration() {
    if !support::server::ipv6_available() {
        println!("SKIPPED: no IPv6 loopback here");
        return;
    }
    let srv = TestServer::start_ipv6();
    let admin = provision(&srv).await;
    let addr = srv.udp_addr();
    assert!(addr.is_ipv6(), "{addr}");
    let mut ua = SipUa::udp(addr).await;
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "REGISTER over [::1]:\n{}", resp.raw);
    assert!(resp.contact_containing(&ua.local_hostport()).is_some(), "{}", resp.raw);
    let regs = bindings(&admin, EXT).await;
    assert_eq!(regs.len(), 1, "{regs:#?}");
    assert!(regs[0]["contact"].as_str().unwrap_or("").contains("[::1]"), "{regs:#?}");
    assert_eq!(regs[0]["source"].as_str(), Some(ua.local_hostport().as_str()), "{regs:#?}");
    // And over TCP on [::1].
    let mut t = SipUa::tcp(srv.tcp_addr()).await;
    let resp = t.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "REGISTER over TCP [::1]:\n{}", resp.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_tcp_keeps_the_flow() {
    let e = env().await;
    let mut ua = SipUa::for_server(&e.srv, Transport::Tcp).await;
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    let regs = bindings(&e.admin, EXT).await;
    assert_eq!(regs.len(), 1, "{regs:#?}");
    assert_eq!(regs[0]["transport"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("tcp"), "{regs:#?}");
    assert_eq!(
        regs[0]["source"].as_str(),
        Some(ua.local_hostport().as_str()),
        "the flow is this connection: {regs:#?}"
    );
    // The connection stays open and usable.
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "refresh on the same connection:\n{}", resp.raw);
    assert!(!ua.closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_double_crlf_ping_gets_single_crlf_pong() {
    let e = env().await;
    let mut ua = SipUa::tcp(e.srv.tcp_addr()).await;
    ua.send_keepalive().await;
    assert!(ua.wait_pong(Duration::from_secs(3)).await, "no CRLF pong to a double-CRLF ping");
    // Nothing else follows: exactly one CRLF.
    let more = ua.recv_message(Duration::from_millis(300)).await;
    assert!(more.is_none(), "unexpected message after the pong: {more:?}");
    assert_eq!(ua.pongs, 1, "a single CRLF, not a double one");
    assert!(!ua.closed, "the connection stays open");
    // And the connection still carries SIP.
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_garbage_closes_only_that_connection() {
    let e = env().await;
    let mut good = SipUa::tcp(e.srv.tcp_addr()).await;
    let resp = good.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);

    let mut bad = SipUa::tcp(e.srv.tcp_addr()).await;
    bad.send_raw(b"\x01\x02 this is no SIP at all \xff\xfe\r\n\r\n").await;
    assert!(bad.wait_closed(Duration::from_secs(3)).await, "the garbage connection is closed");

    // The other connection and its registration are untouched.
    assert!(!good.closed);
    let resp = good.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "refresh on the good connection after the garbage:\n{}", resp.raw);
    let regs = bindings(&e.admin, EXT).await;
    assert_eq!(regs.len(), 1, "{regs:#?}");
    assert_eq!(regs[0]["source"].as_str(), Some(good.local_hostport().as_str()));
    good.send_keepalive().await;
    assert!(good.wait_pong(Duration::from_secs(3)).await, "the good connection still answers pings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_udp_datagram_is_ignored() {
    let e = env().await;
    let mut ua = udp(&e).await;
    // A REGISTER padded with a huge header: 70 000 bytes, or as large as the OS lets us send.
    let build = |size: usize, local: &str| -> Vec<u8> {
        let head = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\nFrom: <sip:{EXT}@{DOMAIN}>;tag=big\r\nTo: <sip:{EXT}@{DOMAIN}>\r\nCall-ID: oversized-{}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{EXT}@{local}>\r\nX-Padding: ",
            support::random_hex(12),
            support::random_hex(12)
        );
        let tail = "\r\nContent-Length: 0\r\n\r\n";
        let pad = size.saturating_sub(head.len() + tail.len());
        let mut m = head.into_bytes();
        m.extend(std::iter::repeat_n(b'x', pad));
        m.extend_from_slice(tail.as_bytes());
        m
    };
    let local = ua.local_hostport();
    let mut sent = None;
    for size in [70_000usize, 65_507, 65_000, 60_000] {
        let m = build(size, &local);
        match ua.try_send_raw(&m).await {
            Ok(()) => {
                sent = Some(m.len());
                break;
            }
            Err(err) => println!("a {size}-byte datagram: {err}"),
        }
    }
    let size = sent.expect("could not send even a 60 000-byte datagram");
    let answer = ua.recv_message(Duration::from_millis(700)).await;
    println!("sent a {size}-byte datagram; answer: {:?}", answer.as_ref().map(|m| m.start_line.clone()));
    if size > 65_535 {
        assert!(answer.is_none(), "a datagram over 65 535 bytes must be ignored, got:\n{}", answer.unwrap().raw);
    } else if let Some(a) = &answer {
        // Within the 65 535-byte limit the server may process it; it must not accept it
        // without authentication.
        assert!(a.status().is_some_and(|s| s >= 400), "answer to the big datagram:\n{}", a.raw);
    }
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "the next REGISTER from the same socket:\n{}", resp.raw);

    // A datagram of that size whose Content-Length claims more than it holds: refused or
    // dropped, never waited for; the next REGISTER works.
    let mut m = build(size, &local);
    let text = String::from_utf8(m.clone()).unwrap();
    let fixed = text.replacen("Content-Length: 0\r\n", "Content-Length: 99\r\n", 1);
    assert_eq!(fixed.len(), m.len() + 1);
    m = fixed.into_bytes();
    m.truncate(size);
    let tail = m.len();
    m[tail - 4..].copy_from_slice(b"\r\n\r\n");
    ua.send_raw(&m).await;
    let answer = ua.recv_message(Duration::from_millis(700)).await;
    println!("short-bodied {}-byte datagram; answer: {:?}", m.len(), answer.as_ref().map(|m| m.start_line.clone()));
    if let Some(a) = &answer {
        assert_eq!(a.status(), Some(400), "a datagram shorter than its Content-Length:\n{}", a.raw);
    }
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "the REGISTER after the short-bodied datagram:\n{}", resp.raw);
}
