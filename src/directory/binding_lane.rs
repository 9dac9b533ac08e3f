//! The bindings' group commit, done by whoever submits.
//!
//! A REGISTER's binding must reach the journal before its 200 OK goes out. Handing each write to
//! a writer thread costs a thread wake-up (a futex call and a context switch) per REGISTER; without
//! it deskline made 13 % more REGISTERs per CPU-second (43,243 against 38,277 at 4,000 calls/s,
//! 2026-11-27). So by default there is no such thread: a submitter queues its write, then, if no
//! other thread is writing, takes the journal and writes everything queued as one batch, and runs
//! the batch's completions once the journal is released. A submitter that finds another thread
//! writing just returns: that thread looks at the queue again after its batch, so the write is
//! carried by the next batch (group commit, as with a writer thread, and nothing is left behind).
//! Submissions are queued in the order they are made, and batches are written one at a time, in
//! queue order.
//!
//! With `[store] bindings_fsync` a write includes an `fdatasync` taking milliseconds, which no
//! caller (a UDP receive thread, a tokio worker) should wait on: then a thread of its own writes.
//!
//! Callers that hold a lock when they submit (the registrar, under an address of record's lock)
//! only queue ([`BindingLane::push`]) and call [`BindingLane::write_pending`] once they have
//! released it, so completions (which send answers) never run under their lock.
//!
//! A thread working through a queue of requests (a UDP receive thread with datagrams waiting)
//! can hold its writes back for the length of that run ([`HeldWrites`]): its `write_pending`
//! calls only note the lane, and the run's writes go out as one append when the guard is dropped,
//! instead of one `pwrite` per REGISTER.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use parking_lot::Mutex;

use super::journal::BindingJournal;
use super::store::{StoreError, StoreOp, Submission};
use crate::metrics::{Metrics, StoreLabels, StorePart};

/// Where the bindings' writes go, and who writes them. Cheap to clone (the store's handles each
/// hold one).
#[derive(Clone)]
pub(super) struct BindingLane {
    state: Arc<LaneState>,
    /// With fsync on: wakes the writer thread. When every handle is gone, the thread writes what
    /// is left and ends.
    kick: Option<mpsc::Sender<()>>,
}

struct LaneState {
    queue: Mutex<Vec<Submission>>,
    journal: Mutex<BindingJournal>,
    metrics: Arc<Metrics>,
    /// Submissions not yet durable, shared with the directory's writer.
    backlog: Arc<AtomicUsize>,
}

impl BindingLane {
    /// A lane writing on the submitters' threads, or, when `own_thread`, on a thread of its own.
    pub(super) fn start(
        journal: BindingJournal,
        metrics: Arc<Metrics>,
        backlog: Arc<AtomicUsize>,
        own_thread: bool,
    ) -> Result<BindingLane, StoreError> {
        let state =
            Arc::new(LaneState { queue: Mutex::new(Vec::new()), journal: Mutex::new(journal), metrics, backlog });
        if !own_thread {
            return Ok(BindingLane { state, kick: None });
        }
        let (kick, kicked) = mpsc::channel::<()>();
        let writer = state.clone();
        std::thread::Builder::new()
            .name("binding-writer".into())
            .spawn(move || {
                while kicked.recv().is_ok() {
                    while kicked.try_recv().is_ok() {}
                    writer.write_queued();
                }
                writer.write_queued();
            })
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(BindingLane { state, kick: Some(kick) })
    }

    /// Queues a submission; it is written by the next [`write_pending`](Self::write_pending).
    pub(super) fn push(&self, sub: Submission) {
        self.state.backlog.fetch_add(1, Ordering::Relaxed);
        self.state.queue.lock().push(sub);
    }

    /// Writes what is queued, on this thread unless another is already writing (it will carry
    /// it), the lane has a thread of its own (woken here), or this thread holds its writes back
    /// (they are written when its [`HeldWrites`] ends).
    pub(super) fn write_pending(&self) {
        match &self.kick {
            // The thread only ends once every handle (this one too) is gone.
            Some(kick) => drop(kick.send(())),
            None if HeldWrites::note(&self.state) => {}
            None => self.state.write_queued(),
        }
    }

    #[cfg(test)]
    pub(super) fn break_writes(&self) {
        self.state.journal.lock().break_writes();
    }

    #[cfg(test)]
    pub(super) fn mend_writes(&self) {
        self.state.journal.lock().mend_writes();
    }
}

thread_local! {
    /// While this thread holds its writes back: the lanes it left writes queued on.
    static HELD: RefCell<Option<Vec<Arc<LaneState>>>> = const { RefCell::new(None) };
}

/// While alive, binding writes asked for on this thread are only queued; dropping it writes them
/// (one batch per lane) and runs their completions. Not `Send`: it belongs to its thread. A guard
/// taken while another is alive on the thread does nothing: the outer one writes.
pub struct HeldWrites {
    outermost: bool,
    _on_this_thread: PhantomData<*const ()>,
}

