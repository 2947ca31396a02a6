//! PgStore and SpoolingStore against a real PostgreSQL: `NETMON_PG_URL` (a role allowed to
//! create databases; `.ci/run` sets it up). Unset: the tests print why and pass, unless
//! `NETMON_REQUIRE_POSTGRES=1`. Each test works in a database of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use netmon_store::{
    FlowRow, PgConfig, PgStore, RunInfo, SeriesRow, SpoolConfig, SpoolingStore, Store,
};
use netmon_types::Timestamp;
use postgres::{Client, NoTls};

/// A fresh database (dropped when the guard goes): its connection string.
struct Db {
    admin: String,
    name: String,
    url: String,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.admin, NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn db(test: &str) -> Option<Db> {
    let Ok(admin) = std::env::var("NETMON_PG_URL") else {
        assert!(
            std::env::var("NETMON_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "NETMON_REQUIRE_POSTGRES=1 but NETMON_PG_URL is unset"
        );
        eprintln!("skipped: NETMON_PG_URL is unset (see .ci/run)");
        return None;
    };
    let name = format!("netmon_t_{test}_{}", std::process::id());
    let mut c = Client::connect(&admin, NoTls).expect("connect NETMON_PG_URL");
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let url = format!("{admin} dbname={name}");
    Some(Db { admin, name, url })
}

fn flow(run_id: u64, id: u64, last: i64, packets: u64) -> FlowRow {
    FlowRow {
        run_id,
        id,
        proto: 6,
        src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: Some(40000),
        dst_ip: "2001:db8::1".parse().unwrap(),
        dst_port: Some(443),
        packets_c2s: packets,
        first_seen: Timestamp::from_secs_nanos(1_700_000_000, 123_456_789),
        last_seen: Timestamp::from_secs_nanos(1_700_000_000 + last, 0),
        vlan: vec![5],
        app: Some("tls".into()),
        sni: Some("example.com".into()),
        ..FlowRow::default()
    }
}

fn count(url: &str, sql: &str) -> i64 {
    let mut c = Client::connect(url, NoTls).unwrap();
    c.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn schema_is_created_and_writes_are_idempotent_upserts() {
    let Some(db) = db("upsert") else { return };
    let mut s = PgStore::connect(PgConfig::new(&db.url, "sensor1")).unwrap();
    assert_eq!(s.schema_version().unwrap(), 1);
    assert!(!s.timescale(), "Debian's postgresql has no timescaledb");
    let run = s
        .begin_run(&RunInfo {
            host: "sensor1".into(),
            started: Timestamp(77),
            ..RunInfo::default()
        })
        .unwrap();
    assert_eq!(run, 77);
    let batch: Vec<FlowRow> = (0..100).map(|i| flow(run, i, 1, 1)).collect();
    s.write_flows(&batch).unwrap();
    s.write_flows(&batch).unwrap(); // a retried batch
    assert_eq!(count(&db.url, "SELECT count(*) FROM flows"), 100);
    // Newer replaces, older does not; a key twice in one batch keeps the newer.
    s.write_flows(&[flow(run, 1, 5, 3), flow(run, 1, 9, 3), flow(run, 2, 0, 9)])
        .unwrap();
    assert_eq!(
        count(
            &db.url,
            "SELECT (last_seen_ns / 1000000000 - 1700000000) FROM flows WHERE id = 1"
        ),
        9
    );
    assert_eq!(
        count(&db.url, "SELECT packets_c2s FROM flows WHERE id = 2"),
        1
    );
    // A second host's flows with the same ids are rows of their own.
    let mut other = PgStore::connect(PgConfig::new(&db.url, "sensor2")).unwrap();
    other.write_flows(&batch).unwrap();
    assert_eq!(count(&db.url, "SELECT count(*) FROM flows"), 200);
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) FROM flows WHERE host = 'sensor2' AND src_ip = '10.0.0.1' AND vlan = '[5]'"
        ),
        100
    );
    // Reconnecting finds the schema in place.
    drop(s);
    let mut s = PgStore::connect(PgConfig::new(&db.url, "sensor1")).unwrap();
    assert_eq!(s.schema_version().unwrap(), 1);
}

