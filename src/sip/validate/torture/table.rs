//! The expected outcome of every corpus file, from MANIFEST.md (RFC 4475 §3, RFC 5118 §4).
//! Liberal-or-strict choices are marked in comments.

use super::*;
use crate::sip::uri::{Host, SipUri};

pub(super) enum Expect {
    /// A request that must pass `from_raw`, with a spot check.
    Valid(fn(&Request)),
    /// A response that must frame, with a spot check.
    Response(fn(&RawMessage)),
    /// A request that frames but `from_raw` rejects with this code.
    Reject(u16),
    /// Framing fails with this error; `salvage` says whether a 400 can still be sent.
    Frame(FrameError, bool),
}
use Expect::*;

fn v6(s: &str) -> Host {
    Host::V6(s.parse().unwrap())
}

fn sip_uri(u: &Uri) -> &SipUri {
    u.as_sip().expect("sip URI")
}

fn contacts(r: &Request) -> &[crate::sip::headers::Contact] {
    match r.contact.as_ref().expect("contact") {
        ContactSpec::List(l) => l,
        ContactSpec::Star => panic!("star"),
    }
}

/// (file, manifest class, expected outcome)
pub(super) fn table() -> Vec<(&'static str, &'static str, Expect)> {
    vec![
        (
            "rfc4475/wsinv.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(r.method, Method::Invite);
                assert_eq!(r.to.uri_text, "sip:vivekg@chair-dnrc.example.com");
                assert_eq!(r.to.tag(), Some("1918181833n"));
                assert_eq!(r.from.display_name.as_deref(), Some("J Rosenberg \\\""));
                assert_eq!(r.from.tag(), Some("98asjd8"));
                assert_eq!(r.call_id, "wsinv.ndaksdj@192.0.2.1");
                assert_eq!((r.cseq.seq, &r.cseq.method), (9, &Method::Invite));
                assert_eq!(r.via.len(), 3);
                assert_eq!(r.top_via().branch.as_deref(), Some("390skdjuw"));
                assert_eq!(r.via[2].host, Host::V4("192.168.255.111".parse().unwrap()));
                assert_eq!(r.max_forwards, Some(68));
                assert_eq!(r.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
                assert_eq!(r.header("NewFangledHeader"), Some("newfangled value continued newfangled value"));
                assert_eq!(contacts(r)[0].q, Some(0.33));
                assert_eq!(contacts(r)[0].addr.param("newparam"), Some(Some("newvalue")));
                assert_eq!(r.body.len(), 150);
            }),
        ),
        (
            "rfc4475/intmeth.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(r.method, Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into()));
                assert_eq!(r.to.display_name.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
                assert_eq!(sip_uri(&r.uri).user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
                assert_eq!(
                    sip_uri(&r.to.uri).user.as_deref(),
                    Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
                );
                assert_eq!(r.from.tag(), Some("_token~1'+`*%!-."));
                assert_eq!(r.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
                assert_eq!(r.max_forwards, Some(255));
            }),
        ),
        (
            "rfc4475/esc01.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(sip_uri(&r.uri).user.as_deref(), Some("sips:user@example.com"));
                assert_eq!(sip_uri(&r.to.uri).user.as_deref(), Some("user"));
                assert_eq!(sip_uri(&r.from.uri).user.as_deref(), Some("I have spaces"));
                let c = sip_uri(&contacts(r)[0].addr.uri);
                assert_eq!(c.user.as_deref(), Some("caller"));
                assert_eq!(c.param("lr"), Some(None));
                assert_eq!(c.param("name"), Some(Some("v%61lue%25%34%31")));
                assert_eq!(r.header("Content-Type"), Some("application/sdp"));
            }),
        ),
        (
            "rfc4475/escnull.dat",
            "VALID",
            Valid(|r| {
                let users: Vec<_> = contacts(r).iter().map(|c| sip_uri(&c.addr.uri).user.clone().unwrap()).collect();
                assert_eq!(users, ["\0", "\0\0"]);
                assert_eq!(sip_uri(&r.to.uri).user.as_deref(), Some("null-\0-null"));
            }),
        ),
        (
            "rfc4475/esc02.dat",
            "VALID",
            Valid(|r| {
                // The dispatcher answers 501 for the extension method.
                assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
                assert_eq!(contacts(r).len(), 2);
                assert_eq!(r.from.display_name.as_deref(), Some("%Z%45"));
                assert_eq!(r.header("C%6Fntact"), Some("<sip:alias2@host2.example.com>"));
            }),
        ),
        ("rfc4475/lwsdisp.dat", "VALID", Valid(|r| assert_eq!(r.from.display_name.as_deref(), Some("caller")))),
        (
            "rfc4475/longreq.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(r.via.len(), 34);
                assert_eq!(r.via[33].received.as_deref(), Some("192.0.2.5"));
                assert!(r.to.display_name.as_deref().unwrap().starts_with("I have a user name of extremeextreme"));
                assert_eq!(r.body.len(), 150);
            }),
        ),
        (
            "rfc4475/dblreq.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(r.method, Method::Register);
                assert!(r.body.is_empty());
                assert_eq!(r.call_id, "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
                assert_eq!(sip_uri(&r.to.uri).user.as_deref(), Some("j.user"));
            }),
        ),
        (
            "rfc4475/semiuri.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(sip_uri(&r.uri).user.as_deref(), Some("user;par=u@example.net"));
                assert_eq!(sip_uri(&r.uri).host, Host::Name("example.com".into()));
                assert_eq!(r.header("Accept").unwrap().matches(',').count(), 5);
            }),
        ),
        (
            "rfc4475/transports.dat",
            "VALID",
            Valid(|r| {
                let t: Vec<_> = r.via.iter().map(|v| v.transport.as_str()).collect();
                assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
            }),
        ),
        (
            "rfc4475/mpart01.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(r.method, Method::Message);
                assert_eq!(r.body.len(), 553);
                assert!(r.body.contains(&0));
            }),
        ),
        (
            "rfc4475/unreason.dat",
            "VALID",
            Response(|m| {
                let StartLine::Response { code, reason, .. } = &m.start else { panic!() };
                assert_eq!(*code, 200);
                assert!(reason.starts_with("= 2**3 * 5**2 ") && !reason.is_ascii());
            }),
        ),
        (
            "rfc4475/noreason.dat",
            "VALID",
            Response(|m| {
                assert!(matches!(&m.start, StartLine::Response { code: 100, reason, .. } if reason.is_empty()));
            }),
        ),
        ("rfc4475/badinv01.dat", "INVALID", Reject(400)),
        ("rfc4475/clerr.dat", "INVALID", Frame(FrameError::ContentLengthTooLarge, true)),
        ("rfc4475/ncl.dat", "INVALID", Frame(FrameError::BadContentLength, true)),
        ("rfc4475/scalar02.dat", "INVALID", Reject(400)),
        // A response: it frames; the client side discards it because its CSeq does not parse.
        (
            "rfc4475/scalarlg.dat",
            "INVALID",
            Response(|m| {
                assert!(CSeq::parse(m.headers.get("CSeq").unwrap()).is_err());
            }),
        ),
        ("rfc4475/quotbal.dat", "INVALID", Reject(400)),
        ("rfc4475/ltgtruri.dat", "INVALID (liberal)", Reject(400)), // strict
        ("rfc4475/lwsruri.dat", "INVALID (liberal)", Reject(400)),  // strict
        ("rfc4475/lwsstart.dat", "INVALID (liberal)", Valid(|r| assert_eq!(r.uri_text, "sip:user@example.com"))), // liberal
        ("rfc4475/trws.dat", "INVALID (liberal)", Valid(|r| assert_eq!(r.uri_text, "sip:remote-target@example.com"))), // liberal
        ("rfc4475/escruri.dat", "INVALID (liberal)", Reject(400)), // strict: no headers in a R-URI
        ("rfc4475/baddate.dat", "INVALID (liberal)", Valid(|r| assert!(r.header("Date").unwrap().ends_with("EST")))), // liberal
        ("rfc4475/regbadct.dat", "INVALID (liberal)", Reject(400)), // strict
        ("rfc4475/badaspec.dat", "INVALID (liberal)", Reject(400)), // strict
        // The archived file has no empty line after the headers: a framing error, salvaged → 400.
        ("rfc4475/baddn.dat", "INVALID", Frame(FrameError::NoHeaderEnd, true)),
        ("variants/baddn-crlf-fixed.dat", "INVALID", Reject(400)),
        ("rfc4475/badvers.dat", "INVALID", Reject(505)),
        ("rfc4475/mismatch01.dat", "INVALID", Reject(400)),
        ("rfc4475/mismatch02.dat", "INVALID", Reject(501)),
        ("rfc4475/bigcode.dat", "INVALID", Frame(FrameError::BadStartLine, false)),
        (
            "rfc4475/badbranch.dat",
            "VALID SYNTAX",
            Valid(|r| assert_eq!(r.top_via().branch.as_deref(), Some("z9hG4bK"))),
        ),
        ("rfc4475/insuf.dat", "INVALID", Reject(400)),
        ("rfc4475/unkscm.dat", "VALID SYNTAX", Reject(416)),
        ("rfc4475/novelsc.dat", "VALID SYNTAX", Reject(416)),
        // Parses; the registrar answers 400 because To is not a SIP AOR.
        (
            "rfc4475/unksm2.dat",
            "VALID SYNTAX",
            Valid(|r| {
                assert!(matches!(&r.to.uri, Uri::Other { scheme, .. } if scheme == "isbn"));
                assert!(matches!(&r.from.uri, Uri::Other { scheme, .. } if scheme == "http"));
                assert!(matches!(&contacts(r)[0].addr.uri, Uri::Other { scheme, .. } if scheme == "name"));
            }),
        ),
        ("rfc4475/bext01.dat", "VALID SYNTAX", Reject(420)),
        (
            "rfc4475/invut.dat",
            "VALID SYNTAX",
            Valid(|r| assert_eq!(r.header("Content-Type"), Some("application/unknownformat"))),
        ),
        (
            "rfc4475/regaut01.dat",
            "VALID SYNTAX",
            Valid(|r| {
                assert!(DigestCredentials::parse(r.header("Authorization").unwrap()).is_err());
            }),
        ),
        ("rfc4475/multi01.dat", "INVALID", Reject(400)),
        ("rfc4475/mcl01.dat", "INVALID", Frame(FrameError::BadContentLength, true)),
        (
            "rfc4475/bcast.dat",
            "VALID SYNTAX",
            Response(|m| {
                let vias: Vec<_> = m.headers.get_all("Via").map(|v| Via::parse_list(v).unwrap()).collect();
                assert_eq!(vias[1][0].host, Host::V4(std::net::Ipv4Addr::BROADCAST));
            }),
        ),
        ("rfc4475/zeromf.dat", "VALID", Valid(|r| assert_eq!(r.max_forwards, Some(0)))),
        (
            "rfc4475/cparam01.dat",
            "VALID",
            Valid(|r| {
                let c = &contacts(r)[0];
                assert_eq!(c.addr.param("unknownparam"), Some(None));
                assert_eq!(sip_uri(&c.addr.uri).param("unknownparam"), None);
            }),
        ),
        (
            "rfc4475/cparam02.dat",
            "VALID",
            Valid(|r| {
                let c = &contacts(r)[0];
                assert_eq!(c.addr.param("unknownparam"), None);
                assert_eq!(sip_uri(&c.addr.uri).param("unknownparam"), Some(None));
            }),
        ),
        (
            "rfc4475/regescrt.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(
                    sip_uri(&contacts(r)[0].addr.uri).headers.as_deref(),
                    Some("Route=%3Csip:sip.example.com%3E")
                );
            }),
        ),
        ("rfc4475/sdp01.dat", "VALID SYNTAX", Valid(|r| assert_eq!(r.header("Accept"), Some("text/nobodyKnowsThis")))),
        (
            "rfc4475/inv2543.dat",
            "VALID (compat)",
            Valid(|r| {
                assert_eq!((r.max_forwards, r.from.tag(), r.top_via().branch.as_deref()), (None, None, None));
                assert!(r.body.starts_with(b"v=0\r\n") && r.body.ends_with(b"\r\n"));
            }),
        ),
        ("rfc4475/test.dat", "UNREFERENCED", Frame(FrameError::BadStartLine, false)),
        // RFC 5118, wire forms.
        (
            "rfc5118/wire/ipv4-mapped-ipv6.dat",
            "VALID",
            Valid(|r| {
                assert_eq!((r.via[0].host.clone(), r.via[0].port), (v6("::ffff:192.0.2.10"), Some(19823)));
                assert_eq!(sip_uri(&contacts(r)[0].addr.uri).host, v6("::ffff:192.0.2.2"));
            }),
        ),
        ("rfc5118/wire/ipv6-bad.dat", "INVALID", Reject(400)),
        (
            "rfc5118/wire/ipv6-bug-abnf-3-colons.dat",
            "VALID (tolerate)",
            Valid(|r| {
                assert_eq!(sip_uri(&r.uri).host, v6("2001:db8::192.0.2.1"));
            }),
        ),
        (
            "rfc5118/wire/ipv6-correct-abnf-2-colons.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(sip_uri(&r.to.uri).host, v6("2001:db8::192.0.2.1"));
            }),
        ),
        (
            "rfc5118/wire/ipv6-good.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(sip_uri(&r.uri).host, v6("2001:db8::10"));
                assert_eq!(r.top_via().host, v6("2001:db8::9:1"));
                assert_eq!(sip_uri(&contacts(r)[0].addr.uri).host, v6("2001:db8::1"));
            }),
        ),
        ("rfc5118/wire/ipv6-in-sdp.dat", "VALID", Valid(|r| assert_eq!(r.body.len(), 251))),
        (
            "rfc5118/wire/mult-ip-in-header.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(r.via.len(), 3);
                assert_eq!(r.via[0].port, Some(6050));
                assert_eq!(r.via[1].host, Host::V4("192.0.2.1".parse().unwrap()));
                assert_eq!(r.via[2].received.as_deref(), Some("192.0.2.200"));
            }),
        ),
        ("rfc5118/wire/mult-ip-in-sdp.dat", "VALID", Valid(|r| assert_eq!(r.body.len(), 189))),
        (
            "rfc5118/wire/port-ambiguous.dat",
            "VALID",
            Valid(|r| {
                assert_eq!((sip_uri(&r.uri).host.clone(), sip_uri(&r.uri).port), (v6("2001:db8::10:5070"), None));
            }),
        ),
        (
            "rfc5118/wire/port-unambiguous.dat",
            "VALID",
            Valid(|r| {
                assert_eq!((sip_uri(&r.uri).host.clone(), sip_uri(&r.uri).port), (v6("2001:db8::10"), Some(5070)));
            }),
        ),
        (
            "rfc5118/wire/via-received-param-no-delim.dat",
            "VALID",
            Valid(|r| {
                assert_eq!(r.top_via().received.as_deref(), Some("2001:db8::9:255"));
            }),
        ),
        (
            "rfc5118/wire/via-received-param-with-delim.dat",
            "VALID (liberal)",
            Valid(|r| {
                assert_eq!(r.top_via().received.as_deref(), Some("[2001:db8::9:255]"));
            }),
        ),
    ]
}
