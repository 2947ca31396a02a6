//! `--json`: one JSON object per record, written field by field into the output buffer.
//! Field names and meanings are documented in `docs/read-json.md`; keep the two in step.

use std::io::{self, Write};
use std::net::IpAddr;

use netmon_capture::PacketMeta;
use netmon_packet::cdp::Cdp;
use netmon_packet::icmp::{Icmpv4, Icmpv6, Quoted};
use netmon_packet::igmp::Igmp;
use netmon_packet::llc::{BridgeId, Stp};
use netmon_packet::lldp::Lldp;
use netmon_packet::{ChecksumStatus, MacAddr, Net, Transport, TunnelKind};

use super::decode::{Decoded, Layered};
use super::fastfmt::{self, TsFmt};
use super::proto::LayerList;
use crate::json::Obj;

/// Writes one record as a JSON line.
pub(crate) fn write_record<W: Write>(
    w: &mut W,
    tsf: &mut TsFmt,
    n: u64,
    meta: &PacketMeta<'_>,
    d: &Decoded<'_, '_>,
) -> io::Result<()> {
    let mut o = Obj::open(w)?;
    o.u64("n", n)?;
    o.with("ts", |w| tsf.rfc3339(w, meta.ts))?;
    o.with("ts_epoch", |w| TsFmt::epoch(w, meta.ts))?;
    o.u64("iface", u64::from(meta.iface))?;
    if let Some(name) = meta.iface_name {
        o.bytes("iface_name", name.as_bytes())?;
    }
    if meta.direction != netmon_capture::Direction::Unknown {
        o.str("direction", meta.direction.as_str())?;
    }
    o.display("link_type", meta.link_type)?;
    o.u64("cap_len", u64::from(meta.cap_len))?;
    o.u64("orig_len", u64::from(meta.orig_len))?;
    layer_fields(&mut o, &d.outer, Some(d.inner.as_ref()))?;
    o.end()?;
    w.write_all(b"\n")
}

