//! A test SIP user agent that speaks raw bytes over UDP, TCP or TLS (loopback only).
//!
//! ```ignore
//! let mut ua = SipUa::for_server(&srv, Transport::Tls).await;
//! let ok = ua.register("1001", "dev1001", "secret", Some(600), "", Algorithm::Sha256).await;
//! assert_eq!(ok.status(), Some(200), "{}", ok.raw);
//! let notify = ua.recv_request(Duration::from_secs(5)).await.unwrap();
//! ua.respond(&notify, 200, &[]).await;
//! ```
//!
//! Everything received is framed (datagram, or Content-Length on streams), kept as raw text,
//! split into headers by a small parser of our own (unfolding, compact names), and also handed to
//! `rsip::SipMessage::try_from` as an independent parser (`ReceivedMessage::parsed`).
//! Requests the server sends while the UA waits for a response are queued and returned by
//! [`SipUa::recv_message`] / [`SipUa::recv_request`] later.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::digest::{self, Algorithm};
use super::{random_hex, DOMAIN};

pub use super::message::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];
    /// `UDP`, `TCP`, `TLS` (Via).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
    /// `udp`, `tcp`, `tls` (URI `transport=` parameter).
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.via_name())
    }
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

enum Conn {
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

// ---------------------------------------------------------------------------------------------
// The UA
// ---------------------------------------------------------------------------------------------

/// What Contact a REGISTER carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactSpec {
    /// `<sip:EXT@LOCAL;transport=X>` + params.
    Local,
    /// `Contact: *` (with Expires: 0 to remove every binding).
    Star,
    /// No Contact header (a query).
    NoContact,
    /// This exact Contact value.
    Raw(String),
}

/// A REGISTER as [`SipUa::register_with`] sends it.
#[derive(Debug, Clone)]
pub struct RegisterParams {
    /// The extension: AOR `sip:EXT@domain` in To and From.
    pub ext: String,
    /// Digest username and password (None: send without ever answering a challenge).
    pub auth: Option<(String, String)>,
    pub algorithm: Algorithm,
    /// `Expires:` header (None: no header).
    pub expires: Option<u32>,
    pub contact: ContactSpec,
    /// Appended after the Contact's `>` verbatim, e.g. `;expires=60;+sip.instance="<urn:uuid:...>";reg-id=1`.
    pub contact_params: String,
    /// Extra header lines (name, value).
    pub extra_headers: Vec<(String, String)>,
}

impl RegisterParams {
    pub fn new(ext: &str, auth_user: &str, password: &str) -> RegisterParams {
        RegisterParams {
            ext: ext.into(),
            auth: Some((auth_user.into(), password.into())),
            algorithm: Algorithm::Sha256,
            expires: Some(600),
            contact: ContactSpec::Local,
            contact_params: String::new(),
            extra_headers: Vec::new(),
        }
    }
}

