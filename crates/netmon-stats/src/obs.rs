//! The plain input types: what the engine tells the aggregator about each packet
//! ([`PacketObs`]) and about each flow ([`FlowObs`]).
//!
//! `netmon-stats` does not depend on `netmon-flow`: the engine adapts its flow events to
//! [`FlowObs`]. Both types are `Copy` and hold no heap data, so building one per packet or per
//! flow event allocates nothing.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

use netmon_packet::{Link, Net, Packet, Transport, TunnelKind};
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
        Layers::from_key(LayerKey::of(p))
    }

    /// The layer names a [`LayerKey`] stands for (those of [`Layers::from_packet`] of the
    /// packets it was taken from).
    pub fn from_key(k: LayerKey) -> Layers {
        let mut l = Layers::new();
        l.push(match k.field(LayerKey::LINK) {
            1 => "eth",
            2 => "sll",
            3 => "sll2",
            4 => "null",
            _ => "",
        });
        for _ in 0..k.field(LayerKey::VLANS) {
            l.push("vlan");
        }
        if k.field(LayerKey::LLC) != 0 {
            l.push("llc");
        }
        l.push(match k.field(LayerKey::NET) {
            1 => "ipv4",
            2 => "ipv6",
            3 => "arp",
            4 => "lldp",
            5 => "cdp",
            6 => "stp",
            7 => "data",
            _ => "",
        });
        l.push(match k.field(LayerKey::TRANSPORT) {
            1 => "tcp",
            2 => "udp",
            3 => "sctp",
            4 => "icmp",
            5 => "icmpv6",
            6 => "igmp",
            7 => "gre",
            8 => "esp",
            9 => "ip-fragment",
            10 => l4_name(k.field(LayerKey::PROTO)).unwrap_or("ip-other"),
            _ => "",
        });
        l.push(match k.field(LayerKey::TUNNEL) {
            1 => TunnelKind::IpInIp.name(),
            2 => TunnelKind::Gre {
                protocol: 0,
                key: None,
            }
            .name(),
            3 => TunnelKind::Vxlan { vni: 0 }.name(),
            4 => TunnelKind::Geneve {
                vni: 0,
                protocol: 0,
            }
            .name(),
            5 => TunnelKind::Teredo.name(),
            6 => TunnelKind::GtpU { teid: 0 }.name(),
            _ => "",
        });
        l
    }
}

/// A packet's layer stack in eight bytes: which link, how many VLAN tags, whether LLC, which
/// network, transport and tunnel layer — what [`Layers::from_packet`] names, as small numbers
/// ([`Layers::from_key`] gives the names). Equal keys give equal names (the same `'static`
/// strings), so comparing keys stands for comparing stacks without building them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LayerKey(u64);

impl LayerKey {
    const LINK: u32 = 0;
    const VLANS: u32 = 8;
    const LLC: u32 = 16;
    const NET: u32 = 24;
    const TRANSPORT: u32 = 32;
    /// The IP protocol number of a transport named by number (`Partial`, `Other`).
    const PROTO: u32 = 40;
    const TUNNEL: u32 = 48;

    fn field(self, at: u32) -> u8 {
        (self.0 >> at) as u8
    }

    /// The key of a parsed frame's layers.
    pub fn of(p: &Packet<'_>) -> LayerKey {
        let link: u8 = match &p.link {
            Link::Ethernet(_) => 1,
            Link::LinuxSll(_) => 2,
            Link::LinuxSll2(_) => 3,
            Link::Loopback(_) => 4,
            Link::Raw | Link::None => 0,
        };
        // More tags than a stack holds only mark it truncated, as one more would.
        let vlans = u8::try_from(p.vlans.len()).unwrap_or(u8::MAX);
        let net: u8 = match &p.net {
            Net::Ipv4(_) => 1,
            Net::Ipv6(_) => 2,
            Net::Arp(_) => 3,
            Net::Lldp(_) => 4,
            Net::Cdp(_) => 5,
            Net::Stp(_) => 6,
            Net::Unknown(b) if !b.is_empty() => 7,
            _ => 0,
        };
        let (transport, proto): (u8, u8) = match &p.transport {
            Transport::Tcp(_) => (1, 0),
            Transport::Udp(_) => (2, 0),
            Transport::Sctp(_) => (3, 0),
            Transport::Icmpv4(_) => (4, 0),
            Transport::Icmpv6(_) => (5, 0),
            Transport::Igmp(_) => (6, 0),
            Transport::Gre(_) => (7, 0),
            Transport::Esp(_) => (8, 0),
            Transport::Fragment => (9, 0),
            Transport::Partial { proto, .. } => (10, proto.0),
            Transport::Other(n) => (10, n.0),
            _ => (0, 0),
        };
        let tunnel: u8 = match p.tunnel.as_ref().map(|t| t.kind) {
            None => 0,
            Some(TunnelKind::IpInIp) => 1,
            Some(TunnelKind::Gre { .. }) => 2,
            Some(TunnelKind::Vxlan { .. }) => 3,
            Some(TunnelKind::Geneve { .. }) => 4,
            Some(TunnelKind::Teredo) => 5,
            Some(TunnelKind::GtpU { .. }) => 6,
        };
        LayerKey(
            u64::from(link) << Self::LINK
                | u64::from(vlans) << Self::VLANS
                | u64::from(p.llc.is_some()) << Self::LLC
                | u64::from(net) << Self::NET
                | u64::from(transport) << Self::TRANSPORT
                | u64::from(proto) << Self::PROTO
                | u64::from(tunnel) << Self::TUNNEL,
        )
    }

