//! What the daemon shares between the pipeline (writer) and the API (readers): published
//! snapshots behind short locks, atomics and the live event bus — never touched per packet.

use core::net::IpAddr;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netmon_api::metrics::MetricsWriter;
use netmon_api::{
    ApiBackend, BackendError, EventBus, FlowFilter, HistoryPage, HistoryQuery, InterfaceInfo,
    LiveEvent, StatsView, TopTalkers,
};
use netmon_engine::FlowRecord;
use netmon_engine::sharded::{PipelineCounters, PipelineSink};
use netmon_stats::{
    AlertEvent, HierarchyNode, RankBy, SeriesPoint, SnapshotCell, Stats, TalkersReport, Timestamp,
};
use parking_lot::Mutex;

use crate::radar::RadarTracker;

/// Alerts kept for `/api/v1/alerts` (their latest state, newest first).
const ALERTS_KEPT: usize = 1_000;
/// Talkers kept in the published report.
const TOP_KEPT: usize = 100;

/// The daemon's shared state; implements the API's backend.
pub(crate) struct Shared {
    pub(crate) ready: AtomicBool,
    pub(crate) bus: EventBus,
    pub(crate) counters: Arc<PipelineCounters>,
    pub(crate) interfaces: Mutex<Vec<InterfaceInfo>>,
    pub(crate) started: Instant,
    cell: Mutex<Option<SnapshotCell>>,
    report: Mutex<Published>,
    alerts: Mutex<VecDeque<AlertEvent>>,
    active: Mutex<BTreeMap<usize, Vec<FlowRecord>>>,
    pub(crate) records: AtomicU64,
    pub(crate) alerts_total: AtomicU64,
    pub(crate) store_rows: AtomicU64,
    pub(crate) store_dropped: AtomicU64,
    /// The newest `last_seen` handed to the store, ns (the retention clock of a replay).
    pub(crate) store_clock: AtomicI64,
    /// The store writer's counters, as of the last second.
    pub(crate) store_stats: Mutex<Option<netmon_store::WriterStats>>,
    /// The store's retention policy and how often it runs (SIGHUP may change it).
    pub(crate) retention: Mutex<(netmon_store::Retention, Duration)>,
    /// Export counters (`export:`): IPFIX data records sent and failed messages, syslog
    /// messages sent and failed, records/alerts the export queue could not take.
    pub(crate) export_ipfix_records: AtomicU64,
    pub(crate) export_ipfix_errors: AtomicU64,
    pub(crate) export_syslog_messages: AtomicU64,
    pub(crate) export_syslog_errors: AtomicU64,
    pub(crate) export_dropped: AtomicU64,
    /// The exporters configured (`ipfix`, `syslog`), for `/api/v1/status`.
    pub(crate) exporters: Mutex<Vec<&'static str>>,
    /// The PostgreSQL sink's spool: connected, spooled, drained, dropped, last error.
    pub(crate) pg_status: Mutex<Option<Arc<netmon_store::SpoolStatus>>>,
    /// Rows deleted by retention.
    pub(crate) retention_deleted: AtomicU64,
    /// A read-only connection to the store, for the history endpoint.
    pub(crate) history: Mutex<Option<netmon_store::SqliteStore>>,
}

#[derive(Default)]
struct Published {
    hierarchy: Vec<HierarchyNode>,
    talkers: Option<TalkersReport>,
}

impl Shared {
    pub(crate) fn new(counters: Arc<PipelineCounters>) -> Shared {
        Shared {
            ready: AtomicBool::new(false),
            bus: EventBus::new(4096),
            counters,
            interfaces: Mutex::new(Vec::new()),
            started: Instant::now(),
            cell: Mutex::new(None),
            report: Mutex::new(Published::default()),
            alerts: Mutex::new(VecDeque::new()),
            active: Mutex::new(BTreeMap::new()),
            records: AtomicU64::new(0),
            alerts_total: AtomicU64::new(0),
            store_rows: AtomicU64::new(0),
            store_dropped: AtomicU64::new(0),
            store_clock: AtomicI64::new(0),
            store_stats: Mutex::new(None),
            retention: Mutex::new((netmon_store::Retention::default(), Duration::from_secs(60))),
            retention_deleted: AtomicU64::new(0),
            pg_status: Mutex::new(None),
            exporters: Mutex::new(Vec::new()),
            export_ipfix_records: AtomicU64::new(0),
            export_ipfix_errors: AtomicU64::new(0),
            export_syslog_messages: AtomicU64::new(0),
            export_syslog_errors: AtomicU64::new(0),
            export_dropped: AtomicU64::new(0),
            history: Mutex::new(None),
        }
    }
}

