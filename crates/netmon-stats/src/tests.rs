//! Behaviour of the aggregator as a whole: windows, series, snapshots, flows, detectors,
//! configuration, determinism, and a property test over arbitrary observation sequences.

use core::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;

const T0: i64 = 1_000_000;

fn ts(sec: i64, ms: i64) -> Timestamp {
    Timestamp(sec * NS + ms * 1_000_000)
}

fn ip(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, a, b))
}

fn pkt(t: Timestamp, len: u32) -> PacketObs<'static> {
    let mut p = PacketObs::new(t, 0, len);
    p.iface_name = Some("eth0");
    p.l3 = L3Kind::Ipv4;
    p.ip = Some(IpObs {
        src: ip(0, 1),
        dst: ip(0, 2),
        proto: 6,
    });
    p.layers = Layers::from_names(&["eth", "ipv4", "tcp"]);
    p
}

fn flow(id: u64, t: Timestamp, src: IpAddr, dst: IpAddr, port: u16, st: TcpState) -> FlowObs {
    FlowObs {
        id,
        first_ts: t,
        last_ts: t,
        iface: 0,
        proto: 6,
        initiator: Endpoint {
            ip: src,
            port: 40_000 + (id % 20_000) as u16,
        },
        responder: Endpoint { ip: dst, port },
        packets: [1, u64::from(st != TcpState::SynOnly)],
        bytes: [60, if st == TcpState::SynOnly { 0 } else { 60 }],
        tcp: Some(st),
        responder_answered: st != TcpState::SynOnly,
        icmp_errors: 0,
        app: None,
        end: None,
    }
}

fn stats() -> Stats {
    Stats::new(StatsConfig::default()).unwrap()
}

fn with_series(windows: Vec<u32>) -> Stats {
    Stats::new(StatsConfig {
        series: Some(SeriesConfig {
            windows,
            ..SeriesConfig::default()
        }),
        ..StatsConfig::default()
    })
    .unwrap()
}

/// Start + end of a probe at `t`.
fn probe(s: &mut Stats, id: u64, t: Timestamp, src: IpAddr, dst: IpAddr, port: u16, st: TcpState) {
    let mut f = flow(id, t, src, dst, port, st);
    s.on_flow_start(&f);
    f.end = Some(EndReason::IdleTimeout);
    s.on_flow_end(&f);
}

fn closed(s: &mut Stats) -> Vec<Alert> {
    s.drain_alerts()
        .into_iter()
        .filter_map(|e| match e {
            AlertEvent::Closed(a) => Some(a),
            AlertEvent::Raised(_) => None,
        })
        .collect()
}

fn all_key(points: &[SeriesPoint], w: u32) -> Vec<(i64, u64, u64)> {
    points
        .iter()
        .filter(|p| p.values.window_secs == w && p.proto == "all")
        .map(|p| (p.start.secs(), p.values.packets, p.values.bytes))
        .collect()
}

#[test]
fn exact_per_second_values_and_window_boundaries() {
    let mut s = with_series(vec![1, 2]);
    for ms in [0, 100, 999] {
        s.on_packet(&pkt(ts(T0, ms), 100));
    }
    s.on_packet(&pkt(ts(T0 + 1, 500), 50));
    s.on_packet(&pkt(ts(T0 + 3, 0), 10));
    s.on_packet(&pkt(ts(T0 + 3, 1), 10));
    s.on_packet(&pkt(ts(T0 + 4, 0), 1));
    // Windows ending at second T0+3 (the last closed one).
    let snap = s.snapshot();
    assert_eq!(snap.ts, ts(T0 + 4, 0));
    let all = &snap.ifaces[0].protos[0];
    assert_eq!((all.layer, all.proto.as_str()), ("all", "all"));
    let w: Vec<(u32, u32, u64, f64, f64)> = all
        .windows
        .iter()
        .map(|v| (v.window_secs, v.covered_secs, v.packets, v.pps, v.bps))
        .collect();
    assert_eq!(
        w,
        vec![
            (1, 1, 2, 2.0, 160.0),
            (10, 4, 6, 1.5, (350.0 + 20.0) * 8.0 / 4.0),
            (60, 4, 6, 1.5, 740.0)
        ]
    );
    assert_eq!(snap.ifaces[0].name.as_deref(), Some("eth0"));
    s.finish();
    let pts = s.drain_series();
    assert_eq!(
        all_key(&pts, 1),
        vec![
            (T0, 3, 300),
            (T0 + 1, 1, 50),
            (T0 + 2, 0, 0),
            (T0 + 3, 2, 20),
            (T0 + 4, 1, 1)
        ]
    );
    // 2 s intervals aligned to the first second; the last one is partial.
    assert_eq!(
        all_key(&pts, 2),
        vec![(T0, 4, 350), (T0 + 2, 2, 20), (T0 + 4, 1, 1)]
    );
    let last = pts
        .iter()
        .rfind(|p| p.values.window_secs == 2 && p.proto == "all")
        .unwrap();
    assert_eq!(last.values.covered_secs, 1);
    assert_eq!(last.end, ts(T0 + 5, 0));
    // Per-protocol rows exist for the seconds with traffic only.
    assert!(
        pts.iter()
            .any(|p| p.proto == "tcp" && p.values.packets == 3)
    );
    assert!(
        !pts.iter()
            .any(|p| p.proto == "tcp" && p.values.window_secs == 1 && p.start == ts(T0 + 2, 0))
    );
}

