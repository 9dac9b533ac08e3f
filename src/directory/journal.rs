//! The bindings journal: the durable copy of the location table, kept as an append-only log instead
//! of rows in SQLite.
//!
//! Why not SQLite: a binding changes on every REGISTER (its expiry, CSeq and branch move), so the
//! table is rewritten hundreds of times a second per thousand phones. In SQLite each such commit
//! rewrites whole 4 KiB B-tree pages into the WAL and walks the VDBE; profiling showed that as
//! the largest single cost of a REGISTER (about 15 % of the server's CPU). Appending a ~200-byte
//! record with one `pwrite` per group commit costs a tenth of that, and a log replays at start-up
//! as fast as the disk reads.
//!
//! Layout, in `<data_dir>/bindings/`:
//! * `journal-<seq>.log`: records appended by the store's writer thread. A new segment starts at
//!   every start-up and whenever the current one has grown past the compaction threshold.
//! * `snapshot.bin`: every binding live as of the end of segment `covers` (its header), written by
//!   compaction to a temporary file, fsync'd and renamed over the old one, so it is always whole.
//!
//! Recovery reads the snapshot, then every segment after `covers` in order; a record whose length
//! or CRC does not check ends its segment (a write torn by a crash: nothing after it in that
//! segment was acknowledged). Segments at or below `covers` are left-overs of a finished
//! compaction and are deleted.
//!
//! Compaction runs on its own thread from files only (the old segments are immutable once the
//! writer has moved on), so it never touches the in-memory table nor holds up a REGISTER: it
//! merges the snapshot with the closed segments, drops expired bindings, and writes the new
//! snapshot. It starts when the open segment outgrows both [`COMPACT_MIN`] and the last snapshot,
//! so the bytes written stay within a small multiple of the bytes live.
//!
//! Durability is the same as the store's binding commits: the records reach the operating system
//! (`pwrite`) before the writer runs any completion, so a 200 OK implies the binding survives a
//! crash of deskline; with `[store] bindings_fsync` each batch is also `fdatasync`'d.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::store::StoreError;

/// A segment is not compacted before it holds this many bytes.
pub const COMPACT_MIN: u64 = 64 * 1024 * 1024;

/// More segments than this at start-up (many short runs) are compacted too.
const MAX_SEGMENTS: usize = 16;

const SNAPSHOT: &str = "snapshot.bin";
const SNAPSHOT_MAGIC: &[u8; 8] = b"DLBSNAP1";
const SEGMENT_MAGIC: &[u8; 8] = b"DLBJRNL1";
const PUT: u8 = 1;
const DELETE: u8 = 2;

/// One durable binding as the journal holds it: the registrar's encoded binding is opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRow {
    pub aor: String,
    pub key: String,
    pub expires_at: u64,
    pub doc: Vec<u8>,
}

/// The writer's end of the journal. Owned by the store's writer thread.
pub struct BindingJournal {
    dir: PathBuf,
    seq: u64,
    segment: File,
    segment_path: PathBuf,
    /// Bytes of the open segment that are written (the next write goes here).
    written: u64,
    /// Records encoded since the last flush.
    pending: Vec<u8>,
    fsync: bool,
    threshold: u64,
    snapshot_len: Arc<AtomicU64>,
    compacting: Arc<AtomicBool>,
}

fn io_err(what: &Path, e: std::io::Error) -> StoreError {
    StoreError::Database(format!("{}: {e}", what.display()))
}

impl BindingJournal {
    /// Opens the journal in `dir` (creating it), returns every binding that has not expired by
    /// `now`, and starts a new segment for this run.
    pub fn open(dir: &Path, now: u64, fsync: bool) -> Result<(BindingJournal, Vec<BindingRow>), StoreError> {
        Self::open_with_threshold(dir, now, fsync, COMPACT_MIN)
    }

