//! The plain input types: what the engine tells the aggregator about each packet
//! ([`PacketObs`]) and about each flow ([`FlowObs`]).
//!
//! `netmon-stats` does not depend on `netmon-flow`: the engine adapts its flow events to
//! [`FlowObs`]. Both types are `Copy` and hold no heap data, so building one per packet or per
//! flow event allocates nothing.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

use netmon_packet::{Link, Net, Packet, Transport};
use netmon_types::Timestamp;

/// The most layer names a [`Layers`] stack keeps; deeper stacks are cut (and marked).
pub const MAX_LAYERS: usize = 12;

/// A protocol stack as layer names, outermost first: `["eth", "vlan", "ipv4", "tcp", "tls"]`.
///
/// Fixed capacity ([`MAX_LAYERS`]), `Copy`, no allocation. Pushing past the capacity drops the
/// name and sets [`Layers::truncated`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    names: [&'static str; MAX_LAYERS],
    len: u8,
    truncated: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Layers::new()
    }
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Layers {
    /// An empty stack.
    pub const fn new() -> Layers {
        Layers {
            names: [""; MAX_LAYERS],
            len: 0,
            truncated: false,
        }
    }

    /// A stack from names, outermost first (names past [`MAX_LAYERS`] are dropped).
    pub fn from_names(names: &[&'static str]) -> Layers {
        let mut l = Layers::new();
        for n in names {
            l.push(n);
        }
        l
    }

    /// Appends the next inner layer. Empty names are ignored.
    pub fn push(&mut self, name: &'static str) {
        if name.is_empty() {
            return;
        }
        match self.names.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = name;
                self.len += 1;
            }
            None => self.truncated = true,
        }
    }

    /// The names, outermost first.
    pub fn as_slice(&self) -> &[&'static str] {
        self.names.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the stack is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a push was dropped for lack of room.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The layer names of a parsed frame, as netmon-packet saw it: link (`eth`, `sll`, `sll2`,
    /// `null`), VLAN tags (`vlan`, one per tag), `llc`, network (`ipv4`, `ipv6`, `arp`, `lldp`,
    /// `cdp`, `stp`), transport (`tcp`, `udp`, `sctp`, `icmp`, `icmpv6`, `igmp`, `gre`, `esp`,
    /// `ip-fragment`) and a recognised tunnel (`vxlan`, `teredo`, ...). Raw-IP links add no link
    /// name. The application (when the classifier knows it) is pushed by the caller.
    pub fn from_packet(p: &Packet<'_>) -> Layers {
        let mut l = Layers::new();
        l.push(match &p.link {
            Link::Ethernet(_) => "eth",
            Link::LinuxSll(_) => "sll",
            Link::LinuxSll2(_) => "sll2",
            Link::Loopback(_) => "null",
            Link::Raw | Link::None => "",
        });
        for _ in p.vlans.iter() {
            l.push("vlan");
        }
        if p.llc.is_some() {
            l.push("llc");
        }
        l.push(match &p.net {
            Net::Ipv4(_) => "ipv4",
            Net::Ipv6(_) => "ipv6",
            Net::Arp(_) => "arp",
            Net::Lldp(_) => "lldp",
            Net::Cdp(_) => "cdp",
            Net::Stp(_) => "stp",
            Net::Unknown(b) if !b.is_empty() => "data",
            _ => "",
        });
        l.push(match &p.transport {
            Transport::Tcp(_) => "tcp",
            Transport::Udp(_) => "udp",
            Transport::Sctp(_) => "sctp",
            Transport::Icmpv4(_) => "icmp",
            Transport::Icmpv6(_) => "icmpv6",
            Transport::Igmp(_) => "igmp",
            Transport::Gre(_) => "gre",
            Transport::Esp(_) => "esp",
            Transport::Partial { proto, .. } => l4_name(proto.0).unwrap_or("ip-other"),
            Transport::Fragment => "ip-fragment",
            Transport::Other(n) => l4_name(n.0).unwrap_or("ip-other"),
            _ => "",
        });
        if let Some(t) = &p.tunnel {
            l.push(t.kind.name());
        }
        l
    }
}

/// The short name of an IP protocol number, for the ones netmon names.
pub const fn l4_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        1 => "icmp",
        2 => "igmp",
        4 => "ipip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6-in-ip",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "icmpv6",
        132 => "sctp",
        _ => return None,
    })
}

