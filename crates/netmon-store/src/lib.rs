//! The netmon daemon's history: flow records with every classification field, the per-window
//! stats series and alerts, in an embedded SQLite file ([`SqliteStore`]) behind the [`Store`]
//! trait (so that other sinks, such as PostgreSQL, can plug in beside it), written off the
//! packet path by a [`StoreWriter`] thread.
//!
//! The rows ([`FlowRow`], [`SeriesRow`], [`AlertRow`]) are plain data: this crate knows
//! nothing of the engine, which converts its records into them.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use netmon_store::{
//!     Batch, DomainFilter, FlowQuery, FlowRow, RunInfo, SqliteStore, Store, StoreWriter,
//!     WriterConfig,
//! };
//! use netmon_types::Timestamp;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("netmon.db");
//!
//! // Register the run (flow ids restart with each run), then hand the store to its thread.
//! let mut store = SqliteStore::open(&path)?;
//! let run_id = store.begin_run(&RunInfo { host: "sensor1".into(), ..RunInfo::default() })?;
//! let writer = StoreWriter::spawn(Box::new(store), &WriterConfig::default())?;
//!
//! let flow = FlowRow {
//!     run_id,
//!     id: 1,
//!     proto: 6,
//!     src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
//!     src_port: Some(51000),
//!     dst_ip: IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)),
//!     dst_port: Some(443),
//!     first_seen: Timestamp::from_secs_nanos(1_700_000_000, 0),
//!     last_seen: Timestamp::from_secs_nanos(1_700_000_001, 0),
//!     app: Some("tls".into()),
//!     sni: Some("www.example.com".into()),
//!     ..FlowRow::default()
//! };
//! // The packet path never waits: a full queue hands the batch back to count as dropped.
//! if let Err(full) = writer.try_send(Batch::Flows(vec![flow.clone()])) {
//!     eprintln!("dropped: {full}");
//! }
//! writer.flush()?; // everything queued so far is committed
//!
//! // Readers open their own connection (WAL: they never block the writer).
//! let mut reader = SqliteStore::open_read_only(&path)?;
//! let page = reader.query_flows(&FlowQuery {
//!     domain: Some(DomainFilter::Suffix("example.com".into())),
//!     ..FlowQuery::default()
//! })?;
//! assert_eq!(page.rows, vec![flow]);
//!
//! let stats = writer.close()?;
//! assert_eq!(stats.flow_rows, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Identity of rows
//!
//! A flow is `(run_id, id)`: [`Store::begin_run`] hands out a fresh `run_id` per producer run
//! and the engine numbers flows within it. Writing a flow whose key is stored keeps one row:
//! the newer record (greater `last_seen`, then more packets, then ended over live) replaces
//! the older, and anything else — such as a retried batch — changes nothing. Alerts are
//! `(run_id, id)` too (a closed alert replaces the raised one), series points
//! `(run_id, window_secs, iface, layer, proto, start)` (more covered seconds win).
//!
//! # The SQLite file
//!
//! WAL mode with `synchronous=NORMAL`, a busy timeout, incremental auto-vacuum; the schema
//! version is `PRAGMA user_version` and migrations run on open (see `docs/store.md`). A file
//! of another program, or of a newer netmon, is refused without being touched.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod checkpoint;
mod error;
mod keys;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod rows;
mod schema;
mod spool;
mod sqlite;
mod writer;

pub use checkpoint::{CheckpointStats, WRITER_FACTOR};
pub use error::{Hint, StoreError};
#[cfg(feature = "postgres")]
pub use postgres::{PG_SCHEMA_VERSION, PgConfig, PgStore};
pub use query::{
    AlertQuery, Cursor, DEFAULT_PAGE, DomainFilter, FlowQuery, FlowSort, MAX_PAGE, Order, Page,
    Retention, RetentionStats, SeriesQuery,
};
pub use rows::{AlertRow, DnsRow, FlowRow, HttpRow, KeyRow, RunInfo, SeriesRow, TcpFlags};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use spool::{SpoolConfig, SpoolStatus, SpoolingStore, clock_run_id};
pub use sqlite::{MAX_STORED, SqliteConfig, SqliteStore};
pub use writer::{Batch, SendError, StoreWriter, WriterConfig, WriterStats};

