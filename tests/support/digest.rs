//! RFC 7616 / RFC 8760 HTTP/SIP Digest, client side (and the phone-side check of a server's
//! Authorization), written independently of deskline with `md-5` and `sha2`.
//!
//! ```ignore
//! let ch = digest::pick_challenge(&resp.headers("WWW-Authenticate"), Algorithm::Sha256).unwrap();
//! let auth = digest::authorization(&ch, "1001", "secret", "REGISTER", "sip:pbx.test", 1, &cnonce);
//! ```

use md5::Md5;
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The token used in the `algorithm=` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses `MD5`, `SHA-256` (case-insensitive). `-sess` variants are not supported.
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s.trim().trim_matches('"').to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// Lowercase hex of the hash of `data`.
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }

    /// Length of the hex digest (32 or 64).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed `WWW-Authenticate`/`Proxy-Authenticate` (or `Authorization`) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Digest` (as sent).
    pub scheme: String,
    /// Every parameter in order, names lowercased, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
    pub fn realm(&self) -> &str {
        self.param("realm").unwrap_or("")
    }
    pub fn nonce(&self) -> &str {
        self.param("nonce").unwrap_or("")
    }
    pub fn opaque(&self) -> Option<&str> {
        self.param("opaque")
    }
    /// `algorithm=` or MD5 when absent (RFC 7616 §3.3). None for an unknown algorithm.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.param("algorithm") {
            None => Some(Algorithm::Md5),
            Some(a) => Algorithm::parse(a),
        }
    }
    /// The `qop` options (`qop="auth,auth-int"` → ["auth", "auth-int"]).
    pub fn qop_options(&self) -> Vec<String> {
        self.param("qop")
            .map(|q| q.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
    pub fn stale(&self) -> bool {
        self.param("stale").is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("digest")
    }
}

/// Parses `Digest k=v, k="quoted, value", ...` (one challenge per header value, as SIP sends them).
pub fn parse_challenge(value: &str) -> Result<Challenge, String> {
    let value = value.trim();
    let (scheme, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    if scheme.is_empty() || scheme.contains('=') {
        return Err(format!("no auth scheme in {value:?}"));
    }
    let params = parse_params(rest)?;
    Ok(Challenge { scheme: scheme.to_string(), params })
}

/// Parses a comma-separated list of `name=token` / `name="quoted-string"` auth-params.
pub fn parse_params(s: &str) -> Result<Vec<(String, String)>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            skip_ws(&mut i);
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' && !(b[i] as char).is_ascii_whitespace() {
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("empty parameter name at {start} in {s:?}"));
        }
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(format!("parameter {name:?} has no '=' in {s:?}"));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        v.push(b[i + 1] as char);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        closed = true;
                        break;
                    }
                    _ => {
                        // Copy a whole UTF-8 char.
                        let ch = s[i..].chars().next().unwrap();
                        v.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            if !closed {
                return Err(format!("unterminated quoted value for {name:?} in {s:?}"));
            }
            v
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' && !(b[i] as char).is_ascii_whitespace() {
                i += 1;
            }
            s[start..i].to_string()
        };
        out.push((name, value));
        skip_ws(&mut i);
        if i < b.len() && b[i] != b',' {
            return Err(format!("expected ',' at {i} in {s:?}"));
        }
    }
    Ok(out)
}

/// Picks the challenge offering `alg` among several header values (unparseable ones skipped).
pub fn pick_challenge<S: AsRef<str>>(values: &[S], alg: Algorithm) -> Option<Challenge> {
    values.iter().filter_map(|v| parse_challenge(v.as_ref()).ok()).find(|c| c.is_digest() && c.algorithm() == Some(alg))
}

/// The request-digest (`response=`) of RFC 7616 §3.4.1 for qop=auth, or RFC 2069 style without qop.
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<&str>,
    nc: u32,
    cnonce: &str,
) -> String {
    let ha1 = alg.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some(q) => alg.hash(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:{q}:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// A fresh client nonce.
pub fn new_cnonce() -> String {
    super::random_hex(16)
}

/// The `Authorization` value answering `ch` (qop=auth when offered, else none).
pub fn authorization(
    ch: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let alg = ch.algorithm().unwrap_or_else(|| panic!("unsupported algorithm in challenge {ch:?}"));
    let qop = if ch.qop_options().iter().any(|q| q == "auth") { Some("auth") } else { None };
    let resp = response(alg, username, ch.realm(), password, method, uri, ch.nonce(), qop, nc, cnonce);
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
        quote_escape(username),
        quote_escape(ch.realm()),
        quote_escape(ch.nonce()),
        uri,
        resp,
        alg.name()
    );
    if let Some(q) = qop {
        out.push_str(&format!(", qop={q}, nc={nc:08x}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = ch.opaque() {
        out.push_str(&format!(", opaque=\"{}\"", quote_escape(o)));
    }
    out
}

fn quote_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A challenge as a phone (Poly style) would send it to the server's NOTIFY.
pub fn make_challenge(realm: &str, nonce: &str, alg: Algorithm) -> String {
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={}", alg.name())
}

/// Checks an `Authorization` value sent to us (the phone side): right scheme, username, realm,
/// nonce, method/uri digest for `password`. Returns the parsed header on success.
pub fn verify_authorization(
    value: &str,
    method: &str,
    expected_username: &str,
    password: &str,
    expected_realm: &str,
    expected_nonce: &str,
) -> Result<Challenge, String> {
    let a = parse_challenge(value)?;
    if !a.is_digest() {
        return Err(format!("scheme is {:?}, not Digest", a.scheme));
    }
    let alg = a.algorithm().ok_or_else(|| format!("unsupported algorithm {:?}", a.param("algorithm")))?;
    let username = a.param("username").ok_or("no username")?;
    if username != expected_username {
        return Err(format!("username {username:?}, expected {expected_username:?}"));
    }
    if a.realm() != expected_realm {
        return Err(format!("realm {:?}, expected {expected_realm:?}", a.realm()));
    }
    if a.nonce() != expected_nonce {
        return Err(format!("nonce {:?}, expected {expected_nonce:?}", a.nonce()));
    }
    let uri = a.param("uri").ok_or("no uri")?;
    let got = a.param("response").ok_or("no response")?.to_ascii_lowercase();
    let qop = a.param("qop");
    let nc = match qop {
        Some(_) => {
            u32::from_str_radix(a.param("nc").ok_or("qop without nc")?, 16).map_err(|e| format!("bad nc: {e}"))?
        }
        None => 0,
    };
    let cnonce = a.param("cnonce").unwrap_or("");
    if qop.is_some() && cnonce.is_empty() {
        return Err("qop without cnonce".into());
    }
    let want = response(alg, username, a.realm(), password, method, uri, a.nonce(), qop, nc, cnonce);
    if got != want {
        return Err(format!("response {got} does not match (expected {want} for {alg} {method} {uri})"));
    }
    Ok(a)
}
