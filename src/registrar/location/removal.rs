//! Removing bindings outside a REGISTER (an operator signs a user out, moves or deletes a device,
//! deactivates users), durably: each removal is written under its address of record's lock, so
//! the journal sees it in order with that AOR's REGISTERs, and the caller hears back once it is
//! stored. A removal the store refuses is written again (only for keys no REGISTER has set since,
//! which are that newer write's to keep); after [`REMOVAL_ATTEMPTS`] refusals the caller gets
//! [`RemovalNotStored`]: the bindings stay out of service, and the caller says so (a restart
//! before they expire would bring them back).

use std::sync::Arc;

use super::LocationTable;
use crate::directory::store::{Completion, StoreError, StoreOp};
use crate::registrar::binding::{AddressOfRecord, Binding};
use crate::registrar::RemovalCause;

/// AORs whose bindings one store round of [`LocationTable::remove_where`] deletes.
const REMOVE_CHUNK: usize = 256;

/// How many times a removal is written before its caller hears that the store refused it.
pub const REMOVAL_ATTEMPTS: u32 = 3;

/// The pause before a refused removal is written again.
const REMOVAL_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// Bindings taken out of service whose removal the store refused [`REMOVAL_ATTEMPTS`] times: a
/// restart before they expire would bring them back.
#[derive(Debug)]
pub struct RemovalNotStored {
    /// Everything the call removed (the refused ones among it), as a success would return it.
    pub removed: Vec<(AddressOfRecord, Binding)>,
    pub error: StoreError,
}

/// The store's verdict on several submissions: the last refusal, if any.
#[derive(Clone, Default)]
struct StoreVerdict(Arc<parking_lot::Mutex<Option<StoreError>>>);

impl StoreVerdict {
    /// A completion that records a refusal here.
    fn completion(&self) -> Completion {
        let verdict = self.clone();
        Completion::Callback(Box::new(move |stored| {
            if let Err(e) = stored {
                verdict.refuse(e);
            }
        }))
    }

    fn refuse(&self, e: StoreError) {
        *self.0.lock() = Some(e);
    }

    fn taken(&self) -> Option<StoreError> {
        self.0.lock().take()
    }
}

impl LocationTable {
    /// Removes the bindings `pick` selects from every AOR named, durably, [`REMOVE_CHUNK`] AORs
    /// per store round (so a REGISTER's write never queues behind thousands of deletions),
    /// yielding between chunks; returns what went once the store has it gone, or, in
    /// [`RemovalNotStored`], once it has refused a chunk's deletions [`REMOVAL_ATTEMPTS`] times
    /// (they stay out of service, but a restart would bring them back until they expire).
    pub async fn remove_where(
        &self,
        aors: &[AddressOfRecord],
        cause: RemovalCause,
        pick: impl Fn(&Binding) -> bool,
    ) -> Result<Vec<(AddressOfRecord, Binding)>, RemovalNotStored> {
        let mut out = Vec::new();
        let mut error = None;
        for chunk in aors.chunks(REMOVE_CHUNK) {
            let refused = StoreVerdict::default();
            let mut removed = Vec::with_capacity(chunk.len());
            for aor in chunk {
                // Queued in order inside each AOR's lock.
                removed.push((aor.clone(), self.take_where(aor, &pick, refused.completion())));
            }
            self.store_removals(refused.clone()).await;
            for (aor, gone) in &removed {
                self.announce_removed(aor, cause, gone);
            }
            if let Err(e) = self.store_again(&removed, refused).await {
                error = Some(e);
            }
            out.extend(removed.into_iter().flat_map(|(aor, gone)| gone.into_iter().map(move |b| (aor.clone(), b))));
            tokio::task::yield_now().await;
        }
        match error {
            None => Ok(out),
            Some(error) => Err(RemovalNotStored { removed: out, error }),
        }
    }

    /// [`Self::remove_where`] for every binding.
    pub async fn remove_all_of(
        &self,
        aors: &[AddressOfRecord],
        cause: RemovalCause,
    ) -> Result<Vec<(AddressOfRecord, Binding)>, RemovalNotStored> {
        self.remove_where(aors, cause, |_| true).await
    }

    /// Waits until the deletions queued so far are written (or refused: `verdict` says).
    async fn store_removals(&self, verdict: StoreVerdict) {
        // A barrier behind every deletion queued above: the binding lane writes in order.
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store.submit(Vec::new(), Completion::Notify(tx));
        if let Ok(Err(e)) = rx.await {
            verdict.refuse(e);
        }
    }

