//! From a framed [`RawMessage`] request to a checked [`Request`] with its typed headers, or the
//! exact rejection to answer with (RFC 3261 §8.2, §16.3; RFC 4475 expectations).
//!
//! Choices for what RFC 4475 leaves to the implementation (liberal vs strict):
//! * extra SP between request-line elements and at its end (lwsstart, trws): accepted (framing);
//! * SP inside the Request-URI (lwsruri), `<>` around it (ltgtruri): 400;
//! * escaped headers (`?...`) in the Request-URI (escruri): 400 (RFC 3261 §19.1.1: not allowed
//!   there);
//! * a Contact addr-spec with `?` or `,` but no `<>` (regbadct), spaces inside `<>` (badaspec),
//!   unquoted non-token display names (baddn), unterminated quotes (quotbal): 400;
//! * `Date` with a non-GMT zone (baddate): accepted (Date is not read);
//! * `Max-Forwards` above 255: treated as absent (RFC 4475 §3.1.2.4); overlarge `Expires` and
//!   contact `expires`: clamped to `u32::MAX` (the registrar caps them);
//! * `Proxy-Require` is ignored: deskline is not a proxy (bext01 is answered from `Require`).

use bytes::Bytes;

use super::headers::{parse_u32_saturating, CSeq, ContactSpec, NameAddr, Via};
use super::message::{Headers, Method, RawMessage, StartLine};
use super::uri::Uri;
use super::Text;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    /// The Request-URI exactly as sent.
    pub uri_text: String,
    /// All rows, for echoing.
    pub headers: Headers,
    pub body: Bytes,
    /// Every Via value of every row, parsed, top first.
    pub via: Vec<Via>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: Text,
    pub cseq: CSeq,
    /// `None` when absent or above 255.
    pub max_forwards: Option<u32>,
    /// The Expires header; overlarge values clamp to `u32::MAX`.
    pub expires: Option<u32>,
    /// `None` when there is no Contact row.
    pub contact: Option<ContactSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 400, 416, 420, 501 or 505.
    pub code: u16,
    /// The reason phrase to send, precise for 400s ("Missing Call-ID", "Invalid CSeq", ...).
    pub reason: String,
    /// For 420: the option tags for the Unsupported header, comma-separated.
    pub unsupported: Option<String>,
}

/// A request [`Request::check`] refused, with its rows for the answer to echo.
#[derive(Debug)]
pub struct Refused {
    pub rejection: Rejection,
    pub headers: Headers,
}

impl Rejection {
    fn new(code: u16, reason: impl Into<String>) -> Rejection {
        Rejection { code, reason: reason.into(), unsupported: None }
    }

    fn bad(reason: impl Into<String>) -> Rejection {
        Rejection::new(400, reason)
    }
}

impl Request {
    /// Checks, in order: the version (SIP/2.0, else 505); Via (at least one), From, To, Call-ID and
    /// CSeq present exactly once and Max-Forwards at most once (400 "Missing X" / "Duplicate
    /// X"); each of them, Expires and Contact parse (400 "Invalid X"); the CSeq method equals the
    /// request method (400, or 501 for an extension method, RFC 4475 mismatch02); the
    /// Request-URI parses (400) and is sip/sips (else 416); every Require option tag is in
    /// `supported` (else 420 with the unsupported tags; not for ACK and CANCEL). Content-Length
    /// was checked by the framer. Whether the method is served (405/501) is the dispatcher's call.
    pub fn from_raw(raw: RawMessage, supported: &[&str]) -> Result<Request, Rejection> {
        Request::check(raw, supported).map_err(|refused| refused.rejection)
    }

    /// [`Request::from_raw`], but a refused request gives its header rows back, for the rejection
    /// to echo (so the accepted ones, nearly all, need no copy of them).
    pub fn check(raw: RawMessage, supported: &[&str]) -> Result<Request, Refused> {
        let RawMessage { start, mut headers, body } = raw;
        match Request::typed(start, &mut headers, body, supported) {
            Ok(req) => Ok(req),
            Err(rejection) => Err(Refused { rejection, headers }),
        }
    }

