//! Shared by the integration tests: a backend with canned data, a real HTTP client, an SSE
//! reader and a Prometheus text-format checker.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use netmon_api::metrics::MetricsWriter;
use netmon_api::{
    ApiBackend, ApiConfig, ApiError, BackendError, EventBus, FlowFilter, HistoryPage, HistoryQuery,
    InterfaceInfo, LiveEvent, Server, StatsView, TopTalkers,
};
use netmon_engine::FlowRecord;
use netmon_engine::record::{ProtoName, Rfc3339};
use netmon_stats::{
    Alert, AlertEvent, AlertKind, Counters, Evidence, HierarchyNode, HostPair, IfaceSnapshot,
    ProtoSnapshot, RankBy, Ranked, ServicePort, Severity, Snapshot, Subject, Timestamp,
};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

pub const T0: i64 = 1_700_000_000_000_000_000;

pub fn record(id: u64, src: [u8; 4], dst: [u8; 4], dport: u16, bytes: u64) -> FlowRecord {
    FlowRecord {
        id,
        proto: ProtoName(6),
        src_ip: IpAddr::from(src),
        src_port: Some(40_000 + id as u16),
        dst_ip: IpAddr::from(dst),
        dst_port: Some(dport),
        packets_c2s: 3,
        bytes_c2s: bytes,
        packets_s2c: 2,
        bytes_s2c: 100,
        first_seen: Rfc3339(Timestamp(T0 + id as i64 * 1_000_000_000)),
        last_seen: Rfc3339(Timestamp(T0 + id as i64 * 1_000_000_000 + 5)),
        duration_ns: 5,
        state: "established",
        iface_name: Some("eth0".into()),
        app: Some(if dport == 443 { "tls" } else { "http" }),
        sni: (dport == 443).then(|| format!("h{id}.example.com")),
        // A hostile string from a packet: JSON escaping must keep it a string.
        ssh_client: Some("SSH-2.0-\"<script>\n".into()),
        ..FlowRecord::default()
    }
}

pub fn alert(id: u64, closed: bool) -> AlertEvent {
    let a = Alert {
        id,
        ts: Timestamp(T0 + id as i64),
        kind: AlertKind::VerticalScan,
        source: Subject::Ip(IpAddr::from([192, 0, 2, 1])),
        target: Some(Subject::Ip(IpAddr::from([198, 51, 100, 7]))),
        severity: Severity::High,
        evidence: Evidence::VerticalScan {
            ports: 20,
            ports_sample: vec![20, 21, 22],
            probes: 20,
            failed_ratio: 0.9,
            sequential: true,
            window_secs: 60,
        },
        first_seen: Timestamp(T0),
        last_seen: Timestamp(T0 + id as i64 * 1_000_000_000),
    };
    if closed {
        AlertEvent::Closed(a)
    } else {
        AlertEvent::Raised(a)
    }
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        ts: Timestamp(T0),
        windows: vec![1, 10],
        ifaces: vec![IfaceSnapshot {
            iface: 0,
            name: Some("eth0".into()),
            protos: vec![ProtoSnapshot {
                layer: "all",
                proto: "all".into(),
                active_flows: 4,
                total_packets: 20,
                total_bytes: 4000,
                total_new_flows: 4,
                windows: Vec::new(),
            }],
        }],
        counters: Counters {
            packets: 20,
            bytes: 4000,
            ..Counters::default()
        },
    }
}

/// A backend with canned data that records what it was asked.
pub struct TestBackend {
    pub ready: AtomicBool,
    pub panic_ready: AtomicBool,
    pub panic_stats: AtomicBool,
    pub bus: EventBus,
    pub flows: Vec<FlowRecord>,
    pub history: Vec<FlowRecord>,
    pub alerts: Vec<AlertEvent>,
    pub last_filter: Mutex<Option<FlowFilter>>,
    pub last_history: Mutex<Option<HistoryQuery>>,
    pub last_top: Mutex<Option<(usize, RankBy)>>,
    pub last_alerts: Mutex<Option<(Option<Timestamp>, usize)>>,
    pub calls: AtomicUsize,
}

impl TestBackend {
    pub fn new(bus_capacity: usize) -> TestBackend {
        TestBackend {
            ready: AtomicBool::new(true),
            panic_ready: AtomicBool::new(false),
            panic_stats: AtomicBool::new(false),
            bus: EventBus::new(bus_capacity),
            flows: vec![
                record(1, [10, 0, 0, 1], [10, 0, 0, 9], 443, 5000),
                record(2, [10, 0, 0, 2], [10, 0, 0, 9], 80, 9000),
                record(3, [10, 0, 0, 1], [10, 0, 0, 8], 80, 100),
                record(4, [10, 0, 0, 3], [10, 0, 0, 9], 443, 7000),
            ],
            history: (100..105)
                .map(|i| record(i, [10, 0, 1, 1], [10, 0, 1, 2], 443, i * 10))
                .collect(),
            alerts: vec![alert(2, false), alert(1, true)],
            last_filter: Mutex::new(None),
            last_history: Mutex::new(None),
            last_top: Mutex::new(None),
            last_alerts: Mutex::new(None),
            calls: AtomicUsize::new(0),
        }
    }
}

