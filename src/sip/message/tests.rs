use super::*;

fn dgram(s: &[u8]) -> Result<(RawMessage, usize), FrameError> {
    parse_message(s, Framing::Datagram)
}

fn stream(s: &[u8]) -> Result<(RawMessage, usize), FrameError> {
    parse_message(s, Framing::Stream)
}

const OPTIONS: &str = "OPTIONS sip:pbx.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:pbx.example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn methods() {
    assert_eq!(Method::parse("REGISTER"), Some(Method::Register));
    assert_eq!(Method::parse("PRACK"), Some(Method::Prack));
    assert_eq!(Method::parse("register"), Some(Method::Extension("register".into())));
    assert_eq!(Method::parse("RE%47IST%45R"), Some(Method::Extension("RE%47IST%45R".into())));
    assert_eq!(
        Method::parse("!interesting-Method0123456789_*+`.%indeed'~").unwrap().as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    assert_eq!(Method::parse(""), None);
    assert_eq!(Method::parse("IN VITE"), None);
    assert_eq!(Method::parse("INVITE/"), None);
    assert_eq!(Method::Subscribe.to_string(), "SUBSCRIBE");
}

#[test]
fn headers_lookup() {
    let mut h = Headers::default();
    h.push("v", "SIP/2.0/UDP a");
    h.push("VIA", "SIP/2.0/UDP b");
    h.push("call-id", "x");
    h.push("X-Custom", "1");
    assert_eq!(h.iter().next().unwrap().name, "Via");
    assert_eq!(h.iter().nth(1).unwrap().name, "Via");
    assert_eq!(h.iter().nth(2).unwrap().name, "Call-ID");
    assert_eq!(h.get("via"), Some("SIP/2.0/UDP a"));
    assert_eq!(h.get("V"), Some("SIP/2.0/UDP a"));
    assert_eq!(h.get_all("Via").collect::<Vec<_>>(), vec!["SIP/2.0/UDP a", "SIP/2.0/UDP b"]);
    assert_eq!(h.count("v"), 2);
    assert_eq!(h.get("i"), Some("x"));
    assert_eq!(h.get("x-custom"), Some("1"));
    assert_eq!(h.get("Contact"), None);
    assert_eq!(h.iter().count(), 4);
}

#[test]
fn parses_a_request() {
    let (m, used) = dgram(OPTIONS.as_bytes()).unwrap();
    assert_eq!(used, OPTIONS.len());
    let StartLine::Request { method, uri, version } = &m.start else { panic!() };
    assert_eq!((method, uri.as_str(), version.as_str()), (&Method::Options, "sip:pbx.example.com", "SIP/2.0"));
    assert_eq!(m.headers.len(), 6);
    assert_eq!(&m.body[..], b"hello");
}

#[test]
fn folding_compact_names_and_lws_before_colon() {
    let msg = b"REGISTER sip:x SIP/2.0\r\nv  : SIP/2.0/UDP h\r\nContact   :\r\n <sip:a@b>\r\n\t;expires=5\r\nAuthorization: Digest username=\"1\",\r\n  realm=\"r\"  \r\nl:0\r\n\r\n";
    let (m, _) = dgram(msg).unwrap();
    let names: Vec<_> = m.headers.iter().map(|h| h.name).collect();
    assert_eq!(names, ["Via", "Contact", "Authorization", "Content-Length"]);
    assert_eq!(m.headers.get("Contact"), Some("<sip:a@b> ;expires=5"));
    assert_eq!(m.headers.get("Authorization"), Some("Digest username=\"1\", realm=\"r\""));
    assert!(m.body.is_empty());
}

#[test]
fn lf_only_and_leading_crlf() {
    let msg = b"\r\n\r\nOPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h\nl: 2\n\nhi";
    let (m, used) = dgram(msg).unwrap();
    assert_eq!(used, msg.len());
    assert_eq!(&m.body[..], b"hi");
    assert_eq!(dgram(b"\r\n\r\n").unwrap_err(), FrameError::Incomplete);
    assert_eq!(stream(b"\r\n").unwrap_err(), FrameError::Incomplete);
    assert_eq!(stream(b"").unwrap_err(), FrameError::Incomplete);
}

