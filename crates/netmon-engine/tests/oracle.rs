//! netmon's flows against the tshark oracle, over every capture of the shared corpus.
//!
//! The real pipeline runs (`open_file` → [`Engine::run`] with the default configuration) and
//! every ended flow record is summed per key **in the oracle's form** (`shared/tools/ORACLE.md`,
//! [`netmon_testkit::oracle`]):
//!
//! * the key is `proto|ipA|portA|ipB|portB`, endpoints ordered by (IP version, address bytes,
//!   port); netmon's interface and VLAN stack are dropped (the oracle's key has neither), so
//!   netmon flows that differ only there are summed;
//! * ports only for TCP, UDP, UDP-Lite, SCTP and DCCP. netmon keys ICMP echo by its identifier;
//!   the oracle keys all ICMP by address pair, so the identifier is dropped. A netmon flow without
//!   ports (fragments whose first fragment never came) is a port-less key, as in the oracle;
//! * netmon's records are summed over time: the oracle has no timeouts and no new flow on a
//!   reused 5-tuple, netmon's idle timeouts and port reuse split records that this test adds up;
//! * initiator → responder counters are mapped to a→b / b→a by the key order, not by who
//!   initiated;
//! * records without `outer` are compared with the oracle's `flows`; records with `outer`
//!   (flows inside a tunnel) with its `tunnel_inner_flows`, which are keyed on the
//!   **innermost** tunnelled IP header. netmon tracks every level down to
//!   `FlowConfig::tunnel_depth` (default 2), each with `outer` = the key of the level that
//!   carried it; a tunnel-inner record that itself carries another level (its key is some
//!   record's `outer`) is an intermediate level and is left out. Tunnels nested deeper than
//!   `tunnel_depth` are counted by netmon at the deepest tracked level, by the oracle at the
//!   innermost one: such a file would need an exception (the corpus has none;
//!   [`nested_tunnels_count_at_the_innermost_tracked_level`] pins the behaviour).
//!
//! Per key, both sides must also agree on the first and last timestamps (exact to the
//! nanosecond), the TCP SYN (SYN-ACK included), FIN and RST segments per direction, the VLAN
//! stacks and the capture interfaces seen. Who initiated is **not** compared: the oracle's
//! initiator is the sender of the earliest frame, netmon's follows SYN / SYN-ACK and a port
//! heuristic (docs/flows.md). Frame counts (`frames`) and frames outside any flow (`non-ip`)
//! are compared too.
//!
//! Every difference must be listed in [`EXCEPTIONS`] with the reason; an exception that no longer
//! occurs fails the test, so the table stays true. The corpus is found by
//! [`netmon_testkit::corpus`] (`NETMON_CORPUS`, `NETMON_SKIP_CORPUS=1`).

mod support;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use netmon_capture::{LinkType, PacketMeta, Timestamp};
use netmon_engine::{Engine, EngineConfig, FlowRecord};
use netmon_flow::{EndReason, FlowKey};
use netmon_testkit::oracle::{self, Counts, Details, Flows, OracleKey};
use netmon_testkit::{file_name, par_map};
use support::{Collect, Level, levels, oracle_key, run_engine};

/// What differs about one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Field {
    /// A count (`frames`, `non-ip`).
    Count,
    /// The key exists on netmon's side only.
    OnlyNetmon,
    /// The key exists on the oracle's side only.
    OnlyOracle,
    /// Packets sent by A (the lower endpoint in oracle order).
    AbPackets,
    /// Bytes sent by A.
    AbBytes,
    /// Packets sent by B.
    BaPackets,
    /// Bytes sent by B.
    BaBytes,
    /// Earliest frame's timestamp.
    FirstSeen,
    /// Latest frame's timestamp.
    LastSeen,
    /// TCP SYN (including SYN-ACK), FIN and RST counts sent by A.
    AbTcpFlags,
    /// The same sent by B.
    BaTcpFlags,
    /// VLAN stacks seen.
    Vlans,
    /// Capture interfaces seen.
    Ifaces,
}

/// A known, legitimate difference between netmon and the oracle.
struct Exception {
    /// Capture file name.
    file: &'static str,
    /// `frames`, `non-ip`, `read-error`, `flow <oracle key>` or `inner <oracle key>` (keys as
    /// printed here).
    item: &'static str,
    /// What differs.
    fields: &'static [Field],
    /// Why, and why netmon keeps its behaviour.
    why: &'static str,
}

