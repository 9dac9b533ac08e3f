//! Deactivating (or reactivating) many users in one request — `POST /api/v1/users/deactivate` and
//! `/reactivate` with `{"usernames": [...]}` — with each user's semantics exactly those of the
//! one-user action (the shared part is [`super::status`]): suspension durable first, every binding
//! removed, every phone sent its check-sync NOTIFY, REGISTER refused with `403 Account Suspended`.
//!
//! What makes 10,000 users fast: the suspensions are written in a few large store transactions
//! (with each user's audit record in the same one), the bindings are removed in bulk, and the
//! NOTIFYs go out from a background task with bounded concurrency
//! ([`super::notify_batch`]). The answer waits for the NOTIFYs as long as a one-user action does
//! (1 s) and then reports how many phones were notified, unreachable, or still pending.
//!
//! One name's failure never fails the batch: unknown users are reported by name in `errors`;
//! users already in the wanted state are listed in `unchanged` and left alone (idempotent).

use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use super::notify_batch::NotifyCounts;
use super::notify_devices::ANSWER_WAIT;
use super::status::StatusOutcome;
use super::{audit_op, Actions};
use crate::directory::User;
use crate::events::Event;

/// The most usernames one batch request may name.
pub const MAX_BATCH_USERS: usize = 100_000;

/// Which batch action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchAction {
    Deactivate,
    Reactivate,
}

impl BatchAction {
    fn name(self) -> &'static str {
        match self {
            BatchAction::Deactivate => "deactivate",
            BatchAction::Reactivate => "reactivate",
        }
    }

    fn event(self) -> &'static str {
        match self {
            BatchAction::Deactivate => "user_deactivated",
            BatchAction::Reactivate => "user_reactivated",
        }
    }
}

/// Why one name of a batch was not acted on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BatchItemError {
    pub username: String,
    /// `not_found` (no such user) or `store` (the change could not be made durable).
    pub error: &'static str,
    pub detail: String,
}

/// What a batch action did: the API's answer.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub action: BatchAction,
    /// Distinct usernames in the request.
    pub requested: usize,
    /// Users whose status changed now (deactivated, or reactivated).
    pub changed: usize,
    /// Users already in the wanted state (already suspended / already active): nothing done.
    pub unchanged: Vec<String>,
    /// Names not acted on, each with why.
    pub errors: Vec<BatchItemError>,
    /// Bindings removed (deactivate).
    pub bindings_removed: usize,
    /// Devices of the changed users: each is sent a check-sync NOTIFY.
    pub devices: usize,
    /// Of those, answered 2xx / unreachable (resync pending, retried) / still in flight when the
    /// answer was sent.
    pub devices_notified: usize,
    pub devices_unreachable: usize,
    pub devices_pending: usize,
    /// Milliseconds from the request to the answer.
    pub elapsed_ms: u64,
    /// The users changed (not in the answer; for the caller, e.g. to revoke their login tokens).
    #[serde(skip)]
    pub changed_users: Vec<String>,
}

/// The names in request order, each once.
fn distinct(usernames: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(usernames.len());
    usernames.into_iter().filter(|u| seen.insert(u.clone())).collect()
}

impl Actions {
    /// Deactivates every user named, as [`Actions::deactivate`] does for one.
    pub async fn deactivate_many(&self, usernames: Vec<String>, actor: &str) -> BatchReport {
        self.batch(BatchAction::Deactivate, usernames, actor).await
    }

    /// Reactivates every user named, as [`Actions::reactivate`] does for one.
    pub async fn reactivate_many(&self, usernames: Vec<String>, actor: &str) -> BatchReport {
        self.batch(BatchAction::Reactivate, usernames, actor).await
    }

    async fn batch(&self, action: BatchAction, usernames: Vec<String>, actor: &str) -> BatchReport {
        let started = Instant::now();
        let names = distinct(usernames);
        let extra = |u: &User| vec![audit_op(actor, action.name(), &u.username, &json!({"batch": true}))];
        let mut outcome = match action {
            BatchAction::Deactivate => self.suspend_users(&names, extra).await,
            BatchAction::Reactivate => self.reactivate_users(&names, extra).await,
        };
        for u in &outcome.status.changed {
            let mut e = Event::new(action.event()).with("user", u.username.clone()).with("batch", true);
            if action == BatchAction::Deactivate {
                e = e.with("bindings_removed", outcome.removed_per_user.get(&u.username).copied().unwrap_or(0));
            }
            self.events.publish(e);
        }
        let removed = outcome.removed.iter().map(|(_, b)| b.clone()).collect();
        let devices = std::mem::take(&mut outcome.devices);
        let device_count = devices.len();
        let progress = self.notify_in_background(action.name(), devices, removed);
        let counts = progress.wait(ANSWER_WAIT).await;
        let report = report(action, names.len(), outcome, device_count, counts, started);
        let summary = json!({
            "requested": report.requested, "changed": report.changed, "unchanged": report.unchanged.len(),
            "errors": report.errors.len(), "bindings_removed": report.bindings_removed, "devices": report.devices,
        });
        let target = format!("{} users", report.requested);
        self.audit(actor, &format!("{}_batch", action.name()), &target, summary).await;
        tracing::info!(
            action = action.name(),
            requested = report.requested,
            changed = report.changed,
            errors = report.errors.len(),
            bindings_removed = report.bindings_removed,
            devices = report.devices,
            elapsed_ms = report.elapsed_ms,
            "batch action answered"
        );
        report
    }
}

fn report(
    action: BatchAction,
    requested: usize,
    outcome: StatusOutcome,
    devices: usize,
    counts: NotifyCounts,
    started: Instant,
) -> BatchReport {
    let StatusOutcome { status, removed, .. } = outcome;
    let not_found = status.unknown.into_iter().map(|username| BatchItemError {
        detail: format!("user {username} not found"),
        username,
        error: "not_found",
    });
    let failed = status.failed.into_iter().map(|(username, e)| BatchItemError {
        username,
        error: "store",
        detail: e.to_string(),
    });
    BatchReport {
        action,
        requested,
        changed: status.changed.len(),
        unchanged: status.unchanged,
        errors: not_found.chain(failed).collect(),
        bindings_removed: removed.len(),
        devices,
        devices_notified: counts.notified,
        devices_unreachable: counts.unreachable,
        devices_pending: counts.pending,
        elapsed_ms: started.elapsed().as_millis() as u64,
        changed_users: status.changed.into_iter().map(|u| u.username).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_once_in_request_order() {
        let names = ["b", "a", "b", "c", "a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(distinct(names), ["b", "a", "c"]);
    }
}
