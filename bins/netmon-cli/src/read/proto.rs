//! The protocol-name table: every layer `netmon read` can name, as a small `Copy` enum, so the
//! per-packet path can list and count layers in fixed arrays (no strings, no maps).

use netmon_packet::{IpNumber, Layer, Link, Net, Packet, Transport, TunnelKind};

/// A protocol layer as `netmon read` names it (`layers` in JSON, the summary's counters).
///
/// The names are [`Layer::name`]'s where the parser has a layer for it, plus the tunnels the
/// parser recognises without a header view of their own (`ipip`, `gtp-u`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum Proto {
    LinkType,
    Eth,
    Sll,
    Sll2,
    Loopback,
    Vlan,
    Llc,
    Snap,
    Stp,
    Arp,
    Lldp,
    Cdp,
    Ipv4,
    Ipv6,
    Ipv6HopByHop,
    Ipv6Routing,
    Ipv6Fragment,
    Ipv6DestOptions,
    Ah,
    Tcp,
    Udp,
    Sctp,
    Esp,
    Icmp,
    Icmpv6,
    Igmp,
    Gre,
    IpIp,
    Vxlan,
    Geneve,
    Teredo,
    GtpU,
    /// A layer the parser added after this table was written (its enums are non-exhaustive).
    Other,
}

impl Proto {
    /// Number of variants: the size of per-protocol counter arrays.
    pub(crate) const COUNT: usize = Proto::Other as usize + 1;

    /// Every variant, in table (stack) order.
    pub(crate) const ALL: [Proto; Proto::COUNT] = [
        Proto::LinkType,
        Proto::Eth,
        Proto::Sll,
        Proto::Sll2,
        Proto::Loopback,
        Proto::Vlan,
        Proto::Llc,
        Proto::Snap,
        Proto::Stp,
        Proto::Arp,
        Proto::Lldp,
        Proto::Cdp,
        Proto::Ipv4,
        Proto::Ipv6,
        Proto::Ipv6HopByHop,
        Proto::Ipv6Routing,
        Proto::Ipv6Fragment,
        Proto::Ipv6DestOptions,
        Proto::Ah,
        Proto::Tcp,
        Proto::Udp,
        Proto::Sctp,
        Proto::Esp,
        Proto::Icmp,
        Proto::Icmpv6,
        Proto::Igmp,
        Proto::Gre,
        Proto::IpIp,
        Proto::Vxlan,
        Proto::Geneve,
        Proto::Teredo,
        Proto::GtpU,
        Proto::Other,
    ];

