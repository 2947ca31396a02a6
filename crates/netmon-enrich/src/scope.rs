//! The scope of an address: where on the network it can live, from the address alone
//! (IANA's special-purpose registries, RFC 6890 and its updates).
//!
//! The radar's rings and the "internal vs external" split come from here: [`Scope::Loopback`]
//! is this host, [`Scope::is_external`] is everything routed on the public Internet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// Where an address lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `0.0.0.0/8`, `::`: no address (a DHCP client, a bind-to-any).
    Unspecified,
    /// `127.0.0.0/8`, `::1`: this host.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16` (RFC 1918), `fc00::/7` (RFC 4193 unique local).
    Private,
    /// `100.64.0.0/10` (RFC 6598): a carrier's NAT, not routed on the Internet.
    Cgnat,
    /// `169.254/16`, `fe80::/10`: this link only.
    LinkLocal,
    /// `224/4`, `ff00::/8`, and the limited broadcast `255.255.255.255`.
    Multicast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24` (RFC 5737), `2001:db8::/32` (RFC 3849),
    /// `3fff::/20` (RFC 9637): examples, never on a network.
    Documentation,
    /// Special-purpose space that is neither of the above nor public: `192.0.0/24` (IETF
    /// protocol assignments), `198.18/15` (benchmarking), `240/4` (reserved), `100::/64`
    /// (discard), `2001:2::/48` (benchmarking), the IPv4-embedding prefixes that do not carry
    /// a public IPv4 address.
    Reserved,
    /// Everything else: routed on the public Internet.
    Public,
}

impl Scope {
    /// `unspecified`, `loopback`, `private`, `cgnat`, `link_local`, `multicast`,
    /// `documentation`, `reserved`, `public`.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Unspecified => "unspecified",
            Scope::Loopback => "loopback",
            Scope::Private => "private",
            Scope::Cgnat => "cgnat",
            Scope::LinkLocal => "link_local",
            Scope::Multicast => "multicast",
            Scope::Documentation => "documentation",
            Scope::Reserved => "reserved",
            Scope::Public => "public",
        }
    }

    /// Routed on the public Internet: the "external" side of internal vs external.
    pub const fn is_external(self) -> bool {
        matches!(self, Scope::Public)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The scope of `ip`. IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::/96`) IPv6 addresses
/// have the scope of the IPv4 address they carry.
pub fn scope_of(ip: IpAddr) -> Scope {
    match ip {
        IpAddr::V4(v4) => scope_v4(v4),
        IpAddr::V6(v6) => scope_v6(v6),
    }
}

/// The scope of an IPv4 address.
pub fn scope_v4(ip: Ipv4Addr) -> Scope {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Scope::Unspecified,
        (127, _, _) => Scope::Loopback,
        (10, _, _) | (192, 168, _) => Scope::Private,
        (172, 16..=31, _) => Scope::Private,
        (100, 64..=127, _) => Scope::Cgnat,
        (169, 254, _) => Scope::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Scope::Documentation,
        _ if ip.is_broadcast() => Scope::Multicast,
        (224..=239, _, _) => Scope::Multicast,
        (192, 0, 0) | (198, 18..=19, _) | (240..=255, _, _) => Scope::Reserved,
        _ => Scope::Public,
    }
}

