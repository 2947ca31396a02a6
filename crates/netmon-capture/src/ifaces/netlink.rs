//! rtnetlink messages: the pure, platform-independent part of the interface and route dumps.
//!
//! Everything here reads bytes the kernel sent (through [`super::linux`]) and never panics on
//! any input: a short or inconsistent message is an error or is skipped, never an index out of
//! bounds. All integers are in host byte order, as netlink sends them.
//!
//! ```text
//! datagram: nlmsghdr | payload | pad to 4 | nlmsghdr | payload | ...
//! struct nlmsghdr  { u32 nlmsg_len (header included); u16 nlmsg_type; u16 nlmsg_flags;
//!                    u32 nlmsg_seq; u32 nlmsg_pid; }                                   (16)
//! struct nlmsgerr  { i32 error (0 or -errno); struct nlmsghdr msg; }    (NLMSG_ERROR payload)
//! NLMSG_DONE payload: i32 error (0 or -errno)
//! struct rtattr    { u16 rta_len (header included); u16 rta_type; } data, pad to 4
//! struct ifinfomsg { u8 ifi_family; u8 pad; u16 ifi_type; i32 ifi_index; u32 ifi_flags;
//!                    u32 ifi_change; }                           (16, then IFLA_* attributes)
//! struct ifaddrmsg { u8 ifa_family; u8 ifa_prefixlen; u8 ifa_flags; u8 ifa_scope;
//!                    u32 ifa_index; }                             (8, then IFA_* attributes)
//! struct rtmsg     { u8 rtm_family; u8 rtm_dst_len; u8 rtm_src_len; u8 rtm_tos; u8 rtm_table;
//!                    u8 rtm_protocol; u8 rtm_scope; u8 rtm_type; u32 rtm_flags; }
//!                                                                 (12, then RTA_* attributes)
//! struct rtnexthop { u16 rtnh_len; u8 rtnh_flags; u8 rtnh_hops; i32 rtnh_ifindex; }
//!                    (8, then RTA_GATEWAY / RTA_VIA; RTA_MULTIPATH holds a list of these)
//! struct rtvia     { u16 rtvia_family; u8 rtvia_addr[]; }                      (RTA_VIA)
//! ```
//! (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Size of `struct nlmsghdr`.
pub(super) const NLMSG_HDRLEN: usize = 16;
/// `struct ifinfomsg`, `struct ifaddrmsg`, `struct rtmsg`.
pub(super) const IFINFOMSG_LEN: usize = 16;
pub(super) const IFADDRMSG_LEN: usize = 8;
pub(super) const RTMSG_LEN: usize = 12;

pub(super) const NLMSG_NOOP: u16 = 1;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLMSG_OVERRUN: u16 = 4;
pub(super) const RTM_NEWLINK: u16 = 16;
pub(super) const RTM_GETLINK: u16 = 18;
pub(super) const RTM_NEWADDR: u16 = 20;
pub(super) const RTM_GETADDR: u16 = 22;
pub(super) const RTM_NEWROUTE: u16 = 24;
pub(super) const RTM_GETROUTE: u16 = 26;

pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_DUMP: u16 = 0x300;
/// The dump was interrupted by a change and may be inconsistent.
pub(super) const NLM_F_DUMP_INTR: u16 = 0x10;

pub(super) const AF_INET: u8 = 2;
pub(super) const AF_INET6: u8 = 10;

pub(super) const IFF_UP: u32 = 0x1;
pub(super) const IFF_LOOPBACK: u32 = 0x8;
pub(super) const IFF_RUNNING: u32 = 0x40;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;

/// `RT_TABLE_MAIN`: the table `ip route` shows and plain `ip route add` writes.
pub(super) const RT_TABLE_MAIN: u32 = 254;
/// `RTN_UNICAST`: a route to a gateway or a directly attached network.
pub(super) const RTN_UNICAST: u8 = 1;
/// `RTM_F_CLONED`: a cached clone (IPv6 route cache, PMTU exceptions), not a configured route.
pub(super) const RTM_F_CLONED: u32 = 0x200;

