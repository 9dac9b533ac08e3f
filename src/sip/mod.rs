//! The SIP layer: bytes in, checked requests out, responses and requests back to phones.
//!
//! deskline parses SIP itself (see [`message`] for why rsip 0.4.0 alone is not enough) and keeps
//! every deviation from rsip in this module. Transports ([`transport`]) know nothing of REGISTER;
//! the registrar knows nothing of sockets.

pub mod auth;
pub mod client;
pub mod dispatch;
pub mod headers;
pub mod message;
pub mod notify;
pub mod reg_event;
pub mod response;
pub mod subscribe;
pub mod throttle;
pub mod transport;
pub mod uri;
pub mod validate;

/// Short text parsed out of a message (tags, branches, users, hosts, parameters, digest fields):
/// up to 24 bytes inline, so checking a request allocates for its few long values only (a
/// `String` per field was a quarter of the allocations on the REGISTER path).
pub type Text = compact_str::CompactString;

/// A header or URI parameter: its name (lowercased) and value.
pub type Param = (Text, Option<Text>);
