//! The tshark oracle's flow accounting (`shared/tools/ORACLE.md`, `tshark_oracle.py`) as data:
//! its flow key, per-direction counts, reading the oracle JSON's `flows` and
//! `tunnel_inner_flows`, and diffing two accountings.
//!
//! The oracle keys a flow on the outermost IP header and the transport header right after it,
//! as `proto|ipA|portA|ipB|portB`: ports only for TCP/UDP/UDP-Lite/SCTP/DCCP ([`PORT_PROTOS`]),
//! `-` otherwise (ICMP is keyed by address pair); A and B ordered by (IP version, address
//! bytes, port), a missing port sorting first. Neither the interface nor VLANs are in the key.
//! Non-first fragments take the ports of the first fragment with the same (src, dst, proto, id)
//! anywhere in the file, else they count to a port-less key. `tunnel_inner_flows` use the same
//! accounting keyed on the innermost tunnelled (not ICMP-quoted) IP header.
//!
//! ```
//! use netmon_testkit::oracle::{Counts, OracleKey};
//! let ip = |s: &str| s.parse().unwrap();
//! let (k, swapped) = OracleKey::canon(Some(6), (ip("10.0.0.9"), Some(80)), (ip("10.0.0.2"), Some(5)));
//! assert!(swapped, "10.0.0.9 sorts after 10.0.0.2: the sender is B");
//! assert_eq!(k.to_string(), "6|10.0.0.2|5|10.0.0.9|80");
//! let mut c = Counts::default();
//! c.add(swapped, 1, 60);
//! assert_eq!(c.b_to_a, (1, 60));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::{Timestamp, parse_epoch};

/// IP protocols whose flows carry ports (ORACLE.md: TCP, UDP, UDP-Lite, SCTP, DCCP).
pub const PORT_PROTOS: [u8; 5] = [6, 17, 136, 132, 33];

/// One end of an oracle key: address and port (`None` for protocols without ports and for
/// fragments whose first fragment is missing).
pub type End = (IpAddr, Option<u16>);

/// A flow key in the oracle's form `proto|ipA|portA|ipB|portB`, A ≤ B in (IP version, address
/// bytes, port) order. `proto` is `None` (`-`) when an IPv6 extension chain was not walked to
/// its end.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OracleKey {
    /// IP protocol number.
    pub proto: Option<u8>,
    /// The lower endpoint.
    pub a: End,
    /// The higher endpoint.
    pub b: End,
}

impl fmt::Display for OracleKey {
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

impl OracleKey {
    /// Parses the oracle's key string (addresses are compared as addresses, not text).
    pub fn parse(s: &str) -> Option<OracleKey> {
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
        Some(OracleKey { proto, a, b })
    }

    /// Orders the two endpoints of a packet from `src` to `dst`; returns the key and whether
    /// `src` became B (the packet goes b→a).
    pub fn canon(proto: Option<u8>, src: End, dst: End) -> (OracleKey, bool) {
        let sort = |e: &End| {
            let (ver, bytes) = match e.0 {
                IpAddr::V4(v) => (4, v.octets().to_vec()),
                IpAddr::V6(v) => (6, v.octets().to_vec()),
            };
            (ver, bytes, e.1.map_or(-1, i32::from))
        };
        if sort(&src) <= sort(&dst) {
            (
                OracleKey {
                    proto,
                    a: src,
                    b: dst,
                },
                false,
            )
        } else {
            (
                OracleKey {
                    proto,
                    a: dst,
                    b: src,
                },
                true,
            )
        }
    }
}

/// Packets and bytes per direction of an [`OracleKey`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// (packets, bytes) sent by A.
    pub a_to_b: (u64, u64),
    /// (packets, bytes) sent by B.
    pub b_to_a: (u64, u64),
}

