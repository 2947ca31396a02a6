//! netmon-packet over every capture of the shared corpus, checked against tshark.
//!
//! Two layers:
//!
//! 1. **Aggregate, always on** (`corpus_flows_match_oracle`): every frame is parsed and
//!    accounted the way `tshark_oracle.py` accounts tshark's view (ORACLE.md: outermost IP
//!    header + the transport header right after it; ports only for TCP/UDP/UDP-Lite/SCTP/DCCP;
//!    endpoints ordered by (IP version, address bytes, port); non-first fragments take the
//!    ports of the first fragment with the same (src, dst, proto, id) anywhere in the file; ICMP
//!    by address pair). Frame count, non-IP frame count, and per-direction packets and bytes of
//!    every flow and every tunnel-inner flow must equal the committed oracle JSON.
//! 2. **Per packet** (`corpus_packets_match_tshark`): tshark runs over every capture and each
//!    frame's wire length, IP-or-not, outermost source, destination, protocol, ports and
//!    fragment fields, and innermost tunnelled IP layer are compared with netmon's. Without
//!    tshark (`$TSHARK` or `tshark` on `PATH`) the test prints a notice and passes, unless
//!    `NETMON_REQUIRE_TSHARK=1`.
//!
//! Every disagreement must be listed in [`EXCEPTIONS`] with its reason; a listed exception that
//! no longer occurs fails too, so the table stays true.
//!
//! The corpus is `$NETMON_CORPUS`, else a `shared/corpus` directory beside an ancestor of this
//! crate. Missing, it fails the tests unless `NETMON_SKIP_CORPUS=1`.

#[path = "corpus/model.rs"]
mod model;
#[path = "corpus/netmon.rs"]
mod netmon;
#[path = "corpus/tshark.rs"]
mod tshark;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use model::{Frame, IpLayer};
use netmon_testkit::oracle::{self, OracleKey};
use netmon_testkit::{file_name, par_map};

/// What differs on a frame (per-packet check).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Field {
    /// Wire length (`frame.len` vs `orig_len`).
    Len,
    /// IP or not, and for non-IP frames the protocol where netmon names one.
    Class,
    /// Outermost source address.
    Src,
    /// Outermost destination address.
    Dst,
    /// Outermost transport protocol.
    Proto,
    /// Outermost ports.
    Ports,
    /// Outermost fragment fields (id, offset, more).
    Frag,
    /// Which transport header was dissected after the outermost IP header (among those netmon
    /// parses: TCP, UDP, SCTP, ICMP, ICMPv6, IGMP, GRE, ESP).
    L4,
    /// The innermost tunnelled IP layer (whole).
    Inner,
}

/// A known disagreement with tshark.
struct Exception {
    /// Capture file name.
    file: &'static str,
    /// Frame numbers (1-based, as tshark numbers them).
    frames: &'static [u32],
    /// What differs on each of those frames (per-packet check).
    fields: &'static [Field],
    /// What differs in the aggregate check: `frames`, `non-ip`, `flow <key>`, `inner <key>`
    /// (keys as this test prints them).
    aggregate: &'static [&'static str],
    /// Why: which side is right, and why netmon keeps its behaviour.
    reason: &'static str,
}

/// Every disagreement between netmon and tshark on the corpus, with the reason.
///
/// Empty: on the corpus as of this test's introduction, all 6268 frames of the 80 captures
/// agree with tshark 4.0.17 on every field above, and every file's accounting equals its
/// oracle. An entry looks like
///
/// ```text
/// Exception {
///     file: "tcpdump_example.pcap",
///     frames: &[2, 4],
///     fields: &[Field::Class],
///     aggregate: &["non-ip", "flow 58|::|-|ff02::1:ff76:6c14|-"],
///     reason: "malformed file: tshark keeps the IPv6 header of a packet whose version nibble \
///              is 4; netmon reports BadVersion and stops",
/// },
/// ```
///
/// and every (frame, field) and aggregate item it lists must still differ.
const EXCEPTIONS: &[Exception] = &[];

