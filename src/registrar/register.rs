//! Handling one REGISTER, in the order the module documentation of [`super`] gives.

use std::sync::Arc;

use bytes::Bytes;

use super::rules::{self, Changes, ContactChange, ContactUpdate, RequestFacts, Stamp, UpdateError};
use super::{AddressOfRecord, Binding, Registrar};
use crate::directory::store::StoreError;
use crate::directory::{unix_now, ExtensionState, SipAccount};
use crate::events::Event;
use crate::metrics::StatusLabels;
use crate::sip::auth::Verdict;
use crate::sip::headers::{ContactSpec, DigestCredentials};
use crate::sip::response::{date_now, ResponseBuilder};
use crate::sip::transport::Inbound;
use crate::sip::uri::Uri;
use crate::sip::validate::Request;
use crate::sip::Text;

/// Store submissions not yet durable beyond which REGISTER is answered 503 + Retry-After.
const MAX_STORE_BACKLOG: usize = 20_000;

/// A REGISTER whose bindings are changed in memory, waiting for the store.
struct Applied {
    req: Request,
    inbound: Inbound,
    aor: AddressOfRecord,
    /// The 200 OK, built under the address of record's lock.
    ok: Bytes,
}

/// A final answer decided before touching the location table.
struct Refusal {
    code: u16,
    reason: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(code: u16) -> Refusal {
        Refusal { code, reason: None, headers: Vec::new() }
    }

    fn reason(mut self, reason: &'static str) -> Refusal {
        self.reason = Some(reason);
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Refusal {
        self.headers.push((name, value.into()));
        self
    }
}

/// What the authentication step concluded.
struct Authenticated {
    account: SipAccount,
}

impl Registrar {
    /// Handles a REGISTER and sends its final answer on `inbound` (possibly later, once durable).
    pub fn register(self: &Arc<Self>, req: Request, inbound: Inbound) {
        let now = unix_now();
        match self.prepare(&req, &inbound, now) {
            Err(refusal) => self.refuse(&req, &inbound, refusal),
            Ok((auth, aor, change)) => self.apply(req, inbound, auth, aor, change, now),
        }
    }

    fn refuse(&self, req: &Request, inbound: &Inbound, r: Refusal) {
        let code = r.code;
        let bytes = self.response_bytes(req, inbound, r);
        self.finish(inbound, code, bytes);
    }

    fn finish(&self, inbound: &Inbound, code: u16, bytes: Bytes) {
        inbound.reply.send(bytes);
        self.metrics.register_responses.get_or_create(&StatusLabels { status: code }).inc();
        self.metrics.request_latency.observe(inbound.received_at.elapsed().as_secs_f64());
    }

    fn challenge(&self, now: u64, stale: bool) -> Refusal {
        let mut r = Refusal::new(401);
        for value in self.auth.challenges(now, stale) {
            r = r.header("WWW-Authenticate", value);
        }
        r
    }

    /// Steps 1–4: everything decided without the location table.
    fn prepare(
        &self,
        req: &Request,
        inbound: &Inbound,
        now: u64,
    ) -> Result<(Authenticated, AddressOfRecord, ContactChange), Refusal> {
        let source = inbound.flow.remote.ip();
        let new_work = req.headers.get("Authorization").is_none();
        if self.directory.store().backlog() > MAX_STORE_BACKLOG || (inbound.overloaded && new_work) {
            return Err(Refusal::new(503).reason("Overloaded").header("Retry-After", "5"));
        }
        if let Some(wait) = self.throttle.blocked_for(source) {
            return Err(Refusal::new(503).reason("Too Many Failed Attempts").header("Retry-After", wait.to_string()));
        }
        match &req.uri {
            Uri::Sip(uri) if self.settings.is_local(&uri.host) => {}
            Uri::Sip(_) => return Err(Refusal::new(404).reason("Not Found - domain not served here")),
            Uri::Other { .. } => return Err(Refusal::new(416)),
        }
        let to_uri = match &req.to.uri {
            Uri::Sip(u) => u,
            Uri::Other { .. } => return Err(Refusal::new(400).reason("Bad Request - To must be a SIP URI")),
        };
        if !self.settings.is_local(&to_uri.host) {
            return Err(Refusal::new(404).reason("Not Found - domain not served here"));
        }
        let extension = to_uri.user.clone().unwrap_or_default();
        let auth = self.authenticate(req, inbound, now)?;
        if auth.account.extension.as_deref() != Some(extension.as_str()) || auth.account.user.is_none() {
            self.publish_rejected(&auth.account, &extension, inbound, "device not assigned to this extension");
            return Err(Refusal::new(403));
        }
        let change = self.contact_change(req)?;
        Ok((auth, self.aor(&extension), change))
    }

