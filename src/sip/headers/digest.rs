//! Digest credentials (Authorization, Proxy-Authorization) and challenges (WWW-Authenticate,
//! Proxy-Authenticate): RFC 3261 §25.1, RFC 7616 and RFC 8760 algorithm names.
//!
//! Unlike rsip 0.4.0: `nc` is 8 hex digits (`0000000a` = 10, `00000100` = 256), `SHA-256` and
//! `SHA-512-256` (and their `-sess` forms) are known, the digest `uri` is kept exactly as quoted
//! (the response is computed over it), LWS is allowed around `=` and `,`, quoted strings may hold
//! `\`-escapes, and unknown parameters are ignored.

use std::borrow::Cow;
use std::fmt;

use super::{HeaderError, Scanner};
use crate::sip::Text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl DigestAlgorithm {
    /// Case-insensitive RFC 8760 names.
    pub fn parse(s: &str) -> Option<Self> {
        const ALL: [DigestAlgorithm; 6] = [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
            DigestAlgorithm::Sha512_256,
            DigestAlgorithm::Sha512_256Sess,
        ];
        ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
            DigestAlgorithm::Sha512_256 => "SHA-512-256",
            DigestAlgorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: Text,
    pub realm: Text,
    pub nonce: Text,
    /// Exactly as quoted by the client (never re-rendered).
    pub uri: Text,
    pub response: Text,
    /// `MD5` when absent.
    pub algorithm: DigestAlgorithm,
    pub cnonce: Option<Text>,
    pub qop: Option<Text>,
    /// Parsed as hex (RFC 7616: 8 hex digits).
    pub nc: Option<u32>,
    pub opaque: Option<Text>,
}

impl DigestCredentials {
    /// A whole Authorization / Proxy-Authorization value. A scheme other than `Digest` (any case)
    /// is an error (RFC 4475 regaut01: the caller treats it as no credentials). username, realm,
    /// nonce, uri and response are required; with `qop`, `cnonce` and `nc` are too.
    pub fn parse(value: &str) -> Result<DigestCredentials, HeaderError> {
        const E: &str = "Authorization";
        let mut sc = Scanner::new(value);
        let params = auth_params(&mut sc, E, false)?;
        let mut c = DigestCredentials {
            username: Text::default(),
            realm: Text::default(),
            nonce: Text::default(),
            uri: Text::default(),
            response: Text::default(),
            algorithm: DigestAlgorithm::Md5,
            cnonce: None,
            qop: None,
            nc: None,
            opaque: None,
        };
        let mut seen = 0u16;
        for (name, value) in params {
            let bit = match name {
                n if n.eq_ignore_ascii_case("username") => 0,
                n if n.eq_ignore_ascii_case("realm") => 1,
                n if n.eq_ignore_ascii_case("nonce") => 2,
                n if n.eq_ignore_ascii_case("uri") => 3,
                n if n.eq_ignore_ascii_case("response") => 4,
                n if n.eq_ignore_ascii_case("algorithm") => 5,
                n if n.eq_ignore_ascii_case("cnonce") => 6,
                n if n.eq_ignore_ascii_case("qop") => 7,
                n if n.eq_ignore_ascii_case("nc") => 8,
                n if n.eq_ignore_ascii_case("opaque") => 9,
                _ => continue,
            };
            if seen & (1 << bit) != 0 {
                return Err(HeaderError::new(E, "duplicate parameter"));
            }
            seen |= 1 << bit;
            let text = || Text::from(value.as_ref());
            match bit {
                0 => c.username = text(),
                1 => c.realm = text(),
                2 => c.nonce = text(),
                3 => c.uri = text(),
                4 => c.response = text(),
                5 => c.algorithm = DigestAlgorithm::parse(&value).ok_or(HeaderError::new(E, "unknown algorithm"))?,
                6 => c.cnonce = Some(text()),
                7 => c.qop = Some(text()),
                8 => c.nc = Some(parse_nc(&value).ok_or(HeaderError::new(E, "bad nc"))?),
                _ => c.opaque = Some(text()),
            }
        }
        if seen & 0b1_1111 != 0b1_1111 {
            return Err(HeaderError::new(E, "missing username, realm, nonce, uri or response"));
        }
        if c.qop.is_some() && (c.cnonce.is_none() || c.nc.is_none()) {
            return Err(HeaderError::new(E, "qop without cnonce or nc"));
        }
        Ok(c)
    }
}

/// nc-value = 8LHEX (1 to 8 hex digits accepted).
fn parse_nc(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    /// `MD5` when absent.
    pub algorithm: DigestAlgorithm,
    /// The qop options offered (`qop="auth,auth-int"` gives two).
    pub qop: Vec<String>,
    pub opaque: Option<String>,
    pub stale: bool,
}

impl DigestChallenge {
    /// The first Digest challenge of a WWW-Authenticate / Proxy-Authenticate value (a following
    /// challenge of another scheme in the same row is ignored). realm and nonce are required.
    pub fn parse(value: &str) -> Result<DigestChallenge, HeaderError> {
        const E: &str = "WWW-Authenticate";
        let mut sc = Scanner::new(value);
        let params = auth_params(&mut sc, E, true)?;
        let mut ch = DigestChallenge {
            realm: String::new(),
            nonce: String::new(),
            algorithm: DigestAlgorithm::Md5,
            qop: Vec::new(),
            opaque: None,
            stale: false,
        };
        let (mut realm, mut nonce) = (false, false);
        for (name, value) in params {
            match name.to_ascii_lowercase().as_str() {
                "realm" => (ch.realm, realm) = (value.into_owned(), true),
                "nonce" => (ch.nonce, nonce) = (value.into_owned(), true),
                "algorithm" => {
                    ch.algorithm = DigestAlgorithm::parse(&value).ok_or(HeaderError::new(E, "unknown algorithm"))?
                }
                "qop" => {
                    ch.qop = value
                        .split(',')
                        .map(|q| q.trim_matches([' ', '\t']))
                        .filter(|q| !q.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "opaque" => ch.opaque = Some(value.into_owned()),
                "stale" => ch.stale = value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        if !realm || !nonce {
            return Err(HeaderError::new(E, "missing realm or nonce"));
        }
        Ok(ch)
    }
}

/// Renders a WWW-Authenticate / Proxy-Authenticate value: `Digest realm="..", nonce="..",
/// algorithm=SHA-256, qop="auth", opaque="..", stale=true` (qop and opaque only when set).
impl fmt::Display for DigestChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm=\"{}\", nonce=\"{}\", algorithm={}",
            escape(&self.realm),
            escape(&self.nonce),
            self.algorithm
        )?;
        if !self.qop.is_empty() {
            write!(f, ", qop=\"{}\"", escape(&self.qop.join(",")))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque=\"{}\"", escape(o))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['"', '\\']) {
        s.replace('\\', "\\\\").replace('"', "\\\"").into()
    } else {
        s.into()
    }
}

/// `scheme LWS auth-param *(COMMA auth-param)`; the scheme must be Digest. With `multi`
/// (challenges), stops at the start of a following challenge (`, Scheme param=...`). Values
/// unquoted.
fn auth_params<'a>(
    sc: &mut Scanner<'a>,
    header: &'static str,
    multi: bool,
) -> Result<Vec<(&'a str, Cow<'a, str>)>, HeaderError> {
    sc.skip_ws();
    if !sc.token().eq_ignore_ascii_case("Digest") {
        return Err(HeaderError::new(header, "scheme is not Digest"));
    }
    if sc.skip_ws() == 0 {
        return Err(HeaderError::new(header, "no parameters"));
    }
    let mut out = Vec::with_capacity(10);
    loop {
        sc.skip_ws();
        if sc.at_end() {
            break;
        }
        if sc.eat(b',') {
            continue; // empty list element
        }
        let save = sc.pos;
        let name = sc.token();
        if name.is_empty() {
            return Err(HeaderError::new(header, "bad auth-param"));
        }
        sc.skip_ws();
        if !sc.eat(b'=') {
            if multi && !out.is_empty() && sc.peek().is_some_and(|b| b != b',') {
                sc.pos = save; // the next challenge's scheme
                break;
            }
            return Err(HeaderError::new(header, "auth-param without ="));
        }
        sc.skip_ws();
        let value = if sc.peek() == Some(b'"') {
            sc.quoted_cow().ok_or(HeaderError::new(header, "unterminated quoted string"))?
        } else {
            let v = sc.take_while(|b| !matches!(b, b' ' | b'\t' | b',' | b'"'));
            if v.is_empty() {
                return Err(HeaderError::new(header, "empty auth-param value"));
            }
            Cow::Borrowed(v)
        };
        out.push((name, value));
        sc.skip_ws();
        if !sc.at_end() && !sc.eat(b',') {
            return Err(HeaderError::new(header, "junk after an auth-param"));
        }
    }
    if out.is_empty() {
        return Err(HeaderError::new(header, "no parameters"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "Digest username=\"1001\", realm=\"pbx.example.com\", nonce=\"7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c\", uri=\"sip:pbx.example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001";

    #[test]
    fn credentials() {
        let c = DigestCredentials::parse(PLAIN).unwrap();
        assert_eq!(c.username, "1001");
        assert_eq!(c.realm, "pbx.example.com");
        assert_eq!(c.nonce, "7c0f3b2c9d1e4f5a8b6c7d8e9f0a1b2c");
        assert_eq!(c.uri, "sip:pbx.example.com");
        assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(c.algorithm, DigestAlgorithm::Md5);
        assert_eq!(c.cnonce.as_deref(), Some("0a4f113b"));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.opaque, None);
        let v = |from: &str, to: &str| DigestCredentials::parse(&PLAIN.replace(from, to)).unwrap();
        assert_eq!(v("algorithm=MD5", "algorithm=SHA-256").algorithm, DigestAlgorithm::Sha256);
        assert_eq!(v("algorithm=MD5", "algorithm=\"sha-512-256-SESS\"").algorithm, DigestAlgorithm::Sha512_256Sess);
        assert_eq!(v("algorithm=MD5, ", "").algorithm, DigestAlgorithm::Md5);
        assert_eq!(v("nc=00000001", "nc=0000000a").nc, Some(10));
        assert_eq!(v("nc=00000001", "nc=00000100").nc, Some(256));
        assert_eq!(v("nc=00000001", "nc=FFFFFFFF").nc, Some(u32::MAX));
        assert_eq!(v("qop=auth", "qop=\"auth\"").qop.as_deref(), Some("auth"));
        assert_eq!(
            v("uri=\"sip:pbx.example.com\"", "uri=\"sip:pbx.example.com:5061;transport=tls\"").uri,
            "sip:pbx.example.com:5061;transport=tls"
        );
        assert_eq!(v("Digest username", "digest   username").username, "1001");
        assert_eq!(v(", ", " ,\t").realm, "pbx.example.com");
        assert_eq!(v("=", " = ").nc, Some(1));
        assert_eq!(v("username=\"1001\"", "username=\"a\\\"b\\\\c\"").username, "a\"b\\c");
        assert_eq!(v("qop=auth", "qop=auth, opaque=\"xyz\", userhash=false, ,").opaque.as_deref(), Some("xyz"));
        // RFC 2069 style: no qop.
        let c = v("cnonce=\"0a4f113b\", qop=auth, nc=00000001", "opaque=\"o\"");
        assert_eq!((c.qop, c.nc, c.cnonce), (None, None, None));
    }

    #[test]
    fn credential_errors() {
        assert!(DigestCredentials::parse("NoOneKnowsThisScheme opaque-data=here").is_err());
        assert!(DigestCredentials::parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").is_err());
        let bad =
            |from: &str, to: &str| assert!(DigestCredentials::parse(&PLAIN.replace(from, to)).is_err(), "{from}->{to}");
        bad("nc=00000001", "nc=000000001");
        bad("nc=00000001", "nc=0000000g");
        bad("algorithm=MD5", "algorithm=AKAv1-MD5");
        bad("username=\"1001\", ", "");
        bad("response=\"6629fae49393a05397450978507c4ef1\"", "response=\"6629");
        bad("cnonce=\"0a4f113b\", ", "");
        bad("realm=\"pbx.example.com\"", "realm=\"a\", realm=\"b\"");
        bad("qop=auth", "qop=");
        bad("qop=auth", "qop auth");
        bad("Digest ", "Digest");
        assert!(DigestCredentials::parse("Digest").is_err());
        assert!(DigestCredentials::parse("").is_err());
    }

    #[test]
    fn challenges() {
        let ch = DigestChallenge::parse("Digest realm=\"pbx.example.com\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth,auth-int\", opaque=\"xyz\", stale=TRUE").unwrap();
        assert_eq!(ch.realm, "pbx.example.com");
        assert_eq!(ch.nonce, "abc");
        assert_eq!(ch.algorithm, DigestAlgorithm::Sha256);
        assert_eq!(ch.qop, vec!["auth", "auth-int"]);
        assert_eq!(ch.opaque.as_deref(), Some("xyz"));
        assert!(ch.stale);
        assert_eq!(DigestChallenge::parse(&ch.to_string()).unwrap(), ch);
        let ch = DigestChallenge::parse("digest realm=\"r\",nonce=\"n\", Basic realm=\"x\"").unwrap();
        assert_eq!((&ch.algorithm, ch.qop.len(), ch.stale), (&DigestAlgorithm::Md5, 0, false));
        assert_eq!(ch.to_string(), "Digest realm=\"r\", nonce=\"n\", algorithm=MD5");
        assert!(DigestChallenge::parse("Digest realm=\"r\"").is_err());
        assert!(DigestChallenge::parse("Basic realm=\"r\"").is_err());
    }
}
