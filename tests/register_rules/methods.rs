//! Methods other than REGISTER and SIP extensions: OPTIONS, MESSAGE (405), an unknown method (501)
//! and `Require` of an unknown extension (420).

use super::{aor, bindings, env, params, udp, EXT, EXT2};

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
