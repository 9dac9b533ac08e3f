//! `POST /api/v1/users/deactivate` and `POST /api/v1/users/reactivate`: the account actions for
//! many users in one request (`{"usernames": [...]}`), done by [`crate::actions`] in bulk. The
//! answer counts what was done and names every user not acted on; an empty list or more than
//! [`MAX_BATCH_USERS`] names is a 400.

use axum::extract::State;
use axum::Json;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::views::{BatchReportDoc, BatchUsersBody};
use super::AdminState;
use crate::actions::{BatchReport, MAX_BATCH_USERS};

fn check(body: &BatchUsersBody) -> Result<(), ApiError> {
    match body.usernames.len() {
        0 => Err(ApiError::BadRequest("usernames is empty: name at least one user".into())),
        n if n > MAX_BATCH_USERS => {
            Err(ApiError::BadRequest(format!("{n} usernames: at most {MAX_BATCH_USERS} in one request")))
        }
        _ => Ok(()),
    }
}

/// Suspend many users: each as `POST /users/{username}/deactivate` does (bindings removed, phones
/// notified, REGISTER refused); unknown names reported in `errors`, already suspended ones in
/// `unchanged`.
#[utoipa::path(post, path = "/api/v1/users/deactivate", tag = "users", request_body = BatchUsersBody,
    responses((status = 200, body = BatchReportDoc), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn deactivate_many(
    State(state): State<AdminState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchUsersBody>,
) -> Result<Json<BatchReport>, ApiError> {
    caller.require(Role::Admin)?;
    check(&body)?;
    let report = state.services.actions.deactivate_many(body.usernames, &caller.name).await;
    for user in &report.changed_users {
        state.tokens.revoke_logins_of(user);
    }
    Ok(Json(report))
}

/// Lift the suspension of many users: each as `POST /users/{username}/reactivate` does; unknown
/// names reported in `errors`, already active ones in `unchanged`.
#[utoipa::path(post, path = "/api/v1/users/reactivate", tag = "users", request_body = BatchUsersBody,
    responses((status = 200, body = BatchReportDoc), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reactivate_many(
    State(state): State<AdminState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchUsersBody>,
) -> Result<Json<BatchReport>, ApiError> {
    caller.require(Role::Admin)?;
    check(&body)?;
    Ok(Json(state.services.actions.reactivate_many(body.usernames, &caller.name).await))
}
