//! `netmon interfaces` and `netmon gateways` run inside test namespaces (`ip netns exec`),
//! compared with what `ip -j` prints there.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::process::{Output, Stdio};

use common::{BIN, stderr, stdout};
use netmon_testkit::netns::{Netns, VethPair};
use serde_json::Value;

/// Runs `netmon ARGS` inside `ns`; it must succeed with nothing on stderr.
fn netmon_in(ns: &Netns, args: &[&str]) -> String {
    let out = run_in(ns, BIN, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "{args:?}");
    stdout(&out).to_owned()
}

fn run_in(ns: &Netns, program: &str, args: &[&str]) -> Output {
    ns.command(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run in namespace")
}

fn json_array(text: &str) -> Vec<Value> {
    if text.trim().is_empty() {
        return Vec::new(); // `ip -j route` prints nothing when there is no route
    }
    match serde_json::from_str(text) {
        Ok(Value::Array(a)) => a,
        other => panic!("not a JSON array: {other:?}: {text}"),
    }
}

fn ip_json(ns: &Netns, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["ip", "-j"];
    argv.extend_from_slice(args);
    json_array(&ns.ok(&argv))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// A namespace pair where `a` has a distinct MTU and IPv4 and IPv6 default routes.
fn setup(tag: &str) -> VethPair {
    let p = VethPair::new(tag);
    p.a.ok(&["ip", "link", "set", VethPair::A_IF, "mtu", "1400"]);
    p.a.ok(&["ip", "route", "add", "default", "via", VethPair::B_V4]);
    p.a.ok(&[
        "ip",
        "-6",
        "route",
        "add",
        "default",
        "via",
        VethPair::B_V6,
        "metric",
        "77",
    ]);
    p.a.wait_link_local(VethPair::A_IF);
    p
}

#[test]
fn interfaces_json_matches_ip() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    let p = setup("ci");
    let ours = json_array(&netmon_in(&p.a, &["interfaces", "--json"]));
    let ip = ip_json(&p.a, &["addr", "show"]);
    assert_eq!(ours.len(), ip.len(), "{ours:?}\n{ip:?}");
    for (o, l) in ours.iter().zip(&ip) {
        let name = s(l, "ifname");
        assert_eq!(s(o, "name"), name);
        assert_eq!(o["index"], l["ifindex"], "{name}");
        assert_eq!(o["mtu"], l["mtu"], "{name}");
        let flags: Vec<&str> = l["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(o["up"], flags.contains(&"UP"), "{name}");
        assert_eq!(o["loopback"], flags.contains(&"LOOPBACK"), "{name}");
        let oper = s(l, "operstate");
        assert_eq!(o["running"], oper == "UP" || oper == "UNKNOWN", "{name}");
        if matches!(s(l, "link_type"), "ether" | "loopback") {
            assert_eq!(o["mac"], l["address"], "{name}");
        }
        // Root in the namespace: every interface can be captured.
        assert_eq!(o["capturable"], true, "{name}");
        assert_eq!(o["capture_error"], Value::Null, "{name}");
        let ours: BTreeSet<(String, String, u64)> = o["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    s(a, "family").to_owned(),
                    s(a, "address").to_owned(),
                    a["prefix_len"].as_u64().unwrap(),
                )
            })
            .collect();
        let theirs: BTreeSet<(String, String, u64)> = l["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let family = match s(a, "family") {
                    "inet" => "ipv4",
                    "inet6" => "ipv6",
                    f => panic!("family {f}"),
                };
                (
                    family.to_owned(),
                    s(a, "local").to_owned(),
                    a["prefixlen"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "{name}");
    }
    // Not a vacuous comparison: veth0 is there with the MTU and addresses set above.
    let v = ours.iter().find(|o| o["name"] == VethPair::A_IF).unwrap();
    assert_eq!(v["mtu"], 1400);
    let addrs = v["addresses"].to_string();
    assert!(
        addrs.contains("\"10.77.0.1\"") && addrs.contains("\"fd77::1\""),
        "{addrs}"
    );
}

#[test]
fn interfaces_table() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    let p = setup("ct");
    let out = netmon_in(&p.a, &["interfaces"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("index  name"), "{out}");
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.contains(" veth0 "))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    let mac = &ip_json(&p.a, &["link", "show", "veth0"])[0]["address"];
    assert_eq!(row[2], mac.as_str().unwrap());
    assert_eq!(
        row[3..8],
        ["1400", "up,running", "yes", "10.77.0.1/24", "fd77::1/64"]
    );
    assert_eq!(row.len(), 9, "{row:?}");
    assert!(row[8].starts_with("fe80::"), "{row:?}"); // the link-local address
    // Same columns everywhere: every row's `mtu` ends where the header's does.
    let end = lines[0].find("mtu").unwrap() + 3;
    for l in &lines[1..] {
        assert!(
            l.as_bytes()[end - 1].is_ascii_digit() && l.as_bytes()[end] == b' ',
            "{l}"
        );
    }
}

#[test]
fn without_cap_net_raw_nothing_is_capturable() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    let p = setup("cn");
    // Root without CAP_NET_RAW: drop it from the bounding and inheritable sets before exec.
    let args = [
        "--bounding-set=-net_raw",
        "--inh-caps=-net_raw",
        BIN,
        "interfaces",
        "--json",
    ];
    let out = run_in(&p.a, "setpriv", &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = json_array(stdout(&out));
    assert!(!list.is_empty());
    for o in &list {
        assert_eq!(o["capturable"], false, "{o}");
        assert!(s(o, "capture_error").contains("CAP_NET_RAW"), "{o}");
    }
    let out = run_in(&p.a, "setpriv", &args[..4]);
    assert!(
        stdout(&out).contains("capture: no: needs CAP_NET_RAW"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn gateways_json_matches_ip() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    let p = setup("cg");
    let ours = json_array(&netmon_in(&p.a, &["gateways", "--json"]));
    let index = ip_json(&p.a, &["link", "show", VethPair::A_IF])[0]["ifindex"].clone();
    let mut expect = Vec::new();
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let args: &[&str] = if v6 {
            &["-6", "route", "show", "default"]
        } else {
            &["route", "show", "default"]
        };
        for r in ip_json(&p.a, args) {
            expect.push(serde_json::json!({
                "family": family,
                "gateway": r["gateway"],
                "interface": r["dev"],
                "index": index,
                "metric": r["metric"].as_u64().unwrap_or(0),
            }));
        }
    }
    assert_eq!(expect.len(), 2, "{expect:?}");
    assert_eq!(ours, expect);
    assert_eq!(ours[1]["gateway"], VethPair::B_V6);
    assert_eq!(ours[1]["metric"], 77);

    let table = netmon_in(&p.a, &["gateways"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let index = index.to_string();
    assert_eq!(
        rows,
        [
            vec!["family", "gateway", "interface", "index", "metric"],
            vec!["ipv4", VethPair::B_V4, VethPair::A_IF, &index, "0"],
            vec!["ipv6", VethPair::B_V6, VethPair::A_IF, &index, "77"],
        ]
    );

    // `b` has no default route: an empty array, a table with only its header.
    assert_eq!(netmon_in(&p.b, &["gateways", "--json"]), "[]\n");
    assert_eq!(netmon_in(&p.b, &["gateways"]).lines().count(), 1);
}

#[test]
fn closed_stdout_is_not_an_error() {
    // `netmon interfaces | head -c0`-like: the reader is gone before netmon writes.
    let mut child = std::process::Command::new(BIN)
        .arg("interfaces")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}
