//! A simulated deskphone for lifecycle tests: registers with its device credentials, refreshes,
//! answers OPTIONS with 200 and NOTIFY (check-sync / resync) with 200 and records them, can
//! challenge a NOTIFY with 401 first like a Poly phone (and then checks the server's
//! Authorization against its own device credentials), and can re-fetch its config over HTTPS
//! when told to.
//!
//! ```ignore
//! let mut phone = Phone::new(&srv, &mac, "1001", Transport::Tls, "dev1001", "secret").await;
//! assert_eq!(phone.register().await.status(), Some(200));
//! admin.deactivate("alice").await;
//! let notify = phone.wait_for_notify(Duration::from_secs(5)).await.expect("check-sync");
//! assert_eq!(phone.register().await.status(), Some(403));
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::digest::{self, Algorithm};
use super::random_hex;
use super::server::TestServer;
use super::sip_ua::{ContactSpec, ReceivedMessage, RegisterParams, SipUa, Transport};

/// The SIP credentials a device was provisioned with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredentials {
    pub username: String,
    pub password: String,
}

/// How the phone fetches its config (used on check-sync when `auto_fetch` is set, and by
/// [`Phone::fetch`]).
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// CA bundle that signs the provisioning server's certificate.
    pub ca_pem: PathBuf,
    /// Client certificate and key (PEM files) proving the MAC.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// HTTP digest credentials (answered on a 401).
    pub digest_auth: Option<(String, String)>,
    pub user_agent: String,
    pub extra_headers: Vec<(String, String)>,
}

impl FetchOptions {
    pub fn new(ca_pem: &Path) -> FetchOptions {
        FetchOptions {
            ca_pem: ca_pem.to_path_buf(),
            identity: None,
            digest_auth: None,
            user_agent: POLY_UA.to_string(),
            extra_headers: Vec::new(),
        }
    }
}

/// A Poly VVX User-Agent (SIP and HTTP), the default of [`Phone`].
pub const POLY_UA: &str = "PolycomVVX-VVX_450-UA/6.4.3.5018";

/// `GET url` over HTTPS trusting `ca_pem`, with an optional client certificate (PEM cert + key
/// files). Returns (status, body).
pub async fn fetch_config(
    url: &str,
    ca_pem: &Path,
    client_cert_pem: Option<&Path>,
    key_pem: Option<&Path>,
) -> (u16, String) {
    let mut o = FetchOptions::new(ca_pem);
    if let (Some(c), Some(k)) = (client_cert_pem, key_pem) {
        o.identity = Some((c.to_path_buf(), k.to_path_buf()));
    }
    fetch_config_with(url, &o).await
}

/// A reqwest client trusting `ca_pem` only, with an optional identity.
pub fn https_client(ca_pem: &Path, identity: Option<(&Path, &Path)>, user_agent: &str) -> reqwest::Client {
    let ca = std::fs::read(ca_pem).unwrap_or_else(|e| panic!("read {}: {e}", ca_pem.display()));
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .user_agent(user_agent)
        .no_proxy()
        .timeout(Duration::from_secs(15));
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).unwrap_or_else(|e| panic!("read {}: {e}", cert.display()));
        pem.push(b'\n');
        pem.extend(std::fs::read(key).unwrap_or_else(|e| panic!("read {}: {e}", key.display())));
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("client identity PEM"));
    }
    b.build().expect("https client")
}

/// `GET url` with every option (client cert, digest auth answered once, headers).
pub async fn fetch_config_with(url: &str, o: &FetchOptions) -> (u16, String) {
    let client = https_client(&o.ca_pem, o.identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())), &o.user_agent);
    let send = |auth: Option<String>| {
        let mut r = client.get(url);
        for (n, v) in &o.extra_headers {
            r = r.header(n.as_str(), v.as_str());
        }
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    let resp = send(None).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = resp.status().as_u16();
    if status == 401 {
        if let Some((user, pass)) = &o.digest_auth {
            let challenges: Vec<String> = resp
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let ch = digest::pick_challenge(&challenges, Algorithm::Sha256)
                .or_else(|| digest::pick_challenge(&challenges, Algorithm::Md5))
                .unwrap_or_else(|| panic!("GET {url}: 401 without a usable digest challenge: {challenges:?}"));
            let parsed = reqwest::Url::parse(url).expect("url");
            let uri = match parsed.query() {
                Some(q) => format!("{}?{q}", parsed.path()),
                None => parsed.path().to_string(),
            };
            let auth = digest::authorization(&ch, user, pass, "GET", &uri, 1, &digest::new_cnonce());
            let resp = send(Some(auth)).await.unwrap_or_else(|e| panic!("GET {url} (digest): {e:?}"));
            let status = resp.status().as_u16();
            return (status, resp.text().await.unwrap_or_default());
        }
    }
    (status, resp.text().await.unwrap_or_default())
}

