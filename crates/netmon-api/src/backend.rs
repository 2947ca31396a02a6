//! What the API needs from the daemon: the [`ApiBackend`] trait and the owned, serialisable
//! types its methods return.

use core::net::IpAddr;
use std::sync::Arc;

use netmon_engine::FlowRecord;
use netmon_stats::{AlertEvent, HierarchyNode, HostPair, RankBy, Ranked, ServicePort, Snapshot};
use netmon_types::Timestamp;
use serde::{Serialize, Serializer};
use tokio::sync::broadcast;

use crate::metrics::MetricsWriter;
use crate::radar::EndpointsReport;

/// The daemon's side of the API. Every method returns owned data (a copy or a snapshot), so
/// the HTTP layer never holds a lock of the engine.
///
/// Methods are synchronous. The server calls everything except [`ready`](Self::ready) and
/// [`subscribe`](Self::subscribe) on tokio's blocking pool, so a method may block briefly (a
/// store query) without stalling the other connections. A panic in a method becomes a
/// `500` JSON error for that request; the server goes on.
pub trait ApiBackend: Send + Sync + 'static {
    /// Whether the daemon is ready to serve data (its sources are open). `/readyz` answers
    /// `503` until this is true.
    fn ready(&self) -> bool;

    /// The capture interfaces and their counters.
    fn interfaces(&self) -> Vec<InterfaceInfo>;

    /// The active flows that match `filter`, sorted and cut to `filter.limit`
    /// ([`FlowFilter::apply`] does all three on a collected list).
    fn active_flows(&self, filter: &FlowFilter) -> Vec<FlowRecord>;

    /// Ended flows from the store, one page at a time.
    fn flow_history(&self, query: &HistoryQuery) -> Result<HistoryPage, BackendError>;

    /// The latest statistics: window metrics and the protocol hierarchy.
    fn stats(&self) -> StatsView;

    /// The top `n` hosts, host pairs and service ports ranked `by` bytes or packets.
    fn top(&self, n: usize, by: RankBy) -> TopTalkers;

    /// Alerts whose `last_seen` is at or after `since` (all when `None`), newest first, at
    /// most `limit`, each in its latest state (`raised` while open, `closed` once over).
    fn alerts(&self, since: Option<Timestamp>, limit: usize) -> Vec<AlertEvent>;

    /// A new receiver of the live events (an [`EventBus`] hands them out). The sender must
    /// never wait for receivers: a receiver that falls behind loses the oldest events and is
    /// told how many.
    fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>>;

    /// Appends the engine's metrics (`netmon_*_total` counters, gauges) to `out`. The API adds
    /// its own `netmon_api_*` metrics after these.
    fn metrics(&self, out: &mut MetricsWriter);

    /// The daemon's state for `/api/v1/status`: version, uptime, and each sink (store,
    /// database, exporters) with whether it is connected, what waits, the last error. The
    /// default has no sinks.
    fn status(&self) -> StatusView {
        StatusView::default()
    }
}

/// `/api/v1/status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatusView {
    /// The daemon's version.
    pub version: String,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Ready to serve data (sources open).
    pub ready: bool,
    /// Where records go.
    pub sinks: Vec<SinkStatus>,
}

/// One sink's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SinkStatus {
    /// `sqlite`, `postgres`, `ipfix`, `syslog`.
    pub name: String,
    /// Its last write reached its destination.
    pub connected: bool,
    /// Rows (or records) waiting to be written (queued or spooled).
    pub pending: u64,
    /// Rows written since the start, where the sink counts them.
    pub written: Option<u64>,
    /// Rows lost (dropped queues, spool over its bound).
    pub dropped: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// One capture interface and its counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    /// Interface index, as in flow records' `iface`.
    pub index: u32,
    /// Interface name (`eth0`, or the file name of a replayed capture).
    pub name: String,
    /// Link type name (`ethernet`, `linux_sll`, `raw`, ...) or the DLT number as a string.
    pub link_type: String,
    /// Frames handed to the engine.
    pub packets: u64,
    /// Their wire bytes (original frame lengths).
    pub bytes: u64,
    /// Frames the kernel received, where the capture backend says.
    pub kernel_received: Option<u64>,
    /// Frames the kernel dropped because its buffer was full, where the backend says.
    pub kernel_dropped: Option<u64>,
    /// Frames the interface or driver dropped, where known.
    pub iface_dropped: Option<u64>,
}

