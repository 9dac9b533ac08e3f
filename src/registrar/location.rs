//! The location table: every binding of every address of record, in memory for speed (a sharded
//! map, so REGISTERs for different phones rarely touch the same lock) and in the store for
//! durability. Expiry runs from a min-heap of (expiry, key): the sweeper pops only what is due, so
//! its cost grows with what expires, not with what exists. Every binding has an entry due no later
//! than it is. A refresh that moves the expiry later pushes nothing: when the old entry comes due,
//! the sweeper finds the binding still live and pushes it again at its new expiry. So the heap
//! holds about one entry per binding however often phones refresh (it held one per REGISTER until
//! the first of them came due: a phone refreshing every minute with an hour's expiry kept 60, and
//! a benchmark's millions of REGISTERs grew the heap without bound, its pushes into a heap of
//! millions missing the cache and its growth copying it under the lock). Only a refresh that
//! shortens the expiry pushes; the duplicate that leaves meets its twin at the same time after
//! the next push, and twins, popped together, count once. A heap entry is 32 bytes: the
//! expiry, the address of record (an `Arc` shared with the table) and the [`Tag`] of the binding's
//! key (two keys of one address of record with equal tags *and* equal expiries would be confused:
//! probability ~2^-64).
//!
//! Start-up ([`LocationTable::restore`]) takes the bindings the journal recovered, shares one
//! `Arc` per address of record between the table and the heap, counts the gauges once, and builds
//! the heap in one O(n) step.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;

use super::binding::{AddressOfRecord, Binding, BindingView, Tag, TransportKind};
use super::rules::{self, Changes, Removal, Stamp};
use crate::directory::journal::BindingRow;
use crate::directory::store::{Completion, Store, StoreError, StoreOp};
use crate::events::{Event, EventBus};
use crate::metrics::{Metrics, TransportLabel, TransportLabels};

mod removal;
pub use removal::{RemovalNotStored, REMOVAL_ATTEMPTS};

/// When a binding is due: (expiry, address of record, tag of its key), soonest first.
type Due = Reverse<(u64, AddressOfRecord, Tag)>;

pub struct LocationTable {
    map: DashMap<AddressOfRecord, Vec<Binding>>,
    expiry: Mutex<BinaryHeap<Due>>,
    store: Store,
    events: EventBus,
    metrics: Arc<Metrics>,
}

/// Why bindings are being removed outside a REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalCause {
    Expired,
    /// The user was deactivated (reg event: `rejected`).
    Deactivated,
    /// Removed by an admin action that asks the phone to re-register (reg event: `deactivated`).
    SignedOut,
}

impl RemovalCause {
    fn event_kind(self) -> &'static str {
        match self {
            RemovalCause::Expired => "expired",
            RemovalCause::Deactivated | RemovalCause::SignedOut => "unregistered",
        }
    }
}

fn label(t: TransportKind) -> TransportLabels {
    TransportLabels {
        transport: match t {
            TransportKind::Udp => TransportLabel::udp,
            TransportKind::Tcp => TransportLabel::tcp,
            TransportKind::Tls => TransportLabel::tls,
        },
    }
}

/// The event telling the dashboard and API listeners about one binding.
fn binding_event(kind: &'static str, aor: &AddressOfRecord, b: &Binding) -> Event {
    let mut e = Event::new(kind)
        .with("aor", aor.0.to_string())
        .with("contact", b.contact.clone())
        .with("transport", b.flow.transport.as_str())
        .with("source", b.flow.remote.to_string())
        .with("expires_in", b.expires_at.saturating_sub(crate::directory::unix_now()));
    if let Some(d) = &b.device {
        e = e.with("mac", d.clone());
    }
    if let Some(u) = &b.user {
        e = e.with("user", u.clone());
    }
    e
}