/// Malformed IPv6 packets whose extension header chain is cut inside a header: tshark (and the
/// oracle) give the flow no protocol (`-`); netmon's flow key needs a protocol number and uses
/// the extension header where the walk stopped (`Ipv6::protocol` documents this), here the
/// Fragment header (44). Same frames, same bytes, one key each side.
const IPV6_CUT_CHAIN_44: &str = "IPv6 extension chain cut inside the Fragment header (fuzzer \
     file): the oracle keys the packet with protocol '-', netmon with 44, the header where the \
     chain broke";
/// As [`IPV6_CUT_CHAIN_44`], the chain cut inside a Routing header (43).
const IPV6_CUT_CHAIN_43: &str = "IPv6 extension chain cut inside the Routing header (fuzzer \
     file): the oracle keys the packet with protocol '-', netmon with 43, the header where the \
     chain broke";

/// Every difference between netmon's flows and the oracle's on the corpus, with the reason.
/// Each (file, item, field) listed must still differ.
const EXCEPTIONS: &[Exception] = &[
    Exception {
        file: "tcpdump_ip6_frag_asan.pcap",
        item: "flow -|452:22:19:0:41a:e4ff:10ff:484d|-|2243:80:1400:100:19:ffff:ffff:fffb|-",
        fields: &[Field::OnlyOracle],
        why: IPV6_CUT_CHAIN_44,
    },
    Exception {
        file: "tcpdump_ip6_frag_asan.pcap",
        item: "flow 44|452:22:19:0:41a:e4ff:10ff:484d|-|2243:80:1400:100:19:ffff:ffff:fffb|-",
        fields: &[Field::OnlyNetmon],
        why: IPV6_CUT_CHAIN_44,
    },
    Exception {
        file: "tcpdump_ipv6-next-header-oobr-1.pcap",
        item: "flow -|3030:3030:3030:3030:3030:3030:3030:3030|-|3030:3030:3030:3030:3030:3030:3030:3030|-",
        fields: &[Field::OnlyOracle],
        why: IPV6_CUT_CHAIN_43,
    },
    Exception {
        file: "tcpdump_ipv6-next-header-oobr-1.pcap",
        item: "flow 43|3030:3030:3030:3030:3030:3030:3030:3030|-|3030:3030:3030:3030:3030:3030:3030:3030|-",
        fields: &[Field::OnlyNetmon],
        why: IPV6_CUT_CHAIN_43,
    },
    Exception {
        file: "tcpdump_ipv6-rthdr-oobr.pcap",
        item: "flow -|3030:3030:3030:3030:3030:3030:3030:3030|-|3030:3030:3030:3030:3030:3030:3030:3030|-",
        fields: &[Field::OnlyOracle],
        why: IPV6_CUT_CHAIN_43,
    },
    Exception {
        file: "tcpdump_ipv6-rthdr-oobr.pcap",
        item: "flow 43|3030:3030:3030:3030:3030:3030:3030:3030|-|3030:3030:3030:3030:3030:3030:3030:3030|-",
        fields: &[Field::OnlyNetmon],
        why: IPV6_CUT_CHAIN_43,
    },
    Exception {
        file: "tcpdump_ipv6_frag6_negative_len.pcap",
        item: "flow -|7fff:ffff:c3b2:a102:1305:80:38:2949|-|9675:86dd:7300:2c:1c7f:ffff:ffc3:b2a1|-",
        fields: &[Field::OnlyOracle],
        why: IPV6_CUT_CHAIN_44,
    },
    Exception {
        file: "tcpdump_ipv6_frag6_negative_len.pcap",
        item: "flow 44|7fff:ffff:c3b2:a102:1305:80:38:2949|-|9675:86dd:7300:2c:1c7f:ffff:ffc3:b2a1|-",
        fields: &[Field::OnlyNetmon],
        why: IPV6_CUT_CHAIN_44,
    },
];

// ------------------------------------------------------------------------------ netmon's side

/// netmon's records of one oracle key, summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Summed {
    counts: Counts,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    /// TCP (SYN including SYN-ACK, FIN, RST) segments sent by A and by B.
    tcp: [(u64, u64, u64); 2],
    /// VLAN stacks, `outer/inner` like the oracle.
    vlans: BTreeSet<String>,
    ifaces: BTreeSet<u32>,
}

type Summary = BTreeMap<OracleKey, Summed>;

