//! TLS over the shared capture corpus: every TCP flow of every capture is reassembled per
//! direction with `StreamBuf` (flows keyed here by 5-tuple, sequence numbers from
//! netmon-packet's TCP view) and parsed with `ClientHello::parse_records` /
//! `ServerHelloInfo::parse_records`. The SNI, offered ALPN and selected ALPN must include
//! everything tshark's oracle lists for the flow, and the hello must complete at the frame
//! where tshark completed its reassembly. Named captures check the hard cases one by one:
//! hellos over 2 and 3 TCP segments, post-quantum key shares, ECH, ServerHello fields, and JA4
//! against Arkime's expected values for the same files.
//!
//! `NETMON_SKIP_CORPUS=1` skips; otherwise a missing corpus fails.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use netmon_capture::{CaptureSource, Next, open_file};
use netmon_classify::ja4::Ja4Transport;
use netmon_classify::reasm::StreamBuf;
use netmon_classify::tls::{ClientHello, Parse, ServerHelloInfo};
use netmon_packet::{Packet, Transport};
use netmon_testkit::oracle::OracleKey;

/// A ClientHello found in one direction of a flow.
#[derive(Debug)]
struct Hello {
    /// Frame (1-based) whose segment completed it.
    frame: u64,
    /// Payload-carrying segments pushed until then.
    segments: usize,
    hello: ClientHello,
}

/// State of one direction of a TCP flow.
#[derive(Default)]
struct Dir {
    buf: StreamBuf,
    done: bool,
    segments: usize,
    client: Option<Hello>,
    server: Option<ServerHelloInfo>,
}

/// What one capture yields, per oracle flow key.
#[derive(Default, Debug)]
struct FlowTls {
    clients: Vec<Hello>,
    servers: Vec<ServerHelloInfo>,
}

type Endpoint = (IpAddr, u16);

fn scan(path: &Path) -> BTreeMap<OracleKey, FlowTls> {
    let mut src = open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dirs: BTreeMap<(Endpoint, Endpoint), Dir> = BTreeMap::new();
    let mut frame = 0u64;
    loop {
        let p = match src.next_packet() {
            Ok(Next::Packet(p)) => p,
            Ok(Next::End) => break,
            Ok(Next::Timeout) => unreachable!("files never time out"),
            Err(e) => panic!("{}: {e}", path.display()),
        };
        frame += 1;
        let pkt = Packet::parse_frame(p.meta.link_type, p.data, p.meta.orig_len as usize);
        let Transport::Tcp(tcp) = &pkt.transport else {
            continue;
        };
        // A fragmented segment's payload is not the whole segment (no IP reassembly here).
        if pkt.fragment().is_some_and(|f| !f.is_first() || f.more) {
            continue;
        }
        let (Some(s), Some(d)) = (pkt.src_ip(), pkt.dst_ip()) else {
            continue;
        };
        let key = ((s, tcp.src_port()), (d, tcp.dst_port()));
        let dir = dirs.entry(key).or_default();
        if dir.done {
            continue;
        }
        let mut seq = tcp.seq();
        if tcp.flags().syn() {
            dir.buf.set_isn(seq);
            seq = seq.wrapping_add(1); // data on a SYN (TCP Fast Open) follows the ISN
        }
        let payload = pkt.payload;
        if payload.is_empty() {
            continue;
        }
        dir.segments += 1;
        // The zero-copy path a per-packet hook takes: parse the first segment in place.
        let in_place = dir
            .buf
            .starts_stream(seq)
            .then(|| ClientHello::parse_records(payload));
        dir.buf.push(seq, payload);
        let stream = dir.buf.contiguous();
        let parsed = ClientHello::parse_records(stream);
        if let Some(in_place) = in_place {
            assert_eq!(in_place, parsed, "{} frame {frame}", path.display());
        }
        match parsed {
            Parse::Done(hello) => {
                dir.client = Some(Hello {
                    frame,
                    segments: dir.segments,
                    hello,
                });
                dir.done = true;
            }
            Parse::Incomplete => dir.done = dir.buf.is_full(),
            Parse::NotTls | Parse::Malformed(_) => match ServerHelloInfo::parse_records(stream) {
                Parse::Done(sh) => {
                    dir.server = Some(sh);
                    dir.done = true;
                }
                Parse::Incomplete => dir.done = dir.buf.is_full(),
                Parse::NotTls | Parse::Malformed(_) => dir.done = true,
            },
        }
        if dir.done {
            dir.buf.free();
        }
    }
    let mut flows: BTreeMap<OracleKey, FlowTls> = BTreeMap::new();
    for ((s, d), dir) in dirs {
        let (key, _) = OracleKey::canon(Some(6), (s.0, Some(s.1)), (d.0, Some(d.1)));
        let f = flows.entry(key).or_default();
        f.clients.extend(dir.client);
        f.servers.extend(dir.server);
    }
    flows
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default()
}

