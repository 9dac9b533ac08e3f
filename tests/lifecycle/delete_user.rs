//! Row "delete user": all bindings removed; the devices unassigned, their credentials revoked; a
//! check-sync NOTIFY; the phone fetches the "unassigned" config (no line, the message); REGISTER
//! refused with 403; and nobody without valid credentials can tell the user ever existed.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use crate::support::sip_ua::{ReceivedMessage, RegisterParams, SipUa};
use crate::support::{random_hex, Algorithm, TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_user_unassigns_devices_notifies_and_refuses() {
    let m1 = new_mac();
    let m2 = new_mac();
    let srv = TestServer::start_with_device_certs(&[&m1, &m2], |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let devs = [
        create_device(&admin, &m1, "alice", "1001", Vendor::Yealink).await,
        create_device(&admin, &m2, "alice", "1001", Vendor::Snom).await,
    ];
    let phones = vec![
        registered_phone(&srv, &devs[0], Transport::Udp).await,
        registered_phone(&srv, &devs[1], Transport::Tls).await,
    ];

    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200))).collect();
    let report = admin.delete_user("alice").await;
    let right_after = bindings(&admin, "1001").await;
    assert!(right_after.is_empty(), "bindings right after delete: {right_after:#?}");
    check_report_shape("DELETE /api/v1/users/alice", &report);
    assert_eq!(report["bindings_removed"].as_u64(), Some(2), "delete: {report}");
    assert_eq!(macs(&report, "devices_notified"), set_of(&[&m1, &m2]), "delete devices_notified: {report}");
    assert!(macs(&report, "devices_unreachable").is_empty(), "delete devices_unreachable: {report}");
    let (s, v) = admin.user("alice").await;
    assert_eq!(s, 404, "GET /api/v1/users/alice after delete: {v}");

    let mut phones: Vec<_> = join_phones(handles).await.into_iter().map(|(p, _)| p).collect();
    for (p, d) in phones.iter().zip(&devs) {
        let n =
            p.notifies.first().unwrap_or_else(|| panic!("{} got no NOTIFY on delete; events {:#?}", d.mac, p.events));
        assert_check_sync(&srv, p, d.vendor, n);
        let v = device_json(&admin, &d.mac).await;
        assert!(
            v["user"].is_null() && v["extension"].is_null(),
            "{} still assigned after its user was deleted: {v}",
            d.mac
        );
        assert_eq!(v["resync_pending"].as_bool(), Some(false), "{}: {v}", d.mac);
    }

    // The "unassigned" config: the message, no line, no secret (neither the old nor the current one).
    for d in &devs {
        let (_, current, _) = admin.sip_credentials(&d.mac).await;
        assert_ne!(current, d.sip_pass, "{}: the credentials were not revoked", d.mac);
        let (status, body) = fetch_config(&srv, d).await;
        let what = format!("config of {} after its user was deleted", d.mac);
        assert_eq!(status, 200, "{what}: {status}\n{body}");
        assert!(body.contains(UNASSIGNED_MSG), "{what}: no {UNASSIGNED_MSG:?}:\n{body}");
        assert!(!body.contains(SUSPENDED_MSG), "{what}: the suspended message:\n{body}");
        assert!(!body.contains(d.vendor.line_enabled()), "{what}: a line enabled:\n{body}");
        assert!(
            !body.contains(&d.vendor.line_extension("1001")),
            "{what}: the line still names extension 1001:\n{body}"
        );
        assert!(!body.contains(&d.sip_pass) && !body.contains(&current), "{what}: a secret:\n{body}");
        assert!(!body.contains(&d.sip_user), "{what}: the auth user:\n{body}");
        assert_eq!(d.vendor.secret_in(&body), None, "{what}: a password value:\n{body}");
    }

    // REGISTER: refused with the old secret, and with the device's current (revoked-and-reissued) one.
    for (p, d) in phones.iter_mut().zip(&devs) {
        let r = p.register().await;
        assert_eq!(
            r.status(),
            Some(403),
            "REGISTER of {} for the deleted user's extension (old secret):\n{}",
            d.mac,
            r.raw
        );
        let (u, current, _) = admin.sip_credentials(&d.mac).await;
        let r = register_with_creds(p, &u, &current).await;
        assert_eq!(r.status(), Some(403), "REGISTER of {} for 1001 with its current credentials:\n{}", d.mac, r.raw);
    }
    let b = bindings(&admin, "1001").await;
    assert!(b.is_empty(), "binding after refused REGISTERs: {b:#?}");
}

/// What someone without valid credentials can see of an answer (nonces and tags vary).
fn shape(r: &ReceivedMessage) -> (Option<u16>, Option<String>, BTreeSet<String>, Vec<String>) {
    let names: BTreeSet<String> = r
        .headers
        .iter()
        .map(|(n, _)| crate::support::sip_ua::canonical_header_name(n))
        .filter(|n| !matches!(n.as_str(), "content-length"))
        .collect();
    let challenges: Vec<String> = r
        .www_authenticate()
        .iter()
        .map(|v| {
            let c = crate::support::digest::parse_challenge(v).expect("challenge");
            let mut keys: Vec<String> = c
                .params
                .iter()
                .map(|(k, v)| if matches!(k.as_str(), "nonce" | "opaque") { k.clone() } else { format!("{k}={v}") })
                .collect();
            keys.sort();
            keys.join(",")
        })
        .collect();
    (r.status(), r.reason().map(str::to_owned), names, challenges)
}

async fn probe(srv: &TestServer, ext: &str, auth: Option<(&str, &str)>) -> ReceivedMessage {
    let mut ua = SipUa::udp(srv.udp_addr()).await;
    let mut p = RegisterParams::new(ext, "x", "x");
    p.auth = auth.map(|(u, pw)| (u.to_string(), pw.to_string()));
    p.algorithm = Algorithm::Sha256;
    ua.register_with(&p).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_user_is_indistinguishable_from_a_never_existing_one() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let d = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Yealink).await;
    let p = registered_phone(&srv, &d, Transport::Udp).await;
    let h = spawn_notify_wait(p, NOTIFY_WAIT, Duration::ZERO);
    admin.delete_user("alice").await;
    let _ = h.await.unwrap();

    // No credentials at all.
    let deleted = probe(&srv, "1001", None).await;
    let never = probe(&srv, "1999", None).await;
    assert_eq!(
        shape(&deleted),
        shape(&never),
        "unauthenticated REGISTER: deleted 1001:\n{}\nnever-existing 1999:\n{}",
        deleted.raw,
        never.raw
    );

    // Made-up credentials.
    let bogus = format!("nobody{}", random_hex(6));
    let deleted = probe(&srv, "1001", Some((&bogus, "guess"))).await;
    let never = probe(&srv, "1999", Some((&bogus, "guess"))).await;
    assert_eq!(
        shape(&deleted),
        shape(&never),
        "REGISTER with made-up credentials: deleted 1001:\n{}\nnever-existing 1999:\n{}",
        deleted.raw,
        never.raw
    );

    // The deleted device's old credentials are not valid either: same answer as made-up ones.
    let old = probe(&srv, "1001", Some((&d.sip_user, &d.sip_pass))).await;
    let never = probe(&srv, "1999", Some((&d.sip_user, &d.sip_pass))).await;
    assert_eq!(old.status(), Some(403), "old credentials for the deleted extension:\n{}", old.raw);
    assert_eq!(
        shape(&old),
        shape(&never),
        "old credentials: deleted 1001:\n{}\nnever-existing 1999:\n{}",
        old.raw,
        never.raw
    );
}
