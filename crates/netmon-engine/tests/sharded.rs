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
        backpressure: Backpressure::Block,
        active_every: None,
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