/// What the phone did with one incoming request.
#[derive(Debug, Clone)]
pub enum PhoneEvent {
    /// OPTIONS answered 200.
    Options(ReceivedMessage),
    /// NOTIFY accepted (200); `event` is the Event type without parameters.
    Notify { event: String, msg: ReceivedMessage },
    /// NOTIFY answered with a 401 challenge (Poly mode).
    NotifyChallenged(ReceivedMessage),
    /// NOTIFY whose Authorization did not verify (answered 403).
    NotifyAuthFailed { reason: String, msg: ReceivedMessage },
    /// A retransmission, answered like the first copy.
    Retransmission(ReceivedMessage),
    /// Config fetched after a check-sync (auto_fetch).
    ConfigFetched { status: u16, body: String },
    /// Any other request (answered 405/489) or a stray response.
    Other(ReceivedMessage),
}

pub struct Phone {
    pub mac: String,
    pub ext: String,
    pub transport: Transport,
    pub ua: SipUa,
    pub credentials: DeviceCredentials,
    pub algorithm: Algorithm,
    /// Expires asked for in REGISTER.
    pub expires: u32,
    /// `+sip.instance` URN (RFC 5626), sent with `reg-id` when set.
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
    /// The last final response to a REGISTER.
    pub last_register: Option<ReceivedMessage>,
    /// NOTIFYs accepted with 200, in order.
    pub notifies: Vec<ReceivedMessage>,
    pub options_answered: usize,
    pub other_requests: Vec<ReceivedMessage>,
    /// Poly mode: challenge each new NOTIFY with 401 in this realm first.
    pub challenge_notify: Option<String>,
    /// The outcome of every Authorization check on a NOTIFY (Poly mode).
    pub notify_auth_results: Vec<Result<(), String>>,
    /// Call-ID → nonce of our outstanding NOTIFY challenges.
    challenges: HashMap<String, String>,
    /// (Call-ID, CSeq) → code already answered (retransmissions get the same).
    answered: HashMap<(String, u32), u16>,
    /// Re-fetch the config on check-sync/resync with these options, at this URL.
    pub auto_fetch: Option<(String, FetchOptions)>,
    /// Every config fetch result, in order.
    pub fetches: Vec<(u16, String)>,
    /// Every event, in order.
    pub events: Vec<PhoneEvent>,
}

impl Phone {
    /// A phone on the server's listener of `transport`, with a Poly User-Agent and an instance id.
    pub async fn new(
        srv: &TestServer,
        mac: &str,
        ext: &str,
        transport: Transport,
        username: &str,
        password: &str,
    ) -> Phone {
        let ua = SipUa::for_server(srv, transport).await;
        Self::with_ua(ua, mac, ext, username, password)
    }