/// A binding as the store's journal keeps it: postcard, a compact binary serde format (a third
/// of the JSON's size and a tenth of its encoding time on the REGISTER path). Its layout follows
/// the field order of [`Binding`]: a change there needs a new journal format version.
pub fn binding_doc(b: &Binding) -> Vec<u8> {
    postcard::to_allocvec(b).unwrap_or_default()
}

impl LocationTable {
    /// Builds the table from the store's bindings, dropping (and deleting) those that expired
    /// while we were down or cannot be read.
    pub fn restore(
        rows: Vec<BindingRow>,
        store: Store,
        now: u64,
        events: EventBus,
        metrics: Arc<Metrics>,
    ) -> LocationTable {
        let stored = rows.len();
        let map = DashMap::with_capacity(stored);
        let table = LocationTable { map, expiry: Mutex::new(BinaryHeap::new()), store, events, metrics };
        let mut loader =
            Loader { table: &table, now, due: Vec::with_capacity(stored), stale: Vec::new(), per_transport: [0; 3] };
        for row in rows {
            loader.add(row);
        }
        let Loader { due, stale, per_transport, .. } = loader;
        *table.expiry.lock() = BinaryHeap::from(due);
        for (t, n) in [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls].into_iter().zip(per_transport) {
            table.metrics.registrations.get_or_create(&label(t)).inc_by(n);
        }
        if !stale.is_empty() {
            table.store.submit(stale, Completion::None);
        }
        table
    }

    /// Runs `f` on the bindings of `aor` while holding its lock. Keep `f` short and never await in
    /// it; whatever must be ordered with other changes of this AOR (the store write) is queued
    /// inside, and written once the lock is released (so completions never run under it).
    pub fn with_aor<R>(&self, aor: &AddressOfRecord, f: impl FnOnce(&mut Vec<Binding>) -> R) -> R {
        let result = self.update_aor(aor, f);
        self.store.write_pending_bindings();
        result
    }

    /// [`with_aor`](Self::with_aor) without the write: for loops over many AORs, which write
    /// what they queued once at the end (one journal append, not one per AOR).
    fn update_aor<R>(&self, aor: &AddressOfRecord, f: impl FnOnce(&mut Vec<Binding>) -> R) -> R {
        let mut entry = self.map.entry(aor.clone()).or_default();
        let result = f(entry.value_mut());
        let empty = entry.is_empty();
        drop(entry);
        if empty {
            self.map.remove_if(aor, |_, v| v.is_empty());
        }
        result
    }

    /// The store writes, heap entries, gauges and events for what a REGISTER changed; `then` gets
    /// the store's verdict and the changes back. Call inside [`with_aor`](Self::with_aor) so the
    /// write is queued in the order the changes were made.
    pub fn record(
        &self,
        aor: &AddressOfRecord,
        changes: Changes,
        then: impl FnOnce(Result<(), StoreError>, Changes) + Send + 'static,
    ) {
        let mut ops = Vec::with_capacity(changes.added.len() + changes.refreshed.len() + changes.removed.len());
        // A refresh that moves the expiry later keeps the entry it has (see the module doc).
        let shortened = changes
            .refreshed
            .iter()
            .filter(|b| changes.previous.iter().any(|p| p.key == b.key && p.expires_at > b.expires_at));
        self.schedule_expiry(aor, changes.added.iter().chain(shortened));
        for b in changes.added.iter().chain(&changes.refreshed) {
            ops.push(StoreOp::PutBinding {
                aor: aor.0.to_string(),
                key: b.key.clone(),
                expires_at: b.expires_at,
                doc: binding_doc(b),
            });
        }
        for (b, _) in &changes.removed {
            ops.push(StoreOp::DeleteBinding { aor: aor.0.to_string(), key: b.key.clone() });
        }
        self.count(changes.added.iter(), changes.removed.iter().map(|(b, _)| b));
        if self.events.has_listeners() {
            self.publish(aor, &changes);
        }
        // With nothing to write, the answer must still wait for anything queued before it.
        self.store.enqueue(ops, Completion::Callback(Box::new(move |stored| then(stored, changes))));
    }

