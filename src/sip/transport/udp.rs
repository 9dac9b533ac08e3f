//! UDP: one receive loop per socket. Each datagram is a message on its own; it is parsed and
//! handled on the spot (no task per packet), and answers go out through a clone of the socket that
//! any thread can send on (the store's writer sends 200 OKs once bindings are durable).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{Connections, Inbound, Sender};
use crate::registrar::binding::{Flow, TransportKind};
use crate::sip::dispatch::Dispatcher;
use crate::sip::message::MAX_MESSAGE_SIZE;

/// Datagrams in a row without the socket ever running empty before the listener calls itself
/// overloaded (at ~20 µs each, about 80 ms of backlog).
const OVERLOAD_STREAK: usize = 4096;

/// Receive (and send) buffer asked of the kernel.
const RECV_BUFFER: usize = 4 << 20;

/// A bound UDP listener.
pub struct UdpListener {
    socket: Arc<UdpSocket>,
    sender: Arc<std::net::UdpSocket>,
    local: SocketAddr,
}

impl UdpListener {
    pub fn bind(addr: SocketAddr) -> std::io::Result<UdpListener> {
        let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        // Bursts of REGISTERs (a site's phones after a power cut) outrun the default ~200 KiB
        // buffer; the kernel caps this at net.core.rmem_max.
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
        let _ = socket.set_send_buffer_size(RECV_BUFFER);
        socket.bind(&addr.into())?;
        let std_socket: std::net::UdpSocket = socket.into();
        std_socket.set_nonblocking(true)?;
        let sender = Arc::new(std_socket.try_clone()?);
        let local = std_socket.local_addr()?;
        Ok(UdpListener { socket: Arc::new(UdpSocket::from_std(std_socket)?), sender, local })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves the socket with one receive loop per CPU, so one listener can use every core; the
    /// registrar's per-AOR locking keeps concurrent REGISTERs of one phone ordered.
    pub async fn run(self, dispatcher: Arc<Dispatcher>, connections: Arc<Connections>, shutdown: CancellationToken) {
        connections.add_udp(self.local, self.sender.clone());
        let loops = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
        let this = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..loops {
            let (this, dispatcher, shutdown) = (this.clone(), dispatcher.clone(), shutdown.clone());
            tasks.spawn(async move { this.receive_loop(dispatcher, shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn receive_loop(&self, dispatcher: Arc<Dispatcher>, shutdown: CancellationToken) {
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
        // Datagrams handled since the socket was last found empty: when it never empties, the
        // loop is behind and new work is answered 503 (cheap) instead of processed (costly).
        let mut streak = 0usize;
        loop {
            let received = match self.socket.try_recv_from(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    streak = 0;
                    tokio::select! {
                        r = self.socket.readable() => { if r.is_err() { return; } continue; }
                        _ = shutdown.cancelled() => return,
                    }
                }
                other => other,
            };
            let (len, from) = match received {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems: not fatal.
                    tracing::debug!(error = %e, "udp receive error");
                    continue;
                }
            };
            streak += 1;
            if streak.is_multiple_of(256) {
                tokio::task::yield_now().await;
            }
            if len > MAX_MESSAGE_SIZE {
                continue;
            }
            let inbound = Inbound {
                flow: Flow { transport: TransportKind::Udp, remote: from, local: self.local, connection: 0 },
                reply: Sender::Udp { socket: self.sender.clone(), to: from },
                received_at: Instant::now(),
                // Shed a growing share of new work the longer the backlog lasts (1/2, then 2/3,
                // ...): refusing all of it would starve the phones of the 401s they need.
                overloaded: streak > OVERLOAD_STREAK && !streak.is_multiple_of(1 + streak / OVERLOAD_STREAK),
            };
            dispatcher.handle_datagram(&buf[..len], inbound);
        }
    }
}