fn add(map: &mut Summary, r: &FlowRecord) {
    let (k, init_is_b) = oracle_key(r);
    let s = map.entry(k).or_default();
    s.counts.add(init_is_b, r.packets_c2s, r.bytes_c2s);
    s.counts.add(!init_is_b, r.packets_s2c, r.bytes_s2c);
    s.first = Some(s.first.map_or(r.first_seen.0, |t| t.min(r.first_seen.0)));
    s.last = Some(s.last.map_or(r.last_seen.0, |t| t.max(r.last_seen.0)));
    let (init, resp) = if init_is_b { (1, 0) } else { (0, 1) };
    for (i, t) in [(init, &r.tcp_c2s), (resp, &r.tcp_s2c)] {
        if let (Some(t), Some(d)) = (t, s.tcp.get_mut(i)) {
            d.0 += u64::from(t.syn);
            d.1 += u64::from(t.fin);
            d.2 += u64::from(t.rst);
        }
    }
    if !r.vlan.is_empty() {
        let v: Vec<String> = r.vlan.iter().map(u16::to_string).collect();
        s.vlans.insert(v.join("/"));
    }
    s.ifaces.insert(r.iface);
}

/// Sums records per oracle key: (outer flows, innermost tunnel-inner flows).
fn account(records: &[(FlowKey, FlowRecord)]) -> (Summary, Summary) {
    let (mut outer, mut inner) = (Summary::new(), Summary::new());
    for ((_, r), level) in records.iter().zip(levels(records)) {
        match level {
            Level::Outer => add(&mut outer, r),
            Level::Inner => add(&mut inner, r),
            Level::Intermediate => {}
        }
    }
    (outer, inner)
}

// ------------------------------------------------------------------------------ comparison

/// Field-level differences between two flow maps, as ((item, field), message).
fn diff_flows(
    what: &str,
    ours: &Summary,
    theirs: &Flows,
    details: &BTreeMap<OracleKey, Details>,
    out: &mut BTreeMap<(String, Field), String>,
) {
    let show = |c: &Counts| c.to_string();
    for k in ours.keys().chain(theirs.keys()) {
        let item = format!("{what} {k}");
        if let (Some(a), Some(d)) = (ours.get(k), details.get(k)) {
            diff_details(&item, a, d, out);
        }
        match (ours.get(k).map(|s| &s.counts), theirs.get(k)) {
            (Some(a), None) => {
                out.insert(
                    (item, Field::OnlyNetmon),
                    format!("netmon {}, oracle absent", show(a)),
                );
            }
            (None, Some(b)) => {
                out.insert(
                    (item, Field::OnlyOracle),
                    format!("netmon absent, oracle {}", show(b)),
                );
            }
            (Some(a), Some(b)) => {
                for (f, x, y) in [
                    (Field::AbPackets, a.a_to_b.0, b.a_to_b.0),
                    (Field::AbBytes, a.a_to_b.1, b.a_to_b.1),
                    (Field::BaPackets, a.b_to_a.0, b.b_to_a.0),
                    (Field::BaBytes, a.b_to_a.1, b.b_to_a.1),
                ] {
                    if x != y {
                        out.insert(
                            (item.clone(), f),
                            format!(
                                "netmon {x}, oracle {y} (netmon {}, oracle {})",
                                show(a),
                                show(b)
                            ),
                        );
                    }
                }
            }
            (None, None) => {}
        }
    }
}

/// Compares what both sides say about a key beyond the counts.
fn diff_details(
    item: &str,
    ours: &Summed,
    o: &Details,
    out: &mut BTreeMap<(String, Field), String>,
) {
    let mut push = |f: Field, msg: String| {
        out.insert((item.to_owned(), f), msg);
    };
    let t = |t: Option<Timestamp>| t.map_or("none".to_owned(), |t| t.rfc3339().to_string());
    if ours.first != Some(o.first) {
        push(
            Field::FirstSeen,
            format!("netmon {}, oracle {}", t(ours.first), t(Some(o.first))),
        );
    }
    if ours.last != Some(o.last) {
        push(
            Field::LastSeen,
            format!("netmon {}, oracle {}", t(ours.last), t(Some(o.last))),
        );
    }
    for (f, n, c) in [
        (Field::AbTcpFlags, ours.tcp[0], o.tcp[0]),
        (Field::BaTcpFlags, ours.tcp[1], o.tcp[1]),
    ] {
        let theirs = (c.syn + c.synack, c.fin, c.rst);
        if n != theirs {
            push(
                f,
                format!("(syn incl. syn-ack, fin, rst): netmon {n:?}, oracle {theirs:?}"),
            );
        }
    }
    if ours.vlans != o.vlans {
        push(
            Field::Vlans,
            format!("netmon {:?}, oracle {:?}", ours.vlans, o.vlans),
        );
    }
    // The oracle lists interfaces only for formats that have them (pcapng).
    let ifaces = if o.interfaces.is_empty() {
        BTreeSet::from([0])
    } else {
        o.interfaces.clone()
    };
    if ours.ifaces != ifaces {
        push(
            Field::Ifaces,
            format!("netmon {:?}, oracle {:?}", ours.ifaces, ifaces),
        );
    }
}