/// How flows are sorted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Wire bytes, both directions.
    #[default]
    Bytes,
    /// Packets, both directions.
    Packets,
    /// First packet's time.
    FirstSeen,
    /// Last packet's time.
    LastSeen,
}

impl SortKey {
    /// Every key with its query-string name.
    pub const ALL: [(&'static str, SortKey); 4] = [
        ("bytes", SortKey::Bytes),
        ("packets", SortKey::Packets),
        ("first_seen", SortKey::FirstSeen),
        ("last_seen", SortKey::LastSeen),
    ];

    /// The key named `s` (`bytes`, `packets`, `first_seen`, `last_seen`).
    pub fn parse(s: &str) -> Option<SortKey> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|&(_, k)| k)
    }

    fn value(self, r: &FlowRecord) -> i128 {
        match self {
            SortKey::Bytes => i128::from(r.bytes_c2s) + i128::from(r.bytes_s2c),
            SortKey::Packets => i128::from(r.packets_c2s) + i128::from(r.packets_s2c),
            SortKey::FirstSeen => i128::from(r.first_seen.0.as_nanos()),
            SortKey::LastSeen => i128::from(r.last_seen.0.as_nanos()),
        }
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Smallest (earliest) first.
    Asc,
    /// Largest (latest) first.
    #[default]
    Desc,
}

/// Which flows to return: every set field must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowFilter {
    /// Either endpoint's address.
    pub host: Option<IpAddr>,
    /// Either endpoint's port.
    pub port: Option<u16>,
    /// Application protocol, lower case (`tls`, `dns`, ...).
    pub app: Option<String>,
    /// A name of the flow (SNI, HTTP host, DNS question, learnt domain), lower case: the name
    /// itself or a subdomain of it (`example.com` matches `www.example.com`).
    pub domain: Option<String>,
    /// Sort key.
    pub sort: SortKey,
    /// Sort direction.
    pub order: Order,
    /// At most this many flows.
    pub limit: usize,
}

impl Default for FlowFilter {
    fn default() -> Self {
        FlowFilter {
            host: None,
            port: None,
            app: None,
            domain: None,
            sort: SortKey::default(),
            order: Order::default(),
            limit: DEFAULT_LIMIT,
        }
    }
}

/// Default `limit` of list endpoints.
pub const DEFAULT_LIMIT: usize = 100;

impl FlowFilter {
    /// Whether `r` passes the host, port, app and domain conditions.
    pub fn matches(&self, r: &FlowRecord) -> bool {
        if let Some(h) = self.host {
            if r.src_ip != h && r.dst_ip != h {
                return false;
            }
        }
        if let Some(p) = self.port {
            if r.src_port != Some(p) && r.dst_port != Some(p) {
                return false;
            }
        }
        if let Some(app) = &self.app {
            if !r.app.is_some_and(|a| a.eq_ignore_ascii_case(app)) {
                return false;
            }
        }
        if let Some(d) = &self.domain {
            if !r.names().any(|n| domain_matches(n, d)) {
                return false;
            }
        }
        true
    }

    /// Keeps the matching records, sorts them and cuts the list to `limit`: what
    /// [`ApiBackend::active_flows`] returns. Ties are broken by flow id, so the result is
    /// deterministic. Linear in the number of records (plus `limit · log limit`).
    pub fn apply(&self, mut records: Vec<FlowRecord>) -> Vec<FlowRecord> {
        records.retain(|r| self.matches(r));
        let (sort, order) = (self.sort, self.order);
        let cmp = move |a: &FlowRecord, b: &FlowRecord| {
            let o = sort.value(a).cmp(&sort.value(b)).then(a.id.cmp(&b.id));
            match order {
                Order::Asc => o,
                Order::Desc => o.reverse(),
            }
        };
        if self.limit == 0 {
            return Vec::new();
        }
        if records.len() > self.limit {
            records.select_nth_unstable_by(self.limit - 1, cmp);
            records.truncate(self.limit);
        }
        records.sort_unstable_by(cmp);
        records
    }
}

