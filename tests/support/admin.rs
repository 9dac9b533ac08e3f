//! A small async client of deskline's admin API (`/api/v1`, Bearer token).
//!
//! Generic calls return `(status, json)` (`Value::Null` for an empty body, `Value::String` for a
//! body that is not JSON); the typed helpers assert the documented status and panic with the
//! server's answer otherwise.

use serde_json::{json, Value};

#[derive(Clone)]
pub struct Admin {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Admin {
    /// `base` like `http://127.0.0.1:9080` (no `/api/v1`).
    pub fn new(base: &str, token: &str) -> Admin {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .no_proxy()
            .build()
            .expect("reqwest client");
        Admin { base: base.trim_end_matches('/').to_string(), token: token.to_string(), client }
    }

    /// The same client with another token (e.g. a viewer's, or none: `""`).
    pub fn with_token(&self, token: &str) -> Admin {
        Admin { token: token.to_string(), ..self.clone() }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// Sends a request; `path` is absolute (`/api/v1/users`, `/healthz`).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self.client.request(method.clone(), self.url(path));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    /// POST without a body.
    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, None).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// The raw text of a GET (for `/metrics`, `/`).
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let mut req = self.client.get(self.url(path));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    fn expect(what: &str, want: &[u16], got: (u16, Value)) -> Value {
        assert!(want.contains(&got.0), "{what}: expected {want:?}, got {} {}", got.0, got.1);
        got.1
    }

    // ---- typed helpers ----------------------------------------------------------------------

    pub async fn healthz(&self) -> u16 {
        self.get_text("/healthz").await.0
    }

    /// `POST /api/v1/users` with a display name and no login password (hashing one costs time
    /// in debug builds; use [`create_user_with_password`](Self::create_user_with_password) for login tests).
    pub async fn create_user(&self, username: &str, extension: &str) -> Value {
        self.create_user_with_password(username, extension, None).await
    }

    /// `POST /api/v1/users` with an optional login password.
    pub async fn create_user_with_password(&self, username: &str, extension: &str, password: Option<&str>) -> Value {
        let mut body = json!({
            "username": username,
            "display_name": format!("Test {username}"),
            "extension": extension,
        });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        Self::expect(&format!("create user {username}"), &[201], self.post("/api/v1/users", &body).await)
    }

    /// `POST /api/v1/devices`; fields that are None are left out.
    pub async fn create_device(
        &self,
        mac: &str,
        user: &str,
        extension: Option<&str>,
        sip_username: Option<&str>,
        sip_password: Option<&str>,
    ) -> Value {
        let mut body = json!({ "mac": mac, "user": user });
        if let Some(e) = extension {
            body["extension"] = json!(e);
        }
        if let Some(u) = sip_username {
            body["sip_username"] = json!(u);
        }
        if let Some(p) = sip_password {
            body["sip_password"] = json!(p);
        }
        Self::expect(&format!("create device {mac}"), &[201], self.post("/api/v1/devices", &body).await)
    }

    /// `GET /api/v1/devices/{mac}/sip-credentials` → (username, password, realm).
    pub async fn sip_credentials(&self, mac: &str) -> (String, String, String) {
        let v = Self::expect(
            &format!("sip-credentials of {mac}"),
            &[200],
            self.get(&format!("/api/v1/devices/{mac}/sip-credentials")).await,
        );
        let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("sip-credentials without {k:?}: {v}")).to_string();
        (s("username"), s("password"), s("realm"))
    }

    /// `GET /api/v1/registrations` with a query like `[("aor", "sip:1001@pbx.test")]`.
    pub async fn registrations(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        let path = if qs.is_empty() {
            "/api/v1/registrations".to_string()
        } else {
            format!("/api/v1/registrations?{}", qs.join("&"))
        };
        let v = Self::expect("list registrations", &[200], self.get(&path).await);
        match v {
            Value::Array(a) => a,
            // Tolerate an envelope like {"registrations": [...]}.
            Value::Object(ref o) => o
                .values()
                .find_map(|x| x.as_array().cloned())
                .unwrap_or_else(|| panic!("registrations: not a list: {v}")),
            other => panic!("registrations: not a list: {other}"),
        }
    }

    /// Waits until `registrations(query)` has at least `n` entries; returns them.
    pub async fn wait_registrations(
        &self,
        query: &[(&str, &str)],
        n: usize,
        timeout: std::time::Duration,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.registrations(query).await;
            if r.len() >= n || tokio::time::Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn user(&self, username: &str) -> (u16, Value) {
        self.get(&format!("/api/v1/users/{username}")).await
    }
    pub async fn device(&self, mac: &str) -> (u16, Value) {
        self.get(&format!("/api/v1/devices/{mac}")).await
    }

    /// `POST /api/v1/users/{u}/deactivate` → `{"bindings_removed", "devices_notified", "devices_unreachable"}`.
    pub async fn deactivate(&self, username: &str) -> Value {
        Self::expect(
            &format!("deactivate {username}"),
            &[200],
            self.post_empty(&format!("/api/v1/users/{username}/deactivate")).await,
        )
    }
    pub async fn reactivate(&self, username: &str) -> Value {
        Self::expect(
            &format!("reactivate {username}"),
            &[200],
            self.post_empty(&format!("/api/v1/users/{username}/reactivate")).await,
        )
    }
    pub async fn sign_out(&self, username: &str) -> Value {
        Self::expect(
            &format!("sign-out {username}"),
            &[200],
            self.post_empty(&format!("/api/v1/users/{username}/sign-out")).await,
        )
    }
    pub async fn delete_user(&self, username: &str) -> Value {
        Self::expect(
            &format!("delete user {username}"),
            &[200],
            self.delete(&format!("/api/v1/users/{username}")).await,
        )
    }
    pub async fn reset_password(&self, username: &str, password: &str) {
        Self::expect(
            &format!("reset password of {username}"),
            &[200, 204],
            self.post(&format!("/api/v1/users/{username}/password"), &json!({ "password": password })).await,
        );
    }
    pub async fn resync(&self, mac: &str) -> Value {
        Self::expect(&format!("resync {mac}"), &[200], self.post_empty(&format!("/api/v1/devices/{mac}/resync")).await)
    }
    pub async fn rotate_credentials(&self, mac: &str) -> Value {
        Self::expect(
            &format!("rotate credentials of {mac}"),
            &[200],
            self.post_empty(&format!("/api/v1/devices/{mac}/rotate-credentials")).await,
        )
    }
    pub async fn assign_device(&self, mac: &str, user: &str) -> Value {
        Self::expect(
            &format!("assign {mac} to {user}"),
            &[200],
            self.put(&format!("/api/v1/devices/{mac}/user"), &json!({ "user": user })).await,
        )
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved kept).
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
