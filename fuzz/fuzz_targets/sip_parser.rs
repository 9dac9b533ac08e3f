#![no_main]
//! SIP parser: parse_message (datagram and stream framing) -> Request::from_raw, the salvage path
//! and the 400 answer built from it, and the header parsers on the raw input.
use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::sip_parser(data);
});
