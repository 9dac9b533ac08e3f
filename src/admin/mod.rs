//! The operators' side: JSON API, event stream, Prometheus metrics, dashboard.
//!
//! Everything is one axum router ([`router`]) built from the single route table in [`routes`],
//! which the OpenAPI document is checked against. Every request but `/healthz`, `/`, the OpenAPI
//! document, `/api/v1/login` (and `/metrics` on a loopback listener) carries a bearer token
//! ([`auth`]); every change is recorded in the store's audit log with the token's name as actor.

pub mod auth;
mod devices;
pub mod error;
mod import;
mod ops;
mod registrations;
pub mod routes;
mod users;
mod users_batch;
pub mod views;

use std::sync::Arc;

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;

pub use auth::{Caller, Role, Tokens};
pub use error::ApiError;

use crate::app::Services;
use crate::directory::store::StoreOp;

/// What every handler gets.
#[derive(Clone)]
pub struct AdminState {
    pub services: Arc<Services>,
    pub tokens: Arc<Tokens>,
    /// Cancelled at shutdown: ends the event streams so the server can stop.
    pub shutdown: CancellationToken,
}

impl FromRef<AdminState> for Arc<Tokens> {
    fn from_ref(state: &AdminState) -> Arc<Tokens> {
        state.tokens.clone()
    }
}

impl AdminState {
    /// Records a change in the audit log. `detail` must hold no secret.
    pub async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        let op = StoreOp::Audit {
            at: crate::events::now_rfc3339(),
            actor: caller.name.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.to_string(),
        };
        self.services.directory.store().commit(vec![op]).await.map_err(ApiError::from)
    }

    /// Like [`AdminState::audit`] after the change is done: a failure is logged, not answered.
    pub async fn audit_done(&self, caller: &Caller, action: &str, target: &str, detail: serde_json::Value) {
        if let Err(e) = self.audit(caller, action, target, detail).await {
            tracing::error!(action, target, error = %e, "could not record an audit entry");
        }
    }
}

/// The admin API router. Its event streams end when the server's shutdown token (see [`serve`])
/// is cancelled; a router made here alone gets its own, never cancelled.
pub fn router(services: Arc<Services>) -> axum::Router {
    router_with_shutdown(services, CancellationToken::new())
}

fn router_with_shutdown(services: Arc<Services>, shutdown: CancellationToken) -> axum::Router {
    let tokens = services.tokens.clone();
    routes::build(AdminState { services, tokens, shutdown })
}

/// Serves the admin API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: Arc<Services>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router_with_shutdown(services, shutdown.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