/// Where the pipeline's output goes: the store (through `store`), the API's state, the live bus.
pub(crate) struct DaemonSink {
    pub(crate) shared: Arc<Shared>,
    pub(crate) store: Option<crate::history::StoreSink>,
    /// The PostgreSQL sink (`storage.postgres`), through its spool.
    pub(crate) pg: Option<crate::history::StoreSink>,
    /// IPFIX and syslog export (`export:`).
    pub(crate) export: Option<crate::export::ExportSink>,
    /// Scope, GeoIP/ASN, trackers added to every record (`enrich:`).
    pub(crate) enricher: Option<Arc<netmon_engine::enrich::Enricher>>,
    last_report: Option<Instant>,
    last_snapshot_ts: i64,
    radar: RadarTracker,
    last_radar: Option<Instant>,
}

impl DaemonSink {
    /// `own`: this host's addresses (the radar's inner ring; loopback always counts).
    pub(crate) fn new(
        shared: Arc<Shared>,
        store: Option<crate::history::StoreSink>,
        own: Vec<IpAddr>,
    ) -> Self {
        DaemonSink {
            shared,
            store,
            enricher: None,
            export: None,
            pg: None,
            last_report: None,
            last_snapshot_ts: i64::MIN,
            radar: RadarTracker::new(own),
            last_radar: None,
        }
    }

    /// Publishes the `endpoints` event, at most about once a second, when a shard exported
    /// its flows since the last one and somebody listens.
    fn publish_radar(&mut self) {
        if !self.radar.fresh()
            || !self.shared.bus.has_subscribers()
            || self
                .last_radar
                .is_some_and(|t| t.elapsed() < Duration::from_millis(900))
        {
            return;
        }
        self.last_radar = Some(Instant::now());
        let names: Vec<String> = self
            .shared
            .interfaces
            .lock()
            .iter()
            .map(|i| i.name.clone())
            .collect();
        let active = self.shared.active.lock();
        let report = self
            .radar
            .report(active.iter().map(|(s, v)| (*s, v.as_slice())), &names);
        drop(active);
        self.shared
            .bus
            .publish(LiveEvent::Endpoints(Arc::new(report)));
    }
}

impl PipelineSink for DaemonSink {
    fn attach(&mut self, stats: &mut Stats) {
        *self.shared.cell.lock() = Some(stats.snapshot_cell());
    }

    fn after_batch(&mut self, stats: Option<&Stats>) {
        for store in [self.store.as_mut(), self.pg.as_mut()]
            .into_iter()
            .flatten()
        {
            store.tick(&self.shared);
        }
        if let Some(x) = self.export.as_mut() {
            x.tick(&self.shared);
        }
        self.publish_radar();
        let Some(st) = stats else { return };
        // Reports at most once a second of wall time: building them walks the hierarchy and
        // the talkers' tables.
        if self
            .last_report
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_report = Some(Instant::now());
        let mut r = self.shared.report.lock();
        r.hierarchy = st.hierarchy().tree();
        r.talkers = Some(st.talkers().top(TOP_KEPT));
        drop(r);
        if self.shared.bus.has_subscribers() {
            let cell = self.shared.cell.lock().clone();
            if let Some(snap) = cell.map(|c| c.load()) {
                if snap.ts.0 != self.last_snapshot_ts {
                    self.last_snapshot_ts = snap.ts.0;
                    self.shared.bus.publish(LiveEvent::Stats(snap));
                }
            }
        }
    }

    fn finished(&mut self, stats: Option<&Stats>) {
        // The final hierarchy and talkers, whatever the rate limit said.
        self.last_report = None;
        self.after_batch(stats);
    }

    fn active_flows(&mut self, shard: usize, mut records: Vec<FlowRecord>) {
        if let Some(e) = &self.enricher {
            records.iter_mut().for_each(|r| e.apply(r));
        }
        self.radar.update(shard, &records, Instant::now());
        self.shared.active.lock().insert(shard, records);
    }

