//! Answering one request, without sockets: throttle check, classification, device proof (always
//! before anything about the MAC is looked up, so known and unknown MACs get the same 401),
//! rendering, ETag / If-None-Match, and recording the fetch. The HTTP layer (`server.rs`) only
//! turns a `Reply` into a response.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::directory::mac::Mac;
use crate::provisioning::backend::ConfigFetch;
use crate::provisioning::device_auth::{AuthOutcome, Credentials};
use crate::provisioning::render::{RenderError, Rendered};
use crate::provisioning::vendor::{classify, parse_user_agent, DeviceFile, FileRequest, Vendor};
use crate::provisioning::view::CommonView;
use crate::provisioning::ProvisioningService;

/// The parts of an HTTP request that matter here.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    /// `GET`, `HEAD` or `PUT`.
    pub method: &'a str,
    pub path: &'a str,
    /// The request target as sent (path and query): what a digest `uri` must equal.
    pub target: &'a str,
    pub host: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The leaf client certificate (DER), only when it chains to a configured device CA.
    pub peer_certificate: Option<&'a [u8]>,
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    File {
        body: String,
        content_type: &'static str,
        etag: String,
    },
    NotModified {
        etag: String,
    },
    /// 401 with these `WWW-Authenticate` values.
    Challenge {
        www_authenticate: [String; 2],
    },
    /// 403: no proof possible (digest turned off and no valid certificate).
    Forbidden,
    NotFound,
    /// 405: a PUT of something that is not an upload.
    MethodNotAllowed,
    TooManyRequests {
        retry_after: Duration,
    },
    PayloadTooLarge,
    /// 204 after an upload.
    Stored,
    /// 500; the cause is logged, never sent.
    Error,
}

/// A proven right to store one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    pub mac: Mac,
    pub name: String,
}

impl ProvisioningService {
    /// Answers a GET or HEAD.
    pub fn handle_get(&self, req: &FetchRequest<'_>) -> Reply {
        if let Err(retry_after) = self.limiter.check(req.remote.ip(), Instant::now()) {
            self.report(None, "throttled");
            return Reply::TooManyRequests { retry_after };
        }
        match classify(req.path, req.user_agent) {
            FileRequest::Unknown => {
                self.report(None, "not_found");
                Reply::NotFound
            }
            FileRequest::Common { vendor, template, model, .. } => self.serve_common(req, vendor, template, model),
            FileRequest::Upload { mac, .. } => match self.prove(req, &mac, Some(Vendor::Poly)) {
                // Uploaded overrides are never served back: they could re-enable what we disabled.
                Ok(()) => self.outcome(Some(Vendor::Poly), "not_found", Reply::NotFound),
                Err(reply) => reply,
            },
            FileRequest::Device { mac, file, vendor, model, name } => match self.prove(req, &mac, vendor) {
                Ok(()) => self.serve_device(req, &mac, file, vendor, model, &name),
                Err(reply) => reply,
            },
        }
    }

    /// Checks a PUT before its body is read: only Poly upload names, only with device proof.
    pub fn authorize_upload(&self, req: &FetchRequest<'_>) -> Result<UploadGrant, Reply> {
        if let Err(retry_after) = self.limiter.check(req.remote.ip(), Instant::now()) {
            self.report(None, "throttled");
            return Err(Reply::TooManyRequests { retry_after });
        }
        match classify(req.path, req.user_agent) {
            FileRequest::Upload { mac, name } => {
                self.prove(req, &mac, Some(Vendor::Poly))?;
                Ok(UploadGrant { mac, name })
            }
            FileRequest::Unknown => Err(self.outcome(None, "not_found", Reply::NotFound)),
            _ => Err(self.outcome(None, "method_not_allowed", Reply::MethodNotAllowed)),
        }
    }

    /// Stores an authorised upload whose body was read within `max_upload_bytes`.
    pub fn store_upload(&self, grant: &UploadGrant, body: &[u8]) -> Reply {
        let vendor = Some(Vendor::Poly);
        if self.backend.device_view(&grant.mac).is_none() {
            return self.outcome(vendor, "not_found", Reply::NotFound);
        }
        match self.backend.store_upload(&grant.mac, &grant.name, body) {
            Ok(()) => {
                tracing::info!(target: "deskline::provisioning", mac = %grant.mac, file = %grant.name, bytes = body.len(), "upload stored");
                self.outcome(vendor, "uploaded", Reply::Stored)
            }
            Err(e) => {
                tracing::error!(target: "deskline::provisioning", mac = %grant.mac, file = %grant.name, "cannot store upload: {e}");
                self.outcome(vendor, "error", Reply::Error)
            }
        }
    }