/// What one capture gives: the differences found, and netmon's records per item (for the
/// failure report).
struct Checked {
    diffs: BTreeMap<(String, Field), String>,
    records: BTreeMap<String, Vec<String>>,
    flows: usize,
    inner: usize,
    /// netmon records (several can sum into one oracle key).
    n_records: usize,
}

fn check(corpus: &netmon_testkit::Corpus, path: &Path) -> Result<Checked, String> {
    let json = corpus.try_oracle(path)?;
    let o = oracle::oracle_accounting(&json)?;
    let details = (
        oracle::oracle_details(&json, "flows")?,
        oracle::oracle_details(&json, "tunnel_inner_flows")?,
    );
    let run = std::panic::catch_unwind(|| run_engine(path))
        .map_err(|_| "PANIC in the pipeline (see the panic message above)".to_owned())??;
    let (flows, inner) = account(&run.flows);
    let mut diffs = BTreeMap::new();
    if let Some(e) = &run.error {
        diffs.insert(
            ("read-error".to_owned(), Field::Count),
            format!("the capture reader stopped: {e}"),
        );
    }
    if run.frames != o.frames {
        diffs.insert(
            ("frames".to_owned(), Field::Count),
            format!("netmon {} frames, oracle {}", run.frames, o.frames),
        );
    }
    if run.non_ip != o.non_ip_frames {
        diffs.insert(
            ("non-ip".to_owned(), Field::Count),
            format!(
                "netmon {} non-IP frames, oracle {}",
                run.non_ip, o.non_ip_frames
            ),
        );
    }
    diff_flows("flow", &flows, &o.flows, &details.0, &mut diffs);
    diff_flows("inner", &inner, &o.inner_flows, &details.1, &mut diffs);
    // netmon's records behind each differing key.
    let mut records: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let wanted: BTreeSet<&str> = diffs.keys().map(|(i, _)| i.as_str()).collect();
    for (_, r) in &run.flows {
        let what = if r.outer.is_some() { "inner" } else { "flow" };
        let item = format!("{what} {}", oracle_key(r).0);
        if wanted.contains(item.as_str()) {
            let mut j = Vec::new();
            r.write_json(&mut j).map_err(|e| e.to_string())?;
            records
                .entry(item)
                .or_default()
                .push(String::from_utf8_lossy(&j).into_owned());
        }
    }
    Ok(Checked {
        diffs,
        records,
        flows: flows.len(),
        inner: inner.len(),
        n_records: run.flows.len(),
    })
}

