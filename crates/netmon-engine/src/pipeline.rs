//! [`Pipeline`]: the sharded pipeline put together in a few lines — a source, the number of
//! flow shards, statistics, and what to do with flow records, alerts and series points.
//!
//! ```no_run
//! use netmon_engine::pipeline::Pipeline;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let outcome = Pipeline::file("capture.pcapng")?
//!     .shards(2)
//!     .with_stats(netmon_stats::StatsConfig::default())
//!     .on_flow(|r| println!("{} {} {:?}", r.src_ip, r.dst_ip, r.sni))
//!     .on_alert(|a| eprintln!("alert: {:?}", a.alert().kind))
//!     .run()?;
//! eprintln!("{} packets", outcome.summary.packets);
//! # Ok(())
//! # }
//! ```
//!
//! [`Pipeline::from_config`] opens what a YAML [`Config`] names (live interfaces, or a file
//! replayed at `replay.speed`) with its engine settings, as `netmond` does.

use std::path::Path;
use std::sync::Arc;

use netmon_capture::replay::{Paced, Speed as Pace};
use netmon_capture::{Backend, CaptureError, CaptureSource, LiveConfig, StopHandle};
use netmon_stats::{AlertEvent, SeriesPoint, Stats, StatsConfig};

use crate::config::{Config, Source, Speed};
use crate::sharded::{
    Backpressure, PipelineCounters, PipelineSink, ShardConfig, ShardedOutcome, run_sharded,
};
use crate::{ConfigError, EngineConfig, FlowRecord};

