#![allow(dead_code)]
//! Shared helpers of the lifecycle tests: devices with a vendor, simulated phones, config fetches
//! over HTTPS with the device's client certificate, a reg-event (RFC 3680) subscriber, and the
//! checks every action shares (the NOTIFY a phone saw, the 403 it gets, the config it fetches).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::phone::{fetch_config_with, FetchOptions, Phone, PhoneEvent};
use crate::support::sip_ua::{ReceivedMessage, SipUa, Transport};
use crate::support::{random_hex, Admin, Algorithm, TestServer, DOMAIN};

pub const SUSPENDED_MSG: &str =
    "Account Suspended - Your account has been suspended. Contact the administrator of your account.";
pub const UNASSIGNED_MSG: &str = "This phone is not assigned to a user.";

/// How long a phone waits for a check-sync NOTIFY.
pub const NOTIFY_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Yealink,
    Poly,
    Cisco,
    Snom,
}

impl Vendor {
    /// The device's `vendor` field in the admin API.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Poly => "poly",
            Vendor::Cisco => "cisco",
            Vendor::Snom => "snom",
        }
    }

    /// The Event header value the phone must receive (vendors.md §1/§2: Cisco `resync`,
    /// Yealink and Snom `check-sync;reboot=false`, others plain `check-sync`).
    pub fn event(self) -> &'static str {
        match self {
            Vendor::Cisco => "resync",
            Vendor::Yealink | Vendor::Snom => "check-sync;reboot=false",
            Vendor::Poly => "check-sync",
        }
    }

    /// The per-device file the phone fetches.
    pub fn config_path(self, mac: &str) -> String {
        match self {
            Vendor::Yealink => format!("/{mac}.cfg"),
            Vendor::Poly => format!("/{}-deskline.cfg", mac.to_ascii_uppercase()),
            Vendor::Cisco => format!("/{mac}.xml"),
            Vendor::Snom => format!("/{}.xml", mac.to_ascii_uppercase()),
        }
    }

    /// The HTTP User-Agent of this vendor's phones (with the MAC where the vendor sends it).
    pub fn http_user_agent(self, mac: &str) -> String {
        match self {
            Vendor::Yealink => format!("Yealink SIP-T46S 66.86.0.15 {mac}"),
            Vendor::Poly => format!("FileTransport PolycomVVX-VVX_450-UA/6.4.3.5018 (SN:{mac}) Type/Application"),
            Vendor::Cisco => format!("Cisco-CP-8841-3PCC/11.0 ({mac})"),
            Vendor::Snom => format!(
                "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 {} SXM:0 UXM:0)",
                mac.to_ascii_uppercase()
            ),
        }
    }

    /// A SIP User-Agent of this vendor.
    pub fn sip_user_agent(self, mac: &str) -> String {
        match self {
            Vendor::Yealink => format!("Yealink SIP-T46S 66.86.0.15 {mac}"),
            Vendor::Poly => crate::support::phone::POLY_UA.to_string(),
            Vendor::Cisco => format!("Cisco-CP-8841-3PCC/11.0 ({mac})"),
            Vendor::Snom => "snomD785/10.1.33.33".to_string(),
        }
    }

    /// The config text of an enabled line 1.
    pub fn line_enabled(self) -> &'static str {
        match self {
            Vendor::Yealink => "account.1.enable = 1",
            Vendor::Poly => "reg.1.server.1.register=\"1\"",
            Vendor::Cisco => "<Line_Enable_1_ ua=\"na\">Yes</Line_Enable_1_>",
            Vendor::Snom => "<user_active idx=\"1\" perm=\"R\">on</user_active>",
        }
    }

    /// The config text of a disabled line 1.
    pub fn line_disabled(self) -> &'static str {
        match self {
            Vendor::Yealink => "account.1.enable = 0",
            Vendor::Poly => "reg.1.server.1.register=\"0\"",
            Vendor::Cisco => "<Line_Enable_1_ ua=\"na\">No</Line_Enable_1_>",
            Vendor::Snom => "<user_active idx=\"1\" perm=\"R\">off</user_active>",
        }
    }

    /// The config text naming the line's extension (the AOR user part).
    pub fn line_extension(self, ext: &str) -> String {
        match self {
            Vendor::Yealink => format!("account.1.user_name = {ext}"),
            Vendor::Poly => format!("reg.1.address=\"{ext}\""),
            Vendor::Cisco => format!("<User_ID_1_ ua=\"na\">{ext}</User_ID_1_>"),
            Vendor::Snom => format!("<user_name idx=\"1\" perm=\"R\">{ext}</user_name>"),
        }
    }

    /// Pulls the line's SIP secret out of a rendered config.
    pub fn secret_in(self, body: &str) -> Option<String> {
        let (start, end) = match self {
            Vendor::Yealink => ("account.1.password = ", "\n"),
            Vendor::Poly => ("reg.1.auth.password=\"", "\""),
            Vendor::Cisco => ("<Password_1_ ua=\"na\">", "<"),
            Vendor::Snom => ("<user_pass idx=\"1\" perm=\"R\">", "<"),
        };
        let i = body.find(start)? + start.len();
        let rest = &body[i..];
        let v = rest[..rest.find(end).unwrap_or(rest.len())].trim().to_string();
        (!v.is_empty() && v != "%NULL%").then_some(v)
    }
}

