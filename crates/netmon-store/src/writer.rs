//! [`StoreWriter`]: a [`Store`] on its own thread, fed batches through a bounded queue, so
//! that the packet path never waits for the disk.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use netmon_types::Timestamp;

use crate::Store;
use crate::checkpoint::CheckpointStats;
use crate::error::StoreError;
use crate::query::{Retention, RetentionStats};
use crate::rows::{AlertRow, FlowRow, SeriesRow};

/// Rows for one table, written in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    /// Flow records.
    Flows(Vec<FlowRow>),
    /// Series points.
    Series(Vec<SeriesRow>),
    /// Alerts.
    Alerts(Vec<AlertRow>),
}

impl Batch {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        match self {
            Batch::Flows(v) => v.len(),
            Batch::Series(v) => v.len(),
            Batch::Alerts(v) => v.len(),
        }
    }

    /// Whether the batch holds no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch that was not queued, handed back to the sender.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The queue is full (only from [`StoreWriter::try_send`]): the writer is behind. The
    /// caller decides: count the rows as dropped, or keep them and retry.
    #[error("the store queue is full ({} rows not queued)", .0.len())]
    Full(Batch),
    /// The writer thread has stopped (it panicked): nothing will be written.
    #[error("the store writer has stopped ({} rows not queued)", .0.len())]
    Stopped(Batch),
}

impl SendError {
    /// The batch that was not queued.
    pub fn into_batch(self) -> Batch {
        match self {
            SendError::Full(b) | SendError::Stopped(b) => b,
        }
    }
}

/// How a [`StoreWriter`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Batches the queue holds before [`StoreWriter::try_send`] reports it full. Default 64.
    pub queue_batches: usize,
    /// When batches of one table wait in the queue behind the one being written, they join
    /// its transaction up to this many rows. Default 16 384: a transaction's cost is mostly
    /// per index page it touches, so under load bigger transactions write more rows per
    /// second (with 1 024-row batches, about 40 % more), while a quiet queue still commits
    /// each batch as it comes. 0 or 1: one transaction per batch.
    pub coalesce_rows: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_batches: 64,
            coalesce_rows: 16_384,
        }
    }
}

/// The writer's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Flow rows in committed batches (a row already stored counts too: the store keeps one).
    pub flow_rows: u64,
    /// Series rows in committed batches.
    pub series_rows: u64,
    /// Alert rows in committed batches.
    pub alert_rows: u64,
    /// Batches committed.
    pub batches: u64,
    /// Transactions committed (batches waiting together share one).
    pub commits: u64,
    /// Batches that failed (their rows are not stored) and failed flushes.
    pub errors: u64,
    /// Rows of the batches that failed.
    pub rows_failed: u64,
    /// The latest error, as text.
    pub last_error: Option<String>,
    /// Messages (batches, flush and retention requests) waiting in the queue now.
    pub queue_depth: usize,
    /// The queue's capacity.
    pub queue_capacity: usize,
    /// The store's checkpoints ([`Store::checkpoint_stats`]) as of the last batch.
    pub checkpoints: Option<CheckpointStats>,
}

#[derive(Debug, Default)]
struct Counters {
    flow_rows: AtomicU64,
    series_rows: AtomicU64,
    alert_rows: AtomicU64,
    batches: AtomicU64,
    commits: AtomicU64,
    errors: AtomicU64,
    rows_failed: AtomicU64,
    last_error: Mutex<Option<String>>,
    checkpoints: Mutex<Option<CheckpointStats>>,
}