    /// The stable lower-case name (equal to [`Layer::name`] where both exist).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Proto::LinkType => "linktype",
            Proto::Eth => "eth",
            Proto::Sll => "sll",
            Proto::Sll2 => "sll2",
            Proto::Loopback => "loopback",
            Proto::Vlan => "vlan",
            Proto::Llc => "llc",
            Proto::Snap => "snap",
            Proto::Stp => "stp",
            Proto::Arp => "arp",
            Proto::Lldp => "lldp",
            Proto::Cdp => "cdp",
            Proto::Ipv4 => "ipv4",
            Proto::Ipv6 => "ipv6",
            Proto::Ipv6HopByHop => "ipv6.hopopts",
            Proto::Ipv6Routing => "ipv6.routing",
            Proto::Ipv6Fragment => "ipv6.fragment",
            Proto::Ipv6DestOptions => "ipv6.dstopts",
            Proto::Ah => "ah",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Esp => "esp",
            Proto::Icmp => "icmp",
            Proto::Icmpv6 => "icmpv6",
            Proto::Igmp => "igmp",
            Proto::Gre => "gre",
            Proto::IpIp => "ipip",
            Proto::Vxlan => "vxlan",
            Proto::Geneve => "geneve",
            Proto::Teredo => "teredo",
            Proto::GtpU => "gtp-u",
            Proto::Other => "other",
        }
    }

    /// The entry for a parser [`Layer`] (error layers).
    pub(crate) const fn of_layer(l: Layer) -> Proto {
        match l {
            Layer::LinkType => Proto::LinkType,
            Layer::Ethernet => Proto::Eth,
            Layer::LinuxSll => Proto::Sll,
            Layer::LinuxSll2 => Proto::Sll2,
            Layer::Loopback => Proto::Loopback,
            Layer::Vlan => Proto::Vlan,
            Layer::Llc => Proto::Llc,
            Layer::Snap => Proto::Snap,
            Layer::Stp => Proto::Stp,
            Layer::Arp => Proto::Arp,
            Layer::Lldp => Proto::Lldp,
            Layer::Cdp => Proto::Cdp,
            Layer::Ipv4 => Proto::Ipv4,
            Layer::Ipv6 => Proto::Ipv6,
            Layer::Ipv6HopByHop => Proto::Ipv6HopByHop,
            Layer::Ipv6Routing => Proto::Ipv6Routing,
            Layer::Ipv6Fragment => Proto::Ipv6Fragment,
            Layer::Ipv6DestOptions => Proto::Ipv6DestOptions,
            Layer::IpAuth => Proto::Ah,
            Layer::Tcp => Proto::Tcp,
            Layer::Udp => Proto::Udp,
            Layer::Sctp => Proto::Sctp,
            Layer::Esp => Proto::Esp,
            Layer::Icmpv4 => Proto::Icmp,
            Layer::Icmpv6 => Proto::Icmpv6,
            Layer::Igmp => Proto::Igmp,
            Layer::Gre => Proto::Gre,
            Layer::Vxlan => Proto::Vxlan,
            Layer::Teredo => Proto::Teredo,
            Layer::Geneve => Proto::Geneve,
            _ => Proto::Other,
        }
    }

    /// The entry for a recognised tunnel.
    pub(crate) const fn of_tunnel(k: &TunnelKind) -> Proto {
        match k {
            TunnelKind::IpInIp => Proto::IpIp,
            TunnelKind::Gre { .. } => Proto::Gre,
            TunnelKind::Vxlan { .. } => Proto::Vxlan,
            TunnelKind::Geneve { .. } => Proto::Geneve,
            TunnelKind::Teredo => Proto::Teredo,
            TunnelKind::GtpU { .. } => Proto::GtpU,
        }
    }

    /// The entry for an IPv6 extension header type or AH.
    const fn of_ext(n: IpNumber) -> Proto {
        match n {
            IpNumber::IPV6_HEADER_HOP_BY_HOP => Proto::Ipv6HopByHop,
            IpNumber::IPV6_ROUTE_HEADER => Proto::Ipv6Routing,
            IpNumber::IPV6_FRAGMENTATION_HEADER => Proto::Ipv6Fragment,
            IpNumber::IPV6_DESTINATION_OPTIONS => Proto::Ipv6DestOptions,
            IpNumber::AUTHENTICATION_HEADER => Proto::Ah,
            _ => Proto::Other,
        }
    }

    /// The entry for the transport protocol of a header cut short.
    const fn of_ip_proto(n: IpNumber) -> Proto {
        match n {
            IpNumber::TCP => Proto::Tcp,
            IpNumber::UDP => Proto::Udp,
            IpNumber::SCTP => Proto::Sctp,
            _ => Proto::Other,
        }
    }

    /// This protocol's bit in a layer mask ([`LayerList`]).
    pub(crate) const fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

// Layer sets are `u64` masks.
const _: () = assert!(Proto::COUNT <= 64);

/// The layers of one packet in order, outermost first; fixed capacity, no allocation.
///
/// The bound covers the parser's own bounds: one link header, 8 VLAN tags, LLC and SNAP, one
/// network header with up to 16 IPv6 extension headers, one transport header and a tunnel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerList {
    items: [Proto; LayerList::CAP],
    len: u8,
}

impl LayerList {
    const CAP: usize = 40;

    pub(crate) const fn new() -> LayerList {
        LayerList {
            items: [Proto::Other; LayerList::CAP],
            len: 0,
        }
    }

    /// Appends `p`; ignored when full (cannot happen within the parser's bounds).
    #[inline]
    fn push(&mut self, p: Proto) {
        if let Some(slot) = self.items.get_mut(usize::from(self.len)) {
            *slot = p;
            self.len += 1;
        }
    }

