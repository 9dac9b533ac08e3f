//! SIP and SIPS URIs (RFC 3261 §19.1, §25.1) with IPv6 references (RFC 5118), and other schemes
//! kept opaque (`tel:`, `isbn:`, `soap.beep:` ...: the validator answers those with 416).
//!
//! The userinfo ends at the first `@`: `user` may hold `;`, `?`, `/`, `,` (RFC 4475 `intmeth`,
//! `semiuri`) and dots. `user` and `password` are stored unescaped (`%00` stays a NUL, no
//! recursive unescaping); parameter names are unescaped and lowercased, parameter values and the
//! `?headers` part are kept as sent.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memchr;

use super::{Param, Text};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URI: {0}")]
pub struct UriError(pub &'static str);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name, lowercased.
    Name(Text),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host {
    /// A host as written in a URI or Via: name, dotted IPv4, or `[IPv6]`. RFC 5118 §4.10's
    /// `[2001:db8:::192.0.2.1]` (RFC 3261's ABNF bug) is tolerated as `2001:db8::192.0.2.1`.
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError("unclosed IPv6 reference"))?;
            return parse_v6(inner).map(Host::V6).ok_or(UriError("bad IPv6 address"));
        }
        if s.is_empty() {
            return Err(UriError("empty host"));
        }
        let (mut numeric, mut upper, mut colon, mut bad) = (true, false, false, false);
        for &b in s.as_bytes() {
            match b {
                b'0'..=b'9' | b'.' => {}
                b'a'..=b'z' | b'-' | b'_' => numeric = false,
                b'A'..=b'Z' => (numeric, upper) = (false, true),
                b':' => colon = true,
                _ => bad = true,
            }
        }
        if colon {
            return Err(UriError("IPv6 address without []"));
        }
        if bad {
            return Err(UriError("bad host name"));
        }
        if numeric {
            return s.parse().map(Host::V4).map_err(|_| UriError("bad IPv4 address"));
        }
        let mut name = Text::from(s);
        if upper {
            name.make_ascii_lowercase();
        }
        Ok(Host::Name(name))
    }

    /// The host of a Via `received` value or similar: IPv6 with or without brackets.
    pub fn parse_lenient(s: &str) -> Result<Host, UriError> {
        if !s.starts_with('[') && s.contains(':') {
            return parse_v6(s).map(Host::V6).ok_or(UriError("bad IPv6 address"));
        }
        Host::parse(s)
    }
}

fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    // RFC 5118 §4.10: "2001:db8:::192.0.2.1" must be tolerated.
    let i = s.find(":::")?;
    let tail = &s[i + 3..];
    if !tail.contains('.') || tail.contains(':') {
        return None;
    }
    format!("{}{}", &s[..i + 1], &s[i + 2..]).parse().ok()
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]` (host may be `[IPv6]`).
pub(crate) fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let close = memchr(b']', s.as_bytes()).ok_or(UriError("unclosed IPv6 reference"))?;
        match &s[close + 1..] {
            "" => (&s[..=close], None),
            rest => (&s[..=close], Some(rest.strip_prefix(':').ok_or(UriError("junk after IPv6 reference"))?)),
        }
    } else {
        match memchr(b':', s.as_bytes()) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or_else(|| {
            if host.starts_with('[') {
                UriError("bad port")
            } else {
                UriError("bad port or IPv6 address without []")
            }
        })?),
    };
    Ok((Host::parse(host)?, port))
}

pub(crate) fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:`
    pub secure: bool,
    /// Unescaped (`%HH` decoded); may contain `;` (RFC 4475 semiuri) and `.`.
    pub user: Option<Text>,
    pub password: Option<Text>,
    pub host: Host,
    pub port: Option<u16>,
    /// Names unescaped and lowercased, values as sent.
    pub params: Vec<Param>,
    /// The text after `?`, raw.
    pub headers: Option<Text>,
}

