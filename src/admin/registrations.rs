//! `/api/v1/registrations` (the live bindings, filtered and paged) and `/api/v1/stats` (counts by
//! state for the dashboard and monitoring).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiQuery};
use super::views::{status_str, Paging, RegistrationDoc, Stats};
use super::AdminState;
use crate::directory::Mac;
use crate::registrar::binding::TransportKind;
use crate::registrar::BindingView;

/// The `X-Total-Count` header of a paged listing.
pub(crate) fn total_header(total: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    headers
}

/// Filters of the registration listing; each one given must match.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistrationFilter {
    /// The user the binding belongs to.
    pub user: Option<String>,
    /// The device that authenticated it (any common MAC form).
    pub mac: Option<String>,
    /// The address of record (`sip:1001@domain`), or just its extension (`1001`).
    pub aor: Option<String>,
    /// `udp`, `tcp` or `tls`.
    pub transport: Option<String>,
    /// The source address, `ip` or `ip:port`.
    pub source: Option<String>,
}

impl RegistrationFilter {
    fn matcher(&self) -> Result<impl Fn(&BindingView) -> bool + '_, ApiError> {
        let mac: Option<Mac> = match &self.mac {
            Some(m) => Some(m.parse().map_err(|_| ApiError::BadRequest(format!("mac: not a MAC address: {m}")))?),
            None => None,
        };
        Ok(move |b: &BindingView| {
            self.user.as_ref().is_none_or(|u| b.user.as_deref() == Some(u.as_str()))
                && mac.as_ref().is_none_or(|m| b.device.as_deref() == Some(m.as_str()))
                && self.aor.as_ref().is_none_or(|a| aor_matches(a, &b.aor))
                && self.transport.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(b.transport))
                && self.source.as_ref().is_none_or(|s| source_matches(s, &b.source))
        })
    }
}

fn aor_matches(want: &str, aor: &str) -> bool {
    if want.contains(':') || want.contains('@') {
        return want.eq_ignore_ascii_case(aor);
    }
    let rest = aor.strip_prefix("sip:").or_else(|| aor.strip_prefix("sips:")).unwrap_or(aor);
    rest.split('@').next() == Some(want)
}

fn source_matches(want: &str, source: &str) -> bool {
    if want == source {
        return true;
    }
    // An address without a port matches every port: `10.0.0.5` matches `10.0.0.5:5060`, and
    // `::1` matches `[::1]:5060`.
    source
        .rsplit_once(':')
        .map(|(host, _)| {
            host.trim_start_matches('[').trim_end_matches(']') == want.trim_start_matches('[').trim_end_matches(']')
        })
        .unwrap_or(false)
}

/// The live bindings, filtered and paged; the count before paging is in `X-Total-Count`.
#[utoipa::path(get, path = "/api/v1/registrations", tag = "registrations", params(RegistrationFilter, Paging),
    responses((status = 200, body = [RegistrationDoc], headers(("X-Total-Count" = usize)))),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AdminState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<RegistrationFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<(HeaderMap, Json<Vec<BindingView>>), ApiError> {
    caller.require(Role::Viewer)?;
    let keep = filter.matcher()?;
    let now = crate::directory::unix_now();
    let mut all: Vec<BindingView> =
        state.services.registrar.location().snapshot(now).into_iter().filter(keep).collect();
    all.sort_by(|a, b| a.aor.cmp(&b.aor).then_with(|| a.contact.cmp(&b.contact)));
    Ok((total_header(all.len()), Json(paging.apply(all))))
}

/// Counts by state.
#[utoipa::path(get, path = "/api/v1/stats", tag = "registrations",
    responses((status = 200, body = Stats)), security(("bearer" = [])))]
pub async fn stats(State(state): State<AdminState>, caller: Caller) -> Result<Json<Stats>, ApiError> {
    caller.require(Role::Viewer)?;
    // Counting a million bindings and devices takes a while: off the async workers.
    let services = state.services.clone();
    let stats = tokio::task::spawn_blocking(move || count_states(&services)).await.map_err(ApiError::internal)?;
    Ok(Json(stats))
}

fn count_states(services: &crate::app::Services) -> Stats {
    let now = crate::directory::unix_now();
    let bindings = services.registrar.location().tally(now);
    let mut stats = Stats { bindings_total: bindings.total, ..Stats::default() };
    for t in [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls] {
        stats.bindings_by_transport.insert(t.as_str().to_owned(), bindings.by_transport[t as usize]);
    }
    services.directory.visit(
        |u| match status_str(u.status) {
            "active" => stats.users_active += 1,
            _ => stats.users_suspended += 1,
        },
        |d| {
            stats.devices_total += 1;
            if bindings.has_device(d.mac.as_str()) {
                stats.devices_registered += 1;
            } else {
                stats.devices_unregistered += 1;
            }
            stats.devices_resync_pending += usize::from(d.resync_pending);
        },
    );
    stats.uptime_seconds = services.started_at.elapsed().as_secs();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aor_filter_takes_the_uri_or_the_extension() {
        assert!(aor_matches("1001", "sip:1001@pbx.example.com"));
        assert!(aor_matches("sip:1001@pbx.example.com", "sip:1001@pbx.example.com"));
        assert!(!aor_matches("100", "sip:1001@pbx.example.com"));
    }

    #[test]
    fn source_filter_ignores_the_port_when_none_is_given() {
        assert!(source_matches("10.0.0.5", "10.0.0.5:5060"));
        assert!(source_matches("10.0.0.5:5060", "10.0.0.5:5060"));
        assert!(!source_matches("10.0.0.5:5061", "10.0.0.5:5060"));
        assert!(source_matches("::1", "[::1]:5060"));
        assert!(!source_matches("10.0.0.50", "10.0.0.5:5060"));
    }
}
