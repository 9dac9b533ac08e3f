//! The SIP layer: bytes in, checked requests out, responses and requests back to phones.
//!
//! deskline parses SIP itself (see [`message`] for why rsip 0.4.0 alone is not enough) and keeps
//! every deviation from rsip in this module. Transports ([`transport`]) know nothing of REGISTER;
//! the registrar knows nothing of sockets.
