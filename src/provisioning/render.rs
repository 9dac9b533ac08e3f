//! Template rendering (knows no sockets): a minijinja environment over `provisioning-templates/`
//! and the operator's override folder, strict about undefined values, with escaping chosen by
//! the template's format — `*.xml.j2` values are XML-escaped with quick-xml, `*.cfg.j2` and
//! `*.boot.j2` (key = value) values are refused if they hold CR, LF, NUL or another control
//! character. Every XML result is checked well-formed before it is returned, so a failed render
//! is an error, never a half or broken file. The same view always gives the same bytes.
//!
//! Lookup for file `F` (`device.cfg`, `common.xml`...) of vendor `V`, model `M` and MAC `mac`,
//! first found wins: `<overrides>/<mac>.F.j2`, `<overrides>/V/M.F.j2`, `<overrides>/V/F.j2`,
//! `<templates>/V/M.F.j2`, `<templates>/V/F.j2`. Model names are lowercased and stripped to
//! `[a-z0-9_-]`. Files starting with `_` are partials for `{% include %}`, never served.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value};
use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;

use crate::directory::mac::Mac;
use crate::provisioning::vendor::Vendor;
use crate::provisioning::view::{CommonContext, CommonView, DeviceContext, DeviceState, DeviceView, LineView};

/// The two output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    /// `key = value` lines (Yealink `.cfg`/`.boot`).
    KeyValue,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/xml; charset=utf-8",
            Format::KeyValue => "text/plain; charset=utf-8",
        }
    }

    /// From a template name: `*.xml.j2` or `*.cfg.j2`/`*.boot.j2`.
    pub fn of_template(name: &str) -> Option<Format> {
        let stem = name.strip_suffix(".j2")?;
        match stem.rsplit_once('.')?.1 {
            "xml" => Some(Format::Xml),
            "cfg" | "boot" => Some(Format::KeyValue),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read templates from {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no templates found in {0}")]
    NoTemplates(PathBuf),
    #[error("template file {0}: unusable name (expected [A-Za-z0-9._-] ending in .xml.j2, .cfg.j2 or .boot.j2)")]
    BadName(PathBuf),
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("template {name} rendered ill-formed XML: {message}")]
    IllFormedXml { name: String, message: String },
    #[error("no {file} template for {vendor}")]
    Missing { vendor: Vendor, file: String },
}

/// A hash of a device view as one template renders it (SipHash with a per-process key).
fn view_hash(view: &DeviceView, vendor: Vendor, model: Option<&str>) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
    let mut h = STATE.get_or_init(Default::default).build_hasher();
    view.hash(&mut h);
    vendor.hash(&mut h);
    model.hash(&mut h);
    h.finish()
}

/// A rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub body: String,
    pub format: Format,
    /// The template that produced it.
    pub template: String,
    /// A strong ETag of the body (phones compare checksums; `If-None-Match` gets 304).
    pub etag: String,
}

pub struct Renderer {
    env: Environment<'static>,
    names: BTreeSet<String>,
    /// Device files already rendered, by template and a hash of everything the template sees:
    /// the same state gives the same bytes, so they are rendered once, not on every fetch.
    cache: dashmap::DashMap<(String, u64), Rendered>,
}

/// Entries kept before the render cache starts over (a few KiB each).
const CACHE_LIMIT: usize = 50_000;