/// The TLS expectations of the oracle for a capture, by flow key.
fn oracle_tls(oracle: &serde_json::Value) -> BTreeMap<OracleKey, serde_json::Value> {
    let mut out = BTreeMap::new();
    for section in ["flows", "tunnel_inner_flows"] {
        for f in oracle[section].as_array().into_iter().flatten() {
            if f["tls"].is_object() {
                let key = OracleKey::parse(f["key"].as_str().unwrap()).unwrap();
                out.insert(key, f["tls"].clone());
            }
        }
    }
    out
}

/// Compares one capture with its oracle; returns the differences and how many flows had a
/// ClientHello the oracle does not list.
fn compare(
    name: &str,
    ours: &BTreeMap<OracleKey, FlowTls>,
    oracle: &serde_json::Value,
) -> (Vec<String>, usize, usize) {
    let mut diffs = Vec::new();
    let expected = oracle_tls(oracle);
    for (key, tls) in &expected {
        let empty = FlowTls::default();
        let got = ours.get(key).unwrap_or(&empty);
        let snis: Vec<&[u8]> = got
            .clients
            .iter()
            .filter_map(|h| h.hello.sni.as_ref().map(|t| t.as_bytes()))
            .collect();
        let alpns: Vec<&[u8]> = got
            .clients
            .iter()
            .flat_map(|h| h.hello.alpn.iter().map(|t| t.as_bytes()))
            .collect();
        let selected: Vec<&[u8]> = got
            .servers
            .iter()
            .filter_map(|s| s.alpn.as_ref().map(|t| t.as_bytes()))
            .collect();
        for (what, want, have) in [
            ("sni", strings(&tls["sni"]), &snis),
            ("alpn_offered", strings(&tls["alpn_offered"]), &alpns),
            ("alpn_selected", strings(&tls["alpn_selected"]), &selected),
        ] {
            for w in want {
                if !have.contains(&w.as_bytes()) {
                    diffs.push(format!(
                        "{name} {key}: {what} {w:?} missing (have {have:?})"
                    ));
                }
            }
        }
        let frames: Vec<u64> = tls["client_hello_frames"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_u64()).collect())
            .unwrap_or_default();
        for h in &got.clients {
            if !frames.contains(&h.frame) {
                diffs.push(format!(
                    "{name} {key}: hello completed at frame {}, tshark at {frames:?}",
                    h.frame
                ));
            }
        }
        if got.clients.is_empty() && !frames.is_empty() {
            diffs.push(format!("{name} {key}: no ClientHello (tshark: {frames:?})"));
        }
    }
    let extra = ours
        .iter()
        .filter(|(k, f)| !f.clients.is_empty() && !expected.contains_key(*k))
        .count();
    let found = ours.values().filter(|f| !f.clients.is_empty()).count();
    (diffs, found, extra)
}

