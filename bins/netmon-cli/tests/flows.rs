//! `netmon flows` end to end: the built binary on the fixtures, on crafted captures and (for
//! determinism) on the shared corpus.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use etherparse::PacketBuilder;
use netmon_capture::{
    CaptureSource, LinkType, Next, PcapNgWriter, PcapWriter, Timestamp, TsPrecision, open_file,
};
use netmon_engine::{Engine, EngineConfig, FlowRecord};
use netmon_flow::EndReason;
use netmon_packet::Escaped;
use serde_json::Value;

mod common;
use common::*;

/// `netmon flows FILE --format jsonl [extra]`, which must succeed; the parsed records.
fn jsonl(file: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let mut args = vec!["flows", file, "--format", "jsonl"];
    args.extend_from_slice(extra);
    let out = netmon(&args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "{args:?}");
    let text = stdout(&out).to_owned();
    let v = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (v, text)
}

/// A minimal RFC 4180 reader: rows of fields (quoted fields may hold `,`, `"` and newlines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted CSV field");
    assert!(
        field.is_empty() && row.is_empty(),
        "CSV does not end with a newline"
    );
    rows
}

/// The documented record fields: every `` `name` `` in the first column of a table row of
/// docs/flows.md's "Record fields" section.
fn documented_fields() -> BTreeSet<String> {
    let path = fixtures().join("../docs/flows.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Record fields"))
        .expect("docs/flows.md has a '## Record fields' section");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Keys in every record, in output order.
const ALWAYS: &[&str] = &[
    "id",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "packets_c2s",
    "bytes_c2s",
    "packets_s2c",
    "bytes_s2c",
    "payload_bytes_c2s",
    "payload_bytes_s2c",
    "first_seen",
    "last_seen",
    "duration_ns",
    "state",
    "end_reason",
    "vlan",
    "iface",
    "iface_name",
    "icmp_errors",
    "app",
    "app_guess",
    "sni",
    "alpn",
    "alpn_server",
    "tls_version",
    "ech",
    "ja4",
    "http",
    "dns",
    "quic_version",
    "ssh_client",
    "ssh_server",
    "stun_software",
    "domain",
];
/// Keys present only when they apply.
const SOMETIMES: &[&str] = &[
    "icmp_id", "tcp_c2s", "tcp_s2c", "quoted", "outer", "scope", "geo", "asn", "tracker",
];

const CSV_HEADER: &str = "id,proto,src_ip,src_port,dst_ip,dst_port,packets_c2s,bytes_c2s,\
    packets_s2c,bytes_s2c,payload_bytes_c2s,payload_bytes_s2c,first_seen,last_seen,duration_ns,\
    state,end_reason,vlan,iface,iface_name,icmp_errors,outer,app,app_guess,sni,alpn,http_host,\
    dns_query,domain,ja4";