/// The corpus captures (sorted), or `None` when skipped.
fn corpus_files() -> Option<(PathBuf, Vec<PathBuf>)> {
    let corpus = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR"))?;
    let files = corpus.captures();
    let dir = corpus.dir().to_path_buf();
    Some((dir, files))
}

/// netmon's frames of one capture; a panic inside the parser is reported, not propagated, so
/// the report names the file.
fn netmon_frames(path: &Path) -> Result<Vec<Frame>, String> {
    match std::panic::catch_unwind(|| netmon::read(path)) {
        Ok((frames, None)) => Ok(frames),
        Ok((_, Some(e))) => Err(format!("capture reader: {e}")),
        Err(_) => Err("PANIC while reading or parsing (see the panic message above)".to_owned()),
    }
}

fn exceptions_for(file: &str) -> impl Iterator<Item = &'static Exception> + '_ {
    EXCEPTIONS.iter().filter(move |e| e.file == file)
}

/// Compares found differences with the listed ones: unlisted ones and listed ones that did not
/// occur are both failures.
fn reconcile<K: Ord + std::fmt::Debug>(
    file: &str,
    found: BTreeMap<K, String>,
    expected: BTreeSet<K>,
    failures: &mut Vec<String>,
) {
    for (k, msg) in &found {
        if !expected.contains(k) {
            failures.push(format!("{file}: {k:?}: {msg}"));
        }
    }
    for k in expected.iter().filter(|k| !found.contains_key(*k)) {
        failures.push(format!(
            "{file}: {k:?}: listed in EXCEPTIONS but netmon and tshark now agree: remove it"
        ));
    }
}