#[test]
fn every_capture_matches_the_oracle() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let mut diffs = Vec::new();
    let (mut hellos, mut oracle_flows) = (0, 0);
    for path in corpus.captures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let oracle = corpus.oracle(&path);
        let ours = scan(&path);
        let (d, found, extra) = compare(&name, &ours, &oracle);
        oracle_flows += oracle_tls(&oracle).len();
        hellos += found;
        if extra > 0 {
            eprintln!("{name}: {extra} flow(s) with a ClientHello tshark does not list");
        }
        diffs.extend(d);
    }
    eprintln!("{hellos} ClientHellos found; the oracle lists TLS in {oracle_flows} flows");
    assert!(oracle_flows >= 60, "the corpus lost its TLS flows?");
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// The single ClientHello of a capture with exactly one.
fn only_hello(name: &str) -> (OracleKey, Hello, Vec<ServerHelloInfo>) {
    let corpus = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).unwrap();
    let flows = scan(&corpus.capture(name));
    let mut with_hello: Vec<_> = flows
        .into_iter()
        .filter(|(_, f)| !f.clients.is_empty())
        .collect();
    assert_eq!(with_hello.len(), 1, "{name}: {with_hello:?}");
    let (key, mut f) = with_hello.pop().unwrap();
    assert_eq!(f.clients.len(), 1);
    (key, f.clients.pop().unwrap(), f.servers)
}

fn skip() -> bool {
    std::env::var("NETMON_SKIP_CORPUS").as_deref() == Ok("1")
}

fn sni(h: &Hello) -> &[u8] {
    h.hello.sni.as_ref().unwrap().as_bytes()
}

fn alpn(h: &Hello) -> Vec<&[u8]> {
    h.hello.alpn.iter().map(|t| t.as_bytes()).collect()
}

#[test]
fn arkime_split_client_hello() {
    if skip() {
        return;
    }
    let (_, h, servers) = only_hello("arkime_tls-split-client-hello.pcap");
    // Chrome's X25519MLKEM768 hello: 1724-byte record over 2 TCP segments, done at frame 5.
    assert_eq!((h.segments, h.frame), (2, 5));
    assert_eq!(sni(&h), b"clients2.google.com");
    assert_eq!(alpn(&h), [&b"h2"[..], b"http/1.1"]);
    assert!(h.hello.ech, "Chrome sends an ECH (GREASE) extension");
    // Arkime's test expectation for this capture (tests/pcap/tls-split-client-hello.test).
    assert_eq!(
        h.hello.ja4(Ja4Transport::Tcp),
        "t13d1516h2_8daaf6152771_02713d6af862"
    );
    assert_eq!(
        h.hello.ja4_r(Ja4Transport::Tcp),
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_\
         0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,4469,fe0d,ff01_\
         0403,0804,0401,0503,0805,0501,0806,0601"
    );
    // TLS 1.3 ServerHello: the version comes from supported_versions.
    assert_eq!(servers.len(), 1);
    assert_eq!((servers[0].version, servers[0].cipher), (0x0304, 0x1301));
    assert_eq!(servers[0].alpn, None);
}

#[test]
fn suricata_hello_over_three_segments() {
    if skip() {
        return;
    }
    let (_, h, servers) = only_hello("suricata_tls-client-hello-frag-01_dump_mtu300.pcap");
    assert_eq!((h.segments, h.frame), (3, 6));
    assert_eq!(sni(&h), b"www.google.com");
    assert_eq!(servers[0].alpn.as_ref().unwrap().as_bytes(), b"h2");
}

#[test]
fn zeek_chrome_kyber() {
    if skip() {
        return;
    }
    let (_, h, servers) = only_hello("zeek_chrome-1250-tls-x25519-kyber.pcap");
    assert_eq!(sni(&h), b"lh3.google.com");
    assert_eq!(alpn(&h), [&b"h2"[..], b"http/1.1"]);
    // A 1751-byte record (X25519Kyber768Draft00 key share) in one 1756-byte TSO segment.
    assert_eq!(h.segments, 1);
    assert!(h.hello.extensions.contains(&0x0033));
    let info = h.hello.info(Ja4Transport::Tcp);
    assert_eq!(info.supported_versions, [0x0304, 0x0303]);
    assert!(info.ja4.starts_with("t13d"), "{}", info.ja4);
    assert_eq!(servers[0].version, 0x0304);
}