    /// When the store refused the deletions of `removed`, writes them again (at most
    /// [`REMOVAL_ATTEMPTS`] times in all, [`REMOVAL_RETRY_AFTER`] apart), each under its AOR's lock
    /// and only for keys the phone has not registered again since (that newer write is the one
    /// to keep).
    async fn store_again(
        &self,
        removed: &[(AddressOfRecord, Vec<Binding>)],
        verdict: StoreVerdict,
    ) -> Result<(), StoreError> {
        let Some(mut error) = verdict.taken() else {
            return Ok(());
        };
        for attempt in 2..=REMOVAL_ATTEMPTS {
            tracing::warn!(error = %error, attempt, "the store refused the removal of bindings; writing it again");
            tokio::time::sleep(REMOVAL_RETRY_AFTER).await;
            let again = StoreVerdict::default();
            for (aor, gone) in removed {
                self.update_aor(aor, |bindings| {
                    let ops: Vec<StoreOp> = gone
                        .iter()
                        .filter(|b| !bindings.iter().any(|now| now.key == b.key))
                        .map(|b| StoreOp::DeleteBinding { aor: aor.0.to_string(), key: b.key.clone() })
                        .collect();
                    if !ops.is_empty() {
                        self.store.enqueue(ops, again.completion());
                    }
                });
            }
            self.store_removals(again.clone()).await;
            match again.taken() {
                None => return Ok(()),
                Some(e) => error = e,
            }
        }
        tracing::error!(
            error = %error,
            bindings = removed.iter().map(|(_, gone)| gone.len()).sum::<usize>(),
            "bindings removed from service, but their removal could not be stored: a restart before they expire brings them back, unless their user is suspended or deleted"
        );
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::directory::store::Store;
    use crate::events::EventBus;
    use crate::metrics::Metrics;
    use crate::registrar::location::tests::register_at;

    /// A table over a store in `dir`, with one stored binding of 1001.
    fn table_with_a_binding(dir: &std::path::Path) -> (Arc<LocationTable>, Store, AddressOfRecord) {
        let metrics = Arc::new(Metrics::new());
        let (store, _) = Store::open_with(dir, metrics.clone(), false).unwrap();
        let table = Arc::new(LocationTable::restore(vec![], store.clone(), 1_000, EventBus::new(16), metrics));
        let aor = AddressOfRecord::new("1001", "pbx.test");
        let stored = Arc::new(AtomicBool::new(false));
        register_at(&table, &aor, 3_600, 1, &stored, crate::directory::unix_now());
        assert!(stored.load(Ordering::SeqCst));
        (table, store, aor)
    }

    /// The bindings the journal in `dir` holds, as a restart would load them.
    fn journal_rows(dir: &std::path::Path) -> usize {
        let (_, snapshot) = Store::open_with(dir, Arc::new(Metrics::new()), false).unwrap();
        snapshot.bindings.len()
    }

    #[tokio::test]
    async fn a_removal_the_store_refuses_once_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (table, store, aor) = table_with_a_binding(dir.path());
            store.break_binding_writes();
            let mend = {
                let store = store.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(REMOVAL_RETRY_AFTER / 4).await;
                    store.mend_binding_writes();
                })
            };
            let removed =
                table.remove_where(std::slice::from_ref(&aor), RemovalCause::SignedOut, |_| true).await.unwrap();
            mend.await.unwrap();
            assert_eq!((removed.len(), table.len()), (1, 0));
        }
        assert_eq!(journal_rows(dir.path()), 0, "the retried removal is stored");
    }

    #[tokio::test]
    async fn a_removal_the_store_keeps_refusing_is_reported_and_stays_out_of_service() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (table, store, aor) = table_with_a_binding(dir.path());
            store.break_binding_writes();
            let started = std::time::Instant::now();
            let refused = table.remove_all_of(std::slice::from_ref(&aor), RemovalCause::SignedOut).await.unwrap_err();
            assert!(
                started.elapsed() >= REMOVAL_RETRY_AFTER * (REMOVAL_ATTEMPTS - 1),
                "written again before giving up"
            );
            assert_eq!(refused.removed.len(), 1);
            assert_eq!(table.len(), 0, "out of service all the same");
        }
        assert_eq!(journal_rows(dir.path()), 1, "what a restart would bring back, hence the report");
    }

    #[tokio::test]
    async fn a_retried_removal_spares_a_key_registered_again_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (table, store, aor) = table_with_a_binding(dir.path());
            store.break_binding_writes();
            let (again, store2) = (table.clone(), store.clone());
            let aor2 = aor.clone();
            let reregister = tokio::spawn(async move {
                tokio::time::sleep(REMOVAL_RETRY_AFTER / 4).await;
                store2.mend_binding_writes();
                let stored = Arc::new(AtomicBool::new(false));
                register_at(&again, &aor2, 3_600, 2, &stored, crate::directory::unix_now());
                assert!(stored.load(Ordering::SeqCst));
            });
            let removed =
                table.remove_where(std::slice::from_ref(&aor), RemovalCause::SignedOut, |_| true).await.unwrap();
            reregister.await.unwrap();
            assert_eq!(removed.len(), 1);
            assert_eq!(table.bindings(&aor)[0].cseq, 2, "the new registration stays");
        }
        assert_eq!(journal_rows(dir.path()), 1, "and stays stored");
    }
}
