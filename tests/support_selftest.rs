//! Checks of the test support code itself (no server needed): digest against the RFC 7616
//! vectors, the challenge parser, SIP framing and header access, config editing.

mod support;

use bytes::BytesMut;
use support::digest::{self, Algorithm};
use support::sip_ua::{addr_param, addr_uri, frame_stream, split_header_list, ReceivedMessage, Transport};

#[test]
fn rfc7616_vectors() {
    // RFC 7616 §3.9.1.
    let (user, realm, pass) = ("Mufasa", "http-auth@example.org", "Circle of Life");
    let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    let cnonce_md5 = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    let cnonce_sha = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    let md5 = digest::response(
        Algorithm::Md5,
        user,
        realm,
        pass,
        "GET",
        "/dir/index.html",
        nonce,
        Some("auth"),
        1,
        cnonce_md5,
    );
    assert_eq!(md5, "8ca523f5e9506fed4657c9700eebdbec");
    let sha = digest::response(
        Algorithm::Sha256,
        user,
        realm,
        pass,
        "GET",
        "/dir/index.html",
        nonce,
        Some("auth"),
        1,
        cnonce_sha,
    );
    assert_eq!(sha, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

#[test]
fn rfc2617_vector_md5() {
    // RFC 2617 §3.5.
    let r = digest::response(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        "GET",
        "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        Some("auth"),
        1,
        "0a4f113b",
    );
    assert_eq!(r, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn challenge_parser_and_round_trip() {
    let v = r#"Digest realm="pbx.test", nonce="abc,\"def", qop="auth,auth-int", algorithm=SHA-256, opaque="xyz", stale=TRUE"#;
    let c = digest::parse_challenge(v).unwrap();
    assert_eq!(c.realm(), "pbx.test");
    assert_eq!(c.nonce(), "abc,\"def");
    assert_eq!(c.qop_options(), vec!["auth", "auth-int"]);
    assert_eq!(c.algorithm(), Some(Algorithm::Sha256));
    assert_eq!(c.opaque(), Some("xyz"));
    assert!(c.stale());
    let picked =
        digest::pick_challenge(&[v, r#"Digest realm="r", nonce="n", algorithm=MD5, qop="auth""#], Algorithm::Md5)
            .unwrap();
    assert_eq!(picked.realm(), "r");

    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let ch = digest::parse_challenge(&digest::make_challenge("phone", "n0nce", alg)).unwrap();
        let auth = digest::authorization(&ch, "dev1", "pw", "NOTIFY", "sip:1001@127.0.0.1:5060", 1, "cn");
        digest::verify_authorization(&auth, "NOTIFY", "dev1", "pw", "phone", "n0nce").unwrap();
        assert!(digest::verify_authorization(&auth, "NOTIFY", "dev1", "wrong", "phone", "n0nce").is_err());
        assert!(digest::verify_authorization(&auth, "NOTIFY", "dev1", "pw", "phone", "other").is_err());
        let parsed = digest::parse_challenge(&auth).unwrap();
        assert_eq!(parsed.param("nc"), Some("00000001"));
        assert_eq!(parsed.param("response").unwrap().len(), alg.hex_len());
    }
}

#[test]
fn stream_framing_and_headers() {
    let msg = "SIP/2.0 200 OK\r\nv: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bKx;rport=5\r\nFrom: <sip:1@pbx.test>;tag=a\r\nTo: <sip:1@pbx.test>;tag=b\r\ni: cid\r\nCSeq: 2 REGISTER\r\nContact: <sip:1@127.0.0.1:5;transport=tcp>;expires=60,\r\n <sip:1@127.0.0.1:6>;expires=30;+sip.instance=\"<urn:uuid:1,2>\"\r\nl: 4\r\n\r\nbody";
    let mut buf = BytesMut::new();
    let mut pongs = 0;
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(&msg.as_bytes()[..40]);
    assert!(frame_stream(&mut buf, &mut pongs).is_none());
    assert_eq!(pongs, 1);
    buf.extend_from_slice(&msg.as_bytes()[40..]);
    buf.extend_from_slice(b"OPTIONS");
    let frame = frame_stream(&mut buf, &mut pongs).unwrap();
    assert_eq!(&buf[..], b"OPTIONS");
    let m = ReceivedMessage::parse(&frame, "127.0.0.1:1".parse().unwrap(), Transport::Tcp);
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.reason(), Some("OK"));
    assert_eq!(m.call_id(), Some("cid"));
    assert_eq!(m.cseq(), Some((2, "REGISTER".into())));
    assert_eq!(m.via_branch().as_deref(), Some("z9hG4bKx"));
    assert_eq!(m.to_tag().as_deref(), Some("b"));
    assert_eq!(m.body_str(), "body");
    let ce = m.contact_expires();
    assert_eq!(ce.len(), 2, "{ce:?}");
    assert_eq!(ce[0], ("sip:1@127.0.0.1:5;transport=tcp".to_string(), Some(60)));
    assert_eq!(ce[1].1, Some(30));
    assert!(m.contact_containing("127.0.0.1:6").is_some());
    assert_eq!(split_header_list("a, \"x,y\" <sip:b>, <sip:c,d>").len(), 3);
    assert_eq!(addr_uri("\"Bob\" <sip:b@x;transport=tcp>;expires=5"), "sip:b@x;transport=tcp");
    assert_eq!(
        addr_param("<sip:b@x;lr>;+sip.instance=\"<urn:a>\";reg-id=1", "+sip.instance").as_deref(),
        Some("<urn:a>")
    );
    let garbage = ReceivedMessage::parse(b"\x00\xffnot sip", "127.0.0.1:1".parse().unwrap(), Transport::Udp);
    assert!(garbage.status().is_none() && garbage.parsed.is_err());
}

#[test]
fn request_parse_and_response_build() {
    let req = "NOTIFY sip:1001@127.0.0.1:5555;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1\r\nFrom: <sip:pbx.test>;tag=s1\r\nTo: <sip:1001@pbx.test>\r\nCall-ID: n1\r\nCSeq: 7 NOTIFY\r\nEvent: check-sync;reboot=false\r\nContent-Length: 0\r\n\r\n";
    let m = ReceivedMessage::parse(req.as_bytes(), "127.0.0.1:5060".parse().unwrap(), Transport::Udp);
    assert!(m.is_request());
    assert_eq!(m.method(), Some("NOTIFY"));
    assert_eq!(m.event().as_deref(), Some("check-sync"));
    assert!(m.parsed.is_ok(), "{:?}", m.parsed);
    let resp = support::SipUa::build_response(&m, 200, "OK", &[], b"");
    let r = ReceivedMessage::parse(resp.as_bytes(), "127.0.0.1:1".parse().unwrap(), Transport::Udp);
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.via_branch().as_deref(), Some("z9hG4bKn1"));
    assert_eq!(r.cseq(), Some((7, "NOTIFY".into())));
    assert!(r.to_tag().is_some());
    assert!(r.parsed.is_ok(), "{:?}\n{resp}", r.parsed);
}

#[test]
fn config_editing() {
    use support::server::{base_config, toml_set, Listeners, ServerOptions};
    let dir = std::path::Path::new("/tmp/x");
    let mut cfg = base_config(dir, &ServerOptions::default());
    toml_set(&mut cfg, "sip", "min_expires", "120");
    toml_set(&mut cfg, "sip", "realm", "\"other\"");
    toml_set(&mut cfg, "provisioning", "resync_interval", "30");
    toml_set(&mut cfg, "new", "k", "1");
    toml_set(&mut cfg, "", "domain", "\"d.test\"");
    let t: toml::Table = cfg.parse().unwrap_or_else(|e| panic!("{e}\n{cfg}"));
    assert_eq!(t["sip"]["min_expires"].as_integer(), Some(120));
    assert_eq!(t["sip"]["realm"].as_str(), Some("other"));
    assert_eq!(t["sip"]["udp"].as_array().unwrap()[0].as_str(), Some("127.0.0.1:0"));
    assert_eq!(t["provisioning"]["resync_interval"].as_integer(), Some(30));
    assert_eq!(t["new"]["k"].as_integer(), Some(1));
    assert_eq!(t["domain"].as_str(), Some("d.test"));
    let v6 = base_config(dir, &ServerOptions { ipv6: true, ..Default::default() });
    assert!(v6.contains("[::1]:0"));

    let mut l = Listeners::default();
    assert!(l.parse_line("deskline: listening for SIP/UDP on 127.0.0.1:40123"));
    assert!(l.parse_line("deskline: listening for SIP/TLS on [::1]:5061"));
    assert!(l.parse_line("deskline: listening for admin API on http://127.0.0.1:9080"));
    assert!(l.parse_line("deskline: admin token written to /tmp/d/admin.token"));
    assert!(!l.parse_line("deskline: ready"));
    assert_eq!(l.udp[0].port(), 40123);
    assert!(l.tls[0].is_ipv6());
    assert_eq!(l.admin.unwrap().port(), 9080);
}
