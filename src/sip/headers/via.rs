//! Via (RFC 3261 §20.42, §25.1; `rport` RFC 3581; IPv6 `received` RFC 5118 §4.5).

use std::fmt;

use super::{lowercase, HeaderError, Scanner};
use crate::sip::uri::{parse_port, Host};
use crate::sip::{Param, Text};

const E: &str = "Via";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Uppercased: UDP, TCP, TLS, SCTP, WS, WSS or anything else sent.
    pub transport: Text,
    pub host: Host,
    pub port: Option<u16>,
    pub branch: Option<Text>,
    /// `Some(None)`: `rport` without a value (the client asks for it, RFC 3581).
    pub rport: Option<Option<u16>>,
    /// As sent: IPv4, or IPv6 with or without `[]` (both must be accepted, RFC 5118 §4.5).
    pub received: Option<Text>,
    /// The other parameters in order (not branch, rport, received); names lowercased, values
    /// unquoted.
    pub params: Vec<Param>,
}

impl Via {
    /// Every via-parm of one (unfolded) Via value: comma-separated, LWS allowed around `/`, `;`,
    /// `=`, `:` and `,`. Empty parameters or elements (`;;,;,,`, RFC 4475 badinv01) are errors.
    pub fn parse_list(value: &str) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::with_capacity(1);
        Via::parse_list_into(value, &mut out)?;
        Ok(out)
    }

    /// [`Via::parse_list`], appending to `out` (on error, `out` may hold some of the values).
    pub fn parse_list_into(value: &str, out: &mut Vec<Via>) -> Result<(), HeaderError> {
        let mut sc = Scanner::new(value);
        loop {
            sc.skip_ws();
            out.push(parse_one(&mut sc)?);
            sc.skip_ws();
            if sc.at_end() {
                return Ok(());
            }
            if !sc.eat(b',') {
                return Err(HeaderError::new(E, "junk after a via-parm"));
            }
        }
    }

    /// `host[:port]` of the sent-by, IPv6 in brackets.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

/// `SWS "/" SWS`
fn slash(sc: &mut Scanner<'_>) -> bool {
    sc.skip_ws();
    let ok = sc.eat(b'/');
    sc.skip_ws();
    ok
}

