//! [`SqliteStore`]: the [`Store`] on an embedded SQLite file.

use core::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use netmon_types::Timestamp;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Row, Statement, ToSql};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Store;
use crate::checkpoint::{CheckpointStats, Checkpointer};
use crate::error::StoreError;
use crate::keys::{self, KeyBuf, Kind, Match};
use crate::query::{
    AlertQuery, Cursor, CursorKind, DEFAULT_PAGE, DomainFilter, FlowQuery, FlowSort, MAX_PAGE,
    Order, Page, Retention, RetentionStats, SeriesQuery, reversed_name, reversed_name_into,
};
use crate::rows::{AlertRow, FlowRow, RunInfo, SeriesRow, TcpFlags};
use crate::schema::{self, CHUNK_SHIFT, SCHEMA_VERSION};

/// Counters are stored as SQLite integers (signed 64-bit) and summed in generated columns;
/// larger values are stored as this (2^62 - 1: 4.6 EB, 4.6 × 10^18 packets), so a sum never
/// overflows.
pub const MAX_STORED: u64 = (i64::MAX / 2) as u64;

/// Rows deleted per statement by retention, so that the write-ahead log stays small and
/// readers are not held up.
const DELETE_CHUNK: i64 = 10_000;

/// Page size of a new database file, bytes.
const PAGE_SIZE: i64 = 16 * 1024;

/// How a [`SqliteStore`] opens its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    /// How long a statement waits for another connection's lock before failing with
    /// "database is locked" (`PRAGMA busy_timeout`). Default 5 s.
    pub busy_timeout: Duration,
    /// Page cache of this connection, KiB (`PRAGMA cache_size`). Default 2 048 (2 MiB): since
    /// schema 3 a flow write touches the end of the table, of the `first_seen` index and of a
    /// few key summaries, so a larger cache buys no speed (netmond over big.pcap, 1 shard,
    /// `/usr/bin/time -f "%e %M" netmond --config target/bench/daemon-1-on.yaml` as
    /// `benches/daemon.sh` writes it, builds alternated: 32, 8 and 4 MiB ran alike; peak RSS
    /// 204 000, 178 000 and 171 000 KiB; with the smaller in-flight queues of netmond, 4 MiB
    /// ran as fast again at 4 000 KiB less RSS; 2 MiB: the writer's CPU alike under `perf
    /// sched record` + `perf sched timehist`, about 2 000 KiB less RSS).
    pub cache_kib: u32,
    /// Most flows a host, port, app or domain filter may match within a query's time range
    /// (each costs memory until the query ends); beyond it the query fails with
    /// [`StoreError::TooBroad`]. Default 1 000 000 (about 40 MB).
    pub max_key_matches: usize,
    /// Open read-only: for readers (the API) beside the writer; the file must already hold
    /// netmon's schema. WAL lets them read while the writer commits.
    pub read_only: bool,
    /// Run the write-ahead log's checkpoints (a copy of the log into the file and two
    /// `fsync`s) on a thread with a connection of its own, so that commits do not wait for
    /// the disk's flush. The writer copies the rest itself only when the log reaches four
    /// times [`SqliteConfig::checkpoint_pages`] (a writer that never pauses leaves the
    /// background thread no moment at which the log could start over). Off: SQLite
    /// checkpoints on the committing connection. Default on; ignored for read-only and
    /// in-memory databases. See [`SqliteStore::checkpoint_stats`].
    pub background_checkpoints: bool,
    /// Pages (frames) of log between checkpoints. Default 2 500 (40 MB of log at 16 KiB
    /// pages) rather than SQLite's 1 000: index pages changed by several transactions in
    /// between are copied once (a third more rows/s with small batches).
    pub checkpoint_pages: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            busy_timeout: Duration::from_secs(5),
            cache_kib: 2 * 1024,
            max_key_matches: 1_000_000,
            read_only: false,
            background_checkpoints: true,
            checkpoint_pages: 2_500,
        }
    }
}

/// The flow, series and alert history in one SQLite file.
///
/// Opening read-write sets WAL mode (`journal_mode=WAL`, `synchronous=NORMAL`: a committed
/// transaction survives the process being killed; after a power cut the last transactions
/// before the most recent checkpoint may be lost, never the file's integrity), incremental
/// auto-vacuum (set when the file is created), the busy timeout and the page cache, then
/// migrates the schema (see the crate documentation). One connection is not shared between
/// threads: the [`crate::StoreWriter`] owns the writing one; readers open their own.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    insert_flow: String,
    update_flow: String,
    scratch: Vec<u8>,
    names: Vec<String>,
    /// The `flow_keys` entries of the rows a transaction wrote.
    keys: KeyBuf,
    /// `(chunk, min first_seen, max first_seen)` of the rows written by a transaction.
    chunks: Vec<(i64, i64, i64)>,
    max_duration_ns: i64,
    /// See [`SqliteConfig::max_key_matches`].
    max_key_matches: usize,
    /// Pages in use right after the last size-retention pass (see [`Store::retention`]).
    used_after_size_pass: Option<u64>,
    /// The background checkpoints of a file opened read-write.
    checkpointer: Option<Checkpointer>,
}

const FLOW_COLS: [&str; 42] = [
    "run_id",
    "id",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "icmp_id",
    "packets_c2s",
    "bytes_c2s",
    "packets_s2c",
    "bytes_s2c",
    "payload_bytes_c2s",
    "payload_bytes_s2c",
    "first_seen_ns",
    "last_seen_ns",
    "duration_ns",
    "state",
    "end_reason",
    "vlan",
    "iface",
    "iface_name",
    "tcp_c2s",
    "tcp_s2c",
    "icmp_errors",
    "quoted",
    "outer_key",
    "app",
    "app_guess",
    "sni",
    "alpn",
    "alpn_server",
    "tls_version",
    "ech",
    "ja4",
    "http",
    "dns",
    "quic_version",
    "ssh_client",
    "ssh_server",
    "stun_software",
    "domain",
];