    /// Authenticates another request (SUBSCRIBE) like a REGISTER: the device's account, or the
    /// final answer to send (already counted as a failure where it is one).
    pub fn authenticate_device(&self, req: &Request, inbound: &Inbound) -> Result<SipAccount, Bytes> {
        let now = unix_now();
        if let Some(wait) = self.throttle.blocked_for(inbound.flow.remote.ip()) {
            let r = Refusal::new(503).reason("Too Many Failed Attempts").header("Retry-After", wait.to_string());
            return Err(self.response_bytes(req, inbound, r));
        }
        match self.authenticate(req, inbound, now) {
            Ok(a) => Ok(a.account),
            Err(r) => Err(self.response_bytes(req, inbound, r)),
        }
    }

    fn response_bytes(&self, req: &Request, inbound: &Inbound, r: Refusal) -> Bytes {
        let mut b = ResponseBuilder::new(r.code, r.reason, &req.headers, inbound.flow.remote);
        for (name, value) in &r.headers {
            b.header_str(name, value);
        }
        b.finish()
    }

    /// Step 2: digest authentication of the device.
    fn authenticate(&self, req: &Request, inbound: &Inbound, now: u64) -> Result<Authenticated, Refusal> {
        let creds = req
            .headers
            .get_all("Authorization")
            .filter_map(|v| DigestCredentials::parse(v).ok())
            .find(|c| c.realm == self.auth.realm());
        let Some(creds) = creds else { return Err(self.challenge(now, false)) };
        let method = req.method.as_str();
        let account = self.directory.sip_account(&creds.username);
        let print = self.auth.fingerprint(request_parts(req));
        let mut verdict = match &account {
            Some(a) => self.auth.verify(&creds, method, a.secret.expose(), now, print),
            None => self.auth.verify_unknown(&creds, method),
        };
        let mut used_previous = false;
        if verdict == Verdict::Invalid {
            if let Some(prev) = account.as_ref().and_then(|a| a.previous_secret.as_ref()) {
                verdict = self.auth.verify(&creds, method, prev.expose(), now, print);
                used_previous = true;
            }
        }
        match (verdict, account) {
            // A retransmission is answered as its first copy was: processed again, to the same end.
            (Verdict::Valid | Verdict::Retransmission, Some(account)) => {
                if !used_previous && account.previous_secret.is_some() {
                    self.retire_previous(&account);
                }
                if account.resync_pending {
                    self.clear_resync_pending(&account);
                }
                Ok(Authenticated { account })
            }
            (Verdict::Stale | Verdict::Replayed, _) => Err(self.challenge(now, true)),
            (Verdict::UnknownNonce, _) => Err(self.challenge(now, false)),
            _ => {
                self.throttle.failed(inbound.flow.remote.ip());
                self.metrics.auth_failures.inc();
                self.events.publish(
                    Event::new("auth_failed")
                        .with("source", inbound.flow.remote.to_string())
                        .with("username", creds.username.as_str()),
                );
                Err(Refusal::new(403))
            }
        }
    }