/// Attribute type bits that are flags, not part of the type (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Why a reply could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NlError {
    /// The kernel answered with an error (a positive errno).
    Kernel(i32),
    /// The reply does not follow the netlink layout.
    Malformed(&'static str),
}

/// One netlink message, borrowed from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Msg<'a> {
    pub(super) ty: u16,
    pub(super) flags: u16,
    pub(super) seq: u32,
    pub(super) payload: &'a [u8],
}

/// Where a dump stands after one datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Walk {
    /// `NLMSG_DONE` was seen: the dump is complete.
    pub(super) done: bool,
    /// A message carried `NLM_F_DUMP_INTR`: the kernel's tables changed during the dump.
    pub(super) interrupted: bool,
}

fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    Some(u16::from_ne_bytes(b.get(at..end)?.try_into().ok()?))
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_ne_bytes(b.get(at..end)?.try_into().ok()?))
}

fn rd_i32(b: &[u8], at: usize) -> Option<i32> {
    rd_u32(b, at).map(|v| i32::from_ne_bytes(v.to_ne_bytes()))
}

/// `NLMSG_ALIGN` / `RTA_ALIGN`: rounds up to a multiple of 4 (saturating, so hostile lengths
/// just end the walk).
fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Splits a datagram into messages. A message whose length is impossible ends the walk with
/// an error (everything before it was yielded).
pub(super) fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Msg<'_>, NlError>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let len = usize::try_from(rd_u32(rest, 0)?).ok()?;
            if len < NLMSG_HDRLEN {
                return None;
            }
            let msg = Msg {
                ty: rd_u16(rest, 4)?,
                flags: rd_u16(rest, 6)?,
                seq: rd_u32(rest, 8)?,
                payload: rest.get(NLMSG_HDRLEN..len)?,
            };
            Some((msg, rest.get(align4(len)..).unwrap_or(&[])))
        })();
        match parsed {
            Some((msg, next)) => {
                rest = next;
                Some(Ok(msg))
            }
            None => {
                rest = &[];
                Some(Err(NlError::Malformed("bad message length")))
            }
        }
    })
}

/// The attributes in `buf`: `(type without flag bits, data)`. A malformed attribute ends the
/// list (the kernel never sends one; whatever followed it is ignored).
pub(super) fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = usize::from(rd_u16(rest, 0)?);
        let ty = rd_u16(rest, 2)? & NLA_TYPE_MASK;
        let data = rest.get(4..len)?;
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some((ty, data))
    })
}

