//! Runs tshark over a capture (IP defragmentation and TCP reassembly off, as the oracle's
//! pass A) and reduces every frame to a [`Frame`] the way `tshark_oracle.py` does: walk the
//! `frame.protocols` tokens and give the k-th `ip` token the k-th `ip.src` value, the k-th
//! `udp` token the k-th `udp.srcport` value, and so on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use super::model::{Frag, Frame, IpLayer, L4_NAMES};

/// Field separator and occurrence aggregator: never present in the values we ask for.
pub(crate) const SEP: char = '\x1e';
pub(crate) const AGG: char = '\x1f';

pub(crate) const FIELDS: &[&str] = &[
    "frame.number",
    "frame.len",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.id",
    "ip.flags.mf",
    "ip.frag_offset",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.fraghdr.ident",
    "ipv6.fraghdr.offset",
    "ipv6.fraghdr.more",
    "ipv6.fraghdr.nxt",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "sctp.srcport",
    "sctp.dstport",
    "dccp.srcport",
    "dccp.dstport",
];

const PREFS: &[&str] = &[
    "ip.defragment:FALSE",
    "ipv6.defragment:FALSE",
    "tcp.desegment_tcp_streams:FALSE",
    "tcp.analyze_sequence_numbers:FALSE",
];

/// `frame.protocols` tokens that are IP protocols (tshark_oracle.py's NAME2NUM).
const NAME2NUM: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("dccp", 33),
    ("ipv6", 41),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("eigrp", 88),
    ("ospf", 89),
    ("etherip", 97),
    ("pim", 103),
    ("ipcomp", 108),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
    ("udplite", 136),
    ("mipv6", 135),
];
const PORT_TOKENS: &[&str] = &["tcp", "udp", "sctp", "udplite", "dccp"];
const IPV6_EXT_TOKENS: &[&str] = &[
    "ipv6.hopopts",
    "ipv6.routing",
    "ipv6.fraghdr",
    "ipv6.dstopts",
    "ipv6.shim6",
    "ah",
];
const IPV6_EXT_NUMS: &[i64] = &[0, 43, 44, 60, 51, 135, 139, 140];
/// Link-layer tokens skipped when naming a non-IP frame (tshark_oracle.py's LINK_TOKENS).
const LINK_TOKENS: &[&str] = &[
    "frame",
    "eth",
    "ethertype",
    "vlan",
    "ieee8021ad",
    "sll",
    "llc",
    "null",
    "loop",
    "raw",
    "ppp",
    "pppoes",
    "pppoed",
    "mpls",
    "vntag",
    "fddi",
    "wlan",
    "wlan_radio",
    "radiotap",
    "ppi",
    "nflog",
    "pktap",
    "juniper",
    "chdlc",
    "fr",
    "slip",
    "atm",
    "lapd",
    "sll2",
    "ipnet",
    "erf",
    "cisco-wids",
    "pbb",
    "fabricpath",
    "mac-lte",
    "wpan",
    "eth_trailer",
    "vxlan",
    "geneve",
    "nsh",
    "brcm",
    "dsa",
    "edsa",
    "macsec",
    "llc.snap",
    "pw",
    "pwethheuristic",
    "vssmonitoring",
    "ieee802a",
    "trailer",
    "data",
];

/// The tshark to run: `$TSHARK`, else `tshark` on `PATH`; `None` if it does not run.
pub(crate) fn find() -> Option<String> {
    netmon_testkit::tshark()
}

/// Python's `int(s, 0)` with the decimal fallback the oracle uses.
fn to_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    s.parse().ok()
}

fn truthy(s: Option<&str>) -> bool {
    matches!(s, Some("1" | "True" | "true"))
}

/// Successive occurrences of multi-valued fields.
struct Take<'r> {
    row: &'r HashMap<&'static str, Vec<&'r str>>,
    pos: HashMap<&'static str, usize>,
}

impl<'r> Take<'r> {
    fn next(&mut self, field: &'static str) -> Option<&'r str> {
        let i = self.pos.entry(field).or_insert(0);
        let v = self.row.get(field).and_then(|v| v.get(*i)).copied();
        *i += 1;
        v
    }
}

/// One IP layer of tshark_oracle.py's `parse_layers`.
#[derive(Debug)]
struct TLayer<'r> {
    v6: bool,
    src: Option<&'r str>,
    dst: Option<&'r str>,
    proto: Option<i64>,
    /// `None`: no transport token yet; `Some("?")`: a non-IP-protocol token came first.
    l4: Option<&'r str>,
    sport: Option<i64>,
    dport: Option<i64>,
    quoted: bool,
    /// (id, offset in 8-byte units, more)
    frag: Option<(Option<i64>, i64, bool)>,
}

