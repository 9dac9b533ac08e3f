//! Unit tests of the bindings journal: replay, torn writes, compaction.

use super::*;

fn rows_sorted(mut rows: Vec<BindingRow>) -> Vec<BindingRow> {
    rows.sort_by(|a, b| (&a.aor, &a.key).cmp(&(&b.aor, &b.key)));
    rows
}

fn row(aor: &str, key: &str, expires_at: u64, doc: &[u8]) -> BindingRow {
    BindingRow { aor: aor.into(), key: key.into(), expires_at, doc: doc.to_vec() }
}

#[test]
fn puts_and_deletes_replay_in_order_and_expired_ones_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, rows) = BindingJournal::open(dir.path(), 100, false).unwrap();
    assert!(rows.is_empty());
    j.put("sip:1@x", "a", 200, b"one").unwrap();
    j.put("sip:1@x", "b", 200, b"two").unwrap();
    j.put("sip:2@x", "a", 150, b"old").unwrap();
    j.flush().unwrap();
    j.put("sip:1@x", "a", 300, b"one-refreshed").unwrap();
    j.delete("sip:1@x", "b").unwrap();
    j.put("sip:3@x", "a", 120, b"expires").unwrap();
    j.flush().unwrap();
    drop(j);
    let (_j, rows) = BindingJournal::open(dir.path(), 130, false).unwrap();
    assert_eq!(rows_sorted(rows), vec![row("sip:1@x", "a", 300, b"one-refreshed"), row("sip:2@x", "a", 150, b"old")]);
}

#[test]
fn a_torn_tail_ends_its_segment_but_not_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = BindingJournal::open(dir.path(), 0, true).unwrap();
    j.put("sip:1@x", "a", 500, b"kept").unwrap();
    j.flush().unwrap();
    j.put("sip:1@x", "b", 500, b"torn").unwrap();
    j.flush().unwrap();
    let seq = j.seq;
    drop(j);
    // Cut the last record in half, as a crash mid-write would.
    let path = segment_path(dir.path(), seq);
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
    let (mut j, rows) = BindingJournal::open(dir.path(), 0, false).unwrap();
    assert_eq!(rows, vec![row("sip:1@x", "a", 500, b"kept")]);
    j.put("sip:1@x", "c", 500, b"after").unwrap();
    j.flush().unwrap();
    drop(j);
    let (_j, rows) = BindingJournal::open(dir.path(), 0, false).unwrap();
    assert_eq!(rows_sorted(rows), vec![row("sip:1@x", "a", 500, b"kept"), row("sip:1@x", "c", 500, b"after")]);
}

#[test]
fn a_corrupted_byte_is_caught_by_the_crc() {
    let mut buf = Vec::new();
    encode(&mut buf, PUT, "sip:1@x", "a", 7, b"doc").unwrap();
    assert!(decode(&buf).is_some());
    let last = buf.len() - 1;
    buf[last] ^= 1;
    assert!(decode(&buf).is_none());
    assert!(decode(&buf[..3]).is_none());
}

#[test]
fn discarded_records_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = BindingJournal::open(dir.path(), 0, false).unwrap();
    j.put("sip:1@x", "a", 500, b"refused batch").unwrap();
    j.discard();
    j.flush().unwrap();
    drop(j);
    assert!(BindingJournal::open(dir.path(), 0, false).unwrap().1.is_empty());
}

#[test]
fn compaction_folds_segments_into_a_snapshot_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = BindingJournal::open_with_threshold(dir.path(), 0, false, 4096).unwrap();
    // Many refreshes of few bindings: the journal grows, the live set does not.
    for round in 0..200u64 {
        for phone in 0..10 {
            j.put(&format!("sip:{phone}@x"), "k", 1_000 + round, format!("round {round}").as_bytes()).unwrap();
        }
        j.delete("sip:gone@x", "k").unwrap();
        j.flush().unwrap();
        while j.is_compacting() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    assert!(dir.path().join(SNAPSHOT).exists(), "the journal was compacted");
    let left = segments(dir.path()).unwrap();
    assert!(left.len() <= 2, "compacted segments are deleted: {left:?}");
    drop(j);
    let (_j, rows) = BindingJournal::open(dir.path(), 0, false).unwrap();
    let expected: Vec<BindingRow> = (0..10).map(|p| row(&format!("sip:{p}@x"), "k", 1_199, b"round 199")).collect();
    assert_eq!(rows_sorted(rows), expected);
}

#[test]
fn a_snapshot_that_is_not_one_is_refused_rather_than_ignored() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(SNAPSHOT), b"garbage!garbage!").unwrap();
    assert!(matches!(BindingJournal::open(dir.path(), 0, false), Err(StoreError::Corrupt(_))));
}

#[test]
fn files_larger_than_a_read_chunk_replay_whole_and_a_damaged_record_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = BindingJournal::open(dir.path(), 0, false).unwrap();
    // Records of uneven sizes, so that chunk boundaries fall inside records.
    let doc = |i: usize| vec![(i % 251) as u8; 100 + i % 997];
    let count = 2 * READ_CHUNK as usize / 500;
    for i in 0..count {
        j.put(&format!("sip:{}@x", i % 5_000), &format!("k{i}"), 900, &doc(i)).unwrap();
        if i % 1000 == 0 {
            j.flush().unwrap();
        }
    }
    j.flush().unwrap();
    let seq = j.seq;
    drop(j);
    let path = segment_path(dir.path(), seq);
    assert!(fs::metadata(&path).unwrap().len() > 2 * READ_CHUNK, "the segment spans several chunks");
    let (_, rows) = BindingJournal::open(dir.path(), 0, false).unwrap();
    assert_eq!(rows.len(), count, "every record across the chunk boundaries");
    let sample = rows.iter().find(|r| r.key == format!("k{}", count - 1)).unwrap();
    assert_eq!(sample.doc, doc(count - 1));

    // That replay compacted everything into the snapshot; damage one byte of a record in the
    // middle of the next segment's second chunk: the records before it count, those after not.
    let (mut j, _) = BindingJournal::open(dir.path(), 0, false).unwrap();
    for i in 0..count {
        j.put("sip:again@x", &format!("n{i}"), 900, &doc(i)).unwrap();
    }
    j.flush().unwrap();
    let path = segment_path(dir.path(), j.seq);
    drop(j);
    let mut bytes = fs::read(&path).unwrap();
    let mut at = 8;
    let mut kept = 0;
    while at < READ_CHUNK as usize + 12_345 {
        at += decode(&bytes[at..]).unwrap().1;
        kept += 1;
    }
    bytes[at + 20] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let (_, rows) = BindingJournal::open(dir.path(), 0, false).unwrap();
    assert_eq!(rows.iter().filter(|r| r.aor == "sip:again@x").count(), kept);
}