/// `INSERT OR IGNORE`: a new flow (the common case) is one insert. `OR IGNORE` never aborts
/// half-way, so SQLite needs no statement journal (an upsert would copy every page it touches
/// into one: 10 % of the insert time). The `seq` is the last parameter ([`SEQ_PARAM`]).
fn insert_flow_sql() -> String {
    let cols = FLOW_COLS.join(", ");
    let params = (1..=FLOW_COLS.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT OR IGNORE INTO flows ({cols}, seq) VALUES ({params}, ?{SEQ_PARAM})")
}

/// The parameter of the insert that holds the row's `seq`.
const SEQ_PARAM: usize = FLOW_COLS.len() + 1;

/// The key was stored: replace the row if this one is newer (greater `last_seen`, then more
/// packets, then ended over live). Parameters are numbered as in the insert.
fn update_flow_sql() -> String {
    let sets = FLOW_COLS
        .iter()
        .enumerate()
        .filter(|(_, c)| !matches!(**c, "run_id" | "id"))
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let col = |name: &str| {
        FLOW_COLS
            .iter()
            .position(|c| *c == name)
            .map_or(0, |i| i + 1)
    };
    format!(
        "UPDATE flows SET {sets} WHERE run_id = ?{} AND id = ?{} \
         AND (?{}, ?{} + ?{}, ?{} IS NOT NULL) > (last_seen_ns, packets, end_reason IS NOT NULL) \
         RETURNING seq",
        col("run_id"),
        col("id"),
        col("last_seen_ns"),
        col("packets_c2s"),
        col("packets_s2c"),
        col("end_reason"),
    )
}

/// Widens a chunk's first_seen range to hold the rows just written.
const UPSERT_CHUNK: &str = "INSERT INTO flow_chunks (chunk, min_first_ns, max_first_ns) \
     VALUES (?1, ?2, ?3) ON CONFLICT (chunk) DO UPDATE SET \
     min_first_ns = min(min_first_ns, excluded.min_first_ns), \
     max_first_ns = max(max_first_ns, excluded.max_first_ns)";

/// The next `seq` to hand out: past every stored row and every seq handed out before
/// (`meta.next_seq`; `flow_keys` may still name the seq of a deleted row).
const NEXT_SEQ: &str = "SELECT max(coalesce((SELECT max(seq) FROM flows), 0) + 1, \
     coalesce((SELECT value FROM meta WHERE key = 'next_seq'), 1))";

const INSERT_SERIES: &str = "INSERT INTO series (run_id, start_ns, end_ns, iface, iface_name, \
     layer, proto, window_secs, covered_secs, packets, bytes, new_flows, pps, bps, \
     new_flows_per_s, active_flows) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
     ON CONFLICT (run_id, window_secs, iface, layer, proto, start_ns) DO UPDATE SET \
     end_ns = excluded.end_ns, iface_name = excluded.iface_name, \
     covered_secs = excluded.covered_secs, packets = excluded.packets, bytes = excluded.bytes, \
     new_flows = excluded.new_flows, pps = excluded.pps, bps = excluded.bps, \
     new_flows_per_s = excluded.new_flows_per_s, active_flows = excluded.active_flows \
     WHERE excluded.covered_secs > series.covered_secs";

const SERIES_COLS: &str = "seq, run_id, start_ns, end_ns, iface, iface_name, layer, proto, \
     window_secs, covered_secs, packets, bytes, new_flows, pps, bps, new_flows_per_s, active_flows";

const INSERT_ALERT: &str = "INSERT INTO alerts (run_id, id, ts_ns, kind, severity, source, \
     target, evidence, first_seen_ns, last_seen_ns, closed) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
     ON CONFLICT (run_id, id) DO UPDATE SET ts_ns = excluded.ts_ns, kind = excluded.kind, \
     severity = excluded.severity, source = excluded.source, target = excluded.target, \
     evidence = excluded.evidence, first_seen_ns = excluded.first_seen_ns, \
     last_seen_ns = excluded.last_seen_ns, closed = excluded.closed \
     WHERE (excluded.closed, excluded.last_seen_ns) > (alerts.closed, alerts.last_seen_ns)";

const ALERT_COLS: &str = "seq, run_id, id, ts_ns, kind, severity, source, target, evidence, \
     first_seen_ns, last_seen_ns, closed";

/// A stored integer for an unsigned counter or id.
fn int(v: u64) -> i64 {
    i64::try_from(v.min(MAX_STORED)).unwrap_or(i64::MAX / 2)
}

fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating it if needed) a database file read-write with [`SqliteConfig`]'s
    /// defaults.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, &SqliteConfig::default())
    }

    /// Opens an existing netmon database read-only (for readers beside the writer).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(
            path,
            &SqliteConfig {
                read_only: true,
                ..SqliteConfig::default()
            },
        )
    }

    /// A private in-memory database (tests, examples): same schema, nothing on disk.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn =
            Connection::open_in_memory().map_err(|e| StoreError::sqlite(&path, "open", e))?;
        SqliteStore::setup(conn, path, &SqliteConfig::default())
    }

    /// Opens a database file as `config` says.
    ///
    /// Errors: [`StoreError::NotNetmon`] for a file that is not a SQLite database or belongs
    /// to another program (nothing in it is changed), [`StoreError::TooNew`] for a schema newer
    /// than [`SCHEMA_VERSION`], [`StoreError::NotInitialised`] for a read-only open of a file
    /// without the current schema, [`StoreError::Sqlite`] for the rest (with a hint: missing
    /// directory, permissions, locked, disk full).
    pub fn open_with(
        path: impl AsRef<Path>,
        config: &SqliteConfig,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let flags = if config.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| StoreError::sqlite(&path, "open", e))?;
        let mut store = SqliteStore::setup(conn, path, config)?;
        if !config.read_only && config.background_checkpoints {
            store.checkpointer =
                Checkpointer::start(&store.conn, &store.path, config.checkpoint_pages);
        }
        Ok(store)
    }

    /// How the checkpoints ran so far: background ones, the writer's own, the log's largest
    /// size (all zero for a store without a background thread: read-only, in memory, or
    /// [`SqliteConfig::background_checkpoints`] off).
    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.checkpointer
            .as_ref()
            .map(Checkpointer::stats)
            .unwrap_or_default()
    }

    /// After a write transaction: hands the checkpoint on if the log has grown enough.
    fn after_commit(&mut self) {
        if let Some(c) = &mut self.checkpointer {
            c.after_commit(&self.conn);
        }
    }

    fn setup(
        mut conn: Connection,
        path: PathBuf,
        config: &SqliteConfig,
    ) -> Result<SqliteStore, StoreError> {
        let err = |op| {
            let path = path.clone();
            move |e| StoreError::sqlite(&path, op, e)
        };
        conn.busy_timeout(config.busy_timeout)
            .map_err(err("set busy_timeout"))?;
        let id = schema::identity(&conn, &path)?;
        let fresh = schema::check(id, &path)?;
        if config.read_only {
            if id.version < SCHEMA_VERSION {
                return Err(StoreError::NotInitialised {
                    path,
                    found: id.version,
                });
            }
        } else {
            if fresh {
                // Both only take effect before the first table is created (and the page size
                // before WAL mode). 16 KiB pages: B-trees one level shallower and less
                // per-page work per insert than 4 KiB (about 15 % more rows/s).
                conn.pragma_update(None, "page_size", PAGE_SIZE)
                    .map_err(err("set page_size"))?;
                conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                    .map_err(err("set auto_vacuum"))?;
                // A file that has a header already (an emptied database) takes both only
                // through a VACUUM: instant, there is nothing in it.
                conn.execute_batch("VACUUM")
                    .map_err(err("vacuum the new file"))?;
            }
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .map_err(err("set journal_mode=WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
                return Err(StoreError::NoWal { path, mode });
            }
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(err("set synchronous"))?;
            // See `SqliteConfig::checkpoint_pages`. The log file is cut back to 64 MB after
            // a checkpoint. A file's store hands these checkpoints to a thread of their own
            // (see `checkpoint.rs`); this is the fallback.
            conn.pragma_update(None, "wal_autocheckpoint", config.checkpoint_pages.max(1))
                .map_err(err("set wal_autocheckpoint"))?;
            conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
                .map_err(err("set journal_size_limit"))?;
            schema::migrate(&mut conn, &path)?;
        }
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(err("set temp_store"))?;
        conn.pragma_update(None, "cache_size", -i64::from(config.cache_kib))
            .map_err(err("set cache_size"))?;
        conn.set_prepared_statement_cache_capacity(64);
        // `rarray(?)`: the seqs a key lookup found, as a query parameter.
        rusqlite::vtab::array::load_module(&conn).map_err(err("load rarray"))?;
        let max_duration_ns = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'max_duration_ns'",
                [],
                |r| r.get(0),
            )
            .map_err(err("read meta"))?;
        Ok(SqliteStore {
            conn,
            path,
            insert_flow: insert_flow_sql(),
            update_flow: update_flow_sql(),
            scratch: Vec::new(),
            names: Vec::new(),
            keys: KeyBuf::default(),
            chunks: Vec::new(),
            max_duration_ns,
            max_key_matches: config.max_key_matches.max(1),
            used_after_size_pass: None,
            checkpointer: None,
        })
    }

    /// The database file (`:memory:` for an in-memory database).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PRAGMA user_version`: the schema version of the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err("read the schema version", e))
    }

    /// Copies the write-ahead log into the database file and truncates the log: after it the
    /// file alone holds every committed row (a backup can copy just the file). Not needed for
    /// durability — a committed write survives the process being killed — and readers are not
    /// waited for: pages they still read stay in the log for the next checkpoint.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.err("checkpoint", e))
    }

    /// `PRAGMA integrity_check`: `["ok"]` when the file is intact, else SQLite's findings.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let run = || -> rusqlite::Result<Vec<String>> {
            let mut st = self.conn.prepare("PRAGMA integrity_check")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        };
        run().map_err(|e| self.err("integrity_check", e))
    }

    /// Bytes of the database's pages in use (page count less free pages, times the page size;
    /// the write-ahead log not included): what [`Retention::max_bytes`] bounds.
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        self.used_bytes_raw()
            .map_err(|e| self.err("measure the database", e))
    }

    fn used_bytes_raw(&self) -> rusqlite::Result<u64> {
        let q = |p: &str| -> rusqlite::Result<i64> {
            self.conn
                .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
        };
        let pages = q("page_count")?.saturating_sub(q("freelist_count")?);
        let size = q("page_size")?;
        Ok(u64::try_from(pages.saturating_mul(size)).unwrap_or(0))
    }

    /// Rows per table: `(flows, series, alerts)`.
    pub fn row_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let count = |t: &str| -> rusqlite::Result<u64> {
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let run = || Ok((count("flows")?, count("series")?, count("alerts")?));
        run().map_err(|e| self.err("count rows", e))
    }

    fn err(&self, op: &'static str, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, op, e)
    }

    fn write_flows_tx<'r>(
        &mut self,
        rows: impl Iterator<Item = &'r FlowRow>,
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut max_dur = self.max_duration_ns;
        self.chunks.clear();
        self.keys.clear();
        {
            let first_seq: i64 = tx.prepare_cached(NEXT_SEQ)?.query_row([], |r| r.get(0))?;
            let mut next_seq = first_seq;
            let mut ins = tx.prepare_cached(&self.insert_flow)?;
            for r in rows {
                bind_flow(&mut ins, r, &mut self.scratch)?;
                ins.raw_bind_parameter(SEQ_PARAM, next_seq)?;
                let seq = if ins.raw_execute()? == 1 {
                    let seq = next_seq;
                    next_seq = next_seq.checked_add(1).ok_or_else(|| {
                        rusqlite::Error::ToSqlConversionFailure("flow seq overflow".into())
                    })?;
                    Some(seq)
                } else {
                    let mut upd = tx.prepare_cached(&self.update_flow)?;
                    bind_flow(&mut upd, r, &mut self.scratch)?;
                    let mut q = upd.raw_query();
                    match q.next()? {
                        Some(row) => Some(row.get(0)?),
                        None => None,
                    }
                };
                max_dur = max_dur.max(r.duration_ns);
                let Some(seq) = seq else { continue };
                let (chunk, first) = (seq >> CHUNK_SHIFT, r.first_seen.0);
                match self.chunks.iter_mut().find(|c| c.0 == chunk) {
                    Some(c) => {
                        c.1 = c.1.min(first);
                        c.2 = c.2.max(first);
                    }
                    None => self.chunks.push((chunk, first, first)),
                }
                // The row's distinct names, reversed, in reused buffers.
                let mut used = 0;
                for n in r.names() {
                    if used == self.names.len() {
                        self.names.push(String::new());
                    }
                    let (done, rest) = self.names.split_at_mut(used);
                    let Some(slot) = rest.first_mut() else {
                        continue;
                    };
                    reversed_name_into(n, slot);
                    if !slot.is_empty() && !done.contains(slot) {
                        used += 1;
                    }
                }
                self.keys.add_flow(
                    seq,
                    [Some(r.src_ip), Some(r.dst_ip)],
                    [r.src_port, r.dst_port],
                    r.app.as_deref(),
                    self.names.get(..used).unwrap_or_default(),
                );
            }
            if next_seq != first_seq {
                tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'next_seq'")?
                    .execute([next_seq])?;
            }
            if !self.keys.is_empty() {
                self.keys.write(&tx, first_seq)?;
            }
            let mut up = tx.prepare_cached(UPSERT_CHUNK)?;
            for c in &self.chunks {
                up.execute([c.0, c.1, c.2])?;
            }
            if max_dur > self.max_duration_ns {
                tx.prepare_cached(
                    "UPDATE meta SET value = max(value, ?1) WHERE key = 'max_duration_ns'",
                )?
                .execute([max_dur])?;
            }
        }
        tx.commit()?;
        self.max_duration_ns = max_dur;
        Ok(())
    }

    fn write_series_tx(&mut self, rows: &[SeriesRow]) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(INSERT_SERIES)?;
            for r in rows {
                let mut b = Binder::new(&mut st);
                b.val(sat_i64(r.run_id))?;
                b.val(r.start.0)?;
                b.val(r.end.0)?;
                b.val(r.iface)?;
                b.val(r.iface_name.as_deref())?;
                b.val(r.layer.as_str())?;
                b.val(r.proto.as_str())?;
                b.val(r.window_secs)?;
                b.val(r.covered_secs)?;
                b.val(int(r.packets))?;
                b.val(int(r.bytes))?;
                b.val(int(r.new_flows))?;
                b.val(r.pps)?;
                b.val(r.bps)?;
                b.val(r.new_flows_per_s)?;
                b.val(int(r.active_flows))?;
                st.raw_execute()?;
            }
        }
        tx.commit()
    }

    fn write_alerts_tx(&mut self, rows: &[AlertRow]) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(INSERT_ALERT)?;
            for r in rows {
                let mut b = Binder::new(&mut st);
                b.val(sat_i64(r.run_id))?;
                b.val(sat_i64(r.id))?;
                b.val(r.ts.0)?;
                b.val(r.kind.as_str())?;
                b.val(r.severity.as_str())?;
                b.val(r.source.as_str())?;
                b.val(r.target.as_deref())?;
                b.val(r.evidence.as_str())?;
                b.val(r.first_seen.0)?;
                b.val(r.last_seen.0)?;
                b.val(r.closed)?;
                st.raw_execute()?;
            }
        }
        tx.commit()
    }

    /// Deletes in chunks until fewer than a chunk match; `sql` selects up to `?2` seqs with
    /// `?1` as its bound.
    fn delete_chunked(&self, sql: &str, bound: i64) -> rusqlite::Result<u64> {
        let mut total = 0u64;
        let mut st = self.conn.prepare_cached(sql)?;
        loop {
            let n = st.execute([bound, DELETE_CHUNK])?;
            total += n as u64;
            if i64::try_from(n).unwrap_or(i64::MAX) < DELETE_CHUNK {
                return Ok(total);
            }
        }
    }

    /// Deletes flows that ended before `cut` (and started before it: the first_seen index
    /// finds them), series points that ended and alerts last seen before it; `inclusive`
    /// makes it `<=`.
    fn delete_up_to(
        &self,
        stats: &mut RetentionStats,
        flow_col: &str,
        cut: i64,
        inclusive: bool,
    ) -> rusqlite::Result<()> {
        let op = if inclusive { "<=" } else { "<" };
        stats.flows += self.delete_chunked(
            &format!(
                "DELETE FROM flows WHERE seq IN (SELECT seq FROM flows \
                 WHERE first_seen_ns {op} ?1 AND {flow_col} {op} ?1 LIMIT ?2)"
            ),
            cut,
        )?;
        stats.series += self.delete_chunked(
            &format!(
                "DELETE FROM series WHERE seq IN \
                 (SELECT seq FROM series WHERE end_ns {op} ?1 LIMIT ?2)"
            ),
            cut,
        )?;
        stats.alerts += self.delete_chunked(
            &format!(
                "DELETE FROM alerts WHERE seq IN \
                 (SELECT seq FROM alerts WHERE last_seen_ns {op} ?1 LIMIT ?2)"
            ),
            cut,
        )?;
        Ok(())
    }

    /// The time up to which (inclusive) rows go so that about `keep_share` of the oldest-first
    /// ordered rows of `table` remain.
    fn size_cut(
        &self,
        table: &str,
        col: &str,
        keep_num: u64,
        keep_den: u64,
    ) -> rusqlite::Result<Option<i64>> {
        let n: i64 = self
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        let n = u64::try_from(n).unwrap_or(0);
        if n == 0 {
            return Ok(None);
        }
        let keep =
            u64::try_from(u128::from(n) * u128::from(keep_num) / u128::from(keep_den.max(1)))
                .unwrap_or(n);
        let excess = n.saturating_sub(keep);
        if excess == 0 {
            return Ok(Some(i64::MIN));
        }
        self.conn
            .query_row(
                &format!("SELECT {col} FROM {table} ORDER BY {col} LIMIT 1 OFFSET ?1"),
                [sat_i64(excess - 1)],
                |r| r.get(0),
            )
            .map(Some)
    }
}

