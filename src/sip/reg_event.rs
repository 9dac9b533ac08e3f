//! The reg event package (RFC 3680): a device may SUBSCRIBE to `Event: reg` for its own address of
//! record (authenticated like a REGISTER). It gets the full state first, then a partial NOTIFY
//! (`application/reginfo+xml`, built with quick-xml) on every change of a contact: `registered`,
//! `refreshed`, `expired`, `unregistered`, `deactivated` (signed out: re-register now) and
//! `rejected` (suspended: do not re-register). Subscriptions are refreshed by re-SUBSCRIBE and end
//! with `Expires: 0` or when they expire.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event as XmlEvent};
use quick_xml::Writer;

use super::notify::{random_token, Notifier};
use super::response::{fnv64, local_tag, sip_host_port, ResponseBuilder};
use super::transport::Inbound;
use super::validate::Request;
use crate::directory::unix_now;
use crate::events::EventBus;
use crate::registrar::{AddressOfRecord, Binding, Flow, Registrar};

const MAX_EXPIRES: u32 = 3600;
const MIN_EXPIRES: u32 = 60;

/// One subscription (a dialog of ours).
struct Subscription {
    aor: AddressOfRecord,
    flow: Flow,
    target: String,
    call_id: String,
    local_tag: String,
    /// The subscriber's From header value (with its tag): our NOTIFY's To.
    subscriber: String,
    cseq: u32,
    version: u32,
    expires_at: u64,
}

/// A contact's state change, as one `<contact>` element.
pub struct ContactChange<'a> {
    pub contact: &'a str,
    pub state: &'static str,
    pub event: &'static str,
    pub expires: Option<u64>,
}

pub struct RegEvents {
    registrar: Arc<Registrar>,
    notifier: Arc<Notifier>,
    subs: DashMap<String, Arc<Mutex<Subscription>>>,
    /// Started at the first subscription: until someone subscribes, the registrar does not even
    /// build the events this follows (the bus has no listener).
    watcher: Mutex<Option<(EventBus, tokio_util::sync::CancellationToken)>>,
}

impl RegEvents {
    pub fn new(registrar: Arc<Registrar>, notifier: Arc<Notifier>) -> Arc<RegEvents> {
        Arc::new(RegEvents { registrar, notifier, subs: DashMap::new(), watcher: Mutex::new(None) })
    }

    /// Handles a SUBSCRIBE (new or refresh).
    pub fn subscribe(self: &Arc<Self>, req: Request, inbound: Inbound) {
        let event = req.header("Event").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if event != "reg" {
            let bytes = ResponseBuilder::new(489, None, &req.headers, inbound.flow.remote)
                .header("Allow-Events", "reg")
                .finish();
            inbound.reply.send(bytes);
            return;
        }
        let account = match self.registrar.authenticate_device(&req, &inbound) {
            Ok(a) => a,
            Err(answer) => {
                inbound.reply.send(answer);
                return;
            }
        };
        let extension = req.to.uri.as_sip().and_then(|u| u.user.clone()).unwrap_or_default();
        if account.extension.as_deref() != Some(extension.as_str()) {
            inbound.reply.send(ResponseBuilder::new(403, None, &req.headers, inbound.flow.remote).finish());
            return;
        }
        let asked = req.expires.unwrap_or(MAX_EXPIRES);
        if asked != 0 && asked < MIN_EXPIRES {
            let b =
                ResponseBuilder::new(423, None, &req.headers, inbound.flow.remote).header("Min-Expires", MIN_EXPIRES);
            inbound.reply.send(b.finish());
            return;
        }
        let expires = asked.min(MAX_EXPIRES);
        self.ensure_watching();
        let id = req.call_id.clone();
        let sub = self.upsert(&req, &inbound, &extension, expires);
        let contact = format!("<sip:deskline@{}>", sip_host_port(inbound.flow.local));
        let ok = ResponseBuilder::new(200, None, &req.headers, inbound.flow.remote)
            .header("Expires", expires)
            .header("Contact", contact)
            .finish();
        inbound.reply.send(ok);
        let this = self.clone();
        tokio::spawn(async move {
            let state = if expires == 0 { "terminated;reason=timeout" } else { "active" };
            this.send_full(&sub, state).await;
            if expires == 0 {
                this.subs.remove(id.as_str());
            }
        });
    }

