//! Opening a [`SipUa`]: the connection it owns (a UDP socket, a TCP stream or a TLS stream), the
//! rustls client configuration, loopback-only constructors, and the UA's local addresses.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::{TcpStream, UdpSocket};

use super::super::{random_hex, DOMAIN};
use super::{SipUa, Transport};

/// The transport a [`SipUa`] owns: a socket, a stream or a TLS stream.
pub(super) enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A rustls client config trusting the CA(s) in `ca_pem`, optionally with a client identity.
pub fn tls_client_config(ca_pem: &Path, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_pem).unwrap_or_else(|e| panic!("read CA {}: {e:?}", ca_pem.display()));
    for cert in certs {
        roots.add(cert.expect("a CA certificate")).expect("add CA to the root store");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let cfg = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .unwrap_or_else(|e| panic!("read {}: {e:?}", cert.display()))
                .map(|c| c.expect("a certificate"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| panic!("read {}: {e:?}", key.display()));
            builder.with_client_auth_cert(chain, key).expect("client identity")
        }
    };
    Arc::new(cfg)
}

impl SipUa {
    fn base(transport: Transport, server: SocketAddr, local: SocketAddr, conn: Conn) -> SipUa {
        SipUa {
            transport,
            server,
            local,
            conn,
            rbuf: BytesMut::with_capacity(16 * 1024),
            domain: DOMAIN.to_string(),
            request_uri: format!("sip:{DOMAIN}"),
            user_agent: "deskline-test-ua/1.0".into(),
            call_id: format!("{}@test", random_hex(20)),
            cseq: 0,
            from_tag: random_hex(10),
            user: None,
            queue: VecDeque::new(),
            stray_responses: Vec::new(),
            pongs: 0,
            closed: false,
            timeout: Duration::from_secs(5),
            last_challenge: None,
            reuse_nonce: false,
            sent: Vec::new(),
        }
    }

    fn check_loopback(server: SocketAddr) {
        assert!(server.ip().is_loopback(), "test UAs talk to loopback only, not {server}");
    }

    /// A UDP socket on the loopback of the server's family.
    pub async fn udp(server: SocketAddr) -> SipUa {
        Self::check_loopback(server);
        let bind = if server.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" };
        let sock = UdpSocket::bind(bind).await.expect("bind UDP");
        let local = sock.local_addr().unwrap();
        Self::base(Transport::Udp, server, local, Conn::Udp(sock))
    }

    pub async fn try_tcp(server: SocketAddr) -> std::io::Result<SipUa> {
        Self::check_loopback(server);
        let s = TcpStream::connect(server).await?;
        s.set_nodelay(true)?;
        let local = s.local_addr()?;
        Ok(Self::base(Transport::Tcp, server, local, Conn::Tcp(s)))
    }

    pub async fn tcp(server: SocketAddr) -> SipUa {
        Self::try_tcp(server).await.unwrap_or_else(|e| panic!("TCP connect to {server}: {e}"))
    }

    /// TLS with SNI `localhost`, trusting `ca_pem` (the server's dev CA).
    pub async fn try_tls(
        server: SocketAddr,
        ca_pem: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> std::io::Result<SipUa> {
        Self::check_loopback(server);
        let cfg = tls_client_config(ca_pem, identity);
        let s = TcpStream::connect(server).await?;
        s.set_nodelay(true)?;
        let local = s.local_addr()?;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap().to_owned();
        let tls = tokio_rustls::TlsConnector::from(cfg).connect(name, s).await?;
        Ok(Self::base(Transport::Tls, server, local, Conn::Tls(Box::new(tls))))
    }

    pub async fn tls(server: SocketAddr, ca_pem: &Path) -> SipUa {
        Self::try_tls(server, ca_pem, None).await.unwrap_or_else(|e| panic!("TLS connect to {server}: {e}"))
    }

    pub async fn connect(transport: Transport, server: SocketAddr, ca_pem: &Path) -> SipUa {
        match transport {
            Transport::Udp => Self::udp(server).await,
            Transport::Tcp => Self::tcp(server).await,
            Transport::Tls => Self::tls(server, ca_pem).await,
        }
    }

    /// A UA on the server's first listener of this transport.
    pub async fn for_server(srv: &super::super::server::TestServer, transport: Transport) -> SipUa {
        Self::connect(transport, srv.sip_addr(transport), &srv.ca_pem_path()).await
    }

    /// `127.0.0.1:5555` / `[::1]:5555`.
    pub fn local_hostport(&self) -> String {
        self.local.to_string()
    }

    /// `<sip:EXT@LOCAL;transport=x>`.
    pub fn local_contact(&self, ext: &str) -> String {
        format!("<sip:{ext}@{};transport={}>", self.local_hostport(), self.transport.param())
    }

    pub fn aor(&self, ext: &str) -> String {
        format!("sip:{ext}@{}", self.domain)
    }

    pub fn new_call_id(&mut self) {
        self.call_id = format!("{}@test", random_hex(20));
        self.from_tag = random_hex(10);
    }
}
