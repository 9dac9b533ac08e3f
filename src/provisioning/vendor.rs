//! Which phone is asking, and for what: the vendor, model and firmware from the User-Agent
//! (`vendors.md` §3 patterns, parsed by hand), and the classification of a requested path into a
//! common file (no secret, served to anyone), a MAC-named file (served only with device proof), a
//! Poly upload name, or nothing we serve. The User-Agent only picks templates; it never
//! authorises. Paths with traversal, escapes or odd characters are "nothing we serve".

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::directory::mac::Mac;

/// The phone makers deskline has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Yealink,
    Poly,
    Cisco,
    Grandstream,
    Snom,
}

impl Vendor {
    pub const ALL: [Vendor; 5] = [Vendor::Yealink, Vendor::Poly, Vendor::Cisco, Vendor::Grandstream, Vendor::Snom];

    /// Lowercase name, also the template folder name.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Poly => "poly",
            Vendor::Cisco => "cisco",
            Vendor::Grandstream => "grandstream",
            Vendor::Snom => "snom",
        }
    }

    /// A guess from the MAC's OUI, for the few vendors whose OUIs `vendors.md` lists (Cisco has too
    /// many to list).
    pub fn from_oui(mac: &Mac) -> Option<Vendor> {
        let oui = &mac.as_str()[..6];
        match oui {
            "001565" | "805ec0" | "249ad8" | "44dbd2" | "e434d7" => Some(Vendor::Yealink),
            "0004f2" | "64167f" | "482567" => Some(Vendor::Poly),
            "000b82" | "c074ad" | "ec74d7" => Some(Vendor::Grandstream),
            "000413" => Some(Vendor::Snom),
            _ => None,
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vendor (known: yealink, poly, cisco, grandstream, snom)")]
pub struct UnknownVendor;

impl FromStr for Vendor {
    type Err = UnknownVendor;
    fn from_str(s: &str) -> Result<Vendor, UnknownVendor> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yealink" => Ok(Vendor::Yealink),
            "poly" | "polycom" => Ok(Vendor::Poly),
            "cisco" => Ok(Vendor::Cisco),
            "grandstream" => Ok(Vendor::Grandstream),
            "snom" => Ok(Vendor::Snom),
            _ => Err(UnknownVendor),
        }
    }
}

/// What a User-Agent says about the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    pub vendor: Vendor,
    pub model: Option<String>,
    pub firmware: Option<String>,
    /// The MAC some vendors put in the UA (a hint, never a proof).
    pub mac: Option<Mac>,
}

