//! Process attribution, for real: python3 clients and servers in network namespaces made by the
//! test, their first packet captured with the AF_PACKET backend, and the resolver asked at
//! that packet, as the engine will.
//!
//! Skipped (with a message) where namespaces cannot be made; CI sets `NETMON_REQUIRE_NETNS=1`,
//! which turns that skip into a failure.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use netmon_capture::afpacket::AfPacketSource;
use netmon_capture::{CaptureSource, LiveConfig, Next};
use netmon_enrich::process::{
    Attribution, Family, ProcessResolver, Proto, SocketState, Unattributed,
};
use netmon_testkit::netns::{self, Netns, VethPair};

/// A TCP client: connects, holds the connection `hold` seconds, closes, exits.
const TCP_CLIENT: &str = "import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
time.sleep(float(sys.argv[3]))
s.close()";

/// A UDP client: one datagram from an unconnected socket, a short wait, exit.
const UDP_CLIENT: &str = "import socket, sys, time
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.sendto(b'netmon', (sys.argv[1], int(sys.argv[2])))
time.sleep(float(sys.argv[3]))";

/// A dual-stack TCP server on `::` (IPv4 clients arrive as ::ffff:a.b.c.d): prints its port,
/// accepts one connection, holds it until stdin closes.
const DUAL_SERVER: &str = "import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', 0))
s.listen()
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
print('accepted', flush=True)
sys.stdin.read()";

fn python(args: &[&str]) -> Child {
    Command::new("python3")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3")
}

/// The first TCP SYN or UDP datagram to `port` in `cap`: protocol, source, destination.
fn first_packet_to(
    cap: &mut AfPacketSource,
    port: u16,
    limit: Duration,
) -> Option<(Proto, SocketAddr, SocketAddr)> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        let p = match cap.next_packet().expect("next_packet") {
            Next::Packet(p) => p,
            Next::Timeout => continue,
            Next::End => return None,
        };
        let Ok(s) = SlicedPacket::from_ethernet(p.data) else {
            continue;
        };
        let (sa, da): (IpAddr, IpAddr) = match &s.net {
            Some(NetSlice::Ipv4(v4)) => (
                v4.header().source_addr().into(),
                v4.header().destination_addr().into(),
            ),
            Some(NetSlice::Ipv6(v6)) => (
                v6.header().source_addr().into(),
                v6.header().destination_addr().into(),
            ),
            _ => continue,
        };
        let hit = match &s.transport {
            Some(TransportSlice::Tcp(t)) if t.syn() && !t.ack() && t.destination_port() == port => {
                Some((Proto::Tcp, t.source_port()))
            }
            Some(TransportSlice::Udp(u)) if u.destination_port() == port => {
                Some((Proto::Udp, u.source_port()))
            }
            _ => None,
        };
        if let Some((proto, sport)) = hit {
            return Some((proto, SocketAddr::new(sa, sport), SocketAddr::new(da, port)));
        }
    }
    None
}

fn lo_capture() -> AfPacketSource {
    let mut cfg = LiveConfig::new("lo");
    cfg.immediate = true;
    cfg.timeout = Duration::from_millis(20);
    cfg.buffer_bytes = 4 << 20;
    cfg.block_bytes = 1 << 16;
    AfPacketSource::open(&cfg).expect("open AF_PACKET on lo")
}

fn expect_process(a: &Attribution, pid: u32, name: &str) {
    match a {
        Attribution::Process(p) => {
            assert_eq!((p.pid, p.name.as_str()), (pid, name), "{p:?}");
        }
        Attribution::Unattributed(why) => panic!("expected {name}({pid}), got: {why} ({why:?})"),
    }
}

/// The "Done when": python3 connects to a listener and the flow is attributed to its
/// pid and name at its first packet, for a connection that lasts 30 ms (a process that is gone
/// by any periodic scan): after it exits the same question has no process.
#[test]
fn short_tcp_connection_attributed_at_first_syn() {
    if netns::unavailable().is_some() {
        return;
    }
    let ns = Netns::new("prtcp");
    ns.run(|| {
        let mut cap = lo_capture();
        let mut r = ProcessResolver::new();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        });
        let mut child = python(&["-c", TCP_CLIENT, "127.0.0.1", &port.to_string(), "0.03"]);
        let (proto, src, dst) =
            first_packet_to(&mut cap, port, Duration::from_secs(10)).expect("no SYN captured");
        let t = Instant::now();
        let a = r.lookup_flow(proto, src, dst);
        let took = t.elapsed();
        expect_process(&a, child.id(), "python3");
        let p = a.process().unwrap();
        assert!(p.cmdline.contains("python3 -c import socket"), "{p:?}");
        assert_eq!((p.uid, p.user.as_deref()), (Some(0), Some("root")));
        assert!(
            p.exe.as_deref().is_some_and(|e| e.contains("python3")),
            "{p:?}"
        );
        assert!(p.start_time.is_some());
        let start = Instant::now();
        assert!(child.wait().unwrap().success());
        eprintln!(
            "attributed in {took:?}; the client then lived {:?} more",
            start.elapsed()
        );
        server.join().unwrap();
        // Gone: its socket is closing (TIME_WAIT, or FIN_WAIT if the server's FIN is still
        // on its way), without a file or a process.
        let after = r.lookup_flow(proto, src, dst);
        assert!(
            matches!(
                after,
                Attribution::Unattributed(Unattributed::NoInode {
                    state: SocketState::TimeWait | SocketState::FinWait1 | SocketState::FinWait2
                })
            ),
            "{after:?}"
        );
        let st = r.stats();
        assert!(st.full_scans >= 1 && st.netlink_queries >= 2, "{st:?}");
    });
}

