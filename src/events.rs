//! The event bus: every change the ops side may want to see (a phone registered, a binding expired,
//! a user deactivated, a config fetched...) is published here once, and any number of listeners (the
//! SSE stream of the admin API, the dashboard, tests) read it. Publishing never waits: the bus is a
//! bounded broadcast channel, so a slow reader misses events (and is told how many) instead of
//! slowing the registrar.

use serde::Serialize;
use tokio::sync::broadcast;

/// One change, as the event stream shows it. `kind` is the SSE event name (`registered`,
/// `refreshed`, `unregistered`, `expired`, `rejected`, `auth_failed`, `config_fetched`,
/// `resync_sent`, `resync_done`, `resync_failed`, `user_deactivated`, `user_reactivated`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub kind: &'static str,
    /// RFC 3339, UTC.
    pub at: String,
    /// The ids involved (`aor`, `contact`, `mac`, `user`, `source`, `reason`...), as strings.
    #[serde(flatten)]
    pub ids: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    pub fn new(kind: &'static str) -> Event {
        Event { kind, at: now_rfc3339(), ids: serde_json::Map::new() }
    }

    /// Adds one id; chainable.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Event {
        self.ids.insert(key.to_owned(), value.into());
        self
    }
}

/// The RFC 3339 form of the current time, to the millisecond.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

/// The publish side, cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    /// `capacity` events are kept for slow readers before they start missing some.
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity);
        EventBus { tx }
    }

    pub fn publish(&self, event: Event) {
        // No receiver is not an error: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// True when someone listens; lets hot paths skip building events nobody reads.
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_reader_is_told_it_missed_events() {
        let bus = EventBus::new(2);
        let mut rx = bus.subscribe();
        for _ in 0..5 {
            bus.publish(Event::new("registered").with("aor", "sip:1@x"));
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(3))));
        let e = rx.try_recv().unwrap();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "registered");
        assert_eq!(json["aor"], "sip:1@x");
    }
}
