//! The AF_PACKET ring, for real: traffic sent between two network namespaces over a veth pair,
//! captured on one end, checked packet by packet.
//!
//! Skipped (with a message) where namespaces cannot be made; CI sets `NETMON_REQUIRE_NETNS=1`,
//! which turns that skip into a failure.
#![cfg(target_os = "linux")]

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use netmon_capture::afpacket::AfPacketSource;
use netmon_capture::{CaptureSource, Direction, Fanout, FanoutMode, LinkType, LiveConfig, Next};
use netmon_testkit::netns::{self, VethPair};

/// One captured frame, copied out of the ring for checking.
#[derive(Clone, Debug)]
struct Got {
    dir: Direction,
    ts_ns: i128,
    iface: String,
    link: LinkType,
    cap_len: u32,
    orig_len: u32,
    data: Vec<u8>,
}

impl Got {
    fn udp(&self) -> Option<(u16, u16, &[u8])> {
        let p = SlicedPacket::from_ethernet(&self.data).ok()?;
        match p.transport? {
            TransportSlice::Udp(u) => Some((u.source_port(), u.destination_port(), u.payload())),
            _ => None,
        }
    }

    fn tcp(&self) -> Option<(u16, u16, bool, bool, Vec<u8>)> {
        let p = SlicedPacket::from_ethernet(&self.data).ok()?;
        match p.transport? {
            TransportSlice::Tcp(t) => Some((
                t.source_port(),
                t.destination_port(),
                t.syn(),
                t.ack(),
                t.payload().to_vec(),
            )),
            _ => None,
        }
    }

