//! provload: N keep-alive HTTPS/1.1 connections, each presenting a client certificate, each
//! sending GET requests one after another (no pipelining, as a phone does) for D seconds.
//! Prints one JSON line: requests, rate, status counts, errors, latency percentiles, client CPU.
//!
//!   provload --url https://127.0.0.1:8443/805ec0a1b2c3.cfg --ca ca.pem --cert dev.pem --key dev.key
//!            [--connections 32] [--duration 10] [--warmup 2] [--threads 1] [--ua UA]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Args {
    host: String,
    port: u16,
    path: String,
    ca: String,
    cert: String,
    key: String,
    connections: usize,
    duration: f64,
    warmup: f64,
    threads: usize,
    ua: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        host: String::new(),
        port: 443,
        path: "/".into(),
        ca: String::new(),
        cert: String::new(),
        key: String::new(),
        connections: 32,
        duration: 10.0,
        warmup: 2.0,
        threads: 1,
        ua: "Yealink SIP-T46U 108.86.0.45 80:5e:c0:a1:b2:c3".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--url" => {
                let rest = v.strip_prefix("https://").expect("https:// URL");
                let (hp, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let (h, p) = hp.rsplit_once(':').unwrap_or((hp, "443"));
                a.host = h.to_string();
                a.port = p.parse().expect("port");
                a.path = if path.is_empty() { "/".into() } else { path.into() };
            }
            "--ca" => a.ca = v,
            "--cert" => a.cert = v,
            "--key" => a.key = v,
            "--connections" => a.connections = v.parse().expect("connections"),
            "--duration" => a.duration = v.parse().expect("duration"),
            "--warmup" => a.warmup = v.parse().expect("warmup"),
            "--threads" => a.threads = v.parse().expect("threads"),
            "--ua" => a.ua = v,
            _ => panic!("unknown option {k}"),
        }
    }
    assert!(!a.host.is_empty(), "--url is required");
    a
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    ok: AtomicU64,
    other_status: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc/self/stat
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Reads one HTTP/1.1 response from `buf`/`stream`; returns (status, body length) and leaves
/// any following bytes in `buf`.
async fn read_response<S: AsyncReadExt + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> std::io::Result<(u16, usize)> {
    loop {
        if let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            resp.parse(&buf[..end + 4]).map_err(|e| std::io::Error::other(e.to_string()))?;
            let status = resp.code.unwrap_or(0);
            let mut len = None;
            let mut chunked = false;
            for h in resp.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    len = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") && h.value.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                }
            }
            buf.drain(..end + 4);
            if chunked {
                let mut total = 0;
                loop {
                    let line_end = loop {
                        if let Some(i) = memchr::memmem::find(buf, b"\r\n") {
                            break i;
                        }
                        fill(stream, buf).await?;
                    };
                    let size_txt = std::str::from_utf8(&buf[..line_end]).unwrap_or("0");
                    let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("0").trim(), 16)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    buf.drain(..line_end + 2);
                    while buf.len() < size + 2 {
                        fill(stream, buf).await?;
                    }
                    buf.drain(..size + 2);
                    total += size;
                    if size == 0 {
                        return Ok((status, total));
                    }
                }
            }
            let len = len.unwrap_or(0);
            while buf.len() < len {
                fill(stream, buf).await?;
            }
            buf.drain(..len);
            return Ok((status, len));
        }
        fill(stream, buf).await?;
    }
}

async fn fill<S: AsyncReadExt + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut tmp = [0u8; 16384];
    let n = stream.read(&mut tmp).await?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    buf.extend_from_slice(&tmp[..n]);
    Ok(())
}

fn main() {
    let a = Arc::new(parse_args());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(a.threads).enable_all().build().unwrap();
    rt.block_on(run(a));
}

/// What every connection shares: counters, the measuring and stop flags, the latencies.
struct Shared {
    stats: Stats,
    measuring: AtomicBool,
    stop: AtomicBool,
    latencies: std::sync::Mutex<Vec<u32>>,
}

