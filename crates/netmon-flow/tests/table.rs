//! Flow table behaviour on crafted packet sequences: TCP lifecycle and end reasons, port reuse,
//! mid-stream initiator heuristics, timeouts, eviction, fragments, ICMP, tunnels, active
//! timeout, determinism, and "no allocation per packet for an existing flow".

use std::alloc::{GlobalAlloc, Layout, System};

use etherparse::{IpNumber, PacketBuilder};
use netmon_flow::{
    ActiveTimeout, Direction, EndReason, Flow, FlowConfig, FlowSink, FlowTable, PacketInfo,
    TcpState, Timeouts,
};
use netmon_packet::{LinkType, Packet};
use netmon_types::Timestamp;

// ----------------------------------------------------------------------------- allocation count

/// Counts allocations per thread (tests run in parallel; only the measuring thread matters).
struct Counting;
thread_local! {
    static ALLOCS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}
fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}
fn count_alloc() {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ----------------------------------------------------------------------------- helpers

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const SEC: i64 = 1_000_000_000;

#[derive(Clone, Copy, Default)]
struct Tcp {
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    seq: u32,
}

fn tcp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, f: Tcp, data: &[u8]) -> Vec<u8> {
    let mut s = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, f.seq, 1000);
    if f.syn {
        s = s.syn();
    }
    if f.ack {
        s = s.ack(1);
    }
    if f.fin {
        s = s.fin();
    }
    if f.rst {
        s = s.rst();
    }
    let mut out = Vec::new();
    s.write(&mut out, data).unwrap();
    out
}

fn udp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .udp(sp, dp)
        .write(&mut out, data)
        .unwrap();
    out
}

/// Records every event.
#[derive(Default)]
struct Events {
    started: Vec<u64>,
    updated: Vec<u64>,
    /// The TCP state at each change.
    changed: Vec<TcpState>,
    ended: Vec<Flow<()>>,
}

impl FlowSink<()> for Events {
    fn on_start(&mut self, f: &Flow<()>) {
        self.started.push(f.core.id);
    }
    fn on_update(&mut self, f: &Flow<()>) {
        self.updated.push(f.core.id);
    }
    fn on_change(&mut self, f: &Flow<()>) {
        self.changed.push(f.core.tcp_state);
    }
    fn on_end(&mut self, f: &Flow<()>) {
        self.ended.push(f.clone());
    }
}

struct Run {
    table: FlowTable,
    ev: Events,
}

impl Run {
    fn new(cfg: FlowConfig) -> Run {
        Run {
            table: FlowTable::new(cfg),
            ev: Events::default(),
        }
    }
    fn feed(&mut self, t_ns: i64, frame: &[u8]) -> Option<netmon_flow::Observed> {
        let p = Packet::parse(LinkType::ETHERNET, frame);
        let info = PacketInfo {
            ts: Timestamp(t_ns),
            iface: 0,
            wire_len: frame.len() as u32,
        };
        self.table.observe(info, &p, &mut (), &mut self.ev)
    }
    fn finish(mut self) -> Events {
        self.table
            .flush(EndReason::EndOfCapture, &mut (), &mut self.ev);
        self.ev
    }
}

fn flags(syn: bool, ack: bool, fin: bool, rst: bool) -> Tcp {
    Tcp {
        syn,
        ack,
        fin,
        rst,
        seq: 100,
    }
}

// ----------------------------------------------------------------------------- TCP lifecycle