/// `name` is `domain` or a subdomain of it, ASCII case-insensitively.
fn domain_matches(name: &str, domain: &str) -> bool {
    let (n, d) = (name.as_bytes(), domain.as_bytes());
    if n.len() < d.len() {
        return false;
    }
    let split = n.len() - d.len();
    let (head, tail) = n.split_at(split);
    tail.eq_ignore_ascii_case(d) && (head.is_empty() || head.ends_with(b"."))
}

/// A query of the flow history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Flows that were active at or after this time (`last_seen >= from`).
    pub from: Option<Timestamp>,
    /// Flows that were active before this time (`first_seen < to`).
    pub to: Option<Timestamp>,
    /// Host, port, app and domain conditions, and the page size (`limit`). History pages are
    /// in the store's order (`sort` and `order` are the store's choice to honour); the cursor
    /// continues that order.
    pub filter: FlowFilter,
    /// Where to continue: the `next_cursor` of the previous page, as the store wrote it.
    pub cursor: Option<String>,
}

/// One page of the flow history.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HistoryPage {
    /// Flow records: JSON objects with the fields of [`FlowRecord`].
    pub flows: Vec<serde_json::Value>,
    /// Pass this as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The statistics the API serves at `/api/v1/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsView {
    /// Window metrics per interface and protocol key at the last closed second (what a
    /// `netmon_stats::SnapshotCell` holds).
    #[serde(serialize_with = "ser_arc")]
    pub snapshot: Arc<Snapshot>,
    /// The protocol hierarchy (`frame` → `eth` → `ipv4` → ...), when the daemon keeps it.
    pub hierarchy: Vec<HierarchyNode>,
}

fn ser_arc<T: Serialize, S: Serializer>(v: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
    T::serialize(v, s)
}

/// Top talkers, one ranking criterion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopTalkers {
    /// The criterion.
    pub by: RankBy,
    /// Hosts (bytes or packets sent and received).
    pub hosts: Vec<Ranked<IpAddr>>,
    /// Host pairs.
    pub pairs: Vec<Ranked<HostPair>>,
    /// Responder ports.
    pub ports: Vec<Ranked<ServicePort>>,
}

/// What the daemon failed to do for a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The request cannot be answered as asked (an invalid or expired cursor, ...): `400`.
    #[error("{0}")]
    BadRequest(String),
    /// The data is not available now (no store configured, store busy, ...): `503`.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: `500`.
    #[error("{0}")]
    Internal(String),
}

/// One live event, as the `/api/v1/events` stream sends it.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveEvent {
    /// A flow started (SSE event `flow_started`, data: the flow record).
    FlowStarted(FlowRecord),
    /// A flow ended (SSE event `flow_ended`, data: the final flow record).
    FlowEnded(FlowRecord),
    /// An alert was raised or closed (SSE event `alert`, data: `{"event": "raised" |
    /// "closed", "alert": {...}}`).
    Alert(AlertEvent),
    /// A second closed (SSE event `stats`, data: the window snapshot).
    Stats(Arc<Snapshot>),
    /// About once a second of wall time while flows are exported: the busiest remote
    /// endpoints with their current rates and flows (SSE event `endpoints`, data: an
    /// [`EndpointsReport`]).
    Endpoints(Arc<EndpointsReport>),
}

impl LiveEvent {
    /// Every event type name, in the order of [`LiveEvent::kind`]'s bit.
    pub const KINDS: [&'static str; 5] =
        ["flow_started", "flow_ended", "alert", "stats", "endpoints"];

    /// The SSE event type: `flow_started`, `flow_ended`, `alert`, `stats` or `endpoints`.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::FlowStarted(_) => "flow_started",
            LiveEvent::FlowEnded(_) => "flow_ended",
            LiveEvent::Alert(_) => "alert",
            LiveEvent::Stats(_) => "stats",
            LiveEvent::Endpoints(_) => "endpoints",
        }
    }

    /// The event's data as compact JSON (no newlines).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        match self {
            LiveEvent::FlowStarted(r) | LiveEvent::FlowEnded(r) => serde_json::to_string(r),
            LiveEvent::Alert(a) => serde_json::to_string(a),
            LiveEvent::Stats(s) => serde_json::to_string(&**s),
            LiveEvent::Endpoints(e) => serde_json::to_string(&**e),
        }
    }
}

