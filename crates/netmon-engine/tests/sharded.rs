//! The sharded pipeline against the single engine, on the whole corpus: one shard gives the
//! very same records in the same order; two and three shards the same records (ids and DNS
//! domains aside: ids are numbered per shard, answers are correlated within a shard), and the
//! aggregator's detectors still see a scan whose probes fell into different shards as one.

use netmon_engine::sharded::{Backpressure, PipelineSink, ShardConfig, run_sharded};
use netmon_engine::{Engine, EngineConfig, FlowRecord};
use netmon_stats::{AlertEvent, StatsConfig};

fn single(path: &std::path::Path, cfg: &EngineConfig) -> Vec<FlowRecord> {
    let mut src = netmon_capture::open_file(path).unwrap();
    let mut engine = Engine::classifying(cfg.clone()).unwrap();
    let mut out = Vec::new();
    engine.run(&mut src, &mut out);
    out
}

fn sharded(path: &std::path::Path, cfg: &EngineConfig, shards: usize) -> Vec<FlowRecord> {
    sharded_with_load(path, cfg, shards).0
}

/// The records, and the packets each shard processed.
fn sharded_with_load(
    path: &std::path::Path,
    cfg: &EngineConfig,
    shards: usize,
) -> (Vec<FlowRecord>, Vec<u64>) {
    let mut src = netmon_capture::open_file(path).unwrap();
    let mut out = Vec::new();
    let sc = ShardConfig {
        shards,
        // Small batches and queues: more interleaving, more chances to get it wrong.
        batch_packets: 7,
        batches_per_shard: 3,
        queued_outputs: shards * 3,
        // Outputs of about three batches: the shards hold batches back between outputs.
        output_packets: 20,
        backpressure: Backpressure::Block,
        active_every: None,
        processes: false,
    };
    let o = run_sharded(cfg, &sc, &mut src, &mut out, None).unwrap();
    assert_eq!(
        o.summary.flows.created as usize,
        out.len(),
        "{}",
        path.display()
    );
    (out, o.shards.iter().map(|s| s.packets).collect())
}

/// A record without what legitimately differs between shard counts, as a sortable key.
fn normal(mut r: FlowRecord) -> String {
    r.id = 0;
    r.domain = None;
    serde_json::to_string(&r).unwrap()
}

#[test]
fn shards_give_the_records_of_one_engine_on_the_corpus() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let cfg = EngineConfig::default();
    let (mut files, mut flows) = (0, 0);
    let mut load = [0u64; 3];
    for path in corpus.captures() {
        let one = single(&path, &cfg);
        assert_eq!(sharded(&path, &cfg, 1), one, "{}", path.display());
        let mut want: Vec<String> = one.into_iter().map(normal).collect();
        want.sort();
        for n in [2, 3] {
            let (recs, per_shard) = sharded_with_load(&path, &cfg, n);
            if n == 3 {
                for (l, p) in load.iter_mut().zip(&per_shard) {
                    *l += p;
                }
            }
            let mut ids: Vec<u64> = recs.iter().map(|r| r.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), recs.len(), "{}: ids not unique", path.display());
            let mut got: Vec<String> = recs.into_iter().map(normal).collect();
            got.sort();
            assert_eq!(got, want, "{} with {n} shards", path.display());
        }
        files += 1;
        flows += want.len();
    }
    assert!(files >= 70 && flows > 2000, "{files} files, {flows} flows");
    // Every shard had its share of the corpus (not all in shard 0).
    let total: u64 = load.iter().sum();
    assert!(load.iter().all(|&l| l > total / 6), "{load:?}");
}

