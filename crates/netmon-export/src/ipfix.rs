//! IPFIX export (RFC 7011 protocol, RFC 7012 information elements) of flow records.
//!
//! Each bidirectional flow record becomes one or two uni-directional IPFIX data records: the
//! initiator → responder direction, and the reverse when it carried packets (addresses,
//! ports and interface as seen in that direction). Collectors that know nothing of netmon's
//! biflows (nfdump, most SIEMs) count them right.
//!
//! ```text
//! Message header (RFC 7011 §3.1)          Set header (§3.3.2)      Template record (§3.4.1)
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-------------------------------+-------------------------------+
//! |       Version Number (10)     |            Length             |
//! +-------------------------------+-------------------------------+
//! |                           Export Time                         |
//! +---------------------------------------------------------------+
//! |                       Sequence Number                         |
//! +---------------------------------------------------------------+
//! |                    Observation Domain ID                      |
//! +-------------------------------+-------------------------------+
//! |   Set ID (2: templates, ≥256: data)   |        Length         |
//! +-------------------------------+-------------------------------+
//! |  Template ID (≥256)           |         Field Count           |
//! |  Information Element id       |         Field Length          |  × Field Count
//! ```
//!
//! Two templates: 256 for IPv4 flows and 257 for IPv6 flows, with the same fields but the
//! addresses. They are sent before the first data set, then again every
//! [`IpfixConfig::template_refresh`] over UDP (RFC 7011 §8.4: a UDP collector may have missed
//! them or restarted); over TCP once per connection. The sequence number counts data records
//! sent (§3.1), per observation domain.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use netmon_engine::FlowRecord;

/// IPFIX template id of IPv4 flow records.
pub const TEMPLATE_V4: u16 = 256;
/// IPFIX template id of IPv6 flow records.
pub const TEMPLATE_V6: u16 = 257;

/// The IPv4 template's fields: `(information element id, length)` in order.
pub const FIELDS_V4: [(u16, u16); 13] = [
    (8, 4),   // sourceIPv4Address
    (12, 4),  // destinationIPv4Address
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (4, 1),   // protocolIdentifier
    (6, 2),   // tcpControlBits
    (10, 4),  // ingressInterface
    (1, 8),   // octetDeltaCount
    (2, 8),   // packetDeltaCount
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
    (136, 1), // flowEndReason
    (148, 8), // flowId
];

/// The IPv6 template's fields.
pub const FIELDS_V6: [(u16, u16); 13] = [
    (27, 16), // sourceIPv6Address
    (28, 16), // destinationIPv6Address
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 2),
    (10, 4),
    (1, 8),
    (2, 8),
    (152, 8),
    (153, 8),
    (136, 1),
    (148, 8),
];

const HEADER_LEN: usize = 16;
const SET_HEADER_LEN: usize = 4;
const RECORD_V4: usize = 4 + 4 + 2 + 2 + 1 + 2 + 4 + 8 + 8 + 8 + 8 + 1 + 8;
const RECORD_V6: usize = RECORD_V4 + 24;

/// How the exporter reaches its collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP datagrams of at most [`IpfixConfig::mtu`] bytes.
    Udp,
    /// One TCP connection (RFC 7011 §10.4), reconnected on failure.
    Tcp,
}

/// Exporter settings.
#[derive(Clone, Debug, PartialEq)]
pub struct IpfixConfig {
    /// The collector.
    pub collector: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Observation domain id.
    pub domain_id: u32,
    /// Templates are sent again this often over UDP.
    pub template_refresh: Duration,
    /// Largest UDP message, bytes (header included).
    pub mtu: usize,
}

