//! Micro-benchmarks of the REGISTER hot path (criterion; `cargo bench --bench register_path`).
//!
//! The message is the benchmark REGISTER of `../shared/reference/rust-crates.md` Appendix A (a
//! Yealink-style re-REGISTER, 12 headers, full MD5 qop=auth Authorization), so the figures can be
//! set beside that document's §1.5 parser table (rsip 0.4.0: 2.2–2.7 µs parse only, 4.4–5.1 µs with
//! typed Authorization and Contact; three MD5s with string formatting: 1.25 µs).
//!
//! * `parse_message`: framing + start line + header rows (`deskline::sip::message::parse_message`)
//! * `from_raw`: the checked, typed request (`deskline::sip::validate::Request::from_raw`) from
//!   an already framed message (the clone of the framed message is made outside the timing)
//! * `parse+validate`: both, as the UDP receive loop does per datagram
//! * `digest_credentials_parse`: the Authorization header into `DigestCredentials`
//! * `digest_response_md5`: the expected response (`deskline::sip::auth::response`: HA1, HA2 and
//!   the response hash, hex-formatted)
//! * `digest_verify_md5`: `DigestAuthority::verify` on a fresh nonce (HMAC check of the nonce,
//!   response, nonce-count slot), the whole server-side check of one authenticated REGISTER
//! * `challenge_nonce`: minting the nonce and WWW-Authenticate values of a 401
//!
//! Run: `cargo bench --bench register_path` (criterion prints the time per iteration; add
//! `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use deskline::sip::auth::{self, DigestAuthority, Verdict};
use deskline::sip::headers::{DigestAlgorithm, DigestCredentials};
use deskline::sip::message::{parse_message, Framing, RawMessage};
use deskline::sip::validate::Request;

const SUPPORTED: &[&str] = &["path", "outbound", "gruu"];

fn yealink_register() -> Vec<u8> {
    [
        "REGISTER sip:pbx.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1741092458;rport",
        "From: \"Alice Smith\" <sip:1001@pbx.example.com>;tag=1810203117",
        "To: \"Alice Smith\" <sip:1001@pbx.example.com>",
        "Call-ID: 1406391513@192.168.1.50",
        "CSeq: 2 REGISTER",
        "Contact: <sip:1001@192.168.1.50:5060>;expires=3600;q=0.8",
        "Authorization: Digest username=\"1001\", realm=\"pbx.example.com\", nonce=\"7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c\", uri=\"sip:pbx.example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001",
        "Max-Forwards: 70",
        "User-Agent: Yealink SIP-T46U 108.86.0.45",
        "Expires: 3600",
        "Allow: INVITE, ACK, OPTIONS, CANCEL, BYE, SUBSCRIBE, NOTIFY, INFO, REFER, UPDATE, MESSAGE",
        "Content-Length: 0",
        "",
        "",
    ]
    .join("\r\n")
    .into_bytes()
}

const AUTHORIZATION: &str = "Digest username=\"1001\", realm=\"pbx.example.com\", nonce=\"7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c\", uri=\"sip:pbx.example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001";

fn bench(c: &mut Criterion) {
    let msg = yealink_register();
    let (raw, used) = parse_message(&msg, Framing::Datagram).expect("benchmark REGISTER parses");
    assert_eq!(used, msg.len());
    Request::from_raw(raw.clone(), SUPPORTED).expect("benchmark REGISTER validates");

    c.bench_function("parse_message (Yealink REGISTER, 746 B)", |b| {
        b.iter(|| parse_message(black_box(&msg), Framing::Datagram).unwrap())
    });
    c.bench_function("validate::Request::from_raw", |b| {
        b.iter_batched(|| raw.clone(), |r: RawMessage| Request::from_raw(r, SUPPORTED).unwrap(), BatchSize::SmallInput)
    });
    c.bench_function("parse_message + from_raw", |b| {
        b.iter(|| {
            let (r, _) = parse_message(black_box(&msg), Framing::Datagram).unwrap();
            Request::from_raw(r, SUPPORTED).unwrap()
        })
    });
    c.bench_function("DigestCredentials::parse", |b| {
        b.iter(|| DigestCredentials::parse(black_box(AUTHORIZATION)).unwrap())
    });
    let creds = DigestCredentials::parse(AUTHORIZATION).unwrap();
    c.bench_function("auth::response (MD5, qop=auth)", |b| {
        b.iter(|| auth::response(black_box(&creds), "REGISTER", black_box("pw1001")))
    });

    let authority = DigestAuthority::new("pbx.example.com", 300, vec![DigestAlgorithm::Md5]);
    let now = 1_800_000_000;
    let request = yealink_register();
    c.bench_function("DigestAuthority::verify (MD5, fresh nonce, with the request's fingerprint)", |b| {
        b.iter_batched(
            || {
                let mut cr = creds.clone();
                cr.nonce = authority.nonce(now).into();
                cr.response = auth::response(&cr, "REGISTER", "pw1001").into();
                cr
            },
            |cr| {
                let print = authority.fingerprint([&request[..]]);
                let v = authority.verify(&cr, "REGISTER", "pw1001", now + 1, print);
                debug_assert_eq!(v, Verdict::Valid);
                v
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("DigestAuthority::challenges (401 nonce)", |b| {
        b.iter(|| authority.challenges(black_box(now), false))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
