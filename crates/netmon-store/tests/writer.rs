//! StoreWriter over real SQLite files: draining, coalescing, a full queue, failures and
//! retention through the writer thread.

mod common;

use std::time::Duration;

use common::*;
use netmon_store::{
    Batch, FlowRow, Retention, SendError, SqliteConfig, SqliteStore, StoreWriter, WriterConfig,
};

fn rows(from: u64, n: u64) -> Vec<FlowRow> {
    (from..from + n).map(|i| flow(1, i, i as i64, 1)).collect()
}

fn count(path: &std::path::Path) -> u64 {
    SqliteStore::open_read_only(path)
        .unwrap()
        .row_counts()
        .unwrap()
        .0
}

/// A writer over a fresh file whose write lock another connection holds (`BEGIN IMMEDIATE`):
/// the writer waits inside its first batch, up to `busy`, until `other` commits or rolls back.
struct Locked {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    w: StoreWriter,
    other: rusqlite::Connection,
}

fn locked_writer(busy: Duration, cfg: &WriterConfig) -> Locked {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let store = SqliteStore::open_with(
        &path,
        &SqliteConfig {
            busy_timeout: busy,
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    let w = StoreWriter::spawn(Box::new(store), cfg).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    Locked {
        _dir: dir,
        path,
        w,
        other,
    }
}

#[test]
fn close_commits_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let w = StoreWriter::spawn(
        Box::new(SqliteStore::open(&path).unwrap()),
        &WriterConfig::default(),
    )
    .unwrap();
    for b in 0..50 {
        w.send(Batch::Flows(rows(b * 100, 100))).unwrap();
    }
    w.send(Batch::Series(vec![series(1, 1, 0, "tcp")])).unwrap();
    w.send(Batch::Alerts(vec![alert(1, 1, 0, "syn_flood", "x")]))
        .unwrap();
    let st = w.close().unwrap();
    assert_eq!(
        (
            st.flow_rows,
            st.series_rows,
            st.alert_rows,
            st.batches,
            st.errors
        ),
        (5000, 1, 1, 52, 0)
    );
    // Batches waiting together share a transaction; at least the three tables need three.
    assert!((3..=52).contains(&st.commits), "{st:?}");
    assert_eq!(count(&path), 5000);
}

#[test]
fn dropping_the_writer_commits_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    {
        let w = StoreWriter::spawn(
            Box::new(SqliteStore::open(&path).unwrap()),
            &WriterConfig::default(),
        )
        .unwrap();
        w.send(Batch::Flows(rows(0, 10))).unwrap();
    }
    assert_eq!(count(&path), 10);
}

#[test]
fn a_full_queue_hands_the_batch_back() {
    let Locked {
        _dir,
        path,
        w,
        other,
    } = locked_writer(
        Duration::from_secs(30),
        &WriterConfig {
            queue_batches: 1,
            coalesce_rows: 0,
        },
    );
    let mut sent = 0u64;
    let full = loop {
        match w.try_send(Batch::Flows(rows(sent * 10, 10))) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent <= 2, "a queue of one batch took {sent}");
    };
    assert!(sent >= 1);
    assert!(full.to_string().contains("queue is full"), "{full}");
    let SendError::Full(back) = full else {
        panic!("{full:?}")
    };
    assert_eq!(back, Batch::Flows(rows(sent * 10, 10)));
    let st = w.stats();
    assert_eq!((st.queue_capacity, st.flow_rows), (1, 0));
    other.execute_batch("ROLLBACK").unwrap();
    w.flush().unwrap();
    assert_eq!(w.stats().flow_rows, sent * 10);
    assert_eq!(w.stats().queue_depth, 0);
    drop(w);
    assert_eq!(count(&path), sent * 10);
}

#[test]
fn a_failed_batch_is_counted_and_reported_by_the_next_flush() {
    let Locked {
        _dir,
        path,
        w,
        other,
    } = locked_writer(Duration::from_millis(20), &WriterConfig::default());
    w.send(Batch::Flows(rows(0, 7))).unwrap();
    let e = w.flush().unwrap_err();
    assert!(e.to_string().contains("database is locked"), "{e}");
    let st = w.stats();
    assert_eq!((st.errors, st.rows_failed, st.flow_rows), (1, 7, 0));
    assert!(st.last_error.unwrap().contains("locked"));
    other.execute_batch("ROLLBACK").unwrap();
    // Reported once; the writer goes on.
    w.send(Batch::Flows(rows(100, 3))).unwrap();
    w.flush().unwrap();
    let st = w.close().unwrap();
    assert_eq!((st.errors, st.flow_rows), (1, 3));
    assert_eq!(count(&path), 3);
}

#[test]
fn retention_runs_on_the_writer_thread_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let w = StoreWriter::spawn(
        Box::new(SqliteStore::open(&path).unwrap()),
        &WriterConfig::default(),
    )
    .unwrap();
    w.send(Batch::Flows(rows(0, 100))).unwrap(); // flows i: seen at i .. i + 1 s
    let st = w
        .retention(
            &Retention {
                max_age: Some(Duration::from_secs(50)),
                max_bytes: None,
            },
            ts(100),
        )
        .unwrap();
    assert_eq!(st.flows, 49);
    w.close().unwrap();
    assert_eq!(count(&path), 51);
}

