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

/// The suspension is written before the bindings' removal, so a crash between the two leaves the
/// journal holding a suspended user's bindings. Built here by putting back the bindings journal
/// of before the deactivation: the restart removes that user's bindings and keeps the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bindings_of_a_user_suspended_before_a_crash_do_not_come_back() {
    let mut srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    admin.create_user("bob", "1002").await;
    let da = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Yealink).await;
    let db = create_device(&admin, &new_mac(), "bob", "1002", Vendor::Yealink).await;
    let mut pa = registered_phone(&srv, &da, Transport::Udp).await;
    let pb = registered_phone(&srv, &db, Transport::Udp).await;
    srv.kill9();
    let journal = srv.data_dir().join("bindings");
    let before = srv.dir().join("bindings-before-deactivation");
    copy_files(&journal, &before);

    srv.restart();
    let report = srv.admin().deactivate("alice").await;
    assert_eq!(report["bindings_removed"].as_u64(), Some(1), "deactivate answer: {report}");
    srv.kill9();
    std::fs::remove_dir_all(&journal).expect("remove the journal");
    copy_files(&before, &journal);

    srv.restart();
    let admin = srv.admin();
    let b = bindings(&admin, "1001").await;
    assert!(b.is_empty(), "bindings of the suspended user came back from the journal: {b:#?}");
    let bob = admin.wait_registrations(&[("aor", &aor("1002"))], 1, Duration::from_secs(5)).await;
    assert!(has_contact_of(&bob, &pb), "an active user's binding was lost: {bob:#?}");
    let r = pa.register().await;
    assert_suspended_403("REGISTER of the suspended user's phone after the restart", &r);
}

fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create the copy's dir");
    for entry in std::fs::read_dir(from).expect("read the journal dir") {
        let path = entry.expect("a journal entry").path();
        assert!(path.is_file(), "the bindings journal holds only files: {}", path.display());
        std::fs::copy(&path, to.join(path.file_name().unwrap())).expect("copy a journal file");
    }
}