fn parse_layers<'r>(
    tokens: &[&'r str],
    row: &'r HashMap<&'static str, Vec<&'r str>>,
) -> Vec<TLayer<'r>> {
    let mut t = Take {
        row,
        pos: HashMap::new(),
    };
    let mut layers: Vec<TLayer<'r>> = Vec::new();
    let mut in_icmp = false;
    for &tok in tokens {
        if tok == "ip" || tok == "ipv6" {
            let layer = if tok == "ip" {
                let (src, dst) = (t.next("ip.src"), t.next("ip.dst"));
                let proto = t.next("ip.proto").and_then(to_int);
                let id = t.next("ip.id").and_then(to_int);
                let more = truthy(t.next("ip.flags.mf"));
                let off = t.next("ip.frag_offset").and_then(to_int).unwrap_or(0);
                TLayer {
                    v6: false,
                    src,
                    dst,
                    proto,
                    l4: None,
                    sport: None,
                    dport: None,
                    quoted: in_icmp,
                    frag: (more || off != 0).then_some((id, off, more)),
                }
            } else {
                let (src, dst) = (t.next("ipv6.src"), t.next("ipv6.dst"));
                let proto = t
                    .next("ipv6.nxt")
                    .and_then(to_int)
                    .filter(|p| !IPV6_EXT_NUMS.contains(p));
                TLayer {
                    v6: true,
                    src,
                    dst,
                    proto,
                    l4: None,
                    sport: None,
                    dport: None,
                    quoted: in_icmp,
                    frag: None,
                }
            };
            layers.push(layer);
            continue;
        }
        let Some(cur) = layers.last_mut() else {
            continue;
        };
        if tok == "ipv6.fraghdr" && cur.v6 {
            let ident = t.next("ipv6.fraghdr.ident").and_then(to_int);
            let off = t.next("ipv6.fraghdr.offset").and_then(to_int).unwrap_or(0);
            let more = truthy(t.next("ipv6.fraghdr.more"));
            let nxt = t.next("ipv6.fraghdr.nxt").and_then(to_int);
            cur.frag = (more || off != 0).then_some((ident, off, more));
            if let Some(n) = nxt.filter(|n| !IPV6_EXT_NUMS.contains(n)) {
                cur.proto = Some(n);
            }
            continue;
        }
        if IPV6_EXT_TOKENS.contains(&tok) && cur.l4.is_none() {
            continue;
        }
        if cur.l4.is_none() {
            match NAME2NUM.iter().find(|(n, _)| *n == tok) {
                Some(&(name, num)) if name != "ip" && name != "ipv6" => {
                    cur.l4 = Some(name);
                    cur.proto = Some(i64::from(num));
                    if PORT_TOKENS.contains(&name) {
                        let (s, d) = match name {
                            "tcp" => ("tcp.srcport", "tcp.dstport"),
                            "udp" | "udplite" => ("udp.srcport", "udp.dstport"),
                            "sctp" => ("sctp.srcport", "sctp.dstport"),
                            _ => ("dccp.srcport", "dccp.dstport"),
                        };
                        cur.sport = t.next(s).and_then(to_int);
                        cur.dport = t.next(d).and_then(to_int);
                    } else if name == "icmp" || name == "icmpv6" {
                        in_icmp = true;
                    }
                }
                _ => cur.l4 = Some("?"),
            }
            continue;
        }
        if tok == "icmp" || tok == "icmpv6" {
            in_icmp = true;
        }
    }
    layers
}

fn ip_layer(l: &TLayer<'_>) -> Option<IpLayer> {
    let src: IpAddr = l.src?.parse().ok()?;
    let dst: IpAddr = l.dst?.parse().ok()?;
    let ports = match (l.l4, l.sport, l.dport) {
        (Some(n), Some(s), Some(d)) if PORT_TOKENS.contains(&n) => {
            Some((u16::try_from(s).ok()?, u16::try_from(d).ok()?))
        }
        _ => None,
    };
    Some(IpLayer {
        src,
        dst,
        proto: l.proto.and_then(|p| u8::try_from(p).ok()),
        ports,
        l4: l
            .l4
            .and_then(|n| L4_NAMES.iter().find(|k| **k == n).copied()),
        frag: l.frag.map(|(id, off, more)| Frag {
            id: id.and_then(|i| u32::try_from(i).ok()).unwrap_or(u32::MAX),
            offset: u32::try_from(off.saturating_mul(8)).unwrap_or(u32::MAX),
            more,
        }),
    })
}

/// Runs tshark over `path` and reduces its frames.
pub(crate) fn read(exe: &str, path: &Path) -> Result<Vec<Frame>, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("-n")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "header=n", "-E", "quote=n", "-E"])
        .arg(format!("separator={SEP}"))
        .arg("-E")
        .arg(format!("aggregator={AGG}"))
        .args(["-E", "occurrence=a"]);
    for p in PREFS {
        cmd.args(["-o", p]);
    }
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{exe} {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{exe} {}: {}: {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_output(&String::from_utf8_lossy(&out.stdout))
}

/// Reduces tshark's `-T fields` output (fields [`FIELDS`], separator [`SEP`], aggregator
/// [`AGG`]) to frames.
pub(crate) fn parse_output(text: &str) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let mut row: HashMap<&'static str, Vec<&str>> = HashMap::new();
        for (f, v) in FIELDS.iter().zip(line.split(SEP)) {
            if !v.is_empty() {
                row.insert(f, v.split(AGG).collect());
            }
        }
        let first = |f: &str| row.get(f).and_then(|v| v.first()).copied();
        let number = first("frame.number")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("tshark line without frame.number: {line:?}"))?;
        let len = first("frame.len")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("frame {number}: no frame.len"))?;
        let tokens: Vec<&str> = first("frame.protocols")
            .unwrap_or("")
            .split(':')
            .filter(|t| !t.is_empty())
            .collect();
        let layers = parse_layers(&tokens, &row);
        let real: Vec<&TLayer<'_>> = layers.iter().filter(|l| !l.quoted).collect();
        let outer = real.first().and_then(|l| ip_layer(l));
        let inner = if outer.is_some() && real.len() > 1 {
            real.last().and_then(|l| ip_layer(l))
        } else {
            None
        };
        let non_ip = outer.is_none().then(|| {
            tokens
                .iter()
                .find(|t| !LINK_TOKENS.contains(t))
                .or(tokens.last())
                .map_or("undissected", |t| t)
                .to_owned()
        });
        frames.push(Frame {
            number,
            len,
            outer,
            inner,
            non_ip,
        });
    }
    Ok(frames)
}