impl SipUri {
    /// Parses a `sip:` or `sips:` URI (scheme in any case).
    pub fn parse(s: &str) -> Result<SipUri, UriError> {
        check_chars(s)?;
        let b = s.as_bytes();
        let (secure, rest) = if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"sip:") {
            (false, &s[4..])
        } else if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"sips:") {
            (true, &s[5..])
        } else {
            return Err(UriError("not a sip or sips URI"));
        };
        Self::parse_rest(secure, rest)
    }

    /// After `sip:`/`sips:`, characters already checked.
    fn parse_rest(secure: bool, rest: &str) -> Result<SipUri, UriError> {
        let (userinfo, hostpart) = match memchr(b'@', rest.as_bytes()) {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match memchr(b':', ui.as_bytes()) {
                    Some(i) => (&ui[..i], Some(&ui[i + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError("empty user"));
                }
                (Some(unescape(u)?), p.map(unescape).transpose()?)
            }
        };
        let hp_end = memchr::memchr2(b';', b'?', hostpart.as_bytes()).unwrap_or(hostpart.len());
        let (host, port) = parse_host_port(&hostpart[..hp_end])?;
        let mut tail = &hostpart[hp_end..];
        let mut params = Vec::new();
        if let Some(p) = tail.strip_prefix(';') {
            let end = memchr(b'?', p.as_bytes()).unwrap_or(p.len());
            for item in p[..end].split(';') {
                let (name, value) = match item.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (item, None),
                };
                if name.is_empty() || value == Some("") {
                    return Err(UriError("empty URI parameter"));
                }
                let mut name = unescape(name)?;
                name.make_ascii_lowercase();
                params.push((name, value.map(Text::from)));
            }
            tail = &p[end..];
        }
        let headers = tail.strip_prefix('?').map(Text::from);
        Ok(SipUri { secure, user, password, host, port, params, headers })
    }

    /// `Some(None)` for a parameter without value, `None` when absent. Name case-insensitive.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }

    /// The `transport` parameter's value, as sent.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// `host[:port]`, IPv6 in brackets.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

