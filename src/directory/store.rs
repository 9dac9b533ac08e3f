//! The embedded store: one SQLite database (WAL) holding the directory (users, extensions,
//! devices, tokens, audit log), and the bindings journal (`journal.rs`) holding the location
//! table's bindings.
//!
//! Two writers, one per kind: the directory's commits are fsync'd and may be large (a batch
//! deactivation writes thousands of rows), and a REGISTER must never queue behind them. The
//! directory has a writer thread; the bindings are written by their submitters (`binding_lane.rs`).
//! Each kind keeps its submissions' order; across kinds, callers that need an order wait for the
//! first write before submitting the second (as the actions do).
//!
//! Durability: a commit that holds any directory change runs with `synchronous=FULL` (fsync'd:
//! survives power loss). Bindings (and soft device state) are written to the operating system
//! before the 200 OK goes out, so they survive any crash of deskline (kill -9), without the fsync
//! whose cost would otherwise dominate the REGISTER path; after a power loss phones re-register
//! anyway. `[store] bindings_fsync` fsyncs those too.
//!
//! Why SQLite for the directory: it is the most trusted crash-safe embedded store (atomic commits
//! survive kill -9 and power loss), its file format has been stable for decades (no upgrade hazard
//! as with redb's format breaks), and operators can inspect it with `sqlite3`.
//!
//! Group commit: every write is queued. A writer takes whatever has queued up, writes it all at
//! once (one transaction, one fsync; or one journal append), and only then runs each submitter's
//! completion. A REGISTER therefore gets its 200 OK
//! only once its binding is durable, without paying a write of its own. Submissions are applied in
//! the order they were made, so a binding removal queued after an insert always wins.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::binding_lane::BindingLane;
use super::journal::{BindingJournal, BindingRow};
use crate::metrics::{Metrics, StoreLabels, StorePart};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store database error: {0}")]
    Database(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("record too large to store: {0}")]
    TooLarge(String),
}

impl StoreOp {
    /// A device's last contact is soft state (phones refresh it): written without an fsync of
    /// its own, like the bindings. Everything else in SQLite is the directory.
    fn is_soft(&self) -> bool {
        matches!(self, StoreOp::PutDeviceSoft { .. })
    }

    /// A write of the bindings journal.
    fn is_binding(&self) -> bool {
        matches!(self, StoreOp::PutBinding { .. } | StoreOp::DeleteBinding { .. })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// One write. Directory records are stored as JSON documents keyed by their id; bindings as the
/// registrar's opaque encoding, keyed by (address of record, contact key), in the journal.
#[derive(Debug, Clone)]
pub enum StoreOp {
    PutUser {
        username: String,
        doc: String,
    },
    DeleteUser {
        username: String,
    },
    PutDevice {
        mac: String,
        doc: String,
    },
    /// A device change that is soft state (its last config fetch, last contact): written like a
    /// binding, without an fsync of its own.
    PutDeviceSoft {
        mac: String,
        doc: String,
    },
    DeleteDevice {
        mac: String,
    },
    PutBinding {
        aor: String,
        key: String,
        expires_at: u64,
        doc: Vec<u8>,
    },
    DeleteBinding {
        aor: String,
        key: String,
    },
    PutToken {
        hash: String,
        doc: String,
    },
    DeleteToken {
        hash: String,
    },
    Audit {
        at: String,
        actor: String,
        action: String,
        target: String,
        detail: String,
    },
    PutUpload {
        mac: String,
        name: String,
        at: String,
        body: Vec<u8>,
    },
}

/// What to do once a submission is durable (or failed).
pub enum Completion {
    None,
    Notify(tokio::sync::oneshot::Sender<Result<(), StoreError>>),
    Callback(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
}

impl Completion {
    pub(super) fn finish(self, result: Result<(), StoreError>) {
        match self {
            Completion::None => {}
            Completion::Notify(tx) => {
                let _ = tx.send(result);
            }
            Completion::Callback(f) => f(result),
        }
    }
}

pub(super) struct Submission {
    pub(super) ops: Vec<StoreOp>,
    pub(super) done: Completion,
}

/// What the store held at start-up that is read whole. Users and devices are not in it: there
/// may be millions, so [`Store::for_each_doc`] streams them (each table on a connection of its
/// own, so they can be read in parallel) instead of collecting them.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub tokens: Vec<(String, String)>,
    /// Bindings that had not expired at start-up, from the journal.
    pub bindings: Vec<BindingRow>,
}

/// The tables streamed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Devices,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Devices => "devices",
        }
    }
}