/// Walks one datagram of a dump answering request `seq`, handing every data message to `on`.
/// Messages of another sequence number (a stale reply) are skipped.
pub(super) fn walk(
    datagram: &[u8],
    seq: u32,
    on: &mut dyn FnMut(&Msg<'_>),
) -> Result<Walk, NlError> {
    let mut state = Walk::default();
    for msg in messages(datagram) {
        let msg = msg?;
        if msg.seq != seq {
            continue;
        }
        if msg.flags & NLM_F_DUMP_INTR != 0 {
            state.interrupted = true;
        }
        match msg.ty {
            NLMSG_NOOP => {}
            NLMSG_DONE => {
                // Since Linux 4.x the payload is an int: 0, or -errno when the dump failed.
                match rd_i32(msg.payload, 0) {
                    Some(e) if e < 0 => return Err(NlError::Kernel(e.saturating_neg())),
                    _ => {}
                }
                state.done = true;
                return Ok(state);
            }
            NLMSG_ERROR => match rd_i32(msg.payload, 0) {
                // An acknowledgement: nothing more will come.
                Some(0) => {
                    state.done = true;
                    return Ok(state);
                }
                Some(e) => return Err(NlError::Kernel(e.saturating_neg())),
                None => return Err(NlError::Malformed("short error message")),
            },
            NLMSG_OVERRUN => return Err(NlError::Malformed("data lost (overrun)")),
            _ => on(&msg),
        }
    }
    Ok(state)
}

/// A dump request: `nlmsghdr` (`NLM_F_REQUEST | NLM_F_DUMP`) followed by `header`, the
/// family-specific struct (all zero but its family byte).
pub(super) fn dump_request(ty: u16, seq: u32, header: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + align4(header.len());
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    req.extend_from_slice(&ty.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
    req.extend_from_slice(header);
    req.resize(len, 0);
    req
}

/// An `RTM_NEWLINK` message: one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Link {
    pub(super) index: u32,
    /// `IFF_*` flags.
    pub(super) flags: u32,
    /// `IFLA_IFNAME` without its NUL; raw bytes (Linux allows any byte but `/`, `:`, NUL and
    /// white space in a name, so it need not be UTF-8).
    pub(super) name: Vec<u8>,
    /// `IFLA_MTU`.
    pub(super) mtu: Option<u32>,
    /// `IFLA_ADDRESS`: the hardware address, any length.
    pub(super) hwaddr: Vec<u8>,
}

/// Parses the payload of an `RTM_NEWLINK` message; `None` when it is too short or its index
/// is not positive.
pub(super) fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = u32::try_from(rd_i32(payload, 4)?).ok().filter(|&i| i > 0)?;
    let mut link = Link {
        index,
        flags: rd_u32(payload, 8)?,
        name: Vec::new(),
        mtu: None,
        hwaddr: Vec::new(),
    };
    for (ty, data) in attrs(payload.get(IFINFOMSG_LEN..)?) {
        match ty {
            IFLA_IFNAME => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                link.name = data.get(..end).unwrap_or(data).to_vec();
            }
            IFLA_MTU => link.mtu = rd_u32(data, 0),
            IFLA_ADDRESS => link.hwaddr = data.to_vec(),
            _ => {}
        }
    }
    Some(link)
}

/// An `RTM_NEWADDR` message: one address of one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Addr {
    pub(super) index: u32,
    pub(super) addr: IpAddr,
    pub(super) prefix_len: u8,
}

fn ip_from(family: u8, data: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(data)
            .ok()
            .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        AF_INET6 => <[u8; 16]>::try_from(data)
            .ok()
            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        _ => None,
    }
}

/// Parses the payload of an `RTM_NEWADDR` message. The address is `IFA_LOCAL` when present
/// (on point-to-point links `IFA_ADDRESS` is the peer's), else `IFA_ADDRESS` — what `ip addr`
/// and glibc's getifaddrs show. `None` for other families or a message without an address.
pub(super) fn parse_addr(payload: &[u8]) -> Option<Addr> {
    let family = *payload.first()?;
    let prefix_len = *payload.get(1)?;
    let index = rd_u32(payload, 4)?;
    let (mut local, mut address) = (None, None);
    for (ty, data) in attrs(payload.get(IFADDRMSG_LEN..)?) {
        match ty {
            IFA_LOCAL => local = ip_from(family, data),
            IFA_ADDRESS => address = ip_from(family, data),
            _ => {}
        }
    }
    Some(Addr {
        index,
        addr: local.or(address)?,
        prefix_len,
    })
}

/// One next hop of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Hop {
    /// `RTA_OIF` / `rtnh_ifindex`; `None` when absent or not positive.
    pub(super) oif: Option<u32>,
    /// `RTA_GATEWAY`, or `RTA_VIA` (an IPv4 route through an IPv6 gateway).
    pub(super) gateway: Option<IpAddr>,
}

/// An `RTM_NEWROUTE` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) family: u8,
    pub(super) dst_len: u8,
    /// `RTA_TABLE` when present (it holds table ids above 255), else `rtm_table`.
    pub(super) table: u32,
    pub(super) rtype: u8,
    pub(super) flags: u32,
    /// `RTA_PRIORITY`, 0 when absent.
    pub(super) metric: u32,
    /// The single next hop, or those of `RTA_MULTIPATH` (one or more).
    pub(super) hops: Vec<Hop>,
}

