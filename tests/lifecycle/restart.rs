//! "First the new state is made durable": a kill -9 right after the deactivate answer, then a
//! restart on the same data: the user is still suspended, no binding came back, REGISTER → 403.

use std::time::Duration;

use crate::common::*;
use crate::support::{TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deactivate_survives_kill9_and_restart() {
    let mut srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    admin.create_user("bob", "1002").await;
    let d1 = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Yealink).await;
    let d2 = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Cisco).await;
    let db = create_device(&admin, &new_mac(), "bob", "1002", Vendor::Yealink).await;
    let p1 = registered_phone(&srv, &d1, Transport::Udp).await;
    let p2 = registered_phone(&srv, &d2, Transport::Udp).await;
    let pb = registered_phone(&srv, &db, Transport::Udp).await;

    let h1 = spawn_notify_wait(p1, NOTIFY_WAIT, Duration::ZERO);
    let h2 = spawn_notify_wait(p2, NOTIFY_WAIT, Duration::ZERO);
    let report = admin.deactivate("alice").await;
    srv.kill9();
    assert_eq!(report["bindings_removed"].as_u64(), Some(2), "deactivate answer: {report}");
    let mut phones: Vec<_> = join_phones(vec![h1, h2]).await.into_iter().map(|(p, _)| p).collect();

    srv.restart();
    let admin = srv.admin();
    assert_eq!(user_status(&admin, "alice").await, "suspended", "the suspension was lost across kill -9");
    let b = bindings(&admin, "1001").await;
    assert!(b.is_empty(), "bindings of the suspended user came back after kill -9 + restart: {b:#?}");
    // Bob's binding, durable before, is still there (the restart did keep the location table).
    let bob = admin.wait_registrations(&[("aor", &aor("1002"))], 1, Duration::from_secs(5)).await;
    assert!(has_contact_of(&bob, &pb), "an unrelated binding was lost across kill -9: {bob:#?}");

    for (p, d) in phones.iter_mut().zip([&d1, &d2]) {
        let r = p.register().await;
        assert_suspended_403(&format!("REGISTER of {} after kill -9 + restart", d.mac), &r);
    }
    let b = bindings(&admin, "1001").await;
    assert!(b.is_empty(), "a binding after the refused REGISTERs: {b:#?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = bindings(&admin, "1001").await;
    assert!(b.is_empty(), "a binding 500 ms after the refused REGISTERs: {b:#?}");
}
