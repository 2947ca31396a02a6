//! QUIC on the shared capture corpus, checked against the tshark oracle: for every UDP flow
//! of every capture, the versions, SNI and ALPN that this crate's Initial decryption finds
//! include what the oracle's `quic` lists, and the ClientHello completes in the frame the
//! oracle names. Plus named checks for the captures that exercise particular paths.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use netmon_capture::{CaptureSource, Next, open_file};
use netmon_classify::quic::{
    LongPacketType, Progress, QuicInitialState, QuicVersionKind, looks_like_quic,
};
use netmon_packet::{Packet, Transport};
use netmon_testkit::oracle::{End, OracleKey};
use netmon_testkit::tls::sni_alpn;

/// What we found in one UDP flow.
#[derive(Default)]
struct FlowQuic {
    client: Option<End>,
    versions: BTreeSet<u32>,
    kinds: BTreeSet<String>,
    state: Option<QuicInitialState>,
    hello_frame: Option<u64>,
}

impl FlowQuic {
    fn hello(&self) -> Option<&[u8]> {
        self.state.as_ref()?.client_hello()
    }
}

/// The innermost UDP layer of a frame: (src, dst, payload).
fn innermost_udp<'a>(p: Packet<'a>) -> Option<(End, End, &'a [u8])> {
    let mut best = None;
    let mut cur = Some(p);
    for _ in 0..8 {
        let Some(p) = cur else { break };
        if let (Transport::Udp(_), Some(src), Some(dst), Some((sp, dp))) =
            (&p.transport, p.src_ip(), p.dst_ip(), p.ports())
        {
            best = Some(((src, Some(sp)), (dst, Some(dp)), p.payload));
        }
        cur = p.inner();
    }
    best
}

/// Runs every UDP datagram of a capture through `looks_like_quic` and, per flow, a
/// `QuicInitialState` fed from the side that sent the first Initial packet.
fn scan(path: &Path) -> BTreeMap<OracleKey, FlowQuic> {
    let mut flows: BTreeMap<OracleKey, FlowQuic> = BTreeMap::new();
    let mut src = open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for n in 1..=10_000_000u64 {
        let raw = match src.next_packet() {
            Ok(Next::Packet(raw)) => raw,
            Ok(Next::End) => break,
            Ok(Next::Timeout) => panic!("a file source timed out"),
            Err(e) => {
                eprintln!("{}: read error after {n} frames: {e}", path.display());
                break;
            }
        };
        let p = Packet::parse_frame(raw.meta.link_type, raw.data, raw.meta.orig_len as usize);
        let Some((s, d, payload)) = innermost_udp(p) else {
            continue;
        };
        let info = looks_like_quic(payload);
        let (key, _) = OracleKey::canon(Some(17), s, d);
        if info.is_none() && !flows.contains_key(&key) {
            continue;
        }
        let f = flows.entry(key).or_default();
        if let Some(i) = info {
            f.versions.insert(i.version);
            f.kinds.insert(format!("{:?}", i.kind));
            if f.client.is_none() && i.packet_type == Some(LongPacketType::Initial) {
                f.client = Some(s);
            }
        }
        let Some(client) = f.client else { continue };
        let st = f.state.get_or_insert_with(QuicInitialState::new);
        if client == s {
            let was_complete = st.progress() == Progress::Complete;
            if st.push_datagram(payload) == Progress::Complete && !was_complete {
                f.hello_frame = Some(n);
            }
        } else {
            st.push_server_datagram(payload);
        }
    }
    flows
}

