//! The SQLite schema and its migrations, keyed on `PRAGMA user_version`.
//!
//! A netmon database carries `PRAGMA application_id = 0x6e6d6f6e` ("nmon") and its schema
//! version in `PRAGMA user_version`. Opening read-write applies every migration above the
//! file's version, each in one transaction with the version bump, so a crash mid-migration
//! leaves the previous version intact. A file of a newer version is refused.

use std::path::Path;

use core::net::IpAddr;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// `PRAGMA application_id` of a netmon database: "nmon" in ASCII.
pub const APPLICATION_ID: i64 = 0x6e6d_6f6e;

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: i64 = 3;

/// One schema step: `before`, then `rewrite` (row conversions SQL cannot express), then
/// `after`, all in one transaction.
struct Migration {
    before: &'static str,
    rewrite: Option<fn(&Connection) -> rusqlite::Result<()>>,
    after: &'static str,
}

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        before: V1,
        rewrite: None,
        after: "",
    },
    Migration {
        before: V2_BEFORE,
        rewrite: Some(v2_addresses_to_blobs),
        after: V2_AFTER,
    },
    Migration {
        before: V3_BEFORE,
        rewrite: Some(v3_file_keys),
        after: V3_AFTER,
    },
];

/// `flows.chunk` is `seq >> CHUNK_SHIFT`: keep in step with [`V2_BEFORE`].
pub(crate) const CHUNK_SHIFT: u32 = 12;