    fn icmp_echo(&self) -> Option<bool> {
        let p = SlicedPacket::from_ethernet(&self.data).ok()?;
        match p.transport? {
            TransportSlice::Icmpv4(i) => match i.icmp_type() {
                etherparse::Icmpv4Type::EchoRequest(_) => Some(true),
                etherparse::Icmpv4Type::EchoReply(_) => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    fn is_ipv6(&self) -> bool {
        SlicedPacket::from_ethernet(&self.data)
            .ok()
            .and_then(|p| p.net)
            .is_some_and(|n| matches!(n, NetSlice::Ipv6(_)))
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// Reads from `src` until `done` says so or `limit` passes.
fn collect(
    src: &mut dyn CaptureSource,
    limit: Duration,
    mut done: impl FnMut(&[Got]) -> bool,
) -> Vec<Got> {
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    while Instant::now() < end && !done(&got) {
        match src.next_packet().expect("next_packet") {
            Next::Packet(p) => got.push(Got {
                dir: p.meta.direction,
                ts_ns: i128::from(p.meta.ts.secs()) * 1_000_000_000
                    + i128::from(p.meta.ts.subsec_nanos()),
                iface: p.meta.iface_name.unwrap_or("").to_owned(),
                link: p.meta.link_type,
                cap_len: p.meta.cap_len,
                orig_len: p.meta.orig_len,
                data: p.data.to_vec(),
            }),
            Next::Timeout => {}
            Next::End => break,
        }
    }
    got
}

fn open_in(ns: &netns::Netns, cfg: LiveConfig) -> AfPacketSource {
    ns.run(move || AfPacketSource::open(&cfg).expect("open AF_PACKET ring"))
}

fn udp_payload(seq: u32) -> Vec<u8> {
    let mut v = b"netmon-seq:".to_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    v.resize(64 + (seq as usize % 700), 0xab);
    v
}

#[test]
fn udp_tcp_icmp_and_ipv6_arrive_in_order_with_metadata() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("afp");
    let t0 = now_ns();
    let mut src = open_in(&pair.b, LiveConfig::new(VethPair::B_IF));
    assert_eq!(src.interfaces().len(), 1);
    assert_eq!(src.interfaces()[0].link_type, LinkType::ETHERNET);

    // A TCP listener in b; it echoes what it reads, upper-cased.
    let listener = pair
        .b
        .run(|| TcpListener::bind((VethPair::B_V4, 7001)).expect("listen"));
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        s.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
    });

    const N: u32 = 200;
    pair.a.run(|| {
        let s = UdpSocket::bind((VethPair::A_V4, 6000)).unwrap();
        for seq in 0..N {
            s.send_to(&udp_payload(seq), (VethPair::B_V4, 5555))
                .unwrap();
        }
        let s6 = UdpSocket::bind((VethPair::A_V6, 6001)).unwrap();
        for seq in 0..5 {
            s6.send_to(&udp_payload(seq), (VethPair::B_V6, 5556))
                .unwrap();
        }
        use std::io::{Read, Write};
        let mut c = TcpStream::connect((VethPair::B_V4, 7001)).unwrap();
        c.write_all(b"hello ring").unwrap();
        let mut back = [0u8; 10];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"HELLO RING");
    });
    server.join().unwrap();
    pair.a.ok(&["ping", "-c3", "-i0.2", "-W2", VethPair::B_V4]);

    let got = collect(&mut src, Duration::from_secs(10), |g| {
        g.iter().filter(|p| p.icmp_echo() == Some(false)).count() >= 3
            && g.iter()
                .filter(|p| p.udp().is_some_and(|u| u.1 == 5555))
                .count()
                >= N as usize
            && g.iter()
                .filter(|p| p.udp().is_some_and(|u| u.1 == 5556))
                .count()
                >= 5
    });
    let t1 = now_ns();

    // Metadata of every frame.
    let mut last = 0;
    for g in &got {
        assert_eq!(g.link, LinkType::ETHERNET);
        assert_eq!(g.iface, VethPair::B_IF);
        assert_eq!(g.cap_len as usize, g.data.len());
        assert!(g.orig_len >= g.cap_len);
        // Frames stamped on different CPUs (a request arriving, its answer leaving) can
        // reach the ring slightly out of timestamp order; one sender's stream cannot (below).
        assert!(
            g.ts_ns >= last - 50_000_000,
            "timestamps go back by more than 50 ms: {} < {last}",
            g.ts_ns
        );
        assert!(
            g.ts_ns >= t0 - 1_000_000 && g.ts_ns <= t1,
            "timestamp {} outside the test [{t0}, {t1}]",
            g.ts_ns
        );
        last = last.max(g.ts_ns);
    }

    // Every UDP datagram once, in order, inbound, whole.
    let udp: Vec<&Got> = got
        .iter()
        .filter(|g| g.udp().is_some_and(|u| u.1 == 5555))
        .collect();
    let seqs: Vec<u32> = udp
        .iter()
        .map(|g| {
            let (sp, _, pl) = g.udp().unwrap();
            assert_eq!(sp, 6000);
            assert_eq!(g.dir, Direction::Inbound);
            u32::from_be_bytes(pl[11..15].try_into().unwrap())
        })
        .collect();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>());
    assert!(udp.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    for (g, seq) in udp.iter().zip(0..) {
        assert_eq!(g.udp().unwrap().2, &udp_payload(seq)[..]);
        assert_eq!(g.orig_len as usize, 14 + 20 + 8 + udp_payload(seq).len());
    }
    // b has no UDP listener: its "port unreachable" answers leave through veth1 — outbound.
    assert!(got.iter().any(|g| g.dir == Direction::Outbound));

    // IPv6.
    let v6: Vec<&Got> = got
        .iter()
        .filter(|g| g.udp().is_some_and(|u| u.1 == 5556))
        .collect();
    assert_eq!(v6.len(), 5);
    assert!(
        v6.iter()
            .all(|g| g.is_ipv6() && g.dir == Direction::Inbound)
    );

    // Pings: requests in, replies out, alternating.
    let echo: Vec<(bool, Direction)> = got
        .iter()
        .filter_map(|g| g.icmp_echo().map(|r| (r, g.dir)))
        .collect();
    assert_eq!(
        echo,
        [true, false, true, false, true, false]
            .iter()
            .map(|&r| (
                r,
                if r {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                }
            ))
            .collect::<Vec<_>>()
    );

    // TCP: the handshake's SYN in, SYN-ACK out, then both payloads.
    let tcp: Vec<_> = got
        .iter()
        .filter_map(|g| g.tcp().map(|t| (t, g.dir)))
        .collect();
    let syn = tcp
        .iter()
        .position(|((_, dp, s, a, _), _)| *dp == 7001 && *s && !*a);
    let synack = tcp
        .iter()
        .position(|((sp, _, s, a, _), _)| *sp == 7001 && *s && *a);
    assert!(syn.is_some() && synack.is_some() && syn < synack, "{tcp:?}");
    assert_eq!(tcp[syn.unwrap()].1, Direction::Inbound);
    assert_eq!(tcp[synack.unwrap()].1, Direction::Outbound);
    assert!(tcp.iter().any(|((_, dp, _, _, p), d)| *dp == 7001
        && p == b"hello ring"
        && *d == Direction::Inbound));
    assert!(tcp.iter().any(|((sp, _, _, _, p), d)| *sp == 7001
        && p == b"HELLO RING"
        && *d == Direction::Outbound));

    let st = src.stats();
    assert_eq!(st.packets, got.len() as u64);
    assert!(st.kernel_received.unwrap() >= st.packets, "{st:?}");
    assert_eq!(st.kernel_dropped, Some(0));
}

#[test]
fn kernel_filter_snaplen_and_loopback_copies() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("afpf");
    let mut cfg = LiveConfig::new(VethPair::B_IF);
    cfg.filter = Some("udp dst port 5557".into());
    cfg.snaplen = 60;
    let mut src = open_in(&pair.b, cfg);
    pair.a.run(|| {
        let s = UdpSocket::bind((VethPair::A_V4, 0)).unwrap();
        for port in [5557, 5558, 5557, 5559, 5557] {
            s.send_to(&[7u8; 300], (VethPair::B_V4, port)).unwrap();
        }
    });
    pair.a.ok(&["ping", "-c1", "-W2", VethPair::B_V4]);
    let got = collect(&mut src, Duration::from_secs(3), |g| g.len() >= 3);
    // Give stray packets a moment to show up, if the filter let any through.
    let more = collect(&mut src, Duration::from_millis(300), |_| false);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(more.is_empty(), "{more:?}");
    for g in &got {
        assert_eq!((g.cap_len, g.orig_len), (60, 14 + 20 + 8 + 300));
        assert_eq!(g.data.len(), 60);
    }

