//! Raw I/O of a [`SipUa`]: sending bytes, CRLF keep-alives, reading and framing what arrives
//! (datagram, or Content-Length on streams), and the queue of messages received while waiting for
//! something else.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::connect::Conn;
use super::{frame_stream, ReceivedMessage, SipUa};

impl SipUa {
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .await
            .unwrap_or_else(|e| panic!("send over {} to {}: {e}", self.transport, self.server));
    }

    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sent.push(String::from_utf8_lossy(bytes).into_owned());
        match &mut self.conn {
            Conn::Udp(s) => s.send_to(bytes, self.server).await.map(|_| ()),
            Conn::Tcp(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Sends to another address (UDP only), e.g. a response to a request from another socket.
    pub async fn send_raw_to(&mut self, bytes: &[u8], to: SocketAddr) {
        match &mut self.conn {
            Conn::Udp(s) => {
                self.sent.push(String::from_utf8_lossy(bytes).into_owned());
                s.send_to(bytes, to).await.expect("UDP send");
            }
            _ => self.send_raw(bytes).await,
        }
    }

    /// RFC 5626 double-CRLF ping (streams); the pong is counted in `pongs`.
    pub async fn send_keepalive(&mut self) {
        self.send_raw(b"\r\n\r\n").await;
    }

    /// Waits until `pongs` grows (streams), for at most `timeout`.
    pub async fn wait_pong(&mut self, timeout: Duration) -> bool {
        let before = self.pongs;
        let deadline = Instant::now() + timeout;
        while self.pongs == before && !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(m) = self.recv_wire(left).await {
                self.queue.push_back(m);
            }
        }
        self.pongs > before
    }

    /// Reads the next message off the wire (ignoring the queue).
    pub(super) async fn recv_wire(&mut self, timeout: Duration) -> Option<ReceivedMessage> {
        let deadline = Instant::now() + timeout;
        let transport = self.transport;
        let server = self.server;
        match &mut self.conn {
            Conn::Udp(s) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let (n, from) = tokio::time::timeout(left, s.recv_from(&mut buf)).await.ok()?.ok()?;
                    let data = &buf[..n];
                    if data.iter().all(|b| b.is_ascii_whitespace()) {
                        continue; // keep-alive datagram
                    }
                    return Some(ReceivedMessage::parse(data, from, transport));
                }
            }
            conn => loop {
                if let Some(frame) = frame_stream(&mut self.rbuf, &mut self.pongs) {
                    return Some(ReceivedMessage::parse(&frame, server, transport));
                }
                if self.closed {
                    return None;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                let read = match conn {
                    Conn::Tcp(s) => tokio::time::timeout(left, s.read_buf(&mut self.rbuf)).await,
                    Conn::Tls(s) => tokio::time::timeout(left, s.read_buf(&mut self.rbuf)).await,
                    Conn::Udp(_) => unreachable!(),
                };
                match read {
                    Err(_) => {
                        // Timed out: a last look for CRLF pongs without a message.
                        frame_stream(&mut self.rbuf, &mut self.pongs);
                        return None;
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        self.closed = true;
                        frame_stream(&mut self.rbuf, &mut self.pongs);
                    }
                    Ok(Ok(_)) => {}
                }
            },
        }
    }

    /// The next message: queued ones first, then from the wire.
    pub async fn recv_message(&mut self, timeout: Duration) -> Option<ReceivedMessage> {
        if let Some(m) = self.queue.pop_front() {
            return Some(m);
        }
        self.recv_wire(timeout).await
    }

    /// The next request (responses received meanwhile are kept as stray).
    pub async fn recv_request(&mut self, timeout: Duration) -> Option<ReceivedMessage> {
        if let Some(i) = self.queue.iter().position(|m| m.is_request()) {
            return self.queue.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.recv_wire(left).await?;
            if m.is_request() {
                return Some(m);
            }
            self.stray_responses.push(m);
        }
    }

    /// True when the stream transport was closed by the peer (reads until `timeout` to find out).
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(m) = self.recv_wire(left).await {
                self.queue.push_back(m);
            }
        }
        self.closed
    }
}
