//! UDP: one socket per listener, served by receive threads (one per CPU by default). Each
//! datagram is a message on its own; it is parsed and handled on the spot (no task per packet),
//! and answers go out through a clone of the socket that any thread can send on (the store's
//! writer sends 200 OKs once bindings are durable).
//!
//! Datagrams taken back to back form a [`Run`] (until the socket runs empty, at most 16): their
//! bindings reach the journal in one append and their answers leave in one `sendmmsg`
//! (`outbox.rs`). Measured on 2 CPUs (2026-12-07, two servers side by side, one sipp each at
//! 8,000 calls/s, 3 × 15 s, and the same with the binaries swapped): 3.5–4 % less CPU per
//! REGISTER than one `pwrite` and one `sendto` per datagram (two identical binaries: within 1 %).
//!
//! Why plain threads rather than tokio tasks: handling a datagram never awaits (REGISTER's wait
//! for the store is a completion callback), so the runtime only added its readiness bookkeeping,
//! wake-ups and parking to every packet. A busy thread goes from one `recvfrom` to the next
//! without a system call in between. The threads enter the runtime, so what a handler spawns
//! (NOTIFYs, timers) still runs on tokio.
//!
//! Who is woken by a datagram: only the first thread, which sleeps in `epoll_wait` once the
//! socket is empty. The others are helpers: they nap for a millisecond and look again (twenty
//! while the listener has been quiet for a second), so they take up the queue whenever the first
//! thread is behind, descheduled or waiting on the journal, and no datagram ever wakes them.
//! Measured on 2 CPUs (2026-11-27, sipp, 15 s runs, interleaved): when every thread waited in
//! `epoll_wait` (`EPOLLEXCLUSIVE`), each burst woke a second thread, and with three times the
//! context switches deskline used 5–10 % more CPU per REGISTER and sipp (whose sends did the
//! waking) 2–10 % more; at 24,000 calls/s that setup had retransmissions where this has none. A
//! single thread costs as little but stalls every phone while it is descheduled: its p99 at half
//! capacity reached 1.87 ms, once 41 ms.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use tokio_util::sync::CancellationToken;

use super::outbox::HeldAnswers;
use super::{Connections, Inbound, Sender};
use crate::directory::HeldWrites;
use crate::registrar::binding::{Flow, TransportKind};
use crate::sip::dispatch::Dispatcher;
use crate::sip::message::MAX_MESSAGE_SIZE;

/// How often (in datagrams received without the socket running empty) a receive thread looks at
/// how full the socket's queue is.
const FILL_CHECK_EVERY: usize = 64;

/// Overload, by how full the socket's receive queue is (in 1/1024ths of its buffer) once it has
/// not run empty for [`SHED_AFTER`]: from half full, a growing share of new work is answered 503
/// (cheap) instead of processed (costly), so phones back off on Retry-After before the kernel
/// starts dropping datagrams silently (which phones answer with retransmissions: more load).
/// Neither alone is overload: a queue never empty at high load holds one or two datagrams (503s
/// appeared at 21,000 calls/s with deskline at 65 % of a core when a count of datagrams in a row
/// was the test), and a burst that half-fills the buffer for a few tens of milliseconds is what
/// the buffer is for (503s appeared at 23,000 calls/s on a saturated machine with fill alone).
const SHED_FROM: u32 = 512;

/// How long the queue must have stayed non-empty before its fill counts: half of SIP's T1, after
/// which answers start racing the phones' retransmissions.
const SHED_AFTER: Duration = Duration::from_millis(250);

/// The largest share of new work shed (in 1/1024ths): never all of it, or phones would get none
/// of the 401s they need to register.
const SHED_AT_MOST: u32 = 960;

/// Receive (and send) buffer asked of the kernel.
const RECV_BUFFER: usize = 4 << 20;

/// A bound UDP listener.
pub struct UdpListener {
    socket: Arc<std::net::UdpSocket>,
    local: SocketAddr,
    /// Datagrams the first receive thread has taken: the helpers' sign of traffic.
    taken: AtomicU64,
}

/// A helper's nap while the listener has traffic, and once it has been quiet for [`QUIET_AFTER`].
const HELPER_NAP: Duration = Duration::from_millis(1);
const HELPER_IDLE_NAP: Duration = Duration::from_millis(20);
const QUIET_AFTER: Duration = Duration::from_secs(1);

