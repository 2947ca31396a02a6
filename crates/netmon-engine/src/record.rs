//! The flow record: what `netmon flows` prints, the daemon stores and the API serves.
//!
//! Field names are a contract (documented in `docs/flows.md`): endpoints are initiator →
//! responder, bytes are original frame lengths, times are the packets' clock in RFC 3339 with
//! nanoseconds.

use core::net::IpAddr;

use netmon_flow::{DirStats, Flow, FlowCore, FlowKey, Side};
use netmon_types::Timestamp;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

/// Lower-case protocol name for the IP protocols netmon names, else the number as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProtoName(pub u8);

impl ProtoName {
    /// The name, if the protocol has one here.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "icmp",
            2 => "igmp",
            6 => "tcp",
            17 => "udp",
            47 => "gre",
            50 => "esp",
            51 => "ah",
            58 => "icmpv6",
            132 => "sctp",
            136 => "udplite",
            33 => "dccp",
            4 => "ipip",
            41 => "ipv6",
            _ => return None,
        })
    }
}

impl core::fmt::Display for ProtoName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for ProtoName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A timestamp serialised as RFC 3339 with nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Rfc3339(pub Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.rfc3339())
    }
}

/// TCP flag counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TcpCounts {
    /// SYN (including SYN-ACK).
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
    /// Estimated retransmissions (data segments wholly below the highest sequence seen).
    pub retransmits: u32,
}

impl From<&DirStats> for TcpCounts {
    fn from(d: &DirStats) -> Self {
        TcpCounts {
            syn: d.syn,
            fin: d.fin,
            rst: d.rst,
            psh: d.psh,
            urg: d.urg,
            ece: d.ece,
            cwr: d.cwr,
            retransmits: d.retransmits,
        }
    }
}

/// A flow key as it appears inside a record (`outer`, `quoted`): the key's two endpoints in
/// key order (not initiator order), protocol, interface and VLANs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord(pub FlowKey);

impl Serialize for KeyRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let k = &self.0;
        let (a, b) = (k.endpoint(Side::Lo), k.endpoint(Side::Hi));
        let port = |p: u16| (k.has_ports() && !is_icmp(k.proto())).then_some(p);
        let mut st = s.serialize_struct("Key", 7)?;
        st.serialize_field("proto", &ProtoName(k.proto()))?;
        st.serialize_field("a_ip", &a.ip)?;
        st.serialize_field("a_port", &port(a.port))?;
        st.serialize_field("b_ip", &b.ip)?;
        st.serialize_field("b_port", &port(b.port))?;
        st.serialize_field("iface", &k.iface())?;
        st.serialize_field("vlan", &k.vlan().ids().collect::<Vec<_>>())?;
        st.end()
    }
}

fn is_icmp(proto: u8) -> bool {
    proto == 1 || proto == 58
}