/// Version 1.
///
/// Times are integer nanoseconds since the Unix epoch on the packets' clock (`*_ns`), addresses
/// are text (IPv4 dotted, IPv6 RFC 5952), lists and nested objects are JSON text (`NULL` when
/// empty or absent). `seq` is each table's storage order and the tie-breaker of paging.
const V1: &str = r#"
CREATE TABLE runs (
    run_id      INTEGER PRIMARY KEY,
    host        TEXT NOT NULL,
    source      TEXT NOT NULL,
    started_ns  INTEGER NOT NULL,
    version     TEXT NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('max_duration_ns', 0);

CREATE TABLE flows (
    seq               INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL,
    id                INTEGER NOT NULL,
    proto             INTEGER NOT NULL,
    src_ip            TEXT NOT NULL,
    src_port          INTEGER,
    dst_ip            TEXT NOT NULL,
    dst_port          INTEGER,
    icmp_id           INTEGER,
    packets_c2s       INTEGER NOT NULL,
    bytes_c2s         INTEGER NOT NULL,
    packets_s2c       INTEGER NOT NULL,
    bytes_s2c         INTEGER NOT NULL,
    payload_bytes_c2s INTEGER NOT NULL,
    payload_bytes_s2c INTEGER NOT NULL,
    first_seen_ns     INTEGER NOT NULL,
    last_seen_ns      INTEGER NOT NULL,
    duration_ns       INTEGER NOT NULL,
    state             TEXT NOT NULL,
    end_reason        TEXT,
    vlan              TEXT,
    iface             INTEGER NOT NULL,
    iface_name        TEXT,
    tcp_c2s           TEXT,
    tcp_s2c           TEXT,
    icmp_errors       INTEGER NOT NULL,
    quoted            TEXT,
    outer_key         TEXT,
    app               TEXT COLLATE NOCASE,
    app_guess         INTEGER NOT NULL,
    sni               TEXT,
    alpn              TEXT,
    alpn_server       TEXT,
    tls_version       TEXT,
    ech               INTEGER NOT NULL,
    ja4               TEXT,
    http              TEXT,
    dns               TEXT,
    quic_version      TEXT,
    ssh_client        TEXT,
    ssh_server        TEXT,
    stun_software     TEXT,
    domain            TEXT,
    packets           INTEGER GENERATED ALWAYS AS (packets_c2s + packets_s2c) VIRTUAL,
    bytes             INTEGER GENERATED ALWAYS AS (bytes_c2s + bytes_s2c) VIRTUAL,
    bucket            INTEGER GENERATED ALWAYS AS (first_seen_ns >> 36) VIRTUAL
);
-- Each index costs insert throughput (a B-tree descent per row; keys spread over the tree
-- dirty a page per row and fall out of the cache as the table grows): only selective
-- lookups are indexed. Endpoint indexes lead with `bucket` (first_seen in 68.7 s slices), so
-- new rows land in the small, cached region of the current slices: about 1.5 times the rows
-- per second of plain (src_ip) indexes at a million rows, and flat as the table grows.
-- Queries list the slices of their time range (bounded by the data's first and last).
-- Time ranges use first_seen (a flow lasting past `from` started at most
-- meta.max_duration_ns before it); sorts by bytes or packets sort the rows of the range.
CREATE UNIQUE INDEX flows_key ON flows (run_id, id);
CREATE INDEX flows_first_seen ON flows (first_seen_ns);
CREATE INDEX flows_src_ip ON flows (bucket, src_ip);
CREATE INDEX flows_dst_ip ON flows (bucket, dst_ip);
CREATE INDEX flows_src_port ON flows (bucket, src_port);
CREATE INDEX flows_dst_port ON flows (bucket, dst_port);
CREATE INDEX flows_app ON flows (app);

-- Every name of a flow (SNI, HTTP Hosts, DNS questions, domain), lower-cased, without a
-- trailing dot, reversed: a domain and its subdomains are one range of the primary key.
CREATE TABLE flow_names (
    name_rev TEXT NOT NULL,
    flow_seq INTEGER NOT NULL,
    PRIMARY KEY (name_rev, flow_seq)
) WITHOUT ROWID;
CREATE INDEX flow_names_seq ON flow_names (flow_seq);
CREATE TRIGGER flows_delete_names AFTER DELETE ON flows BEGIN
    DELETE FROM flow_names WHERE flow_seq = old.seq;
END;

CREATE TABLE series (
    seq             INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL,
    start_ns        INTEGER NOT NULL,
    end_ns          INTEGER NOT NULL,
    iface           INTEGER NOT NULL,
    iface_name      TEXT,
    layer           TEXT NOT NULL,
    proto           TEXT NOT NULL,
    window_secs     INTEGER NOT NULL,
    covered_secs    INTEGER NOT NULL,
    packets         INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    new_flows       INTEGER NOT NULL,
    pps             REAL NOT NULL,
    bps             REAL NOT NULL,
    new_flows_per_s REAL NOT NULL,
    active_flows    INTEGER NOT NULL
);
CREATE UNIQUE INDEX series_key ON series (run_id, window_secs, iface, layer, proto, start_ns);
CREATE INDEX series_window_start ON series (window_secs, start_ns);
CREATE INDEX series_start ON series (start_ns);
CREATE INDEX series_end ON series (end_ns);

CREATE TABLE alerts (
    seq           INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL,
    id            INTEGER NOT NULL,
    ts_ns         INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    source        TEXT NOT NULL,
    target        TEXT,
    evidence      TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns  INTEGER NOT NULL,
    closed        INTEGER NOT NULL
);
CREATE UNIQUE INDEX alerts_key ON alerts (run_id, id);
CREATE INDEX alerts_ts ON alerts (ts_ns);
CREATE INDEX alerts_last_seen ON alerts (last_seen_ns);
"#;

/// Version 2: cheaper flow inserts.
///
/// * The endpoint and app indexes lead with `chunk` (`seq >> 12`: 4 096 consecutive rows)
///   instead of the 68.7 s first_seen slice: new rows land in the few pages of the newest
///   chunk (a slice held every flow of a minute: hundreds of pages per index at high flow
///   rates), so each index insert descends through pages the CPU has cached and a transaction
///   dirties a handful of pages per index. `flow_chunks` holds the first_seen range of each
///   chunk, so a query with a time range looks up only the chunks that can hold it.
/// * The first_seen slice column `bucket`, which only served those indexes, is dropped.
/// * Addresses are BLOBs: 4 bytes IPv4, 16 bytes IPv6 (smaller keys, memcmp order). Text
///   addresses of version 1 are converted (and still read, should one be written by hand).
const V2_BEFORE: &str = r#"
DROP INDEX flows_src_ip;
DROP INDEX flows_dst_ip;
DROP INDEX flows_src_port;
DROP INDEX flows_dst_port;
DROP INDEX flows_app;
ALTER TABLE flows DROP COLUMN bucket;
ALTER TABLE flows ADD COLUMN chunk INTEGER GENERATED ALWAYS AS (seq >> 12) VIRTUAL;
"#;

const V2_AFTER: &str = r#"
CREATE INDEX flows_src_ip ON flows (chunk, src_ip);
CREATE INDEX flows_dst_ip ON flows (chunk, dst_ip);
CREATE INDEX flows_src_port ON flows (chunk, src_port);
CREATE INDEX flows_dst_port ON flows (chunk, dst_port);
CREATE INDEX flows_app ON flows (chunk, app);
CREATE TABLE flow_chunks (
    chunk        INTEGER PRIMARY KEY,
    min_first_ns INTEGER NOT NULL,
    max_first_ns INTEGER NOT NULL
);
INSERT INTO flow_chunks (chunk, min_first_ns, max_first_ns)
    SELECT chunk, min(first_seen_ns), max(first_seen_ns) FROM flows GROUP BY chunk;
"#;

/// Version 3: the endpoint, port, app and name lookups move from SQLite indexes (a B-tree
/// insert per flow and value) to per-chunk key summaries, `flow_keys` (see [`crate::keys`]):
/// a transaction appends to a few hundred small BLOBs instead.
///
/// * `flow_keys (chunk, bucket, part, entries)`: filled from the stored rows (`flow_names` gives
///   the names).
/// * `flows` keeps its key `(run_id, id)` and `first_seen_ns` indexes; the five chunk indexes,
///   `flow_names`, its index and its delete trigger go.
/// * `meta.next_seq`: the next flow `seq`. Seqs are never handed out twice, even after the
///   newest rows were deleted: a summary may still name a deleted row's seq.
const V3_BEFORE: &str = r#"
CREATE TABLE flow_keys (
    chunk   INTEGER NOT NULL,
    bucket  INTEGER NOT NULL,
    part    INTEGER NOT NULL,
    entries BLOB NOT NULL,
    PRIMARY KEY (chunk, bucket, part)
) WITHOUT ROWID;
INSERT INTO meta (key, value) SELECT 'next_seq', coalesce(max(seq), 0) + 1 FROM flows;
"#;

const V3_AFTER: &str = r#"
DROP INDEX flows_src_ip;
DROP INDEX flows_dst_ip;
DROP INDEX flows_src_port;
DROP INDEX flows_dst_port;
DROP INDEX flows_app;
DROP TRIGGER flows_delete_names;
DROP TABLE flow_names;
"#;

/// Files the values of every stored flow in `flow_keys`, in batches of [`REWRITE_BATCH`]
/// rows (memory stays bounded). An address that does not decode (damaged, left as text by
/// version 2) is not filed.
fn v3_file_keys(conn: &Connection) -> rusqlite::Result<()> {
    let mut read = conn.prepare(
        "SELECT seq, src_ip, dst_ip, src_port, dst_port, app FROM flows WHERE seq > ?1 \
         ORDER BY seq LIMIT ?2",
    )?;
    let mut names = conn.prepare(
        "SELECT flow_seq, name_rev FROM flow_names WHERE flow_seq > ?1 AND flow_seq <= ?2",
    )?;
    let mut keys = crate::keys::KeyBuf::default();
    let mut after = i64::MIN;
    loop {
        let mut last = None;
        let mut rows = read.query(rusqlite::params![after, REWRITE_BATCH])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            last = Some(seq);
            let src = ip_from_value(row.get_ref(1)?);
            let dst = ip_from_value(row.get_ref(2)?);
            let port = |i| -> rusqlite::Result<Option<u16>> {
                Ok(row
                    .get::<_, Option<i64>>(i)?
                    .and_then(|p| u16::try_from(p).ok()))
            };
            let app: Option<String> = row.get(5)?;
            keys.add_flow(seq, [src, dst], [port(3)?, port(4)?], app.as_deref(), &[]);
        }
        drop(rows);
        let Some(last) = last else {
            return Ok(());
        };
        let mut n = names.query([after, last])?;
        while let Some(row) = n.next()? {
            let seq: i64 = row.get(0)?;
            if let rusqlite::types::ValueRef::Text(rev) = row.get_ref(1)? {
                keys.add_name(seq, rev);
            }
        }
        drop(n);
        keys.write(conn, after.saturating_add(1))?;
        after = last;
    }
}

/// An address as stored from version 2 on: the 4 or 16 bytes of the address.
pub(crate) fn ip_bytes(ip: &IpAddr) -> IpBytes {
    match ip {
        IpAddr::V4(a) => IpBytes::V4(a.octets()),
        IpAddr::V6(a) => IpBytes::V6(a.octets()),
    }
}

/// The stored bytes of an address (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl IpBytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            IpBytes::V4(b) => b,
            IpBytes::V6(b) => b,
        }
    }
}

