//! netmond's PostgreSQL sink against a real server (`NETMON_PG_URL`, a role that may create
//! databases; `.ci/run` starts Debian's PostgreSQL and sets it): a replay's flows arrive
//! exactly once with the counts `netmon flows` prints, and with the database unreachable they
//! wait in the spool — across a restart of the daemon — and arrive once it is back.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_netmond");

fn pg_url() -> Option<String> {
    match std::env::var("NETMON_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("NETMON_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "NETMON_PG_URL is not set (NETMON_REQUIRE_POSTGRES=1)"
            );
            eprintln!("skipped: NETMON_PG_URL is not set");
            None
        }
    }
}

/// The psql client itself. Debian's `psql` on the PATH is a wrapper that reads every
/// cluster's configuration first, and fails while another test of this file is creating or
/// dropping its own cluster; the version's binary does not look.
fn psql_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|v| v.path().join("bin/psql"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| PathBuf::from("psql"))
}

fn psql(url: &str, sql: &str) -> String {
    let o = Command::new(psql_bin())
        .args([url, "-AtqX", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        o.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A fresh database for one test; its URL.
fn database(url: &str, name: &str) -> String {
    psql(url, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(url, &format!("CREATE DATABASE {name}"));
    format!("{url} dbname={name}")
}

fn corpus_file(name: &str) -> Option<PathBuf> {
    netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).map(|c| c.dir().join(name))
}

fn replay(file: &Path, url: &str, spool: &Path) -> String {
    let o = common::run_netmond(
        &spool.with_extension("yaml"),
        &format!(
            "capture:\n  file: {}\nstorage:\n  enabled: false\n  postgres:\n    url: '{url}'\n    spool_dir: {}\napi:\n  enabled: false\nlog:\n  format: json\n",
            file.display(),
            spool.display()
        ),
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    err
}

/// (proto, src, sport, dst, dport, 4 counters) of every flow `netmon flows` makes, sorted.
fn netmon_flows(file: &Path) -> Vec<String> {
    use netmon_engine::{Engine, EngineConfig, EngineSink, FlowClass, FlowRecord};
    struct C(Vec<String>);
    impl EngineSink<FlowClass> for C {
        fn flow_ended(&mut self, f: &netmon_flow::Flow<FlowClass>, i: Option<&str>) {
            let r = FlowRecord::new(f, i);
            self.0.push(format!(
                "{}|{}|{}|{}|{}|{}|{}|{}|{}",
                r.proto.0,
                r.src_ip,
                r.src_port.map(|p| p.to_string()).unwrap_or_default(),
                r.dst_ip,
                r.dst_port.map(|p| p.to_string()).unwrap_or_default(),
                r.packets_c2s,
                r.bytes_c2s,
                r.packets_s2c,
                r.bytes_s2c
            ));
        }
    }
    let mut src = netmon_capture::open_file(file).unwrap();
    let mut c = C(Vec::new());
    Engine::classifying(EngineConfig::default())
        .unwrap()
        .run(&mut src, &mut c);
    c.0.sort();
    c.0
}

fn stored(url: &str, run: Option<&str>) -> Vec<String> {
    let filter = run
        .map(|r| format!(" WHERE run_id = {r}"))
        .unwrap_or_default();
    let mut v: Vec<String> = psql(
        url,
        &format!(
            "SELECT proto, host(src_ip), coalesce(src_port::text, ''), host(dst_ip), \
             coalesce(dst_port::text, ''), packets_c2s, bytes_c2s, packets_s2c, bytes_s2c \
             FROM flows{filter}"
        ),
    )
    .lines()
    .map(str::to_owned)
    .collect();
    v.sort();
    v
}

#[test]
fn a_replay_reaches_postgres_exactly_once() {
    let Some(url) = pg_url() else { return };
    let Some(file) = corpus_file("ndpi_1kxun.pcap") else {
        return;
    };
    let db = database(&url, &format!("netmond_once_{}", std::process::id()));
    let spool = common::temp("pg-once");
    let _ = std::fs::remove_dir_all(&spool);
    replay(&file, &db, &spool);
    let want = netmon_flows(&file);
    assert_eq!(stored(&db, None), want);
    // The host is on every row, one run, and the spool is empty.
    assert_eq!(
        psql(
            &db,
            "SELECT count(DISTINCT host), count(DISTINCT run_id) FROM flows"
        )
        .trim(),
        "1|1"
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    // A second replay of the same file: a second run beside the first, nothing duplicated.
    replay(&file, &db, &spool);
    assert_eq!(
        psql(&db, "SELECT count(*) FROM flows").trim(),
        (2 * want.len()).to_string()
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM runs").trim(), "2");
    let _ = std::fs::remove_dir_all(&spool);
}

/// The database unreachable (a wrong port stands for a stopped server): two runs of the daemon
/// finish with exit 0 and leave their batches in the spool; a third run with the right address
/// drains them first, in order — every flow of every run exactly once.
#[test]
fn an_outage_spools_across_restarts_and_drains_once() {
    let Some(url) = pg_url() else { return };
    let Some(file) = corpus_file("ndpi_synscan.pcap") else {
        return;
    };
    let db = database(&url, &format!("netmond_outage_{}", std::process::id()));
    let down = format!("{db} port=1 connect_timeout=1");
    let spool = common::temp("pg-outage");
    let _ = std::fs::remove_dir_all(&spool);
    let want = netmon_flows(&file);
    replay(&file, &down, &spool);
    let spooled = std::fs::read_dir(&spool).unwrap().count();
    assert!(spooled > 0, "nothing spooled");
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'flows'"
        )
        .trim(),
        "0"
    );
    // Restarted while still down: the first run's spool is kept, the second adds to it.
    replay(&file, &down, &spool);
    assert!(std::fs::read_dir(&spool).unwrap().count() > spooled);
    // Back: the third run drains both before its own rows.
    replay(&file, &db, &spool);
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spool not drained"
    );
    let runs: Vec<String> = psql(&db, "SELECT run_id FROM runs ORDER BY run_id")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    for r in &runs {
        assert_eq!(stored(&db, Some(r)), want, "run {r}");
    }
    let _ = std::fs::remove_dir_all(&spool);
}

/// A PostgreSQL cluster of its own for the outage test (so stopping it disturbs no other test):
/// made with Debian's `pg_createcluster` on a free port, dropped at the end.
struct Cluster {
    version: String,
    name: String,
    port: u16,
}

impl Cluster {
    fn create() -> Option<Cluster> {
        let have = Command::new("pg_createcluster")
            .arg("--help")
            .output()
            .is_ok();
        let root = Command::new("id").arg("-u").output().ok()?.stdout == b"0\n";
        if !have || !root {
            assert!(
                std::env::var("NETMON_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "the outage test needs root and pg_createcluster (Debian's postgresql-common)"
            );
            eprintln!("skipped: needs root and pg_createcluster");
            return None;
        }
        let list = Command::new("pg_lsclusters").arg("-h").output().ok()?;
        let version = String::from_utf8_lossy(&list.stdout)
            .split_whitespace()
            .next()?
            .to_owned();
        let c = Cluster {
            version,
            name: format!("netmond{}", std::process::id()),
            port: common::free_port(),
        };
        let ok = |cmd: &mut Command| {
            let o = cmd.output().unwrap();
            assert!(
                o.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        ok(Command::new("pg_createcluster").args([&c.version, &c.name, "-p", &c.port.to_string()]));
        c.ctl("start");
        let sql = |q: &str| {
            ok(Command::new("su").args([
                "postgres",
                "-c",
                &format!("psql -p {} -qc \"{q}\"", c.port),
            ]));
        };
        sql("CREATE ROLE netmon LOGIN PASSWORD 'netmon'");
        sql("CREATE DATABASE netmon OWNER netmon");
        Some(c)
    }

    fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=netmon password=netmon dbname=netmon connect_timeout=2",
            self.port
        )
    }

    fn ctl(&self, what: &str) {
        let o = Command::new("pg_ctlcluster")
            .args([&self.version, &self.name, what, "-m", "fast"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", &self.version, &self.name])
            .output();
    }
}

/// Starts netmond replaying `file` at 4x into `url` with the API on `port`.
fn start_daemon(file: &Path, url: &str, spool: &Path, port: u16, tag: &str) -> std::process::Child {
    let cfg = spool.with_extension(format!("{tag}.yaml"));
    std::fs::write(
        &cfg,
        format!(
            "capture:\n  file: {}\nreplay:\n  speed: 4x\nstorage:\n  enabled: false\n  postgres:\n    url: '{url}'\n    spool_dir: {}\napi:\n  bind: 127.0.0.1:{port}\nlog:\n  format: json\n",
            file.display(),
            spool.display()
        ),
    )
    .unwrap();
    Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn status(port: u16) -> Option<serde_json::Value> {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    let (code, _, body) = common::get_raw(addr, "/api/v1/status", "");
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// SIGTERM; the exit code and the `records` count of its "pipeline drained" log line.
fn stop(mut child: std::process::Child) -> (Option<i32>, u64) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let code = child.wait().unwrap().code();
    let records = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "pipeline drained")
        .and_then(|l| l["fields"]["records"].as_u64())
        .unwrap_or_else(|| panic!("no drained line: {log}"));
    (code, records)
}

/// The outage: PostgreSQL stopped in the middle of a paced replay, netmond restarted
/// once during the outage (its spool survives), PostgreSQL started again 15 s after it stopped
/// (the issue says 30 s; 15 s keeps the test short and spans both daemon runs): every flow of
/// both runs is in the table exactly once.
#[test]
fn postgres_stopped_mid_replay_and_a_restart_lose_nothing() {
    if pg_url().is_none() {
        return;
    }
    let Some(file) = corpus_file("ndpi_synscan.pcap") else {
        return;
    };
    let Some(cluster) = Cluster::create() else {
        return;
    };
    let spool = common::temp("pg-stop");
    let _ = std::fs::remove_dir_all(&spool);
    let url = cluster.url();
    // First daemon: stopped by SIGTERM 4 s into its replay, after the server went down at 2 s.
    let port = common::free_port();
    let first = start_daemon(&file, &url, &spool, port, "first");
    std::thread::sleep(Duration::from_secs(2));
    cluster.ctl("stop");
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let (code, first_records) = stop(first);
    assert_eq!(code, Some(0));
    assert!(first_records > 0);
    // Second daemon, during the outage: its rows wait in the spool behind the first's.
    let port = common::free_port();
    let second = start_daemon(&file, &url, &spool, port, "second");
    let t = Instant::now();
    while status(port).is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "second daemon not up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let spooled = |port| status(port).map_or(0, |s| s["sinks"][0]["pending"].as_u64().unwrap_or(0));
    let t = Instant::now();
    while spooled(port) == 0 {
        assert!(t.elapsed() < Duration::from_secs(20), "nothing spooled");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status(port).unwrap()["sinks"][0]["connected"], false);
    std::thread::sleep(Duration::from_secs(15).saturating_sub(down_at.elapsed()));
    cluster.ctl("start");
    // The spool drains (retries back off up to 60 s) and the replay ends (23 s at 4x).
    let t = Instant::now();
    loop {
        let s = status(port).unwrap_or_default();
        let pg = &s["sinks"][0];
        if pg["connected"] == true && pg["pending"] == 0 && t.elapsed() > Duration::from_secs(4) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "spool not drained: {s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (code, second_records) = stop(second);
    assert_eq!(code, Some(0));
    let want = netmon_flows(&file);
    assert_eq!(second_records as usize, want.len());
    let runs: Vec<String> = psql(&url, "SELECT run_id FROM runs ORDER BY run_id")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let count = |r: &str| {
        psql(
            &url,
            &format!("SELECT count(*) FROM flows WHERE run_id = {r}"),
        )
        .trim()
        .parse::<u64>()
        .unwrap()
    };
    assert_eq!(count(&runs[0]), first_records, "the first run's flows");
    assert_eq!(stored(&url, Some(&runs[1])), want, "the second run's flows");
    let _ = std::fs::remove_dir_all(&spool);
}
