//! The inet_diag messages of NETLINK_SOCK_DIAG, built and parsed by hand (no I/O here).
//!
//! Every reply byte is hostile: lengths are checked before each read, nothing here indexes
//! without a bound check, and a malformed message is an error value, never a panic.
//!
//! Layouts (`linux/netlink.h`, `linux/sock_diag.h`, `linux/inet_diag.h`); integers are in host
//! byte order unless marked `__be`:
//!
//! ```text
//! struct nlmsghdr {            // 16 bytes; messages are padded to 4-byte boundaries
//!     __u32 nlmsg_len;         // header + payload
//!     __u16 nlmsg_type;        // SOCK_DIAG_BY_FAMILY (20), NLMSG_ERROR (2), NLMSG_DONE (3), ...
//!     __u16 nlmsg_flags;       // NLM_F_REQUEST (1), NLM_F_MULTI (2), NLM_F_DUMP (0x300)
//!     __u32 nlmsg_seq;
//!     __u32 nlmsg_pid;
//! };
//! struct inet_diag_sockid {    // 48 bytes
//!     __be16 idiag_sport;
//!     __be16 idiag_dport;
//!     __be32 idiag_src[4];     // IPv4: idiag_src[0] only
//!     __be32 idiag_dst[4];
//!     __u32  idiag_if;
//!     __u32  idiag_cookie[2];  // INET_DIAG_NOCOOKIE (~0, ~0): any socket
//! };
//! struct inet_diag_req_v2 {    // 56 bytes: the request (type SOCK_DIAG_BY_FAMILY)
//!     __u8  sdiag_family;      // AF_INET (2), AF_INET6 (10)
//!     __u8  sdiag_protocol;    // IPPROTO_TCP (6), IPPROTO_UDP (17)
//!     __u8  idiag_ext;         // extensions wanted (none)
//!     __u8  pad;
//!     __u32 idiag_states;      // bit (1 << state) per TCP state wanted
//!     struct inet_diag_sockid id;
//! };
//! struct inet_diag_msg {       // 72 bytes: one socket of the reply, then attributes (ignored)
//!     __u8  idiag_family;
//!     __u8  idiag_state;
//!     __u8  idiag_timer;
//!     __u8  idiag_retrans;
//!     struct inet_diag_sockid id;
//!     __u32 idiag_expires;
//!     __u32 idiag_rqueue;
//!     __u32 idiag_wqueue;
//!     __u32 idiag_uid;
//!     __u32 idiag_inode;       // 0: no file (TIME_WAIT, request socket)
//! };
//! struct nlmsgerr {            // payload of NLMSG_ERROR
//!     int error;               // -errno, 0 for an acknowledgement
//!     struct nlmsghdr msg;     // the request's header
//! };
//! ```
//!
//! Without `NLM_F_DUMP` the request names one socket by its exact 4-tuple (the kernel's
//! `inet_diag_find_one_icsk` / `udp_dump_one`, which use the same lookups as packet receive, so
//! a TCP listener or an unconnected UDP socket matches too): the reply is one
//! SOCK_DIAG_BY_FAMILY message, or NLMSG_ERROR with `-ENOENT`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `struct nlmsghdr`.
pub(crate) const NLMSG_HDR_LEN: usize = 16;
/// `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg`.
const MSG_LEN: usize = 72;
/// A whole request: header and `inet_diag_req_v2`.
pub(crate) const REQUEST_LEN: usize = NLMSG_HDR_LEN + REQ_LEN;

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_NOOP`.
const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;

/// `AF_INET`.
pub(crate) const AF_INET: u8 = 2;
/// `AF_INET6`.
pub(crate) const AF_INET6: u8 = 10;
/// `IPPROTO_TCP`.
pub(crate) const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub(crate) const IPPROTO_UDP: u8 = 17;
/// Every state bit: listeners, connections, TIME_WAIT, request sockets.
pub(crate) const ALL_STATES: u32 = u32::MAX;

/// What to ask the kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query {
    /// `AF_INET` or `AF_INET6`.
    pub(crate) family: u8,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub(crate) protocol: u8,
    /// `None`: dump the whole table of this family and protocol. `Some`: the one socket with
    /// this local and remote address and port (addresses of `family`).
    pub(crate) exact: Option<Exact>,
}

/// The 4-tuple of an exact lookup, from the socket's point of view.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exact {
    /// Local address (of the query's family).
    pub(crate) local: IpAddr,
    /// Local port.
    pub(crate) local_port: u16,
    /// Remote address (of the query's family).
    pub(crate) remote: IpAddr,
    /// Remote port.
    pub(crate) remote_port: u16,
}

/// Builds the request: a `nlmsghdr` and an `inet_diag_req_v2`.
pub(crate) fn request(seq: u32, q: &Query) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    let flags = if q.exact.is_some() {
        NLM_F_REQUEST
    } else {
        NLM_F_REQUEST | NLM_F_DUMP
    };
    // REQUEST_LEN is 72: the casts cannot truncate.
    put(&mut b, 0, &(REQUEST_LEN as u32).to_ne_bytes());
    put(&mut b, 4, &SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    put(&mut b, 6, &flags.to_ne_bytes());
    put(&mut b, 8, &seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel.
    let r = NLMSG_HDR_LEN;
    put(&mut b, r, &[q.family, q.protocol, 0, 0]);
    put(&mut b, r + 4, &ALL_STATES.to_ne_bytes());
    let id = r + 8;
    if let Some(e) = q.exact {
        // TCP (`inet_diag_find_one_icsk`) reads src as the socket's local end; UDP
        // (`udp_dump_one`) passes src as the packet's source, i.e. the socket's remote end
        // ("src and dst are swapped for historical reasons", net/ipv4/udp_diag.c).
        let ((sa, sp), (da, dp)) = if q.protocol == IPPROTO_UDP {
            ((e.remote, e.remote_port), (e.local, e.local_port))
        } else {
            ((e.local, e.local_port), (e.remote, e.remote_port))
        };
        put(&mut b, id, &sp.to_be_bytes());
        put(&mut b, id + 2, &dp.to_be_bytes());
        put(&mut b, id + 4, &addr_bytes(sa));
        put(&mut b, id + 20, &addr_bytes(da));
    }
    // idiag_if 0: any interface. No cookie: any socket with this tuple.
    put(&mut b, id + 40, &u32::MAX.to_ne_bytes());
    put(&mut b, id + 44, &u32::MAX.to_ne_bytes());
    b
}

/// Writes `v` at `at`; out-of-range writes are dropped (they cannot happen: the offsets above
/// are constants within `REQUEST_LEN`).
fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + v.len()) {
        dst.copy_from_slice(v);
    }
}

/// An address as the 16 bytes of `idiag_src`/`idiag_dst` (IPv4 in the first four).
fn addr_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&v4.octets());
            o
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// One socket of a reply (`inet_diag_msg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DiagMsg {
    /// `idiag_family`: `AF_INET` or `AF_INET6` (other values are kept, with unspecified
    /// addresses).
    pub(crate) family: u8,
    /// `idiag_state`: the kernel's TCP state number (UDP: 1 connected, 7 unconnected).
    pub(crate) state: u8,
    /// Local address.
    pub(crate) src: IpAddr,
    /// Local port.
    pub(crate) sport: u16,
    /// Remote address.
    pub(crate) dst: IpAddr,
    /// Remote port.
    pub(crate) dport: u16,
    /// `idiag_if`: the bound interface, 0 for none.
    pub(crate) ifindex: u32,
    /// `idiag_uid`: the socket's owner.
    pub(crate) uid: u32,
    /// `idiag_inode`: the socket's inode, 0 for none.
    pub(crate) inode: u32,
}

