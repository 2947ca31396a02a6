//! The rows the store keeps: plain data, owned, with no dependency on the engine's types (the
//! engine converts its flow records, series points and alerts into these).
//!
//! Field names and meanings follow the flow record of `docs/flows.md`; where the record holds
//! a name (`proto`) the row holds the number, and times are [`Timestamp`]s (nanoseconds on the
//! packets' clock).

use core::net::IpAddr;

use netmon_types::Timestamp;
use serde::{Deserialize, Serialize};

/// One run of a producer (a `netmond` start, a replayed file): the first half of every row's
/// identity. Flow and alert ids restart at each run, so `(run_id, id)` is what is unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The host that captured (`hostname`), so that several sensors can share a database.
    pub host: String,
    /// What was captured: interface names or the replayed file.
    pub source: String,
    /// When the run started (wall clock).
    #[serde(with = "ts_nanos")]
    pub started: Timestamp,
    /// The producer's version (`netmond 0.1.0`).
    pub version: String,
}

/// One flow record. Its identity in the store is `(run_id, id)`: writing a row whose key is
/// already stored never adds a second row (see [`crate::Store::write_flows`] for which of the
/// two is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRow {
    /// The run the flow belongs to ([`crate::Store::begin_run`]).
    pub run_id: u64,
    /// The flow's id, unique within its run.
    pub id: u64,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub proto: u8,
    /// Initiator address.
    pub src_ip: IpAddr,
    /// Initiator port (`None` for protocols without ports, ICMP included).
    pub src_port: Option<u16>,
    /// Responder address.
    pub dst_ip: IpAddr,
    /// Responder port.
    pub dst_port: Option<u16>,
    /// ICMP/ICMPv6 echo identifier of a ping flow.
    pub icmp_id: Option<u16>,
    /// Packets initiator → responder.
    pub packets_c2s: u64,
    /// Wire bytes (original frame lengths) initiator → responder.
    pub bytes_c2s: u64,
    /// Packets responder → initiator.
    pub packets_s2c: u64,
    /// Wire bytes responder → initiator.
    pub bytes_s2c: u64,
    /// Transport payload bytes initiator → responder.
    pub payload_bytes_c2s: u64,
    /// Transport payload bytes responder → initiator.
    pub payload_bytes_s2c: u64,
    /// First packet's timestamp.
    #[serde(with = "ts_nanos")]
    pub first_seen: Timestamp,
    /// Last packet's timestamp.
    #[serde(with = "ts_nanos")]
    pub last_seen: Timestamp,
    /// `last_seen - first_seen`, nanoseconds.
    pub duration_ns: i64,
    /// TCP state name (`closed`, `reset`, ...; `none` for other protocols).
    pub state: String,
    /// Why the record ended (`fin`, `rst`, `idle_timeout`, ..., `shutdown`); `None` for a
    /// periodic update of a live flow.
    pub end_reason: Option<String>,
    /// VLAN ids, outermost first.
    pub vlan: Vec<u16>,
    /// Capture interface index.
    pub iface: u32,
    /// Capture interface name, when known.
    pub iface_name: Option<String>,
    /// TCP flag counts initiator → responder (TCP only).
    pub tcp_c2s: Option<TcpFlags>,
    /// TCP flag counts responder → initiator (TCP only).
    pub tcp_s2c: Option<TcpFlags>,
    /// ICMP errors seen that quote this flow.
    pub icmp_errors: u32,
    /// For ICMP flows carrying errors: the flow the latest error quoted.
    pub quoted: Option<KeyRow>,
    /// For flows inside a tunnel: the flow that carried them.
    pub outer: Option<KeyRow>,
    /// Application protocol (`tls`, `http`, `dns`, ...).
    pub app: Option<String>,
    /// `app` was guessed from a port.
    pub app_guess: bool,
    /// TLS/QUIC server name.
    pub sni: Option<String>,
    /// ALPN protocols the client offered.
    pub alpn: Vec<String>,
    /// ALPN protocol the server selected.
    pub alpn_server: Option<String>,
    /// TLS version (`"1.3"`, ...).
    pub tls_version: Option<String>,
    /// The ClientHello carried an Encrypted Client Hello extension.
    pub ech: bool,
    /// JA4 client fingerprint.
    pub ja4: Option<String>,
    /// HTTP/1.x requests.
    pub http: Vec<HttpRow>,
    /// DNS questions with their answers.
    pub dns: Vec<DnsRow>,
    /// QUIC version name.
    pub quic_version: Option<String>,
    /// SSH client identification string.
    pub ssh_client: Option<String>,
    /// SSH server identification string.
    pub ssh_server: Option<String>,
    /// STUN SOFTWARE attribute.
    pub stun_software: Option<String>,
    /// The name the responder's address was resolved from (DNS correlation).
    pub domain: Option<String>,
}

const UNSPECIFIED: IpAddr = IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED);

/// Every field zero, empty or `None`; both addresses `0.0.0.0`, `state` empty.
impl Default for FlowRow {
    fn default() -> Self {
        FlowRow {
            run_id: 0,
            id: 0,
            proto: 0,
            src_ip: UNSPECIFIED,
            src_port: None,
            dst_ip: UNSPECIFIED,
            dst_port: None,
            icmp_id: None,
            packets_c2s: 0,
            bytes_c2s: 0,
            packets_s2c: 0,
            bytes_s2c: 0,
            payload_bytes_c2s: 0,
            payload_bytes_s2c: 0,
            first_seen: Timestamp::EPOCH,
            last_seen: Timestamp::EPOCH,
            duration_ns: 0,
            state: String::new(),
            end_reason: None,
            vlan: Vec::new(),
            iface: 0,
            iface_name: None,
            tcp_c2s: None,
            tcp_s2c: None,
            icmp_errors: 0,
            quoted: None,
            outer: None,
            app: None,
            app_guess: false,
            sni: None,
            alpn: Vec::new(),
            alpn_server: None,
            tls_version: None,
            ech: false,
            ja4: None,
            http: Vec::new(),
            dns: Vec::new(),
            quic_version: None,
            ssh_client: None,
            ssh_server: None,
            stun_software: None,
            domain: None,
        }
    }
}