impl HeldWrites {
    pub fn begin() -> HeldWrites {
        let outermost = HELD.with_borrow_mut(|held| held.is_none().then(|| *held = Some(Vec::new())).is_some());
        HeldWrites { outermost, _on_this_thread: PhantomData }
    }

    /// Notes `lane` for the end of the run if this thread holds its writes back.
    fn note(lane: &Arc<LaneState>) -> bool {
        HELD.with_borrow_mut(|held| match held {
            Some(lanes) => {
                if !lanes.iter().any(|l| Arc::ptr_eq(l, lane)) {
                    lanes.push(lane.clone());
                }
                true
            }
            None => false,
        })
    }
}

impl Drop for HeldWrites {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        // Taken out first: completions may submit again, and those are written at once.
        let lanes = HELD.with_borrow_mut(Option::take).unwrap_or_default();
        for lane in lanes {
            lane.write_queued();
        }
    }
}

impl LaneState {
    fn write_queued(&self) {
        loop {
            let Some(mut journal) = self.journal.try_lock() else {
                // The writing thread looks at the queue again once it releases the journal.
                return;
            };
            let mut batch = std::mem::take(&mut *self.queue.lock());
            if batch.is_empty() {
                drop(journal);
                // Whatever was queued after the look above, its submitter found the journal taken
                // and left it to this thread.
                if self.queue.lock().is_empty() {
                    return;
                }
                continue;
            }
            let started = Instant::now();
            let result = write_batch(&mut journal, &batch);
            drop(journal);
            if let Err(e) = &result {
                tracing::error!(error = %e, "bindings journal write failed; {} submissions refused", batch.len());
                self.metrics.store_write_failures.get_or_create(&StoreLabels { store: StorePart::bindings }).inc();
                // Completions of a failed batch undo their changes; a later one may have built on
                // an earlier one's, so newest first.
                batch.reverse();
            }
            self.metrics.store_commit_latency.observe(started.elapsed().as_secs_f64());
            self.metrics.store_batch_size.observe(batch.iter().map(|s| s.ops.len()).sum::<usize>() as f64);
            let done = batch.len();
            for sub in batch {
                sub.done.finish(result.clone());
            }
            self.backlog.fetch_sub(done, Ordering::Relaxed);
        }
    }
}

