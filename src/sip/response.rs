//! Building responses to requests deskline received (RFC 3261 §8.2.6): Via rows, From, To (with
//! our tag), Call-ID and CSeq are copied byte for byte from the request, the top Via gets
//! `received`/`rport` (RFC 3581), and the caller adds what the status needs.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;

use super::message::{reason_phrase, Headers};

/// Server name in `Server:` headers.
pub const SERVER: &str = concat!("deskline/", env!("CARGO_PKG_VERSION"));

/// A response under construction.
pub struct ResponseBuilder {
    buf: String,
}

impl ResponseBuilder {
    /// Starts a response to a request whose header rows are `headers`, received from `source`.
    /// `reason` overrides the standard reason phrase.
    pub fn new(code: u16, reason: Option<&str>, headers: &Headers, source: SocketAddr) -> ResponseBuilder {
        // push_str rather than write!: this runs twice per REGISTER and fmt was a tenth of it.
        let mut buf = String::with_capacity(512);
        buf.push_str("SIP/2.0 ");
        push_u64(&mut buf, code as u64);
        buf.push(' ');
        buf.push_str(reason.unwrap_or_else(|| reason_phrase(code)));
        buf.push_str("\r\n");
        let mut first_via = true;
        for h in headers.iter() {
            match h.name {
                "Via" if first_via => {
                    first_via = false;
                    push_top_via(&mut buf, h.value, source);
                }
                "Via" | "From" | "Call-ID" | "CSeq" => push_header(&mut buf, h.name, h.value),
                "To" => {
                    buf.push_str("To: ");
                    buf.push_str(h.value);
                    if code > 100 && !has_tag(h.value) {
                        buf.push_str(";tag=");
                        buf.push_str(&local_tag(headers));
                    }
                    buf.push_str("\r\n");
                }
                _ => {}
            }
        }
        ResponseBuilder { buf }
    }

    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> ResponseBuilder {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    pub fn header_mut(&mut self, name: &str, value: impl std::fmt::Display) {
        let _ = write!(self.buf, "{name}: {value}\r\n");
    }

    /// A header whose value is already text (no formatting machinery).
    pub fn header_str(&mut self, name: &str, value: &str) {
        push_header(&mut self.buf, name, value);
    }

    /// `Contact: <uri>;expires=N`, as a REGISTER 200 lists each binding.
    pub fn contact_with_expires(&mut self, uri: &str, expires: u64) {
        self.buf.push_str("Contact: <");
        self.buf.push_str(uri);
        self.buf.push_str(">;expires=");
        push_u64(&mut self.buf, expires);
        self.buf.push_str("\r\n");
    }

    /// Finishes with no body.
    pub fn finish(self) -> Bytes {
        self.finish_with_body("", &[])
    }

    pub fn finish_with_body(mut self, content_type: &str, body: &[u8]) -> Bytes {
        push_header(&mut self.buf, "Server", SERVER);
        if !body.is_empty() {
            push_header(&mut self.buf, "Content-Type", content_type);
        }
        self.buf.push_str("Content-Length: ");
        push_u64(&mut self.buf, body.len() as u64);
        self.buf.push_str("\r\n\r\n");
        let mut out = self.buf.into_bytes();
        out.extend_from_slice(body);
        Bytes::from(out)
    }
}

/// Copies the first Via value with `rport` filled in and `received` set to the source address
/// (RFC 3261 §18.2.1 allows adding it always); the rest of that row as is.
fn push_top_via(buf: &mut String, row: &str, source: SocketAddr) {
    let (top, rest) = split_first_value(row);
    buf.push_str("Via: ");
    for (i, part) in top.split(';').enumerate() {
        let part = part.trim();
        let name = part.split('=').next().unwrap_or("").trim();
        if i == 0 {
            buf.push_str(part);
        } else if name.eq_ignore_ascii_case("rport") {
            buf.push_str(";rport=");
            push_u64(buf, source.port() as u64);
        } else if !name.eq_ignore_ascii_case("received") {
            buf.push(';');
            buf.push_str(part);
        }
    }
    buf.push_str(";received=");
    push_ip(buf, source.ip());
    buf.push_str(rest);
    buf.push_str("\r\n");
}

fn push_header(buf: &mut String, name: &str, value: &str) {
    buf.push_str(name);
    buf.push_str(": ");
    buf.push_str(value);
    buf.push_str("\r\n");
}

/// Decimal digits without the formatting machinery.
pub fn push_u64(buf: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

/// An IP address as text; IPv4 without `fmt` (it runs on every answer).
pub fn push_ip(buf: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push('.');
                }
                push_u64(buf, octet as u64);
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(buf, "{v6}");
        }
    }
}