#[test]
fn flows_match_the_oracle() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let t0 = Instant::now();
    let files = corpus.captures();
    let results = par_map(&files, |p| check(&corpus, p));
    let mut failures = Vec::new();
    let (mut n_flows, mut n_inner, mut n_records, mut listed) = (0, 0, 0, 0);
    for (path, r) in files.iter().zip(results) {
        let name = file_name(path);
        let c = match r {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        n_flows += c.flows;
        n_inner += c.inner;
        n_records += c.n_records;
        let expected: BTreeSet<(String, Field)> = EXCEPTIONS
            .iter()
            .filter(|e| e.file == name)
            .flat_map(|e| e.fields.iter().map(|f| (e.item.to_owned(), *f)))
            .collect();
        listed += expected.len();
        let mut shown = BTreeSet::new();
        for ((item, field), msg) in &c.diffs {
            if expected.contains(&(item.clone(), *field)) {
                continue;
            }
            let mut s = format!("{name}: {item}: {field:?}: {msg}");
            if shown.insert(item.clone()) {
                for rec in c.records.get(item).into_iter().flatten().take(6) {
                    let _ = write!(s, "\n      netmon record {rec}");
                }
            }
            failures.push(s);
        }
        for (item, field) in &expected {
            if !c.diffs.contains_key(&(item.clone(), *field)) {
                failures.push(format!(
                    "{name}: {item}: {field:?}: listed in EXCEPTIONS but netmon and the oracle \
                     now agree: remove it"
                ));
            }
        }
    }
    for e in EXCEPTIONS {
        if !files.iter().any(|f| file_name(f) == e.file) {
            failures.push(format!("EXCEPTIONS names {}, not in the corpus", e.file));
        }
    }
    eprintln!(
        "{} captures: {n_records} netmon records as {n_flows} flows and {n_inner} tunnel-inner \
         flows (oracle keys) compared, {listed} listed exception items, {:.2?}",
        files.len(),
        t0.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} difference(s) between netmon's flows and the oracle (item: field: netmon vs \
         oracle, then netmon's records of that key):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn exceptions_table_is_well_formed() {
    let mut seen = BTreeSet::new();
    for e in EXCEPTIONS {
        assert!(
            e.why.len() > 30,
            "{}: an exception needs a real reason",
            e.file
        );
        assert!(!e.fields.is_empty(), "{} {}: no fields", e.file, e.item);
        assert!(
            oracle::is_diff_name(e.item) || e.item == "read-error",
            "{}: bad item {:?}",
            e.file,
            e.item
        );
        for f in e.fields {
            assert!(
                seen.insert((e.file, e.item, *f)),
                "{} {} {f:?} listed twice",
                e.file,
                e.item
            );
        }
    }
}

// ------------------------------------------------------------------------------ the mapping itself

/// Builds a record the way the flow table would report it (through a real engine run over
/// crafted frames), so the mapping is tested on real records.
fn records_of(frames: &[Vec<u8>]) -> Vec<(FlowKey, FlowRecord)> {
    let mut engine: Engine = Engine::new(EngineConfig::default()).unwrap();
    let mut sink = Collect::default();
    for (i, f) in frames.iter().enumerate() {
        let meta = PacketMeta {
            direction: netmon_capture::Direction::Unknown,
            ts: Timestamp::from_secs_nanos(1_700_000_000 + i as i64, 0),
            iface: 0,
            iface_name: None,
            link_type: LinkType::RAW,
            cap_len: f.len() as u32,
            orig_len: f.len() as u32,
        };
        engine.process(&meta, f, &mut sink);
    }
    engine.finish(EndReason::EndOfCapture, &mut sink);
    sink.flows
}

fn ipv4(src: [u8; 4], dst: [u8; 4]) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    etherparse::PacketBuilder::ipv4(src, dst, 64)
}

#[test]
fn records_map_to_oracle_keys_by_address_order() {
    let mut syn = Vec::new();
    // The initiator (10.0.0.9) is the oracle's B: its packets are b→a.
    ipv4([10, 0, 0, 9], [10, 0, 0, 2])
        .tcp(40000, 443, 1, 1000)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let mut synack = Vec::new();
    ipv4([10, 0, 0, 2], [10, 0, 0, 9])
        .tcp(443, 40000, 7, 1000)
        .syn()
        .ack(2)
        .write(&mut synack, &[])
        .unwrap();
    // Two pings with different identifiers: two netmon flows, one oracle key without ids.
    let ping = |id: u16| {
        let mut v = Vec::new();
        ipv4([10, 0, 0, 9], [10, 0, 0, 2])
            .icmpv4_echo_request(id, 1)
            .write(&mut v, b"abcd")
            .unwrap();
        v
    };
    let frames = [syn.clone(), synack.clone(), ping(1), ping(2)];
    let records = records_of(&frames);
    assert_eq!(records.len(), 3, "one TCP and two ICMP echo flows");
    let (outer, inner) = account(&records);
    assert!(inner.is_empty());
    let tcp = OracleKey::parse("6|10.0.0.2|443|10.0.0.9|40000").unwrap();
    assert_eq!(
        outer[&tcp].counts,
        Counts {
            a_to_b: (1, synack.len() as u64),
            b_to_a: (1, syn.len() as u64)
        }
    );
    let icmp = OracleKey::parse("1|10.0.0.2|-|10.0.0.9|-").unwrap();
    assert_eq!(
        outer[&icmp].counts,
        Counts {
            a_to_b: (0, 0),
            b_to_a: (2, 2 * ping(1).len() as u64)
        }
    );
    assert_eq!(outer.len(), 2);
}