    /// The layers, in order.
    pub(crate) fn as_slice(&self) -> &[Proto] {
        self.items.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The layers of `p` in order (see [`for_each_layer`]).
    pub(crate) fn of(p: &Packet<'_>) -> LayerList {
        let mut l = LayerList::new();
        for_each_layer(p, |proto| l.push(proto));
        l
    }
}

/// One bit per distinct layer of `p` (see [`Proto::bit`]); no list is built.
#[inline]
pub(crate) fn layer_mask(p: &Packet<'_>) -> u64 {
    let mut m = 0;
    for_each_layer(p, |proto| m |= proto.bit());
    m
}

/// Calls `f` with each layer that parsed in `p`, outermost first: fully, or — for a transport
/// header cut short — far enough to give ports; then the tunnel `p` carries, if any.
#[inline(always)]
fn for_each_layer(p: &Packet<'_>, mut f: impl FnMut(Proto)) {
    match p.link {
        Link::Ethernet(_) => f(Proto::Eth),
        Link::LinuxSll(_) => f(Proto::Sll),
        Link::LinuxSll2(_) => f(Proto::Sll2),
        Link::Loopback(_) => f(Proto::Loopback),
        _ => {}
    }
    for _ in p.vlans.iter() {
        f(Proto::Vlan);
    }
    if p.llc.is_some() {
        f(Proto::Llc);
    }
    if p.snap.is_some() {
        f(Proto::Snap);
    }
    match &p.net {
        Net::Ipv4(v) => {
            f(Proto::Ipv4);
            if v.auth().is_some() {
                f(Proto::Ah);
            }
        }
        Net::Ipv6(v) => {
            f(Proto::Ipv6);
            for &t in v.extension_types() {
                f(Proto::of_ext(t));
            }
        }
        Net::Arp(_) => f(Proto::Arp),
        Net::Lldp(_) => f(Proto::Lldp),
        Net::Cdp(_) => f(Proto::Cdp),
        Net::Stp(_) => f(Proto::Stp),
        _ => {}
    }
    match &p.transport {
        Transport::Tcp(_) => f(Proto::Tcp),
        Transport::Udp(_) => f(Proto::Udp),
        Transport::Sctp(_) => f(Proto::Sctp),
        Transport::Icmpv4(_) => f(Proto::Icmp),
        Transport::Icmpv6(_) => f(Proto::Icmpv6),
        Transport::Igmp(_) => f(Proto::Igmp),
        Transport::Gre(_) => f(Proto::Gre),
        Transport::Esp(_) => f(Proto::Esp),
        Transport::Partial { proto, .. } => f(Proto::of_ip_proto(*proto)),
        _ => {}
    }
    if let Some(t) = &p.tunnel {
        let tp = Proto::of_tunnel(&t.kind);
        // GRE is already there as the transport header.
        if tp != Proto::Gre {
            f(tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, p) in Proto::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?} out of order");
        }
        let layers = [
            Layer::LinkType,
            Layer::Ethernet,
            Layer::LinuxSll,
            Layer::LinuxSll2,
            Layer::Loopback,
            Layer::Vlan,
            Layer::Llc,
            Layer::Snap,
            Layer::Stp,
            Layer::Arp,
            Layer::Lldp,
            Layer::Cdp,
            Layer::Ipv4,
            Layer::Ipv6,
            Layer::Ipv6HopByHop,
            Layer::Ipv6Routing,
            Layer::Ipv6Fragment,
            Layer::Ipv6DestOptions,
            Layer::IpAuth,
            Layer::Tcp,
            Layer::Udp,
            Layer::Sctp,
            Layer::Esp,
            Layer::Icmpv4,
            Layer::Icmpv6,
            Layer::Igmp,
            Layer::Gre,
            Layer::Vxlan,
            Layer::Teredo,
            Layer::Geneve,
        ];
        for l in layers {
            let p = Proto::of_layer(l);
            assert_ne!(p, Proto::Other, "{l:?} unmapped");
            assert_eq!(p.name(), l.name(), "{l:?}");
        }
        let kinds = [
            TunnelKind::IpInIp,
            TunnelKind::Gre {
                protocol: 0,
                key: None,
            },
            TunnelKind::Vxlan { vni: 0 },
            TunnelKind::Geneve {
                vni: 0,
                protocol: 0,
            },
            TunnelKind::Teredo,
            TunnelKind::GtpU { teid: 0 },
        ];
        for k in kinds {
            assert_eq!(Proto::of_tunnel(&k).name(), k.name());
        }
    }
}
