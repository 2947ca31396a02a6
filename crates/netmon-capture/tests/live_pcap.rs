//! The libpcap backend against real traffic: a veth pair between two fresh network namespaces
//! (`netmon_testkit::netns`), capture on `veth1` inside `b`, traffic sent from `a`.
//!
//! Needs root and iproute2 (skipped otherwise; `NETMON_REQUIRE_NETNS=1` makes that a failure),
//! and `ping` for the ICMP traffic.
#![cfg(all(unix, feature = "libpcap"))]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use netmon_capture::pcap::PcapSource;
use netmon_capture::{
    Backend, CaptureError, CaptureSource, CaptureStats, Direction, Interface, LinkType, LiveConfig,
    Next, StopHandle, Timestamp, open_live,
};
use netmon_packet::{Net, Packet, TcpFlags, Transport};
use netmon_testkit::netns::{Netns, VethPair};

/// An owned copy of one captured frame.
#[derive(Clone, Debug)]
struct Rec {
    ts: Timestamp,
    iface: u32,
    iface_name: Option<String>,
    link_type: LinkType,
    direction: Direction,
    cap_len: u32,
    orig_len: u32,
    data: Vec<u8>,
}

impl Rec {
    fn packet(&self) -> Packet<'_> {
        Packet::parse_frame(self.link_type, &self.data, self.orig_len as usize)
    }

    /// `(src port, dst port, payload)` of a UDP datagram.
    fn udp(&self) -> Option<(u16, u16, Vec<u8>)> {
        let p = self.packet();
        match &p.transport {
            Transport::Udp(u) => Some((u.src_port(), u.dst_port(), p.payload.to_vec())),
            _ => None,
        }
    }

    /// ICMPv4 type of an ICMP message.
    fn icmp_type(&self) -> Option<u8> {
        match self.packet().transport {
            Transport::Icmpv4(i) => Some(i.type_u8()),
            _ => None,
        }
    }
}

/// What a capture thread saw.
struct Seen {
    recs: Vec<Rec>,
    stats: CaptureStats,
    interfaces: Vec<Interface>,
}

/// A source read on its own thread until stopped.
struct Running {
    stop: StopHandle,
    recs: Arc<Mutex<Vec<Rec>>>,
    thread: JoinHandle<Seen>,
}

impl Running {
    fn start(mut src: Box<dyn CaptureSource>) -> Running {
        let stop = src.stop_handle();
        let recs = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&recs);
        let thread = std::thread::spawn(move || {
            loop {
                match src.next_packet() {
                    Ok(Next::Packet(p)) => {
                        assert_eq!(p.data.len(), p.meta.cap_len as usize);
                        shared.lock().unwrap().push(Rec {
                            ts: p.meta.ts,
                            iface: p.meta.iface,
                            iface_name: p.meta.iface_name.map(str::to_owned),
                            link_type: p.meta.link_type,
                            direction: p.meta.direction,
                            cap_len: p.meta.cap_len,
                            orig_len: p.meta.orig_len,
                            data: p.data.to_vec(),
                        });
                    }
                    Ok(Next::Timeout) => {}
                    Ok(Next::End) => break,
                    Err(e) => panic!("capture failed: {e}"),
                }
            }
            let recs = std::mem::take(&mut *shared.lock().unwrap());
            Seen {
                recs,
                stats: src.stats(),
                interfaces: src.interfaces().to_vec(),
            }
        });
        Running { stop, recs, thread }
    }

    /// Waits (at most 20 s) until `done` holds for what was captured, then a little longer to
    /// catch duplicates, and stops.
    fn finish(self, done: impl Fn(&[Rec]) -> bool) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(&self.recs.lock().unwrap()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.stop.stop();
        self.thread.join().expect("capture thread panicked")
    }
}

fn pair(tag: &str) -> Option<VethPair> {
    if netmon_testkit::netns::unavailable().is_some() {
        return None;
    }
    Some(VethPair::new(tag))
}

/// Opens a pcap source inside `ns` (the handle stays in that namespace).
fn open_in(ns: &Netns, cfg: LiveConfig) -> Result<PcapSource, CaptureError> {
    ns.run(move || PcapSource::open(&cfg))
}

