//! The YAML configuration of the engine and of `netmond` (reference: `docs/config.md`).
//!
//! ```
//! use netmon_engine::config::Config;
//!
//! let cfg = Config::from_yaml("netmon.yaml", "interfaces: [eth0]\nflows:\n  max: 100000\n")?;
//! assert_eq!(cfg.interfaces, ["eth0"]);
//! let engine = netmon_engine::Engine::classifying(cfg.engine_config())?;
//! # let _ = engine;
//! // Every key has a default: an empty file is a valid configuration.
//! assert_eq!(Config::from_yaml("empty.yaml", "")?, Config::default());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors are one line naming the file, the line and column, the key path and what is
//! allowed, e.g.
//!
//! ```text
//! netmon.yaml:7:10: flows.timeouts.udp: "sixty" is not a duration (write 30s, 500ms, 5m)
//! netmon.yaml:3:3: unknown key capture.bfp, did you mean bpf? (known: backend, bpf, ...)
//! ```
//!
//! [`Config::template`] is a commented file with every key at its default (what
//! `netmon config init` prints).
//!
//! Not checked here: whether a capture filter compiles (libpcap compiles it when the capture
//! opens, for the link type of the interface), whether the interfaces exist and whether the
//! backend is available on this platform — all known only when the sources open.

mod error;
mod yaml;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netmon_capture::filter::Exclude;
use netmon_capture::{Backend, LiveConfig};
use netmon_classify::correlate::{CorrelatorConfig, MAX_CLIENTS_PER_ADDRESS};
use netmon_flow::{ActiveTimeout, FlowConfig};
use netmon_stats::{
    ArpSweepConfig, DetectorsConfig, HorizontalScanConfig, MAX_WINDOW_SECS, Rule, SeriesConfig,
    StatsConfig, SynFloodConfig, VerticalScanConfig,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

pub use error::{Error, ErrorKind, Pos};
use yaml::Seg;

use crate::{ClassifyConfig, EngineConfig};

/// Largest configuration file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The whole configuration. Every field has a default ([`Config::default`]); a file sets any
/// subset of keys. Sections are named as in the file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Interfaces to capture on (`interfaces: [eth0, eth1]`).
    pub interfaces: Vec<String>,
    /// How packets are captured.
    pub capture: Capture,
    /// How a capture file is replayed.
    pub replay: Replay,
    /// The pipeline's threads.
    pub engine: EngineSection,
    /// Statistics windows and their bounds.
    pub aggregation: Aggregation,
    /// The flow table.
    pub flows: Flows,
    /// Application classification.
    pub classify: Classify,
    /// Scope, GeoIP/ASN and tracker lists added to flow records.
    pub enrich: Enrich,
    /// The built-in detectors.
    pub detectors: Detectors,
    /// Named threshold rules.
    pub alerts: Vec<AlertRule>,
    /// The flow and statistics history.
    pub storage: Storage,
    /// Flow records and alerts sent to existing collectors (IPFIX, syslog).
    pub export: Export,
    /// The REST API and `/metrics`.
    pub api: Api,
    /// What the daemon runs as after opening its sources.
    pub privileges: Privileges,
    /// Logging.
    pub log: Log,
}

/// `capture:` — the packet source.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capture {
    /// The backend; `None` (`auto`): the best live backend of the platform, or `file` when
    /// `capture.file` is set.
    #[serde(deserialize_with = "de_backend")]
    pub backend: Option<Backend>,
    /// A capture filter in tcpdump's syntax (compiled when the capture opens).
    pub bpf: Option<String>,
    /// Promiscuous mode. Default true.
    pub promiscuous: bool,
    /// Bytes kept of each frame, 64..=262 144. Default 262 144.
    pub snaplen: u32,
    /// Kernel buffer in MiB, 1..=4095. Default 64.
    pub buffer_mib: usize,
    /// Hand each packet over at once instead of in batches. Default false.
    pub immediate: bool,
    /// AF_PACKET fanout group to join (hash mode); `None` (`off`) by default.
    #[serde(deserialize_with = "de_off_u16")]
    pub fanout: Option<u16>,
    /// A capture file to replay (pcap or pcapng) instead of capturing live.
    pub file: Option<PathBuf>,
    /// Hosts (`ADDR`) or host ports (`ADDR:PORT`) whose traffic is left out.
    #[serde(deserialize_with = "de_excludes")]
    pub exclude: Vec<Exclude>,
}

impl Default for Capture {
    fn default() -> Self {
        let live = LiveConfig::default();
        Capture {
            backend: None,
            bpf: None,
            promiscuous: live.promiscuous,
            snaplen: live.snaplen,
            buffer_mib: live.buffer_bytes >> 20,
            immediate: live.immediate,
            fanout: None,
            file: None,
            exclude: Vec::new(),
        }
    }
}

/// `replay:` — how `capture.file` is read.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Replay {
    /// Pace. Default [`Speed::Max`].
    pub speed: Speed,
}

/// How fast a capture file is replayed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Speed {
    /// As fast as the pipeline goes (`max`).
    #[default]
    Max,
    /// At the capture's own pace (`realtime`).
    Realtime,
    /// At a multiple of it (`10x`, `0.5x`); always finite and positive.
    Factor(f64),
}

/// `engine:` — threading.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Worker shards, each owning a part of the flow table (0: one per core). Default 1.
    pub shards: usize,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection { shards: 1 }
    }
}

impl EngineSection {
    /// Most shards accepted.
    pub const MAX_SHARDS: usize = 256;

