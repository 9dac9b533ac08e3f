//! The batch actions `POST /api/v1/users/deactivate` and `/reactivate` with `{"usernames": [...]}`:
//! each user named gets exactly the one-user semantics (every binding removed, a check-sync NOTIFY
//! to each phone on its own flow, REGISTER refused with `403 Account Suspended`; reactivated: a
//! NOTIFY and REGISTER accepted again), while a user not named keeps registering untouched. Unknown
//! names are reported one by one without failing the batch, already suspended users are reported
//! as unchanged, an empty list is a 400 JSON error, and a viewer token gets 403.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use crate::support::phone::Phone;
use crate::support::{Admin, TestServer, Transport};

const BATCH: [(&str, &str, Vendor); 4] = [
    ("alice", "1001", Vendor::Yealink),
    ("bob", "1002", Vendor::Cisco),
    ("carol", "1003", Vendor::Snom),
    ("dan", "1004", Vendor::Poly),
];

fn json_error(what: &str, got: &(u16, Value), status: u16) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert!(got.1["error"].is_string() && got.1["detail"].is_string(), "{what}: not a JSON error: {}", got.1);
}

/// A user with one device and its phone registered over UDP.
async fn user_with_phone(srv: &TestServer, admin: &Admin, user: &str, ext: &str, vendor: Vendor) -> (Dev, Phone) {
    admin.create_user(user, ext).await;
    let dev = create_device(admin, &new_mac(), user, ext, vendor).await;
    let phone = registered_phone(srv, &dev, Transport::Udp).await;
    (dev, phone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_deactivate_logs_every_named_user_out_and_leaves_the_others_alone() {
    let srv = TestServer::start();
    let admin = srv.admin();
    let mut devs = Vec::new();
    let mut phones = Vec::new();
    for (user, ext, vendor) in BATCH {
        let (d, p) = user_with_phone(&srv, &admin, user, ext, vendor).await;
        devs.push(d);
        phones.push(p);
    }
    let (_, mut other) = user_with_phone(&srv, &admin, "olga", "1009", Vendor::Yealink).await;
    admin.create_user("sam", "1008").await;
    admin.deactivate("sam").await;

    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200))).collect();
    let mut names: Vec<&str> = BATCH.iter().map(|b| b.0).collect();
    names.extend(["sam", "ghost", "alice"]);
    let (status, report) = admin.post("/api/v1/users/deactivate", &json!({ "usernames": names })).await;
    assert_eq!(status, 200, "POST /api/v1/users/deactivate: {report}");

    // The answer: counts, the unchanged user, the unknown name.
    assert_batch_report(&report);

    // What the server holds, and what each phone saw.
    for (user, ext, _) in BATCH {
        assert!(bindings(&admin, ext).await.is_empty(), "bindings of {user} right after the answer");
        assert_eq!(user_status(&admin, user).await, "suspended");
    }
    let mut phones: Vec<Phone> = join_phones(handles).await.into_iter().map(|(p, _)| p).collect();
    for (p, d) in phones.iter().zip(&devs) {
        let n =
            p.notifies.first().unwrap_or_else(|| panic!("{} ({:?}) got no NOTIFY: {:#?}", d.mac, d.vendor, p.events));
        assert_check_sync(&srv, p, d.vendor, n);
        assert_eq!(p.notifies.len(), 1, "{} accepted more than one NOTIFY", d.mac);
    }
    for (p, d) in phones.iter_mut().zip(&devs) {
        let r = p.register().await;
        assert_suspended_403(&format!("REGISTER of {} after the batch deactivate", d.mac), &r);
    }
    for (user, ext, _) in BATCH {
        assert!(bindings(&admin, ext).await.is_empty(), "a refused REGISTER of {user} left a binding");
    }

    // The user not named: no NOTIFY, still registered, refreshes accepted.
    assert_bystander_untouched(&admin, &mut other).await;

    // One audit record per user changed, and one for the batch.
    assert_audit_records(&admin).await;

    // Idempotent: the same batch again changes and sends nothing.
    let (status, again) = admin.post("/api/v1/users/deactivate", &json!({ "usernames": ["alice", "bob"] })).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["changed"].as_u64(), again["devices"].as_u64()), (Some(0), Some(0)), "{again}");
    assert_eq!(again["unchanged"], json!(["alice", "bob"]), "{again}");

    // Reactivated in a batch: a NOTIFY each, and REGISTER accepted again.
    let handles: Vec<_> =
        phones.into_iter().map(|p| spawn_notify_wait(p, NOTIFY_WAIT, Duration::from_millis(200))).collect();
    let names: Vec<&str> = BATCH.iter().map(|b| b.0).chain(["olga"]).collect();
    let (status, back) = admin.post("/api/v1/users/reactivate", &json!({ "usernames": names })).await;
    assert_eq!(status, 200, "POST /api/v1/users/reactivate: {back}");
    assert_eq!(back["changed"].as_u64(), Some(BATCH.len() as u64), "{back}");
    assert_eq!(back["unchanged"], json!(["olga"]), "already active: {back}");
    assert_eq!(back["bindings_removed"].as_u64(), Some(0), "{back}");
    for (mut p, _) in join_phones(handles).await {
        assert_eq!(p.notifies.len(), 2, "{}: no NOTIFY after the batch reactivate: {:#?}", p.mac, p.events);
        let r = p.register().await;
        assert_eq!(r.status(), Some(200), "REGISTER of {} after the batch reactivate:\n{}", p.mac, r.raw);
    }
    for (user, _, _) in BATCH {
        assert_eq!(user_status(&admin, user).await, "active");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_requests_that_are_refused() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    for path in ["/api/v1/users/deactivate", "/api/v1/users/reactivate"] {
        json_error(&format!("{path} with an empty list"), &admin.post(path, &json!({"usernames": []})).await, 400);
        json_error(&format!("{path} without usernames"), &admin.post(path, &json!({})).await, 400);
        let unknown = admin.post(path, &json!({"usernames": ["alice"], "message": "bye"})).await;
        json_error(&format!("{path} with an unknown field"), &unknown, 400);
        let too_many: Vec<String> = (0..100_001).map(|i| format!("u{i}")).collect();
        json_error(
            &format!("{path} with 100,001 names"),
            &admin.post(path, &json!({"usernames": too_many})).await,
            400,
        );
    }
    let (status, v) = admin.post("/api/v1/tokens", &json!({"name": "ro", "role": "viewer"})).await;
    assert_eq!(status, 201, "create a viewer token: {v}");
    let viewer = admin.with_token(v["token"].as_str().unwrap_or_default());
    let (status, v) = admin.post("/api/v1/tokens", &json!({"name": "op", "role": "operator"})).await;
    assert_eq!(status, 201, "create an operator token: {v}");
    let operator = admin.with_token(v["token"].as_str().unwrap_or_default());
    for (who, caller) in [("viewer", &viewer), ("operator", &operator)] {
        for path in ["/api/v1/users/deactivate", "/api/v1/users/reactivate"] {
            json_error(&format!("{who} POST {path}"), &caller.post(path, &json!({"usernames": ["alice"]})).await, 403);
        }
    }
    assert_eq!(user_status(&admin, "alice").await, "active", "a refused batch changed a user");
    // The batch paths are reserved: no user may take their names.
    for name in ["deactivate", "reactivate"] {
        let got = admin.post("/api/v1/users", &json!({"username": name, "extension": "1777"})).await;
        json_error(&format!("creating a user called {name}"), &got, 422);
    }
}

