//! A real `deskline serve` child process on ephemeral loopback ports, in its own temp dir.
//!
//! ```ignore
//! let srv = TestServer::start();
//! let srv = TestServer::start_with(|cfg| toml_set(cfg, "sip", "min_expires", "120"));
//! srv.udp_addr(); srv.admin_url(); srv.token(); srv.ca_pem_path();
//! srv.kill9(); srv.restart();   // same data dir, same config, same ports
//! ```
//!
//! The server's stdout is read until `deskline: ready` (30 s), every `listening for ... on ADDR`
//! line is parsed. Its stderr goes to `<tmp>/stderr.<n>.log`; the tail is printed when start-up
//! fails and when a test panics while the server is alive. The child is killed on drop.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sip_ua::Transport;
use super::{DOMAIN, REALM};

/// How long `start()`/`restart()` wait for `deskline: ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of the binary under test.
pub fn deskline_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_deskline"))
}

/// `<repo>/provisioning-templates`.
pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("provisioning-templates")
}

/// True when an IPv6 loopback socket can be bound here (some CI sandboxes have no `::1`).
pub fn ipv6_available() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

/// Where each kind of listener is, as printed by the server.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// From `deskline: admin token written to PATH`, when printed.
    pub token_path: Option<PathBuf>,
}

impl Listeners {
    /// Parses one stdout line; returns false for a line that is none of the listener/token lines.
    pub fn parse_line(&mut self, line: &str) -> bool {
        let line = line.trim();
        if let Some(path) = line.strip_prefix("deskline: admin token written to ") {
            self.token_path = Some(PathBuf::from(path.trim()));
            return true;
        }
        let Some(rest) = line.strip_prefix("deskline: listening for ") else { return false };
        let Some((kind, addr)) = rest.rsplit_once(" on ") else { return false };
        let addr = addr.trim();
        let addr = addr
            .strip_prefix("http://")
            .or_else(|| addr.strip_prefix("https://"))
            .unwrap_or(addr)
            .trim_end_matches('/');
        let Ok(addr) = addr.parse::<SocketAddr>() else {
            panic!("cannot parse the address in the server's line {line:?}");
        };
        match kind.trim() {
            "SIP/UDP" => self.udp.push(addr),
            "SIP/TCP" => self.tcp.push(addr),
            "SIP/TLS" => self.tls.push(addr),
            "HTTPS provisioning" => self.https.push(addr),
            "admin API" => self.admin = Some(addr),
            _ => return false, // a listener this harness does not know about
        }
        true
    }
}

/// Start-up options beyond the config text.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// SIP and HTTPS listeners on `[::1]:0` instead of `127.0.0.1:0` (the admin API stays on IPv4).
    pub ipv6: bool,
    /// SIP and HTTPS listeners on both `127.0.0.1:0` and `[::1]:0`.
    pub dual_stack: bool,
    /// Before the first start, run `deskline certs init <tmp>/certs --device MAC...` and set
    /// `tls.device_ca` to its `device-ca.pem` (client certificates for provisioning tests).
    pub device_macs: Vec<String>,
    /// Extra environment for the child (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
}

pub struct TestServer {
    dir: tempfile::TempDir,
    config_path: PathBuf,
    options: ServerOptions,
    child: Option<Child>,
    listeners: Listeners,
    token: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
    starts: u32,
}

/// Quotes a string as a TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Sets `key = value` (value is raw TOML, e.g. `"120"`, `"[\"MD5\"]"`, `"\"text\""`) in
/// `[section]` of a config text: replaces the key if the section has it, adds the section if
/// missing. `section = ""` means the top level (before any table).
pub fn toml_set(cfg: &mut String, section: &str, key: &str, value: &str) {
    let mut lines: Vec<String> = cfg.lines().map(str::to_owned).collect();
    let header = format!("[{section}]");
    // Bounds of the section's body: [start, end).
    let (start, end) = if section.is_empty() {
        let end = lines.iter().position(|l| l.trim_start().starts_with('[')).unwrap_or(lines.len());
        (0, end)
    } else if let Some(h) = lines.iter().position(|l| l.trim() == header) {
        let end = lines[h + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with('['))
            .map(|p| h + 1 + p)
            .unwrap_or(lines.len());
        (h + 1, end)
    } else {
        lines.push(String::new());
        lines.push(header);
        (lines.len(), lines.len())
    };
    let new_line = format!("{key} = {value}");
    let existing = (start..end).find(|&i| {
        let l = lines[i].trim_start();
        l.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('='))
    });
    match existing {
        Some(i) => lines[i] = new_line,
        None => lines.insert(end, new_line),
    }
    *cfg = lines.join("\n");
    cfg.push('\n');
}