impl Counters {
    fn snapshot(&self) -> WriterStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WriterStats {
            flow_rows: get(&self.flow_rows),
            series_rows: get(&self.series_rows),
            alert_rows: get(&self.alert_rows),
            batches: get(&self.batches),
            commits: get(&self.commits),
            errors: get(&self.errors),
            rows_failed: get(&self.rows_failed),
            last_error: match self.last_error.lock() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            },
            queue_depth: 0,
            queue_capacity: 0,
            checkpoints: match self.checkpoints.lock() {
                Ok(g) => *g,
                Err(p) => *p.into_inner(),
            },
        }
    }

    fn set_checkpoints(&self, cs: Option<CheckpointStats>) {
        match self.checkpoints.lock() {
            Ok(mut g) => *g = cs,
            Err(p) => *p.into_inner() = cs,
        }
    }

    /// Counts a write of `rows` rows from `batches` batches into `counter`, or its failure.
    fn done(
        &self,
        res: Result<(), StoreError>,
        (rows, batches): (u64, u64),
        counter: &AtomicU64,
        pending: &mut Option<StoreError>,
    ) {
        match res {
            Ok(()) => {
                counter.fetch_add(rows, Ordering::Relaxed);
                self.batches.fetch_add(batches, Ordering::Relaxed);
                self.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed(&e);
                self.rows_failed.fetch_add(rows, Ordering::Relaxed);
                pending.get_or_insert(e);
            }
        }
    }

    fn failed(&self, e: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text = Some(e.to_string());
        match self.last_error.lock() {
            Ok(mut g) => *g = text,
            Err(p) => *p.into_inner() = text,
        }
    }
}

type Reply<T> = Sender<Result<T, StoreError>>;

enum Msg {
    Batch(Batch),
    Flush(Reply<()>),
    Retention(Retention, Timestamp, Reply<RetentionStats>),
}

/// Owns a [`Store`] on a thread of its own (`netmon-store`) and writes the batches queued to
/// it in the order they were queued, each in one transaction — or, when several batches of one
/// table wait in the queue, together in one ([`WriterConfig::coalesce_rows`]).
///
/// * [`try_send`](Self::try_send) never blocks: when the bounded queue is full it hands the
///   batch back ([`SendError::Full`]) and the caller counts the drop — the live pipeline's way.
/// * [`send`](Self::send) waits for room: replay mode, where nothing may be lost.
/// * [`flush`](Self::flush) waits until everything queued before it is committed, and reports
///   a batch that failed since the previous flush.
/// * [`close`](Self::close) (or dropping the writer) commits everything queued, then stops the
///   thread.
///
/// A batch that fails (disk full, ...) is counted and reported; the writer goes on with the
/// next, so a broken disk never blocks the pipeline. `StoreWriter` is `Sync`: share it behind
/// an `Arc` between producer threads.
#[derive(Debug)]
pub struct StoreWriter {
    tx: Option<Sender<Msg>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
    capacity: usize,
    /// Emptied flow-row buffers handed back by the writer thread.
    spare: Receiver<Vec<FlowRow>>,
}

/// Emptied flow-row buffers the writer thread hands back at most (see
/// [`StoreWriter::spare_flow_rows`]).
const SPARE_BUFFERS: usize = 2;

/// Largest buffer handed back, in rows (about 1.5 MB of [`FlowRow`]s): a larger one is freed.
const SPARE_MAX_ROWS: usize = 2048;

impl core::fmt::Debug for Msg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Msg::Batch(b) => write!(f, "Batch({} rows)", b.len()),
            Msg::Flush(_) => f.write_str("Flush"),
            Msg::Retention(..) => f.write_str("Retention"),
        }
    }
}

impl StoreWriter {
    /// Starts the writer thread over `store`.
    pub fn spawn(store: Box<dyn Store>, config: &WriterConfig) -> Result<StoreWriter, StoreError> {
        let capacity = config.queue_batches.max(1);
        let coalesce = config.coalesce_rows;
        let (tx, rx) = bounded(capacity);
        let (spare_tx, spare) = bounded(SPARE_BUFFERS);
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("netmon-store".into())
            .spawn(move || run(store, rx, &spare_tx, &c, coalesce))
            .map_err(StoreError::Spawn)?;
        Ok(StoreWriter {
            tx: Some(tx),
            counters,
            thread: Some(thread),
            capacity,
            spare,
        })
    }