impl IpfixConfig {
    /// UDP to `collector`, domain 1, templates every 60 s, 1400-byte messages.
    pub fn udp(collector: SocketAddr) -> IpfixConfig {
        IpfixConfig {
            collector,
            transport: Transport::Udp,
            domain_id: 1,
            template_refresh: Duration::from_secs(60),
            mtu: 1400,
        }
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The collector could not be reached or the socket failed.
    #[error("IPFIX collector {collector}: {source}")]
    Io {
        /// The collector.
        collector: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

enum Conn {
    Udp(UdpSocket),
    Tcp(Option<TcpStream>),
}

/// Counters of an exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpfixStats {
    /// Messages sent.
    pub messages: u64,
    /// Data records sent.
    pub records: u64,
    /// Template sets sent.
    pub templates: u64,
    /// Messages that could not be sent (their records are lost; counted, never retried).
    pub send_errors: u64,
}

/// Sends flow records to one collector.
pub struct IpfixExporter {
    cfg: IpfixConfig,
    conn: Conn,
    /// Data records sent (the header's sequence number).
    sequence: u32,
    last_templates: Option<Instant>,
    buf: Vec<u8>,
    stats: IpfixStats,
}

fn ms(ns: i64) -> u64 {
    u64::try_from(ns.div_euclid(1_000_000)).unwrap_or(0)
}

/// flowEndReason (IANA): 1 idle timeout, 2 active timeout, 3 end of flow detected, 4 forced
/// end, 5 lack of resources.
fn end_reason(r: Option<&str>) -> u8 {
    match r {
        Some("idle_timeout") => 1,
        Some("active_timeout") | None => 2,
        Some("fin" | "rst") => 3,
        Some("evicted") => 5,
        Some(_) => 4,
    }
}

/// TCP flags seen in one direction as the tcpControlBits bitmap.
fn tcp_bits(t: Option<&netmon_engine::record::TcpCounts>) -> u16 {
    let Some(t) = t else { return 0 };
    let mut b = 0u16;
    for (count, bit) in [
        (u32::from(t.fin), 0x01),
        (u32::from(t.syn), 0x02),
        (u32::from(t.rst), 0x04),
        (t.psh, 0x08),
        (u32::from(t.urg), 0x20),
        (u32::from(t.ece), 0x40),
        (u32::from(t.cwr), 0x80),
    ] {
        if count > 0 {
            b |= bit;
        }
    }
    b
}

/// One direction of a record: (src, dst, sport, dport, packets, bytes, tcp bits).
struct Dir {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    packets: u64,
    bytes: u64,
    tcp: u16,
}

fn directions(r: &FlowRecord) -> [Option<Dir>; 2] {
    let (sp, dp) = (
        r.src_port.or(r.icmp_id).unwrap_or(0),
        r.dst_port.unwrap_or(0),
    );
    let c2s = (r.packets_c2s > 0).then(|| Dir {
        src: r.src_ip,
        dst: r.dst_ip,
        sport: sp,
        dport: dp,
        packets: r.packets_c2s,
        bytes: r.bytes_c2s,
        tcp: tcp_bits(r.tcp_c2s.as_ref()),
    });
    let s2c = (r.packets_s2c > 0).then(|| Dir {
        src: r.dst_ip,
        dst: r.src_ip,
        sport: dp,
        dport: sp,
        packets: r.packets_s2c,
        bytes: r.bytes_s2c,
        tcp: tcp_bits(r.tcp_s2c.as_ref()),
    });
    [c2s, s2c]
}

impl IpfixExporter {
    /// An exporter; a UDP socket is bound at once, a TCP connection is made at the first send.
    pub fn new(cfg: IpfixConfig) -> Result<IpfixExporter, ExportError> {
        let io = |source| ExportError::Io {
            collector: cfg.collector,
            source,
        };
        let conn = match cfg.transport {
            Transport::Udp => {
                let bind: SocketAddr = if cfg.collector.is_ipv4() {
                    "0.0.0.0:0"
                        .parse()
                        .map_err(|_| io(std::io::ErrorKind::InvalidInput.into()))?
                } else {
                    "[::]:0"
                        .parse()
                        .map_err(|_| io(std::io::ErrorKind::InvalidInput.into()))?
                };
                let s = UdpSocket::bind(bind).map_err(io)?;
                s.connect(cfg.collector).map_err(io)?;
                Conn::Udp(s)
            }
            Transport::Tcp => Conn::Tcp(None),
        };
        Ok(IpfixExporter {
            cfg,
            conn,
            sequence: 0,
            last_templates: None,
            buf: Vec::with_capacity(65_535),
            stats: IpfixStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> IpfixStats {
        self.stats
    }

    /// Exports `records` (export time: `now_secs`, seconds since the epoch). Messages that
    /// cannot be sent are counted in [`IpfixStats::send_errors`]; the first error is returned
    /// after the rest were tried.
    pub fn export(&mut self, records: &[FlowRecord], now_secs: u32) -> Result<(), ExportError> {
        let mut first_err = None;
        let mut note = |r: Result<(), ExportError>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        let max = match self.conn {
            Conn::Udp(_) => self.cfg.mtu.clamp(256, 65_535),
            Conn::Tcp(_) => 65_535,
        };
        let templates_due = match self.conn {
            Conn::Udp(_) => self
                .last_templates
                .is_none_or(|t| t.elapsed() >= self.cfg.template_refresh),
            Conn::Tcp(ref s) => s.is_none() || self.last_templates.is_none(),
        };
        if templates_due {
            self.start(now_secs);
            write_templates(&mut self.buf);
            self.stats.templates += 1;
            note(self.finish());
            self.last_templates = Some(Instant::now());
        }
        // Data: one set per address family and message.
        for v6 in [false, true] {
            let (tid, len) = if v6 {
                (TEMPLATE_V6, RECORD_V6)
            } else {
                (TEMPLATE_V4, RECORD_V4)
            };
            let mut set_start = None;
            for r in records {
                if r.src_ip.is_ipv6() != v6 {
                    continue;
                }
                for d in directions(r).into_iter().flatten() {
                    if set_start.is_some() && self.buf.len() + len > max {
                        close_set(&mut self.buf, set_start.take());
                        note(self.finish());
                    }
                    if set_start.is_none() {
                        if self.buf.is_empty() {
                            self.start(now_secs);
                        }
                        set_start = Some(self.buf.len());
                        self.buf.extend_from_slice(&tid.to_be_bytes());
                        self.buf.extend_from_slice(&[0, 0]);
                    }
                    write_record(&mut self.buf, r, &d);
                    self.sequence = self.sequence.wrapping_add(1);
                    self.stats.records += 1;
                }
            }
            if set_start.is_some() {
                close_set(&mut self.buf, set_start);
                note(self.finish());
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Begins a message: the header with the sequence number of the first record to come.
    fn start(&mut self, now_secs: u32) {
        self.buf.clear();
        self.buf.extend_from_slice(&10u16.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&now_secs.to_be_bytes());
        self.buf.extend_from_slice(&self.sequence.to_be_bytes());
        self.buf
            .extend_from_slice(&self.cfg.domain_id.to_be_bytes());
    }

    /// Fills in the message length and sends it.
    fn finish(&mut self) -> Result<(), ExportError> {
        let len = u16::try_from(self.buf.len()).unwrap_or(u16::MAX);
        if let Some(l) = self.buf.get_mut(2..4) {
            l.copy_from_slice(&len.to_be_bytes());
        }
        let collector = self.cfg.collector;
        let r = match &mut self.conn {
            Conn::Udp(s) => s.send(&self.buf).map(|_| ()),
            Conn::Tcp(slot) => {
                if slot.is_none() {
                    match TcpStream::connect_timeout(&collector, Duration::from_secs(5)) {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            *slot = Some(s);
                        }
                        Err(e) => {
                            self.buf.clear();
                            self.stats.send_errors += 1;
                            return Err(ExportError::Io {
                                collector,
                                source: e,
                            });
                        }
                    }
                }
                let r = match slot.as_mut() {
                    Some(s) => s.write_all(&self.buf),
                    None => Ok(()),
                };
                if r.is_err() {
                    // Reconnect (and resend templates) next time.
                    *slot = None;
                    self.last_templates = None;
                }
                r
            }
        };
        self.buf.clear();
        match r {
            Ok(()) => {
                self.stats.messages += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.send_errors += 1;
                Err(ExportError::Io {
                    collector,
                    source: e,
                })
            }
        }
    }
}

fn close_set(buf: &mut [u8], start: Option<usize>) {
    let Some(start) = start else { return };
    let len = u16::try_from(buf.len().saturating_sub(start)).unwrap_or(u16::MAX);
    if let Some(l) = buf.get_mut(start + 2..start + 4) {
        l.copy_from_slice(&len.to_be_bytes());
    }
}

fn write_templates(buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&2u16.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    for (tid, fields) in [(TEMPLATE_V4, &FIELDS_V4), (TEMPLATE_V6, &FIELDS_V6)] {
        buf.extend_from_slice(&tid.to_be_bytes());
        buf.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for (id, len) in fields.iter() {
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&len.to_be_bytes());
        }
    }
    close_set(buf, Some(start));
}

fn write_record(buf: &mut Vec<u8>, r: &FlowRecord, d: &Dir) {
    match (d.src, d.dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&t.octets());
        }
        (s, t) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            buf.extend_from_slice(&v6(s));
            buf.extend_from_slice(&v6(t));
        }
    }
    buf.extend_from_slice(&d.sport.to_be_bytes());
    buf.extend_from_slice(&d.dport.to_be_bytes());
    buf.push(r.proto.0);
    buf.extend_from_slice(&d.tcp.to_be_bytes());
    buf.extend_from_slice(&r.iface.to_be_bytes());
    buf.extend_from_slice(&d.bytes.to_be_bytes());
    buf.extend_from_slice(&d.packets.to_be_bytes());
    buf.extend_from_slice(&ms(r.first_seen.0.0).to_be_bytes());
    buf.extend_from_slice(&ms(r.last_seen.0.0).to_be_bytes());
    buf.push(end_reason(r.end_reason));
    buf.extend_from_slice(&r.id.to_be_bytes());
}

/// The header length, for tests and collectors.
pub const MESSAGE_HEADER_LEN: usize = HEADER_LEN;
/// The set header length.
pub const SET_HEADER: usize = SET_HEADER_LEN;
