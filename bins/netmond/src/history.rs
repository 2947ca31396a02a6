//! The flow history: the store's writer fed from the pipeline, and API queries over a
//! read-only connection of the same SQLite file.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use netmon_api::{BackendError, HistoryPage, HistoryQuery, Order as ApiOrder, SortKey};
use netmon_engine::FlowRecord;
use netmon_stats::{AlertEvent, SeriesPoint};
use netmon_store::{
    AlertRow, Batch, Cursor, DomainFilter, FlowQuery, FlowRow, FlowSort, Order, SeriesRow,
    SqliteStore, StoreWriter,
};
use netmon_types::Timestamp;
use serde_json::{Value, json};

use crate::state::Shared;

/// Rows per batch handed to the writer thread.
const BATCH: usize = 1024;

/// Buffered rows go to the writer at least this often (wall time), so that the history
/// endpoint lags the pipeline by about a second.
const SEND_EVERY: Duration = Duration::from_secs(1);

/// Buffers flow, series and alert rows and hands them to the writer in batches.
pub(crate) struct StoreSink {
    pub(crate) writer: StoreWriter,
    pub(crate) run_id: u64,
    flows: Vec<FlowRow>,
    series: Vec<SeriesRow>,
    alerts: Vec<AlertRow>,
    last_send: Instant,
    /// Live capture: never wait for the writer (a full queue drops the batch, counted).
    live: bool,
    /// Publish the writer's counters as the store's (`store_stats`): the SQLite sink does,
    /// the PostgreSQL sink reports through its spool's status instead.
    publish_stats: bool,
}

impl StoreSink {
    pub(crate) fn new(writer: StoreWriter, run_id: u64, live: bool) -> StoreSink {
        StoreSink {
            writer,
            run_id,
            flows: Vec::with_capacity(BATCH),
            series: Vec::new(),
            alerts: Vec::new(),
            last_send: Instant::now(),
            live,
            publish_stats: true,
        }
    }

    /// This sink's writer counters are not the store's (`/metrics` shows the SQLite writer's).
    pub(crate) fn quiet(mut self) -> StoreSink {
        self.publish_stats = false;
        self
    }

    pub(crate) fn push(&mut self, r: &FlowRecord, shared: &Shared) {
        shared
            .store_clock
            .fetch_max(r.last_seen.0.0, Ordering::Relaxed);
        self.flows
            .push(netmon_engine::store::flow_row(self.run_id, r));
        if self.flows.len() >= BATCH {
            let next = self.next_flows();
            let rows = std::mem::replace(&mut self.flows, next);
            self.send(Batch::Flows(rows), shared);
        }
    }

    /// The buffer for the next batch: one the writer emptied, so that the batches' memory
    /// is reused rather than freed and faulted in again.
    fn next_flows(&self) -> Vec<FlowRow> {
        let mut v = self.writer.spare_flow_rows();
        v.reserve(BATCH);
        v
    }

    pub(crate) fn push_series(&mut self, p: &SeriesPoint, shared: &Shared) {
        self.series
            .push(netmon_engine::store::series_row(self.run_id, p));
        if self.series.len() >= BATCH {
            let rows = std::mem::take(&mut self.series);
            self.send(Batch::Series(rows), shared);
        }
    }

    pub(crate) fn push_alert(&mut self, e: &AlertEvent) {
        self.alerts
            .push(netmon_engine::store::alert_row(self.run_id, e));
    }

    /// Called after every batch of the pipeline: sends what is buffered once a second and
    /// publishes the writer's counters.
    pub(crate) fn tick(&mut self, shared: &Shared) {
        if self.last_send.elapsed() >= SEND_EVERY {
            self.send_all(shared);
            if self.publish_stats {
                *shared.store_stats.lock() = Some(self.writer.stats());
            }
        }
    }