impl ApiBackend for TestBackend {
    fn ready(&self) -> bool {
        if self.panic_ready.load(SeqCst) {
            panic!("test: ready() panics");
        }
        self.ready.load(SeqCst)
    }

    fn interfaces(&self) -> Vec<InterfaceInfo> {
        vec![InterfaceInfo {
            index: 0,
            name: "eth0".into(),
            link_type: "ethernet".into(),
            packets: 20,
            bytes: 4000,
            kernel_received: Some(21),
            kernel_dropped: Some(1),
            iface_dropped: None,
        }]
    }

    fn active_flows(&self, filter: &FlowFilter) -> Vec<FlowRecord> {
        *self.last_filter.lock().unwrap() = Some(filter.clone());
        filter.apply(self.flows.clone())
    }

    fn flow_history(&self, q: &HistoryQuery) -> Result<HistoryPage, BackendError> {
        *self.last_history.lock().unwrap() = Some(q.clone());
        if q.filter.app.as_deref() == Some("unavailable") {
            return Err(BackendError::Unavailable("the store is closed".into()));
        }
        let start = match &q.cursor {
            None => 0,
            Some(c) => c
                .strip_prefix("at:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| BackendError::BadRequest(format!("unknown cursor {c:?}")))?,
        };
        let matching: Vec<&FlowRecord> = self
            .history
            .iter()
            .filter(|r| q.filter.matches(r))
            .collect();
        let end = (start + q.filter.limit).min(matching.len());
        Ok(HistoryPage {
            flows: matching
                .get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|r| serde_json::to_value(r).unwrap())
                .collect(),
            next_cursor: (end < matching.len()).then(|| format!("at:{end}")),
        })
    }

    fn stats(&self) -> StatsView {
        if self.panic_stats.load(SeqCst) {
            panic!("test: stats() panics");
        }
        StatsView {
            snapshot: Arc::new(snapshot()),
            hierarchy: vec![HierarchyNode {
                protocol: "frame".into(),
                frames: 20,
                bytes: 4000,
                children: vec![HierarchyNode {
                    protocol: "eth".into(),
                    frames: 20,
                    bytes: 4000,
                    children: Vec::new(),
                }],
            }],
        }
    }

    fn top(&self, n: usize, by: RankBy) -> TopTalkers {
        *self.last_top.lock().unwrap() = Some((n, by));
        let hosts: Vec<Ranked<IpAddr>> = (1..=20)
            .map(|i| Ranked {
                key: IpAddr::from([10, 0, 0, i]),
                count: 1000 - u64::from(i),
                error: 0,
            })
            .collect();
        TopTalkers {
            by,
            // More than asked for: the server cuts to n.
            hosts,
            pairs: vec![Ranked {
                key: HostPair::new(IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 9])),
                count: 5000,
                error: 0,
            }],
            ports: vec![Ranked {
                key: ServicePort {
                    proto: 6,
                    port: 443,
                },
                count: 12000,
                error: 0,
            }],
        }
    }

    fn alerts(&self, since: Option<Timestamp>, limit: usize) -> Vec<AlertEvent> {
        *self.last_alerts.lock().unwrap() = Some((since, limit));
        self.alerts
            .iter()
            .filter(|a| since.is_none_or(|s| a.alert().last_seen >= s))
            .take(limit)
            .cloned()
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.bus.subscribe()
    }

    fn metrics(&self, out: &mut MetricsWriter) {
        self.calls.fetch_add(1, SeqCst);
        for (iface, stage, n) in [
            ("eth0", "capture", 20),
            ("eth0", "parse", 19),
            ("we\"ird\\if\nname", "capture", 3),
        ] {
            out.counter(
                "netmon_packets_total",
                "Packets that went through a pipeline stage.",
                &[("interface", iface), ("stage", stage)],
                n,
            );
        }
        out.counter(
            "netmon_drops_total",
            "Packets dropped, by stage.",
            &[("stage", "queue")],
            0,
        );
        out.gauge(
            "netmon_flows_active",
            "Flows in the flow tables.",
            &[("protocol", "tcp")],
            4.0,
        );
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), ApiError>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn shutdown(mut self) -> Result<(), ApiError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.expect("server task")
    }
}

pub async fn start(backend: Arc<TestBackend>, token: Option<&str>) -> Running {
    start_with(backend, token, Duration::from_secs(15)).await
}

pub async fn start_with(
    backend: Arc<TestBackend>,
    token: Option<&str>,
    keep_alive: Duration,
) -> Running {
    let cfg = ApiConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
    };
    let server = Server::bind(cfg, backend)
        .await
        .unwrap()
        .keep_alive(keep_alive);
    let addr = server.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts a JSON error with this status and returns its `detail`.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/json");
        let j = self.json();
        let obj = j.as_object().unwrap();
        assert!(obj["error"].as_str().is_some_and(|s| !s.is_empty()), "{j}");
        assert!(obj.contains_key("detail"), "{j}");
        assert_eq!(obj.len(), 2, "{j}");
        obj["detail"].as_str().unwrap_or("").to_string()
    }
}

pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn request(method: Method, url: &str, token: Option<&str>) -> hyper::Response<Incoming> {
    let mut b = Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    tokio::time::timeout(
        Duration::from_secs(10),
        client().request(b.body(Empty::new()).unwrap()),
    )
    .await
    .expect("response within 10 s")
    .expect("request")
}

pub async fn get_with(method: Method, url: &str, token: Option<&str>) -> Resp {
    let r = request(method, url, token).await;
    let status = r.status();
    let headers = r.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(10), r.into_body().collect())
        .await
        .expect("body within 10 s")
        .expect("body")
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

pub async fn get(url: &str) -> Resp {
    get_with(Method::GET, url, None).await
}

pub async fn get_auth(url: &str, token: &str) -> Resp {
    get_with(Method::GET, url, Some(token)).await
}

/// One message of an event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    Event { event: String, data: String },
    Comment(String),
}

/// Reads an event stream from a response body.
pub struct SseReader {
    body: Incoming,
    buf: String,
}

impl SseReader {
    pub fn new(r: hyper::Response<Incoming>) -> SseReader {
        SseReader {
            body: r.into_body(),
            buf: String::new(),
        }
    }

    /// The next message; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let (mut event, mut data, mut comment) = (None, Vec::new(), None);
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        comment = Some(c.trim().to_string());
                    } else if let Some(e) = line.strip_prefix("event:") {
                        event = Some(e.trim_start().to_string());
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                    }
                }
                return Some(match (event, comment) {
                    (Some(event), _) => Sse::Event {
                        event,
                        data: data.join("\n"),
                    },
                    (None, Some(c)) => Sse::Comment(c),
                    (None, None) => Sse::Event {
                        event: "message".into(),
                        data: data.join("\n"),
                    },
                });
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("an SSE frame within 10 s")?;
            let frame = frame.ok()?;
            if let Ok(d) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&d).unwrap());
            }
        }
    }

    /// The next event, skipping comments.
    pub async fn next_event(&mut self) -> Option<(String, serde_json::Value)> {
        loop {
            match self.next().await? {
                Sse::Event { event, data } => {
                    return Some((event, serde_json::from_str(&data).unwrap()));
                }
                Sse::Comment(_) => continue,
            }
        }
    }
}

/// A sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

fn valid_name(s: &str, colon: bool) -> bool {
    let mut it = s.chars();
    it.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && it.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Checks text against the Prometheus text exposition format 0.0.4 and returns its samples:
/// lines end in `\n`; `# HELP` and `# TYPE` name valid metrics, TYPE at most once per family
/// and before its samples; a family's samples are contiguous; label values use only the
/// `\\`, `\"`, `\n` escapes; values are floats (or `NaN`, `+Inf`, `-Inf`); no series twice.
pub fn parse_prometheus(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("does not end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut typed = std::collections::HashMap::<String, String>::new();
    let mut finished = std::collections::HashSet::<String>::new();
    let mut current: Option<String> = None;
    let mut series = std::collections::HashSet::<String>::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), _) if !valid_name(name, true) => {
                    return Err(err("bad HELP name"));
                }
                (Some("TYPE"), Some(name), Some(t)) => {
                    if !valid_name(name, true) {
                        return Err(err("bad TYPE name"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(err("bad type"));
                    }
                    if typed.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(err("TYPE given twice"));
                    }
                    if finished.contains(name) || current.as_deref() == Some(name) {
                        return Err(err("TYPE after samples"));
                    }
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !valid_name(name, true) {
            return Err(err("bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find('=').ok_or_else(|| err("label without ="))?;
                let lname = &r[..eq];
                if !valid_name(lname, false) {
                    return Err(err("bad label name"));
                }
                r = r[eq + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| err("label value not quoted"))?;
                let mut value = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    match chars.next() {
                        None => return Err(err("unterminated label value")),
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            _ => return Err(err("bad escape")),
                        },
                        Some((_, c)) => value.push(c),
                    }
                };
                labels.push((lname.to_string(), value));
                r = &r[end + 1..];
                if let Some(after) = r.strip_prefix(',') {
                    r = after;
                } else if !r.starts_with('}') {
                    return Err(err("expected , or }"));
                }
            }
            rest = r;
        }
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before value"))?;
        let mut parts = rest.split(' ');
        let v = parts.next().ok_or_else(|| err("no value"))?;
        let value = match v {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => v.parse::<f64>().map_err(|_| err("bad value"))?,
        };
        if let Some(ts) = parts.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp"))?;
        }
        if parts.next().is_some() {
            return Err(err("trailing fields"));
        }
        if current.as_deref() != Some(name) {
            if finished.contains(name) {
                return Err(err("family not contiguous"));
            }
            if let Some(c) = current.take() {
                finished.insert(c);
            }
            current = Some(name.to_string());
        }
        if typed.get(name).is_some_and(|t| t == "counter") && value < 0.0 {
            return Err(err("negative counter"));
        }
        let mut key_labels = labels.clone();
        key_labels.sort();
        if !series.insert(format!("{name}{key_labels:?}")) {
            return Err(err("series given twice"));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}
