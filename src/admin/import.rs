//! `POST /api/v1/import`: many users and devices in one request and one durable step (see
//! [`crate::directory::Directory::import`]): all are created, or none and a JSON error names the
//! first bad entry. Admin only; one audit record with the counts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::views::{NewDeviceBody, NewUserBody};
use super::AdminState;
use crate::directory::{NewDevice, NewUser};

/// `POST /api/v1/import`: users first, then devices (which may name users of the same import).
/// At most 10,000 of each per request (and the 2 MB body limit).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ImportBody {
    #[serde(default)]
    pub users: Vec<NewUserBody>,
    #[serde(default)]
    pub devices: Vec<NewDeviceBody>,
}

/// What an import created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportAnswer {
    pub users_created: usize,
    pub devices_created: usize,
}

fn new_user(b: NewUserBody) -> NewUser {
    NewUser { username: b.username, display_name: b.display_name, password: b.password, extension: b.extension }
}

fn new_device(b: NewDeviceBody) -> NewDevice {
    NewDevice {
        mac: b.mac,
        user: b.user,
        extension: b.extension,
        vendor: b.vendor,
        model: b.model,
        sip_username: b.sip_username,
        sip_password: b.sip_password,
    }
}

/// Create many users and devices at once, all or nothing.
#[utoipa::path(post, path = "/api/v1/import", tag = "users", request_body = ImportBody,
    responses((status = 201, body = ImportAnswer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AdminState>,
    caller: Caller,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<(StatusCode, Json<ImportAnswer>), ApiError> {
    caller.require(Role::Admin)?;
    let users = body.users.into_iter().map(new_user).collect();
    let devices = body.devices.into_iter().map(new_device).collect();
    let report = state.services.directory.import(users, devices).await?;
    let detail = json!({"users": report.users, "devices": report.devices});
    state.audit_done(&caller, "import", "directory", detail).await;
    Ok((StatusCode::CREATED, Json(ImportAnswer { users_created: report.users, devices_created: report.devices })))
}