/// Binds parameters 1, 2, ... in order.
struct Binder<'a, 'b> {
    st: &'a mut Statement<'b>,
    i: usize,
}

impl<'a, 'b> Binder<'a, 'b> {
    fn new(st: &'a mut Statement<'b>) -> Self {
        Binder { st, i: 0 }
    }

    fn val<T: ToSql>(&mut self, v: T) -> rusqlite::Result<()> {
        self.i += 1;
        self.st.raw_bind_parameter(self.i, v)
    }

    fn ip(&mut self, ip: IpAddr) -> rusqlite::Result<()> {
        self.val(schema::ip_bytes(&ip).as_slice())
    }

    /// TCP flag counts as a JSON array `[syn, fin, rst, psh, urg, ece, cwr, retransmits]`
    /// (a third of the object's size; the decoder reads both), or NULL.
    fn tcp(&mut self, t: Option<&TcpFlags>, buf: &mut Vec<u8>) -> rusqlite::Result<()> {
        let Some(t) = t else {
            return self.val(Option::<&str>::None);
        };
        buf.clear();
        let mut num = itoa::Buffer::new();
        let counts = [
            u32::from(t.syn),
            u32::from(t.fin),
            u32::from(t.rst),
            t.psh,
            u32::from(t.urg),
            u32::from(t.ece),
            u32::from(t.cwr),
            t.retransmits,
        ];
        for (i, c) in counts.into_iter().enumerate() {
            buf.push(if i == 0 { b'[' } else { b',' });
            buf.extend_from_slice(num.format(c).as_bytes());
        }
        buf.push(b']');
        self.val(ToSqlOutput::Borrowed(ValueRef::Text(buf)))
    }