    /// The number of shards to run: `shards`, or the number of cores for 0.
    pub fn resolved_shards(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(Self::MAX_SHARDS)
    }
}

/// `aggregation:` — the statistics windows.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Aggregation {
    /// Rolling windows (whole seconds, 1 s to 1 h). Default 1 s, 10 s, 60 s.
    #[serde(deserialize_with = "de_windows")]
    pub windows: Vec<Duration>,
    /// Emit the per-window time series (for the store). Default true.
    pub series: bool,
    /// Interfaces with their own statistics rows. Default 64.
    pub max_ifaces: usize,
    /// Protocol keys per interface. Default 256.
    pub max_keys_per_iface: usize,
    /// Protocol hierarchy nodes. Default 4096.
    pub max_hierarchy_nodes: usize,
    /// Counters per top-talker ranking. Default 16 384.
    pub talkers_capacity: usize,
    /// Flows tracked individually by the statistics. Default 262 144.
    pub max_tracked_flows: usize,
}

impl Default for Aggregation {
    fn default() -> Self {
        let s = StatsConfig::default();
        Aggregation {
            windows: s
                .windows
                .iter()
                .map(|&w| Duration::from_secs(w.into()))
                .collect(),
            series: true,
            max_ifaces: s.max_ifaces,
            max_keys_per_iface: s.max_keys_per_iface,
            max_hierarchy_nodes: s.max_hierarchy_nodes,
            talkers_capacity: s.talkers_capacity,
            max_tracked_flows: s.max_tracked_flows,
        }
    }
}

/// `flows:` — the flow table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Flows {
    /// Most flows held at once; beyond, the least recently seen is evicted. Default 2 097 152.
    pub max: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Long flows are reported (or split) this often; `None` (`off`): never. Default 30 min.
    #[serde(deserialize_with = "de_off_duration")]
    pub active_timeout: Option<Duration>,
    /// What the active timeout does. Default [`ActiveMode::Update`].
    pub active_mode: ActiveMode,
    /// Most fragmented datagrams remembered at once. Default 65 536.
    pub max_fragments: usize,
    /// How long a fragmented datagram's ports are remembered. Default 60 s.
    #[serde(deserialize_with = "de_duration")]
    pub fragment_timeout: Duration,
    /// Tunnel levels decapsulated and followed as inner flows (0: none). Default 2.
    pub tunnel_depth: u8,
}

impl Default for Flows {
    fn default() -> Self {
        let f = FlowConfig::default();
        Flows {
            max: f.max_flows,
            timeouts: Timeouts::default(),
            active_timeout: f.active_timeout.map(ns_to_duration),
            active_mode: match f.active_mode {
                ActiveTimeout::Update => ActiveMode::Update,
                ActiveTimeout::Split => ActiveMode::Split,
            },
            max_fragments: f.max_fragments,
            fragment_timeout: ns_to_duration(f.fragment_timeout),
            tunnel_depth: f.tunnel_depth,
        }
    }
}

/// `flows.timeouts:` — how long a flow may be idle before it ends.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// TCP before the handshake completed. Default 30 s.
    #[serde(deserialize_with = "de_duration")]
    pub tcp_handshake: Duration,
    /// TCP established. Default 5 min.
    #[serde(deserialize_with = "de_duration")]
    pub tcp_established: Duration,
    /// TCP after FIN from both sides or RST. Default 10 s.
    #[serde(deserialize_with = "de_duration")]
    pub tcp_closed: Duration,
    /// UDP. Default 60 s.
    #[serde(deserialize_with = "de_duration")]
    pub udp: Duration,
    /// ICMP and ICMPv6. Default 30 s.
    #[serde(deserialize_with = "de_duration")]
    pub icmp: Duration,
    /// Every other IP protocol. Default 60 s.
    #[serde(deserialize_with = "de_duration")]
    pub other: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let t = netmon_flow::Timeouts::default();
        Timeouts {
            tcp_handshake: ns_to_duration(t.tcp_handshake),
            tcp_established: ns_to_duration(t.tcp_established),
            tcp_closed: ns_to_duration(t.tcp_closed),
            udp: ns_to_duration(t.udp),
            icmp: ns_to_duration(t.icmp),
            other: ns_to_duration(t.other),
        }
    }
}

/// What the active timeout does to long flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveMode {
    /// Emit an update and keep one record (`update`).
    #[default]
    Update,
    /// End the record and start a new one, NetFlow style (`split`).
    Split,
}

/// `classify:` — application classification.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Classify {
    /// Classify at all. Default true.
    pub enabled: bool,
    /// Bytes of each TCP direction reassembled for detection. Default 16 384.
    pub reassembly_bytes: usize,
    /// Payload packets examined before guessing from ports. Default 12.
    pub max_probe_packets: u16,
    /// DNS answers remembered to name the flows that follow.
    pub dns: Dns,
}

impl Default for Classify {
    fn default() -> Self {
        let c = ClassifyConfig::default();
        Classify {
            enabled: c.enabled,
            reassembly_bytes: c.reassembly_bytes,
            max_probe_packets: c.max_probe_packets,
            dns: Dns::default(),
        }
    }
}