#[test]
fn zeek_tls13_ech() {
    if skip() {
        return;
    }
    let corpus = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).unwrap();
    let flows = scan(&corpus.capture("zeek_tls13-ech.pcap"));
    let hellos: Vec<&Hello> = flows.values().flat_map(|f| &f.clients).collect();
    assert_eq!(hellos.len(), 2);
    for h in hellos {
        assert!(h.hello.ech);
        // The outer (public) name.
        assert_eq!(sni(h), b"cloudflare-ech.com");
        assert!(h.hello.info(Ja4Transport::Tcp).ech);
    }
}

#[test]
fn ndpi_codm() {
    if skip() {
        return;
    }
    let (key, h, servers) = only_hello("ndpi_codm.pcap");
    assert_eq!(key.b.1, Some(8013), "TLS on a non-standard port");
    assert_eq!((h.segments, h.frame), (2, 5));
    assert_eq!(sni(&h), b"west-tdm.codmwest.com");
    assert_eq!(alpn(&h), [&b"http/1.1"[..]]);
    assert_eq!(
        h.hello.info(Ja4Transport::Tcp).supported_versions,
        [0x0304, 0x0303, 0x0302, 0x0301]
    );
    assert_eq!(servers[0].alpn.as_ref().unwrap().as_bytes(), b"http/1.1");
    assert_eq!(servers[0].version, 0x0303);
}

#[test]
fn ndpi_sites_55_snis() {
    if skip() {
        return;
    }
    let corpus = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).unwrap();
    let path = corpus.capture("ndpi_sites.pcapng");
    let oracle = corpus.oracle(&path);
    let ours = scan(&path);
    let expected = oracle_tls(&oracle);
    assert_eq!(expected.len(), 55);
    let (diffs, _, _) = compare("ndpi_sites.pcapng", &ours, &oracle);
    assert!(diffs.is_empty(), "{diffs:#?}");
    let snis: std::collections::BTreeSet<&[u8]> = ours
        .values()
        .flat_map(|f| &f.clients)
        .filter_map(|h| h.hello.sni.as_ref().map(|t| t.as_bytes()))
        .collect();
    assert!(snis.len() >= 40, "{} distinct SNIs", snis.len());
}

#[test]
fn arkime_alpn_h2() {
    if skip() {
        return;
    }
    let (key, h, servers) = only_hello("arkime_tls-alpn-h2.pcap");
    assert!(matches!(key.a.0, IpAddr::V6(_)), "IPv6 over BSD loopback");
    assert_eq!(sni(&h), b"www.cloudflare.com");
    // Arkime's test expectation for this capture (tests/pcap/tls-alpn-h2.test).
    assert_eq!(
        h.hello.ja4(Ja4Transport::Tcp),
        "t12d4605h2_85626a9a5f7f_aaf95bb78ec9"
    );
    assert_eq!(servers.len(), 1);
    let sh = &servers[0];
    assert_eq!((sh.version, sh.cipher), (0x0303, 0xcca9));
    assert_eq!(sh.alpn.as_ref().unwrap().as_bytes(), b"h2");
}

#[test]
fn zeek_tls12_server_hello() {
    if skip() {
        return;
    }
    let (_, h, servers) = only_hello("zeek_tls1.2.pcap");
    // No SNI, no ALPN: JA4 says "i" and "00".
    assert!(h.hello.sni.is_none() && h.hello.alpn.is_empty());
    let info = h.hello.info(Ja4Transport::Tcp);
    assert_eq!(info.cipher_count, 80);
    assert!(info.ja4.starts_with("t12i80"), "{}", info.ja4);
    assert!(info.ja4.get(8..10) == Some("00"), "{}", info.ja4);
    assert_eq!(servers.len(), 1);
    let sh = &servers[0];
    // tshark: ServerHello (frame 5) version 0x0303, cipher 0x0004 (TLS_RSA_WITH_RC4_128_MD5).
    assert_eq!(
        (sh.legacy_version, sh.version, sh.cipher),
        (0x0303, 0x0303, 0x0004)
    );
    assert_eq!(sh.alpn, None);
    assert!(!sh.hello_retry);
}