/// The network layer of a packet, as far as statistics care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L3Kind {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ARP / RARP.
    Arp,
    /// Anything else (LLDP, STP, unknown EtherTypes, unparsable frames).
    Other,
}

impl L3Kind {
    /// `"ipv4"`, `"ipv6"`, `"arp"` or `"other"`.
    pub const fn name(self) -> &'static str {
        match self {
            L3Kind::Ipv4 => "ipv4",
            L3Kind::Ipv6 => "ipv6",
            L3Kind::Arp => "arp",
            L3Kind::Other => "other",
        }
    }
}

/// The IP header fields statistics use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpObs {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol number (after IPv6 extension headers).
    pub proto: u8,
}

/// An ARP packet's operation and IPv4 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpObs {
    /// Operation: 1 request, 2 reply (others kept as they are).
    pub op: u16,
    /// Sender protocol address.
    pub sender: Ipv4Addr,
    /// Target protocol address.
    pub target: Ipv4Addr,
}

impl ArpObs {
    /// ARP request.
    pub const REQUEST: u16 = 1;
    /// ARP reply.
    pub const REPLY: u16 = 2;
}

/// One packet, as the aggregator sees it. Build with [`PacketObs::from_packet`] or by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketObs<'a> {
    /// Capture timestamp (the packets' clock).
    pub ts: Timestamp,
    /// Interface index (pcapng interface id; 0 for single-interface sources).
    pub iface: u32,
    /// Interface name, when the source knows one. The first name seen for an index sticks.
    pub iface_name: Option<&'a str>,
    /// Length of the frame on the wire (bytes are always wire bytes, never captured bytes).
    pub wire_len: u32,
    /// Protocol stack, outermost first (for the protocol hierarchy).
    pub layers: Layers,
    /// Application protocol, when the classifier knows it (`"tls"`, `"dns"`, ...).
    pub app: Option<&'static str>,
    /// Network layer kind.
    pub l3: L3Kind,
    /// IP fields, when the packet is IP.
    pub ip: Option<IpObs>,
    /// Source and destination port (TCP, UDP, SCTP).
    pub ports: Option<(u16, u16)>,
    /// TCP flags (the low 9 bits of the flags field), when TCP.
    pub tcp_flags: Option<u16>,
    /// ARP fields, when the packet is an IPv4-over-Ethernet ARP.
    pub arp: Option<ArpObs>,
}

impl<'a> PacketObs<'a> {
    /// An observation with only a time, an interface and a length (everything else empty).
    pub fn new(ts: Timestamp, iface: u32, wire_len: u32) -> PacketObs<'a> {
        PacketObs {
            ts,
            iface,
            iface_name: None,
            wire_len,
            layers: Layers::new(),
            app: None,
            l3: L3Kind::Other,
            ip: None,
            ports: None,
            tcp_flags: None,
            arp: None,
        }
    }

    /// Everything a parsed frame says. `app` is left `None` (the classifier's business).
    /// Allocation-free.
    pub fn from_packet(
        ts: Timestamp,
        iface: u32,
        iface_name: Option<&'a str>,
        p: &Packet<'_>,
    ) -> PacketObs<'a> {
        let mut o = PacketObs::new(ts, iface, u32::try_from(p.orig_len).unwrap_or(u32::MAX));
        o.iface_name = iface_name;
        o.layers = Layers::from_packet(p);
        o.l3 = match &p.net {
            Net::Ipv4(_) => L3Kind::Ipv4,
            Net::Ipv6(_) => L3Kind::Ipv6,
            Net::Arp(_) => L3Kind::Arp,
            _ => L3Kind::Other,
        };
        if let (Some(src), Some(dst), Some(proto)) = (p.src_ip(), p.dst_ip(), p.ip_proto()) {
            o.ip = Some(IpObs {
                src,
                dst,
                proto: proto.0,
            });
        }
        o.ports = p.ports();
        if let Transport::Tcp(t) = &p.transport {
            o.tcp_flags = Some(t.flags().0);
        }
        if let Net::Arp(a) = &p.net {
            let ip4 = |b: &[u8]| <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from);
            if let (Some(sender), Some(target)) =
                (ip4(a.sender_protocol_addr()), ip4(a.target_protocol_addr()))
            {
                o.arp = Some(ArpObs {
                    op: a.operation().0,
                    sender,
                    target,
                });
            }
        }
        o
    }
}

