//! sipload: simulated deskphones for the TLS REGISTER benchmark (bench/tls.sh). Each phone has its
//! own connection (TLS, or TCP with --tcp) and its own user `<first+n>` / password `pw<first+n>`,
//! and registers with digest MD5 qop=auth over that connection: REGISTER -> 401 -> REGISTER -> 200.
//!
//! First every connection is opened (at most --ramp-concurrency handshakes at a time), then the
//! timed phase: calls are spread evenly over the phones at a total --rate (calls/s; a call is two
//! REGISTER transactions) for --duration s, each phone re-registering over its own connection. A
//! call fails on a non-200 final answer, a broken connection or no answer within --timeout s.
//!
//!   sipload --port 5081 [--host 127.0.0.1] [--tcp] [--connections 10000] [--first 1000]
//!           [--rate 2000] [--duration 10] [--timeout 5] [--ramp-concurrency 32] [--ca ca.pem]
//!           [--threads 2] [--expires 3600] [--domain HOST:PORT] [--control] [--verbose]
//!
//! Output: one JSON line after the ramp (`"event":"connected"`) and one per run (`"event":"run"`),
//! the run's line last. With --control the connections stay open and runs are read from stdin,
//! one per line: `run RATE DURATION`; `quit` (or end of input) closes everything. Without --ca the
//! server certificate is not verified (a benchmark tool on loopback).

mod phone;
mod sip;
mod stats;

use std::io::BufRead;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use phone::{account, Phone, RunCtx, Target};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use stats::{cpu_seconds, RunStats};
use tokio_rustls::TlsConnector;

struct Args {
    host: String,
    port: u16,
    tls: bool,
    connections: usize,
    first: usize,
    password_prefix: String,
    rate: f64,
    duration: f64,
    timeout: f64,
    ramp_concurrency: usize,
    ca: Option<String>,
    threads: usize,
    expires: u32,
    domain: Option<String>,
    control: bool,
    verbose: bool,
}

fn usage() -> ! {
    eprintln!(
        "{}",
        include_str!("main.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//! ").trim_start_matches("//!"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 0,
        tls: true,
        connections: 10_000,
        first: 1000,
        password_prefix: "pw".into(),
        rate: 2000.0,
        duration: 10.0,
        timeout: 5.0,
        ramp_concurrency: 32,
        ca: None,
        threads: 2,
        expires: 3600,
        domain: None,
        control: false,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--tcp" => a.tls = false,
            "--tls" => a.tls = true,
            "--control" => a.control = true,
            "--verbose" => a.verbose = true,
            "-h" | "--help" => usage(),
            _ => {
                let v = it.next().unwrap_or_else(|| {
                    eprintln!("{k} needs a value");
                    usage()
                });
                let num = |v: &str| -> f64 {
                    v.parse().unwrap_or_else(|_| {
                        eprintln!("{k}: not a number: {v}");
                        usage()
                    })
                };
                match k.as_str() {
                    "--host" => a.host = v,
                    "--port" => a.port = num(&v) as u16,
                    "--connections" => a.connections = num(&v) as usize,
                    "--first" => a.first = num(&v) as usize,
                    "--password-prefix" => a.password_prefix = v,
                    "--rate" => a.rate = num(&v),
                    "--duration" => a.duration = num(&v),
                    "--timeout" => a.timeout = num(&v),
                    "--ramp-concurrency" => a.ramp_concurrency = (num(&v) as usize).max(1),
                    "--ca" => a.ca = Some(v),
                    "--threads" => a.threads = (num(&v) as usize).max(1),
                    "--expires" => a.expires = num(&v) as u32,
                    "--domain" => a.domain = Some(v),
                    _ => {
                        eprintln!("unknown option {k}");
                        usage()
                    }
                }
            }
        }
    }
    if a.port == 0 {
        eprintln!("--port is required");
        usage()
    }
    a
}

/// Accepts any server certificate (used without --ca), but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector(a: &Args) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let config = match &a.ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).expect("read --ca") {
                roots.add(c.expect("a certificate in --ca")).expect("add CA");
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth()
        }
    };
    TlsConnector::from(Arc::new(config))
}

/// Opens every phone's connection, at most `conc` at a time. Returns the phones (connected or not).
async fn ramp(phones: Vec<Phone>, target: Arc<Target>, conc: usize, verbose: bool) -> Vec<Phone> {
    let sem = Arc::new(tokio::sync::Semaphore::new(conc));
    let mut handles = Vec::with_capacity(phones.len());
    for (i, mut p) in phones.into_iter().enumerate() {
        let sem = sem.clone();
        let t = target.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            if let Err(e) = p.connect(&t).await {
                if verbose || i < 3 {
                    eprintln!("sipload: phone {i}: {e}");
                }
            }
            p
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("ramp task"));
    }
    out
}