    /// JSON text, or NULL when `empty`.
    fn json<T: Serialize + ?Sized>(
        &mut self,
        v: &T,
        empty: bool,
        buf: &mut Vec<u8>,
    ) -> rusqlite::Result<()> {
        if empty {
            return self.val(Option::<&str>::None);
        }
        buf.clear();
        serde_json::to_writer(&mut *buf, v)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        self.val(ToSqlOutput::Borrowed(ValueRef::Text(buf)))
    }
}

/// Binds a flow's columns as parameters 1 to 42.
fn bind_flow(st: &mut Statement<'_>, r: &FlowRow, buf: &mut Vec<u8>) -> rusqlite::Result<()> {
    let mut b = Binder::new(st);
    b.val(int(r.run_id))?;
    b.val(int(r.id))?;
    b.val(r.proto)?;
    b.ip(r.src_ip)?;
    b.val(r.src_port)?;
    b.ip(r.dst_ip)?;
    b.val(r.dst_port)?;
    b.val(r.icmp_id)?;
    b.val(int(r.packets_c2s))?;
    b.val(int(r.bytes_c2s))?;
    b.val(int(r.packets_s2c))?;
    b.val(int(r.bytes_s2c))?;
    b.val(int(r.payload_bytes_c2s))?;
    b.val(int(r.payload_bytes_s2c))?;
    b.val(r.first_seen.0)?;
    b.val(r.last_seen.0)?;
    b.val(r.duration_ns)?;
    b.val(r.state.as_str())?;
    b.val(r.end_reason.as_deref())?;
    b.json(&r.vlan, r.vlan.is_empty(), buf)?;
    b.val(r.iface)?;
    b.val(r.iface_name.as_deref())?;
    b.tcp(r.tcp_c2s.as_ref(), buf)?;
    b.tcp(r.tcp_s2c.as_ref(), buf)?;
    b.val(r.icmp_errors)?;
    b.json(&r.quoted, r.quoted.is_none(), buf)?;
    b.json(&r.outer, r.outer.is_none(), buf)?;
    b.val(r.app.as_deref())?;
    b.val(r.app_guess)?;
    b.val(r.sni.as_deref())?;
    b.json(&r.alpn, r.alpn.is_empty(), buf)?;
    b.val(r.alpn_server.as_deref())?;
    b.val(r.tls_version.as_deref())?;
    b.val(r.ech)?;
    b.val(r.ja4.as_deref())?;
    b.json(&r.http, r.http.is_empty(), buf)?;
    b.json(&r.dns, r.dns.is_empty(), buf)?;
    b.val(r.quic_version.as_deref())?;
    b.val(r.ssh_client.as_deref())?;
    b.val(r.ssh_server.as_deref())?;
    b.val(r.stun_software.as_deref())?;
    b.val(r.domain.as_deref())?;
    Ok(())
}