    /// The key as one number (equal keys, equal numbers), for hashing.
    pub fn bits(self) -> u64 {
        self.0
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
        // The brief's fields, and what only the full observation carries.
        let b = PacketBrief::from_packet(ts, iface, p);
        let mut o = PacketObs::new(ts, iface, b.wire_len);
        o.iface_name = iface_name;
        o.layers = b.layers();
        o.l3 = b.l3;
        o.arp = b.arp;
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
        o
    }
}

/// What a [`PacketTally`](crate::PacketTally) and the ARP sweep detector take of one packet:
/// a lean [`PacketObs`] for a packet counted per batch (no addresses, ports or interface name,
/// and the layer stack as a [`LayerKey`] of eight bytes instead of a [`Layers`] of some 200).
/// Build with [`PacketBrief::from_packet`]; count with
/// [`PacketTally::add_brief`](crate::PacketTally::add_brief).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketBrief {
    /// Capture timestamp (the packets' clock).
    pub ts: Timestamp,
    /// Interface index.
    pub iface: u32,
    /// Length of the frame on the wire.
    pub wire_len: u32,
    /// The protocol stack ([`Layers::from_key`] names it).
    pub stack: LayerKey,
    /// Application protocol, when the classifier knows it.
    pub app: Option<&'static str>,
    /// Network layer kind.
    pub l3: L3Kind,
    /// The IP protocol number, when the packet is IP ([`IpObs::proto`]).
    pub proto: Option<u8>,
    /// ARP fields, as in [`PacketObs::arp`].
    pub arp: Option<ArpObs>,
}

impl PacketBrief {
    /// What [`PacketObs::from_packet`] would say of a parsed frame, in brief. `app` is left
    /// `None`. Allocation-free.
    pub fn from_packet(ts: Timestamp, iface: u32, p: &Packet<'_>) -> PacketBrief {
        let (l3, arp) = match &p.net {
            Net::Ipv4(_) => (L3Kind::Ipv4, None),
            Net::Ipv6(_) => (L3Kind::Ipv6, None),
            Net::Arp(a) => (L3Kind::Arp, ArpObs::of(a)),
            _ => (L3Kind::Other, None),
        };
        PacketBrief {
            ts,
            iface,
            wire_len: u32::try_from(p.orig_len).unwrap_or(u32::MAX),
            stack: LayerKey::of(p),
            app: None,
            l3,
            proto: p.ip_proto().map(|n| n.0),
            arp,
        }
    }

    /// The packet's layer names (without the application).
    pub fn layers(&self) -> Layers {
        Layers::from_key(self.stack)
    }
}

impl ArpObs {
    /// The fields of an ARP packet with IPv4 protocol addresses (`None` for other sizes).
    fn of(a: &netmon_packet::ArpPacketSlice<'_>) -> Option<ArpObs> {
        let ip4 = |b: &[u8]| <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from);
        Some(ArpObs {
            op: a.operation().0,
            sender: ip4(a.sender_protocol_addr())?,
            target: ip4(a.target_protocol_addr())?,
        })
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

    /// The brief of a frame says what its full observation says, for frames of many
    /// stacks and for arbitrary bytes on every link type.
    /// `PacketObs::from_packet` is built on the brief; what is not shared by construction is
    /// checked against the parsed packet: the IP protocol (the full observation takes it with
    /// both addresses), the network kind, and that the layer names name that network layer.
    /// (The names themselves are checked against tshark's protocol hierarchy on the corpus.)
    fn brief_agrees(link: LinkType, frame: &[u8]) {
        let p = Packet::parse(link, frame);
        let o = PacketObs::from_packet(Timestamp(7), 2, None, &p);
        let b = PacketBrief::from_packet(Timestamp(7), 2, &p);
        assert_eq!(b.proto, o.ip.map(|i| i.proto), "{frame:02x?}");
        assert_eq!((b.ts, b.iface, b.wire_len), (o.ts, o.iface, o.wire_len));
        let (l3, name) = match &p.net {
            Net::Ipv4(_) => (L3Kind::Ipv4, Some("ipv4")),
            Net::Ipv6(_) => (L3Kind::Ipv6, Some("ipv6")),
            Net::Arp(_) => (L3Kind::Arp, Some("arp")),
            _ => (L3Kind::Other, None),
        };
        assert_eq!(b.l3, l3, "{frame:02x?}");
        let layers = b.layers();
        if let (Some(n), false) = (name, layers.truncated()) {
            assert!(layers.as_slice().contains(&n), "{frame:02x?}");
        }
        assert!(b.arp.is_none() || l3 == L3Kind::Arp);
    }

    #[test]
    fn brief_of_built_frames() {
        let mac = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut frames = Vec::new();
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(mac.0, mac.1)
            .single_vlan(etherparse::VlanId::try_new(7).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 1, 1000)
            .write(&mut f, b"x")
            .unwrap();
        frames.push(f);
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(mac.0, mac.1)
            .ipv6([1; 16], [2; 16], 64)
            .udp(5353, 53)
            .write(&mut f, b"q")
            .unwrap();
        frames.push(f);
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(mac.0, mac.1)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(1, 2)
            .write(&mut f, b"ping")
            .unwrap();
        frames.push(f);
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(mac.0, mac.1)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 4789)
            .write(&mut f, &[8, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 2])
            .unwrap();
        frames.push(f);
        for f in &frames {
            brief_agrees(LinkType::ETHERNET, f);
            // Cut anywhere: every partial stack agrees too.
            for n in 0..f.len() {
                brief_agrees(LinkType::ETHERNET, f.get(..n).unwrap());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn brief_of_any_bytes(
            link in proptest::sample::select(vec![
                LinkType::ETHERNET, LinkType::RAW, LinkType::LINUX_SLL,
                LinkType::LINUX_SLL2, LinkType::NULL,
            ]),
            frame in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            brief_agrees(link, &frame);
        }
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