    fn flow_ended(&mut self, mut record: FlowRecord) {
        if let Some(e) = &self.enricher {
            e.apply(&mut record);
        }
        self.shared.records.fetch_add(1, Ordering::Relaxed);
        for st in [self.store.as_mut(), self.pg.as_mut()]
            .into_iter()
            .flatten()
        {
            st.push(&record, &self.shared);
        }
        if let Some(x) = self.export.as_mut() {
            x.push_flow(&record, &self.shared);
        }
        if self.shared.bus.has_subscribers() {
            self.shared.bus.publish(LiveEvent::FlowEnded(record));
        }
    }

    fn series(&mut self, point: &SeriesPoint) {
        for st in [self.store.as_mut(), self.pg.as_mut()]
            .into_iter()
            .flatten()
        {
            st.push_series(point, &self.shared);
        }
    }

    fn alert(&mut self, event: &AlertEvent) {
        self.shared.alerts_total.fetch_add(1, Ordering::Relaxed);
        for st in [self.store.as_mut(), self.pg.as_mut()]
            .into_iter()
            .flatten()
        {
            st.push_alert(event);
        }
        if let Some(x) = self.export.as_mut() {
            x.push_alert(event, &self.shared);
        }
        {
            let mut a = self.shared.alerts.lock();
            // The latest state of each alert: a closed alert replaces its raised form.
            let id = event.alert().id;
            a.retain(|e| e.alert().id != id);
            a.push_front(event.clone());
            a.truncate(ALERTS_KEPT);
        }
        if self.shared.bus.has_subscribers() {
            self.shared.bus.publish(LiveEvent::Alert(event.clone()));
        }
    }
}

impl ApiBackend for Shared {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn status(&self) -> netmon_api::StatusView {
        use netmon_api::SinkStatus;
        let mut sinks = Vec::new();
        if let Some(w) = self.store_stats.lock().clone() {
            sinks.push(SinkStatus {
                name: "sqlite".into(),
                connected: w.last_error.is_none() || w.errors == 0,
                pending: w.queue_depth as u64,
                written: Some(w.flow_rows + w.series_rows + w.alert_rows),
                dropped: self.store_dropped.load(Ordering::Relaxed) + w.rows_failed,
                last_error: w.last_error,
            });
        }
        if let Some(pg) = self.pg_status.lock().clone() {
            sinks.push(SinkStatus {
                name: "postgres".into(),
                connected: pg.connected(),
                pending: pg.spooled_rows(),
                written: None,
                dropped: pg.dropped_rows(),
                last_error: pg.last_error(),
            });
        }
        let dropped = self.export_dropped.load(Ordering::Relaxed);
        for name in self.exporters.lock().iter() {
            let (written, errors) = match *name {
                "ipfix" => (&self.export_ipfix_records, &self.export_ipfix_errors),
                _ => (&self.export_syslog_messages, &self.export_syslog_errors),
            };
            let errors = errors.load(Ordering::Relaxed);
            sinks.push(SinkStatus {
                name: (*name).into(),
                connected: errors == 0,
                pending: 0,
                written: Some(written.load(Ordering::Relaxed)),
                dropped,
                last_error: (errors > 0).then(|| format!("{errors} sends failed (see the log)")),
            });
        }
        netmon_api::StatusView {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            ready: self.ready.load(Ordering::Acquire),
            sinks,
        }
    }

    fn interfaces(&self) -> Vec<InterfaceInfo> {
        self.interfaces.lock().clone()
    }

    fn active_flows(&self, filter: &FlowFilter) -> Vec<FlowRecord> {
        let all: Vec<FlowRecord> = self.active.lock().values().flatten().cloned().collect();
        filter.apply(all)
    }

    fn flow_history(&self, q: &HistoryQuery) -> Result<HistoryPage, BackendError> {
        match self.history.lock().as_mut() {
            Some(store) => crate::history::query(store, q),
            None => Err(BackendError::Unavailable(
                "no flow history: storage is not enabled".into(),
            )),
        }
    }

    fn stats(&self) -> StatsView {
        let snapshot = self
            .cell
            .lock()
            .as_ref()
            .map(SnapshotCell::load)
            .unwrap_or_default();
        StatsView {
            snapshot,
            hierarchy: self.report.lock().hierarchy.clone(),
        }
    }