impl Renderer {
    /// Loads (and compiles) every template of `templates/<vendor>/` and of `overrides`; syntax
    /// errors surface here.
    pub fn load(templates: &Path, overrides: Option<&Path>) -> Result<Renderer, RenderError> {
        let mut renderer = Renderer { env: environment(), names: BTreeSet::new(), cache: dashmap::DashMap::new() };
        if !templates.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory");
            return Err(RenderError::Io { path: templates.to_owned(), source });
        }
        for vendor in Vendor::ALL {
            renderer.add_dir(&templates.join(vendor.as_str()), vendor.as_str())?;
        }
        if renderer.names.is_empty() {
            return Err(RenderError::NoTemplates(templates.to_owned()));
        }
        renderer.add_overrides(overrides)?;
        Ok(renderer)
    }

    /// The templates shipped in `provisioning-templates/`, compiled into the binary (for a server
    /// started away from its source folder), plus the operator's `overrides`.
    pub fn builtin(overrides: Option<&Path>) -> Result<Renderer, RenderError> {
        let mut renderer = Renderer { env: environment(), names: BTreeSet::new(), cache: dashmap::DashMap::new() };
        for (name, source) in BUILTIN {
            renderer.add((*name).to_owned(), (*source).to_owned())?;
        }
        renderer.add_overrides(overrides)?;
        Ok(renderer)
    }

    fn add_overrides(&mut self, overrides: Option<&Path>) -> Result<(), RenderError> {
        let Some(dir) = overrides else {
            return Ok(());
        };
        if !dir.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory");
            return Err(RenderError::Io { path: dir.to_owned(), source });
        }
        self.add_dir(dir, "override")?;
        for vendor in Vendor::ALL {
            self.add_dir(&dir.join(vendor.as_str()), &format!("override/{vendor}"))?;
        }
        Ok(())
    }

    fn add(&mut self, name: String, source: String) -> Result<(), RenderError> {
        self.env
            .add_template_owned(name.clone(), source)
            .map_err(|e| RenderError::Template { name: name.clone(), message: e.to_string() })?;
        self.names.insert(name);
        Ok(())
    }

    /// Adds the `*.j2` files of `dir` (not recursive) as `<prefix>/<file>`; a missing dir adds none.
    fn add_dir(&mut self, dir: &Path, prefix: &str) -> Result<(), RenderError> {
        let io = |source| RenderError::Io { path: dir.to_owned(), source };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(io)?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "j2") {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            let plain = file.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !plain || Format::of_template(file).is_none() {
                return Err(RenderError::BadName(path));
            }
            let source =
                std::fs::read_to_string(&path).map_err(|source| RenderError::Io { path: path.clone(), source })?;
            self.add(format!("{prefix}/{file}"), source)?;
        }
        Ok(())
    }

    /// The template that renders `file` for this vendor, model and MAC, if any.
    pub fn find(&self, vendor: Vendor, file: &str, model: Option<&str>, mac: Option<&Mac>) -> Option<&str> {
        let model = model.map(normalize_model).filter(|m| !m.is_empty());
        let mut candidates = Vec::with_capacity(5);
        if let Some(mac) = mac {
            candidates.push(format!("override/{mac}.{file}.j2"));
        }
        if let Some(m) = &model {
            candidates.push(format!("override/{vendor}/{m}.{file}.j2"));
        }
        candidates.push(format!("override/{vendor}/{file}.j2"));
        if let Some(m) = &model {
            candidates.push(format!("{vendor}/{m}.{file}.j2"));
        }
        candidates.push(format!("{vendor}/{file}.j2"));
        candidates.iter().find_map(|c| self.names.get(c.as_str())).map(String::as_str)
    }

    /// Renders a device's file; `model` (from the request) wins over the view's.
    pub fn render_device(
        &self,
        vendor: Vendor,
        file: &str,
        model: Option<&str>,
        view: &DeviceView,
    ) -> Result<Rendered, RenderError> {
        let model = model.or(view.model.as_deref());
        let name = self
            .find(vendor, file, model, Some(&view.mac))
            .ok_or_else(|| RenderError::Missing { vendor, file: file.to_owned() })?;
        let key = (name.to_owned(), view_hash(view, vendor, model));
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let rendered = self.render_named(name, DeviceContext::new(view, vendor, model))?;
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(key, rendered.clone());
        Ok(rendered)
    }

    /// Renders a bootstrap file.
    pub fn render_common(&self, file: &str, view: &CommonView) -> Result<Rendered, RenderError> {
        let name = self
            .find(view.vendor, file, view.model.as_deref(), None)
            .ok_or_else(|| RenderError::Missing { vendor: view.vendor, file: file.to_owned() })?;
        self.render_named(name, CommonContext::new(view))
    }

    fn render_named(&self, name: &str, context: impl Serialize) -> Result<Rendered, RenderError> {
        let error = |e: Error| RenderError::Template { name: name.to_owned(), message: e.to_string() };
        let body = self.env.get_template(name).and_then(|t| t.render(context)).map_err(error)?;
        let format = Format::of_template(name).unwrap_or(Format::KeyValue);
        if format == Format::Xml {
            check_well_formed(&body).map_err(|message| RenderError::IllFormedXml { name: name.to_owned(), message })?;
        }
        let etag = {
            use sha2::Digest;
            format!("\"{}\"", &hex::encode(sha2::Sha256::digest(body.as_bytes()))[..32])
        };
        Ok(Rendered { body, format, template: name.to_owned(), etag })
    }

    /// Renders every template against sample devices in all three states (common templates
    /// against a sample bootstrap view): run at start-up so a broken template stops the server
    /// with a message naming the file and line, instead of reaching a phone.
    pub fn check_all(&self) -> Result<(), RenderError> {
        let devices = sample_views();
        for name in &self.names {
            let (dir, file) = name.rsplit_once('/').unwrap_or(("", name));
            if file.starts_with('_') {
                continue;
            }
            let vendor = dir.rsplit('/').next().and_then(|v| v.parse().ok()).unwrap_or(Vendor::Yealink);
            let role = file.strip_suffix(".j2").and_then(|s| s.rsplit('.').nth(1)).unwrap_or_default();
            if role == "common" {
                let view = sample_common(vendor);
                self.render_named(name, CommonContext::new(&view))?;
            } else {
                for view in &devices {
                    self.render_named(name, DeviceContext::new(view, vendor, Some("t46s")))?;
                }
            }
        }
        Ok(())
    }

    /// Every loaded template name.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

