//! The operational endpoints: health, Prometheus metrics, the event stream (SSE), the audit log,
//! token management, the dashboard page and the OpenAPI document.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::IntoParams;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::views::{NewTokenAnswer, NewTokenBody, WhoAmI};
use super::AdminState;
use crate::directory::store::AuditEntry;

/// Liveness and readiness: 200 once the server answers (listeners are bound before this one).
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "ready")))]
pub async fn healthz(State(state): State<AdminState>) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "uptime_seconds": state.services.started_at.elapsed().as_secs()}))
}

/// Prometheus metrics (OpenMetrics text). No token needed where the admin listener is loopback.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AdminState>, caller: Result<Caller, ApiError>) -> Result<Response, ApiError> {
    if !state.services.config.admin.listen.ip().is_loopback() {
        // Not loopback-only: a viewer token is needed, as for any read.
        caller?.require(Role::Viewer)?;
    }
    let body = state.services.metrics.render();
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Server-Sent Events: one event per change, named by its kind, with JSON data. A reader too slow
/// to keep up gets a `missed` event with the count it missed. `?token=` is accepted here (a
/// browser's EventSource cannot send headers).
#[utoipa::path(get, path = "/api/v1/events", tag = "ops",
    params(("token" = Option<String>, Query, description = "the bearer token, for clients that cannot send headers")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream")),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    caller.require(Role::Viewer)?;
    let rx = state.services.events.subscribe();
    let hello = futures::stream::once(async { Ok(SseEvent::default().comment("connected")) });
    let stream = BroadcastStream::new(rx).map(|item| {
        Ok(match item {
            Ok(event) => SseEvent::default()
                .event(event.kind)
                .data(serde_json::to_string(&event).unwrap_or_else(|_| "{}".into())),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                SseEvent::default().event("missed").data(json!({"count": n}).to_string())
            }
        })
    });
    let stream = hello.chain(stream).take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// How many audit entries to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many (default 100, at most 10 000).
    pub limit: Option<usize>,
}

/// The newest audit entries, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "ops", params(AuditQuery),
    responses((status = 200, description = "audit entries: id, at, actor, action, target, detail")),
    security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AdminState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100).min(10_000);
    let store = state.services.directory.store().clone();
    let entries = tokio::task::spawn_blocking(move || store.audit_log(limit)).await.map_err(ApiError::internal)??;
    Ok(Json(entries))
}

/// Who the token belongs to, and its role.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "ops", responses((status = 200, body = WhoAmI)),
    security(("bearer" = [])))]
pub async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI { name: caller.name, role: caller.role, user: caller.user })
}

/// The stored API tokens (names and roles, never values).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "ops",
    responses((status = 200, body = [super::auth::TokenSummary])), security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Json<Vec<super::auth::TokenSummary>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.tokens.list()))
}

/// Create an API token; its value is answered this once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "ops", request_body = NewTokenBody,
    responses((status = 201, body = NewTokenAnswer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AdminState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<(StatusCode, Json<NewTokenAnswer>), ApiError> {
    caller.require(Role::Admin)?;
    let name_ok = !body.name.is_empty()
        && body.name.len() <= 64
        && body.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if !name_ok || body.role == Role::User {
        return Err(ApiError::Unprocessable(
            "a token needs a name (1-64 of A-Z a-z 0-9 - _ . @) and a role: admin, operator or viewer".into(),
        ));
    }
    let store = state.services.directory.store();
    let token = state.tokens.issue(store, &body.name, body.role, body.expires_in).await.map_err(|e| match e {
        super::auth::AuthError::NameTaken(_) => ApiError::Conflict(e.to_string()),
        other => ApiError::internal(other),
    })?;
    state.audit_done(&caller, "create_token", &body.name, json!({"role": body.role})).await;
    Ok((StatusCode::CREATED, Json(NewTokenAnswer { name: body.name, role: body.role, token })))
}

/// Revoke an API token by name.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "ops",
    params(("name" = String, Path, description = "token name")),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_token(
    State(state): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let store = state.services.directory.store();
    if !state.tokens.revoke(store, &name).await.map_err(ApiError::internal)? {
        return Err(ApiError::not_found(format!("token {name}")));
    }
    state.audit_done(&caller, "delete_token", &name, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The ops dashboard (one self-contained page; it asks for a token).
#[utoipa::path(get, path = "/", tag = "ops", responses((status = 200, description = "HTML page", content_type = "text/html")))]
pub async fn dashboard() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store"), (header::X_FRAME_OPTIONS, "DENY")], Html(include_str!("dashboard.html")))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::routes::openapi_document())
}

/// Answer of unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// Answer of a known path with an unknown method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
}
