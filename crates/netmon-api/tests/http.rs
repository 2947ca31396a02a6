//! The API over real HTTP: a server on 127.0.0.1:0 with an in-test backend, and hyper's
//! client.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use common::*;
use hyper::{Method, StatusCode};
use netmon_api::{ApiConfig, ApiError, LiveEvent, Order, SortKey};
use netmon_stats::{RankBy, Timestamp};

const ENDPOINTS: &[&str] = &[
    "/readyz",
    "/metrics",
    "/api/v1/interfaces",
    "/api/v1/flows",
    "/api/v1/flows/history",
    "/api/v1/stats",
    "/api/v1/top",
    "/api/v1/alerts",
    "/api/v1/openapi.json",
];

fn docs_openapi() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap()
}

#[tokio::test]
async fn health_and_readiness() {
    let b = Arc::new(TestBackend::new(16));
    b.ready.store(false, SeqCst);
    let s = start(b.clone(), None).await;

    let r = get(&s.url("/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.json()["status"], "ok");

    let r = get(&s.url("/readyz")).await;
    let detail = r.assert_error(503);
    assert!(detail.contains("not open"), "{detail}");
    let m = parse_prometheus(&get(&s.url("/metrics")).await.text()).unwrap();
    assert!(
        m.iter()
            .any(|x| x.name == "netmon_api_ready" && x.value == 0.0)
    );

    b.ready.store(true, SeqCst);
    let r = get(&s.url("/readyz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");
    let m = parse_prometheus(&get(&s.url("/metrics")).await.text()).unwrap();
    assert!(
        m.iter()
            .any(|x| x.name == "netmon_api_ready" && x.value == 1.0)
    );

    // HEAD works like GET without a body.
    let r = get_with(Method::HEAD, &s.url("/healthz"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn data_endpoints_shapes() {
    let b = Arc::new(TestBackend::new(16));
    let s = start(b.clone(), None).await;

    // Interfaces.
    let j = get(&s.url("/api/v1/interfaces")).await.json();
    let i = &j.as_array().unwrap()[0];
    assert_eq!(i["name"], "eth0");
    assert_eq!(i["link_type"], "ethernet");
    assert_eq!(i["kernel_dropped"], 1);
    assert!(i["iface_dropped"].is_null());

    // Active flows: defaults, then every filter and sort option passed through.
    let r = get(&s.url("/api/v1/flows")).await;
    assert_eq!(r.content_type(), "application/json");
    let j = r.json();
    let ids: Vec<u64> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2, 4, 1, 3], "bytes descending");
    let f = &j[2];
    for k in [
        "proto",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "bytes_c2s",
        "first_seen",
        "app",
        "sni",
    ] {
        assert!(f.get(k).is_some(), "flow record lacks {k}: {f}");
    }
    assert_eq!(f["sni"], "h1.example.com");
    assert_eq!(
        f["ssh_client"], "SSH-2.0-\"<script>\n",
        "a string, escaped by JSON"
    );
    assert!(
        r.text().contains(r#""ssh_client":"SSH-2.0-\"<script>\n""#),
        "the quote and the newline are escaped in the body"
    );

    let j = get(&s.url(
        "/api/v1/flows?host=10.0.0.9&port=443&app=TLS&domain=example.com&sort=first_seen&order=asc&limit=1",
    ))
    .await
    .json();
    assert_eq!(j.as_array().unwrap().len(), 1);
    assert_eq!(j[0]["id"], 1);
    let seen = b.last_filter.lock().unwrap().clone().unwrap();
    assert_eq!(seen.host, Some("10.0.0.9".parse().unwrap()));
    assert_eq!(seen.port, Some(443));
    assert_eq!(seen.app.as_deref(), Some("tls"));
    assert_eq!(seen.domain.as_deref(), Some("example.com"));
    assert_eq!(
        (seen.sort, seen.order, seen.limit),
        (SortKey::FirstSeen, Order::Asc, 1)
    );

    // History: paged with the backend's cursor.
    let j = get(&s.url("/api/v1/flows/history?from=2023-11-14T00:00:00Z&to=1800000000&limit=2"))
        .await
        .json();
    assert_eq!(j["flows"].as_array().unwrap().len(), 2);
    assert_eq!(j["flows"][0]["id"], 100);
    let q = b.last_history.lock().unwrap().clone().unwrap();
    assert_eq!(q.from, Some(Timestamp::from_secs_nanos(1_699_920_000, 0)));
    assert_eq!(q.to, Some(Timestamp::from_secs_nanos(1_800_000_000, 0)));
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let url = match &cursor {
            Some(c) => format!("/api/v1/flows/history?limit=2&cursor={c}"),
            None => "/api/v1/flows/history?limit=2".to_string(),
        };
        let j = get(&s.url(&url)).await.json();
        ids.extend(
            j["flows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_u64().unwrap()),
        );
        match j["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(ids, [100, 101, 102, 103, 104]);

    // Stats.
    let j = get(&s.url("/api/v1/stats")).await.json();
    assert_eq!(j["snapshot"]["windows"], serde_json::json!([1, 10]));
    assert_eq!(j["snapshot"]["ifaces"][0]["protos"][0]["total_bytes"], 4000);
    assert_eq!(j["snapshot"]["counters"]["packets"], 20);
    assert_eq!(j["hierarchy"][0]["children"][0]["protocol"], "eth");

    // Top talkers: cut to n even though the backend returned more.
    let j = get(&s.url("/api/v1/top?n=3&by=packets")).await.json();
    assert_eq!(j["by"], "packets");
    assert_eq!(j["hosts"].as_array().unwrap().len(), 3);
    assert_eq!(j["hosts"][0]["key"], "10.0.0.1");
    assert_eq!(j["pairs"][0]["key"]["b"], "10.0.0.9");
    assert_eq!(j["ports"][0]["key"]["port"], 443);
    assert_eq!(*b.last_top.lock().unwrap(), Some((3, RankBy::Packets)));
    let j = get(&s.url("/api/v1/top")).await.json();
    assert_eq!(j["hosts"].as_array().unwrap().len(), 10, "default n");

    // Alerts.
    let j = get(&s.url("/api/v1/alerts")).await.json();
    assert_eq!(j[0]["event"], "raised");
    assert_eq!(j[0]["alert"]["kind"], "vertical_scan");
    assert_eq!(j[0]["alert"]["source"], "192.0.2.1");
    assert_eq!(j[1]["event"], "closed");
    let j = get(&s.url("/api/v1/alerts?since=1700000002&limit=5"))
        .await
        .json();
    assert_eq!(j.as_array().unwrap().len(), 1);
    assert_eq!(
        *b.last_alerts.lock().unwrap(),
        Some((Some(Timestamp::from_secs_nanos(1_700_000_002, 0)), 5))
    );

    // The OpenAPI document is the one in docs/.
    let r = get(&s.url("/api/v1/openapi.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.text(), docs_openapi());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn openapi_document_describes_every_served_path() {
    let s = start(Arc::new(TestBackend::new(16)), None).await;
    let doc: serde_json::Value = serde_json::from_str(&docs_openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in ENDPOINTS
        .iter()
        .chain(["/healthz", "/api/v1/events"].iter())
    {
        assert!(paths.contains_key(*p), "{p} not documented");
    }
    // Every documented path is served (not the 404 fallback), and every $ref resolves.
    for (p, item) in paths {
        let r = request(Method::GET, &s.url(p), None).await;
        assert_ne!(r.status(), StatusCode::NOT_FOUND, "{p}");
        let ok = item["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap();
        let ct = r.headers()["content-type"].to_str().unwrap();
        assert!(ok.contains_key(ct), "{p}: served {ct}, documented {ok:?}");
    }
    let text = docs_openapi();
    for part in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn bearer_token() {
    const TOKEN: &str = "correct-horse-battery-staple";
    let s = start(Arc::new(TestBackend::new(16)), Some(TOKEN)).await;

    // /healthz never needs it.
    assert_eq!(get(&s.url("/healthz")).await.status, StatusCode::OK);
    for p in ENDPOINTS.iter().chain(["/api/v1/events", "/nope"].iter()) {
        let r = get(&s.url(p)).await;
        r.assert_error(401);
        assert_eq!(
            r.headers["www-authenticate"].to_str().unwrap(),
            "Bearer realm=\"netmon\"",
            "{p}"
        );
        get_auth(&s.url(p), "correct-horse-battery-stapl")
            .await
            .assert_error(401);
        get_auth(&s.url(p), "correct-horse-battery-staple2")
            .await
            .assert_error(401);
    }
    for p in ENDPOINTS {
        let r = get_auth(&s.url(p), TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
    }
    let r = request(Method::GET, &s.url("/api/v1/events"), Some(TOKEN)).await;
    assert_eq!(r.status(), StatusCode::OK);
    drop(r);
    // Other schemes and malformed headers.
    for h in [
        format!("Basic {TOKEN}"),
        TOKEN.to_string(),
        format!("Bearer{TOKEN}"),
        "Bearer".into(),
    ] {
        let req = hyper::Request::builder()
            .uri(s.url("/api/v1/flows"))
            .header("authorization", h)
            .body(http_body_util::Empty::new())
            .unwrap();
        let r = client().request(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let req = hyper::Request::builder()
        .uri(s.url("/api/v1/flows"))
        .header("authorization", format!("bearer  {TOKEN}"))
        .body(http_body_util::Empty::new())
        .unwrap();
    assert_eq!(
        client().request(req).await.unwrap().status(),
        StatusCode::OK
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn startup_errors() {
    let b: Arc<dyn netmon_api::ApiBackend> = Arc::new(TestBackend::new(16));
    // Non-loopback without a token: refused before binding.
    let cfg = ApiConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        token: None,
    };
    let e = netmon_api::serve(cfg, b.clone(), async {})
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::TokenRequired(_)), "{e}");
    assert!(e.to_string().contains("0.0.0.0:0"), "{e}");
    assert!(e.to_string().contains("api.token"), "{e}");

    // An address in use: the bind error names it and the config key.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = ApiConfig {
        bind: addr,
        token: None,
    };
    let e = netmon_api::serve(cfg, b.clone(), async {})
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ApiError::Bind { .. }), "{msg}");
    assert!(msg.starts_with(&format!("cannot bind {addr}: ")), "{msg}");
    assert!(msg.ends_with("(check api.bind)"), "{msg}");

    // An empty token is refused.
    let cfg = ApiConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        token: Some(String::new()),
    };
    let e = netmon_api::serve(cfg, b.clone(), async {})
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::InvalidToken), "{e}");

    // A non-loopback bind with a token is accepted (binding to all addresses, port 0; the
    // test never sends anything there).
    let cfg = ApiConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        token: Some("t0ken".into()),
    };
    assert!(netmon_api::serve(cfg, b, async {}).await.is_ok());
}

#[tokio::test]
async fn bad_requests_get_json_4xx() {
    let b = Arc::new(TestBackend::new(16));
    let s = start(b.clone(), None).await;
    let cases: &[(&str, u16, &str)] = &[
        ("/api/v1/flows?limit=0", 400, "between 1 and 10000"),
        ("/api/v1/flows?limit=10001", 400, "between 1 and 10000"),
        ("/api/v1/flows?limit=abc", 400, "abc"),
        (
            "/api/v1/flows?sort=size",
            400,
            "bytes, packets, first_seen, last_seen",
        ),
        ("/api/v1/flows?order=sideways", 400, "asc, desc"),
        ("/api/v1/flows?host=300.1.1.1", 400, "IP address"),
        ("/api/v1/flows?port=70000", 400, "port"),
        ("/api/v1/flows?app=%00", 400, "application"),
        ("/api/v1/flows?domain=", 400, "domain"),
        ("/api/v1/flows?colour=red", 400, "allowed: host"),
        ("/api/v1/flows?port=1&port=2", 400, "more than once"),
        ("/api/v1/flows/history?from=yesterday", 400, "RFC 3339"),
        (
            "/api/v1/flows/history?from=2024-02-30T00:00:00Z",
            400,
            "invalid date",
        ),
        ("/api/v1/flows/history?from=10&to=5", 400, "after"),
        (
            "/api/v1/flows/history?limit=1001",
            400,
            "between 1 and 1000",
        ),
        ("/api/v1/flows/history?cursor=%22%3E", 400, "cursor"),
        ("/api/v1/flows/history?cursor=bogus", 400, "unknown cursor"),
        ("/api/v1/flows/history?app=unavailable", 503, "closed"),
        ("/api/v1/top?n=0", 400, "between 1 and 1000"),
        ("/api/v1/top?by=flows", 400, "bytes, packets"),
        ("/api/v1/alerts?since=99999999999999", 400, ""),
        ("/api/v1/alerts?limit=-1", 400, ""),
        ("/api/v1/events?types=everything", 400, "flow_started"),
        ("/api/v1/stats?x=1", 400, "no parameters"),
        ("/healthz?verbose=1", 400, "no parameters"),
        ("/no/such/endpoint", 404, "openapi"),
        ("/api/v1/flows/%FF", 404, ""),
    ];
    for (path, status, needle) in cases {
        let r = get(&s.url(path)).await;
        let detail = r.assert_error(*status);
        assert!(detail.contains(needle), "{path}: {detail:?}");
    }
    let long = format!("/api/v1/flows?domain={}", "a".repeat(5000));
    get(&s.url(&long)).await.assert_error(400);
    // Other methods.
    let r = get_with(Method::POST, &s.url("/api/v1/flows"), None).await;
    r.assert_error(405);
    assert_eq!(r.headers["allow"], "GET, HEAD");
    get_with(Method::DELETE, &s.url("/metrics"), None)
        .await
        .assert_error(405);
    // The only 5xx was the backend's 503; nothing panicked.
    let m = parse_prometheus(&get(&s.url("/metrics")).await.text()).unwrap();
    let value = |name: &str, label: Option<&str>| {
        m.iter()
            .find(|x| x.name == name && label.is_none_or(|l| x.labels[0].1 == l))
            .unwrap()
            .value
    };
    assert_eq!(value("netmon_api_responses_total", Some("5xx")), 1.0);
    assert_eq!(value("netmon_api_panics_total", None), 0.0);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn panics_become_500_json_and_the_server_goes_on() {
    let b = Arc::new(TestBackend::new(16));
    let s = start(b.clone(), None).await;
    // A panic in the async handler path (ready() is called inline).
    b.panic_ready.store(true, SeqCst);
    let detail = get(&s.url("/readyz")).await.assert_error(500);
    assert!(detail.contains("failed"), "{detail}");
    b.panic_ready.store(false, SeqCst);
    // A panic on the blocking pool.
    b.panic_stats.store(true, SeqCst);
    get(&s.url("/api/v1/stats")).await.assert_error(500);
    b.panic_stats.store(false, SeqCst);
    assert_eq!(get(&s.url("/api/v1/stats")).await.status, StatusCode::OK);
    let m = parse_prometheus(&get(&s.url("/metrics")).await.text()).unwrap();
    let panics = m
        .iter()
        .find(|x| x.name == "netmon_api_panics_total")
        .unwrap();
    assert_eq!(panics.value, 2.0);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let b = Arc::new(TestBackend::new(16));
    let s = start(b.clone(), None).await;
    get(&s.url("/api/v1/flows?limit=0")).await; // one 4xx
    let r = get(&s.url("/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type().starts_with("text/plain; version=0.0.4"),
        "{}",
        r.content_type()
    );
    let text = r.text();
    let samples = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|x| {
                x.name == name
                    && labels.len() == x.labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| x.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|x| x.value)
    };
    assert_eq!(
        find(
            "netmon_packets_total",
            &[("interface", "eth0"), ("stage", "parse")]
        ),
        Some(19.0)
    );
    // The hostile interface name survived escaping and parsing.
    assert_eq!(
        find(
            "netmon_packets_total",
            &[("interface", "we\"ird\\if\nname"), ("stage", "capture")]
        ),
        Some(3.0)
    );
    assert_eq!(
        find("netmon_flows_active", &[("protocol", "tcp")]),
        Some(4.0)
    );
    assert_eq!(
        find("netmon_api_responses_total", &[("code", "4xx")]),
        Some(1.0)
    );
    assert!(text.contains("# TYPE netmon_packets_total counter\n"));
    assert!(text.contains("# TYPE netmon_api_event_clients gauge\n"));
    // Conventions: counters end in _total and are named netmon_*.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut p = line.split(' ').skip(2);
        let (name, kind) = (p.next().unwrap(), p.next().unwrap());
        assert!(name.starts_with("netmon_"), "{line}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }
    assert_eq!(b.calls.load(SeqCst), 1);
    // The checker itself rejects what it must.
    for bad in [
        "x 1",
        "x{a=\"1\"} 1\ny 2\nx{a=\"2\"} 3\n",
        "x{a=1} 1\n",
        "x{a=\"\\t\"} 1\n",
        "# TYPE x counter\n# TYPE x counter\nx 1\n",
        "x 1\nx 2\n",
        "x one\n",
        "1x 1\n",
    ] {
        assert!(parse_prometheus(bad).is_err(), "{bad:?}");
    }
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn event_stream_in_order_with_keep_alive() {
    let b = Arc::new(TestBackend::new(1024));
    let s = start_with(b.clone(), None, Duration::from_millis(50)).await;
    let r = request(Method::GET, &s.url("/api/v1/events"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let mut sse = SseReader::new(r);
    // The subscription exists once the headers are there.
    for id in 1..=50 {
        b.bus.publish(LiveEvent::FlowStarted(record(
            id,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            443,
            id,
        )));
    }
    b.bus.publish(LiveEvent::Alert(alert(7, false)));
    b.bus.publish(LiveEvent::Stats(Arc::new(snapshot())));
    b.bus.publish(LiveEvent::FlowEnded(record(
        1,
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        443,
        1,
    )));
    for id in 1..=50u64 {
        let (e, d) = sse.next_event().await.unwrap();
        assert_eq!(e, "flow_started");
        assert_eq!(d["id"], id);
    }
    let (e, d) = sse.next_event().await.unwrap();
    assert_eq!(e, "alert");
    assert_eq!(d["event"], "raised");
    assert_eq!(d["alert"]["id"], 7);
    let (e, d) = sse.next_event().await.unwrap();
    assert_eq!(e, "stats");
    assert_eq!(d["counters"]["packets"], 20);
    let (e, d) = sse.next_event().await.unwrap();
    assert_eq!(e, "flow_ended");
    assert_eq!(d["id"], 1);
    // Quiet: keep-alive comments.
    let t = Instant::now();
    assert_eq!(sse.next().await.unwrap(), Sse::Comment("keep-alive".into()));
    assert!(t.elapsed() < Duration::from_secs(5));

    // A filtered stream.
    let mut only_alerts = SseReader::new(
        request(
            Method::GET,
            &s.url("/api/v1/events?types=alert,stats"),
            None,
        )
        .await,
    );
    b.bus.publish(LiveEvent::FlowStarted(record(
        99,
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        443,
        1,
    )));
    b.bus.publish(LiveEvent::Alert(alert(8, true)));
    let (e, d) = only_alerts.next_event().await.unwrap();
    assert_eq!(e, "alert");
    assert_eq!(d["event"], "closed");
    let m = parse_prometheus(&get(&s.url("/metrics")).await.text()).unwrap();
    let clients = m
        .iter()
        .find(|x| x.name == "netmon_api_event_clients")
        .unwrap();
    assert_eq!(clients.value, 2.0);

    // Shutdown ends the streams (the server returns well within its grace period).
    let t = Instant::now();
    s.shutdown().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Whatever was still buffered, then the end.
    let mut ended = false;
    for _ in 0..100 {
        if sse.next().await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended);
}

#[tokio::test]
async fn a_slow_event_client_lags_and_never_blocks_the_publisher() {
    let b = Arc::new(TestBackend::new(8));
    let s = start(b.clone(), None).await;
    let r = request(
        Method::GET,
        &s.url("/api/v1/events?types=flow_started"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The client reads nothing while 20 000 events (about 20 MB of JSON, more than the
    // socket buffers hold) are published: the publisher must not wait for it.
    let bus = b.bus.clone();
    let publisher = std::thread::spawn(move || {
        let t = Instant::now();
        let mut big = record(0, [10, 0, 0, 1], [10, 0, 0, 2], 443, 1);
        big.alpn = vec!["x".repeat(800)];
        for id in 1..=20_000 {
            big.id = id;
            bus.publish(LiveEvent::FlowStarted(big.clone()));
        }
        t.elapsed()
    });
    let elapsed = publisher.join().unwrap();
    assert!(
        elapsed < Duration::from_secs(5),
        "publishing took {elapsed:?}"
    );
    // Now read: the client was told it lagged, and events still arrive in increasing order.
    let mut sse = SseReader::new(r);
    let mut missed = 0u64;
    let mut last = 0u64;
    let mut seen = 0u64;
    while last < 20_000 {
        let (e, d) = sse.next_event().await.unwrap();
        match e.as_str() {
            "lagged" => missed += d["missed"].as_u64().unwrap(),
            "flow_started" => {
                let id = d["id"].as_u64().unwrap();
                assert!(id > last, "{id} after {last}");
                last = id;
                seen += 1;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(missed > 0, "the slow client was never lagged");
    assert_eq!(
        seen + missed,
        20_000,
        "every event either delivered or counted as missed"
    );
    let m = parse_prometheus(&get(&s.url("/metrics")).await.text()).unwrap();
    let lagged = m
        .iter()
        .find(|x| x.name == "netmon_api_events_lagged_total")
        .unwrap();
    assert_eq!(lagged.value, missed as f64);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_is_graceful() {
    let b = Arc::new(TestBackend::new(16));
    let s = start(b, None).await;
    let addr = s.addr;
    assert_eq!(get(&s.url("/healthz")).await.status, StatusCode::OK);
    s.shutdown().await.unwrap();
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
