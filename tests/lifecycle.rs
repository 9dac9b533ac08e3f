//! End-to-end tests of every row of `spec/lifecycle.md`: a real `deskline serve`, simulated
//! deskphones registered over UDP, TCP and TLS, real HTTPS config fetches with device client
//! certificates, the admin API actions, and what each phone then SAW (NOTIFY and its Event, the
//! 403 and its Warning, the config it fetched) and what the server HOLDS (registrations, user
//! status, `resync_pending`).
//!
//! Run: `cargo test --test lifecycle` (add `-- --nocapture` to see the timing figure
//! `DEACTIVATE_20_PHONES answer_ms=.. last_notify_ms=..`).

mod support;

#[path = "lifecycle/common.rs"]
mod common;

/// The batch actions (`POST /api/v1/users/deactivate`, `/reactivate`).
#[path = "lifecycle/batch.rs"]
mod batch;
#[path = "lifecycle/deactivate.rs"]
mod deactivate;
#[path = "lifecycle/delete_user.rs"]
mod delete_user;
#[path = "lifecycle/race.rs"]
mod race;
#[path = "lifecycle/reactivate.rs"]
mod reactivate;
#[path = "lifecycle/reassign.rs"]
mod reassign;
/// The reg event package (RFC 3680) on its own.
#[path = "lifecycle/reg_event.rs"]
mod reg_event;
#[path = "lifecycle/reset_password.rs"]
mod reset_password;
#[path = "lifecycle/restart.rs"]
mod restart;
#[path = "lifecycle/rotate.rs"]
mod rotate;
#[path = "lifecycle/sign_out.rs"]
mod sign_out;
#[path = "lifecycle/timing.rs"]
mod timing;
#[path = "lifecycle/unreachable.rs"]
mod unreachable;