/// A broadcast channel of [`LiveEvent`]s for the daemon to publish into and
/// [`ApiBackend::subscribe`] to hand out. Publishing never waits: with no receiver it does
/// nothing; a receiver that falls more than `capacity` events behind loses the oldest ones
/// (the event stream tells its client how many, and `/metrics` counts them).
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<LiveEvent>>,
}

impl EventBus {
    /// Largest capacity accepted; larger requests are clamped.
    pub const MAX_CAPACITY: usize = 1 << 20;

    /// A bus holding up to `capacity` events per receiver (clamped to 1..=[`Self::MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity.clamp(1, Self::MAX_CAPACITY));
        EventBus { tx }
    }

    /// Whether anybody listens: check before building an event to skip the work.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Sends `event` to every receiver; returns how many there were. Never blocks.
    pub fn publish(&self, event: LiveEvent) -> usize {
        if !self.has_subscribers() {
            return 0;
        }
        self.tx.send(Arc::new(event)).unwrap_or(0)
    }

    /// A new receiver, which sees the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    /// A bus of 1024 events.
    fn default() -> Self {
        EventBus::new(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_engine::record::{ProtoName, Rfc3339};

    pub(crate) fn rec(id: u64, bytes: u64, first: i64, sni: Option<&str>) -> FlowRecord {
        FlowRecord {
            id,
            proto: ProtoName(6),
            src_ip: IpAddr::from([10, 0, 0, 1]),
            src_port: Some(40000),
            dst_ip: IpAddr::from([10, 0, 0, 2]),
            dst_port: Some(443),
            packets_c2s: 1,
            bytes_c2s: bytes,
            packets_s2c: id,
            first_seen: Rfc3339(Timestamp(first)),
            last_seen: Rfc3339(Timestamp(first + 10)),
            duration_ns: 10,
            state: "established",
            app: Some("tls"),
            sni: sni.map(str::to_string),
            ..FlowRecord::default()
        }
    }

    #[test]
    fn domain_suffix_on_label_boundary() {
        assert!(domain_matches("www.Example.com", "example.com"));
        assert!(domain_matches("example.com", "EXAMPLE.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
        assert!(!domain_matches("com", "example.com"));
        assert!(
            !domain_matches("a.b", ""),
            "the API never passes an empty domain"
        );
    }

    #[test]
    fn apply_filters_sorts_and_limits() {
        let recs = vec![
            rec(1, 500, 30, Some("a.example.com")),
            rec(2, 900, 10, Some("other.org")),
            rec(3, 100, 20, Some("example.com")),
            rec(4, 900, 40, None),
        ];
        let f = FlowFilter {
            limit: 2,
            ..FlowFilter::default()
        };
        let ids: Vec<u64> = f.apply(recs.clone()).iter().map(|r| r.id).collect();
        assert_eq!(ids, [4, 2], "bytes desc, ties by id desc");
        let f = FlowFilter {
            domain: Some("example.com".into()),
            sort: SortKey::FirstSeen,
            order: Order::Asc,
            ..FlowFilter::default()
        };
        let ids: Vec<u64> = f.apply(recs.clone()).iter().map(|r| r.id).collect();
        assert_eq!(ids, [3, 1]);
        let f = FlowFilter {
            port: Some(40000),
            host: Some(IpAddr::from([10, 0, 0, 2])),
            app: Some("TLS".into()),
            sort: SortKey::Packets,
            order: Order::Asc,
            limit: 3,
            ..FlowFilter::default()
        };
        let ids: Vec<u64> = f.apply(recs.clone()).iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let f = FlowFilter {
            port: Some(22),
            ..FlowFilter::default()
        };
        assert!(f.apply(recs.clone()).is_empty());
        let f = FlowFilter {
            limit: 0,
            ..FlowFilter::default()
        };
        assert!(f.apply(recs).is_empty());
    }

    #[test]
    fn bus_without_subscribers_drops_and_with_them_delivers() {
        let bus = EventBus::new(0);
        assert_eq!(bus.publish(LiveEvent::FlowStarted(rec(1, 1, 1, None))), 0);
        let mut rx = bus.subscribe();
        assert_eq!(bus.publish(LiveEvent::FlowEnded(rec(2, 1, 1, None))), 1);
        let e = rx.try_recv().unwrap();
        assert_eq!(e.kind(), "flow_ended");
        assert!(!e.to_json().unwrap().contains('\n'));
    }
}
