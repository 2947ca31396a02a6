//! Flow keys: order-independent, fixed-size, cheap to hash.
//!
//! A key is (interface, VLAN stack, IP protocol, the two endpoints). The endpoints are sorted —
//! by (address bytes, port) — so both directions of a conversation map to one key; which side
//! a packet came from is a [`Side`].
//!
//! Ports: TCP, UDP, UDP-Lite, SCTP and DCCP use their ports; ICMP/ICMPv6 echo request/reply use
//! the echo identifier as the "port" of both ends (so concurrent pings are separate flows);
//! everything else has no ports (`0` with [`FlowKey::has_ports`] false).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netmon_packet::VlanTag;

/// Which end of a [`FlowKey`] a packet was sent from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The lower endpoint (`key.lo`) sent it.
    Lo = 0,
    /// The higher endpoint (`key.hi`) sent it.
    Hi = 1,
}

impl Side {
    /// The other side.
    pub const fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }
    /// 0 or 1, for indexing per-side arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One end of a flow: address and port (0 when the protocol has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IP address.
    pub ip: IpAddr,
    /// Port, or ICMP echo identifier; 0 when the protocol has none.
    pub port: u16,
}

/// The VLAN stack as part of a key: up to 5 VLAN ids of 12 bits each, plus the depth in the
/// top 4 bits. Deeper stacks fold the extra ids into the last slot (collisions there are
/// possible but need six stacked tags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VlanKey(pub u64);

impl VlanKey {
    /// No VLAN tags.
    pub const NONE: VlanKey = VlanKey(0);

    /// Packs a VLAN stack (outermost first).
    pub fn from_tags(tags: &[VlanTag]) -> VlanKey {
        let mut v = 0u64;
        for (i, t) in tags.iter().enumerate() {
            let vid = u64::from(t.vid & 0x0fff);
            if i < 5 {
                v |= vid << (12 * i);
            } else {
                v ^= vid.rotate_left(12 * 4 + (i as u32 % 7));
            }
        }
        VlanKey(v & 0x0fff_ffff_ffff_ffff | (tags.len().min(15) as u64) << 60)
    }

    /// Number of tags.
    pub const fn depth(self) -> usize {
        (self.0 >> 60) as usize
    }

    /// The VLAN ids, outermost first (at most 5).
    pub fn ids(self) -> impl Iterator<Item = u16> {
        (0..self.depth().min(5)).map(move |i| ((self.0 >> (12 * i)) & 0x0fff) as u16)
    }
}

/// A normalised, order-independent flow key. 48 bytes, `Copy`.
///
/// Addresses are stored as 128-bit integers (IPv4 in the low 32 bits with a version flag), so
/// ordering, equality and hashing are a handful of word operations.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    lo_addr: u128,
    hi_addr: u128,
    vlan: VlanKey,
    /// `lo_port << 16 | hi_port`.
    ports: u32,
    proto: u8,
    flags: u8,
    iface: u16,
}

impl core::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        // Five words instead of the derive's per-field (and per-array-length) writes.
        h.write_u128(self.lo_addr);
        h.write_u128(self.hi_addr);
        h.write_u64(self.vlan.0);
        h.write_u64(
            u64::from(self.ports)
                | u64::from(self.proto) << 32
                | u64::from(self.flags) << 40
                | u64::from(self.iface) << 48,
        );
    }
}

const F_V6: u8 = 1;
const F_PORTS: u8 = 2;

#[inline]
fn addr_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

impl FlowKey {
    /// Builds the key of a packet from `src` to `dst` and tells which side sent it.
    ///
    /// `ports` is `None` for protocols without ports (and fragments whose ports are unknown).
    /// `src` and `dst` must be the same IP version; a mixed pair is keyed as IPv6.
    #[inline]
    pub fn new(
        iface: u16,
        vlan: VlanKey,
        proto: u8,
        src: IpAddr,
        dst: IpAddr,
        ports: Option<(u16, u16)>,
    ) -> (FlowKey, Side) {
        let (s, s6) = addr_bits(src);
        let (d, d6) = addr_bits(dst);
        let (sp, dp) = ports.unwrap_or((0, 0));
        let side = if (s, sp) <= (d, dp) {
            Side::Lo
        } else {
            Side::Hi
        };
        let (lo_addr, lo_port, hi_addr, hi_port) = match side {
            Side::Lo => (s, sp, d, dp),
            Side::Hi => (d, dp, s, sp),
        };
        let flags = if s6 || d6 { F_V6 } else { 0 } | if ports.is_some() { F_PORTS } else { 0 };
        let key = FlowKey {
            lo_addr,
            hi_addr,
            vlan,
            ports: u32::from(lo_port) << 16 | u32::from(hi_port),
            proto,
            flags,
            iface,
        };
        (key, side)
    }