/// An endpoint of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// Port (0 when the protocol has none).
    pub port: u16,
}

/// How a TCP connection went, as far as the flow tracker saw (modelled on Zeek's `conn_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TcpState {
    /// Only the initiator spoke, and its first packet was a SYN (Zeek `S0`).
    SynOnly,
    /// The responder's first packet was a RST: a SYN (or FIN/NULL/Xmas probe) was refused
    /// (Zeek `REJ`).
    Rejected,
    /// The responder answered SYN-ACK but the handshake never completed (the initiator reset
    /// or went silent — the mark of a half-open SYN scan of an open port).
    HalfOpen,
    /// The three-way handshake completed; not (yet) closed (Zeek `S1`).
    Established,
    /// Established, then closed by FIN or RST (Zeek `SF`, `RSTO`, `RSTR`).
    Closed,
    /// No SYN seen from the initiator (midstream pickup, stealth probes without an answer).
    #[default]
    Other,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// TCP FIN exchange.
    Fin,
    /// TCP RST.
    Rst,
    /// No packet for the idle timeout.
    IdleTimeout,
    /// The flow reached the active (maximum duration) timeout.
    ActiveTimeout,
    /// Evicted from a full flow table.
    Evicted,
    /// The capture ended (end of file, or the engine stopped).
    Finish,
    /// Something else.
    Other,
}

/// A flow summary, as the engine passes it on flow start, update and end.
///
/// Counters are cumulative since the flow started; index 0 is initiator → responder, index 1
/// responder → initiator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowObs {
    /// The engine's flow id (unique while the flow lives).
    pub id: u64,
    /// Time of the flow's first packet.
    pub first_ts: Timestamp,
    /// Time of the flow's latest packet.
    pub last_ts: Timestamp,
    /// Interface index.
    pub iface: u32,
    /// IP protocol number.
    pub proto: u8,
    /// The endpoint that spoke first (the SYN sender for TCP).
    pub initiator: Endpoint,
    /// The other endpoint.
    pub responder: Endpoint,
    /// Packets per direction.
    pub packets: [u64; 2],
    /// Wire bytes per direction.
    pub bytes: [u64; 2],
    /// TCP state (`None` for other protocols).
    pub tcp: Option<TcpState>,
    /// Whether the responder ever sent a packet.
    pub responder_answered: bool,
    /// ICMP / ICMPv6 errors (destination unreachable and the like) that quoted this flow.
    pub icmp_errors: u32,
    /// Application protocol, when known.
    pub app: Option<&'static str>,
    /// Why the flow ended (`Some` only in [`crate::Stats::on_flow_end`]).
    pub end: Option<EndReason>,
}

impl FlowObs {
    /// The L3 kind of the flow (from the initiator's address family).
    pub fn l3(&self) -> L3Kind {
        match self.initiator.ip {
            IpAddr::V4(_) => L3Kind::Ipv4,
            IpAddr::V6(_) => L3Kind::Ipv6,
        }
    }

    /// Total packets, both directions.
    pub fn total_packets(&self) -> u64 {
        self.packets[0].saturating_add(self.packets[1])
    }

    /// Total wire bytes, both directions.
    pub fn total_bytes(&self) -> u64 {
        self.bytes[0].saturating_add(self.bytes[1])
    }

    /// Whether this flow, as a probe of the responder's port, failed, succeeded, or says
    /// nothing (yet). `ended` says whether this is the final summary.
    ///
    /// Failed: any flow quoted by an ICMP error (port/host unreachable); TCP `Rejected` and
    /// `HalfOpen`; `SynOnly` at the end. Succeeded: an established TCP connection (even one
    /// without data: load balancers' health checks look like connect scans), any answered
    /// flow. Everything else says nothing — in particular a silent UDP flow
    /// (syslog, NetFlow, RTP are one-way by design, and a reply whose request was not captured
    /// looks the same) and a TCP flow picked up midstream without an answer.
    pub fn probe_outcome(&self, ended: bool) -> ProbeOutcome {
        if self.icmp_errors > 0 {
            return ProbeOutcome::Failed;
        }
        match self.tcp {
            Some(TcpState::Rejected | TcpState::HalfOpen) => ProbeOutcome::Failed,
            Some(TcpState::SynOnly) if ended => ProbeOutcome::Failed,
            Some(TcpState::Established | TcpState::Closed) => ProbeOutcome::Succeeded,
            Some(TcpState::SynOnly | TcpState::Other) | None if self.responder_answered => {
                ProbeOutcome::Succeeded
            }
            _ => ProbeOutcome::Undecided,
        }
    }
}