/// One device of the directory, as the test created it.
#[derive(Debug, Clone)]
pub struct Dev {
    pub mac: String,
    pub vendor: Vendor,
    pub ext: String,
    pub sip_user: String,
    pub sip_pass: String,
}

/// A device-proof MAC with a random tail (Poly OUI; the vendor comes from the device record).
pub fn new_mac() -> String {
    crate::support::random_mac()
}

/// `POST /api/v1/devices` with vendor and hand-set credentials; panics unless 201.
pub async fn create_device(admin: &Admin, mac: &str, user: &str, ext: &str, vendor: Vendor) -> Dev {
    let sip_user = format!("d{}", &mac[6..]);
    let sip_pass = format!("pw-{}", random_hex(20));
    let body = json!({
        "mac": mac, "user": user, "extension": ext, "vendor": vendor.name(),
        "sip_username": sip_user, "sip_password": sip_pass,
    });
    let (status, v) = admin.post("/api/v1/devices", &body).await;
    assert_eq!(status, 201, "POST /api/v1/devices {body}: {v}");
    assert!(
        v.get("sip_password").is_none() && !v.to_string().contains(&sip_pass),
        "the device answer reveals its secret: {v}"
    );
    Dev { mac: mac.into(), vendor, ext: ext.into(), sip_user, sip_pass }
}

/// A simulated phone of `dev` on `transport`, with its vendor's SIP User-Agent.
pub async fn phone_for(srv: &TestServer, dev: &Dev, transport: Transport) -> Phone {
    let mut p = Phone::new(srv, &dev.mac, &dev.ext, transport, &dev.sip_user, &dev.sip_pass).await;
    p.set_user_agent(&dev.vendor.sip_user_agent(&dev.mac));
    p
}

/// A phone that registered (200 listing its contact), or a panic with the answer.
pub async fn registered_phone(srv: &TestServer, dev: &Dev, transport: Transport) -> Phone {
    let mut p = phone_for(srv, dev, transport).await;
    let r = p.register().await;
    assert_eq!(r.status(), Some(200), "REGISTER of {} over {transport}:\n{}", dev.mac, r.raw);
    assert!(p.registered(), "the 200 does not list our contact {}:\n{}", p.ua.local_hostport(), r.raw);
    p
}

pub fn aor(ext: &str) -> String {
    format!("sip:{ext}@{DOMAIN}")
}

/// Live bindings of an AOR.
pub async fn bindings(admin: &Admin, ext: &str) -> Vec<Value> {
    admin.registrations(&[("aor", &aor(ext))]).await
}

pub async fn bindings_of_device(admin: &Admin, mac: &str) -> Vec<Value> {
    admin.registrations(&[("mac", mac)]).await
}

/// Whether any binding's contact contains the phone's local address.
pub fn has_contact_of(bindings: &[Value], phone: &Phone) -> bool {
    let local = phone.ua.local_hostport();
    bindings.iter().any(|b| b["contact"].as_str().is_some_and(|c| c.contains(&local)))
}