/// Reads columns 0, 1, ... of a row in order, turning every failure into
/// [`StoreError::Corrupt`] naming the column.
struct Decoder<'r, 's> {
    row: &'r Row<'s>,
    i: usize,
    seq: i64,
    table: &'static str,
    path: &'r Path,
}

impl<'r, 's> Decoder<'r, 's> {
    fn new(row: &'r Row<'s>, table: &'static str, path: &'r Path) -> Result<Self, StoreError> {
        let mut d = Decoder {
            row,
            i: 0,
            seq: 0,
            table,
            path,
        };
        d.seq = d.get()?;
        Ok(d)
    }

    fn corrupt(&self, i: usize, what: impl core::fmt::Display) -> StoreError {
        let col = self.row.as_ref().column_name(i).unwrap_or("?");
        StoreError::Corrupt {
            path: self.path.to_path_buf(),
            table: self.table,
            seq: self.seq,
            what: format!("column {col}: {what}"),
        }
    }

    fn get<T: rusqlite::types::FromSql>(&mut self) -> Result<T, StoreError> {
        let i = self.i;
        self.i += 1;
        self.row.get(i).map_err(|e| self.corrupt(i, e))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let v: i64 = self.get()?;
        u64::try_from(v).map_err(|_| self.corrupt(self.i - 1, format!("negative count {v}")))
    }

    fn ts(&mut self) -> Result<Timestamp, StoreError> {
        Ok(Timestamp(self.get()?))
    }

    fn ip(&mut self) -> Result<IpAddr, StoreError> {
        let i = self.i;
        self.i += 1;
        let v = self.row.get_ref(i).map_err(|e| self.corrupt(i, e))?;
        schema::ip_from_value(v).ok_or_else(|| {
            let shown = match v {
                ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                ValueRef::Blob(b) => format!("a BLOB of {} bytes", b.len()),
                other => format!("a value of type {}", other.data_type()),
            };
            self.corrupt(i, format!("not an address: {shown}"))
        })
    }

    fn json<T: DeserializeOwned + Default>(&mut self) -> Result<T, StoreError> {
        let s: Option<String> = self.get()?;
        match s {
            None => Ok(T::default()),
            Some(s) => serde_json::from_str(&s).map_err(|e| self.corrupt(self.i - 1, e)),
        }
    }
}

fn decode_flow(row: &Row<'_>, path: &Path) -> Result<(i64, FlowRow), StoreError> {
    let mut d = Decoder::new(row, "flows", path)?;
    let r = FlowRow {
        run_id: d.u64()?,
        id: d.u64()?,
        proto: d.get()?,
        src_ip: d.ip()?,
        src_port: d.get()?,
        dst_ip: d.ip()?,
        dst_port: d.get()?,
        icmp_id: d.get()?,
        packets_c2s: d.u64()?,
        bytes_c2s: d.u64()?,
        packets_s2c: d.u64()?,
        bytes_s2c: d.u64()?,
        payload_bytes_c2s: d.u64()?,
        payload_bytes_s2c: d.u64()?,
        first_seen: d.ts()?,
        last_seen: d.ts()?,
        duration_ns: d.get()?,
        state: d.get()?,
        end_reason: d.get()?,
        vlan: d.json()?,
        iface: d.get()?,
        iface_name: d.get()?,
        tcp_c2s: d.json()?,
        tcp_s2c: d.json()?,
        icmp_errors: d.get()?,
        quoted: d.json()?,
        outer: d.json()?,
        app: d.get()?,
        app_guess: d.get()?,
        sni: d.get()?,
        alpn: d.json()?,
        alpn_server: d.get()?,
        tls_version: d.get()?,
        ech: d.get()?,
        ja4: d.get()?,
        http: d.json()?,
        dns: d.json()?,
        quic_version: d.get()?,
        ssh_client: d.get()?,
        ssh_server: d.get()?,
        stun_software: d.get()?,
        domain: d.get()?,
    };
    Ok((d.seq, r))
}

fn decode_series(row: &Row<'_>, path: &Path) -> Result<(i64, SeriesRow), StoreError> {
    let mut d = Decoder::new(row, "series", path)?;
    let r = SeriesRow {
        run_id: d.u64()?,
        start: d.ts()?,
        end: d.ts()?,
        iface: d.get()?,
        iface_name: d.get()?,
        layer: d.get()?,
        proto: d.get()?,
        window_secs: d.get()?,
        covered_secs: d.get()?,
        packets: d.u64()?,
        bytes: d.u64()?,
        new_flows: d.u64()?,
        pps: d.get()?,
        bps: d.get()?,
        new_flows_per_s: d.get()?,
        active_flows: d.u64()?,
    };
    Ok((d.seq, r))
}

fn decode_alert(row: &Row<'_>, path: &Path) -> Result<(i64, AlertRow), StoreError> {
    let mut d = Decoder::new(row, "alerts", path)?;
    let r = AlertRow {
        run_id: d.u64()?,
        id: d.u64()?,
        ts: d.ts()?,
        kind: d.get()?,
        severity: d.get()?,
        source: d.get()?,
        target: d.get()?,
        evidence: d.get()?,
        first_seen: d.ts()?,
        last_seen: d.ts()?,
        closed: d.get()?,
    };
    Ok((d.seq, r))
}

/// A query parameter: a value, or a list for `rarray(?)`.
#[derive(Clone, Debug)]
enum Param {
    Value(Value),
    List(Rc<Vec<Value>>),
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Param::Value(v) => v.to_sql(),
            Param::List(l) => l.to_sql(),
        }
    }
}

/// A `SELECT` under construction: `WHERE` terms and their parameters.
#[derive(Default)]
struct Select {
    terms: Vec<String>,
    params: Vec<Param>,
}

impl Select {
    /// Adds a term; `?` in it are numbered in order with `vals`.
    fn and(&mut self, term: &str, vals: impl IntoIterator<Item = Value>) {
        self.and_param(term, vals.into_iter().map(Param::Value));
    }

    /// [`Select::and`] with lists among the parameters.
    fn and_param(&mut self, term: &str, vals: impl IntoIterator<Item = Param>) {
        let mut out = String::with_capacity(term.len() + 8);
        let mut vals = vals.into_iter();
        for c in term.chars() {
            if c == '?' {
                if let Some(v) = vals.next() {
                    self.params.push(v);
                    let _ = core::fmt::Write::write_fmt(
                        &mut out,
                        format_args!("?{}", self.params.len()),
                    );
                    continue;
                }
            }
            out.push(c);
        }
        self.terms.push(out);
    }