/// `enrich:` — what flow records are enriched with (netmon-enrich).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Enrich {
    /// Each end's address scope (loopback, private, public, ...). Default true.
    pub scope: bool,
    /// A GeoLite2/GeoIP2 City or Country database (MaxMind DB file). Default none.
    pub geoip: Option<PathBuf>,
    /// A GeoLite2/GeoIP2 ASN database. Default none.
    pub asn: Option<PathBuf>,
    /// Tracker lists. Default none.
    pub trackers: Vec<TrackerList>,
    /// Live capture: attribute each flow to the local process owning its socket, at the
    /// flow's first packet (Linux; keeps CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH after the
    /// privilege drop; not with `privileges.user`). Default false.
    pub processes: bool,
}

impl Default for Enrich {
    fn default() -> Self {
        Enrich {
            scope: true,
            geoip: None,
            asn: None,
            trackers: Vec::new(),
            processes: false,
        }
    }
}

/// `export:` — collectors the daemon sends to.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Export {
    /// Flow records as IPFIX.
    pub ipfix: IpfixExport,
    /// Alerts (and optionally flow summaries) as syslog messages.
    pub syslog: SyslogExport,
}

/// A transport of an exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportTransport {
    /// UDP (default).
    #[default]
    Udp,
    /// TCP.
    Tcp,
}

/// `export.ipfix:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpfixExport {
    /// The collector, `host:port` (e.g. `192.0.2.10:4739`); none: no IPFIX export.
    #[serde(deserialize_with = "de_opt_addr")]
    pub collector: Option<SocketAddr>,
    /// `udp` or `tcp`. Default udp.
    pub transport: ExportTransport,
    /// Observation domain id. Default 1.
    pub domain_id: u32,
    /// Templates resent this often over UDP. Default 60 s.
    #[serde(deserialize_with = "de_duration")]
    pub template_refresh: Duration,
}

impl Default for IpfixExport {
    fn default() -> Self {
        IpfixExport {
            collector: None,
            transport: ExportTransport::Udp,
            domain_id: 1,
            template_refresh: Duration::from_secs(60),
        }
    }
}

/// `export.syslog:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogExport {
    /// The syslog server, `host:port`; none: no syslog export.
    #[serde(deserialize_with = "de_opt_addr")]
    pub server: Option<SocketAddr>,
    /// `udp` or `tcp` (RFC 6587 octet counting). Default udp.
    pub transport: ExportTransport,
    /// Facility 0–23. Default 16 (local0).
    pub facility: u8,
    /// Also one message per ended flow. Default false (alerts only).
    pub flows: bool,
}

impl Default for SyslogExport {
    fn default() -> Self {
        SyslogExport {
            server: None,
            transport: ExportTransport::Udp,
            facility: 16,
            flows: false,
        }
    }
}

fn de_opt_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<SocketAddr>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an IP address and port, or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            de_bind(d).map(Some)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            s.parse().map(Some).map_err(|_| {
                E::custom(format!(
                    "{} is not an IP address and port (write 192.0.2.10:4739 or [2001:db8::1]:514)",
                    yaml::quote(s)
                ))
            })
        }
    }
    d.deserialize_option(V)
}

/// `enrich.trackers[]:` — one list file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerList {
    /// A hosts file or a plain list of domains.
    pub path: PathBuf,
    /// `ads`, `analytics`, `social`, `fingerprinting`, `cdn` or `other`.
    #[serde(deserialize_with = "de_category")]
    pub category: netmon_enrich::trackers::Category,
}

fn de_category<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<netmon_enrich::trackers::Category, D::Error> {
    use netmon_enrich::trackers::Category;
    let s = String::deserialize(d)?;
    Category::parse(&s).ok_or_else(|| {
        let known: Vec<&str> = Category::ALL.iter().map(|(n, _)| *n).collect();
        de::Error::custom(format!("{s:?} is not one of {}", known.join(", ")))
    })
}

/// `classify.dns:` — the DNS correlator.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dns {
    /// An answer is kept at least this long, even with a shorter TTL. Default 5 min.
    #[serde(deserialize_with = "de_duration")]
    pub min_window: Duration,
    /// Most addresses remembered. Default 200 000.
    pub max_entries: usize,
    /// Most clients remembered per address, 1..=16. Default 4.
    pub clients_per_address: usize,
}

impl Default for Dns {
    fn default() -> Self {
        let c = CorrelatorConfig::default();
        Dns {
            min_window: c.min_window,
            max_entries: c.max_entries,
            clients_per_address: c.clients_per_address,
        }
    }
}

/// `detectors:` — the built-in detectors, with the knobs of `netmon-stats` (docs/stats.md).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Detectors {
    /// Vertical port scans (one source, many ports of one host).
    pub vertical_scan: VerticalScanConfig,
    /// Horizontal scans (one source, one port on many hosts).
    pub horizontal_scan: HorizontalScanConfig,
    /// ARP sweeps.
    pub arp_sweep: ArpSweepConfig,
    /// Flow-rate (SYN) floods.
    pub syn_flood: SynFloodConfig,
    /// How long after a scan alert closed a late flow report still belongs to it. Default 300.
    pub late_grace_secs: u32,
    /// Alert events held until drained. Default 65 536.
    pub max_pending_events: usize,
}

impl Default for Detectors {
    fn default() -> Self {
        let d = DetectorsConfig::default();
        Detectors {
            vertical_scan: d.vertical_scan,
            horizontal_scan: d.horizontal_scan,
            arp_sweep: d.arp_sweep,
            syn_flood: d.syn_flood,
            late_grace_secs: d.late_grace_secs,
            max_pending_events: d.max_pending_events,
        }
    }
}

/// One entry of `alerts:` — a named threshold rule.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// A unique name.
    pub name: String,
    /// The rule, in the syntax of `netmon alerts --rule` (docs/stats.md), e.g.
    /// `bps on eth0 over 10s > 1e9`.
    #[serde(deserialize_with = "de_rule")]
    pub rule: Rule,
}

