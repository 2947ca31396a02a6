//! The default output: one tcpdump-like line per record. The grammar is documented in
//! `docs/read-json.md` ("Text output"); every string taken from a packet is written through
//! [`Escaped`].

use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;

use netmon_capture::PacketMeta;
use netmon_packet::cdp::Cdp;
use netmon_packet::icmp::{Icmpv4, Icmpv6, Quoted};
use netmon_packet::igmp::Igmp;
use netmon_packet::llc::Stp;
use netmon_packet::lldp::Lldp;
use netmon_packet::{
    ChecksumStatus, Checksums, Escaped, IpNumber, Link, MacAddr, Net, Packet, Tcp, Transport,
    TunnelKind,
};

use super::decode::{Decoded, Layered};
use super::fastfmt::{self, TsFmt};
use crate::json::write_u64;

/// Writes one record as a line.
pub(crate) fn write_record<W: Write>(
    w: &mut W,
    tsf: &mut TsFmt,
    meta: &PacketMeta<'_>,
    d: &Decoded<'_, '_>,
) -> io::Result<()> {
    tsf.rfc3339(w, meta.ts)?;
    match meta.iface_name {
        Some(name) => write!(w, " {}", Escaped::new(name.as_bytes()).max_len(64))?,
        None => {
            w.write_all(b" if")?;
            num(w, meta.iface)?;
        }
    }
    packet(w, &d.outer, d.inner.as_ref())?;
    marks(w, d.outer.pkt, &d.outer.ck, "")?;
    w.write_all(b" (")?;
    num(w, meta.orig_len)?;
    if meta.cap_len < meta.orig_len {
        w.write_all(b" bytes, ")?;
        num(w, meta.cap_len)?;
        w.write_all(b" captured)\n")
    } else {
        w.write_all(b" bytes)\n")
    }
}

/// A number in decimal.
#[inline]
fn num<W: Write>(w: &mut W, v: impl Into<u64>) -> io::Result<()> {
    write_u64(w, v.into())
}

/// The summary of one packet (VLAN tags, network and transport layers, tunnel). `inner` is
/// the decapsulated packet of `l`'s tunnel; `None` also when `l` is itself an inner packet.
fn packet<W: Write>(
    w: &mut W,
    l: &Layered<'_, '_>,
    inner: Option<&Layered<'_, '_>>,
) -> io::Result<()> {
    let p = l.pkt;
    if !p.vlans.is_empty() {
        write!(w, " vlan ")?;
        for (i, t) in p.vlans.iter().enumerate() {
            write!(w, "{}{}", if i > 0 { "," } else { "" }, t.vid)?;
        }
    }
    match &p.net {
        Net::Ipv4(v) => {
            let ports = p.ports();
            w.write_all(b" IPv4 ")?;
            ip_port(w, IpAddr::V4(v.src()), ports.map(|x| x.0))?;
            w.write_all(b" > ")?;
            ip_port(w, IpAddr::V4(v.dst()), ports.map(|x| x.1))?;
            w.write_all(b":")?;
            ip_payload(w, l, inner)
        }
        Net::Ipv6(v) => {
            let ports = p.ports();
            write!(w, " IPv6 ")?;
            ip_port(w, IpAddr::V6(v.src()), ports.map(|x| x.0))?;
            write!(w, " > ")?;
            ip_port(w, IpAddr::V6(v.dst()), ports.map(|x| x.1))?;
            write!(w, ":")?;
            ip_payload(w, l, inner)
        }
        Net::Arp(a) => {
            write!(w, " ARP")?;
            macs(w, p)?;
            write!(w, ":")?;
            arp(w, a)
        }
        Net::Lldp(x) => {
            write!(w, " LLDP")?;
            macs(w, p)?;
            write!(w, ":")?;
            lldp(w, x)
        }
        Net::Cdp(x) => {
            write!(w, " CDPv{}", x.version())?;
            macs(w, p)?;
            write!(w, ":")?;
            cdp(w, x)
        }
        Net::Stp(x) => {
            write!(w, " STP")?;
            macs(w, p)?;
            write!(w, ":")?;
            stp(w, x)
        }
        Net::Unknown(bytes) => {
            if let Some(llc) = &p.llc {
                write!(w, " LLC")?;
                macs(w, p)?;
                write!(w, ": dsap 0x{:02x} ssap 0x{:02x}", llc.dsap(), llc.ssap())?;
                if let Some(s) = &p.snap {
                    let [a, b, c] = s.oui;
                    write!(w, " snap oui {a:02x}-{b:02x}-{c:02x} pid 0x{:04x}", s.pid)?;
                }
            } else if let Some(et) = p.ether_type {
                write!(w, " ethertype 0x{:04x}", et.0)?;
                macs(w, p)?;
                write!(w, ":")?;
            } else {
                link_name(w, p)?;
                macs(w, p)?;
                write!(w, ":")?;
            }
            write!(w, " length {}", bytes.len())
        }
        _ => {
            // Nothing above the link layer parsed: name the link; the error mark says why.
            link_name(w, p)?;
            macs(w, p)
        }
    }
}

