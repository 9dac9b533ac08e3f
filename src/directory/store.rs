//! The embedded store: one SQLite database (WAL) holding the directory (users, extensions,
//! devices, tokens, audit log) and the location table's bindings.
//!
//! Durability: a commit that holds any directory change runs with `synchronous=FULL` (fsync'd:
//! survives power loss). A commit of bindings only runs with `synchronous=NORMAL` unless
//! `[store] bindings_fsync` is set: in WAL mode that is written to the operating system before the
//! 200 OK goes out, so it survives any crash of deskline (kill -9), and skips the fsync whose cost
//! would otherwise dominate the REGISTER path; after a power loss phones re-register anyway.
//!
//! Why SQLite: it is the most trusted crash-safe embedded store (atomic commits survive kill -9 and
//! power loss), its file format has been stable for decades (no upgrade hazard as with redb's format
//! breaks), operators can inspect it with `sqlite3`, and batched writes cost a few microseconds a row.
//!
//! Group commit: every write goes to one writer thread through a channel. The thread takes whatever
//! has queued up, writes it all in one transaction, commits (one fsync for the whole batch), and only
//! then runs each submitter's completion. A REGISTER therefore gets its 200 OK only once its binding
//! is durable, without paying an fsync of its own. Submissions are applied in the order they were
//! made, so a binding removal queued after an insert always wins.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store database error: {0}")]
    Database(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

impl StoreOp {
    /// Bindings are soft state (phones refresh them); everything else is the directory.
    fn is_binding(&self) -> bool {
        matches!(self, StoreOp::PutBinding { .. } | StoreOp::DeleteBinding { .. } | StoreOp::PutDeviceSoft { .. })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// One write. Directory records are stored as JSON documents keyed by their id; bindings too,
/// keyed by (address of record, contact key).
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
        doc: String,
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
    fn finish(self, result: Result<(), StoreError>) {
        match self {
            Completion::None => {}
            Completion::Notify(tx) => {
                let _ = tx.send(result);
            }
            Completion::Callback(f) => f(result),
        }
    }
}

struct Submission {
    ops: Vec<StoreOp>,
    done: Completion,
}

/// What the store held at start-up that is read whole. Users, devices and bindings are not in it:
/// there may be millions, so [`Store::for_each_doc`] and [`Store::for_each_binding`] stream them
/// (each on a connection of its own, so they can be read in parallel) instead of collecting them.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub tokens: Vec<(String, String)>,
}

/// The tables streamed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Devices,
    Bindings,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Devices => "devices",
            Table::Bindings => "bindings",
        }
    }
}

