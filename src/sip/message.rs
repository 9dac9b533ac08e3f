//! SIP message framing and the untyped message model (start line, header rows, body).
//!
//! # Why deskline parses SIP itself, and where rsip is still used
//!
//! The customer chose rsip 0.4.0 (the latest release, 2022). Measured against the RFC 4475 and
//! RFC 5118 torture corpora and real phone REGISTERs (`reference/rust-crates.md` §1,
//! `reference/sip-torture/rsip-0.4.0-results.md`) it rejects or mis-reads what RFC 3261 allows and
//! deskphones send: folded header lines, whitespace before `:`, compact header names (`m:`, `i:`,
//! `v:`...), quoted Contact parameters (`+sip.instance="<urn:uuid:...>"`), several contacts in one
//! row, whitespace around `;`, users with dots, IPv6 references, extension methods (its `Method`
//! enum is closed, so a 501 cannot even be built), `SIP/x.y` versions (so no 505), unknown URI
//! schemes (so no 416), and it ignores Content-Length for framing (`clerr`, `mcl01`, `dblreq`).
//! Its typed Authorization parses `nc` as a decimal `u8` and does not know `algorithm=SHA-256`.
//! So the message layer (this module, [`super::uri`], [`super::headers`], [`super::validate`]) is
//! deskline's own: a memchr line splitter over bytes, small hand-written scanners for the typed
//! headers, no regex and no allocation per character.
//!
//! rsip is kept where it is right. Its `StatusCode` enum is the list of registered status codes
//! deskline checks its reason-phrase table against (a unit test asserts [`reason_phrase`] covers
//! every code rsip knows). rsip cannot supply the phrases themselves: its `Display` prints the Rust
//! variant name (`404 NotFound`, `423 IntervalTooBrief`, `504 ServerTimeOut`), as an owned
//! `String`, so the phrases come from the RFC tables in [`reason_phrase`].

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use memchr::{memchr, memchr2, memchr_iter};

mod names;
pub(crate) use names::canonical_name;
use names::compact_name;
pub use names::reason_phrase;

/// Largest message deskline accepts on any transport (header section plus body).
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// A request method. Matching is case-sensitive (RFC 3261 §7.1): `register` is an extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Register,
    Options,
    Invite,
    Ack,
    Bye,
    Cancel,
    Subscribe,
    Notify,
    Publish,
    Message,
    Info,
    Refer,
    Update,
    Prack,
    Extension(String),
}