/// One shard of a replay runs inline on the reader's thread; one shard of a live source
/// (`Backpressure::Drop`) keeps a thread of its own. Both give the single engine's records, in
/// order (the pool here is larger than the capture, so the live path cannot drop).
#[test]
fn one_shard_inline_or_on_its_thread_gives_the_records_of_one_engine() {
    let path = netmon_testkit::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join("demo.pcap");
    let cfg = EngineConfig::default();
    let one = single(&path, &cfg);
    assert!(one.len() > 10, "{}", one.len());
    for backpressure in [Backpressure::Block, Backpressure::Drop] {
        let mut src = netmon_capture::open_file(&path).unwrap();
        let mut out = Vec::new();
        let sc = ShardConfig {
            shards: 1,
            batch_packets: 5,
            batches_per_shard: 4096,
            queued_outputs: 4096,
            output_packets: 5,
            backpressure,
            active_every: None,
            processes: false,
        };
        let counters = std::sync::Arc::new(netmon_engine::sharded::PipelineCounters::new(1));
        let o = run_sharded(&cfg, &sc, &mut src, &mut out, Some(counters.clone())).unwrap();
        assert_eq!(counters.dropped_total(), 0, "{backpressure:?}");
        let read = counters.read.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(read, o.summary.packets, "{backpressure:?}");
        for c in [&counters.to_shard[0], &counters.processed[0]] {
            assert_eq!(c.load(std::sync::atomic::Ordering::Relaxed), read);
        }
        assert_eq!(out, one, "{backpressure:?}");
    }
}

#[derive(Default)]
struct Alerts(Vec<AlertEvent>);

impl PipelineSink for Alerts {
    fn alert(&mut self, e: &AlertEvent) {
        self.0.push(e.clone());
    }
}

#[test]
fn the_aggregator_sees_a_scan_spread_over_shards_as_one() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let path = corpus.dir().join("ndpi_synscan.pcap");
    let cfg = EngineConfig {
        stats: Some(StatsConfig::default()),
        ..EngineConfig::default()
    };
    let mut base = Vec::new();
    {
        struct Collect<'a>(&'a mut Vec<AlertEvent>);
        impl<E> netmon_engine::EngineSink<E> for Collect<'_> {
            fn alert(&mut self, e: &AlertEvent) {
                self.0.push(e.clone());
            }
        }
        let mut src = netmon_capture::open_file(&path).unwrap();
        let mut engine = Engine::classifying(cfg.clone()).unwrap();
        engine.run(&mut src, &mut Collect(&mut base));
    }
    assert!(!base.is_empty());
    for n in [1, 2, 3] {
        let mut src = netmon_capture::open_file(&path).unwrap();
        let mut sink = Alerts::default();
        let sc = ShardConfig {
            shards: n,
            ..ShardConfig::default()
        };
        let o = run_sharded(&cfg, &sc, &mut src, &mut sink, None).unwrap();
        // The aggregator counted every packet the shards processed.
        let st = o.stats.expect("stats were enabled");
        assert_eq!(st.counters().packets, o.summary.packets);
        let kinds = |v: &[AlertEvent]| -> Vec<String> {
            v.iter()
                .map(|e| format!("{:?} {:?}", e.alert().kind, e.alert().source))
                .collect()
        };
        assert_eq!(kinds(&sink.0), kinds(&base), "{n} shards");
    }
}

/// A source that is stopped from outside after `after` packets, like a daemon on SIGTERM.
struct StopAfter<S> {
    inner: S,
    seen: u64,
    after: u64,
}

impl<S: netmon_capture::CaptureSource> netmon_capture::CaptureSource for StopAfter<S> {
    fn next_packet(&mut self) -> Result<netmon_capture::Next<'_>, netmon_capture::CaptureError> {
        if self.seen == self.after {
            self.inner.stop_handle().stop();
        }
        self.seen += 1;
        self.inner.next_packet()
    }
    fn interfaces(&self) -> &[netmon_capture::Interface] {
        self.inner.interfaces()
    }
    fn stats(&self) -> netmon_capture::CaptureStats {
        self.inner.stats()
    }
    fn stop_handle(&self) -> netmon_capture::StopHandle {
        self.inner.stop_handle()
    }
}

