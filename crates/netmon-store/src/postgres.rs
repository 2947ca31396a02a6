//! [`PgStore`]: the history in PostgreSQL (TimescaleDB when the extension is there), shared by
//! many netmonds: every row carries the host that observed it.
//!
//! The client is the synchronous `postgres` crate (a blocking wrapper over tokio-postgres):
//! the store runs on the [`crate::StoreWriter`]'s own thread, off the packet path, and the
//! [`crate::Store`] trait is synchronous, so an async client would only add a runtime.
//!
//! Writes: one statement per batch, in one transaction. The batch travels as one JSON array
//! (the rows' serde form) that the server unpacks with `jsonb_to_recordset`, then
//! `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE newer`: the same rule as
//! [`crate::SqliteStore`], so a retried batch never duplicates a row.
//!
//! The connection is opened lazily and again after it was lost; a lost or refused connection
//! is [`StoreError::Unavailable`] (a [`crate::SpoolingStore`] spools the rows then).

use std::time::Duration;

use netmon_types::Timestamp;
use postgres::{Client, NoTls};

use crate::Store;
use crate::error::StoreError;
use crate::query::{AlertQuery, FlowQuery, Page, Retention, RetentionStats, SeriesQuery};
use crate::rows::{AlertRow, FlowRow, RunInfo, SeriesRow};
use crate::spool::clock_run_id;

/// The PostgreSQL schema version this crate writes (table `netmon_schema`).
pub const PG_SCHEMA_VERSION: i32 = 1;

/// Where and how a [`PgStore`] connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgConfig {
    /// libpq-style connection string (`host=db1 user=netmon dbname=netmon`) or URL
    /// (`postgresql://netmon@db1/netmon`).
    pub url: String,
    /// The host name written into every row (`hostname` of the sensor).
    pub host: String,
    /// How long a connection attempt may take. Default 3 s.
    pub connect_timeout: Duration,
    /// With TimescaleDB: the retention policy of the `flows` and `series` hypertables
    /// (chunks older than this are dropped by TimescaleDB's job). `None`: no policy.
    pub retention: Option<Duration>,
}

impl PgConfig {
    /// A configuration with the default timeout and no retention policy.
    pub fn new(url: impl Into<String>, host: impl Into<String>) -> PgConfig {
        PgConfig {
            url: url.into(),
            host: host.into(),
            connect_timeout: Duration::from_secs(3),
            retention: None,
        }
    }
}

/// The PostgreSQL sink. See the module documentation.
pub struct PgStore {
    cfg: PgConfig,
    pg: postgres::Config,
    client: Option<Client>,
    timescale: bool,
    /// Partitions known to exist: (table, day).
    partitions: std::collections::HashSet<(&'static str, i64)>,
}

impl core::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PgStore")
            .field("host", &self.cfg.host)
            .field("connected", &self.client.is_some())
            .field("timescale", &self.timescale)
            .finish()
    }
}