    /// Takes back a REGISTER the store could not keep ([`rules::undo`]), with its heap entries,
    /// gauges and events.
    pub fn undo(&self, aor: &AddressOfRecord, changes: Changes, stamp: Stamp) {
        // Called from a store completion: nothing to write, so no `with_aor`.
        let undone = self.update_aor(aor, |bindings| rules::undo(bindings, changes, stamp));
        self.schedule_expiry(aor, undone.restored.iter());
        self.count(undone.restored.iter(), undone.withdrawn.iter());
        if !self.events.has_listeners() {
            return;
        }
        let back = |b: &Binding| undone.restored.iter().any(|r| r.key == b.key);
        for b in undone.withdrawn.iter().filter(|b| !back(b)) {
            self.events.publish(binding_event("unregistered", aor, b).with("reason", "not stored"));
        }
        for b in &undone.restored {
            let kind = if undone.withdrawn.iter().any(|w| w.key == b.key) { "refreshed" } else { "registered" };
            self.events.publish(binding_event(kind, aor, b).with("reason", "not stored"));
        }
    }

    fn schedule_expiry<'a>(&self, aor: &AddressOfRecord, bindings: impl Iterator<Item = &'a Binding>) {
        let mut bindings = bindings.peekable();
        if bindings.peek().is_some() {
            let mut heap = self.expiry.lock();
            for b in bindings {
                heap.push(Reverse((b.expires_at, aor.clone(), Tag::of(&b.key))));
            }
        }
    }

    /// The registration gauges, per transport.
    fn count<'a>(&self, added: impl Iterator<Item = &'a Binding>, removed: impl Iterator<Item = &'a Binding>) {
        for b in added {
            self.metrics.registrations.get_or_create(&label(b.flow.transport)).inc();
        }
        for b in removed {
            self.metrics.registrations.get_or_create(&label(b.flow.transport)).dec();
        }
    }

    fn publish(&self, aor: &AddressOfRecord, changes: &Changes) {
        for b in &changes.added {
            self.events.publish(binding_event("registered", aor, b));
        }
        for b in &changes.refreshed {
            self.events.publish(binding_event("refreshed", aor, b));
        }
        for (b, why) in &changes.removed {
            let reason = match why {
                Removal::Unregistered => "unregistered",
                Removal::Evicted => "evicted",
                Removal::Replaced => "replaced",
            };
            self.events.publish(binding_event("unregistered", aor, b).with("reason", reason));
        }
    }

    /// Removes, durably, every binding of each address of record `keep` refuses; returns how many
    /// went. At start-up: the bindings of a user deactivated just before a crash may still be in
    /// the journal, since the suspension is written first and their removal after it.
    pub fn retain_aors(&self, keep: impl Fn(&AddressOfRecord) -> bool) -> usize {
        let refused: Vec<AddressOfRecord> = self.map.iter().map(|e| e.key().clone()).filter(|a| !keep(a)).collect();
        let mut removed = 0;
        for aor in &refused {
            let gone = self.take_where(aor, &|_: &Binding| true, Completion::None);
            self.announce_removed(aor, RemovalCause::Deactivated, &gone);
            removed += gone.len();
        }
        self.store.write_pending_bindings();
        removed
    }

    /// Takes the picked bindings out of memory and queues their deletion (under the AOR's lock, so
    /// the store sees it in the order of the AOR's other changes); the caller has it written.
    fn take_where(&self, aor: &AddressOfRecord, pick: &dyn Fn(&Binding) -> bool, done: Completion) -> Vec<Binding> {
        if !self.map.contains_key(aor) {
            if !matches!(done, Completion::None) {
                self.store.submit(Vec::new(), done);
            }
            return Vec::new();
        }
        self.update_aor(aor, |bindings| {
            let (gone, kept): (Vec<Binding>, Vec<Binding>) = bindings.drain(..).partition(|b| pick(b));
            *bindings = kept;
            let ops =
                gone.iter().map(|b| StoreOp::DeleteBinding { aor: aor.0.to_string(), key: b.key.clone() }).collect();
            self.store.enqueue(ops, done);
            gone
        })
    }

    /// Gauges and events for bindings removed outside a REGISTER.
    fn announce_removed(&self, aor: &AddressOfRecord, cause: RemovalCause, removed: &[Binding]) {
        for b in removed {
            self.metrics.registrations.get_or_create(&label(b.flow.transport)).dec();
            let mut e = Event::new(cause.event_kind())
                .with("aor", aor.0.to_string())
                .with("contact", b.contact.clone())
                .with("source", b.flow.remote.to_string());
            if let Some(d) = &b.device {
                e = e.with("mac", d.clone());
            }
            if cause != RemovalCause::Expired {
                e = e.with("reason", if cause == RemovalCause::Deactivated { "deactivated" } else { "signed_out" });
            }
            self.events.publish(e);
        }
    }

    /// Removes what has expired by `now`; returns how many went. An entry whose binding was
    /// refreshed since is pushed again at the binding's expiry.
    pub fn expire(&self, now: u64) -> Vec<(AddressOfRecord, Binding)> {
        let mut due: Vec<(AddressOfRecord, Tag)> = Vec::new();
        {
            let mut heap = self.expiry.lock();
            while let Some(Reverse((at, _, _))) = heap.peek() {
                if *at > now {
                    break;
                }
                if let Some(Reverse((at, aor, tag))) = heap.pop() {
                    // Twins (equal entries) come out one after the other: they count once.
                    while heap.peek().is_some_and(|Reverse(next)| next.0 == at && next.1 == aor && next.2 == tag) {
                        heap.pop();
                    }
                    due.push((aor, tag));
                }
            }
        }
        let mut expired = Vec::new();
        let mut later = Vec::new();
        for (aor, tag) in due {
            let gone = self.update_aor(&aor, |bindings| {
                let i = bindings.iter().position(|b| Tag::of(&b.key) == tag)?;
                if bindings[i].expires_at > now {
                    later.push(Reverse((bindings[i].expires_at, aor.clone(), tag)));
                    return None;
                }
                let b = bindings.remove(i);
                self.store.enqueue(
                    vec![StoreOp::DeleteBinding { aor: aor.0.to_string(), key: b.key.clone() }],
                    Completion::None,
                );
                Some(b)
            });
            if let Some(b) = gone {
                self.metrics.registrations.get_or_create(&label(b.flow.transport)).dec();
                let mut e = Event::new("expired").with("aor", aor.0.to_string()).with("contact", b.contact.clone());
                if let Some(d) = &b.device {
                    e = e.with("mac", d.clone());
                }
                self.events.publish(e);
                expired.push((aor, b));
            }
        }
        if !later.is_empty() {
            self.expiry.lock().extend(later);
        }
        self.store.write_pending_bindings();
        expired
    }

    /// Entries in the expiry heap (tests).
    #[cfg(test)]
    fn scheduled(&self) -> usize {
        self.expiry.lock().len()
    }

    pub fn bindings(&self, aor: &AddressOfRecord) -> Vec<Binding> {
        self.map.get(aor).map(|v| v.clone()).unwrap_or_default()
    }

    /// Every binding, for the admin API.
    pub fn snapshot(&self, now: u64) -> Vec<BindingView> {
        let mut out = Vec::with_capacity(self.len());
        for entry in self.map.iter() {
            for b in entry.value() {
                if b.expires_at > now {
                    out.push(BindingView::new(entry.key(), b, now));
                }
            }
        }
        out.sort_by(|a, b| a.aor.cmp(&b.aor).then(a.contact.cmp(&b.contact)));
        out
    }

    /// Every binding of a device (by MAC).
    pub fn bindings_of_device(&self, mac: &str) -> Vec<(AddressOfRecord, Binding)> {
        let mut out = Vec::new();
        for entry in self.map.iter() {
            for b in entry.value() {
                if b.device.as_deref() == Some(mac) {
                    out.push((entry.key().clone(), b.clone()));
                }
            }
        }
        out
    }

    /// Every binding of each device named (by MAC), in one pass over the table.
    pub fn bindings_of_devices(
        &self,
        macs: &std::collections::HashSet<&str>,
    ) -> std::collections::HashMap<String, Vec<(AddressOfRecord, Binding)>> {
        let mut out: std::collections::HashMap<String, Vec<(AddressOfRecord, Binding)>> = Default::default();
        for entry in self.map.iter() {
            for b in entry.value() {
                if let Some(mac) = b.device.as_deref().filter(|m| macs.contains(m)) {
                    out.entry(mac.to_owned()).or_default().push((entry.key().clone(), b.clone()));
                }
            }
        }
        out
    }

    /// Counts the live bindings without copying any (the stats endpoint, with a million of them).
    pub fn tally(&self, now: u64) -> BindingTally {
        let mut t = BindingTally::default();
        for entry in self.map.iter() {
            for b in entry.value().iter().filter(|b| b.expires_at > now) {
                t.total += 1;
                t.by_transport[b.flow.transport as usize] += 1;
                if let Some(mac) = &b.device {
                    t.devices.insert(Tag::of(mac));
                }
            }
        }
        t
    }

    pub fn len(&self) -> usize {
        self.map.iter().map(|e| e.value().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Live bindings counted by [`LocationTable::tally`].
#[derive(Debug, Default)]
pub struct BindingTally {
    pub total: usize,
    /// Indexed by [`TransportKind`] (udp, tcp, tls).
    pub by_transport: [usize; 3],
    /// The devices with a binding, by the tag of their MAC.
    devices: std::collections::HashSet<Tag>,
}

impl BindingTally {
    /// Whether the device with this MAC has a live binding.
    pub fn has_device(&self, mac: &str) -> bool {
        self.devices.contains(&Tag::of(mac))
    }
}

/// The state of [`LocationTable::restore`] while rows stream in.
struct Loader<'a> {
    table: &'a LocationTable,
    now: u64,
    due: Vec<Due>,
    stale: Vec<StoreOp>,
    /// Bindings per transport (udp, tcp, tls), for the gauges.
    per_transport: [i64; 3],
}

impl Loader<'_> {
    fn add(&mut self, row: BindingRow) {
        let binding = match postcard::from_bytes::<Binding>(&row.doc) {
            Ok(b) if row.expires_at > self.now => b,
            _ => {
                self.stale.push(StoreOp::DeleteBinding { aor: row.aor, key: row.key });
                return;
            }
        };
        self.per_transport[binding.flow.transport as usize] += 1;
        let mut entry = self.table.map.entry(AddressOfRecord(row.aor.into())).or_default();
        // The heap shares the table's `Arc` of the address of record.
        self.due.push(Reverse((binding.expires_at, entry.key().clone(), Tag::of(&binding.key))));
        // Most addresses of record hold one binding: no room for more until one comes.
        entry.reserve_exact(1);
        entry.push(binding);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::registrar::binding::TransportKind;
    use crate::registrar::rules::ContactChange;

    fn register(table: &Arc<LocationTable>, aor: &AddressOfRecord, expires: u32, cseq: u32, stored: &Arc<AtomicBool>) {
        register_at(table, aor, expires, cseq, stored, 1_000);
    }

    /// A REGISTER of `sip:a@127.0.0.1:5062` to `aor` at unix time `now`, with the undo a refused
    /// write gets; `stored` says whether the store kept it.
    pub(super) fn register_at(
        table: &Arc<LocationTable>,
        aor: &AddressOfRecord,
        expires: u32,
        cseq: u32,
        stored: &Arc<AtomicBool>,
        now: u64,
    ) {
        let facts = rules::tests::facts("c1", cseq, &format!("z9hG4bK{cseq}"), now);
        let change = ContactChange::Update(vec![rules::tests::contact("sip:a@127.0.0.1:5062", expires)]);
        let (this, stored) = (table.clone(), stored.clone());
        table.with_aor(aor, |bindings| {
            let changes = rules::apply(bindings, &change, &facts, 10).unwrap();
            let key = aor.clone();
            table.record(aor, changes, move |result, changes| {
                stored.store(result.is_ok(), Ordering::SeqCst);
                if result.is_err() {
                    this.undo(&key, changes, Stamp::of(&facts.call_id, facts.cseq, &facts.branch));
                }
            });
        });
    }

    #[test]
    fn a_register_the_store_refuses_is_taken_back_with_its_gauge() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (store, _) = Store::open_with(dir.path(), metrics.clone(), false).unwrap();
        let table = Arc::new(LocationTable::restore(vec![], store.clone(), 1_000, EventBus::new(16), metrics.clone()));
        let aor = AddressOfRecord::new("1001", "pbx.test");
        let gauge = || metrics.registrations.get_or_create(&label(TransportKind::Udp)).get();
        let stored = Arc::new(AtomicBool::new(false));
        register(&table, &aor, 60, 1, &stored);
        assert!(stored.load(Ordering::SeqCst));
        assert_eq!((table.bindings(&aor)[0].expires_at, gauge()), (1_060, 1));

        store.break_binding_writes();
        register(&table, &aor, 3_600, 2, &stored);
        assert!(!stored.load(Ordering::SeqCst));
        assert_eq!((table.bindings(&aor)[0].expires_at, table.bindings(&aor)[0].cseq, gauge()), (1_060, 1, 1));
        register(&table, &aor, 0, 3, &stored);
        assert_eq!((table.bindings(&aor).len(), gauge()), (1, 1), "a refused removal leaves the binding");
        // The restored binding still expires.
        assert_eq!(table.expire(1_060).len(), 1);
        assert_eq!((table.len(), gauge()), (0, 0));
    }

    #[test]
    fn refreshes_keep_one_heap_entry_per_binding_and_expiry_follows_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (store, _) = Store::open_with(dir.path(), metrics.clone(), false).unwrap();
        let table = Arc::new(LocationTable::restore(vec![], store, 1_000, EventBus::new(16), metrics));
        let aor = AddressOfRecord::new("1001", "pbx.test");
        let stored = Arc::new(AtomicBool::new(false));
        let at = |table: &Arc<LocationTable>, expires, cseq, now| register_at(table, &aor, expires, cseq, &stored, now);
        at(&table, 60, 1, 1_000);
        for i in 0..100 {
            at(&table, 60, 2 + i, 1_001 + i as u64);
        }
        assert_eq!(table.bindings(&aor)[0].expires_at, 1_160);
        assert_eq!(table.scheduled(), 1, "refreshes that move the expiry later push nothing");
        assert!(table.expire(1_060).is_empty(), "the first entry comes due and finds the binding refreshed");
        assert_eq!(table.scheduled(), 1, "so it is pushed again at the binding's expiry");
        assert!(table.expire(1_159).is_empty());

        at(&table, 10, 200, 1_120);
        assert_eq!(table.scheduled(), 2, "a refresh that shortens the expiry pushes");
        assert_eq!(table.expire(1_130).len(), 1, "and the binding goes at the shortened time");
        assert!(table.expire(1_200).is_empty(), "the longer entry left behind finds nothing");
        assert_eq!(table.scheduled(), 0);

        at(&table, 60, 300, 2_000);
        at(&table, 30, 301, 2_000);
        at(&table, 100, 302, 2_001);
        assert!(table.expire(2_030).is_empty());
        assert!(table.expire(2_060).is_empty());
        assert_eq!(table.scheduled(), 2, "both entries of the binding now sit at its expiry");
        assert_eq!(table.expire(2_101).len(), 1, "twins count once");
        assert_eq!((table.scheduled(), table.len()), (0, 0));
    }
}