/// `storage:` — the history database.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Store flows, statistics and alerts. Default true.
    pub enabled: bool,
    /// The SQLite file. Default `/var/lib/netmon/netmon.db`.
    pub path: PathBuf,
    /// What is deleted, and when.
    pub retention: Retention,
    /// A PostgreSQL/TimescaleDB database that also receives flows, series and alerts.
    pub postgres: Postgres,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            enabled: true,
            path: PathBuf::from("/var/lib/netmon/netmon.db"),
            retention: Retention::default(),
            postgres: Postgres::default(),
        }
    }
}

/// `storage.postgres:` — the shared database of a fleet.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Postgres {
    /// libpq connection string or URL (`host=db1 user=netmon dbname=netmon`); none: off.
    pub url: Option<Secret>,
    /// Where batches wait while the database is unreachable. Default
    /// `/var/lib/netmon/spool`.
    pub spool_dir: PathBuf,
    /// The spool's bound in MiB; beyond it the oldest batches are dropped (counted). Default
    /// 1024.
    pub spool_max_mib: u64,
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres {
            url: None,
            spool_dir: PathBuf::from("/var/lib/netmon/spool"),
            spool_max_mib: 1024,
        }
    }
}

/// `storage.retention:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Records older than this are deleted; `None` (`off`): kept. Default 30 days.
    #[serde(deserialize_with = "de_off_duration")]
    pub max_age: Option<Duration>,
    /// The oldest records are deleted beyond this size; `None` (`off`): no limit. Default
    /// 1024 MiB.
    #[serde(deserialize_with = "de_off_u64")]
    pub max_size_mib: Option<u64>,
    /// How often the limits are applied. Default 60 s.
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Some(Duration::from_secs(30 * 86_400)),
            max_size_mib: Some(1024),
            interval: Duration::from_secs(60),
        }
    }
}

/// `api:` — the REST API, live stream and `/metrics`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    /// Serve it. Default true.
    pub enabled: bool,
    /// Address and port. Default `127.0.0.1:9100`; any non-loopback address needs `token`.
    #[serde(deserialize_with = "de_bind")]
    pub bind: SocketAddr,
    /// Bearer token required of every request (at least 16 characters).
    pub token: Option<Secret>,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 9100)),
            token: None,
        }
    }
}

/// A secret string; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `privileges:`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Privileges {
    /// After the sources are open, switch to this user (capabilities are dropped in any
    /// case). Default: stay.
    pub user: Option<String>,
}

/// `log:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// Line format. Default [`LogFormat::Text`].
    pub format: LogFormat,
    /// Level, or tracing directives: `info`, `warn,netmon_engine=debug`. Default `info`.
    #[serde(deserialize_with = "de_log_level")]
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (`text`).
    #[default]
    Text,
    /// One JSON object per line (`json`).
    Json,
}