/// The batch deactivate's answer: every BATCH user changed, "sam" unchanged, "ghost" not found,
/// "alice" (named twice) counted once, every phone notified at once.
fn assert_batch_report(report: &Value) {
    assert_eq!(report["action"], "deactivate", "{report}");
    assert_eq!(report["requested"].as_u64(), Some(6), "a name given twice counts once: {report}");
    assert_eq!(report["changed"].as_u64(), Some(BATCH.len() as u64), "{report}");
    assert_eq!(report["unchanged"], json!(["sam"]), "already suspended: {report}");
    let errors = report["errors"].as_array().unwrap_or_else(|| panic!("errors is not a list: {report}"));
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!((errors[0]["username"].as_str(), errors[0]["error"].as_str()), (Some("ghost"), Some("not_found")));
    assert_eq!(report["bindings_removed"].as_u64(), Some(BATCH.len() as u64), "{report}");
    assert_eq!(report["devices"].as_u64(), Some(BATCH.len() as u64), "{report}");
    let (notified, pending) = (report["devices_notified"].as_u64(), report["devices_pending"].as_u64());
    assert_eq!((notified, pending), (Some(BATCH.len() as u64), Some(0)), "every phone answers at once: {report}");
    assert_eq!(report["devices_unreachable"].as_u64(), Some(0), "{report}");
}

/// olga, not named in the batch: no NOTIFY, her binding kept, her refreshes accepted, still active.
async fn assert_bystander_untouched(admin: &Admin, other: &mut Phone) {
    let seen = other.poll(Duration::from_millis(300)).await;
    assert!(notify_events(other).is_empty(), "the other user's phone got a NOTIFY: {seen:#?}");
    assert_eq!(bindings(admin, "1009").await.len(), 1, "the other user's binding went");
    for _ in 0..3 {
        let r = other.register().await;
        assert_eq!(r.status(), Some(200), "REGISTER of a user not in the batch:\n{}", r.raw);
    }
    assert_eq!(user_status(admin, "olga").await, "active");
}

/// One `deactivate` audit record per BATCH user, and one `deactivate_batch`.
async fn assert_audit_records(admin: &Admin) {
    let (_, audit) = admin.get("/api/v1/audit?limit=50").await;
    let entries = audit.as_array().cloned().unwrap_or_default();
    for (user, _, _) in BATCH {
        assert!(
            entries.iter().any(|e| e["action"] == "deactivate" && e["target"] == user),
            "no audit record of deactivating {user}: {audit:#}"
        );
    }
    assert!(entries.iter().any(|e| e["action"] == "deactivate_batch"), "no audit record of the batch: {audit:#}");
}