/// The name the table shows for a JSON record: SNI, first HTTP host, first DNS question,
/// domain (as `FlowRecord::name`).
fn best_name(r: &Value) -> String {
    let first = |list: &str, key: &str| {
        r[list]
            .as_array()
            .and_then(|a| a.iter().find_map(|x| x[key].as_str()))
            .map(str::to_owned)
    };
    r["sni"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| first("http", "host"))
        .or_else(|| first("dns", "query"))
        .or_else(|| r["domain"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}

// ------------------------------------------------------------------------------ formats

#[test]
fn jsonl_records_have_the_documented_keys() {
    let documented = documented_fields();
    for k in ALWAYS.iter().chain(SOMETIMES) {
        assert!(
            documented.contains(*k),
            "docs/flows.md does not document `{k}`"
        );
    }
    let (recs, _) = jsonl(&fixture("demo.pcap"), &[]);
    assert_eq!(recs.len(), 24, "demo.pcap has 24 flows");
    let mut seen_optional = BTreeSet::new();
    let mut ids = Vec::new();
    for r in &recs {
        let o = r.as_object().unwrap();
        for k in ALWAYS {
            assert!(o.contains_key(*k), "{k} missing in {r}");
        }
        for k in o.keys() {
            assert!(
                ALWAYS.contains(&k.as_str()) || SOMETIMES.contains(&k.as_str()),
                "undocumented key {k}"
            );
            if SOMETIMES.contains(&k.as_str()) {
                seen_optional.insert(k.clone());
            }
        }
        // Per-field shape and consistency.
        let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
        ids.push(n("id"));
        assert!(n("packets_c2s") + n("packets_s2c") > 0);
        assert!(n("payload_bytes_c2s") <= n("bytes_c2s"));
        assert!(n("payload_bytes_s2c") <= n("bytes_s2c"));
        let proto = r["proto"].as_str().unwrap();
        let has_ports = matches!(proto, "tcp" | "udp" | "sctp" | "udplite" | "dccp");
        assert_eq!(r["src_port"].is_u64(), has_ports, "{r}");
        assert_eq!(r["dst_port"].is_u64(), has_ports, "{r}");
        assert_eq!(o.contains_key("tcp_c2s"), proto == "tcp", "{r}");
        assert_eq!(o.contains_key("tcp_s2c"), proto == "tcp", "{r}");
        if o.contains_key("icmp_id") {
            assert!(proto.starts_with("icmp"), "{r}");
        }
        assert_eq!(
            r["state"] == "none",
            proto != "tcp",
            "TCP flows have a state: {r}"
        );
        let first = r["first_seen"].as_str().unwrap();
        assert!(
            first.len() == 30 && first.ends_with('Z'),
            "RFC 3339 with ns: {first}"
        );
        assert!(r["last_seen"].as_str().unwrap() >= first);
        assert!(r["duration_ns"].as_i64().unwrap() >= 0);
        assert!(r["end_reason"].is_string(), "ended records have a reason");
        assert!(r["vlan"].is_array());
        assert_eq!(r["iface"], 0);
        assert_eq!(r["iface_name"], Value::Null, "classic pcap has no names");
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "ids are unique");
    for k in ["icmp_id", "tcp_c2s", "tcp_s2c"] {
        assert!(seen_optional.contains(k), "demo.pcap shows {k}");
    }
    // A TCP record's flag counts.
    let closed = recs.iter().find(|r| r["state"] == "closed").unwrap();
    assert_eq!(closed["end_reason"], "fin");
    assert!(closed["tcp_c2s"]["fin"].as_u64().unwrap() >= 1);
    assert_eq!(closed["tcp_c2s"]["syn"], 1);
    assert_eq!(closed["tcp_s2c"]["syn"], 1, "the SYN-ACK counts as a SYN");
}

#[test]
fn csv_and_table_carry_the_same_records() {
    for file in ["demo.pcap", "pcapng_multi.pcapng", "pcap_ns.pcap"] {
        let f = fixture(file);
        let (recs, _) = jsonl(&f, &[]);
        let out = netmon(&["flows", &f, "--format", "csv"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = parse_csv(stdout(&out));
        assert_eq!(rows[0].join(","), CSV_HEADER, "{file}");
        assert_eq!(rows.len() - 1, recs.len(), "{file}: one CSV row per record");
        for (row, r) in rows[1..].iter().zip(&recs) {
            assert_eq!(row.len(), 30, "{file}: {row:?}");
            let col = |name: &str| {
                let i = rows[0].iter().position(|h| h == name).unwrap();
                row[i].as_str()
            };
            // Scalars as in the JSON record (null as an empty field).
            for k in [
                "id",
                "proto",
                "src_ip",
                "src_port",
                "dst_ip",
                "dst_port",
                "packets_c2s",
                "bytes_c2s",
                "packets_s2c",
                "bytes_s2c",
                "payload_bytes_c2s",
                "payload_bytes_s2c",
                "first_seen",
                "last_seen",
                "duration_ns",
                "state",
                "end_reason",
                "iface",
                "icmp_errors",
                "app",
                "app_guess",
                "sni",
                "domain",
                "ja4",
            ] {
                let want = match &r[k] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                assert_eq!(col(k), want, "{file}: {k}");
            }
            let vlan: Vec<String> = r["vlan"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string())
                .collect();
            assert_eq!(col("vlan"), vlan.join(";"));
            assert_eq!(col("iface_name"), r["iface_name"].as_str().unwrap_or(""));
            let alpn: Vec<&str> = r["alpn"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(col("alpn"), alpn.join(";"));
            let first = |list: &str, key: &str| {
                r[list]
                    .as_array()
                    .and_then(|a| a.iter().find_map(|x| x[key].as_str()))
                    .unwrap_or("")
                    .to_owned()
            };
            assert_eq!(col("http_host"), first("http", "host"));
            assert_eq!(col("dns_query"), first("dns", "query"));
            match r.get("outer") {
                Some(o) => assert_eq!(serde_json::from_str::<Value>(col("outer")).unwrap(), *o),
                None => assert_eq!(col("outer"), ""),
            }
        }

        let out = netmon(&["flows", &f]);
        assert_eq!(out.status.code(), Some(0));
        let table = stdout(&out);
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "proto", "src", "dst", "pkts>", "bytes>", "pkts<", "bytes<", "duration", "state",
                "end", "app", "name"
            ]
        );
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), recs.len(), "{file}: one table row per record");
        for (row, r) in rows.iter().zip(&recs) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            assert!(cols.len() >= 12, "{row}");
            assert_eq!(cols[0], r["proto"]);
            assert!(cols[1].contains(r["src_ip"].as_str().unwrap()), "{row}");
            assert_eq!(cols[3], r["packets_c2s"].to_string());
            assert_eq!(cols[6], r["bytes_s2c"].to_string());
            assert_eq!(cols[8], r["state"]);
            assert_eq!(cols[9], r["end_reason"]);
            let app = match (r["app"].as_str(), r["app_guess"].as_bool().unwrap()) {
                (Some(a), true) => format!("{a}?"),
                (Some(a), false) => a.to_owned(),
                (None, _) => "-".to_owned(),
            };
            assert_eq!(cols[10], app, "{row}");
            assert!(row.ends_with(&best_name(r)), "{row}");
        }
    }
    // Interface names and indexes of a multi-interface pcapng.
    let (recs, _) = jsonl(&fixture("pcapng_multi.pcapng"), &[]);
    let names: Vec<(u64, Option<&str>)> = recs
        .iter()
        .map(|r| (r["iface"].as_u64().unwrap(), r["iface_name"].as_str()))
        .collect();
    assert!(names.contains(&(0, Some("eth0"))) && names.contains(&(1, Some("tun0"))));
    assert!(
        names.contains(&(3, None)),
        "an unnamed interface: {names:?}"
    );
}

