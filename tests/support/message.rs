//! Messages the test UA receives: `ReceivedMessage` (raw text plus rsip's parse as an independent
//! check), header helpers, and stream framing by Content-Length.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};

use super::sip_ua::Transport;

// ---------------------------------------------------------------------------------------------
// Received messages
// ---------------------------------------------------------------------------------------------

/// One SIP message as received.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The whole message as text (lossy UTF-8).
    pub raw: String,
    /// rsip's view of it (independent parser); Err holds rsip's error text.
    pub parsed: Result<rsip::SipMessage, String>,
    /// `SIP/2.0 200 OK` or `NOTIFY sip:... SIP/2.0`.
    pub start_line: String,
    /// Unfolded header lines in order: (name as sent, value).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Where it came from (the server socket).
    pub source: SocketAddr,
    pub transport: Transport,
}

/// Long form (lowercase) of a header name, compact forms expanded.
pub fn canonical_header_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        "o" => "event",
        "u" => "allow-events",
        "r" => "refer-to",
        "b" => "referred-by",
        "x" => "session-expires",
        "a" => "accept-contact",
        "j" => "reject-contact",
        "d" => "request-disposition",
        "y" => "identity",
        other => other,
    };
    long.to_string()
}

/// Splits `a, "b,c" <d,e>, f` on commas outside quotes and angle brackets.
pub fn split_header_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => {
                escaped = true;
                cur.push(c);
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            '<' if !in_quotes => {
                in_angle = true;
                cur.push(c);
            }
            '>' if !in_quotes => {
                in_angle = false;
                cur.push(c);
            }
            ',' if !in_quotes && !in_angle => {
                let t = cur.trim();
                if !t.is_empty() {
                    out.push(t.to_string());
                }
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    let t = cur.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
    out
}

/// The URI of a name-addr / addr-spec (`"Bob" <sip:b@x;transport=tcp>;expires=5` → `sip:b@x;transport=tcp`).
pub fn addr_uri(value: &str) -> String {
    let v = value.trim();
    if let (Some(a), Some(b)) = (v.find('<'), v.find('>')) {
        if a < b {
            return v[a + 1..b].trim().to_string();
        }
    }
    v.split(';').next().unwrap_or("").trim().to_string()
}

/// Header parameters of a name-addr (after `>`, or after the first `;` of an addr-spec), names
/// lowercased, values unquoted; a parameter without `=` has an empty value.
pub fn addr_params(value: &str) -> Vec<(String, String)> {
    let v = value.trim();
    let rest = match v.find('<').and(v.find('>')) {
        Some(b) => &v[b + 1..],
        None => match v.find(';') {
            Some(i) => &v[i..],
            None => "",
        },
    };
    let mut out = Vec::new();
    for p in split_outside_quotes(rest, ';') {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        match p.split_once('=') {
            Some((k, val)) => out.push((k.trim().to_ascii_lowercase(), val.trim().trim_matches('"').to_string())),
            None => out.push((p.to_ascii_lowercase(), String::new())),
        }
    }
    out
}

/// One parameter of a name-addr (see [`addr_params`]).
pub fn addr_param(value: &str, name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    addr_params(value).into_iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    for c in s.chars() {
        if c == '"' {
            q = !q;
        }
        if c == sep && !q {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

impl ReceivedMessage {
    /// Parses one complete message (never panics; garbage gives an empty start line and headers).
    pub fn parse(bytes: &[u8], source: SocketAddr, transport: Transport) -> ReceivedMessage {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let parsed = rsip::SipMessage::try_from(bytes).map_err(|e| e.to_string());
        let (head, body) = match find_subslice(bytes, b"\r\n\r\n") {
            Some(i) => (&bytes[..i], bytes[i + 4..].to_vec()),
            None => match find_subslice(bytes, b"\n\n") {
                Some(i) => (&bytes[..i], bytes[i + 2..].to_vec()),
                None => (bytes, Vec::new()),
            },
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start_line = lines.next().unwrap_or("").trim().to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        ReceivedMessage { raw, parsed, start_line, headers, body, source, transport }
    }

    pub fn is_response(&self) -> bool {
        self.start_line.starts_with("SIP/")
    }
    pub fn is_request(&self) -> bool {
        !self.is_response() && self.start_line.ends_with("SIP/2.0")
    }
    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        if !self.is_response() {
            return None;
        }
        self.start_line.split_whitespace().nth(1)?.parse().ok()
    }
    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<&str> {
        if !self.is_response() {
            return None;
        }
        let mut it = self.start_line.splitn(3, ' ');
        it.next();
        it.next();
        Some(it.next().unwrap_or("").trim())
    }
    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.is_response() {
            return None;
        }
        self.start_line.split_whitespace().next()
    }
    pub fn request_uri(&self) -> Option<&str> {
        if self.is_response() {
            return None;
        }
        self.start_line.split_whitespace().nth(1)
    }
    /// The first value of a header (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        let want = canonical_header_name(name);
        self.headers.iter().find(|(n, _)| canonical_header_name(n) == want).map(|(_, v)| v.as_str())
    }
    /// Every header line's value with this name, in order (not split on commas).
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let want = canonical_header_name(name);
        self.headers.iter().filter(|(n, _)| canonical_header_name(n) == want).map(|(_, v)| v.as_str()).collect()
    }
    /// Every value of a list header, split on commas (Contact, Via, Allow, Supported...).
    pub fn header_list(&self, name: &str) -> Vec<String> {
        self.headers(name).into_iter().flat_map(split_header_list).collect()
    }
    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }
    /// `(number, method)` of CSeq.
    pub fn cseq(&self) -> Option<(u32, String)> {
        let v = self.header("cseq")?;
        let mut it = v.split_whitespace();
        Some((it.next()?.parse().ok()?, it.next()?.to_string()))
    }
    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length")?.trim().parse().ok()
    }
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The `branch` of the top Via.
    pub fn via_branch(&self) -> Option<String> {
        let top = self.header_list("via").into_iter().next()?;
        via_param(&top, "branch")
    }
    /// `tag` of the To header.
    pub fn to_tag(&self) -> Option<String> {
        addr_param(self.header("to")?, "tag")
    }
    pub fn tag_of_from(&self) -> Option<String> {
        addr_param(self.header("from")?, "tag")
    }
    /// Every Contact (split on commas).
    pub fn contacts(&self) -> Vec<String> {
        self.header_list("contact")
    }
    /// `(contact URI, expires param)` of each Contact.
    pub fn contact_expires(&self) -> Vec<(String, Option<u32>)> {
        self.contacts().iter().map(|c| (addr_uri(c), addr_param(c, "expires").and_then(|e| e.parse().ok()))).collect()
    }
    /// The Contact whose URI contains `needle`, if any.
    pub fn contact_containing(&self, needle: &str) -> Option<String> {
        self.contacts().into_iter().find(|c| addr_uri(c).contains(needle))
    }
    pub fn www_authenticate(&self) -> Vec<&str> {
        self.headers("www-authenticate")
    }
    /// The `Event` header's event type without parameters (`check-sync;reboot=false` → `check-sync`).
    pub fn event(&self) -> Option<String> {
        Some(self.header("event")?.split(';').next()?.trim().to_ascii_lowercase())
    }
}

/// A parameter of a Via value (`SIP/2.0/UDP h:p;branch=z9;rport=5` → branch).
pub fn via_param(via: &str, name: &str) -> Option<String> {
    for p in via.split(';').skip(1) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case(name) {
            return Some(v.trim().to_string());
        }
    }
    None
}

fn find_subslice(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Takes one message off the front of a stream buffer. Leading CRLFs (keep-alive pongs) are
/// consumed and counted in `pongs`. Returns None when the message is not complete yet. A missing
/// Content-Length counts as 0.
pub fn frame_stream(buf: &mut BytesMut, pongs: &mut usize) -> Option<Vec<u8>> {
    loop {
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            *pongs += 1;
        } else if buf.first() == Some(&b'\n') {
            buf.advance(1);
        } else {
            break;
        }
    }
    let end = find_subslice(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut cl = 0usize;
    for line in head.split("\r\n").skip(1) {
        if let Some((n, v)) = line.split_once(':') {
            if canonical_header_name(n) == "content-length" {
                cl = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let total = end + 4 + cl;
    if buf.len() < total {
        return None;
    }
    Some(buf.split_to(total).to_vec())
}