/// UDP over IPv4 and IPv6: the first datagram of a python3 sender (an unconnected socket)
/// is its; the receiving side (this test's socket) is this process.
#[test]
fn udp_first_datagram_v4_and_v6() {
    if netns::unavailable().is_some() {
        return;
    }
    let ns = Netns::new("prudp");
    ns.run(|| {
        let mut cap = lo_capture();
        let mut r = ProcessResolver::new();
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let rx = UdpSocket::bind(bind).unwrap();
            let to = rx.local_addr().unwrap();
            let mut child = python(&[
                "-c",
                UDP_CLIENT,
                &to.ip().to_string(),
                &to.port().to_string(),
                "0.03",
            ]);
            let (proto, src, dst) =
                first_packet_to(&mut cap, to.port(), Duration::from_secs(10)).expect("no datagram");
            assert_eq!(proto, Proto::Udp);
            expect_process(&r.lookup_flow(proto, src, dst), child.id(), "python3");
            // The receiver: this test process.
            let me = r.lookup(Proto::Udp, dst, src);
            assert_eq!(
                me.process().map(|p| p.pid),
                Some(std::process::id()),
                "{me:?}"
            );
            assert!(child.wait().unwrap().success());
            let mut buf = [0u8; 16];
            assert_eq!(rx.recv(&mut buf).unwrap(), 6);
        }
    });
}

/// A dual-stack (AF_INET6) python3 server: an IPv4 connection to it is found through its
/// `::ffff:` socket, whether asked with IPv4 or IPv4-mapped addresses; the listener is found
/// for a tuple no connection has. Pure IPv6 too.
#[test]
fn ipv4_flow_of_a_dual_stack_socket_and_ipv6() {
    if netns::unavailable().is_some() {
        return;
    }
    let ns = Netns::new("prdual");
    ns.run(|| {
        let mut r = ProcessResolver::new();
        let mut server = python(&["-c", DUAL_SERVER]);
        let mut out = BufReader::new(server.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "accepted");
        let c = client.local_addr().unwrap();
        let s: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // The server's accepted socket, asked with IPv4 and with mapped addresses.
        expect_process(&r.lookup(Proto::Tcp, s, c), server.id(), "python3");
        let mapped = |a: SocketAddr| match a.ip() {
            IpAddr::V4(v4) => SocketAddr::new(v4.to_ipv6_mapped().into(), a.port()),
            IpAddr::V6(_) => a,
        };
        expect_process(
            &r.lookup(Proto::Tcp, mapped(s), mapped(c)),
            server.id(),
            "python3",
        );
        // Known owner: each further lookup is one netlink query and the cache, no /proc walk.
        let (before, t) = (r.stats(), Instant::now());
        for _ in 0..200 {
            assert!(r.lookup(Proto::Tcp, s, c).process().is_some());
        }
        let (after, took) = (r.stats(), t.elapsed());
        assert_eq!(after.lookups - before.lookups, 200);
        assert_eq!(after.netlink_queries - before.netlink_queries, 200);
        assert_eq!(after.owner_hits - before.owner_hits, 200);
        assert_eq!(
            (after.full_scans, after.quick_scans),
            (before.full_scans, before.quick_scans)
        );
        eprintln!("cached-owner lookup: {:?} each; {after:?}", took / 200);
        // The client's side is this process; lookup_flow from the client's first packet
        // picks the sender.
        let me = r.lookup_flow(Proto::Tcp, c, s);
        assert_eq!(me.process().map(|p| p.pid), Some(std::process::id()));
        // No connection with this peer: the listener answers.
        let stranger: SocketAddr = "127.0.0.9:9".parse().unwrap();
        expect_process(&r.lookup(Proto::Tcp, s, stranger), server.id(), "python3");
        // The table shows the accepted socket as IPv6 with the mapped address.
        let table = r.sockets().unwrap();
        let acc = table
            .iter()
            .find(|e| e.proto == Proto::Tcp && e.remote == mapped(c))
            .expect("accepted socket in the table");
        assert_eq!(
            (acc.family, acc.state),
            (Family::Ipv6, SocketState::Established)
        );
        assert_eq!(acc.process.as_ref().map(|p| p.pid), Some(server.id()));
        // Pure IPv6: a connection from this process to [::1].
        let v6 = TcpListener::bind("[::1]:0").unwrap();
        let v6c = TcpStream::connect(v6.local_addr().unwrap()).unwrap();
        let a = r.lookup_flow(
            Proto::Tcp,
            v6c.local_addr().unwrap(),
            v6c.peer_addr().unwrap(),
        );
        assert_eq!(
            a.process().map(|p| p.pid),
            Some(std::process::id()),
            "{a:?} {:?}",
            r.stats()
        );
        drop(server.stdin.take());
        assert!(server.wait().unwrap().success());
    });
}

