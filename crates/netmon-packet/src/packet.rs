//! The frame walker: from link type and bytes to a [`Packet`] of borrowed layer views.

use core::net::IpAddr;

pub use etherparse::{ArpPacketSlice, EtherType, IpNumber};
use netmon_types::LinkType;

use crate::bytes::tail;
use crate::cdp::Cdp;
use crate::checksum::{self, ChecksumStatus, PseudoHeader, ZeroChecksum};
use crate::error::{ErrorKind, Layer, ParseError};
use crate::icmp::{Icmpv4, Icmpv6};
use crate::igmp::Igmp;
use crate::ip::{self, Fragment, Ipv4, Ipv6};
use crate::link::{self, Link, LinuxSll, LinuxSll2, Loopback, VlanStack};
use crate::llc::{Llc, Snap, Stp};
use crate::lldp::Lldp;
use crate::transport::{self, Esp, Sctp, Tcp, Udp};
use crate::tunnel::{self, Gre, Tunnel, TunnelKind};

/// The network layer of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Net<'a> {
    /// Nothing parsed at this layer (link-layer error, or no payload).
    None,
    /// IPv4.
    Ipv4(Ipv4<'a>),
    /// IPv6.
    Ipv6(Ipv6<'a>),
    /// ARP or RARP (etherparse's view).
    Arp(ArpPacketSlice<'a>),
    /// Link Layer Discovery Protocol (EtherType 0x88cc).
    Lldp(Lldp<'a>),
    /// Cisco Discovery Protocol (SNAP, OUI 00-00-0c, PID 0x2000).
    Cdp(Cdp<'a>),
    /// Spanning-tree BPDU (LLC DSAP 0x42).
    Stp(Stp<'a>),
    /// A payload netmon does not parse: the bytes after the link headers. The EtherType (if
    /// any) is in [`Packet::ether_type`].
    Unknown(&'a [u8]),
}

/// The transport layer of an IP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport<'a> {
    /// No transport layer (not IP, or the IP layer failed).
    None,
    /// TCP.
    Tcp(Tcp<'a>),
    /// UDP.
    Udp(Udp<'a>),
    /// SCTP common header.
    Sctp(Sctp<'a>),
    /// ICMP for IPv4.
    Icmpv4(Icmpv4<'a>),
    /// ICMP for IPv6.
    Icmpv6(Icmpv6<'a>),
    /// IGMP.
    Igmp(Igmp<'a>),
    /// GRE; the encapsulated packet is in [`Packet::tunnel`].
    Gre(Gre<'a>),
    /// ESP: only SPI and sequence number are in the clear.
    Esp(Esp),
    /// A TCP/UDP/SCTP header cut short (snaplen or a lying length), of which the ports survived.
    Partial {
        /// IP protocol.
        proto: IpNumber,
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// A non-first IP fragment: its bytes are the middle of a payload, not a header.
    Fragment,
    /// Another IP protocol (its bytes are [`Packet::payload`]).
    Other(IpNumber),
}

/// A parsed frame: a borrowed view of every layer that parsed, plus the error (if any) that
/// stopped the walk.
///
/// Building one allocates nothing and never panics; every field borrows the frame.
///
/// ```
/// use netmon_packet::{LinkType, Packet, Transport};
///
/// // Ethernet / IPv4 / UDP 1234 -> 53, built with etherparse.
/// let mut frame = Vec::new();
/// etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
///     .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
///     .udp(1234, 53)
///     .write(&mut frame, b"query")
///     .unwrap();
///
/// let p = Packet::parse(LinkType::ETHERNET, &frame);
/// assert!(p.error.is_none());
/// assert_eq!(p.src_ip().unwrap().to_string(), "10.0.0.1");
/// assert_eq!(p.ports(), Some((1234, 53)));
/// assert!(matches!(p.transport, Transport::Udp(_)));
/// assert_eq!(p.payload, b"query");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The captured bytes.
    pub data: &'a [u8],
    /// The frame's length on the wire (≥ `data.len()`).
    pub orig_len: usize,
    /// The link type the frame was parsed as.
    pub link_type: LinkType,
    /// Link-layer header.
    pub link: Link<'a>,
    /// VLAN tags, outermost first.
    pub vlans: VlanStack,
    /// The EtherType (or SLL protocol, or SNAP protocol id) that selected the network layer,
    /// after VLAN tags. `None` for raw/loopback links and LLC frames without SNAP.
    pub ether_type: Option<EtherType>,
    /// IEEE 802.2 LLC header (802.3 length-field frames, SLL protocol 0x0004).
    pub llc: Option<Llc<'a>>,
    /// SNAP header after LLC.
    pub snap: Option<Snap>,
    /// Network layer.
    pub net: Net<'a>,
    /// Transport layer (IP only).
    pub transport: Transport<'a>,
    /// An encapsulated packet, when this one is a tunnel; parse it with [`Packet::inner`].
    pub tunnel: Option<Tunnel<'a>>,
    /// The innermost payload this walk reached: the application data of TCP/UDP (cut to the
    /// IP/UDP lengths, so link padding is excluded), the body of other IP protocols, or the
    /// unparsed rest of a non-IP frame. Empty for fully parsed layers without a payload
    /// (ARP, LLDP, CDP, STP).
    pub payload: &'a [u8],
    /// Offset of `payload` in the frame.
    pub payload_offset: usize,
    /// The first error met. Layers before it are complete; lenient parsing may have continued
    /// past a length inconsistency (e.g. a truncated IP payload still yields TCP ports).
    pub error: Option<ParseError>,
}

impl<'a> Packet<'a> {
    /// Parses a frame captured in full (`orig_len == data.len()`).
    #[inline]
    pub fn parse(link_type: LinkType, data: &'a [u8]) -> Packet<'a> {
        Packet::parse_frame(link_type, data, data.len())
    }

    /// Parses a frame whose length on the wire was `orig_len` (larger than `data.len()` when
    /// the capture's snaplen cut it).
    #[inline]
    pub fn parse_frame(link_type: LinkType, data: &'a [u8], orig_len: usize) -> Packet<'a> {
        Packet::parse_at(link_type, data, orig_len, 0)
    }

    /// Parses a frame like [`parse_frame`](Packet::parse_frame) and hands the result to `f`
    /// by reference. On the per-packet hot path this avoids moving the ~400-byte `Packet` out
    /// of the parser (a measurable memcpy per packet at millions of packets per second).
    #[inline]
    pub fn parse_frame_with<R>(
        link_type: LinkType,
        data: &'a [u8],
        orig_len: usize,
        f: impl FnOnce(&Packet<'a>) -> R,
    ) -> R {
        let mut p = Packet::empty(link_type, data, orig_len);
        Walker { p: &mut p, base: 0 }.link();
        f(&p)
    }

    fn empty(link_type: LinkType, data: &'a [u8], orig_len: usize) -> Packet<'a> {
        Packet {
            data,
            orig_len: orig_len.max(data.len()),
            link_type,
            link: Link::None,
            vlans: VlanStack::new(),
            ether_type: None,
            llc: None,
            snap: None,
            net: Net::None,
            transport: Transport::None,
            tunnel: None,
            payload: &[],
            payload_offset: 0,
            error: None,
        }
    }

    /// Parses `data` as if it started `base` bytes into a frame (for tunnels' inner packets):
    /// every offset in the result is relative to that frame.
    fn parse_at(link_type: LinkType, data: &'a [u8], orig_len: usize, base: usize) -> Packet<'a> {
        let mut p = Packet::empty(link_type, data, orig_len);
        let mut w = Walker { p: &mut p, base };
        w.link();
        p
    }

    /// Whether the capture's snaplen cut this frame (so truncation errors are expected).
    pub fn snaplen_truncated(&self) -> bool {
        self.data.len() < self.orig_len
    }

    /// Parses the packet carried by [`Packet::tunnel`], if any. Offsets in the result are
    /// relative to this (outer) frame. One level per call: the caller bounds nesting.
    pub fn inner(&self) -> Option<Packet<'a>> {
        let t = self.tunnel?;
        // The inner packet's wire length: what the outer frame had left from the inner start.
        let orig = self
            .orig_len
            .saturating_sub(t.inner_offset)
            .max(t.inner.len());
        Some(Packet::parse_at(
            t.inner_link,
            t.inner,
            orig,
            t.inner_offset,
        ))
    }

    /// IP version (4 or 6), if the frame is IP.
    pub fn ip_version(&self) -> Option<u8> {
        match self.net {
            Net::Ipv4(_) => Some(4),
            Net::Ipv6(_) => Some(6),
            _ => None,
        }
    }

    /// Source IP address.
    pub fn src_ip(&self) -> Option<IpAddr> {
        match &self.net {
            Net::Ipv4(v) => Some(IpAddr::V4(v.src())),
            Net::Ipv6(v) => Some(IpAddr::V6(v.src())),
            _ => None,
        }
    }

    /// Destination IP address.
    pub fn dst_ip(&self) -> Option<IpAddr> {
        match &self.net {
            Net::Ipv4(v) => Some(IpAddr::V4(v.dst())),
            Net::Ipv6(v) => Some(IpAddr::V6(v.dst())),
            _ => None,
        }
    }

    /// The IP protocol of the transport layer (after IPv6 extension headers and AH).
    pub fn ip_proto(&self) -> Option<IpNumber> {
        match &self.net {
            Net::Ipv4(v) => Some(v.protocol()),
            Net::Ipv6(v) => Some(v.protocol()),
            _ => None,
        }
    }

    /// Fragment fields, if the IP packet is a fragment.
    pub fn fragment(&self) -> Option<Fragment> {
        match &self.net {
            Net::Ipv4(v) => v.fragment(),
            Net::Ipv6(v) => v.fragment(),
            _ => None,
        }
    }

    /// Verifies the IPv4 header checksum and the transport checksum (TCP, UDP, ICMP, ICMPv6,
    /// IGMP). Costs one pass over the segment, so it is a separate call, not part of parsing.
    /// A bad checksum never changes how the packet was parsed.
    pub fn checksums(&self) -> Checksums {
        let mut c = Checksums::default();
        let (pseudo, segment, declared, fragmented) = match &self.net {
            Net::Ipv4(v) => {
                c.ipv4 = Some(checksum::verify_ipv4_header(v.header().slice()));
                let ph = PseudoHeader::V4 {
                    src: v.src().octets(),
                    dst: v.dst().octets(),
                    protocol: v.protocol().0,
                };
                (
                    ph,
                    v.payload(),
                    v.declared_payload_len(),
                    v.fragment().is_some(),
                )
            }
            Net::Ipv6(v) => {
                let ph = PseudoHeader::V6 {
                    src: v.src().octets(),
                    dst: final_destination(v),
                    next_header: v.protocol().0,
                };
                (
                    ph,
                    v.payload(),
                    v.declared_payload_len(),
                    v.fragment().is_some(),
                )
            }
            _ => return c,
        };
        let v6 = matches!(self.net, Net::Ipv6(_));
        let (layer, status) = match &self.transport {
            Transport::Tcp(_) => (
                Layer::Tcp,
                checksum::verify_transport(pseudo, segment, declared, 16, ZeroChecksum::Allowed),
            ),
            Transport::Udp(_) => {
                let zero = if v6 {
                    ZeroChecksum::Forbidden
                } else {
                    ZeroChecksum::MeansAbsent
                };
                (
                    Layer::Udp,
                    checksum::verify_transport(pseudo, segment, declared, 6, zero),
                )
            }
            Transport::Icmpv4(i) => (Layer::Icmpv4, i.verify_checksum(declared)),
            Transport::Icmpv6(i) => (
                Layer::Icmpv6,
                checksum::verify_transport(pseudo, i.bytes(), declared, 2, ZeroChecksum::Allowed),
            ),
            Transport::Igmp(i) => (Layer::Igmp, i.verify_checksum()),
            Transport::Partial { proto, .. } => {
                let layer = match *proto {
                    IpNumber::TCP => Layer::Tcp,
                    IpNumber::UDP => Layer::Udp,
                    _ => Layer::Sctp,
                };
                (layer, ChecksumStatus::Truncated)
            }
            _ => return c,
        };
        let status = if fragmented && !matches!(status, ChecksumStatus::Absent) {
            ChecksumStatus::Fragmented
        } else {
            status
        };
        c.transport = Some((layer, status));
        c
    }

    /// Source and destination ports of TCP, UDP and SCTP (also of headers cut short).
    pub fn ports(&self) -> Option<(u16, u16)> {
        match &self.transport {
            Transport::Tcp(t) => Some((t.src_port(), t.dst_port())),
            Transport::Udp(u) => Some((u.src_port(), u.dst_port())),
            Transport::Sctp(s) => Some((s.src_port(), s.dst_port())),
            Transport::Partial {
                src_port, dst_port, ..
            } => Some((*src_port, *dst_port)),
            _ => None,
        }
    }
}

/// Checksum verdicts of one packet; `None` where the packet has no such checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksums {
    /// IPv4 header checksum.
    pub ipv4: Option<ChecksumStatus>,
    /// The transport checksum and the layer it belongs to.
    pub transport: Option<(Layer, ChecksumStatus)>,
}

impl Checksums {
    /// The first bad checksum, if any: its layer and verdict.
    pub fn first_bad(&self) -> Option<(Layer, ChecksumStatus)> {
        match (self.ipv4, self.transport) {
            (Some(s), _) if s.is_bad() => Some((Layer::Ipv4, s)),
            (_, Some((l, s))) if s.is_bad() => Some((l, s)),
            _ => None,
        }
    }
}

/// The destination the transport checksum covers: the last address of a routing header that
/// still has segments left (RFC 8200 §8.1), else the header's destination.
fn final_destination(v: &Ipv6<'_>) -> [u8; 16] {
    if let Some(r) = v.routing() {
        if r.segments_left() > 0 {
            // Type 0 lists the remaining hops in order (final last); SRH lists segments in
            // reverse (Segment List[0] is the final destination).
            let last = match r.routing_type() {
                0 => r.addresses().last(),
                4 => r.addresses().next(),
                _ => None,
            };
            if let Some(a) = last {
                return a.octets();
            }
        }
    }
    v.dst().octets()
}

/// Walk state: the packet being filled and the offset of `p.data` in the outermost frame.
struct Walker<'p, 'a> {
    p: &'p mut Packet<'a>,
    base: usize,
}

impl<'a> Walker<'_, 'a> {
    /// Records `e` (offset relative to `p.data`) unless an earlier error is already recorded.
    fn fail(&mut self, e: ParseError) {
        if self.p.error.is_none() {
            self.p.error = Some(e.shifted(self.base));
        }
    }

    fn rest(&self, off: usize) -> &'a [u8] {
        tail(self.p.data, off)
    }

    fn set_payload(&mut self, payload: &'a [u8], off: usize) {
        self.p.payload = payload;
        self.p.payload_offset = self.base + off;
    }

    fn link(&mut self) {
        let data = self.p.data;
        match self.p.link_type {
            LinkType::ETHERNET => match etherparse::Ethernet2HeaderSlice::from_slice(data) {
                Ok(eth) => {
                    let et = eth.ether_type().0;
                    self.p.link = Link::Ethernet(eth);
                    self.ether(et, 14);
                }
                Err(e) => self.fail(ParseError::truncated(
                    Layer::Ethernet,
                    0,
                    e.required_len,
                    e.len,
                )),
            },
            LinkType::LINUX_SLL => match LinuxSll::new_checked(data) {
                Ok(s) => {
                    self.p.link = Link::LinuxSll(s);
                    self.sll_protocol(s.protocol(), LinuxSll::LEN);
                }
                Err(e) => self.fail(e),
            },
            LinkType::LINUX_SLL2 => match LinuxSll2::new_checked(data) {
                Ok(s) => {
                    self.p.link = Link::LinuxSll2(s);
                    self.sll_protocol(s.protocol(), LinuxSll2::LEN);
                }
                Err(e) => self.fail(e),
            },
            LinkType::NULL | LinkType::LOOP => {
                match Loopback::parse(data, self.p.link_type == LinkType::LOOP) {
                    Ok(lo) => {
                        self.p.link = Link::Loopback(lo);
                        match lo.ip_version() {
                            Some(4) => self.ipv4(Loopback::LEN),
                            Some(_) => self.ipv6(Loopback::LEN),
                            None => {
                                self.p.net = Net::Unknown(self.rest(Loopback::LEN));
                                self.set_payload(self.rest(Loopback::LEN), Loopback::LEN);
                                self.fail(ParseError::new(
                                    Layer::Loopback,
                                    0,
                                    ErrorKind::Invalid("unknown address family"),
                                ));
                            }
                        }
                    }
                    Err(e) => self.fail(e),
                }
            }
            LinkType::RAW | LinkType::RAW_BSD => {
                self.p.link = Link::Raw;
                match ip::ip_version(data) {
                    Some(6) => self.ipv6(0),
                    Some(4) => self.ipv4(0),
                    Some(v) => self.fail(ParseError::new(Layer::Ipv4, 0, ErrorKind::BadVersion(v))),
                    None => self.fail(ParseError::truncated(Layer::Ipv4, 0, 1, 0)),
                }
            }
            LinkType::IPV4 => {
                self.p.link = Link::Raw;
                self.ipv4(0);
            }
            LinkType::IPV6 => {
                self.p.link = Link::Raw;
                self.ipv6(0);
            }
            other => {
                self.p.net = Net::Unknown(data);
                self.set_payload(data, 0);
                self.fail(ParseError::new(
                    Layer::LinkType,
                    0,
                    ErrorKind::UnsupportedLinkType(other.0),
                ));
            }
        }
    }

    /// SLL/SLL2 protocol field: an EtherType, or one of Linux's pseudo-protocols below 0x0600.
    fn sll_protocol(&mut self, proto: u16, off: usize) {
        match proto {
            0x0600.. => self.ether(proto, off),
            0x0004 => self.llc(self.rest(off), off),
            _ => {
                // 0x0001 802.3 (Novell), 0x000c CAN, 0x0010 LocalTalk, ...: not parsed.
                self.p.net = Net::Unknown(self.rest(off));
                self.set_payload(self.rest(off), off);
            }
        }
    }

    /// Dispatches on an EtherType (or an 802.3 length) found at `off - 2`; the payload starts at `off`.
    fn ether(&mut self, mut et: u16, mut off: usize) {
        if link::is_vlan_tpid(et) {
            let mut tags = VlanStack::new();
            let r = link::parse_vlans(et, self.rest(off), &mut tags);
            self.p.vlans = tags;
            match r {
                Ok((next, used)) => {
                    et = next;
                    off += used;
                }
                Err(e) => return self.fail(e.shifted(off)),
            }
        }
        if et < 0x0600 {
            // IEEE 802.3: the field is a length (≤ 1500; padding may follow); 802.2 LLC follows.
            let rest = self.rest(off);
            let body = rest.get(..usize::from(et)).unwrap_or(rest);
            return self.llc(body, off);
        }
        self.ethertype(et, off);
    }

    /// Dispatches on an EtherType whose payload starts at `off`.
    fn ethertype(&mut self, et: u16, off: usize) {
        self.p.ether_type = Some(EtherType(et));
        match EtherType(et) {
            EtherType::IPV4 => self.ipv4(off),
            EtherType::IPV6 => self.ipv6(off),
            EtherType::ARP | EtherType(0x8035) => {
                match ArpPacketSlice::from_slice(self.rest(off)) {
                    Ok(a) => self.p.net = Net::Arp(a),
                    Err(e) => self.fail(ParseError::truncated(
                        Layer::Arp,
                        off,
                        e.required_len,
                        e.len,
                    )),
                }
            }
            EtherType(0x88cc) => match Lldp::new_partial(self.rest(off)) {
                Ok((l, e)) => {
                    self.p.net = Net::Lldp(l);
                    if let Some(e) = e {
                        self.fail(e.shifted(off));
                    }
                }
                Err(e) => self.fail(e.shifted(off)),
            },
            _ => {
                self.p.net = Net::Unknown(self.rest(off));
                self.set_payload(self.rest(off), off);
            }
        }
    }

    /// An 802.2 LLC frame body at `off`: SNAP (with an EtherType or CDP), STP, or unknown.
    fn llc(&mut self, body: &'a [u8], off: usize) {
        let llc = match Llc::new_checked(body) {
            Ok(l) => l,
            Err(e) => return self.fail(e.shifted(off)),
        };
        self.p.llc = Some(llc);
        let hl = llc.header_len();
        self.p.net = Net::Unknown(llc.payload());
        self.set_payload(llc.payload(), off + hl);
        if let Some(snap) = llc.snap() {
            let (snap, payload) = match snap {
                Ok(s) => s,
                Err(e) => return self.fail(e.shifted(off)),
            };
            self.p.snap = Some(snap);
            let poff = off + hl + Snap::LEN;
            self.set_payload(payload, poff);
            self.p.net = Net::Unknown(payload);
            if let Some(et) = snap.ethertype() {
                self.ethertype(et, poff);
            } else if snap.is_cdp() {
                self.p.ether_type = None;
                match Cdp::new_partial(payload) {
                    Ok((c, e)) => {
                        self.p.net = Net::Cdp(c);
                        self.set_payload(&[], poff);
                        if let Some(e) = e {
                            self.fail(e.shifted(poff));
                        }
                    }
                    Err(e) => self.fail(e.shifted(poff)),
                }
            }
        } else if llc.is_stp() {
            match Stp::new_checked(llc.payload()) {
                Ok(stp) => {
                    self.p.net = Net::Stp(stp);
                    self.set_payload(&[], off + hl);
                }
                Err(e) => self.fail(e.shifted(off + hl)),
            }
        }
    }

    fn ipv4(&mut self, off: usize) {
        let (v, e) = ip::parse_ipv4(self.rest(off));
        if let Some(e) = e {
            self.fail(e.shifted(off));
        }
        let Some(v) = v else { return };
        let later_fragment = v.fragment().is_some_and(|f| !f.is_first());
        let (proto, payload, poff) = (v.protocol(), v.payload(), off + v.payload_offset());
        let fragmented = v.fragment().is_some();
        self.p.net = Net::Ipv4(v);
        self.transport(proto, payload, poff, later_fragment, fragmented);
    }

    fn ipv6(&mut self, off: usize) {
        let (v, e) = ip::parse_ipv6(self.rest(off));
        if let Some(e) = e {
            self.fail(e.shifted(off));
        }
        let Some(v) = v else { return };
        let later_fragment = v.fragment().is_some_and(|f| !f.is_first());
        let (proto, payload, poff) = (v.protocol(), v.payload(), off + v.payload_offset());
        let fragmented = v.fragment().is_some();
        let complete = v.extensions_complete();
        self.p.net = Net::Ipv6(v);
        if complete {
            self.transport(proto, payload, poff, later_fragment, fragmented);
        }
    }

    /// Parses the transport layer from `seg` (the IP payload at frame offset `off`).
    fn transport(
        &mut self,
        proto: IpNumber,
        seg: &'a [u8],
        off: usize,
        later_fragment: bool,
        fragmented: bool,
    ) {
        if later_fragment {
            self.p.transport = Transport::Fragment;
            self.set_payload(seg, off);
            return;
        }
        // Default: the whole IP payload is "the payload"; headers below narrow it.
        self.set_payload(seg, off);
        let partial = |w: &mut Self, e: ParseError, ports: Option<(u16, u16)>| {
            w.fail(e.shifted(off));
            if let Some((src_port, dst_port)) = ports {
                w.p.transport = Transport::Partial {
                    proto,
                    src_port,
                    dst_port,
                };
            }
            w.p.payload = &[];
        };
        match proto {
            IpNumber::TCP => match transport::parse_tcp(seg) {
                Ok(t) => {
                    self.set_payload(t.payload(), off + t.header_len());
                    self.p.transport = Transport::Tcp(t);
                }
                Err((e, ports)) => partial(self, e, ports),
            },
            IpNumber::UDP => match transport::parse_udp(seg) {
                Ok((u, e)) => {
                    if let Some(e) = e {
                        self.fail(e.shifted(off));
                    }
                    let poff = off + 8;
                    self.set_payload(u.payload(), poff);
                    if !fragmented {
                        self.p.tunnel = tunnel::udp_tunnel(
                            u.src_port(),
                            u.dst_port(),
                            u.payload(),
                            self.base + poff,
                        );
                    }
                    self.p.transport = Transport::Udp(u);
                }
                Err((e, ports)) => partial(self, e, ports),
            },
            IpNumber::SCTP => match transport::parse_sctp(seg) {
                Ok(s) => {
                    self.set_payload(s.chunks(), off + Sctp::LEN);
                    self.p.transport = Transport::Sctp(s);
                }
                Err((e, ports)) => partial(self, e, ports),
            },
            IpNumber::ICMP => match Icmpv4::parse(seg) {
                Ok(i) => {
                    self.set_payload(i.body(), off + crate::icmp::HEADER_LEN);
                    self.p.transport = Transport::Icmpv4(i);
                }
                Err(e) => self.fail(e.shifted(off)),
            },
            IpNumber::IPV6_ICMP => match Icmpv6::parse(seg) {
                Ok(i) => {
                    self.set_payload(i.body(), off + crate::icmp::HEADER_LEN);
                    self.p.transport = Transport::Icmpv6(i);
                }
                Err(e) => self.fail(e.shifted(off)),
            },
            IpNumber::IGMP => {
                let declared = match &self.p.net {
                    Net::Ipv4(v) => v.declared_payload_len(),
                    Net::Ipv6(v) => v.declared_payload_len(),
                    _ => seg.len(),
                };
                match Igmp::parse(seg, declared) {
                    Ok(i) => self.p.transport = Transport::Igmp(i),
                    Err(e) => self.fail(e.shifted(off)),
                }
            }
            IpNumber::GRE => match Gre::new_checked(seg) {
                Ok(g) => {
                    self.set_payload(g.payload(), off + g.header_len());
                    if !fragmented {
                        self.p.tunnel = tunnel::gre_tunnel(&g, self.base + off);
                    }
                    self.p.transport = Transport::Gre(g);
                }
                Err(e) => self.fail(e.shifted(off)),
            },
            IpNumber::IPV4 | IpNumber::IPV6 => {
                self.p.transport = Transport::Other(proto);
                if !fragmented && !seg.is_empty() {
                    let inner_link = if proto == IpNumber::IPV4 {
                        LinkType::IPV4
                    } else {
                        LinkType::IPV6
                    };
                    self.p.tunnel = Some(Tunnel {
                        kind: TunnelKind::IpInIp,
                        inner_link,
                        inner: seg,
                        inner_offset: self.base + off,
                    });
                }
            }
            IpNumber::ENCAPSULATING_SECURITY_PAYLOAD => match transport::parse_esp(seg) {
                Some(esp) => self.p.transport = Transport::Esp(esp),
                None => self.fail(ParseError::truncated(Layer::Esp, off, 8, seg.len())),
            },
            _ => self.p.transport = Transport::Other(proto),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumStatus;
    use etherparse::PacketBuilder;

    fn eth_ipv4_udp(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(src, dst)
            .write(&mut f, payload)
            .unwrap();
        f
    }

    #[test]
    fn unsupported_link_type_is_reported() {
        let p = Packet::parse(LinkType(147), &[1, 2, 3]);
        let e = p.error.unwrap();
        assert_eq!(
            (e.layer, e.kind),
            (Layer::LinkType, ErrorKind::UnsupportedLinkType(147))
        );
        assert_eq!(p.net, Net::Unknown(&[1, 2, 3]));
    }

    #[test]
    fn linktype_ipv4_with_ipv6_inside_is_an_error() {
        let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
        v6.extend_from_slice(&[0; 32]);
        let p = Packet::parse(LinkType::IPV4, &v6);
        assert_eq!(p.error.unwrap().kind, ErrorKind::BadVersion(6));
        assert_eq!(p.net, Net::None);
        // ...while LINKTYPE_RAW picks the version from the nibble.
        let p = Packet::parse(LinkType::RAW, &v6);
        assert_eq!((p.ip_version(), p.error), (Some(6), None));
    }

    #[test]
    fn cut_extension_chain_has_no_transport() {
        // IPv6 + destination options header cut in half.
        let mut f = vec![0x60, 0, 0, 0, 0, 16, 60, 64];
        f.extend_from_slice(&[0; 32]);
        f.extend_from_slice(&[17, 0, 1, 4]);
        let p = Packet::parse_frame(LinkType::RAW, &f, 56);
        assert_eq!(p.transport, Transport::None);
        assert_eq!(p.error.unwrap().layer, Layer::Ipv6);
        assert!(p.payload.is_empty());
    }

    #[test]
    fn later_fragment_has_no_transport_header() {
        let mut f = eth_ipv4_udp(1, 2, &[0xaa; 16]);
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x02; // fragment offset 2 (16 bytes), MF clear
        let p = Packet::parse(LinkType::ETHERNET, &f);
        assert_eq!(p.transport, Transport::Fragment);
        assert_eq!(p.fragment().unwrap().offset, 16);
        assert_eq!(p.payload.len(), 24, "the whole fragment body");
        assert_eq!(p.ports(), None);
    }

    #[test]
    fn vxlan_inner_packet() {
        let inner = eth_ipv4_udp(5000, 6000, b"inner");
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vx.extend_from_slice(&inner);
        let outer = eth_ipv4_udp(33333, 4789, &vx);
        let p = Packet::parse(LinkType::ETHERNET, &outer);
        let t = p.tunnel.unwrap();
        assert_eq!(t.kind, TunnelKind::Vxlan { vni: 42 });
        assert_eq!(t.inner_offset, 42 + 8);
        let i = p.inner().unwrap();
        assert_eq!(i.ports(), Some((5000, 6000)));
        assert_eq!(i.payload, b"inner");
        assert_eq!(
            i.payload_offset,
            outer.len() - 5,
            "inner offsets are frame offsets"
        );
        assert!(i.inner().is_none());
    }

    #[test]
    fn ip_in_ip_and_gre() {
        let mut inner = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 9)
            .udp(7, 8)
            .write(&mut inner, b"z")
            .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .write(&mut f, IpNumber::IPV6, &inner)
            .unwrap();
        let p = Packet::parse(LinkType::RAW, &f);
        assert_eq!(p.tunnel.unwrap().kind, TunnelKind::IpInIp);
        assert_eq!(p.inner().unwrap().ports(), Some((7, 8)));

        let mut gre = vec![0x00, 0x00, 0x86, 0xdd];
        gre.extend_from_slice(&inner);
        let mut f = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .write(&mut f, IpNumber::GRE, &gre)
            .unwrap();
        let p = Packet::parse(LinkType::IPV4, &f);
        assert!(matches!(p.transport, Transport::Gre(_)));
        assert_eq!(p.inner().unwrap().payload, b"z");
    }

    #[test]
    fn ethernet_8023_length_frames_are_not_ethertypes() {
        // 802.3 frame with length 3 (an LLC header), then padding.
        let mut f = vec![
            0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x00, 0x03, 0x42, 0x42, 0x03,
        ];
        f.extend_from_slice(&[0; 20]);
        let p = Packet::parse(LinkType::ETHERNET, &f);
        assert_eq!(p.ether_type, None);
        let llc = p.llc.unwrap();
        assert_eq!((llc.dsap(), llc.ssap(), llc.header_len()), (0x42, 0x42, 3));
        // A 3-byte "BPDU" is too short: STP reports it, the LLC layer stays.
        assert_eq!(p.error.unwrap().layer, Layer::Stp);
    }

    #[test]
    fn loopback_unknown_family() {
        let p = Packet::parse(LinkType::NULL, &[7, 0, 0, 0, 1, 2]);
        assert_eq!(p.error.unwrap().layer, Layer::Loopback);
        assert_eq!(p.payload, &[1, 2]);
    }

    #[test]
    fn checksums_reported_not_enforced() {
        let mut f = eth_ipv4_udp(1000, 53, b"abcd");
        let p = Packet::parse(LinkType::ETHERNET, &f);
        let c = p.checksums();
        assert_eq!(c.ipv4, Some(ChecksumStatus::Good));
        assert_eq!(c.transport, Some((Layer::Udp, ChecksumStatus::Good)));
        assert_eq!(c.first_bad(), None);
        // Flip a payload byte: the UDP checksum is bad, the packet parses the same.
        let last = f.len() - 1;
        f[last] ^= 0xff;
        let p = Packet::parse(LinkType::ETHERNET, &f);
        assert_eq!(p.ports(), Some((1000, 53)));
        assert!(matches!(
            p.checksums().first_bad(),
            Some((Layer::Udp, ChecksumStatus::Bad { .. }))
        ));
        // UDP over IPv4 with checksum 0: not computed.
        f[14 + 20 + 6] = 0;
        f[14 + 20 + 7] = 0;
        let p = Packet::parse(LinkType::ETHERNET, &f);
        assert_eq!(
            p.checksums().transport,
            Some((Layer::Udp, ChecksumStatus::Absent))
        );
        // Bad IPv4 header checksum.
        f[14 + 10] ^= 1;
        assert!(matches!(
            Packet::parse(LinkType::ETHERNET, &f)
                .checksums()
                .first_bad(),
            Some((Layer::Ipv4, ChecksumStatus::Bad { .. }))
        ));
    }

    #[test]
    fn checksums_of_fragments_and_cut_segments() {
        let mut f = eth_ipv4_udp(1000, 53, &[7; 64]);
        f[14 + 6] = 0x20; // MF set, offset 0: first fragment
        let p = Packet::parse(LinkType::ETHERNET, &f);
        assert_eq!(
            p.checksums().transport,
            Some((Layer::Udp, ChecksumStatus::Fragmented))
        );
        let f = eth_ipv4_udp(1000, 53, &[7; 64]);
        let p = Packet::parse_frame(LinkType::ETHERNET, &f[..50], f.len());
        assert_eq!(
            p.checksums().transport,
            Some((Layer::Udp, ChecksumStatus::Truncated))
        );
        let p = Packet::parse_frame(LinkType::ETHERNET, &f[..38], f.len());
        assert_eq!(
            p.checksums().transport,
            Some((Layer::Udp, ChecksumStatus::Truncated))
        );
    }

    #[test]
    fn icmp_and_igmp_dispatch() {
        let mut f = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(7, 9)
            .write(&mut f, b"ping")
            .unwrap();
        let p = Packet::parse(LinkType::RAW, &f);
        let Transport::Icmpv4(i) = &p.transport else {
            panic!("{:?}", p.transport)
        };
        assert_eq!(i.echo().map(|e| (e.id, e.seq)), Some((7, 9)));
        assert_eq!(p.payload, b"ping");
        assert_eq!(
            p.checksums().transport,
            Some((Layer::Icmpv4, ChecksumStatus::Good))
        );

        let mut f = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .icmpv6_echo_reply(3, 4)
            .write(&mut f, b"pong")
            .unwrap();
        let p = Packet::parse(LinkType::IPV6, &f);
        assert!(matches!(p.transport, Transport::Icmpv6(_)));
        assert_eq!(
            p.checksums().transport,
            Some((Layer::Icmpv6, ChecksumStatus::Good))
        );

        // IGMPv2 membership report for 239.1.1.1 (checksum filled in below).
        let mut igmp = vec![0x16, 0, 0, 0, 239, 1, 1, 1];
        let ck = crate::checksum::internet_checksum(&igmp);
        igmp[2..4].copy_from_slice(&ck.to_be_bytes());
        let mut f = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [239, 1, 1, 1], 1)
            .write(&mut f, IpNumber::IGMP, &igmp)
            .unwrap();
        let p = Packet::parse(LinkType::IPV4, &f);
        assert!(matches!(p.transport, Transport::Igmp(_)));
        assert_eq!(
            p.checksums().transport,
            Some((Layer::Igmp, ChecksumStatus::Good))
        );
    }
}