use netmon_types::Timestamp;

/// A history sink: where flows, series points and alerts go, and where the API reads them
/// back. Object-safe and `Send`, so a [`StoreWriter`] can own any implementation on its
/// thread ([`SqliteStore`] here; a PostgreSQL sink later).
///
/// Every `write_*` call is atomic: all its rows are stored, or none (one transaction).
pub trait Store: Send {
    /// Registers a producer run and returns its id, unique in this store: the first half of
    /// every row's key.
    fn begin_run(&mut self, run: &RunInfo) -> Result<u64, StoreError>;

    /// Registers a run under an id the caller chose (a [`SpoolingStore`] picks it while the
    /// store is unreachable: [`clock_run_id`]). A repeat changes nothing. Stores that hand out
    /// their own ids refuse ([`StoreError::Unsupported`]), the default.
    fn begin_run_as(&mut self, run_id: u64, run: &RunInfo) -> Result<(), StoreError> {
        let _ = (run_id, run);
        Err(StoreError::Unsupported(
            "registering a run under a given id",
        ))
    }

    /// Stores flow records. A row whose `(run_id, id)` is stored replaces it only when it is
    /// newer (greater `last_seen`, then more packets, then ended over live); a repeated
    /// batch changes nothing.
    fn write_flows(&mut self, rows: &[FlowRow]) -> Result<(), StoreError>;

    /// Stores series points (a point already stored is replaced only by one covering more
    /// seconds).
    fn write_series(&mut self, rows: &[SeriesRow]) -> Result<(), StoreError>;

    /// Stores alerts (a closed alert replaces the raised one; a repeat changes nothing).
    fn write_alerts(&mut self, rows: &[AlertRow]) -> Result<(), StoreError>;

    /// Stores several batches of flows as one [`Store::write_flows`] would store them
    /// together: the [`StoreWriter`] joins the flow batches waiting in its queue this way.
    /// Default: moves the rows of the others into the first batch, then one `write_flows`
    /// (the batches stay, emptied, for reuse). [`SqliteStore`] writes them in one transaction
    /// without moving them.
    fn write_flow_batches(&mut self, batches: &mut [Vec<FlowRow>]) -> Result<(), StoreError> {
        let Some((first, rest)) = batches.split_first_mut() else {
            return Ok(());
        };
        for b in rest {
            first.append(b);
        }
        self.write_flows(first)
    }

    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<(), StoreError>;

    /// Called by the [`StoreWriter`] when its queue has been empty for a second: time for
    /// background work (a [`SpoolingStore`] retries its spool). Default: nothing.
    fn idle(&mut self) {}

    /// How the write-ahead log's checkpoints went, for a store that has one
    /// ([`SqliteStore::checkpoint_stats`]). Default: `None`.
    fn checkpoint_stats(&self) -> Option<CheckpointStats> {
        None
    }

    /// Flows matching `query`, one page.
    fn query_flows(&mut self, query: &FlowQuery) -> Result<Page<FlowRow>, StoreError>;

    /// Alerts matching `query`, one page.
    fn query_alerts(&mut self, query: &AlertQuery) -> Result<Page<AlertRow>, StoreError>;

    /// Series points matching `query`, one page.
    fn query_series(&mut self, query: &SeriesQuery) -> Result<Page<SeriesRow>, StoreError>;

    /// Deletes what `policy` says is too old or too much, ages counted back from `now` (the
    /// caller's clock: the wall clock when live, the packets' clock in replay). Returns the
    /// rows deleted.
    fn retention(
        &mut self,
        policy: &Retention,
        now: Timestamp,
    ) -> Result<RetentionStats, StoreError>;
}