#[test]
fn handshake_data_and_fin_close() {
    let mut r = Run::new(FlowConfig::default());
    let o = r
        .feed(
            0,
            &tcp(A, B, 40000, 80, flags(true, false, false, false), b""),
        )
        .unwrap();
    assert!(o.new);
    assert_eq!(o.dir, Direction::ClientToServer);
    let o = r
        .feed(
            1,
            &tcp(B, A, 80, 40000, flags(true, true, false, false), b""),
        )
        .unwrap();
    assert_eq!(o.dir, Direction::ServerToClient);
    r.feed(
        2,
        &tcp(A, B, 40000, 80, flags(false, true, false, false), b""),
    );
    assert_eq!(
        r.table.get(o.flow).unwrap().core.tcp_state,
        TcpState::Established
    );
    r.feed(
        3,
        &tcp(
            A,
            B,
            40000,
            80,
            Tcp {
                ack: true,
                seq: 101,
                ..Tcp::default()
            },
            b"GET / HTTP/1.0\r\n\r\n",
        ),
    );
    r.feed(
        4,
        &tcp(B, A, 80, 40000, flags(false, true, true, false), b""),
    );
    assert_eq!(
        r.table.get(o.flow).unwrap().core.tcp_state,
        TcpState::FinWait
    );
    r.feed(
        5,
        &tcp(A, B, 40000, 80, flags(false, true, true, false), b""),
    );
    assert_eq!(
        r.table.get(o.flow).unwrap().core.tcp_state,
        TcpState::Closing
    );
    r.feed(
        6,
        &tcp(B, A, 80, 40000, flags(false, true, false, false), b""),
    );
    assert_eq!(
        r.table.get(o.flow).unwrap().core.tcp_state,
        TcpState::Closed
    );
    // One change per step that tells something: the answer, the handshake's end, the first
    // FIN. The teardown's Closing and Closed are not changes of their own.
    assert_eq!(
        r.ev.changed,
        [
            TcpState::SynReceived,
            TcpState::Established,
            TcpState::FinWait
        ]
    );
    // The closed flow lingers for late packets, then ends with reason fin.
    r.feed(5 * SEC, &udp(A, B, 1, 2, b"x"));
    assert!(r.ev.ended.is_empty());
    r.feed(11 * SEC, &udp(A, B, 1, 2, b"x"));
    let f = &r.ev.ended[0].core;
    assert_eq!(f.end_reason, Some(EndReason::Fin));
    assert_eq!((f.src().port, f.dst().port), (40000, 80));
    assert_eq!((f.c2s().packets, f.s2c().packets), (4, 3));
    assert_eq!(f.c2s().payload_bytes, 18);
    assert_eq!(
        (f.c2s().syn, f.s2c().syn, f.c2s().fin, f.s2c().fin),
        (1, 1, 1, 1)
    );
    assert_eq!(f.c2s().bytes, 3 * 54 + 54 + 18);
}

#[test]
fn reset_ends_with_rst_and_new_syn_starts_a_new_flow() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(
        0,
        &tcp(A, B, 40000, 22, flags(true, false, false, false), b""),
    );
    r.feed(
        1,
        &tcp(B, A, 22, 40000, flags(false, true, false, true), b""),
    );
    // Port reuse: a new SYN on the reset 5-tuple.
    let o = r
        .feed(
            2,
            &tcp(
                A,
                B,
                40000,
                22,
                Tcp {
                    syn: true,
                    seq: 999,
                    ..Tcp::default()
                },
                b"",
            ),
        )
        .unwrap();
    assert!(o.new);
    assert_eq!(r.ev.ended.len(), 1);
    assert_eq!(r.ev.ended[0].core.end_reason, Some(EndReason::Rst));
    assert_eq!(r.ev.ended[0].core.tcp_state, TcpState::Reset);
    let ev = r.finish();
    assert_eq!(ev.ended.len(), 2);
    assert_eq!(ev.ended[1].core.end_reason, Some(EndReason::EndOfCapture));
    assert_eq!(ev.ended[1].core.tcp_state, TcpState::SynSent);
}

#[test]
fn retransmitted_syn_stays_in_the_flow() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(
        0,
        &tcp(A, B, 40000, 443, flags(true, false, false, false), b""),
    );
    let o = r
        .feed(
            SEC,
            &tcp(A, B, 40000, 443, flags(true, false, false, false), b""),
        )
        .unwrap();
    assert!(!o.new);
    assert_eq!(r.table.len(), 1);
}

