//! Phone REGISTER variants (reference/rust-crates.md §1.2) and the validation rules.

use super::*;
use crate::sip::headers::{DigestAlgorithm, DigestCredentials};
use crate::sip::message::{parse_message, Framing};
use crate::sip::uri::Host;

/// The Yealink-style re-REGISTER of rust-crates.md Appendix A (LF here, CRLF on the wire).
const BASE: &str = "REGISTER sip:pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1741092458;rport
From: \"Alice Smith\" <sip:1001@pbx.example.com>;tag=1810203117
To: \"Alice Smith\" <sip:1001@pbx.example.com>
Call-ID: 1406391513@192.168.1.50
CSeq: 2 REGISTER
Contact: <sip:1001@192.168.1.50:5060>;expires=3600;q=0.8
Authorization: Digest username=\"1001\", realm=\"pbx.example.com\", nonce=\"7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c\", uri=\"sip:pbx.example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001
Max-Forwards: 70
User-Agent: Yealink SIP-T46U 108.86.0.45
Expires: 3600
Allow: INVITE, ACK, OPTIONS, CANCEL, BYE, SUBSCRIBE, NOTIFY, INFO, REFER, UPDATE, MESSAGE
Content-Length: 0

";

const SUPPORTED: &[&str] = &["path", "outbound", "gruu"];