/// How often an idle receive thread looks at the shutdown token.
const IDLE_WAKE: rustix::event::Timespec = rustix::event::Timespec { tv_sec: 0, tv_nsec: 250_000_000 };

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
        let local = std_socket.local_addr()?;
        Ok(UdpListener { socket: Arc::new(std_socket), local, taken: AtomicU64::new(0) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// How many receive threads serve a listener: `configured`, or when that is 0, one per CPU (at
    /// most eight): the first, woken by datagrams, and helpers (see the module documentation).
    pub fn receive_threads(configured: usize) -> usize {
        match configured {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8),
            n => n,
        }
    }

    /// Serves the socket with `threads` receive threads; the registrar's per-AOR locking keeps
    /// concurrent REGISTERs of one phone ordered. Returns once `shutdown` is cancelled and the
    /// threads have stopped.
    pub async fn run(
        self,
        threads: usize,
        dispatcher: Arc<Dispatcher>,
        connections: Arc<Connections>,
        shutdown: CancellationToken,
    ) {
        connections.add_udp(self.local, self.socket.clone());
        let loops = threads.max(1);
        let this = Arc::new(self);
        let runtime = tokio::runtime::Handle::current();
        let mut handles = Vec::new();
        for n in 0..loops {
            let (this, dispatcher, shutdown, runtime) =
                (this.clone(), dispatcher.clone(), shutdown.clone(), runtime.clone());
            let spawned = std::thread::Builder::new().name(format!("sip-udp-{n}")).spawn(move || {
                let _runtime = runtime.enter();
                if let Err(e) = this.receive_loop(&dispatcher, &shutdown, n > 0) {
                    tracing::error!(error = %e, local = %this.local, "UDP receive thread stopped");
                }
            });
            match spawned {
                Ok(t) => handles.push(t),
                Err(e) => tracing::error!(error = %e, "cannot start a UDP receive thread"),
            }
        }
        shutdown.cancelled().await;
        let _ = tokio::task::spawn_blocking(move || handles.into_iter().for_each(|t| drop(t.join()))).await;
    }

    /// Receives and handles datagrams until shutdown; `helper`: see the module documentation.
    fn receive_loop(&self, dispatcher: &Dispatcher, shutdown: &CancellationToken, helper: bool) -> std::io::Result<()> {
        let mut idle = match helper {
            true => Idle::Helper { seen: 0, traffic_at: Instant::now() },
            false => Idle::waker(&self.socket)?,
        };
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
        let mut gauge = OverloadGauge::new();
        // The first thread's count of datagrams taken, published for the helpers with a plain store
        // (only this thread writes it: no locked add on every datagram).
        let mut taken = 0u64;
        let mut run = Run::default();
        while !shutdown.is_cancelled() {
            let (len, from) = match self.socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    run.end();
                    gauge.emptied();
                    idle.wait(&self.taken)?;
                    continue;
                }
                // ICMP errors from earlier sends surface here on some systems: not fatal.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    tracing::debug!(error = %e, "udp receive error");
                    continue;
                }
                // Anything else would fail again at once: stop rather than spin.
                Err(e) => return Err(e),
            };
            let received_at = Instant::now();
            run.next(dispatcher, &self.socket);
            if !helper {
                taken += 1;
                self.taken.store(taken, Ordering::Relaxed);
            }
            let overloaded = gauge.taken(received_at, || queue_fill(&self.socket));
            if len > MAX_MESSAGE_SIZE {
                continue;
            }
            let inbound = Inbound {
                flow: Flow { transport: TransportKind::Udp, remote: from, local: self.local, connection: 0 },
                reply: Sender::Udp { socket: self.socket.clone(), to: from },
                received_at,
                overloaded,
            };
            dispatcher.handle_datagram(&buf[..len], inbound);
        }
        Ok(())
    }
}

/// A run of datagrams taken back to back: their binding writes and their answers are held and
/// made together (one journal append, one `sendmmsg`) when the socket runs empty or after
/// [`RUN_AT_MOST`] datagrams (so the first one's answer waits for at most that many others'
/// handling: about 0.2 ms).
#[derive(Default)]
struct Run {
    held: Option<(HeldWrites, HeldAnswers)>,
    taken: usize,
}

/// The most datagrams in one [`Run`].
const RUN_AT_MOST: usize = 16;

