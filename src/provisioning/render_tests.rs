//! Tests of the renderer: the shipped templates per vendor × state against golden files
//! (`tests/golden/provisioning/`, rewritten with `UPDATE_GOLDEN=1`), parsed back to check the
//! keys that matter; escaping; overrides; errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::*;

const SECRET: &str = "sample-secret-9f3a";

pub(crate) fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("provisioning-templates")
}

fn shipped() -> Renderer {
    Renderer::load(&templates_dir(), None).unwrap()
}

/// `key = value` lines of a Yealink file.
pub(crate) fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// Every element's text and every attribute, by name (names are unique in our files).
pub(crate) fn xml_fields(xml: &str) -> BTreeMap<String, String> {
    let mut reader = Reader::from_str(xml);
    let (mut out, mut stack, mut text) = (BTreeMap::new(), Vec::new(), String::new());
    let name_of = |e: &quick_xml::events::BytesStart<'_>| e.name().as_ref().to_owned();
    let attributes = |e: &quick_xml::events::BytesStart<'_>, out: &mut BTreeMap<String, String>| {
        for attr in e.attributes() {
            let attr = attr.unwrap();
            let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap().into_owned();
            out.insert(attr.key.as_ref().to_owned(), value);
        }
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                attributes(&e, &mut out);
                stack.push(name_of(&e));
                text.clear();
            }
            Event::Empty(e) => {
                attributes(&e, &mut out);
                out.entry(name_of(&e)).or_default();
            }
            Event::Text(t) => text.push_str(&t.xml_content(quick_xml::XmlVersion::Implicit1_0)),
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().unwrap().unwrap().to_string()
                } else {
                    quick_xml::escape::resolve_predefined_entity(&r).unwrap().to_owned()
                };
                text.push_str(&resolved);
            }
            Event::End(_) => {
                out.insert(stack.pop().unwrap(), text.trim().to_owned());
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// Per vendor: the golden extension, and the keys of (line on, secret, message, re-fetch
/// interval) with the "on"/"off" values and the expected interval for active / other states.
struct Keys {
    vendor: Vendor,
    ext: &'static str,
    enabled: (&'static str, &'static str, &'static str),
    secret: (&'static str, &'static str),
    message: &'static str,
    interval: (&'static str, &'static str, &'static str),
}

const KEYS: [Keys; 5] = [
    Keys {
        vendor: Vendor::Yealink,
        ext: "cfg",
        enabled: ("account.1.enable", "1", "0"),
        secret: ("account.1.password", "%NULL%"),
        message: "account.1.label",
        interval: ("static.auto_provision.repeat.minutes", "1440", "5"),
    },
    Keys {
        vendor: Vendor::Poly,
        ext: "cfg",
        enabled: ("reg.1.server.1.register", "1", "0"),
        secret: ("reg.1.auth.password", ""),
        message: "reg.1.label",
        interval: ("prov.polling.period", "86400", "3600"),
    },
    Keys {
        vendor: Vendor::Cisco,
        ext: "xml",
        enabled: ("Line_Enable_1_", "Yes", "No"),
        secret: ("Password_1_", ""),
        message: "Station_Display_Name",
        interval: ("Resync_Periodic", "86400", "300"),
    },
    Keys {
        vendor: Vendor::Grandstream,
        ext: "xml",
        enabled: ("P271", "1", "0"),
        secret: ("P34", ""),
        message: "P270",
        interval: ("P193", "1440", "5"),
    },
    Keys {
        vendor: Vendor::Snom,
        ext: "xml",
        enabled: ("user_active", "on", "off"),
        secret: ("user_pass", ""),
        message: "user_idle_text",
        interval: ("settings_refresh_timer", "86400", "300"),
    },
];

fn check_golden(name: &str, body: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/provisioning").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, body).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to write it)", path.display()));
    assert_eq!(body, golden, "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)");
}

#[test]
fn every_vendor_and_state_matches_its_golden_file_and_says_what_the_state_needs() {
    let renderer = shipped();
    renderer.check_all().unwrap();
    for keys in &KEYS {
        for view in sample_views() {
            let state = view.state;
            let file = if keys.ext == "cfg" && keys.vendor == Vendor::Yealink { "device.cfg" } else { "device.xml" };
            let rendered = renderer.render_device(keys.vendor, file, None, &view).unwrap();
            assert_eq!(rendered, renderer.render_device(keys.vendor, file, None, &view).unwrap(), "deterministic");
            check_golden(&format!("{}-{}.{}", keys.vendor, state.as_str(), keys.ext), &rendered.body);

            let fields = match rendered.format {
                Format::Xml => xml_fields(&rendered.body),
                Format::KeyValue => key_values(&rendered.body),
            };
            let get = |k: &str| fields.get(k).unwrap_or_else(|| panic!("{} {state:?}: no {k}", keys.vendor)).as_str();
            let active = state == DeviceState::Active;
            let what = format!("{} {state:?}", keys.vendor);
            assert_eq!(get(keys.enabled.0), if active { keys.enabled.1 } else { keys.enabled.2 }, "{what}");
            assert_eq!(get(keys.secret.0), if active { SECRET } else { keys.secret.1 }, "{what}");
            assert_eq!(rendered.body.contains(SECRET), active, "{what}: the secret only when active");
            assert_eq!(get(keys.interval.0), if active { keys.interval.1 } else { keys.interval.2 }, "{what}");
            if let Some(message) = &view.message {
                assert_eq!(get(keys.message), message, "{what}");
            } else {
                assert!(rendered.body.contains("1001"), "{what}: the extension");
            }
        }
    }
}

#[test]
fn xml_values_are_escaped_and_urls_left_alone() {
    let renderer = shipped();
    let view = &sample_views()[0];
    let body = renderer.render_device(Vendor::Cisco, "device.xml", None, view).unwrap().body;
    assert!(body.contains("Zoë O&apos;Neil &amp; &quot;Co&quot; &lt;desk&gt;"), "{body}");
    assert!(body.contains("https://prov.example.com:8443/$MA.xml"), "{body}");
    assert_eq!(xml_fields(&body)["Display_Name_1_"], "Zoë O'Neil & \"Co\" <desk>");
}

#[test]
fn a_line_break_in_a_key_value_is_a_render_error_not_an_injected_line() {
    let renderer = shipped();
    for bad in ["Alice\naccount.1.sip_server.1.address = evil.example", "Alice\r", "A\0"] {
        let mut view = sample_views().remove(0);
        view.line.as_mut().unwrap().display_name = bad.into();
        let err = renderer.render_device(Vendor::Yealink, "device.cfg", None, &view).unwrap_err().to_string();
        assert!(err.contains("control character") && err.contains("yealink/device.cfg.j2"), "{err}");
        assert!(!err.contains("evil"), "the value is not echoed: {err}");
    }
}

#[test]
fn common_files_render_without_any_device() {
    let renderer = shipped();
    for (vendor, file) in [
        (Vendor::Yealink, "common.cfg"),
        (Vendor::Poly, "common.xml"),
        (Vendor::Cisco, "common.xml"),
        (Vendor::Grandstream, "common.xml"),
        (Vendor::Snom, "common.xml"),
    ] {
        let view = CommonView::new(&Default::default(), vendor, None, "https://p.example/".into());
        let body = renderer.render_common(file, &view).unwrap().body;
        assert!(!body.contains(SECRET) && !body.to_lowercase().contains("password"), "{vendor}: {body}");
    }
    let view = CommonView::new(&Default::default(), Vendor::Yealink, None, "https://p.example/".into());
    assert!(matches!(renderer.render_common("common.boot", &view), Err(RenderError::Missing { .. })));
}

#[test]
fn overrides_win_per_device_then_per_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("yealink")).unwrap();
    std::fs::write(dir.path().join("yealink/t46s.device.cfg.j2"), "model {{ model }}\n").unwrap();
    std::fs::write(dir.path().join("805ec0a1b2c3.device.cfg.j2"), "device {{ mac }}\n").unwrap();
    let renderer = Renderer::load(&templates_dir(), Some(dir.path())).unwrap();
    renderer.check_all().unwrap();
    let mut view = sample_views().remove(0);
    assert_eq!(
        renderer.render_device(Vendor::Yealink, "device.cfg", Some("T46S"), &view).unwrap().body,
        "device 805ec0a1b2c3\n"
    );
    view.mac = "805ec0000001".parse().unwrap();
    assert_eq!(
        renderer.render_device(Vendor::Yealink, "device.cfg", Some("T46S"), &view).unwrap().body,
        "model T46S\n"
    );
    assert_eq!(
        renderer.find(Vendor::Yealink, "device.cfg", Some("T48S"), Some(&view.mac)),
        Some("yealink/device.cfg.j2")
    );
}