    fn where_clause(&self) -> String {
        if self.terms.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.terms.join(" AND "))
        }
    }

    /// Adds the cursor term for `key` and `seq` in `order`.
    fn cursor(&mut self, key: &str, order: Order, c: Cursor) {
        let op = match order {
            Order::Asc => ">",
            Order::Desc => "<",
        };
        self.and(
            &format!("({key}, seq) {op} (?, ?)"),
            [Value::Integer(c.key), Value::Integer(c.seq)],
        );
    }

    /// `ORDER BY ... LIMIT ... OFFSET ...`, one row beyond the page to learn whether
    /// another page follows.
    fn tail(&self, key: &str, order: Order, limit: u32, offset: u64) -> String {
        let dir = match order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        format!(
            " ORDER BY {key} {dir}, seq {dir} LIMIT {} OFFSET {}",
            u64::from(limit) + 1,
            sat_i64(offset)
        )
    }
}

fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// Runs a paged query: `rows` yields (seq, key, row); the extra row decides `next`.
fn paged<T>(mut rows: Vec<(i64, i64, T)>, limit: u32, kind: CursorKind, order: Order) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|&(seq, key, _)| Cursor {
            kind,
            order,
            key,
            seq,
        })
    } else {
        None
    };
    Page {
        rows: rows.into_iter().map(|(_, _, r)| r).collect(),
        next,
    }
}

/// The value of a sort-key column as an integer (a sum of counters is one; clamp otherwise).
fn key_of(row: &Row<'_>, i: usize) -> i64 {
    match row.get_ref(i) {
        Ok(ValueRef::Integer(v)) => v,
        Ok(ValueRef::Real(f)) => f as i64,
        _ => 0,
    }
}

impl Store for SqliteStore {
    fn checkpoint_stats(&self) -> Option<CheckpointStats> {
        self.checkpointer.as_ref().map(Checkpointer::stats)
    }