#[test]
fn a_stop_ends_the_open_flows_with_shutdown_and_loses_none() {
    let path = netmon_testkit::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join("demo.pcap");
    let src = netmon_capture::open_file(&path).unwrap();
    let mut src = StopAfter {
        inner: src,
        seen: 0,
        after: 100,
    };
    let mut out = Vec::new();
    let sc = ShardConfig {
        shards: 2,
        batch_packets: 8,
        ..ShardConfig::default()
    };
    let cfg = EngineConfig::default();
    let o = run_sharded(&cfg, &sc, &mut src, &mut out, None).unwrap();
    assert_eq!(o.summary.packets, 100);
    assert_eq!(out.len() as u64, o.summary.flows.created);
    let shutdown = out
        .iter()
        .filter(|r| r.end_reason == Some("shutdown"))
        .count();
    assert!(
        shutdown > 0,
        "{:?}",
        out.iter().map(|r| r.end_reason).collect::<Vec<_>>()
    );
    assert!(out.iter().all(|r| r.end_reason != Some("end_of_capture")));
}

#[derive(Default)]
struct Active {
    exports: usize,
    ids: std::collections::BTreeSet<u64>,
    ended: Vec<FlowRecord>,
}

impl PipelineSink for Active {
    fn active_flows(&mut self, _shard: usize, records: Vec<FlowRecord>) {
        assert!(records.len() <= netmon_engine::sharded::ACTIVE_EXPORT_MAX);
        if !records.is_empty() {
            self.exports += 1;
        }
        self.ids.extend(records.iter().map(|r| r.id));
    }
    fn flow_ended(&mut self, r: FlowRecord) {
        self.ended.push(r);
    }
}

#[test]
fn shards_export_their_active_flows() {
    let path = netmon_testkit::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join("demo.pcap");
    let mut src = netmon_capture::open_file(&path).unwrap();
    let mut sink = Active::default();
    let sc = ShardConfig {
        shards: 2,
        batch_packets: 4,
        active_every: Some(std::time::Duration::ZERO),
        ..ShardConfig::default()
    };
    run_sharded(&EngineConfig::default(), &sc, &mut src, &mut sink, None).unwrap();
    assert!(sink.exports > 2, "{}", sink.exports);
    // Every exported flow is a real one, which later ended.
    let ended: std::collections::BTreeSet<u64> = sink.ended.iter().map(|r| r.id).collect();
    assert!(!sink.ids.is_empty() && sink.ids.is_subset(&ended));
}

/// What the statistics produced: alerts and series as they were reported, the final stats.
struct StatsRun {
    alerts: Vec<AlertEvent>,
    series: Vec<netmon_stats::SeriesPoint>,
    stats: netmon_stats::Stats,
}

#[derive(Default)]
struct StatsSink {
    alerts: Vec<AlertEvent>,
    series: Vec<netmon_stats::SeriesPoint>,
}

impl PipelineSink for StatsSink {
    fn alert(&mut self, e: &AlertEvent) {
        self.alerts.push(e.clone());
    }
    fn series(&mut self, p: &netmon_stats::SeriesPoint) {
        self.series.push(p.clone());
    }
}

impl<E> netmon_engine::EngineSink<E> for StatsSink {
    fn alert(&mut self, e: &AlertEvent) {
        self.alerts.push(e.clone());
    }
    fn series(&mut self, p: &netmon_stats::SeriesPoint) {
        self.series.push(p.clone());
    }
}

fn stats_cfg() -> EngineConfig {
    EngineConfig {
        stats: Some(StatsConfig {
            series: Some(netmon_stats::SeriesConfig::default()),
            ..StatsConfig::default()
        }),
        ..EngineConfig::default()
    }
}

fn stats_single(path: &std::path::Path) -> StatsRun {
    let mut src = netmon_capture::open_file(path).unwrap();
    let mut engine = Engine::classifying(stats_cfg()).unwrap();
    let mut sink = StatsSink::default();
    engine.run(&mut src, &mut sink);
    StatsRun {
        alerts: sink.alerts,
        series: sink.series,
        stats: engine.into_stats().unwrap(),
    }
}