/// The scope of an IPv6 address.
pub fn scope_v6(ip: Ipv6Addr) -> Scope {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Scope::Unspecified;
    }
    if ip.is_loopback() {
        return Scope::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return scope_v4(v4);
    }
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the IPv4 address behind it.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [hi, lo] = [s[6], s[7]];
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return match scope_v4(v4) {
            Scope::Public => Scope::Public,
            _ => Scope::Reserved,
        };
    }
    match s[0] {
        0xfc00..=0xfdff => Scope::Private,
        0xfe80..=0xfebf => Scope::LinkLocal,
        0xff00..=0xffff => Scope::Multicast,
        0x2001 if s[1] == 0x0db8 => Scope::Documentation,
        0x3fff if s[1] < 0x1000 => Scope::Documentation,
        // 2001:2::/48 benchmarking; 2001::/23 other IETF protocol assignments (Teredo
        // 2001::/32 and ORCHID are globally reachable, counted public).
        0x2001 if s[1] == 0x0002 && s[2] == 0 => Scope::Reserved,
        // 100::/64 discard-only.
        0x0100 if s[1..4] == [0, 0, 0] => Scope::Reserved,
        // Global unicast is 2000::/3; the rest of the space is unassigned or deprecated
        // (site-local fec0::/10, IPv4-compatible ::a.b.c.d).
        0x2000..=0x3fff => Scope::Public,
        _ => Scope::Reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(a: &str) -> Scope {
        scope_of(a.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        for (addr, want) in [
            ("0.0.0.0", Scope::Unspecified),
            ("0.1.2.3", Scope::Unspecified),
            ("127.0.0.1", Scope::Loopback),
            ("127.255.255.254", Scope::Loopback),
            ("10.0.0.1", Scope::Private),
            ("172.15.255.255", Scope::Public),
            ("172.16.0.0", Scope::Private),
            ("172.31.255.255", Scope::Private),
            ("172.32.0.0", Scope::Public),
            ("192.168.0.1", Scope::Private),
            ("192.169.0.1", Scope::Public),
            ("100.63.255.255", Scope::Public),
            ("100.64.0.0", Scope::Cgnat),
            ("100.127.255.255", Scope::Cgnat),
            ("100.128.0.0", Scope::Public),
            ("169.254.1.1", Scope::LinkLocal),
            ("192.0.2.7", Scope::Documentation),
            ("198.51.100.1", Scope::Documentation),
            ("203.0.113.200", Scope::Documentation),
            ("192.0.0.9", Scope::Reserved),
            ("198.18.0.1", Scope::Reserved),
            ("198.19.255.255", Scope::Reserved),
            ("198.20.0.0", Scope::Public),
            ("224.0.0.251", Scope::Multicast),
            ("239.255.255.250", Scope::Multicast),
            ("240.0.0.1", Scope::Reserved),
            ("255.255.255.255", Scope::Multicast),
            ("8.8.8.8", Scope::Public),
            ("64.13.134.52", Scope::Public),
        ] {
            assert_eq!(s(addr), want, "{addr}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        for (addr, want) in [
            ("::", Scope::Unspecified),
            ("::1", Scope::Loopback),
            ("::ffff:192.168.1.1", Scope::Private),
            ("::ffff:8.8.8.8", Scope::Public),
            ("64:ff9b::808:808", Scope::Public),
            ("64:ff9b::a00:1", Scope::Reserved),
            ("fc00::1", Scope::Private),
            ("fd12:3456::1", Scope::Private),
            ("fe80::1", Scope::LinkLocal),
            ("febf::1", Scope::LinkLocal),
            ("fec0::1", Scope::Reserved),
            ("ff02::fb", Scope::Multicast),
            ("2001:db8::1", Scope::Documentation),
            ("3fff:fff::1", Scope::Documentation),
            ("3fff:1000::1", Scope::Public),
            ("2001:2::1", Scope::Reserved),
            ("2001:2:1::1", Scope::Public),
            ("100::1", Scope::Reserved),
            ("2606:4700::1111", Scope::Public),
            ("2a00:1450::1", Scope::Public),
            ("4000::1", Scope::Reserved),
        ] {
            assert_eq!(s(addr), want, "{addr}");
        }
    }

    #[test]
    fn names_and_externality() {
        assert_eq!(Scope::LinkLocal.to_string(), "link_local");
        assert_eq!(
            serde_json::to_string(&Scope::LinkLocal).unwrap(),
            "\"link_local\""
        );
        assert!(Scope::Public.is_external());
        for sc in [
            Scope::Private,
            Scope::Cgnat,
            Scope::Loopback,
            Scope::Reserved,
        ] {
            assert!(!sc.is_external());
        }
    }

    proptest! {
        /// A mapped address has its IPv4 address's scope; the std predicates agree where
        /// they exist.
        #[test]
        fn mapped_and_std_agree(bits in any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            prop_assert_eq!(scope_v6(v4.to_ipv6_mapped()), scope_v4(v4));
            if v4.is_private() {
                prop_assert_eq!(scope_v4(v4), Scope::Private);
            }
            if v4.is_loopback() {
                prop_assert_eq!(scope_v4(v4), Scope::Loopback);
            }
            if v4.is_link_local() {
                prop_assert_eq!(scope_v4(v4), Scope::LinkLocal);
            }
            if v4.is_multicast() {
                prop_assert_eq!(scope_v4(v4), Scope::Multicast);
            }
        }

        #[test]
        fn v6_std_agree(bits in any::<u128>()) {
            let v6 = Ipv6Addr::from(bits);
            let sc = scope_v6(v6);
            if v6.is_multicast() {
                prop_assert_eq!(sc, Scope::Multicast);
            }
            if v6.is_unique_local() {
                prop_assert_eq!(sc, Scope::Private);
            }
            if v6.is_unicast_link_local() {
                prop_assert_eq!(sc, Scope::LinkLocal);
            }
        }
    }
}