pub async fn user_status(admin: &Admin, user: &str) -> String {
    let (s, v) = admin.user(user).await;
    assert_eq!(s, 200, "GET /api/v1/users/{user}: {v}");
    v["status"].as_str().unwrap_or_else(|| panic!("user without status: {v}")).to_string()
}

pub async fn device_json(admin: &Admin, mac: &str) -> Value {
    let (s, v) = admin.device(mac).await;
    assert_eq!(s, 200, "GET /api/v1/devices/{mac}: {v}");
    v
}

pub async fn resync_pending(admin: &Admin, mac: &str) -> bool {
    let v = device_json(admin, mac).await;
    v["resync_pending"]
        .as_bool()
        .unwrap_or_else(|| panic!("GET /api/v1/devices/{mac} has no boolean resync_pending: {v}"))
}

/// Polls `resync_pending` until it equals `want` (the server records some things in the background).
pub async fn wait_resync_pending(admin: &Admin, mac: &str, want: bool, timeout: Duration) -> bool {
    crate::support::wait_until(timeout, || async { (resync_pending(admin, mac).await == want).then_some(()) })
        .await
        .is_some()
}

/// The MACs of an action answer's list (normalised: lowercase hex only).
pub fn macs(report: &Value, key: &str) -> BTreeSet<String> {
    let arr = report[key].as_array().unwrap_or_else(|| panic!("action answer without a {key:?} list: {report}"));
    arr.iter()
        .map(|m| {
            m.as_str()
                .unwrap_or_else(|| panic!("{key} holds a non-string: {report}"))
                .chars()
                .filter(|c| c.is_ascii_hexdigit())
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .collect()
}

pub fn set_of(macs: &[&str]) -> BTreeSet<String> {
    macs.iter().map(|m| m.to_string()).collect()
}

/// Checks the documented shape `{bindings_removed: N, devices_notified: [..], devices_unreachable: [..]}`.
pub fn check_report_shape(what: &str, report: &Value) {
    assert!(report.is_object(), "{what}: the answer is not an object: {report}");
    assert!(report["bindings_removed"].as_u64().is_some(), "{what}: bindings_removed is not a number: {report}");
    assert!(report["devices_notified"].is_array(), "{what}: devices_notified is not a list: {report}");
    assert!(report["devices_unreachable"].is_array(), "{what}: devices_unreachable is not a list: {report}");
}

/// Fetches the device's own config over HTTPS with its client certificate and its vendor's UA.
pub async fn fetch_config(srv: &TestServer, dev: &Dev) -> (u16, String) {
    let mut o = FetchOptions::new(&srv.ca_pem_path());
    o.identity = Some(srv.device_cert(&dev.mac));
    o.user_agent = dev.vendor.http_user_agent(&dev.mac);
    let url = format!("{}{}", srv.https_url(), dev.vendor.config_path(&dev.mac));
    fetch_config_with(&url, &o).await
}

/// The config of a suspended line: disabled, the suspended message, no secret.
pub fn assert_suspended_config(dev: &Dev, status: u16, body: &str, secrets: &[&str]) {
    let what = format!("config {} of {} ({:?})", dev.vendor.config_path(&dev.mac), dev.mac, dev.vendor);
    assert_eq!(status, 200, "{what}: status {status}\n{body}");
    assert!(
        body.contains(dev.vendor.line_disabled()),
        "{what}: line not disabled (want {:?}):\n{body}",
        dev.vendor.line_disabled()
    );
    assert!(!body.contains(dev.vendor.line_enabled()), "{what}: line still enabled:\n{body}");
    assert!(body.contains(SUSPENDED_MSG), "{what}: no suspended message {SUSPENDED_MSG:?}:\n{body}");
    for s in secrets {
        assert!(!body.contains(s), "{what}: the suspended config carries the SIP secret {s:?}:\n{body}");
    }
    assert_eq!(dev.vendor.secret_in(body), None, "{what}: a password value in the suspended config:\n{body}");
}

/// The config of an active line: enabled, the extension, this secret, no message.
pub fn assert_active_config(dev: &Dev, status: u16, body: &str, ext: &str, secret: &str) {
    let what = format!("config {} of {} ({:?})", dev.vendor.config_path(&dev.mac), dev.mac, dev.vendor);
    assert_eq!(status, 200, "{what}: status {status}\n{body}");
    assert!(
        body.contains(dev.vendor.line_enabled()),
        "{what}: line not enabled (want {:?}):\n{body}",
        dev.vendor.line_enabled()
    );
    assert!(body.contains(&dev.vendor.line_extension(ext)), "{what}: line is not extension {ext}:\n{body}");
    assert_eq!(dev.vendor.secret_in(body).as_deref(), Some(secret), "{what}: secret in the config:\n{body}");
    assert!(
        !body.contains(SUSPENDED_MSG) && !body.contains(UNASSIGNED_MSG),
        "{what}: a state message on an active line:\n{body}"
    );
}

/// Checks a check-sync NOTIFY the phone accepted: its vendor's event, over the phone's own flow,
/// from the server's SIP listener of that transport, to the phone's contact.
pub fn assert_check_sync(srv: &TestServer, phone: &Phone, vendor: Vendor, n: &ReceivedMessage) {
    let what = format!("NOTIFY to {} ({:?} over {})", phone.mac, vendor, phone.transport);
    assert_eq!(n.method(), Some("NOTIFY"), "{what}:\n{}", n.raw);
    assert_eq!(n.header("event").map(str::trim), Some(vendor.event()), "{what}: Event header:\n{}", n.raw);
    assert_eq!(n.transport, phone.transport, "{what}: arrived over another transport:\n{}", n.raw);
    let server = srv.sip_addr(phone.transport);
    if phone.transport == Transport::Udp {
        assert_eq!(n.source, server, "{what}: not sent from the server's UDP listener {server}:\n{}", n.raw);
    }
    let via = n.header_list("via").into_iter().next().unwrap_or_default();
    let sent_by = via.split(';').next().unwrap_or("").split_whitespace().nth(1).unwrap_or("").to_string();
    assert!(
        via.to_ascii_uppercase().starts_with(&format!("SIP/2.0/{}", phone.transport.via_name())),
        "{what}: Via transport {via:?}:\n{}",
        n.raw
    );
    assert_eq!(sent_by, server.to_string(), "{what}: Via sent-by is not the server's SIP address {server}:\n{}", n.raw);
    let local = phone.ua.local_hostport();
    assert!(
        n.request_uri().is_some_and(|u| u.contains(&local)),
        "{what}: Request-URI is not the phone's contact ({local}):\n{}",
        n.raw
    );
}

/// A REGISTER refused because the account is suspended: `403 Account Suspended` + Warning.
pub fn assert_suspended_403(what: &str, r: &ReceivedMessage) {
    assert_eq!(r.status(), Some(403), "{what}: expected 403 Account Suspended:\n{}", r.raw);
    assert_eq!(r.reason(), Some("Account Suspended"), "{what}: reason phrase:\n{}", r.raw);
    let warning = r.header("warning").unwrap_or_else(|| panic!("{what}: the 403 has no Warning header:\n{}", r.raw));
    let w = warning.to_ascii_lowercase();
    assert!(
        w.split_whitespace().next().is_some_and(|c| c.len() == 3 && c.chars().all(|d| d.is_ascii_digit())),
        "{what}: Warning is not `code agent \"text\"`: {warning:?}"
    );
    assert!(
        w.contains("suspended") && w.contains("administrator"),
        "{what}: Warning does not say suspended by its administrator: {warning:?}"
    );
    assert!(r.contact_containing("sip:").is_none(), "{what}: the 403 lists bindings:\n{}", r.raw);
}

/// Spawns a task that lets the phone answer whatever comes until a NOTIFY was accepted (or
/// `timeout`), then keeps answering for `linger` (retransmissions, duplicates); returns the phone.
pub fn spawn_notify_wait(
    mut phone: Phone,
    timeout: Duration,
    linger: Duration,
) -> tokio::task::JoinHandle<(Phone, Option<tokio::time::Instant>)> {
    tokio::spawn(async move {
        let got = phone.wait_for_notify(timeout).await;
        let at = got.map(|_| tokio::time::Instant::now());
        if !linger.is_zero() {
            phone.poll(linger).await;
        }
        (phone, at)
    })
}

pub async fn join_phones(
    handles: Vec<tokio::task::JoinHandle<(Phone, Option<tokio::time::Instant>)>>,
) -> Vec<(Phone, Option<tokio::time::Instant>)> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("phone task"));
    }
    out
}