#[test]
fn datagram_content_length_rules() {
    // No Content-Length: the rest of the datagram (RFC 4475 inv2543).
    let (m, _) = dgram(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nabc").unwrap();
    assert_eq!(&m.body[..], b"abc");
    // Trailing bytes beyond Content-Length are ignored (dblreq).
    let (m, used) = dgram(b"OPTIONS sip:x SIP/2.0\r\nl: 1\r\n\r\nabc").unwrap();
    assert_eq!((&m.body[..], used), (&b"a"[..], 32));
    let err = |s: &[u8]| dgram(s).unwrap_err();
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nl: 4\r\n\r\nabc"), FrameError::ContentLengthTooLarge);
    assert_eq!(
        err(b"OPTIONS sip:x SIP/2.0\r\nl: 99999999999999999999999\r\n\r\nabc"),
        FrameError::ContentLengthTooLarge
    );
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nl: -1\r\n\r\nabc"), FrameError::BadContentLength);
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nl: 1x\r\n\r\nabc"), FrameError::BadContentLength);
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nl:\r\n\r\nabc"), FrameError::BadContentLength);
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nabc"), FrameError::BadContentLength);
    // The same value twice is consistent.
    assert!(dgram(b"OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nabc").is_ok());
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nl: 0\r\n"), FrameError::NoHeaderEnd);
}

#[test]
fn stream_framing() {
    let two = format!("{OPTIONS}\r\n\r\n{OPTIONS}");
    let (m1, n1) = stream(two.as_bytes()).unwrap();
    assert_eq!(&m1.body[..], b"hello");
    assert_eq!(n1, OPTIONS.len());
    let (m2, n2) = stream(&two.as_bytes()[n1..]).unwrap();
    assert_eq!(n2, OPTIONS.len() + 4, "keep-alive CRLFs before the second message are consumed");
    assert_eq!(m2.headers.get("Call-ID"), Some("c1"));
    for cut in 0..OPTIONS.len() {
        assert_eq!(stream(&OPTIONS.as_bytes()[..cut]).unwrap_err(), FrameError::Incomplete, "cut at {cut}");
    }
    assert_eq!(
        stream(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n").unwrap_err(),
        FrameError::MissingContentLength
    );
    assert_eq!(stream(b"OPTIONS sip:x SIP/2.0\r\nl: 70000\r\n\r\n").unwrap_err(), FrameError::TooLarge);
    let mut huge = b"OPTIONS sip:x SIP/2.0\r\nX: ".to_vec();
    huge.resize(MAX_MESSAGE_SIZE + 10, b'a');
    assert_eq!(stream(&huge).unwrap_err(), FrameError::TooLarge);
    assert_eq!(dgram(&huge).unwrap_err(), FrameError::TooLarge);
}

#[test]
fn start_lines() {
    let start = |s: &str| dgram(format!("{s}\r\nl: 0\r\n\r\n").as_bytes()).map(|(m, _)| m.start);
    assert!(matches!(start("SIP/2.0 200 OK"), Ok(StartLine::Response { code: 200, ref reason, .. }) if reason == "OK"));
    assert!(
        matches!(start("SIP/2.0 100 "), Ok(StartLine::Response { code: 100, ref reason, .. }) if reason.is_empty())
    );
    assert!(matches!(start("SIP/2.0 100"), Ok(StartLine::Response { code: 100, .. })));
    assert!(
        matches!(start("SIP/2.0 486 Busy  Here "), Ok(StartLine::Response { ref reason, .. }) if reason == "Busy  Here")
    );
    assert!(matches!(start("INVITE  sip:a@b  SIP/2.0  "), Ok(StartLine::Request { ref uri, .. }) if uri == "sip:a@b"));
    assert!(
        matches!(start("OPTIONS sip:a@b SIP/7.0"), Ok(StartLine::Request { ref version, .. }) if version == "SIP/7.0")
    );
    assert!(
        matches!(start("INVITE sip:a@b; lr SIP/2.0"), Ok(StartLine::Request { ref uri, .. }) if uri == "sip:a@b; lr")
    );
    for bad in [
        "SIP/2.0 4294967301 better not break the receiver",
        "SIP/2.0 99 x",
        "SIP/2.0 700 x",
        "SIP/2.0 20x OK",
        "SIP/2.0",
        "SIP/ 200 OK",
        "INVITE sip:a@b",
        "INVITE",
        "INVITE sip:a@b HTTP/1.1",
        "INVITE sip:a@b SIP/2",
        "IN(VITE sip:a@b SIP/2.0",
        " INVITE sip:a@b SIP/2.0",
        "INVITE  SIP/2.0",
    ] {
        assert_eq!(start(bad).unwrap_err(), FrameError::BadStartLine, "{bad:?}");
    }
    assert_eq!(dgram(b"INVITE sip:\xff@b SIP/2.0\r\n\r\n").unwrap_err(), FrameError::NotText);
}

#[test]
fn header_lines() {
    let err = |s: &[u8]| dgram(s).unwrap_err();
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nNoColonHere\r\n\r\n"), FrameError::BadHeaderLine);
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\n folded-first: x\r\n\r\n"), FrameError::BadHeaderLine);
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\n: x\r\n\r\n"), FrameError::BadHeaderLine);
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nBad Name: x\r\n\r\n"), FrameError::BadHeaderLine);
    assert_eq!(err(b"OPTIONS sip:x SIP/2.0\r\nX: a\rb\r\n\r\n"), FrameError::BadHeaderLine);
    // NUL and other control bytes inside values are kept (RFC 4475 intmeth), bad UTF-8 lossily.
    let (m, _) = dgram(b"OPTIONS sip:x SIP/2.0\r\nTo: \"a\\\x00b\x07\" <sip:a@b>\r\nX: \xff\xfe\r\n\r\n").unwrap();
    assert_eq!(m.headers.get("To"), Some("\"a\\\0b\x07\" <sip:a@b>"));
    assert_eq!(m.headers.get("X"), Some("\u{fffd}\u{fffd}"));
    // Unknown names are kept as sent; empty values are allowed.
    let (m, _) = dgram(b"OPTIONS sip:x SIP/2.0\r\nNewFangledHeader:   newfangled value\r\n continued newfangled value\r\ns :\r\nX-Y:\r\n\r\n").unwrap();
    assert_eq!(m.headers.iter().next().unwrap().name, "NewFangledHeader");
    assert_eq!(m.headers.iter().next().unwrap().value, "newfangled value continued newfangled value");
    assert_eq!(m.headers.iter().nth(1).unwrap().name, "Subject");
    assert_eq!(m.headers.get("Subject"), Some(""));
}

#[test]
fn salvage() {
    let msg = b"INVITE sip:user@example.com SIP/2.0\r\nMax-Forwards: 80\r\nTo: sip:j.user@example.com\r\nFrom: sip:caller@example.net;tag=9\r\nCall-ID: clerr.0ha\r\nCSeq: 8 INVITE\r\nv: SIP/2.0/UDP host5.example.com;\r\n branch=z9hG4bK-39234\r\nContent-Length: 9999\r\n\r\nv=0\r\n";
    assert_eq!(dgram(msg).unwrap_err(), FrameError::ContentLengthTooLarge);
    let h = salvage_request_headers(msg).unwrap();
    let names: Vec<_> = h.iter().map(|h| h.name).collect();
    assert_eq!(names, ["To", "From", "Call-ID", "CSeq", "Via"]);
    assert_eq!(h.get("Via"), Some("SIP/2.0/UDP host5.example.com; branch=z9hG4bK-39234"));
    assert!(salvage_request_headers(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n").is_none());
    assert!(salvage_request_headers(b"INVITE sip:x SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n").is_none(), "no Via");
    assert!(salvage_request_headers(b"\x00\x01garbage\r\nVia: SIP/2.0/UDP h\r\n").is_none());
    assert!(salvage_request_headers(b"").is_none());
    assert!(salvage_request_headers(b"\r\n\r\n").is_none());
    assert!(salvage_request_headers(b"INVITE sip:x SIP/7.0\nVia: SIP/2.0/UDP h\nNoColon\n").is_some());
}

#[test]
fn reason_phrases_cover_rsip_codes() {
    assert_eq!(reason_phrase(200), "OK");
    assert_eq!(reason_phrase(423), "Interval Too Brief");
    assert_eq!(reason_phrase(489), "Bad Event");
    assert_eq!(reason_phrase(416), "Unsupported URI Scheme");
    assert_eq!(reason_phrase(420), "Bad Extension");
    assert_eq!(reason_phrase(505), "Version Not Supported");
    assert_eq!(reason_phrase(499), "Request Failure");
    assert_eq!(reason_phrase(42), "Unknown");
    // Every code rsip 0.4.0 knows has a specific phrase here, spelled like rsip's variant name
    // modulo spaces and punctuation. (rsip maps 201 to "Accepted"; SIP's Accepted is 202.)
    for code in 100..=699u16 {
        let rsip_code = rsip::StatusCode::from(code);
        if matches!(rsip_code, rsip::StatusCode::Other(..)) || code == 201 {
            continue;
        }
        let generic = reason_phrase(code / 100 * 100 + 98);
        let ours = reason_phrase(code);
        assert_ne!(ours, generic, "{code} has no specific phrase");
        let rsip_name = rsip_code.to_string();
        let squash = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        let rsip_name = squash(rsip_name.split_once(' ').unwrap().1);
        let ok = squash(ours) == rsip_name || code == 606; // rsip: NotAcceptableGlobal; RFC 3261: "Not Acceptable"
        assert!(ok, "{code}: ours {ours:?}, rsip {rsip_name:?}");
    }
}