fn oracle_quic_flows(v: &serde_json::Value) -> Vec<(OracleKey, serde_json::Value)> {
    let mut out = Vec::new();
    for list in ["flows", "tunnel_inner_flows"] {
        for fl in v[list].as_array().into_iter().flatten() {
            if fl["quic"].is_object() {
                let k = OracleKey::parse(fl["key"].as_str().unwrap()).unwrap();
                out.push((k, fl["quic"].clone()));
            }
        }
    }
    out
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Compares one capture with its oracle; returns the problems found.
fn check_capture(
    name: &str,
    flows: &BTreeMap<OracleKey, FlowQuic>,
    oracle: &serde_json::Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, q) in oracle_quic_flows(oracle) {
        let Some(f) = flows.get(&key) else {
            problems.push(format!("{name} {key}: oracle has QUIC {q}, we saw none"));
            continue;
        };
        let ours: BTreeSet<String> = f.versions.iter().map(|v| format!("{v:#010x}")).collect();
        for v in strings(&q["versions"]) {
            if !ours.contains(&v) {
                problems.push(format!("{name} {key}: version {v} missing (ours {ours:?})"));
            }
        }
        let want_sni = strings(&q["sni"]);
        let want_alpn = strings(&q["alpn_offered"]);
        let (sni, alpn) = f.hello().map(sni_alpn).unwrap_or_default();
        for s in &want_sni {
            if !sni.contains(s) {
                problems.push(format!("{name} {key}: SNI {s} missing (ours {sni:?})"));
            }
        }
        for a in &want_alpn {
            if !alpn.contains(a) {
                problems.push(format!("{name} {key}: ALPN {a} missing (ours {alpn:?})"));
            }
        }
        let frames: Vec<u64> = q["client_hello_frames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_u64())
            .collect();
        if let Some(first) = frames.first() {
            if f.hello_frame != Some(*first) {
                problems.push(format!(
                    "{name} {key}: ClientHello complete in frame {:?}, oracle {first}",
                    f.hello_frame
                ));
            }
        }
    }
    // The other way round: a flow we call QUIC that the oracle does not is a false
    // positive, unless we decrypted a ClientHello from it (proof tshark missed it).
    let known: BTreeSet<OracleKey> = oracle_quic_flows(oracle)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for (k, f) in flows {
        if !known.contains(k) && f.hello().is_none() {
            problems.push(format!(
                "{name} {k}: we see QUIC {:?} {:?}, the oracle does not",
                f.versions, f.kinds
            ));
        }
    }
    problems
}

fn describe(name: &str, flows: &BTreeMap<OracleKey, FlowQuic>) {
    for (k, f) in flows {
        let st = f.state.as_ref();
        let (sni, alpn) = f.hello().map(sni_alpn).unwrap_or_default();
        println!(
            "{name} {k}: versions {:?} {:?} progress {:?} frame {:?} sni {sni:?} alpn {alpn:?} stats {:?}",
            f.versions
                .iter()
                .map(|v| format!("{v:#010x}"))
                .collect::<Vec<_>>(),
            f.kinds,
            st.map(|s| s.progress()),
            f.hello_frame,
            st.map(|s| *s.stats()),
        );
    }
}

#[test]
fn every_capture_matches_the_oracle() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let mut problems = Vec::new();
    let mut oracle_flows = 0;
    let mut hellos = 0;
    for capture in corpus.captures() {
        let name = capture.file_name().unwrap().to_string_lossy().into_owned();
        let oracle = corpus.oracle(&capture);
        let flows = scan(&capture);
        describe(&name, &flows);
        oracle_flows += oracle_quic_flows(&oracle).len();
        hellos += flows.values().filter(|f| f.hello().is_some()).count();
        problems.extend(check_capture(&name, &flows, &oracle));
    }
    println!("{oracle_flows} oracle QUIC flows, {hellos} ClientHellos decrypted");
    assert!(
        oracle_flows >= 8,
        "the corpus has 8 QUIC flows in the oracle"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn scan_named(name: &str) -> Option<BTreeMap<OracleKey, FlowQuic>> {
    let corpus = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR"))?;
    let capture = corpus.capture(name);
    let flows = scan(&capture);
    describe(name, &flows);
    let problems = check_capture(name, &flows, &corpus.oracle(&capture));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Some(flows)
}

fn key(s: &str) -> OracleKey {
    OracleKey::parse(s).unwrap()
}

#[test]
fn zeek_chromium_115_sni_in_initial() {
    let Some(flows) = scan_named("zeek_quic-chromium-115-api-cirrus-com.pcap") else {
        return;
    };
    let f = &flows[&key("17|82.239.54.117|53727|110.213.53.115|443")];
    let (sni, alpn) = sni_alpn(f.hello().unwrap());
    assert_eq!(sni, ["api.cirrus-ci.com"]);
    assert_eq!(alpn, ["h3"]);
    assert_eq!(f.hello_frame, Some(1));
    assert_eq!(
        f.client.unwrap().0,
        "82.239.54.117".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn zeek_quic_v2() {
    let Some(flows) = scan_named("zeek_quicv2-http3-443.pcap") else {
        return;
    };
    let f = &flows[&key("17|127.0.0.1|443|127.0.0.1|50841")];
    assert!(f.versions.contains(&0x6b33_43cf));
    assert!(f.kinds.contains("V2"));
    let (sni, alpn) = sni_alpn(f.hello().unwrap());
    assert!(sni.is_empty(), "this client sends no SNI: {sni:?}");
    assert_eq!(alpn, ["h3"]);
    assert_eq!(f.client.unwrap().1, Some(50841));
}

#[test]
fn retina_kyber_hello_over_several_initials_ipv6() {
    let Some(flows) = scan_named("retina_quic_kyber.pcapng") else {
        return;
    };
    let f = &flows
        [&key("17|2601:280:5f80:4580:5f8a:aea1:6e73:d422|46069|2607:f8b0:400f:803::200e|443")];
    let st = f.state.as_ref().unwrap();
    let hello = st.client_hello().unwrap();
    assert!(
        hello.len() > 1200,
        "a Kyber key share does not fit one Initial"
    );
    assert!(st.stats().decrypted >= 2);
    assert_eq!(f.hello_frame, Some(2), "complete with the second Initial");
    let (sni, alpn) = sni_alpn(hello);
    assert_eq!(sni, ["encrypted-tbn0.gstatic.com"]);
    assert_eq!(alpn, ["h3"]);
}

#[test]
fn ndpi_sites_four_quic_snis() {
    let Some(flows) = scan_named("ndpi_sites.pcapng") else {
        return;
    };
    let mut snis: Vec<String> = flows
        .values()
        .filter_map(|f| f.hello())
        .flat_map(|h| sni_alpn(h).0)
        .collect();
    snis.sort();
    for want in [
        "classroom.google.com",
        "hangouts.google.com",
        "plus.google.com",
        "www.threads.net",
    ] {
        assert!(snis.iter().any(|s| s == want), "{want} not in {snis:?}");
    }
}

#[test]
fn tcpdump_truncated_handshake_fails_gracefully() {
    let Some(flows) = scan_named("tcpdump_quic_handshake_truncated.pcap") else {
        return;
    };
    let f = &flows[&key("17|::1|443|::1|65165")];
    assert!(f.versions.contains(&1));
    let st = f.state.as_ref().unwrap();
    assert!(st.client_hello().is_none());
    let s = st.stats();
    assert!(s.truncated > 0, "{s:?}");
    assert_eq!(s.decrypted, 0);
    assert!(
        f.kinds
            .iter()
            .all(|k| k == &format!("{:?}", QuicVersionKind::V1)),
        "{:?}",
        f.kinds
    );
}
