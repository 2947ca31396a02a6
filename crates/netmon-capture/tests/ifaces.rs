//! `ifaces::interfaces()` and `ifaces::default_gateways()` inside test namespaces, called from a
//! thread that entered the namespace with `setns` (not `ip netns exec`), compared with what
//! `ip -j` prints there.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::net::IpAddr;

use netmon_capture::ifaces::{self, DefaultRoute, IpFamily, NetInterface};
use netmon_testkit::netns::{Netns, VethPair};
use serde_json::Value;

fn ip_json(ns: &Netns, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["ip", "-j"];
    argv.extend_from_slice(args);
    let out = ns.ok(&argv);
    // `ip -j route show` prints nothing at all when there is no route.
    if out.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{argv:?}: {e}: {out}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Our interfaces against `ip -j addr show`: the same indexes, names, MTUs, flags, MACs and
/// addresses.
fn assert_matches_ip(ours: &[NetInterface], ip: &[Value]) {
    let ip_idx: Vec<u64> = ip.iter().map(|l| l["ifindex"].as_u64().unwrap()).collect();
    let our_idx: Vec<u64> = ours.iter().map(|i| u64::from(i.index)).collect();
    assert_eq!(our_idx, ip_idx);
    for (i, l) in ours.iter().zip(ip) {
        assert_eq!(i.name, str_of(l, "ifname"));
        assert_eq!(i.mtu.map(u64::from), l["mtu"].as_u64(), "{}", i.name);
        let flags: Vec<&str> = l["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(i.up, flags.contains(&"UP"), "{}: {flags:?}", i.name);
        assert_eq!(i.loopback, flags.contains(&"LOOPBACK"), "{}", i.name);
        // `ip` hides IFF_RUNNING; the kernel sets it when the operational state is up
        // (or unknown, as on loopback).
        let oper = str_of(l, "operstate");
        assert_eq!(
            i.running,
            oper == "UP" || oper == "UNKNOWN",
            "{}: {oper}",
            i.name
        );
        if matches!(str_of(l, "link_type"), "ether" | "loopback") {
            assert_eq!(
                i.mac.map(|m| m.to_string()).as_deref(),
                Some(str_of(l, "address")),
                "{}",
                i.name
            );
        }
        let ours: BTreeSet<String> = i.addresses.iter().map(ToString::to_string).collect();
        let theirs: BTreeSet<String> = l["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", str_of(a, "local"), a["prefixlen"]))
            .collect();
        assert_eq!(ours, theirs, "{}", i.name);
    }
}

/// `(gateway, interface, metric)` of `ip -j route show default` entries, one per next hop.
fn ip_defaults(ns: &Netns, v6: bool) -> Vec<(Option<IpAddr>, Option<String>, u32)> {
    let args: &[&str] = if v6 {
        &["-6", "route", "show", "default"]
    } else {
        &["route", "show", "default"]
    };
    let mut out = Vec::new();
    for r in ip_json(ns, args) {
        let metric = r["metric"]
            .as_u64()
            .map_or(0, |m| u32::try_from(m).unwrap());
        let hops = match r["nexthops"].as_array() {
            Some(h) => h.clone(),
            None => vec![r.clone()],
        };
        for h in hops {
            let gw = h["gateway"]
                .as_str()
                .or_else(|| h["via"]["host"].as_str())
                .map(|g| g.parse().unwrap());
            out.push((gw, h["dev"].as_str().map(str::to_owned), metric));
        }
    }
    out
}

fn ours(routes: &[DefaultRoute], family: IpFamily) -> Vec<(Option<IpAddr>, Option<String>, u32)> {
    routes
        .iter()
        .filter(|r| r.family == family)
        .map(|r| (r.gateway, r.interface.clone(), r.metric))
        .collect()
}

fn assert_gateways_match(p: &VethPair, routes: &[DefaultRoute]) {
    assert_eq!(ours(routes, IpFamily::V4), ip_defaults(&p.a, false));
    assert_eq!(ours(routes, IpFamily::V6), ip_defaults(&p.a, true));
    let veth0 =
        p.a.run(|| nix::net::if_::if_nametoindex(VethPair::A_IF).unwrap());
    for r in routes {
        assert_eq!(r.index, Some(veth0), "{r:?}");
    }
}

#[test]
fn interfaces_and_gateways_of_a_setns_thread() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    let p = VethPair::new("ifc");
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

    let (list, routes) = p.a.run(|| {
        (
            ifaces::interfaces().unwrap(),
            ifaces::default_gateways().unwrap(),
        )
    });
    assert_matches_ip(&list, &ip_json(&p.a, &["addr", "show"]));
    let v = list.iter().find(|i| i.name == VethPair::A_IF).unwrap();
    assert_eq!(v.mtu, Some(1400));
    assert!(v.up && v.running && !v.loopback);
    assert!(v.capture.is_yes(), "{:?}", v.capture); // tests run as root
    let addrs: Vec<String> = v.addresses.iter().map(ToString::to_string).collect();
    assert!(addrs.contains(&"10.77.0.1/24".to_owned()), "{addrs:?}");
    assert!(addrs.contains(&"fd77::1/64".to_owned()), "{addrs:?}");
    // Only this namespace's interfaces: `b`'s veth1 is not here.
    assert!(!list.iter().any(|i| i.name == VethPair::B_IF));

    assert_eq!(routes.len(), 2, "{routes:?}");
    assert_eq!(routes[0].gateway, Some(VethPair::B_V4.parse().unwrap()));
    assert_eq!(routes[1].gateway, Some(VethPair::B_V6.parse().unwrap()));
    assert_eq!(routes[1].metric, 77);
    assert_gateways_match(&p, &routes);

    // The namespace `b` has no default route; this thread (in the test's own namespace)
    // still sees its own, not `a`'s.
    assert!(p.b.run(|| ifaces::default_gateways().unwrap()).is_empty());
}

