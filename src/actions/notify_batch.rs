//! Telling thousands of phones at once (a batch action): the same check-sync NOTIFY per device as
//! [`super::notify_devices`], sent from one background task with at most [`NOTIFY_CONCURRENCY`]
//! devices in flight and at most [`NOTIFY_RATE`] started a second, so the SIP transport, the client transactions and the runtime keep room for
//! the REGISTERs of everyone else. Devices that cannot be reached are marked "resync pending" in
//! bulk (a few store transactions, not one fsync each) and retried with the usual backoff.
//!
//! Progress is shared with the API handler ([`NotifyProgress`]): the answer waits a short while
//! and reports how many phones were notified, unreachable, or still pending. When the last device
//! is done, a `notify_batch_done` event and an INFO log line give the totals and the elapsed time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::notify_devices::Courier;
use super::Actions;
use crate::directory::{Device, Mac};
use crate::events::Event;
use crate::registrar::Binding;

/// Devices whose NOTIFY transactions run at the same time in a batch.
pub const NOTIFY_CONCURRENCY: usize = 64;
/// Devices a batch starts notifying per second at most: 10,000 phones in 2 s, spread out so the
/// NOTIFYs and their answers never take the UDP listener's and the runtime's time in one burst.
pub const NOTIFY_RATE: u32 = 5_000;

/// How far a batch's notifications have got.
pub struct NotifyProgress {
    total: usize,
    notified: AtomicUsize,
    unreachable: AtomicUsize,
    done: watch::Sender<bool>,
}

/// The counts of [`NotifyProgress`] at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct NotifyCounts {
    /// Devices that answered a NOTIFY with 2xx.
    pub notified: usize,
    /// Devices that could not be reached (marked "resync pending", retried with backoff).
    pub unreachable: usize,
    /// Devices whose NOTIFY is still queued or in flight (they go on in the background).
    pub pending: usize,
}

impl NotifyProgress {
    fn new(total: usize) -> NotifyProgress {
        let (done, _) = watch::channel(total == 0);
        NotifyProgress { total, notified: AtomicUsize::new(0), unreachable: AtomicUsize::new(0), done }
    }

    fn record(&self, delivered: bool) {
        let counter = if delivered { &self.notified } else { &self.unreachable };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> NotifyCounts {
        let notified = self.notified.load(Ordering::Relaxed);
        let unreachable = self.unreachable.load(Ordering::Relaxed);
        NotifyCounts { notified, unreachable, pending: self.total.saturating_sub(notified + unreachable) }
    }

    /// Waits until every device is done or `max` has passed; the counts then.
    pub async fn wait(&self, max: Duration) -> NotifyCounts {
        let mut rx = self.done.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|done| *done)).await;
        self.counts()
    }
}

/// What became of one device's notification.
struct Outcome {
    mac: Mac,
    was_pending: bool,
    delivered: bool,
}

impl Actions {
    /// Starts notifying `devices` in the background; `removed` are the bindings the action just
    /// took away (where the phones were).
    pub(super) fn notify_in_background(
        &self,
        action: &'static str,
        devices: Vec<Device>,
        removed: Vec<Binding>,
    ) -> Arc<NotifyProgress> {
        let progress = Arc::new(NotifyProgress::new(devices.len()));
        if !devices.is_empty() {
            tokio::spawn(self.courier().notify_all(action, devices, removed, progress.clone()));
        }
        progress
    }
}

impl Courier {
    async fn notify_all(
        self,
        action: &'static str,
        devices: Vec<Device>,
        removed: Vec<Binding>,
        progress: Arc<NotifyProgress>,
    ) {
        let started = Instant::now();
        let mut removed_of: HashMap<String, Vec<Binding>> = HashMap::new();
        for b in removed {
            if let Some(mac) = b.device.clone() {
                removed_of.entry(mac).or_default().push(b);
            }
        }
        let current = {
            let macs: HashSet<&str> = devices.iter().map(|d| d.mac.as_str()).collect();
            self.registrar.location().bindings_of_devices(&macs)
        };
        let permits = Arc::new(Semaphore::new(NOTIFY_CONCURRENCY));
        let mut tasks = JoinSet::new();
        let mut outcomes = Vec::with_capacity(devices.len());
        let pace = Duration::from_secs(1) / NOTIFY_RATE;
        for (i, device) in devices.into_iter().enumerate() {
            tokio::time::sleep_until((started + pace * i as u32).into()).await;
            let Ok(permit) = permits.clone().acquire_owned().await else { break };
            let mac = device.mac.as_str();
            let mine: Vec<&Binding> = removed_of.get(mac).map(|v| v.iter().collect()).unwrap_or_default();
            let targets = self.targets(&device, &mine, current.get(mac).map(Vec::as_slice).unwrap_or(&[]));
            let (courier, progress) = (self.clone(), progress.clone());
            tasks.spawn(async move {
                let delivered = !targets.is_empty() && courier.deliver(&device, targets, None).await;
                drop(permit);
                progress.record(delivered);
                Outcome { mac: device.mac, was_pending: device.resync_pending, delivered }
            });
            while let Some(done) = tasks.try_join_next() {
                outcomes.extend(done.ok());
            }
        }
        while let Some(done) = tasks.join_next().await {
            outcomes.extend(done.ok());
        }
        self.settle_all(outcomes).await;
        self.finish(action, &progress, started);
    }

    /// Marks the batch done and says so: an INFO line and a `notify_batch_done` event.
    fn finish(&self, action: &'static str, progress: &NotifyProgress, started: Instant) {
        let _ = progress.done.send(true);
        let counts = progress.counts();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            action,
            devices = progress.total,
            notified = counts.notified,
            unreachable = counts.unreachable,
            elapsed_ms,
            "batch notify done"
        );
        self.events.publish(
            Event::new("notify_batch_done")
                .with("action", action)
                .with("devices", progress.total)
                .with("notified", counts.notified)
                .with("unreachable", counts.unreachable)
                .with("elapsed_ms", elapsed_ms),
        );
    }

    /// Like the one-device settle, in bulk: failures marked "resync pending" and retried later;
    /// a pending mark cleared where the phone has now answered.
    async fn settle_all(&self, outcomes: Vec<Outcome>) {
        let (delivered, failed): (Vec<Outcome>, Vec<Outcome>) = outcomes.into_iter().partition(|o| o.delivered);
        let cleared: Vec<Mac> = delivered.into_iter().filter(|o| o.was_pending).map(|o| o.mac).collect();
        let failed: Vec<Mac> = failed.into_iter().map(|o| o.mac).collect();
        if let Err(e) = self.directory.set_resync_pending_many(failed.clone(), true).await {
            tracing::error!(error = %e, devices = failed.len(), "resync pending not recorded");
        }
        for mac in failed {
            self.clone().retry_later(mac);
        }
        if let Err(e) = self.directory.set_resync_pending_many(cleared.clone(), false).await {
            tracing::error!(error = %e, devices = cleared.len(), "resync pending not cleared");
        }
        for mac in cleared {
            self.events.publish(Event::new("resync_done").with("mac", mac.to_string()).with("via", "notify"));
        }
    }
}
