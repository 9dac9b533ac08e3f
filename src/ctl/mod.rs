//! The operator's command line client of the admin API: `deskline ctl ...`.
//!
//! Every command is one or two admin API calls; output is an aligned table (or a one-line summary),
//! or the API's JSON with `--json`. The token comes from `--token`, `DESKLINE_TOKEN`, or the data
//! dir's `admin.token`. A failure prints `deskline ctl: <what the server said>` and exits with 1.

mod batch;
mod client;
mod table;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use serde_json::{json, Value};

pub use client::{Client, CtlError};

/// `deskline ctl`'s flags and command.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The admin API's address.
    #[arg(long, global = true, env = "DESKLINE_URL", default_value = "http://127.0.0.1:9080")]
    pub url: String,
    /// A bearer token (else DESKLINE_TOKEN, else DATA_DIR/admin.token).
    #[arg(long, global = true, env = "DESKLINE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server's data dir, where the first admin token is (admin.token).
    #[arg(long, global = true, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// What `deskline ctl` can do.
#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// List the live registrations (bindings), optionally filtered.
    Registrations {
        #[arg(long)]
        user: Option<String>,
        /// A device's MAC, any common form.
        #[arg(long)]
        mac: Option<String>,
        /// An address of record (sip:1001@domain) or an extension.
        #[arg(long)]
        aor: Option<String>,
        /// udp, tcp or tls.
        #[arg(long)]
        transport: Option<String>,
    },
    /// List devices, or show one.
    Devices {
        /// Show only this device.
        mac: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// Only devices with (true) or without (false) a registration.
        #[arg(long)]
        registered: Option<bool>,
    },
    /// List users, or show one.
    Users {
        /// Show only this user.
        username: Option<String>,
    },
    /// Suspend a user (or, with --file, every user named in a file, in one batch): registrations
    /// removed, phones told, REGISTER refused.
    Deactivate {
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        user: Option<String>,
        /// A file of usernames, one per line (`-`: standard input), deactivated in one batch.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Lift a suspension (or, with --file, those of every user named in a file).
    Reactivate {
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        user: Option<String>,
        /// A file of usernames, one per line (`-`: standard input), reactivated in one batch.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Set a user's login password (registrations are kept).
    ResetPassword {
        user: String,
        /// The new password (else read from standard input).
        #[arg(long)]
        password: Option<String>,
    },
    /// Sign a user out everywhere: registrations removed, device credentials rotated.
    SignOut { user: String },
    /// Tell a phone to re-fetch its config.
    Resync { mac: String },
    /// Counts by state.
    Stats,
    /// The newest audit log entries.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print the live event stream.
    Events {
        /// Keep following (the default; accepted for clarity).
        #[arg(long)]
        follow: bool,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
}

/// Runs a ctl command. On failure prints `deskline ctl: <error>` to stderr and exits with 1.
pub fn run(args: CtlArgs) -> anyhow::Result<()> {
    if let Err(e) = execute(&args) {
        eprintln!("deskline ctl: {e}");
        std::process::exit(1);
    }
    Ok(())
}

/// Runs a ctl command, returning its error instead of exiting.
pub fn execute(args: &CtlArgs) -> Result<(), CtlError> {
    let token = client::resolve_token(args.token.as_deref(), &args.data_dir)?;
    let client = Client::new(&args.url, token);
    let out = match &args.command {
        CtlCommand::Events { count, .. } => return follow_events(&client, *count, args.json),
        command => output(&client, command, args.json)?,
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    Ok(())
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    query_value(s)
}

fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let qs: Vec<String> =
        pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", query_value(v)))).collect();
    if qs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", qs.join("&"))
    }
}

fn output(client: &Client, command: &CtlCommand, json: bool) -> Result<String, CtlError> {
    let render = |v: &Value, table: fn(&Value) -> String| if json { pretty(v) } else { table(v) };
    Ok(match command {
        CtlCommand::Registrations { user, mac, aor, transport } => {
            let q =
                [("user", user.clone()), ("mac", mac.clone()), ("aor", aor.clone()), ("transport", transport.clone())];
            render(&client.get(&with_query("/api/v1/registrations", &q))?, table::registrations)
        }
        CtlCommand::Devices { mac: Some(mac), .. } => {
            render(&client.get(&format!("/api/v1/devices/{}", seg(mac)))?, table::record)
        }
        CtlCommand::Devices { mac: None, user, registered } => {
            let q = [("user", user.clone()), ("registered", registered.map(|r| r.to_string()))];
            render(&client.get(&with_query("/api/v1/devices", &q))?, table::devices)
        }
        CtlCommand::Users { username: Some(u) } => {
            render(&client.get(&format!("/api/v1/users/{}", seg(u)))?, table::record)
        }
        CtlCommand::Users { username: None } => render(&client.get("/api/v1/users")?, table::users),
        CtlCommand::Deactivate { file: Some(f), .. } => batch::run(client, "deactivate", f, json)?,
        CtlCommand::Reactivate { file: Some(f), .. } => batch::run(client, "reactivate", f, json)?,
        CtlCommand::Deactivate { user, .. } => action(client, "deactivate", user.as_deref().unwrap_or_default(), json)?,
        CtlCommand::Reactivate { user, .. } => action(client, "reactivate", user.as_deref().unwrap_or_default(), json)?,
        CtlCommand::SignOut { user } => action(client, "sign-out", user, json)?,
        CtlCommand::ResetPassword { user, password } => {
            let password = match password {
                Some(p) => p.clone(),
                None => read_password(user)?,
            };
            client.post(&format!("/api/v1/users/{}/password", seg(user)), Some(&json!({ "password": password })))?;
            if json {
                pretty(&json!({"user": user, "password_set": true}))
            } else {
                format!("password of {user} set\n")
            }
        }
        CtlCommand::Resync { mac } => {
            let v = client.post(&format!("/api/v1/devices/{}/resync", seg(mac)), None)?;
            let reached =
                if v["notified"] == Value::Bool(true) { "notified" } else { "not reachable now; resync pending" };
            if json {
                pretty(&v)
            } else {
                format!("resync {mac}: {reached}\n")
            }
        }
        CtlCommand::Stats => render(&client.get("/api/v1/stats")?, table::record),
        CtlCommand::Audit { limit } => {
            let v = client.get(&format!("/api/v1/audit?limit={limit}"))?;
            let fields = ["at", "actor", "action", "target", "detail"];
            if json {
                pretty(&v)
            } else {
                table::render(&["AT", "ACTOR", "ACTION", "TARGET", "DETAIL"], &table::rows(&v, &fields))
            }
        }
        CtlCommand::Events { .. } => unreachable!("handled by follow_events"),
    })
}

fn pretty(v: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
}

fn action(client: &Client, action: &str, user: &str, json: bool) -> Result<String, CtlError> {
    let v = client.post(&format!("/api/v1/users/{}/{action}", seg(user)), None)?;
    Ok(if json { pretty(&v) } else { table::report(action, user, &v) })
}

/// Reads a new password from standard input (prompting when it is a terminal).
fn read_password(user: &str) -> Result<String, CtlError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("new password for {user}: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| CtlError::Usage(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(CtlError::Usage("no password given (use --password or write it to standard input)".into()));
    }
    Ok(password)
}

