//! The DNS view against the tshark oracle, over every capture of the shared corpus.
//!
//! Every UDP and TCP packet with port 53 (DNS), 5353 (mDNS) or 5355 (LLMNR) on either side is
//! read with [`DnsMessage`] — UDP payloads directly, TCP payloads through one [`TcpDnsBuf`]
//! per flow and direction (length prefixes, several messages per segment, messages split
//! over segments). Per flow, keyed as the oracle keys it ([`OracleKey`]), the question names
//! and the A/AAAA addresses of all sections are collected; they must include everything the
//! oracle's `dns.queries` and `dns.answers` list for that flow. Frames inside tunnels count
//! for the innermost flow, as in the oracle's `tunnel_inner_flows`.
//!
//! Differences must be listed in [`EXCEPTIONS`] with the reason; an exception that no longer
//! occurs fails the test. Also checked: [`looks_like_dns`] recognises at least one message
//! of every flow the oracle lists with queries, and every message parses and iterates to its
//! end without an error except where the oracle flags the frame as malformed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

use netmon_capture::{CaptureSource, Next, open_file};
use netmon_classify::dns::{DNS_PORTS, DnsMessage, RData, TcpDnsBuf, looks_like_dns};
use netmon_packet::{Packet, Transport};
use netmon_testkit::oracle::OracleKey;

/// `(capture, flow key, missing item, reason)`; items are `query NAME` or `answer ADDR`.
const EXCEPTIONS: &[(&str, &str, &str, &str)] = &[(
    "zeek_ipv6-fragmented-dns.pcap",
    "17|2001:470:1f11:81f:d138:5f55:6d4:1fe2|51851|2607:f740:b::f93|53",
    "answer 192.150.187.31",
    "the 3.3 KB response is split into three IPv6 fragments (frames 6-8); the additional-section \
     A record is in the last one, which tshark reassembles and netmon does not (netmon does not \
     reassemble IP fragments: the first fragment's questions and leading records are read, the \
     rest of the datagram is not)",
)];

/// What we saw of one flow.
#[derive(Default, Debug)]
struct Seen {
    queries: BTreeSet<Vec<u8>>,
    answers: BTreeSet<IpAddr>,
    /// Messages for which `looks_like_dns` said yes.
    detected: usize,
    /// Messages that did not iterate cleanly (first IP fragments excepted: they are cut).
    errors: Vec<String>,
    /// Messages read from first IP fragments (cut short, so errors are expected).
    fragments: usize,
}

type PerFlow = BTreeMap<OracleKey, Seen>;