/// One journal append for the whole batch; on failure none of it counts.
fn write_batch(journal: &mut BindingJournal, batch: &[Submission]) -> Result<(), StoreError> {
    let journalled = batch.iter().flat_map(|s| s.ops.iter()).try_for_each(|op| match op {
        StoreOp::PutBinding { aor, key, expires_at, doc } => journal.put(aor, key, *expires_at, doc),
        StoreOp::DeleteBinding { aor, key } => journal.delete(aor, key),
        other => Err(StoreError::Database(format!("not a binding write: {other:?}"))),
    });
    if let Err(e) = journalled {
        journal.discard();
        return Err(e);
    }
    journal.flush()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::directory::store::{Completion, Store};

    fn put(aor: &str, key: String) -> StoreOp {
        StoreOp::PutBinding { aor: aor.into(), key, expires_at: u64::MAX, doc: vec![7] }
    }

    fn flag_on_success(flag: &Arc<AtomicBool>) -> Completion {
        let flag = flag.clone();
        Completion::Callback(Box::new(move |r| flag.store(r.is_ok(), Ordering::SeqCst)))
    }

    #[test]
    fn a_lone_submitter_writes_on_its_own_thread_and_enqueue_waits_for_write_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_with(dir.path(), Arc::new(Metrics::new()), false).unwrap();
        let written = Arc::new(AtomicBool::new(false));
        store.submit(vec![put("a", "k1".into())], flag_on_success(&written));
        assert!(written.load(Ordering::SeqCst), "no other writer: the submitter wrote it before returning");

        let queued = Arc::new(AtomicBool::new(false));
        store.enqueue(vec![put("a", "k2".into())], flag_on_success(&queued));
        assert!(!queued.load(Ordering::SeqCst), "enqueue alone writes nothing");
        assert_eq!(store.backlog(), 1);
        store.write_pending_bindings();
        assert!(queued.load(Ordering::SeqCst));
        assert_eq!(store.backlog(), 0);
        drop(store);
        let (_, snap) = Store::open_with(dir.path(), Arc::new(Metrics::new()), false).unwrap();
        assert_eq!(snap.bindings.len(), 2);
    }

    #[test]
    fn held_writes_are_written_together_when_the_outermost_guard_ends() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (store, _) = Store::open_with(dir.path(), metrics.clone(), false).unwrap();
        let flags: Vec<_> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
        let held = HeldWrites::begin();
        store.submit(vec![put("a", "k0".into())], flag_on_success(&flags[0]));
        let inner = HeldWrites::begin();
        store.submit(vec![put("b", "k1".into())], flag_on_success(&flags[1]));
        drop(inner);
        assert!(!flags[1].load(Ordering::SeqCst), "an inner guard leaves the writing to the outer one");
        store.submit(vec![put("c", "k2".into())], flag_on_success(&flags[2]));
        assert!(flags.iter().all(|f| !f.load(Ordering::SeqCst)), "nothing is written while held");
        assert_eq!(store.backlog(), 3);
        let other_thread = std::thread::spawn({
            let store = store.clone();
            let flag = Arc::new(AtomicBool::new(false));
            move || {
                store.submit(vec![put("d", "k3".into())], flag_on_success(&flag));
                flag.load(Ordering::SeqCst)
            }
        });
        assert!(other_thread.join().unwrap(), "another thread's writes are not held (and carry what was queued)");
        assert!(flags.iter().all(|f| f.load(Ordering::SeqCst)), "queued writes went out with the other thread's");
        let last = Arc::new(AtomicBool::new(false));
        store.submit(vec![put("e", "k4".into())], flag_on_success(&last));
        assert!(!last.load(Ordering::SeqCst), "still held");
        drop(held);
        assert!(last.load(Ordering::SeqCst), "dropping the guard writes what it held");
        assert_eq!(store.backlog(), 0);
        let after = Arc::new(AtomicBool::new(false));
        store.submit(vec![put("f", "k5".into())], flag_on_success(&after));
        assert!(after.load(Ordering::SeqCst), "once the guard is gone, writes are made at once");
        drop(store);
        let (_, snap) = Store::open_with(dir.path(), Arc::new(Metrics::new()), false).unwrap();
        assert_eq!(snap.bindings.len(), 6);
    }

    #[test]
    fn a_failed_batch_is_refused_whole_newest_first_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (store, _) = Store::open_with(dir.path(), metrics.clone(), false).unwrap();
        store.submit(vec![put("a", "kept".into())], Completion::None);
        store.break_binding_writes();
        let finished = Arc::new(parking_lot::Mutex::new(Vec::new()));
        for i in 0..3 {
            let finished = finished.clone();
            let done = Completion::Callback(Box::new(move |r| finished.lock().push((i, r.is_ok()))));
            store.enqueue(vec![put("a", format!("k{i}"))], done);
        }
        store.write_pending_bindings();
        assert_eq!(*finished.lock(), vec![(2, false), (1, false), (0, false)]);
        let failures = |part| metrics.store_write_failures.get_or_create(&StoreLabels { store: part }).get();
        assert_eq!((failures(StorePart::bindings), failures(StorePart::directory)), (1, 0));
        assert_eq!(store.backlog(), 0);
        drop(store);
        let (_, snap) = Store::open_with(dir.path(), Arc::new(Metrics::new()), false).unwrap();
        let keys: Vec<_> = snap.bindings.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, ["kept"]);
    }

    #[test]
    fn concurrent_submitters_all_complete_and_every_write_is_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_with(dir.path(), Arc::new(Metrics::new()), false).unwrap();
        let completed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (store, completed) = (store.clone(), completed.clone());
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let aor = format!("t{t}");
                        let done = completed.clone();
                        let done = Completion::Callback(Box::new(move |r| {
                            assert!(r.is_ok());
                            done.fetch_add(1, Ordering::SeqCst);
                        }));
                        // Each thread puts a key then removes the previous one: only the last stays.
                        let mut ops = vec![put(&aor, format!("k{i}"))];
                        if i > 0 {
                            ops.push(StoreOp::DeleteBinding { aor: aor.clone(), key: format!("k{}", i - 1) });
                        }
                        store.submit(ops, done);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(completed.load(Ordering::SeqCst), 2000, "no submission left behind");
        assert_eq!(store.backlog(), 0);
        drop(store);
        let (_, snap) = Store::open_with(dir.path(), Arc::new(Metrics::new()), false).unwrap();
        let mut kept: Vec<_> = snap.bindings.iter().map(|b| (b.aor.clone(), b.key.clone())).collect();
        kept.sort();
        let expected: Vec<_> = (0..4).map(|t| (format!("t{t}"), "k499".to_string())).collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn with_fsync_a_thread_of_its_own_writes_and_finishes_the_queue_when_the_store_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_with(dir.path(), Arc::new(Metrics::new()), true).unwrap();
        for i in 0..100 {
            store.submit(vec![put("a", format!("k{i}"))], Completion::None);
        }
        drop(store);
        // The writer thread ends after writing what was queued: wait until the journal stops growing.
        let size = || -> u64 {
            std::fs::read_dir(dir.path().join("bindings")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
        };
        // Stable for half a second (an fsync on a slow disk takes milliseconds), within 20 s.
        let mut last = (0, 0);
        for _ in 0..2000 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            let now = size();
            last = if now == last.0 && now > 0 { (now, last.1 + 1) } else { (now, 0) };
            if last.1 >= 50 {
                break;
            }
        }
        let (_, rows) = BindingJournal::open(&dir.path().join("bindings"), 0, false).unwrap();
        let seen = rows.len();
        assert_eq!(seen, 100);
    }
}