/// One netlink message of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A socket.
    Socket(DiagMsg),
    /// `NLMSG_DONE`: the end of a dump.
    Done,
    /// `NLMSG_ERROR` with this errno (positive; 0 is an acknowledgement).
    Error(i32),
    /// Anything else (`NLMSG_NOOP`, unknown types): skipped.
    Other(u16),
}

/// A reply that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    /// `nlmsg_len` is smaller than the header or runs past the received bytes.
    #[error("netlink message length {len} does not fit the {avail} bytes left")]
    Length {
        /// `nlmsg_len`.
        len: u32,
        /// Bytes left in the datagram.
        avail: usize,
    },
    /// A message shorter than its fixed payload.
    #[error("netlink message of type {kind} too short: {len} bytes")]
    Short {
        /// `nlmsg_type`.
        kind: u16,
        /// Its payload length.
        len: usize,
    },
}

/// The netlink messages of one received datagram: `(nlmsg_seq, reply)` each; iteration
/// stops after the first malformed message.
pub(crate) fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

/// Iterator of [`messages`].
#[derive(Debug)]
pub(crate) struct Messages<'a> {
    rest: &'a [u8],
}

impl Iterator for Messages<'_> {
    type Item = Result<(u32, Reply), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = next_message(self.rest);
        match r {
            Ok((item, used)) => {
                // `used` is at most rest.len() (checked in next_message).
                self.rest = self.rest.get(used..).unwrap_or(&[]);
                Some(Ok(item))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One message at the start of `b`: it and the bytes it takes (with padding).
fn next_message(b: &[u8]) -> Result<((u32, Reply), usize), Malformed> {
    let short = Malformed::Length {
        len: 0,
        avail: b.len(),
    };
    let len = u32_at(b, 0).ok_or(short)?;
    let kind = u16_at(b, 4).ok_or(short)?;
    let seq = u32_at(b, 8).ok_or(short)?;
    let bad_len = Malformed::Length {
        len,
        avail: b.len(),
    };
    let n = usize::try_from(len).map_err(|_| bad_len)?;
    if n < NLMSG_HDR_LEN || n > b.len() {
        return Err(bad_len);
    }
    let payload = b.get(NLMSG_HDR_LEN..n).ok_or(bad_len)?;
    // NLMSG_ALIGN: the next message starts at a multiple of 4 (the last one may lack padding).
    let used = n.checked_add(3).map_or(b.len(), |x| x & !3).min(b.len());
    let reply = match kind {
        SOCK_DIAG_BY_FAMILY => Reply::Socket(parse_diag_msg(payload).ok_or(Malformed::Short {
            kind,
            len: payload.len(),
        })?),
        NLMSG_DONE => Reply::Done,
        NLMSG_ERROR => {
            let e = u32_at(payload, 0).ok_or(Malformed::Short {
                kind,
                len: payload.len(),
            })?;
            // `int error` is -errno: as i32, negated without overflow.
            Reply::Error((e as i32).checked_neg().unwrap_or(i32::MAX))
        }
        NLMSG_NOOP => Reply::Other(kind),
        other => Reply::Other(other),
    };
    Ok(((seq, reply), used))
}

/// `inet_diag_msg` (see the module docs); attributes after it are ignored.
fn parse_diag_msg(p: &[u8]) -> Option<DiagMsg> {
    if p.len() < MSG_LEN {
        return None;
    }
    let family = *p.first()?;
    let state = *p.get(1)?;
    let id = 4;
    let sport = be16_at(p, id)?;
    let dport = be16_at(p, id + 2)?;
    let src = addr_from(family, p.get(id + 4..id + 20)?)?;
    let dst = addr_from(family, p.get(id + 20..id + 36)?)?;
    let ifindex = u32_at(p, id + 36)?;
    let uid = u32_at(p, 4 + 48 + 12)?;
    let inode = u32_at(p, 4 + 48 + 16)?;
    Some(DiagMsg {
        family,
        state,
        src,
        sport,
        dst,
        dport,
        ifindex,
        uid,
        inode,
    })
}

/// An address of `family` from the 16 bytes of `idiag_src`/`idiag_dst`.
fn addr_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    let b16: [u8; 16] = b.try_into().ok()?;
    Some(match family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(b16[0], b16[1], b16[2], b16[3])),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(b16)),
        // Unknown families are data: kept, with no address.
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reply message as the kernel lays it out.
    fn diag_reply(
        seq: u32,
        family: u8,
        state: u8,
        src: IpAddr,
        dst: IpAddr,
        attrs: usize,
    ) -> Vec<u8> {
        let mut p = vec![family, state, 0, 0];
        p.extend_from_slice(&1234u16.to_be_bytes());
        p.extend_from_slice(&80u16.to_be_bytes());
        p.extend_from_slice(&addr_bytes(src));
        p.extend_from_slice(&addr_bytes(dst));
        p.extend_from_slice(&3u32.to_ne_bytes()); // if
        p.extend_from_slice(&[0xaa; 8]); // cookie
        p.extend_from_slice(&[0; 12]); // expires, rqueue, wqueue
        p.extend_from_slice(&1000u32.to_ne_bytes()); // uid
        p.extend_from_slice(&987_654u32.to_ne_bytes()); // inode
        p.extend(std::iter::repeat_n(0x55, attrs));
        msg(SOCK_DIAG_BY_FAMILY, seq, &p)
    }

    fn msg(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn request_layout_tcp_exact() {
        let q = Query {
            family: AF_INET,
            protocol: IPPROTO_TCP,
            exact: Some(Exact {
                local: "10.0.0.1".parse().unwrap(),
                local_port: 40000,
                remote: "10.0.0.2".parse().unwrap(),
                remote_port: 80,
            }),
        };
        let b = request(7, &q);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(b[4..6].try_into().unwrap()), 20);
        assert_eq!(
            u16::from_ne_bytes(b[6..8].try_into().unwrap()),
            NLM_F_REQUEST
        );
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 7);
        assert_eq!(&b[16..20], &[AF_INET, IPPROTO_TCP, 0, 0]);
        assert_eq!(&b[20..24], &[0xff; 4]);
        assert_eq!(&b[24..26], &40000u16.to_be_bytes()); // sport = local
        assert_eq!(&b[26..28], &80u16.to_be_bytes());
        assert_eq!(&b[28..32], &[10, 0, 0, 1]);
        assert_eq!(&b[32..44], &[0; 12]);
        assert_eq!(&b[44..48], &[10, 0, 0, 2]);
        assert_eq!(&b[64..72], &[0xff; 8]); // no cookie
    }

    #[test]
    fn request_udp_swaps_src_and_dst_and_dump_sets_flag() {
        let q = Query {
            family: AF_INET6,
            protocol: IPPROTO_UDP,
            exact: Some(Exact {
                local: "fd00::1".parse().unwrap(),
                local_port: 53,
                remote: "fd00::2".parse().unwrap(),
                remote_port: 5353,
            }),
        };
        let b = request(1, &q);
        assert_eq!(&b[24..26], &5353u16.to_be_bytes()); // sport = remote for UDP
        assert_eq!(&b[26..28], &53u16.to_be_bytes());
        assert_eq!(b[43], 2); // fd00::2 ends the src
        assert_eq!(b[59], 1);
        let d = request(2, &Query { exact: None, ..q });
        assert_eq!(
            u16::from_ne_bytes(d[6..8].try_into().unwrap()),
            NLM_F_REQUEST | NLM_F_DUMP
        );
        assert_eq!(&d[24..64], &[0; 40]);
    }

    #[test]
    fn parses_v4_v6_done_error_in_one_datagram() {
        let mut buf = diag_reply(
            5,
            AF_INET,
            10,
            "127.0.0.1".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0,
        );
        buf.extend(diag_reply(
            5,
            AF_INET6,
            1,
            "::ffff:10.1.2.3".parse().unwrap(),
            "fd00::9".parse().unwrap(),
            13,
        ));
        buf.extend(msg(NLMSG_ERROR, 6, &(-2i32).to_ne_bytes()));
        buf.extend(msg(NLMSG_DONE, 5, &0i32.to_ne_bytes()));
        let got: Vec<_> = messages(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 4);
        let Reply::Socket(a) = got[0].1 else {
            panic!("{got:?}")
        };
        assert_eq!(
            (
                a.family, a.state, a.sport, a.dport, a.uid, a.inode, a.ifindex
            ),
            (AF_INET, 10, 1234, 80, 1000, 987_654, 3)
        );
        assert_eq!(a.src, "127.0.0.1".parse::<IpAddr>().unwrap());
        let Reply::Socket(b) = got[1].1 else {
            panic!("{got:?}")
        };
        assert_eq!(b.src, "::ffff:10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(b.dst, "fd00::9".parse::<IpAddr>().unwrap());
        assert_eq!(got[2], (6, Reply::Error(2)));
        assert_eq!(got[3], (5, Reply::Done));
    }

    #[test]
    fn truncated_and_lying_lengths_are_errors() {
        let full = diag_reply(
            1,
            AF_INET,
            1,
            "1.2.3.4".parse().unwrap(),
            "5.6.7.8".parse().unwrap(),
            0,
        );
        for cut in 1..full.len() {
            let r: Vec<_> = messages(&full[..cut]).collect();
            assert_eq!(r.len(), 1, "cut {cut}");
            assert!(r[0].is_err(), "cut {cut}: {r:?}");
        }
        // A length below the header, and one past the end.
        let mut m = full.clone();
        m[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(matches!(
            messages(&m).next(),
            Some(Err(Malformed::Length { len: 8, .. }))
        ));
        m[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(matches!(
            messages(&m).next(),
            Some(Err(Malformed::Length { .. }))
        ));
        // A diag message whose payload is too short for inet_diag_msg.
        let s = msg(SOCK_DIAG_BY_FAMILY, 1, &[2, 1, 0, 0]);
        assert_eq!(
            messages(&s).next(),
            Some(Err(Malformed::Short { kind: 20, len: 4 }))
        );
        // An error message without its errno.
        let e = msg(NLMSG_ERROR, 1, &[]);
        assert!(matches!(
            messages(&e).next(),
            Some(Err(Malformed::Short { kind: 2, .. }))
        ));
        // i32::MIN as errno does not overflow.
        let e = msg(NLMSG_ERROR, 1, &i32::MIN.to_ne_bytes());
        assert_eq!(messages(&e).next(), Some(Ok((1, Reply::Error(i32::MAX)))));
    }

    #[test]
    fn unknown_family_and_type_are_data() {
        let m = diag_reply(
            1,
            42,
            99,
            "1.2.3.4".parse().unwrap(),
            "5.6.7.8".parse().unwrap(),
            0,
        );
        let Some(Ok((_, Reply::Socket(d)))) = messages(&m).next() else {
            panic!()
        };
        assert_eq!((d.family, d.state), (42, 99));
        assert!(d.src.is_unspecified());
        let o = msg(0x1234, 3, &[1, 2, 3]);
        assert_eq!(messages(&o).next(), Some(Ok((3, Reply::Other(0x1234)))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Arbitrary bytes never panic, and iteration ends (each step consumes or stops).
        #[test]
        fn never_panics_on_random_bytes(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            let n = messages(&buf).take(1000).count();
            prop_assert!(n <= buf.len() / NLMSG_HDR_LEN + 1);
        }

        /// Valid headers with random payloads (the interesting case for the field parsers).
        #[test]
        fn never_panics_on_random_payloads(
            kind in prop_oneof![Just(1u16), Just(2), Just(3), Just(20), any::<u16>()],
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            extra in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut b = msg(kind, 9, &payload);
            b.extend_from_slice(&extra);
            for m in messages(&b).take(100) {
                if let Ok((_, Reply::Socket(d))) = m {
                    prop_assert!(payload.len() >= MSG_LEN);
                    prop_assert_eq!(d.family, payload[0]);
                }
            }
        }
    }
}
