//! Row "sign out everywhere": all bindings removed, new secrets issued, a check-sync NOTIFY,
//! reg-event subscribers get `event="deactivated"`; the old secret is refused from then on and
//! the new one (from the config fetch, equal to the admin API's) accepted.

use std::time::Duration;

use crate::common::*;
use crate::support::phone::PhoneEvent;
use crate::support::{TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_out_everywhere_rotates_secrets_and_notifies() {
    let m1 = new_mac();
    let m2 = new_mac();
    let srv = TestServer::start_with_device_certs(&[&m1, &m2], |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let devs = [
        create_device(&admin, &m1, "alice", "1001", Vendor::Yealink).await,
        create_device(&admin, &m2, "alice", "1001", Vendor::Cisco).await,
    ];
    let phones = vec![
        registered_phone(&srv, &devs[0], Transport::Udp).await,
        registered_phone(&srv, &devs[1], Transport::Tcp).await,
    ];
    let locals: Vec<String> = phones.iter().map(|p| p.ua.local_hostport()).collect();
    let sub = RegSubscriber::subscribe(&srv, "1001", &devs[0].sip_user, &devs[0].sip_pass).await;

    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200))).collect();
    let sub_task = spawn_subscriber(sub, Duration::from_secs(2));
    let report = admin.sign_out("alice").await;
    let right_after = bindings(&admin, "1001").await;
    assert!(right_after.is_empty(), "bindings right after sign-out: {right_after:#?}");
    check_report_shape("POST /api/v1/users/alice/sign-out", &report);
    assert_eq!(report["bindings_removed"].as_u64(), Some(2), "sign-out: {report}");
    assert_eq!(macs(&report, "devices_notified"), set_of(&[&m1, &m2]), "sign-out devices_notified: {report}");
    assert!(macs(&report, "devices_unreachable").is_empty(), "sign-out devices_unreachable: {report}");
    assert_eq!(user_status(&admin, "alice").await, "active", "sign-out leaves the user active");

    let mut phones: Vec<_> = join_phones(handles).await.into_iter().map(|(p, _)| p).collect();
    for (p, d) in phones.iter().zip(&devs) {
        let n =
            p.notifies.first().unwrap_or_else(|| panic!("{} got no NOTIFY on sign-out; events {:#?}", d.mac, p.events));
        assert_check_sync(&srv, p, d.vendor, n);
    }

    let mut sub = sub_task.await.unwrap();
    for local in &locals {
        assert!(
            sub.wait_contact(local, "terminated", "deactivated", Duration::from_secs(2)).await,
            "no reginfo contact {local} state=\"terminated\" event=\"deactivated\" after sign-out; received:\n{}",
            sub.describe()
        );
    }

    for (p, d) in phones.iter_mut().zip(&devs) {
        // The old secret: refused from now on.
        let r = p.register().await;
        assert_eq!(r.status(), Some(403), "REGISTER of {} with the secret from before the sign-out:\n{}", d.mac, r.raw);
        // The phone fetches its config: active, with a new secret, the one the admin API gives.
        let (status, body) = fetch_config(&srv, d).await;
        let new_secret = d
            .vendor
            .secret_in(&body)
            .unwrap_or_else(|| panic!("no secret in the config of {} after sign-out:\n{body}", d.mac));
        assert_ne!(new_secret, d.sip_pass, "{}: the secret was not rotated by sign-out", d.mac);
        assert_active_config(d, status, &body, "1001", &new_secret);
        let (user, pass, realm) = admin.sip_credentials(&d.mac).await;
        assert_eq!(
            (user.as_str(), pass.as_str()),
            (d.sip_user.as_str(), new_secret.as_str()),
            "sip-credentials of {} vs its config",
            d.mac
        );
        assert_eq!(realm, crate::support::REALM);
        p.credentials.password = new_secret;
        let r = p.register().await;
        assert_eq!(r.status(), Some(200), "REGISTER of {} with the new secret:\n{}", d.mac, r.raw);
    }
    let b = bindings(&admin, "1001").await;
    assert_eq!(b.len(), 2, "bindings after registering with the new secrets: {b:#?}");
    // And the old secret stays refused after the new one was used.
    let r = register_with_creds(&mut phones[0], &devs[0].sip_user, &devs[0].sip_pass).await;
    assert_eq!(r.status(), Some(403), "old secret after the new one was used:\n{}", r.raw);
}

/// A Poly phone challenges the check-sync NOTIFY and checks the answer against the credentials it
/// holds, which are the ones it was provisioned with before the sign-out. If the server answers
/// with the freshly rotated secret, the phone refuses the NOTIFY and never learns it must re-fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_out_notify_is_accepted_by_a_phone_that_challenges_it() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let d = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Poly).await;
    let mut p = registered_phone(&srv, &d, Transport::Udp).await;
    p.challenge_notify = Some("PolycomSPIP".into());
    let h = spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200));
    let report = admin.sign_out("alice").await;
    let (p, _) = h.await.unwrap();
    let auth: Vec<_> = p.notify_auth_results.clone();
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
        "the challenging phone did not accept the sign-out NOTIFY (its Authorization checks: {auth:?}, refusals: {refused:?}); report {report}; {diagnosis}"
    );
    assert_check_sync(&srv, &p, Vendor::Poly, &p.notifies[0]);
    assert!(auth.iter().all(|r| r.is_ok()), "NOTIFY Authorization checks: {auth:?}");
}