/// Where packets come from, as configured.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// No source: neither `interfaces` nor `capture.file` is set.
    None,
    /// Replay `path` at `speed`.
    File {
        /// The capture file.
        path: PathBuf,
        /// Pace.
        speed: Speed,
    },
    /// Capture live.
    Live {
        /// The backend; `None`: the platform's best ([`Backend::default_live`]).
        backend: Option<Backend>,
        /// What to open (the filter includes `capture.exclude`).
        config: LiveConfig,
    },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let err = |kind| Error::new(&file, None, String::new(), kind);
        let f = std::fs::File::open(path).map_err(|e| err(ErrorKind::Io(e)))?;
        let mut text = String::new();
        use std::io::Read;
        let n = f
            .take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| err(ErrorKind::Io(e)))?;
        if n as u64 > MAX_FILE_BYTES {
            let len = std::fs::metadata(path).map_or(n as u64, |m| m.len());
            return Err(err(ErrorKind::TooLarge(len)));
        }
        Config::from_yaml(&file, &text)
    }

    /// Parses and validates YAML text; `file` names it in errors.
    pub fn from_yaml(file: &str, text: &str) -> Result<Config, Error> {
        Config::parse_recording(file, text, None)
    }

    fn parse_recording(
        file: &str,
        text: &str,
        rec: Option<&yaml::Recorder>,
    ) -> Result<Config, Error> {
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(Error::new(
                file,
                None,
                String::new(),
                ErrorKind::TooLarge(text.len() as u64),
            ));
        }
        let tree =
            yaml::parse(text).map_err(|(pos, kind)| Error::new(file, pos, String::new(), kind))?;
        let cfg: Config = yaml::from_tree(&tree, rec)
            .map_err(|e| Error::new(file, e.pos, e.path.unwrap_or_default(), e.kind))?;
        cfg.validate().map_err(|(path, msg)| {
            Error::new(
                file,
                Some(tree.locate(&path)),
                yaml::render(&path),
                ErrorKind::Invalid(msg),
            )
        })?;
        Ok(cfg)
    }

    /// The commented template: every key at its default, with a one-line explanation.
    pub fn template() -> &'static str {
        include_str!("config/template.yaml")
    }

    /// Checks what the types alone do not: ranges, and keys that depend on each other. The
    /// error names the key that is wrong.
    fn validate(&self) -> Result<(), (Vec<Seg<'static>>, String)> {
        use Seg::{Index, Key};
        let fail = |path: &[Seg<'static>], msg: String| Err((path.to_vec(), msg));

        // Sources.
        let c = &self.capture;
        for (i, name) in self.interfaces.iter().enumerate() {
            if name.trim().is_empty() {
                return fail(
                    &[Key("interfaces"), Index(i)],
                    "an empty interface name".into(),
                );
            }
            if self.interfaces.get(..i).is_some_and(|p| p.contains(name)) {
                return fail(
                    &[Key("interfaces"), Index(i)],
                    format!("{name:?} is listed twice"),
                );
            }
        }
        match c.backend {
            Some(Backend::File) if c.file.is_none() => {
                return fail(
                    &[Key("capture"), Key("backend")],
                    "the file backend replays capture.file, which is not set".into(),
                );
            }
            Some(b) if b.is_live() && c.file.is_some() => {
                return fail(
                    &[Key("capture"), Key("file")],
                    format!(
                        "capture.file is replayed by the file backend, but capture.backend is {b} \
                         (set backend: file or auto, or remove file)"
                    ),
                );
            }
            Some(b) if b.is_live() && self.interfaces.is_empty() => {
                return fail(
                    &[Key("capture"), Key("backend")],
                    format!(
                        "{b} captures live and needs interfaces (e.g. `interfaces: [eth0]` at the top level)"
                    ),
                );
            }
            _ => {}
        }
        if c.backend.is_none() && c.file.is_some() && !self.interfaces.is_empty() {
            return fail(
                &[Key("capture"), Key("file")],
                "both capture.file and interfaces are set: replay a file or capture live, not both"
                    .into(),
            );
        }
        if c.file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            return fail(&[Key("capture"), Key("file")], "an empty path".into());
        }
        if !(64..=262_144).contains(&c.snaplen) {
            return fail(
                &[Key("capture"), Key("snaplen")],
                format!("{} is out of range (64 to 262144 bytes)", c.snaplen),
            );
        }
        if !(1..=4095).contains(&c.buffer_mib) {
            return fail(
                &[Key("capture"), Key("buffer_mib")],
                format!("{} is out of range (1 to 4095 MiB)", c.buffer_mib),
            );
        }
        if self.engine.shards > EngineSection::MAX_SHARDS {
            return fail(
                &[Key("engine"), Key("shards")],
                format!(
                    "{} is more than {} shards (0 means one per core)",
                    self.engine.shards,
                    EngineSection::MAX_SHARDS
                ),
            );
        }

        // Statistics.
        let a = &self.aggregation;
        if a.windows.is_empty() {
            return fail(
                &[Key("aggregation"), Key("windows")],
                "at least one window is needed (e.g. [1s, 10s, 60s])".into(),
            );
        }
        let longest = a.windows.iter().map(Duration::as_secs).max().unwrap_or(1);
        let ring_bytes = (a.max_ifaces.max(1) as u64 + 1)
            .saturating_mul(a.max_keys_per_iface.max(2) as u64 + 1)
            .saturating_mul(longest)
            .saturating_mul(24);
        if ring_bytes > 512 << 20 {
            return fail(
                &[Key("aggregation"), Key("max_keys_per_iface")],
                format!(
                    "the window rings would need {} MiB (max_ifaces x max_keys_per_iface x longest \
                     window x 24 bytes); the limit is 512 MiB",
                    ring_bytes >> 20
                ),
            );
        }
        for (key, v) in [
            ("max_ifaces", a.max_ifaces),
            ("max_keys_per_iface", a.max_keys_per_iface),
            ("max_hierarchy_nodes", a.max_hierarchy_nodes),
            ("talkers_capacity", a.talkers_capacity),
            ("max_tracked_flows", a.max_tracked_flows),
        ] {
            if v == 0 {
                return fail(&[Key("aggregation"), Key(key)], "must be at least 1".into());
            }
        }

        // Flows.
        let f = &self.flows;
        if f.max == 0 {
            return fail(&[Key("flows"), Key("max")], "must be at least 1".into());
        }
        let t = &f.timeouts;
        for (key, d) in [
            ("tcp_handshake", t.tcp_handshake),
            ("tcp_established", t.tcp_established),
            ("tcp_closed", t.tcp_closed),
            ("udp", t.udp),
            ("icmp", t.icmp),
            ("other", t.other),
        ] {
            if d.is_zero() {
                return fail(
                    &[Key("flows"), Key("timeouts"), Key(key)],
                    "a timeout must be longer than 0s".into(),
                );
            }
        }
        if f.active_timeout.is_some_and(|d| d.is_zero()) {
            return fail(
                &[Key("flows"), Key("active_timeout")],
                "must be longer than 0s (or off)".into(),
            );
        }
        if f.fragment_timeout.is_zero() {
            return fail(
                &[Key("flows"), Key("fragment_timeout")],
                "must be longer than 0s".into(),
            );
        }
        if !(1..=MAX_CLIENTS_PER_ADDRESS).contains(&self.classify.dns.clients_per_address) {
            return fail(
                &[Key("classify"), Key("dns"), Key("clients_per_address")],
                format!("must be 1 to {MAX_CLIENTS_PER_ADDRESS}"),
            );
        }

        // Detectors.
        let d = &self.detectors;
        let windows = [
            ("vertical_scan", d.vertical_scan.window_secs),
            ("horizontal_scan", d.horizontal_scan.window_secs),
            ("arp_sweep", d.arp_sweep.window_secs),
            ("syn_flood", d.syn_flood.window_secs),
        ];
        for (det, w) in windows {
            if !(1..=MAX_WINDOW_SECS).contains(&w) {
                return fail(
                    &[Key("detectors"), Key(det), Key("window_secs")],
                    format!("{w} is out of range (1 to {MAX_WINDOW_SECS} seconds)"),
                );
            }
        }
        let ratios = [
            (
                "vertical_scan",
                "min_failed_ratio",
                d.vertical_scan.min_failed_ratio,
            ),
            (
                "vertical_scan",
                "sequential_min_failed_ratio",
                d.vertical_scan.sequential_min_failed_ratio,
            ),
            (
                "horizontal_scan",
                "min_failed_ratio",
                d.horizontal_scan.min_failed_ratio,
            ),
            (
                "arp_sweep",
                "min_unanswered_ratio",
                d.arp_sweep.min_unanswered_ratio,
            ),
            (
                "syn_flood",
                "high_failed_ratio",
                d.syn_flood.high_failed_ratio,
            ),
        ];
        for (det, key, r) in ratios {
            if !(0.0..=1.0).contains(&r) {
                return fail(
                    &[Key("detectors"), Key(det), Key(key)],
                    format!("{r} is not a share between 0 and 1"),
                );
            }
        }

        // Alerts.
        for (i, a) in self.alerts.iter().enumerate() {
            if a.name.trim().is_empty() {
                return fail(
                    &[Key("alerts"), Index(i), Key("name")],
                    "an empty name".into(),
                );
            }
            if let Some(j) = self
                .alerts
                .get(..i)
                .and_then(|p| p.iter().position(|b| b.name == a.name))
            {
                return fail(
                    &[Key("alerts"), Index(i), Key("name")],
                    format!("{:?} is already the name of alerts[{j}]", a.name),
                );
            }
            if u64::from(a.rule.window_secs) > longest {
                return fail(
                    &[Key("alerts"), Index(i), Key("rule")],
                    format!(
                        "its window ({} s) is longer than the longest aggregation window ({longest} s)",
                        a.rule.window_secs
                    ),
                );
            }
        }

        // Storage, API, privileges.
        if self.storage.enabled && self.storage.path.as_os_str().is_empty() {
            return fail(&[Key("storage"), Key("path")], "an empty path".into());
        }
        if self.storage.retention.max_age.is_some_and(|d| d.is_zero()) {
            return fail(
                &[Key("storage"), Key("retention"), Key("max_age")],
                "must be longer than 0s (or off)".into(),
            );
        }
        if self.storage.retention.max_size_mib == Some(0) {
            return fail(
                &[Key("storage"), Key("retention"), Key("max_size_mib")],
                "must be at least 1 (or off)".into(),
            );
        }
        if self.enrich.processes && self.privileges.user.is_some() {
            return fail(
                &[Key("enrich"), Key("processes")],
                "needs to read other processes' /proc entries: leave out privileges.user".into(),
            );
        }
        if self.export.syslog.facility > 23 {
            return fail(
                &[Key("export"), Key("syslog"), Key("facility")],
                format!(
                    "{} is not a facility (0 to 23)",
                    self.export.syslog.facility
                ),
            );
        }
        if self.export.ipfix.template_refresh.is_zero() {
            return fail(
                &[Key("export"), Key("ipfix"), Key("template_refresh")],
                "must be longer than 0s".into(),
            );
        }
        if self.storage.postgres.url.is_some() && self.storage.postgres.spool_max_mib == 0 {
            return fail(
                &[Key("storage"), Key("postgres"), Key("spool_max_mib")],
                "must be at least 1".into(),
            );
        }
        if self.storage.retention.interval.is_zero() {
            return fail(
                &[Key("storage"), Key("retention"), Key("interval")],
                "must be longer than 0s".into(),
            );
        }
        let api = &self.api;
        if let Some(t) = &api.token {
            if t.0.chars().count() < 16 || t.0.chars().any(char::is_whitespace) {
                return fail(
                    &[Key("api"), Key("token")],
                    "a token is at least 16 characters without spaces (e.g. `openssl rand -hex 32`)"
                        .into(),
                );
            }
        }
        if api.enabled && !api.bind.ip().is_loopback() && api.token.is_none() {
            return fail(
                &[Key("api"), Key("bind")],
                format!(
                    "{} is not a loopback address: set api.token, or bind to 127.0.0.1 or [::1]",
                    api.bind
                ),
            );
        }
        if self
            .privileges
            .user
            .as_ref()
            .is_some_and(|u| u.trim().is_empty())
        {
            return fail(
                &[Key("privileges"), Key("user")],
                "an empty user name".into(),
            );
        }
        Ok(())
    }

    /// The pipeline's configuration: flow table, classification, statistics, detectors and
    /// threshold rules.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            flow: self.flow_config(),
            classify: self.classify_config(),
            stats: Some(self.stats_config()),
            observe: false,
        }
    }

    /// What flow records are enriched with (files are loaded by
    /// [`Enricher::load`](crate::enrich::Enricher::load)).
    pub fn enrich_config(&self) -> crate::enrich::EnrichConfig {
        let e = &self.enrich;
        crate::enrich::EnrichConfig {
            scope: e.scope,
            geoip: e.geoip.clone(),
            asn: e.asn.clone(),
            trackers: e
                .trackers
                .iter()
                .map(|t| (t.path.clone(), t.category))
                .collect(),
        }
    }

    /// The flow table's configuration.
    pub fn flow_config(&self) -> FlowConfig {
        let f = &self.flows;
        let t = &f.timeouts;
        FlowConfig {
            max_flows: f.max,
            timeouts: netmon_flow::Timeouts {
                tcp_handshake: duration_to_ns(t.tcp_handshake),
                tcp_established: duration_to_ns(t.tcp_established),
                tcp_closed: duration_to_ns(t.tcp_closed),
                udp: duration_to_ns(t.udp),
                icmp: duration_to_ns(t.icmp),
                other: duration_to_ns(t.other),
            },
            active_timeout: f.active_timeout.map(duration_to_ns),
            active_mode: match f.active_mode {
                ActiveMode::Update => ActiveTimeout::Update,
                ActiveMode::Split => ActiveTimeout::Split,
            },
            max_fragments: f.max_fragments,
            fragment_timeout: duration_to_ns(f.fragment_timeout),
            tunnel_depth: f.tunnel_depth,
            // Set per shard by the sharded pipeline.
            ..FlowConfig::default()
        }
    }

    /// The classifier's configuration.
    pub fn classify_config(&self) -> ClassifyConfig {
        let c = &self.classify;
        ClassifyConfig {
            enabled: c.enabled,
            reassembly_bytes: c.reassembly_bytes,
            max_probe_packets: c.max_probe_packets,
            correlator: CorrelatorConfig {
                min_window: c.dns.min_window,
                max_entries: c.dns.max_entries,
                clients_per_address: c.dns.clients_per_address,
            },
        }
    }

    /// The statistics, detectors and threshold rules (`alerts`).
    pub fn stats_config(&self) -> StatsConfig {
        let a = &self.aggregation;
        let d = &self.detectors;
        StatsConfig {
            windows: a
                .windows
                .iter()
                .map(|w| u32::try_from(w.as_secs()).unwrap_or(MAX_WINDOW_SECS))
                .collect(),
            max_ifaces: a.max_ifaces,
            max_keys_per_iface: a.max_keys_per_iface,
            max_hierarchy_nodes: a.max_hierarchy_nodes,
            talkers_capacity: a.talkers_capacity,
            max_tracked_flows: a.max_tracked_flows,
            series: a.series.then(SeriesConfig::default),
            detectors: DetectorsConfig {
                vertical_scan: d.vertical_scan.clone(),
                horizontal_scan: d.horizontal_scan.clone(),
                arp_sweep: d.arp_sweep.clone(),
                syn_flood: d.syn_flood.clone(),
                thresholds: self.alerts.iter().map(|r| r.rule.text.clone()).collect(),
                late_grace_secs: d.late_grace_secs,
                max_pending_events: d.max_pending_events,
            },
        }
    }

    /// What a live capture opens: interfaces, snaplen, buffer, filter (with the exclusions).
    pub fn live_config(&self) -> LiveConfig {
        let c = &self.capture;
        LiveConfig {
            interfaces: self.interfaces.clone(),
            snaplen: c.snaplen,
            promiscuous: c.promiscuous,
            buffer_bytes: c.buffer_mib.min(4095) << 20,
            immediate: c.immediate,
            filter: netmon_capture::filter::with_exclusions(c.bpf.as_deref(), &c.exclude),
            fanout: c.fanout.map(|group| netmon_capture::Fanout {
                group,
                mode: netmon_capture::FanoutMode::Hash,
            }),
            ..LiveConfig::default()
        }
    }

    /// Where packets come from: `capture.file` (with backend `auto` or `file`), else the
    /// interfaces, else nothing.
    pub fn source(&self) -> Source {
        match (&self.capture.file, self.capture.backend) {
            (Some(path), None | Some(Backend::File)) => Source::File {
                path: path.clone(),
                speed: self.replay.speed,
            },
            _ if self.interfaces.is_empty() => Source::None,
            (_, backend) => Source::Live {
                backend,
                config: self.live_config(),
            },
        }
    }
}

