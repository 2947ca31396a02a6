//! [`SpoolingStore`]: spool-and-forward in front of a remote [`Store`] (PostgreSQL). While the
//! store is unreachable, every batch is written to a local spool directory instead — one file
//! per batch, fsync'd, bounded in bytes, kept across restarts — and retried with exponential
//! backoff (1 s doubling to 60 s); once the store answers again the spool drains oldest first
//! and its files are deleted.
//!
//! Spool files are `<seq>-<rows>.json`, `seq` a 20-digit counter (the order), each holding one
//! JSON object: `{"kind": "flows" | "series" | "alerts", "rows": [...]}` (the rows' serde form)
//! or `{"kind": "run", "rows": {"run_id": ..., "info": {...}}}`. Files are written beside
//! as `.tmp`, fsync'd and renamed, so a crash leaves whole files only. A file that does not
//! parse, or whose rows the store refuses (not an outage), is renamed `.bad` and its rows
//! counted as dropped, so one bad batch never blocks the rest.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netmon_types::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::StoreError;
use crate::query::{AlertQuery, FlowQuery, Page, Retention, RetentionStats, SeriesQuery};
use crate::rows::{AlertRow, FlowRow, RunInfo, SeriesRow};

/// First retry delay after a failure.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A run id from the clock: the run's start in nanoseconds since the epoch (the wall clock now
/// when `started` is unset). Unique per host unless two of its runs start in the same
/// nanosecond; needs no database, so a run can begin while the store is unreachable.
pub fn clock_run_id(run: &RunInfo) -> u64 {
    let ns = if run.started.0 > 0 {
        u64::try_from(run.started.0).unwrap_or(1)
    } else {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    ns.clamp(1, crate::MAX_STORED)
}

/// Where the spool lives and how big it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The spool directory (created if missing). One store per directory.
    pub dir: PathBuf,
    /// The most bytes of spool files kept: beyond it the oldest batches are deleted (their
    /// rows counted in [`SpoolStatus::dropped_rows`]).
    pub max_bytes: u64,
}

/// The sink's state, shared with whoever reports it (netmond's `/metrics` and status).
#[derive(Debug, Default)]
pub struct SpoolStatus {
    connected: AtomicBool,
    spooled_rows: AtomicU64,
    spooled_bytes: AtomicU64,
    dropped_rows: AtomicU64,
    drained_rows: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl SpoolStatus {
    /// Whether the last operation on the store succeeded.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Rows waiting in the spool.
    pub fn spooled_rows(&self) -> u64 {
        self.spooled_rows.load(Ordering::Relaxed)
    }

    /// Bytes of spool files.
    pub fn spooled_bytes(&self) -> u64 {
        self.spooled_bytes.load(Ordering::Relaxed)
    }

    /// Rows lost: spooled batches deleted to respect the byte limit, and batches the store
    /// refused or that did not parse.
    pub fn dropped_rows(&self) -> u64 {
        self.dropped_rows.load(Ordering::Relaxed)
    }

    /// Rows written to the store from the spool.
    pub fn drained_rows(&self) -> u64 {
        self.drained_rows.load(Ordering::Relaxed)
    }

    /// The last error, if any (kept after recovery, for the record).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    fn set_error(&self, e: &StoreError) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(e.to_string());
        }
    }
}

/// A spooled run registration.
#[derive(Serialize, Deserialize)]
struct SpooledRun {
    run_id: u64,
    info: RunInfo,
}

/// One spool file's content (read back).
#[derive(Deserialize)]
#[serde(tag = "kind", content = "rows", rename_all = "snake_case")]
enum Record {
    Run(SpooledRun),
    Flows(Vec<FlowRow>),
    Series(Vec<SeriesRow>),
    Alerts(Vec<AlertRow>),
}

