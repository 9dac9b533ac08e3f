#![no_main]
//! Provisioning request path: vendor::classify(path, ua), parse_user_agent, file_name, the digest
//! header parser, MAC parsing, certificate_mac, and ProvisioningService::handle_get /
//! authorize_upload (the whole socket-free request handler) with an in-memory backend.
use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::provisioning_request(data);
});
