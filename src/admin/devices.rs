//! `/api/v1/devices`: create, list (with filters), show, delete devices; reveal a device's SIP
//! credentials (admin only, audited first); reassign, rotate credentials, resync — the last three
//! through [`crate::actions`] so the phone is told (the actions keep their own audit records).

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::views::{ActionReportDoc, AssignBody, DeviceView, NewDeviceBody, Paging, ResyncAnswer, SipCredentialsView};
use super::AdminState;
use crate::actions::ActionReport;
use crate::directory::{Mac, NewDevice};

/// The MACs that have at least one live binding.
pub(crate) fn registered_macs(state: &AdminState) -> HashSet<String> {
    let now = crate::directory::unix_now();
    state.services.registrar.location().snapshot(now).into_iter().filter_map(|b| b.device).collect()
}

/// A MAC from a path: one that does not parse names no device.
fn path_mac(text: &str) -> Result<Mac, ApiError> {
    text.parse().map_err(|_| ApiError::not_found(format!("device {text}")))
}

fn view(state: &AdminState, mac: &Mac) -> Result<DeviceView, ApiError> {
    let device = state.services.directory.device(mac).ok_or_else(|| ApiError::not_found(format!("device {mac}")))?;
    Ok(DeviceView::new(&device, registered_macs(state).contains(mac.as_str())))
}

/// Create a device. Without `sip_username`/`sip_password` deskline generates them.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = NewDeviceBody,
    responses((status = 201, body = DeviceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AdminState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<(StatusCode, Json<DeviceView>), ApiError> {
    caller.require(Role::Admin)?;
    let manual = body.sip_password.is_some();
    let new = NewDevice {
        mac: body.mac,
        user: body.user,
        extension: body.extension,
        vendor: body.vendor,
        model: body.model,
        sip_username: body.sip_username,
        sip_password: body.sip_password,
    };
    let device = state.services.directory.create_device(new).await?;
    let detail = json!({"user": device.user, "extension": device.extension, "manual_credentials": manual});
    state.audit_done(&caller, "create_device", device.mac.as_str(), detail).await;
    Ok((StatusCode::CREATED, Json(DeviceView::new(&device, false))))
}

/// Filters of the device listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceFilter {
    /// Assigned to this user.
    pub user: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// With (true) or without (false) a live binding.
    pub registered: Option<bool>,
    pub resync_pending: Option<bool>,
    /// Only unassigned devices (true) or only assigned ones (false).
    pub unassigned: Option<bool>,
}

impl DeviceFilter {
    fn keeps(&self, d: &DeviceView) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w)))
        };
        eq(&self.user, &d.user)
            && eq(&self.vendor, &d.vendor)
            && eq(&self.model, &d.model)
            && self.registered.is_none_or(|r| r == d.registered)
            && self.resync_pending.is_none_or(|r| r == d.resync_pending)
            && self.unassigned.is_none_or(|u| u == d.user.is_none())
    }
}

/// Every device, by MAC, filtered and paged; the count before paging is in `X-Total-Count`.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceFilter, Paging),
    responses((status = 200, body = [DeviceView], headers(("X-Total-Count" = usize)))), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AdminState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<DeviceFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<(HeaderMap, Json<Vec<DeviceView>>), ApiError> {
    caller.require(Role::Viewer)?;
    let registered = registered_macs(&state);
    let all: Vec<DeviceView> = state
        .services
        .directory
        .devices()
        .iter()
        .map(|d| DeviceView::new(d, registered.contains(d.mac.as_str())))
        .filter(|d| filter.keeps(d))
        .collect();
    Ok((super::registrations::total_header(all.len()), Json(paging.apply(all))))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "MAC, any common form")),
    responses((status = 200, body = DeviceView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AdminState>,
    caller: Caller,
    Path(mac): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(view(&state, &path_mac(&mac)?)?))
}

/// Delete a device: its credentials stop working at once.
#[utoipa::path(delete, path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "MAC, any common form")),
    responses((status = 200, body = DeviceView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AdminState>,
    caller: Caller,
    Path(mac): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    caller.require(Role::Admin)?;
    let mac = path_mac(&mac)?;
    let registered = registered_macs(&state).contains(mac.as_str());
    let (device, _report) = state.services.actions.delete_device(&mac, &caller.name).await?;
    Ok(Json(DeviceView::new(&device, registered)))
}

/// A device's SIP credentials, for configuring a phone by hand. Admin only; audited before it is
/// answered.
#[utoipa::path(get, path = "/api/v1/devices/{mac}/sip-credentials", tag = "devices",
    params(("mac" = String, Path, description = "MAC, any common form")),
    responses((status = 200, body = SipCredentialsView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn sip_credentials(
    State(state): State<AdminState>,
    caller: Caller,
    Path(mac): Path<String>,
) -> Result<Json<SipCredentialsView>, ApiError> {
    caller.require(Role::Admin)?;
    let mac = path_mac(&mac)?;
    let device = state.services.directory.device(&mac).ok_or_else(|| ApiError::not_found(format!("device {mac}")))?;
    state
        .audit(&caller, "read_sip_credentials", mac.as_str(), json!({"username": device.credentials.username}))
        .await?;
    Ok(Json(SipCredentialsView {
        username: device.credentials.username.clone(),
        password: device.credentials.secret.expose().to_owned(),
        realm: state.services.config.sip.realm.clone(),
    }))
}

/// Assign the device to a (new) user: new credentials, old bindings removed, phone notified.
#[utoipa::path(put, path = "/api/v1/devices/{mac}/user", tag = "devices", request_body = AssignBody,
    params(("mac" = String, Path, description = "MAC, any common form")),
    responses((status = 200, body = ActionReportDoc), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn assign(
    State(state): State<AdminState>,
    caller: Caller,
    Path(mac): Path<String>,
    ApiJson(body): ApiJson<AssignBody>,
) -> Result<Json<ActionReport>, ApiError> {
    caller.require(Role::Admin)?;
    let mac = path_mac(&mac)?;
    let report = state.services.actions.reassign_device(&mac, &body.user, &caller.name).await?;
    Ok(Json(report))
}

/// Issue the device new SIP credentials; the old ones stay valid for an overlap.
#[utoipa::path(post, path = "/api/v1/devices/{mac}/rotate-credentials", tag = "devices",
    params(("mac" = String, Path, description = "MAC, any common form")),
    responses((status = 200, body = ActionReportDoc), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rotate(
    State(state): State<AdminState>,
    caller: Caller,
    Path(mac): Path<String>,
) -> Result<Json<ActionReport>, ApiError> {
    caller.require(Role::Admin)?;
    let mac = path_mac(&mac)?;
    let report = state.services.actions.rotate_credentials(&mac, &caller.name).await?;
    Ok(Json(report))
}

/// Send the phone a check-sync NOTIFY so it re-fetches its config.
#[utoipa::path(post, path = "/api/v1/devices/{mac}/resync", tag = "devices",
    params(("mac" = String, Path, description = "MAC, any common form")),
    responses((status = 200, body = ResyncAnswer), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn resync(
    State(state): State<AdminState>,
    caller: Caller,
    Path(mac): Path<String>,
) -> Result<Json<ResyncAnswer>, ApiError> {
    caller.require(Role::Operator)?;
    let mac = path_mac(&mac)?;
    let notified = state.services.actions.resync(&mac, &caller.name).await?;
    Ok(Json(ResyncAnswer { notified }))
}