fn parse_one(sc: &mut Scanner<'_>) -> Result<Via, HeaderError> {
    if !sc.token().eq_ignore_ascii_case("SIP") {
        return Err(HeaderError::new(E, "protocol is not SIP"));
    }
    if !slash(sc) || sc.token().is_empty() || !slash(sc) {
        return Err(HeaderError::new(E, "bad sent-protocol"));
    }
    let mut transport = Text::from(sc.token());
    transport.make_ascii_uppercase();
    if transport.is_empty() {
        return Err(HeaderError::new(E, "missing transport"));
    }
    if sc.skip_ws() == 0 {
        return Err(HeaderError::new(E, "no space before sent-by"));
    }
    let host_txt = if sc.peek() == Some(b'[') {
        let start = sc.pos;
        sc.take_while(|b| b != b']');
        if !sc.eat(b']') {
            return Err(HeaderError::new(E, "unclosed IPv6 reference"));
        }
        &sc.s[start..sc.pos]
    } else {
        sc.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    let host = Host::parse(host_txt).map_err(|_| HeaderError::new(E, "bad sent-by host"))?;
    let save = sc.pos;
    sc.skip_ws();
    let port = if sc.eat(b':') {
        sc.skip_ws();
        let p = sc.take_while(|b| b.is_ascii_digit());
        Some(parse_port(p).ok_or(HeaderError::new(E, "bad sent-by port"))?)
    } else {
        sc.pos = save;
        None
    };
    let mut via = Via { transport, host, port, branch: None, rport: None, received: None, params: Vec::new() };
    while let Some((name, value)) = sc.next_param(true, E)? {
        if name.eq_ignore_ascii_case("branch") {
            via.branch = Some(Text::from(value.ok_or(HeaderError::new(E, "branch without value"))?.as_ref()));
        } else if name.eq_ignore_ascii_case("rport") {
            via.rport = Some(match value {
                None => None,
                Some(v) => Some(parse_port(&v).ok_or(HeaderError::new(E, "bad rport"))?),
            });
        } else if name.eq_ignore_ascii_case("received") {
            let v = value.ok_or(HeaderError::new(E, "received without value"))?;
            Host::parse_lenient(&v).map_err(|_| HeaderError::new(E, "bad received address"))?;
            via.received = Some(Text::from(v.as_ref()));
        } else {
            via.params.push((lowercase(name), value.map(|v| Text::from(v.as_ref()))));
        }
    }
    Ok(via)
}

/// `SIP/2.0/<transport> <sent-by>[;branch=..][;rport[=..]][;received=..][;other..]`. Values that
/// need quoting are re-quoted.
impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by())?;
        if let Some(b) = &self.branch {
            write!(f, ";branch={b}")?;
        }
        match self.rport {
            Some(Some(p)) => write!(f, ";rport={p}")?,
            Some(None) => f.write_str(";rport")?,
            None => {}
        }
        if let Some(r) = &self.received {
            write!(f, ";received={r}")?;
        }
        for (n, v) in &self.params {
            write!(f, ";{n}")?;
            if let Some(v) = v {
                if v.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"')) {
                    write!(f, "={v}")?;
                } else {
                    write!(f, "=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_and_folded() {
        let v = Via::parse_list("SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1741092458;rport").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].transport, "UDP");
        assert_eq!(v[0].host, Host::V4("192.168.1.50".parse().unwrap()));
        assert_eq!(v[0].port, Some(5060));
        assert_eq!(v[0].branch.as_deref(), Some("z9hG4bK1741092458"));
        assert_eq!(v[0].rport, Some(None));
        assert_eq!(v[0].to_string(), "SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1741092458;rport");
        // RFC 4475 wsinv, after unfolding.
        let v = Via::parse_list("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!((v[0].transport.as_str(), v[0].branch.as_deref()), ("UDP", Some("390skdjuw")));
        let v = Via::parse_list(
            "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].host, Host::Name("spindle.example.com".into()));
        assert_eq!(v[0].branch.as_deref(), Some("z9hG4bK9ikj8"));
        assert_eq!(v[1].transport, "UDP");
        assert_eq!(v[1].branch.as_deref(), Some("z9hG4bK30239"));
        let v = Via::parse_list("sip/2.0/tls Host.Example.com : 5061 ;maddr=10.0.0.1;ttl=1;rport=5070").unwrap();
        assert_eq!(v[0].transport, "TLS");
        assert_eq!(v[0].port, Some(5061));
        assert_eq!(v[0].rport, Some(Some(5070)));
        assert_eq!(v[0].params, vec![("maddr".into(), Some("10.0.0.1".into())), ("ttl".into(), Some("1".into()))]);
    }

    #[test]
    fn ipv6() {
        let v = Via::parse_list("SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111").unwrap();
        assert_eq!(v[0].host, Host::V6("2001:db8::9:1".parse().unwrap()));
        assert_eq!(v[0].port, Some(6050));
        assert_eq!(v[0].sent_by(), "[2001:db8::9:1]:6050");
        let v = Via::parse_list("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3").unwrap();
        assert_eq!(v[0].received.as_deref(), Some("2001:db8::9:255"));
        let v =
            Via::parse_list("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111").unwrap();
        assert_eq!(v[0].received.as_deref(), Some("[2001:db8::9:255]"));
        let v = Via::parse_list("SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200").unwrap();
        assert_eq!(v[0].received.as_deref(), Some("192.0.2.200"));
    }

    #[test]
    fn errors() {
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;,;,,",
            "SIP/2.0/UDP 192.0.2.15,",
            "SIP/2.0/UDP 192.0.2.15;branch",
            "SIP/2.0/UDP 192.0.2.15;rport=x",
            "SIP/2.0/UDP 192.0.2.15;received=not an ip",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "SIP/2.0 192.0.2.15",
            "HTTP/1.1/TCP x",
            "SIP/2.0/UDP 2001:db8::1",
            "SIP/2.0/UDP [2001:db8::1",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP host x",
            "",
        ] {
            assert!(Via::parse_list(bad).is_err(), "{bad:?}");
        }
    }
}
