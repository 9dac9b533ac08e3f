//! Wiring: opens the store, builds the directory, the location table and the registrar, binds
//! every listener, prints where each is, and runs until Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod listeners;
mod provisioning_backend;

use listeners::SipListeners;

use crate::actions::Actions;
use crate::config::Config;
use crate::directory::secrets::SecretCipher;
use crate::directory::store::Store;
use crate::directory::{unix_now, Directory, ExtensionState};
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::registrar::{AddressOfRecord, LocationTable, Registrar, RegistrarSettings};
use crate::sip::client::ClientTransactions;
use crate::sip::dispatch::Dispatcher;
use crate::sip::notify::Notifier;
use crate::sip::reg_event::RegEvents;
use crate::sip::transport::Connections;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::directory::store::StoreError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error(transparent)]
    Secret(#[from] crate::directory::secrets::SecretError),
    #[error("certificates: {0}")]
    Certs(String),
    #[error("provisioning: {0}")]
    Provisioning(String),
    #[error("admin: {0}")]
    Admin(String),
}

/// Everything the parts share; the admin API and the actions reach the rest through it.
pub struct Services {
    pub config: Arc<Config>,
    pub directory: Arc<Directory>,
    pub registrar: Arc<Registrar>,
    pub events: EventBus,
    pub metrics: Arc<Metrics>,
    pub actions: Arc<Actions>,
    pub connections: Arc<Connections>,
    /// The admin API's bearer tokens.
    pub tokens: Arc<crate::admin::Tokens>,
    pub started_at: Instant,
}

fn bind_error(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Bind { what, addr, source }
}

/// Runs the server until it is told to stop.
pub async fn run(config: Config) -> Result<(), StartError> {
    let shutdown = CancellationToken::new();
    let services = start(config, shutdown.clone()).await?;
    println!("deskline: ready");
    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    drop(services);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Starts every part and listener; returns once all are up.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Arc<Services>, StartError> {
    let config = Arc::new(config);
    crate::certs::install_crypto_provider();
    prepare_data_dir(&config)?;
    let metrics = Arc::new(Metrics::new());
    let events = EventBus::new(4096);
    let (store, mut snapshot) = Store::open_with(&config.data_dir, metrics.clone(), config.store.bindings_fsync)?;
    let tokens = Arc::new(crate::admin::Tokens::load(&snapshot.tokens));
    let cipher = SecretCipher::open(&config.data_dir)?;
    let bindings = std::mem::take(&mut snapshot.bindings);
    let (directory, location) = load_state(&store, bindings, cipher, &events, &metrics)?;

    let listeners = SipListeners::bind(&config).await?;
    let settings = RegistrarSettings::from_config(&config, SipListeners::local_names(&config));
    let registrar =
        Arc::new(Registrar::new(&config, settings, directory.clone(), location, events.clone(), metrics.clone()));
    let connections = Connections::new();
    let clients = Arc::new(ClientTransactions::default());
    let notifier = Arc::new(Notifier::new(connections.clone(), clients.clone()));
    let actions =
        Arc::new(Actions::new(directory.clone(), registrar.clone(), notifier.clone(), events.clone(), metrics.clone()));
    let reg_events = RegEvents::new(registrar.clone(), notifier.clone());
    reg_events.spawn_watcher(&events, shutdown.clone());
    let dispatcher = Arc::new(Dispatcher::new(registrar.clone(), clients, reg_events, metrics.clone()));
    let phones_port = listeners.first_port(&config.provisioning.sip_transport);
    listeners.serve(&config, dispatcher, connections.clone(), metrics.clone(), &shutdown)?;

    let services = Arc::new(Services {
        config: config.clone(),
        directory,
        registrar: registrar.clone(),
        events,
        metrics,
        actions,
        connections,
        tokens,
        started_at: Instant::now(),
    });
    start_provisioning(&services, &shutdown, phones_port.unwrap_or(5061)).await?;
    start_admin(&services, &shutdown).await?;
    spawn_housekeeping(registrar, shutdown);
    Ok(services)
}

/// Creates the data folder, closed to other users (the store holds sealed secrets and token
/// hashes), and the development CA and server certificate when none is configured yet.
fn prepare_data_dir(config: &Config) -> Result<(), StartError> {
    use std::os::unix::fs::PermissionsExt;
    let dir_error = |e| StartError::DataDir(config.data_dir.display().to_string(), e);
    std::fs::create_dir_all(&config.data_dir).map_err(dir_error)?;
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700)).map_err(dir_error)?;
    let created = crate::certs::ensure_server_cert(&config.tls.cert, &config.tls.key)
        .map_err(|e| StartError::Certs(e.to_string()))?;
    if created {
        let ca = config.tls.cert.with_file_name("ca.pem");
        println!("deskline: development CA and server certificate written to {}", ca.display());
    }
    Ok(())
}

