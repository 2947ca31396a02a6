//! Snapshots of the window metrics, published for readers on other threads, and the per-window
//! time series for offline reports.

use std::sync::{Arc, Mutex, TryLockError};

use netmon_types::Timestamp;
use serde::{Serialize, Serializer};

use crate::detect::DetectorDrops;
use crate::window::WindowValues;

pub(crate) fn ser_ts<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ts)
}

/// Every window metric at the end of one second of the packets' clock.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// End of the last closed second (exclusive): the windows end here.
    #[serde(serialize_with = "ser_ts")]
    pub ts: Timestamp,
    /// Window lengths, seconds, ascending.
    pub windows: Vec<u32>,
    /// Per interface, by index.
    pub ifaces: Vec<IfaceSnapshot>,
    /// Totals and drop counters.
    pub counters: Counters,
}

/// One interface's rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IfaceSnapshot {
    /// Interface index (`4294967295` is the row for interfaces beyond the cap).
    pub iface: u32,
    /// Interface name, if known.
    pub name: Option<String>,
    /// One row per protocol key: `all` first, then L3, L4 and application keys.
    pub protos: Vec<ProtoSnapshot>,
}

/// One protocol key's windows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProtoSnapshot {
    /// `all`, `l3`, `l4`, `app` or `overflow`.
    pub layer: &'static str,
    /// Key name: `all`, `ipv4`, `tcp`, `tls`, ...
    pub proto: String,
    /// Active flows now.
    pub active_flows: u64,
    /// Packets since the start.
    pub total_packets: u64,
    /// Wire bytes since the start.
    pub total_bytes: u64,
    /// Flows started since the start.
    pub total_new_flows: u64,
    /// One entry per configured window, in `Snapshot::windows` order.
    pub windows: Vec<WindowValues>,
}

/// Totals and everything that was dropped or cut because a bound was reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Packets observed.
    pub packets: u64,
    /// Their wire bytes.
    pub bytes: u64,
    /// Packets stamped before the current second (counted in the current second).
    pub late_packets: u64,
    /// Flow starts observed.
    pub flows_started: u64,
    /// Flow ends observed.
    pub flows_ended: u64,
    /// Flows not tracked individually because the flow map was full (application keys and
    /// talker updates of those flows wait for their end).
    pub flows_untracked: u64,
    /// Observations counted in an interface's `overflow` key (key cap reached).
    pub key_overflows: u64,
    /// Observations counted in the overflow interface (interface cap reached).
    pub iface_overflows: u64,
    /// Frames whose hierarchy path was cut (node cap reached).
    pub hierarchy_overflow_frames: u64,
    /// Detector state not kept (caps reached).
    pub detector_drops: DetectorDrops,
    /// Alerts raised.
    pub alerts_raised: u64,
    /// Series points dropped because nobody drained them.
    pub series_points_dropped: u64,
    /// Idle gaps longer than the longest window that were skipped rather than stepped through.
    pub clock_jumps: u64,
    /// Snapshots not published because a reader held the cell at that instant (the next
    /// second's snapshot replaces them).
    pub snapshots_skipped: u64,
    /// Flow changes not shown to the scan detectors: the flow's probe outcome was the one
    /// they had seen (its update or end still reaches them).
    pub summaries_repeated: u64,
}

/// A shared cell holding the latest [`Snapshot`]: clone it to any thread, [`load`] at any time.
///
/// The packet path publishes once per second with `try_lock`: if a reader holds the lock at
/// that instant (for the few nanoseconds it takes to clone an `Arc`), the packet path does not
/// wait — it skips that publication (counted in [`Counters::snapshots_skipped`]) and the next
/// second's snapshot replaces it. Readers get an `Arc<Snapshot>`, an immutable and consistent
/// view of one second. A std `Mutex` around an `Arc` does the job without a lock-free crate:
/// the critical sections are a pointer swap and a reference-count increment.
///
/// [`load`]: SnapshotCell::load
#[derive(Clone, Debug, Default)]
pub struct SnapshotCell {
    inner: Arc<Mutex<Arc<Snapshot>>>,
}

impl SnapshotCell {
    /// A cell holding an empty snapshot.
    pub fn new() -> SnapshotCell {
        SnapshotCell::default()
    }

    /// The latest published snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        match self.inner.lock() {
            Ok(g) => Arc::clone(&g),
            // A panicking writer cannot leave a half-written Arc behind: take it as it is.
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Publishes without waiting; false when the lock was busy.
    pub(crate) fn try_store(&self, s: Arc<Snapshot>) -> bool {
        match self.inner.try_lock() {
            Ok(mut g) => {
                *g = s;
                true
            }
            Err(TryLockError::Poisoned(p)) => {
                *p.into_inner() = s;
                true
            }
            Err(TryLockError::WouldBlock) => false,
        }
    }

    /// Whether another handle (a reader) exists.
    pub(crate) fn has_readers(&self) -> bool {
        Arc::strong_count(&self.inner) > 1
    }
}

/// Configuration of the per-window time series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeriesConfig {
    /// Window lengths to emit points for (empty: the aggregator's windows).
    pub windows: Vec<u32>,
    /// Points held until drained; more are dropped and counted. Default 1 048 576.
    pub max_pending: usize,
}

impl Default for SeriesConfig {
    fn default() -> Self {
        SeriesConfig {
            windows: Vec::new(),
            max_pending: 1 << 20,
        }
    }
}

/// One value of the series: a window-length interval, aligned to the first packet's second
/// (like `tshark -z io,stat`), on one interface and protocol key.
///
/// Points are emitted when the interval closes. The last interval of a capture is emitted by
/// [`crate::Stats::finish`] and may be partial (`covered_secs < window_secs`; rates divide by
/// the covered seconds). Idle gaps longer than the longest window produce no points.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Interval start (inclusive).
    #[serde(serialize_with = "ser_ts")]
    pub start: Timestamp,
    /// Interval end (exclusive).
    #[serde(serialize_with = "ser_ts")]
    pub end: Timestamp,
    /// Interface index.
    pub iface: u32,
    /// Interface name, if known.
    pub iface_name: Option<String>,
    /// `all`, `l3`, `l4`, `app`, `overflow`.
    pub layer: &'static str,
    /// Key name.
    pub proto: String,
    /// Window length (`window_secs`), covered seconds, counts, rates, and the active flows at
    /// the interval's end.
    #[serde(flatten)]
    pub values: WindowValues,
}