#[test]
fn empty_capture_prints_only_headers() {
    let f = fixture("empty.pcap");
    let out = netmon(&["flows", &f, "--format", "jsonl"]);
    assert_eq!((out.status.code(), stdout(&out)), (Some(0), ""));
    let out = netmon(&["flows", &f, "--format", "csv"]);
    assert_eq!(stdout(&out), format!("{CSV_HEADER}\n"));
    let out = netmon(&["flows", &f]);
    assert_eq!(stdout(&out).lines().count(), 1);
}

// ------------------------------------------------------------------------------ filters

/// A predicate on a JSON record.
type Pred<'a> = dyn Fn(&Value) -> bool + 'a;

#[test]
fn filters_select_exactly_the_matching_records() {
    let f = fixture("demo.pcap");
    let (all, text) = jsonl(&f, &[]);
    let lines: Vec<&str> = text.lines().collect();
    let port = |r: &Value, k: &str| r[k].as_u64();
    let total = |r: &Value, k: &str| {
        r[format!("{k}_c2s")].as_u64().unwrap() + r[format!("{k}_s2c")].as_u64().unwrap()
    };
    let cases: &[(&str, &Pred<'_>)] = &[
        ("tcp and dst port 443", &|r| {
            r["proto"] == "tcp" && port(r, "dst_port") == Some(443)
        }),
        ("udp and (port 53 or port 5353)", &|r| {
            r["proto"] == "udp"
                && [port(r, "src_port"), port(r, "dst_port")]
                    .iter()
                    .any(|p| matches!(p, Some(53 | 5353)))
        }),
        ("not tcp", &|r| r["proto"] != "tcp"),
        ("icmp or proto 58", &|r| {
            r["proto"] == "icmp" || r["proto"] == "icmpv6"
        }),
        ("bytes > 3000 and packets >= 10", &|r| {
            total(r, "bytes") > 3000 && total(r, "packets") >= 10
        }),
        ("src net 10.0.0.0/8 and not dst net 10.0.0.0/8", &|r| {
            r["src_ip"].as_str().unwrap().starts_with("10.")
                && !r["dst_ip"].as_str().unwrap().starts_with("10.")
        }),
        ("state closed and reason fin", &|r| {
            r["state"] == "closed" && r["end_reason"] == "fin"
        }),
        ("vlan 10 or vlan 20", &|r| {
            r["vlan"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == 10 || v == 20)
        }),
        ("dst portrange 1-1023", &|r| {
            port(r, "dst_port").is_some_and(|p| (1..=1023).contains(&p))
        }),
    ];
    for (expr, pred) in cases {
        let (got, got_text) = jsonl(&f, &["--filter", expr]);
        let want: Vec<&str> = all
            .iter()
            .zip(&lines)
            .filter(|(r, _)| pred(r))
            .map(|(_, l)| *l)
            .collect();
        assert!(!want.is_empty(), "{expr}: the fixture has matching flows");
        assert!(want.len() < all.len(), "{expr}: not everything matches");
        assert_eq!(got_text.lines().collect::<Vec<_>>(), want, "{expr}");
        assert!(got.iter().all(pred));
    }
    // The filter applies to CSV and the table too, and --stats counts what was printed.
    let out = netmon(&[
        "flows",
        &f,
        "--format",
        "csv",
        "--filter",
        "tcp and dst port 443",
        "--stats",
    ]);
    assert_eq!(stdout(&out).lines().count(), 1 + 4);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.starts_with("packets 203 ("), "{err}");
    assert!(
        err.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("classified: ")),
        "{err}"
    );
    assert!(err.contains("flows 24 (4 printed)"), "{err}");
    let out = netmon(&["flows", &f, "--filter", "tcp and dst port 443"]);
    assert_eq!(stdout(&out).lines().count(), 1 + 4);
}

