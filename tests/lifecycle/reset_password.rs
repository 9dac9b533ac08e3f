//! Row "reset password": registrations kept untouched, nothing sent to the phones, REGISTER and
//! refreshes keep working; the login password changes (old refused, new accepted).

use std::time::Duration;

use serde_json::json;

use crate::common::*;
use crate::support::{TestServer, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_password_keeps_bindings_and_sends_nothing() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user_with_password("alice", "1001", Some("old-Passw0rd")).await;
    let d1 = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Yealink).await;
    let d2 = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Poly).await;
    let p1 = registered_phone(&srv, &d1, Transport::Udp).await;
    let mut p2 = registered_phone(&srv, &d2, Transport::Tcp).await;
    p2.challenge_notify = Some("PolycomSPIP".into());

    // The login password works before.
    let (s, v) =
        admin.with_token("").post("/api/v1/login", &json!({"username": "alice", "password": "old-Passw0rd"})).await;
    assert_eq!(s, 200, "POST /api/v1/login with the current password: {v}");

    let before = bindings(&admin, "1001").await;
    assert_eq!(before.len(), 2, "two bindings before: {before:#?}");

    let h1 = spawn_notify_wait(p1, Duration::from_millis(1200), Duration::ZERO);
    let h2 = spawn_notify_wait(p2, Duration::from_millis(1200), Duration::ZERO);
    admin.reset_password("alice", "new-Passw0rd").await;
    let mut phones = join_phones(vec![h1, h2]).await;

    for (p, got) in &phones {
        assert!(
            got.is_none() && notify_events(p).is_empty(),
            "phone {} got a NOTIFY after a password reset: {:#?}",
            p.mac,
            notify_events(p)
        );
    }

    // Bindings untouched: same contacts, same registration time, same device, expiry only aged.
    let after = bindings(&admin, "1001").await;
    assert_eq!(after.len(), before.len(), "bindings after the reset: {after:#?}\nbefore: {before:#?}");
    for b in &before {
        let a = after
            .iter()
            .find(|a| a["contact"] == b["contact"])
            .unwrap_or_else(|| panic!("binding {} gone after a password reset: {after:#?}", b["contact"]));
        for k in ["aor", "device", "transport", "source", "registered_at", "user_agent"] {
            assert_eq!(a[k], b[k], "binding field {k} changed by a password reset: before {b}, after {a}");
        }
        let (eb, ea) = (b["expires_in"].as_u64().unwrap(), a["expires_in"].as_u64().unwrap());
        assert!(ea <= eb && eb - ea <= 3, "expires_in went from {eb} to {ea}: the binding was touched");
    }
    for d in [&d1, &d2] {
        assert!(!resync_pending(&admin, &d.mac).await, "{} resync_pending after a password reset", d.mac);
    }
    assert_eq!(user_status(&admin, "alice").await, "active");

    // Refreshes keep working with the same (device) credentials.
    for (p, _) in phones.iter_mut() {
        let r = p.refresh().await;
        assert_eq!(r.status(), Some(200), "refresh REGISTER of {} after the reset:\n{}", p.mac, r.raw);
        assert!(p.registered(), "refresh 200 without our contact:\n{}", r.raw);
        let r = p.register().await;
        assert_eq!(r.status(), Some(200), "new REGISTER of {} after the reset:\n{}", p.mac, r.raw);
    }

    // Login: old refused, new accepted with a token.
    let anon = admin.with_token("");
    let (s, v) = anon.post("/api/v1/login", &json!({"username": "alice", "password": "old-Passw0rd"})).await;
    assert_eq!(s, 401, "POST /api/v1/login with the old password after the reset: {v}");
    let (s, v) = anon.post("/api/v1/login", &json!({"username": "alice", "password": "new-Passw0rd"})).await;
    assert_eq!(s, 200, "POST /api/v1/login with the new password: {v}");
    let token = v["token"].as_str().unwrap_or_default();
    assert!(!token.is_empty(), "login answer without a token: {v}");
    assert!(v["expires_in"].as_u64().is_some_and(|e| e > 0), "login answer without expires_in: {v}");
    let (s, v) = admin.with_token(token).get("/api/v1/users/alice").await;
    assert_eq!(s, 200, "the login token reads its own user: {v}");
}
