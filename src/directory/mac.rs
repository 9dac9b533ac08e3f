//! `Mac`: a phone's MAC address, the key of a device. Phones and operators write MACs in every case
//! and with `:`, `-` or `.` separators; all forms of one address become the same twelve lowercase hex
//! digits here, so a MAC is compared and stored one way only.

use std::fmt;
use std::str::FromStr;

/// Twelve lowercase hex digits, no separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mac(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address: expected 12 hex digits, optionally separated by ':', '-' or '.'")]
pub struct InvalidMac;

impl Mac {
    /// `805ec0a1b2c3`
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `805EC0A1B2C3` (Snom and Poly file names)
    pub fn to_upper(&self) -> String {
        self.0.to_ascii_uppercase()
    }

    /// `80:5e:c0:a1:b2:c3`
    pub fn with_colons(&self) -> String {
        let b = self.0.as_bytes();
        let mut out = String::with_capacity(17);
        for (i, pair) in b.chunks(2).enumerate() {
            if i > 0 {
                out.push(':');
            }
            out.push(pair[0] as char);
            out.push(pair[1] as char);
        }
        out
    }

    /// Finds a MAC inside a longer text (a file name, a certificate subject): the first run of exactly
    /// twelve hex digits, or of six hex pairs joined by one separator.
    pub fn find_in(text: &str) -> Option<Mac> {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_hexdigit() && (i == 0 || !bytes[i - 1].is_ascii_hexdigit()) {
                let run = bytes[i..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
                if run == 12 {
                    return text.get(i..i + 12).and_then(|t| Mac::from_str(t).ok());
                }
                if i + 17 <= bytes.len() {
                    // `get`: the 17 bytes may end inside a multi-byte character of a non-ASCII text.
                    if let Some(Ok(mac)) = text.get(i..i + 17).map(Mac::from_str) {
                        let after = bytes.get(i + 17);
                        if !after.is_some_and(|b| b.is_ascii_hexdigit()) {
                            return Some(mac);
                        }
                    }
                }
                i += run.max(1);
            } else {
                i += 1;
            }
        }
        None
    }
}

impl FromStr for Mac {
    type Err = InvalidMac;

    fn from_str(s: &str) -> Result<Mac, InvalidMac> {
        let s = s.trim();
        let mut hex = String::with_capacity(12);
        let bytes = s.as_bytes();
        let separated = bytes.len() == 17 || bytes.len() == 14;
        for (i, &b) in bytes.iter().enumerate() {
            if b.is_ascii_hexdigit() {
                hex.push(b.to_ascii_lowercase() as char);
            } else if separated && matches!(b, b':' | b'-' | b'.') {
                // `aa:bb:..` and `aa-bb-..` separate every 2 digits; Cisco's `aabb.ccdd.eeff` every 4.
                let ok = (bytes.len() == 17 && i % 3 == 2) || (bytes.len() == 14 && i % 5 == 4);
                if !ok {
                    return Err(InvalidMac);
                }
            } else {
                return Err(InvalidMac);
            }
        }
        if hex.len() != 12 {
            return Err(InvalidMac);
        }
        Ok(Mac(hex))
    }
}

impl TryFrom<String> for Mac {
    type Error = InvalidMac;
    fn try_from(s: String) -> Result<Mac, InvalidMac> {
        s.parse()
    }
}

impl From<Mac> for String {
    fn from(m: Mac) -> String {
        m.0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_maps_to_one_mac() {
        for form in ["805ec0a1b2c3", "805EC0A1B2C3", "80:5e:c0:a1:b2:c3", "80-5E-C0-A1-B2-C3", "805e.c0a1.b2c3"] {
            assert_eq!(form.parse::<Mac>().unwrap().as_str(), "805ec0a1b2c3", "{form}");
        }
    }

    #[test]
    fn bad_forms_are_refused() {
        for form in ["", "805ec0a1b2c", "805ec0a1b2c3d", "80:5e:c0:a1:b2:cz", "80:5ec0:a1:b2:c3:", "../etc/passwd"] {
            assert!(form.parse::<Mac>().is_err(), "{form}");
        }
    }

    #[test]
    fn finds_mac_in_text() {
        assert_eq!(Mac::find_in("cfg805ec0a1b2c3.xml").unwrap().as_str(), "805ec0a1b2c3");
        assert_eq!(Mac::find_in("snomD785-000413922D24.htm").unwrap().as_str(), "000413922d24");
        assert_eq!(Mac::find_in("S=80:5e:c0:a1:b2:c3").unwrap().as_str(), "805ec0a1b2c3");
        assert_eq!(Mac::with_colons(&"805ec0a1b2c3".parse().unwrap()), "80:5e:c0:a1:b2:c3");
    }
}
