//! HTTPS provisioning: phones fetch their configs here (`../spec/provisioning.md`).
//!
//! * [`vendor`]: who is asking (User-Agent) and for what (path → common file, MAC file, upload).
//! * [`device_auth`] and [`limiter`]: a phone proves it owns the MAC (client certificate or
//!   digest) before anything about that MAC is revealed; failures are throttled and logged.
//! * [`view`] and [`render`]: what a device's config says, rendered from `provisioning-templates/`
//!   (knows no sockets).
//! * [`backend`]: the trait through which the rest of deskline supplies devices and records fetches.
//! * `fetch` (request logic, socket-free) and [`server`] (TLS accept loop + axum router).
//!
//! [`ProvisioningService`] ties them together; [`serve`] runs it on a listener.

pub mod backend;
pub mod device_auth;
mod fetch;
pub mod limiter;
pub mod render;
pub mod server;
pub mod vendor;
pub mod view;

use std::sync::Arc;

use parking_lot::RwLock;

use crate::certs::{self, CertError, ProvisioningTls};
use crate::config::{Config, ProvisioningConfig};
use device_auth::DeviceAuthenticator;
use limiter::FailureLimiter;

pub use backend::{ConfigFetch, ProvisioningBackend};
pub use fetch::{FetchRequest, Reply, UploadGrant};
pub use render::{RenderError, Rendered, Renderer};
pub use server::serve;
pub use vendor::{classify, FileRequest, Vendor};
pub use view::{CommonView, DeviceState, DeviceView, LineView};

/// Failed device proofs a source may make per minute before it gets 429.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 10;

/// Why the provisioning service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error("provisioning templates: {0}")]
    Templates(#[from] RenderError),
    #[error("provisioning TLS: {0}")]
    Certs(#[from] CertError),
}

/// Called once per answered request with the vendor (when known) and an outcome: `ok`,
/// `not_modified`, `challenged`, `auth_failed`, `forbidden`, `throttled`, `not_found`,
/// `method_not_allowed`, `too_large`, `uploaded`, `error`.
type FetchHook = Arc<dyn Fn(Option<Vendor>, &'static str) + Send + Sync>;

pub struct ProvisioningService {
    config: ProvisioningConfig,
    tls: ProvisioningTls,
    renderer: Renderer,
    backend: Arc<dyn ProvisioningBackend>,
    auth: DeviceAuthenticator,
    limiter: FailureLimiter,
    on_fetch: RwLock<Option<FetchHook>>,
}

impl ProvisioningService {
    /// Loads the templates (`config.templates`, `config.overrides`) and renders each against
    /// sample devices, so a broken template stops start-up with its name and line. When
    /// `templates` is left at its default and that folder does not exist (a server started
    /// elsewhere), the built-in copy of the shipped templates is used. `tls` comes from
    /// [`certs::provisioning_tls`].
    pub fn new(
        config: ProvisioningConfig,
        tls: ProvisioningTls,
        backend: Arc<dyn ProvisioningBackend>,
    ) -> Result<ProvisioningService, ProvisioningError> {
        let renderer = if config.templates == ProvisioningConfig::default().templates && !config.templates.exists() {
            tracing::info!(target: "deskline::provisioning", "no {} folder here: using the built-in templates", config.templates.display());
            Renderer::builtin(config.overrides.as_deref())?
        } else {
            Renderer::load(&config.templates, config.overrides.as_deref())?
        };
        renderer.check_all()?;
        Ok(ProvisioningService {
            auth: DeviceAuthenticator::new(&config.device_auth),
            limiter: FailureLimiter::new(DEFAULT_AUTH_FAILURES_PER_MINUTE),
            config,
            tls,
            renderer,
            backend,
            on_fetch: RwLock::new(None),
        })
    }

    /// [`new`](Self::new) with the TLS settings of `config` (`[tls]` cert, key and — when
    /// `client-cert` is a device_auth method — `device_ca`), and the failure limit of
    /// `sip.auth_failures_before_throttle` per minute.
    pub fn from_config(
        config: &Config,
        backend: Arc<dyn ProvisioningBackend>,
    ) -> Result<ProvisioningService, ProvisioningError> {
        let device_cas = if config.provisioning.device_auth.iter().any(|m| m == "client-cert") {
            config.tls.device_ca.clone()
        } else {
            Vec::new()
        };
        let tls = certs::provisioning_tls(&config.tls.cert, &config.tls.key, &device_cas)?;
        let service = ProvisioningService::new(config.provisioning.clone(), tls, backend)?;
        Ok(service.with_auth_failure_limit(config.sip.auth_failures_before_throttle))
    }

    /// Failed proofs per minute and source before 429.
    pub fn with_auth_failure_limit(mut self, failures_per_minute: u32) -> ProvisioningService {
        self.limiter = FailureLimiter::new(failures_per_minute);
        self
    }

    /// Sets the callback that counts answers (for metrics); replaces any earlier one.
    pub fn on_fetch(&self, hook: impl Fn(Option<Vendor>, &'static str) + Send + Sync + 'static) {
        *self.on_fetch.write() = Some(Arc::new(hook));
    }

    pub(crate) fn report(&self, vendor: Option<Vendor>, outcome: &'static str) {
        let hook = self.on_fetch.read().clone();
        if let Some(hook) = hook {
            hook(vendor, outcome);
        }
    }

    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    pub fn config(&self) -> &ProvisioningConfig {
        &self.config
    }

    pub fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.tls.config.clone()
    }

    /// The leaf of a presented client chain when it leads to a configured device CA; any other
    /// certificate is ignored (the phone can still use digest).
    pub fn trusted_client_certificate(
        &self,
        chain: Option<&[rustls_pki_types::CertificateDer<'static>]>,
    ) -> Option<rustls_pki_types::CertificateDer<'static>> {
        let (chain, verifier) = (chain?, self.tls.device_certs.as_ref()?);
        verifier.verify(chain).then(|| chain[0].clone())
    }

    /// Largest accepted PUT body.
    pub fn max_upload_bytes(&self) -> usize {
        self.config.max_upload_bytes
    }
}

#[cfg(test)]
mod tests;