fn via(data: &[u8]) -> Option<IpAddr> {
    let family = u8::try_from(rd_u16(data, 0)?).ok()?;
    ip_from(family, data.get(2..)?)
}

fn positive(i: i32) -> Option<u32> {
    u32::try_from(i).ok().filter(|&i| i > 0)
}

/// The `struct rtnexthop` list of an `RTA_MULTIPATH` attribute. A malformed entry ends the list.
fn multipath(family: u8, mut rest: &[u8]) -> Vec<Hop> {
    let mut hops = Vec::new();
    // Each entry is at least 8 bytes, so this loop is bounded by the attribute's length.
    while let (Some(len), Some(ifindex)) = (rd_u16(rest, 0), rd_i32(rest, 4)) {
        let len = usize::from(len);
        let Some(nested) = rest.get(8..len) else {
            break;
        };
        let mut hop = Hop {
            oif: positive(ifindex),
            gateway: None,
        };
        for (ty, data) in attrs(nested) {
            match ty {
                RTA_GATEWAY => hop.gateway = ip_from(family, data),
                RTA_VIA => hop.gateway = via(data),
                _ => {}
            }
        }
        hops.push(hop);
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
    hops
}

/// Parses the payload of an `RTM_NEWROUTE` message; `None` when shorter than `struct rtmsg`.
pub(super) fn parse_route(payload: &[u8]) -> Option<Route> {
    let header = payload.get(..RTMSG_LEN)?;
    let family = *header.first()?;
    let mut route = Route {
        family,
        dst_len: *header.get(1)?,
        table: u32::from(*header.get(4)?),
        rtype: *header.get(7)?,
        flags: rd_u32(header, 8)?,
        metric: 0,
        hops: Vec::new(),
    };
    let mut single = Hop {
        oif: None,
        gateway: None,
    };
    for (ty, data) in attrs(payload.get(RTMSG_LEN..)?) {
        match ty {
            RTA_OIF => single.oif = rd_i32(data, 0).and_then(positive),
            RTA_GATEWAY => single.gateway = ip_from(family, data),
            RTA_VIA => single.gateway = via(data),
            RTA_PRIORITY => route.metric = rd_u32(data, 0).unwrap_or(0),
            RTA_TABLE => route.table = rd_u32(data, 0).unwrap_or(route.table),
            RTA_MULTIPATH => route.hops = multipath(family, data),
            RTA_DST => {} // a default route has none (or all zero bits, with dst_len 0)
            _ => {}
        }
    }
    if route.hops.is_empty() {
        route.hops.push(single);
    }
    Some(route)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An attribute: header, data, padding.
    pub(crate) fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
        let len = 4 + data.len();
        let mut a = Vec::new();
        a.extend_from_slice(&(len as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(data);
        a.resize(align4(len), 0);
        a
    }

    /// A message: header with `ty`, `flags`, `seq`, then `payload`, padded.
    pub(crate) fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&4242u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(align4(len), 0);
        m
    }

    pub(crate) fn ifinfomsg(index: i32, flags: u32) -> Vec<u8> {
        let mut h = vec![0u8, 0];
        h.extend_from_slice(&1u16.to_ne_bytes()); // ARPHRD_ETHER
        h.extend_from_slice(&index.to_ne_bytes());
        h.extend_from_slice(&flags.to_ne_bytes());
        h.extend_from_slice(&0u32.to_ne_bytes());
        h
    }

    pub(crate) fn link_payload(
        index: i32,
        flags: u32,
        name: &[u8],
        mtu: u32,
        mac: &[u8],
    ) -> Vec<u8> {
        let mut p = ifinfomsg(index, flags);
        let mut n = name.to_vec();
        n.push(0);
        p.extend(attr(IFLA_IFNAME, &n));
        p.extend(attr(IFLA_MTU, &mtu.to_ne_bytes()));
        if !mac.is_empty() {
            p.extend(attr(IFLA_ADDRESS, mac));
        }
        p.extend(attr(0x8000 | 26, &attr(1, &[1, 2, 3, 4]))); // a nested attribute we skip
        p
    }

    pub(crate) fn addr_payload(
        family: u8,
        prefix: u8,
        index: u32,
        attrs_: &[(u16, &[u8])],
    ) -> Vec<u8> {
        let mut p = vec![family, prefix, 0, 0];
        p.extend_from_slice(&index.to_ne_bytes());
        for (ty, data) in attrs_ {
            p.extend(attr(*ty, data));
        }
        p
    }

    pub(crate) fn route_payload(
        family: u8,
        dst_len: u8,
        table: u8,
        rtype: u8,
        attrs_: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut p = vec![family, dst_len, 0, 0, table, 3, 0, rtype];
        p.extend_from_slice(&0u32.to_ne_bytes());
        for (ty, data) in attrs_ {
            p.extend(attr(*ty, data));
        }
        p
    }

    #[test]
    fn link_message_fields() {
        let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let p = link_payload(3, IFF_UP | IFF_RUNNING, b"veth0", 1400, &mac);
        let l = parse_link(&p).unwrap();
        assert_eq!(l.index, 3);
        assert_eq!(l.flags, IFF_UP | IFF_RUNNING);
        assert_eq!(l.name, b"veth0");
        assert_eq!(l.mtu, Some(1400));
        assert_eq!(l.hwaddr, mac);
    }

    #[test]
    fn link_message_short_or_bad_index() {
        let p = link_payload(3, 0, b"x", 1500, &[]);
        assert_eq!(parse_link(&p[..15]), None);
        assert!(parse_link(&p[..16]).is_some()); // header only: no attributes
        assert_eq!(parse_link(&link_payload(0, 0, b"x", 1, &[])), None);
        assert_eq!(parse_link(&link_payload(-5, 0, b"x", 1, &[])), None);
        // A truncated attribute ends the list without a panic.
        let cut = parse_link(&p[..p.len() - 2]).unwrap();
        assert_eq!(cut.name, b"x");
    }

    #[test]
    fn non_utf8_name_is_kept_as_bytes() {
        let l = parse_link(&link_payload(7, 0, b"ab\xff", 1500, &[])).unwrap();
        assert_eq!(l.name, b"ab\xff");
    }

    #[test]
    fn address_prefers_local() {
        let p = addr_payload(
            AF_INET,
            32,
            4,
            &[(IFA_ADDRESS, &[10, 0, 0, 2]), (IFA_LOCAL, &[10, 0, 0, 1])],
        );
        let a = parse_addr(&p).unwrap();
        assert_eq!(a.addr, IpAddr::from([10, 0, 0, 1]));
        assert_eq!((a.index, a.prefix_len), (4, 32));
        let v6 = [0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let a = parse_addr(&addr_payload(AF_INET6, 64, 2, &[(IFA_ADDRESS, &v6)])).unwrap();
        assert_eq!(a.addr, "fd77::1".parse::<IpAddr>().unwrap());
        assert_eq!(a.prefix_len, 64);
    }

    #[test]
    fn address_wrong_length_or_family_is_skipped() {
        // A 4-byte address in an AF_INET6 message, an unknown family, no address at all.
        assert_eq!(
            parse_addr(&addr_payload(
                AF_INET6,
                64,
                2,
                &[(IFA_ADDRESS, &[1, 2, 3, 4])]
            )),
            None
        );
        assert_eq!(
            parse_addr(&addr_payload(17, 0, 2, &[(IFA_ADDRESS, &[1, 2, 3, 4])])),
            None
        );
        assert_eq!(parse_addr(&addr_payload(AF_INET, 8, 2, &[])), None);
        assert_eq!(parse_addr(&[AF_INET, 8, 0]), None);
    }

    #[test]
    fn route_single_hop() {
        let p = route_payload(
            AF_INET,
            0,
            254,
            RTN_UNICAST,
            &[
                (RTA_TABLE, 254u32.to_ne_bytes().to_vec()),
                (RTA_PRIORITY, 100u32.to_ne_bytes().to_vec()),
                (RTA_GATEWAY, vec![10, 77, 0, 2]),
                (RTA_OIF, 3i32.to_ne_bytes().to_vec()),
            ],
        );
        let r = parse_route(&p).unwrap();
        assert_eq!(
            (r.family, r.dst_len, r.table, r.rtype),
            (AF_INET, 0, 254, 1)
        );
        assert_eq!(r.metric, 100);
        assert_eq!(
            r.hops,
            [Hop {
                oif: Some(3),
                gateway: Some(IpAddr::from([10, 77, 0, 2]))
            }]
        );
    }

    #[test]
    fn route_table_attribute_overrides_header_and_via_is_read() {
        let mut via_v6 = 10u16.to_ne_bytes().to_vec();
        via_v6.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        let p = route_payload(
            AF_INET,
            0,
            252, // RT_TABLE_COMPAT: the real id is in RTA_TABLE
            RTN_UNICAST,
            &[
                (RTA_TABLE, 1000u32.to_ne_bytes().to_vec()),
                (RTA_VIA, via_v6),
                (RTA_OIF, 2i32.to_ne_bytes().to_vec()),
            ],
        );
        let r = parse_route(&p).unwrap();
        assert_eq!(r.table, 1000);
        assert_eq!(r.metric, 0);
        assert_eq!(r.hops[0].gateway, Some("fe80::1".parse().unwrap()));
    }

    fn rtnh(ifindex: i32, inner: &[u8]) -> Vec<u8> {
        let len = 8 + inner.len();
        let mut h = (len as u16).to_ne_bytes().to_vec();
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&ifindex.to_ne_bytes());
        h.extend_from_slice(inner);
        h
    }

    #[test]
    fn route_multipath() {
        let mut mp = rtnh(3, &attr(RTA_GATEWAY, &[10, 77, 0, 2]));
        mp.extend(rtnh(4, &attr(RTA_GATEWAY, &[10, 78, 0, 2])));
        mp.extend(rtnh(5, &[])); // a device-only hop
        let p = route_payload(AF_INET, 0, 254, RTN_UNICAST, &[(RTA_MULTIPATH, mp.clone())]);
        let r = parse_route(&p).unwrap();
        let got: Vec<_> = r.hops.iter().map(|h| (h.oif, h.gateway)).collect();
        assert_eq!(
            got,
            [
                (Some(3), Some(IpAddr::from([10, 77, 0, 2]))),
                (Some(4), Some(IpAddr::from([10, 78, 0, 2]))),
                (Some(5), None)
            ]
        );
        // An rtnexthop claiming more bytes than there are ends the list.
        let mut bad = mp[..16].to_vec();
        bad.extend_from_slice(&200u16.to_ne_bytes());
        bad.extend_from_slice(&[0, 0, 9, 0, 0, 0]);
        let r = parse_route(&route_payload(AF_INET, 0, 254, 1, &[(RTA_MULTIPATH, bad)])).unwrap();
        assert_eq!(r.hops.len(), 1);
    }

    #[test]
    fn route_too_short() {
        assert_eq!(
            parse_route(&[AF_INET, 0, 0, 0, 254, 0, 0, 1, 0, 0, 0]),
            None
        );
    }

    #[test]
    fn walk_collects_until_done() {
        let l1 = link_payload(1, IFF_UP | IFF_LOOPBACK, b"lo", 65536, &[0; 6]);
        let l2 = link_payload(2, 0, b"eth0", 1500, &[2, 0, 0, 0, 0, 1]);
        let mut dg = msg(RTM_NEWLINK, 2, 7, &l1);
        dg.extend(msg(RTM_NEWLINK, 2, 99, &l2)); // another request's: skipped
        dg.extend(msg(NLMSG_NOOP, 0, 7, &[]));
        dg.extend(msg(RTM_NEWLINK, 2 | NLM_F_DUMP_INTR, 7, &l2));
        let mut seen = Vec::new();
        let w = walk(&dg, 7, &mut |m| {
            seen.push(parse_link(m.payload).unwrap().index)
        })
        .unwrap();
        assert_eq!(
            w,
            Walk {
                done: false,
                interrupted: true
            }
        );
        assert_eq!(seen, [1, 2]);
        let done = msg(NLMSG_DONE, 2, 7, &0i32.to_ne_bytes());
        let w = walk(&done, 7, &mut |_| panic!("no data")).unwrap();
        assert!(w.done && !w.interrupted);
    }

    #[test]
    fn walk_reports_kernel_errors() {
        let mut err = (-13i32).to_ne_bytes().to_vec();
        err.extend(vec![0; 16]);
        let dg = msg(NLMSG_ERROR, 0, 1, &err);
        assert_eq!(walk(&dg, 1, &mut |_| {}), Err(NlError::Kernel(13)));
        let dg = msg(NLMSG_DONE, 2, 1, &(-4i32).to_ne_bytes());
        assert_eq!(walk(&dg, 1, &mut |_| {}), Err(NlError::Kernel(4)));
        let dg = msg(NLMSG_ERROR, 0, 1, &[1]);
        assert!(matches!(
            walk(&dg, 1, &mut |_| {}),
            Err(NlError::Malformed(_))
        ));
        let ack = msg(NLMSG_ERROR, 0, 1, &[0; 20]);
        assert!(walk(&ack, 1, &mut |_| {}).unwrap().done);
        // DONE without a payload (older kernels) still ends the dump.
        assert!(
            walk(&msg(NLMSG_DONE, 2, 1, &[]), 1, &mut |_| {})
                .unwrap()
                .done
        );
    }

    #[test]
    fn walk_rejects_bad_lengths() {
        let good = msg(RTM_NEWLINK, 2, 1, &link_payload(1, 0, b"lo", 1, &[]));
        let mut n = 0;
        // Length below the header size, and a length past the end of the datagram.
        for bad_len in [0u32, 15, 1_000_000] {
            let mut dg = good.clone();
            let mut bad = good.clone();
            bad[..4].copy_from_slice(&bad_len.to_ne_bytes());
            dg.extend(bad);
            let r = walk(&dg, 1, &mut |_| n += 1);
            assert!(matches!(r, Err(NlError::Malformed(_))), "{bad_len}: {r:?}");
        }
        assert_eq!(n, 3); // the good message before each bad one was still delivered
        assert!(matches!(
            walk(&[1, 2, 3], 1, &mut |_| {}),
            Err(NlError::Malformed(_))
        ));
        assert_eq!(walk(&[], 1, &mut |_| {}), Ok(Walk::default()));
    }

    #[test]
    fn request_layout() {
        let r = dump_request(
            RTM_GETROUTE,
            9,
            &[AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(r.len(), 28);
        let m: Vec<_> = messages(&r).collect();
        assert_eq!(m.len(), 1);
        let m = m[0].unwrap();
        assert_eq!(
            (m.ty, m.flags, m.seq),
            (RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 9)
        );
        assert_eq!(m.payload[0], AF_INET6);
        // Headers of other sizes are padded to 4.
        assert_eq!(dump_request(RTM_GETLINK, 1, &[0]).len(), 20);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = walk(&bytes, 0, &mut |m| {
                let _ = parse_link(m.payload);
                let _ = parse_addr(m.payload);
                let _ = parse_route(m.payload);
            });
            let _ = parse_link(&bytes);
            let _ = parse_addr(&bytes);
            let _ = parse_route(&bytes);
        }

        #[test]
        fn attributes_round_trip(list in proptest::collection::vec(
            (0u16..0x3fff, proptest::collection::vec(proptest::num::u8::ANY, 0..40)), 0..10)
        ) {
            let mut buf = Vec::new();
            for (ty, data) in &list {
                buf.extend(attr(*ty, data));
            }
            let back: Vec<(u16, Vec<u8>)> = attrs(&buf).map(|(t, d)| (t, d.to_vec())).collect();
            proptest::prop_assert_eq!(back, list);
        }
    }
}
