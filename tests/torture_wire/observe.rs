//! Sending one corpus message over UDP or TCP, recording what came back ([`Observed`]), and judging
//! it against an expected outcome ([`Out`]).

use std::time::Duration;

use super::manifest::Out;
use super::support::{ReceivedMessage, SipUa, TestServer, Transport};
use super::via::rewrite_top_via;
use super::{collect, ANSWER_WAIT, IDLE_TIMEOUT, NO_ANSWER_WAIT};

/// What happened to one message on one transport.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// Final responses received, in order (first one judged).
    pub(crate) answers: Vec<ReceivedMessage>,
    /// TCP: the server closed the connection.
    pub(crate) closed: bool,
    /// The send itself failed (e.g. a datagram larger than the OS allows).
    pub(crate) send_error: Option<String>,
    /// What was sent, parsed leniently (to match the answer to it).
    pub(crate) sent: Option<ReceivedMessage>,
}

impl Observed {
    pub(crate) fn describe(&self) -> String {
        let mut s = match self.answers.first() {
            Some(m) => match m.status() {
                Some(c) => c.to_string(),
                None => format!("non-response {:?}", m.start_line),
            },
            None => "no answer".into(),
        };
        if self.answers.len() > 1 {
            let more: Vec<String> =
                self.answers[1..].iter().map(|m| m.status().map(|c| c.to_string()).unwrap_or("?".into())).collect();
            s.push_str(&format!(" (+{})", more.join(",")));
        }
        if self.closed {
            s.push_str("+closed");
        }
        if let Some(e) = &self.send_error {
            s.push_str(&format!(" [send error: {e}]"));
        }
        s
    }
}

pub(crate) async fn send_udp(srv: &TestServer, bytes: &[u8], rewrite: bool, expect_answer: bool) -> Observed {
    let mut ua = SipUa::udp(srv.udp_addr()).await;
    let msg = if rewrite {
        match rewrite_top_via(bytes, &ua.local_hostport()) {
            Some(m) => m,
            None => return Observed { send_error: Some("top Via not rewritable".into()), ..Default::default() },
        }
    } else {
        bytes.to_vec()
    };
    if let Err(e) = ua.try_send_raw(&msg).await {
        return Observed { send_error: Some(e.to_string()), ..Default::default() };
    }
    let first = if expect_answer { ANSWER_WAIT } else { NO_ANSWER_WAIT };
    let answers = collect(&mut ua, first, Duration::from_millis(200)).await;
    let sent = Some(ReceivedMessage::parse(&msg, ua.local, Transport::Udp));
    Observed { answers, closed: false, send_error: None, sent }
}

pub(crate) async fn send_tcp(srv: &TestServer, bytes: &[u8], expect: Out) -> Observed {
    let mut ua = SipUa::tcp(srv.tcp_addr()).await;
    let send_error = ua.try_send_raw(bytes).await.err().map(|e| e.to_string());
    let first = match expect {
        Out::Status(_) => ANSWER_WAIT,
        Out::CloseOr400 => Duration::from_secs(1),
        Out::NoAnswer => NO_ANSWER_WAIT,
        Out::WaitThenClose | Out::Incomplete => Duration::from_secs(1),
    };
    let answers = collect(&mut ua, first, Duration::from_millis(200)).await;
    let closed = match expect {
        Out::CloseOr400 => ua.wait_closed(Duration::from_secs(2)).await,
        Out::WaitThenClose => ua.wait_closed(Duration::from_secs(IDLE_TIMEOUT + 4)).await,
        _ => ua.closed,
    };
    let sent = Some(ReceivedMessage::parse(bytes, ua.local, Transport::Tcp));
    Observed { answers, closed, send_error, sent }
}

/// Checks the headers a status needs; Err explains what is missing.
fn check_headers(file: &str, status: u16, m: &ReceivedMessage) -> Result<(), String> {
    match status {
        405 => {
            let allow = m.header_list("allow");
            if !allow.iter().any(|a| a.eq_ignore_ascii_case("REGISTER")) {
                return Err(format!("405 without an Allow listing REGISTER: {allow:?}"));
            }
        }
        401 if m.www_authenticate().is_empty() => {
            return Err("401 without WWW-Authenticate".into());
        }
        420 => {
            let unsupported: Vec<String> = m.header_list("unsupported");
            if unsupported.is_empty() {
                return Err("420 without Unsupported".into());
            }
            if file.ends_with("bext01.dat") {
                for tag in ["nothingSupportsThis", "nothingSupportsThisEither"] {
                    if !unsupported.iter().any(|u| u == tag) {
                        return Err(format!("Unsupported {unsupported:?} lacks {tag}"));
                    }
                }
            }
        }
        _ => {}
    }
    // Whatever we got must be a response rsip can read too.
    if let Err(e) = &m.parsed {
        return Err(format!("the answer does not parse with rsip: {e}"));
    }
    Ok(())
}

/// Whether `obs` satisfies `out` on `transport`; Err with the reason otherwise.
pub(crate) fn judge(file: &str, transport: Transport, out: Out, obs: &Observed) -> Result<(), String> {
    if let Some(e) = &obs.send_error {
        return Err(format!("send failed: {e}"));
    }
    let first = obs.answers.first();
    match out {
        Out::Status(code) => {
            let Some(m) = first else { return Err("no answer".into()) };
            if m.status() != Some(code) {
                return Err(format!("status {:?}", m.status()));
            }
            check_headers(file, code, m)?;
            // It answers this message: the Call-ID is echoed (when the message has exactly one).
            if let Some(sent) = &obs.sent {
                let ids = sent.headers("call-id");
                if ids.len() == 1 && m.call_id() != Some(ids[0]) {
                    return Err(format!("Call-ID {:?} does not echo the request's {:?}", m.call_id(), ids[0]));
                }
            }
            // One datagram, one answer (dblreq: the trailing octets are ignored).
            if transport == Transport::Udp && obs.answers.len() > 1 {
                return Err(format!("{} answers to one datagram", obs.answers.len()));
            }
            Ok(())
        }
        Out::NoAnswer | Out::Incomplete => match first {
            None => Ok(()),
            Some(m) => Err(format!("unexpected answer {:?}", m.start_line)),
        },
        Out::CloseOr400 => {
            if let Some(m) = first {
                if m.status() != Some(400) {
                    return Err(format!("answer {:?} to a framing error", m.start_line));
                }
            }
            if !obs.closed {
                return Err("connection not closed after a framing error".into());
            }
            Ok(())
        }
        Out::WaitThenClose => {
            if let Some(m) = first {
                return Err(format!("answered {:?} before the message was complete", m.start_line));
            }
            if !obs.closed {
                return Err(format!("connection still open {}s after idle_timeout", 4));
            }
            Ok(())
        }
    }
}
