//! `netmon stats` and `netmon alerts` end to end: the built binary on the fixtures and on the
//! shared corpus's SYN scan.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod common;
use common::*;

/// ndpi_synscan.pcap from the corpus (`None` when `NETMON_SKIP_CORPUS=1`).
fn synscan() -> Option<String> {
    let c = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR"))?;
    Some(c.capture("ndpi_synscan.pcap").to_str().unwrap().to_owned())
}

/// Runs netmon, which must fail with `code` and one `netmon: ...` line on stderr (and print
/// nothing); that line.
fn fails(args: &[&str], code: i32) -> String {
    let out = netmon(args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    assert_eq!(stdout(&out), "", "{args:?}");
    let err = stderr(&out);
    assert!(err.starts_with("netmon: "), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    err.to_owned()
}

/// Parses JSON lines.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// An RFC 3339 UTC timestamp with nanoseconds, as netmon writes them.
fn is_ts(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    s.len() == 30
        && s.ends_with('Z')
        && b.get(10) == Some(&b'T')
        && b.get(19) == Some(&b'.')
        && s.chars().filter(char::is_ascii_digit).count() == 23
}

const ALERT_FIELDS: [&str; 9] = [
    "id",
    "ts",
    "kind",
    "source",
    "target",
    "severity",
    "evidence",
    "first_seen",
    "last_seen",
];

/// Checks the documented shape of one alert record (docs/stats.md, "Alerts").
fn check_alert(a: &Value) {
    assert_eq!(keys(a), ALERT_FIELDS.into_iter().collect(), "{a}");
    assert!(a["id"].is_u64(), "{a}");
    for t in ["ts", "first_seen", "last_seen"] {
        assert!(is_ts(&a[t]), "{t}: {a}");
    }
    assert!(a["first_seen"].as_str() <= a["last_seen"].as_str(), "{a}");
    let kinds = [
        "vertical_scan",
        "horizontal_scan",
        "arp_sweep",
        "syn_flood",
        "threshold",
    ];
    assert!(kinds.contains(&a["kind"].as_str().unwrap()), "{a}");
    assert!(
        ["low", "medium", "high"].contains(&a["severity"].as_str().unwrap()),
        "{a}"
    );
    assert!(a["source"].is_string(), "{a}");
    assert!(a["target"].is_string() || a["target"].is_null(), "{a}");
    assert!(a["evidence"].is_object(), "{a}");
}

#[test]
fn alerts_on_the_syn_scan_text() {
    let Some(f) = synscan() else { return };
    let text = ok(&["alerts", &f]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let l = lines[0];
    // `<first_seen> <severity> <kind> <source> -> <target>: <evidence> [until <last_seen>]`
    assert!(
        l.starts_with("2010-07-04T20:24:16.274870000Z high vertical_scan 172.16.0.8 -> 64.13.134.52: 1000 ports, "),
        "{l}"
    );
    assert!(l.contains("100% failed within 60 s"), "{l}");
    assert!(l.ends_with("[until 2010-07-04T20:24:39.360213000Z]"), "{l}");
    // Standard input works the same.
    let out = Command::new(BIN)
        .args(["alerts", "-"])
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), text);
}

#[test]
fn alerts_on_the_syn_scan_json() {
    let Some(f) = synscan() else { return };
    let text = ok(&["alerts", &f, "--json"]);
    let v = json_lines(&text);
    assert_eq!(v.len(), 1, "{text}");
    let a = &v[0];
    check_alert(a);
    assert_eq!(a["id"], 0);
    assert_eq!(a["kind"], "vertical_scan");
    assert_eq!(a["source"], "172.16.0.8");
    assert_eq!(a["target"], "64.13.134.52");
    assert_eq!(a["severity"], "high");
    assert_eq!(a["first_seen"], "2010-07-04T20:24:16.274870000Z");
    assert_eq!(a["last_seen"], "2010-07-04T20:24:39.360213000Z");
    let e = &a["evidence"];
    assert_eq!(
        keys(e),
        BTreeSet::from([
            "ports",
            "ports_sample",
            "probes",
            "failed_ratio",
            "sequential",
            "window_secs"
        ])
    );
    assert_eq!(e["ports"], 1000);
    assert_eq!(e["failed_ratio"], 1.0);
    assert_eq!(e["sequential"], false);
    assert_eq!(e["window_secs"], 60);
    let sample = e["ports_sample"].as_array().unwrap();
    assert_eq!(sample.len(), 16, "{e}");
    // nmap -sS sends 1994 SYNs to the 1000 ports (tshark), each a probe flow.
    let probes = e["probes"].as_u64().unwrap();
    assert!((1000..=1994).contains(&probes), "{e}");
}

#[test]
fn alerts_on_normal_traffic_print_nothing() {
    let demo = fixture("demo.pcap");
    assert_eq!(ok(&["alerts", &demo]), "");
    assert_eq!(ok(&["alerts", &demo, "--json"]), "");
}

#[test]
fn a_threshold_rule_fires() {
    let demo = fixture("demo.pcap");
    // demo.pcap: 203 frames within 0.4 s, one (partial) 1 s window at 203 packets/s.
    let rule = "pps on any over 1s > 10";
    let text = ok(&["alerts", &demo, "--rule", rule, "--json"]);
    let v = json_lines(&text);
    assert_eq!(v.len(), 1, "{text}");
    let a = &v[0];
    check_alert(a);
    assert_eq!(a["kind"], "threshold");
    assert_eq!(a["source"], "any");
    assert_eq!(a["target"], Value::Null);
    assert_eq!(a["severity"], "medium");
    let e = &a["evidence"];
    assert_eq!(
        keys(e),
        BTreeSet::from([
            "rule",
            "metric",
            "proto",
            "window_secs",
            "value",
            "peak",
            "threshold"
        ])
    );
    assert_eq!(e["rule"], rule);
    assert_eq!(e["metric"], "pps");
    assert_eq!(e["proto"], "all");
    assert_eq!(e["window_secs"], 1);
    assert_eq!(e["threshold"], 10.0);
    assert_eq!(e["peak"], 203.0);
    // The text form names the rule.
    let t = ok(&["alerts", &demo, "--rule", rule]);
    assert_eq!(t.lines().count(), 1, "{t}");
    assert!(
        t.contains(" medium threshold any: pps on any over 1s > 10 (value 203.000, peak 203.000)"),
        "{t}"
    );
    // A rule that is not crossed stays quiet; several rules are checked independently.
    let two = ok(&[
        "alerts",
        &demo,
        "--json",
        "--rule",
        "pps on any over 1s > 1000",
        "--rule",
        "pps on if0 proto arp over 1s > 3 severity high",
    ]);
    let v = json_lines(&two);
    assert_eq!(v.len(), 1, "{two}");
    assert_eq!(v[0]["source"], "if0");
    assert_eq!(v[0]["severity"], "high");
    assert_eq!(v[0]["evidence"]["proto"], "arp");
    assert_eq!(v[0]["evidence"]["peak"], 4.0, "demo.pcap has 4 ARP frames");
}

#[test]
fn a_bad_rule_is_a_usage_error() {
    let demo = fixture("demo.pcap");
    let err = fails(&["alerts", &demo, "--rule", "pps on any 1s > 10"], 2);
    assert!(err.contains("word 4: expected `over`"), "{err}");
    assert!(err.contains("found `1s`"), "{err}");
    fails(
        &["alerts", &demo, "--rule", "packets on any over 1s > 1"],
        2,
    );
    fails(&["alerts", &demo, "--rule", "pps on any over 2h > 1"], 2);
}

#[test]
fn missing_or_unreadable_files_exit_1() {
    let missing = std::env::temp_dir().join("netmon-stats-test-no-such-file.pcap");
    let missing = missing.to_str().unwrap();
    for cmd in ["stats", "alerts"] {
        let err = fails(&[cmd, missing], 1);
        assert!(err.contains(missing), "{err}");
        fails(&[cmd, &fixture("not_a_capture.txt")], 1);
    }
}

#[test]
fn stats_text_has_every_section() {
    let demo = fixture("demo.pcap");
    let text = ok(&["stats", &demo]);
    let mut at = 0;
    for section in [
        "Capture\n",
        "\nProtocol hierarchy (frames, bytes)\n",
        "\nWindow 1 s, all protocols",
        "\nWindow 10 s, all protocols",
        "\nWindow 60 s, all protocols",
        "\nTop hosts by bytes\n",
        "\nTop hosts by packets\n",
        "\nTop host pairs by bytes\n",
        "\nTop host pairs by packets\n",
        "\nTop services by bytes\n",
        "\nTop services by packets\n",
        "\nAlerts (0)\n",
    ] {
        let i = text[at..]
            .find(section)
            .unwrap_or_else(|| panic!("missing or out of order: {section:?}\n{text}"));
        at += i + section.len();
    }
    // demo.pcap: 203 frames, 4 of them ARP (capinfos, tshark).
    assert!(
        text.contains("  packets 203, bytes 51237, IP 199, other 4, parse errors 0, flows "),
        "{text}"
    );
    assert!(text.contains("eth  "), "{text}");
    assert!(text.contains("frames:203 bytes:51237"), "{text}");
    // `--top 2`: two rows per ranking.
    let top2 = ok(&["stats", &demo, "--top", "2"]);
    let after = top2.split("\nTop hosts by bytes\n").nth(1).unwrap();
    let rows: Vec<&str> = after.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{top2}");
}

#[test]
fn stats_json_document() {
    let demo = fixture("demo.pcap");
    let text = ok(&["stats", &demo, "--json"]);
    assert_eq!(text.lines().count(), 1, "one document, one line");
    let d: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys(&d),
        BTreeSet::from(["summary", "hierarchy", "series", "talkers", "alerts"])
    );
    let s = &d["summary"];
    assert_eq!(s["packets"], 203);
    assert_eq!(s["bytes"], 51237);
    assert_eq!(s["non_ip_packets"], 4);
    assert!(is_ts(&s["first"]) && is_ts(&s["last"]), "{s}");
    assert!(s["flows"].as_u64().unwrap() > 0, "{s}");
    // Hierarchy: a tree of {protocol, frames, bytes, children}; the roots hold every frame.
    let roots = d["hierarchy"].as_array().unwrap();
    let frames: u64 = roots.iter().map(|r| r["frames"].as_u64().unwrap()).sum();
    assert_eq!(frames, 203);
    assert_eq!(
        keys(&roots[0]),
        BTreeSet::from(["protocol", "frames", "bytes", "children"])
    );
    // Series: the three default windows, each with an `all` row covering every packet.
    let series = d["series"].as_array().unwrap();
    let windows: BTreeSet<u64> = series
        .iter()
        .map(|p| p["window_secs"].as_u64().unwrap())
        .collect();
    assert_eq!(windows, BTreeSet::from([1, 10, 60]));
    for w in [1, 10, 60] {
        let all: Vec<&Value> = series
            .iter()
            .filter(|p| p["window_secs"] == w && p["proto"] == "all")
            .collect();
        let packets: u64 = all.iter().map(|p| p["packets"].as_u64().unwrap()).sum();
        assert_eq!(packets, 203, "window {w}");
    }
    for p in series {
        assert!(is_ts(&p["start"]) && is_ts(&p["end"]), "{p}");
        for k in [
            "pps",
            "bps",
            "new_flows_per_s",
            "active_flows",
            "layer",
            "iface",
        ] {
            assert!(!p[k].is_null(), "{k}: {p}");
        }
    }
    // Talkers: six rankings of at most --top rows.
    let t = &d["talkers"];
    assert_eq!(
        keys(t),
        BTreeSet::from([
            "hosts_by_bytes",
            "hosts_by_packets",
            "pairs_by_bytes",
            "pairs_by_packets",
            "ports_by_bytes",
            "ports_by_packets"
        ])
    );
    for (_, rows) in t.as_object().unwrap() {
        let rows = rows.as_array().unwrap();
        assert!(!rows.is_empty() && rows.len() <= 10, "{rows:?}");
        assert_eq!(keys(&rows[0]), BTreeSet::from(["key", "count", "error"]));
    }
    assert_eq!(d["alerts"], Value::Array(vec![]));
}

