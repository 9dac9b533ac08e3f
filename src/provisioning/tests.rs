//! The provisioning server over real sockets: HTTPS on loopback with deskline's development PKI,
//! an in-memory backend, and reqwest (or raw TLS) as the phone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use reqwest::header::{AUTHORIZATION, ETAG, IF_NONE_MATCH, RETRY_AFTER, USER_AGENT, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::device_auth::tests::{digest_header, nonce_of};
use super::*;
use crate::certs::{self, CertPaths};
use crate::directory::mac::Mac;

const YEALINK: &str = "805ec0a1b2c3";
const POLY: &str = "0004f2a1b2c3";
/// Holds a valid device certificate but is unknown to the backend.
const STRANGER: &str = "805ec0ffffff";
const PROV_PASSWORD: &str = "prov-pw-7c1e";
const SIP_SECRET: &str = "sip-secret-41d2";
const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:a1:b2:c3";

#[derive(Default)]
struct MemoryBackend {
    devices: HashMap<Mac, DeviceView>,
    secrets: HashMap<Mac, String>,
    fetches: Mutex<Vec<(Mac, ConfigFetch)>>,
    uploads: Mutex<Vec<(Mac, String, Vec<u8>)>>,
}

impl ProvisioningBackend for MemoryBackend {
    fn device_view(&self, mac: &Mac) -> Option<DeviceView> {
        self.devices.get(mac).cloned()
    }
    fn provisioning_secret(&self, mac: &Mac) -> Option<String> {
        self.secrets.get(mac).cloned()
    }
    fn record_fetch(&self, mac: &Mac, fetch: ConfigFetch) {
        self.fetches.lock().unwrap().push((mac.clone(), fetch));
    }
    fn store_upload(&self, mac: &Mac, file_name: &str, body: &[u8]) -> Result<(), String> {
        self.uploads.lock().unwrap().push((mac.clone(), file_name.to_owned(), body.to_vec()));
        Ok(())
    }
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

fn line() -> LineView {
    LineView {
        extension: "1001".into(),
        display_name: "Alice Smith".into(),
        label: "1001 Alice".into(),
        auth_user: "dev-805ec0a1b2c3".into(),
        secret: SIP_SECRET.into(),
        registrar_host: "sip.example.com".into(),
        registrar_port: 5061,
        transport: "tls".into(),
        expires: 600,
    }
}

/// These tests run one at a time, so the log-capturing one reads only its own server's lines.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Bench {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
    paths: CertPaths,
    backend: Arc<MemoryBackend>,
    service: Arc<ProvisioningService>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn bench() -> Bench {
    let serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let paths = certs::init_dir(dir.path(), &[mac(YEALINK), mac(POLY), mac(STRANGER)]).unwrap();
    let config =
        ProvisioningConfig { templates: render::tests::templates_dir(), max_upload_bytes: 1024, ..Default::default() };
    let mut backend = MemoryBackend::default();
    backend.devices.insert(mac(YEALINK), DeviceView::new(&config, mac(YEALINK), DeviceState::Active, Some(line())));
    backend.devices.insert(mac(POLY), DeviceView::new(&config, mac(POLY), DeviceState::Suspended, Some(line())));
    backend.secrets.insert(mac(YEALINK), PROV_PASSWORD.into());
    let backend = Arc::new(backend);
    let tls =
        certs::provisioning_tls(&paths.server_cert, &paths.server_key, std::slice::from_ref(&paths.device_ca_cert))
            .unwrap();
    let service = ProvisioningService::new(config, tls, backend.clone()).unwrap().with_auth_failure_limit(5);
    let service = Arc::new(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, service.clone(), shutdown.clone()));
    Bench { _serial: serial, _dir: dir, paths, backend, service, addr, shutdown, task }
}

