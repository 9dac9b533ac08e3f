//! name-addr / addr-spec (From, To, Contact; RFC 3261 §20.10, §25.1) and Contact lists with the
//! registrar's parameters (`expires`, `q`, RFC 5626 `+sip.instance` and `reg-id`).

use super::{find_param, parse_u32, parse_u32_saturating, HeaderError, Scanner};
use crate::sip::message::is_token_byte;
use crate::sip::uri::Uri;
use crate::sip::{Param, Text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Unquoted and unescaped when it was a quoted-string; tokens as sent otherwise.
    pub display_name: Option<Text>,
    pub uri: Uri,
    /// The URI exactly as sent (without the `<>`).
    pub uri_text: Text,
    /// Header parameters (`tag`, `expires`, ...): names lowercased, values unquoted.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// One name-addr or addr-spec with its parameters.
    ///
    /// * `"quoted" <uri>`, `tokens <uri>`, `caller<uri>` (no LWS, RFC 4475 lwsdisp) and `<uri>`.
    /// * An addr-spec without `<>` ends at the first `;`: what follows are header parameters
    ///   (RFC 4475 cparam01). Such a URI must not contain `,` or `?` (RFC 3261 §20: it MUST then
    ///   be enclosed; RFC 4475 regbadct is answered 400).
    /// * Errors: unterminated quote (quotbal), unquoted display name with non-token characters
    ///   (baddn), spaces inside `<>` (badaspec), empty parameters.
    pub fn parse(value: &str) -> Result<NameAddr, HeaderError> {
        let mut sc = Scanner::new(value);
        parse_name_addr(&mut sc, false, "name-addr")
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// `Some(None)` for a parameter without value, `None` when absent. Name case-insensitive.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

/// Parses a name-addr at the cursor. `in_list`: stop at a top-level `,` (Contact lists).
fn parse_name_addr(sc: &mut Scanner<'_>, in_list: bool, header: &'static str) -> Result<NameAddr, HeaderError> {
    sc.skip_ws();
    let display_name = match sc.peek() {
        Some(b'"') => {
            let dn = sc.quoted().ok_or(HeaderError::new(header, "unterminated quoted string"))?;
            sc.skip_ws();
            if sc.peek() != Some(b'<') {
                return Err(HeaderError::new(header, "display name without <URI>"));
            }
            Some(dn)
        }
        Some(b'<') => None,
        _ => {
            let start = sc.pos;
            sc.take_while(|b| is_token_byte(b) || b == b' ' || b == b'\t');
            if sc.peek() != Some(b'<') {
                sc.pos = start;
                return addr_spec(sc, in_list, header);
            }
            let dn = sc.s[start..sc.pos].trim_matches([' ', '\t']);
            (!dn.is_empty()).then(|| Text::from(dn))
        }
    };
    sc.eat(b'<');
    let start = sc.pos;
    sc.take_while(|b| b != b'>' && b != b'<');
    let uri_text = &sc.s[start..sc.pos];
    if !sc.eat(b'>') {
        return Err(HeaderError::new(header, "unclosed <"));
    }
    if uri_text.starts_with([' ', '\t']) || uri_text.ends_with([' ', '\t']) {
        return Err(HeaderError::new(header, "spaces inside <>"));
    }
    let uri = Uri::parse(uri_text).map_err(|_| HeaderError::new(header, "bad URI"))?;
    let params = sc.params(in_list, header)?;
    Ok(NameAddr { display_name, uri, uri_text: Text::from(uri_text), params })
}

fn addr_spec(sc: &mut Scanner<'_>, in_list: bool, header: &'static str) -> Result<NameAddr, HeaderError> {
    let start = sc.pos;
    while let Some(b) = sc.peek() {
        if b == b';' || (in_list && b == b',') {
            break;
        }
        sc.pos += 1;
        while sc.peek().is_some_and(|c| c & 0xC0 == 0x80) {
            sc.pos += 1;
        }
    }
    let uri_text = sc.s[start..sc.pos].trim_end_matches([' ', '\t']);
    if uri_text.contains([',', '?']) {
        return Err(HeaderError::new(header, "URI with , or ? not in <>"));
    }
    let uri = Uri::parse(uri_text).map_err(|_| HeaderError::new(header, "bad URI"))?;
    let params = sc.params(in_list, header)?;
    Ok(NameAddr { display_name: None, uri, uri_text: Text::from(uri_text), params })
}

/// One Contact value with the parameters the registrar uses, parsed (the raw ones stay in
/// `addr.params`).
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub addr: NameAddr,
    /// `expires` parameter; values above 2^32-1 are clamped to `u32::MAX` (the registrar caps).
    pub expires: Option<u32>,
    /// `q`, in 0..=1 (never NaN).
    pub q: Option<f32>,
    /// `+sip.instance` without its quotes, e.g. `<urn:uuid:...>`.
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
}

// `q` is parsed from the qvalue grammar and is never NaN, so equality is reflexive.
impl Eq for Contact {}

impl Contact {
    fn from_name_addr(addr: NameAddr) -> Result<Contact, HeaderError> {
        const E: &str = "Contact";
        let expires = match addr.param("expires") {
            None => None,
            Some(v) => Some(v.and_then(parse_u32_saturating).ok_or(HeaderError::new(E, "bad expires"))?),
        };
        let q = match addr.param("q") {
            None => None,
            Some(v) => Some(v.and_then(parse_q).ok_or(HeaderError::new(E, "bad q"))?),
        };
        let instance = match addr.param("+sip.instance") {
            None => None,
            Some(v) => Some(v.ok_or(HeaderError::new(E, "+sip.instance without value"))?.to_owned()),
        };
        let reg_id = match addr.param("reg-id") {
            None => None,
            Some(v) => Some(v.and_then(parse_u32).ok_or(HeaderError::new(E, "bad reg-id"))?),
        };
        Ok(Contact { addr, expires, q, instance, reg_id })
    }
}

/// qvalue: `0[.ddd]` or `1[.000]`.
fn parse_q(s: &str) -> Option<f32> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !matches!(int, "0" | "1") || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let q: f32 = s.parse().ok()?;
    (0.0..=1.0).contains(&q).then_some(q)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactSpec {
    /// `Contact: *` (alone: with anything else it is an error).
    Star,
    List(Vec<Contact>),
}

impl ContactSpec {
    /// Every Contact row of a message; each row may hold a comma-separated list (commas inside
    /// quotes and `<>` do not split).
    pub fn parse_rows<'a>(rows: impl Iterator<Item = &'a str>) -> Result<ContactSpec, HeaderError> {
        const E: &str = "Contact";
        let mut stars = 0;
        let mut list = Vec::new();
        for row in rows {
            if row.trim_matches([' ', '\t']) == "*" {
                stars += 1;
                continue;
            }
            let mut sc = Scanner::new(row);
            loop {
                let na = parse_name_addr(&mut sc, true, E)?;
                list.push(Contact::from_name_addr(na)?);
                sc.skip_ws();
                if sc.at_end() {
                    break;
                }
                if !sc.eat(b',') {
                    return Err(HeaderError::new(E, "junk after a contact"));
                }
            }
        }
        match (stars, list.is_empty()) {
            (0, false) => Ok(ContactSpec::List(list)),
            (1, true) => Ok(ContactSpec::Star),
            (0, true) => Err(HeaderError::new(E, "no contact")),
            _ => Err(HeaderError::new(E, "* together with other contacts")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::uri::{Host, SipUri};

    fn na(s: &str) -> NameAddr {
        NameAddr::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn contacts(rows: &[&str]) -> Vec<Contact> {
        match ContactSpec::parse_rows(rows.iter().copied()).unwrap() {
            ContactSpec::List(l) => l,
            ContactSpec::Star => panic!("star"),
        }
    }

    #[test]
    fn name_addr_forms() {
        let a = na("\"Alice Smith\" <sip:1001@pbx.example.com>;tag=1810203117");
        assert_eq!(a.display_name.as_deref(), Some("Alice Smith"));
        assert_eq!(a.uri_text, "sip:1001@pbx.example.com");
        assert_eq!(a.tag(), Some("1810203117"));
        let a = na("\"Alice \\\"Al\\\" Smith\" <sip:1001@pbx.example.com>");
        assert_eq!(a.display_name.as_deref(), Some("Alice \"Al\" Smith"));
        assert_eq!(a.tag(), None);
        // wsinv (unfolded): escaped backslash and quote, LWS around ; and =.
        let a = na("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com> ; tag = 98asjd8");
        assert_eq!(a.display_name.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(a.tag(), Some("98asjd8"));
        let a = na("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert_eq!(a.uri_text, "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(a.tag(), Some("1918181833n"));
        // lwsdisp, token display names.
        let a = na("caller<sip:caller@example.com>;tag=323");
        assert_eq!(a.display_name.as_deref(), Some("caller"));
        let a = na("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.");
        assert_eq!(a.display_name.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
        assert_eq!(a.tag(), Some("_token~1'+`*%!-."));
        // Unknown schemes are fine here (the registrar decides).
        assert!(matches!(na("isbn:2983792873").uri, Uri::Other { .. }));
        assert!(matches!(na("<http://www.example.com>;tag=3234233").uri, Uri::Other { .. }));
        let a = na("\"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423");
        assert_eq!(a.display_name.as_deref(), Some("Bell, Alexander"));
        assert_eq!(
            a.uri,
            Uri::Sip(SipUri {
                secure: false,
                user: Some("a.g.bell".into()),
                password: None,
                host: Host::Name("example.com".into()),
                port: None,
                params: vec![],
                headers: None
            })
        );
    }

    #[test]
    fn name_addr_errors() {
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",            // quotbal
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43", // baddn
            "\"Watson, Thomas\" < sip:t.watson@example.org >",   // badaspec
            "<sip:a@b",
            "<sip:a@b>;;",
            "<sip:a@b> x",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E", // regbadct
            "\"x\" sip:a@b",
            "",
            "<>",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad:?}");
        }
        // A tag with no value is a parameter without value (semantics are the caller's).
        assert_eq!(na("<sip:a@b>;tag").param("tag"), Some(None));
    }

    #[test]
    fn contact_lists() {
        let c = contacts(&["<sip:1001@192.168.1.50:5060;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=1;expires=3600;q=0.8"]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].instance.as_deref(), Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"));
        assert_eq!(c[0].reg_id, Some(1));
        assert_eq!(c[0].expires, Some(3600));
        assert_eq!(c[0].q, Some(0.8));
        assert_eq!(c[0].addr.uri_text, "sip:1001@192.168.1.50:5060;transport=tcp");
        let c = contacts(&["<sip:1001@192.168.1.50:5060>;expires=3600, <sip:1001@10.0.0.9:5062>;expires=0"]);
        assert_eq!(c.iter().map(|c| c.expires).collect::<Vec<_>>(), vec![Some(3600), Some(0)]);
        let c = contacts(&["\"A, B\" <sip:a@b>, sip:c@d;expires=5 , <sip:e@f>", "<sip:g@h>"]);
        assert_eq!(c.len(), 4);
        assert_eq!(c[1].addr.uri_text, "sip:c@d");
        assert_eq!(c[1].expires, Some(5));
        let c = contacts(&["<sip:1001@192.168.1.50:5060> ; expires=3600 ; q=0.8"]);
        assert_eq!((c[0].expires, c[0].q), (Some(3600), Some(0.8)));
        // cparam01: the parameter belongs to the header, not the URI.
        let c = contacts(&["sip:+19725552222@gw1.example.net;unknownparam"]);
        assert_eq!(c[0].addr.uri_text, "sip:+19725552222@gw1.example.net");
        assert_eq!(c[0].addr.param("unknownparam"), Some(None));
        // cparam02: inside <> it belongs to the URI.
        let c = contacts(&["<sip:+19725552222@gw1.example.net;unknownparam>"]);
        assert_eq!(c[0].addr.uri.as_sip().unwrap().param("unknownparam"), Some(None));
        assert!(c[0].addr.params.is_empty());
        // scalar02: overlarge expires clamps.
        let c = contacts(&["<sip:user@host129.example.com> ;expires=280297596632815"]);
        assert_eq!(c[0].expires, Some(u32::MAX));
        assert_eq!(ContactSpec::parse_rows(["*"].into_iter()).unwrap(), ContactSpec::Star);
        assert_eq!(ContactSpec::parse_rows([" * "].into_iter()).unwrap(), ContactSpec::Star);
    }

    #[test]
    fn contact_errors() {
        for rows in [
            &["*", "<sip:a@b>"][..],
            &["*, <sip:a@b>"],
            &["*", "*"],
            &["*;expires=0"],
            &["\"Joe\" <sip:joe@example.org>;;;;"],
            &["<sip:a@b>,"],
            &["<sip:a@b>,,<sip:c@d>"],
            &[""],
            &["<sip:a@b>;expires=soon"],
            &["<sip:a@b>;q=1.5"],
            &["<sip:a@b>;q=0.1234"],
            &["<sip:a@b>;reg-id=x"],
            &["<sip:a@b>;+sip.instance"],
        ] {
            assert!(ContactSpec::parse_rows(rows.iter().copied()).is_err(), "{rows:?}");
        }
        assert!(ContactSpec::parse_rows(std::iter::empty()).is_err());
    }
}
