//! netmond end to end: replaying corpus captures, serving every endpoint, stopping cleanly on
//! SIGTERM, and one-line errors for bad configurations.

mod common;

use common::{free_port, temp};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_netmond");

fn corpus_file(name: &str) -> Option<PathBuf> {
    netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).map(|c| c.dir().join(name))
}

/// A GET over a fresh connection: status code and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, head, body) = common::get_raw(addr, path, "");
    let head = head.as_str();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

struct Daemon {
    child: Child,
    addr: SocketAddr,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Daemon {
    /// Starts netmond with `yaml` (plus an `api.bind` on a free port) and waits until ready.
    fn start(tag: &str, yaml: &str) -> Daemon {
        let port = free_port();
        let cfg = temp(&format!("{tag}.yaml"));
        std::fs::write(
            &cfg,
            format!("{yaml}\napi:\n  bind: 127.0.0.1:{port}\nlog:\n  format: json\n"),
        )
        .unwrap();
        let mut child = Command::new(BIN)
            .args(["--config", cfg.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let t = Instant::now();
        loop {
            if let Ok(s) = TcpStream::connect(addr) {
                drop(s);
                if get(addr, "/readyz").0 == 200 {
                    break;
                }
            }
            assert!(child.try_wait().unwrap().is_none(), "netmond exited early");
            assert!(t.elapsed() < Duration::from_secs(20), "netmond not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon {
            child,
            addr,
            stderr,
        }
    }

    /// Sends SIGTERM; waits (at most `limit`) for the exit; the exit code and the log lines.
    fn terminate(mut self, limit: Duration) -> (Option<i32>, Duration, Vec<serde_json::Value>) {
        let t = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                panic!("netmond did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = t.elapsed();
        let mut logs = Vec::new();
        let mut line = String::new();
        while self.stderr.read_line(&mut line).unwrap_or(0) > 0 {
            logs.push(serde_json::from_str(line.trim()).unwrap_or(serde_json::Value::Null));
            line.clear();
        }
        (status.code(), took, logs)
    }
}

/// Every sample line of a Prometheus text document: `name{labels} value`, names and labels
/// well formed, every family announced by `# TYPE` before its samples.
fn check_prometheus(text: &str) -> usize {
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            typed.insert(it.next().unwrap().to_owned());
            assert!(matches!(it.next(), Some("counter" | "gauge")), "{line}");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name.starts_with("netmon_"),
            "{line}"
        );
        assert!(typed.contains(name), "no # TYPE before {line}");
        samples += 1;
    }
    samples
}

#[test]
fn replay_serves_every_endpoint() {
    let Some(file) = corpus_file("ndpi_synscan.pcap") else {
        return;
    };
    let d = Daemon::start(
        "endpoints",
        &format!(
            "capture:\n  file: {}\nstorage:\n  enabled: false",
            file.display()
        ),
    );
    // The replay runs at full speed: wait for its last records.
    let t = Instant::now();
    // (The metric is there from the start with 0: wait until the shard has processed all 2 011
    // frames of the capture and the records are out.)
    let drained = |m: &str| {
        m.lines()
            .any(|l| l == "netmon_stage_packets_out_total{stage=\"shard\",shard=\"0\"} 2011")
            && m.lines().any(|l| {
                l.strip_prefix("netmon_flows_ended_total ")
                    .is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n > 0))
            })
    };
    while !drained(&get(d.addr, "/metrics").1) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the replay did not drain"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = get(d.addr, "/healthz");
    assert_eq!(code, 200, "{body}");
    let (code, metrics) = get(d.addr, "/metrics");
    assert_eq!(code, 200);
    assert!(check_prometheus(&metrics) > 10, "{metrics}");
    // Self-metrics per shard: queue depth (drained: 0), table size, evictions (none).
    for want in [
        "netmon_stage_queue_packets{stage=\"shard\",shard=\"0\"} 0",
        "netmon_shard_flows_evicted_total{shard=\"0\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "{want} not in {metrics}"
        );
    }
    assert!(
        metrics.contains("netmon_shard_flows_active{shard=\"0\"} "),
        "{metrics}"
    );
    let (code, body) = get(d.addr, "/api/v1/interfaces");
    assert_eq!(code, 200);
    let ifaces: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ifaces[0]["link_type"], "ethernet", "{body}");
    for path in [
        "/api/v1/flows?limit=5",
        "/api/v1/stats",
        "/api/v1/top?n=3",
        "/api/v1/alerts",
        "/api/v1/status",
        "/api/v1/openapi.json",
    ] {
        let (code, body) = get(d.addr, path);
        assert_eq!(code, 200, "{path}: {body}");
        let _: serde_json::Value = serde_json::from_str(&body).unwrap();
    }
    // Active flows carry each end's scope (`enrich.scope` is on by default).
    let (_, body) = get(d.addr, "/api/v1/flows?limit=5");
    let flows: serde_json::Value = serde_json::from_str(&body).unwrap();
    if let Some(f) = flows.as_array().and_then(|a| a.first()) {
        assert_eq!(f["scope"]["src"], "private", "{f}");
        assert_eq!(f["scope"]["dst"], "public", "{f}");
    }
    // The scan in this capture is one vertical-scan alert from 172.16.0.8.
    let (_, alerts) = get(d.addr, "/api/v1/alerts");
    let alerts: serde_json::Value = serde_json::from_str(&alerts).unwrap();
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.to_string().contains("172.16.0.8")),
        "{alerts}"
    );
    let (_, top) = get(d.addr, "/api/v1/top?n=3");
    assert!(top.contains("172.16.0.8"), "{top}");
    // Bad requests: JSON 4xx, never 5xx.
    for path in [
        "/api/v1/flows?limit=-1",
        "/api/v1/top?by=colour",
        "/api/v1/nosuch",
    ] {
        let (code, body) = get(d.addr, path);
        assert!((400..500).contains(&code), "{path}: {code} {body}");
    }
    // No store configured: the history says so with a 503.
    assert_eq!(get(d.addr, "/api/v1/flows/history").0, 503);
    let (code, took, logs) = d.terminate(Duration::from_secs(5));
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5));
    let drained = logs
        .iter()
        .find(|l| l["fields"]["message"] == "pipeline drained")
        .unwrap_or_else(|| panic!("{logs:?}"));
    assert!(drained["fields"]["packets"].as_u64().unwrap() > 1000);
}

