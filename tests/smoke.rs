//! First end-to-end check: a real `deskline serve`, a user and a device made through the admin
//! API, REGISTER over UDP, TCP and TLS with SHA-256 and MD5 digest, and the binding listed by
//! `GET /api/v1/registrations`.

mod support;

use std::time::Duration;

use support::{Algorithm, SipUa, TestServer, Transport, DOMAIN};

const EXT: &str = "1001";
const MAC: &str = "0004f2a1b2c3";
const SIP_USER: &str = "dev1001";
const SIP_PASS: &str = "s3cret-1001-pw";

async fn server_with_device() -> (TestServer, support::Admin) {
    let srv = TestServer::start();
    let admin = srv.admin();
    assert_eq!(admin.healthz().await, 200, "GET /healthz");
    admin.create_user("alice", EXT).await;
    admin.create_device(MAC, "alice", Some(EXT), Some(SIP_USER), Some(SIP_PASS)).await;
    (srv, admin)
}

async fn register_and_check(srv: &TestServer, admin: &support::Admin, transport: Transport, alg: Algorithm) {
    let mut ua = SipUa::for_server(srv, transport).await;
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", alg).await;
    assert_eq!(resp.status(), Some(200), "REGISTER over {transport} with {alg}:\n{}", resp.raw);
    let local = ua.local_hostport();
    let (_, expires) = resp
        .contact_expires()
        .into_iter()
        .find(|(uri, _)| uri.contains(&local))
        .unwrap_or_else(|| panic!("the 200 does not list our contact {local}:\n{}", resp.raw));
    let expires = expires.unwrap_or_else(|| panic!("our contact has no ;expires= in the 200:\n{}", resp.raw));
    assert!(expires > 0 && expires <= 600, "granted expires {expires}");

    let aor = format!("sip:{EXT}@{DOMAIN}");
    let regs = admin.registrations(&[("aor", &aor)]).await;
    let binding = regs
        .iter()
        .find(|b| b["contact"].as_str().is_some_and(|c| c.contains(&local)))
        .unwrap_or_else(|| panic!("GET /api/v1/registrations?aor={aor} does not list {local}: {regs:#?}"));
    assert_eq!(binding["aor"].as_str(), Some(aor.as_str()), "{binding}");
    let t = binding["transport"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert_eq!(t, transport.param(), "transport of {binding}");
    assert_eq!(
        binding["device"].as_str().map(|d| d.to_ascii_lowercase().replace([':', '-'], "")),
        Some(MAC.into()),
        "{binding}"
    );

    // And it goes away again.
    let resp = ua.unregister(EXT, SIP_USER, SIP_PASS, alg).await;
    assert_eq!(resp.status(), Some(200), "unREGISTER over {transport}:\n{}", resp.raw);
    assert!(resp.contact_containing(&local).is_none(), "removed contact still listed:\n{}", resp.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_offers_sha256_then_md5() {
    let (srv, _admin) = server_with_device().await;
    let mut ua = SipUa::udp(srv.udp_addr()).await;
    let mut p = support::sip_ua::RegisterParams::new(EXT, SIP_USER, SIP_PASS);
    p.auth = None; // see the challenge itself
    let resp = ua.register_with(&p).await;
    assert_eq!(resp.status(), Some(401), "{}", resp.raw);
    let rows: Vec<_> =
        resp.www_authenticate().into_iter().map(|v| support::digest::parse_challenge(v).unwrap()).collect();
    assert_eq!(rows.len(), 2, "two WWW-Authenticate rows:\n{}", resp.raw);
    assert_eq!(rows[0].algorithm(), Some(Algorithm::Sha256), "SHA-256 first:\n{}", resp.raw);
    assert_eq!(rows[1].algorithm(), Some(Algorithm::Md5), "then MD5:\n{}", resp.raw);
    for r in &rows {
        assert_eq!(r.realm(), support::REALM);
        assert!(r.qop_options().iter().any(|q| q == "auth"), "qop=auth: {r:?}");
        assert!(!r.nonce().is_empty());
    }
    // rsip, an independent parser, reads the same response.
    assert!(resp.parsed.is_ok(), "rsip cannot parse the 401: {:?}\n{}", resp.parsed, resp.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_udp() {
    let (srv, admin) = server_with_device().await;
    register_and_check(&srv, &admin, Transport::Udp, Algorithm::Sha256).await;
    register_and_check(&srv, &admin, Transport::Udp, Algorithm::Md5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_tcp() {
    let (srv, admin) = server_with_device().await;
    register_and_check(&srv, &admin, Transport::Tcp, Algorithm::Sha256).await;
    register_and_check(&srv, &admin, Transport::Tcp, Algorithm::Md5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_tls() {
    let (srv, admin) = server_with_device().await;
    register_and_check(&srv, &admin, Transport::Tls, Algorithm::Sha256).await;
    register_and_check(&srv, &admin, Transport::Tls, Algorithm::Md5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused() {
    let (srv, admin) = server_with_device().await;
    let mut ua = SipUa::udp(srv.udp_addr()).await;
    let resp = ua.register(EXT, SIP_USER, "not-the-password", Some(600), "", Algorithm::Sha256).await;
    assert!(matches!(resp.status(), Some(401) | Some(403)), "wrong password:\n{}", resp.raw);
    let regs = admin.registrations(&[("aor", &format!("sip:{EXT}@{DOMAIN}"))]).await;
    assert!(regs.is_empty(), "no binding after a wrong password: {regs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_survives_kill9_and_restart() {
    let (mut srv, _admin) = server_with_device().await;
    let mut ua = SipUa::udp(srv.udp_addr()).await;
    let resp = ua.register(EXT, SIP_USER, SIP_PASS, Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);
    let before = srv.udp_addr();
    srv.kill9();
    srv.restart();
    assert_eq!(srv.udp_addr(), before, "restart keeps the ports");
    let admin = srv.admin();
    let local = ua.local_hostport();
    let regs = admin.wait_registrations(&[("aor", &format!("sip:{EXT}@{DOMAIN}"))], 1, Duration::from_secs(5)).await;
    assert!(
        regs.iter().any(|b| b["contact"].as_str().is_some_and(|c| c.contains(&local))),
        "binding lost across kill -9: {regs:#?}"
    );
}