impl Run {
    /// Counts a datagram in, ending the run first if it is long enough.
    fn next(&mut self, dispatcher: &Dispatcher, socket: &Arc<std::net::UdpSocket>) {
        if self.taken >= RUN_AT_MOST {
            self.end();
        }
        if self.held.is_none() {
            let answers = HeldAnswers::begin(socket);
            self.held = Some((dispatcher.hold_writes(), answers));
        }
        self.taken += 1;
    }

    /// Writes what the run held back, then sends its answers (the 200 OKs among them are sent by
    /// the write's completions).
    fn end(&mut self) {
        if let Some((writes, answers)) = self.held.take() {
            drop(writes);
            drop(answers);
        }
        self.taken = 0;
    }
}

/// How a receive thread waits once the socket is empty.
enum Idle {
    /// The first thread: in `epoll_wait` until a datagram arrives (or [`IDLE_WAKE`] passes).
    Waker { poller: std::os::fd::OwnedFd, events: [epoll::Event; 1] },
    /// The others: a nap, then a look at the socket. `seen`: the first thread's count of
    /// datagrams taken at the last look; `traffic_at`: when that count last moved.
    Helper { seen: u64, traffic_at: Instant },
}

impl Idle {
    fn waker(socket: &std::net::UdpSocket) -> std::io::Result<Idle> {
        let poller = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let flags = epoll::EventFlags::IN | epoll::EventFlags::EXCLUSIVE;
        epoll::add(&poller, socket.as_fd(), epoll::EventData::new_u64(0), flags)?;
        let events = [epoll::Event { flags: epoll::EventFlags::empty(), data: epoll::EventData::new_u64(0) }];
        Ok(Idle::Waker { poller, events })
    }

    /// Waits until it is worth looking at the socket again; `taken` is the first thread's count.
    fn wait(&mut self, taken: &AtomicU64) -> std::io::Result<()> {
        match self {
            Idle::Waker { poller, events } => match epoll::wait(&*poller, &mut events[..], Some(&IDLE_WAKE)) {
                Ok(_) => Ok(()),
                Err(e) if e == rustix::io::Errno::INTR => Ok(()),
                Err(e) => Err(e.into()),
            },
            Idle::Helper { .. } => {
                std::thread::sleep(self.nap(taken.load(Ordering::Relaxed), Instant::now()));
                Ok(())
            }
        }
    }

    /// A helper's next nap, given the first thread's count of datagrams taken at `now`.
    fn nap(&mut self, count: u64, now: Instant) -> Duration {
        let Idle::Helper { seen, traffic_at } = self else { return Duration::ZERO };
        if count != *seen {
            (*seen, *traffic_at) = (count, now);
        }
        match now.saturating_duration_since(*traffic_at) < QUIET_AFTER {
            true => HELPER_NAP,
            false => HELPER_IDLE_NAP,
        }
    }
}

/// A receive thread's judgement of overload from its socket's queue (see [`SHED_FROM`]).
struct OverloadGauge {
    /// Datagrams taken since the socket was last found empty, and since when.
    streak: usize,
    busy_since: Instant,
    /// The share of new work to shed (1/1024ths) from the last look at the queue.
    shed: u32,
    dice: Dice,
}

impl OverloadGauge {
    fn new() -> OverloadGauge {
        OverloadGauge { streak: 0, busy_since: Instant::now(), shed: 0, dice: Dice::new() }
    }

    /// The socket ran empty: whatever the queue held is worked off.
    fn emptied(&mut self) {
        (self.streak, self.shed) = (0, 0);
    }

    /// A datagram taken at `now`: whether it is to be shed if it is new work. `fill` (the queue's
    /// fill, in 1/1024ths) is asked for every [`FILL_CHECK_EVERY`] datagrams once the queue has
    /// not run empty for [`SHED_AFTER`].
    #[inline]
    fn taken(&mut self, now: Instant, fill: impl FnOnce() -> Option<u32>) -> bool {
        self.streak += 1;
        if self.streak == 1 {
            self.busy_since = now;
        } else if self.streak.is_multiple_of(FILL_CHECK_EVERY) && now - self.busy_since >= SHED_AFTER {
            self.shed = fill().map_or(0, |fill| fill.saturating_sub(SHED_FROM) * 2).min(SHED_AT_MOST);
        }
        self.shed > 0 && self.dice.roll() < self.shed
    }
}