fn ns_to_duration(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn duration_to_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Parses `30s`, `500ms`, `5m`, `1h30m`, `2.5s`, `30d`: one or more number-unit pairs, units
/// `ms`, `s`, `m`, `h`, `d`. A bare number is refused (seconds or milliseconds?).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() || rest.len() > 64 {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        // Exact decimal arithmetic: 12428878.651s is 12428878651 ms, not a float's neighbour.
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 18 {
            return None;
        }
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let frac_ns = if frac.is_empty() {
            0
        } else {
            frac.parse::<u128>().ok()? * unit_ns / 10u128.pow(frac.len() as u32)
        };
        let ns = int.checked_mul(unit_ns)?.checked_add(frac_ns)?;
        let secs = u64::try_from(ns / 1_000_000_000).ok()?;
        let part = Duration::new(secs, (ns % 1_000_000_000) as u32);
        total = total.checked_add(part)?;
        rest = after;
    }
    Some(total)
}

/// Writes `d` the way [`parse_duration`] reads it, in its largest whole unit: `30d`, `5m`,
/// `90s`, `1500ms`; finer than a millisecond, in seconds with a fraction (`0.0000015s`).
pub fn format_duration(d: Duration) -> String {
    let (s, ns) = (d.as_secs(), d.subsec_nanos());
    if ns == 0 {
        for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s > 0 && s % n == 0 {
                return format!("{}{unit}", s / n);
            }
        }
        return format!("{s}s");
    }
    if ns % 1_000_000 == 0 {
        return format!("{}ms", d.as_millis());
    }
    let frac = format!("{ns:09}");
    format!("{s}.{}s", frac.trim_end_matches('0'))
}