/// A bad filter is reported on one line naming the position, nothing is printed, and the exit
/// status is 2: bad usage, as clap's own errors.
const BAD_FILTER_EXIT: i32 = 2;

#[test]
fn bad_filters_are_usage_errors() {
    let f = fixture("demo.pcap");
    for (expr, msg) in [
        (
            "tcp and prot 6",
            "filter: unknown filter term 'prot' at character 8",
        ),
        (
            "port 70000",
            "filter: '70000' is not a port (0-65535) at character 0",
        ),
        ("(tcp", "filter: expected ')' at character 4"),
        ("", "filter: expected a filter term at character 0"),
        (
            "net 10.0.0.0/33",
            "filter: '10.0.0.0/33': prefix length must be 0..=32 at character 0",
        ),
    ] {
        for format in ["table", "jsonl", "csv"] {
            let out = netmon(&["flows", &f, "--format", format, "--filter", expr]);
            assert_eq!(out.status.code(), Some(BAD_FILTER_EXIT), "{expr:?}");
            assert_eq!(
                stdout(&out),
                "",
                "{expr:?}: nothing printed, not even a header"
            );
            assert_eq!(
                stderr(&out),
                format!("netmon: {msg} (see docs/flows.md for the syntax)\n"),
                "{expr:?}"
            );
        }
    }
    // Bad options are clap's usage errors: exit 2.
    for args in [
        &["flows", "--format", "xml", "x.pcap"][..],
        &["flows"],
        &["flows", "x.pcap", "--filter"],
        &["flows", "x.pcap", "--bogus"],
    ] {
        let out = netmon(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&out), "");
    }
}

// ------------------------------------------------------------------------------ errors

#[test]
fn missing_and_bad_files_are_one_line_errors() {
    for format in ["table", "jsonl", "csv"] {
        let out = netmon(&["flows", "/nonexistent/x.pcap", "--format", format]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out), "", "no header before the file opened");
        assert_eq!(
            stderr(&out),
            "netmon: /nonexistent/x.pcap: No such file or directory (os error 2) (check the path)\n"
        );
    }
    for (file, what) in [
        ("not_a_capture.txt", "not a pcap or pcapng capture file"),
        ("unsupported_linktype.pcap", "unsupported link type"),
    ] {
        let out = netmon(&["flows", &fixture(file)]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out), "");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("netmon: ") && err.contains(what), "{err}");
    }
}

/// The records the engine gives for the complete packets of a capture (what `netmon flows`
/// must print before reporting a damaged file), as JSON lines, and whether reading failed.
fn engine_jsonl(path: &str) -> (String, bool) {
    let mut src = open_file(path).unwrap();
    let mut engine: Engine = Engine::new(EngineConfig::default()).unwrap();
    let mut recs: Vec<FlowRecord> = Vec::new();
    let failed = loop {
        match src.next_packet() {
            Ok(Next::Packet(p)) => engine.process(&p.meta, p.data, &mut recs),
            Ok(Next::Timeout) => {}
            Ok(Next::End) => break false,
            Err(_) => break true,
        }
    };
    engine.finish(EndReason::EndOfCapture, &mut recs);
    let mut out = Vec::new();
    for r in &recs {
        r.write_json(&mut out).unwrap();
        out.push(b'\n');
    }
    (String::from_utf8(out).unwrap(), failed)
}

