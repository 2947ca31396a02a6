//! netmond end to end: replaying corpus captures, serving every endpoint, stopping cleanly on
//! SIGTERM, and one-line errors for bad configurations.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_netmond");

fn corpus_file(name: &str) -> Option<PathBuf> {
    netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).map(|c| c.dir().join(name))
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netmond-test-{}-{name}", std::process::id()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET over a fresh connection: status code and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
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
    while !get(d.addr, "/metrics")
        .1
        .contains("netmon_flows_ended_total ")
    {
        assert!(t.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = get(d.addr, "/healthz");
    assert_eq!(code, 200, "{body}");
    let (code, metrics) = get(d.addr, "/metrics");
    assert_eq!(code, 200);
    assert!(check_prometheus(&metrics) > 10, "{metrics}");
    let (code, body) = get(d.addr, "/api/v1/interfaces");
    assert_eq!(code, 200);
    let ifaces: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ifaces[0]["link_type"], "ethernet", "{body}");
    for path in [
        "/api/v1/flows?limit=5",
        "/api/v1/stats",
        "/api/v1/top?n=3",
        "/api/v1/alerts",
        "/api/v1/openapi.json",
    ] {
        let (code, body) = get(d.addr, path);
        assert_eq!(code, 200, "{path}: {body}");
        let _: serde_json::Value = serde_json::from_str(&body).unwrap();
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
    let Some(file) = corpus_file("ndpi_synscan.pcap") else {
        return;
    };
    // About 23 s of capture replayed in real time: stopped after a second or so.
    let d = Daemon::start(
        "sigterm",
        &format!(
            "capture:\n  file: {}\nreplay:\n  speed: realtime\nstorage:\n  enabled: false",
            file.display()
        ),
    );
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
}

#[test]
fn bad_configurations_are_one_line_errors() {
    let run = |yaml: &str| {
        let cfg = temp(&format!("bad-{}.yaml", yaml.len()));
        std::fs::write(&cfg, yaml).unwrap();
        let o = Command::new(BIN)
            .args(["--config", cfg.to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
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