#[test]
fn midstream_pickup_uses_the_service_port() {
    let mut r = Run::new(FlowConfig::default());
    // First packet seen goes server -> client: the initiator is still the client.
    let o = r
        .feed(
            0,
            &tcp(B, A, 443, 51515, flags(false, true, false, false), b"data"),
        )
        .unwrap();
    assert_eq!(o.dir, Direction::ServerToClient);
    let f = &r.table.get(o.flow).unwrap().core;
    assert_eq!((f.src().port, f.dst().port), (51515, 443));
    assert_eq!(f.tcp_state, TcpState::MidStream);
    // SYN-ACK first: the receiver is the initiator.
    let o = r
        .feed(
            1,
            &tcp(B, A, 5000, 6000, flags(true, true, false, false), b""),
        )
        .unwrap();
    assert_eq!(r.table.get(o.flow).unwrap().core.src().port, 6000);
    // UDP between two ephemeral ports: the first sender initiates.
    let o = r.feed(2, &udp(B, A, 40001, 40002, b"q")).unwrap();
    assert_eq!(r.table.get(o.flow).unwrap().core.src().port, 40001);
    // UDP answer from port 53 seen first: the other side initiated.
    let o = r.feed(3, &udp(B, A, 53, 40003, b"r")).unwrap();
    assert_eq!(r.table.get(o.flow).unwrap().core.src().port, 40003);
}

// ----------------------------------------------------------------------------- time and memory

#[test]
fn idle_timeouts_per_protocol() {
    let cfg = FlowConfig {
        timeouts: Timeouts {
            udp: 5 * SEC,
            ..Timeouts::default()
        },
        ..FlowConfig::default()
    };
    let mut r = Run::new(cfg);
    r.feed(0, &udp(A, B, 1000, 53, b"q"));
    r.feed(
        0,
        &tcp(A, B, 1000, 80, flags(false, true, false, false), b"x"),
    );
    r.feed(4 * SEC, &udp(A, B, 9, 9, b"other"));
    assert!(r.ev.ended.is_empty());
    r.feed(6 * SEC, &udp(A, B, 9, 9, b"other"));
    assert_eq!(r.ev.ended.len(), 1);
    let f = &r.ev.ended[0].core;
    assert_eq!(
        (f.key.proto(), f.end_reason),
        (17, Some(EndReason::IdleTimeout))
    );
    // Clock going backwards (merged interfaces) neither expires nor panics.
    r.feed(SEC, &udp(A, B, 9, 9, b"late"));
    assert_eq!(r.ev.ended.len(), 1);
}

#[test]
fn eviction_is_counted_and_reported() {
    let cfg = FlowConfig {
        max_flows: 3,
        ..FlowConfig::default()
    };
    let mut r = Run::new(cfg);
    for p in 0..5u16 {
        r.feed(i64::from(p), &udp(A, B, 1000 + p, 53, b"q"));
    }
    assert_eq!(r.table.len(), 3);
    assert_eq!(r.table.stats().ended_by(EndReason::Evicted), 2);
    let evicted: Vec<u16> = r.ev.ended.iter().map(|f| f.core.src().port).collect();
    assert_eq!(evicted, [1000, 1001], "least recently seen first");
}