/// One flow, owned and serialisable. `Default` is an empty record (protocol 0, unspecified
/// addresses, epoch times), for building test and example records field by field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowRecord {
    /// Unique within one run, in creation order.
    pub id: u64,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, ... or the IP protocol number as a string.
    pub proto: ProtoName,
    /// Initiator address.
    pub src_ip: IpAddr,
    /// Initiator port (`null` for protocols without ports, ICMP included).
    pub src_port: Option<u16>,
    /// Responder address.
    pub dst_ip: IpAddr,
    /// Responder port.
    pub dst_port: Option<u16>,
    /// ICMP/ICMPv6 echo identifier, for ping flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_id: Option<u16>,
    /// Packets initiator → responder.
    pub packets_c2s: u64,
    /// Bytes on the wire (original frame lengths) initiator → responder.
    pub bytes_c2s: u64,
    /// Packets responder → initiator.
    pub packets_s2c: u64,
    /// Bytes on the wire responder → initiator.
    pub bytes_s2c: u64,
    /// Transport payload bytes initiator → responder.
    pub payload_bytes_c2s: u64,
    /// Transport payload bytes responder → initiator.
    pub payload_bytes_s2c: u64,
    /// First packet's timestamp.
    pub first_seen: Rfc3339,
    /// Last packet's timestamp.
    pub last_seen: Rfc3339,
    /// `last_seen - first_seen` in nanoseconds.
    pub duration_ns: i64,
    /// TCP state (`syn_sent`, `established`, `closed`, `reset`, ...); `none` for other protocols.
    pub state: &'static str,
    /// Why the record ended (`fin`, `rst`, `idle_timeout`, `active_timeout`, `evicted`,
    /// `end_of_capture`, `shutdown`); `null` for a periodic update of a live flow.
    pub end_reason: Option<&'static str>,
    /// VLAN ids, outermost first.
    pub vlan: Vec<u16>,
    /// Capture interface index.
    pub iface: u32,
    /// Capture interface name, when the source knows it.
    pub iface_name: Option<String>,
    /// TCP flag counts initiator → responder (TCP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_c2s: Option<TcpCounts>,
    /// TCP flag counts responder → initiator (TCP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_s2c: Option<TcpCounts>,
    /// ICMP errors seen that quote this flow.
    pub icmp_errors: u32,
    /// For ICMP flows carrying errors: the flow the latest error quoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted: Option<KeyRecord>,
    /// For flows inside a tunnel: the flow that carried them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer: Option<KeyRecord>,
    /// Application protocol (`tls`, `http`, `dns`, `quic`, `ssh`, `stun`, ...), `null` when
    /// unknown.
    pub app: Option<&'static str>,
    /// Whether `app` was guessed from a port rather than recognised in the payload.
    pub app_guess: bool,
    /// TLS/QUIC server name (for ECH: the outer, public name).
    pub sni: Option<String>,
    /// ALPN protocols the client offered.
    pub alpn: Vec<String>,
    /// The ALPN protocol the server selected in its ServerHello (TLS ≤ 1.2: TLS 1.3 and QUIC
    /// send it encrypted).
    pub alpn_server: Option<String>,
    /// TLS version: the server's choice when its hello was seen, else the highest the client
    /// offered (`"1.3"`, `"1.2"`, ...).
    pub tls_version: Option<String>,
    /// The ClientHello carried an Encrypted Client Hello extension.
    pub ech: bool,
    /// JA4 client fingerprint.
    pub ja4: Option<String>,
    /// HTTP/1.x requests (bounded list).
    pub http: Vec<HttpRecord>,
    /// DNS questions with their answers (bounded list).
    pub dns: Vec<DnsRecord>,
    /// QUIC version (`"v1"`, `"v2"`, `"draft-29"`, `"Q046"`, or hex).
    pub quic_version: Option<String>,
    /// SSH client identification string.
    pub ssh_client: Option<String>,
    /// SSH server identification string.
    pub ssh_server: Option<String>,
    /// STUN SOFTWARE attribute.
    pub stun_software: Option<String>,
    /// The name the responder's address was resolved from (DNS correlation); the SNI wins
    /// when there is one.
    pub domain: Option<String>,
    /// Scope, GeoIP/ASN, tracker (see [`crate::enrich`]); its fields are left out when
    /// unknown or not configured.
    #[serde(flatten)]
    pub enrich: crate::enrich::Enrichment,
}

/// One HTTP request and its response status. Strings are escaped (printable ASCII, `\xNN`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HttpRecord {
    /// Method.
    pub method: Option<String>,
    /// Host header (or absolute-form authority).
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// Question name (escaped).
    pub query: String,
    /// Question type (`A`, `AAAA`, `HTTPS`, ... or the number).
    #[serde(rename = "type")]
    pub qtype: String,
    /// Response code name, when a response was seen (`NOERROR`, `NXDOMAIN`, ...).
    pub rcode: Option<&'static str>,
    /// Answers: addresses (A/AAAA) and CNAME targets of the answer section, in order.
    pub answers: Vec<String>,
    /// A/AAAA addresses of the authority and additional sections (referral glue, the host
    /// addresses of an mDNS answer), in order.
    pub additional: Vec<String>,
}

/// What a flow extension contributes to its record (the classifier fills the application
/// fields). The empty extension contributes nothing.
pub trait RecordExt {
    /// Fills the extension's fields of `r`.
    fn fill(&self, _r: &mut FlowRecord) {}
}

impl RecordExt for () {}