    // Loopback: every packet is seen leaving and arriving; only one copy is kept.
    let mut src = open_in(&pair.b, LiveConfig::new("lo"));
    pair.b.run(|| {
        let r = UdpSocket::bind(("127.0.0.1", 5600)).unwrap();
        let s = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        for seq in 0..10u32 {
            s.send_to(&seq.to_be_bytes(), ("127.0.0.1", 5600)).unwrap();
        }
        let mut buf = [0u8; 16];
        for _ in 0..10 {
            r.recv(&mut buf).unwrap();
        }
    });
    let got = collect(&mut src, Duration::from_secs(3), |g| g.len() >= 10);
    let more = collect(&mut src, Duration::from_millis(300), |_| false);
    let seqs: Vec<u32> = got
        .iter()
        .chain(&more)
        .filter_map(|g| g.udp())
        .map(|(_, _, p)| u32::from_be_bytes(p.try_into().unwrap()))
        .collect();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
}

#[test]
fn several_interfaces_share_one_ring() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("afpm");
    let mut cfg = LiveConfig::new(VethPair::B_IF);
    cfg.interfaces.push("lo".into());
    cfg.filter = Some("udp".into());
    let mut src = open_in(&pair.b, cfg);
    assert_eq!(src.interfaces().len(), 2);
    pair.a.run(|| {
        let s = UdpSocket::bind((VethPair::A_V4, 0)).unwrap();
        s.send_to(b"over veth", (VethPair::B_V4, 5700)).unwrap();
    });
    pair.b.run(|| {
        let s = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        s.send_to(b"over lo", ("127.0.0.1", 5701)).unwrap();
    });
    let got = collect(&mut src, Duration::from_secs(3), |g| {
        g.iter().filter(|p| p.udp().is_some()).count() >= 2
    });
    let mut seen: Vec<(String, Vec<u8>)> = got
        .iter()
        .filter_map(|g| g.udp().map(|u| (g.iface.clone(), u.2.to_vec())))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("lo".to_owned(), b"over lo".to_vec()),
            ("veth1".to_owned(), b"over veth".to_vec())
        ]
    );
}