fn spawn_writer(
    name: &str,
    writer: DirectoryWriter,
    metrics: Arc<Metrics>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
) -> Result<mpsc::Sender<Submission>, StoreError> {
    let (tx, rx) = mpsc::channel::<Submission>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || writer_loop(writer, rx, metrics, backlog))
        .map_err(|e| StoreError::Database(e.to_string()))?;
    Ok(tx)
}

/// One audit log entry, as read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// The handle every part writes through; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The directory's writer thread (SQLite).
    tx: mpsc::Sender<Submission>,
    /// The bindings' journal and its queue.
    bindings: BindingLane,
    /// Submissions queued or being written: how far the writer is behind.
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    reader: Arc<parking_lot::Mutex<Connection>>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (mac TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (mac TEXT NOT NULL, name TEXT NOT NULL, at TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (mac, name));
";

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    Ok(conn)
}

impl Store {
    /// Opens (or creates) `dir/deskline.db`, loads what it holds and starts the writer thread.
    pub fn open(dir: &Path, metrics: Arc<Metrics>) -> Result<(Store, Snapshot), StoreError> {
        Self::open_with(dir, metrics, true)
    }

    /// [`open`](Self::open), choosing whether binding-only commits are fsync'd.
    pub fn open_with(dir: &Path, metrics: Arc<Metrics>, bindings_fsync: bool) -> Result<(Store, Snapshot), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))?;
        let path = dir.join("deskline.db");
        let writer = open_connection(&path)?;
        writer.execute_batch(SCHEMA)?;
        let reader = open_connection(&path)?;
        let mut snapshot = load(&reader)?;
        let (journal, bindings) = BindingJournal::open(&dir.join("bindings"), super::unix_now(), bindings_fsync)?;
        snapshot.bindings = bindings;
        let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let directory_writer = DirectoryWriter { conn: writer, full_sync: true, bindings_fsync };
        let tx = spawn_writer("store-writer", directory_writer, metrics.clone(), backlog.clone())?;
        let bindings = BindingLane::start(journal, metrics, backlog.clone(), bindings_fsync)?;
        let reader = Arc::new(parking_lot::Mutex::new(reader));
        Ok((Store { tx, bindings, backlog, reader, path }, snapshot))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues writes and has them written; `done` runs once they are durable, possibly on this
    /// thread before `submit` returns (so never call it holding a lock that `done` takes: see
    /// [`enqueue`](Self::enqueue)). Never waits on a disk flush.
    pub fn submit(&self, ops: Vec<StoreOp>, done: Completion) {
        self.enqueue(ops, done);
        self.write_pending_bindings();
    }

    /// Queues writes without writing bindings on this thread: for callers holding a lock, who
    /// must call [`write_pending_bindings`](Self::write_pending_bindings) once they released it.
    /// A submission of bindings only (or of nothing: a barrier behind the bindings queued before
    /// it) goes to the bindings' journal; anything else to the directory's writer. No caller mixes
    /// the two: if one did, its bindings would be queued first and its completion would wait for
    /// the directory part only.
    pub fn enqueue(&self, ops: Vec<StoreOp>, done: Completion) {
        let (bindings, directory): (Vec<StoreOp>, Vec<StoreOp>) = if ops.iter().all(StoreOp::is_binding) {
            (ops, Vec::new())
        } else if ops.iter().any(StoreOp::is_binding) {
            ops.into_iter().partition(StoreOp::is_binding)
        } else {
            (Vec::new(), ops)
        };
        if directory.is_empty() {
            return self.bindings.push(Submission { ops: bindings, done });
        }
        if !bindings.is_empty() {
            self.bindings.push(Submission { ops: bindings, done: Completion::None });
        }
        self.send_to_directory(Submission { ops: directory, done });
    }

    /// Writes the bindings queued by [`enqueue`](Self::enqueue) (see `binding_lane.rs`).
    pub fn write_pending_bindings(&self) {
        self.bindings.write_pending();
    }

    fn send_to_directory(&self, sub: Submission) {
        self.backlog.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(mpsc::SendError(sub)) = self.tx.send(sub) {
            self.backlog.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            sub.done.finish(Err(StoreError::WriterGone));
        }
    }

    /// Makes every later bindings write fail as a broken disk would (tests of what a failed write
    /// leaves behind).
    #[cfg(test)]
    pub(crate) fn break_binding_writes(&self) {
        self.bindings.break_writes();
    }

    /// Undoes [`Self::break_binding_writes`].
    #[cfg(test)]
    pub(crate) fn mend_binding_writes(&self) {
        self.bindings.mend_writes();
    }

    /// Submissions not yet durable: the registrar sheds load (503) when this grows.
    pub fn backlog(&self) -> usize {
        self.backlog.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes and waits until they are durable.
    pub async fn commit(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(ops, Completion::Notify(tx));
        rx.await.unwrap_or(Err(StoreError::WriterGone))
    }

    /// How many rows `table` holds (to size maps before loading it).
    pub fn count(&self, table: Table) -> Result<usize, StoreError> {
        let conn = open_connection(&self.path)?;
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", table.name()), [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Calls `f` on the document of every row of `table` (users or devices), without copying
    /// it; the first error `f` returns stops the reading and is returned.
    pub fn for_each_doc<E: From<StoreError>>(
        &self,
        table: Table,
        mut f: impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), E> {
        let conn = open_connection(&self.path)?;
        let mut stmt = conn.prepare(&format!("SELECT doc FROM {}", table.name())).map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            let doc = r.get_ref(0).map_err(StoreError::from)?;
            f(doc.as_str().map_err(|e| StoreError::Corrupt(format!("{} row: {e}", table.name())))?)?;
        }
        Ok(())
    }

    /// The newest audit entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.reader.lock();
        let mut stmt =
            conn.prepare_cached("SELECT id, at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map(params![limit as i64], |r| {
            let detail: String = r.get(5)?;
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
    }
}