/// Why a pipeline could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The configuration names no source.
    #[error("nothing to capture: set `interfaces` (live) or `capture.file` (replay) in the config")]
    NoSource,
    /// This build has no live capture backend for the platform.
    #[error("this build has no live capture backend")]
    NoBackend,
    /// The capture file could not be opened.
    #[error("capture.file: {0}")]
    File(#[source] CaptureError),
    /// The live capture could not be opened.
    #[error("capture: {0}")]
    Live(#[source] CaptureError),
    /// The engine's configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Opens the source a configuration names: `capture.file` replayed at `replay.speed`, or the
/// `interfaces` live with `capture.backend` (the platform's best when unset).
pub fn open_source(cfg: &Config) -> Result<Box<dyn CaptureSource>, PipelineError> {
    match cfg.source() {
        Source::None => Err(PipelineError::NoSource),
        Source::File { path, speed } => {
            let f = netmon_capture::open_file(&path).map_err(PipelineError::File)?;
            Ok(match speed {
                Speed::Max => Box::new(f),
                Speed::Realtime => Box::new(Paced::new(f, Pace::Times(1.0))),
                Speed::Factor(x) => Box::new(Paced::new(f, Pace::Times(x))),
            })
        }
        Source::Live { backend, config } => {
            let backend = match backend {
                Some(b) => b,
                None => Backend::default_live(&config).ok_or(PipelineError::NoBackend)?,
            };
            netmon_capture::open_live(backend, &config).map_err(PipelineError::Live)
        }
    }
}

type FlowFn = Box<dyn FnMut(FlowRecord) + Send>;
type AlertFn = Box<dyn FnMut(&AlertEvent) + Send>;
type SeriesFn = Box<dyn FnMut(&SeriesPoint) + Send>;

/// The callbacks and the optional custom sink, as one [`PipelineSink`].
#[derive(Default)]
struct Callbacks {
    flow: Option<FlowFn>,
    alert: Option<AlertFn>,
    series: Option<SeriesFn>,
    inner: Option<Box<dyn PipelineSink>>,
}

impl PipelineSink for Callbacks {
    fn attach(&mut self, stats: &mut Stats) {
        if let Some(s) = self.inner.as_mut() {
            s.attach(stats);
        }
    }
    fn after_batch(&mut self, stats: Option<&Stats>) {
        if let Some(s) = self.inner.as_mut() {
            s.after_batch(stats);
        }
    }
    fn active_flows(&mut self, shard: usize, records: Vec<FlowRecord>) {
        if let Some(s) = self.inner.as_mut() {
            s.active_flows(shard, records);
        }
    }
    fn flow_ended(&mut self, record: FlowRecord) {
        match (self.flow.as_mut(), self.inner.as_mut()) {
            (Some(f), Some(s)) => {
                f(record.clone());
                s.flow_ended(record);
            }
            (Some(f), None) => f(record),
            (None, Some(s)) => s.flow_ended(record),
            (None, None) => {}
        }
    }
    fn alert(&mut self, event: &AlertEvent) {
        if let Some(f) = self.alert.as_mut() {
            f(event);
        }
        if let Some(s) = self.inner.as_mut() {
            s.alert(event);
        }
    }
    fn series(&mut self, point: &SeriesPoint) {
        if let Some(f) = self.series.as_mut() {
            f(point);
        }
        if let Some(s) = self.inner.as_mut() {
            s.series(point);
        }
    }
}

/// A sharded pipeline being put together; [`run`](Pipeline::run) runs it on the calling
/// thread (plus one reader and `shards` flow threads) until the source ends or is stopped.
///
/// Defaults: one shard, classification on, statistics off, a replay waits for slow shards
/// while a live source drops (and counts) what they cannot take.
pub struct Pipeline {
    source: Box<dyn CaptureSource>,
    engine: EngineConfig,
    shard: ShardConfig,
    sink: Callbacks,
    counters: Option<Arc<PipelineCounters>>,
}

impl Pipeline {
    /// A pipeline reading `source`, which is replayed without loss ([`Backpressure::Block`]).
    pub fn new(source: Box<dyn CaptureSource>) -> Pipeline {
        Pipeline {
            source,
            engine: EngineConfig::default(),
            shard: ShardConfig::default(),
            sink: Callbacks::default(),
            counters: None,
        }
    }

    /// A pipeline reading a pcap or pcapng file at full speed.
    pub fn file(path: impl AsRef<Path>) -> Result<Pipeline, PipelineError> {
        let f = netmon_capture::open_file(path).map_err(PipelineError::File)?;
        Ok(Pipeline::new(Box::new(f)))
    }

    /// A pipeline capturing live on `interfaces` with the platform's best backend and its
    /// defaults (promiscuous, full frames); packets a slow shard cannot take are dropped and
    /// counted, never queued without bound.
    pub fn live<S: AsRef<str>>(interfaces: &[S]) -> Result<Pipeline, PipelineError> {
        let cfg = LiveConfig {
            interfaces: interfaces.iter().map(|s| s.as_ref().to_owned()).collect(),
            ..LiveConfig::default()
        };
        let backend = Backend::default_live(&cfg).ok_or(PipelineError::NoBackend)?;
        let src = netmon_capture::open_live(backend, &cfg).map_err(PipelineError::Live)?;
        Ok(Pipeline::new(src).backpressure(Backpressure::Drop))
    }

    /// The source, engine settings (flows, classification, statistics and detectors) and
    /// shard count of a configuration file, as `netmond` runs them.
    pub fn from_config(cfg: &Config) -> Result<Pipeline, PipelineError> {
        let live = matches!(cfg.source(), Source::Live { .. });
        let src = open_source(cfg)?;
        let p = Pipeline::new(src)
            .engine_config(cfg.engine_config())
            .shards(cfg.engine.resolved_shards());
        Ok(if live {
            p.backpressure(Backpressure::Drop)
        } else {
            p
        })
    }

    /// Flow shards (threads); at least 1.
    pub fn shards(mut self, n: usize) -> Pipeline {
        self.shard.shards = n.max(1);
        self
    }

    /// Flow table, classification and statistics settings.
    pub fn engine_config(mut self, cfg: EngineConfig) -> Pipeline {
        self.engine = cfg;
        self
    }

    /// Turns statistics and detectors on: windows, top talkers, alerts, series points.
    pub fn with_stats(mut self, cfg: StatsConfig) -> Pipeline {
        self.engine.stats = Some(cfg);
        self
    }

    /// What the reader does when a shard falls behind.
    pub fn backpressure(mut self, b: Backpressure) -> Pipeline {
        self.shard.backpressure = b;
        self
    }

    /// The whole sharding setup (batch sizes, queue depths, active-flow exports).
    pub fn shard_config(mut self, cfg: ShardConfig) -> Pipeline {
        self.shard = cfg;
        self
    }

    /// Called with every ended flow's record (on the aggregator's thread).
    pub fn on_flow(mut self, f: impl FnMut(FlowRecord) + Send + 'static) -> Pipeline {
        self.sink.flow = Some(Box::new(f));
        self
    }

    /// Called with every alert raised or closed (needs [`with_stats`](Self::with_stats)).
    pub fn on_alert(mut self, f: impl FnMut(&AlertEvent) + Send + 'static) -> Pipeline {
        self.sink.alert = Some(Box::new(f));
        self
    }

    /// Called with every closed window value (needs [`with_stats`](Self::with_stats) with
    /// [`StatsConfig::series`]).
    pub fn on_series(mut self, f: impl FnMut(&SeriesPoint) + Send + 'static) -> Pipeline {
        self.sink.series = Some(Box::new(f));
        self
    }

    /// A sink of its own, called after the callbacks (e.g. one that also takes the
    /// statistics' snapshot cell, or the busiest active flows).
    pub fn sink(mut self, sink: impl PipelineSink + 'static) -> Pipeline {
        self.sink.inner = Some(Box::new(sink));
        self
    }

    /// Stops the source from another thread (e.g. a signal handler): what was read is
    /// processed, open flows end with reason `shutdown`, then [`run`](Self::run) returns.
    pub fn stop_handle(&self) -> StopHandle {
        self.source.stop_handle()
    }

    /// The stage counters, readable while the pipeline runs.
    pub fn counters(&mut self) -> Arc<PipelineCounters> {
        let n = self.shard.shards.max(1);
        Arc::clone(
            self.counters
                .get_or_insert_with(|| Arc::new(PipelineCounters::new(n))),
        )
    }

    /// Runs to the end of the source (or a stop) and returns the totals.
    pub fn run(mut self) -> Result<ShardedOutcome, PipelineError> {
        if self
            .counters
            .as_ref()
            .is_some_and(|c| c.to_shard.len() != self.shard.shards.max(1))
        {
            // Shards changed after `counters()`: fresh counters of the right size.
            self.counters = None;
        }
        Ok(run_sharded(
            &self.engine,
            &self.shard,
            self.source.as_mut(),
            &mut self.sink,
            self.counters,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn corpus_file(name: &str) -> Option<std::path::PathBuf> {
        netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).map(|c| c.dir().join(name))
    }

    /// The builder runs what `run_sharded` runs: the same records, and the callbacks and a
    /// custom sink both see every record and alert.
    #[test]
    fn callbacks_and_sink_see_everything() {
        let Some(file) = corpus_file("ndpi_synscan.pcap") else {
            return;
        };
        let flows = Arc::new(Mutex::new(Vec::new()));
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let series = Arc::new(Mutex::new(0usize));
        let (f2, a2, s2) = (flows.clone(), alerts.clone(), series.clone());
        let mut p = Pipeline::file(&file)
            .unwrap()
            .shards(2)
            .with_stats(StatsConfig {
                series: Some(netmon_stats::SeriesConfig::default()),
                ..StatsConfig::default()
            })
            .on_flow(move |r| f2.lock().unwrap().push(r.id))
            .on_alert(move |a| a2.lock().unwrap().push(a.alert().kind))
            .on_series(move |_| *s2.lock().unwrap() += 1)
            .sink(Vec::<FlowRecord>::new());
        let counters = p.counters();
        let out = p.run().unwrap();
        let mut ids = flows.lock().unwrap().clone();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len() as u64, out.summary.flows.created);
        assert_eq!(ids.len(), 1994);
        assert_eq!(
            counters.read.load(std::sync::atomic::Ordering::Relaxed),
            out.summary.packets
        );
        assert!(
            alerts
                .lock()
                .unwrap()
                .contains(&netmon_stats::AlertKind::VerticalScan)
        );
        assert!(*series.lock().unwrap() > 0);

        // Without statistics no alert and no series point, the same flows.
        let n = Arc::new(Mutex::new(0usize));
        let n2 = n.clone();
        let out = Pipeline::file(&file)
            .unwrap()
            .on_flow(move |_| *n2.lock().unwrap() += 1)
            .run()
            .unwrap();
        assert_eq!(*n.lock().unwrap(), 1994);
        assert!(out.stats.is_none());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = Pipeline::file("/nonexistent/x.pcap").err().unwrap();
        assert!(e.to_string().starts_with("capture.file: "), "{e}");
        assert!(e.to_string().contains("/nonexistent/x.pcap"), "{e}");
        let cfg = Config::default();
        let e = Pipeline::from_config(&cfg).err().unwrap();
        assert!(matches!(e, PipelineError::NoSource), "{e}");
    }
}
