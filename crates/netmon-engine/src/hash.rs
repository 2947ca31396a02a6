//! The symmetric hash that spreads frames over flow shards.
//!
//! Only the two IP addresses are hashed, order-independently: both directions of a flow, and
//! every fragment of a datagram (which may lack ports), hash alike. An ICMP/ICMPv6 error hashes
//! as the packet it quotes, so it reaches the shard of the flow it reports on. The walk reads
//! a few fixed offsets (Ethernet with up to four VLAN tags, Linux SLL/SLL2, raw, null/loop) and
//! never fails: anything it does not recognise hashes to `None` (shard 0). The hash is fixed,
//! not seeded, so a replay spreads the same way every time.

use netmon_packet::bytes::{array, be16, u8_at};
use netmon_types::LinkType;

/// The 64-bit symmetric hash of the frame's IP addresses, or `None` for non-IP frames.
pub(crate) fn symmetric_ip_hash(link_type: LinkType, frame: &[u8]) -> Option<u64> {
    let (ip, at) = ip_start(link_type, frame)?;
    ip_hash(frame, ip, at, true)
}

#[derive(Clone, Copy)]
enum Ip {
    V4,
    V6,
}

/// Where the IP header starts, and which version it is.
fn ip_start(link_type: LinkType, f: &[u8]) -> Option<(Ip, usize)> {
    let by_type = |et: u16, at: usize| match et {
        0x0800 => Some((Ip::V4, at)),
        0x86dd => Some((Ip::V6, at)),
        _ => None,
    };
    let by_nibble = |at: usize| match u8_at(f, at)? >> 4 {
        4 => Some((Ip::V4, at)),
        6 => Some((Ip::V6, at)),
        _ => None,
    };
    match link_type {
        LinkType::ETHERNET => {
            let mut at = 12;
            let mut et = be16(f, at)?;
            let mut tags = 0;
            while matches!(et, 0x8100 | 0x88a8 | 0x9100) && tags < 4 {
                at += 4;
                et = be16(f, at)?;
                tags += 1;
            }
            by_type(et, at + 2)
        }
        LinkType::LINUX_SLL => by_type(be16(f, 14)?, 16),
        LinkType::LINUX_SLL2 => by_type(be16(f, 0)?, 20),
        LinkType::RAW | LinkType::RAW_BSD | LinkType::IPV4 | LinkType::IPV6 => by_nibble(0),
        LinkType::NULL | LinkType::LOOP => by_nibble(4),
        _ => None,
    }
}

/// splitmix64's finaliser: a fast, well-mixing bijection.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of the addresses of the IP header at `at`; with `follow_icmp`, an ICMP error's
/// quoted header instead (one level only).
fn ip_hash(f: &[u8], ip: Ip, at: usize, follow_icmp: bool) -> Option<u64> {
    match ip {
        Ip::V4 => {
            let a = u64::from(u32::from_be_bytes(array::<4>(f, at + 12)?));
            let b = u64::from(u32::from_be_bytes(array::<4>(f, at + 16)?));
            if follow_icmp && u8_at(f, at + 9)? == 1 {
                let ihl = usize::from(u8_at(f, at)? & 0x0f) * 4;
                // Only a first fragment carries the ICMP header.
                let first_fragment = be16(f, at + 6)? & 0x1fff == 0;
                let icmp = at + ihl;
                if first_fragment && matches!(u8_at(f, icmp), Some(3 | 4 | 5 | 11 | 12)) {
                    if let Some(h) = ip_hash(f, Ip::V4, icmp + 8, false) {
                        return Some(h);
                    }
                }
            }
            let (lo, hi) = (a.min(b), a.max(b));
            Some(mix(lo << 32 | hi))
        }
        Ip::V6 => {
            let a = u128::from_be_bytes(array::<16>(f, at + 8)?);
            let b = u128::from_be_bytes(array::<16>(f, at + 24)?);
            if follow_icmp {
                if let Some(icmp) = icmpv6_at(f, at) {
                    if matches!(u8_at(f, icmp), Some(1..=4)) {
                        if let Some(h) = ip_hash(f, Ip::V6, icmp + 8, false) {
                            return Some(h);
                        }
                    }
                }
            }
            let (lo, hi) = (a.min(b), a.max(b));
            let fold = |x: u128| (x as u64) ^ ((x >> 64) as u64).rotate_left(29);
            Some(mix(fold(lo) ^ mix(fold(hi))))
        }
    }
}

