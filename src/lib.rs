//! # deskline
//!
//! A SIP registrar and HTTPS provisioning server for deskphones.
//!
//! ## Layout
//!
//! * [`sip`]: the SIP protocol: framing and parsing (deskline's own layer over rsip), digest
//!   authentication, responses, transports (UDP, TCP, TLS) and the client transactions deskline
//!   starts (NOTIFY to phones).
//! * [`registrar`]: REGISTER rules (RFC 3261 §10.3, RFC 5626, RFC 3327) and the location table of
//!   bindings with its expiry. Knows no sockets and no HTTP.
//! * [`directory`]: users, extensions, devices and their credentials, kept in memory and in the
//!   embedded store ([`directory::store`]), which also holds the bindings durably.
//! * [`provisioning`]: the HTTPS server phones fetch their configs from, vendor detection, device
//!   proof and template rendering.
//! * [`admin`]: the operators' side: JSON API, event stream, Prometheus metrics, dashboard.
//! * [`actions`]: the operations that touch several parts at once (deactivate, reactivate,
//!   sign-out, delete, reassign, rotate credentials), in one place.
//! * [`events`] and [`metrics`]: what every part reports to the ops side.
//! * [`config`], [`certs`], [`app`]: settings, certificates, and the wiring that starts it all.
//! * [`ctl`]: the operator's command line client of the admin API.

pub mod actions;
pub mod admin;
pub mod app;
pub mod certs;
pub mod config;
pub mod ctl;
pub mod directory;
pub mod events;
pub mod metrics;
pub mod provisioning;
pub mod registrar;
pub mod sip;
