//! Typed parsers for the header values a registrar reads: Via, name-addr (From, To, Contact),
//! CSeq, Contact lists, and digest credentials and challenges.
//!
//! Input is the unfolded value from [`super::message::Headers`]. The grammar is RFC 3261 §25.1
//! with its LWS rules: whitespace is allowed around `;`, `=`, `,`, `/` and `:` separators;
//! parameter values may be tokens, hosts (`[v6]` included) or quoted strings (stored unquoted,
//! escapes removed). Parameter names are lowercased. Nothing here re-serialises what it parsed:
//! the raw header values stay available for echoing and hashing.

mod digest;
mod name_addr;
mod via;

pub use digest::{DigestAlgorithm, DigestChallenge, DigestCredentials};
pub use name_addr::{Contact, ContactSpec, NameAddr};
pub use via::Via;

use std::borrow::Cow;

use super::message::{is_token_byte, Method};
use super::{Param, Text};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {header} header: {reason}")]
pub struct HeaderError {
    pub header: &'static str,
    pub reason: &'static str,
}

impl HeaderError {
    pub(crate) const fn new(header: &'static str, reason: &'static str) -> HeaderError {
        HeaderError { header, reason }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    /// `1*DIGIT LWS Method`. Leading zeros are fine; above 2^32-1 is an error (RFC 4475 scalar02).
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        const E: &str = "CSeq";
        let mut sc = Scanner::new(value);
        sc.skip_ws();
        let digits = sc.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(HeaderError::new(E, "sequence number is not a number"));
        }
        let seq = parse_u32(digits).ok_or(HeaderError::new(E, "sequence number above 2^32-1"))?;
        if sc.skip_ws() == 0 {
            return Err(HeaderError::new(E, "no space before the method"));
        }
        let method = Method::parse(sc.token()).ok_or(HeaderError::new(E, "bad method"))?;
        sc.skip_ws();
        if !sc.at_end() {
            return Err(HeaderError::new(E, "junk after the method"));
        }
        Ok(CSeq { seq, method })
    }
}

/// Decimal digits to u32; `None` if empty, not digits, or overflowing.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |n, d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// Decimal digits to u32, clamping overlarge values to `u32::MAX` (delta-seconds).
pub(crate) fn parse_u32_saturating(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(parse_u32(s).unwrap_or(u32::MAX))
}

/// A parameter as [`Scanner::next_param`] returns it: name as sent, value unquoted.
pub(crate) type BorrowedParam<'a> = (&'a str, Option<Cow<'a, str>>);