/// `T46S` → `t46s`, `VVX_450` → `vvx_450`; characters outside `[a-z0-9_-]` are dropped.
pub fn normalize_model(model: &str) -> String {
    model
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(32)
        .collect()
}

/// The shipped templates, compiled in (`Renderer::builtin`).
const BUILTIN: &[(&str, &str)] = &[
    ("yealink/common.cfg.j2", include_str!("../../provisioning-templates/yealink/common.cfg.j2")),
    ("yealink/device.boot.j2", include_str!("../../provisioning-templates/yealink/device.boot.j2")),
    ("yealink/device.cfg.j2", include_str!("../../provisioning-templates/yealink/device.cfg.j2")),
    ("poly/common.xml.j2", include_str!("../../provisioning-templates/poly/common.xml.j2")),
    ("poly/device.xml.j2", include_str!("../../provisioning-templates/poly/device.xml.j2")),
    ("poly/master.xml.j2", include_str!("../../provisioning-templates/poly/master.xml.j2")),
    ("cisco/common.xml.j2", include_str!("../../provisioning-templates/cisco/common.xml.j2")),
    ("cisco/device.xml.j2", include_str!("../../provisioning-templates/cisco/device.xml.j2")),
    ("grandstream/common.xml.j2", include_str!("../../provisioning-templates/grandstream/common.xml.j2")),
    ("grandstream/device.xml.j2", include_str!("../../provisioning-templates/grandstream/device.xml.j2")),
    ("snom/common.xml.j2", include_str!("../../provisioning-templates/snom/common.xml.j2")),
    ("snom/device.xml.j2", include_str!("../../provisioning-templates/snom/device.xml.j2")),
    ("snom/index.xml.j2", include_str!("../../provisioning-templates/snom/index.xml.j2")),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|name| match Format::of_template(name) {
        Some(Format::Xml) => AutoEscape::Custom("xml"),
        Some(Format::KeyValue) => AutoEscape::Custom("cfg"),
        None => AutoEscape::None,
    });
    env.set_formatter(format_value);
    env
}