impl Counts {
    /// Adds `packets` and `bytes` to a→b, or to b→a when `b_to_a` (the `swapped` of
    /// [`OracleKey::canon`]).
    pub fn add(&mut self, b_to_a: bool, packets: u64, bytes: u64) {
        let d = if b_to_a {
            &mut self.b_to_a
        } else {
            &mut self.a_to_b
        };
        d.0 += packets;
        d.1 += bytes;
    }
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

/// Flows by key.
pub type Flows = BTreeMap<OracleKey, Counts>;

/// Everything the oracle's `summary`, `flows` and `tunnel_inner_flows` say about addresses,
/// ports, protocols and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Frames in the file.
    pub frames: u64,
    /// Frames that are not accounted to a flow (`summary.non_ip_frames`, summed).
    pub non_ip_frames: u64,
    /// Flows keyed on the outermost IP header.
    pub flows: Flows,
    /// Flows keyed on the innermost tunnelled IP header.
    pub inner_flows: Flows,
}

/// Reads one flow list (`flows` or `tunnel_inner_flows`) of the oracle JSON.
pub fn oracle_flows(v: &serde_json::Value, name: &str) -> Result<Flows, String> {
    let mut m = BTreeMap::new();
    for fl in v[name]
        .as_array()
        .ok_or_else(|| format!("oracle: {name} missing"))?
    {
        let key = fl["key"].as_str().ok_or("oracle: flow without key")?;
        let k = OracleKey::parse(key).ok_or_else(|| format!("oracle: bad key {key}"))?;
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
}

/// Reads the oracle JSON's accounting. Errors are the test's (a corrupt oracle).
pub fn oracle_accounting(v: &serde_json::Value) -> Result<Accounting, String> {
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
    Ok(Accounting {
        frames,
        non_ip_frames,
        flows: oracle_flows(v, "flows")?,
        inner_flows: oracle_flows(v, "tunnel_inner_flows")?,
    })
}

/// TCP flag counts of one direction, as the oracle counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlagCounts {
    /// Segments with SYN and without ACK.
    pub syn: u64,
    /// Segments with SYN and ACK.
    pub synack: u64,
    /// Segments with FIN.
    pub fin: u64,
    /// Segments with RST.
    pub rst: u64,
}

/// What the oracle says about a flow beyond its counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details {
    /// Timestamp of the earliest frame.
    pub first: Timestamp,
    /// Timestamp of the latest frame.
    pub last: Timestamp,
    /// TCP flag counts sent by A and by B (all zero for flows without TCP headers).
    pub tcp: [TcpFlagCounts; 2],
    /// VLAN stacks seen (`outer/inner` ids, as tshark lists them); empty without VLANs.
    pub vlans: BTreeSet<String>,
    /// pcapng interface ids seen; empty for formats without interfaces (classic pcap).
    pub interfaces: BTreeSet<u32>,
}

/// Reads the per-flow details of one flow list (`flows` or `tunnel_inner_flows`).
pub fn oracle_details(
    v: &serde_json::Value,
    name: &str,
) -> Result<BTreeMap<OracleKey, Details>, String> {
    let mut m = BTreeMap::new();
    for fl in v[name]
        .as_array()
        .ok_or_else(|| format!("oracle: {name} missing"))?
    {
        let key = fl["key"].as_str().ok_or("oracle: flow without key")?;
        let k = OracleKey::parse(key).ok_or_else(|| format!("oracle: bad key {key}"))?;
        let ts = |f: &str| {
            fl[f]
                .as_str()
                .and_then(parse_epoch)
                .ok_or_else(|| format!("{key}: {f}"))
        };
        let mut tcp = [TcpFlagCounts::default(); 2];
        if let Some(t) = fl.get("tcp_flags") {
            for (dir, c) in ["a_to_b", "b_to_a"].iter().zip(tcp.iter_mut()) {
                let n = |f: &str| t[dir].get(f).map_or(Some(0), serde_json::Value::as_u64);
                *c = TcpFlagCounts {
                    syn: n("syn").ok_or_else(|| format!("{key}: tcp_flags"))?,
                    synack: n("synack").ok_or_else(|| format!("{key}: tcp_flags"))?,
                    fin: n("fin").ok_or_else(|| format!("{key}: tcp_flags"))?,
                    rst: n("rst").ok_or_else(|| format!("{key}: tcp_flags"))?,
                };
            }
        }
        let list = |f: &str| {
            fl.get(f)
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
        };
        let vlans = list("vlan_ids")
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{key}: vlan_ids"))
            })
            .collect::<Result<_, _>>()?;
        let interfaces = list("interfaces")
            .map(|x| {
                x.as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(|| format!("{key}: interfaces"))
            })
            .collect::<Result<_, _>>()?;
        let d = Details {
            first: ts("first_ts")?,
            last: ts("last_ts")?,
            tcp,
            vlans,
            interfaces,
        };
        if m.insert(k, d).is_some() {
            return Err(format!("oracle: duplicate key {key}"));
        }
    }
    Ok(m)
}

