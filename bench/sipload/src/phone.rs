//! One simulated phone: its own TLS (or TCP) connection, user and password, and one registration
//! "call" at a time over that connection: REGISTER -> 401 -> REGISTER with digest -> 200, each
//! transaction timed. A connection that breaks or times out is dropped and opened again at the
//! phone's next call (as a phone does).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::sip::{self, Frame, Identity, Response};
use crate::stats::RunStats;

/// A byte stream: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where every phone connects to.
pub struct Target {
    pub addr: SocketAddr,
    /// TLS connector and the name to verify; None = plain TCP
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    /// host:port used in the Request-URI, From and To
    pub server: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Target {
    pub fn transport(&self) -> &'static str {
        if self.tls.is_some() {
            "TLS"
        } else {
            "TCP"
        }
    }
}

struct Conn {
    io: Box<dyn Io>,
    local: String,
    buf: Vec<u8>,
}

/// Why a call did not end with 200.
#[derive(Debug)]
pub enum Failure {
    Status(u16),
    Timeout,
    Conn(String),
}

pub struct Phone {
    id: Identity,
    conn: Option<Conn>,
    cseq: u32,
    rng: u64,
}

impl Phone {
    pub fn new(target: &Target, user: String, password: String, expires: u32, seed: u64) -> Phone {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let call_id = format!("{:016x}{:08x}@sipload", xorshift(&mut rng), seed);
        let tag = format!("{:012x}", xorshift(&mut rng) & 0xffff_ffff_ffff);
        let id = Identity {
            user,
            password,
            server: target.server.clone(),
            transport: target.transport(),
            call_id,
            tag,
            expires,
        };
        Phone { id, conn: None, cseq: 0, rng }
    }

    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Opens the phone's connection (TCP connect + TLS handshake), within the connect timeout.
    pub async fn connect(&mut self, t: &Target) -> Result<(), String> {
        let fut = async {
            let tcp = TcpStream::connect(t.addr).await.map_err(|e| format!("connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().map_err(|e| e.to_string())?.to_string();
            let io: Box<dyn Io> = match &t.tls {
                None => Box::new(tcp),
                Some((connector, name)) => {
                    Box::new(connector.connect(name.clone(), tcp).await.map_err(|e| format!("tls: {e}"))?)
                }
            };
            Ok::<_, String>(Conn { io, local, buf: Vec::with_capacity(4096) })
        };
        match tokio::time::timeout(t.connect_timeout, fut).await {
            Ok(Ok(c)) => {
                self.conn = Some(c);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err("connect timed out".into()),
        }
    }

    /// One registration: REGISTER, 401, REGISTER with credentials, 200. Records both
    /// transactions' latencies and the outcome in `stats`.
    pub async fn call(&mut self, t: &Target, stats: &RunStats) -> Result<(), Failure> {
        if self.conn.is_none() {
            stats.reconnects.fetch_add(1, Relaxed);
            self.connect(t).await.map_err(Failure::Conn)?;
        }
        let started = Instant::now();
        let r1 = self.transaction(t, None).await?;
        stats.t_challenge.record(started.elapsed());
        if r1.status == 200 {
            // accepted without a challenge (e.g. a server configured without auth)
            return Ok(());
        }
        if r1.status != 401 {
            return Err(Failure::Status(r1.status));
        }
        let Some(ch) = r1.challenge else { return Err(Failure::Status(401)) };
        let cnonce = format!("{:016x}", xorshift(&mut self.rng));
        let auth = sip::authorization(&ch, &self.id.user, &self.id.password, &self.id.request_uri(), &cnonce);
        let t2 = Instant::now();
        let r2 = self.transaction(t, Some(&auth)).await?;
        stats.t_auth.record(t2.elapsed());
        if r2.status == 200 {
            Ok(())
        } else {
            Err(Failure::Status(r2.status))
        }
    }

    /// Sends one REGISTER and waits for its final response (matching CSeq; 1xx and strays are
    /// skipped). On a timeout or a broken stream the connection is dropped.
    async fn transaction(&mut self, t: &Target, auth: Option<&str>) -> Result<Response, Failure> {
        self.cseq += 1;
        let cseq = self.cseq;
        let branch = format!("{:016x}", xorshift(&mut self.rng));
        let conn = self.conn.as_mut().ok_or_else(|| Failure::Conn("not connected".into()))?;
        let req = self.id.register(&conn.local, cseq, &branch, auth);
        let res = tokio::time::timeout(t.timeout, exchange(conn, &req, cseq)).await;
        match res {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.conn = None;
                Err(Failure::Conn(e))
            }
            Err(_) => {
                self.conn = None;
                Err(Failure::Timeout)
            }
        }
    }
}

async fn exchange(conn: &mut Conn, req: &[u8], cseq: u32) -> Result<Response, String> {
    conn.io.write_all(req).await.map_err(|e| format!("write: {e}"))?;
    conn.io.flush().await.map_err(|e| format!("flush: {e}"))?;
    loop {
        match sip::frame(&conn.buf) {
            Frame::Complete { start, len } => {
                let resp = sip::parse_response(&conn.buf[start..start + len]);
                conn.buf.drain(..start + len);
                match resp {
                    Some(r) if r.cseq == cseq && r.status >= 200 => return Ok(r),
                    Some(_) => continue, // provisional or a late answer to an earlier request
                    None => return Err("not a SIP response".into()),
                }
            }
            Frame::Invalid(why) => return Err(why.into()),
            Frame::Incomplete => {
                if conn.buf.capacity() - conn.buf.len() < 1024 {
                    conn.buf.reserve(4096);
                }
                let n = conn.io.read_buf(&mut conn.buf).await.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("closed by server".into());
                }
            }
        }
    }
}

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

/// Records a call's outcome in `stats`.
pub fn account(stats: &RunStats, outcome: &Result<(), Failure>, verbose: bool, user: usize) {
    match outcome {
        Ok(()) => {
            stats.ok.fetch_add(1, Relaxed);
        }
        Err(f) => {
            match f {
                Failure::Status(s) => {
                    stats.failed_status.fetch_add(1, Relaxed);
                    stats.status(*s);
                }
                Failure::Timeout => {
                    stats.failed_timeout.fetch_add(1, Relaxed);
                }
                Failure::Conn(_) => {
                    stats.failed_conn.fetch_add(1, Relaxed);
                }
            }
            if verbose {
                let why = match f {
                    Failure::Status(s) => format!("final status {s}"),
                    Failure::Timeout => "timeout".to_string(),
                    Failure::Conn(e) => e.clone(),
                };
                eprintln!("sipload: phone {user}: {why}");
            }
        }
    }
}

/// Shared pieces a phone task needs during a run.
pub struct RunCtx {
    pub target: Arc<Target>,
    pub stats: Arc<RunStats>,
    pub verbose: bool,
}