/// Rejects what can never appear in a URI: whitespace, controls, `<`, `>`, `"`.
fn check_chars(s: &str) -> Result<(), UriError> {
    if s.is_empty() {
        return Err(UriError("empty"));
    }
    if s.starts_with('<') {
        return Err(UriError("URI in angle brackets"));
    }
    match s.bytes().find(|&b| b <= b' ' || b >= 0x7f || matches!(b, b'<' | b'>' | b'"')) {
        Some(b' ' | b'\t') => Err(UriError("embedded whitespace")),
        Some(_) => Err(UriError("forbidden character")),
        None => Ok(()),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%HH` once (no recursion). Invalid UTF-8 after decoding is replaced (lossy).
fn unescape(s: &str) -> Result<Text, UriError> {
    if !s.contains('%') {
        return Ok(Text::from(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_val);
            let lo = b.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(UriError("bad %-escape")),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(Text::from(String::from_utf8_lossy(&out).as_ref()))
}

/// Writes `s` escaping every byte outside `unreserved` and `extra`.
fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str, extra: &[u8]) -> fmt::Result {
    for &b in s.as_bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) || extra.contains(&b);
        if plain {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            write_escaped(f, user, b"&=+$,;?/")?;
            if let Some(pw) = &self.password {
                f.write_str(":")?;
                write_escaped(f, pw, b"&=+$,")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            f.write_str(";")?;
            write_escaped(f, n, b"[]/:&+$")?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    /// Any other scheme, kept opaque: `scheme` as sent, `rest` after the first `:`.
    Other {
        scheme: String,
        rest: String,
    },
}

impl Uri {
    /// A URI with no surrounding `<>` and no whitespace. `sip:2001:db8::10` (IPv6 without `[]`)
    /// is an error (RFC 5118 §4.2).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        check_chars(s)?;
        let colon = memchr(b':', s.as_bytes()).ok_or(UriError("no scheme"))?;
        let scheme = &s[..colon];
        let b = scheme.as_bytes();
        if b.is_empty()
            || !b[0].is_ascii_alphabetic()
            || !b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(UriError("bad scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_rest(colon == 4, &s[colon + 1..]).map(Uri::Sip);
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err(UriError("empty URI after the scheme"));
        }
        Ok(Uri::Other { scheme: scheme.to_owned(), rest: rest.to_owned() })
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => write!(f, "{u}"),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        SipUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn basic_forms() {
        let u = sip("sip:1001@pbx.Example.COM:5061;transport=tls;lr");
        assert_eq!(u.user.as_deref(), Some("1001"));
        assert_eq!(u.host, Host::Name("pbx.example.com".into()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tls"));
        assert_eq!(u.param("LR"), Some(None));
        assert_eq!(u.param("maddr"), None);
        assert_eq!(u.host_port(), "pbx.example.com:5061");
        assert_eq!(u.to_string(), "sip:1001@pbx.example.com:5061;transport=tls;lr");
        let u = sip("SIPS:j.user@192.0.2.1");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("j.user"));
        assert_eq!(u.host, Host::V4("192.0.2.1".parse().unwrap()));
        let u = sip("sip:alice:secret@example.com?subject=hi&priority=urgent");
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.headers.as_deref(), Some("subject=hi&priority=urgent"));
        assert_eq!(u.to_string(), "sip:alice:secret@example.com?subject=hi&priority=urgent");
    }

    #[test]
    fn escapes_and_odd_users() {
        // RFC 4475 semiuri: the user is `user;par=u@example.net`.
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u@example.net"));
        assert_eq!(u.host, Host::Name("example.com".into()));
        assert_eq!(u.to_string(), "sip:user;par=u%40example.net@example.com");
        // esc01: no recursive unescaping; parameter names unescaped, values as sent.
        let u = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(u.user.as_deref(), Some("caller"));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.param("name"), Some(Some("v%61lue%25%34%31")));
        // escnull: %00 is a NUL in the user, not a terminator.
        let a = sip("sip:%00@host5.example.com");
        let b = sip("sip:%00%00@host5.example.com");
        assert_eq!(a.user.as_deref(), Some("\0"));
        assert_eq!(b.user.as_deref(), Some("\0\0"));
        assert_eq!(b.to_string(), "sip:%00%00@host5.example.com");
        // intmeth: `?`, `;`, `/`, `,` and a password in the userinfo.
        let u = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(u.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
        assert_eq!(u.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
        assert!(SipUri::parse("sip:a%zz@b").is_err());
    }

    #[test]
    fn ipv6_rfc5118() {
        let u = sip("sip:[2001:db8::10]");
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, None);
        let u = sip("sip:[2001:db8::10]:5070");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.host_port(), "[2001:db8::10]:5070");
        // §4.3: the "port" inside the brackets is part of the address.
        let u = sip("sip:[2001:db8::10:5070]");
        assert_eq!(u.host, Host::V6("2001:db8::10:5070".parse().unwrap()));
        assert_eq!(u.port, None);
        // §4.10, both forms.
        assert_eq!(sip("sip:user@[2001:db8:::192.0.2.1]").host, Host::V6("2001:db8::192.0.2.1".parse().unwrap()));
        assert_eq!(sip("sip:user@[2001:db8::192.0.2.1]").host, Host::V6("2001:db8::192.0.2.1".parse().unwrap()));
        assert_eq!(sip("sip:ted@[::ffff:192.0.2.2]").host, Host::V6("::ffff:192.0.2.2".parse().unwrap()));
        // §4.2: no brackets.
        assert!(SipUri::parse("sip:2001:db8::10").is_err());
        assert!(SipUri::parse("sip:[2001:db8::10").is_err());
        assert!(SipUri::parse("sip:[2001:db8::10]x").is_err());
        assert_eq!(Host::parse_lenient("2001:db8::9:255").unwrap(), Host::V6("2001:db8::9:255".parse().unwrap()));
        assert_eq!(Host::parse_lenient("[2001:db8::9:255]").unwrap(), Host::V6("2001:db8::9:255".parse().unwrap()));
    }

    #[test]
    fn other_schemes_and_errors() {
        assert_eq!(
            Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").unwrap(),
            Uri::Other { scheme: "nobodyKnowsThisScheme".into(), rest: "totallyopaquecontent".into() }
        );
        assert!(matches!(Uri::parse("soap.beep://192.0.2.103:3002").unwrap(), Uri::Other { .. }));
        assert!(matches!(Uri::parse("tel:+15551234").unwrap(), Uri::Other { .. }));
        assert!(matches!(Uri::parse("SIP:a@b").unwrap(), Uri::Sip(_)));
        for bad in [
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:user@example.com ",
            "",
            "sip:",
            "sip:@example.com",
            "sip:user@",
            "sip:user@host:99999",
            "sip:user@host:",
            "sip:user@host;;lr",
            "sip:user@host;transport=",
            "sip:user@ho st",
            "sip:user@256.1.1.1",
            "nocolon",
            "1abc:foo",
            "x:",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
