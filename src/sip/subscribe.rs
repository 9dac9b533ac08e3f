//! SUBSCRIBE handling. The reg event package (RFC 3680) lives in [`super::reg_event`]; any other
//! event package is refused with 489 Bad Event and an Allow-Events header.

pub use super::reg_event::RegEvents;