/// Every NOTIFY the phone accepted or challenged (for "nothing was sent" checks).
pub fn notify_events(phone: &Phone) -> Vec<String> {
    phone
        .events
        .iter()
        .filter_map(|e| match e {
            PhoneEvent::Notify { msg, .. } | PhoneEvent::NotifyChallenged(msg) | PhoneEvent::Retransmission(msg) => {
                Some(msg.raw.clone())
            }
            PhoneEvent::NotifyAuthFailed { msg, .. } => Some(msg.raw.clone()),
            PhoneEvent::Other(m) if m.method() == Some("NOTIFY") => Some(m.raw.clone()),
            _ => None,
        })
        .collect()
}

/// REGISTER with other credentials than the phone's own (restores them afterwards).
pub async fn register_with_creds(phone: &mut Phone, user: &str, pass: &str) -> ReceivedMessage {
    let saved = phone.credentials.clone();
    phone.credentials.username = user.into();
    phone.credentials.password = pass.into();
    let r = phone.register().await;
    phone.credentials = saved;
    r
}

// ---------------------------------------------------------------------------------------------
// Reg event (RFC 3680) subscriber
// ---------------------------------------------------------------------------------------------

/// One `<contact>` of a reginfo document.
#[derive(Debug, Clone)]
pub struct RegContact {
    pub state: String,
    pub event: String,
    pub uri: String,
}

