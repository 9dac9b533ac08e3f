//! Row "deactivate", last column: "never a new binding, not even from a REGISTER that was in
//! flight when the user was suspended". A phone sends authenticated REGISTERs in a tight loop
//! while the user is deactivated; repeated with a fresh user and device each time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::common::*;
use crate::support::sip_ua::{ContactSpec, RegisterParams};
use crate::support::{TestServer, Transport};

const ITERATIONS: usize = 50;

/// One REGISTER of the loop: when its final request left, when its final response came, status.
#[derive(Debug, Clone)]
struct Sample {
    sent: Instant,
    received: Instant,
    status: u16,
    reason: String,
    raw: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_racing_deactivate_never_leaves_a_binding() {
    let srv = TestServer::start();
    let admin = srv.admin();
    let mut in_flight_total = 0usize;
    let mut ok_before_total = 0usize;
    let mut failures: Vec<String> = Vec::new();
    for i in 0..ITERATIONS {
        let user = format!("race{i}");
        let ext = format!("{}", 300000 + i);
        admin.create_user(&user, &ext).await;
        let dev = create_device(&admin, &new_mac(), &user, &ext, Vendor::Yealink).await;
        // The phone has two flows (UDP and TCP), each sending REGISTERs back to back, so that
        // more than one REGISTER can be in the registrar when the suspension lands.
        let transports = [[Transport::Udp, Transport::Tcp], [Transport::Tcp, Transport::Udp]][i % 2];
        let stop = Arc::new(AtomicBool::new(false));
        let oks = Arc::new(AtomicUsize::new(0));
        let mut loopers = Vec::new();
        for transport in transports {
            let phone = registered_phone(&srv, &dev, transport).await;
            loopers.push(spawn_loop(phone, stop.clone(), oks.clone()));
        }
        let transport = format!("{}+{}", transports[0], transports[1]);

        // Let the loop get going (at least one 200 from it), then a random moment.
        let started = crate::support::wait_until(Duration::from_secs(5), || async {
            (oks.load(Ordering::SeqCst) > 0).then_some(())
        })
        .await;
        assert!(started.is_some(), "iteration {i}: the REGISTER loop never got a 200");
        let jitter = rand::thread_rng().gen_range(0..25);
        tokio::time::sleep(Duration::from_millis(jitter)).await;

        let report = admin.deactivate(&user).await;
        let answered = Instant::now();
        let right_after = bindings(&admin, &ext).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::SeqCst);
        let mut samples = Vec::new();
        let mut phones = Vec::new();
        for l in loopers {
            let (phone, s) = l.await.expect("REGISTER loop");
            samples.extend(s);
            phones.push(phone);
        }
        let wait = Duration::from_millis(500).saturating_sub(answered.elapsed());
        tokio::time::sleep(wait).await;
        let later = bindings(&admin, &ext).await;
        let by_device = bindings_of_device(&admin, &dev.mac).await;

        let mut problems = Vec::new();
        if !right_after.is_empty() {
            problems.push(format!("binding right after the deactivate answer: {right_after:?}"));
        }
        if !later.is_empty() || !by_device.is_empty() {
            problems.push(format!("binding 500 ms after the deactivate answer: aor {later:?}, device {by_device:?}"));
        }
        problems.extend(answer_problems(&samples, answered));
        if phones.iter().all(|p| p.notifies.is_empty()) {
            problems.push(format!("the phone got no check-sync NOTIFY on any flow; report {report}"));
        }
        in_flight_total += samples.iter().filter(|s| s.sent <= answered && s.received > answered).count();
        ok_before_total += samples.iter().filter(|s| s.status == 200).count();
        if !problems.is_empty() {
            failures.push(format!(
                "iteration {i} ({transport}, user {user}, ext {ext}, report {report}):\n  {}",
                problems.join("\n  ")
            ));
        }
    }
    eprintln!(
        "RACE: {ITERATIONS} iterations, {ok_before_total} REGISTERs answered 200 before the suspension, \
         {in_flight_total} in flight across the deactivate answer, {} iterations failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{} of {ITERATIONS} iterations failed:\n{}", failures.len(), failures.join("\n"));
}

/// What is wrong with the REGISTER loops' answers around the deactivate answer at `answered`:
/// none answered after it, one answered after it with anything but `403 Account Suspended`, or
/// any answer but 200 and 403.
fn answer_problems(samples: &[Sample], answered: Instant) -> Vec<String> {
    let mut problems = Vec::new();
    let late: Vec<&Sample> = samples.iter().filter(|s| s.received > answered).collect();
    if late.is_empty() {
        problems.push("no REGISTER answered after the deactivate answer (loop too slow?)".into());
    }
    for s in &late {
        if s.status != 403 || s.reason != "Account Suspended" {
            problems.push(format!(
                "a REGISTER {} after the deactivate answer got {} {} (sent {} ms {} the answer):\n{}",
                if s.sent > answered { "sent" } else { "answered" },
                s.status,
                s.reason,
                if s.sent > answered { (s.sent - answered).as_millis() } else { (answered - s.sent).as_millis() },
                if s.sent > answered { "after" } else { "before" },
                s.raw
            ));
            break;
        }
    }
    for s in samples {
        if !matches!(s.status, 200 | 403) {
            problems.push(format!("unexpected answer {} {} in the loop:\n{}", s.status, s.reason, s.raw));
            break;
        }
    }
    problems
}

/// REGISTERs back to back on one flow until `stop`, each timed; NOTIFYs that come meanwhile are
/// answered.
fn spawn_loop(
    mut phone: crate::support::Phone,
    stop: Arc<AtomicBool>,
    oks: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<(crate::support::Phone, Vec<Sample>)> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut p = RegisterParams::new(&phone.ext, &phone.credentials.username, &phone.credentials.password);
        p.expires = Some(phone.expires);
        p.contact = ContactSpec::Local;
        p.contact_params = phone.instance.as_ref().map(|i| format!(";+sip.instance=\"<{i}>\"")).unwrap_or_default();
        while !stop.load(Ordering::SeqCst) {
            // Each REGISTER carries Authorization (cached challenge, nc+1), like a phone's
            // refresh; a new challenge is answered inside.
            phone.ua.reuse_nonce = true;
            let sent = Instant::now();
            let r = phone.ua.register_with(&p).await;
            let received = Instant::now();
            let status = r.status().unwrap_or(0);
            if status == 200 {
                oks.fetch_add(1, Ordering::SeqCst);
            }
            samples.push(Sample {
                sent,
                received,
                status,
                reason: r.reason().unwrap_or("").to_string(),
                raw: r.raw.clone(),
            });
            while let Some(m) = phone.ua.queue.pop_front() {
                phone.handle(m).await;
            }
        }
        phone.poll(Duration::from_millis(50)).await;
        (phone, samples)
    })
}