impl FlowRow {
    /// Packets in both directions (saturating).
    pub fn packets(&self) -> u64 {
        self.packets_c2s.saturating_add(self.packets_s2c)
    }

    /// Wire bytes in both directions (saturating).
    pub fn bytes(&self) -> u64 {
        self.bytes_c2s.saturating_add(self.bytes_s2c)
    }

    /// Every name the flow carries, as the `name` filter of `netmon flows` sees them: the SNI,
    /// the HTTP Hosts, the DNS questions and `domain`. The store indexes these for
    /// [`crate::DomainFilter`].
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.sni
            .as_deref()
            .into_iter()
            .chain(self.http.iter().filter_map(|h| h.host.as_deref()))
            .chain(self.dns.iter().map(|d| d.query.as_str()))
            .chain(self.domain.as_deref())
    }
}

/// TCP segment counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpFlags {
    /// SYN (SYN-ACK included).
    pub syn: u16,
    /// FIN.
    pub fin: u16,
    /// RST.
    pub rst: u16,
    /// PSH.
    pub psh: u32,
    /// URG.
    pub urg: u16,
    /// ECE.
    pub ece: u16,
    /// CWR.
    pub cwr: u16,
    /// Estimated retransmissions.
    pub retransmits: u32,
}

/// A flow key (`quoted`, `outer`): the two endpoints in key order, not initiator order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    /// IP protocol number.
    pub proto: u8,
    /// Lower endpoint's address.
    pub a_ip: IpAddr,
    /// Lower endpoint's port.
    pub a_port: Option<u16>,
    /// Higher endpoint's address.
    pub b_ip: IpAddr,
    /// Higher endpoint's port.
    pub b_port: Option<u16>,
    /// Capture interface index.
    pub iface: u32,
    /// VLAN ids, outermost first.
    pub vlan: Vec<u16>,
}

/// One HTTP request and its response status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRow {
    /// Method.
    pub method: Option<String>,
    /// Host header.
    pub host: Option<String>,
    /// Request target.
    pub path: Option<String>,
    /// User-Agent.
    pub user_agent: Option<String>,
    /// Referer.
    pub referer: Option<String>,
    /// Response status, when seen.
    pub status: Option<u16>,
}

/// One DNS question and the answers seen for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRow {
    /// Question name.
    pub query: String,
    /// Question type name (`A`, `AAAA`, ... or the number).
    #[serde(rename = "type")]
    pub qtype: String,
    /// Response code name, when a response was seen.
    pub rcode: Option<String>,
    /// Addresses and CNAME targets of the answer section.
    pub answers: Vec<String>,
    /// Addresses of the authority and additional sections.
    pub additional: Vec<String>,
}

/// One point of a per-window stats series (netmon-stats' `SeriesPoint`). Its identity is
/// `(run_id, window_secs, iface, layer, proto, start)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    /// The run.
    pub run_id: u64,
    /// Interval start (inclusive).
    #[serde(with = "ts_nanos")]
    pub start: Timestamp,
    /// Interval end (exclusive).
    #[serde(with = "ts_nanos")]
    pub end: Timestamp,
    /// Interface index.
    pub iface: u32,
    /// Interface name, if known.
    pub iface_name: Option<String>,
    /// `all`, `l3`, `l4`, `app`, `overflow`.
    pub layer: String,
    /// Protocol key name (`all`, `ipv4`, `tcp`, `tls`, ...).
    pub proto: String,
    /// Window length, seconds.
    pub window_secs: u32,
    /// Seconds of the window after the first packet (rates divide by this).
    pub covered_secs: u32,
    /// Packets in the window.
    pub packets: u64,
    /// Wire bytes in the window.
    pub bytes: u64,
    /// Flows started in the window.
    pub new_flows: u64,
    /// Packets per second.
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
    /// New flows per second.
    pub new_flows_per_s: f64,
    /// Active flows at the window's end.
    pub active_flows: u64,
}

/// One alert (netmon-stats' `Alert`, from a `Raised` or `Closed` event). Its identity is
/// `(run_id, id)`; a closed alert replaces the raised one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRow {
    /// The run.
    pub run_id: u64,
    /// Alert id, unique within the run.
    pub id: u64,
    /// When the alert was raised.
    #[serde(with = "ts_nanos")]
    pub ts: Timestamp,
    /// `vertical_scan`, `horizontal_scan`, `arp_sweep`, `syn_flood`, `threshold`.
    pub kind: String,
    /// `low`, `medium`, `high`.
    pub severity: String,
    /// Who did it (an address) or which interface.
    pub source: String,
    /// The target host, when there is one.
    pub target: Option<String>,
    /// The evidence object as JSON text (`serde_json::to_string(&alert.evidence)`), stored as
    /// given.
    pub evidence: String,
    /// First observation aggregated.
    #[serde(with = "ts_nanos")]
    pub first_seen: Timestamp,
    /// Latest observation aggregated.
    #[serde(with = "ts_nanos")]
    pub last_seen: Timestamp,
    /// Whether this is the closing event's final state.
    pub closed: bool,
}

/// Serde form of a [`Timestamp`]: integer nanoseconds since the Unix epoch (the spool's files).
mod ts_nanos {
    use netmon_types::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(d).map(Timestamp)
    }
}