/// The classifier's fields. Every string from a packet is escaped (printable ASCII, `\xNN`).
impl RecordExt for netmon_classify::classifier::FlowClass {
    fn fill(&self, r: &mut FlowRecord) {
        use netmon_classify::classifier::{
            DnsAnswer, dns_rcode_name, dns_type_name, quic_version_name, tls_version_name,
        };
        let esc = |t: &netmon_classify::Text| t.to_escaped_string();
        r.app = self.app();
        r.app_guess = self.is_guess();
        let Some(i) = self.info() else { return };
        if let Some(h) = &i.hello {
            r.sni = h.sni.as_ref().map(esc);
            r.alpn = h.alpn.iter().map(esc).collect();
            r.ech = h.ech;
            r.ja4 = Some(h.ja4.clone());
            r.tls_version = Some(tls_version_name(h.max_version()));
        }
        if let Some(s) = &i.server {
            if !s.hello_retry {
                r.tls_version = Some(tls_version_name(s.version));
            }
            r.alpn_server = s.alpn.as_ref().map(esc);
        }
        r.http = i
            .http
            .iter()
            .map(|t| HttpRecord {
                method: t.method.as_ref().map(esc),
                host: t.host.as_ref().map(esc),
                path: t.path.as_ref().map(esc),
                user_agent: t.user_agent.as_ref().map(esc),
                referer: t.referer.as_ref().map(esc),
                status: t.status,
            })
            .collect();
        r.dns = i
            .dns
            .iter()
            .map(|t| DnsRecord {
                query: esc(&t.query),
                qtype: dns_type_name(t.qtype),
                rcode: t.rcode.map(dns_rcode_name),
                answers: t
                    .answers
                    .iter()
                    .filter_map(|a| match a {
                        DnsAnswer::Addr(ip) => Some(ip.to_string()),
                        DnsAnswer::Cname(n) => Some(esc(n)),
                        DnsAnswer::Additional(_) => None,
                    })
                    .collect(),
                additional: t
                    .answers
                    .iter()
                    .filter_map(|a| match a {
                        DnsAnswer::Additional(ip) => Some(ip.to_string()),
                        _ => None,
                    })
                    .collect(),
            })
            .collect();
        r.quic_version = i.quic_version.map(quic_version_name);
        if let Some(x) = &i.extra {
            r.ssh_client = x.ssh_client.as_ref().map(esc);
            r.ssh_server = x.ssh_server.as_ref().map(esc);
            r.stun_software = x.stun_software.as_ref().map(esc);
        }
        r.domain = i.domain.as_deref().map(esc);
    }
}

impl FlowRecord {
    /// The flow's best name for a human: the TLS/QUIC SNI, else the first HTTP Host, else the
    /// first DNS question, else the `domain` learnt from DNS answers. Escaped like every string
    /// taken from packets.
    pub fn name(&self) -> Option<&str> {
        self.names().next()
    }

    /// Every name the flow carries, in [`name`](Self::name)'s order of preference: SNI, HTTP
    /// Hosts, DNS questions, `domain`.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.sni
            .as_deref()
            .into_iter()
            .chain(self.http.iter().filter_map(|h| h.host.as_deref()))
            .chain(self.dns.iter().map(|d| d.query.as_str()))
            .chain(self.domain.as_deref())
    }

    /// Builds the record of a flow. `iface_name` comes from the capture source.
    pub fn new<E: RecordExt>(flow: &Flow<E>, iface_name: Option<&str>) -> FlowRecord {
        let mut r = FlowRecord::from_core(&flow.core, iface_name);
        flow.ext.fill(&mut r);
        r
    }

    /// Builds the record from the tracker's part of a flow.
    pub fn from_core(c: &FlowCore, iface_name: Option<&str>) -> FlowRecord {
        let k = &c.key;
        let icmp = is_icmp(k.proto());
        let port = |p: u16| (k.has_ports() && !icmp).then_some(p);
        let (src, dst) = (c.src(), c.dst());
        let tcp = k.proto() == 6;
        FlowRecord {
            id: c.id,
            proto: ProtoName(k.proto()),
            src_ip: src.ip,
            src_port: port(src.port),
            dst_ip: dst.ip,
            dst_port: port(dst.port),
            icmp_id: (icmp && k.has_ports()).then_some(src.port),
            packets_c2s: c.c2s().packets,
            bytes_c2s: c.c2s().bytes,
            packets_s2c: c.s2c().packets,
            bytes_s2c: c.s2c().bytes,
            payload_bytes_c2s: c.c2s().payload_bytes,
            payload_bytes_s2c: c.s2c().payload_bytes,
            first_seen: Rfc3339(c.first_seen),
            last_seen: Rfc3339(c.last_seen),
            duration_ns: c.last_seen.nanos_since(c.first_seen),
            state: c.tcp_state.name(),
            end_reason: c.end_reason.map(|r| r.name()),
            vlan: k.vlan().ids().collect(),
            iface: u32::from(k.iface()),
            iface_name: iface_name.map(str::to_owned),
            tcp_c2s: tcp.then(|| TcpCounts::from(c.c2s())),
            tcp_s2c: tcp.then(|| TcpCounts::from(c.s2c())),
            icmp_errors: c.icmp_errors,
            quoted: c.quoted().map(|k| KeyRecord(*k)),
            outer: c.outer().map(|k| KeyRecord(*k)),
            // Classification and enrichment: filled by the extension and the enricher.
            ..FlowRecord::default()
        }
    }
}

