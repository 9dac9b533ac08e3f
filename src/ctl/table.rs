//! Plain aligned tables and one-line summaries for `deskline ctl`'s human output.

use serde_json::Value;

/// Renders rows under a header, each column as wide as its widest cell, two spaces apart.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A JSON field as a table cell: strings bare, null as `-`, lists joined with commas.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Rows of `items` with the given fields.
pub fn rows(items: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    let list = items.as_array().cloned().unwrap_or_default();
    list.iter().map(|item| fields.iter().map(|f| cell(&item[*f])).collect()).collect()
}

pub fn users(v: &Value) -> String {
    let fields = ["username", "display_name", "status", "extensions", "devices"];
    render(&["USERNAME", "NAME", "STATUS", "EXTENSIONS", "DEVICES"], &rows(v, &fields))
}

pub fn devices(v: &Value) -> String {
    let list = v.as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            let fetch = &d["last_config_fetch"];
            let last = if fetch.is_null() {
                "-".into()
            } else {
                format!("{} from {}", cell(&fetch["at"]), cell(&fetch["address"]))
            };
            let mut row: Vec<String> =
                ["mac", "user", "extension", "vendor", "model", "firmware", "registered", "resync_pending"]
                    .iter()
                    .map(|f| cell(&d[*f]))
                    .collect();
            row.push(last);
            row
        })
        .collect();
    render(&["MAC", "USER", "EXT", "VENDOR", "MODEL", "FIRMWARE", "REGISTERED", "RESYNC", "LAST FETCH"], &rows)
}

pub fn registrations(v: &Value) -> String {
    let fields = ["aor", "contact", "device", "user", "transport", "source", "expires_in", "user_agent"];
    render(&["AOR", "CONTACT", "DEVICE", "USER", "TRANSPORT", "SOURCE", "EXPIRES", "USER AGENT"], &rows(v, &fields))
}

/// One object as `key: value` lines.
pub fn record(v: &Value) -> String {
    let Some(map) = v.as_object() else { return format!("{}\n", cell(v)) };
    let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
    map.iter().map(|(k, v)| format!("{k:width$}  {}\n", cell(v))).collect()
}

/// An action's report in one line: `deactivate alice: 2 bindings removed; notified ...`.
pub fn report(action: &str, target: &str, v: &Value) -> String {
    let n = v["bindings_removed"].as_u64().unwrap_or(0);
    let mut line = format!("{action} {target}: {n} binding{} removed", if n == 1 { "" } else { "s" });
    line.push_str(&format!("; notified: {}", cell(&v["devices_notified"])));
    line.push_str(&format!("; unreachable: {}", cell(&v["devices_unreachable"])));
    if v["changed"] == Value::Bool(false) {
        line.push_str(" (nothing to change)");
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_aligned() {
        let out = render(&["A", "BB"], &[vec!["long".into(), "x".into()], vec!["s".into(), "y".into()]]);
        assert_eq!(out, "A     BB\nlong  x\ns     y\n");
    }

    #[test]
    fn cells_and_reports_read_well() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(["a", "b"])), "a,b");
        assert_eq!(cell(&json!(true)), "yes");
        let r = json!({"bindings_removed": 1, "devices_notified": ["aa"], "devices_unreachable": [], "changed": true});
        assert_eq!(
            report("deactivate", "bob", &r),
            "deactivate bob: 1 binding removed; notified: aa; unreachable: -\n"
        );
    }
}
