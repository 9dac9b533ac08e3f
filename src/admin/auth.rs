//! Bearer tokens of the admin API and the [`Caller`] extractor.
//!
//! Operators' tokens (`admin`, `operator`, `viewer`) are kept in the store as the SHA-256 of the
//! token (never the token itself) with a JSON doc `{role, name, created_at, expires_at?}`, and in
//! memory in a map from hash to [`TokenInfo`]; a request's token is hashed and looked up, so no
//! comparison of secrets happens. Self-service login tokens (role `user`) live in memory only and
//! for a few minutes, and reach only their own user record. The first start writes an `admin`
//! token to `DATA_DIR/admin.token` (mode 0600).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::directory::store::{Store, StoreError, StoreOp};
use crate::directory::unix_now;

/// How long a self-service login token lasts, in seconds.
pub const LOGIN_TOKEN_TTL: u64 = 15 * 60;
/// The file the first admin token is written to, inside the data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// The one route that also takes the token as `?token=` (a browser's EventSource sends no headers).
pub const QUERY_TOKEN_PATH: &str = "/api/v1/events";

/// What a token may do; ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A logged-in user: their own record only.
    User,
    /// Read everything.
    Viewer,
    /// Read, resync, sign-out.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a token named {0} already exists")]
    NameTaken(String),
}

/// A token as stored (keyed by its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenDoc {
    pub role: Role,
    pub name: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// A token as held in memory.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub role: Role,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<u64>,
    /// For login tokens: the user they belong to.
    pub user: Option<String>,
    /// Kept in the store (false for login tokens).
    pub persistent: bool,
}

/// A token as listed by the API: never its value nor its hash.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenSummary {
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub expires_at: Option<u64>,
}

/// Every valid token, by hash.
#[derive(Default)]
pub struct Tokens {
    by_hash: DashMap<String, TokenInfo>,
}