    /// The phone used its new secret: the rotated-out one stops working (in the background).
    fn retire_previous(&self, account: &SipAccount) {
        let directory = self.directory.clone();
        let mac = account.mac.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = directory.retire_previous_credentials(&mac).await {
                    tracing::warn!(%mac, error = %e, "could not retire previous credentials");
                }
            });
        }
    }

    /// A phone that registers has heard from us again: its pending resync is done.
    fn clear_resync_pending(&self, account: &SipAccount) {
        let (directory, events, mac) = (self.directory.clone(), self.events.clone(), account.mac.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if directory.set_resync_pending(&mac, false).await.is_ok() {
                    events.publish(Event::new("resync_done").with("mac", mac.to_string()).with("via", "register"));
                }
            });
        }
    }

    /// Step 4: what the Contact rows ask for, with granted expiries.
    fn contact_change(&self, req: &Request) -> Result<ContactChange, Refusal> {
        let s = &self.settings;
        match &req.contact {
            None => Ok(ContactChange::Query),
            Some(ContactSpec::Star) => {
                if req.expires == Some(0) {
                    Ok(ContactChange::RemoveAll)
                } else {
                    Err(Refusal::new(400).reason("Bad Request - Contact: * needs Expires: 0"))
                }
            }
            Some(ContactSpec::List(contacts)) => {
                let mut updates = Vec::with_capacity(contacts.len());
                for c in contacts {
                    let asked = c.expires.or(req.expires).unwrap_or(s.default_expires);
                    if asked != 0 && asked < s.min_expires {
                        return Err(Refusal::new(423).header("Min-Expires", s.min_expires.to_string()));
                    }
                    let contact = c.addr.uri_text.to_string();
                    updates.push(ContactUpdate {
                        key: rules::binding_key(&contact, c.instance.as_deref(), c.reg_id),
                        contact,
                        instance: c.instance.clone(),
                        reg_id: c.reg_id,
                        q: c.q,
                        expires: asked.min(s.max_expires),
                    });
                }
                Ok(ContactChange::Update(updates))
            }
        }
    }

    fn publish_rejected(&self, account: &SipAccount, extension: &str, inbound: &Inbound, reason: &'static str) {
        self.events.publish(
            Event::new("rejected")
                .with("mac", account.mac.to_string())
                .with("aor", self.aor(extension).to_string())
                .with("source", inbound.flow.remote.to_string())
                .with("reason", reason),
        );
    }

    /// Steps 5–6: under the AOR's lock, then after the store has it.
    fn apply(
        self: &Arc<Self>,
        req: Request,
        inbound: Inbound,
        auth: Authenticated,
        aor: AddressOfRecord,
        change: ContactChange,
        now: u64,
    ) {
        let facts = RequestFacts {
            call_id: req.call_id.clone(),
            cseq: req.cseq.seq,
            branch: req.top_via().branch.clone().unwrap_or_default(),
            flow: inbound.flow,
            user_agent: req.header("User-Agent").map(Text::from),
            path: req.headers.get_all("Path").map(str::to_owned).collect(),
            device: Some(auth.account.mac.to_string()),
            user: auth.account.user.clone(),
            now,
        };
        let this = self.clone();
        let key = aor.clone();
        let outcome = self.location.with_aor(&key, move |bindings| {
            let refusal = match self.directory.extension_state(aor.extension()) {
                ExtensionState::Active => None,
                ExtensionState::Suspended => Some(self.suspended()),
                ExtensionState::Unknown => Some(Refusal::new(403)),
            };
            if let Some(refusal) = refusal {
                return Err(Box::new((refusal, req, inbound)));
            }
            let changes = match rules::apply(bindings, &change, &facts, self.settings.max_contacts) {
                Ok(c) => c,
                Err(UpdateError::OutOfOrder) => {
                    return Err(Box::new((Refusal::new(400).reason("Bad Request - CSeq out of order"), req, inbound)))
                }
            };
            let ok = self.ok_response(&req, &inbound, bindings, now);
            let applied = Applied { req, inbound, aor: aor.clone(), ok };
            self.location.record(&aor, changes, move |stored, changes| this.after_commit(stored, applied, changes));
            Ok(())
        });
        if let Err(refused) = outcome {
            let (refusal, req, inbound) = *refused;
            if refusal.code == 403 {
                self.publish_rejected(&auth.account, key.extension(), &inbound, "account suspended");
            }
            self.refuse(&req, &inbound, refusal);
        }
    }

    fn suspended(&self) -> Refusal {
        Refusal::new(403).reason("Account Suspended").header("Warning", self.settings.suspended_warning.clone())
    }

    /// The 200 OK listing every binding of the AOR (built under its lock, sent once durable).
    fn ok_response(&self, req: &Request, inbound: &Inbound, bindings: &[Binding], now: u64) -> Bytes {
        let mut b = ResponseBuilder::new(200, None, &req.headers, inbound.flow.remote);
        for binding in bindings {
            b.contact_with_expires(&binding.contact, binding.expires_in(now));
        }
        for path in req.headers.get_all("Path") {
            b.header_str("Path", path);
        }
        b.header_str("Date", &date_now());
        b.finish()
    }

    /// Step 6. A request the store could not keep is taken back out of memory (so memory holds
    /// what is durable) and answered 500: the phone tries again after the Retry-After.
    fn after_commit(&self, stored: Result<(), StoreError>, applied: Applied, changes: Changes) {
        let Applied { req, inbound, aor, ok } = applied;
        match stored {
            Err(_) => {
                let branch = req.top_via().branch.as_deref().unwrap_or_default();
                self.location.undo(&aor, changes, Stamp::of(&req.call_id, req.cseq.seq, branch));
                self.refuse(&req, &inbound, Refusal::new(500).header("Retry-After", "5"))
            }
            Ok(()) => match self.directory.extension_state(aor.extension()) {
                ExtensionState::Active => self.finish(&inbound, 200, ok),
                _ => self.refuse(&req, &inbound, self.suspended()),
            },
        }
    }
}

/// What a request's fingerprint covers: all of it but the framing.
fn request_parts(req: &Request) -> impl Iterator<Item = &[u8]> {
    [req.method.as_str().as_bytes(), req.uri_text.as_bytes()]
        .into_iter()
        .chain(req.headers.iter().flat_map(|h| [h.name.as_bytes(), h.value.as_bytes()]))
        .chain(std::iter::once(&req.body[..]))
}