    /// An empty buffer for the next batch of flow rows: one the writer thread emptied after
    /// writing it (its capacity kept), or a new one when none is waiting. Filling these
    /// instead of new vectors keeps the batches' memory with the producing thread: a batch
    /// of 1 024 rows is about 770 KB, and the allocator returned each freed one to the
    /// kernel, which faulted it in again for the next.
    pub fn spare_flow_rows(&self) -> Vec<FlowRow> {
        self.spare.try_recv().unwrap_or_default()
    }

    fn sender(&self) -> Result<&Sender<Msg>, StoreError> {
        self.tx.as_ref().ok_or(StoreError::WriterStopped)
    }

    /// Queues a batch without waiting: [`SendError::Full`] when the queue is full.
    pub fn try_send(&self, batch: Batch) -> Result<(), SendError> {
        let Some(tx) = &self.tx else {
            return Err(SendError::Stopped(batch));
        };
        tx.try_send(Msg::Batch(batch)).map_err(|e| match e {
            TrySendError::Full(Msg::Batch(b)) => SendError::Full(b),
            TrySendError::Disconnected(Msg::Batch(b)) => SendError::Stopped(b),
            // Only batches are sent here.
            TrySendError::Full(_) | TrySendError::Disconnected(_) => {
                SendError::Stopped(Batch::Flows(Vec::new()))
            }
        })
    }

    /// Queues a batch, waiting for room in the queue.
    pub fn send(&self, batch: Batch) -> Result<(), SendError> {
        let Some(tx) = &self.tx else {
            return Err(SendError::Stopped(batch));
        };
        tx.send(Msg::Batch(batch)).map_err(|e| match e.0 {
            Msg::Batch(b) => SendError::Stopped(b),
            _ => SendError::Stopped(Batch::Flows(Vec::new())),
        })
    }

