//! Telling phones to re-fetch their config: a check-sync NOTIFY (in the vendor's own flavour) to
//! every flow a device is known on. The action's answer waits a short while for the phones'
//! answers; a device that cannot be reached is marked "resync pending" and retried with backoff
//! until it answers, fetches its config, or registers again.

use std::sync::Arc;
use std::time::Duration;

use super::{ActionReport, Actions};
use crate::directory::{Device, Directory, Mac};
use crate::events::{Event, EventBus};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::registrar::{AddressOfRecord, Binding, Flow, Registrar};
use crate::sip::notify::{Notifier, NotifyOutcome, NotifyRequest};

/// How long an action's answer waits for the phones' answers.
pub(super) const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// Delays between retries for an unreachable device.
const RETRY_DELAYS: [u64; 6] = [5, 15, 45, 120, 300, 600];

/// Secrets phones held before an action replaced them, by device.
pub type HeldSecrets = std::collections::HashMap<Mac, String>;

/// The secrets to answer a phone's challenge with: what it held before the action, a rotated-out
/// secret still in its overlap, then the current one.
fn secrets_to_try(device: &Device, held: Option<&str>) -> Vec<String> {
    let current = device.credentials.secret.expose();
    let mut out: Vec<String> = Vec::with_capacity(3);
    let previous = device.previous_credentials.as_ref().map(|p| p.secret.expose());
    for s in [held, previous, Some(current)].into_iter().flatten() {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// The Event header each vendor's phones resync on (vendors.md §4).
pub fn check_sync_event(vendor: Option<&str>) -> &'static str {
    match vendor.map(|v| v.to_ascii_lowercase()) {
        Some(v) if v.contains("cisco") => "resync",
        Some(v) if v.contains("snom") || v.contains("yealink") => "check-sync;reboot=false",
        _ => "check-sync",
    }
}

/// Everything needed to notify devices, cheap to move into background tasks.
#[derive(Clone)]
pub(super) struct Courier {
    pub(super) directory: Arc<Directory>,
    pub(super) registrar: Arc<Registrar>,
    notifier: Arc<Notifier>,
    pub(super) events: EventBus,
    metrics: Arc<Metrics>,
}

/// Where a device can be reached: (contact, AOR, flow).
pub(super) type Target = (String, String, Flow);

impl Actions {
    pub(super) fn courier(&self) -> Courier {
        Courier {
            directory: self.directory.clone(),
            registrar: self.registrar.clone(),
            notifier: self.notifier.clone(),
            events: self.events.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Notifies each device on every flow it is known on; `removed` are bindings just taken away;
    /// `held` are the secrets the phones still hold when the action just replaced them (a phone
    /// that challenges the NOTIFY checks our answer against what it knows).
    pub(super) async fn notify_devices(
        &self,
        devices: &[Device],
        removed: &[Binding],
        held: &HeldSecrets,
    ) -> ActionReport {
        let courier = self.courier();
        let mut tasks = Vec::with_capacity(devices.len());
        for device in devices {
            let mine: Vec<&Binding> =
                removed.iter().filter(|b| b.device.as_deref() == Some(device.mac.as_str())).collect();
            let current = courier.registrar.location().bindings_of_device(device.mac.as_str());
            let targets = courier.targets(device, &mine, &current);
            let c = courier.clone();
            let device = device.clone();
            let held = held.get(&device.mac).cloned();
            tasks.push((
                device.mac.clone(),
                tokio::spawn(async move {
                    let delivered = c.deliver(&device, targets, held.as_deref()).await;
                    c.settle(&device.mac, delivered).await;
                    delivered
                }),
            ));
        }
        let mut report = ActionReport::default();
        let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        for (mac, task) in tasks {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(true)) => report.devices_notified.push(mac.to_string()),
                Ok(_) => report.devices_unreachable.push(mac.to_string()),
                // No answer yet: unreachable for now, shown as resync pending; the transaction goes
                // on in the background and clears it if the phone answers after all.
                Err(_) => {
                    let _ = self.directory.set_resync_pending(&mac, true).await;
                    report.devices_unreachable.push(mac.to_string());
                }
            }
        }
        report
    }
}

impl Courier {
    /// Every (contact, AOR, flow) a device can be reached on now: `removed` are its bindings an
    /// action just took away, `current` its live ones; else its last known contact.
    pub(super) fn targets(
        &self,
        device: &Device,
        removed: &[&Binding],
        current: &[(AddressOfRecord, Binding)],
    ) -> Vec<Target> {
        let mut targets: Vec<Target> = Vec::new();
        fn add(targets: &mut Vec<Target>, contact: &str, aor: &str, flow: Flow) {
            if !targets.iter().any(|t| t.2 == flow) {
                targets.push((contact.to_owned(), aor.to_owned(), flow));
            }
        }
        for b in removed {
            let aor = device.last_contact.as_ref().map(|l| l.aor.clone()).unwrap_or_default();
            add(&mut targets, &b.contact, &aor, b.flow);
        }
        for (aor, b) in current {
            add(&mut targets, &b.contact, aor.as_str(), b.flow);
        }
        if targets.is_empty() {
            if let Some(last) = &device.last_contact {
                add(&mut targets, &last.contact, &last.aor, last.flow);
            }
        }
        targets
    }

    /// After a device's NOTIFY is over: delivered clears a pending resync, failed marks it and
    /// schedules retries.
    async fn settle(&self, mac: &Mac, delivered: bool) {
        if delivered {
            if self.directory.device(mac).is_some_and(|d| d.resync_pending) {
                let _ = self.directory.set_resync_pending(mac, false).await;
                self.events.publish(Event::new("resync_done").with("mac", mac.to_string()).with("via", "notify"));
            }
        } else {
            let _ = self.directory.set_resync_pending(mac, true).await;
            self.clone().retry_later(mac.clone());
        }
    }

    /// Sends to every target; true when at least one phone answered 2xx.
    pub(super) async fn deliver(&self, device: &Device, targets: Vec<Target>, held: Option<&str>) -> bool {
        let event = check_sync_event(device.vendor.as_deref());
        let mut delivered = false;
        let mut sends = Vec::new();
        for (contact, aor, flow) in targets {
            let aor = if aor.is_empty() {
                format!("sip:{}@{}", device.credentials.username, self.registrar.settings().domain)
            } else {
                aor
            };
            let request = NotifyRequest {
                target: contact,
                flow,
                event: event.to_owned(),
                aor,
                auth_user: device.credentials.username.clone(),
                auth_secrets: secrets_to_try(device, held),
            };
            let notifier = self.notifier.clone();
            sends.push(tokio::spawn(async move { notifier.send(&request).await }));
        }
        for send in sends {
            let outcome = send.await.unwrap_or(NotifyOutcome::NoFlow);
            let label = match &outcome {
                NotifyOutcome::Delivered => "ok",
                NotifyOutcome::Refused(_) => "refused",
                NotifyOutcome::TimedOut => "timeout",
                NotifyOutcome::NoFlow => "no_flow",
            };
            self.metrics.notify_outcomes.get_or_create(&OutcomeLabels { outcome: label.into() }).inc();
            self.events.publish(
                Event::new("resync_sent")
                    .with("mac", device.mac.to_string())
                    .with("event", event)
                    .with("outcome", label),
            );
            delivered |= outcome == NotifyOutcome::Delivered;
        }
        delivered
    }

    /// Retries an unreachable device with backoff while it stays "resync pending".
    pub(super) fn retry_later(self, mac: Mac) {
        tokio::spawn(async move {
            for delay in RETRY_DELAYS {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                let Some(device) = self.directory.device(&mac) else { return };
                if !device.resync_pending {
                    return;
                }
                let current = self.registrar.location().bindings_of_device(mac.as_str());
                let targets = self.targets(&device, &[], &current);
                if !targets.is_empty() && self.deliver(&device, targets, None).await {
                    let _ = self.directory.set_resync_pending(&mac, false).await;
                    self.events.publish(Event::new("resync_done").with("mac", mac.to_string()).with("via", "notify"));
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_events() {
        assert_eq!(check_sync_event(Some("Cisco")), "resync");
        assert_eq!(check_sync_event(Some("yealink")), "check-sync;reboot=false");
        assert_eq!(check_sync_event(Some("poly")), "check-sync");
        assert_eq!(check_sync_event(None), "check-sync");
    }
}