/// The per-layer fields, shared by a record and `tunnel.inner`. `inner` is `Some` at the outer
/// level (holding the decapsulated packet, if any) and `None` inside `tunnel.inner`.
fn layer_fields<W: Write>(
    o: &mut Obj<'_, W>,
    l: &Layered<'_, '_>,
    inner: Option<Option<&Layered<'_, '_>>>,
) -> io::Result<()> {
    let p = l.pkt;
    let mut a = o.arr("layers")?;
    for proto in LayerList::of(l.pkt).as_slice() {
        a.str(proto.name())?;
    }
    a.end()?;
    if let Some(m) = p.link.src_mac() {
        o.with("src_mac", |w| fastfmt::mac(w, m))?;
    }
    if let Some(m) = p.link.dst_mac() {
        o.with("dst_mac", |w| fastfmt::mac(w, m))?;
    }
    if !p.vlans.is_empty() {
        let mut a = o.arr("vlans")?;
        for t in p.vlans.iter() {
            let mut v = a.obj()?;
            v.u64("tpid", u64::from(t.tpid))?;
            v.u64("vid", u64::from(t.vid))?;
            v.u64("pcp", u64::from(t.pcp))?;
            v.bool("dei", t.dei)?;
            v.end()?;
        }
        a.end()?;
    }
    if let Some(et) = p.ether_type {
        o.u64("ether_type", u64::from(et.0))?;
    }
    if let Some(llc) = &p.llc {
        let mut x = o.obj("llc")?;
        x.u64("dsap", u64::from(llc.dsap()))?;
        x.u64("ssap", u64::from(llc.ssap()))?;
        x.u64("control", u64::from(llc.control()))?;
        x.end()?;
    }
    if let Some(s) = &p.snap {
        let mut x = o.obj("snap")?;
        let [a, b, c] = s.oui;
        x.u64("oui", u64::from(u32::from_be_bytes([0, a, b, c])))?;
        x.u64("pid", u64::from(s.pid))?;
        x.end()?;
    }
    match &p.net {
        Net::Ipv4(v) => {
            o.with("src_ip", |w| fastfmt::ipv4(w, v.src()))?;
            o.with("dst_ip", |w| fastfmt::ipv4(w, v.dst()))?;
            o.u64("ip_proto", u64::from(v.protocol().0))?;
            o.u64("ttl", u64::from(v.ttl()))?;
        }
        Net::Ipv6(v) => {
            o.display("src_ip", v.src())?;
            o.display("dst_ip", v.dst())?;
            o.u64("ip_proto", u64::from(v.protocol().0))?;
            o.u64("hop_limit", u64::from(v.hop_limit()))?;
        }
        _ => {}
    }
    if let Some(f) = p.fragment() {
        let mut x = o.obj("fragment")?;
        x.u64("id", u64::from(f.id))?;
        x.u64("offset", u64::from(f.offset))?;
        x.bool("more", f.more)?;
        x.end()?;
    }
    if let Some((s, d)) = p.ports() {
        o.u64("src_port", u64::from(s))?;
        o.u64("dst_port", u64::from(d))?;
    }
    match &p.transport {
        Transport::Tcp(t) => {
            let mut x = o.obj("tcp")?;
            x.display("flags", t.flags())?;
            x.u64("flags_raw", u64::from(t.flags().0))?;
            x.u64("seq", u64::from(t.seq()))?;
            x.u64("ack", u64::from(t.ack()))?;
            x.u64("win", u64::from(t.window()))?;
            x.u64("header_len", t.header_len() as u64)?;
            let opts = t.options();
            let mut y = x.obj("options")?;
            if let Some(m) = opts.mss {
                y.u64("mss", u64::from(m))?;
            }
            if let Some(s) = opts.window_scale {
                y.u64("wscale", u64::from(s))?;
            }
            if opts.sack_permitted {
                y.bool("sack_permitted", true)?;
            }
            if opts.sack.iter().any(Option::is_some) {
                let mut a = y.arr("sack")?;
                for (l, r) in opts.sack.iter().flatten() {
                    let mut pair = a.arr()?;
                    pair.u64(u64::from(*l))?;
                    pair.u64(u64::from(*r))?;
                    pair.end()?;
                }
                a.end()?;
            }
            if let Some((val, ecr)) = opts.timestamps {
                y.u64("ts_val", u64::from(val))?;
                y.u64("ts_ecr", u64::from(ecr))?;
            }
            if opts.unknown > 0 {
                y.u64("unknown", u64::from(opts.unknown))?;
            }
            if opts.malformed {
                y.bool("malformed", true)?;
            }
            y.end()?;
            x.end()?;
        }
        Transport::Udp(u) => {
            let mut x = o.obj("udp")?;
            x.u64("length", u64::from(u.length()))?;
            x.end()?;
        }
        Transport::Sctp(s) => {
            let mut x = o.obj("sctp")?;
            x.u64("vtag", u64::from(s.verification_tag()))?;
            if let Some(c) = s.first_chunk_type() {
                x.u64("chunk", u64::from(c))?;
            }
            x.end()?;
        }
        Transport::Icmpv4(i) => icmpv4(o, i)?,
        Transport::Icmpv6(i) => icmpv6(o, i)?,
        Transport::Igmp(i) => igmp(o, i)?,
        Transport::Gre(g) => {
            let mut x = o.obj("gre")?;
            x.u64("flags", u64::from(g.flags()))?;
            x.u64("version", u64::from(g.version()))?;
            x.u64("protocol", u64::from(g.protocol()))?;
            if let Some(k) = g.key() {
                x.u64("key", u64::from(k))?;
            }
            if let Some(s) = g.sequence() {
                x.u64("seq", u64::from(s))?;
            }
            x.end()?;
        }
        Transport::Esp(e) => {
            let mut x = o.obj("esp")?;
            x.u64("spi", u64::from(e.spi))?;
            x.u64("seq", u64::from(e.seq))?;
            x.end()?;
        }
        _ => {}
    }
    match &p.net {
        Net::Arp(a) => {
            let mut x = o.obj("arp")?;
            x.u64("op", u64::from(a.operation().0))?;
            x.u64("hw_type", u64::from(a.hw_addr_type().0))?;
            x.u64("proto_type", u64::from(a.proto_addr_type().0))?;
            arp_addr(&mut x, "sender_mac", "sender_hw", a.sender_hw_addr())?;
            arp_proto(
                &mut x,
                "sender_ip",
                "sender_proto",
                a.sender_protocol_addr(),
            )?;
            arp_addr(&mut x, "target_mac", "target_hw", a.target_hw_addr())?;
            arp_proto(
                &mut x,
                "target_ip",
                "target_proto",
                a.target_protocol_addr(),
            )?;
            x.end()?;
        }
        Net::Lldp(l) => lldp(o, l)?,
        Net::Cdp(c) => cdp(o, c)?,
        Net::Stp(s) => stp(o, s)?,
        _ => {}
    }
    if let Some(t) = &p.tunnel {
        let mut x = o.obj("tunnel")?;
        x.str("kind", t.kind.name())?;
        match t.kind {
            TunnelKind::Gre { protocol, key } => {
                x.u64("protocol", u64::from(protocol))?;
                if let Some(k) = key {
                    x.u64("key", u64::from(k))?;
                }
            }
            TunnelKind::Vxlan { vni } => x.u64("vni", u64::from(vni))?,
            TunnelKind::Geneve { vni, protocol } => {
                x.u64("vni", u64::from(vni))?;
                x.u64("protocol", u64::from(protocol))?;
            }
            TunnelKind::GtpU { teid } => x.u64("teid", u64::from(teid))?,
            TunnelKind::IpInIp | TunnelKind::Teredo => {}
        }
        x.u64("inner_offset", t.inner_offset as u64)?;
        x.display("inner_link_type", t.inner_link)?;
        if let Some(Some(i)) = inner {
            let mut y = x.obj("inner")?;
            layer_fields(&mut y, i, None)?;
            y.end()?;
        }
        x.end()?;
    }
    o.u64("payload_len", p.payload.len() as u64)?;
    if l.ck.ipv4.is_some() || l.ck.transport.is_some() {
        let mut x = o.obj("checksums")?;
        if let Some(s) = l.ck.ipv4 {
            x.str("ipv4", s.label())?;
        }
        if let Some((layer, s)) = l.ck.transport {
            x.str(layer.name(), s.label())?;
        }
        x.end()?;
        let bad = [
            l.ck.ipv4.map(|s| ("ipv4", s)),
            l.ck.transport.map(|(layer, s)| (layer.name(), s)),
        ];
        if bad.iter().flatten().any(|(_, s)| s.is_bad()) {
            let mut a = o.arr("bad_checksums")?;
            for (layer, s) in bad.iter().flatten() {
                if let ChecksumStatus::Bad { found, expected } = s {
                    let mut y = a.obj()?;
                    y.str("layer", layer)?;
                    y.u64("found", u64::from(*found))?;
                    y.u64("expected", u64::from(*expected))?;
                    y.end()?;
                }
            }
            a.end()?;
        }
    }
    if let Some(e) = &p.error {
        let mut x = o.obj("error")?;
        x.str("layer", e.layer.name())?;
        x.u64("offset", e.offset as u64)?;
        x.str("kind", e.kind.label())?;
        x.display("message", e)?;
        x.end()?;
    }
    Ok(())
}