fn stats_sharded(path: &std::path::Path, sc: &ShardConfig) -> StatsRun {
    let mut src = netmon_capture::open_file(path).unwrap();
    let mut sink = StatsSink::default();
    let o = run_sharded(&stats_cfg(), sc, &mut src, &mut sink, None).unwrap();
    StatsRun {
        alerts: sink.alerts,
        series: sink.series,
        stats: o.stats.unwrap(),
    }
}

/// The hierarchy as (path, frames, bytes), sorted: the children's order of first appearance
/// may differ between shard counts (two paths first seen in the same second in two shards).
fn hierarchy_paths(st: &netmon_stats::Stats) -> Vec<(String, u64, u64)> {
    fn walk(n: &[netmon_stats::HierarchyNode], pre: &str, out: &mut Vec<(String, u64, u64)>) {
        for c in n {
            let p = format!("{pre}/{}", c.protocol);
            out.push((p.clone(), c.frames, c.bytes));
            walk(&c.children, &p, out);
        }
    }
    let mut out = Vec::new();
    walk(&st.hierarchy().tree(), "", &mut out);
    out.sort();
    out
}

/// The counters that do not depend on the order in which detectors saw the flows.
fn order_free(st: &netmon_stats::Stats) -> netmon_stats::Counters {
    let mut c = st.counters();
    c.alerts_raised = 0;
    c.detector_drops = Default::default();
    c
}

fn raised(v: &[AlertEvent]) -> Vec<String> {
    let mut k: Vec<String> = v
        .iter()
        .filter(|e| !e.is_closed())
        .map(|e| format!("{:?} {}", e.alert().kind, e.alert().source))
        .collect();
    k.sort();
    k
}

fn check_stats_equivalence(path: &std::path::Path) -> usize {
    let base = stats_single(path);
    let name = path.display();
    let json = |v: &dyn erased::Ser| v.json();
    // Outputs of one batch, of a few, and of many (see `ShardConfig::output_packets`).
    for (n, batch, per, output) in [
        (1, 7, 3, 7),
        (1, 7, 3, 30),
        (1, 256, 16, 1024),
        (2, 7, 3, 7),
        (2, 7, 3, 40),
        (3, 5, 2, 1000),
        (2, 256, 16, 1024),
    ] {
        let sc = ShardConfig {
            shards: n,
            batch_packets: batch,
            batches_per_shard: per,
            queued_outputs: n * per,
            output_packets: output,
            backpressure: Backpressure::Block,
            active_every: None,
            processes: false,
        };
        let got = stats_sharded(path, &sc);
        let what = format!("{name}: {n} shards, batches of {batch}, outputs of {output}");
        // Windows, series, totals, hierarchy and talkers are the same with any shard count.
        assert_eq!(got.series.len(), base.series.len(), "{what}");
        for (a, b) in got.series.iter().zip(&base.series) {
            assert_eq!(a, b, "{what}");
        }
        assert_eq!(order_free(&got.stats), order_free(&base.stats), "{what}");
        assert_eq!(
            hierarchy_paths(&got.stats),
            hierarchy_paths(&base.stats),
            "{what}"
        );
        assert_eq!(
            json(&got.stats.talkers().top(50)),
            json(&base.stats.talkers().top(50)),
            "{what}"
        );
        assert_eq!(
            json(&got.stats.snapshot()),
            json(&base.stats.snapshot()),
            "{what}"
        );
        assert_eq!(raised(&got.alerts), raised(&base.alerts), "{what}");
        if n == 1 {
            // One shard: everything, in the same order, alert ids and evidence included.
            assert_eq!(json(&got.alerts), json(&base.alerts), "{what}");
            assert_eq!(
                json(&got.stats.report(50)),
                json(&base.stats.report(50)),
                "{what}"
            );
            assert_eq!(got.stats.counters(), base.stats.counters(), "{what}");
        }
    }
    base.series.len()
}

/// `serde_json` through a trait object, for the comparisons above.
mod erased {
    pub(crate) trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}