#[test]
fn idle_gaps_step_and_long_gaps_jump() {
    let mut s = with_series(vec![1]);
    s.on_packet(&pkt(ts(T0, 0), 100));
    s.on_packet(&pkt(ts(T0 + 30, 0), 100));
    let pts = s.drain_series();
    // Seconds T0..T0+29 closed, zeros included.
    assert_eq!(all_key(&pts, 1).len(), 30);
    assert_eq!(s.counters().clock_jumps, 0);
    // Hours ahead: at most one ring of steps, then a jump.
    s.on_packet(&pkt(ts(T0 + 30 + 7200, 0), 100));
    let pts = s.drain_series();
    assert!(all_key(&pts, 1).len() <= 61, "{}", pts.len());
    assert_eq!(s.counters().clock_jumps, 1);
    // Windows after the jump start clean.
    s.on_packet(&pkt(ts(T0 + 30 + 7201, 0), 100));
    let v = &s.snapshot().ifaces[0].protos[0].windows;
    assert_eq!((v[2].window_secs, v[2].packets), (60, 1));
    // The far ends of the clock do not panic or loop.
    s.on_packet(&pkt(Timestamp(i64::MAX - 5), 1));
    s.on_packet(&pkt(Timestamp(i64::MAX), 1));
    s.on_packet(&pkt(Timestamp(i64::MIN), 1));
    s.finish();
    assert!(s.counters().late_packets >= 1);
}

#[test]
fn late_packets_count_in_the_current_second() {
    let mut s = with_series(vec![1]);
    s.on_packet(&pkt(ts(T0 + 1, 0), 100));
    s.on_packet(&pkt(ts(T0 + 2, 0), 100));
    s.on_packet(&pkt(ts(T0, 500), 7));
    s.finish();
    assert_eq!(s.counters().late_packets, 1);
    assert_eq!(
        all_key(&s.drain_series(), 1),
        vec![(T0 + 1, 1, 100), (T0 + 2, 2, 107)]
    );
}