/// Version 1 (plain tables). Times are kept twice: `*_ns` integers (exact, what the rows
/// carry) and `timestamptz` columns (microseconds; what TimescaleDB partitions on and what
/// people query). Lists and nested objects are `jsonb`, addresses `inet`.
const V1: &str = r#"
CREATE TABLE runs (
    host        text NOT NULL,
    run_id      bigint NOT NULL,
    source      text NOT NULL,
    started     timestamptz NOT NULL,
    started_ns  bigint NOT NULL,
    version     text NOT NULL,
    PRIMARY KEY (host, run_id)
);
CREATE TABLE flows (
    host              text NOT NULL,
    run_id            bigint NOT NULL,
    id                bigint NOT NULL,
    proto             smallint NOT NULL,
    src_ip            inet NOT NULL,
    src_port          integer,
    dst_ip            inet NOT NULL,
    dst_port          integer,
    icmp_id           integer,
    packets_c2s       bigint NOT NULL,
    bytes_c2s         bigint NOT NULL,
    packets_s2c       bigint NOT NULL,
    bytes_s2c         bigint NOT NULL,
    payload_bytes_c2s bigint NOT NULL,
    payload_bytes_s2c bigint NOT NULL,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    first_seen_ns     bigint NOT NULL,
    last_seen_ns      bigint NOT NULL,
    duration_ns       bigint NOT NULL,
    state             text NOT NULL,
    end_reason        text,
    vlan              jsonb,
    iface             bigint NOT NULL,
    iface_name        text,
    tcp_c2s           jsonb,
    tcp_s2c           jsonb,
    icmp_errors       bigint NOT NULL,
    quoted            jsonb,
    outer_key         jsonb,
    app               text,
    app_guess         boolean NOT NULL,
    sni               text,
    alpn              jsonb,
    alpn_server       text,
    tls_version       text,
    ech               boolean NOT NULL,
    ja4               text,
    http              jsonb,
    dns               jsonb,
    quic_version      text,
    ssh_client        text,
    ssh_server        text,
    stun_software     text,
    domain            text
){FLOWS_PARTITIONING};
CREATE INDEX flows_first_seen ON flows (first_seen);
CREATE INDEX flows_src_ip ON flows (src_ip);
CREATE INDEX flows_dst_ip ON flows (dst_ip);
CREATE TABLE series (
    host            text NOT NULL,
    run_id          bigint NOT NULL,
    start           timestamptz NOT NULL,
    start_ns        bigint NOT NULL,
    end_ns          bigint NOT NULL,
    iface           bigint NOT NULL,
    iface_name      text,
    layer           text NOT NULL,
    proto           text NOT NULL,
    window_secs     integer NOT NULL,
    covered_secs    integer NOT NULL,
    packets         bigint NOT NULL,
    bytes           bigint NOT NULL,
    new_flows       bigint NOT NULL,
    pps             double precision,
    bps             double precision,
    new_flows_per_s double precision,
    active_flows    bigint NOT NULL
){SERIES_PARTITIONING};
CREATE UNIQUE INDEX series_key
    ON series (host, run_id, window_secs, iface, layer, proto, start_ns, start);
CREATE INDEX series_start ON series (start);
CREATE TABLE alerts (
    host          text NOT NULL,
    run_id        bigint NOT NULL,
    id            bigint NOT NULL,
    ts            timestamptz NOT NULL,
    ts_ns         bigint NOT NULL,
    kind          text NOT NULL,
    severity      text NOT NULL,
    source        text NOT NULL,
    target        text,
    evidence      text NOT NULL,
    first_seen_ns bigint NOT NULL,
    last_seen_ns  bigint NOT NULL,
    closed        boolean NOT NULL,
    PRIMARY KEY (host, run_id, id)
);
CREATE INDEX alerts_ts ON alerts (ts);
"#;

/// The flow key. A partitioned table's (or a hypertable's) unique index must contain its time
/// column; `first_seen` of a flow never changes, so the key is the same as `(host, run_id, id)`.
const FLOW_KEY: &str = "host, run_id, id, first_seen";

/// Length of one partition of the plain (not TimescaleDB) `flows` and `series` tables: a day,
/// so that retention can drop whole partitions and time-range queries prune to their days.
const PARTITION_NS: i64 = 86_400 * 1_000_000_000;

/// The day (partition number) of a time in nanoseconds.
fn day_of(ns: i64) -> i64 {
    ns.div_euclid(PARTITION_NS)
}

/// `CREATE TABLE IF NOT EXISTS flows_d19782 PARTITION OF flows FOR VALUES FROM (...) TO (...)`
/// for day `day` of `table` (partitioned on `column`, a timestamptz).
fn partition_ddl(table: &str, day: i64) -> String {
    let bound = |d: i64| {
        netmon_types::Timestamp(d.saturating_mul(PARTITION_NS))
            .rfc3339()
            .to_string()
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {table}_d{day} PARTITION OF {table} \
         FOR VALUES FROM ('{}') TO ('{}')",
        bound(day),
        bound(day.saturating_add(1))
    )
}

/// Nanoseconds (an SQL expression) as `timestamptz`, exact to the microsecond.
fn ts_expr(ns: &str) -> String {
    format!("(timestamptz 'epoch' + ({ns} / 1000) * interval '1 microsecond')")
}

