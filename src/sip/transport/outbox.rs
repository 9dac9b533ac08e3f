//! A UDP receive thread's outbox: while it works through a run of datagrams, the answers it sends
//! on its own socket are collected and leave together in one `sendmmsg` when the run ends, instead
//! of one `sendto` each. Answers to any other socket, and sends from other threads (NOTIFYs from
//! tokio tasks, the 200 OKs of a journal batch another thread wrote), go out at once.
//!
//! The run is short (see `udp.rs`: until the socket runs empty, at most 16 datagrams), so an
//! answer waits at most for the handling of a few others; and nothing on a receive thread waits
//! for an answer it has sent.

use std::cell::RefCell;
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use bytes::Bytes;
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};

thread_local! {
    /// This thread's open outbox, if it has one.
    static OUTBOX: RefCell<Option<Outbox>> = const { RefCell::new(None) };
}

/// The answers held for one socket.
struct Outbox {
    socket: Arc<UdpSocket>,
    messages: Vec<(SocketAddr, Bytes)>,
}

/// While alive, answers sent on `socket` from this thread are held; dropping it sends them. Not
/// `Send`: it belongs to its thread. A guard taken while another is open on the thread does
/// nothing (as `HeldWrites`): the outer one sends, and answers to another socket go out at once.
pub struct HeldAnswers {
    outermost: bool,
    _on_this_thread: std::marker::PhantomData<*const ()>,
}

impl HeldAnswers {
    pub fn begin(socket: &Arc<UdpSocket>) -> HeldAnswers {
        let outermost = OUTBOX.with_borrow_mut(|o| {
            o.is_none().then(|| *o = Some(Outbox { socket: socket.clone(), messages: Vec::new() })).is_some()
        });
        HeldAnswers { outermost, _on_this_thread: std::marker::PhantomData }
    }
}

impl Drop for HeldAnswers {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        if let Some(outbox) = OUTBOX.with_borrow_mut(Option::take) {
            outbox.send_all();
        }
    }
}

/// Sends `bytes` to `to` on `socket`, or holds it in this thread's outbox for that socket. False
/// when the kernel refused it at once (a full buffer: the peer retransmits).
pub fn send(socket: &Arc<UdpSocket>, to: SocketAddr, bytes: Bytes) -> bool {
    let bytes = OUTBOX.with_borrow_mut(|o| match o {
        Some(outbox) if Arc::ptr_eq(&outbox.socket, socket) => {
            outbox.messages.push((to, bytes));
            None
        }
        _ => Some(bytes),
    });
    match bytes {
        Some(bytes) => socket.send_to(&bytes, to).is_ok(),
        None => true,
    }
}

/// How many messages one `sendmmsg` carries (the kernel's UIO_MAXIOV caps it at 1024).
const PER_CALL: usize = 64;

impl Outbox {
    /// Sends everything held, in order. A message the kernel refuses (a full buffer, an
    /// unreachable address) is lost as a refused `sendto` would be, and the rest still go.
    fn send_all(self) {
        for chunk in self.messages.chunks(PER_CALL) {
            let addrs: Vec<SocketAddrAny> = chunk.iter().map(|(to, _)| SocketAddrAny::from(*to)).collect();
            let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|(_, b)| [IoSlice::new(b)]).collect();
            let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
                chunk.iter().map(|_| SendAncillaryBuffer::default()).collect();
            let mut headers: Vec<MMsgHdr<'_>> = addrs
                .iter()
                .zip(&iovs)
                .zip(controls.iter_mut())
                .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
                .collect();
            let mut from = 0;
            while from < headers.len() {
                match sendmmsg(&*self.socket, &mut headers[from..], SendFlags::DONTWAIT) {
                    Ok(0) | Err(_) => from += 1, // the first of those left was refused: skip it
                    Ok(sent) => from += sent,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UdpSocket) -> Option<Vec<u8>> {
        let mut buf = [0u8; 64];
        socket.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
    }

    #[test]
    fn held_answers_leave_together_and_in_order_when_the_guard_ends() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let other = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
        let to = peer.local_addr().unwrap();
        let held = HeldAnswers::begin(&socket);
        for i in 0..100u8 {
            assert!(send(&socket, to, Bytes::from(vec![i])));
        }
        assert!(send(&other, to, Bytes::from_static(b"other")), "another socket is not held");
        assert_eq!(receive(&peer).as_deref(), Some(&b"other"[..]));
        peer.set_nonblocking(true).unwrap();
        assert_eq!(receive(&peer), None, "nothing of the held socket left yet");
        peer.set_nonblocking(false).unwrap();
        drop(held);
        for i in 0..100u8 {
            assert_eq!(receive(&peer), Some(vec![i]), "message {i} arrives in order");
        }
        assert!(send(&socket, to, Bytes::from_static(b"after")), "once the guard is gone, sent at once");
        assert_eq!(receive(&peer).as_deref(), Some(&b"after"[..]));
    }

    #[test]
    fn a_refused_message_does_not_stop_the_others() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
        let held = HeldAnswers::begin(&socket);
        send(&socket, peer.local_addr().unwrap(), Bytes::from_static(b"one"));
        // An IPv6 destination on an IPv4 socket: refused by the kernel.
        send(&socket, "[::1]:9".parse().unwrap(), Bytes::from_static(b"refused"));
        send(&socket, peer.local_addr().unwrap(), Bytes::from_static(b"two"));
        drop(held);
        assert_eq!(receive(&peer).as_deref(), Some(&b"one"[..]));
        assert_eq!(receive(&peer).as_deref(), Some(&b"two"[..]));
    }
}