fn follow_events(client: &Client, count: Option<usize>, json: bool) -> Result<(), CtlError> {
    let mut seen = 0usize;
    client.follow_events(|kind, data| {
        let line = if json {
            data.to_owned()
        } else {
            let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            let at = v["at"].as_str().unwrap_or("-").to_owned();
            let ids: Vec<String> = v
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "at" && *k != "kind")
                        .map(|(k, v)| format!("{k}={}", table::cell(v)))
                        .collect()
                })
                .unwrap_or_default();
            format!("{at}  {kind:<18} {}", ids.join(" "))
        };
        let mut stdout = std::io::stdout().lock();
        let ok = writeln!(stdout, "{line}").and_then(|_| stdout.flush()).is_ok();
        seen += 1;
        ok && count.is_none_or(|c| seen < c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(clap::Subcommand)]
    enum Top {
        Ctl(CtlArgs),
    }

    #[test]
    fn flags_parse_before_and_after_the_command() {
        let Top::Ctl(a) =
            Cli::parse_from(["deskline", "ctl", "--json", "registrations", "--user", "bob", "--url", "http://x:1"]).cmd;
        assert!(a.json);
        assert_eq!(a.url, "http://x:1");
        assert!(matches!(a.command, CtlCommand::Registrations { user: Some(ref u), .. } if u == "bob"));
        let Top::Ctl(a) = Cli::parse_from(["deskline", "ctl", "reset-password", "bob", "--password", "p"]).cmd;
        assert!(matches!(a.command, CtlCommand::ResetPassword { ref user, password: Some(_) } if user == "bob"));
    }

    #[test]
    fn queries_are_encoded() {
        let q = with_query("/r", &[("aor", Some("sip:1@x y".into())), ("user", None)]);
        assert_eq!(q, "/r?aor=sip%3A1%40x%20y");
    }

    #[test]
    fn unreachable_server_is_one_clear_error() {
        let client = Client::new("http://127.0.0.1:1", "t".into());
        let e = client.get("/api/v1/users").unwrap_err();
        assert!(e.to_string().starts_with("cannot reach http://127.0.0.1:1"), "{e}");
    }
}