/// The link layer's name (and SLL protocol / loopback family), for frames whose network layer
/// did not parse.
fn link_name<W: Write>(w: &mut W, p: &Packet<'_>) -> io::Result<()> {
    match &p.link {
        Link::Ethernet(_) => write!(w, " eth"),
        Link::LinuxSll(s) => write!(w, " sll protocol 0x{:04x}", s.protocol()),
        Link::LinuxSll2(s) => write!(w, " sll2 protocol 0x{:04x}", s.protocol()),
        Link::Loopback(lo) => write!(w, " loopback family {}", lo.family),
        Link::Raw => write!(w, " raw"),
        _ => write!(w, " {}", p.link_type),
    }
}

/// ` src > dst` MAC addresses of the link layer (only the source for Linux cooked captures).
fn macs<W: Write>(w: &mut W, p: &Packet<'_>) -> io::Result<()> {
    let (src, dst) = (p.link.src_mac(), p.link.dst_mac());
    if let Some(s) = src {
        w.write_all(b" ")?;
        fastfmt::mac(w, s)?;
    }
    if let Some(d) = dst {
        w.write_all(b" > ")?;
        fastfmt::mac(w, d)?;
    }
    Ok(())
}

/// `addr.port` (tcpdump style) or `addr`.
#[inline]
fn ip_port<W: Write>(w: &mut W, ip: IpAddr, port: Option<u16>) -> io::Result<()> {
    fastfmt::ip(w, ip)?;
    if let Some(port) = port {
        w.write_all(b".")?;
        num(w, port)?;
    }
    Ok(())
}

/// A short upper-case name of an IP protocol.
pub(crate) fn ip_proto_name(n: IpNumber) -> Option<&'static str> {
    Some(match n.0 {
        0 => "IPv6-HopOpts",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        43 => "IPv6-Route",
        44 => "IPv6-Frag",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        59 => "IPv6-NoNxt",
        60 => "IPv6-Opts",
        89 => "OSPF",
        103 => "PIM",
        112 => "VRRP",
        132 => "SCTP",
        _ => return None,
    })
}

/// `NAME` or `proto N`.
struct ProtoName(u8);

impl fmt::Display for ProtoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ip_proto_name(IpNumber(self.0)) {
            Some(n) => f.write_str(n),
            None => write!(f, "proto {}", self.0),
        }
    }
}

