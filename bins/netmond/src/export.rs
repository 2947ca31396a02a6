//! Export to existing collectors (`export:`): IPFIX for flow records, syslog for alerts (and
//! optionally flow summaries). One thread does the sending, so that a slow or unreachable
//! collector never holds up the pipeline: the aggregator hands it batches through a bounded
//! queue and counts what did not fit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use netmon_engine::FlowRecord;
use netmon_engine::config::{Config, ExportTransport};
use netmon_export::ipfix::{IpfixConfig, IpfixExporter, Transport as IpfixTransport};
use netmon_export::syslog::{Formatter, SyslogConfig, SyslogSender, Transport as SyslogTransport};
use netmon_stats::AlertEvent;

use crate::state::Shared;

/// Flow records per batch handed to the export thread.
const BATCH: usize = 512;
/// Batches queued before new ones are dropped (and counted).
const QUEUE: usize = 64;

enum Msg {
    Flows(Vec<FlowRecord>),
    Alert(Box<AlertEvent>),
}

/// The aggregator's side: buffers records and alerts for the export thread.
pub(crate) struct ExportSink {
    tx: SyncSender<Msg>,
    thread: std::thread::JoinHandle<()>,
    flows: Vec<FlowRecord>,
    wants_flows: bool,
    wants_alerts: bool,
    last_send: Instant,
}

/// Starts the export thread when `export:` names a collector; `None` otherwise.
pub(crate) fn start(cfg: &Config, shared: Arc<Shared>) -> anyhow::Result<Option<ExportSink>> {
    let e = &cfg.export;
    let ipfix = match e.ipfix.collector {
        Some(collector) => {
            let c = IpfixConfig {
                collector,
                transport: match e.ipfix.transport {
                    ExportTransport::Udp => IpfixTransport::Udp,
                    ExportTransport::Tcp => IpfixTransport::Tcp,
                },
                domain_id: e.ipfix.domain_id,
                template_refresh: e.ipfix.template_refresh,
                mtu: 1400,
            };
            Some(IpfixExporter::new(c).map_err(|e| anyhow::anyhow!("export.ipfix: {e}"))?)
        }
        None => None,
    };
    let syslog = match e.syslog.server {
        Some(server) => {
            let c = SyslogConfig {
                server,
                transport: match e.syslog.transport {
                    ExportTransport::Udp => SyslogTransport::Udp,
                    ExportTransport::Tcp => SyslogTransport::Tcp,
                },
                facility: e.syslog.facility,
                hostname: crate::hostname(),
                app_name: "netmond".into(),
            };
            let f = Formatter::new(&c);
            let s = SyslogSender::new(c).map_err(|e| anyhow::anyhow!("export.syslog: {e}"))?;
            Some((f, s, e.syslog.flows))
        }
        None => None,
    };
    if ipfix.is_none() && syslog.is_none() {
        return Ok(None);
    }
    {
        let mut names = shared.exporters.lock();
        if ipfix.is_some() {
            names.push("ipfix");
        }
        if syslog.is_some() {
            names.push("syslog");
        }
    }
    let wants_flows = ipfix.is_some() || syslog.as_ref().is_some_and(|s| s.2);
    let wants_alerts = syslog.is_some();
    let (tx, rx) = sync_channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("netmon-export".into())
        .spawn(move || run(rx, ipfix, syslog, &shared))?;
    Ok(Some(ExportSink {
        tx,
        thread,
        flows: Vec::with_capacity(BATCH),
        wants_flows,
        wants_alerts,
        last_send: Instant::now(),
    }))
}

fn run(
    rx: Receiver<Msg>,
    mut ipfix: Option<IpfixExporter>,
    mut syslog: Option<(Formatter, SyslogSender, bool)>,
    shared: &Shared,
) {
    let mut logged_ipfix = false;
    let mut logged_syslog = false;
    for m in rx {
        match m {
            Msg::Flows(v) => {
                if let Some(x) = ipfix.as_mut() {
                    let now = u32::try_from(crate::now().0 / 1_000_000_000).unwrap_or(0);
                    if let Err(e) = x.export(&v, now) {
                        if !logged_ipfix {
                            tracing::warn!("export.ipfix: {e} (further errors are counted only)");
                            logged_ipfix = true;
                        }
                    }
                    let st = x.stats();
                    shared
                        .export_ipfix_records
                        .store(st.records, Ordering::Relaxed);
                    shared
                        .export_ipfix_errors
                        .store(st.send_errors, Ordering::Relaxed);
                }
                if let Some((f, s, true)) = syslog.as_mut() {
                    for r in &v {
                        let _ = s.send(&f.flow(r));
                    }
                }
            }
            Msg::Alert(a) => {
                if let Some((f, s, _)) = syslog.as_mut() {
                    match s.send(&f.alert(&a)) {
                        Ok(()) => {
                            shared
                                .export_syslog_messages
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if !logged_syslog => {
                            tracing::warn!("export.syslog: {e} (further errors are counted only)");
                            logged_syslog = true;
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        if let Some((_, s, _)) = syslog.as_ref() {
            shared
                .export_syslog_errors
                .store(s.send_errors, Ordering::Relaxed);
        }
    }
}

impl ExportSink {
    pub(crate) fn push_flow(&mut self, r: &FlowRecord, shared: &Shared) {
        if !self.wants_flows {
            return;
        }
        self.flows.push(r.clone());
        if self.flows.len() >= BATCH {
            self.send_flows(shared);
        }
    }

    pub(crate) fn push_alert(&mut self, e: &AlertEvent, shared: &Shared) {
        if self.wants_alerts {
            self.send(Msg::Alert(Box::new(e.clone())), 1, shared);
        }
    }

    /// After each pipeline batch: buffered records go out at least once a second.
    pub(crate) fn tick(&mut self, shared: &Shared) {
        if self.last_send.elapsed() >= Duration::from_secs(1) {
            self.send_flows(shared);
        }
    }

    fn send_flows(&mut self, shared: &Shared) {
        self.last_send = Instant::now();
        if self.flows.is_empty() {
            return;
        }
        let v = std::mem::replace(&mut self.flows, Vec::with_capacity(BATCH));
        let n = v.len() as u64;
        self.send(Msg::Flows(v), n, shared);
    }

    fn send(&mut self, m: Msg, n: u64, shared: &Shared) {
        match self.tx.try_send(m) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                shared.export_dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Sends what is buffered, lets the thread drain its queue, and waits for it.
    pub(crate) fn finish(mut self, shared: &Shared) {
        self.send_flows(shared);
        drop(self.tx);
        let _ = self.thread.join();
    }
}
