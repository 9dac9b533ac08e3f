//! Row "reactivate": no binding until the phones register again; a check-sync NOTIFY to each
//! device's last known flow; the config has the line enabled again (with the secret); REGISTER
//! accepted.

use std::time::Duration;

use crate::common::*;
use crate::support::phone::PhoneEvent;
use crate::support::{TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reactivate_notifies_last_known_flows_and_register_works_again() {
    let layout = [
        (Vendor::Yealink, Transport::Udp, false),
        (Vendor::Cisco, Transport::Tcp, false),
        (Vendor::Snom, Transport::Tls, false),
        (Vendor::Poly, Transport::Udp, true),
    ];
    let mac_list: Vec<String> = layout.iter().map(|_| new_mac()).collect();
    let mac_refs: Vec<&str> = mac_list.iter().map(String::as_str).collect();
    let srv = TestServer::start_with_device_certs(&mac_refs, |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
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

    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200))).collect();
    let report = admin.deactivate("alice").await;
    assert_eq!(report["bindings_removed"].as_u64(), Some(layout.len() as u64), "deactivate: {report}");
    let phones: Vec<_> = join_phones(handles).await.into_iter().map(|(p, _)| p).collect();
    let counts: Vec<usize> = phones.iter().map(|p| p.notifies.len()).collect();
    for (p, c) in phones.iter().zip(&counts) {
        assert_eq!(*c, 1, "{}: NOTIFYs after the deactivate: {:#?}", p.mac, p.events);
    }

    // Reactivate, every phone listening on the flow it registered from.
    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200))).collect();
    let report = admin.reactivate("alice").await;
    check_report_shape("POST /api/v1/users/alice/reactivate", &report);
    assert_eq!(report["bindings_removed"].as_u64(), Some(0), "reactivate removes nothing: {report}");
    let all: Vec<&str> = devs.iter().map(|d| d.mac.as_str()).collect();
    assert_eq!(macs(&report, "devices_notified"), set_of(&all), "reactivate devices_notified: {report}");
    assert!(macs(&report, "devices_unreachable").is_empty(), "reactivate devices_unreachable: {report}");
    assert_eq!(user_status(&admin, "alice").await, "active");
    let none = bindings(&admin, "1001").await;
    assert!(none.is_empty(), "bindings before the phones registered again: {none:#?}");

    let mut phones: Vec<_> = join_phones(handles).await.into_iter().map(|(p, _)| p).collect();
    for ((p, d), before) in phones.iter().zip(&devs).zip(&counts) {
        let n = p.notifies.get(*before).unwrap_or_else(|| {
            panic!(
                "{} ({:?} over {}) got no check-sync NOTIFY on reactivation; events {:#?}",
                d.mac, d.vendor, p.transport, p.events
            )
        });
        assert_check_sync(&srv, p, d.vendor, n);
        if p.challenge_notify.is_some() {
            assert!(
                p.events.iter().filter(|e| matches!(e, PhoneEvent::NotifyChallenged(_))).count() >= 2,
                "{}: not challenged again",
                d.mac
            );
            for r in &p.notify_auth_results {
                assert!(r.is_ok(), "{}: NOTIFY Authorization does not verify: {r:?}", d.mac);
            }
        }
        assert!(!resync_pending(&admin, &d.mac).await, "{}: resync_pending after a delivered NOTIFY", d.mac);
    }

    // The phone re-fetches: line enabled with its secret; then it registers.
    for (p, d) in phones.iter_mut().zip(&devs) {
        let (status, body) = fetch_config(&srv, d).await;
        assert_active_config(d, status, &body, "1001", &d.sip_pass);
        let r = p.register().await;
        assert_eq!(r.status(), Some(200), "REGISTER of {} after reactivation:\n{}", d.mac, r.raw);
    }
    let b = bindings(&admin, "1001").await;
    assert_eq!(b.len(), layout.len(), "bindings after re-registering: {b:#?}");
    for p in &phones {
        assert!(has_contact_of(&b, p), "{} not bound: {b:#?}", p.mac);
    }
}
