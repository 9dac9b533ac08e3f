//! Addressing: a REGISTER is refused when its Request-URI or To is not this registrar's domain, or
//! when a device registers an extension that is not its own.

use super::support::Algorithm;
use super::{bindings, env, udp, EXT, EXT2, SIP_PASS, SIP_USER};

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
