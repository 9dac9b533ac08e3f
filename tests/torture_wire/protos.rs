//! `protos_c07_sip`: every PROTOS c07-sip sample (with its teardown) over UDP and TCP; the server
//! must not crash or hang, and registrations must keep working.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::support::SipUa;
use super::via::rewrite_top_via;
use super::{assert_still_serving, collect, corpus_dir, torture_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protos_c07_sip() {
    let mut srv = torture_server().await;
    let dir = corpus_dir().join("protos");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".sip") && !n.ends_with(".teardown.sip")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 100, "expected the PROTOS sample, found {} cases in {}", cases.len(), dir.display());

    let mut reg = SipUa::udp(srv.udp_addr()).await;
    assert_still_serving(&mut reg, "start-up").await;

    // transport → answer → count
    let mut hist: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    let wait = Duration::from_millis(250);

    for (i, case) in cases.iter().enumerate() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(case).unwrap();
        let teardown_path = case.with_file_name(name.replace(".sip", ".teardown.sip"));
        let teardown = std::fs::read(&teardown_path).ok();

        // UDP: case, then its teardown, from the same socket.
        {
            let mut ua = SipUa::udp(srv.udp_addr()).await;
            let local = ua.local_hostport();
            let key = match rewrite_top_via(&bytes, &local) {
                None => {
                    notes.push(format!("{name}: top Via not rewritable, TCP only"));
                    "not sent (Via)".to_string()
                }
                Some(m) => match ua.try_send_raw(&m).await {
                    Err(e) => {
                        notes.push(format!("{name}: UDP send of {} bytes refused by the OS ({e}); TCP only", m.len()));
                        "not sent (too big)".to_string()
                    }
                    Ok(()) => {
                        let answers = collect(&mut ua, wait, Duration::from_millis(50)).await;
                        let k = answers
                            .first()
                            .and_then(|m| m.status())
                            .map(|c| c.to_string())
                            .unwrap_or("no answer".into());
                        if let Some(td) = teardown.as_ref().and_then(|t| rewrite_top_via(t, &local)) {
                            let _ = ua.try_send_raw(&td).await;
                            let _ = collect(&mut ua, wait, Duration::from_millis(50)).await;
                        }
                        k
                    }
                },
            };
            *hist.entry(("UDP", key)).or_default() += 1;
        }
        // TCP: a fresh connection, case then teardown (if the connection is still open).
        {
            let mut ua = SipUa::tcp(srv.tcp_addr()).await;
            let sent = ua.try_send_raw(&bytes).await;
            let answers = collect(&mut ua, wait, Duration::from_millis(50)).await;
            let mut key = answers.first().and_then(|m| m.status()).map(|c| c.to_string()).unwrap_or("no answer".into());
            if sent.is_err() || ua.closed {
                key.push_str("+closed");
            } else if let Some(td) = &teardown {
                let _ = ua.try_send_raw(td).await;
                let _ = collect(&mut ua, Duration::from_millis(100), Duration::from_millis(50)).await;
            }
            *hist.entry(("TCP", key)).or_default() += 1;
        }
        if (i + 1) % 10 == 0 {
            assert!(srv.is_running(), "the server died after PROTOS case {name}");
            assert_still_serving(&mut reg, &format!("PROTOS case {name} (case #{})", i + 1)).await;
        }
    }
    assert!(srv.is_running(), "the server died during the PROTOS run");
    assert_still_serving(&mut reg, "the last PROTOS case").await;
    // The server also still answers OPTIONS on a new TCP connection.
    let mut ua = SipUa::tcp(srv.tcp_addr()).await;
    let resp = ua.options().await;
    assert_eq!(resp.status(), Some(200), "OPTIONS after PROTOS:\n{}", resp.raw);

    println!("\nPROTOS c07-sip: {} cases (each with its teardown) over UDP and TCP", cases.len());
    for ((t, k), n) in &hist {
        println!("  {t} {k:<24} {n}");
    }
    for n in &notes {
        println!("  note: {n}");
    }
}