fn cfg(iface: &str) -> LiveConfig {
    LiveConfig {
        timeout: Duration::from_millis(100),
        ..LiveConfig::new(iface)
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    Timestamp::from_nanos(i64::try_from(d.as_nanos()).unwrap())
}

/// Sends `n` datagrams `seq NNNNN` from `from` to `to`, inside namespace `ns`.
fn send_udp(ns: &Netns, from: &str, to: &str, n: u32) {
    let (from, to) = (from.to_owned(), to.to_owned());
    ns.run(move || {
        let s = UdpSocket::bind(&from).unwrap();
        for i in 0..n {
            s.send_to(format!("seq {i:05}").as_bytes(), &to).unwrap();
        }
    });
}

/// The sequence numbers of the captured datagrams to `port`, in capture order.
fn seqs(recs: &[Rec], port: u16) -> Vec<u32> {
    recs.iter()
        .filter_map(Rec::udp)
        .filter(|(_, dst, _)| *dst == port)
        .map(|(_, _, payload)| {
            let s = std::str::from_utf8(&payload).unwrap();
            s.strip_prefix("seq ").unwrap().parse().unwrap()
        })
        .collect()
}

fn count_icmp(recs: &[Rec], ty: u8) -> usize {
    recs.iter().filter(|r| r.icmp_type() == Some(ty)).count()
}

#[test]
fn udp_tcp_ping_and_ipv6_arrive_once_in_order_with_metadata() {
    let Some(p) = pair("pcm") else { return };
    let t0 = now();
    let src = open_in(&p.b, cfg(VethPair::B_IF)).unwrap();
    assert_eq!(
        src.nanosecond_timestamps(0),
        Some(cfg!(target_os = "linux"))
    );
    assert_eq!(src.nanosecond_timestamps(1), None);
    let run = Running::start(Box::new(src));

    // Receivers in `b`, so nothing is answered with ICMP port unreachable.
    let v4: UdpSocket = p.b.run(|| UdpSocket::bind("10.77.0.2:5555").unwrap());
    let v6: UdpSocket = p.b.run(|| UdpSocket::bind("[fd77::2]:5556").unwrap());
    let listener: TcpListener = p.b.run(|| TcpListener::bind("10.77.0.2:7000").unwrap());

    // Pings first: they also resolve ARP, so no datagram waits for a neighbour.
    p.a.ok(&["ping", "-c3", "-i0.2", "-W2", VethPair::B_V4]);
    send_udp(&p.a, "10.77.0.1:0", "10.77.0.2:5555", 200);
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello-from-a");
        s.write_all(b"hello-from-b").unwrap();
        // Wait for the client's FIN before closing.
        assert_eq!(s.read(&mut buf).unwrap(), 0);
    });
    p.a.run(|| {
        let mut c = TcpStream::connect("10.77.0.2:7000").unwrap();
        c.write_all(b"hello-from-a").unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello-from-b");
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
    });
    server.join().unwrap();
    send_udp(&p.a, "[fd77::1]:0", "[fd77::2]:5556", 50);

    let seen = run.finish(|r| {
        seqs(r, 5555).len() >= 200 && seqs(r, 5556).len() >= 50 && count_icmp(r, 0) >= 3
    });
    let t1 = now();
    drop((v4, v6));
    let recs = &seen.recs;

    // Every datagram once, in order, for both address families.
    assert_eq!(seqs(recs, 5555), (0..200).collect::<Vec<_>>());
    assert_eq!(seqs(recs, 5556), (0..50).collect::<Vec<_>>());
    let v6_count = recs
        .iter()
        .filter(|r| matches!(r.packet().net, Net::Ipv6(_)) && r.udp().is_some())
        .count();
    assert_eq!(v6_count, 50);
    // Three echo requests in, three replies out.
    assert_eq!(count_icmp(recs, 8), 3);
    assert_eq!(count_icmp(recs, 0), 3);

    // The TCP connection: handshake, both payloads and both FINs, each seen once.
    let tcp: Vec<(u16, u16, TcpFlags, Vec<u8>)> = recs
        .iter()
        .filter_map(|r| {
            let p = r.packet();
            match &p.transport {
                Transport::Tcp(t) => {
                    Some((t.src_port(), t.dst_port(), t.flags(), p.payload.to_vec()))
                }
                _ => None,
            }
        })
        .collect();
    let syn = |ack: bool, to_server: bool| {
        tcp.iter()
            .filter(|(s, d, f, _)| {
                f.syn() && f.ack() == ack && (if to_server { *d } else { *s }) == 7000
            })
            .count()
    };
    assert_eq!(syn(false, true), 1, "{tcp:?}");
    assert_eq!(syn(true, false), 1, "{tcp:?}");
    for (payload, to_server) in [(&b"hello-from-a"[..], true), (&b"hello-from-b"[..], false)] {
        let n = tcp
            .iter()
            .filter(|(s, d, _, p)| p == payload && (if to_server { *d } else { *s }) == 7000)
            .count();
        assert_eq!(n, 1, "{payload:?} in {tcp:?}");
    }
    let fins = tcp.iter().filter(|(_, _, f, _)| f.fin()).count();
    assert_eq!(fins, 2, "{tcp:?}");

    // Metadata of every frame.
    let mut last = t0;
    for r in recs {
        assert_eq!(r.link_type, LinkType::ETHERNET);
        assert_eq!(r.iface, 0);
        assert_eq!(r.iface_name.as_deref(), Some("veth1"));
        assert_eq!(r.cap_len as usize, r.data.len());
        assert_eq!(
            r.orig_len, r.cap_len,
            "nothing is cut at the default snaplen"
        );
        // libpcap does not say on an Ethernet device.
        assert_eq!(r.direction, Direction::Unknown);
        assert!(
            r.ts >= last,
            "timestamps go back: {:?} after {last:?}",
            r.ts
        );
        assert!(r.ts <= t1, "{:?} after the test ended ({t1:?})", r.ts);
        last = r.ts;
    }
    if cfg!(target_os = "linux") {
        // Nanosecond precision: not every timestamp is a whole microsecond.
        assert!(recs.iter().any(|r| r.ts.as_nanos() % 1000 != 0));
    }
    assert_eq!(seen.interfaces.len(), 1);
    assert_eq!(seen.interfaces[0].name, "veth1");
    assert_eq!(seen.interfaces[0].link_type, LinkType::ETHERNET);

    // Counters: ours match what was yielded; the kernel's cover them, without drops.
    let st = seen.stats;
    assert_eq!(st.packets, recs.len() as u64);
    assert_eq!(
        st.bytes,
        recs.iter().map(|r| u64::from(r.orig_len)).sum::<u64>()
    );
    assert!(st.kernel_received.unwrap() >= st.packets, "{st:?}");
    assert_eq!(st.kernel_dropped, Some(0), "{st:?}");
    assert!(st.iface_dropped.is_some(), "{st:?}");
}