#[test]
fn stats_json_alerts_are_the_alert_records() {
    let Some(f) = synscan() else { return };
    let d: Value = serde_json::from_str(&ok(&["stats", &f, "--json"])).unwrap();
    let alerts = d["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    check_alert(&alerts[0]);
    let line = ok(&["alerts", &f, "--json"]);
    assert_eq!(
        json_lines(&line),
        alerts.clone(),
        "the same record as netmon alerts"
    );
}

#[test]
fn series_only_for_the_windows_asked() {
    let demo = fixture("demo.pcap");
    let d: Value =
        serde_json::from_str(&ok(&["stats", &demo, "--window", "1s,10s", "--json"])).unwrap();
    let windows: BTreeSet<u64> = d["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["window_secs"].as_u64().unwrap())
        .collect();
    assert_eq!(windows, BTreeSet::from([1, 10]));
    let text = ok(&["stats", &demo, "--window", "5m"]);
    assert!(text.contains("\nWindow 300 s, all protocols"), "{text}");
    assert!(!text.contains("\nWindow 1 s"), "{text}");
    assert!(!text.contains("\nWindow 60 s"), "{text}");
}

#[test]
fn bad_windows_are_usage_errors() {
    let demo = fixture("demo.pcap");
    for w in ["", "foo", "0s", "1s,,10s", "-1s", "2h"] {
        let err = fails(&["stats", &demo, &format!("--window={w}")], 2);
        assert!(err.contains("window"), "{w:?}: {err}");
    }
}

#[test]
fn output_is_deterministic() {
    let mut files = vec![fixture("demo.pcap")];
    files.extend(synscan());
    for f in &files {
        for args in [
            vec!["stats", f, "--json"],
            vec!["alerts", f, "--json"],
            vec!["stats", f],
        ] {
            let a = netmon(&args);
            let b = netmon(&args);
            assert_eq!(a.status.code(), Some(0), "{args:?}");
            assert!(a.stdout == b.stdout, "{args:?}: two runs differ");
        }
    }
    // And in a different working directory (nothing depends on it).
    let mut c = Command::new(BIN);
    c.args([
        "alerts",
        &files[0],
        "--json",
        "--rule",
        "pps on any over 1s > 10",
    ]);
    let here = c.output().unwrap().stdout;
    let there = c
        .current_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .output()
        .unwrap()
        .stdout;
    assert!(!here.is_empty());
    assert_eq!(here, there);
}
