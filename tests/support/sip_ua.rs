//! A test SIP user agent that speaks raw bytes over UDP, TCP or TLS (loopback only).
//!
//! ```ignore
//! let mut ua = SipUa::for_server(&srv, Transport::Tls).await;
//! let ok = ua.register("1001", "dev1001", "secret", Some(600), "", Algorithm::Sha256).await;
//! assert_eq!(ok.status(), Some(200), "{}", ok.raw);
//! let notify = ua.recv_request(Duration::from_secs(5)).await.unwrap();
//! ua.respond(&notify, 200, &[]).await;
//! ```
//!
//! Everything received is framed (datagram, or Content-Length on streams), kept as raw text,
//! split into headers by a small parser of our own (unfolding, compact names), and also handed to
//! `rsip::SipMessage::try_from` as an independent parser (`ReceivedMessage::parsed`).
//! Requests the server sends while the UA waits for a response are queued and returned by
//! [`SipUa::recv_message`] / [`SipUa::recv_request`] later.
//!
//! This file holds [`Transport`] and the [`SipUa`] state; its methods are in `sip_ua/` by concept:
//! opening a UA over a transport ([`connect`]), raw I/O and framing ([`wire`]), requests and their
//! transactions with digest answers ([`request`]), REGISTER and OPTIONS ([`register`]), and
//! answering the server's own requests ([`respond`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;

use super::digest;

mod connect;
mod register;
mod request;
mod respond;
mod wire;

pub use super::message::*;
pub use connect::tls_client_config;
pub use register::{ContactSpec, RegisterParams};
pub use respond::reason_phrase;

use connect::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];
    /// `UDP`, `TCP`, `TLS` (Via).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
    /// `udp`, `tcp`, `tls` (URI `transport=` parameter).
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.via_name())
    }
}
pub struct SipUa {
    pub transport: Transport,
    pub server: SocketAddr,
    pub local: SocketAddr,
    conn: Conn,
    rbuf: BytesMut,
    /// Domain of AORs (`pbx.test`).
    pub domain: String,
    /// Request-URI of REGISTER and OPTIONS (`sip:pbx.test`).
    pub request_uri: String,
    pub user_agent: String,
    /// Kept across REGISTERs (refreshes), like a phone does. [`new_call_id`](Self::new_call_id) changes it.
    pub call_id: String,
    pub cseq: u32,
    pub from_tag: String,
    /// The user in From of non-REGISTER requests (set by the last REGISTER).
    pub user: Option<String>,
    /// Requests (and stray responses) received while waiting for something else.
    pub queue: VecDeque<ReceivedMessage>,
    /// Responses that matched no transaction of ours.
    pub stray_responses: Vec<ReceivedMessage>,
    /// CRLF keep-alive answers seen on a stream.
    pub pongs: usize,
    /// The stream was closed by the server.
    pub closed: bool,
    /// Default wait for a final response.
    pub timeout: Duration,
    /// The last challenge answered, and the nc used with it (for nonce reuse on refresh).
    pub last_challenge: Option<(digest::Challenge, u32)>,
    /// Send Authorization from `last_challenge` (nc+1) on the first try, like phones refreshing.
    pub reuse_nonce: bool,
    /// Every message sent, in order (text).
    pub sent: Vec<String>,
}