/// One stored binding, borrowed from the row being read.
#[derive(Debug, Clone, Copy)]
pub struct BindingRow<'a> {
    pub aor: &'a str,
    pub key: &'a str,
    pub expires_at: u64,
    pub doc: &'a str,
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
    tx: mpsc::Sender<Submission>,
    /// Submissions queued or being written: how far the writer is behind.
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    reader: Arc<parking_lot::Mutex<Connection>>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (mac TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (aor TEXT NOT NULL, key TEXT NOT NULL, expires_at INTEGER NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (aor, key)) WITHOUT ROWID;
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
        let snapshot = load(&reader)?;
        let (tx, rx) = mpsc::channel::<Submission>();
        let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer_backlog = backlog.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(writer, rx, metrics, bindings_fsync, writer_backlog))
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok((Store { tx, backlog, reader: Arc::new(parking_lot::Mutex::new(reader)), path }, snapshot))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues writes; `done` runs once they are durable. Never blocks.
    pub fn submit(&self, ops: Vec<StoreOp>, done: Completion) {
        self.backlog.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(mpsc::SendError(sub)) = self.tx.send(Submission { ops, done }) {
            self.backlog.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            sub.done.finish(Err(StoreError::WriterGone));
        }
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

    /// Calls `f` on every stored binding, in (address of record, key) order, without copying
    /// the rows: how the location table is rebuilt at start-up.
    pub fn for_each_binding(&self, mut f: impl FnMut(BindingRow<'_>)) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        let mut stmt = conn.prepare("SELECT aor, key, expires_at, doc FROM bindings")?;
        let mut rows = stmt.query([])?;
        let text = |r: &rusqlite::Row<'_>, i: usize| -> Result<String, StoreError> {
            let bytes = r.get_ref(i)?.as_bytes().map_err(|e| StoreError::Corrupt(format!("binding row: {e}")))?;
            Ok(String::from_utf8_lossy(bytes).into_owned())
        };
        while let Some(r) = rows.next()? {
            let expires_at = r.get::<_, i64>(2)?.max(0) as u64;
            match (r.get_ref(0)?.as_str(), r.get_ref(1)?.as_str(), r.get_ref(3)?.as_str()) {
                (Ok(aor), Ok(key), Ok(doc)) => f(BindingRow { aor, key, expires_at, doc }),
                // Not UTF-8: handed over as found (lossily), for the caller to drop as corrupt.
                _ => f(BindingRow { aor: &text(r, 0)?, key: &text(r, 1)?, expires_at, doc: &text(r, 3)? }),
            }
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
    Ok(Snapshot { tokens })
}

/// Largest number of submissions folded into one transaction.
const MAX_BATCH: usize = 4096;

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Submission>,
    metrics: Arc<Metrics>,
    bindings_fsync: bool,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut batch: Vec<Submission> = Vec::with_capacity(MAX_BATCH);
    let mut full_sync = true;
    while let Ok(first) = rx.recv() {
        // Take whatever queued up meanwhile: while one commit runs, the next batch gathers, so
        // under load one commit carries many REGISTERs and at low load nothing waits.
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let ops: usize = batch.iter().map(|s| s.ops.len()).sum();
        let needs_full = bindings_fsync || batch.iter().flat_map(|s| s.ops.iter()).any(|op| !op.is_binding());
        if needs_full != full_sync {
            let mode = if needs_full { "FULL" } else { "NORMAL" };
            if conn.pragma_update(None, "synchronous", mode).is_ok() {
                full_sync = needs_full;
            }
        }
        let result = write_batch(&mut conn, &batch);
        if let Err(e) = &result {
            tracing::error!(error = %e, "store commit failed; {} submissions refused", batch.len());
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

fn write_batch(conn: &mut Connection, batch: &[Submission]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for op in batch.iter().flat_map(|s| s.ops.iter()) {
        apply(&tx, op)?;
    }
    tx.commit()?;
    Ok(())
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
        StoreOp::PutBinding { aor, key, expires_at, doc } => {
            tx.prepare_cached("INSERT OR REPLACE INTO bindings (aor, key, expires_at, doc) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![aor, key, *expires_at as i64, doc])?;
        }
        StoreOp::DeleteBinding { aor, key } => {
            tx.prepare_cached("DELETE FROM bindings WHERE aor = ?1 AND key = ?2")?.execute(params![aor, key])?;
        }
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

    fn stored_bindings(store: &Store) -> Vec<(String, String, u64, String)> {
        let mut out = Vec::new();
        store
            .for_each_binding(|r| out.push((r.aor.to_owned(), r.key.to_owned(), r.expires_at, r.doc.to_owned())))
            .unwrap();
        out
    }

    #[tokio::test]
    async fn writes_survive_reopen_and_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        {
            let (store, _snap) = Store::open(dir.path(), metrics.clone()).unwrap();
            assert_eq!(stored_bindings(&store), vec![]);
            let put =
                |i: u64| StoreOp::PutBinding { aor: "a".into(), key: format!("k{i}"), expires_at: i, doc: "{}".into() };
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
        let (store, _snap) = Store::open(dir.path(), metrics).unwrap();
        assert_eq!(stored_bindings(&store), vec![("a".to_string(), "k2".to_string(), 2, "{}".to_string())]);
        let mut users = Vec::new();
        store
            .for_each_doc(Table::Users, |doc| {
                users.push(doc.to_owned());
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(users, vec!["{\"x\":1}".to_string()]);
        assert_eq!((store.count(Table::Users).unwrap(), store.count(Table::Bindings).unwrap()), (1, 1));
    }
}