#[test]
fn corpus_flows_match_oracle() {
    let Some((dir, files)) = corpus_files() else {
        return;
    };
    let results = par_map(&files, |path| {
        let name = file_name(path);
        let oracle_path = dir.join("oracle").join(format!("{name}.oracle.json"));
        let oracle = std::fs::read(&oracle_path)
            .map_err(|e| format!("{}: {e}", oracle_path.display()))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("oracle JSON: {e}")))
            .and_then(|v| oracle::oracle_accounting(&v))?;
        let frames = netmon_frames(path)?;
        Ok::<_, String>(oracle::diff_accounting(
            "netmon",
            &model::account(&frames),
            &oracle,
        ))
    });
    let mut failures = Vec::new();
    let mut listed = 0;
    for (path, r) in files.iter().zip(results) {
        let name = file_name(path);
        match r {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(diffs) => {
                let expected: BTreeSet<String> = exceptions_for(&name)
                    .flat_map(|e| e.aggregate.iter().map(|s| (*s).to_owned()))
                    .collect();
                listed += expected.len();
                reconcile(&name, diffs.into_iter().collect(), expected, &mut failures);
            }
        }
    }
    for e in EXCEPTIONS {
        if !files.iter().any(|f| file_name(f) == e.file) {
            failures.push(format!("EXCEPTIONS names {}, not in the corpus", e.file));
        }
    }
    eprintln!(
        "{} captures checked against the oracle; {listed} listed aggregate exceptions",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with the oracle:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn show_layer(l: Option<&IpLayer>) -> String {
    match l {
        None => "none".to_owned(),
        Some(l) => {
            let mut s = format!("{} > {} proto {:?} {:?}", l.src, l.dst, l.proto, l.l4);
            if let Some((a, b)) = l.ports {
                let _ = write!(s, " ports {a}>{b}");
            }
            if let Some(f) = l.frag {
                let _ = write!(s, " frag id {:#x} off {} mf {}", f.id, f.offset, f.more);
            }
            s
        }
    }
}

/// Differences on one frame, by field.
fn diff_frame(ours: &Frame, theirs: &Frame) -> Vec<(Field, String)> {
    let mut out = Vec::new();
    let mut push = |f: Field, a: String, b: String| {
        out.push((f, format!("netmon {a} / tshark {b}")));
    };
    if ours.len != theirs.len {
        push(Field::Len, ours.len.to_string(), theirs.len.to_string());
    }
    match (&ours.outer, &theirs.outer) {
        (Some(a), Some(b)) => {
            if a.src != b.src {
                push(Field::Src, a.src.to_string(), b.src.to_string());
            }
            if a.dst != b.dst {
                push(Field::Dst, a.dst.to_string(), b.dst.to_string());
            }
            if a.proto != b.proto {
                push(
                    Field::Proto,
                    format!("{:?}", a.proto),
                    format!("{:?}", b.proto),
                );
            }
            if a.ports != b.ports {
                push(
                    Field::Ports,
                    format!("{:?}", a.ports),
                    format!("{:?}", b.ports),
                );
            }
            if a.l4 != b.l4 {
                push(Field::L4, format!("{:?}", a.l4), format!("{:?}", b.l4));
            }
            if a.frag != b.frag {
                push(
                    Field::Frag,
                    format!("{:?}", a.frag),
                    format!("{:?}", b.frag),
                );
            }
        }
        (None, None) => {
            let (a, b) = (ours.non_ip.as_deref(), theirs.non_ip.as_deref());
            // netmon names arp/lldp/cdp/stp; anything else it calls "?". A named one must match
            // tshark's, and tshark naming one of those must be matched.
            let named = |s: Option<&str>| matches!(s, Some("arp" | "lldp" | "cdp" | "stp"));
            if (named(a) || named(b)) && a != b {
                push(
                    Field::Class,
                    format!("non-IP {a:?}"),
                    format!("non-IP {b:?}"),
                );
            }
        }
        (a, b) => push(
            Field::Class,
            a.as_ref().map_or(format!("non-IP {:?}", ours.non_ip), |l| {
                format!("IP {}", show_layer(Some(l)))
            }),
            b.as_ref()
                .map_or(format!("non-IP {:?}", theirs.non_ip), |l| {
                    format!("IP {}", show_layer(Some(l)))
                }),
        ),
    }
    if ours.inner != theirs.inner {
        push(
            Field::Inner,
            show_layer(ours.inner.as_ref()),
            show_layer(theirs.inner.as_ref()),
        );
    }
    out
}

#[test]
fn corpus_packets_match_tshark() {
    let Some((dir, files)) = corpus_files() else {
        return;
    };
    let Some(exe) = tshark::find() else {
        netmon_testkit::tshark_missing("per-packet comparison with tshark");
        return;
    };
    let results = par_map(&files, |path| {
        let ours = netmon_frames(path)?;
        let theirs = tshark::read(&exe, path)?;
        // Self-check of the port of tshark_oracle.py: tshark's frames, accounted by this test,
        // must give the committed oracle exactly (else the harness or tshark's version is off).
        let oracle_path = dir
            .join("oracle")
            .join(format!("{}.oracle.json", file_name(path)));
        let self_check = std::fs::read(&oracle_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .and_then(|v| oracle::oracle_accounting(&v).ok())
            .map(|o| oracle::diff_accounting("tshark", &model::account(&theirs), &o));
        Ok::<_, String>((ours, theirs, self_check))
    });
    // NETMON_CORPUS_DUMP=<part of a file name> prints both sides of every frame of those files.
    let dump = std::env::var("NETMON_CORPUS_DUMP").ok();
    let mut failures = Vec::new();
    let mut frames_compared = 0usize;
    for (path, r) in files.iter().zip(results) {
        let name = file_name(path);
        let (ours, theirs, self_check) = match r {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for (k, msg) in self_check.into_iter().flatten() {
            failures.push(format!(
                "{name}: harness self-check: tshark's frames accounted here differ from the \
                 oracle JSON ({k}: {msg})"
            ));
        }
        if ours.len() != theirs.len() {
            failures.push(format!(
                "{name}: netmon read {} frames, tshark {}",
                ours.len(),
                theirs.len()
            ));
            continue;
        }
        if dump.as_deref().is_some_and(|d| name.contains(d)) {
            for (a, b) in ours.iter().zip(&theirs) {
                eprintln!("{name} #{}", a.number);
                eprintln!("  netmon {a:?}");
                eprintln!("  tshark {b:?}");
            }
        }
        let mut found = BTreeMap::new();
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a.number, b.number, "{name}: frame numbering");
            frames_compared += 1;
            for (field, msg) in diff_frame(a, b) {
                found.insert((a.number, field), msg);
            }
        }
        let expected: BTreeSet<(u32, Field)> = exceptions_for(&name)
            .flat_map(|e| {
                e.frames
                    .iter()
                    .flat_map(move |&n| e.fields.iter().map(move |&f| (n, f)))
            })
            .collect();
        reconcile(&name, found, expected, &mut failures);
    }
    eprintln!(
        "{} captures, {frames_compared} frames compared with {exe}",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn exceptions_table_is_well_formed() {
    let mut seen = BTreeSet::new();
    for e in EXCEPTIONS {
        assert!(
            e.reason.len() > 20,
            "{}: an exception needs a real reason",
            e.file
        );
        assert!(
            !e.aggregate.is_empty() || (!e.frames.is_empty() && !e.fields.is_empty()),
            "{}: an exception must name frames and fields, or aggregate items",
            e.file
        );
        assert_eq!(
            e.frames.is_empty(),
            e.fields.is_empty(),
            "{}: frames without fields (or fields without frames) match nothing",
            e.file
        );
        for &n in e.frames {
            for &f in e.fields {
                assert!(
                    seen.insert((e.file, n, f)),
                    "{} frame {n} {f:?} listed twice",
                    e.file
                );
            }
        }
        for a in e.aggregate {
            assert!(
                oracle::is_diff_name(a),
                "{}: bad aggregate item {a:?}",
                e.file
            );
        }
    }
}

/// One line of tshark output with the given non-empty fields.
fn tshark_line(fields: &[(&str, &str)]) -> String {
    tshark::FIELDS
        .iter()
        .map(|f| {
            fields
                .iter()
                .find(|(k, _)| k == f)
                .map_or(String::new(), |(_, v)| {
                    v.replace(',', &tshark::AGG.to_string())
                })
        })
        .collect::<Vec<_>>()
        .join(&tshark::SEP.to_string())
}

#[test]
fn tshark_rows_are_walked_like_the_oracle() {
    let text = [
        // ICMP error quoting IP/UDP: the quoted header is not a tunnel and not the key.
        tshark_line(&[
            ("frame.number", "1"),
            ("frame.len", "70"),
            ("frame.protocols", "eth:ethertype:ip:icmp:ip:udp:dns"),
            ("ip.src", "10.0.0.1,10.0.0.2"),
            ("ip.dst", "10.0.0.2,10.0.0.1"),
            ("ip.proto", "1,17"),
            ("ip.id", "0x0001,0x0002"),
            ("ip.flags.mf", "0,0"),
            ("ip.frag_offset", "0,0"),
            ("udp.srcport", "53"),
            ("udp.dstport", "5353"),
        ]),
        // Teredo: outer UDP, inner IPv6/ICMPv6.
        tshark_line(&[
            ("frame.number", "2"),
            ("frame.len", "119"),
            ("frame.protocols", "eth:ethertype:ip:udp:teredo:ipv6:icmpv6"),
            ("ip.src", "192.168.2.16"),
            ("ip.dst", "65.55.158.80"),
            ("ip.proto", "17"),
            ("ip.id", "0x0001"),
            ("ip.flags.mf", "0"),
            ("ip.frag_offset", "0"),
            ("ipv6.src", "fe80::1"),
            ("ipv6.dst", "ff02::2"),
            ("ipv6.nxt", "58"),
            ("udp.srcport", "3797"),
            ("udp.dstport", "3544"),
        ]),
        // A non-first IPv6 fragment (offset in 8-byte units), then its first fragment.
        tshark_line(&[
            ("frame.number", "3"),
            ("frame.len", "100"),
            ("frame.protocols", "eth:ethertype:ipv6:ipv6.fraghdr:data"),
            ("ipv6.src", "2001:db8::1"),
            ("ipv6.dst", "2001:db8::2"),
            ("ipv6.nxt", "44"),
            ("ipv6.fraghdr.ident", "0x00000007"),
            ("ipv6.fraghdr.offset", "181"),
            ("ipv6.fraghdr.more", "0"),
            ("ipv6.fraghdr.nxt", "17"),
        ]),
        tshark_line(&[
            ("frame.number", "4"),
            ("frame.len", "1514"),
            ("frame.protocols", "eth:ethertype:ipv6:ipv6.fraghdr:udp:dns"),
            ("ipv6.src", "2001:db8::1"),
            ("ipv6.dst", "2001:db8::2"),
            ("ipv6.nxt", "44"),
            ("ipv6.fraghdr.ident", "0x00000007"),
            ("ipv6.fraghdr.offset", "0"),
            ("ipv6.fraghdr.more", "1"),
            ("ipv6.fraghdr.nxt", "17"),
            ("udp.srcport", "53"),
            ("udp.dstport", "40000"),
        ]),
        // An orphan later fragment, and an ARP frame.
        tshark_line(&[
            ("frame.number", "5"),
            ("frame.len", "60"),
            ("frame.protocols", "eth:ethertype:ip:data"),
            ("ip.src", "1.1.1.1"),
            ("ip.dst", "2.2.2.2"),
            ("ip.proto", "6"),
            ("ip.id", "0x0009"),
            ("ip.flags.mf", "0"),
            ("ip.frag_offset", "3"),
        ]),
        tshark_line(&[
            ("frame.number", "6"),
            ("frame.len", "42"),
            ("frame.protocols", "eth:ethertype:arp"),
        ]),
    ]
    .join("\n");
    let frames = tshark::parse_output(&text).unwrap();
    assert_eq!(frames.len(), 6);
    let o = frames[0].outer.as_ref().unwrap();
    assert_eq!(
        (o.proto, o.ports, o.l4, &frames[0].inner),
        (Some(1), None, Some("icmp"), &None)
    );
    let (o, i) = (
        frames[1].outer.as_ref().unwrap(),
        frames[1].inner.as_ref().unwrap(),
    );
    assert_eq!(
        (o.ports, i.proto, i.dst.to_string()),
        (Some((3797, 3544)), Some(58), "ff02::2".to_owned())
    );
    let f = frames[2].outer.as_ref().unwrap();
    assert_eq!((f.proto, f.ports, f.l4), (Some(17), None, None));
    assert_eq!(
        f.frag.map(|f| (f.id, f.offset, f.more)),
        Some((7, 1448, false))
    );
    assert_eq!(frames[5].non_ip.as_deref(), Some("arp"));

    let acc = model::account(&frames);
    assert_eq!((acc.frames, acc.non_ip_frames), (6, 1));
    let keys: Vec<String> = acc.flows.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        keys,
        [
            "1|10.0.0.1|-|10.0.0.2|-",
            "6|1.1.1.1|-|2.2.2.2|-",
            "17|65.55.158.80|3544|192.168.2.16|3797",
            "17|2001:db8::1|53|2001:db8::2|40000",
        ]
    );
    // The later fragment (frame 3) took the ports of its first fragment (frame 4), found later.
    let frag_flow = OracleKey::parse("17|2001:db8::1|53|2001:db8::2|40000").unwrap();
    assert_eq!(acc.flows[&frag_flow].a_to_b, (2, 1614));
    let inner: Vec<String> = acc.inner_flows.keys().map(|k| k.to_string()).collect();
    assert_eq!(inner, ["58|fe80::1|-|ff02::2|-"]);
}