#[test]
fn bpf_filter_keeps_only_the_filtered_port() {
    let Some(p) = pair("pcf") else { return };
    let cfg = LiveConfig {
        filter: Some("udp dst port 6001".into()),
        immediate: true,
        ..cfg(VethPair::B_IF)
    };
    // Through `open_live`, as the CLI will.
    let src = p.b.run(move || open_live(Backend::Pcap, &cfg)).unwrap();
    let run = Running::start(src);
    p.a.ok(&["ping", "-c1", "-W2", VethPair::B_V4]);
    send_udp(&p.a, "10.77.0.1:0", "10.77.0.2:6002", 20);
    send_udp(&p.a, "10.77.0.1:0", "10.77.0.2:6001", 20);
    send_udp(&p.a, "[fd77::1]:0", "[fd77::2]:6002", 5);
    let seen = run.finish(|r| r.len() >= 20);
    assert_eq!(seqs(&seen.recs, 6001), (0..20).collect::<Vec<_>>());
    assert_eq!(seen.recs.len(), 20, "only port 6001 passes");
    assert_eq!(seen.stats.packets, 20);
}

#[test]
fn bad_filters_are_reported_as_such() {
    let Some(p) = pair("pcb") else { return };
    for expr in ["udp port and and", "port no-such-service-xyz"] {
        let cfg = LiveConfig {
            filter: Some(expr.into()),
            ..cfg(VethPair::B_IF)
        };
        match open_in(&p.b, cfg) {
            Err(CaptureError::BadFilter { filter, reason }) => {
                assert_eq!(filter, expr);
                assert!(!reason.is_empty() && !reason.starts_with("libpcap error"));
            }
            other => panic!("{expr:?}: {other:?}"),
        }
    }
}

