//! The SIP a simulated phone needs: building its REGISTER requests, framing responses off a
//! stream (Content-Length, RFC 5626 CRLF keep-alives skipped), reading the status code, CSeq and
//! WWW-Authenticate challenges, and the digest MD5 qop=auth answer (RFC 2617 / RFC 3261 §22).

use md5::{Digest, Md5};

/// One parsed response: status code, CSeq number and the MD5 (or algorithm-less) challenge.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub cseq: u32,
    pub challenge: Option<Challenge>,
}

/// A `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Default, Clone)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub qop_auth: bool,
    pub algorithm: Option<String>,
}

/// Outcome of trying to take one message off the front of a stream buffer.
pub enum Frame {
    /// A complete message of this many bytes (headers + body) starting at `start`.
    Complete { start: usize, len: usize },
    /// Need more bytes.
    Incomplete,
    /// Not SIP / unframeable.
    Invalid(&'static str),
}

/// Finds the first complete message in `buf`, skipping leading CRLFs (keep-alive pongs).
pub fn frame(buf: &[u8]) -> Frame {
    let mut start = 0;
    while buf.len() >= start + 2 && &buf[start..start + 2] == b"\r\n" {
        start += 2;
    }
    let rest = &buf[start..];
    let Some(hend) = memchr::memmem::find(rest, b"\r\n\r\n") else {
        return if rest.len() > 65536 { Frame::Invalid("header too long") } else { Frame::Incomplete };
    };
    let head = &rest[..hend];
    let mut clen = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = trim_cr(line);
        if let Some((name, value)) = split_header(line) {
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                match value.trim().parse::<usize>() {
                    Ok(n) => clen = Some(n),
                    Err(_) => return Frame::Invalid("bad Content-Length"),
                }
            }
        }
    }
    // On a stream, Content-Length is mandatory (RFC 3261 §18.3).
    let Some(clen) = clen else { return Frame::Invalid("no Content-Length on a stream") };
    let len = hend + 4 + clen;
    if rest.len() < len {
        Frame::Incomplete
    } else {
        Frame::Complete { start, len }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn split_header(line: &[u8]) -> Option<(&str, &str)> {
    let line = std::str::from_utf8(line).ok()?;
    let (n, v) = line.split_once(':')?;
    Some((n.trim(), v.trim()))
}

/// Parses a framed response (status line, CSeq, challenges). None if it is not a response.
pub fn parse_response(msg: &[u8]) -> Option<Response> {
    let hend = memchr::memmem::find(msg, b"\r\n\r\n").unwrap_or(msg.len());
    let mut lines = msg[..hend].split(|&b| b == b'\n');
    let first = std::str::from_utf8(trim_cr(lines.next()?)).ok()?;
    let mut parts = first.splitn(3, ' ');
    if parts.next()? != "SIP/2.0" {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut r = Response { status, ..Default::default() };
    for line in lines {
        let Some((name, value)) = split_header(trim_cr(line)) else { continue };
        if name.eq_ignore_ascii_case("cseq") {
            r.cseq = value.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        } else if name.eq_ignore_ascii_case("www-authenticate") {
            if let Some(c) = parse_challenge(value) {
                let md5 = c.algorithm.as_deref().is_none_or(|a| a.eq_ignore_ascii_case("MD5"));
                if md5 && r.challenge.is_none() {
                    r.challenge = Some(c);
                }
            }
        }
    }
    Some(r)
}

/// Parses `Digest k=v, k="v", ...` (quoted values may hold commas).
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut c = Challenge::default();
    let mut s = params.trim();
    let mut have_nonce = false;
    while !s.is_empty() {
        let eq = s.find('=')?;
        let key = s[..eq].trim().trim_start_matches(',').trim().to_ascii_lowercase();
        s = s[eq + 1..].trim_start();
        let val;
        if let Some(q) = s.strip_prefix('"') {
            let mut out = String::new();
            let mut end = None;
            let mut chars = q.char_indices();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => out.push(ch),
                }
            }
            let end = end?;
            val = out;
            s = q[end + 1..].trim_start();
        } else {
            let end = s.find(',').unwrap_or(s.len());
            val = s[..end].trim().to_string();
            s = &s[end..];
        }
        s = s.trim_start_matches(',').trim_start();
        match key.as_str() {
            "realm" => c.realm = val,
            "nonce" => {
                c.nonce = val;
                have_nonce = true;
            }
            "opaque" => c.opaque = Some(val),
            "qop" => c.qop_auth = val.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")),
            "algorithm" => c.algorithm = Some(val),
            _ => {}
        }
    }
    have_nonce.then_some(c)
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// The `Authorization` header value answering `c` for REGISTER to `uri` (MD5; qop=auth if offered).
pub fn authorization(c: &Challenge, user: &str, password: &str, uri: &str, cnonce: &str) -> String {
    let ha1 = md5_hex(&[user.as_bytes(), c.realm.as_bytes(), password.as_bytes()]);
    let ha2 = md5_hex(&[b"REGISTER", uri.as_bytes()]);
    let nc = "00000001";
    let mut v = format!("Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\"", c.realm, c.nonce);
    if c.qop_auth {
        let resp =
            md5_hex(&[ha1.as_bytes(), c.nonce.as_bytes(), nc.as_bytes(), cnonce.as_bytes(), b"auth", ha2.as_bytes()]);
        v.push_str(&format!(", response=\"{resp}\", algorithm=MD5, cnonce=\"{cnonce}\", qop=auth, nc={nc}"));
    } else {
        let resp = md5_hex(&[ha1.as_bytes(), c.nonce.as_bytes(), ha2.as_bytes()]);
        v.push_str(&format!(", response=\"{resp}\", algorithm=MD5"));
    }
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    v
}

