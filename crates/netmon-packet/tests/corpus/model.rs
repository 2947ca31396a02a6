//! The per-frame summary both sides (netmon and tshark) are reduced to, and the oracle's flow
//! accounting (`/work/shared/tools/ORACLE.md`, `tshark_oracle.py`) over such summaries. The
//! oracle's key, counts, JSON reading and diffing live in [`netmon_testkit::oracle`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use netmon_testkit::oracle::{Accounting, Counts, OracleKey, PORT_PROTOS};

/// Transport headers netmon parses, by tshark's protocol token. A header cut short counts as
/// recognised when its ports survived (tshark names it then too).
pub(crate) const L4_NAMES: [&str; 8] =
    ["tcp", "udp", "sctp", "icmp", "icmpv6", "igmp", "gre", "esp"];

/// Fragment fields: identification (IPv4 16 bit / IPv6 32 bit), offset in bytes, more-fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Frag {
    pub(crate) id: u32,
    pub(crate) offset: u32,
    pub(crate) more: bool,
}

/// One IP layer as flow accounting sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IpLayer {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// The transport protocol (after IPv6 extension headers and AH); `None` when an IPv6
    /// extension chain was not walked to its end.
    pub(crate) proto: Option<u8>,
    /// Ports of a dissected TCP/UDP/SCTP/... header (not inherited by later fragments).
    pub(crate) ports: Option<(u16, u16)>,
    /// The transport header that was recognised, among those netmon parses (see [`L4_NAMES`]).
    pub(crate) l4: Option<&'static str>,
    /// Set for fragments (more-fragments or a non-zero offset); IPv6 atomic fragments are not.
    pub(crate) frag: Option<Frag>,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Frame number, 1-based (tshark's `frame.number`).
    pub(crate) number: u32,
    /// Length on the wire.
    pub(crate) len: u64,
    /// The outermost IP header with the transport header right after it.
    pub(crate) outer: Option<IpLayer>,
    /// The innermost tunnelled (not ICMP-quoted) IP header, when the frame is a tunnel.
    pub(crate) inner: Option<IpLayer>,
    /// For frames without `outer`: what they are (`arp`, `lldp`, ...; `?` when unknown).
    pub(crate) non_ip: Option<String>,
}

type FragKey = (IpAddr, IpAddr, Option<u8>, u32);

/// The oracle's accounting over `frames`: two passes, so that non-first fragments take the
/// ports of their first fragment wherever it is in the file.
pub(crate) fn account(frames: &[Frame]) -> Accounting {
    let mut first_frag_ports: HashMap<FragKey, (u16, u16)> = HashMap::new();
    for l in frames
        .iter()
        .flat_map(|f| f.outer.iter().chain(f.inner.iter()))
    {
        if let (Some(frag), Some(ports)) = (l.frag, l.ports) {
            if frag.offset == 0 && l.proto.is_some_and(|p| PORT_PROTOS.contains(&p)) {
                first_frag_ports
                    .entry((l.src, l.dst, l.proto, frag.id))
                    .or_insert(ports);
            }
        }
    }
    let key_of = |l: &IpLayer| {
        let mut ports = l.ports;
        if let (Some(frag), None) = (l.frag, ports) {
            ports = first_frag_ports
                .get(&(l.src, l.dst, l.proto, frag.id))
                .copied();
        }
        if !l.proto.is_some_and(|p| PORT_PROTOS.contains(&p)) {
            ports = None;
        }
        OracleKey::canon(
            l.proto,
            (l.src, ports.map(|p| p.0)),
            (l.dst, ports.map(|p| p.1)),
        )
    };
    let add = |map: &mut BTreeMap<OracleKey, Counts>, l: &IpLayer, len: u64| {
        let (k, swapped) = key_of(l);
        let c = map.entry(k).or_default();
        let d = if swapped {
            &mut c.b_to_a
        } else {
            &mut c.a_to_b
        };
        d.0 += 1;
        d.1 += len;
    };
    let mut acc = Accounting {
        frames: frames.len() as u64,
        ..Accounting::default()
    };
    for f in frames {
        match &f.outer {
            None => acc.non_ip_frames += 1,
            Some(o) => {
                add(&mut acc.flows, o, f.len);
                if let Some(i) = &f.inner {
                    add(&mut acc.inner_flows, i, f.len);
                }
            }
        }
    }
    acc
}