#[test]
fn peer_down_is_up_but_not_running() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    let p = VethPair::new("ifd");
    p.b.ok(&["ip", "link", "set", VethPair::B_IF, "down"]);
    // The kernel updates the operational state asynchronously (linkwatch): wait for it.
    let oper = |ns: &Netns| {
        let l = ip_json(ns, &["link", "show", VethPair::A_IF]);
        str_of(&l[0], "operstate").to_owned()
    };
    let t0 = std::time::Instant::now();
    while oper(&p.a) == "UP" {
        assert!(
            t0.elapsed().as_secs() < 10,
            "veth0 still up 10 s after its peer went down"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let list = p.a.run(|| ifaces::interfaces().unwrap());
    assert_matches_ip(&list, &ip_json(&p.a, &["addr", "show"]));
    let v = list.iter().find(|i| i.name == VethPair::A_IF).unwrap();
    assert!(v.up && !v.running, "{v:?}");
    let list = p.b.run(|| ifaces::interfaces().unwrap());
    let v = list.iter().find(|i| i.name == VethPair::B_IF).unwrap();
    assert!(!v.up && !v.running);
}

#[test]
fn multipath_device_and_ipv6_via_routes() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    let p = VethPair::new("ifm");
    p.a.ok(&[
        "ip",
        "route",
        "add",
        "default",
        "metric",
        "10",
        "nexthop",
        "via",
        "10.77.0.2",
        "dev",
        "veth0",
        "nexthop",
        "via",
        "10.77.0.3",
        "dev",
        "veth0",
    ]);
    // A device route, and an IPv4 default through an IPv6 gateway (RTA_VIA, Linux >= 5.2).
    // (`-4`: without it, `ip` makes a route with an IPv6 gateway an IPv6 route.)
    p.a.ok(&[
        "ip", "-4", "route", "add", "default", "dev", "veth0", "metric", "20",
    ]);
    p.a.ok(&[
        "ip", "-4", "route", "add", "default", "via", "inet6", "fd77::2", "dev", "veth0", "metric",
        "30",
    ]);
    // Routes of another table are not default routes of the main table.
    p.a.ok(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.77.0.9",
        "table",
        "100",
    ]);
    let routes = p.a.run(|| ifaces::default_gateways().unwrap());
    assert_gateways_match(&p, &routes);
    let v4 = ours(&routes, IpFamily::V4);
    assert_eq!(v4.len(), 4, "{v4:?}");
    assert_eq!(v4[0].0, Some("10.77.0.2".parse().unwrap()));
    assert_eq!(v4[1].0, Some("10.77.0.3".parse().unwrap()));
    assert_eq!((v4[2].0, v4[2].2), (None, 20));
    assert_eq!((v4[3].0, v4[3].2), (Some("fd77::2".parse().unwrap()), 30));
    assert!(ours(&routes, IpFamily::V6).is_empty());
}