/// Writes `s` as a JSON string (quotes included), escaping per RFC 8259.
fn json_str<W: std::io::Write>(w: &mut W, s: &str) -> std::io::Result<()> {
    w.write_all(b"\"")?;
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        w.write_all(bytes.get(start..i).unwrap_or_default())?;
        if esc.is_empty() {
            write!(w, "\\u{:04x}", b)?;
        } else {
            w.write_all(esc)?;
        }
        start = i + 1;
    }
    w.write_all(bytes.get(start..).unwrap_or_default())?;
    w.write_all(b"\"")
}

/// An IP address as a JSON string; IPv4 without the formatting machinery.
fn json_ip<W: std::io::Write>(w: &mut W, ip: IpAddr) -> std::io::Result<()> {
    match ip {
        IpAddr::V4(a) => {
            let mut b = itoa::Buffer::new();
            let [x, y, z, t] = a.octets();
            w.write_all(b"\"")?;
            w.write_all(b.format(x).as_bytes())?;
            w.write_all(b".")?;
            w.write_all(b.format(y).as_bytes())?;
            w.write_all(b".")?;
            w.write_all(b.format(z).as_bytes())?;
            w.write_all(b".")?;
            w.write_all(b.format(t).as_bytes())?;
            w.write_all(b"\"")
        }
        IpAddr::V6(a) => write!(w, "\"{a}\""),
    }
}

/// `,"key":` without the formatting machinery.
#[inline]
fn key<W: std::io::Write>(w: &mut W, key: &str) -> std::io::Result<()> {
    w.write_all(b",\"")?;
    w.write_all(key.as_bytes())?;
    w.write_all(b"\":")
}

/// `,"key":"value"` or `,"key":null`.
fn opt_str<W: std::io::Write>(w: &mut W, key: &str, v: Option<&str>) -> std::io::Result<()> {
    self::key(w, key)?;
    match v {
        Some(v) => json_str(w, v),
        None => w.write_all(b"null"),
    }
}

/// `,"key":["a","b"]`.
fn str_list<W: std::io::Write>(w: &mut W, key: &str, v: &[String]) -> std::io::Result<()> {
    self::key(w, key)?;
    w.write_all(b"[")?;
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        json_str(w, s)?;
    }
    w.write_all(b"]")
}