#[test]
fn active_timeout_update_and_split() {
    let cfg = FlowConfig {
        active_timeout: Some(10 * SEC),
        ..FlowConfig::default()
    };
    let mut r = Run::new(cfg);
    for s in 0..25 {
        r.feed(s * SEC, &udp(A, B, 1000, 53, b"q"));
    }
    assert_eq!(r.ev.updated.len(), 2);
    assert!(r.ev.ended.is_empty());

    let cfg = FlowConfig {
        active_timeout: Some(10 * SEC),
        active_mode: ActiveTimeout::Split,
        ..FlowConfig::default()
    };
    let mut r = Run::new(cfg);
    for s in 0..25 {
        r.feed(s * SEC, &udp(A, B, 1000, 53, b"q"));
    }
    let ev = r.finish();
    let reasons: Vec<_> = ev
        .ended
        .iter()
        .map(|f| (f.core.end_reason.unwrap(), f.core.packets()))
        .collect();
    assert_eq!(
        reasons,
        [
            (EndReason::ActiveTimeout, 11),
            (EndReason::ActiveTimeout, 11),
            (EndReason::EndOfCapture, 3)
        ]
    );
}

#[test]
fn flush_is_in_creation_order_and_deterministic() {
    let run = || {
        let mut r = Run::new(FlowConfig::default());
        for p in (0..50u16).rev() {
            r.feed(i64::from(p), &udp(A, B, 2000 + p, 53, b"q"));
        }
        r.finish()
            .ended
            .iter()
            .map(|f| (f.core.id, f.core.src().port))
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn no_allocation_per_packet_for_existing_flows() {
    let mut r = Run::new(FlowConfig::default());
    let frames: Vec<Vec<u8>> = (0..64u16)
        .flat_map(|p| {
            [
                tcp(
                    A,
                    B,
                    30000 + p,
                    443,
                    Tcp {
                        ack: true,
                        seq: 1,
                        ..Tcp::default()
                    },
                    &[7; 100],
                ),
                udp(B, A, 53, 30000 + p, &[1; 40]),
            ]
        })
        .collect();
    for f in &frames {
        r.feed(0, f);
    }
    let before = allocs();
    for round in 0..50 {
        for f in &frames {
            r.feed(round, f);
        }
    }
    let after = allocs();
    assert_eq!(
        after - before,
        0,
        "{} allocations for {} packets of existing flows",
        after - before,
        50 * frames.len()
    );
}

// ----------------------------------------------------------------------------- IP features

fn frag(id: u16, offset_words: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    // IPv4 header by hand: fragments of one UDP datagram 10.0.0.1:5353 -> 10.0.0.2:53.
    let total = 20 + payload.len() as u16;
    let ff = (u16::from(more) << 13) | offset_words;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6..8].copy_from_slice(&ff.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

#[test]
fn fragments_follow_their_first_fragment_in_any_order() {
    let mut r = Run::new(FlowConfig::default());
    let mut first = vec![0x14, 0xe9, 0x00, 0x35, 0x00, 0x30, 0, 0];
    first.extend_from_slice(&[1; 16]);
    // Later fragments arrive before the first one.
    assert!(r.feed(0, &frag(7, 3, true, &[2; 24])).is_none());
    assert!(r.feed(1, &frag(7, 6, false, &[3; 8])).is_none());
    let o = r.feed(2, &frag(7, 0, true, &first)).unwrap();
    r.feed(3, &frag(7, 3, true, &[2; 24])); // duplicate later fragment, after the first
    let f = &r.table.get(o.flow).unwrap().core;
    assert_eq!((f.src().port, f.dst().port), (5353, 53));
    assert_eq!(f.c2s().packets, 4);
    assert_eq!(f.first_seen, Timestamp(0));
    // A datagram whose first fragment never comes: counted to a port-less flow at flush.
    r.feed(4, &frag(8, 3, false, &[9; 8]));
    let ev = r.finish();
    let portless: Vec<_> = ev
        .ended
        .iter()
        .filter(|f| !f.core.key.has_ports())
        .collect();
    assert_eq!(portless.len(), 1);
    assert_eq!(portless[0].core.packets(), 1);
}

#[test]
fn icmp_echo_keyed_by_identifier_and_errors_linked() {
    let echo = |id: u16, req: bool| {
        let mut out = Vec::new();
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        if req {
            b.ipv4(A, B, 64)
                .icmpv4_echo_request(id, 1)
                .write(&mut out, b"ping")
                .unwrap();
        } else {
            b.ipv4(B, A, 64)
                .icmpv4_echo_reply(id, 1)
                .write(&mut out, b"ping")
                .unwrap();
        }
        out
    };
    let mut r = Run::new(FlowConfig::default());
    let o1 = r.feed(0, &echo(1, true)).unwrap();
    let o2 = r.feed(1, &echo(2, true)).unwrap();
    assert_ne!(o1.flow, o2.flow);
    let o3 = r.feed(2, &echo(1, false)).unwrap();
    assert_eq!((o3.flow, o3.dir), (o1.flow, Direction::ServerToClient));

    // UDP to a closed port, answered by ICMP port unreachable quoting it.
    let q = udp(A, B, 40000, 9999, b"hi");
    let u = r.feed(3, &q).unwrap();
    let quoted = &q[14..]; // the IP packet
    let mut err = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(B, A, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut err, quoted)
        .unwrap();
    let e = r.feed(4, &err).unwrap();
    assert_eq!(r.table.get(u.flow).unwrap().core.icmp_errors, 1);
    let ef = &r.table.get(e.flow).unwrap().core;
    assert_eq!(ef.quoted(), Some(&r.table.get(u.flow).unwrap().core.key));
    assert!(!ef.key.has_ports());
}

#[test]
fn vxlan_inner_flow_marked_with_outer_key() {
    let mut inner = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4])
        .ipv4([192, 168, 0, 1], [192, 168, 0, 2], 64)
        .tcp(5555, 80, 1, 100)
        .syn()
        .write(&mut inner, &[])
        .unwrap();
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 9, 0];
    vx.extend_from_slice(&inner);
    let outer = udp(A, B, 33333, 4789, &vx);
    let mut r = Run::new(FlowConfig::default());
    let o = r.feed(0, &outer).unwrap();
    let outer_key = r.table.get(o.flow).unwrap().core.key;
    let ev = r.finish();
    assert_eq!(ev.ended.len(), 2);
    let innerf = ev.ended.iter().find(|f| f.core.key.proto() == 6).unwrap();
    assert_eq!(innerf.core.outer(), Some(&outer_key));
    assert_eq!(
        innerf.core.c2s().bytes,
        outer.len() as u64,
        "inner flows count the frame length"
    );
    assert_eq!(innerf.core.tcp_state, TcpState::SynSent);

    let mut r = Run::new(FlowConfig {
        tunnel_depth: 0,
        ..FlowConfig::default()
    });
    r.feed(0, &outer);
    assert_eq!(r.finish().ended.len(), 1);
    let _ = IpNumber::UDP;
}

#[test]
fn fin_on_the_handshake_ack_or_first_data_is_not_lost() {
    for data in [&b""[..], b"hello"] {
        let mut r = Run::new(FlowConfig::default());
        let o = r
            .feed(
                0,
                &tcp(A, B, 40000, 80, flags(true, false, false, false), b""),
            )
            .unwrap();
        r.feed(
            1,
            &tcp(B, A, 80, 40000, flags(true, true, false, false), b""),
        );
        r.feed(
            2,
            &tcp(A, B, 40000, 80, flags(false, true, true, false), data),
        );
        assert_eq!(
            r.table.get(o.flow).unwrap().core.tcp_state,
            TcpState::FinWait,
            "data {data:?}"
        );
        r.feed(
            3,
            &tcp(B, A, 80, 40000, flags(false, true, true, false), b""),
        );
        assert_eq!(
            r.table.get(o.flow).unwrap().core.tcp_state,
            TcpState::Closing
        );
        r.feed(
            4,
            &tcp(A, B, 40000, 80, flags(false, true, false, false), b""),
        );
        assert_eq!(
            r.table.get(o.flow).unwrap().core.tcp_state,
            TcpState::Closed
        );
    }
}
