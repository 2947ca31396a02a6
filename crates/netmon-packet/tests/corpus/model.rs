//! The per-frame summary both sides (netmon and tshark) are reduced to, and the oracle's flow
//! accounting (`/work/shared/tools/ORACLE.md`, `tshark_oracle.py`) over such summaries.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

/// IP protocols whose flows carry ports (ORACLE.md: TCP, UDP, UDP-Lite, SCTP, DCCP).
pub(crate) const PORT_PROTOS: [u8; 5] = [6, 17, 136, 132, 33];

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

/// A flow key `proto|ipA|portA|ipB|portB`, A ≤ B in (IP version, address bytes, port) order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct FlowKey {
    pub(crate) proto: Option<u8>,
    pub(crate) a: (IpAddr, Option<u16>),
    pub(crate) b: (IpAddr, Option<u16>),
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |f: &mut fmt::Formatter<'_>, v: Option<u16>| match v {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("-"),
        };
        match self.proto {
            Some(p) => write!(f, "{p}|")?,
            None => f.write_str("-|")?,
        }
        write!(f, "{}|", self.a.0)?;
        opt(f, self.a.1)?;
        write!(f, "|{}|", self.b.0)?;
        opt(f, self.b.1)
    }
}

impl FlowKey {
    /// Parses the oracle's key string (addresses are compared as addresses, not text).
    pub(crate) fn parse(s: &str) -> Option<FlowKey> {
        let mut it = s.split('|');
        let proto = match it.next()? {
            "-" => None,
            p => Some(p.parse().ok()?),
        };
        let port = |p: &str| -> Option<Option<u16>> {
            match p {
                "-" => Some(None),
                p => p.parse().ok().map(Some),
            }
        };
        let a = (it.next()?.parse().ok()?, port(it.next()?)?);
        let b = (it.next()?.parse().ok()?, port(it.next()?)?);
        if it.next().is_some() {
            return None;
        }
        Some(FlowKey { proto, a, b })
    }

    /// Orders the two endpoints; returns the key and whether `src` became B (direction b→a).
    pub(crate) fn canon(
        proto: Option<u8>,
        src: (IpAddr, Option<u16>),
        dst: (IpAddr, Option<u16>),
    ) -> (FlowKey, bool) {
        let sort = |e: &(IpAddr, Option<u16>)| {
            let (ver, bytes) = match e.0 {
                IpAddr::V4(v) => (4, v.octets().to_vec()),
                IpAddr::V6(v) => (6, v.octets().to_vec()),
            };
            (ver, bytes, e.1.map_or(-1, i32::from))
        };
        if sort(&src) <= sort(&dst) {
            (
                FlowKey {
                    proto,
                    a: src,
                    b: dst,
                },
                false,
            )
        } else {
            (
                FlowKey {
                    proto,
                    a: dst,
                    b: src,
                },
                true,
            )
        }
    }
}

/// Packets and bytes per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) a_to_b: (u64, u64),
    pub(crate) b_to_a: (u64, u64),
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a→b {}p/{}B, b→a {}p/{}B",
            self.a_to_b.0, self.a_to_b.1, self.b_to_a.0, self.b_to_a.1
        )
    }
}

/// Everything the oracle's `summary`, `flows` and `tunnel_inner_flows` say about addresses,
/// ports, protocols and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accounting {
    pub(crate) frames: u64,
    pub(crate) non_ip_frames: u64,
    pub(crate) flows: BTreeMap<FlowKey, Counts>,
    pub(crate) inner_flows: BTreeMap<FlowKey, Counts>,
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
        FlowKey::canon(
            l.proto,
            (l.src, ports.map(|p| p.0)),
            (l.dst, ports.map(|p| p.1)),
        )
    };
    let add = |map: &mut BTreeMap<FlowKey, Counts>, l: &IpLayer, len: u64| {
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

/// Reads the oracle JSON's accounting. Errors are the test's (a corrupt oracle).
pub(crate) fn oracle_accounting(v: &serde_json::Value) -> Result<Accounting, String> {
    let summary = &v["summary"];
    let frames = summary["frames"]
        .as_u64()
        .ok_or("oracle: summary.frames missing")?;
    let non_ip_frames = summary["non_ip_frames"]
        .as_object()
        .ok_or("oracle: summary.non_ip_frames missing")?
        .values()
        .map(|n| n.as_u64().ok_or("oracle: non_ip_frames value"))
        .sum::<Result<u64, _>>()?;
    let flows = |name: &str| -> Result<BTreeMap<FlowKey, Counts>, String> {
        let mut m = BTreeMap::new();
        for fl in v[name]
            .as_array()
            .ok_or_else(|| format!("oracle: {name} missing"))?
        {
            let key = fl["key"].as_str().ok_or("oracle: flow without key")?;
            let k = FlowKey::parse(key).ok_or_else(|| format!("oracle: bad key {key}"))?;
            let dir = |d: &str| -> Result<(u64, u64), String> {
                Ok((
                    fl[d]["packets"]
                        .as_u64()
                        .ok_or_else(|| format!("{key}: {d}.packets"))?,
                    fl[d]["bytes"]
                        .as_u64()
                        .ok_or_else(|| format!("{key}: {d}.bytes"))?,
                ))
            };
            let c = Counts {
                a_to_b: dir("a_to_b")?,
                b_to_a: dir("b_to_a")?,
            };
            if m.insert(k, c).is_some() {
                return Err(format!("oracle: duplicate key {key}"));
            }
        }
        Ok(m)
    };
    Ok(Accounting {
        frames,
        non_ip_frames,
        flows: flows("flows")?,
        inner_flows: flows("tunnel_inner_flows")?,
    })
}

/// One aggregate difference, named so that an exception can list it: `frames`, `non-ip`,
/// `flow <key>` or `inner <key>`.
/// `who` names the side under test in the messages.
pub(crate) fn diff_accounting(
    who: &str,
    ours: &Accounting,
    oracle: &Accounting,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if ours.frames != oracle.frames {
        out.push((
            "frames".to_owned(),
            format!("{who} {} frames, oracle {}", ours.frames, oracle.frames),
        ));
    }
    if ours.non_ip_frames != oracle.non_ip_frames {
        out.push((
            "non-ip".to_owned(),
            format!(
                "{who} {} non-IP frames, oracle {}",
                ours.non_ip_frames, oracle.non_ip_frames
            ),
        ));
    }
    for (what, a, b) in [
        ("flow", &ours.flows, &oracle.flows),
        ("inner", &ours.inner_flows, &oracle.inner_flows),
    ] {
        for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(k))) {
            let (x, y) = (a.get(k), b.get(k));
            if x != y {
                let show = |c: Option<&Counts>| c.map_or("absent".to_owned(), Counts::to_string);
                out.push((
                    format!("{what} {k}"),
                    format!("{who} {}, oracle {}", show(x), show(y)),
                ));
            }
        }
    }
    out
}
