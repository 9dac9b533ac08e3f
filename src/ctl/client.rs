//! The HTTP side of `deskline ctl`: a blocking ureq client of the admin API that turns the API's
//! JSON errors into one clear line, and resolves the bearer token.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// Why a ctl command failed; the text is what the operator sees after `deskline ctl: `.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Server(String),
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "no token: pass --token, set DESKLINE_TOKEN, or point --data-dir at the server's data dir ({0} not readable)"
    )]
    NoToken(String),
    #[error("{0}")]
    Usage(String),
    #[error("the server's answer is not JSON: {0}")]
    BadAnswer(String),
}

/// A client of one server with one token.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// The token: `--token`/`DESKLINE_TOKEN` if given, else `DATA_DIR/admin.token`.
pub fn resolve_token(given: Option<&str>, data_dir: &Path) -> Result<String, CtlError> {
    if let Some(t) = given.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(t.to_owned());
    }
    let path = data_dir.join(crate::admin::auth::ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => Err(CtlError::NoToken(path.display().to_string())),
    }
}

impl Client {
    pub fn new(base: &str, token: String) -> Client {
        let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).build();
        Client { base: base.trim_end_matches('/').to_owned(), token, agent }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .timeout(Duration::from_secs(60))
    }

    /// Sends a request and reads the JSON answer (`Null` for an empty one).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CtlError> {
        let req = self.request(method, path);
        let result = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        let response = result.map_err(|e| self.error(e))?;
        let text = response.into_string().map_err(|e| CtlError::BadAnswer(e.to_string()))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| CtlError::BadAnswer(e.to_string()))
    }

    pub fn get(&self, path: &str) -> Result<Value, CtlError> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, CtlError> {
        self.call("POST", path, body)
    }

    /// Reads the event stream, calling `on_event(kind, data)` for each event until it returns
    /// false or the stream ends.
    pub fn follow_events(&self, mut on_event: impl FnMut(&str, &str) -> bool) -> Result<(), CtlError> {
        let response = self
            .agent
            .get(&format!("{}/api/v1/events", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Accept", "text/event-stream")
            .call()
            .map_err(|e| self.error(e))?;
        let reader = std::io::BufReader::new(response.into_reader());
        let (mut kind, mut data) = (String::from("message"), String::new());
        for line in reader.lines() {
            let line = line.map_err(|e| CtlError::Unreachable { url: self.base.clone(), detail: e.to_string() })?;
            if line.is_empty() {
                if !data.is_empty() && !on_event(&kind, &data) {
                    return Ok(());
                }
                kind = "message".into();
                data.clear();
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        Ok(())
    }

    fn error(&self, e: ureq::Error) -> CtlError {
        match e {
            ureq::Error::Status(code, response) => {
                let text = response.into_string().unwrap_or_default();
                let detail = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["detail"].as_str().or(v["error"].as_str()).map(str::to_owned))
                    .unwrap_or_else(|| format!("HTTP {code}"));
                CtlError::Server(detail)
            }
            ureq::Error::Transport(t) => CtlError::Unreachable { url: self.base.clone(), detail: t.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_flag_or_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve_token(Some(" abc \n"), dir.path()).unwrap(), "abc");
        assert!(matches!(resolve_token(None, dir.path()), Err(CtlError::NoToken(_))));
        std::fs::write(dir.path().join("admin.token"), "dlt_x\n").unwrap();
        assert_eq!(resolve_token(None, dir.path()).unwrap(), "dlt_x");
        assert_eq!(resolve_token(Some(""), dir.path()).unwrap(), "dlt_x");
    }
}
