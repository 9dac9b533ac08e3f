//! Certificates: the development PKI of `deskline certs init` and the rustls server configuration.
//!
//! `init_dir` writes a server CA, a server certificate (localhost, 127.0.0.1, ::1 and the host
//! name), a device CA and one client certificate per device MAC (subject CN = the MAC). Existing
//! files are kept and reused (an existing CA signs the missing leaves), never regenerated; private
//! keys are written with mode 0600. `server_tls_config` builds the rustls configuration of the
//! TLS listeners: TLS 1.2 and 1.3 only, client certificates optional and verified against the
//! configured device CAs; `provisioning_tls` is its variant for HTTPS provisioning, where a
//! certificate from an unknown CA is ignored instead of failing the handshake.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::directory::mac::Mac;

/// The organisational unit of the device certificates deskline issues.
pub const DEVICE_OU: &str = "deskline device";

/// Why certificates could not be written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{present} exists but {missing} does not; refusing to replace half of a key pair")]
    HalfPair { present: PathBuf, missing: PathBuf },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("device CA verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Where `init_dir` put (or found) each file.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub device_ca_cert: PathBuf,
    pub device_ca_key: PathBuf,
    pub devices: Vec<DeviceCertPaths>,
    /// The files this call created (the others already existed and were kept).
    pub created: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct DeviceCertPaths {
    pub mac: Mac,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Installs aws-lc-rs as the process-wide rustls provider, once; a provider installed earlier (by
/// us or by a library) is left in place.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Writes the development PKI into `dir` (see the module doc). Files that exist are kept.
pub fn init_dir(dir: &Path, device_macs: &[Mac]) -> Result<CertPaths, CertError> {
    create_dir(dir)?;
    let mut created = Vec::new();
    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let server_cert = dir.join("server.pem");
    let server_key = dir.join("server.key");
    let device_ca_cert = dir.join("device-ca.pem");
    let device_ca_key = dir.join("device-ca.key");

    if needs_pair(&server_cert, &server_key)? {
        let ca = load_or_create_ca(&ca_cert, &ca_key, "deskline server CA", &mut created)?;
        write_leaf(server_params()?, &ca, &server_cert, &server_key, &mut created)?;
    } else {
        // Still make sure the CA pair is whole (or absent), and create it for a fresh directory.
        load_or_create_ca(&ca_cert, &ca_key, "deskline server CA", &mut created)?;
    }

    let device_ca = load_or_create_ca(&device_ca_cert, &device_ca_key, "deskline device CA", &mut created)?;
    let mut devices = Vec::new();
    if !device_macs.is_empty() {
        create_dir(&dir.join("devices"))?;
    }
    for mac in device_macs {
        let cert = dir.join("devices").join(format!("{mac}.pem"));
        let key = dir.join("devices").join(format!("{mac}.key"));
        if needs_pair(&cert, &key)? {
            write_leaf(device_params(mac), &device_ca, &cert, &key, &mut created)?;
        }
        devices.push(DeviceCertPaths { mac: mac.clone(), cert, key });
    }
    Ok(CertPaths { ca_cert, ca_key, server_cert, server_key, device_ca_cert, device_ca_key, devices, created })
}

/// Makes sure the configured server certificate and key exist: when both are missing, a CA
/// (`ca.pem`/`ca.key` in the certificate's folder, reused if present) signs a new server
/// certificate written to exactly these paths. Returns whether anything was created.
pub fn ensure_server_cert(cert: &Path, key: &Path) -> Result<bool, CertError> {
    if !needs_pair(cert, key)? {
        return Ok(false);
    }
    let dir = cert.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir(dir)?;
    if let Some(key_dir) = key.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(key_dir)?;
    }
    let mut created = Vec::new();
    let ca = load_or_create_ca(&dir.join("ca.pem"), &dir.join("ca.key"), "deskline server CA", &mut created)?;
    write_leaf(server_params()?, &ca, cert, key, &mut created)?;
    tracing::info!(cert = %cert.display(), "created a development server certificate");
    Ok(true)
}

/// The rustls server configuration for deskline's TLS listeners: TLS 1.2 and 1.3 only, the given
/// certificate chain and key, and — when `device_cas` is not empty — optional client
/// certificates that must chain to one of those CAs (a phone without one can still use digest;
/// one with a certificate from another CA fails the handshake: see [`provisioning_tls`]).
pub fn server_tls_config(
    cert: &Path,
    key: &Path,
    device_cas: &[PathBuf],
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, CertError> {
    let verifier = if device_cas.is_empty() { None } else { Some(DeviceCertVerifier::load(device_cas)?.inner) };
    build_server_config(cert, key, verifier, alpn)
}

/// The TLS side of HTTPS provisioning.
#[derive(Clone)]
pub struct ProvisioningTls {
    pub config: Arc<ServerConfig>,
    /// Checks a presented client chain against the device CAs; `None` when there are none.
    pub device_certs: Option<DeviceCertVerifier>,
}

/// Like [`server_tls_config`] (ALPN `http/1.1`), except that a client certificate from a CA we do
/// not trust does not fail the handshake: phones send their factory certificate whatever CAs we
/// hint, and such a phone must still be able to prove itself with digest. The handshake still
/// proves the client holds the certificate's key; whether the chain leads to a device CA is
/// decided afterwards by `device_certs`, and an untrusted certificate is simply ignored.
pub fn provisioning_tls(cert: &Path, key: &Path, device_cas: &[PathBuf]) -> Result<ProvisioningTls, CertError> {
    let device_certs = if device_cas.is_empty() { None } else { Some(DeviceCertVerifier::load(device_cas)?) };
    let verifier = device_certs.as_ref().map(|strict| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCertificate { strict: strict.inner.clone() })
    });
    let config = build_server_config(cert, key, verifier, &[b"http/1.1"])?;
    Ok(ProvisioningTls { config, device_certs })
}

fn build_server_config(
    cert: &Path,
    key: &Path,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, CertError> {
    install_crypto_provider();
    let chain = load_certs(cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| CertError::Invalid { path: key.to_owned(), message: format!("no usable private key: {e}") })?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match verifier {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder.with_single_cert(chain, private_key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Verifies client certificate chains against the configured device CAs.
#[derive(Clone)]
pub struct DeviceCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for DeviceCertVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCertVerifier")
    }
}

impl DeviceCertVerifier {
    /// Trusts the certificates of these PEM bundles (client certificates optional).
    pub fn load(device_cas: &[PathBuf]) -> Result<DeviceCertVerifier, CertError> {
        install_crypto_provider();
        let mut roots = RootCertStore::empty();
        for path in device_cas {
            for ca in load_certs(path)? {
                roots.add(ca).map_err(|e| CertError::Invalid { path: path.clone(), message: e.to_string() })?;
            }
        }
        let inner =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).allow_unauthenticated().build()?;
        Ok(DeviceCertVerifier { inner })
    }

    /// True when `chain` (leaf first, as the client sent it) leads to a device CA and is valid now.
    pub fn verify(&self, chain: &[CertificateDer<'_>]) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        self.inner.verify_client_cert(leaf, intermediates, UnixTime::now()).is_ok()
    }
}

/// Accepts any client certificate chain in the handshake while still checking the client's
/// signature with it (see [`provisioning_tls`]); hints the device CAs.
#[derive(Debug)]
struct AnyClientCertificate {
    strict: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.strict.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.strict.supported_verify_schemes()
    }
}

/// Every certificate of a PEM file; an error when there is none.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let invalid = |message: String| CertError::Invalid { path: path.to_owned(), message };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in the file".into()));
    }
    Ok(certs)
}