/// A connection the server has not accepted yet waits in its listener's accept queue:
/// established, but without a file (inode 0) until `accept()`. A lookup in that moment (the
/// handshake is done within a round trip of the SYN) finds the listener's process, which will
/// own it.
#[test]
fn a_connection_waiting_to_be_accepted_is_its_listeners() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = listener.local_addr().unwrap();
    let client = TcpStream::connect(s).unwrap();
    let c = client.local_addr().unwrap();
    let mut r = ProcessResolver::new();
    let a = r.lookup(Proto::Tcp, s, c);
    assert_eq!(
        a.process().map(|p| p.pid),
        Some(std::process::id()),
        "{a:?}"
    );
    // Accepted, the socket has its own file: the same answer.
    let (_accepted, _) = listener.accept().unwrap();
    let a = ProcessResolver::new().lookup(Proto::Tcp, s, c);
    assert_eq!(
        a.process().map(|p| p.pid),
        Some(std::process::id()),
        "{a:?}"
    );
}

/// Degraded modes: a flow between two other addresses is `NotLocal`; a local address without
/// the socket is `SocketNotFound`, and the second ask comes from the negative cache; a flow of
/// the namespace on the other end of a veth pair is that namespace's: here only its local
/// side (the server) is found.
#[test]
fn degraded_modes_are_reasons() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("prdeg");
    let listener = pair
        .b
        .run(|| TcpListener::bind((VethPair::B_V4, 0)).unwrap());
    let port = listener.local_addr().unwrap().port();
    // A client in namespace a.
    let client = pair
        .a
        .run(move || TcpStream::connect((VethPair::B_V4, port)).unwrap());
    let (_accepted, _) = listener.accept().unwrap();
    let c = client.local_addr().unwrap();
    let s = listener.local_addr().unwrap();
    pair.b.run(move || {
        let mut r = ProcessResolver::new();
        // a's socket, seen from b: its address is not b's.
        assert_eq!(
            r.lookup(Proto::Tcp, c, s),
            Attribution::Unattributed(Unattributed::NotLocal)
        );
        // The flow as a whole: b's side (this process's accepted socket) is found.
        let a = r.lookup_flow(Proto::Tcp, c, s);
        assert_eq!(
            a.process().map(|p| p.pid),
            Some(std::process::id()),
            "{a:?}"
        );
        // Unrelated addresses.
        let x: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let y: SocketAddr = "198.51.100.1:80".parse().unwrap();
        assert_eq!(
            r.lookup_flow(Proto::Udp, x, y),
            Attribution::Unattributed(Unattributed::NotLocal)
        );
        // Local, no socket; asked twice: one netlink query.
        let l: SocketAddr = format!("{}:1", VethPair::B_V4).parse().unwrap();
        let before = r.stats();
        for _ in 0..2 {
            assert_eq!(
                r.lookup(Proto::Udp, l, y),
                Attribution::Unattributed(Unattributed::SocketNotFound)
            );
        }
        let after = r.stats();
        assert_eq!(after.netlink_queries - before.netlink_queries, 1);
        assert_eq!(after.negative_hits - before.negative_hits, 1);
    });
    drop(client);
}

/// A socket of root's, asked about by an unprivileged user: the socket is found (netlink
/// sock_diag is open to all) but root's `/proc/PID/fd` is not readable: `NoPermission`. The
/// test runs itself again as `nobody` (setpriv) for the unprivileged half.
#[test]
fn no_permission_for_another_users_process() {
    if netns::unavailable().is_some() {
        return;
    }
    let ns = Netns::new("prperm");
    let out = ns.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "unprivileged_half", "--ignored", "--nocapture"])
            .env("NETMON_TEST_ROOT_PORT", port.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("setpriv");
        drop(listener);
        out
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The unprivileged half of [`no_permission_for_another_users_process`] (run by it).
#[test]
#[ignore = "run by no_permission_for_another_users_process as nobody"]
fn unprivileged_half() {
    let port: u16 = std::env::var("NETMON_TEST_ROOT_PORT")
        .expect("run by no_permission_for_another_users_process")
        .parse()
        .unwrap();
    assert!(!nix::unistd::geteuid().is_root());
    let mut r = ProcessResolver::new();
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let a = r.lookup(Proto::Tcp, local, "127.0.0.1:9".parse().unwrap());
    assert!(
        matches!(a, Attribution::Unattributed(Unattributed::NoPermission { uid: 0, inode }) if inode > 0),
        "{a:?}"
    );
    // The table still lists the socket, with its uid and no process.
    let t = r.sockets().unwrap();
    let e = t
        .iter()
        .find(|e| e.local == local)
        .expect("listener listed");
    assert_eq!((e.uid, e.process.is_none()), (0, true));
    let _ = std::io::stdout().flush();
}