/// SHA-256 of a token, lowercase hex.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `dlt_` + 43 URL-safe characters (256 bits).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("dlt_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Tokens {
    /// Builds the table from the store's `(hash, doc)` rows; a corrupt row is skipped with a warning.
    pub fn load(rows: &[(String, String)]) -> Tokens {
        let tokens = Tokens::default();
        for (hash, doc) in rows {
            match serde_json::from_str::<TokenDoc>(doc) {
                Ok(d) => {
                    let info = TokenInfo {
                        role: d.role,
                        name: d.name,
                        created_at: d.created_at,
                        expires_at: d.expires_at,
                        user: None,
                        persistent: true,
                    };
                    tokens.by_hash.insert(hash.clone(), info);
                }
                Err(e) => tracing::warn!(error = %e, "skipping a corrupt stored admin token"),
            }
        }
        tokens
    }

    /// The token's holder, if the token is known and not expired.
    pub fn lookup(&self, token: &str) -> Option<TokenInfo> {
        let hash = hash_token(token);
        let info = self.by_hash.get(&hash)?.clone();
        if info.expires_at.is_some_and(|t| t <= unix_now()) {
            if !info.persistent {
                self.by_hash.remove(&hash);
            }
            return None;
        }
        Some(info)
    }

    /// Creates a stored token; returns its value (shown once, never again).
    pub async fn issue(&self, store: &Store, name: &str, role: Role, ttl: Option<u64>) -> Result<String, AuthError> {
        if self.by_hash.iter().any(|e| e.persistent && e.name == name) {
            return Err(AuthError::NameTaken(name.to_owned()));
        }
        let token = generate_token();
        let hash = hash_token(&token);
        let doc = TokenDoc {
            role,
            name: name.to_owned(),
            created_at: crate::events::now_rfc3339(),
            expires_at: ttl.map(|t| unix_now() + t),
        };
        let json = serde_json::to_string(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        store.commit(vec![StoreOp::PutToken { hash: hash.clone(), doc: json }]).await?;
        let info = TokenInfo {
            role,
            name: doc.name,
            created_at: doc.created_at,
            expires_at: doc.expires_at,
            user: None,
            persistent: true,
        };
        self.by_hash.insert(hash, info);
        Ok(token)
    }

    /// A short-lived self-service token for `user`, in memory only.
    pub fn issue_login(&self, user: &str) -> String {
        self.purge_expired();
        let token = generate_token();
        let info = TokenInfo {
            role: Role::User,
            name: format!("login:{user}"),
            created_at: crate::events::now_rfc3339(),
            expires_at: Some(unix_now() + LOGIN_TOKEN_TTL),
            user: Some(user.to_owned()),
            persistent: false,
        };
        self.by_hash.insert(hash_token(&token), info);
        token
    }

    /// Drops every login token of `user` (after a deactivation, a password change, a deletion).
    pub fn revoke_logins_of(&self, user: &str) {
        self.by_hash.retain(|_, t| t.user.as_deref() != Some(user));
    }

    /// Deletes the stored token called `name`; false when there was none.
    pub async fn revoke(&self, store: &Store, name: &str) -> Result<bool, AuthError> {
        let hashes: Vec<String> =
            self.by_hash.iter().filter(|e| e.persistent && e.name == name).map(|e| e.key().clone()).collect();
        if hashes.is_empty() {
            return Ok(false);
        }
        store.commit(hashes.iter().map(|h| StoreOp::DeleteToken { hash: h.clone() }).collect()).await?;
        for h in hashes {
            self.by_hash.remove(&h);
        }
        Ok(true)
    }

    /// The stored tokens, by name.
    pub fn list(&self) -> Vec<TokenSummary> {
        let mut out: Vec<TokenSummary> = self
            .by_hash
            .iter()
            .filter(|e| e.persistent)
            .map(|e| TokenSummary {
                name: e.name.clone(),
                role: e.role,
                created_at: e.created_at.clone(),
                expires_at: e.expires_at,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn purge_expired(&self) {
        let now = unix_now();
        self.by_hash.retain(|_, t| t.persistent || t.expires_at.is_none_or(|e| e > now));
    }

    /// On first start (no stored admin token at all), creates an `admin` token and writes it to
    /// `DATA_DIR/admin.token` (mode 0600). Returns the file's path when it did.
    pub async fn ensure_first_admin_token(&self, store: &Store, data_dir: &Path) -> Result<Option<PathBuf>, AuthError> {
        if self.by_hash.iter().any(|e| e.persistent && e.role == Role::Admin) {
            return Ok(None);
        }
        let name = if self.by_hash.iter().any(|e| e.persistent && e.name == "admin") { "admin-first" } else { "admin" };
        let token = self.issue(store, name, Role::Admin, None).await?;
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        write_secret_file(&path, &format!("{token}\n"))?;
        Ok(Some(path))
    }
}

/// Writes `text` to `path` readable by the owner only (mode 0600), replacing any old file.
fn write_secret_file(path: &Path, text: &str) -> Result<(), AuthError> {
    let name = path.display().to_string();
    let io = |e| AuthError::Io(name.clone(), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(io)
}

/// Who is calling: the holder of a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// The token's name (the actor in the audit log).
    pub name: String,
    /// For a login token, the user it belongs to.
    pub user: Option<String>,
}

impl Caller {
    /// 403 unless the caller's role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; the token has {}",
                needed.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// 403 unless the caller may read `username`'s record (a viewer, or that user themself).
    pub fn require_user_or_viewer(&self, username: &str) -> Result<(), ApiError> {
        if self.role == Role::User && self.user.as_deref() == Some(username) {
            return Ok(());
        }
        self.require(Role::Viewer)
    }
}

/// The bearer token of a request: the `Authorization` header, or (for the event stream only) the
/// `token` query parameter.
fn request_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    if parts.uri.path() == QUERY_TOKEN_PATH {
        let q = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&parts.uri).ok()?;
        return q.0.get("token").cloned();
    }
    None
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, ApiError> {
        let tokens = Arc::<Tokens>::from_ref(state);
        let token = request_token(parts)
            .ok_or_else(|| ApiError::Unauthorized("an Authorization: Bearer token is required".into()))?;
        let info = tokens.lookup(&token).ok_or_else(|| ApiError::Unauthorized("the token is not valid".into()))?;
        Ok(Caller { role: info.role, name: info.name, user: info.user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn caller(role: Role, user: Option<&str>) -> Caller {
        Caller { role, name: "t".into(), user: user.map(str::to_owned) }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(caller(Role::Admin, None).require(Role::Operator).is_ok());
        assert!(caller(Role::Operator, None).require(Role::Viewer).is_ok());
        assert_eq!(caller(Role::Viewer, None).require(Role::Operator).unwrap_err().status().as_u16(), 403);
        assert!(caller(Role::Operator, None).require(Role::Admin).is_err());
        assert!(caller(Role::User, Some("bob")).require(Role::Viewer).is_err());
    }

    #[test]
    fn user_tokens_reach_only_their_own_record() {
        let bob = caller(Role::User, Some("bob"));
        assert!(bob.require_user_or_viewer("bob").is_ok());
        assert!(bob.require_user_or_viewer("alice").is_err());
        assert!(caller(Role::Viewer, None).require_user_or_viewer("alice").is_ok());
    }

    #[test]
    fn login_tokens_are_found_by_hash_and_revocable() {
        let tokens = Tokens::default();
        let t = tokens.issue_login("bob");
        let info = tokens.lookup(&t).unwrap();
        assert_eq!(info.role, Role::User);
        assert_eq!(info.user.as_deref(), Some("bob"));
        assert!(tokens.lookup("dlt_wrong").is_none());
        tokens.revoke_logins_of("bob");
        assert!(tokens.lookup(&t).is_none());
        assert!(tokens.list().is_empty(), "login tokens are not listed");
    }

    #[test]
    fn query_token_only_on_the_event_stream() {
        let (p, _) = Request::get("/api/v1/events?token=abc").body(()).unwrap().into_parts();
        assert_eq!(request_token(&p).as_deref(), Some("abc"));
        let (p, _) = Request::get("/api/v1/users?token=abc").body(()).unwrap().into_parts();
        assert_eq!(request_token(&p), None);
        let (p, _) = Request::get("/api/v1/users").header("authorization", "Bearer xyz").body(()).unwrap().into_parts();
        assert_eq!(request_token(&p).as_deref(), Some("xyz"));
        let (p, _) = Request::get("/api/v1/users").header("authorization", "Basic xyz").body(()).unwrap().into_parts();
        assert_eq!(request_token(&p), None);
    }

    #[tokio::test]
    async fn first_admin_token_is_written_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (store, snap) = Store::open(dir.path(), Arc::new(crate::metrics::Metrics::new())).unwrap();
        let tokens = Tokens::load(&snap.tokens);
        let path = tokens.ensure_first_admin_token(&store, dir.path()).await.unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(tokens.lookup(text.trim()).unwrap().role, Role::Admin);
        assert!(tokens.ensure_first_admin_token(&store, dir.path()).await.unwrap().is_none());
        drop(store);
        let (_store, snap) = Store::open(dir.path(), Arc::new(crate::metrics::Metrics::new())).unwrap();
        let reloaded = Tokens::load(&snap.tokens);
        assert_eq!(reloaded.lookup(text.trim()).unwrap().name, "admin");
        assert!(!snap.tokens[0].1.contains(text.trim()), "the store keeps only the hash");
    }
}