/// One spool file's content (written: borrowed).
#[derive(Serialize)]
#[serde(tag = "kind", content = "rows", rename_all = "snake_case")]
enum RecordRef<'a> {
    Run(&'a SpooledRun),
    Flows(&'a [FlowRow]),
    Series(&'a [SeriesRow]),
    Alerts(&'a [AlertRow]),
}

#[derive(Debug)]
struct SpoolFile {
    path: PathBuf,
    bytes: u64,
    rows: u64,
}

/// A [`Store`] that spools what its inner store cannot take now. See the module
/// documentation.
#[derive(Debug)]
pub struct SpoolingStore<S> {
    inner: S,
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<SpoolFile>,
    next_seq: u64,
    status: Arc<SpoolStatus>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

/// `<seq>-<rows>.json` → (seq, rows).
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".json")?;
    let (seq, rows) = stem.split_once('-')?;
    Some((seq.parse().ok()?, rows.parse().ok()?))
}

impl<S: Store> SpoolingStore<S> {
    /// Wraps `inner`, finding the batches a previous run left in the spool directory (they
    /// drain first).
    pub fn open(inner: S, cfg: &SpoolConfig) -> Result<SpoolingStore<S>, StoreError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Spool { path, op, source }
        };
        fs::create_dir_all(&cfg.dir).map_err(io("create the directory", &cfg.dir))?;
        let mut found = Vec::new();
        for entry in fs::read_dir(&cfg.dir).map_err(io("list", &cfg.dir))? {
            let entry = entry.map_err(io("list", &cfg.dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                // A batch whose write did not finish: it was never acknowledged.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some((seq, rows)) = parse_name(&name) else {
                continue;
            };
            let bytes = entry.metadata().map_or(0, |m| m.len());
            found.push((seq, entry.path(), bytes, rows));
        }
        found.sort_by_key(|f| f.0);
        let status = Arc::new(SpoolStatus::default());
        let next_seq = found.last().map_or(0, |f| f.0.saturating_add(1));
        let files: VecDeque<SpoolFile> = found
            .into_iter()
            .map(|(_, path, bytes, rows)| SpoolFile { path, bytes, rows })
            .collect();
        status
            .spooled_rows
            .store(files.iter().map(|f| f.rows).sum(), Ordering::Relaxed);
        status
            .spooled_bytes
            .store(files.iter().map(|f| f.bytes).sum(), Ordering::Relaxed);
        Ok(SpoolingStore {
            inner,
            dir: cfg.dir.clone(),
            max_bytes: cfg.max_bytes,
            files,
            next_seq,
            status,
            backoff: MIN_BACKOFF,
            retry_at: None,
        })
    }

    /// The shared status (connected, spooled rows, last error).
    pub fn status(&self) -> Arc<SpoolStatus> {
        Arc::clone(&self.status)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Batches waiting in the spool.
    pub fn spooled_batches(&self) -> usize {
        self.files.len()
    }

    /// Tries to drain the spool now, whatever the backoff says. `Ok` when it is empty.
    pub fn drain(&mut self) -> Result<(), StoreError> {
        while let Some(f) = self.files.front() {
            let path = f.path.clone();
            let rows = f.rows;
            let res = match fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
            {
                None => Err(None),
                Some(rec) => match rec {
                    Record::Run(r) => self.inner.begin_run_as(r.run_id, &r.info),
                    Record::Flows(v) => self.inner.write_flows(&v),
                    Record::Series(v) => self.inner.write_series(&v),
                    Record::Alerts(v) => self.inner.write_alerts(&v),
                }
                .map_err(Some),
            };
            match res {
                Ok(()) => {
                    self.up();
                    self.status.drained_rows.fetch_add(rows, Ordering::Relaxed);
                    let _ = fs::remove_file(&path);
                }
                Err(Some(e)) if e.is_unavailable() => {
                    self.down(&e);
                    return Err(e);
                }
                Err(e) => {
                    // Unreadable, or refused by the store: set aside, counted.
                    if let Some(e) = &e {
                        self.status.set_error(e);
                    }
                    let _ = fs::rename(&path, path.with_extension("bad"));
                    self.status.dropped_rows.fetch_add(rows, Ordering::Relaxed);
                }
            }
            self.pop_front();
        }
        Ok(())
    }

    fn pop_front(&mut self) {
        if let Some(f) = self.files.pop_front() {
            self.status
                .spooled_rows
                .fetch_sub(f.rows.min(self.status.spooled_rows()), Ordering::Relaxed);
            self.status
                .spooled_bytes
                .fetch_sub(f.bytes.min(self.status.spooled_bytes()), Ordering::Relaxed);
        }
    }

    fn up(&mut self) {
        self.status.connected.store(true, Ordering::Relaxed);
        self.backoff = MIN_BACKOFF;
        self.retry_at = None;
    }

    fn down(&mut self, e: &StoreError) {
        self.status.connected.store(false, Ordering::Relaxed);
        self.status.set_error(e);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Drains when there is a spool and its retry time has come.
    fn drain_if_due(&mut self) {
        if !self.files.is_empty() && self.retry_at.is_none_or(|t| Instant::now() >= t) {
            let _ = self.drain();
        }
    }

    /// Writes through when nothing is spooled (and the store answers), else spools.
    fn write(
        &mut self,
        rec: RecordRef<'_>,
        rows: u64,
        f: impl FnOnce(&mut S) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.drain_if_due();
        if self.files.is_empty() {
            match f(&mut self.inner) {
                Ok(()) => {
                    self.up();
                    return Ok(());
                }
                Err(e) if e.is_unavailable() => self.down(&e),
                Err(e) => {
                    self.status.set_error(&e);
                    return Err(e);
                }
            }
        }
        self.append(&rec, rows)
    }

    /// Appends one batch to the spool (fsync'd), deleting the oldest batches beyond the
    /// byte limit.
    fn append(&mut self, rec: &RecordRef<'_>, rows: u64) -> Result<(), StoreError> {
        let data = serde_json::to_vec(rec).map_err(|e| StoreError::Spool {
            path: self.dir.clone(),
            op: "serialise a batch",
            source: std::io::Error::other(e),
        })?;
        let bytes = data.len() as u64;
        let mut total = self.status.spooled_bytes();
        while total.saturating_add(bytes) > self.max_bytes && !self.files.is_empty() {
            if let Some(f) = self.files.front() {
                let _ = fs::remove_file(&f.path);
                self.status
                    .dropped_rows
                    .fetch_add(f.rows, Ordering::Relaxed);
            }
            self.pop_front();
            total = self.status.spooled_bytes();
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        let path = self.dir.join(format!("{seq:020}-{rows}.json"));
        let tmp = path.with_extension("tmp");
        let io = |op: &'static str, p: &Path| {
            let path = p.to_path_buf();
            move |source| StoreError::Spool { path, op, source }
        };
        let mut file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(&data).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.files.push_back(SpoolFile { path, bytes, rows });
        self.status.spooled_rows.fetch_add(rows, Ordering::Relaxed);
        self.status
            .spooled_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}

impl<S: Store> Store for SpoolingStore<S> {
    /// The run id comes from the clock ([`clock_run_id`]), so a run begins (spooled) while
    /// the store is unreachable.
    fn begin_run(&mut self, run: &RunInfo) -> Result<u64, StoreError> {
        let run_id = clock_run_id(run);
        self.begin_run_as(run_id, run)?;
        Ok(run_id)
    }

    fn begin_run_as(&mut self, run_id: u64, run: &RunInfo) -> Result<(), StoreError> {
        let rec = SpooledRun {
            run_id,
            info: run.clone(),
        };
        self.write(RecordRef::Run(&rec), 0, |s| s.begin_run_as(run_id, run))
    }

    fn write_flows(&mut self, rows: &[FlowRow]) -> Result<(), StoreError> {
        self.write(RecordRef::Flows(rows), rows.len() as u64, |s| {
            s.write_flows(rows)
        })
    }

    fn write_series(&mut self, rows: &[SeriesRow]) -> Result<(), StoreError> {
        self.write(RecordRef::Series(rows), rows.len() as u64, |s| {
            s.write_series(rows)
        })
    }

    fn write_alerts(&mut self, rows: &[AlertRow]) -> Result<(), StoreError> {
        self.write(RecordRef::Alerts(rows), rows.len() as u64, |s| {
            s.write_alerts(rows)
        })
    }

    /// Drains if due; spooled rows are durable already, so an outage is no error here.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.drain_if_due();
        if !self.files.is_empty() {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.is_unavailable() => {
                self.down(&e);
                Ok(())
            }
            r => r,
        }
    }

    fn idle(&mut self) {
        self.drain_if_due();
    }

    fn query_flows(&mut self, q: &FlowQuery) -> Result<Page<FlowRow>, StoreError> {
        self.inner.query_flows(q)
    }

    fn query_alerts(&mut self, q: &AlertQuery) -> Result<Page<AlertRow>, StoreError> {
        self.inner.query_alerts(q)
    }

    fn query_series(&mut self, q: &SeriesQuery) -> Result<Page<SeriesRow>, StoreError> {
        self.inner.query_series(q)
    }

    fn retention(
        &mut self,
        policy: &Retention,
        now: Timestamp,
    ) -> Result<RetentionStats, StoreError> {
        self.inner.retention(policy, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that is up or down at the test's command and remembers what it got.
    #[derive(Default)]
    struct Fake {
        down: Arc<AtomicBool>,
        runs: Vec<u64>,
        flows: Vec<FlowRow>,
        refuse_id: Option<u64>,
    }

    impl Fake {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::Unavailable {
                    op: "test",
                    reason: "down".into(),
                });
            }
            Ok(())
        }
    }

    impl Store for Fake {
        fn begin_run(&mut self, _: &RunInfo) -> Result<u64, StoreError> {
            Err(StoreError::Unsupported("begin_run"))
        }
        fn begin_run_as(&mut self, run_id: u64, _: &RunInfo) -> Result<(), StoreError> {
            self.check()?;
            self.runs.push(run_id);
            Ok(())
        }
        fn write_flows(&mut self, rows: &[FlowRow]) -> Result<(), StoreError> {
            self.check()?;
            if rows.iter().any(|r| Some(r.id) == self.refuse_id) {
                return Err(StoreError::Unsupported("refused"));
            }
            self.flows.extend_from_slice(rows);
            Ok(())
        }
        fn write_series(&mut self, _: &[SeriesRow]) -> Result<(), StoreError> {
            self.check()
        }
        fn write_alerts(&mut self, _: &[AlertRow]) -> Result<(), StoreError> {
            self.check()
        }
        fn flush(&mut self) -> Result<(), StoreError> {
            self.check()
        }
        fn query_flows(&mut self, _: &FlowQuery) -> Result<Page<FlowRow>, StoreError> {
            Err(StoreError::Unsupported("q"))
        }
        fn query_alerts(&mut self, _: &AlertQuery) -> Result<Page<AlertRow>, StoreError> {
            Err(StoreError::Unsupported("q"))
        }
        fn query_series(&mut self, _: &SeriesQuery) -> Result<Page<SeriesRow>, StoreError> {
            Err(StoreError::Unsupported("q"))
        }
        fn retention(&mut self, _: &Retention, _: Timestamp) -> Result<RetentionStats, StoreError> {
            Ok(RetentionStats::default())
        }
    }

    fn flows(ids: core::ops::Range<u64>) -> Vec<FlowRow> {
        ids.map(|id| FlowRow {
            run_id: 7,
            id,
            app: Some(format!("app{id}")),
            first_seen: Timestamp(id as i64),
            ..FlowRow::default()
        })
        .collect()
    }

    fn cfg(dir: &Path, max_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_path_buf(),
            max_bytes,
        }
    }

    #[test]
    fn an_outage_spools_in_order_and_the_spool_drains_then_clears() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::default();
        let down = Arc::clone(&fake.down);
        let mut s = SpoolingStore::open(fake, &cfg(dir.path(), 1 << 20)).unwrap();
        let st = s.status();
        s.write_flows(&flows(0..3)).unwrap();
        assert!(st.connected());
        down.store(true, Ordering::Relaxed);
        s.write_flows(&flows(3..5)).unwrap();
        s.write_flows(&flows(5..6)).unwrap();
        assert!(!st.connected());
        assert_eq!(st.spooled_rows(), 3);
        assert_eq!(s.spooled_batches(), 2);
        assert!(st.last_error().unwrap().contains("down"));
        // Still down: the drain fails, nothing lost.
        assert!(s.drain().is_err());
        assert_eq!(st.spooled_rows(), 3);
        down.store(false, Ordering::Relaxed);
        s.drain().unwrap();
        assert_eq!(st.spooled_rows(), 0);
        assert_eq!(st.drained_rows(), 3);
        assert!(st.connected());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let ids: Vec<u64> = s.inner().flows.iter().map(|r| r.id).collect();
        assert_eq!(ids, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn while_spooled_new_batches_queue_behind_the_spool_until_the_retry_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::default();
        let down = Arc::clone(&fake.down);
        down.store(true, Ordering::Relaxed);
        let mut s = SpoolingStore::open(fake, &cfg(dir.path(), 1 << 20)).unwrap();
        s.write_flows(&flows(0..2)).unwrap();
        down.store(false, Ordering::Relaxed);
        // The retry is a second away: this batch goes behind the first, not before it.
        s.write_flows(&flows(2..4)).unwrap();
        assert!(s.inner().flows.is_empty());
        assert_eq!(s.spooled_batches(), 2);
        std::thread::sleep(MIN_BACKOFF);
        s.idle();
        let ids: Vec<u64> = s.inner().flows.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_restart_finds_the_spool_and_drains_it_with_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::default();
        fake.down.store(true, Ordering::Relaxed);
        let mut s = SpoolingStore::open(fake, &cfg(dir.path(), 1 << 20)).unwrap();
        let run = RunInfo {
            host: "h".into(),
            started: Timestamp(42),
            ..RunInfo::default()
        };
        assert_eq!(s.begin_run(&run).unwrap(), 42);
        s.write_flows(&flows(0..5)).unwrap();
        drop(s);
        // A stray temporary file of an interrupted write is ignored and removed.
        fs::write(dir.path().join("00000000000000000009-1.tmp"), b"{").unwrap();
        let mut s = SpoolingStore::open(Fake::default(), &cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!(s.status().spooled_rows(), 5);
        s.flush().unwrap();
        assert_eq!(s.inner().runs, vec![42]);
        assert_eq!(s.inner().flows, flows(0..5));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_byte_limit_drops_the_oldest_batches_counted() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::default();
        fake.down.store(true, Ordering::Relaxed);
        let one = serde_json::to_vec(&RecordRef::Flows(&flows(0..10)))
            .unwrap()
            .len() as u64;
        let mut s = SpoolingStore::open(fake, &cfg(dir.path(), one * 2 + one / 2)).unwrap();
        for i in 0..5 {
            s.write_flows(&flows(i * 10..i * 10 + 10)).unwrap();
        }
        let st = s.status();
        assert_eq!(s.spooled_batches(), 2);
        assert_eq!(st.spooled_rows(), 20);
        assert_eq!(st.dropped_rows(), 30);
        assert!(st.spooled_bytes() <= one * 2 + one / 2);
    }

    #[test]
    fn a_refused_or_unreadable_batch_is_set_aside_and_the_rest_drains() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake {
            refuse_id: Some(3),
            ..Fake::default()
        };
        fake.down.store(true, Ordering::Relaxed);
        let down = Arc::clone(&fake.down);
        let mut s = SpoolingStore::open(fake, &cfg(dir.path(), 1 << 20)).unwrap();
        s.write_flows(&flows(0..2)).unwrap();
        s.write_flows(&flows(2..4)).unwrap();
        s.write_flows(&flows(4..6)).unwrap();
        // Damage the first file.
        let first = s.files.front().unwrap().path.clone();
        fs::write(&first, b"{\"kind\":").unwrap();
        down.store(false, Ordering::Relaxed);
        s.drain().unwrap();
        let ids: Vec<u64> = s.inner().flows.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![4, 5]);
        assert_eq!(s.status().dropped_rows(), 4);
        let bad = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(bad, 2, "two .bad files kept for inspection");
    }

    #[test]
    fn a_write_refused_for_another_reason_is_an_error_not_spooled() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake {
            refuse_id: Some(1),
            ..Fake::default()
        };
        let mut s = SpoolingStore::open(fake, &cfg(dir.path(), 1 << 20)).unwrap();
        assert!(s.write_flows(&flows(0..2)).is_err());
        assert_eq!(s.spooled_batches(), 0);
    }

    #[test]
    fn rows_round_trip_through_the_spool_format() {
        let mut f = flows(0..1).remove(0);
        f.src_ip = "2001:db8::1".parse().unwrap();
        f.vlan = vec![10, 20];
        f.tcp_c2s = Some(crate::TcpFlags {
            syn: 1,
            ..Default::default()
        });
        f.last_seen = Timestamp(-5);
        let rows = vec![f];
        let text = serde_json::to_vec(&RecordRef::Flows(&rows)).unwrap();
        match serde_json::from_slice::<Record>(&text).unwrap() {
            Record::Flows(back) => assert_eq!(back, rows),
            _ => panic!("wrong kind"),
        }
    }
}
