//! Row builders shared by the integration tests.
#![allow(dead_code, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netmon_store::{AlertRow, DnsRow, FlowRow, HttpRow, KeyRow, SeriesRow, TcpFlags};
use netmon_types::Timestamp;

/// 2024-01-01T00:00:00Z.
pub(crate) const T0: i64 = 1_704_067_200_000_000_000;
pub(crate) const SEC: i64 = 1_000_000_000;

pub(crate) fn ts(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * SEC)
}

pub(crate) fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

pub(crate) fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

/// A flow with every field set, strings included that need escaping or are not ASCII.
pub(crate) fn full_flow(run_id: u64, id: u64) -> FlowRow {
    let tcp = TcpFlags {
        syn: 1,
        fin: 2,
        rst: 3,
        psh: 70_000,
        urg: 5,
        ece: 6,
        cwr: 7,
        retransmits: 80_000,
    };
    FlowRow {
        run_id,
        id,
        proto: 6,
        src_ip: IpAddr::V6("2a02:8108:ffc6:80:4f7c:f216:e8e3:29d7".parse().unwrap()),
        src_port: Some(52114),
        dst_ip: IpAddr::V6("fd00:10::8aae".parse().unwrap()),
        dst_port: Some(443),
        icmp_id: Some(6475),
        packets_c2s: 9,
        bytes_c2s: 1178,
        packets_s2c: 5,
        bytes_s2c: 1992,
        payload_bytes_c2s: 500,
        payload_bytes_s2c: 1610,
        first_seen: Timestamp(T0 + 285_000),
        last_seen: Timestamp(T0 + 173_207_000),
        duration_ns: 172_922_000,
        state: "closed".into(),
        end_reason: Some("fin".into()),
        vlan: vec![13, 10, 4095],
        iface: 4_000_000_000,
        iface_name: Some("eth0 \"quoted\" \\x00 ünïcödé".into()),
        tcp_c2s: Some(tcp),
        tcp_s2c: Some(TcpFlags { syn: 9, ..tcp }),
        icmp_errors: 3,
        quoted: Some(KeyRow {
            proto: 17,
            a_ip: v4(192, 168, 1, 1),
            a_port: Some(53),
            b_ip: v4(192, 168, 1, 102),
            b_port: Some(59207),
            iface: 0,
            vlan: vec![],
        }),
        outer: Some(KeyRow {
            proto: 17,
            a_ip: v6(1),
            a_port: None,
            b_ip: v6(2),
            b_port: Some(4789),
            iface: 7,
            vlan: vec![1, 2],
        }),
        app: Some("tls".into()),
        app_guess: true,
        sni: Some("WWW.Example.COM".into()),
        alpn: vec!["h2".into(), "http/1.1".into(), "\\xff\\x00".into()],
        alpn_server: Some("h2".into()),
        tls_version: Some("1.3".into()),
        ech: true,
        ja4: Some("t13d1516h2_8daaf6152771_02713d6af862".into()),
        http: vec![
            HttpRow {
                method: Some("GET".into()),
                host: Some("bro.org".into()),
                path: Some("/a b?c=\"d\"&e='f'\n\t".into()),
                user_agent: Some("Wget/1.14 😀 \u{202e}evil".into()),
                referer: None,
                status: Some(200),
            },
            HttpRow::default(),
        ],
        dns: vec![DnsRow {
            query: "xn--bcher-kva.example".into(),
            qtype: "AAAA".into(),
            rcode: Some("NOERROR".into()),
            answers: vec!["2001:db8::1".into(), "cname.example.".into()],
            additional: vec!["192.0.2.1".into()],
        }],
        quic_version: Some("v1".into()),
        ssh_client: Some("SSH-2.0-OpenSSH_9.6".into()),
        ssh_server: Some("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3".into()),
        stun_software: Some("Citrix-3.2.4.5".into()),
        domain: Some("www.example.com".into()),
    }
}

/// A plain flow: `id`, first seen at `start` seconds, lasting `dur` seconds.
pub(crate) fn flow(run_id: u64, id: u64, start: i64, dur: i64) -> FlowRow {
    FlowRow {
        run_id,
        id,
        proto: 17,
        src_ip: v4(10, 0, 0, 1),
        src_port: Some(40000),
        dst_ip: v4(10, 0, 0, 2),
        dst_port: Some(53),
        packets_c2s: 1,
        bytes_c2s: 100,
        packets_s2c: 1,
        bytes_s2c: 200,
        first_seen: ts(start),
        last_seen: ts(start + dur),
        duration_ns: dur * SEC,
        state: "none".into(),
        end_reason: Some("idle_timeout".into()),
        ..FlowRow::default()
    }
}

pub(crate) fn series(run_id: u64, window: u32, start: i64, proto: &str) -> SeriesRow {
    SeriesRow {
        run_id,
        start: ts(start),
        end: ts(start + i64::from(window)),
        iface: 1,
        iface_name: Some("eth0".into()),
        layer: "l4".into(),
        proto: proto.into(),
        window_secs: window,
        covered_secs: window,
        packets: 10,
        bytes: 1000,
        new_flows: 2,
        pps: 10.0 / f64::from(window),
        bps: 8000.0 / f64::from(window),
        new_flows_per_s: 0.25,
        active_flows: 3,
    }
}

pub(crate) fn alert(run_id: u64, id: u64, at: i64, kind: &str, source: &str) -> AlertRow {
    AlertRow {
        run_id,
        id,
        ts: ts(at),
        kind: kind.into(),
        severity: "high".into(),
        source: source.into(),
        target: Some("10.0.0.9".into()),
        evidence: r#"{"ports":5,"ports_sample":[1,2,3,4,5],"probes":5,"failed_ratio":1.0}"#.into(),
        first_seen: ts(at - 10),
        last_seen: ts(at),
        closed: false,
    }
}