/// A byte cursor over a header value. Every position it stops at is an ASCII delimiter or the
/// end, so slicing the `&str` is always on a char boundary.
pub(crate) struct Scanner<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a str) -> Scanner<'a> {
        Scanner { s, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Skips SP/HT; returns how many.
    pub(crate) fn skip_ws(&mut self) -> usize {
        self.take_while(|b| b == b' ' || b == b'\t').len()
    }

    /// Consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `f` must only accept ASCII bytes.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let rest = &self.s.as_bytes()[start..];
        self.pos += rest.iter().position(|&b| !(b.is_ascii() && f(b))).unwrap_or(rest.len());
        &self.s[start..self.pos]
    }

    pub(crate) fn token(&mut self) -> &'a str {
        self.take_while(is_token_byte)
    }

    /// At a `"`: the quoted-string's content with `\`-escapes removed. `None` if unterminated.
    pub(crate) fn quoted(&mut self) -> Option<Text> {
        self.quoted_cow().map(|q| Text::from(q.as_ref()))
    }

    /// [`Self::quoted`] without an allocation when there is no escape.
    pub(crate) fn quoted_cow(&mut self) -> Option<Cow<'a, str>> {
        let b = self.s.as_bytes();
        if b.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let stop = start + memchr::memchr2(b'"', b'\\', &b[start..])?;
        if b[stop] == b'"' {
            self.pos = stop + 1;
            return Some(Cow::Borrowed(&self.s[start..stop]));
        }
        let mut out = b[start..stop].to_vec();
        let mut i = stop;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    self.pos = i + 1;
                    // Only ASCII bytes were removed, so `out` is valid UTF-8 if the input was.
                    return Some(Cow::Owned(
                        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    ));
                }
                b'\\' if i + 1 < b.len() => {
                    out.push(b[i + 1]);
                    i += 2;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        None
    }

    /// A parameter value: a quoted string (unquoted) or a run of anything but whitespace, `;`,
    /// `,` and `"` (tokens, hosts, `[v6]`, bare IPv6).
    pub(crate) fn param_value(&mut self) -> Option<Cow<'a, str>> {
        if self.peek() == Some(b'"') {
            return self.quoted_cow();
        }
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(b, b' ' | b'\t' | b';' | b',' | b'"') {
                break;
            }
            self.pos += 1;
            // Skip the continuation bytes of a UTF-8 sequence so we never stop inside one.
            while self.peek().is_some_and(|c| c & 0xC0 == 0x80) {
                self.pos += 1;
            }
        }
        (self.pos > start).then(|| Cow::Borrowed(&self.s[start..self.pos]))
    }

    /// `*( SWS ";" SWS name [ SWS "=" SWS value ] )`, stopping (without consuming) at the end or,
    /// when `stop_at_comma`, at a `,`. Empty parameters (`;;`) and a trailing `;` are errors.
    /// Names lowercased, values unquoted.
    pub(crate) fn params(&mut self, stop_at_comma: bool, header: &'static str) -> Result<Vec<Param>, HeaderError> {
        let mut out = Vec::new();
        while let Some((name, value)) = self.next_param(stop_at_comma, header)? {
            out.push((lowercase(name), value.map(|v| Text::from(v.as_ref()))));
        }
        Ok(out)
    }

    /// One parameter of [`Self::params`], borrowed (name as sent).
    pub(crate) fn next_param(
        &mut self,
        stop_at_comma: bool,
        header: &'static str,
    ) -> Result<Option<BorrowedParam<'a>>, HeaderError> {
        self.skip_ws();
        match self.peek() {
            None => return Ok(None),
            Some(b',') if stop_at_comma => return Ok(None),
            Some(b';') => self.pos += 1,
            Some(_) => return Err(HeaderError::new(header, "junk where a parameter was expected")),
        }
        self.skip_ws();
        let name = self.token();
        if name.is_empty() {
            return Err(HeaderError::new(header, "empty parameter"));
        }
        let save = self.pos;
        self.skip_ws();
        let value = if self.eat(b'=') {
            self.skip_ws();
            Some(self.param_value().ok_or(HeaderError::new(header, "bad parameter value"))?)
        } else {
            self.pos = save;
            None
        };
        Ok(Some((name, value)))
    }
}

/// `s` lowercased (ASCII), inline when short.
pub(crate) fn lowercase(s: &str) -> Text {
    let mut t = Text::from(s);
    t.make_ascii_lowercase();
    t
}

/// Looks a parameter up by (lowercase) name.
pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        assert_eq!(CSeq::parse("2 REGISTER").unwrap(), CSeq { seq: 2, method: Method::Register });
        assert_eq!(CSeq::parse("0009 INVITE").unwrap().seq, 9);
        assert_eq!(CSeq::parse("  4294967295\t  OPTIONS ").unwrap().seq, u32::MAX);
        assert_eq!(CSeq::parse("29344 RE%47IST%45R").unwrap().method, Method::Extension("RE%47IST%45R".into()));
        for bad in [
            "4294967296 INVITE",
            "36893488147419103232 REGISTER",
            "INVITE",
            "1",
            "1INVITE",
            "1 INVITE x",
            "-1 INVITE",
            "",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scanner_params() {
        let mut sc = Scanner::new(" ;  tag    = 1918181833n ; lr ;x=\"a;b\\\"c\" , next");
        let p = sc.params(true, "T").unwrap();
        assert_eq!(
            p,
            vec![("tag".into(), Some("1918181833n".into())), ("lr".into(), None), ("x".into(), Some("a;b\"c".into())),]
        );
        assert_eq!(sc.peek(), Some(b','));
        assert!(Scanner::new(";;").params(false, "T").is_err());
        assert!(Scanner::new(";a;").params(false, "T").is_err());
        assert!(Scanner::new(";a=").params(false, "T").is_err());
        assert!(Scanner::new(";a=\"open").params(false, "T").is_err());
        assert!(Scanner::new(" x").params(false, "T").is_err());
        assert_eq!(parse_u32_saturating("10000000000000000000000"), Some(u32::MAX));
        assert_eq!(parse_u32_saturating("12a"), None);
    }
}