/// True when neither file exists; false when both do; an error for half a pair.
fn needs_pair(cert: &Path, key: &Path) -> Result<bool, CertError> {
    match (cert.exists(), key.exists()) {
        (false, false) => Ok(true),
        (true, true) => Ok(false),
        (true, false) => Err(CertError::HalfPair { present: cert.to_owned(), missing: key.to_owned() }),
        (false, true) => Err(CertError::HalfPair { present: key.to_owned(), missing: cert.to_owned() }),
    }
}

fn load_or_create_ca(
    cert: &Path,
    key: &Path,
    common_name: &str,
    created: &mut Vec<PathBuf>,
) -> Result<Issuer<'static, KeyPair>, CertError> {
    if !needs_pair(cert, key)? {
        let key_pem = read(key)?;
        let cert_pem = read(cert)?;
        let invalid =
            |path: &Path, e: rcgen::Error| CertError::Invalid { path: path.to_owned(), message: e.to_string() };
        let signing_key = KeyPair::from_pem(&key_pem).map_err(|e| invalid(key, e))?;
        return Issuer::from_ca_cert_pem(&cert_pem, signing_key).map_err(|e| invalid(cert, e));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name, None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, 20);
    let signing_key = KeyPair::generate()?;
    let certificate = params.self_signed(&signing_key)?;
    write_file(cert, certificate.pem().as_bytes(), 0o644)?;
    write_file(key, signing_key.serialize_pem().as_bytes(), 0o600)?;
    created.extend([cert.to_owned(), key.to_owned()]);
    Ok(Issuer::new(params, signing_key))
}