/// The offset of an ICMPv6 header after the IPv6 header at `at` and up to four extension
/// headers (hop-by-hop, routing, destination options; a non-first fragment has none).
fn icmpv6_at(f: &[u8], at: usize) -> Option<usize> {
    let mut next = u8_at(f, at + 6)?;
    let mut off = at + 40;
    for _ in 0..4 {
        match next {
            58 => return Some(off),
            0 | 43 | 60 => {
                next = u8_at(f, off)?;
                off += (usize::from(u8_at(f, off + 1)?) + 1) * 8;
            }
            44 => {
                if be16(f, off + 2)? & 0xfff8 != 0 {
                    return None;
                }
                next = u8_at(f, off)?;
                off += 8;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .udp(sp, dp)
            .write(&mut v, b"x")
            .unwrap();
        v
    }

    #[test]
    fn both_directions_hash_alike_and_flows_spread() {
        let a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
        let b = udp4([10, 0, 0, 2], [10, 0, 0, 1], 53, 1000);
        assert_eq!(
            symmetric_ip_hash(LinkType::ETHERNET, &a),
            symmetric_ip_hash(LinkType::ETHERNET, &b)
        );
        let mut counts = [0usize; 4];
        for i in 0..=255u8 {
            for j in 0..16u8 {
                let f = udp4([10, 0, j, i], [192, 0, 2, 1], 1, 2);
                counts[crate::sharded::shard_of(LinkType::ETHERNET, &f, 4)] += 1;
            }
        }
        // 4096 address pairs over 4 shards: each within 15 % of an even share.
        assert!(
            counts.iter().all(|&c| (870..=1180).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn vlan_sll_raw_and_v6_find_the_addresses() {
        let plain = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let h = symmetric_ip_hash(LinkType::ETHERNET, &plain);
        assert!(h.is_some());
        // The same packet behind a VLAN tag, raw, and cooked (SLL).
        let mut tagged = plain[..12].to_vec();
        tagged.extend([0x81, 0x00, 0x00, 0x0a]);
        tagged.extend_from_slice(&plain[12..]);
        assert_eq!(symmetric_ip_hash(LinkType::ETHERNET, &tagged), h);
        assert_eq!(symmetric_ip_hash(LinkType::RAW, &plain[14..]), h);
        let mut sll = vec![0u8; 14];
        sll.extend([0x08, 0x00]);
        sll.extend_from_slice(&plain[14..]);
        assert_eq!(symmetric_ip_hash(LinkType::LINUX_SLL, &sll), h);

        let mut v6a = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .udp(1, 2)
            .write(&mut v6a, b"")
            .unwrap();
        let mut v6b = Vec::new();
        PacketBuilder::ipv6([2; 16], [1; 16], 64)
            .tcp(2, 1, 0, 100)
            .write(&mut v6b, b"")
            .unwrap();
        assert_eq!(
            symmetric_ip_hash(LinkType::RAW, &v6a),
            symmetric_ip_hash(LinkType::RAW, &v6b)
        );
        assert_eq!(symmetric_ip_hash(LinkType::ETHERNET, &[0u8; 13]), None);
        assert_eq!(symmetric_ip_hash(LinkType(147), &plain), None);
    }

    #[test]
    fn icmp_errors_hash_as_the_packet_they_quote() {
        let flow = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
        // Port unreachable from a router 192.0.2.9, quoting the datagram's IP header + 8 bytes.
        let mut err = Vec::new();
        let quoted = &flow[14..14 + 28];
        PacketBuilder::ethernet2([2; 6], [1; 6])
            .ipv4([192, 0, 2, 9], [10, 0, 0, 1], 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut err, quoted)
            .unwrap();
        assert_eq!(
            symmetric_ip_hash(LinkType::ETHERNET, &err),
            symmetric_ip_hash(LinkType::ETHERNET, &flow)
        );
        // An echo request is not an error: its own addresses.
        let mut echo = Vec::new();
        PacketBuilder::ethernet2([2; 6], [1; 6])
            .ipv4([192, 0, 2, 9], [10, 0, 0, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut echo, b"")
            .unwrap();
        assert_ne!(
            symmetric_ip_hash(LinkType::ETHERNET, &echo),
            symmetric_ip_hash(LinkType::ETHERNET, &flow)
        );
    }
}