pub struct SipUa {
    pub transport: Transport,
    pub server: SocketAddr,
    pub local: SocketAddr,
    conn: Conn,
    rbuf: BytesMut,
    /// Domain of AORs (`pbx.test`).
    pub domain: String,
    /// Request-URI of REGISTER and OPTIONS (`sip:pbx.test`).
    pub request_uri: String,
    pub user_agent: String,
    /// Kept across REGISTERs (refreshes), like a phone does. [`new_call_id`](Self::new_call_id) changes it.
    pub call_id: String,
    pub cseq: u32,
    pub from_tag: String,
    /// The user in From of non-REGISTER requests (set by the last REGISTER).
    pub user: Option<String>,
    /// Requests (and stray responses) received while waiting for something else.
    pub queue: VecDeque<ReceivedMessage>,
    /// Responses that matched no transaction of ours.
    pub stray_responses: Vec<ReceivedMessage>,
    /// CRLF keep-alive answers seen on a stream.
    pub pongs: usize,
    /// The stream was closed by the server.
    pub closed: bool,
    /// Default wait for a final response.
    pub timeout: Duration,
    /// The last challenge answered, and the nc used with it (for nonce reuse on refresh).
    pub last_challenge: Option<(digest::Challenge, u32)>,
    /// Send Authorization from `last_challenge` (nc+1) on the first try, like phones refreshing.
    pub reuse_nonce: bool,
    /// Every message sent, in order (text).
    pub sent: Vec<String>,
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
    pub async fn for_server(srv: &super::server::TestServer, transport: Transport) -> SipUa {
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

    // ---- raw I/O ----------------------------------------------------------------------------

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
    async fn recv_wire(&mut self, timeout: Duration) -> Option<ReceivedMessage> {
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

    // ---- requests ---------------------------------------------------------------------------

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/{} {};branch={branch};rport", self.transport.via_name(), self.local_hostport())
    }

    /// Builds a request with our Via/From/To/Call-ID/CSeq (CSeq incremented) and the given
    /// headers. Returns (text, branch).
    pub fn build_request(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (String, String) {
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", random_hex(16));
        let mut m = format!("{method} {uri} SIP/2.0\r\n");
        m.push_str(&format!("Via: {}\r\n", self.via(&branch)));
        m.push_str("Max-Forwards: 70\r\n");
        m.push_str(&format!("From: <{from}>;tag={}\r\n", self.from_tag));
        m.push_str(&format!("To: <{to}>\r\n"));
        m.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        m.push_str(&format!("CSeq: {} {method}\r\n", self.cseq));
        m.push_str(&format!("User-Agent: {}\r\n", self.user_agent));
        for (n, v) in headers {
            m.push_str(&format!("{n}: {v}\r\n"));
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        m.push_str(&String::from_utf8_lossy(body));
        (m, branch)
    }

    /// Sends a request and waits for its final response (1xx skipped; requests received meanwhile
    /// are queued). None when nothing came within `self.timeout`.
    pub async fn try_request(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Option<ReceivedMessage> {
        let (text, branch) = self.build_request(method, uri, from, to, headers, body);
        self.send_raw(text.as_bytes()).await;
        self.wait_response(&branch, method).await
    }

    /// Waits for the final response of the transaction `branch`.
    pub async fn wait_response(&mut self, branch: &str, method: &str) -> Option<ReceivedMessage> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.recv_wire(left).await?;
            if m.is_request() {
                self.queue.push_back(m);
                continue;
            }
            let ours = m.via_branch().as_deref() == Some(branch)
                && m.cseq().map(|(_, meth)| meth.eq_ignore_ascii_case(method)).unwrap_or(false);
            if !ours {
                self.stray_responses.push(m);
                continue;
            }
            if m.status().is_some_and(|s| s < 200) {
                continue;
            }
            return Some(m);
        }
    }

    /// Like [`try_request`](Self::try_request) but panics without a final response.
    pub async fn request(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> ReceivedMessage {
        match self.try_request(method, uri, from, to, headers, body).await {
            Some(m) => m,
            None => panic!(
                "no final response to {method} over {} within {:?}; sent:\n{}",
                self.transport,
                self.timeout,
                self.sent.last().map(String::as_str).unwrap_or("")
            ),
        }
    }

    /// Sends a request; on 401/407 answers the challenge of `alg` once with `(user, pass)`.
    /// Returns the final response of the last attempt. With `reuse_nonce`, the first attempt
    /// already carries an Authorization from the last challenge (nc+1).
    #[allow(clippy::too_many_arguments)]
    pub async fn request_with_auth(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
        auth: Option<(&str, &str)>,
        alg: Algorithm,
    ) -> ReceivedMessage {
        let mut first = headers.to_vec();
        if let (true, Some((user, pass)), Some((ch, nc))) = (self.reuse_nonce, auth, self.last_challenge.clone()) {
            if ch.algorithm() == Some(alg) {
                let nc = nc + 1;
                let value = digest::authorization(&ch, user, pass, method, uri, nc, &digest::new_cnonce());
                self.last_challenge = Some((ch, nc));
                first.push(("Authorization".into(), value));
            }
        }
        let resp = self.request(method, uri, from, to, &first, body).await;
        let Some((user, pass)) = auth else { return resp };
        let (challenge_header, auth_header) = match resp.status() {
            Some(401) => ("WWW-Authenticate", "Authorization"),
            Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => return resp,
        };
        let Some(ch) = digest::pick_challenge(&resp.headers(challenge_header), alg) else {
            panic!("the {} to {method} offers no {alg} challenge:\n{}", resp.status().unwrap(), resp.raw);
        };
        let value = digest::authorization(&ch, user, pass, method, uri, 1, &digest::new_cnonce());
        self.last_challenge = Some((ch, 1));
        let mut second = headers.to_vec();
        second.push((auth_header.into(), value));
        self.request(method, uri, from, to, &second, body).await
    }

    // ---- REGISTER ---------------------------------------------------------------------------

    /// REGISTER → (401 → REGISTER with Authorization) → final response.
    pub async fn register_with(&mut self, p: &RegisterParams) -> ReceivedMessage {
        self.user = Some(p.ext.clone());
        let aor = self.aor(&p.ext);
        let mut headers = Vec::new();
        match &p.contact {
            ContactSpec::Local => {
                headers.push(("Contact".into(), format!("{}{}", self.local_contact(&p.ext), p.contact_params)))
            }
            ContactSpec::Star => headers.push(("Contact".into(), "*".into())),
            ContactSpec::NoContact => {}
            ContactSpec::Raw(c) => headers.push(("Contact".into(), c.clone())),
        }
        if let Some(e) = p.expires {
            headers.push(("Expires".into(), e.to_string()));
        }
        headers.extend(p.extra_headers.iter().cloned());
        let uri = self.request_uri.clone();
        let auth = p.auth.as_ref().map(|(u, pw)| (u.as_str(), pw.as_str()));
        self.request_with_auth("REGISTER", &uri, &aor, &aor, &headers, b"", auth, p.algorithm).await
    }

    /// Registers `sip:EXT@domain` with our local Contact (+ `contact_params` after `>`).
    pub async fn register(
        &mut self,
        ext: &str,
        auth_user: &str,
        password: &str,
        expires: Option<u32>,
        contact_params: &str,
        alg: Algorithm,
    ) -> ReceivedMessage {
        let mut p = RegisterParams::new(ext, auth_user, password);
        p.expires = expires;
        p.contact_params = contact_params.into();
        p.algorithm = alg;
        self.register_with(&p).await
    }

    /// Removes our own contact (`Expires: 0`).
    pub async fn unregister(&mut self, ext: &str, auth_user: &str, password: &str, alg: Algorithm) -> ReceivedMessage {
        self.register(ext, auth_user, password, Some(0), "", alg).await
    }

    /// `Contact: *`, `Expires: 0`.
    pub async fn unregister_all(
        &mut self,
        ext: &str,
        auth_user: &str,
        password: &str,
        alg: Algorithm,
    ) -> ReceivedMessage {
        let mut p = RegisterParams::new(ext, auth_user, password);
        p.contact = ContactSpec::Star;
        p.expires = Some(0);
        p.algorithm = alg;
        self.register_with(&p).await
    }

    /// A REGISTER without Contact: the 200 lists the current bindings.
    pub async fn query(&mut self, ext: &str, auth_user: &str, password: &str, alg: Algorithm) -> ReceivedMessage {
        let mut p = RegisterParams::new(ext, auth_user, password);
        p.contact = ContactSpec::NoContact;
        p.expires = None;
        p.algorithm = alg;
        self.register_with(&p).await
    }

    /// OPTIONS to the registrar itself (no auth).
    pub async fn options(&mut self) -> ReceivedMessage {
        let uri = self.request_uri.clone();
        let from = self.aor(&self.user.clone().unwrap_or_else(|| "test".into()));
        self.request("OPTIONS", &uri, &from, &uri, &[("Accept".into(), "application/sdp".into())], b"").await
    }

    // ---- answering the server's requests ----------------------------------------------------

    /// Builds a response to a request the server sent (Via/From/To/Call-ID/CSeq copied, a To tag
    /// added for non-100 responses).
    pub fn build_response(
        req: &ReceivedMessage,
        code: u16,
        reason: &str,
        extra_headers: &[(String, String)],
        body: &[u8],
    ) -> String {
        let mut m = format!("SIP/2.0 {code} {reason}\r\n");
        for via in req.headers("via") {
            m.push_str(&format!("Via: {via}\r\n"));
        }
        if let Some(f) = req.header("from") {
            m.push_str(&format!("From: {f}\r\n"));
        }
        if let Some(t) = req.header("to") {
            if code > 100 && addr_param(t, "tag").is_none() {
                m.push_str(&format!("To: {t};tag={}\r\n", random_hex(8)));
            } else {
                m.push_str(&format!("To: {t}\r\n"));
            }
        }
        if let Some(c) = req.call_id() {
            m.push_str(&format!("Call-ID: {c}\r\n"));
        }
        if let Some(c) = req.header("cseq") {
            m.push_str(&format!("CSeq: {c}\r\n"));
        }
        m.push_str("User-Agent: deskline-test-ua/1.0\r\n");
        for (n, v) in extra_headers {
            m.push_str(&format!("{n}: {v}\r\n"));
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        m.push_str(&String::from_utf8_lossy(body));
        m
    }

    /// Answers a server-sent request with `code` (standard reason phrase).
    pub async fn respond(&mut self, req: &ReceivedMessage, code: u16, extra_headers: &[(String, String)]) {
        let text = Self::build_response(req, code, reason_phrase(code), extra_headers, b"");
        self.send_raw_to(text.as_bytes(), req.source).await;
    }
}

/// The usual reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        489 => "Bad Event",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