/// Writes one `{{ value }}`: XML-escaped for XML templates, refused when it holds a control
/// character (a line break would let a value inject a `key = value` line). The error never
/// contains the value, which may be a secret.
fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    let xml = match state.auto_escape() {
        AutoEscape::Custom("xml") => true,
        AutoEscape::Custom("cfg") => false,
        _ => return minijinja::escape_formatter(out, state, value),
    };
    if value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    if value.is_none() {
        return Ok(());
    }
    let text = value.to_string();
    if let Some(c) = text.chars().find(|&c| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}') {
        let message = format!("a value holds the control character U+{:04X}; refused", c as u32);
        return Err(Error::new(ErrorKind::InvalidOperation, message));
    }
    let written = if xml && !value.is_safe() {
        out.write_str(&quick_xml::escape::escape(text.as_str()))
    } else {
        out.write_str(&text)
    };
    written.map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write the output"))
}

/// Checks that `xml` is one well-formed XML document: one root element, every element closed,
/// attributes and entity references valid, no text or DOCTYPE outside the root.
pub fn check_well_formed(xml: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        let event = reader.read_event().map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        let outside = depth == 0;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                roots += usize::from(outside);
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| format!("bad attribute: {e}"))?;
                    attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| format!("bad attribute value: {e}"))?;
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.checked_sub(1).ok_or("unmatched end tag")?,
            Event::Text(t) if outside && !t.trim().is_empty() => return Err("text outside the root element".into()),
            Event::GeneralRef(r) => {
                if outside {
                    return Err("entity reference outside the root element".into());
                }
                let known = if r.is_char_ref() {
                    matches!(r.resolve_char_ref(), Ok(Some(_)))
                } else {
                    quick_xml::escape::resolve_predefined_entity(&r).is_some()
                };
                if !known {
                    return Err(format!("unknown entity &{};", &*r));
                }
            }
            Event::CData(_) if outside => return Err("CDATA outside the root element".into()),
            Event::DocType(_) => return Err("DOCTYPE is not allowed".into()),
            Event::Eof => break,
            _ => {}
        }
        if roots > 1 {
            return Err("more than one root element".into());
        }
    }
    match (depth, roots) {
        (0, 1) => Ok(()),
        (0, _) => Err("no root element".into()),
        _ => Err("unclosed element at the end".into()),
    }
}

/// Sample devices (one per state) with values that need escaping, for `check_all` and tests.
pub fn sample_views() -> Vec<DeviceView> {
    let line = LineView {
        extension: "1001".into(),
        display_name: "Zoë O'Neil & \"Co\" <desk>".into(),
        label: "1001 Zoë".into(),
        auth_user: "dev-805ec0a1b2c3".into(),
        secret: "sample-secret-9f3a".into(),
        registrar_host: "sip.example.com".into(),
        registrar_port: 5061,
        transport: "tls".into(),
        expires: 600,
    };
    let mac: Mac = "805ec0a1b2c3".parse().expect("literal MAC");
    [DeviceState::Active, DeviceState::Suspended, DeviceState::Unassigned]
        .into_iter()
        .map(|state| {
            let line = (state != DeviceState::Unassigned).then(|| line.clone());
            let mut view = DeviceView::new(&crate::config::ProvisioningConfig::default(), mac.clone(), state, line);
            view.timezone = "UTC+1".into();
            view.provisioning_url = "https://prov.example.com:8443/".into();
            view
        })
        .collect()
}

fn sample_common(vendor: Vendor) -> CommonView {
    let mut view = CommonView::new(
        &crate::config::ProvisioningConfig::default(),
        vendor,
        Some("t46s".into()),
        "https://prov.example.com:8443/".into(),
    );
    view.timezone = "UTC+1".into();
    view
}

#[cfg(test)]
#[path = "render_tests.rs"]
pub(crate) mod tests;
