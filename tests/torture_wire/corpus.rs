//! `torture_corpus_on_the_wire`: every RFC 4475, RFC 5118 and variant message over UDP and TCP,
//! judged against the manifest table, with a report per file and per manifest class.

use std::collections::BTreeMap;
use std::path::Path;

use super::manifest::{expectations, Out, Row};
use super::observe::{judge, send_tcp, send_udp};
use super::support::{SipUa, Transport};
use super::{assert_still_serving, corpus_dir, torture_server};

fn list_dat(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .map(|p| p.strip_prefix(corpus_dir()).unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_corpus_on_the_wire() {
    let mut srv = torture_server().await;
    let table = expectations();

    assert_table_covers_the_corpus(&table);

    let mut reg = SipUa::udp(srv.udp_addr()).await;
    assert_still_serving(&mut reg, "start-up").await;

    // (file, class, transport, expected, got, verdict)
    let mut lines: Vec<SendLine> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    // class → (files passing, files, sends passing, sends)
    let mut per_class: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut liberal: Vec<String> = Vec::new();

    for r in &table {
        let bytes = std::fs::read(corpus_dir().join(r.file)).unwrap();
        let mut file_ok = true;
        let mut sends = Vec::new();
        if let Some(out) = r.udp {
            let expect_answer =
                matches!(out, Out::Status(_)) || r.alts.iter().any(|(o, _)| matches!(o, Out::Status(_)));
            sends.push((Transport::Udp, out, send_udp(&srv, &bytes, true, expect_answer).await));
            assert_still_serving(&mut reg, &format!("{} over UDP", r.file)).await;
        }
        sends.push((Transport::Tcp, r.tcp, send_tcp(&srv, &bytes, r.tcp).await));
        assert_still_serving(&mut reg, &format!("{} over TCP", r.file)).await;

        let corpus = r.file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let entry = per_class.entry(format!("{corpus:<13} {}", r.class)).or_default();
        for (t, out, obs) in sends {
            let strict = judge(r.file, t, out, &obs);
            let verdict = match &strict {
                Ok(()) => "ok (strict)".to_string(),
                Err(why) => match r.alts.iter().find(|(alt, _)| judge(r.file, t, *alt, &obs).is_ok()) {
                    Some((_, note)) => {
                        liberal.push(format!("{} over {t}: {note}", r.file));
                        format!("ok (allowed: {note})")
                    }
                    None => {
                        file_ok = false;
                        failures.push(format!("{} over {t}: expected {out}, got {} — {why}", r.file, obs.describe()));
                        if let Some(m) = obs.answers.first() {
                            failures.push(format!("    answer:\n{}", indent(&m.raw)));
                        }
                        format!("MISMATCH: {why}")
                    }
                },
            };
            entry.3 += 1;
            if verdict.starts_with("ok") {
                entry.2 += 1;
            }
            let expected = if r.alts.is_empty() {
                out.to_string()
            } else {
                let alts: Vec<String> = r.alts.iter().map(|(o, _)| o.to_string()).collect();
                format!("{out} (or {})", alts.join("/"))
            };
            lines.push((r.file.to_string(), r.class.to_string(), t.via_name(), expected, obs.describe(), verdict));
        }
        entry.1 += 1;
        if file_ok {
            entry.0 += 1;
        }
    }
    assert!(srv.is_running(), "the server died during the corpus run");

    print_summary(&lines, &per_class, &liberal);
    assert!(
        failures.is_empty(),
        "SERVER MISBEHAVIOUR on {} torture send(s) (expectations come from MANIFEST.md; do not relax them):\n{}",
        failures.iter().filter(|f| !f.starts_with("    ")).count(),
        failures.join("\n")
    );
}

/// The expectation table names exactly the corpus's files, no more, no less.
fn assert_table_covers_the_corpus(table: &[Row]) {
    let mut files: Vec<String> = Vec::new();
    for d in ["rfc4475", "rfc5118/wire", "variants"] {
        files.extend(list_dat(&corpus_dir().join(d)));
    }
    let mut in_table: Vec<String> = table.iter().map(|r| r.file.to_string()).collect();
    in_table.sort();
    files.sort();
    assert_eq!(files, in_table, "the expectation table and the corpus files differ");
}

/// The per-send table, the tally per manifest class, and what passed only under an allowance.
fn print_summary(lines: &[SendLine], per_class: &BTreeMap<String, (usize, usize, usize, usize)>, liberal: &[String]) {
    println!("\n{:<46} {:<4} {:<28} {:<22} verdict", "file", "via", "expected", "got");
    for (file, _class, t, exp, got, verdict) in lines {
        println!("{file:<46} {t:<4} {exp:<28} {got:<22} {verdict}");
    }
    println!("\nper manifest class (files fully as expected; sends as expected):");
    for (class, (fok, f, sok, s)) in per_class {
        println!("  {class:<50} {fok}/{f} files  {sok}/{s} sends");
    }
    if !liberal.is_empty() {
        println!("\naccepted under the manifest's allowance (not the strict expectation):");
        for l in liberal {
            println!("  {l}");
        }
    }
}

/// One send's row: file, class, transport, expected, got, verdict.
type SendLine = (String, String, &'static str, String, String, String);

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}