    /// [`open`](Self::open) with another compaction threshold (tests).
    pub fn open_with_threshold(
        dir: &Path,
        now: u64,
        fsync: bool,
        threshold: u64,
    ) -> Result<(BindingJournal, Vec<BindingRow>), StoreError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let recovered = recover(dir, None)?;
        let seq = recovered.last_segment + 1;
        let (segment, written) = create_segment(dir, seq)?;
        let snapshot_len = fs::metadata(dir.join(SNAPSHOT)).map(|m| m.len()).unwrap_or(0);
        let journal = BindingJournal {
            dir: dir.to_path_buf(),
            seq,
            segment,
            segment_path: segment_path(dir, seq),
            written,
            pending: Vec::with_capacity(64 * 1024),
            fsync,
            threshold,
            snapshot_len: Arc::new(AtomicU64::new(snapshot_len)),
            compacting: Arc::new(AtomicBool::new(false)),
        };
        // Every start begins a segment: fold them in when they have grown large or many.
        if recovered.replayed_bytes > threshold.max(snapshot_len) || recovered.replayed_segments > MAX_SEGMENTS {
            journal.start_compaction(seq - 1);
        }
        Ok((journal, recovered.live_rows(now)))
    }

    /// Queues a binding write; it is durable after the next [`flush`](Self::flush).
    pub fn put(&mut self, aor: &str, key: &str, expires_at: u64, doc: &[u8]) -> Result<(), StoreError> {
        encode(&mut self.pending, PUT, aor, key, expires_at, doc)
    }

    /// Queues a binding removal.
    pub fn delete(&mut self, aor: &str, key: &str) -> Result<(), StoreError> {
        encode(&mut self.pending, DELETE, aor, key, 0, &[])
    }

    /// Writes what was queued (one `pwrite`; `fdatasync` too when configured). On failure nothing
    /// of this batch counts: the next write goes over the same bytes.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = &self.segment_path;
        let result = self.segment.write_all_at(&self.pending, self.written).map_err(|e| io_err(path, e));
        let result = result.and_then(|()| match self.fsync {
            true => self.segment.sync_data().map_err(|e| io_err(path, e)),
            false => Ok(()),
        });
        if result.is_ok() {
            self.written += self.pending.len() as u64;
        }
        self.pending.clear();
        result?;
        if self.written > self.threshold.max(self.snapshot_len.load(Ordering::Relaxed))
            && !self.compacting.load(Ordering::Acquire)
        {
            // This batch is written: a segment that cannot be started only postpones compaction.
            if let Err(e) = self.rotate() {
                tracing::error!(error = %e, "cannot start a new journal segment; compaction postponed");
            }
        }
        Ok(())
    }

    /// Drops what was queued since the last flush (its batch failed elsewhere).
    pub fn discard(&mut self) {
        self.pending.clear();
    }

    /// Starts a new segment and compacts everything before it in the background.
    fn rotate(&mut self) -> Result<(), StoreError> {
        let (segment, written) = create_segment(&self.dir, self.seq + 1)?;
        self.segment = segment;
        self.written = written;
        self.seq += 1;
        self.segment_path = segment_path(&self.dir, self.seq);
        self.start_compaction(self.seq - 1);
        Ok(())
    }

    fn start_compaction(&self, upto: u64) {
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (dir, flag, snapshot_len) = (self.dir.clone(), self.compacting.clone(), self.snapshot_len.clone());
        let spawned = std::thread::Builder::new().name("journal-compact".into()).spawn(move || {
            let started = std::time::Instant::now();
            match compact(&dir, upto, crate::directory::unix_now()) {
                Ok((rows, len)) => {
                    snapshot_len.store(len, Ordering::Relaxed);
                    tracing::info!(rows, bytes = len, ms = started.elapsed().as_millis() as u64, "bindings compacted");
                }
                Err(e) => tracing::error!(error = %e, "bindings compaction failed; the journal keeps growing"),
            }
            flag.store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.compacting.store(false, Ordering::Release);
        }
    }

    /// Swaps the segment for a read-only handle of it, so every later write fails with a real I/O
    /// error (EBADF), as on a broken disk.
    #[cfg(test)]
    pub(crate) fn break_writes(&mut self) {
        self.segment = File::open(&self.segment_path).expect("segment readable");
    }

    /// Undoes [`Self::break_writes`]: the disk is back.
    #[cfg(test)]
    pub(crate) fn mend_writes(&mut self) {
        self.segment = OpenOptions::new().write(true).open(&self.segment_path).expect("segment writable");
    }

    /// Whether a background compaction is running (tests wait on it).
    #[cfg(test)]
    pub(crate) fn is_compacting(&self) -> bool {
        self.compacting.load(Ordering::Acquire)
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("journal-{seq:020}.log"))
}

fn create_segment(dir: &Path, seq: u64) -> Result<(File, u64), StoreError> {
    let path = segment_path(dir, seq);
    let mut file =
        OpenOptions::new().create(true).truncate(true).write(true).open(&path).map_err(|e| io_err(&path, e))?;
    file.write_all(SEGMENT_MAGIC).map_err(|e| io_err(&path, e))?;
    Ok((file, SEGMENT_MAGIC.len() as u64))
}