/// The flow upsert: `$1` the host, `$2` the rows as a JSON array (their serde form).
fn upsert_flows_sql(key: &str) -> String {
    // (column, recordset type, select expression)
    let cols: &[(&str, &str, String)] = &[
        ("run_id", "bigint", "r.run_id".into()),
        ("id", "bigint", "r.id".into()),
        ("proto", "smallint", "r.proto".into()),
        ("src_ip", "text", "r.src_ip::inet".into()),
        ("src_port", "integer", "r.src_port".into()),
        ("dst_ip", "text", "r.dst_ip::inet".into()),
        ("dst_port", "integer", "r.dst_port".into()),
        ("icmp_id", "integer", "r.icmp_id".into()),
        ("packets_c2s", "bigint", "r.packets_c2s".into()),
        ("bytes_c2s", "bigint", "r.bytes_c2s".into()),
        ("packets_s2c", "bigint", "r.packets_s2c".into()),
        ("bytes_s2c", "bigint", "r.bytes_s2c".into()),
        ("payload_bytes_c2s", "bigint", "r.payload_bytes_c2s".into()),
        ("payload_bytes_s2c", "bigint", "r.payload_bytes_s2c".into()),
        ("first_seen", "bigint", ts_expr("r.first_seen")),
        ("last_seen", "bigint", ts_expr("r.last_seen")),
        ("duration_ns", "bigint", "r.duration_ns".into()),
        ("state", "text", "r.state".into()),
        ("end_reason", "text", "r.end_reason".into()),
        ("vlan", "jsonb", "r.vlan".into()),
        ("iface", "bigint", "r.iface".into()),
        ("iface_name", "text", "r.iface_name".into()),
        ("tcp_c2s", "jsonb", "r.tcp_c2s".into()),
        ("tcp_s2c", "jsonb", "r.tcp_s2c".into()),
        ("icmp_errors", "bigint", "r.icmp_errors".into()),
        ("quoted", "jsonb", "r.quoted".into()),
        ("outer", "jsonb", "r.outer".into()),
        ("app", "text", "r.app".into()),
        ("app_guess", "boolean", "r.app_guess".into()),
        ("sni", "text", "r.sni".into()),
        ("alpn", "jsonb", "r.alpn".into()),
        ("alpn_server", "text", "r.alpn_server".into()),
        ("tls_version", "text", "r.tls_version".into()),
        ("ech", "boolean", "r.ech".into()),
        ("ja4", "text", "r.ja4".into()),
        ("http", "jsonb", "r.http".into()),
        ("dns", "jsonb", "r.dns".into()),
        ("quic_version", "text", "r.quic_version".into()),
        ("ssh_client", "text", "r.ssh_client".into()),
        ("ssh_server", "text", "r.ssh_server".into()),
        ("stun_software", "text", "r.stun_software".into()),
        ("domain", "text", "r.domain".into()),
    ];
    // Table column names: the serde names, except `outer` (a keyword) and the times, whose
    // serde form is nanoseconds.
    fn table_col(c: &str) -> &str {
        match c {
            "outer" => "outer_key",
            other => other,
        }
    }
    let mut insert_cols = vec!["host".to_string()];
    let mut select = vec!["$1".to_string()];
    let mut defs = Vec::new();
    for (c, ty, expr) in cols {
        insert_cols.push(table_col(c).to_string());
        select.push(expr.clone());
        defs.push(format!("\"{c}\" {ty}"));
    }
    insert_cols.push("first_seen_ns".into());
    select.push("r.first_seen".into());
    insert_cols.push("last_seen_ns".into());
    select.push("r.last_seen".into());
    let sets = insert_cols
        .iter()
        .filter(|c| !matches!(c.as_str(), "host" | "run_id" | "id" | "first_seen"))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO flows ({}) SELECT {} FROM jsonb_to_recordset(($2::text)::jsonb) AS r({}) \
         ON CONFLICT ({key}) DO UPDATE SET {sets} \
         WHERE (EXCLUDED.last_seen_ns, EXCLUDED.packets_c2s + EXCLUDED.packets_s2c, \
                EXCLUDED.end_reason IS NOT NULL) \
             > (flows.last_seen_ns, flows.packets_c2s + flows.packets_s2c, \
                flows.end_reason IS NOT NULL)",
        insert_cols.join(", "),
        select.join(", "),
        defs.join(", "),
    )
}