/// Allocation-free JSON for the per-flow hot path of `netmon flows` (serde_json spends most of
/// its time escaping the constant keys). Produces exactly what `serde_json::to_writer` produces
/// for the same record; a property test holds the two together.
impl FlowRecord {
    /// Writes the record as one JSON object (no trailing newline).
    pub fn write_json<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        let mut b = itoa::Buffer::new();
        macro_rules! num {
            ($key:literal, $v:expr) => {{
                w.write_all(concat!(",\"", $key, "\":").as_bytes())?;
                w.write_all(b.format($v).as_bytes())?;
            }};
        }
        macro_rules! opt_num {
            ($key:literal, $v:expr) => {{
                w.write_all(concat!(",\"", $key, "\":").as_bytes())?;
                match $v {
                    Some(v) => w.write_all(b.format(v).as_bytes())?,
                    None => w.write_all(b"null")?,
                }
            }};
        }
        w.write_all(b"{\"id\":")?;
        w.write_all(b.format(self.id).as_bytes())?;
        w.write_all(b",\"proto\":\"")?;
        match self.proto.name() {
            Some(n) => w.write_all(n.as_bytes())?,
            None => w.write_all(b.format(self.proto.0).as_bytes())?,
        }
        w.write_all(b"\"")?;
        w.write_all(b",\"src_ip\":")?;
        json_ip(w, self.src_ip)?;
        opt_num!("src_port", self.src_port);
        w.write_all(b",\"dst_ip\":")?;
        json_ip(w, self.dst_ip)?;
        opt_num!("dst_port", self.dst_port);
        if let Some(id) = self.icmp_id {
            num!("icmp_id", id);
        }
        num!("packets_c2s", self.packets_c2s);
        num!("bytes_c2s", self.bytes_c2s);
        num!("packets_s2c", self.packets_s2c);
        num!("bytes_s2c", self.bytes_s2c);
        num!("payload_bytes_c2s", self.payload_bytes_c2s);
        num!("payload_bytes_s2c", self.payload_bytes_s2c);
        let mut tb = [0u8; 32];
        w.write_all(b",\"first_seen\":\"")?;
        w.write_all(self.first_seen.0.write_rfc3339(&mut tb).as_bytes())?;
        w.write_all(b"\",\"last_seen\":\"")?;
        w.write_all(self.last_seen.0.write_rfc3339(&mut tb).as_bytes())?;
        w.write_all(b"\"")?;
        num!("duration_ns", self.duration_ns);
        w.write_all(b",\"state\":\"")?;
        w.write_all(self.state.as_bytes())?;
        w.write_all(b"\"")?;
        match self.end_reason {
            Some(r) => {
                w.write_all(b",\"end_reason\":\"")?;
                w.write_all(r.as_bytes())?;
                w.write_all(b"\"")?;
            }
            None => w.write_all(b",\"end_reason\":null")?,
        }
        w.write_all(b",\"vlan\":[")?;
        for (i, v) in self.vlan.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            w.write_all(b.format(*v).as_bytes())?;
        }
        w.write_all(b"]")?;
        num!("iface", self.iface);
        w.write_all(b",\"iface_name\":")?;
        match &self.iface_name {
            Some(n) => json_str(w, n)?,
            None => w.write_all(b"null")?,
        }
        for (name, t) in [("tcp_c2s", &self.tcp_c2s), ("tcp_s2c", &self.tcp_s2c)] {
            if let Some(t) = t {
                key(w, name)?;
                w.write_all(b"{\"syn\":")?;
                w.write_all(b.format(t.syn).as_bytes())?;
                for (k, v) in [
                    ("fin", u32::from(t.fin)),
                    ("rst", u32::from(t.rst)),
                    ("psh", t.psh),
                    ("urg", u32::from(t.urg)),
                    ("ece", u32::from(t.ece)),
                    ("cwr", u32::from(t.cwr)),
                    ("retransmits", t.retransmits),
                ] {
                    key(w, k)?;
                    w.write_all(b.format(v).as_bytes())?;
                }
                w.write_all(b"}")?;
            }
        }
        num!("icmp_errors", self.icmp_errors);
        for (name, k) in [("quoted", &self.quoted), ("outer", &self.outer)] {
            if let Some(k) = k {
                key(w, name)?;
                serde_json::to_writer(&mut *w, k).map_err(std::io::Error::from)?;
            }
        }
        opt_str(w, "app", self.app)?;
        w.write_all(if self.app_guess {
            b",\"app_guess\":true"
        } else {
            b",\"app_guess\":false"
        })?;
        opt_str(w, "sni", self.sni.as_deref())?;
        str_list(w, "alpn", &self.alpn)?;
        opt_str(w, "alpn_server", self.alpn_server.as_deref())?;
        opt_str(w, "tls_version", self.tls_version.as_deref())?;
        w.write_all(if self.ech {
            b",\"ech\":true"
        } else {
            b",\"ech\":false"
        })?;
        opt_str(w, "ja4", self.ja4.as_deref())?;
        w.write_all(b",\"http\":[")?;
        for (i, h) in self.http.iter().enumerate() {
            w.write_all(if i == 0 { b"{" } else { b",{" })?;
            let mut first = true;
            for (k, v) in [
                ("method", &h.method),
                ("host", &h.host),
                ("path", &h.path),
                ("user_agent", &h.user_agent),
                ("referer", &h.referer),
            ] {
                if !first {
                    w.write_all(b",")?;
                }
                first = false;
                w.write_all(b"\"")?;
                w.write_all(k.as_bytes())?;
                w.write_all(b"\":")?;
                match v {
                    Some(v) => json_str(w, v)?,
                    None => w.write_all(b"null")?,
                }
            }
            match h.status {
                Some(s) => {
                    w.write_all(b",\"status\":")?;
                    w.write_all(b.format(s).as_bytes())?;
                    w.write_all(b"}")?;
                }
                None => w.write_all(b",\"status\":null}")?,
            }
        }
        w.write_all(b"],\"dns\":[")?;
        for (i, d) in self.dns.iter().enumerate() {
            w.write_all(if i == 0 {
                b"{\"query\":"
            } else {
                b",{\"query\":"
            })?;
            json_str(w, &d.query)?;
            w.write_all(b",\"type\":")?;
            json_str(w, &d.qtype)?;
            w.write_all(b",\"rcode\":")?;
            match d.rcode {
                Some(r) => json_str(w, r)?,
                None => w.write_all(b"null")?,
            }
            str_list(w, "answers", &d.answers)?;
            str_list(w, "additional", &d.additional)?;
            w.write_all(b"}")?;
        }
        w.write_all(b"]")?;
        opt_str(w, "quic_version", self.quic_version.as_deref())?;
        opt_str(w, "ssh_client", self.ssh_client.as_deref())?;
        opt_str(w, "ssh_server", self.ssh_server.as_deref())?;
        opt_str(w, "stun_software", self.stun_software.as_deref())?;
        opt_str(w, "domain", self.domain.as_deref())?;
        if !self.enrich.is_empty() {
            let e = &self.enrich;
            let io = |e: serde_json::Error| std::io::Error::other(e);
            if let Some(v) = &e.scope {
                key(w, "scope")?;
                serde_json::to_writer(&mut *w, v).map_err(io)?;
            }
            if let Some(v) = &e.geo {
                key(w, "geo")?;
                serde_json::to_writer(&mut *w, v).map_err(io)?;
            }
            if let Some(v) = &e.asn {
                key(w, "asn")?;
                serde_json::to_writer(&mut *w, v).map_err(io)?;
            }
            if let Some(v) = &e.tracker {
                key(w, "tracker")?;
                serde_json::to_writer(&mut *w, v).map_err(io)?;
            }
            if let Some(v) = &e.process {
                key(w, "process")?;
                serde_json::to_writer(&mut *w, v).map_err(io)?;
            }
        }
        w.write_all(b"}")
    }
}

