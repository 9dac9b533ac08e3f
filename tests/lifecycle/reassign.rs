//! Row "assign a device to a (new) user": the old user's bindings from that device removed (and
//! only those), new credentials, a check-sync NOTIFY; the phone fetches the new user's config and
//! registers as them; REGISTER accepted for the new user only.

use std::time::Duration;

use crate::common::*;
use crate::support::phone::PhoneEvent;
use crate::support::{TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reassign_device_moves_the_phone_to_the_new_user() {
    let m1 = new_mac();
    let srv = TestServer::start_with_device_certs(&[&m1], |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    admin.create_user("bob", "1002").await;
    let moved = create_device(&admin, &m1, "alice", "1001", Vendor::Yealink).await;
    let stays = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Cisco).await;
    let p_moved = registered_phone(&srv, &moved, Transport::Udp).await;
    let p_stays = registered_phone(&srv, &stays, Transport::Tcp).await;
    let stays_local = p_stays.ua.local_hostport();

    let h1 = spawn_notify_wait(p_moved, NOTIFY_WAIT, Duration::from_millis(200));
    let h2 = spawn_notify_wait(p_stays, Duration::from_millis(1500), Duration::ZERO);
    let report = admin.assign_device(&m1, "bob").await;

    // Server: only that device's binding on alice's AOR went.
    let alice = bindings(&admin, "1001").await;
    assert_eq!(alice.len(), 1, "alice's bindings after moving one device away: {alice:#?}");
    assert!(
        alice[0]["contact"].as_str().is_some_and(|c| c.contains(&stays_local)),
        "the wrong binding went: {alice:#?}"
    );
    assert!(bindings_of_device(&admin, &m1).await.is_empty(), "the moved device still has a binding");
    check_report_shape("PUT /api/v1/devices/{mac}/user", &report);
    assert_eq!(report["bindings_removed"].as_u64(), Some(1), "reassign: {report}");
    assert_eq!(macs(&report, "devices_notified"), set_of(&[&m1]), "reassign devices_notified: {report}");
    assert!(macs(&report, "devices_unreachable").is_empty(), "reassign devices_unreachable: {report}");
    let v = device_json(&admin, &m1).await;
    assert_eq!(
        (v["user"].as_str(), v["extension"].as_str()),
        (Some("bob"), Some("1002")),
        "device after reassign: {v}"
    );

    let (mut p_moved, _) = h1.await.unwrap();
    let (p_stays, got) = h2.await.unwrap();
    let n = p_moved
        .notifies
        .first()
        .unwrap_or_else(|| panic!("the moved phone got no NOTIFY; events {:#?}", p_moved.events));
    assert_check_sync(&srv, &p_moved, Vendor::Yealink, n);
    assert!(
        got.is_none() && notify_events(&p_stays).is_empty(),
        "the phone that stayed got a NOTIFY: {:#?}",
        p_stays.events
    );

    // New credentials, in the config of the new user's line.
    let (status, body) = fetch_config(&srv, &moved).await;
    let new_secret =
        Vendor::Yealink.secret_in(&body).unwrap_or_else(|| panic!("no secret in the reassigned config:\n{body}"));
    assert_ne!(new_secret, moved.sip_pass, "no new credentials for the new assignment");
    assert_active_config(&moved, status, &body, "1002", &new_secret);
    let (u, pw, _) = admin.sip_credentials(&m1).await;
    assert_eq!(pw, new_secret, "sip-credentials vs config");

    // REGISTER: as the old user's extension → 403 (new and old secret); as the new one → 200.
    let r = register_with_creds(&mut p_moved, &u, &new_secret).await;
    assert_eq!(r.status(), Some(403), "REGISTER as the old user's extension 1001 with the new credentials:\n{}", r.raw);
    let r = p_moved.register().await;
    assert_eq!(r.status(), Some(403), "REGISTER as 1001 with the old credentials:\n{}", r.raw);
    p_moved.ext = "1002".into();
    let r = register_with_creds(&mut p_moved, &moved.sip_user, &moved.sip_pass).await;
    assert_eq!(r.status(), Some(403), "REGISTER as 1002 with the old credentials:\n{}", r.raw);
    p_moved.credentials.username = u.clone();
    p_moved.credentials.password = new_secret.clone();
    let r = p_moved.register().await;
    assert_eq!(r.status(), Some(200), "REGISTER as the new user's extension 1002:\n{}", r.raw);
    let bob = bindings(&admin, "1002").await;
    assert!(has_contact_of(&bob, &p_moved), "no binding for bob: {bob:#?}");
    assert_eq!(bindings(&admin, "1001").await.len(), 1, "alice's remaining binding");
}

/// A Poly phone challenges the NOTIFY; it still holds the credentials of its old assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reassign_notify_is_accepted_by_a_phone_that_challenges_it() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    admin.create_user("bob", "1002").await;
    let d = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Poly).await;
    let mut p = registered_phone(&srv, &d, Transport::Udp).await;
    p.challenge_notify = Some("PolycomSPIP".into());
    let h = spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200));
    let report = admin.assign_device(&d.mac, "bob").await;
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
        "the challenging phone did not accept the reassign NOTIFY (Authorization checks {:?}, refusals {refused:?}); report {report}; {diagnosis}",
        p.notify_auth_results
    );
    assert_check_sync(&srv, &p, Vendor::Poly, &p.notifies[0]);
}