async fn run(a: Arc<Args>) {
    let connector = tls_connector(&a);
    let server_name = ServerName::try_from(a.host.clone()).expect("server name");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
        a.path, a.host, a.port, a.ua
    );
    let shared = Arc::new(Shared {
        stats: Stats::default(),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        latencies: std::sync::Mutex::new(Vec::with_capacity(1 << 20)),
    });
    let tasks: Vec<_> = (0..a.connections)
        .map(|_| {
            let phone =
                Phone { connector: connector.clone(), server_name: server_name.clone(), request: request.clone() };
            tokio::spawn(phone.fetch_until_stopped(a.clone(), shared.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(a.warmup)).await;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    print_report(&a, &shared, elapsed, cpu);
}

/// A TLS client configuration that trusts `--ca` and presents `--cert` / `--key`.
fn tls_connector(a: &Args) -> TlsConnector {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&a.ca).expect("read --ca") {
        roots.add(c.expect("CA PEM")).expect("add CA");
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&a.cert).expect("read --cert").map(|c| c.expect("cert PEM")).collect();
    let key = PrivateKeyDer::from_pem_file(&a.key).expect("read --key");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .expect("client cert");
    TlsConnector::from(Arc::new(config))
}

/// One simulated phone: a keep-alive connection that fetches its config again and again.
struct Phone {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    request: String,
}

impl Phone {
    /// Connects (again after an error, 50 ms later) and sends the request back to back until
    /// `stop`; counts and times the answers while `measuring`.
    async fn fetch_until_stopped(self, a: Arc<Args>, shared: Arc<Shared>) {
        let stats = &shared.stats;
        let mut local_lat = Vec::with_capacity(1 << 16);
        'conn: while !shared.stop.load(Ordering::Relaxed) {
            let Some(mut tls) = self.connect(&a).await else {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let mut buf = Vec::with_capacity(32768);
            while !shared.stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                if tls.write_all(self.request.as_bytes()).await.is_err() {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    continue 'conn;
                }
                let Ok((status, len)) = read_response(&mut tls, &mut buf).await else {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    continue 'conn;
                };
                if shared.measuring.load(Ordering::Relaxed) {
                    stats.requests.fetch_add(1, Ordering::Relaxed);
                    stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
                    match status {
                        200 => stats.ok.fetch_add(1, Ordering::Relaxed),
                        _ => stats.other_status.fetch_add(1, Ordering::Relaxed),
                    };
                    local_lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
        }
        shared.latencies.lock().unwrap().extend(local_lat);
    }

    async fn connect(&self, a: &Args) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect((a.host.as_str(), a.port)).await.ok()?;
        tcp.set_nodelay(true).ok();
        self.connector.connect(self.server_name.clone(), tcp).await.ok()
    }
}

/// The one JSON line this tool prints.
fn print_report(a: &Args, shared: &Shared, elapsed: f64, cpu: f64) {
    let stats = &shared.stats;
    let mut l = shared.latencies.lock().unwrap().clone();
    l.sort_unstable();
    let pct = |q: f64| if l.is_empty() { 0.0 } else { l[((l.len() - 1) as f64 * q) as usize] as f64 / 1000.0 };
    let n = stats.requests.load(Ordering::Relaxed);
    println!(
        "{{\"requests\":{},\"rate\":{:.1},\"ok\":{},\"other_status\":{},\"errors\":{},\"body_bytes\":{},\"elapsed_s\":{:.3},\"connections\":{},\"latency_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}},\"client_cpu_s\":{:.2}}}",
        n,
        n as f64 / elapsed,
        stats.ok.load(Ordering::Relaxed),
        stats.other_status.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed),
        stats.bytes.load(Ordering::Relaxed),
        elapsed,
        a.connections,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        cpu
    );
}