/// The `<contact>` elements of an `application/reginfo+xml` body (well-formedness checked with
/// quick-xml; the elements read by a small scanner).
pub fn reginfo_contacts(body: &str) -> Result<Vec<RegContact>, String> {
    let mut reader = quick_xml::Reader::from_str(body);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reginfo not well-formed: {e}")),
        }
    }
    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
    }
    fn attr(tag: &str, name: &str) -> String {
        let mut rest = tag;
        while let Some(i) = rest.find(name) {
            let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
            let after = rest[i + name.len()..].trim_start();
            if before_ok {
                if let Some(after) = after.strip_prefix('=') {
                    let after = after.trim_start();
                    let q = after.chars().next().unwrap_or('"');
                    if q == '"' || q == '\'' {
                        let v = &after[1..];
                        return unescape(&v[..v.find(q).unwrap_or(v.len())]);
                    }
                }
            }
            rest = &rest[i + name.len()..];
        }
        String::new()
    }
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("<contact") {
        let after = &rest[i + "<contact".len()..];
        if !after.starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/') {
            rest = after;
            continue;
        }
        let tag_end = after.find('>').ok_or("unterminated <contact")?;
        let tag = &after[..tag_end];
        let inner_end = after.find("</contact>").unwrap_or(after.len());
        let inner = &after[tag_end..inner_end];
        let uri = match (inner.find("<uri>"), inner.find("</uri>")) {
            (Some(a), Some(b)) if a < b => unescape(inner[a + 5..b].trim()),
            _ => String::new(),
        };
        out.push(RegContact { state: attr(tag, "state"), event: attr(tag, "event"), uri });
        rest = &after[tag_end..];
    }
    Ok(out)
}

pub struct RegSubscriber {
    pub ua: SipUa,
    pub ext: String,
    /// Every reg NOTIFY received (retransmissions removed), in order.
    pub notifies: Vec<ReceivedMessage>,
    seen: BTreeSet<(String, u32)>,
}