    /// `Ok` when the request proves it owns `mac`; otherwise the challenge (or 429/403) to send.
    fn prove(&self, req: &FetchRequest<'_>, mac: &Mac, vendor: Option<Vendor>) -> Result<(), Reply> {
        let creds = Credentials {
            peer_certificate: req.peer_certificate,
            authorization: req.authorization,
            method: req.method,
            uri: req.target,
        };
        let stale = match self.auth.verify(mac, &creds, |m| self.backend.provisioning_secret(m)) {
            AuthOutcome::Proven(_) => return Ok(()),
            AuthOutcome::Missing => false,
            AuthOutcome::Stale => true,
            AuthOutcome::Failed(reason) => {
                let (ip, path) = (req.remote.ip(), req.path);
                self.limiter.record_failure(ip, Instant::now());
                tracing::warn!(target: "deskline::auth", "provisioning auth failure from {ip} mac={mac} path={path}");
                tracing::debug!(target: "deskline::auth", %ip, %mac, "why: {reason}");
                self.report(vendor, "auth_failed");
                false
            }
        };
        if !self.auth.digest_enabled() {
            return Err(self.outcome(vendor, "forbidden", Reply::Forbidden));
        }
        self.report(vendor, "challenged");
        Err(Reply::Challenge { www_authenticate: self.auth.challenge(stale) })
    }

    fn serve_device(
        &self,
        req: &FetchRequest<'_>,
        mac: &Mac,
        file: DeviceFile,
        vendor: Option<Vendor>,
        model: Option<String>,
        name: &str,
    ) -> Reply {
        let Some(mut view) = self.backend.device_view(mac) else {
            return self.outcome(vendor, "not_found", Reply::NotFound);
        };
        let resolved = file.resolve_vendor(&[vendor, view.vendor, Vendor::from_oui(mac)]);
        let Some((vendor, template)) = resolved.and_then(|v| file.template(v).map(|t| (v, t))) else {
            tracing::info!(target: "deskline::provisioning", %mac, file = %name, "no vendor known for this file name");
            return self.outcome(vendor, "not_found", Reply::NotFound);
        };
        if view.provisioning_url.is_empty() {
            view.provisioning_url = base_url(req);
        }
        let rendered = match self.renderer.render_device(vendor, template, model.as_deref(), &view) {
            Ok(rendered) => rendered,
            Err(e) => return self.render_failed(Some(vendor), name, e),
        };
        let ua = req.user_agent.and_then(parse_user_agent).filter(|u| u.vendor == vendor);
        let fetch = ConfigFetch {
            address: req.remote,
            user_agent: req.user_agent.map(|u| u.chars().take(256).collect()),
            vendor: Some(vendor),
            model: model.or_else(|| ua.as_ref().and_then(|u| u.model.clone())),
            firmware: ua.and_then(|u| u.firmware),
            file: name.to_owned(),
        };
        tracing::debug!(target: "deskline::provisioning", %mac, file = %name, %vendor, source = %req.remote, state = view.state.as_str(), "config fetched");
        self.backend.record_fetch(mac, fetch);
        self.file_reply(Some(vendor), req, rendered)
    }

    fn serve_common(&self, req: &FetchRequest<'_>, vendor: Vendor, template: &str, model: Option<String>) -> Reply {
        let view = CommonView::new(&self.config, vendor, model, base_url(req));
        match self.renderer.render_common(template, &view) {
            Ok(rendered) => {
                tracing::debug!(target: "deskline::provisioning", path = req.path, %vendor, source = %req.remote, "common file fetched");
                self.file_reply(Some(vendor), req, rendered)
            }
            Err(e) => self.render_failed(Some(vendor), req.path, e),
        }
    }

    fn file_reply(&self, vendor: Option<Vendor>, req: &FetchRequest<'_>, rendered: Rendered) -> Reply {
        let etag = rendered.etag;
        if req.if_none_match.is_some_and(|header| etag_matches(header, &etag)) {
            return self.outcome(vendor, "not_modified", Reply::NotModified { etag });
        }
        self.outcome(
            vendor,
            "ok",
            Reply::File { body: rendered.body, content_type: rendered.format.content_type(), etag },
        )
    }

    fn render_failed(&self, vendor: Option<Vendor>, file: &str, error: RenderError) -> Reply {
        if let RenderError::Missing { .. } = error {
            return self.outcome(vendor, "not_found", Reply::NotFound);
        }
        tracing::error!(target: "deskline::provisioning", %file, "cannot render: {error}");
        self.outcome(vendor, "error", Reply::Error)
    }

    fn outcome(&self, vendor: Option<Vendor>, outcome: &'static str, reply: Reply) -> Reply {
        self.report(vendor, outcome);
        reply
    }
}

/// `https://<Host the phone used><folder of the path>/`; the local address when Host is missing
/// or not a plain host name.
pub(crate) fn base_url(req: &FetchRequest<'_>) -> String {
    let plain = |h: &&str| {
        !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    };
    let host = req.host.filter(plain).map(str::to_ascii_lowercase).unwrap_or_else(|| req.local.to_string());
    let folder = req.path.rfind('/').map(|i| &req.path[..i]).unwrap_or_default();
    format!("https://{host}{folder}/")
}

/// RFC 9110 `If-None-Match`: `*` or any listed (possibly weak) tag equal to ours.
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}
