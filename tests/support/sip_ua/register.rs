//! REGISTER as a phone sends it ([`RegisterParams`], [`ContactSpec`]): register, refresh, unregister,
//! unregister all, query; and OPTIONS to the registrar.

use super::super::digest::Algorithm;
use super::{ReceivedMessage, SipUa};

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

impl SipUa {
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
}