fn upsert_series_sql() -> String {
    format!(
        "INSERT INTO series (host, run_id, start, start_ns, end_ns, iface, iface_name, layer, \
         proto, window_secs, covered_secs, packets, bytes, new_flows, pps, bps, \
         new_flows_per_s, active_flows) \
         SELECT $1, r.run_id, {}, r.start, r.\"end\", r.iface, r.iface_name, r.layer, r.proto, \
         r.window_secs, r.covered_secs, r.packets, r.bytes, r.new_flows, r.pps, r.bps, \
         r.new_flows_per_s, r.active_flows \
         FROM jsonb_to_recordset(($2::text)::jsonb) AS r(run_id bigint, start bigint, \
         \"end\" bigint, iface bigint, iface_name text, layer text, proto text, \
         window_secs integer, covered_secs integer, packets bigint, bytes bigint, \
         new_flows bigint, pps double precision, bps double precision, \
         new_flows_per_s double precision, active_flows bigint) \
         ON CONFLICT (host, run_id, window_secs, iface, layer, proto, start_ns, start) \
         DO UPDATE SET end_ns = EXCLUDED.end_ns, iface_name = EXCLUDED.iface_name, \
         covered_secs = EXCLUDED.covered_secs, packets = EXCLUDED.packets, \
         bytes = EXCLUDED.bytes, new_flows = EXCLUDED.new_flows, pps = EXCLUDED.pps, \
         bps = EXCLUDED.bps, new_flows_per_s = EXCLUDED.new_flows_per_s, \
         active_flows = EXCLUDED.active_flows \
         WHERE EXCLUDED.covered_secs > series.covered_secs",
        ts_expr("r.start")
    )
}

fn upsert_alerts_sql() -> String {
    format!(
        "INSERT INTO alerts (host, run_id, id, ts, ts_ns, kind, severity, source, target, \
         evidence, first_seen_ns, last_seen_ns, closed) \
         SELECT $1, r.run_id, r.id, {}, r.ts, r.kind, r.severity, r.source, r.target, \
         r.evidence, r.first_seen, r.last_seen, r.closed \
         FROM jsonb_to_recordset(($2::text)::jsonb) AS r(run_id bigint, id bigint, ts bigint, \
         kind text, severity text, source text, target text, evidence text, \
         first_seen bigint, last_seen bigint, closed boolean) \
         ON CONFLICT (host, run_id, id) DO UPDATE SET ts = EXCLUDED.ts, ts_ns = EXCLUDED.ts_ns, \
         kind = EXCLUDED.kind, severity = EXCLUDED.severity, source = EXCLUDED.source, \
         target = EXCLUDED.target, evidence = EXCLUDED.evidence, \
         first_seen_ns = EXCLUDED.first_seen_ns, last_seen_ns = EXCLUDED.last_seen_ns, \
         closed = EXCLUDED.closed \
         WHERE (EXCLUDED.closed, EXCLUDED.last_seen_ns) > (alerts.closed, alerts.last_seen_ns)",
        ts_expr("r.ts")
    )
}

/// Whether `a` replaces `b` (same key): greater `last_seen`, then more packets, then ended.
fn flow_newer(a: &FlowRow, b: &FlowRow) -> bool {
    (a.last_seen, a.packets(), a.end_reason.is_some())
        > (b.last_seen, b.packets(), b.end_reason.is_some())
}

/// One row per key, the one the store would keep (`ON CONFLICT DO UPDATE` may not touch a
/// row twice in one statement). Keeps the order of first appearance.
fn dedup<T, K: Eq + core::hash::Hash>(
    rows: &[T],
    key: impl Fn(&T) -> K,
    newer: impl Fn(&T, &T) -> bool,
) -> Vec<&T> {
    let mut at = std::collections::HashMap::with_capacity(rows.len());
    let mut out: Vec<&T> = Vec::with_capacity(rows.len());
    for r in rows {
        match at.entry(key(r)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(out.len());
                out.push(r);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                if let Some(slot) = out.get_mut(*o.get())
                    && newer(r, slot)
                {
                    *slot = r;
                }
            }
        }
    }
    out
}

/// Whether a client error means the server cannot be reached (no SQLSTATE: an I/O or
/// connection error; class 08 connection exception; 57P0x the server is shutting down or
/// starting; 53300 too many connections).
fn unreachable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(c) => {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P") || c == "53300"
        }
    }
}