#[test]
fn unknown_interfaces_are_named_in_the_error() {
    let Some(p) = pair("pcn") else { return };
    match open_in(&p.b, cfg("nmnosuch0")) {
        Err(CaptureError::NoSuchInterface { name }) => assert_eq!(name, "nmnosuch0"),
        other => panic!("{other:?}"),
    }
    // veth0 lives in the other namespace.
    let two = LiveConfig {
        interfaces: vec![VethPair::B_IF.into(), VethPair::A_IF.into()],
        ..cfg(VethPair::B_IF)
    };
    match open_in(&p.b, two) {
        Err(CaptureError::NoSuchInterface { name }) => assert_eq!(name, "veth0"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn any_is_alone_or_refused() {
    let cfg = LiveConfig {
        interfaces: vec!["any".into(), "lo".into()],
        ..LiveConfig::default()
    };
    let e = PcapSource::open(&cfg).unwrap_err();
    assert!(matches!(e, CaptureError::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("any"), "{e}");
    let e = PcapSource::open(&LiveConfig::default()).unwrap_err();
    assert!(matches!(e, CaptureError::InvalidArgument(_)), "{e}");
}

#[test]
fn any_device_gives_cooked_frames_with_directions() {
    let Some(p) = pair("pca") else { return };
    let src = open_in(&p.b, cfg("any")).unwrap();
    let lt = src.interfaces()[0].link_type;
    assert!(
        lt == LinkType::LINUX_SLL || lt == LinkType::LINUX_SLL2,
        "{lt}"
    );
    let run = Running::start(Box::new(src));
    p.a.ok(&["ping", "-c3", "-i0.2", "-W2", VethPair::B_V4]);
    let seen = run.finish(|r| count_icmp(r, 0) >= 3);
    assert_eq!(seen.interfaces.len(), 1);
    assert_eq!(seen.interfaces[0].name, "any");
    let icmp: Vec<&Rec> = seen
        .recs
        .iter()
        .filter(|r| r.icmp_type().is_some())
        .collect();
    assert_eq!(icmp.len(), 6, "{icmp:?}");
    for r in &icmp {
        assert_eq!(r.link_type, lt);
        assert_eq!(r.iface_name.as_deref(), Some("any"));
        let expected = match r.icmp_type() {
            Some(8) => Direction::Inbound,
            Some(0) => Direction::Outbound,
            other => panic!("icmp type {other:?}"),
        };
        assert_eq!(r.direction, expected, "{r:?}");
    }
    // libpcap's `ps_recv` on `any` came out below the frames it delivered once, in a CI run
    // under load (not reproduced in 14 runs since; the cause is inside libpcap and not pinned
    // down). So only the counters are checked here; the single-interface test keeps the
    // inequality, and the AF_PACKET tests check it against the kernel directly.
    assert!(seen.stats.kernel_received.is_some(), "{:?}", seen.stats);
    assert_eq!(seen.stats.kernel_dropped, Some(0), "{:?}", seen.stats);
}

#[test]
fn two_interfaces_are_captured_side_by_side() {
    let Some(p) = pair("pc2") else { return };
    let cfg = LiveConfig {
        interfaces: vec![VethPair::B_IF.into(), "lo".into(), VethPair::B_IF.into()],
        ..cfg(VethPair::B_IF)
    };
    let src = open_in(&p.b, cfg).unwrap();
    let names: Vec<&str> = src.interfaces().iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["veth1", "lo"], "duplicates are opened once");
    let run = Running::start(Box::new(src));
    send_udp(&p.a, "10.77.0.1:0", "10.77.0.2:5555", 30);
    p.b.ok(&["ping", "-c2", "-i0.2", "-W2", "127.0.0.1"]);
    let seen = run.finish(|r| seqs(r, 5555).len() >= 30 && count_icmp(r, 0) >= 2);

    let on = |i: u32| -> Vec<Rec> { seen.recs.iter().filter(|r| r.iface == i).cloned().collect() };
    let (veth, lo) = (on(0), on(1));
    assert_eq!(veth.len() + lo.len(), seen.recs.len());
    assert!(
        veth.iter()
            .all(|r| r.iface_name.as_deref() == Some("veth1"))
    );
    assert!(lo.iter().all(|r| r.iface_name.as_deref() == Some("lo")));
    assert_eq!(seqs(&veth, 5555), (0..30).collect::<Vec<_>>());
    assert!(seqs(&lo, 5555).is_empty());
    // Loopback: each ping seen once (libpcap drops the outgoing copy), none on veth1.
    assert_eq!((count_icmp(&lo, 8), count_icmp(&lo, 0)), (2, 2));
    assert_eq!(count_icmp(&veth, 8) + count_icmp(&veth, 0), 0);
    // Each interface's frames keep their order.
    for list in [&veth, &lo] {
        assert!(list.windows(2).all(|w| w[0].ts <= w[1].ts));
    }
    assert!(seen.stats.kernel_received.unwrap() >= seen.stats.packets);
}

/// A quiet interface in `ns`: one end of a second veth pair, both ends inside `ns`, without
/// addresses or IPv6 (so not even MLD or router solicitations leave it).
fn idle_iface(ns: &Netns) -> &'static str {
    ns.ok(&[
        "ip", "link", "add", "idle0", "type", "veth", "peer", "name", "idle1",
    ]);
    for i in ["idle0", "idle1"] {
        ns.ok(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{i}.disable_ipv6=1"),
        ]);
        ns.ok(&["ip", "link", "set", i, "up"]);
    }
    "idle0"
}

#[test]
fn timeouts_tick_on_an_idle_interface() {
    let Some(p) = pair("pct") else { return };
    let iface = idle_iface(&p.b);
    let timeout = Duration::from_millis(200);
    let mut src = open_in(
        &p.b,
        LiveConfig {
            timeout,
            ..cfg(iface)
        },
    )
    .unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let next = src.next_packet().unwrap();
        let took = t.elapsed();
        assert!(matches!(next, Next::Timeout), "{next:?}");
        assert!(took >= timeout, "timeout after {took:?}");
        assert!(
            took < timeout + Duration::from_secs(1),
            "timeout after {took:?}"
        );
    }
}