/// Parses the User-Agent of a known deskphone; `None` for anything else.
pub fn parse_user_agent(ua: &str) -> Option<UserAgent> {
    let ua = ua.trim();
    if ua.len() > 512 {
        return None;
    }
    parse_poly(ua)
        .or_else(|| parse_yealink(ua))
        .or_else(|| parse_cisco(ua))
        .or_else(|| parse_grandstream(ua))
        .or_else(|| parse_snom(ua))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn firmware_like(token: &str) -> bool {
    !token.is_empty() && token.starts_with(|c: char| c.is_ascii_digit())
}

/// `Yealink SIP-T46S 66.86.0.15 80:5e:c0:a1:b2:c3`, `Yealink SIP VP-T49G ...`, `Yealink-T46G 28.71.0.81 ...`
fn parse_yealink(ua: &str) -> Option<UserAgent> {
    let rest = strip_prefix_ci(ua, "yealink")?;
    let mut rest = rest.strip_prefix(['-', ' '])?.trim_start();
    for prefix in ["SIP-", "SIP "] {
        if let Some(r) = strip_prefix_ci(rest, prefix) {
            rest = r.trim_start();
            break;
        }
    }
    rest = rest.strip_prefix("VP-").unwrap_or(rest);
    let mut tokens = rest.split_whitespace();
    let model = tokens.next().map(str::to_owned);
    let firmware = tokens.next().filter(|t| firmware_like(t)).map(str::to_owned);
    let mac = tokens.next().and_then(|t| t.parse().ok());
    Some(UserAgent { vendor: Vendor::Yealink, model, firmware, mac })
}

/// `FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234 (SN:0004f2a1b2c3) Type/Application`
fn parse_poly(ua: &str) -> Option<UserAgent> {
    let rest = ua.strip_prefix("FileTransport ")?.trim_start();
    if !rest.starts_with("Poly") {
        return None;
    }
    let product = rest.split_whitespace().next()?;
    let (name, firmware) = match product.split_once("-UA/") {
        Some((name, fw)) => (name, Some(fw.to_owned())),
        None => (product, None),
    };
    let model = name.split_once('-').map(|(_, model)| model.to_owned());
    let mac = rest.split_once("(SN:").and_then(|(_, tail)| tail.split_once(')')).and_then(|(sn, _)| sn.parse().ok());
    Some(UserAgent { vendor: Vendor::Poly, model, firmware, mac })
}

/// `Cisco-CP-8841-3PCC/11.0 (00562b043615)`, `Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)`,
/// `Linksys/SPA-942-6.1.5(a) (88019FA42805)`
fn parse_cisco(ua: &str) -> Option<UserAgent> {
    let (model, firmware, tail) = if let Some(rest) = ua.strip_prefix("Cisco-") {
        let (product, tail) = rest.split_once('/')?;
        let model = product.strip_prefix("CP-").unwrap_or(product);
        let firmware = tail.split_whitespace().next().unwrap_or_default();
        (model, firmware, tail)
    } else {
        let rest = ua.strip_prefix("Cisco/").or_else(|| ua.strip_prefix("Linksys/"))?;
        let token = rest.split_whitespace().next()?;
        let (model, firmware) = token.rsplit_once('-')?;
        (model, firmware, rest)
    };
    // The first parenthesised group that is a MAC (the serial number follows it on SPA).
    let mac =
        tail.split('(').skip(1).filter_map(|group| group.split_once(')')).find_map(|(inner, _)| inner.parse().ok());
    Some(UserAgent {
        vendor: Vendor::Cisco,
        model: (!model.is_empty()).then(|| model.to_owned()),
        firmware: (!firmware.is_empty()).then(|| firmware.to_owned()),
        mac,
    })
}

/// `Grandstream Model HW GXP2170 SW 1.0.11.79 DevId c074ad2bd859`,
/// `Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8`
fn parse_grandstream(ua: &str) -> Option<UserAgent> {
    let rest = ua.strip_prefix("Grandstream ")?;
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let model = match tokens.as_slice() {
        ["Model", "HW", model, ..] => Some(*model),
        [model, ..] if !model.starts_with('(') => Some(*model),
        _ => None,
    };
    let after = |key: &str| tokens.iter().position(|t| *t == key).and_then(|i| tokens.get(i + 1)).copied();
    Some(UserAgent {
        vendor: Vendor::Grandstream,
        model: model.map(str::to_owned),
        firmware: after("SW").map(str::to_owned),
        mac: after("DevId").and_then(|t| t.parse().ok()),
    })
}

/// `Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)`
fn parse_snom(ua: &str) -> Option<UserAgent> {
    let tokens: Vec<&str> = ua.split(|c: char| c.is_whitespace() || c == ';' || c == '(' || c == ')').collect();
    let at = tokens
        .iter()
        .position(|t| strip_prefix_ci(t, "snom").is_some_and(|rest| rest.len() > 4 && rest.ends_with("-SIP")))?;
    let model = &tokens[at][4..tokens[at].len() - 4];
    let rest: Vec<&str> = tokens[at + 1..].iter().copied().filter(|t| !t.is_empty()).collect();
    let firmware = rest.first().filter(|t| firmware_like(t)).map(|t| (*t).to_owned());
    let mac =
        rest.iter().find(|t| t.len() == 12 && t.bytes().all(|b| b.is_ascii_hexdigit())).and_then(|t| t.parse().ok());
    Some(UserAgent { vendor: Vendor::Snom, model: Some(model.to_owned()), firmware, mac })
}

/// The MAC-named files deskline serves, each the same for every vendor that asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceFile {
    /// `<mac>.cfg`: Yealink's MAC file, or Poly's per-phone master file.
    MacCfg,
    /// `<mac>.boot`: Yealink's MAC boot file.
    MacBoot,
    /// `<MAC>-deskline.cfg`: the Poly config file that the master file names.
    PolyConfig,
    /// `<mac>.xml`: Cisco `$MA.xml`, or Snom `<MAC>.xml`.
    MacXml,
    /// `spa<mac>.xml`: Cisco SPA.
    SpaXml,
    /// `cfg<mac>.xml`: Grandstream.
    GrandstreamXml,
    /// `snom<model>-<MAC>.htm`: Snom's per-device list of setting files.
    SnomHtm,
}