    fn top(&self, n: usize, by: RankBy) -> TopTalkers {
        let r = self.report.lock();
        let Some(t) = &r.talkers else {
            return TopTalkers {
                by,
                hosts: Vec::new(),
                pairs: Vec::new(),
                ports: Vec::new(),
            };
        };
        fn cut<T: Clone>(v: &[T], n: usize) -> Vec<T> {
            v.iter().take(n).cloned().collect()
        }
        match by {
            RankBy::Bytes => TopTalkers {
                by,
                hosts: cut(&t.hosts_by_bytes, n),
                pairs: cut(&t.pairs_by_bytes, n),
                ports: cut(&t.ports_by_bytes, n),
            },
            RankBy::Packets => TopTalkers {
                by,
                hosts: cut(&t.hosts_by_packets, n),
                pairs: cut(&t.pairs_by_packets, n),
                ports: cut(&t.ports_by_packets, n),
            },
        }
    }

    fn alerts(&self, since: Option<Timestamp>, limit: usize) -> Vec<AlertEvent> {
        self.alerts
            .lock()
            .iter()
            .filter(|e| since.is_none_or(|s| e.alert().ts >= s))
            .take(limit)
            .cloned()
            .collect()
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<LiveEvent>> {
        self.bus.subscribe()
    }

    fn metrics(&self, out: &mut MetricsWriter) {
        let c = &self.counters;
        out.counter(
            "netmon_packets_read_total",
            "Frames read from the capture source.",
            &[],
            c.read.load(Ordering::Relaxed),
        );
        for (i, ((to, dropped), done)) in c
            .to_shard
            .iter()
            .zip(&c.dropped)
            .zip(&c.processed)
            .enumerate()
        {
            let shard = i.to_string();
            let l = [("stage", "shard"), ("shard", shard.as_str())];
            let (to_n, done_n) = (to.load(Ordering::Relaxed), done.load(Ordering::Relaxed));
            out.gauge_int(
                "netmon_stage_queue_packets",
                "Frames handed to a stage and not yet processed (its queue depth).",
                &l,
                to_n.saturating_sub(done_n),
            );
            let ls = [("shard", shard.as_str())];
            if let Some(a) = c.active_flows.get(i) {
                out.gauge_int(
                    "netmon_shard_flows_active",
                    "Flows in a shard's flow table.",
                    &ls,
                    a.load(Ordering::Relaxed),
                );
            }
            if let Some(e) = c.evicted.get(i) {
                out.counter(
                    "netmon_shard_flows_evicted_total",
                    "Flows a shard's full flow table evicted (flows.max).",
                    &ls,
                    e.load(Ordering::Relaxed),
                );
            }
            out.counter(
                "netmon_stage_packets_in_total",
                "Frames handed to a pipeline stage.",
                &l,
                to.load(Ordering::Relaxed),
            );
            out.counter(
                "netmon_stage_packets_out_total",
                "Frames a pipeline stage finished.",
                &l,
                done.load(Ordering::Relaxed),
            );
            out.counter(
                "netmon_stage_dropped_total",
                "Frames dropped because a stage's queue was full.",
                &l,
                dropped.load(Ordering::Relaxed),
            );
        }
        out.counter(
            "netmon_flows_ended_total",
            "Flow records produced.",
            &[],
            self.records.load(Ordering::Relaxed),
        );
        out.counter(
            "netmon_alerts_total",
            "Alert events (raised and closed).",
            &[],
            self.alerts_total.load(Ordering::Relaxed),
        );
        out.counter(
            "netmon_store_rows_total",
            "Rows (flows, series points, alerts) handed to the store's writer.",
            &[],
            self.store_rows.load(Ordering::Relaxed),
        );
        out.counter(
            "netmon_store_dropped_total",
            "Rows the store's queue could not take (live capture only; a replay waits).",
            &[],
            self.store_dropped.load(Ordering::Relaxed),
        );
        for (name, help, v) in [
            (
                "netmon_export_ipfix_records_total",
                "IPFIX data records sent (one per flow direction with packets).",
                &self.export_ipfix_records,
            ),
            (
                "netmon_export_ipfix_errors_total",
                "IPFIX messages that could not be sent.",
                &self.export_ipfix_errors,
            ),
            (
                "netmon_export_syslog_messages_total",
                "Syslog alert messages sent.",
                &self.export_syslog_messages,
            ),
            (
                "netmon_export_syslog_errors_total",
                "Syslog messages that could not be sent.",
                &self.export_syslog_errors,
            ),
            (
                "netmon_export_dropped_total",
                "Records and alerts the export queue could not take.",
                &self.export_dropped,
            ),
        ] {
            out.counter(name, help, &[], v.load(Ordering::Relaxed));
        }
        out.counter(
            "netmon_store_retention_deleted_total",
            "Rows deleted by storage.retention.",
            &[],
            self.retention_deleted.load(Ordering::Relaxed),
        );
        if let Some(pg) = self.pg_status.lock().clone() {
            out.gauge_int(
                "netmon_store_postgres_connected",
                "1 while the PostgreSQL sink's last write reached the database.",
                &[],
                u64::from(pg.connected()),
            );
            out.gauge_int(
                "netmon_store_spooled_rows",
                "Rows waiting in the PostgreSQL sink's on-disk spool.",
                &[],
                pg.spooled_rows(),
            );
            out.counter(
                "netmon_store_spool_drained_rows_total",
                "Spooled rows written to PostgreSQL once it was back.",
                &[],
                pg.drained_rows(),
            );
            out.counter(
                "netmon_store_spool_dropped_rows_total",
                "Rows the spool dropped (over storage.postgres.spool_max_mib, or refused).",
                &[],
                pg.dropped_rows(),
            );
        }
        if let Some(w) = self.store_stats.lock().clone() {
            for (table, n) in [
                ("flows", w.flow_rows),
                ("series", w.series_rows),
                ("alerts", w.alert_rows),
            ] {
                out.counter(
                    "netmon_store_committed_rows_total",
                    "Rows committed to the store, per table.",
                    &[("table", table)],
                    n,
                );
            }
            out.counter(
                "netmon_store_commits_total",
                "Store transactions committed.",
                &[],
                w.commits,
            );
            out.counter(
                "netmon_store_errors_total",
                "Store batches that failed (their rows are lost; the log says why).",
                &[],
                w.errors,
            );
            out.gauge_int(
                "netmon_store_queue_depth",
                "Batches waiting for the store's writer.",
                &[],
                w.queue_depth as u64,
            );
            if let Some(ck) = w.checkpoints {
                for (by, n) in [("background", ck.background), ("writer", ck.writer)] {
                    out.counter(
                        "netmon_store_checkpoints_total",
                        "Write-ahead log checkpoints: by the background thread, or by the writer when the log reached its bound.",
                        &[("by", by)],
                        n,
                    );
                }
                out.counter(
                    "netmon_store_checkpoint_failures_total",
                    "Background checkpoints that failed (the next one tries again).",
                    &[],
                    ck.background_failed,
                );
                out.gauge_int(
                    "netmon_store_wal_pages",
                    "Pages in the write-ahead log after the last commit.",
                    &[],
                    ck.log_frames,
                );
            }
        }
        for i in self.interfaces.lock().iter() {
            let l = [("interface", i.name.as_str())];
            out.counter(
                "netmon_interface_packets_total",
                "Frames captured on an interface.",
                &l,
                i.packets,
            );
            out.counter(
                "netmon_interface_bytes_total",
                "Wire bytes captured on an interface.",
                &l,
                i.bytes,
            );
            if let Some(d) = i.kernel_dropped {
                out.counter(
                    "netmon_interface_kernel_dropped_total",
                    "Frames the kernel dropped before netmon read them.",
                    &l,
                    d,
                );
            }
        }
        let active: usize = self.active.lock().values().map(Vec::len).sum();
        out.gauge_int(
            "netmon_active_flows_exported",
            "Active flows in the latest export of the shards (their busiest).",
            &[],
            active as u64,
        );
        out.gauge(
            "netmon_uptime_seconds",
            "Seconds since the daemon started.",
            &[],
            self.started.elapsed().as_secs_f64(),
        );
        if let Some((rss, cpu)) = process_usage() {
            out.gauge_int(
                "netmon_process_resident_bytes",
                "Resident memory of the daemon.",
                &[],
                rss,
            );
            out.gauge(
                "netmon_process_cpu_seconds",
                "CPU time the daemon used (user + system).",
                &[],
                cpu,
            );
        }
    }
}

/// Resident bytes and CPU seconds of this process, from `/proc/self` (Linux).
fn process_usage() -> Option<(u64, f64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, inside parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // Linux's USER_HZ is 100 on every architecture netmon builds for.
    Some((pages * 4096, (utime + stime) / 100.0))
}