fn load(conn: &Connection) -> Result<Snapshot, StoreError> {
    let mut stmt = conn.prepare("SELECT hash, doc FROM tokens")?;
    let tokens = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
    Ok(Snapshot { tokens, bindings: Vec::new() })
}

/// Largest number of submissions folded into one commit.
const MAX_BATCH: usize = 4096;

/// The directory's writer: one SQLite transaction per batch.
struct DirectoryWriter {
    conn: Connection,
    /// The `synchronous` mode the connection is in.
    full_sync: bool,
    bindings_fsync: bool,
}

impl DirectoryWriter {
    fn write(&mut self, batch: &[Submission]) -> Result<(), StoreError> {
        let ops = || batch.iter().flat_map(|s| s.ops.iter());
        let needs_full = self.bindings_fsync || ops().any(|op| !op.is_soft());
        if needs_full != self.full_sync {
            let mode = if needs_full { "FULL" } else { "NORMAL" };
            if self.conn.pragma_update(None, "synchronous", mode).is_ok() {
                self.full_sync = needs_full;
            }
        }
        let tx = self.conn.transaction()?;
        for op in ops() {
            apply(&tx, op)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// A writer thread: takes whatever has queued up, writes it as one batch, then runs each
/// submitter's completion. While one batch is written the next gathers, so under load one write
/// carries many submissions and at low load nothing waits.
fn writer_loop(
    mut writer: DirectoryWriter,
    rx: mpsc::Receiver<Submission>,
    metrics: Arc<Metrics>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut batch: Vec<Submission> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let ops: usize = batch.iter().map(|s| s.ops.len()).sum();
        let result = writer.write(&batch);
        if let Err(e) = &result {
            tracing::error!(error = %e, "store commit failed; {} submissions refused", batch.len());
            metrics.store_write_failures.get_or_create(&StoreLabels { store: StorePart::directory }).inc();
        }
        metrics.store_commit_latency.observe(started.elapsed().as_secs_f64());
        metrics.store_batch_size.observe(ops as f64);
        let done = batch.len();
        for sub in batch.drain(..) {
            sub.done.finish(result.clone());
        }
        backlog.fetch_sub(done, std::sync::atomic::Ordering::Relaxed);
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, op: &StoreOp) -> Result<(), StoreError> {
    match op {
        StoreOp::PutUser { username, doc } => {
            tx.prepare_cached("INSERT OR REPLACE INTO users (username, doc) VALUES (?1, ?2)")?
                .execute(params![username, doc])?;
        }
        StoreOp::DeleteUser { username } => {
            tx.prepare_cached("DELETE FROM users WHERE username = ?1")?.execute(params![username])?;
        }
        StoreOp::PutDevice { mac, doc } | StoreOp::PutDeviceSoft { mac, doc } => {
            tx.prepare_cached("INSERT OR REPLACE INTO devices (mac, doc) VALUES (?1, ?2)")?
                .execute(params![mac, doc])?;
        }
        StoreOp::DeleteDevice { mac } => {
            tx.prepare_cached("DELETE FROM devices WHERE mac = ?1")?.execute(params![mac])?;
        }
        // Written to the journal by `binding_lane.rs`.
        StoreOp::PutBinding { .. } | StoreOp::DeleteBinding { .. } => {}
        StoreOp::PutToken { hash, doc } => {
            tx.prepare_cached("INSERT OR REPLACE INTO tokens (hash, doc) VALUES (?1, ?2)")?
                .execute(params![hash, doc])?;
        }
        StoreOp::DeleteToken { hash } => {
            tx.prepare_cached("DELETE FROM tokens WHERE hash = ?1")?.execute(params![hash])?;
        }
        StoreOp::Audit { at, actor, action, target, detail } => {
            tx.prepare_cached("INSERT INTO audit (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![at, actor, action, target, detail])?;
        }
        StoreOp::PutUpload { mac, name, at, body } => {
            tx.prepare_cached("INSERT OR REPLACE INTO uploads (mac, name, at, body) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![mac, name, at, body])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_survive_reopen_and_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        {
            let (store, snap) = Store::open(dir.path(), metrics.clone()).unwrap();
            assert!(snap.bindings.is_empty());
            let put = |i: u64| StoreOp::PutBinding {
                aor: "a".into(),
                key: format!("k{i}"),
                expires_at: u64::MAX - i,
                doc: vec![1],
            };
            store.submit(vec![put(1), put(2)], Completion::None);
            store.submit(vec![StoreOp::DeleteBinding { aor: "a".into(), key: "k1".into() }], Completion::None);
            store.commit(vec![StoreOp::PutUser { username: "u".into(), doc: "{\"x\":1}".into() }]).await.unwrap();
            store
                .commit(vec![StoreOp::Audit {
                    at: "t".into(),
                    actor: "admin".into(),
                    action: "deactivate".into(),
                    target: "u".into(),
                    detail: "{}".into(),
                }])
                .await
                .unwrap();
            assert_eq!(store.audit_log(10).unwrap()[0].action, "deactivate");
        }
        let (store, snap) = Store::open(dir.path(), metrics).unwrap();
        assert_eq!(snap.bindings.len(), 1);
        assert_eq!(snap.bindings[0].key, "k2");
        let mut users = Vec::new();
        store
            .for_each_doc(Table::Users, |doc| {
                users.push(doc.to_owned());
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(users, vec!["{\"x\":1}".to_string()]);
        assert_eq!(store.count(Table::Users).unwrap(), 1);
    }
}