const DURATION_HINT: &str = "write 30s, 500ms, 5m";

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a duration ({DURATION_HINT})")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
        parse_duration(s).ok_or_else(|| {
            E::custom(format!(
                "{} is not a duration ({DURATION_HINT})",
                yaml::quote(s)
            ))
        })
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

/// `off`, or what `inner` reads.
struct OffOr<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for OffOr<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("`off` or ")?;
        self.0.expecting(f)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        if s == "off" {
            return Ok(None);
        }
        // The inner visitor's error would not mention `off`: say it all here.
        let expected = format!("{}", &self as &dyn de::Expected);
        self.0
            .visit_str::<E>(s)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &expected.as_str()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn de_off_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(OffOr(DurationVisitor))
}

/// A whole number given as text (the tree keeps scalars as text).
struct IntVisitor<T>(std::marker::PhantomData<T>);

impl<T: TryFrom<u64>> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a whole number from 0 to {}", max_of::<T>())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        yaml::parse_int(s)
            .and_then(|v| u64::try_from(v).ok())
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
    }
}

/// The largest `u64` that converts to `T`.
fn max_of<T: TryFrom<u64>>() -> u64 {
    [
        u64::MAX,
        u64::from(u32::MAX),
        u64::from(u16::MAX),
        u64::from(u8::MAX),
    ]
    .into_iter()
    .find(|&m| T::try_from(m).is_ok())
    .unwrap_or(0)
}