#[test]
fn sigterm_during_a_paced_replay_ends_every_flow_with_shutdown() {
    // About 23 s of capture replayed in real time: stopped after a second or so.
    let Some((d, db, _)) = synscan_with_store("sigterm", "replay:\n  speed: realtime") else {
        return;
    };
    std::thread::sleep(Duration::from_millis(1200));
    let (code, took, logs) = d.terminate(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{logs:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let drained = logs
        .iter()
        .find(|l| l["fields"]["message"] == "pipeline drained")
        .unwrap_or_else(|| panic!("{logs:?}"));
    // Stopped part-way, and every flow created was handed over as a record.
    let packets = drained["fields"]["packets"].as_u64().unwrap();
    assert!(packets > 0 && packets < 2000, "{drained}");
    assert_eq!(
        drained["fields"]["flows"], drained["fields"]["records"],
        "{drained}"
    );
    // ... and every one of them is in the store: those that ended before the signal and
    // those the shutdown ended.
    let flows = drained["fields"]["flows"].as_u64().unwrap();
    let (stored, rows) = stored_flows(&db);
    assert_eq!(stored.len() as u64, flows);
    assert!(
        rows.iter()
            .any(|r| r.end_reason.as_deref() == Some("shutdown")),
        "no flow ended by the shutdown"
    );
    remove_db(&db);
}

/// SIGKILL in the middle of a paced replay: the store opens cleanly afterwards (the
/// write-ahead log is recovered, `integrity_check` passes), holds what was committed, and the
/// next daemon writes its run beside it.
#[test]
fn sigkill_then_restart_finds_an_intact_store() {
    let Some((mut d, db, file)) = synscan_with_store("sigkill", "replay:\n  speed: realtime")
    else {
        return;
    };
    // Wait until rows are committed (the sink hands them over once a second), then kill.
    let t = Instant::now();
    loop {
        let m = get(d.addr, "/metrics").1;
        let committed = m
            .lines()
            .find_map(|l| l.strip_prefix("netmon_store_committed_rows_total{table=\"flows\"} "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if committed > 0 {
            // The log's pages and checkpoints are metrics: the committed rows are in the
            // log, far from its first checkpoint (2 500 pages).
            let value = |name: &str| {
                m.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let pages = value("netmon_store_wal_pages ").unwrap_or(0);
            assert!(pages > 0 && pages < 2_500, "{m}");
            assert_eq!(
                value("netmon_store_checkpoints_total{by=\"writer\"} "),
                Some(0),
                "{m}"
            );
            assert!(
                value("netmon_store_checkpoints_total{by=\"background\"} ").is_some(),
                "{m}"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "nothing committed: {m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    assert!(
        std::path::Path::new(&format!("{}-wal", db.display())).exists(),
        "the kill left no log to recover"
    );

    let s = netmon_store::SqliteStore::open(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), ["ok"]);
    let (before, _, _) = s.row_counts().unwrap();
    assert!(before > 0 && before < 1994, "{before}");
    drop(s);
    replay_into(&file, &db, "");
    let s = netmon_store::SqliteStore::open(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), ["ok"]);
    assert_eq!(s.row_counts().unwrap().0, before + 1994);
    drop(s);
    remove_db(&db);
}

/// With the API off, netmond starts no API runtime: its threads are the pipeline's.
#[test]
fn without_the_api_no_api_thread_runs() {
    let Some(file) = corpus_file("ndpi_synscan.pcap") else {
        return;
    };
    let cfg = temp("no-api.yaml");
    std::fs::write(
        &cfg,
        format!(
            "capture:\n  file: {}\nreplay:\n  speed: realtime\nstorage:\n  enabled: false\n\
             api:\n  enabled: false\n",
            file.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let threads = |pid: u32| -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .map(|c| c.trim().to_owned())
            .collect()
    };
    // The replay is paced (23 s of capture): the pipeline is up long before it ends.
    let t = Instant::now();
    let names = loop {
        let names = threads(child.id());
        if names.iter().any(|n| n == "netmon-aggregat") {
            break names;
        }
        assert!(child.try_wait().unwrap().is_none(), "netmond exited early");
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no pipeline: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(!names.iter().any(|n| n == "api"), "{names:?}");
}

#[test]
fn bad_configurations_are_one_line_errors() {
    let run = |yaml: &str| {
        let o = common::run_netmond(&temp(&format!("bad-{}.yaml", yaml.len())), yaml);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{yaml}: {err}");
        assert_ne!(o.status.code(), Some(0), "{yaml}");
        err
    };
    let e = run("capture:\n  bfp: tcp\n");
    assert!(
        e.starts_with("netmond: ") && e.contains("did you mean bpf"),
        "{e}"
    );
    let e = run("storage:\n  enabled: false\n");
    assert!(e.contains("nothing to capture"), "{e}");
    let e = run("capture:\n  file: /nonexistent/x.pcap\nstorage:\n  enabled: false\n");
    assert!(e.contains("/nonexistent/x.pcap"), "{e}");
    let e = run(&format!(
        "capture:\n  file: {}\nstorage:\n  enabled: false\nenrich:\n  asn: /nonexistent/asn.mmdb\n",
        netmon_testkit::fixtures_dir(env!("CARGO_MANIFEST_DIR"))
            .join("demo.pcap")
            .display()
    ));
    assert!(e.contains("enrich: /nonexistent/asn.mmdb"), "{e}");
    // A live capture (opening needs root; the bad filter fails before any packet is read).
    #[cfg(target_os = "linux")]
    if netmon_testkit::netns::unavailable().is_none() {
        let e = run(
            "interfaces: [lo]\ncapture:\n  bpf: 'tcp port'\nstorage:\n  enabled: false\napi:\n  enabled: false\n",
        );
        assert!(e.contains("bad capture filter"), "{e}");
    }
    // An address this host does not have.
    let e = run(&format!(
        "capture:\n  file: {}\nstorage:\n  enabled: false\napi:\n  bind: 192.0.2.1:9100\n  token: a-long-enough-secret-token\n",
        netmon_testkit::fixtures_dir(env!("CARGO_MANIFEST_DIR"))
            .join("demo.pcap")
            .display()
    ));
    assert!(e.contains("cannot bind 192.0.2.1:9100"), "{e}");
    let o = Command::new(BIN).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

// --- the store ---------------------------------------------------------------------------

/// What a flow is, for comparing the store with `netmon flows`: key, counters, times, the
/// classification's headline fields and how it ended.
type FlowKey = (
    u8,
    String,
    Option<u16>,
    String,
    Option<u16>,
    Option<u16>,
    Vec<u16>,
    [u64; 4],
    (i64, i64),
    (Option<String>, Option<String>, Option<String>),
);

/// The flows `netmon flows FILE` prints: the single-threaded engine with its defaults (what
/// `bins/netmon-cli/src/flows.rs` runs), sorted.
fn netmon_flows(file: &std::path::Path) -> Vec<FlowKey> {
    use netmon_engine::{Engine, EngineConfig, EngineSink, FlowClass, FlowRecord};
    struct Collect(Vec<FlowKey>);
    impl EngineSink<FlowClass> for Collect {
        fn flow_ended(&mut self, flow: &netmon_flow::Flow<FlowClass>, iface: Option<&str>) {
            let r = FlowRecord::new(flow, iface);
            self.0.push((
                r.proto.0,
                r.src_ip.to_string(),
                r.src_port,
                r.dst_ip.to_string(),
                r.dst_port,
                r.icmp_id,
                r.vlan.clone(),
                [r.packets_c2s, r.bytes_c2s, r.packets_s2c, r.bytes_s2c],
                (r.first_seen.0.0, r.last_seen.0.0),
                (
                    r.app.map(str::to_owned),
                    r.sni.clone(),
                    r.end_reason.map(str::to_owned),
                ),
            ));
        }
    }
    let mut src = netmon_capture::open_file(file).unwrap();
    let mut engine = Engine::classifying(EngineConfig::default()).unwrap();
    let mut sink = Collect(Vec::new());
    let _ = engine.run(&mut src, &mut sink);
    sink.0.sort();
    sink.0
}

/// Every flow row of the store, read back page by page through the store's query API.
fn stored_flows(db: &std::path::Path) -> (Vec<FlowKey>, Vec<netmon_store::FlowRow>) {
    use netmon_store::{FlowQuery, SqliteStore, Store};
    let mut s = SqliteStore::open_read_only(db).unwrap();
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .query_flows(&FlowQuery {
                limit: 500,
                cursor,
                ..FlowQuery::default()
            })
            .unwrap();
        rows.extend(page.rows);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut keys: Vec<FlowKey> = rows
        .iter()
        .map(|r| {
            (
                r.proto,
                r.src_ip.to_string(),
                r.src_port,
                r.dst_ip.to_string(),
                r.dst_port,
                r.icmp_id,
                r.vlan.clone(),
                [r.packets_c2s, r.bytes_c2s, r.packets_s2c, r.bytes_s2c],
                (r.first_seen.0, r.last_seen.0),
                (r.app.clone(), r.sni.clone(), r.end_reason.clone()),
            )
        })
        .collect();
    keys.sort();
    (keys, rows)
}

/// Runs netmond over `file` (replay at full speed, API off: it exits when the file ends)
/// with the store at `db`; the log lines.
fn replay_into(
    file: &std::path::Path,
    db: &std::path::Path,
    extra: &str,
) -> Vec<serde_json::Value> {
    let cfg = temp(&format!(
        "replay-{}.yaml",
        db.file_name().unwrap().to_string_lossy()
    ));
    let o = common::run_netmond(
        &cfg,
        &format!(
            "capture:\n  file: {}\nstorage:\n  path: {}\napi:\n  enabled: false\nlog:\n  format: json\n{extra}",
            file.display(),
            db.display()
        ),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}: {err}", file.display());
    err.lines()
        .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
        .collect()
}

/// netmond replaying the synscan capture into a fresh store `tag.db` (plus `extra` config
/// lines, and `storage` keys as lines indented by two); the daemon, the store's path and the
/// capture.
fn synscan_with_store(tag: &str, extra: &str) -> Option<(Daemon, PathBuf, PathBuf)> {
    synscan_with_store_keys(tag, "", extra)
}

fn synscan_with_store_keys(
    tag: &str,
    storage: &str,
    extra: &str,
) -> Option<(Daemon, PathBuf, PathBuf)> {
    let file = corpus_file("ndpi_synscan.pcap")?;
    let db = temp(&format!("{tag}.db"));
    remove_db(&db);
    let d = Daemon::start(
        tag,
        &format!(
            "capture:\n  file: {}\nstorage:\n  path: {}\n{storage}{extra}",
            file.display(),
            db.display()
        ),
    );
    Some((d, db, file))
}

fn remove_db(db: &std::path::Path) {
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
}

/// The SQLite file holds exactly the flows `netmon flows` prints for the same capture: same
/// keys, packet and byte counts, times, app, SNI and end reason — with one shard and with two.
#[test]
fn the_store_holds_exactly_the_flows_netmon_flows_prints() {
    let files = [
        "ndpi_1kxun.pcap",
        "arkime_tls13.pcap",
        "tcpdump_802.1ad_QinQ.pcap",
        "ndpi_synscan.pcap",
        "suricata_decode-sll2-02.pcap",
        "tcpdump_heapoverflow-tcp_print.pcap",
    ];
    let mut total = 0;
    for name in files {
        let Some(file) = corpus_file(name) else {
            return;
        };
        let want = netmon_flows(&file);
        for shards in [1, 2] {
            let db = temp(&format!("exact-{shards}-{name}.db"));
            remove_db(&db);
            replay_into(&file, &db, &format!("engine:\n  shards: {shards}\n"));
            let (got, rows) = stored_flows(&db);
            assert_eq!(got.len(), want.len(), "{name}, {shards} shard(s)");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{name}, {shards} shard(s)");
            }
            // One run, ids unique within it.
            let ids: std::collections::BTreeSet<_> =
                rows.iter().map(|r| (r.run_id, r.id)).collect();
            assert_eq!(ids.len(), rows.len());
            total += got.len();
            remove_db(&db);
        }
    }
    assert!(total > 4000, "{total}");
}

/// Series points and alerts reach the store too; `/api/v1/flows/history` pages through what
/// is stored, and a second run of the daemon on the same file adds a run beside the first.
#[test]
fn series_alerts_and_history_paging() {
    let Some((d, db, file)) = synscan_with_store("history", "engine:\n  shards: 2") else {
        return;
    };
    // The replay ends, the store commits, the daemon goes on serving.
    let t = Instant::now();
    loop {
        let m = get(d.addr, "/metrics").1;
        if m.lines()
            .any(|l| l.starts_with("netmon_store_committed_rows_total{table=\"flows\"} 1994"))
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every stored flow once, 300 per page, newest first.
    let mut seen = std::collections::BTreeSet::new();
    let first = "/api/v1/flows/history?limit=300&sort=first_seen";
    let mut url = first.to_owned();
    let mut pages = 0;
    let mut last_first_seen = String::from("~");
    loop {
        let (code, body) = get(d.addr, &url);
        assert_eq!(code, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        for f in page["flows"].as_array().unwrap() {
            assert!(seen.insert(f["id"].as_u64().unwrap()), "{f}");
            let fs = f["first_seen"].as_str().unwrap().to_owned();
            assert!(fs <= last_first_seen, "{fs} after {last_first_seen}");
            last_first_seen = fs;
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("{first}&cursor={c}"),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (1994, 7));
    // Filters: the scanner's flows are all of them but the few of other hosts.
    let (_, body) = get(d.addr, "/api/v1/flows/history?host=172.16.0.8&limit=1000");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let flows = page["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1000);
    assert!(
        flows
            .iter()
            .all(|f| f["src_ip"] == "172.16.0.8" || f["dst_ip"] == "172.16.0.8")
    );
    let count = |q: &str| {
        let (code, body) = get(d.addr, &format!("/api/v1/flows/history?limit=1000&{q}"));
        assert_eq!(code, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        page["flows"].as_array().unwrap().len()
    };
    assert_eq!(count("host=10.9.9.9"), 0);
    assert_eq!(count("port=80"), 1);
    assert_eq!(count("port=80&host=64.13.134.52"), 1);
    assert_eq!(count("port=80&host=10.9.9.9"), 0);
    // Over the limit: 400.
    assert_eq!(get(d.addr, "/api/v1/flows/history?limit=5000").0, 400);
    // The default order is by bytes, largest first.
    let (_, body) = get(d.addr, "/api/v1/flows/history?limit=50");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bytes: Vec<u64> = page["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bytes_c2s"].as_u64().unwrap() + f["bytes_s2c"].as_u64().unwrap())
        .collect();
    assert!(
        bytes.len() == 50 && bytes.windows(2).all(|w| w[0] >= w[1]),
        "{bytes:?}"
    );
    // The status names the SQLite sink and what it wrote (flows, series points, alerts).
    let (_, body) = get(d.addr, "/api/v1/status");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["ready"], true, "{status}");
    let sqlite = &status["sinks"][0];
    assert_eq!(sqlite["name"], "sqlite", "{status}");
    assert!(sqlite["written"].as_u64().unwrap() > 1994, "{status}");
    assert_eq!(
        (&sqlite["connected"], &sqlite["dropped"]),
        (&serde_json::json!(true), &serde_json::json!(0))
    );
    // A cursor that is not one, a cursor of another sort order, a sort the store cannot do:
    // 400 with a JSON error, never a 500.
    let (_, body) = get(d.addr, first);
    let c = serde_json::from_str::<serde_json::Value>(&body).unwrap()["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in [
        "/api/v1/flows/history?cursor=zz".to_owned(),
        format!("/api/v1/flows/history?sort=bytes&cursor={c}"),
        "/api/v1/flows/history?sort=last_seen".to_owned(),
    ] {
        let (code, body) = get(d.addr, &bad);
        assert_eq!(code, 400, "{bad}: {body}");
        let e: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(e["error"].is_string() || e["error"].is_object(), "{body}");
    }
    let (code, _, _) = d.terminate(Duration::from_secs(5));
    assert_eq!(code, Some(0));

    let s = netmon_store::SqliteStore::open_read_only(&db).unwrap();
    let (flows, series, alerts) = s.row_counts().unwrap();
    assert_eq!(flows, 1994);
    // 1 s, 10 s and 60 s windows over ~23 s of capture, per layer and protocol.
    assert!(series > 30, "{series}");
    // The vertical scan, raised then closed: one row, closed.
    assert_eq!(alerts, 1);
    drop(s);
    replay_into(&file, &db, "");
    let mut s = netmon_store::SqliteStore::open_read_only(&db).unwrap();
    assert_eq!(s.row_counts().unwrap().0, 2 * 1994);
    let q = netmon_store::AlertQuery::default();
    let a = netmon_store::Store::query_alerts(&mut s, &q).unwrap();
    assert_eq!(a.rows.len(), 2);
    assert!(
        a.rows
            .iter()
            .all(|r| r.closed && r.kind == "vertical_scan" && r.source == "172.16.0.8")
    );
    assert_ne!(a.rows[0].run_id, a.rows[1].run_id);
    drop(s);
    remove_db(&db);
}

/// SIGHUP applies a new `storage.retention` (and says which other changes need a restart):
/// after the replay, a 5 s `max_age` deletes the flows that ended more than 5 s before the
/// newest one.
#[test]
fn sighup_reloads_the_retention_policy() {
    let Some((d, db, file)) = synscan_with_store_keys(
        "sighup",
        "  retention:\n    max_age: off\n    max_size_mib: off\n    interval: 200ms\n",
        "",
    ) else {
        return;
    };
    let metric = |name: &str| {
        get(d.addr, "/metrics")
            .1
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let t = Instant::now();
    while metric("netmon_store_committed_rows_total{table=\"flows\"}") < 1994 {
        assert!(t.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing is deleted while retention is off.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(metric("netmon_store_retention_deleted_total"), 0);
    let cfg = temp("sighup.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    // A new retention age (applied) and a new flow-table size (needs a restart).
    let text = format!(
        "{}flows:\n  max: 5000\n",
        text.replace("max_age: off", "max_age: 5s")
    );
    std::fs::write(&cfg, text).unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let t = Instant::now();
    while metric("netmon_store_retention_deleted_total") == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "retention did not run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deleted = metric("netmon_store_retention_deleted_total");
    let (code, _, logs) = d.terminate(Duration::from_secs(5));
    assert_eq!(code, Some(0));
    let msgs: Vec<String> = logs
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m == "SIGHUP: storage.retention reloaded"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m == "SIGHUP: changes to flows take effect after a restart"),
        "{msgs:?}"
    );
    // Exactly the flows whose last packet is at most 5 s older than the newest are left.
    let all = netmon_flows(&file);
    let newest = all.iter().map(|k| k.8.1).max().unwrap();
    let want: Vec<FlowKey> = all
        .into_iter()
        .filter(|k| k.8.1 >= newest - 5_000_000_000)
        .collect();
    let (stored, _) = stored_flows(&db);
    assert!(!want.is_empty() && want.len() < 1994, "{}", want.len());
    assert_eq!(stored, want);
    // The metric counts series points too.
    assert!(deleted >= (1994 - want.len()) as u64, "{deleted}");
    remove_db(&db);
}

/// `export:` — a replay sends its flow records to nfcapd as IPFIX and its alerts to a syslog
/// listener: nfdump reads one IPFIX record per flow direction with packets, with the capture's
/// packet total; the vertical scan arrives as RFC 5424 messages.
#[test]
fn exports_reach_nfcapd_and_syslog() {
    let Some(file) = corpus_file("ndpi_synscan.pcap") else {
        return;
    };
    if !netmon_testkit::nfcapd::available() {
        return;
    }
    let nfcapd = netmon_testkit::nfcapd::Nfcapd::start("netmond");
    let port = nfcapd.port;
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let db = temp("export.db");
    remove_db(&db);
    let logs = replay_into(
        &file,
        &db,
        &format!(
            "export:\n  ipfix:\n    collector: 127.0.0.1:{port}\n  syslog:\n    server: {}\n",
            syslog.local_addr().unwrap()
        ),
    );
    let drained = logs
        .iter()
        .find(|l| l["fields"]["message"] == "pipeline drained")
        .unwrap();
    let packets = drained["fields"]["packets"].as_u64().unwrap();
    let (_, rows) = stored_flows(&db);
    let directions: u64 = rows
        .iter()
        .map(|r| u64::from(r.packets_c2s > 0) + u64::from(r.packets_s2c > 0))
        .sum();
    let mut alerts = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = syslog.recv(&mut buf) {
        alerts.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let text = nfcapd.stop_and_dump("%pkt");
    let pkts: Vec<u64> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pkts.len() as u64, directions, "{text}");
    assert_eq!(pkts.iter().sum::<u64>(), packets);
    assert!(!alerts.is_empty(), "no syslog message");
    for m in &alerts {
        assert!(m.starts_with("<13") && m.contains(" netmond "), "{m}");
        assert!(
            m.contains("[netmon@32473 ") && m.contains("kind=\"vertical_scan\""),
            "{m}"
        );
    }
    remove_db(&db);
}