/// Records for the unit tests of other modules.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A TCP record 10.0.0.1:40000 → 10.0.0.2:443 with nothing classified.
    pub(crate) fn record() -> FlowRecord {
        FlowRecord {
            id: 1,
            proto: ProtoName(6),
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: Some(40000),
            dst_ip: "10.0.0.2".parse().unwrap(),
            dst_port: Some(443),
            packets_c2s: 1,
            bytes_c2s: 60,
            first_seen: Rfc3339(Timestamp(1_700_000_000_000_000_000)),
            last_seen: Rfc3339(Timestamp(1_700_000_000_000_000_000)),
            state: "syn_sent",
            end_reason: Some("end_of_capture"),
            ..FlowRecord::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_flow::VlanKey;
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = FlowRecord> {
        (
            (
                any::<u64>(),
                any::<u8>(),
                any::<[u8; 16]>(),
                any::<bool>(),
                any::<Option<u16>>(),
                any::<Option<u16>>(),
            ),
            (
                any::<[u64; 6]>(),
                any::<i64>(),
                any::<i64>(),
                any::<bool>(),
                prop::collection::vec(0u16..4096, 0..4),
            ),
            (
                any::<u32>(),
                any::<Option<String>>(),
                any::<bool>(),
                any::<u32>(),
                any::<bool>(),
                any::<[u16; 6]>(),
            ),
        )
            .prop_map(
                |(
                    (id, proto, addr, v6, sp, dp),
                    (c, t0, t1, reason, vlan),
                    (iface, name, tcp, icmp_errors, outer, n),
                )| {
                    let ip = if v6 {
                        IpAddr::from(addr)
                    } else {
                        IpAddr::from([addr[0], addr[1], addr[2], addr[3]])
                    };
                    let key =
                        FlowKey::new(n[0], VlanKey::NONE, proto, ip, ip, Some((n[1], n[2]))).0;
                    let counts = TcpCounts {
                        syn: n[3],
                        fin: n[4],
                        rst: n[5],
                        psh: c[0] as u32,
                        ..TcpCounts::default()
                    };
                    FlowRecord {
                        id,
                        proto: ProtoName(proto),
                        src_ip: ip,
                        src_port: sp,
                        dst_ip: ip,
                        dst_port: dp,
                        icmp_id: sp.filter(|_| v6),
                        packets_c2s: c[0],
                        bytes_c2s: c[1],
                        packets_s2c: c[2],
                        bytes_s2c: c[3],
                        payload_bytes_c2s: c[4],
                        payload_bytes_s2c: c[5],
                        first_seen: Rfc3339(Timestamp(t0)),
                        last_seen: Rfc3339(Timestamp(t1)),
                        duration_ns: t1.wrapping_sub(t0),
                        state: "established",
                        end_reason: reason.then_some("idle_timeout"),
                        vlan,
                        iface,
                        iface_name: name.clone(),
                        tcp_c2s: tcp.then_some(counts),
                        tcp_s2c: tcp.then_some(TcpCounts::default()),
                        icmp_errors,
                        quoted: outer.then_some(KeyRecord(key)),
                        outer: outer.then_some(KeyRecord(key)),
                        app: tcp.then_some("tls"),
                        app_guess: outer,
                        sni: name.clone(),
                        alpn: name.iter().cloned().collect(),
                        alpn_server: name.clone().filter(|_| tcp),
                        tls_version: tcp.then(|| "1.3".to_string()),
                        ech: v6,
                        ja4: name.clone(),
                        http: if outer {
                            vec![HttpRecord {
                                method: name.clone(),
                                host: None,
                                path: Some("/\u{1b}".into()),
                                user_agent: name.clone(),
                                referer: None,
                                status: sp,
                            }]
                        } else {
                            Vec::new()
                        },
                        dns: if tcp {
                            vec![DnsRecord {
                                query: "a\"b".into(),
                                qtype: "A".into(),
                                rcode: Some("NOERROR"),
                                answers: vec!["1.2.3.4".into(), "x".into()],
                                additional: vec!["::1".into()],
                            }]
                        } else {
                            Vec::new()
                        },
                        quic_version: name.clone(),
                        ssh_client: name.clone(),
                        ssh_server: None,
                        stun_software: name.clone(),
                        domain: name,
                        enrich: Default::default(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn fast_json_equals_serde(r in record()) {
            let mut fast = Vec::new();
            r.write_json(&mut fast).unwrap();
            let slow = serde_json::to_vec(&r).unwrap();
            prop_assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
        }
    }

    #[test]
    fn hostile_interface_names_are_escaped() {
        let mut w = Vec::new();
        json_str(&mut w, "a\"b\\c\u{1b}[31m\n\u{7f}é").unwrap();
        assert_eq!(
            String::from_utf8(w).unwrap(),
            "\"a\\\"b\\\\c\\u001b[31m\\n\u{7f}é\""
        );
    }
}

impl Default for FlowRecord {
    fn default() -> Self {
        FlowRecord {
            id: 0,
            proto: ProtoName(0),
            src_ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            src_port: None,
            dst_ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            dst_port: None,
            icmp_id: None,
            packets_c2s: 0,
            bytes_c2s: 0,
            packets_s2c: 0,
            bytes_s2c: 0,
            payload_bytes_c2s: 0,
            payload_bytes_s2c: 0,
            first_seen: Rfc3339(Timestamp::EPOCH),
            last_seen: Rfc3339(Timestamp::EPOCH),
            duration_ns: 0,
            state: "none",
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
            enrich: crate::enrich::Enrichment::default(),
        }
    }
}
