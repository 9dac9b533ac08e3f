//! "A phone that is offline when it is notified": listed in `devices_unreachable`, shown as
//! `resync_pending: true`; its next config fetch, or its next REGISTER after reactivation, clears it.

use std::time::Duration;

use crate::common::*;
use crate::support::{TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_phones_are_reported_and_pending_until_they_come_back() {
    let m_fetch = new_mac();
    let m_register = new_mac();
    let m_alive = new_mac();
    let srv = TestServer::start_with_device_certs(&[&m_fetch, &m_register, &m_alive], |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let d_fetch = create_device(&admin, &m_fetch, "alice", "1001", Vendor::Yealink).await;
    let d_register = create_device(&admin, &m_register, "alice", "1001", Vendor::Cisco).await;
    let d_alive = create_device(&admin, &m_alive, "alice", "1001", Vendor::Snom).await;
    let gone1 = registered_phone(&srv, &d_fetch, Transport::Tcp).await;
    let gone2 = registered_phone(&srv, &d_register, Transport::Tls).await;
    let alive = registered_phone(&srv, &d_alive, Transport::Udp).await;
    assert_eq!(bindings(&admin, "1001").await.len(), 3);

    // Two phones go away: their connections close.
    drop(gone1);
    drop(gone2);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let h = spawn_notify_wait(alive, NOTIFY_WAIT, Duration::ZERO);
    let report = admin.deactivate("alice").await;
    check_report_shape("deactivate with two phones gone", &report);
    assert_eq!(
        macs(&report, "devices_unreachable"),
        set_of(&[&m_fetch, &m_register]),
        "devices_unreachable must list the phones whose connections are gone: {report}"
    );
    assert_eq!(macs(&report, "devices_notified"), set_of(&[&m_alive]), "devices_notified: {report}");
    let b = bindings(&admin, "1001").await;
    assert!(b.is_empty(), "bindings after deactivate: {b:#?}");
    let (alive, _) = h.await.unwrap();
    assert!(!alive.notifies.is_empty(), "the reachable phone got no NOTIFY: {:#?}", alive.events);

    assert!(
        resync_pending(&admin, &m_fetch).await,
        "resync_pending of an unreachable device: {}",
        device_json(&admin, &m_fetch).await
    );
    assert!(
        resync_pending(&admin, &m_register).await,
        "resync_pending of an unreachable device: {}",
        device_json(&admin, &m_register).await
    );
    assert!(!resync_pending(&admin, &m_alive).await, "resync_pending of a notified device");

    // Its next config fetch (the suspended config) clears it.
    let (status, body) = fetch_config(&srv, &d_fetch).await;
    assert_suspended_config(&d_fetch, status, &body, &[&d_fetch.sip_pass]);
    assert!(
        wait_resync_pending(&admin, &m_fetch, false, Duration::from_secs(3)).await,
        "a config fetch did not clear resync_pending: {}",
        device_json(&admin, &m_fetch).await
    );
    assert!(resync_pending(&admin, &m_register).await, "another device's pending flag was cleared by a fetch");

    // The other: still unreachable at reactivation; its REGISTER afterwards clears it.
    let report = admin.reactivate("alice").await;
    assert!(macs(&report, "devices_unreachable").contains(&m_register), "reactivate: {report}");
    assert!(resync_pending(&admin, &m_register).await, "still pending after an unreachable reactivation");
    let mut back = phone_for(&srv, &d_register, Transport::Tls).await;
    let r = back.register().await;
    assert_eq!(r.status(), Some(200), "REGISTER of the returning phone after reactivation:\n{}", r.raw);
    assert!(
        wait_resync_pending(&admin, &m_register, false, Duration::from_secs(3)).await,
        "a REGISTER after reactivation did not clear resync_pending: {}",
        device_json(&admin, &m_register).await
    );
}

/// The same for a UDP phone that is gone (its socket closed): nothing answers the NOTIFY, so the
/// answer cannot list it as notified; it is listed as unreachable and shown as resync pending,
/// and its next config fetch clears that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_udp_phone_is_reported_and_pending() {
    let m_gone = new_mac();
    let srv = TestServer::start_with_device_certs(&[&m_gone], |_| {});
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let d_gone = create_device(&admin, &m_gone, "alice", "1001", Vendor::Yealink).await;
    let gone = registered_phone(&srv, &d_gone, Transport::Udp).await;
    drop(gone);

    let report = admin.deactivate("alice").await;
    check_report_shape("deactivate with a UDP phone gone", &report);
    assert_eq!(report["bindings_removed"].as_u64(), Some(1), "deactivate: {report}");
    let notified = macs(&report, "devices_notified");
    let unreachable = macs(&report, "devices_unreachable");
    let pending = resync_pending(&admin, &m_gone).await;
    assert!(
        unreachable.contains(&m_gone) && !notified.contains(&m_gone) && pending,
        "a UDP phone whose socket is closed never answers the NOTIFY: expected it in devices_unreachable \
         (not devices_notified) and resync_pending=true right after the answer; got {report}, resync_pending={pending}"
    );
    let (status, body) = fetch_config(&srv, &d_gone).await;
    assert_suspended_config(&d_gone, status, &body, &[&d_gone.sip_pass]);
    assert!(
        wait_resync_pending(&admin, &m_gone, false, Duration::from_secs(3)).await,
        "a config fetch did not clear resync_pending: {}",
        device_json(&admin, &m_gone).await
    );
}

/// Whatever the answer said, a UDP phone that never answers must end up "resync pending" once the
/// NOTIFY transaction has given up (Timer F, 32 s), so ops can see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_udp_phone_ends_up_resync_pending() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let d = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Yealink).await;
    let gone = registered_phone(&srv, &d, Transport::Udp).await;
    drop(gone);
    let report = admin.deactivate("alice").await;
    let t0 = std::time::Instant::now();
    assert!(
        wait_resync_pending(&admin, &d.mac, true, Duration::from_secs(40)).await,
        "a UDP phone that never answered the NOTIFY is still not resync_pending 40 s later: {}; deactivate answered {report}",
        device_json(&admin, &d.mac).await
    );
    eprintln!(
        "UDP phone gone: resync_pending after {:.1} s (deactivate answered {report})",
        t0.elapsed().as_secs_f64()
    );
}