impl DeviceFile {
    /// The vendors whose phones ask for this name.
    pub fn vendors(self) -> &'static [Vendor] {
        match self {
            DeviceFile::MacCfg => &[Vendor::Yealink, Vendor::Poly],
            DeviceFile::MacBoot => &[Vendor::Yealink],
            DeviceFile::PolyConfig => &[Vendor::Poly],
            DeviceFile::MacXml => &[Vendor::Cisco, Vendor::Snom],
            DeviceFile::SpaXml => &[Vendor::Cisco],
            DeviceFile::GrandstreamXml => &[Vendor::Grandstream],
            DeviceFile::SnomHtm => &[Vendor::Snom],
        }
    }

    /// The template (`<vendor>/<name>.j2`) that renders this file for `vendor`.
    pub fn template(self, vendor: Vendor) -> Option<&'static str> {
        match (self, vendor) {
            (DeviceFile::MacCfg, Vendor::Yealink) => Some("device.cfg"),
            (DeviceFile::MacBoot, Vendor::Yealink) => Some("device.boot"),
            (DeviceFile::MacCfg, Vendor::Poly) => Some("master.xml"),
            (DeviceFile::PolyConfig, Vendor::Poly) => Some("device.xml"),
            (DeviceFile::MacXml | DeviceFile::SpaXml, Vendor::Cisco) => Some("device.xml"),
            (DeviceFile::GrandstreamXml, Vendor::Grandstream) => Some("device.xml"),
            (DeviceFile::MacXml, Vendor::Snom) => Some("device.xml"),
            (DeviceFile::SnomHtm, Vendor::Snom) => Some("index.xml"),
            _ => None,
        }
    }

    /// True for the file that carries the device's state (its line, its message) — the fetch
    /// that shows the phone has its current config — rather than a boot/master/index file.
    pub fn carries_state(self, vendor: Vendor) -> bool {
        !matches!(
            (self, vendor),
            (DeviceFile::MacBoot, _) | (DeviceFile::SnomHtm, _) | (DeviceFile::MacCfg, Vendor::Poly)
        )
    }

    /// Picks the vendor: the only one that asks for this name, else the first hint (User-Agent,
    /// the device's recorded vendor, the OUI) that is one of them.
    pub fn resolve_vendor(self, hints: &[Option<Vendor>]) -> Option<Vendor> {
        let candidates = self.vendors();
        if let [only] = candidates {
            return Some(*only);
        }
        hints.iter().flatten().copied().find(|v| candidates.contains(v))
    }
}

/// What a requested path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// A bootstrap file with no MAC and no secret, served to anyone.
    Common { vendor: Vendor, template: &'static str, model: Option<String>, name: String },
    /// A MAC-named file, served only to the phone that proves it owns `mac`. `vendor` is set when
    /// the name or the User-Agent settles it; `model` comes from the name or the User-Agent.
    Device { mac: Mac, file: DeviceFile, vendor: Option<Vendor>, model: Option<String>, name: String },
    /// A Poly upload name (`<MAC>-phone.cfg`, `-web.cfg`, `-app.log`, `-boot.log`, `-directory.xml`).
    Upload { mac: Mac, name: String },
    /// Nothing deskline serves (404).
    Unknown,
}

const UPLOAD_SUFFIXES: [&str; 5] = ["-phone.cfg", "-web.cfg", "-app.log", "-boot.log", "-directory.xml"];

/// Classifies a request path (`/dir/805ec0a1b2c3.cfg`); only the last segment names the file.
pub fn classify(path: &str, user_agent: Option<&str>) -> FileRequest {
    let Some(name) = file_name(path) else {
        return FileRequest::Unknown;
    };
    let lower = name.to_ascii_lowercase();
    let ua = user_agent.and_then(parse_user_agent);
    if let Some((vendor, template, path_model)) = classify_common(&lower) {
        let model = path_model.or_else(|| ua.as_ref().filter(|u| u.vendor == vendor).and_then(|u| u.model.clone()));
        return FileRequest::Common { vendor, template, model, name: name.to_owned() };
    }
    if let Some(mac) = UPLOAD_SUFFIXES.iter().find_map(|s| lower.strip_suffix(s).and_then(device_mac)) {
        return FileRequest::Upload { mac, name: name.to_owned() };
    }
    let Some((mac, file, path_model)) = classify_device(&lower) else {
        return FileRequest::Unknown;
    };
    let ua_vendor = ua.as_ref().map(|u| u.vendor).filter(|v| file.vendors().contains(v));
    let vendor = file.resolve_vendor(&[ua_vendor]);
    let model = path_model.or_else(|| ua.filter(|u| Some(u.vendor) == vendor).and_then(|u| u.model));
    FileRequest::Device { mac, file, vendor, model, name: name.to_owned() }
}

