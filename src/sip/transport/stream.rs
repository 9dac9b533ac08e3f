//! TCP and TLS connections. Each connection is one task that reads (framing by Content-Length,
//! RFC 5626 keep-alives: a double CRLF ping gets a single CRLF pong) and writes what its queue
//! holds, so answers and NOTIFYs can be sent from anywhere without waiting. Answers to what was
//! just read are written by the same task as soon as the messages are handled, all of them at once
//! (one TLS record, one system call), with no other task to wake. Garbage or a framing error
//! closes that connection only. Idle connections close after the configured time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{Connections, Inbound, Sender};
use crate::metrics::{Metrics, TransportLabel, TransportLabels};
use crate::registrar::binding::{Flow, TransportKind};
use crate::sip::dispatch::Dispatcher;
use crate::sip::message::{parse_message, FrameError, Framing, MAX_MESSAGE_SIZE};

/// What every connection of one listener shares.
#[derive(Clone)]
pub struct StreamContext {
    pub dispatcher: Arc<Dispatcher>,
    pub connections: Arc<Connections>,
    pub metrics: Arc<Metrics>,
    pub idle_timeout: Duration,
    pub shutdown: CancellationToken,
}

/// Accepts TCP (or, with `tls`, TLS) connections until shutdown.
pub async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, ctx: StreamContext) {
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.shutdown.cancelled() => return,
        };
        let (socket, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let local = local.unwrap_or(remote);
        let ctx = ctx.clone();
        match tls.clone() {
            None => {
                tokio::spawn(serve(socket, TransportKind::Tcp, remote, local, ctx));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => serve(stream, TransportKind::Tls, remote, local, ctx).await,
                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

fn label(t: TransportKind) -> TransportLabels {
    TransportLabels { transport: if t == TransportKind::Tls { TransportLabel::tls } else { TransportLabel::tcp } }
}

/// Serves one connection until it closes, idles out, or sends something unframeable.
pub async fn serve<S>(stream: S, transport: TransportKind, remote: SocketAddr, local: SocketAddr, ctx: StreamContext)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut stream = stream;
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let id = ctx.connections.add_stream(tx.clone(), transport, remote);
    let gauge = ctx.metrics.open_connections.get_or_create(&label(transport)).clone();
    gauge.inc();
    let flow = Flow { transport, remote, local, connection: id };
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = Vec::new();
    let idle_deadline = || tokio::time::Instant::now().checked_add(ctx.idle_timeout);
    let mut idle_at = idle_deadline();
    loop {
        // Both branches are cancel-safe: a read that loses the race has read nothing.
        tokio::select! {
            read = stream.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => idle_at = idle_deadline(),
                }
                let keep = drain(&mut buf, &flow, &tx, &ctx) && buf.len() <= MAX_MESSAGE_SIZE;
                // The answers to what was read (and anything else queued), in one write.
                if !flush(&mut stream, &mut rx, &mut out).await || !keep {
                    break;
                }
            }
            Some(first) = rx.recv() => {
                out.extend_from_slice(&first);
                if !flush(&mut stream, &mut rx, &mut out).await {
                    break;
                }
            }
            _ = sleep_until(idle_at) => break,
            _ = ctx.shutdown.cancelled() => break,
        }
    }
    ctx.connections.remove_stream(id);
    gauge.dec();
    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
}

/// A peer that reads nothing for this long while we write to it is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `out` and everything queued in `rx` as one write; false when the connection is gone
/// (or stuck: see [`WRITE_TIMEOUT`]).
async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    rx: &mut mpsc::UnboundedReceiver<Bytes>,
    out: &mut Vec<u8>,
) -> bool {
    while let Ok(more) = rx.try_recv() {
        out.extend_from_slice(&more);
    }
    if out.is_empty() {
        return true;
    }
    let write = async { stream.write_all(out).await.is_ok() && stream.flush().await.is_ok() };
    let written = matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(true));
    out.clear();
    // A burst (a batch of NOTIFYs) may have grown it: idle connections are many, keep them small.
    if out.capacity() > 64 << 10 {
        *out = Vec::new();
    }
    written
}

/// Sleeps until `at`; forever when there is no such instant (an idle timeout too large to add).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Handles every complete message in `buf`; false when the connection must close.
fn drain(buf: &mut BytesMut, flow: &Flow, tx: &mpsc::UnboundedSender<Bytes>, ctx: &StreamContext) -> bool {
    loop {
        // RFC 5626 §3.5.1: a double CRLF is a ping, answered with a single CRLF; a lone CRLF is a pong.
        if buf.starts_with(b"\r\n\r\n") {
            buf.advance(4);
            let _ = tx.send(Bytes::from_static(b"\r\n"));
            continue;
        }
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            continue;
        }
        if buf.is_empty() {
            return true;
        }
        match parse_message(buf, Framing::Stream) {
            Ok((raw, used)) => {
                buf.advance(used);
                let inbound = Inbound {
                    flow: *flow,
                    reply: Sender::Stream { tx: tx.clone() },
                    received_at: Instant::now(),
                    overloaded: false,
                };
                ctx.dispatcher.handle_message(raw, inbound);
            }
            Err(FrameError::Incomplete) => return true,
            Err(e) => {
                let inbound = Inbound {
                    flow: *flow,
                    reply: Sender::Stream { tx: tx.clone() },
                    received_at: Instant::now(),
                    overloaded: false,
                };
                ctx.dispatcher.reject_unparsed(buf, &inbound, &e.to_string());
                return false;
            }
        }
    }
}