#[test]
fn shards_give_the_statistics_of_one_engine_on_the_corpus() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let mut points = 0;
    for path in corpus.captures() {
        points += check_stats_equivalence(&path);
    }
    assert!(points > 1000, "{points} series points");
}

/// A capture built to stress the aggregator: two named interfaces, a few hundred seconds with
/// idle gaps longer than the windows, packets out of time order, many short flows (idle
/// timeouts), a horizontal scan whose probes spread over the shards, a vertical scan and an
/// ARP sweep.
fn generated_capture(path: &std::path::Path) {
    use etherparse::PacketBuilder;
    use netmon_types::Timestamp;
    let mut w = netmon_capture::PcapNgWriter::create(path).unwrap();
    let eth = netmon_capture::LinkType::ETHERNET;
    let if0 = w.add_interface("eth0", eth, 0).unwrap();
    let if1 = w.add_interface("wan\u{1}1", eth, 0).unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let t0 = 1_700_000_000i64;
    let mut t_ns = 0i64;
    let mut frames = Vec::new();
    for i in 0..30_000u32 {
        let r = next();
        // Mostly small steps, now and then a gap of 70 s (past the longest window).
        t_ns += if i % 9_000 == 8_999 {
            70_000_000_000
        } else {
            (r % 40_000_000) as i64
        };
        // One packet in 50 is 0.3..1.3 s older than the clock (late).
        let ts = if r % 50 == 7 {
            t_ns - 300_000_000 - (r % 1_000_000_000) as i64
        } else {
            t_ns
        };
        let iface = if r % 7 == 0 { if1 } else { if0 };
        let client = [10, 0, (r >> 8) as u8 % 4, (r >> 16) as u8 % 50 + 1];
        let server = [192, 0, 2, (r >> 24) as u8 % 8 + 1];
        let sport = 30_000 + (r >> 32) as u16 % 200;
        let mut f = Vec::new();
        match (r >> 40) % 10 {
            0..=3 => {
                let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                    .ipv4(client, server, 64);
                let (c, s) = if r & 1 == 0 {
                    (client, server)
                } else {
                    (server, client)
                };
                let _ = (c, s);
                b.tcp(sport, 443, (r >> 20) as u32, 1000)
                    .ack(1)
                    .write(&mut f, &[0x17, 3, 3, 0, 4, 1, 2, 3, 4])
                    .unwrap();
            }
            4..=6 => {
                PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                    .ipv4(client, server, 64)
                    .udp(sport, 53 + (r % 3) as u16 * 1000)
                    .write(&mut f, &[0u8; 20])
                    .unwrap();
            }
            7 => {
                // Horizontal scan: one source, SYNs to port 22 of many hosts, refused.
                let victim = [198, 51, 100, (i % 250) as u8 + 1];
                PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 2])
                    .ipv4([203, 0, 113, 9], victim, 64)
                    .tcp(40_000 + (i % 1000) as u16, 22, 7, 1000)
                    .syn()
                    .write(&mut f, &[])
                    .unwrap();
                let mut rst = Vec::new();
                PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9])
                    .ipv4(victim, [203, 0, 113, 9], 64)
                    .tcp(22, 40_000 + (i % 1000) as u16, 0, 0)
                    .rst()
                    .ack(8)
                    .write(&mut rst, &[])
                    .unwrap();
                frames.push((ts, iface, f.clone()));
                f = rst;
            }
            8 => {
                // Vertical scan: one source, many ports of one host.
                PacketBuilder::ethernet2([2, 0, 0, 0, 0, 8], [2, 0, 0, 0, 0, 2])
                    .ipv4([203, 0, 113, 8], [192, 0, 2, 200], 64)
                    .tcp(50_000, 1 + (i % 2000) as u16, 7, 1000)
                    .syn()
                    .write(&mut f, &[])
                    .unwrap();
            }
            _ => {
                // ARP requests sweeping a /24.
                f.extend_from_slice(&[0xff; 6]);
                f.extend_from_slice(&[2, 0, 0, 0, 0, 7, 0x08, 0x06]);
                f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
                f.extend_from_slice(&[2, 0, 0, 0, 0, 7, 10, 9, 9, 9]);
                f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 9, 8, (i % 250) as u8 + 1]);
            }
        }
        frames.push((ts, iface, f));
    }
    for (ts, iface, f) in frames {
        let ts = Timestamp::from_secs_nanos(
            t0 + ts.div_euclid(1_000_000_000),
            ts.rem_euclid(1_000_000_000) as u32,
        );
        w.write_packet(ts, iface, &f, f.len() as u32).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn shards_give_the_statistics_of_one_engine_on_a_generated_capture() {
    let dir = std::env::temp_dir().join(format!("netmon-sharded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stress.pcapng");
    generated_capture(&path);
    let points = check_stats_equivalence(&path);
    let base = stats_single(&path);
    // The capture does what it was built for.
    let c = base.stats.counters();
    assert!(c.late_packets > 100 && c.clock_jumps >= 2, "{c:?}");
    let kinds: Vec<String> = raised(&base.alerts);
    for k in ["HorizontalScan", "VerticalScan", "ArpSweep"] {
        assert!(
            kinds.iter().any(|a| a.starts_with(k)),
            "{k} not in {kinds:?}"
        );
    }
    assert!(points > 1000, "{points}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counts the records handed over between two `after_batch` calls.
#[derive(Default)]
struct Bursts {
    records: Vec<FlowRecord>,
    since_batch: usize,
    largest: usize,
}

impl PipelineSink for Bursts {
    fn flow_ended(&mut self, record: FlowRecord) {
        self.records.push(record);
        self.since_batch += 1;
        self.largest = self.largest.max(self.since_batch);
    }
    fn after_batch(&mut self, _stats: Option<&netmon_stats::Stats>) {
        self.since_batch = 0;
    }
}

/// 5 000 one-packet UDP flows still open when the capture ends: the shard hands their records
/// over in pieces of `RECORDS_PER_EVENTS` at most (memory bounded by the queues, not by the
/// flow table), and none is lost.
#[test]
fn a_burst_of_ended_flows_goes_out_in_bounded_pieces() {
    use etherparse::PacketBuilder;
    let dir = std::env::temp_dir().join(format!("netmon-burst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("burst.pcapng");
    {
        let mut w = netmon_capture::PcapNgWriter::create(&path).unwrap();
        let if0 = w
            .add_interface("eth0", netmon_capture::LinkType::ETHERNET, 0)
            .unwrap();
        for i in 0..5_000u32 {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([10, 0, (i >> 8) as u8, i as u8], [10, 1, 0, 1], 64)
                .udp(20_000, 9_999);
            let mut f = Vec::new();
            b.write(&mut f, &[1, 2, 3]).unwrap();
            let ts = netmon_types::Timestamp(1_700_000_000_000_000_000 + i64::from(i) * 1_000);
            w.write_packet(ts, if0, &f, f.len() as u32).unwrap();
        }
        w.flush().unwrap();
    }
    let cfg = EngineConfig {
        stats: Some(StatsConfig::default()),
        ..EngineConfig::default()
    };
    let expected = single(&path, &cfg).len();
    assert_eq!(expected, 5_000);
    for shards in [1, 2] {
        let mut src = netmon_capture::open_file(&path).unwrap();
        let mut sink = Bursts::default();
        let sc = ShardConfig {
            shards,
            ..ShardConfig::default()
        };
        run_sharded(&cfg, &sc, &mut src, &mut sink, None).unwrap();
        assert_eq!(sink.records.len(), 5_000, "{shards} shard(s)");
        let mut ids: Vec<u64> = sink.records.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 5_000, "{shards} shard(s): unique ids");
        assert!(
            sink.largest == netmon_engine::sharded::RECORDS_PER_EVENTS,
            "{shards} shard(s): {} records in one piece",
            sink.largest
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