impl Method {
    /// `None` if `token` is not an RFC 3261 token.
    pub fn parse(token: &str) -> Option<Method> {
        if !is_token(token) {
            return None;
        }
        Some(match token {
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "MESSAGE" => Method::Message,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            other => Method::Extension(other.to_owned()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header row as read: `name` is the canonical long form for known names (compact forms
/// expanded), unknown names as sent; `value` is unfolded (continuation lines joined with one SP)
/// and trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// Where one row's value sits in [`Headers`]' text.
#[derive(Debug, Clone)]
struct Row {
    /// The canonical spelling for every header deskline knows (borrowed: most rows of every
    /// request), else the name as sent.
    name: Cow<'static, str>,
    start: u32,
    end: u32,
}

/// The header rows of a message, in order. Every value lives in one string, back to back, so
/// parsing a message allocates twice (the text and the row list) rather than once per row.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    text: String,
    rows: Vec<Row>,
}

impl Headers {
    /// Room for `rows` rows holding `text` bytes of values.
    fn with_capacity(rows: usize, text: usize) -> Headers {
        Headers { text: String::with_capacity(text), rows: Vec::with_capacity(rows) }
    }

    fn value(&self, row: &Row) -> &str {
        &self.text[row.start as usize..row.end as usize]
    }

    /// The first row named `name` (case-insensitive; compact forms such as `"i"` work too).
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = query_name(name);
        self.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    /// Every row named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let name = query_name(name);
        self.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// Appends a row; a known name (long or compact, any case) is stored in its canonical form.
    pub fn push(&mut self, name: impl Into<String>, value: impl AsRef<str>) {
        let name = name.into();
        let name = match canonical_name(&name) {
            Some(c) => Cow::Borrowed(c),
            None => Cow::Owned(name),
        };
        self.push_row(name, value.as_ref());
    }

    fn push_row(&mut self, name: Cow<'static, str>, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        self.rows.push(Row { name, start, end: self.text.len() as u32 });
    }

    /// Continues the last row with a folded line's text (joined with one SP); `false` when there
    /// is no row to continue.
    fn continue_last(&mut self, more: &str) -> bool {
        let Some(last) = self.rows.last_mut() else {
            return false;
        };
        // The last row's value is the end of the text, so it grows in place.
        if !more.is_empty() {
            if last.end > last.start {
                self.text.push(' ');
            }
            self.text.push_str(more);
            last.end = self.text.len() as u32;
        }
        true
    }

    /// The rows, in order.
    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.rows.iter().map(|r| Header { name: &r.name, value: self.value(r) })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[derive(Debug, Clone)]
pub enum StartLine {
    /// `uri` is the Request-URI text as sent; `version` as sent (checked by [`super::validate`]).
    Request {
        method: Method,
        uri: String,
        version: String,
    },
    Response {
        version: String,
        code: u16,
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct RawMessage {
    pub start: StartLine,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Streams: need more bytes (also: the buffer holds only CRLF keep-alive bytes).
    #[error("incomplete message")]
    Incomplete,
    #[error("message too large")]
    TooLarge,
    #[error("no empty line ends the header section")]
    NoHeaderEnd,
    #[error("bad start line")]
    BadStartLine,
    #[error("malformed header line")]
    BadHeaderLine,
    /// Negative, non-numeric, or two different values (RFC 4475 `ncl`, `mcl01`).
    #[error("invalid Content-Length")]
    BadContentLength,
    /// Datagrams: Content-Length larger than what the datagram carries (RFC 4475 `clerr`).
    #[error("Content-Length exceeds the datagram")]
    ContentLengthTooLarge,
    #[error("Content-Length missing on a stream")]
    MissingContentLength,
    /// The request line is not UTF-8.
    #[error("not UTF-8 in the header section")]
    NotText,
}

/// How message boundaries are found: by the datagram, or by Content-Length on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Datagram,
    Stream,
}

/// Parses one message from the start of `buf`; returns it and the number of bytes consumed.
///
/// * Leading CR/LF bytes are skipped (and counted as consumed); a buffer of nothing but CR/LF
///   gives `Err(Incomplete)` (keep-alives are the caller's business).
/// * Line ends may be CRLF or bare LF. Header values may hold any byte but CR and LF (NULs in
///   quoted strings, RFC 4475 `intmeth`); invalid UTF-8 is stored lossily.
/// * Datagram: the body is exactly Content-Length bytes and trailing bytes are ignored (`dblreq`);
///   no Content-Length means the rest of the datagram; Content-Length beyond the datagram is
///   [`FrameError::ContentLengthTooLarge`].
/// * Stream: no Content-Length is [`FrameError::MissingContentLength`]; a message not yet complete
///   is [`FrameError::Incomplete`].
pub fn parse_message(buf: &[u8], framing: Framing) -> Result<(RawMessage, usize), FrameError> {
    let skip = buf.iter().position(|&b| b != b'\r' && b != b'\n').ok_or(FrameError::Incomplete)?;
    let data = &buf[skip..];
    let Some((head_len, body_off)) = find_header_end(data) else {
        return Err(if data.len() > MAX_MESSAGE_SIZE {
            FrameError::TooLarge
        } else if framing == Framing::Stream {
            FrameError::Incomplete
        } else {
            FrameError::NoHeaderEnd
        });
    };
    if body_off > MAX_MESSAGE_SIZE {
        return Err(FrameError::TooLarge);
    }
    let head = &data[..head_len];
    let first_end = memchr(b'\n', head).unwrap_or(head.len());
    let start = parse_start_line(strip_cr(&head[..first_end]))?;
    // One UTF-8 check for the whole header section; non-UTF-8 octets become U+FFFD.
    let lines = head.get(first_end + 1..).unwrap_or(&[]);
    let headers = match std::str::from_utf8(lines) {
        Ok(text) => parse_header_lines(text)?,
        Err(_) => parse_header_lines(&String::from_utf8_lossy(lines))?,
    };

    let avail = data.len() - body_off;
    let body_len = match content_length(&headers)? {
        Some(cl) => {
            if body_off.saturating_add(cl) > MAX_MESSAGE_SIZE {
                return Err(match framing {
                    Framing::Datagram => FrameError::ContentLengthTooLarge,
                    Framing::Stream => FrameError::TooLarge,
                });
            }
            if cl > avail {
                return Err(match framing {
                    Framing::Datagram => FrameError::ContentLengthTooLarge,
                    Framing::Stream => FrameError::Incomplete,
                });
            }
            cl
        }
        None => match framing {
            Framing::Stream => return Err(FrameError::MissingContentLength),
            Framing::Datagram if body_off + avail > MAX_MESSAGE_SIZE => return Err(FrameError::TooLarge),
            Framing::Datagram => avail,
        },
    };
    let body = Bytes::copy_from_slice(&data[body_off..body_off + body_len]);
    Ok((RawMessage { start, headers, body }, skip + body_off + body_len))
}

/// When [`parse_message`] failed, recovers the Via, From, To, Call-ID and CSeq rows of what looks
/// like a request (a token, SP, more text on the first line), so it can still be answered with
/// 400. `None` when it does not look like a request or has no Via (nowhere to answer): drop it.
pub fn salvage_request_headers(buf: &[u8]) -> Option<Headers> {
    let buf = &buf[..buf.len().min(MAX_MESSAGE_SIZE)];
    let skip = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let data = &buf[skip..];
    let first_end = memchr(b'\n', data).unwrap_or(data.len());
    let first = strip_cr(&data[..first_end]);
    let sp = memchr(b' ', first)?;
    if sp == 0 || !first[..sp].iter().all(|&b| is_token_byte(b)) || first[sp..].trim_ascii().is_empty() {
        return None;
    }
    if first.starts_with(b"SIP/") {
        return None;
    }
    let mut out = Headers::default();
    let mut keep_last = false;
    for line in data.get(first_end + 1..).unwrap_or(&[]).split(|&b| b == b'\n') {
        let line = strip_cr(line);
        match line.first() {
            None => break,
            Some(b' ' | b'\t') => {
                if keep_last {
                    out.continue_last(&String::from_utf8_lossy(trim_lws(line)));
                }
            }
            Some(_) => {
                keep_last = false;
                let Some(colon) = memchr(b':', line) else {
                    continue;
                };
                let Ok(name) = std::str::from_utf8(trim_lws(&line[..colon])) else {
                    continue;
                };
                if let Some(canon @ ("Via" | "From" | "To" | "Call-ID" | "CSeq")) = canonical_name(name) {
                    out.push_row(Cow::Borrowed(canon), &String::from_utf8_lossy(trim_lws(&line[colon + 1..])));
                    keep_last = true;
                }
            }
        }
    }
    out.get("Via").is_some().then_some(out)
}

// ---- shared lexical helpers (used by uri, headers and validate) ----

/// RFC 3261 `token` characters, as a table.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        i += 1;
    }
    t
};

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Trims SP and HT at both ends.
pub(crate) fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ' && c != b'\t').map_or(start, |e| e + 1);
    &s[start..end]
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

fn trim_lws(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ' && c != b'\t').map_or(start, |e| e + 1);
    &b[start..end]
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// End of the header section: (length of the header lines including the last line's LF, offset of
/// the body). Accepts CRLF CRLF, LF LF and mixes.
fn find_header_end(data: &[u8]) -> Option<(usize, usize)> {
    for i in memchr_iter(b'\n', data) {
        match data.get(i + 1) {
            Some(b'\n') => return Some((i + 1, i + 2)),
            Some(b'\r') if data.get(i + 2) == Some(&b'\n') => return Some((i + 1, i + 3)),
            _ => {}
        }
    }
    None
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, FrameError> {
    if let Some(rest) = line.strip_prefix(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase. The reason may be empty and
        // the SP before it missing (RFC 4475 noreason: liberal).
        let sp = memchr(b' ', rest).ok_or(FrameError::BadStartLine)?;
        let version = std::str::from_utf8(&line[..4 + sp]).map_err(|_| FrameError::BadStartLine)?;
        if !is_version(version) {
            return Err(FrameError::BadStartLine);
        }
        let after = &rest[sp + 1..];
        let code_end = after.iter().position(|&b| b == b' ').unwrap_or(after.len());
        let code_txt = &after[..code_end];
        if code_txt.len() != 3 || !code_txt.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadStartLine);
        }
        let code = code_txt.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(FrameError::BadStartLine);
        }
        let reason = String::from_utf8_lossy(trim_lws(after.get(code_end + 1..).unwrap_or(&[]))).into_owned();
        return Ok(StartLine::Response { version: version.to_owned(), code, reason });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version. Extra SP between the elements and at
    // the end are tolerated (RFC 4475 lwsstart, trws: liberal); SP inside the URI is not (the
    // URI check in validate rejects lwsruri with 400).
    let line = std::str::from_utf8(line).map_err(|_| FrameError::NotText)?.trim_end_matches([' ', '\t']);
    let (method, rest) = line.split_once(' ').ok_or(FrameError::BadStartLine)?;
    let method = Method::parse(method).ok_or(FrameError::BadStartLine)?;
    let (uri, version) = rest.rsplit_once(' ').ok_or(FrameError::BadStartLine)?;
    let uri = uri.trim_matches(' ');
    if uri.is_empty() || !is_version(version) || uri.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(FrameError::BadStartLine);
    }
    Ok(StartLine::Request { method, uri: uri.to_owned(), version: version.to_owned() })
}

/// `SIP/1*DIGIT.1*DIGIT`, "SIP" in any case.
fn is_version(v: &str) -> bool {
    let Some((proto, num)) = v.split_once('/') else {
        return false;
    };
    let Some((major, minor)) = num.split_once('.') else {
        return false;
    };
    proto.eq_ignore_ascii_case("SIP")
        && !major.is_empty()
        && !minor.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().all(|b| b.is_ascii_digit())
}

/// The header lines (after the start line). Every index used for slicing is the position of an
/// ASCII byte, so slicing the `&str` never splits a character.
fn parse_header_lines(text: &str) -> Result<Headers, FrameError> {
    let bytes = text.as_bytes();
    let mut headers = Headers::with_capacity(16, text.len());
    let mut pos = 0;
    while pos < bytes.len() {
        // One search per line finds its end and any CR in it: a CR is only allowed before the LF.
        let (line_end, end) = match memchr2(b'\r', b'\n', &bytes[pos..]).map(|i| pos + i) {
            None => (bytes.len(), bytes.len()),
            Some(i) if bytes[i] == b'\n' => (i, i),
            Some(i) if bytes.get(i + 1) == Some(&b'\n') => (i, i + 1),
            Some(_) => return Err(FrameError::BadHeaderLine),
        };
        let line = &text[pos..line_end];
        let lb = line.as_bytes();
        pos = end + 1;
        match lb.first() {
            None => return Err(FrameError::BadHeaderLine),
            Some(b' ' | b'\t') => {
                if !headers.continue_last(trim_ws(line)) {
                    return Err(FrameError::BadHeaderLine);
                }
            }
            Some(_) => {
                // field-name *(SP / HT) ":"
                let name_end = lb.iter().position(|&b| !is_token_byte(b)).unwrap_or(lb.len());
                let colon = name_end
                    + lb[name_end..].iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(lb.len() - name_end);
                if name_end == 0 || lb.get(colon) != Some(&b':') {
                    return Err(FrameError::BadHeaderLine);
                }
                let name = &line[..name_end];
                let name = canonical_name(name).map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed);
                headers.push_row(name, trim_ws(&line[colon + 1..]));
            }
        }
    }
    Ok(headers)
}

/// The Content-Length of the message: `None` when absent; every row must be a plain decimal and all
/// rows must agree. An overlarge value reads as `usize::MAX` (then "too large", not "invalid").
fn content_length(headers: &Headers) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    for h in headers.iter().filter(|h| h.name == "Content-Length") {
        let v = h.value.as_bytes();
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let n = v
            .iter()
            .try_fold(0usize, |n, d| n.checked_mul(10)?.checked_add(usize::from(d - b'0')))
            .unwrap_or(usize::MAX);
        if found.is_some_and(|f| f != n) {
            return Err(FrameError::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

/// Stored names are canonical, so a query only needs its compact form expanded.
fn query_name(name: &str) -> &str {
    if name.len() == 1 {
        compact_name(name.as_bytes()[0]).unwrap_or(name)
    } else {
        name
    }
}

#[cfg(test)]
mod tests;