/// The last path segment, when the whole path is plain: no `..`/`.` segments, no empty segments,
/// no percent-escapes, backslashes or characters a phone's file name never has.
pub fn file_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() || rest.len() > 256 {
        return None;
    }
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    };
    let mut last = None;
    for segment in rest.split('/') {
        if !plain(segment) {
            return None;
        }
        last = Some(segment);
    }
    last
}

/// A device MAC from a name stem; the all-zero "MAC" of Poly's common files is not a device.
fn device_mac(stem: &str) -> Option<Mac> {
    let mac: Mac = stem.parse().ok()?;
    (mac.as_str() != "000000000000").then_some(mac)
}

fn model_token(s: &str) -> Option<String> {
    let ok = !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| s.to_owned())
}

/// Common (bootstrap) names, lowercase: `(vendor, template, model from the name)`.
fn classify_common(lower: &str) -> Option<(Vendor, &'static str, Option<String>)> {
    if lower == "y000000000000.boot" {
        return Some((Vendor::Yealink, "common.boot", None));
    }
    if let Some(id) = lower.strip_prefix("y0000000000").and_then(|s| s.strip_suffix(".cfg")) {
        if id.len() == 2 && id.bytes().all(|b| b.is_ascii_digit()) {
            return Some((Vendor::Yealink, "common.cfg", None));
        }
    }
    if lower == "000000000000.cfg" {
        return Some((Vendor::Poly, "common.xml", None));
    }
    if lower == "cfg.xml" {
        return Some((Vendor::Grandstream, "common.xml", None));
    }
    if let Some(model) = lower.strip_prefix("cfg").and_then(|s| s.strip_suffix(".xml")) {
        if device_mac(model).is_none() {
            return model_token(model).map(|m| (Vendor::Grandstream, "common.xml", Some(m)));
        }
    }
    if let Some(model) = lower.strip_prefix("snom").and_then(|s| s.strip_suffix(".htm")) {
        if !model.contains('-') {
            return model_token(model).map(|m| (Vendor::Snom, "common.xml", Some(m)));
        }
    }
    if let Some(model) = lower.strip_suffix("-3pcc.xml") {
        return model_token(model).map(|m| (Vendor::Cisco, "common.xml", Some(format!("{m}-3pcc"))));
    }
    None
}

