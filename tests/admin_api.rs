//! The admin API from the outside, against a real `deskline serve`: tokens and roles (401/403),
//! users and devices, JSON errors (400/404/409/422), secrets never shown except by
//! sip-credentials (audited), registrations after a real REGISTER with filters and paging, the
//! SSE stream, the Prometheus text of `/metrics`, the dashboard, the OpenAPI document and
//! `deskline ctl`.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Algorithm, SipUa, TestServer, Transport, DOMAIN};

/// A token of `role` made through the API with the admin token.
async fn token_of(admin: &support::Admin, name: &str, role: &str) -> String {
    let (status, v) = admin.post("/api/v1/tokens", &json!({"name": name, "role": role})).await;
    assert_eq!(status, 201, "create {role} token: {v}");
    v["token"].as_str().expect("token in the answer").to_string()
}

/// Sends a raw body (not necessarily JSON).
async fn post_raw(admin: &support::Admin, path: &str, body: &str) -> (u16, Value) {
    let resp = admin
        .client
        .post(format!("{}{path}", admin.base))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn assert_json_error(what: &str, got: &(u16, Value), status: u16) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert!(got.1["error"].is_string() && got.1["detail"].is_string(), "{what}: not a JSON error: {}", got.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles() {
    let srv = TestServer::start();
    let admin = srv.admin();
    let token_file = std::fs::read_to_string(srv.data_dir().join("admin.token")).unwrap();
    assert_eq!(token_file.trim(), srv.token());

    assert_json_error("no token", &admin.with_token("").get("/api/v1/users").await, 401);
    assert_json_error("wrong token", &admin.with_token("dlt_nope").get("/api/v1/users").await, 401);
    assert_json_error(
        "token in query off the event stream",
        &admin.with_token("").get(&format!("/api/v1/users?token={}", srv.token())).await,
        401,
    );

    let viewer = admin.with_token(&token_of(&admin, "ro", "viewer").await);
    assert_eq!(viewer.get("/api/v1/users").await.0, 200);
    assert_eq!(viewer.get("/api/v1/whoami").await.1["role"], "viewer");
    let write = viewer.post("/api/v1/users", &json!({"username": "eve", "extension": "1999"})).await;
    assert_json_error("viewer creating a user", &write, 403);
    assert_json_error("viewer deactivating", &viewer.post_empty("/api/v1/users/x/deactivate").await, 403);
    assert_json_error(
        "viewer minting tokens",
        &viewer.post("/api/v1/tokens", &json!({"name": "x", "role": "admin"})).await,
        403,
    );

    let operator = admin.with_token(&token_of(&admin, "ops", "operator").await);
    assert_json_error(
        "operator creating a user",
        &operator.post("/api/v1/users", &json!({"username": "eve"})).await,
        403,
    );
    assert_json_error(
        "operator resync of an unknown device",
        &operator.post_empty("/api/v1/devices/0004f2000000/resync").await,
        404,
    );

    assert_eq!(admin.post("/api/v1/tokens", &json!({"name": "ro", "role": "viewer"})).await.0, 409);
    let (status, list) = admin.get("/api/v1/tokens").await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains(srv.token()), "token values are never listed: {list}");
    assert_eq!(admin.delete("/api/v1/tokens/ro").await.0, 204);
    assert_eq!(viewer.get("/api/v1/users").await.0, 401, "a revoked token is refused");

    // Open endpoints.
    let open = admin.with_token("");
    assert_eq!(open.healthz().await, 200);
    let (status, doc) = open.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/registrations"]["get"].is_object(), "{doc}");
    let (status, page) = open.get_text("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"registrations\"") && page.contains("id=\"token\""), "dashboard ids");
    assert_json_error("unknown path", &open.get("/api/v1/nothing").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_devices_and_json_errors() {
    let srv = TestServer::start();
    let admin = srv.admin();
    let alice = admin.create_user_with_password("alice", "1001", Some("Login-alice-Pw1!")).await;
    assert_eq!(alice["status"], "active");
    assert_eq!(alice["extensions"], json!(["1001"]));
    assert!(alice.get("password_hash").is_none() && !alice.to_string().contains("argon2"), "{alice}");

    assert_json_error("duplicate user", &admin.post("/api/v1/users", &json!({"username": "alice"})).await, 409);
    assert_json_error(
        "taken extension",
        &admin.post("/api/v1/users", &json!({"username": "al2", "extension": "1001"})).await,
        409,
    );
    assert_json_error("not JSON", &post_raw(&admin, "/api/v1/users", "{username:").await, 400);
    assert_json_error("missing field", &post_raw(&admin, "/api/v1/users", "{\"display_name\": \"x\"}").await, 400);
    assert_json_error("bad MAC", &admin.post("/api/v1/devices", &json!({"mac": "zz", "user": "alice"})).await, 422);
    assert_json_error("unknown user", &admin.user("nobody").await, 404);
    assert_json_error(
        "device of an unknown user",
        &admin.post("/api/v1/devices", &json!({"mac": "0004f2000001", "user": "bob"})).await,
        404,
    );

    let mac = "0004f2a1b2c3";
    let device = admin.create_device("00:04:F2:A1:B2:C3", "alice", None, None, None).await;
    assert_eq!(device["mac"], mac);
    assert_eq!(device["extension"], "1001");
    assert_eq!(device["registered"], false);
    let text = device.to_string();
    assert!(!text.contains("password") && !text.contains("secret"), "no secret in {text}");
    assert_json_error("duplicate device", &admin.post("/api/v1/devices", &json!({"mac": mac})).await, 409);

    let (_, user) = admin.user("alice").await;
    assert_eq!(user["devices"], json!([mac]));
    let (status, list) = admin.get("/api/v1/devices?user=alice&registered=false").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(admin.get("/api/v1/devices?registered=true").await.1, json!([]));
    assert_json_error("bad query", &admin.get("/api/v1/devices?registered=maybe").await, 400);

    let viewer = admin.with_token(&token_of(&admin, "ro", "viewer").await);
    assert_json_error(
        "viewer reading secrets",
        &viewer.get(&format!("/api/v1/devices/{mac}/sip-credentials")).await,
        403,
    );
    let (username, password, realm) = admin.sip_credentials(mac).await;
    assert_eq!(realm, support::REALM);
    assert!(!username.is_empty() && password.len() >= 16);

    let (_, audit) = admin.get("/api/v1/audit?limit=20").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["create_user", "create_device", "read_sip_credentials"] {
        assert!(actions.contains(&a), "{a} not audited: {audit}");
    }
    assert!(!audit.to_string().contains(&password), "the audit log holds no secret");
    assert_eq!(audit[0]["actor"], "admin");

    // Self-service login.
    let (status, login) =
        admin.with_token("").post("/api/v1/login", &json!({"username": "alice", "password": "Login-alice-Pw1!"})).await;
    assert_eq!(status, 200, "{login}");
    let me = admin.with_token(login["token"].as_str().unwrap());
    assert_eq!(me.user("alice").await.0, 200);
    assert_eq!(me.get("/api/v1/users").await.0, 403);
    let bad =
        admin.with_token("").post("/api/v1/login", &json!({"username": "alice", "password": "wrong-pw-123"})).await;
    assert_json_error("wrong password", &bad, 401);
    let nobody =
        admin.with_token("").post("/api/v1/login", &json!({"username": "nobody", "password": "wrong-pw-123"})).await;
    assert_eq!(nobody.1, bad.1, "an unknown user looks like a wrong password");

    assert_eq!(admin.delete(&format!("/api/v1/devices/{mac}")).await.0, 200);
    assert_json_error("deleted device", &admin.device(mac).await, 404);
}

/// Reads SSE events from a streaming response until `want` is seen (or 10 s pass).
async fn wait_for_sse(resp: &mut reqwest::Response, want: &str) -> Option<Value> {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let kind = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim);
            let data = block.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
            if kind == Some(want) {
                return data.and_then(|d| serde_json::from_str(d).ok());
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.ok()?.ok()??;
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_listing_and_event_stream() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let mac = "0004f2c0ffee";
    admin.create_device(mac, "alice", Some("1001"), Some("dev1001"), Some("s3cret-1001-pw")).await;

    // The event stream, with the token in the query as a browser's EventSource sends it.
    let url = format!("{}/api/v1/events?token={}", srv.admin_url(), srv.token());
    let mut sse = admin.client.get(url).send().await.unwrap();
    assert_eq!(sse.status().as_u16(), 200);
    assert!(sse.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));

    let mut ua = SipUa::for_server(&srv, Transport::Udp).await;
    let resp = ua.register("1001", "dev1001", "s3cret-1001-pw", Some(600), "", Algorithm::Sha256).await;
    assert_eq!(resp.status(), Some(200), "{}", resp.raw);

    let event = wait_for_sse(&mut sse, "registered").await.expect("a `registered` event");
    assert_eq!(event["aor"], format!("sip:1001@{DOMAIN}"), "{event}");
    assert!(event["at"].is_string(), "{event}");

    let aor = format!("sip:1001@{DOMAIN}");
    for query in
        [vec![("mac", "00:04:F2:C0:FF:EE")], vec![("user", "alice")], vec![("aor", "1001")], vec![("transport", "udp")]]
    {
        let regs = admin.registrations(&query).await;
        assert_eq!(regs.len(), 1, "{query:?}: {regs:?}");
        assert_eq!(regs[0]["aor"], aor);
        assert_eq!(regs[0]["device"], mac);
        assert!(regs[0]["expires_in"].as_u64().unwrap() <= 600);
    }
    assert!(admin.registrations(&[("transport", "tls")]).await.is_empty());
    assert!(admin.registrations(&[("user", "bob")]).await.is_empty());
    assert_eq!(admin.registrations(&[("limit", "0")]).await.len(), 0);
    let resp = admin
        .client
        .get(format!("{}/api/v1/registrations?limit=0", srv.admin_url()))
        .bearer_auth(srv.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-total-count"], "1", "the total before paging");

    let (_, device) = admin.device(mac).await;
    assert_eq!(device["registered"], true, "{device}");
    let (_, stats) = admin.get("/api/v1/stats").await;
    assert_eq!(stats["devices_registered"], 1, "{stats}");
    assert_eq!(stats["bindings_by_transport"]["udp"], 1, "{stats}");
    assert_eq!(stats["users_active"], 1, "{stats}");

    let report = admin.deactivate("alice").await;
    assert_eq!(report["bindings_removed"], 1, "{report}");
    assert!(report["devices_notified"].is_array() && report["devices_unreachable"].is_array(), "{report}");
    assert!(wait_for_sse(&mut sse, "user_deactivated").await.is_some());
    assert!(admin.registrations(&[]).await.is_empty());
    let (_, stats) = admin.get("/api/v1/stats").await;
    assert_eq!(stats["bindings_total"], 0, "{stats}");
    assert_eq!(stats["devices_registered"], 0, "{stats}");
    assert_eq!(stats["devices_unregistered"], stats["devices_total"], "{stats}");
    assert_eq!((stats["users_active"].as_u64(), stats["users_suspended"].as_u64()), (Some(0), Some(1)), "{stats}");
    let (_, stats) = admin.get("/api/v1/stats").await;
    assert_eq!(stats["users_suspended"], 1, "{stats}");
}

/// Every line of a Prometheus/OpenMetrics text exposition is a comment of a known kind, or a
/// sample `name{labels} value`.
fn check_prometheus_text(text: &str) -> Result<usize, String> {
    let mut samples = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("# ") {
            let kind = rest.split(' ').next().unwrap_or("");
            match kind {
                "HELP" | "TYPE" | "UNIT" => {
                    let name = rest.split(' ').nth(1).ok_or(format!("line {n}: {kind} without a name"))?;
                    if !name.starts_with("deskline_") {
                        return Err(format!("line {n}: metric {name} is not deskline_*"));
                    }
                }
                "EOF" if n + 1 == lines.len() => {}
                _ => return Err(format!("line {n}: unknown comment {line:?}")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or(format!("line {n}: no value: {line:?}"))?;
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        let valid_name =
            name.starts_with("deskline_") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !valid_name {
            return Err(format!("line {n}: bad metric name {name:?}"));
        }
        if name_end < series.len() && !(series.ends_with('}')) {
            return Err(format!("line {n}: unclosed labels: {line:?}"));
        }
        let ok = value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value);
        if !ok {
            return Err(format!("line {n}: bad value {value:?}"));
        }
        samples += 1;
    }
    if lines.last() != Some(&"# EOF") {
        return Err("no # EOF at the end".into());
    }
    Ok(samples)
}

#[test]
fn the_prometheus_checker_refuses_bad_text() {
    assert!(check_prometheus_text("# HELP deskline_x X\n# TYPE deskline_x counter\ndeskline_x_total 1\n# EOF").is_ok());
    assert!(check_prometheus_text("deskline_x 1\n").is_err(), "no EOF");
    assert!(check_prometheus_text("other_x 1\n# EOF").is_err());
    assert!(check_prometheus_text("deskline_x one\n# EOF").is_err());
    assert!(check_prometheus_text("deskline_x{a=\"1\" 1\n# EOF").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_prometheus_text_without_a_token_on_loopback() {
    let srv = TestServer::start();
    let (status, text) = srv.admin().with_token("").get_text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    let samples = check_prometheus_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(samples > 0, "{text}");
    assert!(text.contains("# TYPE deskline_registrations gauge"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_lists_and_acts() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    admin.create_device("0004f2a1b2c3", "alice", None, None, None).await;
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(support::server::deskline_bin())
            .arg("ctl")
            .args(["--url", &srv.admin_url(), "--data-dir", &srv.data_dir().to_string_lossy()])
            .args(args)
            .env_remove("DESKLINE_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = ctl(&["users"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("USERNAME") && out.contains("alice") && out.contains("active"), "{out}");
    let (code, out, _) = ctl(&["devices", "--json"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["mac"], "0004f2a1b2c3");
    // `events --follow` prints the stream: one event, then stop (--count 1).
    let follower = std::process::Command::new(support::server::deskline_bin())
        .args([
            "ctl",
            "--url",
            &srv.admin_url(),
            "--token",
            srv.token(),
            "events",
            "--follow",
            "--count",
            "1",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = ctl(&["deactivate", "alice"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("deactivate alice: 0 bindings removed"), "{out}");
    let followed = follower.wait_with_output().unwrap();
    let line: Value = serde_json::from_slice(&followed.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", followed.stdout));
    assert_eq!(line["kind"], "user_deactivated", "{line}");
    let (code, _, err) = ctl(&["deactivate", "nobody"]);
    assert_eq!(code, Some(1));
    assert_eq!(err.trim(), "deskline ctl: user nobody not found");
    let (code, _, err) = ctl(&["--token", "dlt_wrong", "users"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("deskline ctl: ") && err.contains("not valid"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_import_is_all_or_nothing() {
    let srv = TestServer::start();
    let admin = srv.admin();
    let body = json!({
        "users": [{"username": "imp1", "extension": "3001"}, {"username": "imp2", "extension": "3002"}],
        "devices": [{"mac": "020000000bb9", "user": "imp1", "sip_username": "3001", "sip_password": "pw3001"},
                    {"mac": "020000000bba", "user": "imp2"}],
    });
    let (status, answer) = admin.post("/api/v1/import", &body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer, json!({"users_created": 2, "devices_created": 2}));
    let (_, device) = admin.get("/api/v1/devices/020000000bba").await;
    assert_eq!((device["user"].as_str(), device["extension"].as_str()), (Some("imp2"), Some("3002")));

    let bad = json!({
        "users": [{"username": "imp3", "extension": "3003"}],
        "devices": [{"mac": "020000000bbb", "user": "imp3"}, {"mac": "020000000bb9", "user": "imp3"}],
    });
    let got = admin.post("/api/v1/import", &bad).await;
    assert_json_error("device MAC already imported", &got, 409);
    assert!(got.1["detail"].as_str().unwrap().starts_with("devices[1]: "), "{}", got.1);
    assert_json_error("nothing of a refused import is kept", &admin.user("imp3").await, 404);
    let got = admin.post("/api/v1/import", &json!({"devices": [{"mac": "020000000bbc", "user": "ghost"}]})).await;
    assert_json_error("unknown user", &got, 422);

    let viewer = token_of(&admin, "imp-viewer", "viewer").await;
    let resp = admin
        .client
        .post(format!("{}/api/v1/import", admin.base))
        .bearer_auth(viewer)
        .json(&json!({"users": [{"username": "imp4"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}