fn de_off_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(OffOr(IntVisitor::<u64>(std::marker::PhantomData)))
}

fn de_off_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    d.deserialize_any(OffOr(IntVisitor::<u16>(std::marker::PhantomData)))
}

/// Aggregation windows: whole seconds from 1 s to 1 h.
struct Window(Duration);

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Window, D::Error> {
        let w = de_duration(d)?;
        if w.subsec_nanos() != 0 || w.is_zero() || w.as_secs() > u64::from(MAX_WINDOW_SECS) {
            return Err(de::Error::custom(format!(
                "a window is a whole number of seconds from 1s to {}m, not {w:?}",
                MAX_WINDOW_SECS / 60
            )));
        }
        Ok(Window(w))
    }
}

fn de_windows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let v: Vec<Window> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|w| w.0).collect())
}

/// The words `capture.backend` takes: `auto` and [`Backend::ALL`]'s names.
const BACKENDS: &[&str] = &["auto", "afpacket", "pcap", "windivert", "bpf", "file"];

struct BackendVisitor;

impl Visitor<'_> for BackendVisitor {
    type Value = Option<Backend>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "one of {}", BACKENDS.join(", "))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<Backend>, E> {
        if s == "auto" {
            return Ok(None);
        }
        s.parse::<Backend>()
            .map(Some)
            .map_err(|_| E::unknown_variant(s, BACKENDS))
    }
}

fn de_backend<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Backend>, D::Error> {
    d.deserialize_str(BackendVisitor)
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Speed, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Speed;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("max, realtime, or a multiplier like 10x")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Speed, E> {
                match s {
                    "max" => return Ok(Speed::Max),
                    "realtime" => return Ok(Speed::Realtime),
                    _ => {}
                }
                s.strip_suffix('x')
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|f| f.is_finite() && *f > 0.0 && *f <= 1e6)
                    .map(Speed::Factor)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{} is not a replay speed (write max, realtime, or a multiplier like 10x or 0.5x)",
                            yaml::quote(s)
                        ))
                    })
            }
        }
        d.deserialize_str(V)
    }
}

fn de_excludes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Exclude>, D::Error> {
    struct One(Exclude);
    impl<'de> Deserialize<'de> for One {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<One, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = One;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("ADDR or ADDR:PORT")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<One, E> {
                    s.parse::<Exclude>().map(One).map_err(|_| {
                        E::custom(format!(
                            "{} is not ADDR or ADDR:PORT (e.g. 192.0.2.1, 192.0.2.1:9100, [2001:db8::1]:443)",
                            yaml::quote(s)
                        ))
                    })
                }
            }
            d.deserialize_str(V)
        }
    }
    let v: Vec<One> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|o| o.0).collect())
}

fn de_bind<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = SocketAddr;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an IP address and port")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<SocketAddr, E> {
            s.parse().map_err(|_| {
                E::custom(format!(
                    "{} is not an IP address and port (write 127.0.0.1:9100 or [::1]:9100)",
                    yaml::quote(s)
                ))
            })
        }
    }
    d.deserialize_str(V)
}

fn de_rule<'de, D: Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Rule;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a threshold rule such as `bps on eth0 over 10s > 1e9`")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Rule, E> {
            Rule::parse(s).map_err(|e| E::custom(format!("bad rule: {}", e.message)))
        }
    }
    d.deserialize_str(V)
}

/// The levels of `log.level`.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

fn de_log_level<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a log level")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
            let bad = || {
                E::custom(format!(
                    "{} is not a log level: write one of {}, optionally followed by \
                     ,TARGET=LEVEL directives (e.g. `info,netmon_engine=debug`)",
                    yaml::quote(s),
                    LEVELS.join(", ")
                ))
            };
            for directive in s.split(',').map(str::trim) {
                let level = match directive.split_once('=') {
                    Some((target, level)) => {
                        let target_ok = !target.is_empty()
                            && target
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':'));
                        if !target_ok {
                            return Err(bad());
                        }
                        level
                    }
                    None => directive,
                };
                if !LEVELS.contains(&level) {
                    return Err(bad());
                }
            }
            Ok(s.trim().to_owned())
        }
    }
    d.deserialize_str(V)
}

#[cfg(test)]
mod tests;