    fn begin_run(&mut self, run: &RunInfo) -> Result<u64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (host, source, started_ns, version) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![run.host, run.source, run.started.0, run.version],
            )
            .map_err(|e| self.err("register the run", e))?;
        Ok(u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0))
    }

    fn write_flows(&mut self, rows: &[FlowRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let r = self.write_flows_tx(rows.iter());
        self.after_commit();
        r.map_err(|e| self.err("insert flows", e))
    }

    /// All batches in one transaction, none moved.
    fn write_flow_batches(&mut self, batches: &mut [Vec<FlowRow>]) -> Result<(), StoreError> {
        if batches.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let r = self.write_flows_tx(batches.iter().flatten());
        self.after_commit();
        r.map_err(|e| self.err("insert flows", e))
    }

    fn write_series(&mut self, rows: &[SeriesRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let r = self.write_series_tx(rows);
        self.after_commit();
        r.map_err(|e| self.err("insert series", e))
    }

    fn write_alerts(&mut self, rows: &[AlertRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let r = self.write_alerts_tx(rows);
        self.after_commit();
        r.map_err(|e| self.err("insert alerts", e))
    }

    /// Nothing to do: every write is committed when it returns, and a committed transaction
    /// survives the process being killed. (A checkpoint here would cost a full copy of the
    /// log's pages and an fsync per flush; SQLite checkpoints every 40 MB of log, and when
    /// the last connection closes.)
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn query_flows(&mut self, q: &FlowQuery) -> Result<Page<FlowRow>, StoreError> {
        let (sql, params, limit) = self.flow_select(q)?;
        let path = self.path.clone();
        let rows = self
            .select(&sql, &params, |row| {
                let (seq, r) = decode_flow(row, &path)?;
                Ok((seq, key_of(row, FLOW_COLS.len() + 1), r))
            })
            .map_err(|e| e.into_store(&self.path, "query flows"))?;
        Ok(paged(rows, limit, CursorKind::from(q.sort), q.order))
    }

    fn query_alerts(&mut self, q: &AlertQuery) -> Result<Page<AlertRow>, StoreError> {
        let mut s = Select::default();
        if let Some(run) = q.run_id {
            s.and("run_id = ?", [Value::Integer(sat_i64(run))]);
        }
        if let Some(from) = q.from {
            s.and("ts_ns >= ?", [Value::Integer(from.0)]);
        }
        if let Some(to) = q.to {
            s.and("ts_ns < ?", [Value::Integer(to.0)]);
        }
        if let Some(k) = &q.kind {
            s.and("kind = ?", [Value::Text(k.clone())]);
        }
        if let Some(v) = &q.severity {
            s.and("severity = ?", [Value::Text(v.clone())]);
        }
        if let Some(v) = &q.subject {
            s.and(
                "(source = ? OR target = ?)",
                [Value::Text(v.clone()), Value::Text(v.clone())],
            );
        }
        if let Some(c) = q.cursor {
            s.cursor("ts_ns", q.order, c.check(CursorKind::AlertTs, q.order)?);
        }
        let limit = page_limit(q.limit);
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts{}{}",
            s.where_clause(),
            s.tail("ts_ns", q.order, limit, q.offset)
        );
        let path = self.path.clone();
        let rows = self
            .select(&sql, &s.params, |row| {
                let (seq, r) = decode_alert(row, &path)?;
                Ok((seq, r.ts.0, r))
            })
            .map_err(|e| e.into_store(&self.path, "query alerts"))?;
        Ok(paged(rows, limit, CursorKind::AlertTs, q.order))
    }

    fn query_series(&mut self, q: &SeriesQuery) -> Result<Page<SeriesRow>, StoreError> {
        let mut s = Select::default();
        if let Some(run) = q.run_id {
            s.and("run_id = ?", [Value::Integer(sat_i64(run))]);
        }
        if let Some(w) = q.window_secs {
            s.and("window_secs = ?", [Value::Integer(w.into())]);
        }
        if let Some(from) = q.from {
            s.and("start_ns >= ?", [Value::Integer(from.0)]);
        }
        if let Some(to) = q.to {
            s.and("start_ns < ?", [Value::Integer(to.0)]);
        }
        if let Some(i) = q.iface {
            s.and("iface = ?", [Value::Integer(i.into())]);
        }
        if let Some(l) = &q.layer {
            s.and("layer = ?", [Value::Text(l.clone())]);
        }
        if let Some(p) = &q.proto {
            s.and("proto = ?", [Value::Text(p.clone())]);
        }
        if let Some(c) = q.cursor {
            s.cursor(
                "start_ns",
                q.order,
                c.check(CursorKind::SeriesStart, q.order)?,
            );
        }
        let limit = page_limit(q.limit);
        let sql = format!(
            "SELECT {SERIES_COLS} FROM series{}{}",
            s.where_clause(),
            s.tail("start_ns", q.order, limit, q.offset)
        );
        let path = self.path.clone();
        let rows = self
            .select(&sql, &s.params, |row| {
                let (seq, r) = decode_series(row, &path)?;
                Ok((seq, r.start.0, r))
            })
            .map_err(|e| e.into_store(&self.path, "query series"))?;
        Ok(paged(rows, limit, CursorKind::SeriesStart, q.order))
    }

    /// Age first: flows whose `last_seen`, series points whose `end` and alerts whose
    /// `last_seen` are older than `now - max_age`. Then size: when the pages in use
    /// ([`SqliteStore::used_bytes`]) exceed `max_bytes`, the oldest flows (by `first_seen`) go
    /// until about 90 % of `max_bytes` worth of rows remain (the share of rows kept is the
    /// share of bytes wanted), with the series points and alerts that end before the last
    /// flow deleted. Deleting leaves free space inside index pages that new rows fill before
    /// the file grows; so a size pass is skipped while the pages in use have not grown since
    /// the previous pass of this connection. Deletions run in chunks of 10 000 rows, each its
    /// own transaction; afterwards free pages are released (`incremental_vacuum`) and the log
    /// is checkpointed so that the file shrinks.
    fn retention(
        &mut self,
        policy: &Retention,
        now: Timestamp,
    ) -> Result<RetentionStats, StoreError> {
        let mut st = RetentionStats::default();
        let run = |this: &mut SqliteStore, st: &mut RetentionStats| -> rusqlite::Result<()> {
            if let Some(age) = policy.max_age {
                let age = i64::try_from(age.as_nanos()).unwrap_or(i64::MAX);
                this.delete_up_to(st, "last_seen_ns", now.0.saturating_sub(age), false)?;
            }
            if let Some(max) = policy.max_bytes {
                let used = this.used_bytes_raw()?;
                let grew = this.used_after_size_pass.is_none_or(|after| used > after);
                if used > max && grew {
                    let want = max / 10 * 9;
                    let cut = match this.size_cut("flows", "first_seen_ns", want, used)? {
                        Some(c) => Some(c),
                        None => match this.size_cut("series", "end_ns", want, used)? {
                            Some(c) => Some(c),
                            None => this.size_cut("alerts", "last_seen_ns", want, used)?,
                        },
                    };
                    if let Some(cut) = cut {
                        this.delete_up_to(st, "first_seen_ns", cut, true)?;
                    }
                    this.used_after_size_pass = Some(this.used_bytes_raw()?);
                }
            }
            if st.flows > 0 {
                // Chunks left without rows, and their key summaries (a chunk partly deleted
                // keeps its range, wider than needed, never too narrow, and its summary: the
                // seqs of deleted rows find nothing, and are never handed out again).
                let mut gone = this.conn.prepare(
                    "DELETE FROM flow_chunks WHERE NOT EXISTS (SELECT 1 FROM flows \
                     WHERE seq >= flow_chunks.chunk << ?1 AND seq < (flow_chunks.chunk + 1) << ?1) \
                     RETURNING chunk",
                )?;
                let chunks = gone
                    .query_map([CHUNK_SHIFT], |r| r.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                drop(gone);
                let mut keys = this
                    .conn
                    .prepare_cached("DELETE FROM flow_keys WHERE chunk = ?1")?;
                for c in chunks {
                    keys.execute([c])?;
                }
            }
            if st.total() > 0 {
                this.conn.execute_batch("PRAGMA incremental_vacuum")?;
                // Best effort: readers may hold the log; the next checkpoint finishes it.
                let _ = this
                    .conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
            Ok(())
        };
        run(self, &mut st).map_err(|e| self.err("retention", e))?;
        Ok(st)
    }
}

/// A clean close leaves no write-ahead log behind: the log is copied into the file and cut to
/// nothing (`wal_checkpoint(TRUNCATE)`), also when another connection (the API's read-only
/// one, which cannot checkpoint) closes last. Best effort: a reader in the middle of a query
/// keeps its pages in the log for the next opener.
impl Drop for SqliteStore {
    fn drop(&mut self) {
        // The background thread's connection closes first, so that this one is the last.
        if let Some(mut c) = self.checkpointer.take() {
            c.stop();
        }
        if !self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

/// A query failure: SQLite's or a row that did not decode.
enum SelectError {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl SelectError {
    fn into_store(self, path: &Path, op: &'static str) -> StoreError {
        match self {
            SelectError::Sqlite(e) => StoreError::sqlite(path, op, e),
            SelectError::Store(e) => e,
        }
    }
}

impl From<rusqlite::Error> for SelectError {
    fn from(e: rusqlite::Error) -> Self {
        SelectError::Sqlite(e)
    }
}

impl SqliteStore {
    /// The chunks (`seq >> 12`) a query can match, as a subquery and its parameters: those
    /// whose first_seen range meets the query's (a flow lasting into `from` started at most
    /// `max_dur` before it).
    fn chunk_list(q: &FlowQuery, max_dur: i64) -> (String, Vec<Value>) {
        let mut terms = Vec::new();
        let mut params = Vec::new();
        if let Some(from) = q.from {
            terms.push("max_first_ns >= ?");
            params.push(Value::Integer(from.0.saturating_sub(max_dur.max(0))));
        }
        if let Some(to) = q.to {
            terms.push("min_first_ns < ?");
            params.push(Value::Integer(to.0));
        }
        let mut sql = String::from("SELECT chunk FROM flow_chunks");
        if !terms.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&terms.join(" AND "));
        }
        (sql, params)
    }

    /// The `SELECT` of a flow query, its parameters and the page size.
    fn flow_select(&self, q: &FlowQuery) -> Result<(String, Vec<Param>, u32), StoreError> {
        let kind = CursorKind::from(q.sort);
        let key = match q.sort {
            FlowSort::FirstSeen => "first_seen_ns",
            FlowSort::Bytes => "bytes",
            FlowSort::Packets => "packets",
        };
        let mut s = Select::default();
        if let Some(run) = q.run_id {
            s.and("run_id = ?", [Value::Integer(sat_i64(run))]);
        }
        // A flow that lasts until `from` started at most the longest duration stored before
        // it: bounds the scan of the first_seen index.
        let max_dur = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'max_duration_ns'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err("read meta", e))?;
        if let Some(from) = q.from {
            s.and("last_seen_ns >= ?", [Value::Integer(from.0)]);
            s.and(
                "first_seen_ns >= ?",
                [Value::Integer(from.0.saturating_sub(max_dur.max(0)))],
            );
        }
        if let Some(to) = q.to {
            s.and("first_seen_ns < ?", [Value::Integer(to.0)]);
        }
        // Host, port, app and name: the seqs filed under the value in the summaries of the
        // chunks the time range can hold (one primary-key lookup per chunk), re-checked on
        // the row where the row has the value as a column.
        let (chunks, chunk_params) = SqliteStore::chunk_list(q, max_dur);
        let lookup = |s: &mut Select, kind: Kind, m: Match| -> Result<(), StoreError> {
            let seqs = self.key_seqs(&chunks, &chunk_params, kind, &m)?;
            if seqs.len() > self.max_key_matches {
                return Err(StoreError::TooBroad {
                    filter: kind.filter(),
                    max: self.max_key_matches,
                });
            }
            s.and_param("seq IN rarray(?)", [Param::List(Rc::new(seqs))]);
            Ok(())
        };
        if let Some(h) = q.host {
            let ip = schema::ip_bytes(&h).as_slice().to_vec();
            lookup(&mut s, Kind::Host, Match::Exact(ip.clone()))?;
            s.and(
                "(src_ip = ? OR dst_ip = ?)",
                [Value::Blob(ip.clone()), Value::Blob(ip)],
            );
        }
        if let Some(p) = q.port {
            lookup(
                &mut s,
                Kind::Port,
                Match::Exact(keys::port_value(p).to_vec()),
            )?;
            s.and(
                "(src_port = ? OR dst_port = ?)",
                [Value::Integer(p.into()), Value::Integer(p.into())],
            );
        }
        if let Some(a) = &q.app {
            lookup(&mut s, Kind::App, Match::Exact(keys::app_value(a)))?;
            s.and("app = ?", [Value::Text(a.clone())]);
        }
        if let Some(p) = q.proto {
            s.and("proto = ?", [Value::Integer(p.into())]);
        }
        match &q.domain {
            None => {}
            Some(DomainFilter::Exact(d)) => {
                lookup(
                    &mut s,
                    Kind::Name,
                    Match::Exact(reversed_name(d).into_bytes()),
                )?;
            }
            Some(DomainFilter::Suffix(d)) => {
                lookup(
                    &mut s,
                    Kind::Name,
                    Match::Suffix(reversed_name(d).into_bytes()),
                )?;
            }
        }
        if let Some(c) = q.cursor {
            s.cursor(key, q.order, c.check(kind, q.order)?);
        }
        let limit = page_limit(q.limit);
        let sql = format!(
            "SELECT seq, {}, {key} FROM flows{}{}",
            FLOW_COLS.join(", "),
            s.where_clause(),
            s.tail(key, q.order, limit, q.offset)
        );
        Ok((sql, s.params, limit))
    }

    /// The seqs filed under a value (`m`) of `kind` in the chunks `chunks` (a subquery with
    /// its parameters) lists: sorted, each once.
    fn key_seqs(
        &self,
        chunks: &str,
        chunk_params: &[Value],
        kind: Kind,
        m: &Match,
    ) -> Result<Vec<Value>, StoreError> {
        let bucket = keys::bucket(kind, m.key());
        let sql = format!(
            "SELECT chunk, entries FROM flow_keys WHERE chunk IN ({chunks}) AND bucket = ?"
        );
        let mut seqs: Vec<i64> = Vec::new();
        let run = |seqs: &mut Vec<i64>| -> Result<(), SelectError> {
            let mut st = self.conn.prepare_cached(&sql)?;
            let params = chunk_params.iter().cloned().chain([Value::Integer(bucket)]);
            let mut rows = st.query(rusqlite::params_from_iter(params))?;
            while let Some(row) = rows.next()? {
                let chunk: i64 = row.get(0)?;
                let ValueRef::Blob(b) = row.get_ref(1)? else {
                    continue;
                };
                for e in keys::entries(b) {
                    let (offset, v) = e.map_err(|bad| {
                        SelectError::Store(StoreError::Corrupt {
                            path: self.path.clone(),
                            table: "flow_keys",
                            seq: chunk,
                            what: format!("bucket {bucket}: entry at byte {} damaged", bad.at),
                        })
                    })?;
                    if m.matches(v) {
                        seqs.push(chunk.wrapping_shl(CHUNK_SHIFT) | i64::from(offset));
                        if seqs.len() > 2 * self.max_key_matches {
                            // Rows filed again by updates repeat their seqs: drop the
                            // repeats, and refuse only when the distinct ones are too many
                            // (never answer from a cut list).
                            seqs.sort_unstable();
                            seqs.dedup();
                            if seqs.len() > self.max_key_matches {
                                return Err(SelectError::Store(StoreError::TooBroad {
                                    filter: kind.filter(),
                                    max: self.max_key_matches,
                                }));
                            }
                        }
                    }
                }
            }
            Ok(())
        };
        run(&mut seqs).map_err(|e| e.into_store(&self.path, "query flow keys"))?;
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs.into_iter().map(Value::Integer).collect())
    }

    fn select<T>(
        &self,
        sql: &str,
        params: &[Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, SelectError> {
        let mut st = self.conn.prepare_cached(sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(row).map_err(SelectError::Store)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::DomainFilter;

    fn plan(s: &SqliteStore, q: &FlowQuery) -> String {
        let (sql, params, _) = s.flow_select(q).unwrap();
        let mut st = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = st
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    }

    /// The schema's generated `chunk` column and [`CHUNK_SHIFT`] (used by retention and the
    /// chunk ranges) say the same.
    #[test]
    fn chunk_column_matches_chunk_shift() {
        let s = SqliteStore::open_in_memory().unwrap();
        let sql: String = s
            .conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'flows'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            sql.contains(&format!(
                "chunk INTEGER GENERATED ALWAYS AS (seq >> {CHUNK_SHIFT})"
            )),
            "{sql}"
        );
    }

    /// Each selective filter is answered through its index, not a scan of the table.
    #[test]
    fn flow_queries_use_their_indexes() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        // Slices are only named when flows are stored.
        s.write_flows(&[FlowRow::default()]).unwrap();
        let ip = "10.0.0.1".parse().ok();
        let cases: Vec<(FlowQuery, &[&str])> = vec![
            (FlowQuery::default(), &["flows_first_seen"]),
            (
                FlowQuery {
                    from: Some(Timestamp(5)),
                    to: Some(Timestamp(9)),
                    ..FlowQuery::default()
                },
                &["flows_first_seen (first_seen_ns>? AND first_seen_ns<?)"],
            ),
            (
                FlowQuery {
                    host: ip,
                    ..FlowQuery::default()
                },
                &["SEARCH flows USING INTEGER PRIMARY KEY (rowid=?)", "rarray"],
            ),
            (
                FlowQuery {
                    port: Some(443),
                    from: Some(Timestamp(5)),
                    ..FlowQuery::default()
                },
                &["SEARCH flows USING INTEGER PRIMARY KEY (rowid=?)", "rarray"],
            ),
            (
                FlowQuery {
                    app: Some("tls".into()),
                    ..FlowQuery::default()
                },
                &["SEARCH flows USING INTEGER PRIMARY KEY (rowid=?)", "rarray"],
            ),
            (
                FlowQuery {
                    domain: Some(DomainFilter::Suffix("example.com".into())),
                    ..FlowQuery::default()
                },
                &["SEARCH flows USING INTEGER PRIMARY KEY (rowid=?)", "rarray"],
            ),
            (
                FlowQuery {
                    run_id: Some(1),
                    ..FlowQuery::default()
                },
                &["flows_key (run_id=?)"],
            ),
        ];
        for (q, want) in cases {
            let p = plan(&s, &q);
            for w in want {
                assert!(p.contains(w), "{q:?}: {p}");
            }
            assert!(
                !p.split("; ").any(|step| step == "SCAN flows"),
                "{q:?}: {p}"
            );
        }
        // The key lookup behind them: one primary-key search per chunk of the time range.
        for q in [
            FlowQuery::default(),
            FlowQuery {
                from: Some(Timestamp(5)),
                to: Some(Timestamp(9)),
                ..FlowQuery::default()
            },
        ] {
            let (chunks, params) = SqliteStore::chunk_list(&q, 0);
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT chunk, entries FROM flow_keys \
                 WHERE chunk IN ({chunks}) AND bucket = ?"
            );
            let mut st = s.conn.prepare(&sql).unwrap();
            let params = params.into_iter().chain([Value::Integer(1)]);
            let p = st
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect::<Vec<_>>()
                .join("; ");
            assert!(
                p.contains("SEARCH flow_keys USING PRIMARY KEY (chunk=? AND bucket=?)"),
                "{p}"
            );
            assert!(!p.contains("SCAN flow_keys"), "{p}");
        }
    }
}