/// A stored address: a 4- or 16-byte BLOB, or text (version 1, or written by hand).
pub(crate) fn ip_from_value(v: ValueRef<'_>) -> Option<IpAddr> {
    match v {
        ValueRef::Blob(b) => {
            if let Ok(a) = <[u8; 4]>::try_from(b) {
                Some(IpAddr::from(a))
            } else {
                <[u8; 16]>::try_from(b).ok().map(IpAddr::from)
            }
        }
        ValueRef::Text(t) => core::str::from_utf8(t).ok()?.parse().ok(),
        _ => None,
    }
}

/// Converts version 1's text addresses to BLOBs; a value that is not an address is left as
/// it was (reading it reports the row as damaged, as before).
///
/// In batches of [`REWRITE_BATCH`] rows read ahead of their updates, in `seq` order: the rows
/// are never changed under a running `SELECT` of the same table (SQLite leaves what such a
/// scan then sees undefined), and memory stays bounded however large the file.
fn v2_addresses_to_blobs(conn: &Connection) -> rusqlite::Result<()> {
    let mut read = conn.prepare(
        "SELECT seq, src_ip, dst_ip FROM flows WHERE seq > ?1 \
         AND (typeof(src_ip) = 'text' OR typeof(dst_ip) = 'text') ORDER BY seq LIMIT ?2",
    )?;
    let mut write = conn.prepare(
        "UPDATE flows SET src_ip = coalesce(?2, src_ip), dst_ip = coalesce(?3, dst_ip) WHERE seq = ?1",
    )?;
    let conv = |v: ValueRef<'_>| ip_from_value(v).map(|ip| ip_bytes(&ip).as_slice().to_vec());
    let mut after = i64::MIN;
    // (seq, converted source, converted destination): `None` leaves the value as it is.
    type Rewrite = (i64, Option<Vec<u8>>, Option<Vec<u8>>);
    let mut batch: Vec<Rewrite> = Vec::new();
    loop {
        batch.clear();
        let mut rows = read.query(rusqlite::params![after, REWRITE_BATCH])?;
        while let Some(row) = rows.next()? {
            batch.push((row.get(0)?, conv(row.get_ref(1)?), conv(row.get_ref(2)?)));
        }
        drop(rows);
        let Some(&(last, _, _)) = batch.last() else {
            return Ok(());
        };
        for (seq, src, dst) in &batch {
            write.execute(rusqlite::params![seq, src, dst])?;
        }
        after = last;
    }
}

