//! Syslog export: the alerts of the synscan capture (and flow summaries) sent over UDP and TCP
//! to listeners in the test, each message checked against RFC 5424's grammar.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use netmon_engine::{Engine, EngineConfig, EngineSink, FlowClass, FlowRecord};
use netmon_export::syslog::{Formatter, SyslogConfig, SyslogSender, Transport};
use netmon_stats::{AlertEvent, StatsConfig};

/// RFC 5424 §6: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`, checked field by
/// field; returns (pri, msgid, structured data, msg).
fn parse(m: &str) -> (u16, String, String, String) {
    let rest = m.strip_prefix('<').unwrap_or_else(|| panic!("no PRI: {m}"));
    let (pri, rest) = rest.split_once('>').unwrap();
    let pri: u16 = pri.parse().unwrap();
    assert!(pri <= 191, "{m}");
    let mut it = rest.splitn(7, ' ');
    assert_eq!(it.next(), Some("1"), "{m}");
    let ts = it.next().unwrap();
    assert!(
        ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
    for (field, max) in [
        ("hostname", 255),
        ("app", 48),
        ("procid", 128),
        ("msgid", 32),
    ] {
        let v = it.next().unwrap();
        assert!(
            !v.is_empty() && v.len() <= max && v.bytes().all(|b| b.is_ascii_graphic()),
            "{field} {v:?} in {m}"
        );
    }
    let msgid = m.split(' ').nth(5).unwrap().to_owned();
    let sd_and_msg = it.next().unwrap();
    assert!(sd_and_msg.starts_with("[netmon@32473 "), "{m}");
    // The SD element ends at the first `]` not escaped by a backslash.
    let b = sd_and_msg.as_bytes();
    let mut end = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b']' => {
                end = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let end = end.unwrap_or_else(|| panic!("unterminated SD: {m}"));
    let sd = sd_and_msg[..=end].to_owned();
    let msg = sd_and_msg[end + 1..].trim_start().to_owned();
    (pri, msgid, sd, msg)
}

struct Collect {
    alerts: Vec<AlertEvent>,
    flows: Vec<FlowRecord>,
}

impl EngineSink<FlowClass> for Collect {
    fn flow_ended(&mut self, f: &netmon_flow::Flow<FlowClass>, i: Option<&str>) {
        self.flows.push(FlowRecord::new(f, i));
    }
    fn alert(&mut self, a: &AlertEvent) {
        self.alerts.push(a.clone());
    }
}

fn synscan() -> Option<Collect> {
    let f = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR"))?
        .dir()
        .join("ndpi_synscan.pcap");
    let mut src = netmon_capture::open_file(f).ok()?;
    let mut c = Collect {
        alerts: Vec::new(),
        flows: Vec::new(),
    };
    let cfg = EngineConfig {
        stats: Some(StatsConfig::default()),
        ..EngineConfig::default()
    };
    Engine::classifying(cfg).unwrap().run(&mut src, &mut c);
    Some(c)
}

fn config(server: std::net::SocketAddr, transport: Transport) -> SyslogConfig {
    SyslogConfig {
        server,
        transport,
        facility: 16,
        hostname: "probe 1".into(),
        app_name: "netmond".into(),
    }
}

#[test]
fn alerts_over_udp_are_rfc5424() {
    let Some(c) = synscan() else { return };
    assert!(!c.alerts.is_empty());
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cfg = config(rx.local_addr().unwrap(), Transport::Udp);
    let f = Formatter::new(&cfg);
    let mut tx = SyslogSender::new(cfg).unwrap();
    for a in &c.alerts {
        tx.send(&f.alert(a)).unwrap();
    }
    let mut buf = [0u8; 8192];
    for a in &c.alerts {
        let n = rx.recv(&mut buf).unwrap();
        let m = std::str::from_utf8(&buf[..n]).unwrap();
        let (pri, msgid, sd, msg) = parse(m);
        assert_eq!(msgid, "alert");
        let raised = matches!(a, AlertEvent::Raised(_));
        // local0 (16): warning (4) for a medium alert raised, notice (5) when closed.
        assert_eq!(pri, if raised { 16 * 8 + 4 } else { 16 * 8 + 5 }, "{m}");
        assert!(sd.contains("kind=\"vertical_scan\""), "{sd}");
        assert!(sd.contains("source=\"172.16.0.8\""), "{sd}");
        assert!(sd.contains(&format!("id=\"{}\"", a.alert().id)), "{sd}");
        assert!(msg.contains("vertical_scan from 172.16.0.8"), "{msg}");
        // HOSTNAME loses its space.
        assert!(m.contains(" probe1 netmond "), "{m}");
    }
}

#[test]
fn flow_summaries_over_tcp_are_octet_counted() {
    let Some(c) = synscan() else { return };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = config(l.local_addr().unwrap(), Transport::Tcp);
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let f = Formatter::new(&cfg);
    let mut tx = SyslogSender::new(cfg).unwrap();
    let flows = &c.flows[..50];
    for r in flows {
        tx.send(&f.flow(r)).unwrap();
    }
    drop(tx);
    let all = String::from_utf8(reader.join().unwrap()).unwrap();
    let mut rest = all.as_str();
    let mut n = 0;
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        let (m, tail) = tail.split_at(len);
        let (pri, msgid, sd, _) = parse(m);
        assert_eq!((pri, msgid.as_str()), (16 * 8 + 6, "flow"));
        let r = &flows[n];
        assert!(sd.contains(&format!("src=\"{}\"", r.src_ip)), "{sd}");
        assert!(
            sd.contains(&format!("bytes_c2s=\"{}\"", r.bytes_c2s)),
            "{sd}"
        );
        n += 1;
        rest = tail;
    }
    assert_eq!(n, flows.len());
}