/// What a flow says about its responder's port; see [`FlowObs::probe_outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeOutcome {
    /// Refused, unanswered, or torn down without data.
    Failed,
    /// A working exchange.
    Succeeded,
    /// Too early to say.
    Undecided,
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_packet::LinkType;

    #[test]
    fn layers_of_a_vlan_tcp_frame() {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .single_vlan(etherparse::VlanId::try_new(7).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 1, 1000)
            .syn()
            .write(&mut frame, &[])
            .unwrap();
        let p = Packet::parse(LinkType::ETHERNET, &frame);
        let o = PacketObs::from_packet(Timestamp(5), 3, Some("eth0"), &p);
        assert_eq!(o.layers.as_slice(), ["eth", "vlan", "ipv4", "tcp"]);
        assert_eq!(o.l3, L3Kind::Ipv4);
        assert_eq!(o.ports, Some((40000, 443)));
        assert_eq!(o.tcp_flags, Some(0x002));
        assert_eq!(o.ip.unwrap().proto, 6);
        assert_eq!(o.wire_len as usize, frame.len());
    }

    #[test]
    fn layers_cap() {
        let mut l = Layers::new();
        for _ in 0..MAX_LAYERS + 3 {
            l.push("vlan");
        }
        assert_eq!(l.len(), MAX_LAYERS);
        assert!(l.truncated());
        l.push("");
        assert_eq!(l.len(), MAX_LAYERS);
    }

    #[test]
    fn arp_fields() {
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 9]);
        let p = Packet::parse(LinkType::ETHERNET, &frame);
        let o = PacketObs::from_packet(Timestamp(0), 0, None, &p);
        assert_eq!(o.l3, L3Kind::Arp);
        assert_eq!(
            o.arp,
            Some(ArpObs {
                op: 1,
                sender: Ipv4Addr::new(10, 0, 0, 1),
                target: Ipv4Addr::new(10, 0, 0, 9)
            })
        );
        assert_eq!(o.layers.as_slice(), ["eth", "arp"]);
    }

    fn flow(tcp: Option<TcpState>, answered: bool) -> FlowObs {
        let ep = |a: u8, port| Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)),
            port,
        };
        FlowObs {
            id: 1,
            first_ts: Timestamp(0),
            last_ts: Timestamp(0),
            iface: 0,
            proto: if tcp.is_some() { 6 } else { 17 },
            initiator: ep(1, 1000),
            responder: ep(2, 80),
            packets: [1, u64::from(answered)],
            bytes: [60, if answered { 60 } else { 0 }],
            tcp,
            responder_answered: answered,
            icmp_errors: 0,
            app: None,
            end: None,
        }
    }

    #[test]
    fn probe_outcomes() {
        use ProbeOutcome::*;
        let f = flow(Some(TcpState::SynOnly), false);
        assert_eq!(f.probe_outcome(false), Undecided);
        assert_eq!(f.probe_outcome(true), Failed);
        assert_eq!(
            flow(Some(TcpState::Rejected), true).probe_outcome(false),
            Failed
        );
        assert_eq!(
            flow(Some(TcpState::HalfOpen), true).probe_outcome(true),
            Failed
        );
        assert_eq!(
            flow(Some(TcpState::Closed), true).probe_outcome(true),
            Succeeded
        );
        assert_eq!(
            flow(Some(TcpState::Established), true).probe_outcome(false),
            Succeeded
        );
        assert_eq!(flow(None, false).probe_outcome(false), Undecided);
        assert_eq!(flow(None, false).probe_outcome(true), Undecided);
        assert_eq!(flow(None, true).probe_outcome(false), Succeeded);
        let mut icmp = flow(None, true);
        icmp.icmp_errors = 1;
        assert_eq!(icmp.probe_outcome(false), Failed);
        assert_eq!(
            flow(Some(TcpState::Other), true).probe_outcome(true),
            Succeeded
        );
        assert_eq!(
            flow(Some(TcpState::Other), false).probe_outcome(true),
            Undecided
        );
    }
}
