//! Digest authentication of REGISTER: the two challenges (SHA-256 first), no user enumeration, replay
//! and retransmission handling, and stale nonces.

use std::time::Duration;

use super::support::digest::{self, Challenge};
use super::support::server::toml_set;
use super::support::{self, Algorithm, ReceivedMessage, SipUa};
use super::{
    aor, bindings, env, env_with, fake_contact, params, register_authed, register_with_authorization, udp, EXT,
    SIP_PASS, SIP_USER,
};

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