#[test]
fn stop_ends_a_wait_on_an_idle_interface_at_once() {
    let Some(p) = pair("pcs") else { return };
    let iface = idle_iface(&p.b);
    let mut src = open_in(
        &p.b,
        LiveConfig {
            timeout: Duration::from_secs(30),
            ..cfg(iface)
        },
    )
    .unwrap();
    let stop = src.stop_handle();
    let reader = std::thread::spawn(move || {
        let r = matches!(src.next_packet(), Ok(Next::End));
        // Stopped for good.
        (r, matches!(src.next_packet(), Ok(Next::End)))
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    stop.stop();
    let (first, again) = reader.join().unwrap();
    let took = t.elapsed();
    assert!(first && again);
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
}

/// Run by `permission_denied_without_capabilities` in a process without capabilities.
#[test]
#[ignore = "run without capabilities by permission_denied_without_capabilities"]
fn permission_child() {
    match PcapSource::open(&LiveConfig::new("lo")) {
        Err(CaptureError::PermissionDenied { what, backend }) => {
            assert_eq!((what.as_str(), backend), ("lo", "pcap"));
            println!("PERMISSION-DENIED-OK");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn permission_denied_without_capabilities() {
    if netmon_testkit::netns::unavailable().is_some() {
        return;
    }
    // This test binary again, with every capability dropped (still uid 0, so it can run).
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all", "--"])
        .arg(&exe)
        .args([
            "--ignored",
            "--exact",
            "permission_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PERMISSION-DENIED-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