impl PgStore {
    /// A store for `cfg`. Parses the connection string but does not connect: the first
    /// operation does (and migrates the schema), so netmond starts while the database is
    /// down.
    pub fn new(cfg: PgConfig) -> Result<PgStore, StoreError> {
        let mut pg: postgres::Config = cfg.url.parse().map_err(|e| StoreError::Postgres {
            op: "parse the connection string",
            source: e,
        })?;
        pg.connect_timeout(cfg.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("netmond");
        }
        Ok(PgStore {
            cfg,
            pg,
            client: None,
            timescale: false,
            partitions: std::collections::HashSet::new(),
        })
    }

    /// [`PgStore::new`], then connects and migrates now.
    pub fn connect(cfg: PgConfig) -> Result<PgStore, StoreError> {
        let mut s = PgStore::new(cfg)?;
        s.client()?;
        Ok(s)
    }

    /// Whether the flows and series tables are TimescaleDB hypertables (known once
    /// connected).
    pub fn timescale(&self) -> bool {
        self.timescale
    }

    /// Whether a connection is open.
    pub fn connected(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// The schema version of the database (connecting if needed).
    pub fn schema_version(&mut self) -> Result<i32, StoreError> {
        let c = self.client()?;
        let row = c
            .query_one("SELECT max(version) FROM netmon_schema", &[])
            .map_err(|e| map_err("schema version", e))?;
        Ok(row.get::<_, Option<i32>>(0).unwrap_or(0))
    }

    fn err(&mut self, op: &'static str, e: postgres::Error) -> StoreError {
        let e = map_err(op, e);
        if e.is_unavailable() {
            self.client = None;
        }
        e
    }

    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut c = self.pg.connect(NoTls).map_err(|e| map_err("connect", e))?;
            self.timescale = migrate(&mut c, &self.cfg)?;
            self.client = Some(c);
        }
        self.client.as_mut().ok_or(StoreError::Unavailable {
            op: "connect",
            reason: "no connection".into(),
        })
    }

    /// Makes the day partitions of `table` that times `ns` fall in (plain tables only; a
    /// hypertable makes its own chunks). Under an advisory lock, so that several netmonds
    /// making the same day do not collide.
    fn ensure_partitions(
        &mut self,
        table: &'static str,
        ns: impl Iterator<Item = i64>,
    ) -> Result<(), StoreError> {
        self.client()?;
        if self.timescale {
            return Ok(());
        }
        let mut days: Vec<i64> = ns.map(day_of).collect();
        days.sort_unstable();
        days.dedup();
        days.retain(|d| !self.partitions.contains(&(table, *d)));
        if days.is_empty() {
            return Ok(());
        }
        let mut sql = String::from("SELECT pg_advisory_xact_lock(1852665711);");
        for d in &days {
            sql.push_str(&partition_ddl(table, *d));
            sql.push(';');
        }
        let r = {
            let c = self.client()?;
            c.transaction().and_then(|mut tx| {
                tx.batch_execute(&sql)?;
                tx.commit()
            })
        };
        r.map_err(|e| self.err("create partitions", e))?;
        self.partitions.extend(days.into_iter().map(|d| (table, d)));
        Ok(())
    }

    fn upsert(&mut self, op: &'static str, sql: &str, json: &str) -> Result<(), StoreError> {
        let host = self.cfg.host.clone();
        let c = self.client()?;
        let r = c
            .transaction()
            .and_then(|mut tx| {
                tx.execute(sql, &[&host, &json])?;
                tx.commit()
            })
            .map(|_| ());
        r.map_err(|e| self.err(op, e))
    }
}

fn map_err(op: &'static str, e: postgres::Error) -> StoreError {
    if unreachable(&e) {
        StoreError::Unavailable {
            op,
            reason: e.to_string(),
        }
    } else {
        StoreError::Postgres { op, source: e }
    }
}