#[test]
fn damaged_files_print_the_complete_packets_flows_then_fail() {
    for (file, packets) in [
        ("truncated.pcap", 3),
        ("truncated.pcapng", 2),
        ("corrupt_caplen.pcap", 3),
    ] {
        let f = fixture(file);
        let (want, failed) = engine_jsonl(&f);
        assert!(failed, "{file} is damaged");
        assert!(!want.is_empty(), "{file}: its complete packets make flows");
        let out = netmon(&["flows", &f, "--format", "jsonl", "--stats"]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert_eq!(stdout(&out), want, "{file}");
        let err: Vec<&str> = stderr(&out).lines().collect();
        assert_eq!(err.len(), 3, "{file}: the summary, then the error: {err:?}");
        assert!(
            err[0].starts_with(&format!("packets {packets} (")),
            "{err:?}"
        );
        assert!(err[1].starts_with("classified: "), "{err:?}");
        assert!(err[2].starts_with(&format!("netmon: {f}: ")), "{err:?}");
        assert!(
            err[2].contains(&format!("after {packets} ")),
            "{file}: the message says how far it got: {err:?}"
        );
    }
}

// ------------------------------------------------------------------------------ pipes, stdin

#[test]
fn closed_pipe_is_a_quiet_success() {
    // 20 000 flows: several MB in every format, far more than the pipe and the 256 KiB buffer.
    let path = temp_path("flows", "many.pcap");
    let mut w = PcapWriter::create(&path, LinkType::ETHERNET, 0, TsPrecision::Nano).unwrap();
    for i in 0..20_000u16 {
        let f = eth_ipv4_udp(10_000 + i, 53, b"x");
        let ts = Timestamp::from_secs_nanos(1_700_000_000, u32::from(i) * 1000);
        w.write_packet(ts, &f, f.len() as u32).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    for format in ["table", "jsonl", "csv"] {
        let mut child = Command::new(BIN)
            .args(["flows", "--format", format])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "{format}");
        drop(reader); // `| head -1`
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{format}: no noise on a closed pipe");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn reads_stdin() {
    let f = fixture("demo.pcap");
    let (_, want) = jsonl(&f, &[]);
    let mut child = Command::new(BIN)
        .args(["flows", "-", "--format", "jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&f).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), want);
}

// ------------------------------------------------------------------------------ determinism

#[test]
fn two_runs_are_byte_identical() {
    let mut files = vec![fixture("demo.pcap"), fixture("pcapng_multi.pcapng")];
    if let Some(c) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) {
        for name in [
            "ndpi_1kxun.pcap",
            "zeek_tunnels-vxlan.pcap",
            "zeek_ipv4-fragmented-1.pcap",
        ] {
            files.push(c.capture(name).to_str().unwrap().to_owned());
        }
    }
    for f in &files {
        for format in ["jsonl", "csv", "table"] {
            let args = ["flows", f.as_str(), "--format", format];
            let (a, b) = (netmon(&args), netmon(&args));
            assert_eq!(a.status.code(), Some(0), "{f}: {}", stderr(&a));
            assert!(!a.stdout.is_empty());
            assert!(
                a.stdout == b.stdout,
                "{f} --format {format}: two runs differ"
            );
        }
    }
}

// ------------------------------------------------------------------------------ hostile names

/// An interface name with an ANSI escape, quotes, commas, line breaks, a tab, a backslash, DEL
/// and invalid UTF-8.
const HOSTILE: &[u8] = b"ev\x1b[31mil\",x\n\r\t\\\x7f\xff\xfe;'";

/// A pcapng with one interface named [`HOSTILE`] and one UDP packet on it. The writer takes
/// names as `&str`, so the name is written as a placeholder of the same length and patched.
fn hostile_pcapng() -> PathBuf {
    let placeholder = "Z".repeat(HOSTILE.len());
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let i = w
        .add_interface(&placeholder, LinkType::ETHERNET, 0)
        .unwrap();
    let f = eth_ipv4_udp(40000, 53, b"q");
    w.write_packet(
        Timestamp::from_secs_nanos(1_700_000_000, 0),
        i,
        &f,
        f.len() as u32,
    )
    .unwrap();
    let mut bytes = w.into_inner().unwrap();
    let at = bytes
        .windows(placeholder.len())
        .position(|x| x == placeholder.as_bytes())
        .unwrap();
    bytes[at..at + HOSTILE.len()].copy_from_slice(HOSTILE);
    let path = temp_path("flows", "hostile.pcapng");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn hostile_interface_names_are_escaped_in_every_format() {
    let path = hostile_pcapng();
    let p = path.to_str().unwrap();
    // What the reader makes of the name: invalid UTF-8 becomes U+FFFD.
    let name = String::from_utf8_lossy(HOSTILE).into_owned();
    // No format may pass a control character, C1 code, bidi override or other non-ASCII byte
    // of the name through: the engine escapes interface names once (`Escaped`: printable
    // ASCII, `\xNN` for every other byte), so every format prints printable ASCII only.
    let clean = |out: &Output, format: &str, strict: bool| {
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(out));
        let text = stdout(out);
        let bad = |c: char| c != '\n' && (c < ' ' || (strict && (c.is_control() || !c.is_ascii())));
        assert!(
            !text.chars().any(bad),
            "{format}: a control character in the output: {text:?}"
        );
        text.to_owned()
    };

    let escaped = Escaped::new(name.as_bytes()).to_string();
    let text = clean(&netmon(&["flows", p, "--format", "jsonl"]), "jsonl", true);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let r: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(
        r["iface_name"],
        escaped.as_str(),
        "JSON carries the escaped name"
    );

    let text = clean(&netmon(&["flows", p, "--format", "csv"]), "csv", true);
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 2, "header and one row: {text:?}");
    assert_eq!(rows[1].len(), 30, "{:?}", rows[1]);
    let got = &rows[1][19];
    assert_eq!(*got, escaped);
    assert!(got.bytes().all(|b| (0x20..0x7f).contains(&b)), "{got:?}");
    assert!(got.starts_with(r"ev\x1b[31mil\"), "{got:?}");

    let text = clean(&netmon(&["flows", p]), "table", true);
    assert_eq!(text.lines().count(), 2, "{text:?}");
    let _ = std::fs::remove_file(&path);
}

// ------------------------------------------------------------------------------ hostile packets

/// A 10 KB server name: control characters, an ANSI escape, quotes, a backslash, a comma, a
/// bidi override and invalid UTF-8, repeated.
fn hostile_sni() -> Vec<u8> {
    let unit: &[u8] = b"\x1b[2J\x00\x07\r\n\"\\,;\xe2\x80\xae\xff\xfe<script>";
    unit.iter().copied().cycle().take(10_000).collect()
}

/// A TLS 1.2 ClientHello record (RFC 8446 §4.1.2) with `sni` in its server_name extension
/// (RFC 6066 §3) and ALPN `h2`.
fn client_hello(sni: &[u8]) -> Vec<u8> {
    let be16 = |n: usize| u16::try_from(n).unwrap().to_be_bytes();
    let mut names = vec![0u8]; // host_name
    names.extend(be16(sni.len()));
    names.extend(sni);
    let mut sni_ext = be16(names.len()).to_vec();
    sni_ext.extend(names);
    let alpn_ext = [0, 3, 2, b'h', b'2'];
    let mut exts = Vec::new();
    for (t, body) in [(0u16, &sni_ext[..]), (16, &alpn_ext[..])] {
        exts.extend(t.to_be_bytes());
        exts.extend(be16(body.len()));
        exts.extend(body);
    }
    let mut body = vec![3, 3];
    body.extend([7u8; 32]); // random
    body.push(0); // session id
    body.extend([0, 2, 0x13, 0x01]); // one cipher suite
    body.extend([1, 0]); // null compression
    body.extend(be16(exts.len()));
    body.extend(exts);
    let mut hs = vec![1];
    hs.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![22, 3, 1];
    rec.extend(be16(hs.len()));
    rec.extend(hs);
    rec
}

/// A capture with hostile strings where netmon takes names from packets: a TLS connection whose
/// ClientHello (over several segments) names [`hostile_sni`], an HTTP request whose Host holds
/// invalid UTF-8 and quotes, and a DNS query whose labels hold control bytes.
fn hostile_packets() -> PathBuf {
    let path = temp_path("flows", "hostile-packets.pcap");
    let mut w = PcapWriter::create(&path, LinkType::ETHERNET, 0, TsPrecision::Nano).unwrap();
    let mut n = 0u32;
    let mut put = |f: Vec<u8>| {
        n += 1;
        let ts = Timestamp::from_secs_nanos(1_700_000_000, n * 1000);
        w.write_packet(ts, &f, f.len() as u32).unwrap();
    };
    let tcp = |sport: u16, dport: u16, c2s: bool, seq: u32, ack: u32, flags: &str, data: &[u8]| {
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let (src, dst, sp, dp) = if c2s {
            (a, b, sport, dport)
        } else {
            (b, a, dport, sport)
        };
        let mut t = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 64240);
        for c in flags.chars() {
            t = match c {
                'S' => t.syn(),
                'A' => t.ack(ack),
                'P' => t.psh(),
                _ => t,
            };
        }
        let mut f = Vec::new();
        t.write(&mut f, data).unwrap();
        f
    };
    for (port, payload) in [
        (443, client_hello(&hostile_sni())),
        (
            80,
            b"GET /a\"b\\c HTTP/1.1\r\nHost: ev\xffil\"\\.example\r\n\r\n".to_vec(),
        ),
    ] {
        put(tcp(40000, port, true, 100, 0, "S", b""));
        put(tcp(40000, port, false, 500, 101, "SA", b""));
        put(tcp(40000, port, true, 101, 501, "A", b""));
        let mut seq = 101;
        for chunk in payload.chunks(1400) {
            put(tcp(40000, port, true, seq, 501, "AP", chunk));
            seq += chunk.len() as u32;
        }
    }
    // DNS query for "\x1b[31m\x00.\"x\".example" (label bytes are arbitrary in DNS).
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in [&b"\x1b[31m\x00"[..], b"\"x\"", b"example"] {
        q.push(label.len() as u8);
        q.extend(label);
    }
    q.extend([0, 0, 1, 0, 1]);
    put(eth_ipv4_udp(40001, 53, &q));
    path
}

#[test]
fn hostile_strings_from_packets_are_bounded_and_escaped_in_every_format() {
    let path = hostile_packets();
    let p = path.to_str().unwrap();
    // Printable ASCII only, plus the line breaks between records and `…` after a cut string.
    let clean = |format: &str| {
        let out = netmon(&["flows", p, "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        let text = stdout(&out).to_owned();
        assert!(
            text.chars()
                .all(|c| c == '\n' || c == '…' || (' '..='~').contains(&c)),
            "{format}: unescaped output: {text:?}"
        );
        assert!(
            text.lines().all(|l| l.len() < 8 * 1024),
            "{format}: a line longer than 8 KB"
        );
        text
    };
    let text = clean("jsonl");
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_port = |port: u64| {
        recs.iter()
            .find(|r| r["dst_port"] == port)
            .unwrap_or_else(|| panic!("no flow to port {port}: {text}"))
    };
    // The SNI: the first MAX_TEXT bytes kept, escaped (at most 4 characters per byte), then `…`.
    let tls = by_port(443);
    assert_eq!(tls["app"], "tls");
    let sni = tls["sni"].as_str().unwrap();
    let want = netmon_classify::Text::new(&hostile_sni()).to_escaped_string();
    assert_eq!(sni, want);
    assert!(sni.ends_with('…') && sni.len() <= 4 * netmon_classify::MAX_TEXT + '…'.len_utf8());
    assert!(sni.starts_with(r#"\x1b[2J\x00\x07\x0d\x0a\"\\,;\xe2\x80\xae\xff\xfe<script>"#));
    assert_eq!(tls["alpn"], serde_json::json!(["h2"]));
    let http = by_port(80);
    assert_eq!(http["app"], "http");
    assert_eq!(http["http"][0]["host"], r#"ev\xffil\"\\.example"#);
    assert_eq!(http["http"][0]["path"], r#"/a\"b\\c"#);
    let dns = by_port(53);
    assert_eq!(dns["dns"][0]["query"], r#"\x1b[31m\x00.\"x\".example"#);

    let text = clean("csv");
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 4, "header and three flows: {text}");
    let sni_col = rows[0].iter().position(|h| h == "sni").unwrap();
    assert!(
        rows.iter().any(|r| r[sni_col] == sni),
        "the CSV SNI is the JSON one"
    );

    let text = clean("table");
    let row = text.lines().find(|l| l.contains(":443")).unwrap();
    assert!(
        row.ends_with(&format!("{}…", &sni[..64])),
        "the table cuts long names: {row}"
    );
    let _ = std::fs::remove_file(&path);
}

/// `--shards N` runs the sharded pipeline: the same records (ids and DNS domains aside), in
/// another order; 0 shards is a usage error.
#[test]
fn shards_give_the_same_records() {
    let demo = common::fixture("demo.pcap");
    let norm = |out: String| -> Vec<String> {
        let mut v: Vec<String> = out
            .lines()
            .map(|l| {
                let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
                r["id"] = 0.into();
                r["domain"] = serde_json::Value::Null;
                r.to_string()
            })
            .collect();
        v.sort();
        v
    };
    let one = norm(common::ok(&["flows", "--format", "jsonl", &demo]));
    assert!(one.len() > 10);
    for n in ["1", "2", "3"] {
        let got = norm(common::ok(&[
            "flows", "--format", "jsonl", "--shards", n, &demo,
        ]));
        assert_eq!(got, one, "--shards {n}");
    }
    let o = common::netmon(&["flows", "--shards", "0", &demo]);
    assert_eq!(o.status.code(), Some(2));
}

/// `--scope`, `--geoip`, `--asn` and `--trackers` add their fields to the JSON records (and
/// only there); a bad list argument is a usage error naming what to write.
#[test]
fn enrichment_flags_add_scope_geo_asn_and_tracker() {
    use netmon_testkit::mmdb::{Value as V, build};
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let file = corpus.dir().join("ndpi_1kxun.pcap");
    let file = file.to_str().unwrap();
    let dir = std::env::temp_dir().join(format!("netmon-enrich-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let city = dir.join("city.mmdb");
    std::fs::write(
        &city,
        build(
            "GeoLite2-City",
            &[(
                "161.117.0.0".parse().unwrap(),
                16,
                V::map([
                    (
                        "city",
                        V::map([("names", V::map([("en", V::str("Singapore"))]))]),
                    ),
                    ("country", V::map([("iso_code", V::str("SG"))])),
                ]),
            )],
        ),
    )
    .unwrap();
    let asn = dir.join("asn.mmdb");
    std::fs::write(
        &asn,
        build(
            "GeoLite2-ASN",
            &[(
                "161.117.0.0".parse().unwrap(),
                16,
                V::map([
                    ("autonomous_system_number", V::U32(45102)),
                    ("autonomous_system_organization", V::str("Alibaba")),
                ]),
            )],
        ),
    )
    .unwrap();
    let ads = dir.join("ads.txt");
    std::fs::write(&ads, "# test list\n0.0.0.0 1kxun.mobi\n").unwrap();
    let trackers = format!("ads={}", ads.display());
    let (plain, _) = jsonl(file, &[]);
    let (recs, _) = jsonl(
        file,
        &[
            "--scope",
            "--geoip",
            city.to_str().unwrap(),
            "--asn",
            asn.to_str().unwrap(),
            "--trackers",
            &trackers,
        ],
    );
    assert_eq!(recs.len(), plain.len());
    assert!(plain.iter().all(|r| r.get("scope").is_none()));
    let mut geo = 0;
    let mut tracked = 0;
    for (r, p) in recs.iter().zip(&plain) {
        assert_eq!(r["id"], p["id"]);
        let scope = &r["scope"];
        assert!(scope["src"].is_string() && scope["dst"].is_string(), "{r}");
        let dst: std::net::IpAddr = r["dst_ip"].as_str().unwrap().parse().unwrap();
        let in_db = matches!(dst, std::net::IpAddr::V4(v) if v.octets()[..2] == [161, 117]);
        if in_db {
            geo += 1;
            assert_eq!(r["geo"]["dst"]["country"], "SG", "{r}");
            assert_eq!(r["geo"]["dst"]["city"], "Singapore", "{r}");
            assert_eq!(r["asn"]["dst"]["number"], 45102, "{r}");
        } else {
            assert!(r["geo"].get("dst").is_none(), "{r}");
        }
        let names = r.to_string();
        if r.get("tracker").is_some() {
            tracked += 1;
            assert_eq!(r["tracker"]["domain"], "1kxun.mobi");
            assert_eq!(r["tracker"]["category"], "ads");
            assert_eq!(r["tracker"]["list"], "ads.txt");
            assert!(names.contains("1kxun.mobi"));
        }
    }
    assert!(geo > 0 && tracked > 0, "{geo} {tracked}");
    // Errors: a list without a category, an unknown category, a missing file.
    for (arg, want) in [
        ("ads.txt".to_owned(), "write CATEGORY=FILE"),
        (
            format!("spyware={}", ads.display()),
            "is not one of ads, analytics",
        ),
        (
            "ads=/nonexistent/list.txt".to_owned(),
            "/nonexistent/list.txt",
        ),
    ] {
        let out = netmon(&["flows", file, "--format", "jsonl", "--trackers", &arg]);
        assert_ne!(out.status.code(), Some(0), "{arg}");
        let err = stderr(&out);
        assert!(
            err.contains(want) && err.lines().count() == 1,
            "{arg}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
