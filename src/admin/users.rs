//! `/api/v1/users` and `/api/v1/login`: create, list and show users, set a password, and the
//! account actions (deactivate, reactivate, sign out everywhere, delete), which go through
//! [`crate::actions`] so phones learn of them (and which record them in the audit log).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;

use super::auth::{Caller, Role, LOGIN_TOKEN_TTL};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::views::{ActionReportDoc, LoginAnswer, LoginBody, NewUserBody, PasswordBody, UserView};
use super::AdminState;
use crate::actions::ActionReport;
use crate::directory::NewUser;

fn view(state: &AdminState, username: &str) -> Result<UserView, ApiError> {
    let dir = &state.services.directory;
    let user = dir.user(username).ok_or_else(|| ApiError::not_found(format!("user {username}")))?;
    Ok(UserView::new(&user, &dir.devices_of_user(username)))
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserBody,
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AdminState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require(Role::Admin)?;
    let new = NewUser {
        username: body.username,
        display_name: body.display_name,
        password: body.password,
        extension: body.extension,
    };
    let user = state.services.directory.create_user(new).await?;
    let detail = json!({"extensions": user.extensions, "display_name": user.display_name});
    state.audit_done(&caller, "create_user", &user.username, detail).await;
    Ok((StatusCode::CREATED, Json(view(&state, &user.username)?)))
}

/// Every user, by username.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = [UserView])), security(("bearer" = [])))]
pub async fn list(State(state): State<AdminState>, caller: Caller) -> Result<Json<Vec<UserView>>, ApiError> {
    caller.require(Role::Viewer)?;
    let dir = &state.services.directory;
    let devices = dir.devices();
    let users = dir
        .users()
        .iter()
        .map(|u| {
            let mine: Vec<_> = devices.iter().filter(|d| d.user.as_deref() == Some(&u.username)).cloned().collect();
            UserView::new(u, &mine)
        })
        .collect();
    Ok(Json(users))
}

/// One user (a login token may read its own user).
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "login name")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AdminState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    caller.require_user_or_viewer(&username)?;
    Ok(Json(view(&state, &username)?))
}

/// Set a user's login password; registrations are untouched. Admins, or the user themself.
#[utoipa::path(post, path = "/api/v1/users/{username}/password", tag = "users", request_body = PasswordBody,
    params(("username" = String, Path, description = "login name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_password(
    State(state): State<AdminState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    if !(caller.role == Role::User && caller.user.as_deref() == Some(username.as_str())) {
        caller.require(Role::Admin)?;
    }
    state.services.actions.reset_password(&username, &body.password, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Suspend a user: bindings removed, phones notified, REGISTER refused.
#[utoipa::path(post, path = "/api/v1/users/{username}/deactivate", tag = "users",
    params(("username" = String, Path, description = "login name")),
    responses((status = 200, body = ActionReportDoc), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn deactivate(
    State(state): State<AdminState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<ActionReport>, ApiError> {
    caller.require(Role::Admin)?;
    let report = state.services.actions.deactivate(&username, &caller.name).await?;
    state.tokens.revoke_logins_of(&username);
    Ok(Json(report))
}

/// Lift a suspension: phones notified, they fetch their config and register.
#[utoipa::path(post, path = "/api/v1/users/{username}/reactivate", tag = "users",
    params(("username" = String, Path, description = "login name")),
    responses((status = 200, body = ActionReportDoc), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn reactivate(
    State(state): State<AdminState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<ActionReport>, ApiError> {
    caller.require(Role::Admin)?;
    let report = state.services.actions.reactivate(&username, &caller.name).await?;
    Ok(Json(report))
}

/// Sign out everywhere: bindings removed, device credentials rotated, phones notified.
#[utoipa::path(post, path = "/api/v1/users/{username}/sign-out", tag = "users",
    params(("username" = String, Path, description = "login name")),
    responses((status = 200, body = ActionReportDoc), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn sign_out(
    State(state): State<AdminState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<ActionReport>, ApiError> {
    caller.require(Role::Operator)?;
    let report = state.services.actions.sign_out(&username, &caller.name).await?;
    state.tokens.revoke_logins_of(&username);
    Ok(Json(report))
}

/// Delete a user: bindings removed, devices unassigned with revoked credentials.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "login name")),
    responses((status = 200, body = ActionReportDoc), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AdminState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<ActionReport>, ApiError> {
    caller.require(Role::Admin)?;
    let report = state.services.actions.delete_user(&username, &caller.name).await?;
    state.tokens.revoke_logins_of(&username);
    Ok(Json(report))
}

/// Self-service login: a short-lived token that reaches the user's own record. A wrong password,
/// an unknown user and a suspended user all get the same 401.
#[utoipa::path(post, path = "/api/v1/login", tag = "users", request_body = LoginBody,
    responses((status = 200, body = LoginAnswer), (status = 401, body = ErrorBody)))]
pub async fn login(
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<LoginAnswer>, ApiError> {
    if !state.services.directory.verify_login(&body.username, &body.password).await {
        return Err(ApiError::Unauthorized("wrong username or password".into()));
    }
    let token = state.tokens.issue_login(&body.username);
    Ok(Json(LoginAnswer { token, expires_in: LOGIN_TOKEN_TTL }))
}
