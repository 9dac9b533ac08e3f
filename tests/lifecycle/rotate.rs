//! Row "rotate a device's credentials": bindings kept, a new secret issued, a check-sync NOTIFY;
//! old and new both accepted during the overlap, only the new one once the phone has used it;
//! no moment unregistered.

use std::time::Duration;

use crate::common::*;
use crate::support::phone::PhoneEvent;
use crate::support::{TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_credentials_keeps_bindings_with_an_overlap() {
    let m1 = new_mac();
    let srv = TestServer::start_with_device_certs(&[&m1], |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let d = create_device(&admin, &m1, "alice", "1001", Vendor::Yealink).await;
    let p = registered_phone(&srv, &d, Transport::Tcp).await;
    let before = bindings(&admin, "1001").await;
    assert_eq!(before.len(), 1);

    let h = spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200));
    let report = admin.rotate_credentials(&m1).await;
    let after = bindings(&admin, "1001").await;
    assert_eq!(after.len(), 1, "rotation must keep the binding: {after:#?}");
    assert_eq!(after[0]["contact"], before[0]["contact"], "binding changed: {after:#?}");
    assert_eq!(after[0]["registered_at"], before[0]["registered_at"], "binding replaced: {after:#?}");
    check_report_shape("POST /api/v1/devices/{mac}/rotate-credentials", &report);
    assert_eq!(report["bindings_removed"].as_u64(), Some(0), "rotate: {report}");
    assert_eq!(macs(&report, "devices_notified"), set_of(&[&m1]), "rotate devices_notified: {report}");
    assert!(macs(&report, "devices_unreachable").is_empty(), "rotate devices_unreachable: {report}");

    let (mut p, _) = h.await.unwrap();
    let n = p.notifies.first().unwrap_or_else(|| panic!("no NOTIFY on rotation; events {:#?}", p.events));
    assert_check_sync(&srv, &p, Vendor::Yealink, n);

    let (status, body) = fetch_config(&srv, &d).await;
    let new_secret = Vendor::Yealink.secret_in(&body).unwrap_or_else(|| panic!("no secret in the config:\n{body}"));
    assert_ne!(new_secret, d.sip_pass, "the secret was not rotated");
    assert_active_config(&d, status, &body, "1001", &new_secret);
    let (_, api_secret, _) = admin.sip_credentials(&m1).await;
    assert_eq!(api_secret, new_secret, "sip-credentials vs config after rotation");

    // Overlap: the old secret still works (the phone has not used the new one yet)...
    let r = p.register().await;
    assert_eq!(r.status(), Some(200), "REGISTER with the old secret during the overlap:\n{}", r.raw);
    let r = p.register().await;
    assert_eq!(r.status(), Some(200), "a second REGISTER with the old secret during the overlap:\n{}", r.raw);
    assert_eq!(bindings(&admin, "1001").await.len(), 1, "still registered");
    // ...and the new one too.
    p.credentials.password = new_secret.clone();
    let r = p.register().await;
    assert_eq!(r.status(), Some(200), "REGISTER with the new secret:\n{}", r.raw);
    assert_eq!(bindings(&admin, "1001").await.len(), 1, "still registered with the new secret");
    // Once the new one was used, the old one is refused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = register_with_creds(&mut p, &d.sip_user, &d.sip_pass).await;
    assert_eq!(r.status(), Some(403), "REGISTER with the old secret after the new one was used:\n{}", r.raw);
    let r = p.refresh().await;
    assert_eq!(r.status(), Some(200), "refresh with the new secret:\n{}", r.raw);
    let b = bindings(&admin, "1001").await;
    assert!(has_contact_of(&b, &p), "binding after the rotation finished: {b:#?}");
    assert!(!resync_pending(&admin, &m1).await);
}

/// A Poly phone challenges the NOTIFY and checks it with the credentials it holds: the old ones,
/// since it has not fetched the new secret yet (that is what the NOTIFY is for).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_notify_is_accepted_by_a_phone_that_challenges_it() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let d = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Poly).await;
    let mut p = registered_phone(&srv, &d, Transport::Udp).await;
    p.challenge_notify = Some("PolycomSPIP".into());
    let h = spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200));
    let report = admin.rotate_credentials(&d.mac).await;
    let (p, _) = h.await.unwrap();
    let refused: Vec<_> = p
        .events
        .iter()
        .filter_map(|e| match e {
            PhoneEvent::NotifyAuthFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    let (_, new_secret, _) = admin.sip_credentials(&d.mac).await;
    let diagnosis = diagnose_notify_auth(
        &p,
        "PolycomSPIP",
        &[
            ("the secret the phone holds (before the action)", &d.sip_pass),
            ("the new secret issued by the action", &new_secret),
        ],
    );
    assert!(
        !p.notifies.is_empty(),
        "the challenging phone did not accept the rotation NOTIFY (Authorization checks {:?}, refusals {refused:?}); report {report}; {diagnosis}",
        p.notify_auth_results
    );
    assert_check_sync(&srv, &p, Vendor::Poly, &p.notifies[0]);
}