/// How full the socket's receive queue is, in 1/1024ths of its buffer (`SO_MEMINFO`: the bytes
/// queued, kernel overhead included, against the buffer size).
fn queue_fill(socket: &std::net::UdpSocket) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is a writable buffer of `len` bytes, as getsockopt requires, and the
    // descriptor is open for as long as `socket` is borrowed.
    let rc = unsafe {
        libc::getsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MEMINFO, info.as_mut_ptr().cast(), &mut len)
    };
    let (queued, size) = (info[libc::SK_MEMINFO_RMEM_ALLOC as usize], info[libc::SK_MEMINFO_RCVBUF as usize]);
    (rc == 0 && size > 0).then(|| ((queued as u64 * 1024) / size as u64).min(1024) as u32)
}

/// A tiny xorshift generator: which datagrams of an overload are shed, spread evenly.
struct Dice(u32);

impl Dice {
    fn new() -> Dice {
        Dice(0x9e37_79b9)
    }

    /// A number in 0..1024.
    fn roll(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 & 1023
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_fill_grows_with_the_datagrams_waiting() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(queue_fill(&socket), Some(0));
        for _ in 0..64 {
            sender.send_to(&[7u8; 1000], socket.local_addr().unwrap()).unwrap();
        }
        // Loopback delivery may finish in a deferred softirq: give it a moment.
        let mut fill = 0;
        for _ in 0..200 {
            fill = queue_fill(&socket).unwrap();
            if fill > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(fill > 0 && fill <= 1024, "{fill}");
    }

    #[test]
    fn receive_threads_are_as_configured_or_one_per_cpu() {
        assert_eq!(UdpListener::receive_threads(3), 3);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(UdpListener::receive_threads(0), cpus.clamp(1, 8));
    }

    #[test]
    fn a_helper_naps_briefly_while_there_is_traffic_and_longer_once_quiet() {
        let start = Instant::now();
        let mut idle = Idle::Helper { seen: 0, traffic_at: start };
        assert_eq!(idle.nap(0, start + Duration::from_millis(10)), HELPER_NAP);
        assert_eq!(idle.nap(0, start + QUIET_AFTER), HELPER_IDLE_NAP);
        // The first thread took datagrams meanwhile: traffic again.
        assert_eq!(idle.nap(5, start + QUIET_AFTER * 2), HELPER_NAP);
        assert_eq!(idle.nap(5, start + QUIET_AFTER * 2 + HELPER_NAP), HELPER_NAP);
        assert_eq!(idle.nap(5, start + QUIET_AFTER * 3), HELPER_IDLE_NAP);
    }

    #[test]
    fn overload_is_a_full_queue_that_has_not_run_empty_for_a_while() {
        let start = Instant::now();
        // The share shed of 1024 datagrams, after the FILL_CHECK_EVERY it takes to look again.
        let shed_share = |gauge: &mut OverloadGauge, at: Duration, fill: u32| {
            for _ in 0..FILL_CHECK_EVERY {
                gauge.taken(start + at, || Some(fill));
            }
            (0..1024).filter(|_| gauge.taken(start + at, || Some(fill))).count()
        };
        let mut gauge = OverloadGauge::new();
        // Full, but only for a moment: a burst is what the buffer is for.
        assert_eq!(shed_share(&mut gauge, Duration::ZERO, 1024), 0);
        // Still not empty after SHED_AFTER: full sheds most new work, never all of it.
        let shed = shed_share(&mut gauge, SHED_AFTER, 1024);
        assert!((800..1000).contains(&shed), "{shed} of 1024 shed");
        // Half full or less: none.
        assert_eq!(shed_share(&mut gauge, SHED_AFTER * 2, SHED_FROM), 0);
        // Three quarters full: about half of it.
        let shed = shed_share(&mut gauge, SHED_AFTER * 2, 768);
        assert!((350..700).contains(&shed), "{shed} of 1024 shed");
        // Once the socket runs empty, the judgement starts over.
        gauge.emptied();
        assert_eq!(shed_share(&mut gauge, SHED_AFTER * 3, 1024), 0);
    }

    #[test]
    fn the_dice_spread_over_their_range() {
        let mut dice = Dice::new();
        let rolls: Vec<u32> = (0..4096).map(|_| dice.roll()).collect();
        assert!(rolls.iter().all(|&r| r < 1024));
        let low = rolls.iter().filter(|&&r| r < 512).count();
        assert!((1536..2560).contains(&low), "{low} of 4096 below half");
    }
}