    fn upsert(&self, req: &Request, inbound: &Inbound, extension: &str, expires: u32) -> Arc<Mutex<Subscription>> {
        let entry = self.subs.entry(req.call_id.to_string()).or_insert_with(|| {
            Arc::new(Mutex::new(Subscription {
                aor: self.registrar.aor(extension),
                flow: inbound.flow,
                target: String::new(),
                call_id: req.call_id.to_string(),
                local_tag: local_tag(&req.headers),
                subscriber: req.header("From").unwrap_or("").to_owned(),
                cseq: 0,
                version: 0,
                expires_at: 0,
            }))
        });
        {
            let mut s = entry.lock();
            s.flow = inbound.flow;
            s.target = match &req.contact {
                Some(super::headers::ContactSpec::List(c)) if !c.is_empty() => c[0].addr.uri_text.to_string(),
                _ => format!("sip:{}", sip_host_port(inbound.flow.remote)),
            };
            s.expires_at = unix_now() + expires as u64;
        }
        entry.clone()
    }

    async fn send_full(&self, sub: &Arc<Mutex<Subscription>>, state: &str) {
        let aor = sub.lock().aor.clone();
        let now = unix_now();
        let bindings: Vec<Binding> = self.registrar.location().bindings(&aor);
        let changes: Vec<ContactChange> = bindings
            .iter()
            .map(|b| ContactChange {
                contact: &b.contact,
                state: "active",
                event: "registered",
                expires: Some(b.expires_in(now)),
            })
            .collect();
        let body = reginfo(&aor, sub.lock().version, "full", &changes);
        self.send(sub, state, body).await;
    }

    async fn send(&self, sub: &Arc<Mutex<Subscription>>, state: &str, body: Vec<u8>) {
        let (flow, bytes, branch) = {
            let mut s = sub.lock();
            s.cseq += 1;
            s.version += 1;
            let branch = format!("z9hG4bK{}", random_token());
            let remaining = s.expires_at.saturating_sub(unix_now());
            let state = if state == "active" { format!("active;expires={remaining}") } else { state.to_owned() };
            (s.flow, build_notify(&s, &branch, &state, &body), branch)
        };
        let _ = self.notifier.transact(&flow, &branch, bytes).await;
    }

    /// Follows the event bus and sends partial state to the subscribers of each changed AOR;
    /// ends expired subscriptions.
    pub fn spawn_watcher(self: &Arc<Self>, events: &EventBus, shutdown: tokio_util::sync::CancellationToken) {
        *self.watcher.lock() = Some((events.clone(), shutdown));
    }

    /// Starts following the bus, once.
    fn ensure_watching(self: &Arc<Self>) {
        let Some((events, shutdown)) = self.watcher.lock().take() else { return };
        let mut rx = events.subscribe();
        let this = self.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = sweep.tick() => this.expire().await,
                    ev = rx.recv() => match ev {
                        Ok(ev) => this.on_event(&ev).await,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    },
                }
            }
        });
    }

    async fn on_event(&self, ev: &crate::events::Event) {
        let Some(aor) = ev.ids.get("aor").and_then(|v| v.as_str()) else { return };
        let Some(contact) = ev.ids.get("contact").and_then(|v| v.as_str()) else { return };
        let reason = ev.ids.get("reason").and_then(|v| v.as_str()).unwrap_or("");
        let (state, event) = match (ev.kind, reason) {
            ("registered", _) => ("active", "registered"),
            ("refreshed", _) => ("active", "refreshed"),
            ("expired", _) => ("terminated", "expired"),
            ("unregistered", "deactivated") => ("terminated", "rejected"),
            ("unregistered", "signed_out") => ("terminated", "deactivated"),
            ("unregistered", _) => ("terminated", "unregistered"),
            _ => return,
        };
        let expires = ev.ids.get("expires_in").and_then(|v| v.as_u64());
        let targets: Vec<Arc<Mutex<Subscription>>> =
            self.subs.iter().filter(|s| s.value().lock().aor.as_str() == aor).map(|s| s.value().clone()).collect();
        for sub in targets {
            let body = {
                let s = sub.lock();
                reginfo(&s.aor, s.version, "partial", &[ContactChange { contact, state, event, expires }])
            };
            self.send(&sub, "active", body).await;
        }
    }

    async fn expire(&self) {
        let now = unix_now();
        let due: Vec<(String, Arc<Mutex<Subscription>>)> = self
            .subs
            .iter()
            .filter(|s| s.value().lock().expires_at <= now)
            .map(|s| (s.key().clone(), s.value().clone()))
            .collect();
        for (id, sub) in due {
            self.subs.remove(&id);
            self.send_full(&sub, "terminated;reason=timeout").await;
        }
    }
}

