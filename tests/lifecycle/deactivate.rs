//! Row "deactivate (suspend)": every binding removed at once; a check-sync NOTIFY in each vendor's
//! flavour on the flow each phone registered from (a Poly-like phone challenges it and checks the
//! answer against its own credentials); reg-event subscribers see `terminated`/`rejected`;
//! REGISTER refused with `403 Account Suspended` + Warning; the config the phone fetches has the
//! line disabled, the suspended message and no secret; a second deactivate changes and sends
//! nothing.

use std::time::Duration;

use crate::common::*;
use crate::support::phone::{Phone, PhoneEvent};
use crate::support::{Admin, TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deactivate_removes_bindings_notifies_every_phone_and_refuses_register() {
    let layout = [
        (Vendor::Yealink, Transport::Udp, false),
        (Vendor::Cisco, Transport::Tcp, false),
        (Vendor::Snom, Transport::Tls, false),
        (Vendor::Poly, Transport::Udp, true),
        (Vendor::Poly, Transport::Tls, true),
    ];
    let mac_list: Vec<String> = layout.iter().map(|_| new_mac()).collect();
    let mac_refs: Vec<&str> = mac_list.iter().map(String::as_str).collect();
    let srv = TestServer::start_with_device_certs(&mac_refs, |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    // Another user's phone must not be touched.
    admin.create_user("bob", "1002").await;
    let bob_dev = create_device(&admin, &new_mac(), "bob", "1002", Vendor::Yealink).await;
    let bob_phone = registered_phone(&srv, &bob_dev, Transport::Udp).await;

    let mut devs = Vec::new();
    let mut phones = Vec::new();
    for ((vendor, transport, challenges), mac) in layout.iter().zip(&mac_list) {
        let d = create_device(&admin, mac, "alice", "1001", *vendor).await;
        let mut p = registered_phone(&srv, &d, *transport).await;
        if *challenges {
            p.challenge_notify = Some("PolycomSPIP".into());
        }
        devs.push(d);
        phones.push(p);
    }
    let before = bindings(&admin, "1001").await;
    assert_eq!(before.len(), layout.len(), "one binding per phone before: {before:#?}");

    let sub = RegSubscriber::subscribe(&srv, "1001", &devs[0].sip_user, &devs[0].sip_pass).await;
    let initial = sub.contacts();
    for p in &phones {
        let local = p.ua.local_hostport();
        assert!(
            initial.iter().any(|(c, _)| c.uri.contains(&local) && c.state == "active"),
            "the initial reginfo does not list {local} as active:\n{}",
            sub.describe()
        );
    }
    let sub_before = sub.notifies.len();

    // Every phone listens while the action runs (so it answers its NOTIFY at once).
    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(300))).collect();
    let sub_task = spawn_subscriber(sub, Duration::from_secs(3));
    let bob_task = spawn_notify_wait(bob_phone, Duration::from_secs(2), Duration::ZERO);

    let report = admin.deactivate("alice").await;

    // What the server holds, right after the answer.
    let now = bindings(&admin, "1001").await;
    assert!(now.is_empty(), "bindings of a deactivated user right after the answer: {now:#?}");
    check_report_shape("POST /api/v1/users/alice/deactivate", &report);
    assert_eq!(report["bindings_removed"].as_u64(), Some(layout.len() as u64), "bindings_removed: {report}");
    let all: Vec<&str> = devs.iter().map(|d| d.mac.as_str()).collect();
    assert_eq!(macs(&report, "devices_notified"), set_of(&all), "devices_notified: {report}");
    assert!(macs(&report, "devices_unreachable").is_empty(), "devices_unreachable: {report}");
    if let Some(c) = report.get("changed") {
        assert_eq!(c.as_bool(), Some(true), "changed: {report}");
    }
    assert_eq!(user_status(&admin, "alice").await, "suspended");

    // What each phone saw.
    let phones = join_phones(handles).await;
    let mut phones: Vec<_> = phones.into_iter().map(|(p, _)| p).collect();
    assert_each_phone_got_one_check_sync(&srv, &admin, &phones, &devs).await;

    // The reg-event subscriber: each contact terminated with event="rejected".
    let mut sub = sub_task.await.unwrap();
    assert!(sub.notifies.len() > sub_before, "the reg-event subscriber got no NOTIFY after the deactivation");
    assert_contacts_terminated_as_rejected(&mut sub, &phones).await;

    // Bob's phone was not touched.
    let (bob_phone, got) = bob_task.await.unwrap();
    assert!(
        got.is_none() && notify_events(&bob_phone).is_empty(),
        "another user's phone got a NOTIFY: {:#?}",
        bob_phone.events
    );
    assert_eq!(bindings(&admin, "1002").await.len(), 1, "another user's binding went");

    // REGISTER afterwards: 403 Account Suspended + Warning, and no binding.
    for (p, d) in phones.iter_mut().zip(&devs) {
        let r = p.register().await;
        assert_suspended_403(&format!("REGISTER of {} ({}) after deactivate", d.mac, p.transport), &r);
    }
    let later = bindings(&admin, "1001").await;
    assert!(later.is_empty(), "a refused REGISTER left a binding: {later:#?}");

    // The config each phone fetches: line disabled, suspended message, no secret.
    for d in &devs {
        let (status, body) = fetch_config(&srv, d).await;
        assert_suspended_config(d, status, &body, &[&d.sip_pass]);
    }

    // Idempotent: a second deactivate changes nothing and sends nothing.
    assert_second_deactivate_is_a_no_op(&admin, phones, sub).await;
    assert_eq!(user_status(&admin, "alice").await, "suspended");
}

