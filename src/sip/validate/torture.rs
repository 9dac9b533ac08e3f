//! The RFC 4475 / RFC 5118 torture corpus (tests/data/sip-torture, see its MANIFEST.md), the
//! PROTOS c07-sip sample, and a truncation + mutation run over all of it.
//!
//! Each corpus file has an expected outcome below. Where RFC 4475 allows either (INVALID, liberal
//! accept allowed), the choice is noted: see also the module doc of `validate`.

use std::path::{Path, PathBuf};

use super::*;
use crate::sip::headers::{DigestChallenge, DigestCredentials};
use crate::sip::message::{parse_message, salvage_request_headers, FrameError, Framing, Headers};
use crate::sip::uri::SipUri;

mod table;
use table::{table, Expect::*};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sip-torture/");
const SUPPORTED: &[&str] = &["path", "outbound", "gruu"];

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(DIR).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn files_in(rel: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(Path::new(DIR).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// What a datagram turns into: Ok(request) / Err(code) / a response / a framing error.
#[derive(Debug)]
enum Outcome {
    Request(Box<Request>),
    Rejected(Rejection),
    Response(Box<RawMessage>),
    Frame(FrameError),
}

fn run(bytes: &[u8]) -> Outcome {
    match parse_message(bytes, Framing::Datagram) {
        Err(e) => Outcome::Frame(e),
        Ok((raw, _)) if matches!(raw.start, StartLine::Response { .. }) => Outcome::Response(Box::new(raw)),
        Ok((raw, _)) => match Request::from_raw(raw, SUPPORTED) {
            Ok(r) => Outcome::Request(Box::new(r)),
            Err(rej) => Outcome::Rejected(rej),
        },
    }
}

#[test]
fn corpus_table() {
    let table = table();
    // Every corpus file is in the table.
    let mut listed: Vec<String> = Vec::new();
    for dir in ["rfc4475", "rfc5118/wire", "variants"] {
        for p in files_in(dir, "dat") {
            listed.push(format!("{dir}/{}", p.file_name().unwrap().to_str().unwrap()));
        }
    }
    listed.sort();
    let mut in_table: Vec<String> = table.iter().map(|(f, _, _)| f.to_string()).collect();
    in_table.sort();
    assert_eq!(listed, in_table);

    // Any mismatch panics, so reaching the end means every file answered as the table says.
    let mut summary: std::collections::BTreeMap<&str, u32> = Default::default();
    for (file, class, expect) in &table {
        let bytes = read(file);
        let outcome = run(&bytes);
        match (expect, outcome) {
            (Valid(check), Outcome::Request(r)) => check(&r),
            (Response(check), Outcome::Response(m)) => check(&m),
            (Reject(code), Outcome::Rejected(rej)) => {
                assert_eq!(rej.code, *code, "{file}: {rej:?}");
                if *code == 420 {
                    assert_eq!(rej.unsupported.as_deref(), Some("nothingSupportsThis, nothingSupportsThisEither"));
                }
            }
            (Frame(err, salvage), Outcome::Frame(got)) => {
                assert_eq!(&got, err, "{file}");
                let s = salvage_request_headers(&bytes);
                assert_eq!(s.is_some(), *salvage, "{file}: salvage {s:?}");
                if let Some(h) = s {
                    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                        assert_eq!(h.count(name), 1, "{file}: salvaged {name}");
                    }
                }
            }
            (_, got) => panic!("{file}: unexpected {got:?}"),
        }
        *summary.entry(class).or_default() += 1;
    }
    for (class, n) in summary {
        eprintln!("{class:>20}: {n}/{n} as expected");
    }
}

/// The RFC 5118 archive members (bare LF): LF-only messages parse like their wire forms, except
/// where the archive itself is defective (see MANIFEST.md).
#[test]
fn rfc5118_archive_bytes() {
    for p in files_in("rfc5118", "dat") {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let archive = std::fs::read(&p).unwrap();
        let wire = read(&format!("rfc5118/wire/{name}"));
        match (name.as_str(), run(&archive), run(&wire)) {
            (
                "ipv6-in-sdp.dat" | "mult-ip-in-sdp.dat",
                Outcome::Frame(FrameError::ContentLengthTooLarge),
                Outcome::Request(_),
            ) => {}
            (
                "ipv6-bug-abnf-3-colons.dat" | "ipv6-correct-abnf-2-colons.dat",
                Outcome::Frame(FrameError::NoHeaderEnd),
                Outcome::Request(_),
            ) => {}
            (_, Outcome::Request(a), Outcome::Request(w)) => {
                assert_eq!((a.via.len(), &a.uri, &a.call_id), (w.via.len(), &w.uri, &w.call_id), "{name}");
            }
            (_, Outcome::Rejected(a), Outcome::Rejected(w)) => assert_eq!(a, w, "{name}"),
            (_, a, w) => panic!("{name}: archive {a:?}, wire {w:?}"),
        }
    }
}

/// Runs every parser deskline has over one input; must never panic.
fn exercise(bytes: &[u8]) {
    let _ = parse_message(bytes, Framing::Stream);
    match parse_message(bytes, Framing::Datagram) {
        Err(_) => {
            if let Some(h) = salvage_request_headers(bytes) {
                exercise_headers(&h);
            }
        }
        Ok((raw, _)) => {
            exercise_headers(&raw.headers);
            if let StartLine::Request { uri, .. } = &raw.start {
                if let Ok(Uri::Sip(u)) = Uri::parse(uri) {
                    // Display is canonical: it parses back to the same URI.
                    let again = SipUri::parse(&u.to_string());
                    assert_eq!(again.as_ref(), Ok(&u), "{uri:?} -> {u}");
                }
            }
            let _ = Request::from_raw(raw, SUPPORTED);
        }
    }
}

fn exercise_headers(h: &Headers) {
    for row in h.iter() {
        let v = row.value;
        let _ = Via::parse_list(v);
        let _ = NameAddr::parse(v);
        let _ = CSeq::parse(v);
        let _ = DigestCredentials::parse(v);
        let _ = DigestChallenge::parse(v);
        let _ = ContactSpec::parse_rows(std::iter::once(v));
        let _ = Uri::parse(v);
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in ["rfc4475", "rfc5118", "rfc5118/wire", "variants"] {
        all.extend(files_in(dir, "dat"));
    }
    all
}

#[test]
fn protos_no_panic() {
    let files = files_in("protos", "sip");
    assert!(files.len() > 300, "PROTOS sample missing");
    let (mut ok, mut rejected, mut frame, mut resp) = (0, 0, 0, 0);
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        exercise(&bytes);
        match run(&bytes) {
            Outcome::Request(_) => ok += 1,
            Outcome::Rejected(_) => rejected += 1,
            Outcome::Frame(_) => frame += 1,
            Outcome::Response(_) => resp += 1,
        }
    }
    for valid in ["0000000.sip", "0000000.teardown.sip"] {
        assert!(matches!(run(&read(&format!("protos/{valid}"))), Outcome::Request(_)), "{valid}");
    }
    eprintln!(
        "PROTOS {} files: {ok} accepted, {rejected} rejected by validation, {frame} framing errors, {resp} responses",
        files.len()
    );
}

#[test]
fn truncations_and_mutations_never_panic() {
    const NOISE: &[u8] = b"<>\";:,= \t\r\n%@\0\xff0Z[]/\\*?";
    let mut seed: u64 = 0x5eed_d35c_1100_0001;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut inputs = 0usize;
    for p in corpus_files() {
        let orig = std::fs::read(&p).unwrap();
        for cut in 0..=orig.len() {
            exercise(&orig[..cut]);
            let mut closed = orig[..cut].to_vec();
            closed.extend_from_slice(b"\r\n\r\n");
            exercise(&closed);
            inputs += 2;
        }
        for _ in 0..200 {
            let mut m = orig.clone();
            for _ in 0..1 + next() % 4 {
                let at = next() % (m.len() + 1);
                let b = NOISE[next() % NOISE.len()];
                match next() % 3 {
                    0 if at < m.len() => m[at] = b,
                    1 if at < m.len() => {
                        m.remove(at);
                    }
                    _ => m.insert(at, b),
                }
            }
            exercise(&m);
            inputs += 1;
        }
    }
    eprintln!("mutation run: {inputs} inputs, no panic");
}