#[test]
fn broken_templates_are_start_up_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("snom")).unwrap();
    std::fs::write(dir.path().join("snom/device.xml.j2"), "<a>\n{{ line.nope }}</a>\n").unwrap();
    let err = Renderer::load(dir.path(), None).unwrap().check_all().unwrap_err().to_string();
    assert!(err.contains("snom/device.xml.j2") && err.contains(":2"), "{err}");

    std::fs::write(dir.path().join("snom/device.xml.j2"), "<a>{% if %}</a>").unwrap();
    let err = Renderer::load(dir.path(), None).err().unwrap().to_string();
    assert!(err.contains("snom/device.xml.j2"), "{err}");

    std::fs::write(dir.path().join("snom/device.xml.j2"), "<a>{{ mac }}<b></a>").unwrap();
    let err = Renderer::load(dir.path(), None).unwrap().check_all().unwrap_err();
    assert!(matches!(err, RenderError::IllFormedXml { .. }), "{err}");

    std::fs::write(dir.path().join("snom/device.txt.j2"), "x").unwrap();
    assert!(matches!(Renderer::load(dir.path(), None), Err(RenderError::BadName(_))));
    assert!(matches!(Renderer::load(&dir.path().join("none"), None), Err(RenderError::Io { .. })));
}

#[test]
fn the_builtin_set_is_the_shipped_folder() {
    let builtin = Renderer::builtin(None).unwrap();
    builtin.check_all().unwrap();
    assert_eq!(
        builtin.templates().collect::<Vec<_>>(),
        shipped().templates().collect::<Vec<_>>(),
        "add new files to BUILTIN"
    );
}

#[test]
fn well_formedness_check() {
    for good in ["<a/>", "<?xml version=\"1.0\"?>\n<a x=\"&amp;\">t&lt;&#65;<b/></a>\n<!-- c -->"] {
        assert_eq!(check_well_formed(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "<a>",
        "<a></b>",
        "<a/><b/>",
        "x<a/>",
        "<a>&nope;</a>",
        "<a x=\"&nope;\"/>",
        "<!DOCTYPE a><a/>",
        "<a></a></a>",
    ] {
        assert!(check_well_formed(bad).is_err(), "{bad}");
    }
}