#[test]
fn protocol_keys_and_flow_gauges() {
    let mut s = stats();
    let mut p = pkt(ts(T0, 0), 100);
    p.app = Some("tls");
    s.on_packet(&p);
    let mut a = PacketObs::new(ts(T0, 1), 0, 42);
    a.l3 = L3Kind::Arp;
    a.layers = Layers::from_names(&["eth", "arp"]);
    s.on_packet(&a);
    for id in 0..3 {
        s.on_flow_start(&flow(
            id,
            ts(T0, 2),
            ip(0, 1),
            ip(0, 2),
            443,
            TcpState::Established,
        ));
    }
    // The application becomes known in an update.
    let mut f = flow(0, ts(T0, 2), ip(0, 1), ip(0, 2), 443, TcpState::Established);
    f.app = Some("tls");
    s.on_flow_update(&f);
    s.on_flow_update(&f);
    s.on_packet(&pkt(ts(T0 + 1, 0), 1));
    f.end = Some(EndReason::Fin);
    s.on_flow_end(&f);
    s.on_packet(&pkt(ts(T0 + 2, 0), 1));
    let snap = s.snapshot();
    let row = |name: &str| {
        snap.ifaces[0]
            .protos
            .iter()
            .find(|p| p.proto == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("all").active_flows, 2);
    assert_eq!(row("all").total_new_flows, 3);
    assert_eq!(row("tcp").active_flows, 2);
    assert_eq!(row("ipv4").total_packets, 3);
    assert_eq!(row("arp").total_bytes, 42);
    assert_eq!(row("arp").layer, "l3");
    let tls = row("tls");
    assert_eq!(
        (
            tls.layer,
            tls.total_packets,
            tls.total_new_flows,
            tls.active_flows
        ),
        ("app", 1, 1, 0)
    );
    // New flows per second in the 10 s window ending at T0+1: 3 over 2 covered seconds.
    let w10 = row("all").windows[1];
    assert_eq!((w10.new_flows, w10.new_flows_per_s), (3, 1.5));
    // The hierarchy got the application pushed under tcp.
    assert!(
        s.hierarchy()
            .rows()
            .iter()
            .any(|r| r.1 == "tls" && r.0 == 3)
    );
}

#[test]
fn talkers_count_each_byte_once_across_updates() {
    let mut s = stats();
    let mut f = flow(7, ts(T0, 0), ip(0, 1), ip(0, 2), 443, TcpState::Established);
    s.on_flow_start(&f);
    f.packets = [3, 2];
    f.bytes = [600, 400];
    s.on_flow_update(&f);
    assert_eq!(s.table_sizes().exported_flows, 1);
    f.packets = [4, 3];
    f.bytes = [700, 500];
    s.on_flow_update(&f);
    assert_eq!(s.talkers().hosts(RankBy::Bytes, 1)[0].count, 1200);
    f.packets = [5, 3];
    f.bytes = [900, 600];
    f.end = Some(EndReason::Fin);
    s.on_flow_end(&f);
    let z = s.table_sizes();
    assert_eq!((z.tracked_flows, z.exported_flows), (0, 0));
    // A flow never seen starting counts whole at its end.
    let mut g = flow(8, ts(T0, 0), ip(0, 3), ip(0, 2), 22, TcpState::Closed);
    g.bytes = [100, 100];
    g.packets = [2, 2];
    g.end = Some(EndReason::Fin);
    s.on_flow_end(&g);
    let t = s.talkers();
    let hosts = t.hosts(RankBy::Bytes, 3);
    assert_eq!((hosts[0].key, hosts[0].count), (ip(0, 2), 1700));
    assert_eq!((hosts[1].key, hosts[1].count), (ip(0, 1), 1500));
    assert_eq!(t.pairs(RankBy::Packets, 1)[0].count, 8);
    assert_eq!(
        t.ports(RankBy::Bytes, 2)
            .iter()
            .map(|r| (r.key.port, r.count))
            .collect::<Vec<_>>(),
        vec![(443, 1500), (22, 200)]
    );
    let r = s.report(5);
    assert_eq!(r.talkers.hosts_by_bytes.len(), 3);
}

#[test]
fn talkers_count_at_periodic_updates_and_ends_not_at_starts_or_changes() {
    let mut s = stats();
    let mut f = flow(7, ts(T0, 0), ip(0, 1), ip(0, 2), 443, TcpState::SynOnly);
    f.packets = [1, 0];
    f.bytes = [60, 0];
    s.on_flow_start(&f);
    f.tcp = Some(TcpState::Established);
    f.packets = [2, 1];
    f.bytes = [120, 60];
    f.responder_answered = true;
    s.on_flow_change(&f);
    assert!(s.talkers().hosts(RankBy::Bytes, 5).is_empty());
    // The periodic update counts everything so far, the start's and the change's packets too.
    f.packets = [4, 3];
    f.bytes = [400, 300];
    s.on_flow_update(&f);
    let t = s.talkers().hosts(RankBy::Packets, 5);
    assert_eq!((t[0].key, t[0].count), (ip(0, 1), 7));
    // A change after it adds nothing; the end adds what came since the update.
    f.packets = [5, 4];
    f.bytes = [500, 400];
    s.on_flow_change(&f);
    assert_eq!(s.talkers().hosts(RankBy::Bytes, 1)[0].count, 700);
    f.end = Some(EndReason::Fin);
    s.on_flow_end(&f);
    let t = s.talkers();
    assert_eq!(t.hosts(RankBy::Bytes, 1)[0].count, 900);
    assert_eq!(t.pairs(RankBy::Packets, 1)[0].count, 9);
    assert_eq!(t.ports(RankBy::Bytes, 1)[0].key.port, 443);
}

#[test]
fn changes_that_repeat_the_outcome_do_not_reach_the_detectors() {
    // Five connections to five ports of one host, each answered (SYN-ACK: half open, a
    // failure so far), then established, then named and closed. The detectors must see
    // each one succeed (else five failed ports make a scan), and need not see it again.
    let mut s = stats();
    for p in 0..5u16 {
        let t = ts(T0, i64::from(p) * 10);
        let mut f = flow(
            u64::from(p),
            t,
            ip(9, 9),
            ip(1, 1),
            100 + p,
            TcpState::SynOnly,
        );
        s.on_flow_start(&f);
        f.responder_answered = true;
        f.tcp = Some(TcpState::HalfOpen);
        s.on_flow_change(&f);
        f.tcp = Some(TcpState::Established);
        s.on_flow_change(&f);
        f.app = Some("http");
        s.on_flow_change(&f);
        f.tcp = Some(TcpState::Closed);
        s.on_flow_change(&f);
    }
    assert_eq!(s.counters().summaries_repeated, 10);
    assert!(s.drain_alerts().is_empty());
    assert_eq!(s.table_sizes().vertical_pairs, 1);
    // Periodic updates and ends always reach them.
    let mut f = flow(0, ts(T0, 0), ip(9, 9), ip(1, 1), 100, TcpState::Closed);
    s.on_flow_update(&f);
    f.end = Some(EndReason::Fin);
    s.on_flow_end(&f);
    assert_eq!(s.counters().summaries_repeated, 10);
    s.finish();
    assert!(closed(&mut s).is_empty());
}

#[test]
fn vertical_scan_thresholds() {
    let scanner = ip(9, 9);
    let victim = ip(1, 1);
    // 4 refused ports: nothing.
    let mut s = stats();
    for p in 0..4u16 {
        probe(
            &mut s,
            u64::from(p),
            ts(T0, i64::from(p)),
            scanner,
            victim,
            100 + p * 7,
            TcpState::Rejected,
        );
    }
    s.finish();
    assert!(closed(&mut s).is_empty());

    // 5 refused ports: one alert.
    let mut s = stats();
    for p in 0..5u16 {
        probe(
            &mut s,
            u64::from(p),
            ts(T0, i64::from(p)),
            scanner,
            victim,
            100 + p * 7,
            TcpState::Rejected,
        );
    }
    s.finish();
    let a = closed(&mut s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].source, Subject::Ip(scanner));
    assert_eq!(a[0].target, Some(Subject::Ip(victim)));
    assert_eq!(a[0].severity, Severity::Medium);

    // 5 ports that all work (a server with mail, web and admin ports): nothing.
    let mut s = stats();
    for p in 0..5u16 {
        probe(
            &mut s,
            u64::from(p),
            ts(T0, i64::from(p)),
            scanner,
            victim,
            100 + p * 7,
            TcpState::Closed,
        );
    }
    // 3 of 5 failed, not sequential: nothing.
    for p in 0..5u16 {
        let st = if p < 3 {
            TcpState::SynOnly
        } else {
            TcpState::Closed
        };
        probe(
            &mut s,
            10 + u64::from(p),
            ts(T0, 10),
            scanner,
            ip(1, 2),
            200 + p * 7,
            st,
        );
    }
    // 3 of 5 failed on consecutive ports: sequential probing, one alert.
    for p in 0..5u16 {
        let st = if p < 3 {
            TcpState::SynOnly
        } else {
            TcpState::Closed
        };
        probe(
            &mut s,
            20 + u64::from(p),
            ts(T0, 20),
            scanner,
            ip(1, 3),
            300 + p,
            st,
        );
    }
    // 5 consecutive ports that all work (active FTP data connections): nothing.
    for p in 0..5u16 {
        probe(
            &mut s,
            30 + u64::from(p),
            ts(T0, 30),
            scanner,
            ip(1, 4),
            5000 + p,
            TcpState::Closed,
        );
    }
    // Five ports spread over more than the window: nothing.
    for p in 0..5u16 {
        let t = ts(T0 + i64::from(p) * 20, 0);
        s.on_packet(&pkt(t, 60));
        probe(
            &mut s,
            40 + u64::from(p),
            t,
            scanner,
            ip(1, 5),
            400 + p * 3,
            TcpState::Rejected,
        );
    }
    s.finish();
    let a = closed(&mut s);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].target, Some(Subject::Ip(ip(1, 3))));
    let Evidence::VerticalScan {
        sequential, ports, ..
    } = &a[0].evidence
    else {
        panic!()
    };
    assert!(*sequential);
    assert_eq!(*ports, 5);
}