/// Appends one framed record: `[len u32][crc32 u32][kind u8][aor len u16][aor][key len u16][key]
/// [expires_at u64][doc len u32][doc]`, little-endian.
fn encode(out: &mut Vec<u8>, kind: u8, aor: &str, key: &str, expires_at: u64, doc: &[u8]) -> Result<(), StoreError> {
    let (Ok(aor_len), Ok(key_len), Ok(doc_len)) =
        (u16::try_from(aor.len()), u16::try_from(key.len()), u32::try_from(doc.len()))
    else {
        return Err(StoreError::TooLarge(format!("binding of {}", aor.get(..64).unwrap_or(aor))));
    };
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(kind);
    out.extend_from_slice(&aor_len.to_le_bytes());
    out.extend_from_slice(aor.as_bytes());
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&expires_at.to_le_bytes());
    out.extend_from_slice(&doc_len.to_le_bytes());
    out.extend_from_slice(doc);
    let payload_len = (out.len() - start - 8) as u32;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One decoded record, borrowing from the file's bytes.
struct Record<'a> {
    kind: u8,
    aor: &'a str,
    key: &'a str,
    expires_at: u64,
    doc: &'a [u8],
}

/// Reads the framed record at the start of `buf`: the record and its length, or `None` when the
/// bytes there are not a whole, intact record.
fn decode(buf: &[u8]) -> Option<(Record<'_>, usize)> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?);
    let payload = buf.get(8..8usize.checked_add(len)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = payload.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let kind = take(1)?[0];
    let aor_len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
    let aor = std::str::from_utf8(take(aor_len)?).ok()?;
    let key_len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(take(key_len)?).ok()?;
    let expires_at = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let doc_len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let doc = take(doc_len)?;
    Some((Record { kind, aor, key, expires_at, doc }, 8 + len))
}

/// The state read back from disk: the live bindings keyed by (AOR, key).
struct Recovered {
    live: HashMap<(String, String), (u64, Vec<u8>)>,
    last_segment: u64,
    replayed_bytes: u64,
    replayed_segments: usize,
}

impl Recovered {
    fn apply(&mut self, r: Record<'_>) {
        let id = (r.aor.to_owned(), r.key.to_owned());
        match r.kind {
            PUT => {
                self.live.insert(id, (r.expires_at, r.doc.to_vec()));
            }
            DELETE => {
                self.live.remove(&id);
            }
            // A kind this version does not know (a newer writer's): not ours to interpret.
            _ => {}
        }
    }

    /// Applies every intact record of `bytes` from `from`; returns where the intact part ends.
    fn replay(&mut self, bytes: &[u8], from: usize) -> usize {
        let mut at = from;
        while let Some((record, used)) = bytes.get(at..).and_then(decode) {
            self.apply(record);
            at += used;
        }
        at
    }

    fn live_rows(self, now: u64) -> Vec<BindingRow> {
        self.live
            .into_iter()
            .filter(|(_, (expires_at, _))| *expires_at > now)
            .map(|((aor, key), (expires_at, doc))| BindingRow { aor, key, expires_at, doc })
            .collect()
    }
}

/// The segments in `dir`, by sequence number.
fn segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let name = entry.map_err(|e| io_err(dir, e))?.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name.strip_prefix("journal-").and_then(|s| s.strip_suffix(".log")) {
            if let Ok(seq) = seq.parse::<u64>() {
                seqs.push(seq);
            }
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Reads the snapshot and the segments after it (up to `upto` if given).
fn recover(dir: &Path, upto: Option<u64>) -> Result<Recovered, StoreError> {
    let mut state = Recovered { live: HashMap::new(), last_segment: 0, replayed_bytes: 0, replayed_segments: 0 };
    let snapshot_path = dir.join(SNAPSHOT);
    let mut covers = 0;
    match File::open(&snapshot_path) {
        Ok(file) => {
            let len = file.metadata().map_err(|e| io_err(&snapshot_path, e))?.len();
            let read = state.replay_file(file, len, SNAPSHOT_MAGIC).map_err(|e| io_err(&snapshot_path, e))?;
            let Some(FileReplayed { after_magic, intact, len }) = read else {
                return Err(StoreError::Corrupt(format!("{} is not a bindings snapshot", snapshot_path.display())));
            };
            covers = after_magic;
            if intact != len {
                return Err(StoreError::Corrupt(format!("{} is damaged at byte {intact}", snapshot_path.display())));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&snapshot_path, e)),
    }
    state.last_segment = covers;
    for seq in segments(dir)? {
        let path = segment_path(dir, seq);
        if seq <= covers {
            if upto.is_none() {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        if upto.is_some_and(|limit| seq > limit) {
            break;
        }
        let file = File::open(&path).map_err(|e| io_err(&path, e))?;
        let len = file.metadata().map_err(|e| io_err(&path, e))?.len();
        // A file without the magic (a segment whose creation was cut short) holds nothing.
        if let Some(read) = state.replay_file(file, len, SEGMENT_MAGIC).map_err(|e| io_err(&path, e))? {
            if read.intact != read.len {
                tracing::warn!(segment = %path.display(), at = read.intact, len = read.len, "journal segment ends in a torn record; the rest is ignored");
            }
        }
        state.replayed_bytes += len;
        state.replayed_segments += 1;
        state.last_segment = seq;
    }
    Ok(state)
}

/// How much of a journal file is read into memory at a time: a segment or snapshot can be
/// hundreds of megabytes, and reading one whole (as compaction did) made the kernel fault in and
/// zero as much fresh memory each time, measured as most of compaction's CPU.
const READ_CHUNK: u64 = 4 << 20;

/// What [`Recovered::replay_file`] read: the 8 bytes after the magic (a segment's first record,
/// a snapshot's `covers`), where the intact records end, and the file's length.
struct FileReplayed {
    after_magic: u64,
    intact: u64,
    len: u64,
}

impl Recovered {
    /// Applies every intact record of `file` after its `magic` (and, for a snapshot, its
    /// `covers`), reading it in chunks; `len` is the file's length (the caller's `fstat`).
    /// `None` when the file does not start with `magic`.
    fn replay_file(&mut self, mut file: File, len: u64, magic: &[u8; 8]) -> std::io::Result<Option<FileReplayed>> {
        use std::io::Read;
        let mut buf = Vec::new();
        (&mut file).take(READ_CHUNK).read_to_end(&mut buf)?;
        let header = if magic == SNAPSHOT_MAGIC { 16 } else { 8 };
        if buf.len() < header || buf[..8] != magic[..] {
            return Ok(None);
        }
        let after_magic = buf.get(8..16).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        let (mut offset, mut start) = (0u64, header);
        loop {
            let end = self.replay(&buf, start);
            let tail = &buf[end..];
            // A whole record that did not decode ends the file's intact part; a partial one may
            // only be cut by the chunk.
            let whole = tail.get(..4).map(|l| u32::from_le_bytes(l.try_into().unwrap_or_default()) as usize);
            let damaged = whole.is_some_and(|n| tail.len() >= n.saturating_add(8));
            let read = match damaged {
                true => 0,
                false => {
                    buf.drain(..end);
                    offset += end as u64;
                    start = 0;
                    (&mut file).take(READ_CHUNK).read_to_end(&mut buf)?
                }
            };
            if read == 0 {
                let intact = if damaged { offset + end as u64 } else { offset };
                return Ok(Some(FileReplayed { after_magic, intact, len }));
            }
        }
    }
}

/// Folds the snapshot and segments `..=upto` into a new snapshot; returns (rows, bytes).
fn compact(dir: &Path, upto: u64, now: u64) -> Result<(usize, u64), StoreError> {
    let rows = recover(dir, Some(upto))?.live_rows(now);
    let mut out =
        Vec::with_capacity(16 + rows.iter().map(|r| 40 + r.aor.len() + r.key.len() + r.doc.len()).sum::<usize>());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&upto.to_le_bytes());
    for r in &rows {
        encode(&mut out, PUT, &r.aor, &r.key, r.expires_at, &r.doc)?;
    }
    let tmp = dir.join("snapshot.tmp");
    let mut file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    file.write_all(&out).and_then(|()| file.sync_all()).map_err(|e| io_err(&tmp, e))?;
    let snapshot = dir.join(SNAPSHOT);
    fs::rename(&tmp, &snapshot).map_err(|e| io_err(&snapshot, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err(dir, e))?;
    for seq in segments(dir)?.into_iter().filter(|s| *s <= upto) {
        let _ = fs::remove_file(segment_path(dir, seq));
    }
    Ok((rows.len(), out.len() as u64))
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