/// Lowercase hex of the bytes.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// Splits a header row at the first comma outside quotes and angle brackets.
pub fn split_first_value(row: &str) -> (&str, &str) {
    let mut in_quotes = false;
    let mut depth = 0u32;
    let bytes = row.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => depth += 1,
            b'>' if !in_quotes => depth = depth.saturating_sub(1),
            b',' if !in_quotes && depth == 0 => return (&row[..i], &row[i..]),
            _ => {}
        }
        i += 1;
    }
    (row, "")
}

fn has_tag(to: &str) -> bool {
    // The tag is a header parameter: after the closing '>' when there is one.
    let params = match to.rfind('>') {
        Some(i) => &to[i..],
        None => to,
    };
    params.split(';').skip(1).any(|p| p.trim().to_ascii_lowercase().starts_with("tag"))
}

/// A To tag that is the same for retransmissions of one request: a hash of Call-ID and From.
pub fn local_tag(headers: &Headers) -> String {
    let h = fnv64(&[headers.get("Call-ID").unwrap_or(""), headers.get("From").unwrap_or("")]);
    let mut tag = String::with_capacity(18);
    tag.push_str("dl");
    push_hex(&mut tag, &h.to_be_bytes());
    tag
}

/// FNV-1a over the parts in turn: stable ids and tags (not a security hash).
pub fn fnv64(parts: &[&str]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// `host:port` as a SIP URI or Via writes it (IPv6 in brackets; an unspecified address, which a
/// wildcard listener reports, becomes loopback).
pub fn sip_host_port(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() && addr.is_ipv4() => format!("127.0.0.1:{}", addr.port()),
        ip if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
        ip => format!("{ip}:{}", addr.port()),
    }
}

/// The Date header value (RFC 1123 form, GMT), as REGISTER 200 OKs carry it; formatted once a
/// second per thread.
pub fn date_now() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let secs = now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    LAST.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        text.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(rows: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in rows {
            h.push(*n, *v);
        }
        h
    }

    #[test]
    fn echoes_dialog_headers_and_marks_the_via() {
        let h = headers(&[
            ("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP proxy;branch=z9hG4bK0"),
            ("Via", "SIP/2.0/TCP other;branch=z9hG4bKx"),
            ("From", "<sip:1001@pbx>;tag=abc"),
            ("To", "<sip:1001@pbx>"),
            ("Call-ID", "c1"),
            ("CSeq", "2 REGISTER"),
            ("Contact", "<sip:x@y>"),
        ]);
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let r = ResponseBuilder::new(200, None, &h, src).header("Expires", 60).finish();
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        assert!(text.contains(
            "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport=40000;received=127.0.0.1, SIP/2.0/UDP proxy;branch=z9hG4bK0\r\n"
        ), "{text}");
        assert!(text.contains("Via: SIP/2.0/TCP other;branch=z9hG4bKx\r\n"));
        assert!(text.contains("To: <sip:1001@pbx>;tag=dl"));
        assert!(text.contains("Call-ID: c1\r\nCSeq: 2 REGISTER\r\n"));
        assert!(!text.contains("Contact"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn keeps_an_existing_to_tag() {
        let h = headers(&[("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("To", "\"A, B\" <sip:a@b>;tag=x")]);
        let r = ResponseBuilder::new(481, None, &h, "127.0.0.1:1".parse().unwrap()).finish();
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.contains("To: \"A, B\" <sip:a@b>;tag=x\r\n"), "{text}");
        assert_eq!(split_first_value("\"A, B\" <sip:a@b>, <sip:c@d>").0, "\"A, B\" <sip:a@b>");
    }
}