/// Everything after `src > dst:` of an IP packet.
fn ip_payload<W: Write>(
    w: &mut W,
    l: &Layered<'_, '_>,
    inner: Option<&Layered<'_, '_>>,
) -> io::Result<()> {
    let p = l.pkt;
    if let Some(f) = p.fragment() {
        write!(w, " frag id {} offset {}", f.id, f.offset)?;
        if f.more {
            write!(w, " more")?;
        }
        write!(w, ",")?;
    }
    let plen = p.payload.len();
    match &p.transport {
        Transport::Tcp(t) => tcp(w, t, plen)?,
        Transport::Udp(_) => {
            w.write_all(b" UDP length ")?;
            num(w, plen as u64)?;
        }
        Transport::Sctp(s) => {
            write!(w, " SCTP vtag 0x{:08x}", s.verification_tag())?;
            if let Some(c) = s.first_chunk_type() {
                write!(w, " chunk {}", sctp_chunk_name(c))?;
            }
            write!(w, " length {plen}")?;
        }
        Transport::Icmpv4(i) => icmpv4(w, i, plen)?,
        Transport::Icmpv6(i) => icmpv6(w, i, plen)?,
        Transport::Igmp(i) => igmp(w, i)?,
        Transport::Gre(g) => {
            if p.tunnel.is_none() {
                write!(w, " GRE proto 0x{:04x}", g.protocol())?;
                if let Some(k) = g.key() {
                    write!(w, " key {k}")?;
                }
                write!(w, " length {plen}")?;
            }
        }
        Transport::Esp(e) => write!(w, " ESP spi 0x{:08x} seq {} length {plen}", e.spi, e.seq)?,
        Transport::Partial { proto, .. } => write!(w, " {}", ProtoName(proto.0))?,
        Transport::Fragment => {
            let proto = p.ip_proto().map_or(0, |n| n.0);
            write!(w, " {} length {plen}", ProtoName(proto))?;
        }
        Transport::Other(n) => {
            if p.tunnel.is_none() {
                write!(w, " {} length {plen}", ProtoName(n.0))?;
            }
        }
        _ => {
            if let Some(n) = p.ip_proto() {
                write!(w, " {}", ProtoName(n.0))?;
            }
        }
    }
    if let Some(t) = &p.tunnel {
        match t.kind {
            TunnelKind::Gre { .. } | TunnelKind::IpInIp => {}
            _ => write!(w, ",")?,
        }
        tunnel_kind(w, &t.kind)?;
        match inner {
            Some(i) => {
                write!(w, ":")?;
                packet(w, i, None)?;
                marks(w, i.pkt, &i.ck, "inner ")?;
            }
            None => write!(w, " (not decapsulated)")?,
        }
    }
    Ok(())
}

/// ` VXLAN vni 100` etc.
fn tunnel_kind<W: Write>(w: &mut W, k: &TunnelKind) -> io::Result<()> {
    match k {
        TunnelKind::IpInIp => write!(w, " IPIP"),
        TunnelKind::Gre { protocol, key } => {
            write!(w, " GRE proto 0x{protocol:04x}")?;
            if let Some(k) = key {
                write!(w, " key {k}")?;
            }
            Ok(())
        }
        TunnelKind::Vxlan { vni } => write!(w, " VXLAN vni {vni}"),
        TunnelKind::Geneve { vni, protocol } => {
            write!(w, " Geneve vni {vni} proto 0x{protocol:04x}")
        }
        TunnelKind::Teredo => write!(w, " Teredo"),
        TunnelKind::GtpU { teid } => write!(w, " GTP-U teid 0x{teid:08x}"),
    }
}

/// ` TCP [S.] seq 1 ack 2 win 3 options [...] length 0`.
fn tcp<W: Write>(w: &mut W, t: &Tcp<'_>, plen: usize) -> io::Result<()> {
    let flags = t.flags();
    write!(w, " TCP [{flags}] seq ")?;
    num(w, t.seq())?;
    if flags.ack() {
        w.write_all(b" ack ")?;
        num(w, t.ack())?;
    }
    w.write_all(b" win ")?;
    num(w, t.window())?;
    let opts = t.header().options();
    if !opts.is_empty() {
        w.write_all(b" options [")?;
        tcp_options(w, opts)?;
        w.write_all(b"]")?;
    }
    w.write_all(b" length ")?;
    num(w, plen as u64)
}