    pub fn with_ua(mut ua: SipUa, mac: &str, ext: &str, username: &str, password: &str) -> Phone {
        ua.user_agent = POLY_UA.to_string();
        Phone {
            mac: mac.to_string(),
            ext: ext.to_string(),
            transport: ua.transport,
            ua,
            credentials: DeviceCredentials { username: username.into(), password: password.into() },
            algorithm: Algorithm::Sha256,
            expires: 600,
            instance: Some(format!("urn:uuid:00000000-0000-1000-8000-{}", random_hex(12))),
            reg_id: None,
            last_register: None,
            notifies: Vec::new(),
            options_answered: 0,
            other_requests: Vec::new(),
            challenge_notify: None,
            notify_auth_results: Vec::new(),
            challenges: HashMap::new(),
            answered: HashMap::new(),
            auto_fetch: None,
            fetches: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn set_user_agent(&mut self, ua: &str) {
        self.ua.user_agent = ua.to_string();
    }

    fn contact_params(&self) -> String {
        let mut s = String::new();
        if let Some(i) = &self.instance {
            s.push_str(&format!(";+sip.instance=\"<{i}>\""));
        }
        if let Some(r) = self.reg_id {
            s.push_str(&format!(";reg-id={r}"));
        }
        s
    }

    fn params(&self, expires: u32) -> RegisterParams {
        let mut p = RegisterParams::new(&self.ext, &self.credentials.username, &self.credentials.password);
        p.algorithm = self.algorithm;
        p.expires = Some(expires);
        p.contact = ContactSpec::Local;
        p.contact_params = self.contact_params();
        p
    }

    /// REGISTER with the device credentials (challenge answered); handles server requests that
    /// arrived meanwhile afterwards.
    pub async fn register(&mut self) -> ReceivedMessage {
        self.ua.reuse_nonce = false;
        let p = self.params(self.expires);
        let r = self.ua.register_with(&p).await;
        self.last_register = Some(r.clone());
        self.drain_queue().await;
        r
    }

    /// A refresh the way phones do it: same Call-ID, CSeq+1, Authorization from the cached
    /// challenge (nc+1); a new challenge is answered.
    pub async fn refresh(&mut self) -> ReceivedMessage {
        self.ua.reuse_nonce = true;
        let p = self.params(self.expires);
        let r = self.ua.register_with(&p).await;
        self.ua.reuse_nonce = false;
        self.last_register = Some(r.clone());
        self.drain_queue().await;
        r
    }

    /// REGISTER with Expires: 0 for our contact.
    pub async fn unregister(&mut self) -> ReceivedMessage {
        let p = self.params(0);
        let r = self.ua.register_with(&p).await;
        self.drain_queue().await;
        r
    }

    /// Whether the last 200 to REGISTER listed our contact.
    pub fn registered(&self) -> bool {
        let Some(r) = &self.last_register else { return false };
        r.status() == Some(200) && r.contact_containing(&self.ua.local_hostport()).is_some()
    }

    /// Handles the requests queued by the UA while it waited for responses.
    async fn drain_queue(&mut self) {
        while let Some(m) = self.ua.queue.pop_front() {
            self.handle(m).await;
        }
    }

    /// Answers one incoming message and records what happened.
    pub async fn handle(&mut self, msg: ReceivedMessage) -> Vec<PhoneEvent> {
        let mut out = Vec::new();
        if !msg.is_request() {
            out.push(PhoneEvent::Other(msg));
            self.events.extend(out.clone());
            return out;
        }
        let key = (msg.call_id().unwrap_or("").to_string(), msg.cseq().map(|c| c.0).unwrap_or(0));
        if let Some(&code) = self.answered.get(&key) {
            self.ua.respond(&msg, code, &[]).await;
            out.push(PhoneEvent::Retransmission(msg));
            self.events.extend(out.clone());
            return out;
        }
        let method = msg.method().unwrap_or("").to_ascii_uppercase();
        match method.as_str() {
            "OPTIONS" => {
                self.ua
                    .respond(&msg, 200, &[("Allow".into(), "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REFER".into())])
                    .await;
                self.answered.insert(key, 200);
                self.options_answered += 1;
                out.push(PhoneEvent::Options(msg));
            }
            "NOTIFY" => {
                let event = msg.event().unwrap_or_default();
                if !matches!(event.as_str(), "check-sync" | "resync" | "reg" | "message-summary") {
                    self.ua.respond(&msg, 489, &[]).await;
                    self.answered.insert(key, 489);
                    self.other_requests.push(msg.clone());
                    out.push(PhoneEvent::Other(msg));
                } else if let Some(realm) = self.challenge_notify.clone() {
                    self.challenge_or_verify_notify(msg, key, event, &realm, &mut out).await;
                } else {
                    self.accept_notify(msg, key, event, &mut out).await;
                }
            }
            "ACK" => {}
            _ => {
                self.ua
                    .respond(&msg, 405, &[("Allow".into(), "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY".into())])
                    .await;
                self.answered.insert(key, 405);
                self.other_requests.push(msg.clone());
                out.push(PhoneEvent::Other(msg));
            }
        }
        self.events.extend(out.clone());
        out
    }

    /// A Poly-like phone's NOTIFY: the first is challenged (401 with a fresh nonce); one with an
    /// Authorization answering that challenge is checked against the device's credentials and
    /// accepted (200) or refused (403).
    async fn challenge_or_verify_notify(
        &mut self,
        msg: ReceivedMessage,
        key: (String, u32),
        event: String,
        realm: &str,
        out: &mut Vec<PhoneEvent>,
    ) {
        let call_id = key.0.clone();
        match (msg.header("authorization").map(str::to_owned), self.challenges.get(&call_id).cloned()) {
            (Some(auth), Some(nonce)) => {
                let check = digest::verify_authorization(
                    &auth,
                    "NOTIFY",
                    &self.credentials.username,
                    &self.credentials.password,
                    realm,
                    &nonce,
                )
                .map(|_| ());
                self.notify_auth_results.push(check.clone());
                match check {
                    Ok(()) => {
                        self.challenges.remove(&call_id);
                        self.accept_notify(msg, key, event, out).await;
                    }
                    Err(reason) => {
                        self.ua.respond(&msg, 403, &[]).await;
                        self.answered.insert(key, 403);
                        out.push(PhoneEvent::NotifyAuthFailed { reason, msg });
                    }
                }
            }
            (Some(_), None) | (None, _) => {
                let nonce = random_hex(24);
                self.challenges.insert(call_id, nonce.clone());
                let www = digest::make_challenge(realm, &nonce, Algorithm::Md5);
                self.ua.respond(&msg, 401, &[("WWW-Authenticate".into(), www)]).await;
                self.answered.insert(key, 401);
                out.push(PhoneEvent::NotifyChallenged(msg));
            }
        }
    }

    async fn accept_notify(
        &mut self,
        msg: ReceivedMessage,
        key: (String, u32),
        event: String,
        out: &mut Vec<PhoneEvent>,
    ) {
        self.ua.respond(&msg, 200, &[]).await;
        self.answered.insert(key, 200);
        self.notifies.push(msg.clone());
        out.push(PhoneEvent::Notify { event: event.clone(), msg });
        if matches!(event.as_str(), "check-sync" | "resync") {
            if let Some((url, opts)) = self.auto_fetch.clone() {
                let (status, body) = fetch_config_with(&url, &opts).await;
                self.fetches.push((status, body.clone()));
                out.push(PhoneEvent::ConfigFetched { status, body });
            }
        }
    }

    /// Receives and handles everything for `dur`.
    pub async fn poll(&mut self, dur: Duration) -> Vec<PhoneEvent> {
        self.drain_queue().await;
        let deadline = Instant::now() + dur;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.ua.recv_message(left).await {
                Some(m) => out.extend(self.handle(m).await),
                None => break,
            }
        }
        out
    }

    /// Handles incoming requests until a NOTIFY is accepted (200); returns it.
    pub async fn wait_for_notify(&mut self, timeout: Duration) -> Option<ReceivedMessage> {
        let before = self.notifies.len();
        self.drain_queue().await;
        let deadline = Instant::now() + timeout;
        while self.notifies.len() == before {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let m = self.ua.recv_message(left).await?;
            self.handle(m).await;
        }
        self.notifies.get(before).cloned()
    }

    /// Handles incoming requests until an OPTIONS was answered.
    pub async fn wait_for_options(&mut self, timeout: Duration) -> bool {
        let before = self.options_answered;
        self.drain_queue().await;
        let deadline = Instant::now() + timeout;
        while self.options_answered == before {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let Some(m) = self.ua.recv_message(left).await else { return false };
            self.handle(m).await;
        }
        true
    }

    /// Fetches the config with the phone's own options (User-Agent, identity...).
    pub async fn fetch(&mut self, url: &str, opts: &FetchOptions) -> (u16, String) {
        let r = fetch_config_with(url, opts).await;
        self.fetches.push(r.clone());
        r
    }
}