fn wire(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn request(msg: &str) -> Result<Request, Rejection> {
    let (raw, used) = parse_message(&wire(msg), Framing::Datagram).expect("framing");
    assert_eq!(used, wire(msg).len());
    Request::from_raw(raw, SUPPORTED)
}

fn variant(from: &str, to: &str) -> Request {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    request(&BASE.replacen(from, to, 1)).unwrap_or_else(|r| panic!("{from:?} -> {to:?}: {r:?}"))
}

fn creds(r: &Request) -> DigestCredentials {
    DigestCredentials::parse(r.header("Authorization").unwrap()).unwrap()
}

fn contact_list(r: &Request) -> &[crate::sip::headers::Contact] {
    match r.contact.as_ref().unwrap() {
        ContactSpec::List(l) => l,
        ContactSpec::Star => panic!("star"),
    }
}

#[test]
fn plain_register() {
    let r = request(BASE).unwrap();
    assert_eq!(r.method, Method::Register);
    assert_eq!(r.uri_text, "sip:pbx.example.com");
    assert_eq!(r.uri.as_sip().unwrap().host, Host::Name("pbx.example.com".into()));
    assert_eq!(r.top_via().branch.as_deref(), Some("z9hG4bK1741092458"));
    assert_eq!(r.top_via().rport, Some(None));
    assert_eq!(r.from.tag(), Some("1810203117"));
    assert_eq!(r.to.display_name.as_deref(), Some("Alice Smith"));
    assert_eq!(r.call_id, "1406391513@192.168.1.50");
    assert_eq!((r.cseq.seq, &r.cseq.method), (2, &Method::Register));
    assert_eq!((r.max_forwards, r.expires), (Some(70), Some(3600)));
    let c = contact_list(&r);
    assert_eq!((c.len(), c[0].expires, c[0].q), (1, Some(3600), Some(0.8)));
    let a = creds(&r);
    assert_eq!((a.nc, a.algorithm, a.qop.as_deref()), (Some(1), DigestAlgorithm::Md5, Some("auth")));
    assert_eq!(r.header("user-agent"), Some("Yealink SIP-T46U 108.86.0.45"));
}

#[test]
fn phone_variants() {
    // Quoted +sip.instance, reg-id, transport=tcp kept as sent.
    let r = variant(
        "Contact: <sip:1001@192.168.1.50:5060>;expires=3600;q=0.8",
        "Contact: <sip:1001@192.168.1.50:5060;transport=tcp>;+sip.instance=\"<urn:uuid:0c5a5b8e-1d2f-4e3a-9b7c-00155d012345>\";reg-id=1",
    );
    let c = &contact_list(&r)[0];
    assert_eq!(c.instance.as_deref(), Some("<urn:uuid:0c5a5b8e-1d2f-4e3a-9b7c-00155d012345>"));
    assert_eq!(c.reg_id, Some(1));
    assert_eq!(c.addr.uri.as_sip().unwrap().transport(), Some("tcp"));
    assert_eq!(c.addr.uri_text, "sip:1001@192.168.1.50:5060;transport=tcp");
    // Digest variants.
    assert_eq!(creds(&variant("algorithm=MD5", "algorithm=SHA-256")).algorithm, DigestAlgorithm::Sha256);
    assert_eq!(creds(&variant("nc=00000001", "nc=0000000a")).nc, Some(10));
    assert_eq!(creds(&variant("nc=00000001", "nc=00000100")).nc, Some(256));
    assert_eq!(creds(&variant("qop=auth", "qop=\"auth\"")).qop.as_deref(), Some("auth"));
    let r = variant("uri=\"sip:pbx.example.com\"", "uri=\"sip:pbx.example.com:5061;transport=tls\"");
    assert_eq!(creds(&r).uri, "sip:pbx.example.com:5061;transport=tls");
    // Folded Authorization.
    let r =
        variant("nonce=\"7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c\", ", "nonce=\"7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c\",\n    ");
    assert_eq!(creds(&r).nonce, "7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c");
    assert_eq!(creds(&r).uri, "sip:pbx.example.com");
    // Compact names.
    let compact = BASE
        .replace("\nVia:", "\nv:")
        .replace("\nFrom:", "\nf:")
        .replace("\nTo:", "\nt:")
        .replace("\nCall-ID:", "\ni:")
        .replace("\nContact:", "\nm:")
        .replace("\nContent-Length:", "\nl:");
    let r = request(&compact).unwrap();
    assert_eq!((r.via.len(), contact_list(&r).len()), (1, 1));
    assert_eq!(r.header("Call-ID"), Some("1406391513@192.168.1.50"));
    // Odd case in names.
    let r = variant("Call-ID:", "cALL-iD:");
    assert_eq!(r.call_id, "1406391513@192.168.1.50");
    assert_eq!(r.headers.iter().nth(3).unwrap().name, "Call-ID");
    // Two contacts in one row, and in two rows.
    let r = variant(";q=0.8", ";q=0.8, <sip:1001@10.0.0.9:5062>;expires=0");
    assert_eq!(contact_list(&r).iter().map(|c| c.expires).collect::<Vec<_>>(), [Some(3600), Some(0)]);
    let r = variant(";q=0.8", ";q=0.8\nContact: <sip:1001@10.0.0.9:5062>;expires=0");
    assert_eq!(contact_list(&r).len(), 2);
    // Contact: * with Expires: 0.
    let r = request(
        &BASE
            .replace("Contact: <sip:1001@192.168.1.50:5060>;expires=3600;q=0.8", "Contact: *")
            .replace("Expires: 3600", "Expires: 0"),
    )
    .unwrap();
    assert_eq!((r.contact, r.expires), (Some(ContactSpec::Star), Some(0)));
    // `Contact   :`, spaces around `;`.
    assert_eq!(contact_list(&variant("Contact:", "Contact   :"))[0].expires, Some(3600));
    let r = variant(";expires=3600;q=0.8", " ; expires=3600 ; q=0.8");
    assert_eq!((contact_list(&r)[0].expires, contact_list(&r)[0].q), (Some(3600), Some(0.8)));
    // Escaped quotes in the display name.
    let r = variant("From: \"Alice Smith\"", "From: \"Alice \\\"Al\\\" Smith\"");
    assert_eq!(r.from.display_name.as_deref(), Some("Alice \"Al\" Smith"));
    // Contact without <>: the parameters are header parameters.
    let r = variant(
        "Contact: <sip:1001@192.168.1.50:5060>;expires=3600;q=0.8",
        "Contact: sip:1001@192.168.1.50:5060;expires=3600",
    );
    let c = &contact_list(&r)[0];
    assert_eq!((c.addr.uri_text.as_str(), c.expires), ("sip:1001@192.168.1.50:5060", Some(3600)));
    assert!(c.addr.uri.as_sip().unwrap().params.is_empty());
    // Path and the option tags we support.
    let r = variant("Max-Forwards: 70", "Max-Forwards: 70\nRequire: path, outbound\nPath: <sip:edge.example.com;lr>");
    assert_eq!(r.header("Path"), Some("<sip:edge.example.com;lr>"));
}

#[test]
fn rejections() {
    let rej = |from: &str, to: &str| {
        assert!(BASE.contains(from), "{from:?}");
        request(&BASE.replacen(from, to, 1)).unwrap_err()
    };
    let bad = |reason: &str| Rejection { code: 400, reason: reason.into(), unsupported: None };
    assert_eq!(rej("SIP/2.0\n", "SIP/3.0\n").code, 505);
    assert_eq!(rej("Call-ID: 1406391513@192.168.1.50\n", ""), bad("Missing Call-ID"));
    assert_eq!(rej("Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1741092458;rport\n", ""), bad("Missing Via"));
    assert_eq!(rej("CSeq: 2 REGISTER", "CSeq: 2 REGISTER\nCSeq: 3 REGISTER"), bad("Duplicate CSeq"));
    assert_eq!(rej("Max-Forwards: 70", "Max-Forwards: 70\nMax-Forwards: 70"), bad("Duplicate Max-Forwards"));
    assert_eq!(rej("Max-Forwards: 70", "Max-Forwards: seventy"), bad("Invalid Max-Forwards"));
    assert_eq!(rej("Expires: 3600", "Expires: soon"), bad("Invalid Expires"));
    assert_eq!(rej("CSeq: 2 REGISTER", "CSeq: 2 INVITE"), bad("CSeq Method Mismatch"));
    assert_eq!(rej("CSeq: 2 REGISTER", "CSeq: two REGISTER"), bad("Invalid CSeq"));
    assert_eq!(rej("branch=z9hG4bK1741092458;rport", "branch=z9hG4bK1741092458;;rport"), bad("Invalid Via"));
    assert_eq!(rej("To: \"Alice Smith\"", "To: \"Alice Smith"), bad("Invalid To"));
    assert_eq!(rej(";q=0.8", ";q=2"), bad("Invalid Contact"));
    assert_eq!(rej("Call-ID: 1406391513@192.168.1.50", "Call-ID: a b"), bad("Invalid Call-ID"));
    assert_eq!(rej("REGISTER sip:pbx.example.com SIP", "REGISTER tel:+15551234 SIP").code, 416);
    assert_eq!(rej("REGISTER sip:pbx.example.com SIP", "REGISTER sip:2001:db8::10 SIP"), bad("Invalid Request-URI"));
    let r = rej("Max-Forwards: 70", "Max-Forwards: 70\nRequire: path, foo\nRequire: bar,foo");
    assert_eq!((r.code, r.unsupported.as_deref()), (420, Some("foo, bar")));
    // Over 255 Max-Forwards reads as absent; Expires clamps.
    let r = variant("Max-Forwards: 70", "Max-Forwards: 300");
    assert_eq!(r.max_forwards, None);
    let r = variant("Expires: 3600", "Expires: 99999999999999");
    assert_eq!(r.expires, Some(u32::MAX));
    // ACK and CANCEL skip the Require check.
    let ack = BASE
        .replace("REGISTER sip:", "ACK sip:")
        .replace("2 REGISTER", "2 ACK")
        .replace("Max-Forwards: 70", "Max-Forwards: 70\nRequire: foo");
    assert!(request(&ack).is_ok());
    // A response is not a request.
    let (raw, _) = parse_message(b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n", Framing::Datagram).unwrap();
    assert_eq!(Request::from_raw(raw, SUPPORTED).unwrap_err().code, 400);
}