/// The config every test server starts from (before the test's own edits).
pub fn base_config(dir: &Path, options: &ServerOptions) -> String {
    let any = |v4: bool, v6: bool| -> String {
        let mut v = Vec::new();
        if v4 {
            v.push("\"127.0.0.1:0\"");
        }
        if v6 {
            v.push("\"[::1]:0\"");
        }
        format!("[{}]", v.join(", "))
    };
    let (v4, v6) = match (options.ipv6, options.dual_stack) {
        (_, true) => (true, true),
        (true, false) => (false, true),
        (false, false) => (true, false),
    };
    let listen = any(v4, v6);
    let p = |rel: &str| toml_str(&dir.join(rel).to_string_lossy());
    let device_ca =
        if options.device_macs.is_empty() { "[]".to_string() } else { format!("[{}]", p("certs/device-ca.pem")) };
    format!(
        r#"domain = {domain}
data_dir = {data}

[sip]
udp = {listen}
tcp = {listen}
tls = {listen}
realm = {realm}

[tls]
cert = {cert}
key = {key}
device_ca = {device_ca}

[provisioning]
https = {listen}
templates = {templates}

[admin]
listen = "127.0.0.1:0"
"#,
        domain = toml_str(DOMAIN),
        realm = toml_str(REALM),
        data = p("data"),
        cert = p("certs/server.pem"),
        key = p("certs/server.key"),
        templates = toml_str(&templates_dir().to_string_lossy()),
    )
}

impl TestServer {
    /// Starts a server with the base config (every listener on `127.0.0.1:0`).
    pub fn start() -> TestServer {
        Self::start_opts(ServerOptions::default(), |_| {})
    }

    /// Starts a server after `edit` has changed the config text (see [`toml_set`]).
    pub fn start_with(edit: impl FnOnce(&mut String)) -> TestServer {
        Self::start_opts(ServerOptions::default(), edit)
    }

    /// SIP and HTTPS on `[::1]:0` only.
    pub fn start_ipv6() -> TestServer {
        Self::start_opts(ServerOptions { ipv6: true, ..Default::default() }, |_| {})
    }

    /// SIP and HTTPS on both `127.0.0.1:0` and `[::1]:0`.
    pub fn start_dual_stack() -> TestServer {
        Self::start_opts(ServerOptions { dual_stack: true, ..Default::default() }, |_| {})
    }

    /// Runs `deskline certs init` for these MACs first and trusts the device CA (client certs).
    pub fn start_with_device_certs(macs: &[&str], edit: impl FnOnce(&mut String)) -> TestServer {
        let options = ServerOptions { device_macs: macs.iter().map(|m| m.to_string()).collect(), ..Default::default() };
        Self::start_opts(options, edit)
    }

    pub fn start_opts(options: ServerOptions, edit: impl FnOnce(&mut String)) -> TestServer {
        let dir = tempfile::Builder::new().prefix("deskline-test-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        if !options.device_macs.is_empty() {
            certs_init(&dir.path().join("certs"), &options.device_macs);
        }
        let mut config = base_config(dir.path(), &options);
        edit(&mut config);
        let config_path = dir.path().join("deskline.toml");
        std::fs::write(&config_path, &config).unwrap();
        let mut server = TestServer {
            config_path,
            stderr_path: dir.path().join("stderr.0.log"),
            dir,
            options,
            child: None,
            listeners: Listeners::default(),
            token: String::new(),
            stdout: Arc::new(Mutex::new(Vec::new())),
            starts: 0,
        };
        server.spawn_and_wait();
        server
    }