/// TCP options in wire order, tcpdump's notation: `mss 1460,nop,wscale 7,sackOK,TS val 1 ecr
/// 0,sack 1 {10:20},eol`; other kinds as `opt-N` (`mptcp`, `tfo`, `md5`, `tcp-ao` by name);
/// `malformed` where a length is impossible (the walk stops there).
///
/// ```text
/// kind 0: end of list   kind 1: no-op   others: kind, length (>= 2, covers kind and length), data
/// ```
fn tcp_options<W: Write>(w: &mut W, opts: &[u8]) -> io::Result<()> {
    let be16 = |at: usize| -> u16 {
        match opts.get(at..at + 2) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    };
    let be32 = |at: usize| -> u32 {
        match opts.get(at..at + 4) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        }
    };
    let mut i = 0;
    let mut first = true;
    // At most 40 bytes of options, and every step advances at least one byte.
    while let Some(&kind) = opts.get(i) {
        if !first {
            write!(w, ",")?;
        }
        first = false;
        match kind {
            0 => return write!(w, "eol"),
            1 => {
                write!(w, "nop")?;
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = match opts.get(i + 1) {
            Some(&l) if l >= 2 && i + usize::from(l) <= opts.len() => usize::from(l),
            _ => return write!(w, "malformed"),
        };
        match (kind, len) {
            (2, 4) => write!(w, "mss {}", be16(i + 2))?,
            (3, 3) => write!(w, "wscale {}", opts.get(i + 2).copied().unwrap_or(0))?,
            (4, 2) => write!(w, "sackOK")?,
            (5, _) if (len - 2) % 8 == 0 => {
                write!(w, "sack {}", (len - 2) / 8)?;
                for b in 0..(len - 2) / 8 {
                    let at = i + 2 + b * 8;
                    write!(w, " {{{}:{}}}", be32(at), be32(at + 4))?;
                }
            }
            (8, 10) => write!(w, "TS val {} ecr {}", be32(i + 2), be32(i + 6))?,
            (19, _) => write!(w, "md5")?,
            (29, _) => write!(w, "tcp-ao")?,
            (30, _) => write!(w, "mptcp")?,
            (34, _) => write!(w, "tfo")?,
            _ => write!(w, "opt-{kind}")?,
        }
        i += len;
    }
    Ok(())
}

fn sctp_chunk_name(c: u8) -> ChunkName {
    ChunkName(c)
}

/// An SCTP chunk type (RFC 9260 §3.2) by name, else its number.
struct ChunkName(u8);

impl fmt::Display for ChunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self.0 {
            0 => "DATA",
            1 => "INIT",
            2 => "INIT_ACK",
            3 => "SACK",
            4 => "HEARTBEAT",
            5 => "HEARTBEAT_ACK",
            6 => "ABORT",
            7 => "SHUTDOWN",
            8 => "SHUTDOWN_ACK",
            9 => "ERROR",
            10 => "COOKIE_ECHO",
            11 => "COOKIE_ACK",
            14 => "SHUTDOWN_COMPLETE",
            other => return write!(f, "{other}"),
        };
        f.write_str(n)
    }
}

/// ` ICMP 8/0 echo-request id 1 seq 2 length 56`, ` ICMP 3/3 port-unreachable, quoting UDP a.1 > b.2 ...`.
fn icmpv4<W: Write>(w: &mut W, i: &Icmpv4<'_>, plen: usize) -> io::Result<()> {
    write!(w, " ICMP ")?;
    icmp_name(w, i.name(), i.type_u8(), i.code_u8())?;
    if let Some(e) = i.echo() {
        write!(w, " id {} seq {}", e.id, e.seq)?;
    }
    if let Some(m) = i.next_hop_mtu() {
        write!(w, " mtu {m}")?;
    }
    if let Some(g) = i.gateway() {
        write!(w, " gateway {g}")?;
    }
    if let Some(q) = i.quoted() {
        quoted(w, &q)?;
    }
    write!(w, " length {plen}")
}

/// ICMPv6, with the neighbour-discovery target and MLD group where present.
fn icmpv6<W: Write>(w: &mut W, i: &Icmpv6<'_>, plen: usize) -> io::Result<()> {
    write!(w, " ICMPv6 ")?;
    icmp_name(w, i.name(), i.type_u8(), i.code_u8())?;
    if let Some(e) = i.echo() {
        write!(w, " id {} seq {}", e.id, e.seq)?;
    }
    if let Some(t) = i.nd_target() {
        write!(w, " target {t}")?;
    }
    if let Some(g) = i.mld_group() {
        write!(w, " group {g}")?;
    }
    if let Some(m) = i.mtu() {
        write!(w, " mtu {m}")?;
    }
    if let Some(q) = i.quoted() {
        quoted(w, &q)?;
    }
    write!(w, " length {plen}")
}

/// `TYPE/CODE NAME`, e.g. `3/3 port-unreachable` (the name is the most specific one known,
/// `unknown` for types without one).
fn icmp_name<W: Write>(w: &mut W, name: &str, ty: u8, code: u8) -> io::Result<()> {
    write!(w, "{ty}/{code} {name}")
}