/// The writer reports its store's checkpoints: a file's log grows with the batches and the
/// background thread is nudged; an in-memory store has no log to report.
#[test]
fn the_writer_reports_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let store = SqliteStore::open_with(
        &path,
        &SqliteConfig {
            checkpoint_pages: 16,
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    let w = StoreWriter::spawn(
        Box::new(store),
        &WriterConfig {
            queue_batches: 4,
            coalesce_rows: 0,
        },
    )
    .unwrap();
    for b in 0..40 {
        w.send(Batch::Flows(rows(b * 100, 100))).unwrap();
    }
    w.flush().unwrap();
    let ck = w.stats().checkpoints.expect("a file store reports its log");
    assert!(ck.max_log_frames >= 16, "{ck:?}");
    assert!(ck.log_frames > 0, "{ck:?}");
    w.close().unwrap();

    let w = StoreWriter::spawn(
        Box::new(SqliteStore::open_in_memory().unwrap()),
        &WriterConfig::default(),
    )
    .unwrap();
    w.send(Batch::Flows(rows(0, 10))).unwrap();
    w.flush().unwrap();
    assert_eq!(w.stats().checkpoints, None);
}

/// The writer hands emptied flow buffers back (capacity kept) for the next batches; a buffer
/// larger than 2 048 rows is freed instead.
#[test]
fn flow_buffers_come_back_for_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let w = StoreWriter::spawn(
        Box::new(SqliteStore::open(&path).unwrap()),
        &WriterConfig::default(),
    )
    .unwrap();
    assert_eq!(w.spare_flow_rows().capacity(), 0, "nothing written yet");
    let mut v = w.spare_flow_rows();
    v.reserve(1024);
    v.extend(rows(0, 100));
    let cap = v.capacity();
    w.send(Batch::Flows(v)).unwrap();
    w.send(Batch::Flows(rows(100, 3000))).unwrap();
    w.flush().unwrap();
    let back = w.spare_flow_rows();
    assert!(back.is_empty());
    assert_eq!(back.capacity(), cap);
    assert_eq!(w.spare_flow_rows().capacity(), 0, "the large one was freed");
    w.close().unwrap();
    assert_eq!(count(&path), 3100);
}

/// A store that only counts the rows of each `write_flows` call.
struct Calls(Vec<usize>);

impl netmon_store::Store for Calls {
    fn begin_run(&mut self, _: &netmon_store::RunInfo) -> Result<u64, netmon_store::StoreError> {
        Ok(1)
    }
    fn write_flows(&mut self, rows: &[FlowRow]) -> Result<(), netmon_store::StoreError> {
        self.0.push(rows.len());
        Ok(())
    }
    fn write_series(
        &mut self,
        _: &[netmon_store::SeriesRow],
    ) -> Result<(), netmon_store::StoreError> {
        Ok(())
    }
    fn write_alerts(
        &mut self,
        _: &[netmon_store::AlertRow],
    ) -> Result<(), netmon_store::StoreError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), netmon_store::StoreError> {
        Ok(())
    }
    fn query_flows(
        &mut self,
        _: &netmon_store::FlowQuery,
    ) -> Result<netmon_store::Page<FlowRow>, netmon_store::StoreError> {
        Err(netmon_store::StoreError::Unsupported("query"))
    }
    fn query_alerts(
        &mut self,
        _: &netmon_store::AlertQuery,
    ) -> Result<netmon_store::Page<netmon_store::AlertRow>, netmon_store::StoreError> {
        Err(netmon_store::StoreError::Unsupported("query"))
    }
    fn query_series(
        &mut self,
        _: &netmon_store::SeriesQuery,
    ) -> Result<netmon_store::Page<netmon_store::SeriesRow>, netmon_store::StoreError> {
        Err(netmon_store::StoreError::Unsupported("query"))
    }
    fn retention(
        &mut self,
        _: &Retention,
        _: netmon_types::Timestamp,
    ) -> Result<netmon_store::RetentionStats, netmon_store::StoreError> {
        Ok(netmon_store::RetentionStats::default())
    }
}

/// By default, batches written together are one `write_flows` call (a PostgreSQL sink
/// upserts them in one statement), and the others are left empty for reuse.
#[test]
fn batches_written_together_are_one_call_by_default() {
    use netmon_store::Store;
    let mut s = Calls(Vec::new());
    let mut group = vec![rows(0, 3), rows(3, 2), Vec::new(), rows(5, 4)];
    s.write_flow_batches(&mut group).unwrap();
    assert_eq!(s.0, [9]);
    assert_eq!(group[0].len(), 9);
    assert!(group[1..].iter().all(Vec::is_empty));
    s.write_flow_batches(&mut []).unwrap();
    assert_eq!(s.0, [9]);
}

/// Batches of one table waiting together share a transaction, in queue order: flow batches as
/// a group, series appended; a batch of another table ends the group.
#[test]
fn batches_waiting_together_share_a_transaction() {
    let Locked {
        _dir,
        path,
        w,
        other,
    } = locked_writer(Duration::from_secs(30), &WriterConfig::default());
    w.send(Batch::Flows(rows(0, 10))).unwrap();
    let t = std::time::Instant::now();
    while w.stats().queue_depth > 0 {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    w.send(Batch::Flows(rows(10, 10))).unwrap();
    w.send(Batch::Series(vec![series(1, 1, 0, "tcp")])).unwrap();
    w.send(Batch::Series(vec![series(1, 2, 0, "tcp")])).unwrap();
    w.send(Batch::Flows(rows(20, 10))).unwrap();
    w.send(Batch::Flows(rows(30, 10))).unwrap();
    other.execute_batch("COMMIT").unwrap();
    let st = w.close().unwrap();
    assert_eq!((st.flow_rows, st.series_rows, st.batches), (40, 2, 6));
    // The first alone, then [flows], [series, series], [flows, flows].
    assert_eq!(st.commits, 4, "{st:?}");
    assert_eq!(count(&path), 40);
}