#[test]
fn vlan_tags_stripped_by_the_kernel_are_put_back() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("afpv");
    let mut src = open_in(&pair.b, LiveConfig::new(VethPair::B_IF));
    // A tagged frame written raw into veth0 (no 8021q module needed): the receiving side
    // moves the tag into the packet's metadata before AF_PACKET sees it.
    let frame = {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 100,
        ];
        let ip =
            etherparse::PacketBuilder::ipv4([10, 78, 0, 1], [10, 78, 0, 2], 64).udp(4000, 5800);
        let mut body = Vec::new();
        ip.write(&mut body, b"tagged").unwrap();
        f.extend_from_slice(&[0x08, 0x00]);
        // PacketBuilder::ipv4 without a link layer writes IPv4 onwards.
        f.extend_from_slice(&body);
        f
    };
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    pair.a.ok(&[
        "python3",
        "-c",
        &format!(
            "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); \
             s.bind(('{}', 0)); s.send(bytes.fromhex('{hex}'))",
            VethPair::A_IF
        ),
    ]);
    let got = collect(&mut src, Duration::from_secs(3), |g| {
        g.iter().any(|p| p.udp().is_some_and(|u| u.1 == 5800))
    });
    let g = got
        .iter()
        .find(|p| p.udp().is_some_and(|u| u.1 == 5800))
        .expect("the tagged datagram");
    // 802.1Q, VLAN 100, then IPv4.
    assert_eq!(&g.data[12..14], &[0x81, 0x00]);
    assert_eq!(u16::from_be_bytes([g.data[14], g.data[15]]) & 0x0fff, 100);
    assert_eq!(&g.data[16..18], &[0x08, 0x00]);
    assert_eq!(g.orig_len as usize, 14 + 4 + 20 + 8 + 6);
}

#[test]
fn fanout_hash_splits_flows_and_keeps_each_whole() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("afpo");
    let mut cfg = LiveConfig::new(VethPair::B_IF);
    cfg.filter = Some("udp dst port 5900".into());
    cfg.fanout = Some(Fanout {
        group: 4242,
        mode: FanoutMode::Hash,
    });
    let mut s1 = open_in(&pair.b, cfg.clone());
    let mut s2 = open_in(&pair.b, cfg);
    const FLOWS: u16 = 32;
    const PER: usize = 5;
    pair.a.run(|| {
        let socks: Vec<UdpSocket> = (0..FLOWS)
            .map(|i| UdpSocket::bind((VethPair::A_V4, 40000 + i)).unwrap())
            .collect();
        for _ in 0..PER {
            for s in &socks {
                s.send_to(b"x", (VethPair::B_V4, 5900)).unwrap();
            }
        }
    });
    let total = FLOWS as usize * PER;
    let g1 = collect(&mut s1, Duration::from_millis(1500), |_| false);
    let g2 = collect(&mut s2, Duration::from_millis(300), |_| false);
    assert_eq!(g1.len() + g2.len(), total, "{} + {}", g1.len(), g2.len());
    assert!(
        !g1.is_empty() && !g2.is_empty(),
        "fanout sent everything to one socket"
    );
    let ports = |g: &[Got]| -> std::collections::BTreeMap<u16, usize> {
        let mut m = std::collections::BTreeMap::new();
        for p in g {
            *m.entry(p.udp().unwrap().0).or_insert(0) += 1;
        }
        m
    };
    let (p1, p2) = (ports(&g1), ports(&g2));
    for (port, n) in p1.iter().chain(&p2) {
        assert_eq!(*n, PER, "flow from port {port} split between sockets");
    }
    assert!(p1.keys().all(|k| !p2.contains_key(k)));
}

#[test]
fn stop_handle_ends_a_capture_waiting_on_an_idle_interface() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("afps");
    let mut cfg = LiveConfig::new(VethPair::B_IF);
    cfg.timeout = Duration::from_secs(30);
    cfg.filter = Some("udp port 1".into());
    let mut src = open_in(&pair.b, cfg);
    let stop = src.stop_handle();
    let t = Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        stop.stop();
    });
    assert!(matches!(src.next_packet().unwrap(), Next::End));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn open_errors_are_typed() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("afpe");
    let e = pair
        .b
        .run(|| AfPacketSource::open(&LiveConfig::new("nosuch0")).unwrap_err());
    assert!(
        matches!(e, netmon_capture::CaptureError::NoSuchInterface { .. }),
        "{e}"
    );
    let mut cfg = LiveConfig::new(VethPair::B_IF);
    cfg.filter = Some("tcp port".into());
    let e = pair.b.run(move || AfPacketSource::open(&cfg).unwrap_err());
    assert!(
        matches!(e, netmon_capture::CaptureError::BadFilter { .. }),
        "{e}"
    );
}