    fn ip(&self, b: u128) -> IpAddr {
        if self.flags & F_V6 != 0 {
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::from(b as u32))
        }
    }

    /// The endpoint on `side`.
    pub fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::Lo => Endpoint {
                ip: self.ip(self.lo_addr),
                port: (self.ports >> 16) as u16,
            },
            Side::Hi => Endpoint {
                ip: self.ip(self.hi_addr),
                port: self.ports as u16,
            },
        }
    }

    /// IP protocol number.
    pub const fn proto(&self) -> u8 {
        self.proto
    }
    /// Whether the addresses are IPv6.
    pub const fn is_ipv6(&self) -> bool {
        self.flags & F_V6 != 0
    }
    /// Whether the protocol has ports (or an echo identifier) in this key.
    pub const fn has_ports(&self) -> bool {
        self.flags & F_PORTS != 0
    }
    /// Capture interface index.
    pub const fn iface(&self) -> u16 {
        self.iface
    }
    /// The VLAN stack.
    pub const fn vlan(&self) -> VlanKey {
        self.vlan
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `proto lo_ip:port <-> hi_ip:port` (IPv6 addresses in brackets), plus ` if N` and
/// ` vlan a.b` when set.
impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ep = |f: &mut fmt::Formatter<'_>, e: Endpoint| match (e.ip, self.has_ports()) {
            (IpAddr::V6(a), true) => write!(f, "[{a}]:{}", e.port),
            (a, true) => write!(f, "{a}:{}", e.port),
            (a, false) => write!(f, "{a}"),
        };
        write!(f, "{} ", self.proto)?;
        ep(f, self.endpoint(Side::Lo))?;
        f.write_str(" <-> ")?;
        ep(f, self.endpoint(Side::Hi))?;
        if self.iface != 0 {
            write!(f, " if {}", self.iface)?;
        }
        for (i, v) in self.vlan.ids().enumerate() {
            f.write_str(if i == 0 { " vlan " } else { "." })?;
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn both_directions_give_one_key() {
        let (k1, s1) = FlowKey::new(
            0,
            VlanKey::NONE,
            6,
            ip("10.0.0.2"),
            ip("10.0.0.1"),
            Some((80, 40000)),
        );
        let (k2, s2) = FlowKey::new(
            0,
            VlanKey::NONE,
            6,
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            Some((40000, 80)),
        );
        assert_eq!(k1, k2);
        assert_eq!((s1, s2), (Side::Hi, Side::Lo));
        assert_eq!(
            k1.endpoint(Side::Lo),
            Endpoint {
                ip: ip("10.0.0.1"),
                port: 40000
            }
        );
        assert_eq!(k1.to_string(), "6 10.0.0.1:40000 <-> 10.0.0.2:80");
        // Same addresses, ports decide the order.
        let (k, s) = FlowKey::new(
            0,
            VlanKey::NONE,
            17,
            ip("::1"),
            ip("::1"),
            Some((443, 1000)),
        );
        assert_eq!(s, Side::Lo);
        assert_eq!(k.to_string(), "17 [::1]:443 <-> [::1]:1000");
    }

    #[test]
    fn interface_vlan_and_ports_are_part_of_the_key() {
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        let base = FlowKey::new(0, VlanKey::NONE, 1, a, b, None).0;
        assert!(!base.has_ports());
        assert_ne!(base, FlowKey::new(1, VlanKey::NONE, 1, a, b, None).0);
        let tags = [VlanTag {
            tpid: 0x8100,
            pcp: 0,
            dei: false,
            vid: 10,
        }];
        let v = VlanKey::from_tags(&tags);
        assert_ne!(base, FlowKey::new(0, v, 1, a, b, None).0);
        assert_ne!(
            base,
            FlowKey::new(0, VlanKey::NONE, 1, a, b, Some((0, 0))).0
        );
        assert_eq!(
            FlowKey::new(2, v, 1, a, b, None).0.to_string(),
            "1 192.0.2.1 <-> 192.0.2.2 if 2 vlan 10"
        );
    }

    #[test]
    fn vlan_key_packing() {
        let t = |vid| VlanTag {
            tpid: 0x8100,
            pcp: 0,
            dei: false,
            vid,
        };
        let k = VlanKey::from_tags(&[t(1), t(4095), t(3)]);
        assert_eq!(k.depth(), 3);
        assert_eq!(k.ids().collect::<Vec<_>>(), [1, 4095, 3]);
        let deep: Vec<_> = (1..=8).map(t).collect();
        let k8 = VlanKey::from_tags(&deep);
        assert_eq!(k8.depth(), 8);
        let mut other = deep.clone();
        other[7] = t(9);
        assert_ne!(
            k8,
            VlanKey::from_tags(&other),
            "ids past the fifth still count"
        );
        assert_ne!(
            VlanKey::from_tags(&[t(0)]),
            VlanKey::NONE,
            "vid 0 (priority tag) differs from none"
        );
        assert_eq!(core::mem::size_of::<FlowKey>(), 48);
    }
}
