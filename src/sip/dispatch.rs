//! From a framed message to its handler: requests are checked ([`super::validate`]) and routed by
//! method; responses go to the client transaction waiting for them (or are dropped). Every request
//! that can be answered is answered, with the most precise status: 400 for a malformed one, 505,
//! 416, 420, 405 with Allow for a method deskline does not serve, 501 for one it does not know.

use std::sync::Arc;

use bytes::Bytes;

use super::client::ClientTransactions;
use super::message::{parse_message, salvage_request_headers, Framing, Headers, Method, RawMessage, StartLine};
use super::response::ResponseBuilder;
use super::subscribe::RegEvents;
use super::transport::Inbound;
use super::validate::{Refused, Request};
use crate::directory::HeldWrites;
use crate::metrics::{Metrics, StatusLabels};
use crate::registrar::Registrar;

/// Methods deskline serves, as the Allow header lists them.
pub const ALLOW: &str = "REGISTER, OPTIONS, SUBSCRIBE, ACK, CANCEL";
/// Option tags deskline supports (Require with anything else gets 420).
pub const SUPPORTED: &[&str] = &["path", "outbound", "gruu"];

pub struct Dispatcher {
    registrar: Arc<Registrar>,
    clients: Arc<ClientTransactions>,
    reg_events: Arc<RegEvents>,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub fn new(
        registrar: Arc<Registrar>,
        clients: Arc<ClientTransactions>,
        reg_events: Arc<RegEvents>,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        Dispatcher { registrar, clients, reg_events, metrics }
    }

    /// Holds back, until the guard is dropped, the binding writes (and so the 200 OKs) of the
    /// requests handled on this thread: a receive thread with a run of datagrams waiting writes
    /// their bindings as one journal append (see `directory/binding_lane.rs`).
    pub fn hold_writes(&self) -> HeldWrites {
        HeldWrites::begin()
    }

    /// Handles one UDP datagram. Malformed input is answered if it can be, else dropped; it never
    /// touches any other message.
    pub fn handle_datagram(&self, buf: &[u8], inbound: Inbound) {
        if buf.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0)) {
            return; // keep-alive
        }
        match parse_message(buf, Framing::Datagram) {
            Ok((raw, _)) => self.handle_message(raw, inbound),
            Err(e) => self.reject_unparsed(buf, &inbound, &e.to_string()),
        }
    }

    /// Answers 400 to a request the framer refused, when enough of it is readable.
    pub fn reject_unparsed(&self, buf: &[u8], inbound: &Inbound, why: &str) {
        if let Some(headers) = salvage_request_headers(buf) {
            if headers.get("Via").is_some() {
                let reason = format!("Bad Request - {why}");
                self.answer(&headers, inbound, 400, Some(&reason), |b| b);
            }
        }
    }

    pub fn handle_message(&self, raw: RawMessage, inbound: Inbound) {
        match raw.start {
            StartLine::Response { .. } => self.clients.on_response(raw),
            StartLine::Request { ref method, .. } => {
                // ACK gets no response, not even to a malformed one (RFC 3261 §17.2.1).
                let is_ack = *method == Method::Ack;
                match Request::check(raw, SUPPORTED) {
                    Ok(req) => self.handle_request(req, inbound),
                    Err(Refused { rejection, headers }) => {
                        if !is_ack && matches!(&rejection.code, 400..=599) {
                            self.answer(&headers, &inbound, rejection.code, Some(&rejection.reason), |b| {
                                match &rejection.unsupported {
                                    Some(tags) => b.header("Unsupported", tags),
                                    None => b,
                                }
                            });
                        }
                    }
                }
            }
        }
    }

    fn handle_request(&self, req: Request, inbound: Inbound) {
        let _span = tracing::trace_span!("sip", call_id = %req.call_id, method = %req.method).entered();
        match &req.method {
            Method::Register => self.registrar.register(req, inbound),
            Method::Options => {
                self.answer(&req.headers, &inbound, 200, None, |b| {
                    b.header("Allow", ALLOW)
                        .header("Accept", "application/sdp, application/reginfo+xml")
                        .header("Supported", SUPPORTED.join(", "))
                });
            }
            Method::Subscribe => self.reg_events.subscribe(req, inbound),
            Method::Ack => {}
            Method::Cancel => self.answer(&req.headers, &inbound, 481, None, |b| b),
            Method::Extension(_) => self.answer(&req.headers, &inbound, 501, None, |b| b.header("Allow", ALLOW)),
            _ => self.answer(&req.headers, &inbound, 405, None, |b| b.header("Allow", ALLOW)),
        }
    }

    fn answer(
        &self,
        headers: &Headers,
        inbound: &Inbound,
        code: u16,
        reason: Option<&str>,
        extra: impl FnOnce(ResponseBuilder) -> ResponseBuilder,
    ) {
        let bytes: Bytes = extra(ResponseBuilder::new(code, reason, headers, inbound.flow.remote)).finish();
        inbound.reply.send(bytes);
        if code >= 400 {
            self.metrics.sip_rejected.get_or_create(&StatusLabels { status: code }).inc();
        }
    }
}