#[test]
fn a_thousand_port_scan_is_one_alert_and_quiet_closes_it() {
    let scanner = ip(9, 9);
    let victim = ip(1, 1);
    let mut s = stats();
    for p in 1..=1000u16 {
        let t = ts(T0, i64::from(p));
        s.on_packet(&pkt(t, 60));
        // Reported in an update and again at the end: still one probe.
        let mut f = flow(u64::from(p), t, scanner, victim, p, TcpState::Rejected);
        s.on_flow_start(&f);
        s.on_flow_update(&f);
        f.end = Some(EndReason::Rst);
        s.on_flow_end(&f);
    }
    let raised = s.drain_alerts();
    assert_eq!(raised.len(), 1);
    assert!(!raised[0].is_closed());
    assert_eq!(s.active_alerts().len(), 1);
    // 61 quiet seconds close it, with the final evidence.
    s.on_packet(&pkt(ts(T0 + 62, 0), 60));
    let ev = s.drain_alerts();
    assert_eq!(ev.len(), 1);
    let a = ev[0].alert();
    assert!(ev[0].is_closed());
    assert_eq!(a.id, raised[0].alert().id);
    assert_eq!(a.severity, Severity::High);
    let Evidence::VerticalScan {
        ports,
        probes,
        failed_ratio,
        ports_sample,
        ..
    } = &a.evidence
    else {
        panic!()
    };
    assert_eq!((*ports, *probes, *failed_ratio), (1000, 1000, 1.0));
    assert_eq!(ports_sample.len(), 16);
    assert_eq!(a.first_seen, ts(T0, 1));
    assert_eq!(a.last_seen, ts(T0, 1000));
    // A late report of a probe of that scan is not a new scan...
    for p in 1001..1010u16 {
        probe(
            &mut s,
            u64::from(p),
            ts(T0, 500),
            scanner,
            victim,
            p,
            TcpState::SynOnly,
        );
    }
    assert!(s.drain_alerts().is_empty());
    // ...but a new scan later is.
    for p in 1..=5u16 {
        probe(
            &mut s,
            5000 + u64::from(p),
            ts(T0 + 62, 1),
            scanner,
            victim,
            p,
            TcpState::Rejected,
        );
    }
    assert_eq!(s.drain_alerts().len(), 1);
}

#[test]
fn unanswered_syns_count_after_the_syn_timeout_or_at_the_end() {
    let mut s = stats();
    let (a, b) = (ip(9, 9), ip(1, 1));
    for p in 0..5u16 {
        let f = flow(
            u64::from(p),
            ts(T0, 0),
            a,
            b,
            1000 + p * 3,
            TcpState::SynOnly,
        );
        s.on_packet(&pkt(ts(T0, 0), 60));
        s.on_flow_start(&f);
        s.on_flow_update(&f); // too early to tell
    }
    assert!(s.drain_alerts().is_empty());
    s.on_packet(&pkt(ts(T0 + 6, 0), 60));
    for p in 0..5u16 {
        let f = flow(
            u64::from(p),
            ts(T0, 0),
            a,
            b,
            1000 + p * 3,
            TcpState::SynOnly,
        );
        s.on_flow_update(&f); // 6 s after the SYN: failed
    }
    assert_eq!(s.drain_alerts().len(), 1);
}