    /// The checks of [`Request::from_raw`]; on success the rows move from `rows` into the request.
    fn typed(start: StartLine, rows: &mut Headers, body: Bytes, supported: &[&str]) -> Result<Request, Rejection> {
        let StartLine::Request { method, uri: uri_text, version } = start else {
            return Err(Rejection::bad("Not a Request"));
        };
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(Rejection::new(505, "Version Not Supported"));
        }
        let headers = &*rows;
        let index = RowIndex::of(headers);
        index.check_presence()?;
        let from = NameAddr::parse(index.value(FROM)).map_err(|_| invalid("From"))?;
        let to = NameAddr::parse(index.value(TO)).map_err(|_| invalid("To"))?;
        let call_id = index.value(CALL_ID);
        if call_id.is_empty() || call_id.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(invalid("Call-ID"));
        }
        let call_id = Text::from(call_id);
        let cseq = CSeq::parse(index.value(CSEQ)).map_err(|_| invalid("CSeq"))?;
        let max_forwards = match index.optional(MAX_FORWARDS) {
            None => None,
            // Above 255: as if absent (RFC 4475 §3.1.2.4).
            Some(v) => Some(parse_u32_saturating(v).ok_or_else(|| invalid("Max-Forwards"))?).filter(|&n| n <= 255),
        };
        let expires =
            index.optional(EXPIRES).map(|v| parse_u32_saturating(v).ok_or_else(|| invalid("Expires"))).transpose()?;
        let contact = index.contact(headers)?;
        if cseq.method != method {
            return Err(match method {
                Method::Extension(_) => Rejection::new(501, "Not Implemented"),
                _ => Rejection::bad("CSeq Method Mismatch"),
            });
        }
        let uri = request_uri(&uri_text)?;
        if index.count(REQUIRE) > 0 && !matches!(method, Method::Ack | Method::Cancel) {
            check_require(headers, supported)?;
        }
        let RowIndex { via, .. } = index;
        Ok(Request {
            method,
            uri,
            uri_text,
            headers: std::mem::take(rows),
            body,
            via,
            from,
            to,
            call_id,
            cseq,
            max_forwards,
            expires,
            contact,
        })
    }

    /// The first Via value (from_raw guarantees there is one).
    pub fn top_via(&self) -> &Via {
        &self.via[0]
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

const VIA: usize = 0;
const FROM: usize = 1;
const TO: usize = 2;
const CALL_ID: usize = 3;
const CSEQ: usize = 4;
const MAX_FORWARDS: usize = 5;
const EXPIRES: usize = 6;
const CONTACT: usize = 7;
const REQUIRE: usize = 8;
const SLOTS: usize = 9;

/// The headers from_raw reads. Rows from the parser carry canonical names; other spellings
/// (any case, compact) are matched too.
fn slot(name: &str) -> Option<usize> {
    let is = |c: &str| name.eq_ignore_ascii_case(c);
    Some(match name.len() {
        1 => match name.as_bytes()[0].to_ascii_lowercase() {
            b'v' => VIA,
            b'f' => FROM,
            b't' => TO,
            b'i' => CALL_ID,
            b'm' => CONTACT,
            _ => return None,
        },
        2 if is("To") => TO,
        3 if is("Via") => VIA,
        4 if is("From") => FROM,
        4 if is("CSeq") => CSEQ,
        7 if is("Call-ID") => CALL_ID,
        7 if is("Contact") => CONTACT,
        7 if is("Expires") => EXPIRES,
        7 if is("Require") => REQUIRE,
        12 if is("Max-Forwards") => MAX_FORWARDS,
        _ => return None,
    })
}

/// 400 "Invalid X".
fn invalid(name: &str) -> Rejection {
    Rejection::bad(format!("Invalid {name}"))
}

/// Where each header [`Request::check`] reads is and how often it occurs, found in one pass over
/// the rows, with the Via values parsed on the way (a Via error is reported after the presence
/// checks, as documented).
struct RowIndex<'a> {
    /// Per slot: how many rows, and the first row's value.
    seen: [(usize, &'a str); SLOTS],
    via: Vec<Via>,
    via_ok: bool,
}

impl<'a> RowIndex<'a> {
    fn of(headers: &'a Headers) -> RowIndex<'a> {
        let mut index = RowIndex { seen: [(0, ""); SLOTS], via: Vec::with_capacity(2), via_ok: true };
        for h in headers.iter() {
            if let Some(s) = slot(h.name) {
                if index.seen[s].0 == 0 {
                    index.seen[s].1 = h.value;
                }
                index.seen[s].0 += 1;
                if s == VIA && index.via_ok {
                    index.via_ok = Via::parse_list_into(h.value, &mut index.via).is_ok();
                }
            }
        }
        index
    }

    fn count(&self, slot: usize) -> usize {
        self.seen[slot].0
    }

    /// The first row's value.
    fn value(&self, slot: usize) -> &'a str {
        self.seen[slot].1
    }

    /// The value of a header that may be absent.
    fn optional(&self, slot: usize) -> Option<&'a str> {
        (self.count(slot) > 0).then(|| self.value(slot))
    }

    /// Via at least once; From, To, Call-ID and CSeq exactly once; Max-Forwards and Expires at
    /// most once (400 "Missing X" / "Duplicate X"); then Via's syntax (400 "Invalid Via").
    fn check_presence(&self) -> Result<(), Rejection> {
        if self.count(VIA) == 0 {
            return Err(Rejection::bad("Missing Via"));
        }
        for (s, name) in [(FROM, "From"), (TO, "To"), (CALL_ID, "Call-ID"), (CSEQ, "CSeq")] {
            match self.count(s) {
                0 => return Err(Rejection::bad(format!("Missing {name}"))),
                1 => {}
                _ => return Err(Rejection::bad(format!("Duplicate {name}"))),
            }
        }
        for (s, name) in [(MAX_FORWARDS, "Max-Forwards"), (EXPIRES, "Expires")] {
            if self.count(s) > 1 {
                return Err(Rejection::bad(format!("Duplicate {name}")));
            }
        }
        match self.via_ok {
            true => Ok(()),
            false => Err(invalid("Via")),
        }
    }

    /// Every Contact row, parsed as one list; `None` when there is none.
    fn contact(&self, headers: &Headers) -> Result<Option<ContactSpec>, Rejection> {
        let parsed = match self.count(CONTACT) {
            0 => return Ok(None),
            1 => ContactSpec::parse_rows(std::iter::once(self.value(CONTACT))),
            _ => ContactSpec::parse_rows(headers.iter().filter(|h| slot(h.name) == Some(CONTACT)).map(|h| h.value)),
        };
        parsed.map(Some).map_err(|_| invalid("Contact"))
    }
}

/// The Request-URI: it parses (else 400), is sip or sips (else 416) and has no `?headers` (400).
fn request_uri(text: &str) -> Result<Uri, Rejection> {
    match Uri::parse(text) {
        Err(_) => Err(invalid("Request-URI")),
        Ok(Uri::Other { .. }) => Err(Rejection::new(416, "Unsupported URI Scheme")),
        Ok(Uri::Sip(u)) if u.headers.is_some() => Err(invalid("Request-URI")),
        Ok(u) => Ok(u),
    }
}

/// Every Require option tag must be one of `supported`: else 420 listing the others.
fn check_require(headers: &Headers, supported: &[&str]) -> Result<(), Rejection> {
    let mut unsupported: Vec<&str> = Vec::new();
    for tag in headers.get_all("Require").flat_map(|r| r.split(',')) {
        let tag = tag.trim_matches([' ', '\t']);
        if !tag.is_empty() && !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)) && !unsupported.contains(&tag) {
            unsupported.push(tag);
        }
    }
    match unsupported.is_empty() {
        true => Ok(()),
        false => {
            Err(Rejection { code: 420, reason: "Bad Extension".into(), unsupported: Some(unsupported.join(", ")) })
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod torture;
