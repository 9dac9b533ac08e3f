//! Bindings: several contacts per AOR, expiry (Contact parameter, Expires header, min and max),
//! removal with `Contact: *`, Call-ID/CSeq ordering, instance and reg-id, Path, queries and the
//! per-AOR contact limit.

use std::time::Duration;

use super::support::server::toml_set;
use super::support::sip_ua::ContactSpec;
use super::support::Algorithm;
use super::{
    assert_lists, bindings, env, env_with, fake_contact, params, register_authed, udp, EXT, EXT2, SIP_PASS, SIP_PASS2,
    SIP_USER, SIP_USER2,
};

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