/// IPv4-in-IPv4 `levels` deep around a UDP datagram.
fn nested_ipip(levels: usize) -> Vec<u8> {
    let mut pkt = Vec::new();
    ipv4([192, 168, 0, 1], [192, 168, 0, 2])
        .udp(5000, 53)
        .write(&mut pkt, b"query")
        .unwrap();
    for l in 0..levels {
        let mut outer = Vec::new();
        let n = l as u8 + 1;
        ipv4([172, 16, n, 1], [172, 16, n, 2])
            .write(&mut outer, etherparse::IpNumber::IPV4, &pkt)
            .unwrap();
        pkt = outer;
    }
    pkt
}

/// What netmon does with nested tunnels (`FlowConfig::tunnel_depth`, default 2): every level
/// down to the depth is a flow whose `outer` is the level around it; this test counts only the
/// innermost tracked level as the oracle's tunnel-inner flow.
#[test]
fn nested_tunnels_count_at_the_innermost_tracked_level() {
    assert_eq!(EngineConfig::default().flow.tunnel_depth, 2);
    let udp = OracleKey::parse("17|192.168.0.1|5000|192.168.0.2|53").unwrap();

    // Two tunnel levels: outer flow (level 0), level 1 (IP-in-IP, outer = level 0), level 2
    // (the UDP datagram, outer = level 1). Only level 2 is tunnel-inner for the oracle.
    let f = nested_ipip(2);
    let records = records_of(std::slice::from_ref(&f));
    assert_eq!(records.len(), 3);
    let level = |proto: &str, a: u8| {
        records
            .iter()
            .find(|(_, r)| {
                r.proto.to_string() == proto && r.src_ip.to_string().ends_with(&format!(".{a}.1"))
            })
            .map(|(k, r)| (*k, r.outer.as_ref().map(|o| o.0)))
    };
    let (l0, l0_outer) = level("ipip", 2).unwrap();
    let (l1, l1_outer) = level("ipip", 1).unwrap();
    assert_eq!((l0_outer, l1_outer), (None, Some(l0)));
    let (_, r2) = records
        .iter()
        .find(|(_, r)| r.proto.to_string() == "udp")
        .unwrap();
    assert_eq!(r2.outer.as_ref().map(|o| o.0), Some(l1));
    let (outer, inner) = account(&records);
    assert_eq!(outer.len(), 1);
    assert_eq!(inner.keys().collect::<Vec<_>>(), [&udp]);
    assert_eq!(inner[&udp].counts.a_to_b, (1, f.len() as u64));

    // Three levels: netmon stops at level 2 (an IP-in-IP flow); the UDP datagram at level 3
    // is not tracked, so netmon's innermost level differs from the oracle's.
    let records = records_of(&[nested_ipip(3)]);
    assert_eq!(records.len(), 3, "levels 0, 1 and 2 only");
    assert!(records.iter().all(|(_, r)| r.proto.to_string() == "ipip"));
    let (_, inner) = account(&records);
    let keys: Vec<String> = inner.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["4|172.16.1.1|-|172.16.1.2|-"]);
}

// ------------------------------------------------------------------------------ determinism

/// Every record of one run as JSON lines.
fn json_lines(path: &Path) -> Vec<u8> {
    let run = run_engine(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(run.error.is_none(), "{}: {:?}", path.display(), run.error);
    let mut out = Vec::new();
    for (_, r) in &run.flows {
        r.write_json(&mut out).unwrap();
        out.push(b'\n');
    }
    out
}

#[test]
fn two_runs_give_identical_records() {
    let mut files =
        vec![netmon_testkit::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join("demo.pcap")];
    if let Some(c) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) {
        for name in [
            "ndpi_1kxun.pcap",
            "zeek_ipv4-fragmented-1.pcap",
            "zeek_ipv6-fragmented-dns.pcap",
            "zeek_tunnels-Teredo.pcap",
            "zeek_pcapng-multi-interface.pcapng",
            "ndpi_synscan.pcap",
        ] {
            files.push(c.capture(name));
        }
    }
    for f in &files {
        let (a, b) = (json_lines(f), json_lines(f));
        assert!(!a.is_empty(), "{}: no flows", f.display());
        if a != b {
            let (a, b) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            let first = a
                .lines()
                .zip(b.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(a.lines().count().min(b.lines().count()));
            panic!(
                "{}: two runs differ, first at record {first}:\n  {:?}\n  {:?}",
                f.display(),
                a.lines().nth(first),
                b.lines().nth(first)
            );
        }
    }
}