#[test]
fn horizontal_scan_and_browsing() {
    let client = ip(2, 2);
    let mut s = stats();
    // Browsing: 50 web servers on 443, all answering.
    for h in 0..50u8 {
        probe(
            &mut s,
            u64::from(h),
            ts(T0, i64::from(h)),
            client,
            ip(3, h),
            443,
            TcpState::Closed,
        );
    }
    // A few failures among them (a dead server or two) change nothing.
    for h in 50..53u8 {
        probe(
            &mut s,
            u64::from(h),
            ts(T0, i64::from(h)),
            client,
            ip(3, h),
            443,
            TcpState::SynOnly,
        );
    }
    s.finish();
    assert!(closed(&mut s).is_empty());

    let scanner = ip(9, 9);
    let mut s = stats();
    for h in 0..24u8 {
        probe(
            &mut s,
            u64::from(h),
            ts(T0, i64::from(h)),
            scanner,
            ip(4, h),
            22,
            TcpState::SynOnly,
        );
    }
    assert!(s.drain_alerts().is_empty(), "24 hosts: below the threshold");
    probe(
        &mut s,
        24,
        ts(T0, 24),
        scanner,
        ip(4, 24),
        22,
        TcpState::SynOnly,
    );
    assert_eq!(s.drain_alerts().len(), 1);
    // The same source moving on to port 23 on other hosts: the same alert grows.
    for h in 0..40u8 {
        probe(
            &mut s,
            100 + u64::from(h),
            ts(T0, 100),
            scanner,
            ip(5, h),
            23,
            TcpState::Rejected,
        );
    }
    s.finish();
    let a = closed(&mut s);
    assert_eq!(a.len(), 1);
    let Evidence::HorizontalScan {
        hosts,
        ports,
        probes,
        ..
    } = &a[0].evidence
    else {
        panic!()
    };
    assert_eq!((*hosts, *probes), (65, 65));
    assert_eq!(ports, &vec!["tcp/22".to_string(), "tcp/23".to_string()]);
    assert_eq!(a[0].kind, AlertKind::HorizontalScan);
}

fn arp(t: Timestamp, op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> PacketObs<'static> {
    let mut p = PacketObs::new(t, 0, 60);
    p.l3 = L3Kind::Arp;
    p.arp = Some(ArpObs { op, sender, target });
    p
}

#[test]
fn arp_sweep() {
    let me = Ipv4Addr::new(192, 168, 1, 5);
    // A sweep of 30 addresses, nobody home.
    let mut s = stats();
    for i in 0..30u8 {
        s.on_packet(&arp(
            ts(T0, i64::from(i)),
            1,
            me,
            Ipv4Addr::new(192, 168, 1, 100 + i),
        ));
    }
    s.finish();
    let a = closed(&mut s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AlertKind::ArpSweep);
    assert_eq!(a[0].source.to_string(), "192.168.1.5");
    let Evidence::ArpSweep { targets, .. } = &a[0].evidence else {
        panic!()
    };
    assert_eq!(*targets, 30);

    // A router resolving 30 neighbours that answer; DAD probes from 0.0.0.0; gratuitous ARP.
    let mut s = stats();
    for i in 0..30u8 {
        let t = Ipv4Addr::new(192, 168, 1, 100 + i);
        s.on_packet(&arp(ts(T0, i64::from(i) * 2), 1, me, t));
        s.on_packet(&arp(ts(T0, i64::from(i) * 2 + 1), 2, t, me));
        s.on_packet(&arp(ts(T0, 100), 1, Ipv4Addr::UNSPECIFIED, t));
        s.on_packet(&arp(ts(T0, 100), 1, t, t));
    }
    s.finish();
    assert!(closed(&mut s).is_empty());
}

#[test]
fn flow_rate_flood() {
    let src = ip(9, 9);
    let mut s = stats();
    // 5000 flows in 50 s: below 6000 per minute.
    for i in 0..5000u64 {
        let t = ts(T0 + (i / 100) as i64, 0);
        s.on_packet(&pkt(t, 60));
        s.on_flow_start(&flow(
            i,
            t,
            src,
            ip(1, (i % 250) as u8),
            80,
            TcpState::SynOnly,
        ));
    }
    assert!(s.drain_alerts().is_empty());
    // 2000 more within the same minute: over.
    for i in 5000..7000u64 {
        let t = ts(T0 + 50, i as i64 % 1000);
        s.on_flow_start(&flow(i, t, src, ip(1, 1), 80, TcpState::SynOnly));
    }
    let ev = s.drain_alerts();
    assert_eq!(ev.len(), 1, "one alert however far above");
    assert_eq!(ev[0].alert().kind, AlertKind::SynFlood);
    // Quiet for two windows: closed.
    s.on_packet(&pkt(ts(T0 + 200, 0), 60));
    let ev = s.drain_alerts();
    assert_eq!(ev.len(), 1);
    assert!(ev[0].is_closed());
    let Evidence::SynFlood {
        peak_new_flows,
        limit,
        ..
    } = &ev[0].alert().evidence
    else {
        panic!()
    };
    assert!(*peak_new_flows > 6000 && *limit == 6000);
}