    fn spawn_and_wait(&mut self) {
        self.starts += 1;
        self.stderr_path = self.dir.path().join(format!("stderr.{}.log", self.starts));
        let stderr_file = File::create(&self.stderr_path).expect("stderr log");
        let mut cmd = Command::new(deskline_bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file));
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", deskline_bin().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::clone(&self.stdout);
        lines.lock().unwrap().push(format!("---- start #{} ----", self.starts));
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut listeners = Listeners::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail_start(&format!("no `deskline: ready` within {READY_TIMEOUT:?}"));
            }
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if line.trim() == "deskline: ready" {
                        break;
                    }
                    listeners.parse_line(&line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                        self.fail_start(&format!("the server exited ({status}) before `deskline: ready`"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().unwrap().wait().ok();
                    self.fail_start(&format!(
                        "the server closed its stdout before `deskline: ready` (exit: {status:?})"
                    ));
                }
            }
        }
        if listeners.admin.is_none() {
            self.fail_start("the server printed no `listening for admin API on ADDR` line");
        }
        // The first start prints where the token is; a restart may not. Fall back to data_dir.
        let token_path = listeners
            .token_path
            .clone()
            .or_else(|| self.listeners.token_path.clone())
            .unwrap_or_else(|| self.data_dir().join("admin.token"));
        match std::fs::read_to_string(&token_path) {
            Ok(t) => self.token = t.trim().to_string(),
            Err(e) if self.token.is_empty() => {
                self.fail_start(&format!("cannot read the admin token at {}: {e}", token_path.display()))
            }
            Err(_) => {}
        }
        if listeners.token_path.is_none() {
            listeners.token_path = Some(token_path);
        }
        self.listeners = listeners;
    }

    fn fail_start(&mut self, why: &str) -> ! {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(Duration::from_millis(100)); // let the reader thread catch the last lines
        panic!(
            "deskline failed to start: {why}\n--- config ({}) ---\n{}\n--- stdout ---\n{}\n--- stderr (tail) ---\n{}",
            self.config_path.display(),
            self.config_text(),
            self.stdout_lines().join("\n"),
            self.stderr_tail(80)
        );
    }

    // ---- addresses -------------------------------------------------------------------------

    pub fn listeners(&self) -> &Listeners {
        &self.listeners
    }
    pub fn udp_addr(&self) -> SocketAddr {
        *self.listeners.udp.first().expect("the server printed no SIP/UDP listener")
    }
    pub fn tcp_addr(&self) -> SocketAddr {
        *self.listeners.tcp.first().expect("the server printed no SIP/TCP listener")
    }
    pub fn tls_addr(&self) -> SocketAddr {
        *self.listeners.tls.first().expect("the server printed no SIP/TLS listener")
    }
    pub fn https_addr(&self) -> SocketAddr {
        *self.listeners.https.first().expect("the server printed no HTTPS provisioning listener")
    }
    /// The SIP listener of this transport; with `v6`, the first IPv6 one.
    pub fn sip_addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Udp => self.udp_addr(),
            Transport::Tcp => self.tcp_addr(),
            Transport::Tls => self.tls_addr(),
        }
    }
    pub fn sip_addrs(&self, transport: Transport) -> &[SocketAddr] {
        match transport {
            Transport::Udp => &self.listeners.udp,
            Transport::Tcp => &self.listeners.tcp,
            Transport::Tls => &self.listeners.tls,
        }
    }
    pub fn admin_addr(&self) -> SocketAddr {
        self.listeners.admin.expect("the server printed no admin API listener")
    }
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr())
    }
    /// `https://localhost:PORT` of the provisioning listener (the dev cert covers localhost).
    pub fn https_url(&self) -> String {
        let a = self.https_addr();
        if a.is_ipv6() {
            format!("https://[::1]:{}", a.port())
        } else {
            format!("https://localhost:{}", a.port())
        }
    }
    pub fn token(&self) -> &str {
        &self.token
    }
    /// An admin API client with the admin token.
    pub fn admin(&self) -> super::admin::Admin {
        super::admin::Admin::new(&self.admin_url(), &self.token)
    }

    // ---- files ------------------------------------------------------------------------------

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }
    /// The CA that signed the server's certificate (made by the server if it was missing).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.cert_dir().join("ca.pem")
    }
    /// `(cert, key)` of a device made by `deskline certs init --device MAC` (see [`ServerOptions::device_macs`]).
    pub fn device_cert(&self, mac: &str) -> (PathBuf, PathBuf) {
        let mac: String = mac.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>().to_lowercase();
        let d = self.cert_dir().join("devices");
        (d.join(format!("{mac}.pem")), d.join(format!("{mac}.key")))
    }
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config_path).unwrap_or_default()
    }
    /// Rewrites the config (takes effect at the next [`restart`](Self::restart)).
    pub fn edit_config(&self, edit: impl FnOnce(&mut String)) {
        let mut text = self.config_text();
        edit(&mut text);
        std::fs::write(&self.config_path, text).unwrap();
    }

    // ---- output -----------------------------------------------------------------------------

    /// Every stdout line so far, all starts included.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }
    /// The current start's stderr.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
    /// The last `n` lines of every start's stderr (oldest start first).
    pub fn stderr_tail(&self, n: usize) -> String {
        let mut all = Vec::new();
        for i in 1..=self.starts {
            let p = self.dir.path().join(format!("stderr.{i}.log"));
            if let Ok(t) = std::fs::read_to_string(p) {
                all.push(format!("---- stderr of start #{i} ----"));
                all.extend(t.lines().map(str::to_owned));
            }
        }
        let skip = all.len().saturating_sub(n);
        all[skip..].join("\n")
    }

    // ---- process control --------------------------------------------------------------------

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        }
    }

    /// SIGKILL, then reap. A no-op when it is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, wait up to `grace` for the exit, SIGKILL after that. Returns the exit status
    /// (None when it had to be killed or was not running).
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Starts the server again on the same data dir, config and ports (the config is rewritten
    /// with the ports the previous start printed). SIGKILLs it first if it is still running.
    pub fn restart(&mut self) {
        self.kill9();
        self.pin_ports();
        self.spawn_and_wait();
    }

    /// Like [`restart`](Self::restart) but on the config as it is (ports `:0` stay ephemeral
    /// unless already pinned).
    pub fn restart_keep_config(&mut self) {
        self.kill9();
        self.spawn_and_wait();
    }

    /// Rewrites the config's listener lists with the addresses the last start printed.
    pub fn pin_ports(&self) {
        let text = self.config_text();
        let mut table: toml::Table = text.parse().expect("the test config is valid TOML");
        let list = |addrs: &[SocketAddr]| {
            toml::Value::Array(addrs.iter().map(|a| toml::Value::String(a.to_string())).collect())
        };
        fn section<'a>(t: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
            t.entry(name.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a table")
        }
        let l = &self.listeners;
        {
            let sip = section(&mut table, "sip");
            if !l.udp.is_empty() {
                sip.insert("udp".into(), list(&l.udp));
            }
            if !l.tcp.is_empty() {
                sip.insert("tcp".into(), list(&l.tcp));
            }
            if !l.tls.is_empty() {
                sip.insert("tls".into(), list(&l.tls));
            }
        }
        if !l.https.is_empty() {
            section(&mut table, "provisioning").insert("https".into(), list(&l.https));
        }
        if let Some(a) = l.admin {
            section(&mut table, "admin").insert("listen".into(), toml::Value::String(a.to_string()));
        }
        std::fs::write(&self.config_path, toml::to_string(&table).unwrap()).unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!(
                "---- deskline (pid {:?}) stdout ----\n{}\n{}",
                self.pid(),
                self.stdout_lines().join("\n"),
                self.stderr_tail(60)
            );
        }
        self.kill9();
        if std::env::var_os("DESKLINE_TEST_KEEP").is_some() {
            let path = self.dir.path().to_path_buf();
            eprintln!("DESKLINE_TEST_KEEP: keeping {}", path.display());
            // Leak the directory on purpose.
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            let _ = dir.keep();
        }
    }
}

/// `deskline certs init DIR --device MAC...`: server CA + cert, device CA, one client cert per MAC.
pub fn certs_init(dir: &Path, macs: &[String]) {
    let mut cmd = Command::new(deskline_bin());
    cmd.arg("certs").arg("init").arg(dir);
    for m in macs {
        cmd.arg("--device").arg(m);
    }
    let out = cmd.output().expect("run deskline certs init");
    assert!(
        out.status.success(),
        "deskline certs init failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