/// Each phone accepted exactly one check-sync NOTIFY in its vendor's flavour (a Poly-like phone
/// after challenging it, with an answer that verifies against its own credentials), and no resync
/// is left pending for it.
async fn assert_each_phone_got_one_check_sync(srv: &TestServer, admin: &Admin, phones: &[Phone], devs: &[Dev]) {
    for (p, d) in phones.iter().zip(devs) {
        let n = p.notifies.first().unwrap_or_else(|| {
            panic!(
                "{} ({:?} over {}) received no check-sync NOTIFY; its events: {:#?}",
                d.mac, d.vendor, p.transport, p.events
            )
        });
        assert_check_sync(srv, p, d.vendor, n);
        assert_eq!(p.notifies.len(), 1, "{} accepted more than one NOTIFY: {:#?}", d.mac, p.notifies);
        if p.challenge_notify.is_some() {
            assert!(
                p.events.iter().any(|e| matches!(e, PhoneEvent::NotifyChallenged(_))),
                "{}: the Poly-like phone never challenged (events {:#?})",
                d.mac,
                p.events
            );
            assert!(!p.notify_auth_results.is_empty(), "{}: no Authorization came after the challenge", d.mac);
            for r in &p.notify_auth_results {
                assert!(
                    r.is_ok(),
                    "{}: the NOTIFY's Authorization does not verify with the device's credentials: {r:?}",
                    d.mac
                );
            }
        }
        assert!(!resync_pending(admin, &d.mac).await, "{}: resync_pending after a delivered NOTIFY", d.mac);
    }
}

/// The reg-event subscriber saw every phone's contact terminated with event="rejected", and
/// with no other event.
async fn assert_contacts_terminated_as_rejected(sub: &mut RegSubscriber, phones: &[Phone]) {
    for p in phones {
        let local = p.ua.local_hostport();
        assert!(
            sub.wait_contact(&local, "terminated", "rejected", Duration::from_secs(2)).await,
            "no reginfo contact {local} state=\"terminated\" event=\"rejected\"; received:\n{}",
            sub.describe()
        );
        assert!(
            !sub.contacts()[..]
                .iter()
                .any(|(c, _)| c.uri.contains(&local) && c.state == "terminated" && c.event != "rejected"),
            "contact {local} terminated with another event than rejected:\n{}",
            sub.describe()
        );
    }
}

/// A second deactivate of alice answers changed=false with nothing removed or notified, and no
/// phone nor the subscriber receives anything.
async fn assert_second_deactivate_is_a_no_op(admin: &Admin, phones: Vec<Phone>, sub: RegSubscriber) {
    let seen: Vec<usize> = phones.iter().map(|p| notify_events(p).len()).collect();
    let sub_seen = sub.notifies.len();
    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, Duration::from_millis(1200), Duration::ZERO)).collect();
    let sub_task = spawn_subscriber(sub, Duration::from_millis(1200));
    let again = admin.deactivate("alice").await;
    check_report_shape("second deactivate", &again);
    assert_eq!(again["changed"].as_bool(), Some(false), "a second deactivate must answer changed=false: {again}");
    assert_eq!(again["bindings_removed"].as_u64(), Some(0), "second deactivate: {again}");
    assert!(macs(&again, "devices_notified").is_empty(), "second deactivate notified devices: {again}");
    assert!(macs(&again, "devices_unreachable").is_empty(), "second deactivate: {again}");
    for ((p, got), n) in join_phones(handles).await.into_iter().zip(seen) {
        let all = notify_events(&p);
        assert!(
            got.is_none() && all.len() == n,
            "{}: a NOTIFY after the second (no-op) deactivate: {:#?}",
            p.mac,
            &all[n..]
        );
    }
    let sub = sub_task.await.unwrap();
    assert_eq!(sub.notifies.len(), sub_seen, "reg NOTIFY after the second (no-op) deactivate:\n{}", sub.describe());
}