/// MAC-named names, lowercase: `(mac, file, model from the name)`.
fn classify_device(lower: &str) -> Option<(Mac, DeviceFile, Option<String>)> {
    if let Some(stem) = lower.strip_suffix(".boot") {
        return device_mac(stem).map(|m| (m, DeviceFile::MacBoot, None));
    }
    if let Some(stem) = lower.strip_suffix(".cfg") {
        if let Some(mac) = stem.strip_suffix("-deskline").and_then(device_mac) {
            return Some((mac, DeviceFile::PolyConfig, None));
        }
        return device_mac(stem).map(|m| (m, DeviceFile::MacCfg, None));
    }
    if let Some(stem) = lower.strip_suffix(".htm") {
        let (model, mac) = stem.strip_prefix("snom")?.split_once('-')?;
        return Some((device_mac(mac)?, DeviceFile::SnomHtm, Some(model_token(model)?)));
    }
    let stem = lower.strip_suffix(".xml")?;
    if let Some(mac) = device_mac(stem) {
        return Some((mac, DeviceFile::MacXml, None));
    }
    if let Some(mac) = stem.strip_prefix("spa").and_then(device_mac) {
        return Some((mac, DeviceFile::SpaXml, None));
    }
    stem.strip_prefix("cfg").and_then(device_mac).map(|m| (m, DeviceFile::GrandstreamXml, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    /// User-Agent, vendor, model, firmware, MAC.
    type Case = (&'static str, Vendor, Option<&'static str>, Option<&'static str>, Option<&'static str>);

    #[test]
    fn user_agents_of_every_vendor() {
        let cases: &[Case] = &[
            (
                "Yealink SIP-T46S 66.86.0.15 80:5e:c0:a1:b2:c3",
                Vendor::Yealink,
                Some("T46S"),
                Some("66.86.0.15"),
                Some("805ec0a1b2c3"),
            ),
            (
                "Yealink SIP VP-T49G 51.80.0.10 00:15:65:9b:5a:44",
                Vendor::Yealink,
                Some("T49G"),
                Some("51.80.0.10"),
                Some("0015659b5a44"),
            ),
            ("Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0", Vendor::Yealink, Some("T46G"), Some("28.71.0.81"), None),
            (
                "Yealink SIP-T54W 96.86.0.100 805ec0a1b2c3",
                Vendor::Yealink,
                Some("T54W"),
                Some("96.86.0.100"),
                Some("805ec0a1b2c3"),
            ),
            (
                "FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234 (SN:0004f2a1b2c3) Type/Application",
                Vendor::Poly,
                Some("VVX_450"),
                Some("6.4.0.1234"),
                Some("0004f2a1b2c3"),
            ),
            (
                "FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application",
                Vendor::Poly,
                Some("Edge_E450"),
                Some("8.0.0.15602"),
                None,
            ),
            (
                "Cisco-CP-8841-3PCC/11.0 (00562b043615)",
                Vendor::Cisco,
                Some("8841-3PCC"),
                Some("11.0"),
                Some("00562b043615"),
            ),
            (
                "Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)",
                Vendor::Cisco,
                Some("SPA508G"),
                Some("7.4.8a"),
                Some("0002fdff2103"),
            ),
            ("Cisco/SPA525G-7.4.7 (CBT141900G7)", Vendor::Cisco, Some("SPA525G"), Some("7.4.7"), None),
            (
                "Linksys/SPA-942-6.1.5(a) (88019FA42805)",
                Vendor::Cisco,
                Some("SPA-942"),
                Some("6.1.5(a)"),
                Some("88019fa42805"),
            ),
            (
                "Grandstream Model HW GXP2170 SW 1.0.11.79 DevId c074ad2bd859",
                Vendor::Grandstream,
                Some("GXP2170"),
                Some("1.0.11.79"),
                Some("c074ad2bd859"),
            ),
            (
                "Grandstream Model HW GXV3350  V1.3A SW 1.0.1.8 DevId c074ad150b88",
                Vendor::Grandstream,
                Some("GXV3350"),
                Some("1.0.1.8"),
                Some("c074ad150b88"),
            ),
            (
                "Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8",
                Vendor::Grandstream,
                Some("GXP2000"),
                None,
                Some("000b822726c8"),
            ),
            (
                "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)",
                Vendor::Snom,
                Some("D785"),
                Some("10.1.33.33"),
                Some("000413922d24"),
            ),
            ("Mozilla/4.0 (compatible; snom320-SIP 8.4.18 1.1.3-s)", Vendor::Snom, Some("320"), Some("8.4.18"), None),
        ];
        for (ua, vendor, model, fw, m) in cases {
            let got = parse_user_agent(ua).unwrap_or_else(|| panic!("{ua}"));
            assert_eq!(got.vendor, *vendor, "{ua}");
            assert_eq!(got.model.as_deref(), *model, "{ua}");
            assert_eq!(got.firmware.as_deref(), *fw, "{ua}");
            assert_eq!(got.mac.as_ref().map(Mac::as_str), *m, "{ua}");
        }
        for other in ["curl/8.0", "Mozilla/5.0 (X11; Linux x86_64)", "", "FileTransport curl"] {
            assert_eq!(parse_user_agent(other), None, "{other}");
        }
    }

    #[test]
    fn common_files_need_no_mac() {
        let common = |p: &str| match classify(p, None) {
            FileRequest::Common { vendor, template, model, .. } => (vendor, template, model),
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(common("/y000000000066.cfg"), (Vendor::Yealink, "common.cfg", None));
        assert_eq!(common("/y000000000000.boot"), (Vendor::Yealink, "common.boot", None));
        assert_eq!(common("/000000000000.cfg"), (Vendor::Poly, "common.xml", None));
        assert_eq!(common("/cfg.xml"), (Vendor::Grandstream, "common.xml", None));
        assert_eq!(common("/cfggxp2170.xml"), (Vendor::Grandstream, "common.xml", Some("gxp2170".into())));
        assert_eq!(common("/snomD785.htm"), (Vendor::Snom, "common.xml", Some("d785".into())));
        assert_eq!(common("/8841-3PCC.xml"), (Vendor::Cisco, "common.xml", Some("8841-3pcc".into())));
    }

    #[test]
    fn mac_files_in_every_case_and_form() {
        let device = |p: &str, ua: Option<&str>| match classify(p, ua) {
            FileRequest::Device { mac, file, vendor, model, .. } => (mac, file, vendor, model),
            other => panic!("{p}: {other:?}"),
        };
        let m = mac("805ec0a1b2c3");
        for p in ["/805ec0a1b2c3.cfg", "/805EC0A1B2C3.cfg", "/prov/80-5e-c0-a1-b2-c3.cfg", "/80:5E:C0:A1:B2:C3.cfg"] {
            assert_eq!(device(p, None), (m.clone(), DeviceFile::MacCfg, None, None), "{p}");
        }
        let yealink = Some("Yealink SIP-T46S 66.86.0.15 80:5e:c0:a1:b2:c3");
        assert_eq!(device("/805ec0a1b2c3.cfg", yealink).2, Some(Vendor::Yealink));
        assert_eq!(device("/805ec0a1b2c3.cfg", yealink).3.as_deref(), Some("T46S"));
        assert_eq!(device("/805ec0a1b2c3.boot", None).2, Some(Vendor::Yealink));
        assert_eq!(device("/805EC0A1B2C3-deskline.cfg", None).1, DeviceFile::PolyConfig);
        assert_eq!(device("/805ec0a1b2c3.xml", Some("Cisco-CP-8841-3PCC/11.0 (805ec0a1b2c3)")).2, Some(Vendor::Cisco));
        assert_eq!(device("/spa805ec0a1b2c3.xml", None).2, Some(Vendor::Cisco));
        assert_eq!(device("/cfg805ec0a1b2c3.xml", None).2, Some(Vendor::Grandstream));
        let snom = device("/snomD785-805EC0A1B2C3.htm", None);
        assert_eq!((snom.1, snom.2, snom.3.as_deref()), (DeviceFile::SnomHtm, Some(Vendor::Snom), Some("d785")));
        // A UA of a vendor that never asks for this name is ignored.
        assert_eq!(device("/805ec0a1b2c3.xml", yealink).2, None);
    }

    #[test]
    fn poly_upload_names() {
        for suffix in UPLOAD_SUFFIXES {
            let path = format!("/0004F2A1B2C3{suffix}");
            assert_eq!(
                classify(&path, None),
                FileRequest::Upload { mac: mac("0004f2a1b2c3"), name: path[1..].to_owned() }
            );
        }
    }

    #[test]
    fn traversal_and_junk_are_unknown() {
        for p in [
            "/../805ec0a1b2c3.cfg",
            "/a/../805ec0a1b2c3.cfg",
            "/./805ec0a1b2c3.cfg",
            "//805ec0a1b2c3.cfg",
            "/%2e%2e/805ec0a1b2c3.cfg",
            "/805ec0a1b2c3.cfg/",
            "/a\\805ec0a1b2c3.cfg",
            "805ec0a1b2c3.cfg",
            "/",
            "/etc/passwd",
            "/805ec0a1b2c.cfg",
            "/805ec0a1b2c3.txt",
            "/000000000000.xml",
            "/y000000000066.boot",
            "/snomD785-x.htm",
            "/cfg805ec0a1b2c3",
            "/805ec0a1b2c3-local.cfg",
        ] {
            assert_eq!(classify(p, None), FileRequest::Unknown, "{p}");
        }
    }

    #[test]
    fn vendor_resolution_uses_hints_in_order() {
        assert_eq!(DeviceFile::MacCfg.resolve_vendor(&[None, Some(Vendor::Poly)]), Some(Vendor::Poly));
        assert_eq!(
            DeviceFile::MacCfg.resolve_vendor(&[Some(Vendor::Snom), Some(Vendor::Yealink)]),
            Some(Vendor::Yealink)
        );
        assert_eq!(DeviceFile::MacXml.resolve_vendor(&[None, None]), None);
        assert_eq!(Vendor::from_oui(&mac("000413922d24")), Some(Vendor::Snom));
        assert_eq!("Polycom".parse::<Vendor>(), Ok(Vendor::Poly));
    }
}