/// A hardware address: `mac` when 6 bytes, else `raw` as hex.
fn arp_addr<W: Write>(o: &mut Obj<'_, W>, mac: &str, raw: &str, v: &[u8]) -> io::Result<()> {
    match MacAddr::from_slice(v) {
        Some(m) => o.display(mac, m),
        None => o.display(raw, Hex(v)),
    }
}

/// A protocol address: `ip` when 4 bytes, else `raw` as hex.
fn arp_proto<W: Write>(o: &mut Obj<'_, W>, ip: &str, raw: &str, v: &[u8]) -> io::Result<()> {
    match <[u8; 4]>::try_from(v) {
        Ok(a) => o.display(ip, std::net::Ipv4Addr::from(a)),
        Err(_) => o.display(raw, Hex(v)),
    }
}

/// Bytes as lower-case hex, no separators (at most 64 bytes shown).
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0.iter().take(64) {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

fn quoted<W: Write>(o: &mut Obj<'_, W>, q: &Quoted<'_>) -> io::Result<()> {
    let mut x = o.obj("quoted")?;
    x.u64("version", u64::from(q.version))?;
    x.display("src_ip", q.src)?;
    x.display("dst_ip", q.dst)?;
    x.u64("ip_proto", u64::from(q.protocol))?;
    if let Some((s, d)) = q.ports {
        x.u64("src_port", u64::from(s))?;
        x.u64("dst_port", u64::from(d))?;
    }
    if let Some(id) = q.echo_id {
        x.u64("echo_id", u64::from(id))?;
    }
    x.end()
}

fn icmpv4<W: Write>(o: &mut Obj<'_, W>, i: &Icmpv4<'_>) -> io::Result<()> {
    let mut x = o.obj("icmp")?;
    x.u64("type", u64::from(i.type_u8()))?;
    x.u64("code", u64::from(i.code_u8()))?;
    x.str("name", i.name())?;
    if let Some(e) = i.echo() {
        x.u64("echo_id", u64::from(e.id))?;
        x.u64("echo_seq", u64::from(e.seq))?;
    }
    if let Some(m) = i.next_hop_mtu() {
        x.u64("mtu", u64::from(m))?;
    }
    if let Some(g) = i.gateway() {
        x.display("gateway", g)?;
    }
    if let Some(q) = i.quoted() {
        quoted(&mut x, &q)?;
    }
    x.end()
}

fn icmpv6<W: Write>(o: &mut Obj<'_, W>, i: &Icmpv6<'_>) -> io::Result<()> {
    let mut x = o.obj("icmpv6")?;
    x.u64("type", u64::from(i.type_u8()))?;
    x.u64("code", u64::from(i.code_u8()))?;
    x.str("name", i.name())?;
    if let Some(e) = i.echo() {
        x.u64("echo_id", u64::from(e.id))?;
        x.u64("echo_seq", u64::from(e.seq))?;
    }
    if let Some(m) = i.mtu() {
        x.u64("mtu", u64::from(m))?;
    }
    if let Some(t) = i.nd_target() {
        x.display("nd_target", t)?;
    }
    if let Some(g) = i.mld_group() {
        x.display("mld_group", g)?;
    }
    if let Some(q) = i.quoted() {
        quoted(&mut x, &q)?;
    }
    x.end()
}

fn igmp<W: Write>(o: &mut Obj<'_, W>, i: &Igmp<'_>) -> io::Result<()> {
    let mut x = o.obj("igmp")?;
    x.u64("type", u64::from(i.msg_type()))?;
    x.str("name", i.name())?;
    if let Some(v) = i.version() {
        x.u64("version", u64::from(v.number()))?;
    }
    if let Some(g) = i.group() {
        x.display("group", g)?;
    }
    if let Some(t) = i.max_resp_time_ds() {
        x.u64("max_resp_ds", u64::from(t))?;
    }
    if let Some(n) = i.num_group_records() {
        x.u64("records", u64::from(n))?;
    }
    x.end()
}

fn lldp<W: Write>(o: &mut Obj<'_, W>, l: &Lldp<'_>) -> io::Result<()> {
    let mut x = o.obj("lldp")?;
    if let Some(c) = l.chassis_id() {
        x.u64("chassis_subtype", u64::from(c.subtype))?;
        match (c.mac(), c.ip()) {
            (Some(m), _) => x.display("chassis", m)?,
            (None, Some(ip)) => x.display("chassis", ip)?,
            _ => x.bytes("chassis", c.id)?,
        }
    }
    if let Some(p) = l.port_id() {
        x.u64("port_subtype", u64::from(p.subtype))?;
        match (p.mac(), p.ip()) {
            (Some(m), _) => x.display("port", m)?,
            (None, Some(ip)) => x.display("port", ip)?,
            _ => x.bytes("port", p.id)?,
        }
    }
    if let Some(t) = l.ttl() {
        x.u64("ttl", u64::from(t))?;
    }
    if let Some(v) = l.port_description() {
        x.bytes("port_description", v)?;
    }
    if let Some(v) = l.system_name() {
        x.bytes("system_name", v)?;
    }
    if let Some(v) = l.system_description() {
        x.bytes("system_description", v)?;
    }
    if let Some(c) = l.capabilities() {
        x.u64("capabilities", u64::from(c.system))?;
        x.u64("capabilities_enabled", u64::from(c.enabled))?;
    }
    if let Some(ip) = l.management_addresses().find_map(|m| m.ip()) {
        x.display("mgmt_ip", ip)?;
    }
    x.end()
}

fn cdp<W: Write>(o: &mut Obj<'_, W>, c: &Cdp<'_>) -> io::Result<()> {
    let mut x = o.obj("cdp")?;
    x.u64("version", u64::from(c.version()))?;
    x.u64("ttl", u64::from(c.ttl()))?;
    if let Some(v) = c.device_id() {
        x.bytes("device_id", v)?;
    }
    if let Some(v) = c.port_id() {
        x.bytes("port_id", v)?;
    }
    if let Some(v) = c.platform() {
        x.bytes("platform", v)?;
    }
    if let Some(v) = c.software_version() {
        x.bytes("software_version", v)?;
    }
    if let Some(v) = c.capabilities() {
        x.u64("capabilities", u64::from(v))?;
    }
    if let Some(v) = c.native_vlan() {
        x.u64("native_vlan", u64::from(v))?;
    }
    ips(&mut x, "addresses", c.addresses())?;
    ips(&mut x, "mgmt_addresses", c.management_addresses())?;
    x.end()
}

/// A non-empty array of at most 16 addresses.
fn ips<W: Write>(
    o: &mut Obj<'_, W>,
    key: &str,
    it: impl Iterator<Item = IpAddr> + Clone,
) -> io::Result<()> {
    if it.clone().next().is_none() {
        return Ok(());
    }
    let mut a = o.arr(key)?;
    for ip in it.take(16) {
        a.display(ip)?;
    }
    a.end()
}

fn stp<W: Write>(o: &mut Obj<'_, W>, s: &Stp<'_>) -> io::Result<()> {
    let mut x = o.obj("stp")?;
    x.u64("version", u64::from(s.version()))?;
    x.u64("bpdu_type", u64::from(s.bpdu_type()))?;
    if let Some(c) = s.config() {
        x.u64("flags", u64::from(c.flags))?;
        bridge(&mut x, "root", &c.root)?;
        x.u64("root_cost", u64::from(c.root_path_cost))?;
        bridge(&mut x, "bridge", &c.bridge)?;
        x.u64("port_id", u64::from(c.port_id))?;
        x.u64("message_age", u64::from(c.message_age))?;
        x.u64("max_age", u64::from(c.max_age))?;
        x.u64("hello_time", u64::from(c.hello_time))?;
        x.u64("forward_delay", u64::from(c.forward_delay))?;
    }
    x.end()
}

/// `"root": "32768/0/aa:bb:cc:dd:ee:ff"` (Wireshark's notation).
fn bridge<W: Write>(o: &mut Obj<'_, W>, key: &str, b: &BridgeId) -> io::Result<()> {
    o.display(key, b)
}