/// Without TimescaleDB `flows` and `series` are partitioned by day of their time column:
/// writes spanning three days make three partitions each, a row lands in its day's partition,
/// and a time-range query touches only the partitions of its days.
#[test]
fn plain_tables_are_partitioned_by_day() {
    let Some(db) = db("partitions") else { return };
    let mut s = PgStore::connect(PgConfig::new(&db.url, "sensor1")).unwrap();
    const DAY: i64 = 86_400;
    let t0 = 1_700_006_400; // a UTC midnight
    let flows: Vec<FlowRow> = (0..30u64)
        .map(|i| {
            let mut f = flow(1, i, 1, 1);
            f.first_seen = Timestamp::from_secs_nanos(t0 + (i as i64 % 3) * DAY + 60, 0);
            f.last_seen = Timestamp::from_secs_nanos(t0 + (i as i64 % 3) * DAY + 90, 0);
            f
        })
        .collect();
    s.write_flows(&flows).unwrap();
    s.write_flows(&flows).unwrap(); // retried: same partitions, no duplicates
    let series: Vec<SeriesRow> = (0..2)
        .map(|d| SeriesRow {
            run_id: 1,
            start: Timestamp::from_secs_nanos(t0 + d * DAY, 0),
            end: Timestamp::from_secs_nanos(t0 + d * DAY + 1, 0),
            layer: "all".into(),
            proto: "all".into(),
            window_secs: 1,
            covered_secs: 1,
            ..SeriesRow::default()
        })
        .collect();
    s.write_series(&series).unwrap();
    let parts = |t: &str| {
        count(
            &db.url,
            &format!("SELECT count(*) FROM pg_inherits WHERE inhparent = '{t}'::regclass"),
        )
    };
    assert_eq!(parts("flows"), 3);
    assert_eq!(parts("series"), 2);
    assert_eq!(count(&db.url, "SELECT count(*) FROM flows"), 30);
    let day = (t0 + DAY) / DAY;
    assert_eq!(
        count(&db.url, &format!("SELECT count(*) FROM flows_d{day}")),
        10
    );
    // A one-day range is answered from that day's partition alone.
    let mut c = Client::connect(&db.url, NoTls).unwrap();
    let plan: Vec<String> = c
        .query(
            &format!(
                "EXPLAIN SELECT count(*) FROM flows WHERE first_seen >= to_timestamp({}) \
                 AND first_seen < to_timestamp({})",
                t0 + DAY,
                t0 + 2 * DAY
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains(&format!("flows_d{day}")), "{plan}");
    assert!(!plan.contains(&format!("flows_d{}", day - 1)), "{plan}");
}

#[test]
fn an_unreachable_server_spools_and_a_restarted_sink_drains_into_postgres() {
    let Some(db) = db("spool") else { return };
    let dir = tempfile::tempdir().unwrap();
    let spool = SpoolConfig {
        dir: dir.path().to_path_buf(),
        max_bytes: 64 << 20,
    };
    // Nothing listens on port 1: connection refused.
    let dead = PgStore::new(PgConfig::new("host=127.0.0.1 port=1 user=x", "s1")).unwrap();
    let mut s = SpoolingStore::open(dead, &spool).unwrap();
    let run = s
        .begin_run(&RunInfo {
            host: "s1".into(),
            started: Timestamp(5),
            ..RunInfo::default()
        })
        .unwrap();
    let batch: Vec<FlowRow> = (0..500).map(|i| flow(run, i, 1, 1)).collect();
    s.write_flows(&batch).unwrap();
    s.write_flows(&batch[..100]).unwrap(); // a repeat: must not duplicate
    let st = s.status();
    assert!(!st.connected());
    assert_eq!(st.spooled_rows(), 600);
    assert!(st.last_error().unwrap().contains("unreachable"));
    drop(s);
    // The restart, with the database reachable.
    let live = PgStore::new(PgConfig::new(&db.url, "s1")).unwrap();
    let mut s = SpoolingStore::open(live, &spool).unwrap();
    assert_eq!(s.status().spooled_rows(), 600);
    s.flush().unwrap();
    assert_eq!(s.status().spooled_rows(), 0);
    assert!(s.status().connected());
    assert_eq!(count(&db.url, "SELECT count(*) FROM flows"), 500);
    assert_eq!(
        count(&db.url, "SELECT count(*) FROM runs WHERE run_id = 5"),
        1
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Throughput of the sink: 100 000 flows in batches of 1 024 (what netmond sends).
/// `NETMON_PG_URL=... cargo test --release -p netmon-store --features postgres --test postgres
/// -- --nocapture throughput`
#[test]
fn throughput() {
    let Some(db) = db("tput") else { return };
    let mut s = PgStore::connect(PgConfig::new(&db.url, "bench")).unwrap();
    let rows: Vec<FlowRow> = (0..100_000u64).map(|i| flow(1, i, 1, 2)).collect();
    let t = Instant::now();
    for b in rows.chunks(1024) {
        s.write_flows(b).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(count(&db.url, "SELECT count(*) FROM flows"), 100_000);
    eprintln!(
        "pg sink: {} rows in {secs:.2} s = {:.0} rows/s",
        rows.len(),
        rows.len() as f64 / secs
    );
}