/// `, quoting UDP 10.0.0.1.5353 > 10.0.0.2.53` (the invoking packet of an ICMP error).
fn quoted<W: Write>(w: &mut W, q: &Quoted<'_>) -> io::Result<()> {
    write!(w, ", quoting {} ", ProtoName(q.protocol))?;
    ip_port(w, q.src, q.ports.map(|p| p.0))?;
    write!(w, " > ")?;
    ip_port(w, q.dst, q.ports.map(|p| p.1))?;
    if let Some(id) = q.echo_id {
        write!(w, " id {id}")?;
    }
    write!(w, ",")
}

/// ` IGMPv2 v2-membership-report group 239.1.1.1`.
fn igmp<W: Write>(w: &mut W, i: &Igmp<'_>) -> io::Result<()> {
    match i.version() {
        Some(v) => write!(w, " IGMPv{} ", v.number())?,
        None => write!(w, " IGMP ")?,
    }
    if i.name() == "unknown" {
        write!(w, "type 0x{:02x}", i.msg_type())?;
    } else {
        write!(w, "{}", i.name())?;
    }
    if let Some(g) = i.group() {
        write!(w, " group {g}")?;
    }
    if let Some(n) = i.num_group_records() {
        write!(w, " records {n}")?;
    }
    Ok(())
}

/// An address of an ARP packet: IPv4 or MAC when the size says so, else hex.
struct ArpAddr<'a>(&'a [u8]);

impl fmt::Display for ArpAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Ok(a) = <[u8; 4]>::try_from(self.0) {
            return write!(f, "{}", std::net::Ipv4Addr::from(a));
        }
        if let Some(m) = MacAddr::from_slice(self.0) {
            return write!(f, "{m}");
        }
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, b) in self.0.iter().take(32).enumerate() {
            write!(f, "{}{b:02x}", if i > 0 { ":" } else { "" })?;
        }
        Ok(())
    }
}

/// ` who-has 10.0.0.2 tell 10.0.0.1`, ` 10.0.0.2 is-at aa:bb:cc:dd:ee:ff`.
fn arp<W: Write>(w: &mut W, a: &netmon_packet::ArpPacketSlice<'_>) -> io::Result<()> {
    let (sha, spa) = (
        ArpAddr(a.sender_hw_addr()),
        ArpAddr(a.sender_protocol_addr()),
    );
    let (tha, tpa) = (
        ArpAddr(a.target_hw_addr()),
        ArpAddr(a.target_protocol_addr()),
    );
    match a.operation().0 {
        1 => write!(w, " who-has {tpa} tell {spa}"),
        2 => write!(w, " {spa} is-at {sha}"),
        3 => write!(w, " rarp who-is {tha} tell {sha}"),
        4 => write!(w, " rarp {tha} at {tpa}"),
        op => write!(w, " op {op} {sha} {spa} > {tha} {tpa}"),
    }
}

/// ` chassis 00:19:2f:a7:b2:8d port "Gi0/13" ttl 120 system "S2.cisco.com"`.
fn lldp<W: Write>(w: &mut W, l: &Lldp<'_>) -> io::Result<()> {
    if let Some(c) = l.chassis_id() {
        let text = c.mac().is_none() && c.ip().is_none();
        id(w, "chassis", c.display(), text)?;
    }
    if let Some(p) = l.port_id() {
        let text = p.mac().is_none() && p.ip().is_none();
        id(w, "port", p.display(), text)?;
    }
    if let Some(t) = l.ttl() {
        write!(w, " ttl {t}")?;
    }
    if let Some(n) = l.system_name() {
        write!(w, " system \"{}\"", Escaped::new(n))?;
    }
    Ok(())
}

/// An identifier, quoted when it is text.
fn id<W: Write>(w: &mut W, label: &str, v: impl fmt::Display, quote: bool) -> io::Result<()> {
    if quote {
        write!(w, " {label} \"{v}\"")
    } else {
        write!(w, " {label} {v}")
    }
}