/// Differences between two flow maps, each named `<what> <key>` so that an exception can list
/// it, with a message saying both sides (`who` names the side under test).
pub fn diff_flows(who: &str, what: &str, ours: &Flows, oracle: &Flows) -> Vec<(String, String)> {
    let show = |c: Option<&Counts>| c.map_or("absent".to_owned(), Counts::to_string);
    ours.keys()
        .chain(oracle.keys().filter(|k| !ours.contains_key(k)))
        .filter_map(|k| {
            let (x, y) = (ours.get(k), oracle.get(k));
            (x != y).then(|| {
                (
                    format!("{what} {k}"),
                    format!("{who} {}, oracle {}", show(x), show(y)),
                )
            })
        })
        .collect()
}

/// Every difference between two accountings, named so that an exception can list it:
/// `frames`, `non-ip`, `flow <key>` or `inner <key>`. `who` names the side under test in the
/// messages.
pub fn diff_accounting(who: &str, ours: &Accounting, oracle: &Accounting) -> Vec<(String, String)> {
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
    out.extend(diff_flows(who, "flow", &ours.flows, &oracle.flows));
    out.extend(diff_flows(
        who,
        "inner",
        &ours.inner_flows,
        &oracle.inner_flows,
    ));
    out
}

/// Whether `item` is a well-formed difference name of [`diff_accounting`].
pub fn is_diff_name(item: &str) -> bool {
    item == "frames"
        || item == "non-ip"
        || item
            .strip_prefix("flow ")
            .or_else(|| item.strip_prefix("inner "))
            .is_some_and(|k| OracleKey::parse(k).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_order_and_print_like_the_oracle() {
        // IPv4 sorts before IPv6; then address bytes; then port (none first).
        let (k, swapped) =
            OracleKey::canon(Some(17), (ip("::1"), Some(1)), (ip("9.9.9.9"), Some(2)));
        assert!(swapped);
        assert_eq!(k.to_string(), "17|9.9.9.9|2|::1|1");
        let (k, swapped) = OracleKey::canon(
            Some(6),
            (ip("10.0.0.2"), Some(80)),
            (ip("10.0.0.10"), Some(5)),
        );
        assert!(!swapped, "bytes, not text: 10.0.0.2 < 10.0.0.10");
        assert_eq!(k.to_string(), "6|10.0.0.2|80|10.0.0.10|5");
        let (_, swapped) =
            OracleKey::canon(Some(6), (ip("1.1.1.1"), Some(9)), (ip("1.1.1.1"), Some(8)));
        assert!(swapped);
        let (_, swapped) =
            OracleKey::canon(Some(6), (ip("1.1.1.1"), Some(0)), (ip("1.1.1.1"), None));
        assert!(swapped, "a missing port sorts before port 0");
        let (k, _) = OracleKey::canon(Some(1), (ip("1.1.1.1"), None), (ip("1.1.1.1"), None));
        assert_eq!(k.to_string(), "1|1.1.1.1|-|1.1.1.1|-");
        for s in [
            "17|9.9.9.9|2|::1|1",
            "-|fe80::1|-|ff02::2|-",
            "58|::ffff:1.2.3.4|-|::1|-",
        ] {
            assert_eq!(OracleKey::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            OracleKey::parse("6|2001:0:4137:9e50:8000:f12a:b9c8:2815|1|::1|2"),
            OracleKey::parse("6|2001:0:4137:9e50:8000:f12a:b9c8:2815|1|0::1|2")
        );
        for bad in [
            "",
            "6|1.1.1.1|1|2.2.2.2",
            "6|1.1.1.1|x|2.2.2.2|2",
            "6|a|1|2.2.2.2|2|7",
            "300|1.1.1.1|1|2.2.2.2|2",
        ] {
            assert_eq!(OracleKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_and_diffs_oracle_json() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"summary": {"frames": 5, "non_ip_frames": {"arp": 1}},
                "flows": [{"key": "17|10.0.0.1|53|10.0.0.2|4000",
                           "a_to_b": {"packets": 1, "bytes": 80},
                           "b_to_a": {"packets": 2, "bytes": 150}}],
                "tunnel_inner_flows": []}"#,
        )
        .unwrap();
        let o = oracle_accounting(&v).unwrap();
        assert_eq!((o.frames, o.non_ip_frames, o.flows.len()), (5, 1, 1));
        let mut ours = o.clone();
        assert!(diff_accounting("netmon", &ours, &o).is_empty());
        let k = OracleKey::parse("17|10.0.0.1|53|10.0.0.2|4000").unwrap();
        ours.flows.get_mut(&k).unwrap().add(false, 1, 1);
        let extra = OracleKey::parse("1|10.0.0.1|-|10.0.0.2|-").unwrap();
        ours.inner_flows.insert(extra, Counts::default());
        ours.frames = 6;
        let d = diff_accounting("netmon", &ours, &o);
        let names: Vec<&str> = d.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "frames",
                "flow 17|10.0.0.1|53|10.0.0.2|4000",
                "inner 1|10.0.0.1|-|10.0.0.2|-"
            ]
        );
        assert!(d[1].1.contains("netmon a→b 2p/81B"), "{}", d[1].1);
        assert!(d[2].1.ends_with("oracle absent"), "{}", d[2].1);
        assert!(names.iter().all(|n| is_diff_name(n)));
        assert!(!is_diff_name("flow 6|x"));

        let dup: serde_json::Value = serde_json::from_str(
            r#"{"flows": [{"key": "1|1.1.1.1|-|2.2.2.2|-", "a_to_b": {"packets": 1, "bytes": 1}, "b_to_a": {"packets": 0, "bytes": 0}},
                          {"key": "1|1.1.1.1|-|2.2.2.2|-", "a_to_b": {"packets": 1, "bytes": 1}, "b_to_a": {"packets": 0, "bytes": 0}}]}"#,
        )
        .unwrap();
        assert!(
            oracle_flows(&dup, "flows")
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(oracle_flows(&dup, "tunnel_inner_flows").is_err());
    }

    #[test]
    fn reads_flow_details() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"flows": [{"key": "6|10.0.0.1|80|10.0.0.2|4000",
                           "first_ts": "1.5", "last_ts": "2.000000001",
                           "tcp_flags": {"a_to_b": {"synack": 1, "fin": 1}, "b_to_a": {"syn": 1}},
                           "vlan_ids": ["13/10"], "interfaces": [0, 2]},
                          {"key": "1|10.0.0.1|-|10.0.0.2|-", "first_ts": "1.0", "last_ts": "1.0"}]}"#,
        )
        .unwrap();
        let d = oracle_details(&v, "flows").unwrap();
        let tcp = &d[&OracleKey::parse("6|10.0.0.1|80|10.0.0.2|4000").unwrap()];
        assert_eq!(
            (tcp.first, tcp.last),
            (
                Timestamp::from_nanos(1_500_000_000),
                Timestamp::from_nanos(2_000_000_001)
            )
        );
        assert_eq!(
            tcp.tcp,
            [
                TcpFlagCounts {
                    synack: 1,
                    fin: 1,
                    ..TcpFlagCounts::default()
                },
                TcpFlagCounts {
                    syn: 1,
                    ..TcpFlagCounts::default()
                }
            ]
        );
        assert_eq!(tcp.vlans.iter().collect::<Vec<_>>(), ["13/10"]);
        assert_eq!(tcp.interfaces.iter().collect::<Vec<_>>(), [&0, &2]);
        let icmp = &d[&OracleKey::parse("1|10.0.0.1|-|10.0.0.2|-").unwrap()];
        assert!(icmp.vlans.is_empty() && icmp.interfaces.is_empty());
        assert_eq!(icmp.tcp, [TcpFlagCounts::default(); 2]);
        let bad: serde_json::Value = serde_json::from_str(
            r#"{"flows": [{"key": "1|1.1.1.1|-|2.2.2.2|-", "first_ts": "x", "last_ts": "1.0"}]}"#,
        )
        .unwrap();
        assert!(
            oracle_details(&bad, "flows")
                .unwrap_err()
                .contains("first_ts")
        );
    }
}