impl Bench {
    /// A client trusting our CA, presenting `device`'s certificate if given.
    fn client(&self, device: Option<&str>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.paths.ca_cert).unwrap()).unwrap();
        let mut builder =
            reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false).add_root_certificate(ca);
        if let Some(device) = device {
            let paths = self.paths.devices.iter().find(|d| d.mac.as_str() == device).unwrap();
            let mut pem = std::fs::read(&paths.cert).unwrap();
            pem.extend(std::fs::read(&paths.key).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Sends raw bytes over TLS (no client certificate) and returns the whole answer.
    async fn raw(&self, request: &str) -> String {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certs::load_certs(&self.paths.ca_cert).unwrap().remove(0)).unwrap();
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut tls = connector.connect("localhost".try_into().unwrap(), tcp).await.unwrap();
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(15), self.task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_phone_with_its_certificate_gets_its_config_and_the_fetch_is_recorded() {
    let bench = bench().await;
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    bench.service.on_fetch(move |vendor, outcome| seen.lock().unwrap().push((vendor, outcome)));
    let phone = bench.client(Some(YEALINK));
    let url = bench.url("/805EC0A1B2C3.cfg");
    let response = phone.get(&url).header(USER_AGENT, YEALINK_UA).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
    let body = response.text().await.unwrap();
    assert!(
        body.contains("account.1.enable = 1") && body.contains(&format!("account.1.password = {SIP_SECRET}")),
        "{body}"
    );
    let base = format!("static.auto_provision.server.url = https://127.0.0.1:{}/", bench.addr.port());
    assert!(body.contains(&base), "{body}");

    let again = phone.get(&url).header(USER_AGENT, YEALINK_UA).header(IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let fetches = bench.backend.fetches.lock().unwrap().clone();
    assert_eq!(fetches.len(), 2);
    let (who, fetch) = &fetches[0];
    assert_eq!(who.as_str(), YEALINK);
    assert_eq!(
        (fetch.vendor, fetch.model.as_deref(), fetch.firmware.as_deref()),
        (Some(Vendor::Yealink), Some("T46S"), Some("66.86.0.15"))
    );
    assert_eq!((fetch.file.as_str(), fetch.address.ip()), ("805EC0A1B2C3.cfg", bench.addr.ip()));
    assert_eq!(fetch.user_agent.as_deref(), Some(YEALINK_UA));
    assert!(fetch.carries_state());

    // The common file needs no proof and holds no secret.
    let common = bench.client(None).get(bench.url("/y000000000066.cfg")).send().await.unwrap();
    assert_eq!(common.status(), StatusCode::OK);
    let body = common.text().await.unwrap();
    assert!(!body.contains("password") && !body.contains(SIP_SECRET), "{body}");
    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(
        outcomes,
        [(Some(Vendor::Yealink), "ok"), (Some(Vendor::Yealink), "not_modified"), (Some(Vendor::Yealink), "ok")]
    );
    bench.stop().await;
}

#[tokio::test]
async fn a_poly_phone_is_told_apart_by_its_oui_and_sees_its_suspended_config() {
    let bench = bench().await;
    let phone = bench.client(Some(POLY));
    let master = phone.get(bench.url("/0004F2A1B2C3.cfg")).send().await.unwrap();
    assert_eq!(master.status(), StatusCode::OK);
    assert!(master.text().await.unwrap().contains("CONFIG_FILES=\"[PHONE_MAC_ADDRESS]-deskline.cfg\""));
    let config = phone.get(bench.url("/0004F2A1B2C3-deskline.cfg")).send().await.unwrap();
    assert_eq!(config.headers()["content-type"], "application/xml; charset=utf-8");
    let body = config.text().await.unwrap();
    let fields = render::tests::xml_fields(&body);
    assert_eq!(fields["reg.1.server.1.register"], "0");
    assert_eq!(fields["reg.1.auth.password"], "");
    assert_eq!(fields["reg.1.label"], ProvisioningConfig::default().suspended_message);
    assert!(!body.contains(SIP_SECRET));
    let fetches = bench.backend.fetches.lock().unwrap().clone();
    let files: Vec<(&str, bool)> = fetches.iter().map(|(_, f)| (f.file.as_str(), f.carries_state())).collect();
    assert_eq!(files, [("0004F2A1B2C3.cfg", false), ("0004F2A1B2C3-deskline.cfg", true)]);
    bench.stop().await;
}

#[tokio::test]
async fn a_mac_scan_without_proof_gets_identical_challenges_and_no_config() {
    let bench = bench().await;
    let scanner = bench.client(None);
    // (headers but Date and WWW-Authenticate, challenges with the nonce blanked, body)
    type Answer = (Vec<(String, String)>, String, String);
    let mut first: Option<Answer> = None;
    for i in 0..1000u32 {
        let guess = match i {
            0 => YEALINK.to_owned(),
            500 => POLY.to_owned(),
            _ => format!("805ec0{:06x}", i.wrapping_mul(2_654_435_761) & 0xff_ffff),
        };
        let path = match i % 4 {
            0 => format!("/{guess}.cfg"),
            1 => format!("/{}.cfg", guess.to_uppercase()),
            2 => format!("/{guess}.boot"),
            _ => format!("/{}-deskline.cfg", guess.to_uppercase()),
        };
        let response = scanner.get(bench.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| *name != "date" && *name != WWW_AUTHENTICATE)
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        let challenges: Vec<String> =
            response.headers().get_all(WWW_AUTHENTICATE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        let nonce = nonce_of(&challenges[0]);
        let shape = challenges.join("\n").replace(&nonce, "NONCE");
        let body = response.text().await.unwrap();
        assert!(!body.contains("account") && !body.contains(SIP_SECRET));
        match &first {
            None => first = Some((headers, shape, body)),
            Some(expected) => assert_eq!(&(headers, shape, body), expected, "{path} answered differently"),
        }
    }
    assert!(bench.backend.fetches.lock().unwrap().is_empty());
    bench.stop().await;
}

#[tokio::test]
async fn digest_proof_works_once_and_a_certificate_for_another_mac_does_not() {
    let bench = bench().await;
    let phone = bench.client(None);
    let url = bench.url("/805ec0a1b2c3.cfg");
    for (index, algorithm) in ["SHA-256", "MD5"].into_iter().enumerate() {
        let challenge = phone.get(&url).send().await.unwrap();
        assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
        let values: Vec<&str> =
            challenge.headers().get_all(WWW_AUTHENTICATE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(values.len(), 2);
        assert!(values[index].contains(&format!("algorithm={algorithm},")), "{values:?}");
        let header =
            digest_header(&nonce_of(values[index]), YEALINK, PROV_PASSWORD, "GET", "/805ec0a1b2c3.cfg", algorithm, 1);
        let response = phone.get(&url).header(AUTHORIZATION, &header).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{algorithm}");
        assert!(response.text().await.unwrap().contains(SIP_SECRET));
        let replayed = phone.get(&url).header(AUTHORIZATION, &header).send().await.unwrap();
        assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED, "{algorithm} replay");
    }

    let stranger = bench.client(Some(STRANGER));
    let refused = stranger.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let own = stranger.get(bench.url("/805ec0ffffff.cfg")).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::NOT_FOUND, "proven, but unknown to the directory");
    bench.stop().await;
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The test process's log, installed as the global subscriber on first use. (A subscriber scoped
/// to the test's thread proved unreliable: `tracing` caches each call site's interest process-wide,
/// and other tests' threads reaching the same call sites raced with the scoping.)
fn global_logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

#[tokio::test]
async fn failed_proofs_are_logged_for_fail2ban_and_throttled() {
    let logs = global_logs();
    let bench = bench().await;
    let start = logs.0.lock().unwrap().len();
    let phone = bench.client(None);
    let url = bench.url("/805ec0a1b2c3.cfg");
    for attempt in 0..5 {
        let challenge = phone.get(&url).send().await.unwrap();
        let nonce = nonce_of(challenge.headers()[WWW_AUTHENTICATE].to_str().unwrap());
        let header = digest_header(&nonce, YEALINK, &format!("guess-{attempt}"), "GET", "/805ec0a1b2c3.cfg", "MD5", 1);
        let response = phone.get(&url).header(AUTHORIZATION, header).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = phone.get(&url).send().await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers()[RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    bench.stop().await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()[start..]).into_owned();
    let line = "provisioning auth failure from 127.0.0.1 mac=805ec0a1b2c3 path=/805ec0a1b2c3.cfg";
    assert_eq!(logs.matches(line).count(), 5, "{logs}");
    assert!(!logs.contains("guess-") && !logs.contains(PROV_PASSWORD) && !logs.contains("response="), "{logs}");
}

#[tokio::test]
async fn traversal_and_odd_paths_are_404_before_any_challenge() {
    let bench = bench().await;
    for path in [
        "/../805ec0a1b2c3.cfg",
        "/a/%2e%2e/805ec0a1b2c3.cfg",
        "/..%2f805ec0a1b2c3.cfg",
        "/etc/passwd",
        "/",
        "/x/./805ec0a1b2c3.cfg",
    ] {
        let answer = bench.raw(&format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
    }
    bench.stop().await;
}

#[tokio::test]
async fn poly_uploads_need_proof_and_respect_the_size_limit() {
    let bench = bench().await;
    let phone = bench.client(Some(POLY));
    let url = bench.url("/0004F2A1B2C3-app.log");
    let stored = phone.put(&url).body("boot ok\n").send().await.unwrap();
    assert_eq!(stored.status(), StatusCode::NO_CONTENT);
    let uploads = bench.backend.uploads.lock().unwrap().clone();
    assert_eq!(uploads, [(mac(POLY), "0004F2A1B2C3-app.log".to_owned(), b"boot ok\n".to_vec())]);

    let large = phone.put(&url).body(vec![b'x'; 2048]).send().await.unwrap();
    assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let anonymous = bench.client(None).put(&url).body("x").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let config = phone.put(bench.url("/0004F2A1B2C3.cfg")).body("x").send().await.unwrap();
    assert_eq!(config.status(), StatusCode::METHOD_NOT_ALLOWED);
    let read_back = phone.get(&url).send().await.unwrap();
    assert_eq!(read_back.status(), StatusCode::NOT_FOUND);
    assert_eq!(bench.backend.uploads.lock().unwrap().len(), 1);
    bench.stop().await;
}

#[tokio::test]
async fn a_self_signed_certificate_naming_the_mac_proves_nothing_but_digest_still_works() {
    let bench = bench().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, YEALINK);
    let mut pem = params.self_signed(&key).unwrap().pem().into_bytes();
    pem.extend(key.serialize_pem().into_bytes());
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&bench.paths.ca_cert).unwrap()).unwrap();
    let forger = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = bench.url("/805ec0a1b2c3.cfg");
    let challenge = forger.get(&url).send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED, "the handshake succeeds, the certificate is ignored");
    let nonce = nonce_of(challenge.headers()[WWW_AUTHENTICATE].to_str().unwrap());
    let header = digest_header(&nonce, YEALINK, PROV_PASSWORD, "GET", "/805ec0a1b2c3.cfg", "SHA-256", 1);
    let response = forger.get(&url).header(AUTHORIZATION, header).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    bench.stop().await;
}