/// One timed run: phone i calls at start + (i + k·N)/rate for every k within the duration.
async fn run(phones: Vec<Phone>, ctx: Arc<RunCtx>, rate: f64, duration: f64) -> Vec<Phone> {
    let n = phones.len();
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let period = n as f64 / rate;
    let mut handles = Vec::with_capacity(n);
    for (i, mut p) in phones.into_iter().enumerate() {
        let ctx = ctx.clone();
        handles.push(tokio::spawn(async move {
            let mut at = i as f64 / rate;
            while at < duration {
                let due = start + Duration::from_secs_f64(at);
                tokio::time::sleep_until(due).await;
                let now = tokio::time::Instant::now();
                ctx.stats.lag.record(now.saturating_duration_since(due));
                ctx.stats.attempted.fetch_add(1, Relaxed);
                let outcome = p.call(&ctx.target, &ctx.stats).await;
                account(&ctx.stats, &outcome, ctx.verbose, i);
                let done = tokio::time::Instant::now().saturating_duration_since(start).as_micros() as u64;
                ctx.stats.last_done_us.fetch_max(done, Relaxed);
                at += period;
            }
            p
        }));
    }
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("phone task"));
    }
    out
}

fn main() {
    let a = parse_args();
    let target = Arc::new(target_of(&a));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let phones: Vec<Phone> = (0..a.connections)
        .map(|i| {
            let user = a.first + i;
            Phone::new(&target, user.to_string(), format!("{}{user}", a.password_prefix), a.expires, i as u64 + 1)
        })
        .collect();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut phones = rt.block_on(ramp(phones, target.clone(), a.ramp_concurrency, a.verbose));
    let up = phones.iter().filter(|p| p.connected()).count();
    let ramp_s = t0.elapsed().as_secs_f64();
    println!(
        "{{\"event\":\"connected\",\"transport\":\"{}\",\"connections\":{},\"established\":{up},\"failed\":{},\
         \"ramp_s\":{ramp_s:.3},\"handshakes_s\":{:.1},\"client_cpu_s\":{:.2}}}",
        target.transport(),
        a.connections,
        a.connections - up,
        up as f64 / ramp_s,
        cpu_seconds() - cpu0
    );

    let do_run = |phones: Vec<Phone>, rate: f64, duration: f64| -> Vec<Phone> {
        let stats = Arc::new(RunStats::new());
        let ctx = Arc::new(RunCtx { target: target.clone(), stats: stats.clone(), verbose: a.verbose });
        let c0 = cpu_seconds();
        let phones = rt.block_on(run(phones, ctx, rate, duration));
        let alive = phones.iter().filter(|p| p.connected()).count();
        let line = stats.json(rate, duration, phones.len(), alive, cpu_seconds() - c0);
        println!("{{\"event\":\"run\",{}", &line[1..]);
        phones
    };

    phones = match a.control {
        true => serve_control_commands(phones, do_run),
        false => do_run(phones, a.rate, a.duration),
    };
    drop(phones);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Where and how to reach the server, from the arguments.
fn target_of(a: &Args) -> Target {
    let addr: SocketAddr = (a.host.as_str(), a.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut x| x.next())
        .unwrap_or_else(|| panic!("cannot resolve {}:{}", a.host, a.port));
    let tls = a.tls.then(|| {
        let name = ServerName::try_from(a.host.clone()).expect("server name");
        (tls_connector(a), name)
    });
    Target {
        addr,
        tls,
        server: a.domain.clone().unwrap_or_else(|| format!("{}:{}", a.host, a.port)),
        connect_timeout: Duration::from_secs_f64(a.timeout.max(10.0)),
        timeout: Duration::from_secs_f64(a.timeout),
    }
}

/// `--control`: one run per stdin line `run RATE SECONDS`, on the same connections, until `quit`
/// or the end of input; a bad line gets an error event.
fn serve_control_commands(mut phones: Vec<Phone>, do_run: impl Fn(Vec<Phone>, f64, f64) -> Vec<Phone>) -> Vec<Phone> {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["run", rate, dur] => match (rate.parse::<f64>(), dur.parse::<f64>()) {
                (Ok(r), Ok(d)) if r > 0.0 && d > 0.0 => phones = do_run(phones, r, d),
                _ => println!("{{\"event\":\"error\",\"error\":\"bad run command\"}}"),
            },
            ["quit"] => break,
            [] => {}
            _ => println!("{{\"event\":\"error\",\"error\":\"unknown command\"}}"),
        }
    }
    phones
}