    /// Hands everything buffered to the writer now (the writer goes on: a PostgreSQL sink's
    /// spool keeps draining while a finished replay is served).
    pub(crate) fn send_pending(&mut self, shared: &Shared) {
        self.send_all(shared);
    }

    fn send_all(&mut self, shared: &Shared) {
        self.last_send = Instant::now();
        if !self.flows.is_empty() {
            let next = self.next_flows();
            let rows = std::mem::replace(&mut self.flows, next);
            self.send(Batch::Flows(rows), shared);
        }
        if !self.series.is_empty() {
            let rows = std::mem::take(&mut self.series);
            self.send(Batch::Series(rows), shared);
        }
        if !self.alerts.is_empty() {
            let rows = std::mem::take(&mut self.alerts);
            self.send(Batch::Alerts(rows), shared);
        }
    }

    fn send(&mut self, batch: Batch, shared: &Shared) {
        let n = batch.len() as u64;
        let r = if self.live {
            self.writer.try_send(batch)
        } else {
            self.writer.send(batch)
        };
        match r {
            Ok(()) => shared.store_rows.fetch_add(n, Ordering::Relaxed),
            Err(_) => shared.store_dropped.fetch_add(n, Ordering::Relaxed),
        };
    }

    /// Sends what is buffered (waiting for room, also when live: this is the shutdown), waits
    /// until the writer committed everything, closes it.
    pub(crate) fn finish(mut self, shared: &Shared) -> anyhow::Result<()> {
        self.live = false;
        self.send_all(shared);
        let stats = self
            .writer
            .close()
            .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
        tracing::info!(
            flows = stats.flow_rows,
            series = stats.series_rows,
            alerts = stats.alert_rows,
            commits = stats.commits,
            errors = stats.errors,
            "store flushed"
        );
        if self.publish_stats {
            *shared.store_stats.lock() = Some(stats);
        }
        Ok(())
    }
}

