use std::net::{IpAddr, Ipv4Addr};

use netmon_stats::Severity;

use super::*;

/// The one-line error for `text` (named `t.yaml`).
fn err(text: &str) -> String {
    match Config::from_yaml("t.yaml", text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn ok(text: &str) -> Config {
    Config::from_yaml("t.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn empty_file_and_comments_are_the_defaults() {
    assert_eq!(ok(""), Config::default());
    assert_eq!(ok("# nothing here\n\n"), Config::default());
    assert_eq!(ok("capture:\nflows:\n  timeouts:\n"), Config::default());
    assert_eq!(ok("{}"), Config::default());
}

#[test]
fn template_parses_to_the_defaults() {
    assert_eq!(ok(Config::template()), Config::default());
}

/// Every key of the template and of the reference.
fn all_keys() -> Vec<String> {
    let rec = yaml::Recorder::default();
    // One alert entry, so that its struct is visited too.
    let text = format!(
        "{}\n",
        Config::template().replace(
            "alerts: []",
            "alerts:\n  - name: x\n    rule: pps on any over 1s > 1"
        )
    );
    Config::parse_recording("t.yaml", &text, Some(&rec)).unwrap();
    let mut keys = Vec::new();
    for (path, fields) in rec.into_inner() {
        for f in fields {
            keys.push(if path.is_empty() {
                (*f).to_owned()
            } else {
                format!("{path}.{f}")
            });
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn template_names_every_key() {
    let tree = yaml::parse(Config::template()).unwrap();
    let keys = all_keys();
    assert!(keys.len() > 90, "{}", keys.len());
    for key in keys {
        if key.starts_with("alerts[]") {
            // Shown in the comment above `alerts: []`.
            let field = key.trim_start_matches("alerts[].");
            assert!(
                Config::template().contains(&format!("#   - {field}:"))
                    || Config::template().contains(&format!("#     {field}:")),
                "{key}"
            );
            continue;
        }
        let path: Vec<Seg<'_>> = key.split('.').map(Seg::Key).collect();
        assert!(tree.find(&path).is_some(), "the template lacks {key}");
    }
}

#[test]
fn reference_names_every_key() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"))
        .unwrap();
    let keys = all_keys();
    // Sections (keys whose value is a mapping) are headings, not rows.
    let is_section = |k: &String| keys.iter().any(|o| o.starts_with(&format!("{k}.")));
    for key in keys.iter().filter(|k| !is_section(k)) {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/config.md lacks `{key}`"
        );
    }
}

#[test]
fn every_key_is_read() {
    let c = ok(r#"
interfaces: [eth0, "eth1"]
capture:
  backend: afpacket
  bpf: tcp port 443
  promiscuous: false
  snaplen: 65535
  buffer_mib: 128
  immediate: true
  fanout: 7
  exclude: [192.0.2.10, "192.0.2.11:9100", "[2001:db8::1]:443"]
replay:
  speed: 2.5x
engine:
  shards: 4
aggregation:
  windows: [1s, 5m, 1h]
  series: false
  max_ifaces: 8
  max_keys_per_iface: 32
  max_hierarchy_nodes: 100
  talkers_capacity: 1000
  max_tracked_flows: 5000
flows:
  max: 0x10000
  timeouts:
    tcp_handshake: 5s
    tcp_established: 1h30m
    tcp_closed: 500ms
    udp: 2m
    icmp: 1.5s
    other: 1d
  active_timeout: off
  active_mode: split
  max_fragments: 1_000
  fragment_timeout: 15s
  tunnel_depth: 0
classify:
  enabled: false
  reassembly_bytes: 4096
  max_probe_packets: 3
  dns:
    min_window: 1m
    max_entries: 10
    clients_per_address: 16
detectors:
  vertical_scan:
    enabled: false
    min_ports: 9
    window_secs: 30
    min_failed_ratio: 0.25
    sequential_run: 0
    sequential_min_failed_ratio: 1
    syn_timeout_secs: 2
    severity: high
    high_severity_ports: 50
    max_pairs: 10
    max_ports_per_pair: 11
    max_probes: 12
  horizontal_scan:
    enabled: false
    min_hosts: 3
    window_secs: 20
    min_failed_ratio: 0.5
    severity: low
    high_severity_hosts: 4
    max_keys: 5
    max_hosts_per_key: 6
    max_probes: 7
    max_alert_hosts: 8
  arp_sweep:
    enabled: false
    min_targets: 2
    window_secs: 10
    min_unanswered_ratio: 0.1
    severity: high
    medium_severity_targets: 3
    max_senders: 4
    max_targets_per_sender: 5
    max_alert_targets: 6
  syn_flood:
    enabled: false
    max_new_flows: 100
    window_secs: 5
    severity: low
    high_failed_ratio: 0.9
    max_sources: 9
  late_grace_secs: 30
  max_pending_events: 99
alerts:
  - name: uplink-busy
    rule: bps on eth0 over 10s > 800M
  - name: quiet
    rule: "pps   on any over 60s < 1 severity high"
storage:
  enabled: false
  path: ./netmon.db
  retention:
    max_age: off
    max_size_mib: 50
api:
  enabled: false
  bind: "[::1]:8080"
  token: 0123456789abcdef0123
privileges:
  user: netmon
log:
  format: json
  level: warn,netmon_engine=debug
"#);
    assert_eq!(c.interfaces, ["eth0", "eth1"]);
    let cap = &c.capture;
    assert_eq!(cap.backend, Some(Backend::AfPacket));
    assert_eq!(cap.bpf.as_deref(), Some("tcp port 443"));
    assert!(!cap.promiscuous && cap.immediate);
    assert_eq!(
        (cap.snaplen, cap.buffer_mib, cap.fanout),
        (65535, 128, Some(7))
    );
    assert_eq!(cap.file, None);
    assert_eq!(cap.exclude.len(), 3);
    assert_eq!(cap.exclude[1].port, Some(9100));
    assert_eq!(
        cap.exclude[2].addr,
        "2001:db8::1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(c.replay.speed, Speed::Factor(2.5));
    assert_eq!(c.engine.shards, 4);
    let a = &c.aggregation;
    assert_eq!(a.windows, [1, 300, 3600].map(Duration::from_secs).to_vec());
    assert!(!a.series);
    assert_eq!(
        (a.max_ifaces, a.max_keys_per_iface, a.max_hierarchy_nodes),
        (8, 32, 100)
    );
    assert_eq!((a.talkers_capacity, a.max_tracked_flows), (1000, 5000));
    let f = &c.flows;
    assert_eq!(f.max, 65536);
    let t = &f.timeouts;
    assert_eq!(t.tcp_handshake, Duration::from_secs(5));
    assert_eq!(t.tcp_established, Duration::from_secs(5400));
    assert_eq!(t.tcp_closed, Duration::from_millis(500));
    assert_eq!(t.udp, Duration::from_secs(120));
    assert_eq!(t.icmp, Duration::from_millis(1500));
    assert_eq!(t.other, Duration::from_secs(86_400));
    assert_eq!(f.active_timeout, None);
    assert_eq!(f.active_mode, ActiveMode::Split);
    assert_eq!(f.max_fragments, 1000);
    assert_eq!(f.fragment_timeout, Duration::from_secs(15));
    assert_eq!(f.tunnel_depth, 0);
    let cl = &c.classify;
    assert!(!cl.enabled);
    assert_eq!((cl.reassembly_bytes, cl.max_probe_packets), (4096, 3));
    assert_eq!(cl.dns.min_window, Duration::from_secs(60));
    assert_eq!((cl.dns.max_entries, cl.dns.clients_per_address), (10, 16));
    let d = &c.detectors;
    let v = &d.vertical_scan;
    assert!(!v.enabled);
    assert_eq!((v.min_ports, v.window_secs, v.sequential_run), (9, 30, 0));
    assert_eq!(
        (v.min_failed_ratio, v.sequential_min_failed_ratio),
        (0.25, 1.0)
    );
    assert_eq!((v.syn_timeout_secs, v.severity), (2, Severity::High));
    assert_eq!(
        (
            v.high_severity_ports,
            v.max_pairs,
            v.max_ports_per_pair,
            v.max_probes
        ),
        (50, 10, 11, 12)
    );
    let h = &d.horizontal_scan;
    assert!(!h.enabled);
    assert_eq!(
        (h.min_hosts, h.window_secs, h.min_failed_ratio),
        (3, 20, 0.5)
    );
    assert_eq!((h.severity, h.high_severity_hosts), (Severity::Low, 4));
    assert_eq!(
        (
            h.max_keys,
            h.max_hosts_per_key,
            h.max_probes,
            h.max_alert_hosts
        ),
        (5, 6, 7, 8)
    );
    let s = &d.arp_sweep;
    assert!(!s.enabled);
    assert_eq!(
        (s.min_targets, s.window_secs, s.min_unanswered_ratio),
        (2, 10, 0.1)
    );
    assert_eq!((s.severity, s.medium_severity_targets), (Severity::High, 3));
    assert_eq!(
        (s.max_senders, s.max_targets_per_sender, s.max_alert_targets),
        (4, 5, 6)
    );
    let fl = &d.syn_flood;
    assert!(!fl.enabled);
    assert_eq!(
        (fl.max_new_flows, fl.window_secs, fl.severity),
        (100, 5, Severity::Low)
    );
    assert_eq!((fl.high_failed_ratio, fl.max_sources), (0.9, 9));
    assert_eq!((d.late_grace_secs, d.max_pending_events), (30, 99));
    assert_eq!(c.alerts.len(), 2);
    assert_eq!(c.alerts[0].name, "uplink-busy");
    assert_eq!(c.alerts[0].rule.threshold, 800e6);
    assert_eq!(
        c.alerts[1].rule.text,
        "pps on any over 60s < 1 severity high"
    );
    assert_eq!(c.alerts[1].rule.severity, Severity::High);
    assert!(!c.storage.enabled);
    assert_eq!(c.storage.path, PathBuf::from("./netmon.db"));
    assert_eq!(c.storage.retention.max_age, None);
    assert_eq!(c.storage.retention.max_size_mib, Some(50));
    assert_eq!(
        ok("storage: {retention: {max_size_mib: 0x400}}\n")
            .storage
            .retention
            .max_size_mib,
        Some(1024)
    );
    assert!(!c.api.enabled);
    assert_eq!(c.api.bind, "[::1]:8080".parse::<SocketAddr>().unwrap());
    // A plain scalar of digits stays text, leading zero and all.
    assert_eq!(
        c.api.token.as_ref().map(Secret::expose),
        Some("0123456789abcdef0123")
    );
    assert_eq!(c.privileges.user.as_deref(), Some("netmon"));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "warn,netmon_engine=debug");
}

#[test]
fn engine_config_maps_every_section() {
    let c = ok("
flows:
  max: 1000
  timeouts: {udp: 2s, tcp_closed: 250ms}
  active_timeout: 90s
  active_mode: split
classify:
  reassembly_bytes: 2048
  dns: {clients_per_address: 2}
aggregation:
  windows: [2s, 30s]
  series: false
detectors:
  syn_flood: {max_new_flows: 10}
alerts:
  - {name: a, rule: new_flows on any proto tcp over 30s > 500}
");
    let e = c.engine_config();
    assert_eq!(e.flow.max_flows, 1000);
    assert_eq!(e.flow.timeouts.udp, 2_000_000_000);
    assert_eq!(e.flow.timeouts.tcp_closed, 250_000_000);
    assert_eq!(e.flow.timeouts.tcp_established, 300_000_000_000);
    assert_eq!(e.flow.active_timeout, Some(90_000_000_000));
    assert_eq!(e.flow.active_mode, ActiveTimeout::Split);
    assert_eq!(e.classify.reassembly_bytes, 2048);
    assert_eq!(e.classify.correlator.clients_per_address, 2);
    let s = e.stats.as_ref().unwrap();
    assert_eq!(s.windows, [2, 30]);
    assert_eq!(s.series, None);
    assert_eq!(s.detectors.syn_flood.max_new_flows, 10);
    assert_eq!(
        s.detectors.thresholds,
        ["new_flows on any proto tcp over 30s > 500"]
    );
    // The pipeline accepts it (rule windows, memory budget).
    assert!(crate::Engine::classifying(e).is_ok());

    // The defaults map onto the crates' own defaults.
    let d = Config::default().engine_config();
    assert_eq!(d.flow, FlowConfig::default());
    assert_eq!(d.classify, ClassifyConfig::default());
    let s = d.stats.unwrap();
    assert_eq!(
        StatsConfig {
            series: None,
            ..s.clone()
        },
        StatsConfig::default()
    );
    assert_eq!(s.series, Some(SeriesConfig::default()));
}

#[test]
fn sources() {
    assert_eq!(Config::default().source(), Source::None);
    let c = ok("capture: {file: x.pcap}\nreplay: {speed: realtime}\n");
    assert_eq!(
        c.source(),
        Source::File {
            path: "x.pcap".into(),
            speed: Speed::Realtime
        }
    );
    let c = ok("capture: {file: x.pcap, backend: file}\n");
    assert!(matches!(c.source(), Source::File { .. }));
    let c = ok("interfaces: [eth0]\ncapture: {bpf: tcp, exclude: [192.0.2.1:53], fanout: 3}\n");
    let Source::Live { backend, config } = c.source() else {
        panic!("{:?}", c.source());
    };
    assert_eq!(backend, None);
    assert_eq!(config.interfaces, ["eth0"]);
    assert_eq!(
        config.filter.as_deref(),
        Some("(tcp) and not (host 192.0.2.1 and port 53)")
    );
    assert_eq!(config.buffer_bytes, 64 << 20);
    assert_eq!(config.fanout.map(|f| f.group), Some(3));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
    assert_eq!(parse_duration("0.5s"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
    assert_eq!(
        parse_duration("12428878.651s"),
        Some(Duration::from_millis(12_428_878_651))
    );
    for bad in [
        "",
        "30",
        "sixty",
        "5 m",
        "1w",
        "s",
        "-1s",
        "1e3s",
        "99999999999999999999d",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn durations_are_written_as_read() {
    for (d, s) in [
        (Duration::from_secs(30 * 86_400), "30d"),
        (Duration::from_secs(7200), "2h"),
        (Duration::from_secs(300), "5m"),
        (Duration::from_secs(90), "90s"),
        (Duration::ZERO, "0s"),
        (Duration::from_millis(1500), "1500ms"),
        (Duration::from_nanos(1500), "0.0000015s"),
    ] {
        assert_eq!(format_duration(d), s);
        assert_eq!(parse_duration(s), Some(d));
    }
}

proptest::proptest! {
    #[test]
    fn format_then_parse_is_identity(ms in 0u64..100_000_000_000, ns in 0u32..1_000_000_000) {
        let d = Duration::from_millis(ms);
        proptest::prop_assert_eq!(parse_duration(&format_duration(d)), Some(d));
        let d = Duration::new(ms, ns);
        proptest::prop_assert_eq!(parse_duration(&format_duration(d)), Some(d));
    }
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let c = ok(
        "flows:\n  timeouts: {udp: &t 45s, icmp: *t}\ndetectors:\n  vertical_scan: &scan {window_secs: 30, enabled: false}\n  horizontal_scan:\n    <<: *scan\n    min_hosts: 7\n",
    );
    assert_eq!(c.flows.timeouts.icmp, Duration::from_secs(45));
    assert_eq!(c.detectors.horizontal_scan.window_secs, 30);
    assert!(!c.detectors.horizontal_scan.enabled);
    assert_eq!(c.detectors.horizontal_scan.min_hosts, 7);
    // An error in an alias's target is reported where the alias is used.
    assert_eq!(
        err("capture:\n  bpf: &s nope\n  snaplen: *s\n"),
        "t.yaml:3:12: capture.snaplen: \"nope\" is not a whole number from 0 to 4294967295"
    );
    // Anchored values are reported at the value, after the anchor.
    assert_eq!(
        err("flows:\n  timeouts:\n    udp: &t soon\n"),
        "t.yaml:3:13: flows.timeouts.udp: \"soon\" is not a duration (write 30s, 500ms, 5m)"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [17, 100, 10_000, 200_000] {
        let e = err(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        if depth < 255 {
            assert_eq!(
                e,
                "t.yaml:1:17: YAML syntax: nested more than 16 levels deep"
            );
        } else {
            // The parser's own limit on flow collections comes first.
            assert_eq!(e, "t.yaml:1:256: YAML syntax: recursion limit exceeded");
        }
        let e = err(&format!("interfaces: {}", "{a: ".repeat(depth)));
        assert!(e.starts_with("t.yaml:1:"), "{e}");
    }
}

#[test]
fn secret_is_not_in_debug_output() {
    let c = ok("api: {token: abcdefghijklmnopqrstuvwxyz}\n");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("abcdefghij"), "{dbg}");
    assert!(dbg.contains("Secret(..)"));
}

#[test]
fn loopback_binds_need_no_token() {
    assert!(ok("api: {bind: '[::1]:9100'}\n").api.token.is_none());
    assert_eq!(
        ok("api: {bind: 127.0.0.2:80}\n").api.bind.ip(),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
    );
    // With a token anything goes; with the API off the bind does not matter.
    ok("api: {bind: 0.0.0.0:9100, token: 0123456789abcdef}\n");
    ok("api: {bind: 0.0.0.0:9100, enabled: false}\n");
}

#[test]
fn bad_bpf_is_left_to_the_capture() {
    let c = ok("capture:\n  bpf: \"this is (not bpf\"\n");
    assert_eq!(c.capture.bpf.as_deref(), Some("this is (not bpf"));
}

// Errors: each kind, with its exact line and column.

#[test]
fn type_errors() {
    assert_eq!(
        err("capture:\n  snaplen: abc\n"),
        "t.yaml:2:12: capture.snaplen: \"abc\" is not a whole number from 0 to 4294967295"
    );
    assert_eq!(
        err("capture:\n  snaplen: 99999999999\n"),
        "t.yaml:2:12: capture.snaplen: \"99999999999\" is not a whole number from 0 to 4294967295"
    );
    assert_eq!(
        err("capture:\n  promiscuous: yes\n"),
        "t.yaml:2:16: capture.promiscuous: \"yes\" is not true or false"
    );
    assert_eq!(
        err("interfaces: eth0\n"),
        "t.yaml:1:13: interfaces: \"eth0\" is not a list (write [eth0], or one `- eth0` per line below the key)"
    );
    assert_eq!(
        err("flows:\n  timeouts: 30s\n"),
        "t.yaml:2:13: flows.timeouts: \"30s\" is not a mapping (with keys among tcp_handshake, \
         tcp_established, tcp_closed, udp, icmp, other)"
    );
    assert_eq!(
        err("detectors:\n  arp_sweep:\n    min_unanswered_ratio: [1]\n"),
        "t.yaml:3:27: detectors.arp_sweep.min_unanswered_ratio: a list is not a number (like 0.8 or 1e6)"
    );
    assert_eq!(
        err("storage:\n  retention:\n    max_size_mib: lots\n"),
        "t.yaml:3:19: storage.retention.max_size_mib: \"lots\" is not `off` or a whole number from 0 to 18446744073709551615"
    );
}

#[test]
fn unknown_keys_name_the_known_ones() {
    assert_eq!(
        err("capture:\n  backend: pcap\n  bfp: tcp\n"),
        "t.yaml:3:3: unknown key capture.bfp, did you mean bpf? (known: backend, bpf, \
         promiscuous, snaplen, buffer_mib, immediate, fanout, file, exclude)"
    );
    assert_eq!(
        err("# comment\n\nwhatever: 1\n"),
        "t.yaml:3:1: unknown key whatever (known: interfaces, capture, replay, engine, \
         aggregation, flows, classify, enrich, detectors, alerts, storage, export, api, privileges, log)"
    );
    assert_eq!(
        err("flows:\n  timeouts:\n    tcp_establshed: 1m\n"),
        "t.yaml:3:5: unknown key flows.timeouts.tcp_establshed, did you mean tcp_established? \
         (known: tcp_handshake, tcp_established, tcp_closed, udp, icmp, other)"
    );
    // In the detector configs of netmon-stats too.
    assert!(
        err("detectors:\n  syn_flood:\n    max_new_flow: 5\n").starts_with(
            "t.yaml:3:5: unknown key detectors.syn_flood.max_new_flow, did you mean max_new_flows?"
        )
    );
}

#[test]
fn bad_durations() {
    assert_eq!(
        err("flows:\n  timeouts:\n    udp: sixty\n"),
        "t.yaml:3:10: flows.timeouts.udp: \"sixty\" is not a duration (write 30s, 500ms, 5m)"
    );
    assert_eq!(
        err("flows:\n  timeouts:\n    udp: 60\n"),
        "t.yaml:3:10: flows.timeouts.udp: \"60\" is not a duration (write 30s, 500ms, 5m)"
    );
    assert_eq!(
        err("aggregation:\n  windows: [1s, 500ms]\n"),
        "t.yaml:2:17: aggregation.windows[1]: a window is a whole number of seconds from 1s to 60m, not 500ms"
    );
    assert_eq!(
        err("flows:\n  timeouts:\n    udp: 0s\n"),
        "t.yaml:3:10: flows.timeouts.udp: a timeout must be longer than 0s"
    );
}

#[test]
fn bad_words_name_the_alternatives() {
    assert_eq!(
        err("capture:\n  backend: afpaket\n"),
        "t.yaml:2:12: capture.backend: \"afpaket\" is not one of auto, afpacket, pcap, windivert, \
         bpf, file (did you mean afpacket?)"
    );
    assert_eq!(
        err("log:\n  format: xml\n"),
        "t.yaml:2:11: log.format: \"xml\" is not one of text, json"
    );
    assert_eq!(
        err("detectors:\n  vertical_scan: {severity: critical}\n"),
        "t.yaml:2:29: detectors.vertical_scan.severity: \"critical\" is not one of low, medium, high"
    );
    assert_eq!(
        err("replay:\n  speed: fast\n"),
        "t.yaml:2:10: replay.speed: \"fast\" is not a replay speed (write max, realtime, or a \
         multiplier like 10x or 0.5x)"
    );
    assert_eq!(
        err("replay:\n  speed: 0x\n"),
        "t.yaml:2:10: replay.speed: \"0x\" is not a replay speed (write max, realtime, or a \
         multiplier like 10x or 0.5x)"
    );
    assert!(
        err("log:\n  level: loud\n")
            .starts_with("t.yaml:2:10: log.level: \"loud\" is not a log level")
    );
    assert!(err("log:\n  level: info,=debug\n").starts_with("t.yaml:2:10: log.level:"));
    assert_eq!(
        err("capture:\n  exclude: [192.0.2.1, nope]\n"),
        "t.yaml:2:24: capture.exclude[1]: \"nope\" is not ADDR or ADDR:PORT (e.g. 192.0.2.1, \
         192.0.2.1:9100, [2001:db8::1]:443)"
    );
}

/// Every name `capture.backend` lists is one `netmon_capture::Backend` parses (or `auto`).
#[test]
fn backend_words_are_the_capture_crates() {
    let mut names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
    names.insert(0, "auto");
    let mut listed = BACKENDS.to_vec();
    listed.sort_unstable();
    names.sort_unstable();
    assert_eq!(listed, names);
    for b in Backend::ALL {
        let c = ok(&format!(
            "interfaces: [x]\ncapture: {{backend: {b}, file: {}}}\n",
            if b.is_live() { "~" } else { "f.pcap" }
        ));
        assert_eq!(c.capture.backend, Some(b));
    }
}

#[test]
fn non_loopback_bind_needs_a_token() {
    assert_eq!(
        err("api:\n  bind: 0.0.0.0:9100\n"),
        "t.yaml:2:9: api.bind: 0.0.0.0:9100 is not a loopback address: set api.token, or bind to \
         127.0.0.1 or [::1]"
    );
    assert_eq!(
        err("api:\n  bind: 192.0.2.1:9100\n  token: short\n"),
        "t.yaml:3:10: api.token: a token is at least 16 characters without spaces (e.g. `openssl \
         rand -hex 32`)"
    );
    assert_eq!(
        err("api:\n  bind: localhost:9100\n"),
        "t.yaml:2:9: api.bind: \"localhost:9100\" is not an IP address and port (write \
         127.0.0.1:9100 or [::1]:9100)"
    );
}

#[test]
fn sources_that_contradict() {
    assert_eq!(
        err("interfaces: [eth0]\ncapture:\n  backend: file\n"),
        "t.yaml:3:12: capture.backend: the file backend replays capture.file, which is not set"
    );
    assert_eq!(
        err("capture:\n  backend: pcap\n"),
        "t.yaml:2:12: capture.backend: pcap captures live and needs interfaces (e.g. \
         `interfaces: [eth0]` at the top level)"
    );
    assert_eq!(
        err("interfaces: [eth0]\ncapture:\n  backend: afpacket\n  file: x.pcap\n"),
        "t.yaml:4:9: capture.file: capture.file is replayed by the file backend, but \
         capture.backend is afpacket (set backend: file or auto, or remove file)"
    );
    assert_eq!(
        err("interfaces: [eth0]\ncapture:\n  file: x.pcap\n"),
        "t.yaml:3:9: capture.file: both capture.file and interfaces are set: replay a file or \
         capture live, not both"
    );
    assert_eq!(
        err("interfaces: [eth0, eth1, eth0]\n"),
        "t.yaml:1:26: interfaces[2]: \"eth0\" is listed twice"
    );
}

#[test]
fn alert_rules_point_at_their_line() {
    assert_eq!(
        err(
            "alerts:\n  - name: ok\n    rule: bps on eth0 over 10s > 1e9\n  - name: bad\n    rule: ppz on any over 10s > 5\n"
        ),
        "t.yaml:5:11: alerts[1].rule: bad rule: word 1: unknown metric `ppz` (expected pps, bps, \
         new_flows or active_flows)"
    );
    assert_eq!(
        err("alerts:\n  - name: a\n    rule: pps on any over 10m > 5\n"),
        "t.yaml:3:11: alerts[0].rule: its window (600 s) is longer than the longest aggregation \
         window (60 s)"
    );
    assert_eq!(
        err(
            "alerts:\n  - name: a\n    rule: pps on any over 1s > 5\n  - name: a\n    rule: bps on any over 1s > 5\n"
        ),
        "t.yaml:4:11: alerts[1].name: \"a\" is already the name of alerts[0]"
    );
    assert_eq!(
        err("alerts:\n  - name: a\n"),
        "t.yaml:2:5: alerts[0]: missing key rule"
    );
    assert_eq!(
        err("alerts:\n  - name: a\n    rule: pps on any over 1s > 5\n    severity: high\n"),
        "t.yaml:4:5: unknown key alerts[0].severity (known: name, rule)"
    );
}

#[test]
fn syntax_errors_and_duplicates() {
    assert_eq!(
        err("flows:\n  max: 5\n  max: 6\n"),
        "t.yaml:3:3: flows.max: duplicate key (first given at line 2)"
    );
    let e = err("capture: [1, 2\n");
    assert_eq!(e, "t.yaml:1:10: YAML syntax: unclosed bracket '['");
    let e = err("capture:\n\tbpf: x\n");
    assert!(e.starts_with("t.yaml:2:"), "{e}");
    let e = err("a: 1\n---\nb: 2\n");
    assert!(e.starts_with("t.yaml:3:1: YAML syntax: "), "{e}");
    assert_eq!(
        err("[1, 2]\n"),
        "t.yaml:1:1: a list is not a mapping (with keys among interfaces, capture, replay, \
         engine, aggregation, flows, classify, enrich, detectors, alerts, storage, export, api, privileges, log)"
    );
    assert_eq!(
        err("capture:\n  [a]: 1\n"),
        "t.yaml:2:3: capture: a list is not a key name"
    );
}

#[test]
fn semantic_ranges_point_at_the_key() {
    assert_eq!(
        err("detectors:\n  vertical_scan:\n    min_failed_ratio: 1.5\n"),
        "t.yaml:3:23: detectors.vertical_scan.min_failed_ratio: 1.5 is not a share between 0 and 1"
    );
    assert_eq!(
        err("detectors:\n  syn_flood:\n    window_secs: 0\n"),
        "t.yaml:3:18: detectors.syn_flood.window_secs: 0 is out of range (1 to 3600 seconds)"
    );
    assert_eq!(
        err("capture:\n  snaplen: 10\n"),
        "t.yaml:2:12: capture.snaplen: 10 is out of range (64 to 262144 bytes)"
    );
    assert_eq!(
        err("aggregation:\n  windows: []\n"),
        "t.yaml:2:12: aggregation.windows: at least one window is needed (e.g. [1s, 10s, 60s])"
    );
    assert_eq!(
        err("engine:\n  shards: 1000\n"),
        "t.yaml:2:11: engine.shards: 1000 is more than 256 shards (0 means one per core)"
    );
    assert_eq!(
        err("aggregation:\n  max_keys_per_iface: 100000\n"),
        "t.yaml:2:23: aggregation.max_keys_per_iface: the window rings would need 8926 MiB \
         (max_ifaces x max_keys_per_iface x longest window x 24 bytes); the limit is 512 MiB"
    );
}

#[test]
fn load_reads_files_and_names_them() {
    let dir = std::env::temp_dir().join(format!("netmon-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("netmon.yaml");
    std::fs::write(&p, "flows:\n  max: many\n").unwrap();
    let e = Config::load(&p).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2:8: flows.max: \"many\" is not a whole number from 0 to 18446744073709551615",
            p.display()
        )
    );
    assert_eq!(e.pos(), Some(Pos { line: 2, column: 8 }));
    assert_eq!(e.path(), "flows.max");
    assert!(matches!(e.kind(), ErrorKind::Type { .. }));

    std::fs::write(&p, "interfaces: [lo]\n").unwrap();
    assert_eq!(Config::load(&p).unwrap().interfaces, ["lo"]);

    let big = "#".repeat(MAX_FILE_BYTES as usize + 10);
    std::fs::write(&p, &big).unwrap();
    assert!(matches!(
        Config::load(&p).unwrap_err().kind(),
        ErrorKind::TooLarge(n) if *n == MAX_FILE_BYTES + 10
    ));

    let missing = dir.join("missing.yaml");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Io(_)));
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read it: ", missing.display()))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resolved_shards() {
    assert_eq!(EngineSection { shards: 3 }.resolved_shards(), 3);
    assert!(EngineSection { shards: 0 }.resolved_shards() >= 1);
}

proptest::proptest! {
    /// Whatever the text, loading returns (a config or an error) without panicking, and
    /// errors are one line.
    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
        if let Err(e) = Config::from_yaml("p.yaml", &text) {
            let line = e.to_string();
            proptest::prop_assert!(!line.contains('\n'), "{}", line);
        }
    }

    /// Text made of YAML's structural characters and config keys (more likely to get deep).
    #[test]
    fn yaml_like_text_never_panics(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "capture", "flows", "timeouts", "udp", ":", " ", "\n", "  ", "- ", "[", "]", "{",
                "}", ",", "&a", "*a", "30s", "x", "'", "\"", "#", "alerts", "name", "rule", "~",
                "? ", "!!str", "|", ">", "---", "\t", "0x10", "api", "bind", "0.0.0.0:1",
            ]),
            0..60,
        )
    ) {
        let text: String = parts.concat();
        if let Err(e) = Config::from_yaml("p.yaml", &text) {
            let line = e.to_string();
            proptest::prop_assert!(!line.contains('\n'), "{}", line);
        }
    }
}

#[test]
fn enrich_section() {
    let c = ok(
        "enrich:\n  scope: false\n  geoip: /x/city.mmdb\n  trackers:\n    - path: /x/ads.txt\n      category: Ads\n",
    );
    let e = c.enrich_config();
    assert!(!e.scope);
    assert_eq!(
        e.geoip.as_deref(),
        Some(std::path::Path::new("/x/city.mmdb"))
    );
    assert_eq!(
        e.trackers,
        [("/x/ads.txt".into(), netmon_enrich::trackers::Category::Ads)]
    );
    assert!(Config::default().enrich_config().scope);
    assert_eq!(
        err("enrich:\n  trackers:\n    - path: a.txt\n      category: spyware\n"),
        "t.yaml:4:17: enrich.trackers[0].category: \"spyware\" is not one of ads, analytics, social, fingerprinting, cdn, other"
    );
}

#[test]
fn export_section() {
    let c = ok(
        "export:\n  ipfix:\n    collector: 192.0.2.10:4739\n    transport: tcp\n  syslog:\n    server: '[::1]:514'\n    flows: true\n",
    );
    assert_eq!(
        c.export.ipfix.collector,
        Some("192.0.2.10:4739".parse().unwrap())
    );
    assert_eq!(c.export.ipfix.transport, ExportTransport::Tcp);
    assert_eq!(c.export.syslog.server, Some("[::1]:514".parse().unwrap()));
    assert!(c.export.syslog.flows);
    assert_eq!(Config::default().export.ipfix.collector, None);
    assert!(
        err("export:\n  ipfix:\n    collector: nfcapd\n")
            .contains("export.ipfix.collector: \"nfcapd\" is not an IP address and port"),
        "{}",
        err("export:\n  ipfix:\n    collector: nfcapd\n")
    );
    assert!(err("export:\n  syslog:\n    facility: 24\n").contains("24 is not a facility"));
}