fn write_leaf(
    params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    cert: &Path,
    key: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<(), CertError> {
    let signing_key = KeyPair::generate()?;
    let certificate = params.signed_by(&signing_key, issuer)?;
    write_file(cert, certificate.pem().as_bytes(), 0o644)?;
    write_file(key, signing_key.serialize_pem().as_bytes(), 0o600)?;
    created.extend([cert.to_owned(), key.to_owned()]);
    Ok(())
}

fn server_params() -> Result<CertificateParams, CertError> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let host = host_name();
    if let Some(host) = &host {
        names.push(host.clone());
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = name(host.as_deref().unwrap_or("localhost"), None);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, 10);
    Ok(params)
}

fn device_params(mac: &Mac) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(mac.as_str(), Some(DEVICE_OU));
    params.subject_alt_names = Vec::<SanType>::new();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, 10);
    params
}

fn name(common_name: &str, unit: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "deskline");
    if let Some(unit) = unit {
        dn.push(DnType::OrganizationalUnitName, unit);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Valid from yesterday (phones' clocks drift before NTP) for `years`.
fn set_validity(params: &mut CertificateParams, years: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365 * years);
}

/// This machine's host name (the kernel's, else `/etc/hostname`, else `$HOSTNAME`), when it is a
/// usable DNS name other than localhost.
fn host_name() -> Option<String> {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let usable = !host.is_empty()
        && host.len() <= 253
        && host != "localhost"
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    usable.then_some(host)
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io { action: "create directory", path: dir.to_owned(), source })
}

fn read(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|source| CertError::Io { action: "read", path: path.to_owned(), source })
}