    /// Waits until every batch queued before this call is committed and the store is flushed
    /// ([`Store::flush`]). `Err` with the first failure since the previous flush when a batch
    /// could not be written (its rows are lost) or the flush failed.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = bounded(1);
        self.sender()?
            .send(Msg::Flush(reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.recv().map_err(|_| StoreError::WriterStopped)?
    }

    /// Runs [`Store::retention`] on the writer thread, after everything queued before it, and
    /// waits for the result.
    pub fn retention(
        &self,
        policy: &Retention,
        now: Timestamp,
    ) -> Result<RetentionStats, StoreError> {
        let (reply, answer) = bounded(1);
        self.sender()?
            .send(Msg::Retention(*policy, now, reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.recv().map_err(|_| StoreError::WriterStopped)?
    }

    /// The counters now.
    pub fn stats(&self) -> WriterStats {
        let mut s = self.counters.snapshot();
        s.queue_depth = self.tx.as_ref().map_or(0, Sender::len);
        s.queue_capacity = self.capacity;
        s
    }

    /// Commits everything queued, flushes the store, stops the thread and returns the final
    /// counters. `Err` with the first failure since the last [`flush`](Self::flush) (batches
    /// whose rows are lost, or the final flush).
    pub fn close(mut self) -> Result<WriterStats, StoreError> {
        self.stop()?;
        let mut s = self.counters.snapshot();
        s.queue_capacity = self.capacity;
        Ok(s)
    }

    fn stop(&mut self) -> Result<(), StoreError> {
        // The last sender goes: the thread drains the queue, then ends.
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| StoreError::WriterStopped)?,
            None => Ok(()),
        }
    }
}

/// Dropping the writer commits everything queued, like [`StoreWriter::close`], and discards
/// the result.
impl Drop for StoreWriter {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Appends `next` to `b` when both are for the same table; flow batches are not joined here
/// but written as a group ([`Store::write_flow_batches`]).
fn merge(b: &mut Batch, next: Batch) -> Result<(), Batch> {
    match (b, next) {
        (Batch::Series(a), Batch::Series(mut n)) => a.append(&mut n),
        (Batch::Alerts(a), Batch::Alerts(mut n)) => a.append(&mut n),
        (_, n) => return Err(n),
    }
    Ok(())
}

/// Takes from the queue the batches of `first`'s table that wait behind it, while fewer than
/// `coalesce` rows are gathered: flow batches into `group`, others appended to `first`.
/// Another message is left in `carry`. Returns the rows and the batches gathered.
fn gather(
    rx: &Receiver<Msg>,
    first: &mut Batch,
    group: &mut Vec<Vec<FlowRow>>,
    coalesce: usize,
    carry: &mut Option<Msg>,
) -> (u64, u64) {
    let (mut rows, mut batches) = (first.len(), 1u64);
    while rows < coalesce {
        let next = match rx.try_recv() {
            Ok(Msg::Batch(next)) => next,
            Ok(other) => {
                *carry = Some(other);
                break;
            }
            Err(_) => break,
        };
        let n = next.len();
        let joined = match (&*first, next) {
            (Batch::Flows(_), Batch::Flows(v)) => {
                group.push(v);
                Ok(())
            }
            (_, next) => merge(first, next),
        };
        if let Err(other) = joined {
            *carry = Some(Msg::Batch(other));
            break;
        }
        rows += n;
        batches += 1;
    }
    (rows as u64, batches)
}

/// How long an empty queue waits before [`Store::idle`] is called.
const IDLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Hands an emptied flow-row buffer back to the producer (see [`StoreWriter::spare_flow_rows`]);
/// a large one, or one nobody is waiting for, is freed.
fn recycle(spare: &Sender<Vec<FlowRow>>, mut v: Vec<FlowRow>) {
    if v.capacity() <= SPARE_MAX_ROWS {
        v.clear();
        let _ = spare.try_send(v);
    }
}

fn run(
    mut store: Box<dyn Store>,
    rx: Receiver<Msg>,
    spare: &Sender<Vec<FlowRow>>,
    c: &Counters,
    coalesce: usize,
) -> Result<(), StoreError> {
    // The first failure not yet reported by a flush.
    let mut pending: Option<StoreError> = None;
    // A message taken from the queue while coalescing, to handle next.
    let mut carry: Option<Msg> = None;
    // Flow batches written together, without copying them into one.
    let mut group: Vec<Vec<FlowRow>> = Vec::new();
    loop {
        let msg = match carry.take() {
            Some(m) => m,
            None => match rx.recv_timeout(IDLE_EVERY) {
                Ok(m) => m,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    store.idle();
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            },
        };
        match msg {
            Msg::Batch(mut b) => {
                let (n, batches) = gather(&rx, &mut b, &mut group, coalesce, &mut carry);
                let (res, counter) = match b {
                    Batch::Flows(v) => {
                        group.insert(0, v);
                        let res = store.write_flow_batches(&mut group);
                        for v in group.drain(..) {
                            recycle(spare, v);
                        }
                        (res, &c.flow_rows)
                    }
                    Batch::Series(v) => (store.write_series(&v), &c.series_rows),
                    Batch::Alerts(v) => (store.write_alerts(&v), &c.alert_rows),
                };
                c.set_checkpoints(store.checkpoint_stats());
                c.done(res, (n, batches), counter, &mut pending);
            }
            Msg::Flush(reply) => {
                let res = match pending.take() {
                    Some(e) => Err(e),
                    None => store.flush().inspect_err(|e| c.failed(e)),
                };
                // The caller may have given up waiting: nothing to do then.
                let _ = reply.send(res);
            }
            Msg::Retention(policy, now, reply) => {
                let res = store.retention(&policy, now).inspect_err(|e| c.failed(e));
                let _ = reply.send(res);
            }
        }
    }
    if let Some(e) = pending {
        return Err(e);
    }
    store.flush().inspect_err(|e| c.failed(e))
}