/// What stays the same across one phone's REGISTERs (RFC 3261 §10.2.4: same Call-ID, CSeq grows).
pub struct Identity {
    pub user: String,
    pub password: String,
    pub server: String,
    pub transport: &'static str,
    pub call_id: String,
    pub tag: String,
    pub expires: u32,
}

impl Identity {
    pub fn request_uri(&self) -> String {
        format!("sip:{}", self.server)
    }

    /// One REGISTER from `local` (the connection's own address); `auth` is an Authorization value.
    pub fn register(&self, local: &str, cseq: u32, branch: &str, auth: Option<&str>) -> Vec<u8> {
        let t = self.transport;
        let tl = t.to_ascii_lowercase();
        let mut m = format!(
            "REGISTER {ruri} SIP/2.0\r\nVia: SIP/2.0/{t} {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{u}@{srv}>;tag={tag}\r\nTo: <sip:{u}@{srv}>\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{u}@{local};transport={tl}>\r\nExpires: {exp}\r\n",
            ruri = self.request_uri(),
            u = self.user,
            srv = self.server,
            tag = self.tag,
            cid = self.call_id,
            exp = self.expires,
        );
        if let Some(a) = auth {
            m.push_str("Authorization: ");
            m.push_str(a);
            m.push_str("\r\n");
        }
        m.push_str("User-Agent: sipload\r\nContent-Length: 0\r\n\r\n");
        m.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_md5() {
        // RFC 2617 §3.5 (GET, with the method swapped for the check below via a direct computation).
        let ha1 = md5_hex(&[b"Mufasa", b"testrealm@host.com", b"Circle Of Life"]);
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        let ha2 = md5_hex(&[b"GET", b"/dir/index.html"]);
        let r = md5_hex(&[
            ha1.as_bytes(),
            b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
            b"00000001",
            b"0a4f113b",
            b"auth",
            ha2.as_bytes(),
        ]);
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn frames_and_parses() {
        let msg = b"\r\nSIP/2.0 401 Unauthorized\r\nCSeq: 7 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"r, x\", nonce=\"abc\", qop=\"auth,auth-int\", opaque=\"o\"\r\n\
            Content-Length: 3\r\n\r\nxyzSIP/2.0";
        let Frame::Complete { start, len } = frame(msg) else { panic!() };
        assert_eq!(start, 2);
        let r = parse_response(&msg[start..start + len]).unwrap();
        assert_eq!((r.status, r.cseq), (401, 7));
        let c = r.challenge.unwrap();
        assert_eq!((c.realm.as_str(), c.nonce.as_str(), c.qop_auth), ("r, x", "abc", true));
        assert_eq!(c.opaque.as_deref(), Some("o"));
        assert!(matches!(frame(&msg[start + len..]), Frame::Incomplete));
    }

    #[test]
    fn skips_sha256_challenge() {
        let msg = b"SIP/2.0 401 Unauthorized\r\nCSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"a\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\r\n\
            WWW-Authenticate: Digest realm=\"a\", nonce=\"n2\", algorithm=MD5, qop=\"auth\"\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(parse_response(msg).unwrap().challenge.unwrap().nonce, "n2");
    }
}
