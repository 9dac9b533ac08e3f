//! SIP transports: UDP sockets and TCP/TLS connections. They frame bytes into messages, hand each
//! to the [`super::dispatch::Dispatcher`], and carry answers back. Every open stream connection is
//! kept in [`Connections`] under an id, so a request deskline starts later (a NOTIFY to a phone) can
//! go back over the flow the phone registered on.

pub mod outbox;
pub mod stream;
pub mod udp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::registrar::binding::{Flow, TransportKind};

/// Where an answer (or a request of ours) goes: a UDP socket and a destination, or the writer
/// queue of a stream connection. Sending never blocks and never waits.
#[derive(Clone, Debug)]
pub enum Sender {
    Udp { socket: Arc<std::net::UdpSocket>, to: SocketAddr },
    Stream { tx: mpsc::UnboundedSender<Bytes> },
}

impl Sender {
    /// Sends one message. A full UDP buffer or a closed connection loses it (the peer retransmits).
    pub fn send(&self, bytes: Bytes) -> bool {
        match self {
            Sender::Udp { socket, to } => outbox::send(socket, *to, bytes),
            Sender::Stream { tx } => tx.send(bytes).is_ok(),
        }
    }
}

/// One received message's origin: its flow and how to answer on it.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub flow: Flow,
    pub reply: Sender,
    pub received_at: std::time::Instant,
    /// The transport cannot keep up (its receive queue never drains): new work is shed with 503.
    pub overloaded: bool,
}

/// A live stream connection.
#[derive(Clone)]
struct Connection {
    tx: mpsc::UnboundedSender<Bytes>,
    transport: TransportKind,
    remote: SocketAddr,
}

/// Every open TCP/TLS connection and every UDP socket, so deskline can send on a phone's flow.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    streams: DashMap<u64, Connection>,
    udp: DashMap<SocketAddr, Arc<std::net::UdpSocket>>,
}

impl Connections {
    pub fn new() -> Arc<Connections> {
        Arc::new(Connections { next_id: AtomicU64::new(1), ..Default::default() })
    }

    fn add_stream(&self, tx: mpsc::UnboundedSender<Bytes>, transport: TransportKind, remote: SocketAddr) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.streams.insert(id, Connection { tx, transport, remote });
        id
    }

    fn remove_stream(&self, id: u64) {
        self.streams.remove(&id);
    }

    fn add_udp(&self, local: SocketAddr, socket: Arc<std::net::UdpSocket>) {
        self.udp.insert(local, socket);
    }

    /// How to reach a flow now: its connection if still open, or the UDP socket it came in on.
    pub fn sender_for(&self, flow: &Flow) -> Option<Sender> {
        match flow.transport {
            TransportKind::Udp => {
                let socket = self.udp.get(&flow.local).map(|s| s.clone()).or_else(|| {
                    // The local address may be a wildcard listener; any socket of the right family works.
                    self.udp.iter().find(|e| e.key().is_ipv4() == flow.remote.is_ipv4()).map(|e| e.value().clone())
                })?;
                Some(Sender::Udp { socket, to: flow.remote })
            }
            TransportKind::Tcp | TransportKind::Tls => {
                let c = self.streams.get(&flow.connection)?;
                (c.remote == flow.remote && c.transport == flow.transport).then(|| Sender::Stream { tx: c.tx.clone() })
            }
        }
    }
}