/// Creates or migrates the schema (one transaction, under an advisory lock so that several
/// netmonds starting together do not race) and sets up TimescaleDB when it is available.
/// Returns whether the tables are hypertables.
fn migrate(c: &mut Client, cfg: &PgConfig) -> Result<bool, StoreError> {
    let pe = |op| move |e| map_err(op, e);
    let mut tx = c.transaction().map_err(pe("begin migration"))?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(1852665710); \
         CREATE TABLE IF NOT EXISTS netmon_schema (version integer NOT NULL)",
    )
    .map_err(pe("create netmon_schema"))?;
    let version: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM netmon_schema", &[])
        .map_err(pe("read the schema version"))?
        .get(0);
    if version > PG_SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: cfg.url.clone().into(),
            found: i64::from(version),
            supported: i64::from(PG_SCHEMA_VERSION),
        });
    }
    // TimescaleDB: present already, or installable (needs shared_preload_libraries and the
    // right to create it); a refusal is rolled back to the savepoint and plain tables stay.
    let mut timescale = tx
        .query_opt(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'",
            &[],
        )
        .map_err(pe("look for timescaledb"))?
        .is_some();
    if !timescale && version == 0 {
        let mut sp = tx.savepoint("timescale").map_err(pe("savepoint"))?;
        if sp
            .batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            .is_ok()
        {
            sp.commit().map_err(pe("create extension timescaledb"))?;
            timescale = true;
        }
    }
    if version < 1 {
        // Without TimescaleDB, flows and series are partitioned by day of their time column
        // (partitions made on demand by the writes, [`PgStore::ensure_partitions`]).
        let (fp, sp) = if timescale {
            ("", "")
        } else {
            (
                " PARTITION BY RANGE (first_seen)",
                " PARTITION BY RANGE (start)",
            )
        };
        let v1 = V1
            .replace("{FLOWS_PARTITIONING}", fp)
            .replace("{SERIES_PARTITIONING}", sp);
        tx.batch_execute(&v1)
            .map_err(pe("create schema version 1"))?;
        if timescale {
            // Untested here (Debian's postgresql has no TimescaleDB): the hypertable path.
            tx.batch_execute(
                "SELECT create_hypertable('flows', 'first_seen', if_not_exists => TRUE); \
                 SELECT create_hypertable('series', 'start', if_not_exists => TRUE);",
            )
            .map_err(pe("create hypertables"))?;
        }
        tx.batch_execute(&format!(
            "CREATE UNIQUE INDEX flows_key ON flows ({FLOW_KEY})"
        ))
        .map_err(pe("create flows_key"))?;
        tx.execute("INSERT INTO netmon_schema (version) VALUES (1)", &[])
            .map_err(pe("record the schema version"))?;
    }
    if timescale {
        // Untested here: the retention policy follows the configuration at every connect.
        tx.batch_execute(
            "SELECT remove_retention_policy('flows', if_exists => TRUE); \
             SELECT remove_retention_policy('series', if_exists => TRUE);",
        )
        .map_err(pe("remove retention policies"))?;
        if let Some(age) = cfg.retention {
            let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            for t in ["flows", "series"] {
                tx.execute(
                    &format!(
                        "SELECT add_retention_policy('{t}', $1::bigint * interval '1 second')"
                    ),
                    &[&secs],
                )
                .map_err(pe("add a retention policy"))?;
            }
        }
    }
    tx.commit().map_err(pe("commit migration"))?;
    Ok(timescale)
}

fn to_json<T: serde::Serialize>(rows: &[&T]) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::Unsupported(json_error(&e)))
}

/// serde_json fails only on non-string map keys, which the rows do not have.
fn json_error(_: &serde_json::Error) -> &'static str {
    "rows that do not serialise to JSON"
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Registers run `run_id` of this host (a repeat changes nothing).
    fn insert_run(&mut self, run_id: u64, run: &RunInfo) -> Result<(), StoreError> {
        let host = self.cfg.host.clone();
        let id = i64_of(run_id);
        let c = self.client()?;
        let r = c.execute(
            &format!(
                "INSERT INTO runs (host, run_id, source, started, started_ns, version) \
                 VALUES ($1, $2, $3, {}, $4, $5) ON CONFLICT DO NOTHING",
                ts_expr("$4::bigint")
            ),
            &[&host, &id, &run.source, &run.started.0, &run.version],
        );
        r.map(|_| ()).map_err(|e| self.err("insert run", e))
    }
}

impl Store for PgStore {
    fn begin_run(&mut self, run: &RunInfo) -> Result<u64, StoreError> {
        let id = clock_run_id(run);
        self.insert_run(id, run)?;
        Ok(id)
    }