/// Applies `storage.retention` (`shared.retention`: the policy and how often, changed by
/// SIGHUP) on a connection of its own (the writer thread is not held up; SQLite serialises
/// the two writers), until `stop`. `now` is the wall clock live and the packets' clock (the
/// newest flow stored) in a replay.
pub(crate) fn spawn_retention(
    mut store: SqliteStore,
    live: bool,
    shared: Arc<Shared>,
    stop: Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netmon-retention".into())
        .spawn(move || {
            use netmon_store::Store;
            loop {
                let (policy, every) = *shared.retention.lock();
                let now = if live {
                    crate::now()
                } else {
                    Timestamp::from_nanos(shared.store_clock.load(Ordering::Relaxed))
                };
                let limited = policy.max_age.is_some() || policy.max_bytes.is_some();
                if limited && now.0 > 0 {
                    match store.retention(&policy, now) {
                        Ok(st) if st.total() > 0 => {
                            shared
                                .retention_deleted
                                .fetch_add(st.total(), Ordering::Relaxed);
                            tracing::info!(
                                flows = st.flows,
                                series = st.series,
                                alerts = st.alerts,
                                "retention: deleted"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("retention: {e}"),
                    }
                }
                match stop.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
}

/// One page of stored flows for `/api/v1/flows/history`.
pub(crate) fn query(
    store: &mut SqliteStore,
    q: &HistoryQuery,
) -> Result<HistoryPage, BackendError> {
    use netmon_store::Store;
    let f = &q.filter;
    let cursor = match &q.cursor {
        Some(c) => Some(
            c.parse::<Cursor>()
                .map_err(|_| BackendError::BadRequest(format!("cursor {c:?} is not valid")))?,
        ),
        None => None,
    };
    let fq = FlowQuery {
        from: q.from,
        to: q.to,
        host: f.host,
        port: f.port,
        app: f.app.clone(),
        domain: f.domain.clone().map(DomainFilter::Suffix),
        sort: match f.sort {
            SortKey::Bytes => FlowSort::Bytes,
            SortKey::Packets => FlowSort::Packets,
            SortKey::FirstSeen => FlowSort::FirstSeen,
            SortKey::LastSeen => {
                return Err(BackendError::BadRequest(
                    "sort=last_seen is not available for the history: use first_seen, bytes or packets"
                        .into(),
                ));
            }
        },
        order: match f.order {
            ApiOrder::Asc => Order::Asc,
            ApiOrder::Desc => Order::Desc,
        },
        limit: u32::try_from(f.limit).unwrap_or(u32::MAX),
        cursor,
        ..FlowQuery::default()
    };
    let page = store.query_flows(&fq).map_err(|e| match e {
        e @ (netmon_store::StoreError::BadCursor { .. }
        | netmon_store::StoreError::TooBroad { .. }) => BackendError::BadRequest(e.to_string()),
        e => BackendError::Internal(format!("store: {e}")),
    })?;
    Ok(HistoryPage {
        flows: page.rows.iter().map(row_json).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    })
}

/// A stored row as JSON with the field names of a flow record (docs/flows.md).
pub(crate) fn row_json(r: &FlowRow) -> Value {
    let ts = |t: netmon_types::Timestamp| t.rfc3339().to_string();
    let tcp = |t: &Option<netmon_store::TcpFlags>| {
        t.as_ref().map(|t| {
            json!({"syn": t.syn, "fin": t.fin, "rst": t.rst, "psh": t.psh, "urg": t.urg,
                   "ece": t.ece, "cwr": t.cwr, "retransmits": t.retransmits})
        })
    };
    let key = |k: &Option<netmon_store::KeyRow>| {
        k.as_ref().map(|k| {
            json!({"proto": proto_name(k.proto), "a_ip": k.a_ip, "a_port": k.a_port,
                   "b_ip": k.b_ip, "b_port": k.b_port, "iface": k.iface, "vlan": k.vlan})
        })
    };
    json!({
        "id": r.id, "proto": proto_name(r.proto),
        "src_ip": r.src_ip, "src_port": r.src_port, "dst_ip": r.dst_ip, "dst_port": r.dst_port,
        "icmp_id": r.icmp_id,
        "packets_c2s": r.packets_c2s, "bytes_c2s": r.bytes_c2s,
        "packets_s2c": r.packets_s2c, "bytes_s2c": r.bytes_s2c,
        "payload_bytes_c2s": r.payload_bytes_c2s, "payload_bytes_s2c": r.payload_bytes_s2c,
        "first_seen": ts(r.first_seen), "last_seen": ts(r.last_seen),
        "duration_ns": r.duration_ns, "state": r.state, "end_reason": r.end_reason,
        "vlan": r.vlan, "iface": r.iface, "iface_name": r.iface_name,
        "tcp_c2s": tcp(&r.tcp_c2s), "tcp_s2c": tcp(&r.tcp_s2c),
        "icmp_errors": r.icmp_errors, "quoted": key(&r.quoted), "outer": key(&r.outer),
        "app": r.app, "app_guess": r.app_guess, "sni": r.sni, "alpn": r.alpn,
        "alpn_server": r.alpn_server, "tls_version": r.tls_version, "ech": r.ech, "ja4": r.ja4,
        "http": r.http.iter().map(|h| json!({"method": h.method, "host": h.host, "path": h.path,
            "user_agent": h.user_agent, "referer": h.referer, "status": h.status})).collect::<Vec<_>>(),
        "dns": r.dns.iter().map(|d| json!({"query": d.query, "qtype": d.qtype, "rcode": d.rcode,
            "answers": d.answers, "additional": d.additional})).collect::<Vec<_>>(),
        "quic_version": r.quic_version, "ssh_client": r.ssh_client, "ssh_server": r.ssh_server,
        "stun_software": r.stun_software, "domain": r.domain,
    })
}

fn proto_name(p: u8) -> String {
    netmon_engine::record::ProtoName(p)
        .name()
        .map_or_else(|| p.to_string(), str::to_owned)
}
