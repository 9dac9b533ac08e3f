//! `deskline ctl deactivate --file NAMES` and `reactivate --file NAMES`: the batch actions
//! (`POST /api/v1/users/deactivate` / `reactivate`) with the usernames read from a file (one per
//! line; blank lines and `#` comments skipped; `-` reads standard input).

use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

use super::{pretty, Client, CtlError};

/// The usernames of a names file.
pub fn read_names(path: &Path) -> Result<Vec<String>, CtlError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| CtlError::Usage(format!("reading {}: {e}", path.display())))?;
    let names: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    if names.is_empty() {
        return Err(CtlError::Usage(format!("{} names no user", path.display())));
    }
    Ok(names)
}

/// Runs a batch action on the users named in `file`.
pub fn run(client: &Client, action: &str, file: &Path, json: bool) -> Result<String, CtlError> {
    let names = read_names(file)?;
    let v = client.post(&format!("/api/v1/users/{action}"), Some(&json!({ "usernames": names })))?;
    Ok(if json { pretty(&v) } else { summary(action, &v) })
}

/// One line of totals, then one line per name not acted on.
pub fn summary(action: &str, v: &Value) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let unchanged = v["unchanged"].as_array().map(Vec::len).unwrap_or(0);
    let mut out = format!(
        "{action}: {} of {} users changed, {unchanged} unchanged, {} errors; {} bindings removed; \
         devices {}: notified {}, unreachable {}, pending {}; {} ms\n",
        n("changed"),
        n("requested"),
        v["errors"].as_array().map(Vec::len).unwrap_or(0),
        n("bindings_removed"),
        n("devices"),
        n("devices_notified"),
        n("devices_unreachable"),
        n("devices_pending"),
        n("elapsed_ms"),
    );
    for e in v["errors"].as_array().into_iter().flatten() {
        let field = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
        out.push_str(&format!("  {}: {} ({})\n", field("username"), field("error"), field("detail")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_file_skips_blanks_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.txt");
        std::fs::write(&path, "# leavers\nalice\n\n  bob \n").unwrap();
        assert_eq!(read_names(&path).unwrap(), ["alice", "bob"]);
        std::fs::write(&path, "# nobody\n").unwrap();
        assert!(read_names(&path).is_err());
    }

    #[test]
    fn summary_names_each_error() {
        let v = json!({"requested": 3, "changed": 1, "unchanged": ["b"], "bindings_removed": 2, "devices": 1,
            "devices_notified": 1, "errors": [{"username": "x", "error": "not_found", "detail": "user x not found"}]});
        let s = summary("deactivate", &v);
        assert!(s.starts_with("deactivate: 1 of 3 users changed, 1 unchanged, 1 errors; 2 bindings removed"), "{s}");
        assert!(s.contains("  x: not_found (user x not found)"), "{s}");
    }
}