    fn begin_run_as(&mut self, run_id: u64, run: &RunInfo) -> Result<(), StoreError> {
        self.insert_run(run_id, run)
    }

    fn write_flows(&mut self, rows: &[FlowRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = dedup(rows, |r| (r.run_id, r.id), flow_newer);
        let json = to_json(&rows)?;
        self.ensure_partitions("flows", rows.iter().map(|r| r.first_seen.0))?;
        self.upsert("insert flows", &upsert_flows_sql(FLOW_KEY), &json)
    }

    fn write_series(&mut self, rows: &[SeriesRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = dedup(
            rows,
            |r| {
                (
                    r.run_id,
                    r.window_secs,
                    r.iface,
                    r.layer.clone(),
                    r.proto.clone(),
                    r.start,
                )
            },
            |a, b| a.covered_secs > b.covered_secs,
        );
        let json = to_json(&rows)?;
        self.ensure_partitions("series", rows.iter().map(|r| r.start.0))?;
        self.upsert("insert series", &upsert_series_sql(), &json)
    }

    fn write_alerts(&mut self, rows: &[AlertRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = dedup(
            rows,
            |r| (r.run_id, r.id),
            |a, b| (a.closed, a.last_seen) > (b.closed, b.last_seen),
        );
        let json = to_json(&rows)?;
        self.upsert("insert alerts", &upsert_alerts_sql(), &json)
    }

    /// Every write commits: nothing to do.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn query_flows(&mut self, _: &FlowQuery) -> Result<Page<FlowRow>, StoreError> {
        Err(StoreError::Unsupported(
            "querying flows (query the PostgreSQL tables with SQL)",
        ))
    }

    fn query_alerts(&mut self, _: &AlertQuery) -> Result<Page<AlertRow>, StoreError> {
        Err(StoreError::Unsupported(
            "querying alerts (query the PostgreSQL tables with SQL)",
        ))
    }

    fn query_series(&mut self, _: &SeriesQuery) -> Result<Page<SeriesRow>, StoreError> {
        Err(StoreError::Unsupported(
            "querying series (query the PostgreSQL tables with SQL)",
        ))
    }

    /// `max_age` deletes this host's old rows (without TimescaleDB; with it, its retention
    /// policy does the work and this deletes too). `max_bytes` is not applied.
    fn retention(
        &mut self,
        policy: &Retention,
        now: Timestamp,
    ) -> Result<RetentionStats, StoreError> {
        let Some(age) = policy.max_age else {
            return Ok(RetentionStats::default());
        };
        let cut = now
            .0
            .saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
        let host = self.cfg.host.clone();
        let c = self.client()?;
        let r = (|| {
            let mut tx = c.transaction()?;
            let flows = tx.execute(
                "DELETE FROM flows WHERE host = $1 AND last_seen_ns < $2",
                &[&host, &cut],
            )?;
            let series = tx.execute(
                "DELETE FROM series WHERE host = $1 AND end_ns < $2",
                &[&host, &cut],
            )?;
            let alerts = tx.execute(
                "DELETE FROM alerts WHERE host = $1 AND last_seen_ns < $2",
                &[&host, &cut],
            )?;
            tx.commit()?;
            Ok(RetentionStats {
                flows,
                series,
                alerts,
            })
        })();
        r.map_err(|e| self.err("retention", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_the_newest_of_a_key_in_first_order() {
        let a1 = FlowRow {
            id: 1,
            last_seen: Timestamp(5),
            ..FlowRow::default()
        };
        let b = FlowRow {
            id: 2,
            ..FlowRow::default()
        };
        let a2 = FlowRow {
            id: 1,
            last_seen: Timestamp(9),
            ..FlowRow::default()
        };
        let a0 = FlowRow {
            id: 1,
            last_seen: Timestamp(1),
            ..FlowRow::default()
        };
        let rows = [a1, b.clone(), a2.clone(), a0];
        let out = dedup(&rows, |r| (r.run_id, r.id), flow_newer);
        assert_eq!(out, vec![&a2, &b]);
    }

    #[test]
    fn a_bad_connection_string_is_refused_without_connecting() {
        let e = PgStore::new(PgConfig::new("host=x port=notaport", "h")).unwrap_err();
        assert!(!e.is_unavailable(), "{e}");
    }
}
