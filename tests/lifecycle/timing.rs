//! A figure, not an assertion: how long a deactivate of a user with 20 UDP phones takes to
//! answer, and until the last phone has its NOTIFY. Median of 5 runs, printed as
//! `DEACTIVATE_20_PHONES answer_ms=.. last_notify_ms=..`.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::*;
use crate::support::{TestServer, Transport};

const PHONES: usize = 20;
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deactivate_20_phones_timing() {
    let srv = TestServer::start_with(|cfg| crate::support::server::toml_set(cfg, "sip", "max_contacts_per_aor", "32"));
    let admin = srv.admin();
    let mut answers = Vec::new();
    let mut lasts = Vec::new();
    for run in 0..RUNS {
        let user = format!("bulk{run}");
        let ext = format!("{}", 500000 + run);
        admin.create_user(&user, &ext).await;
        let mut phones = Vec::new();
        for _ in 0..PHONES {
            let d = create_device(&admin, &new_mac(), &user, &ext, Vendor::Yealink).await;
            phones.push(registered_phone(&srv, &d, Transport::Udp).await);
        }
        assert_eq!(bindings(&admin, &ext).await.len(), PHONES, "run {run}: all {PHONES} phones bound");
        let handles: Vec<_> =
            phones.into_iter().map(|p| spawn_notify_wait(p, Duration::from_secs(10), Duration::ZERO)).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        let report = admin.deactivate(&user).await;
        let answer = t0.elapsed();
        let results = join_phones(handles).await;
        let mut last = Duration::ZERO;
        for (p, at) in &results {
            let at = at.unwrap_or_else(|| panic!("run {run}: phone {} got no NOTIFY; report {report}", p.mac));
            last = last.max(at - t0);
        }
        assert_eq!(report["bindings_removed"].as_u64(), Some(PHONES as u64), "run {run}: {report}");
        assert_eq!(macs(&report, "devices_notified").len(), PHONES, "run {run}: {report}");
        eprintln!(
            "run {run}: answer {:.1} ms, last NOTIFY {:.1} ms",
            answer.as_secs_f64() * 1e3,
            last.as_secs_f64() * 1e3
        );
        answers.push(answer.as_secs_f64() * 1e3);
        lasts.push(last.as_secs_f64() * 1e3);
    }
    let line = format!("DEACTIVATE_20_PHONES answer_ms={:.1} last_notify_ms={:.1}", median(answers), median(lasts));
    println!("{line}");
    eprintln!("{line}");
}
