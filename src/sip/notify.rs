//! NOTIFY requests deskline sends to phones: the vendor's check-sync (resync) event, sent on the
//! flow the phone registered on, from deskline's own address, as a real client transaction:
//! retransmitted on UDP (Timer E doubling from 500 ms to 4 s, given up at Timer F = 32 s), matched
//! by branch, and answered with the device's own credentials when the phone challenges it (Poly and
//! Cisco phones do, in their own realm).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{timeout_at, Instant};

use super::client::ClientTransactions;
use super::headers::{DigestAlgorithm, DigestChallenge, DigestCredentials};
use super::message::StartLine;
use super::transport::Connections;
use crate::registrar::binding::{Flow, TransportKind};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_F: Duration = Duration::from_secs(32);

/// What became of a NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// The phone answered 2xx.
    Delivered,
    /// The phone answered with this failure status.
    Refused(u16),
    /// No answer within Timer F.
    TimedOut,
    /// The flow is gone (the connection closed, no socket for it).
    NoFlow,
}

/// One NOTIFY to send.
#[derive(Debug, Clone)]
pub struct NotifyRequest {
    /// The phone's contact URI (the Request-URI).
    pub target: String,
    pub flow: Flow,
    /// The Event header value, e.g. `check-sync;reboot=false` or `resync`.
    pub event: String,
    /// The address of record the phone registered (To/From user).
    pub aor: String,
    /// Device credentials to answer a challenge with.
    pub auth_user: String,
    /// Secrets to answer a challenge with, in order.
    pub auth_secrets: Vec<String>,
}

pub struct Notifier {
    connections: Arc<Connections>,
    clients: Arc<ClientTransactions>,
    /// Timer F, shortened in tests that wait for unreachable phones.
    timeout: Duration,
}

impl Notifier {
    pub fn new(connections: Arc<Connections>, clients: Arc<ClientTransactions>) -> Notifier {
        Notifier { connections, clients, timeout: TIMER_F }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Notifier {
        self.timeout = timeout;
        self
    }

    /// Sends the NOTIFY and waits for its final answer. A digest challenge from the phone is
    /// answered with each of `auth_secrets` in turn (the one the phone most likely holds first):
    /// after a rotation the phone still knows only its old secret until it has fetched its config.
    pub async fn send(&self, n: &NotifyRequest) -> NotifyOutcome {
        let call_id = format!("{}@deskline", random_token());
        let from_tag = random_token();
        let mut secrets = n.auth_secrets.iter().peekable();
        let mut authorization: Option<String> = None;
        for cseq in 1..=(2 * n.auth_secrets.len() as u32 + 1) {
            let branch = format!("z9hG4bK{}", random_token());
            let bytes = build_notify(n, &branch, &call_id, &from_tag, cseq, authorization.as_deref());
            let (code, challenge) = match self.transact(&n.flow, &branch, bytes).await {
                Ok(answer) => answer,
                Err(o) => return o,
            };
            match (code, challenge) {
                (200..=299, _) => return NotifyOutcome::Delivered,
                (401 | 407, Some(ch)) if authorization.is_none() => match secrets.next() {
                    Some(secret) => authorization = Some(answer_challenge(&ch, n, secret, "NOTIFY", &n.target)),
                    None => return NotifyOutcome::Refused(code),
                },
                // Our answer was refused: start again for a fresh challenge, with the next secret.
                (401 | 403 | 407, _) if authorization.is_some() && secrets.peek().is_some() => authorization = None,
                (code, _) => return NotifyOutcome::Refused(code),
            }
        }
        NotifyOutcome::Refused(401)
    }

    /// One client transaction on `flow`: send (and resend on UDP) until a final response or
    /// Timer F. Returns the status and any digest challenge in it.
    pub async fn transact(
        &self,
        flow: &Flow,
        branch: &str,
        bytes: Bytes,
    ) -> Result<(u16, Option<DigestChallenge>), NotifyOutcome> {
        let Some(sender) = self.connections.sender_for(flow) else { return Err(NotifyOutcome::NoFlow) };
        let mut rx = self.clients.start(branch);
        let deadline = Instant::now() + self.timeout;
        let mut interval = T1;
        let mut next_resend = Instant::now() + interval;
        sender.send(bytes.clone());
        let result = loop {
            let wake = if flow.transport == TransportKind::Udp { next_resend.min(deadline) } else { deadline };
            match timeout_at(wake, rx.recv()).await {
                Ok(Some(raw)) => {
                    let StartLine::Response { code, .. } = raw.start else { continue };
                    if code < 200 {
                        continue;
                    }
                    let header = if code == 407 { "Proxy-Authenticate" } else { "WWW-Authenticate" };
                    let challenge = raw.headers.get_all(header).filter_map(|v| DigestChallenge::parse(v).ok()).next();
                    break Ok((code, challenge));
                }
                Ok(None) => break Err(NotifyOutcome::NoFlow),
                Err(_) if Instant::now() >= deadline => break Err(NotifyOutcome::TimedOut),
                Err(_) => {
                    sender.send(bytes.clone());
                    interval = (interval * 2).min(T2);
                    next_resend = Instant::now() + interval;
                }
            }
        };
        self.clients.finish(branch);
        result
    }
}

fn build_notify(n: &NotifyRequest, branch: &str, call_id: &str, tag: &str, cseq: u32, auth: Option<&str>) -> Bytes {
    let local = super::response::sip_host_port(n.flow.local);
    let mut s = format!(
        "NOTIFY {target} SIP/2.0\r\n\
         Via: SIP/2.0/{tr} {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:deskline@{local}>;tag={tag}\r\n\
         To: <{aor}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} NOTIFY\r\n\
         Contact: <sip:deskline@{local}>\r\n\
         Event: {event}\r\n",
        target = n.target,
        tr = n.flow.transport.via_name(),
        aor = n.aor,
        event = n.event,
    );
    if let Some(a) = auth {
        s.push_str("Authorization: ");
        s.push_str(a);
        s.push_str("\r\n");
    }
    s.push_str(concat!("User-Agent: deskline/", env!("CARGO_PKG_VERSION"), "\r\nContent-Length: 0\r\n\r\n"));
    Bytes::from(s)
}

/// The Authorization for a phone's challenge, with the device's credentials in the phone's realm.
fn answer_challenge(ch: &DigestChallenge, n: &NotifyRequest, secret: &str, method: &str, uri: &str) -> String {
    let qop = ch.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")).then(|| "auth".to_string());
    let mut creds = DigestCredentials {
        username: n.auth_user.as_str().into(),
        realm: ch.realm.as_str().into(),
        nonce: ch.nonce.as_str().into(),
        uri: uri.into(),
        response: Default::default(),
        algorithm: ch.algorithm.clone(),
        cnonce: qop.as_ref().map(|_| random_token().into()),
        qop: qop.as_deref().map(Into::into),
        nc: qop.as_ref().map(|_| 1),
        opaque: ch.opaque.as_deref().map(Into::into),
    };
    creds.response = super::auth::response(&creds, method, secret).into();
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
        creds.username,
        creds.realm,
        creds.nonce,
        creds.uri,
        creds.response,
        if ch.algorithm == DigestAlgorithm::Md5 { "MD5" } else { ch.algorithm.as_str() }
    );
    if let (Some(q), Some(c)) = (&creds.qop, &creds.cnonce) {
        out.push_str(&format!(", qop={q}, nc=00000001, cnonce=\"{c}\""));
    }
    if let Some(o) = &creds.opaque {
        out.push_str(&format!(", opaque=\"{o}\""));
    }
    out
}

pub fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}