impl RegSubscriber {
    /// SUBSCRIBE `Event: reg` for `sip:EXT@domain` over UDP, authenticated with a device's
    /// credentials like a REGISTER; waits for the 200 and the first (full) NOTIFY.
    pub async fn subscribe(srv: &TestServer, ext: &str, user: &str, pass: &str) -> RegSubscriber {
        let mut ua = SipUa::udp(srv.udp_addr()).await;
        let aor = ua.aor(ext);
        let headers = vec![
            ("Event".to_string(), "reg".to_string()),
            ("Accept".to_string(), "application/reginfo+xml".to_string()),
            ("Contact".to_string(), ua.local_contact(ext)),
            ("Expires".to_string(), "600".to_string()),
        ];
        let r = ua
            .request_with_auth("SUBSCRIBE", &aor, &aor, &aor, &headers, b"", Some((user, pass)), Algorithm::Sha256)
            .await;
        assert!(matches!(r.status(), Some(200) | Some(202)), "SUBSCRIBE Event: reg for {aor}:\n{}", r.raw);
        let mut s = RegSubscriber { ua, ext: ext.into(), notifies: Vec::new(), seen: BTreeSet::new() };
        s.collect(Duration::from_secs(5), 1).await;
        assert!(!s.notifies.is_empty(), "no initial reg NOTIFY after the SUBSCRIBE to {aor}");
        s
    }

    /// Answers every request for up to `dur`, stopping early once `want` new NOTIFYs came.
    pub async fn collect(&mut self, dur: Duration, want: usize) -> usize {
        let deadline = tokio::time::Instant::now() + dur;
        let before = self.notifies.len();
        while self.notifies.len() - before < want {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(m) = self.ua.recv_request(left).await else { break };
            if m.method() == Some("NOTIFY") {
                self.ua.respond(&m, 200, &[]).await;
                let key = (m.call_id().unwrap_or("").to_string(), m.cseq().map(|c| c.0).unwrap_or(0));
                if self.seen.insert(key) {
                    assert_eq!(m.event().as_deref(), Some("reg"), "reg NOTIFY with another event:\n{}", m.raw);
                    self.notifies.push(m);
                }
            } else {
                self.ua.respond(&m, 405, &[]).await;
            }
        }
        self.notifies.len() - before
    }

    /// Every contact element of every NOTIFY received so far.
    pub fn contacts(&self) -> Vec<(RegContact, String)> {
        let mut out = Vec::new();
        for n in &self.notifies {
            let body = n.body_str();
            let cs = reginfo_contacts(&body).unwrap_or_else(|e| panic!("{e}:\n{}", n.raw));
            out.extend(cs.into_iter().map(|c| (c, n.raw.clone())));
        }
        out
    }

    /// Waits (answering) until a contact element for `local` with this state and event arrived.
    pub async fn wait_contact(&mut self, local: &str, state: &str, event: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.contacts().iter().any(|(c, _)| c.uri.contains(local) && c.state == state && c.event == event) {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            self.collect(left, 1).await;
        }
    }

    pub fn describe(&self) -> String {
        self.notifies.iter().map(|n| n.raw.clone()).collect::<Vec<_>>().join("\n-----\n")
    }
}

/// Spawns a task answering the subscriber's NOTIFYs for `dur`; returns it.
pub fn spawn_subscriber(mut s: RegSubscriber, dur: Duration) -> tokio::task::JoinHandle<RegSubscriber> {
    tokio::spawn(async move {
        s.collect(dur, usize::MAX).await;
        s
    })
}

/// For a failure message: which secret the NOTIFY Authorizations a challenging phone refused were
/// computed with (`candidates` = (label, secret)).
pub fn diagnose_notify_auth(phone: &Phone, realm: &str, candidates: &[(&str, &str)]) -> String {
    let mut out = Vec::new();
    for e in &phone.events {
        if let PhoneEvent::NotifyAuthFailed { msg, .. } = e {
            let Some(auth) = msg.header("authorization") else { continue };
            let nonce =
                crate::support::digest::parse_challenge(auth).map(|c| c.nonce().to_string()).unwrap_or_default();
            let user = crate::support::digest::parse_challenge(auth)
                .ok()
                .and_then(|c| c.param("username").map(str::to_owned))
                .unwrap_or_default();
            let matched: Vec<&str> = candidates
                .iter()
                .filter(|(_, s)| {
                    crate::support::digest::verify_authorization(auth, "NOTIFY", &user, s, realm, &nonce).is_ok()
                })
                .map(|(l, _)| *l)
                .collect();
            out.push(format!(
                "Authorization (username {user:?}) computed with: {}",
                if matched.is_empty() { "none of the known secrets".to_string() } else { matched.join(", ") }
            ));
        }
    }
    out.join("; ")
}