/// Reads the directory and the bindings from the store, the two in parallel (a restart with a
/// million of each must be quick), and logs how long each took.
fn load_state(
    store: &Store,
    bindings: Vec<crate::directory::journal::BindingRow>,
    cipher: SecretCipher,
    events: &EventBus,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<Directory>, LocationTable), StartError> {
    let started = Instant::now();
    let (directory, location) = std::thread::scope(|s| {
        let bindings = s.spawn(|| {
            let location = LocationTable::restore(bindings, store.clone(), unix_now(), events.clone(), metrics.clone());
            (location, started.elapsed())
        });
        let directory = Directory::load(store.clone(), cipher);
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "directory loaded");
        (directory, bindings.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let (location, took) = location;
    tracing::info!(bindings = location.len(), elapsed_ms = took.as_millis() as u64, "location table restored");
    let directory = directory?;
    let active = |aor: &AddressOfRecord| directory.extension_state(aor.extension()) == ExtensionState::Active;
    let removed = location.retain_aors(active);
    if removed > 0 {
        tracing::warn!(bindings = removed, "bindings of suspended or unknown extensions removed at start-up");
    }
    Ok((Arc::new(directory), location))
}

/// The HTTPS provisioning listeners: templates checked at start-up, configs for phones.
async fn start_provisioning(
    services: &Arc<Services>,
    shutdown: &CancellationToken,
    sip_port: u16,
) -> Result<(), StartError> {
    let config = &services.config;
    if config.provisioning.https.is_empty() {
        return Ok(());
    }
    let backend = Arc::new(provisioning_backend::DirectoryBackend {
        config: config.clone(),
        directory: services.directory.clone(),
        events: services.events.clone(),
        registrar_host: config.provisioning.sip_server.clone().unwrap_or_else(|| config.domain.clone()),
        registrar_port: sip_port,
    });
    let service = crate::provisioning::ProvisioningService::from_config(config, backend)
        .map_err(|e| StartError::Provisioning(e.to_string()))?;
    let metrics = services.metrics.clone();
    service.on_fetch(move |vendor, outcome| {
        let labels = crate::metrics::FetchLabels {
            vendor: vendor.map(|v| v.as_str()).unwrap_or("unknown").to_owned(),
            outcome: outcome.to_owned(),
        };
        metrics.config_fetches.get_or_create(&labels).inc();
    });
    let service = Arc::new(service);
    for addr in &config.provisioning.https {
        let listener = TcpListener::bind(addr).await.map_err(bind_error("HTTPS provisioning", *addr))?;
        let local = listener.local_addr().map_err(bind_error("HTTPS provisioning", *addr))?;
        println!("deskline: listening for HTTPS provisioning on {local}");
        tokio::spawn(crate::provisioning::server::serve(listener, service.clone(), shutdown.clone()));
    }
    Ok(())
}

/// The admin API listener and, on first start, the first admin token.
async fn start_admin(services: &Arc<Services>, shutdown: &CancellationToken) -> Result<(), StartError> {
    let config = &services.config;
    let written = services
        .tokens
        .ensure_first_admin_token(services.directory.store(), &config.data_dir)
        .await
        .map_err(|e| StartError::Admin(e.to_string()))?;
    if let Some(path) = written {
        println!("deskline: admin token written to {}", path.display());
    }
    let listener =
        TcpListener::bind(config.admin.listen).await.map_err(bind_error("admin API", config.admin.listen))?;
    let local = listener.local_addr().map_err(bind_error("admin API", config.admin.listen))?;
    println!("deskline: listening for admin API on {local}");
    let (services, shutdown) = (services.clone(), shutdown.clone());
    tokio::spawn(async move {
        if let Err(e) = crate::admin::serve(listener, services, shutdown).await {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    Ok(())
}

/// Expiry of bindings (every second) and pruning of the auth throttle (every minute).
fn spawn_housekeeping(registrar: Arc<Registrar>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            registrar.location().expire(unix_now());
            n += 1;
            if n.is_multiple_of(60) {
                registrar.throttle().prune();
            }
        }
    });
}