/// ` device "sw1" port "Gi0/1" platform "cisco WS-C2950" addresses 10.0.0.1 ttl 180`.
fn cdp<W: Write>(w: &mut W, c: &Cdp<'_>) -> io::Result<()> {
    if let Some(d) = c.device_id() {
        write!(w, " device \"{}\"", Escaped::new(d))?;
    }
    if let Some(p) = c.port_id() {
        write!(w, " port \"{}\"", Escaped::new(p))?;
    }
    if let Some(p) = c.platform() {
        write!(w, " platform \"{}\"", Escaped::new(p))?;
    }
    for (i, a) in c.addresses().take(16).enumerate() {
        write!(w, "{}{a}", if i == 0 { " addresses " } else { "," })?;
    }
    if let Some(v) = c.native_vlan() {
        write!(w, " native-vlan {v}")?;
    }
    write!(w, " ttl {}", c.ttl())
}

/// ` rstp root 32768/0/aa:.. cost 4 bridge 32768/0/bb:.. port 0x8001`.
fn stp<W: Write>(w: &mut W, s: &Stp<'_>) -> io::Result<()> {
    let version = match s.version() {
        Stp::VERSION_STP => "stp",
        Stp::VERSION_RSTP => "rstp",
        Stp::VERSION_MSTP => "mstp",
        _ => "version",
    };
    if version == "version" {
        write!(w, " version {}", s.version())?;
    } else {
        write!(w, " {version}")?;
    }
    match s.config() {
        Some(c) => {
            write!(
                w,
                " root {} cost {} bridge {} port 0x{:04x}",
                c.root, c.root_path_cost, c.bridge, c.port_id
            )?;
            if c.topology_change() {
                write!(w, " tc")?;
            }
            Ok(())
        }
        None if s.is_tcn() => write!(w, " tcn"),
        None => write!(w, " bpdu-type 0x{:02x}", s.bpdu_type()),
    }
}

/// Checksum and parse-error marks: ` [bad tcp cksum 0x1234 -> 0xabcd]`, ` [tcp cksum
/// offloaded]`, ` [|ipv4 @14: truncated: needs 20 bytes, 19 available]`. `prefix` is
/// `"inner "` for a tunnel's inner packet.
fn marks<W: Write>(w: &mut W, p: &Packet<'_>, ck: &Checksums, prefix: &str) -> io::Result<()> {
    let one = |w: &mut W, layer: &str, s: ChecksumStatus| match s {
        ChecksumStatus::Bad { found, expected } => write!(
            w,
            " [bad {prefix}{layer} cksum 0x{found:04x} -> 0x{expected:04x}]"
        ),
        ChecksumStatus::Offloaded => write!(w, " [{prefix}{layer} cksum offloaded]"),
        _ => Ok(()),
    };
    if let Some(s) = ck.ipv4 {
        one(w, "ipv4", s)?;
    }
    if let Some((layer, s)) = ck.transport {
        one(w, layer.name(), s)?;
    }
    if let Some(e) = &p.error {
        write!(w, " [|{prefix}{} @{}: {}]", e.layer, e.offset, e.kind)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        tcp_options(&mut out, bytes).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tcp_options_in_wire_order() {
        assert_eq!(
            opts(&[
                2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2
            ]),
            "mss 1460,nop,wscale 7,sackOK,TS val 1 ecr 2"
        );
        assert_eq!(
            opts(&[5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0]),
            "sack 2 {1:2} {3:4},eol"
        );
        assert_eq!(
            opts(&[30, 4, 0, 0, 34, 2, 99, 3, 1, 1]),
            "mptcp,tfo,opt-99,nop"
        );
        // Impossible lengths stop the walk.
        assert_eq!(opts(&[1, 2, 1]), "nop,malformed");
        assert_eq!(opts(&[2, 40, 0, 0]), "malformed");
        assert_eq!(opts(&[8]), "malformed");
        assert_eq!(opts(&[]), "");
        // A SACK whose length is not 2 + 8n is shown by kind only.
        assert_eq!(opts(&[5, 4, 0, 0]), "opt-5");
    }

    #[test]
    fn arp_addresses() {
        assert_eq!(ArpAddr(&[10, 0, 0, 1]).to_string(), "10.0.0.1");
        assert_eq!(
            ArpAddr(&[1, 2, 3, 4, 5, 6]).to_string(),
            "01:02:03:04:05:06"
        );
        assert_eq!(ArpAddr(&[]).to_string(), "-");
        assert_eq!(ArpAddr(&[0xab, 0xcd]).to_string(), "ab:cd");
    }
}
