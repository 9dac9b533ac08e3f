//! The SIP listeners: bound before anything serves (their addresses are names of "this
//! registrar", which the registrar must know), then handed the dispatcher and served.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{bind_error, StartError};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::sip::dispatch::Dispatcher;
use crate::sip::transport::stream::{accept_loop, StreamContext};
use crate::sip::transport::udp::UdpListener;
use crate::sip::transport::Connections;

/// Every SIP socket of the configuration, bound and not yet served.
pub(super) struct SipListeners {
    udp: Vec<UdpListener>,
    tcp: Vec<TcpListener>,
    tls: Vec<TcpListener>,
}

impl SipListeners {
    pub(super) async fn bind(config: &Config) -> Result<SipListeners, StartError> {
        let mut listeners = SipListeners { udp: Vec::new(), tcp: Vec::new(), tls: Vec::new() };
        for addr in &config.sip.udp {
            listeners.udp.push(UdpListener::bind(*addr).map_err(bind_error("SIP/UDP", *addr))?);
        }
        for addr in &config.sip.tcp {
            listeners.tcp.push(TcpListener::bind(addr).await.map_err(bind_error("SIP/TCP", *addr))?);
        }
        for addr in &config.sip.tls {
            listeners.tls.push(TcpListener::bind(addr).await.map_err(bind_error("SIP/TLS", *addr))?);
        }
        Ok(listeners)
    }

    /// Names a phone may use for this registrar: localhost, the host name and every listener's
    /// specific address.
    pub(super) fn local_names(config: &Config) -> Vec<String> {
        let mut names = local_host_names();
        for addr in config.sip.udp.iter().chain(&config.sip.tcp).chain(&config.sip.tls) {
            if !addr.ip().is_unspecified() {
                names.push(addr.ip().to_string());
            }
        }
        names
    }

    /// The port of the first listener of a transport (`udp`, `tcp`, anything else: TLS), which
    /// provisioned phones are told to register to.
    pub(super) fn first_port(&self, transport: &str) -> Option<u16> {
        match transport {
            "udp" => self.udp.first().map(|l| l.local_addr().port()),
            "tcp" => self.tcp.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()),
            _ => self.tls.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()),
        }
    }

    /// Serves every listener on its own task (UDP on its receive threads), printing where.
    pub(super) fn serve(
        self,
        config: &Config,
        dispatcher: Arc<Dispatcher>,
        connections: Arc<Connections>,
        metrics: Arc<Metrics>,
        shutdown: &CancellationToken,
    ) -> Result<(), StartError> {
        for listener in self.udp {
            println!("deskline: listening for SIP/UDP on {}", listener.local_addr());
            let threads = UdpListener::receive_threads(config.sip.udp_threads);
            tokio::spawn(listener.run(threads, dispatcher.clone(), connections.clone(), shutdown.clone()));
        }
        let ctx = StreamContext {
            dispatcher,
            connections,
            metrics,
            idle_timeout: Duration::from_secs(config.sip.idle_timeout),
            shutdown: shutdown.clone(),
        };
        for (listener, addr) in self.tcp.into_iter().zip(&config.sip.tcp) {
            let local = listener.local_addr().map_err(bind_error("SIP/TCP", *addr))?;
            println!("deskline: listening for SIP/TCP on {local}");
            tokio::spawn(accept_loop(listener, None, ctx.clone()));
        }
        if self.tls.is_empty() {
            return Ok(());
        }
        let server_config = crate::certs::server_tls_config(&config.tls.cert, &config.tls.key, &[], &[])
            .map_err(|e| StartError::Certs(e.to_string()))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
        for (listener, addr) in self.tls.into_iter().zip(&config.sip.tls) {
            let local = listener.local_addr().map_err(bind_error("SIP/TLS", *addr))?;
            println!("deskline: listening for SIP/TLS on {local}");
            tokio::spawn(accept_loop(listener, Some(acceptor.clone()), ctx.clone()));
        }
        Ok(())
    }
}

/// Names a phone may use for this machine: localhost and the host name.
fn local_host_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim().to_ascii_lowercase();
        if !h.is_empty() {
            names.push(h);
        }
    }
    names
}