fn build_notify(s: &Subscription, branch: &str, state: &str, body: &[u8]) -> Bytes {
    let head = format!(
        "NOTIFY {target} SIP/2.0\r\n\
         Via: SIP/2.0/{tr} {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{aor}>;tag={tag}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} NOTIFY\r\n\
         Contact: <sip:deskline@{local}>\r\n\
         Event: reg\r\n\
         Subscription-State: {state}\r\n\
         Content-Type: application/reginfo+xml\r\n\
         Content-Length: {len}\r\n\r\n",
        target = s.target,
        tr = s.flow.transport.via_name(),
        local = sip_host_port(s.flow.local),
        aor = s.aor,
        tag = s.local_tag,
        to = s.subscriber,
        call_id = s.call_id,
        cseq = s.cseq,
        len = body.len(),
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// The `application/reginfo+xml` document (RFC 3680 §5.3).
pub fn reginfo(aor: &AddressOfRecord, version: u32, state: &str, contacts: &[ContactChange]) -> Vec<u8> {
    let mut w = Writer::new(Cursor::new(Vec::new()));
    let version = version.to_string();
    let reg_state = if contacts.iter().any(|c| c.state == "active") { "active" } else { "terminated" };
    let _ = w.write_event(XmlEvent::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut root = BytesStart::new("reginfo");
    root.push_attribute(("xmlns", "urn:ietf:params:xml:ns:reginfo"));
    root.push_attribute(("version", version.as_str()));
    root.push_attribute(("state", state));
    let _ = w.write_event(XmlEvent::Start(root));
    let mut reg = BytesStart::new("registration");
    let id = format!("r{:x}", fnv64(&[aor.as_str()]));
    reg.push_attribute(("aor", aor.as_str()));
    reg.push_attribute(("id", id.as_str()));
    reg.push_attribute(("state", if contacts.is_empty() && state == "full" { "init" } else { reg_state }));
    let _ = w.write_event(XmlEvent::Start(reg));
    for c in contacts {
        let mut el = BytesStart::new("contact");
        let cid = format!("c{:x}", fnv64(&[c.contact]));
        el.push_attribute(("id", cid.as_str()));
        el.push_attribute(("state", c.state));
        el.push_attribute(("event", c.event));
        let expires = c.expires.map(|e| e.to_string());
        if let Some(e) = &expires {
            el.push_attribute(("expires", e.as_str()));
        }
        let _ = w.write_event(XmlEvent::Start(el));
        let _ = w.write_event(XmlEvent::Start(BytesStart::new("uri")));
        let _ = w.write_event(XmlEvent::Text(BytesText::new(c.contact)));
        let _ = w.write_event(XmlEvent::End(BytesEnd::new("uri")));
        let _ = w.write_event(XmlEvent::End(BytesEnd::new("contact")));
    }
    let _ = w.write_event(XmlEvent::End(BytesEnd::new("registration")));
    let _ = w.write_event(XmlEvent::End(BytesEnd::new("reginfo")));
    w.into_inner().into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reginfo_is_well_formed_and_escaped() {
        let aor = AddressOfRecord("sip:1001@pbx.test".into());
        let body = reginfo(
            &aor,
            3,
            "partial",
            &[ContactChange {
                contact: "sip:1001@10.0.0.1;a=<&>",
                state: "terminated",
                event: "rejected",
                expires: None,
            }],
        );
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains("version=\"3\" state=\"partial\""), "{text}");
        assert!(text.contains("event=\"rejected\""));
        assert!(text.contains("&lt;&amp;&gt;"));
        let mut reader = quick_xml::Reader::from_reader(body.as_slice());
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(XmlEvent::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}"),
            }
            buf.clear();
        }
    }
}