#[test]
fn threshold_rules_fire_once_per_crossing() {
    let cfg = StatsConfig {
        detectors: DetectorsConfig {
            thresholds: vec![
                "pps on eth0 over 1s > 5".into(),
                "new_flows on any proto tcp over 10s > 100 severity high".into(),
                "bps on eth9 over 1s > 0".into(),
            ],
            ..DetectorsConfig::default()
        },
        ..StatsConfig::default()
    };
    let mut s = Stats::new(cfg).unwrap();
    let per_sec = [1u32, 10, 12, 3, 2, 9, 1];
    for (i, n) in per_sec.iter().enumerate() {
        for k in 0..*n {
            s.on_packet(&pkt(ts(T0 + i as i64, i64::from(k)), 100));
        }
    }
    s.finish();
    let ev = s.drain_alerts();
    let kinds: Vec<(bool, String)> = ev
        .iter()
        .map(|e| (e.is_closed(), e.alert().source.to_string()))
        .collect();
    // Above at seconds 1-2 (raise, close at 3), above at 5 (raise, close at 6).
    assert_eq!(
        kinds,
        vec![
            (false, "eth0".into()),
            (true, "eth0".into()),
            (false, "eth0".into()),
            (true, "eth0".into())
        ]
    );
    let Evidence::Threshold {
        value,
        peak,
        threshold,
        metric,
        ..
    } = &ev[1].alert().evidence
    else {
        panic!()
    };
    assert_eq!(
        (*value, *peak, *threshold, *metric),
        (10.0, 12.0, 5.0, "pps")
    );
    assert_eq!(ev[0].alert().kind, AlertKind::Threshold);
}