/// Writes through a temporary file created with `mode` and renamed into place, so a crash never
/// leaves a truncated key and a key is never readable by others, not even briefly.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let io = |action, source| CertError::Io { action, path: path.to_owned(), source };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut file =
        fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(|e| io("create", e))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(|e| io("write", e))?;
    fs::rename(&tmp, path).map_err(|e| io("rename into", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn init_writes_every_file_with_private_keys_0600_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let mac: Mac = "80:5E:C0:A1:B2:C3".parse().unwrap();
        let paths = init_dir(dir.path(), std::slice::from_ref(&mac)).unwrap();
        assert_eq!(paths.created.len(), 8);
        assert_eq!(paths.devices[0].cert, dir.path().join("devices/805ec0a1b2c3.pem"));
        for key in [&paths.ca_key, &paths.server_key, &paths.device_ca_key, &paths.devices[0].key] {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
        assert_eq!(mode(&paths.server_cert), 0o644);

        let before = fs::read(&paths.server_cert).unwrap();
        let other: Mac = "0004f2000001".parse().unwrap();
        let again = init_dir(dir.path(), &[mac.clone(), other]).unwrap();
        assert_eq!(fs::read(&paths.server_cert).unwrap(), before, "existing files are kept");
        assert_eq!(again.created.len(), 2, "only the new device's pair: {:?}", again.created);

        // The new device certificate is signed by the existing device CA.
        let der = load_certs(&again.devices[1].cert).unwrap().remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let ca_der = load_certs(&paths.device_ca_cert).unwrap().remove(0);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(cert.issuer(), ca.subject());
        assert!(cert.verify_signature(Some(ca.public_key())).is_ok());
        let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap();
        assert_eq!(cn, "0004f2000001");
    }

    #[test]
    fn half_a_pair_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ca.pem"), "x").unwrap();
        assert!(matches!(init_dir(dir.path(), &[]), Err(CertError::HalfPair { .. })));
    }

    #[test]
    fn ensure_server_cert_creates_once_at_the_configured_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("certs/my.pem");
        let key = dir.path().join("certs/my.key");
        assert!(ensure_server_cert(&cert, &key).unwrap());
        assert!(!ensure_server_cert(&cert, &key).unwrap());
        assert_eq!(mode(&key), 0o600);
        assert!(dir.path().join("certs/ca.pem").exists());
        server_tls_config(&cert, &key, &[], &[]).unwrap();
    }

    /// One TLS exchange on loopback: the server's view of the client chain and the TLS version,
    /// or `None` when the handshake failed.
    async fn exchange(
        server: Arc<ServerConfig>,
        ca: &Path,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Option<(Vec<CertificateDer<'static>>, Option<rustls::ProtocolVersion>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.ok()?;
            let (_, conn) = tls.get_ref();
            let seen = (conn.peer_certificates().unwrap_or_default().to_vec(), conn.protocol_version());
            tls.write_all(b"ok").await.unwrap();
            tls.shutdown().await.unwrap();
            Some(seen)
        });
        let mut roots = RootCertStore::empty();
        roots.add(load_certs(ca).unwrap().remove(0)).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        // With TLS 1.3 the client may only learn of a refused certificate on its first read.
        if let Ok(mut tls) = connector.connect(name, tcp).await {
            let mut answer = Vec::new();
            let _ = tls.read_to_end(&mut answer).await;
        }
        server_task.await.unwrap()
    }

    fn device_identity(paths: &CertPaths) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (load_certs(&paths.devices[0].cert).unwrap(), PrivateKeyDer::from_pem_file(&paths.devices[0].key).unwrap())
    }

    /// A self-signed certificate that names `mac`, as an attacker could make.
    fn forged_identity(mac: &Mac) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = device_params(mac).self_signed(&key).unwrap();
        (vec![cert.der().clone()], PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap())
    }

    #[tokio::test]
    async fn handshake_with_a_device_certificate_reveals_its_mac() {
        let dir = tempfile::tempdir().unwrap();
        let mac: Mac = "805ec0a1b2c3".parse().unwrap();
        let paths = init_dir(dir.path(), std::slice::from_ref(&mac)).unwrap();
        let cas = std::slice::from_ref(&paths.device_ca_cert);
        let server = server_tls_config(&paths.server_cert, &paths.server_key, cas, &[b"http/1.1"]).unwrap();
        let (identity, key) = device_identity(&paths);
        let (chain, version) = exchange(server.clone(), &paths.ca_cert, identity, key).await.unwrap();
        assert!(matches!(version, Some(rustls::ProtocolVersion::TLSv1_3)));
        assert_eq!(crate::provisioning::device_auth::certificate_mac(&chain[0]), Some(mac.clone()));

        // The strict configuration refuses a certificate from another CA outright...
        let (forged, key) = forged_identity(&mac);
        assert!(exchange(server, &paths.ca_cert, forged, key).await.is_none());
    }

    #[tokio::test]
    async fn provisioning_tls_accepts_any_certificate_but_trusts_only_device_cas() {
        let dir = tempfile::tempdir().unwrap();
        let mac: Mac = "805ec0a1b2c3".parse().unwrap();
        let paths = init_dir(dir.path(), std::slice::from_ref(&mac)).unwrap();
        let tls = provisioning_tls(&paths.server_cert, &paths.server_key, std::slice::from_ref(&paths.device_ca_cert))
            .unwrap();
        let device_certs = tls.device_certs.clone().unwrap();

        let (identity, key) = device_identity(&paths);
        let (chain, _) = exchange(tls.config.clone(), &paths.ca_cert, identity, key).await.unwrap();
        assert!(device_certs.verify(&chain));

        // ...the provisioning one lets it through (digest is still possible) but does not trust it.
        let (forged, key) = forged_identity(&mac);
        let (chain, _) = exchange(tls.config.clone(), &paths.ca_cert, forged, key).await.unwrap();
        assert_eq!(crate::provisioning::device_auth::certificate_mac(&chain[0]), Some(mac));
        assert!(!device_certs.verify(&chain));
        assert!(!device_certs.verify(&[]));
        assert!(provisioning_tls(&paths.server_cert, &paths.server_key, &[]).unwrap().device_certs.is_none());
    }
}