/// Reads one message into `seen`.
fn collect(msg: &[u8], seen: &mut Seen, ports: (u16, u16), udp: bool, fragment: bool) {
    if udp && looks_like_dns(msg, ports.0, ports.1) {
        seen.detected += 1;
    }
    let m = match DnsMessage::parse(msg) {
        Ok(m) => m,
        Err(e) => {
            seen.errors.push(e.to_string());
            return;
        }
    };
    let mut errors = Vec::new();
    for q in m.questions() {
        match q {
            Ok(q) => {
                seen.queries.insert(q.name.as_bytes().to_vec());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    for r in m.records() {
        match r {
            Ok(r) => match r.data {
                RData::A(a) => {
                    seen.answers.insert(IpAddr::V4(a));
                }
                RData::Aaaa(a) => {
                    seen.answers.insert(IpAddr::V6(a));
                }
                _ => {}
            },
            Err(e) => errors.push(e.to_string()),
        }
    }
    if fragment {
        seen.fragments += 1;
    } else {
        seen.errors.extend(errors);
    }
}

/// State of one capture's walk.
#[derive(Default)]
struct Walk {
    outer: PerFlow,
    inner: PerFlow,
    tcp: HashMap<(OracleKey, bool, bool), TcpDnsBuf>,
}

impl Walk {
    fn packet(&mut self, p: &Packet<'_>, depth: usize, tunnelled: bool) {
        if p.tunnel.is_some() && depth < 4 {
            if let Some(inner) = p.inner() {
                self.packet(&inner, depth + 1, true);
            }
            return;
        }
        let (Some(src), Some(dst), Some((sport, dport))) = (p.src_ip(), p.dst_ip(), p.ports())
        else {
            return;
        };
        if !DNS_PORTS.contains(&sport) && !DNS_PORTS.contains(&dport) {
            return;
        }
        let proto = p.ip_proto().map(|n| n.0);
        let fragment = p.fragment().is_some();
        let (key, swapped) = OracleKey::canon(proto, (src, Some(sport)), (dst, Some(dport)));
        let map = if tunnelled {
            &mut self.inner
        } else {
            &mut self.outer
        };
        match &p.transport {
            // An empty datagram is not a DNS message (tshark does not call it one either).
            Transport::Udp(u) if u.payload().is_empty() => {}
            Transport::Udp(u) => {
                collect(
                    u.payload(),
                    map.entry(key).or_default(),
                    (sport, dport),
                    true,
                    fragment,
                );
            }
            Transport::Tcp(t) => {
                let seen = map.entry(key.clone()).or_default();
                let buf = self.tcp.entry((key, swapped, tunnelled)).or_default();
                buf.push(t.seq(), t.payload(), |m| {
                    collect(m, seen, (sport, dport), false, fragment);
                });
            }
            _ => {}
        }
    }
}

/// The oracle's `dns` per flow of one flow list.
fn oracle_dns(
    v: &serde_json::Value,
    list: &str,
) -> BTreeMap<OracleKey, (Vec<String>, Vec<IpAddr>)> {
    let mut out = BTreeMap::new();
    for fl in v[list].as_array().expect("oracle flow list") {
        let Some(d) = fl.get("dns") else { continue };
        let key = fl["key"].as_str().expect("key");
        let k = OracleKey::parse(key).unwrap_or_else(|| panic!("bad key {key}"));
        let strs = |f: &str| -> Vec<String> {
            d.get(f)
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten()
                .map(|s| s.as_str().expect("string").to_owned())
                .collect()
        };
        let answers = strs("answers")
            .iter()
            .map(|a| {
                a.parse()
                    .unwrap_or_else(|_| panic!("{key}: bad address {a}"))
            })
            .collect();
        out.insert(k, (strs("queries"), answers));
    }
    out
}

/// Frames the oracle calls malformed.
fn malformed(v: &serde_json::Value) -> usize {
    v["summary"]["malformed_frames"]
        .as_array()
        .map_or(0, Vec::len)
}

fn walk(path: &Path) -> Walk {
    let mut src = open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut w = Walk::default();
    loop {
        match src.next_packet() {
            Ok(Next::Packet(raw)) => {
                let p =
                    Packet::parse_frame(raw.meta.link_type, raw.data, raw.meta.orig_len as usize);
                w.packet(&p, 0, false);
            }
            Ok(Next::End) => break,
            Ok(Next::Timeout) => continue,
            Err(e) => {
                // A corrupt file ends the walk; the oracle saw only what tshark read.
                eprintln!("{}: {e}", path.display());
                break;
            }
        }
    }
    w
}

#[test]
fn dns_names_and_answers_match_the_oracle() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let mut missing: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let (mut flows, mut queries, mut answers) = (0, 0, 0);
    let mut undetected = Vec::new();
    let mut unclean = Vec::new();
    for cap in corpus.captures() {
        let file = cap.file_name().unwrap().to_str().unwrap().to_owned();
        let oracle = corpus.oracle(&cap);
        let w = walk(&cap);
        for (list, ours) in [("flows", &w.outer), ("tunnel_inner_flows", &w.inner)] {
            for (key, (oq, oa)) in oracle_dns(&oracle, list) {
                flows += 1;
                let empty = Seen::default();
                let seen = ours.get(&key).unwrap_or(&empty);
                let mut note = |item: String, detail: String| {
                    missing.insert((file.clone(), key.to_string(), item), detail);
                };
                for q in &oq {
                    queries += 1;
                    if !seen.queries.contains(q.as_bytes()) {
                        note(
                            format!("query {q}"),
                            format!(
                                "ours: {:?}",
                                seen.queries
                                    .iter()
                                    .map(|q| String::from_utf8_lossy(q))
                                    .collect::<Vec<_>>()
                            ),
                        );
                    }
                }
                for a in &oa {
                    answers += 1;
                    if !seen.answers.contains(a) {
                        note(format!("answer {a}"), format!("ours: {:?}", seen.answers));
                    }
                }
                if !oq.is_empty() && seen.detected == 0 && !key.to_string().starts_with("6|") {
                    undetected.push(format!("{file} {key}"));
                }
            }
        }
        for (key, seen) in w.outer.iter().chain(w.inner.iter()) {
            if !seen.errors.is_empty() && malformed(&oracle) == 0 {
                unclean.push(format!("{file} {key}: {:?}", seen.errors));
            }
        }
    }
    eprintln!(
        "dns corpus: {flows} oracle flows with DNS, {queries} query names, {answers} answers; {} missing (all excepted)",
        missing.len()
    );
    let mut report = String::new();
    for ((file, key, item), detail) in &missing {
        if !EXCEPTIONS
            .iter()
            .any(|(f, k, i, _)| f == file && k == key && i == item)
        {
            report.push_str(&format!("NOT EXCEPTED {file} {key} {item} ({detail})\n"));
        }
    }
    for (f, k, i, _) in EXCEPTIONS {
        if !missing.contains_key(&(f.to_string(), k.to_string(), i.to_string())) {
            report.push_str(&format!("STALE EXCEPTION {f} {k} {i}\n"));
        }
    }
    for u in &undetected {
        report.push_str(&format!("NOT DETECTED by looks_like_dns: {u}\n"));
    }
    for u in &unclean {
        report.push_str(&format!(
            "PARSE ERRORS in a file tshark finds well-formed: {u}\n"
        ));
    }
    assert!(report.is_empty(), "\n{report}");
}

/// `tcpdump_dns-zlip-1.pcap`: a UDP header claiming no payload, followed by a DNS message
/// whose names are compression-pointer loops (`c00c` at offset 12 points at itself, the rest
/// chain through each other). Read past the UDP length on purpose: the parser must end with
/// an error, not loop.
#[test]
fn zlip_pointer_loop_ends() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let mut src = open_file(corpus.capture("tcpdump_dns-zlip-1.pcap")).unwrap();
    let Ok(Next::Packet(raw)) = src.next_packet() else {
        panic!("no packet")
    };
    let p = Packet::parse(raw.meta.link_type, raw.data);
    assert!(matches!(p.transport, Transport::Udp(_)));
    assert!(
        p.payload.is_empty(),
        "the UDP length says 0 bytes of payload"
    );
    let hidden = &raw.data[p.payload_offset..];
    assert_eq!(hidden.len(), 35);
    let m = DnsMessage::parse(hidden).unwrap();
    assert_eq!((m.id(), m.qdcount()), (0xed69, 1));
    let qs: Vec<_> = m.questions().collect();
    assert_eq!(
        qs,
        [Err(netmon_classify::dns::DnsError::BadPointer {
            offset: 12,
            target: 12
        })]
    );
    assert_eq!(m.records().count(), 1, "the question's error, then the end");
    assert!(!looks_like_dns(hidden, 1024, 53));
    // Each of the nine pointers (c00c c007 c010 c017 c020 c027 c030 c0ff cf00) as a name
    // start: backwards ones into the header, to themselves or forwards: an error each.
    for at in (12..30).step_by(2) {
        assert!(
            netmon_classify::dns::Name::decode(hidden, at).is_err(),
            "{at}"
        );
    }
}

/// `looks_like_dns` on every UDP payload of the corpus that is not on a DNS port: the oracle
/// lists no DNS there, so every "yes" would be a false positive. (Before NBNS was excluded,
/// the only ones were NetBIOS name service packets on port 137.)
#[test]
fn detection_has_no_false_positives_on_the_corpus() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let mut hits = Vec::new();
    let mut total = 0;
    for cap in corpus.captures() {
        let mut src = open_file(&cap).unwrap();
        while let Ok(Next::Packet(raw)) = src.next_packet() {
            let p = Packet::parse_frame(raw.meta.link_type, raw.data, raw.meta.orig_len as usize);
            let (Transport::Udp(u), Some((s, d))) = (&p.transport, p.ports()) else {
                continue;
            };
            if DNS_PORTS.contains(&s) || DNS_PORTS.contains(&d) {
                continue;
            }
            total += 1;
            if looks_like_dns(u.payload(), s, d) {
                hits.push(format!("{} {s}->{d}", cap.display()));
            }
        }
    }
    assert!(total > 500, "{total} UDP packets off the DNS ports");
    assert!(hits.is_empty(), "{hits:#?}");
}