#[test]
fn config_from_a_file_and_its_errors() {
    let cfg: StatsConfig = serde_json::from_str(
        r#"{"windows":[5,30],"detectors":{"vertical_scan":{"min_ports":10},"thresholds":["pps on any over 5s > 1k"]}}"#,
    )
    .unwrap();
    assert_eq!(cfg.detectors.vertical_scan.min_ports, 10);
    assert_eq!(cfg.detectors.vertical_scan.window_secs, 60);
    assert_eq!(cfg.max_keys_per_iface, 256);
    let s = Stats::new(cfg).unwrap();
    assert_eq!(s.windows(), [5, 30]);
    assert!(
        serde_json::from_str::<StatsConfig>(r#"{"detectors":{"vertical":{}}}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown field `vertical`")
    );
    let err = |c: StatsConfig| Stats::new(c).unwrap_err().to_string();
    let mut c = StatsConfig::default();
    c.detectors.thresholds = vec!["pps on any over 2m > 1".into()];
    assert_eq!(
        err(c),
        "threshold rule `pps on any over 2m > 1`: window 120 s is longer than the longest configured window (60 s)"
    );
    let mut c = StatsConfig::default();
    c.detectors.thresholds = vec!["pps on any > 1".into()];
    assert!(err(c).contains("word 4: expected `over`"));
    let c = StatsConfig {
        windows: vec![0],
        ..StatsConfig::default()
    };
    assert!(err(c).contains("window of 0 s"));
    let c = StatsConfig {
        windows: vec![],
        ..StatsConfig::default()
    };
    assert_eq!(err(c), "no window configured");
    let c = StatsConfig {
        windows: vec![3600],
        max_ifaces: 1024,
        ..StatsConfig::default()
    };
    assert!(err(c).contains("512 MiB"));
}

#[test]
fn snapshots_reach_readers_on_other_threads() {
    let mut s = stats();
    let cell = s.snapshot_cell();
    assert_eq!(cell.load().ts, Timestamp(0));
    for sec in 0..3 {
        s.on_packet(&pkt(ts(T0 + sec, 0), 100));
    }
    let reader = {
        let cell = cell.clone();
        std::thread::spawn(move || cell.load())
    };
    let snap = reader.join().unwrap();
    assert_eq!(snap.ts, ts(T0 + 2, 0));
    assert_eq!(snap.counters.packets, 2);
    s.finish();
    assert_eq!(cell.load().counters.packets, 3);
    let json = serde_json::to_string(&*cell.load()).unwrap();
    assert!(json.contains(r#""proto":"tcp""#), "{json}");
}

/// A mixed scenario; returns everything serialised.
fn scenario() -> String {
    let mut s = with_series(vec![1, 10]);
    let cell = s.snapshot_cell();
    let mut out = String::new();
    for i in 0..3000u64 {
        let t = ts(T0 + (i / 50) as i64, (i % 50) as i64 * 20);
        let mut p = pkt(t, 60 + (i % 1400) as u32);
        p.iface = (i % 3) as u32;
        s.on_packet(&p);
        let st = [TcpState::SynOnly, TcpState::Rejected, TcpState::Closed][(i % 3) as usize];
        let src = ip((i % 7) as u8, 9);
        probe(
            &mut s,
            i,
            t,
            src,
            ip(1, (i % 40) as u8),
            (i % 300) as u16,
            st,
        );
        if i % 500 == 0 {
            out.push_str(&serde_json::to_string(&s.drain_alerts()).unwrap());
        }
    }
    s.finish();
    out.push_str(&serde_json::to_string(&s.drain_alerts()).unwrap());
    out.push_str(&serde_json::to_string(&s.drain_series()).unwrap());
    out.push_str(&serde_json::to_string(&s.report(10)).unwrap());
    out.push_str(&serde_json::to_string(&*cell.load()).unwrap());
    out.push_str(&s.hierarchy().render());
    out
}

#[test]
fn the_aggregator_moves_to_its_own_thread() {
    fn send<T: Send + 'static>() {}
    send::<Stats>();
    send::<SnapshotCell>();
    fn sync<T: Sync>() {}
    sync::<SnapshotCell>();
}

#[test]
fn same_input_same_output() {
    let a = scenario();
    assert!(a.contains("vertical_scan"), "the scenario raises alerts");
    assert_eq!(a, scenario());
}

#[derive(Clone, Debug)]
enum Op {
    Packet {
        dt_ms: i64,
        iface: u32,
        proto: u8,
        app: bool,
        len: u32,
    },
    Arp {
        op: u16,
        sender: u8,
        target: u8,
    },
    Flow {
        id: u64,
        src: u8,
        dst: u8,
        port: u16,
        st: u8,
        phase: u8,
        icmp: bool,
    },
    Jump(i64),
}

/// Applies `o` at the clock `t`; flows start `lag` seconds before it.
fn run_op(s: &mut Stats, o: &Op, t: &mut i64, lag: i64) {
    let states = [
        TcpState::SynOnly,
        TcpState::Rejected,
        TcpState::HalfOpen,
        TcpState::Established,
        TcpState::Closed,
        TcpState::Other,
    ];
    match *o {
        Op::Packet {
            dt_ms,
            iface,
            proto,
            app,
            len,
        } => {
            *t = t.saturating_add(dt_ms * 1_000_000);
            let mut p = pkt(Timestamp(*t), len);
            p.iface = iface;
            p.ip = Some(IpObs {
                src: ip(0, 1),
                dst: ip(0, 2),
                proto,
            });
            p.app = app.then_some(["tls", "dns", "http", "ssh"][(len % 4) as usize]);
            p.layers = Layers::from_names(&[
                ["eth", "sll"][(len % 2) as usize],
                "ipv4",
                ["tcp", "udp", "gre"][(proto % 3) as usize],
            ]);
            s.on_packet(&p);
        }
        Op::Arp { op, sender, target } => {
            s.on_packet(&arp(
                Timestamp(*t),
                op,
                Ipv4Addr::new(10, 0, 0, sender % 12),
                Ipv4Addr::new(10, 0, 1, target),
            ));
        }
        Op::Flow {
            id,
            src,
            dst,
            port,
            st,
            phase,
            icmp,
        } => {
            let mut f = flow(
                id,
                Timestamp(t.saturating_sub(lag * NS)),
                ip(src, 1),
                ip(dst % 30, dst),
                port,
                states[st as usize % 6],
            );
            f.icmp_errors = u32::from(icmp);
            f.proto = [6, 17, 132][(port % 3) as usize];
            if f.proto != 6 {
                f.tcp = None;
            }
            match phase {
                0 => s.on_flow_start(&f),
                1 => s.on_flow_update(&f),
                _ => {
                    f.end = Some(EndReason::Other);
                    s.on_flow_end(&f)
                }
            }
        }
        Op::Jump(d) => {
            *t = t.saturating_add(d);
            s.advance(Timestamp(*t));
        }
    }
}

/// Fewer distinct hosts and ports, so scans cross their thresholds often.
fn narrow(o: Op) -> Op {
    match o {
        Op::Flow {
            id,
            src,
            dst,
            port,
            st,
            phase,
            icmp,
        } => Op::Flow {
            id,
            src: src % 3,
            dst: dst % 5,
            port: port % 10,
            st,
            phase,
            icmp,
        },
        o => o,
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (-2000i64..3000, 0u32..6, any::<u8>(), any::<bool>(), 0u32..70_000).prop_map(
            |(dt_ms, iface, proto, app, len)| Op::Packet { dt_ms, iface, proto, app, len }
        ),
        2 => (0u16..4, any::<u8>(), any::<u8>()).prop_map(|(op, sender, target)| Op::Arp { op, sender, target }),
        6 => (0u64..64, 0u8..8, any::<u8>(), 0u16..40, 0u8..6, 0u8..3, any::<bool>()).prop_map(
            |(id, src, dst, port, st, phase, icmp)| Op::Flow { id, src, dst, port, st, phase, icmp }
        ),
        1 => prop_oneof![Just(i64::MAX / 4), Just(-5 * NS), Just(3600 * NS), Just(i64::MIN / 4)].prop_map(Op::Jump),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arbitrary observation sequences never panic, and every table stays within its cap.
    #[test]
    fn arbitrary_sequences_stay_bounded(ops in prop::collection::vec(op(), 1..400)) {
        let mut cfg = StatsConfig {
            max_ifaces: 3,
            max_keys_per_iface: 5,
            max_hierarchy_nodes: 8,
            talkers_capacity: 16,
            max_tracked_flows: 20,
            series: Some(SeriesConfig { windows: vec![1, 7], max_pending: 50 }),
            ..StatsConfig::default()
        };
        let d = &mut cfg.detectors;
        d.vertical_scan.max_pairs = 10;
        d.vertical_scan.max_probes = 30;
        d.vertical_scan.max_ports_per_pair = 6;
        d.horizontal_scan.max_keys = 10;
        d.horizontal_scan.max_probes = 30;
        d.horizontal_scan.min_hosts = 4;
        d.arp_sweep.max_senders = 10;
        d.arp_sweep.max_targets_per_sender = 5;
        d.arp_sweep.min_targets = 3;
        d.syn_flood.max_sources = 5;
        d.syn_flood.max_new_flows = 5;
        d.max_pending_events = 40;
        d.thresholds = vec!["pps on any over 1s > 3".into(), "active_flows on if1 proto tcp over 60s < 1".into()];
        let mut s = Stats::new(cfg).unwrap();
        let mut t = T0 * NS;
        for o in ops {
            run_op(&mut s, &o, &mut t, 1);
            let z = s.table_sizes();
            prop_assert!(z.tracked_flows <= 20 && z.exported_flows <= z.tracked_flows);
            prop_assert!(z.vertical_pairs <= 10 && z.vertical_probes <= 30 + 6);
            prop_assert!(z.horizontal_probes <= 30 + 6);
            prop_assert!(z.arp_senders <= 10);
            prop_assert!(z.flood_sources <= 5);
            prop_assert!(z.ifaces <= 4);
            prop_assert!(z.keys <= 4 * 6);
            prop_assert!(z.hierarchy_nodes <= 8);
            prop_assert!(z.pending_alert_events <= 40);
            prop_assert!(z.pending_series_points <= 50);
            prop_assert!(s.talkers().hosts(RankBy::Bytes, 100).len() <= 16);
        }
        s.finish();
        let _ = serde_json::to_string(&s.report(5)).unwrap();
        let _ = s.drain_alerts();
    }

    /// The detectors' expiry queues change exactly what walking every table entry at every
    /// tick changed: same alert events (raised and closed, with their evidence), same table
    /// sizes and drop counters, after every observation, through `finish` and beyond.
    #[test]
    fn expiry_queues_match_the_walk(
        ops in prop::collection::vec(op().prop_map(narrow), 1..500),
        lags in prop::collection::vec(-1i64..12, 1..16),
    ) {
        let mut cfg = StatsConfig {
            talkers_capacity: 16,
            max_tracked_flows: 40,
            ..StatsConfig::default()
        };
        let d = &mut cfg.detectors;
        d.late_grace_secs = 7;
        d.vertical_scan.window_secs = 4;
        d.vertical_scan.min_ports = 3;
        d.vertical_scan.syn_timeout_secs = 2;
        d.vertical_scan.max_pairs = 12;
        d.vertical_scan.max_probes = 40;
        d.vertical_scan.max_ports_per_pair = 8;
        d.horizontal_scan.window_secs = 5;
        d.horizontal_scan.min_hosts = 3;
        d.horizontal_scan.max_keys = 12;
        d.horizontal_scan.max_probes = 40;
        d.arp_sweep.window_secs = 3;
        d.arp_sweep.min_targets = 3;
        d.arp_sweep.max_senders = 8;
        d.syn_flood.window_secs = 6;
        d.syn_flood.max_new_flows = 4;
        d.syn_flood.max_sources = 6;
        let mut queue = Stats::new(cfg.clone()).unwrap();
        let mut walk = Stats::new(cfg).unwrap();
        walk.vertical.walk = true;
        walk.horizontal.walk = true;
        walk.arp.walk = true;
        walk.flood.walk = true;
        let (mut tq, mut tw) = (T0 * NS, T0 * NS);
        let check = |q: &mut Stats, w: &mut Stats| -> Result<(), TestCaseError> {
            prop_assert_eq!(
                serde_json::to_string(&q.drain_alerts()).unwrap(),
                serde_json::to_string(&w.drain_alerts()).unwrap()
            );
            prop_assert_eq!(q.table_sizes(), w.table_sizes());
            prop_assert_eq!(q.counters(), w.counters());
            prop_assert_eq!(
                serde_json::to_string(&q.active_alerts()).unwrap(),
                serde_json::to_string(&w.active_alerts()).unwrap()
            );
            Ok(())
        };
        for (i, o) in ops.iter().enumerate() {
            let lag = lags[i % lags.len()];
            run_op(&mut queue, o, &mut tq, lag);
            run_op(&mut walk, o, &mut tw, lag);
            check(&mut queue, &mut walk)?;
        }
        queue.finish();
        walk.finish();
        check(&mut queue, &mut walk)?;
        for k in 1..40 {
            queue.advance(Timestamp(tq.saturating_add(k * NS / 2)));
            walk.advance(Timestamp(tw.saturating_add(k * NS / 2)));
            check(&mut queue, &mut walk)?;
        }
    }
}
