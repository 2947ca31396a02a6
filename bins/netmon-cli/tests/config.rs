//! `netmon config init` and `netmon config check FILE` end to end: the template, the summary,
//! one-line errors and exit codes.

mod common;
use common::*;

/// Writes `text` to a fresh file; its path.
fn file(name: &str, text: &str) -> String {
    let p = temp_path("config", name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Runs `netmon config check FILE`, which must fail with exit 1 and one line on stderr.
fn check_fails(path: &str) -> String {
    let out = netmon(&["config", "check", path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err.trim_end().to_owned()
}

#[test]
fn init_prints_a_template_that_checks_ok() {
    let template = ok(&["config", "init"]);
    assert!(template.starts_with("# netmon configuration"));
    assert_eq!(template, netmon_engine::config::Config::template());
    let path = file("template.yaml", &template);
    let out = ok(&["config", "check", &path]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(format!("{path}: ok").as_str()));
    let rest: Vec<&str> = lines.collect();
    assert_eq!(
        rest,
        [
            "  source:    none (set interfaces or capture.file)",
            "  engine:    1 shard, up to 2097152 flows, windows 1s, 10s, 1m",
            "  alerts:    detectors vertical_scan, horizontal_scan, arp_sweep, syn_flood; 0 threshold rules",
            "  storage:   /var/lib/netmon/netmon.db (max age 30d, max size 1024 MiB)",
            "  api:       http://127.0.0.1:9100 (no token)",
            "  run as:    the starting user",
            "  log:       text, level info",
        ]
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn check_summarises_what_the_file_sets() {
    let path = file(
        "live.yaml",
        "interfaces: [eth0, eth1]\n\
         capture: {backend: afpacket, bpf: tcp, exclude: ['192.0.2.1:9100']}\n\
         engine: {shards: 2}\n\
         detectors: {arp_sweep: {enabled: false}}\n\
         alerts:\n  - {name: busy, rule: bps on eth0 over 10s > 1G}\n\
         storage: {enabled: false}\n\
         api: {bind: 0.0.0.0:9100, token: 0123456789abcdef}\n\
         privileges: {user: nobody}\n\
         log: {format: json, level: debug}\n",
    );
    let out = ok(&["config", "check", &path]);
    assert_eq!(
        out,
        format!(
            "{path}: ok\n\
             \x20 source:    live on eth0, eth1 (afpacket backend), filter \"(tcp) and not (host 192.0.2.1 and port 9100)\"\n\
             \x20 engine:    2 shards, up to 2097152 flows, windows 1s, 10s, 1m\n\
             \x20 alerts:    detectors vertical_scan, horizontal_scan, syn_flood; 1 threshold rule\n\
             \x20 storage:   off\n\
             \x20 api:       http://0.0.0.0:9100 (bearer token)\n\
             \x20 run as:    nobody\n\
             \x20 log:       json, level debug\n"
        )
    );
    let replay = file(
        "replay.yaml",
        "capture: {file: x.pcapng}\nreplay: {speed: 10x}\n",
    );
    let out = ok(&["config", "check", &replay]);
    assert!(
        out.contains("  source:    replay x.pcapng at 10x the capture's pace\n"),
        "{out}"
    );
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&replay).unwrap();
}

#[test]
fn check_errors_are_one_line_with_position() {
    let cases = [
        (
            "flows:\n  timeouts:\n    udp: sixty\n",
            "3:10: flows.timeouts.udp: \"sixty\" is not a duration (write 30s, 500ms, 5m)",
        ),
        (
            "capture:\n  backend: pcap\n  bfp: tcp\n",
            "3:3: unknown key capture.bfp, did you mean bpf? (known: backend, bpf, promiscuous, \
             snaplen, buffer_mib, immediate, fanout, file, exclude)",
        ),
        (
            "api:\n  bind: 0.0.0.0:9100\n",
            "2:9: api.bind: 0.0.0.0:9100 is not a loopback address: set api.token, or bind to \
             127.0.0.1 or [::1]",
        ),
        (
            "alerts:\n  - name: x\n    rule: pps on any over 10s >\n",
            "3:11: alerts[0].rule: bad rule: ends early: expected a threshold value (syntax: \
             <metric> on <iface|any> [proto <p>] over <window> (>|<) <value> [severity \
             low|medium|high])",
        ),
    ];
    for (i, (text, want)) in cases.into_iter().enumerate() {
        let path = file(&format!("bad{i}.yaml"), text);
        assert_eq!(check_fails(&path), format!("netmon: {path}:{want}"));
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn missing_files_and_usage() {
    let missing = temp_path("config", "missing.yaml");
    let missing = missing.to_str().unwrap();
    let err = check_fails(missing);
    assert!(
        err.starts_with(&format!("netmon: {missing}: cannot read it: ")),
        "{err}"
    );
    // Usage errors: exit 2.
    for args in [
        &["config"][..],
        &["config", "check"],
        &["config", "frobnicate"],
    ] {
        let out = netmon(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&out), "");
    }
}