/// Rows [`v2_addresses_to_blobs`] reads before it writes them.
const REWRITE_BATCH: i64 = 4096;

/// The file's identity and version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) application_id: i64,
    pub(crate) version: i64,
    pub(crate) objects: i64,
}

pub(crate) fn identity(conn: &Connection, path: &Path) -> Result<Identity, StoreError> {
    let read = || -> rusqlite::Result<Identity> {
        Ok(Identity {
            application_id: conn.query_row("PRAGMA application_id", [], |r| r.get(0))?,
            version: conn.query_row("PRAGMA user_version", [], |r| r.get(0))?,
            objects: conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?,
        })
    };
    read().map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotNetmon {
            path: path.to_path_buf(),
            reason: "the file is not a SQLite database".into(),
        },
        _ => StoreError::sqlite(path, "read the schema version", e),
    })
}

/// Refuses files that are not ours or too new. `Ok(true)` when the file is new (empty).
pub(crate) fn check(id: Identity, path: &Path) -> Result<bool, StoreError> {
    if id.application_id == 0 && id.version == 0 && id.objects == 0 {
        return Ok(true);
    }
    if id.application_id != APPLICATION_ID {
        return Err(StoreError::NotNetmon {
            path: path.to_path_buf(),
            reason: if id.application_id == 0 {
                format!(
                    "a SQLite database of another program: it holds {} tables or indexes and no netmon application id",
                    id.objects
                )
            } else {
                format!(
                    "a SQLite database with application id {:#x}",
                    id.application_id
                )
            },
        });
    }
    if id.version < 0 {
        return Err(StoreError::NotNetmon {
            path: path.to_path_buf(),
            reason: format!("negative schema version {}", id.version),
        });
    }
    if id.version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: id.version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(false)
}

/// Brings the schema up to [`SCHEMA_VERSION`]. Each step runs in an immediate transaction that
/// re-reads the version first, so two processes opening a new file at once migrate it once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = |e| StoreError::sqlite(path, "migrate the schema", e);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let id = identity(&tx, path)?;
        check(id, path)?;
        let Some(m) = usize::try_from(id.version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        tx.execute_batch(m.before).map_err(err)?;
        if let Some(rewrite) = m.rewrite {
            rewrite(&tx).map_err(err)?;
        }
        tx.execute_batch(m.after).map_err(err)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(err)?;
        tx.pragma_update(None, "user_version", id.version + 1)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
}
