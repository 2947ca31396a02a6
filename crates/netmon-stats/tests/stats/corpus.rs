//! The shared corpus through the test driver.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use netmon_stats::{Alert, AlertEvent, AlertKind, Stats, StatsConfig};

use crate::driver::Driver;

/// Runs a capture with the default configuration; returns the driver (finished).
pub(crate) fn run(path: &Path) -> Driver {
    let mut d = Driver::new(Stats::new(StatsConfig::default()).unwrap());
    d.run_file(path);
    d.finish();
    d
}

/// The closed alerts of a finished driver, checking that every raised alert closes once.
pub(crate) fn closed_alerts(d: &mut Driver) -> Vec<Alert> {
    let events = d.stats.drain_alerts();
    let raised: Vec<u64> = events
        .iter()
        .filter(|e| !e.is_closed())
        .map(|e| e.alert().id)
        .collect();
    let closed: Vec<Alert> = events
        .into_iter()
        .filter_map(|e| match e {
            AlertEvent::Closed(a) => Some(a),
            AlertEvent::Raised(_) => None,
        })
        .collect();
    let mut ids: Vec<u64> = closed.iter().map(|a| a.id).collect();
    ids.sort_unstable();
    let mut r = raised.clone();
    r.sort_unstable();
    assert_eq!(ids, r, "every raised alert is closed exactly once");
    closed
}

/// MANIFEST.tsv: file name → category.
fn categories(dir: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let cat = header.iter().position(|h| *h == "category").unwrap();
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.first()?.to_string(), f.get(cat)?.to_string()))
        })
        .collect()
}

fn tshark() -> Option<String> {
    let t = std::env::var("TSHARK").unwrap_or_else(|_| "tshark".into());
    let ok = Command::new(&t)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("NETMON_REQUIRE_TSHARK").as_deref() == Ok("1") {
        panic!("tshark not found and NETMON_REQUIRE_TSHARK=1");
    }
    ok.then_some(t)
}

#[test]
fn synscan_raises_exactly_one_vertical_scan_naming_its_source() {
    let Some(c) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let path = c.capture("ndpi_synscan.pcap");
    let mut d = run(&path);
    // The scanner, from the capture itself: the address that sent the most SYNs (our driver's
    // flow summaries) — and, where tshark is installed, the same count done by tshark.
    let mut syns: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for f in &d.ended {
        if f.proto == 6 {
            *syns.entry(f.initiator.ip).or_default() += 1;
        }
    }
    let (scanner, probes) = syns
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(ip, n)| (*ip, *n))
        .unwrap();
    assert!(probes > 900, "{probes} probe flows");
    if let Some(t) = tshark() {
        let out = Command::new(t)
            .args([
                "-r",
                path.to_str().unwrap(),
                "-Y",
                "tcp.flags.syn==1 && tcp.flags.ack==0",
                "-T",
                "fields",
                "-e",
                "ip.src",
            ])
            .output()
            .unwrap();
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            *count.entry(l.trim().to_string()).or_default() += 1;
        }
        let top = count.iter().max_by_key(|(_, n)| **n).unwrap().0.clone();
        assert_eq!(top, scanner.to_string(), "tshark's top SYN sender");
    }
    let alerts = closed_alerts(&mut d);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    eprintln!("{}", serde_json::to_string(a).unwrap());
    assert_eq!(a.kind, AlertKind::VerticalScan);
    assert_eq!(a.source.to_string(), scanner.to_string());
    assert_eq!(a.target.as_ref().unwrap().to_string(), "64.13.134.52");
    let netmon_stats::Evidence::VerticalScan {
        ports,
        failed_ratio,
        ..
    } = &a.evidence
    else {
        panic!("{a:?}")
    };
    assert!(*ports > 900, "{ports} ports");
    assert!(*failed_ratio > 0.95, "{failed_ratio}");
    assert!(a.first_seen <= a.last_seen);
}

#[test]
fn non_scan_captures_raise_no_scan_or_flood_alert() {
    let Some(c) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let cats = categories(c.dir());
    let mut checked = 0;
    let mut report = String::new();
    for path in c.captures() {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let cat = cats.get(&name).map(String::as_str).unwrap_or("?");
        let mut d = run(&path);
        let alerts = closed_alerts(&mut d);
        if cat == "portscan" {
            report.push_str(&format!("{name} ({cat}): {} alert(s)\n", alerts.len()));
            continue;
        }
        checked += 1;
        assert!(alerts.is_empty(), "{name} ({cat}): {alerts:#?}");
    }
    eprintln!("{report}");
    assert!(checked >= 75, "{checked} non-scan captures checked");
}

/// Parses `tshark -q -z io,phs`: path (names joined by `/`) → frames.
fn tshark_phs(t: &str, path: &Path) -> BTreeMap<String, u64> {
    let out = Command::new(t)
        .args(["-r", path.to_str().unwrap(), "-q", "-z", "io,phs"])
        .output()
        .unwrap();
    let mut stack: Vec<String> = Vec::new();
    let mut m = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(fpos) = l.find("frames:") else {
            continue;
        };
        let indent = l.len() - l.trim_start().len();
        let name = l.split_whitespace().next().unwrap().to_string();
        let frames: u64 = l[fpos + 7..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        stack.truncate(indent / 2);
        stack.push(name);
        m.insert(stack.join("/"), frames);
    }
    m
}

#[test]
fn hierarchy_agrees_with_tshark_below_the_application() {
    let Some(c) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let Some(t) = tshark() else {
        eprintln!("tshark not found: hierarchy cross-check skipped");
        return;
    };
    for name in [
        "zeek_wikipedia.pcap",
        "ndpi_1kxun.pcap",
        "zeek_q-in-q.pcap",
        "ndpi_synscan.pcap",
    ] {
        let path = c.capture(name);
        let d = run(&path);
        let theirs = tshark_phs(&t, &path);
        let mut stack: Vec<&str> = Vec::new();
        let mut compared = 0;
        for (depth, proto, frames, _) in d.stats.hierarchy().rows() {
            stack.truncate(depth);
            stack.push(match proto {
                "ipv4" => "ip",
                p => p,
            });
            let key = stack.join("/");
            assert_eq!(theirs.get(&key), Some(&frames), "{name}: {key}");
            compared += 1;
        }
        assert!(compared >= 3, "{name}");
    }
}
