//! Counts heap allocations on the per-packet path, to prove the two claims of the issue:
//!
//! 1. **No allocation per packet for an existing flow** — [`Engine`] without a classifier
//!    (`Engine<()>`): after a flow's first packet (which creates it: slab slot, index entry,
//!    wheel entry), every further packet of it allocates nothing.
//! 2. **No allocation per packet for flows already classified** — [`Engine::classifying`]:
//!    once a flow's [`FlowClass::is_done`] is true (its working state freed, `has_work()`
//!    false), its packets allocate nothing, whatever they carry.
//!
//! What legitimately allocates, and is therefore outside the measured phases:
//! - a new flow (its table entry; the classifier's `AppInfo` and working state);
//! - a flow **still being classified**: reassembly of a direction's first bytes, a parsed
//!   ClientHello, each DNS question recorded (at most `MAX_DNS`), each HTTP request recorded
//!   (at most `http::MAX_TRANSACTIONS`) — bounded per flow; a flow other than HTTP stops being
//!   parsed after 4 × `max_probe_packets` payload packets at the latest;
//! - the timing wheel re-filing a flow's expiry check once per idle-timeout period (not per
//!   packet): the measured phases last a few seconds of packet time, well inside every timeout.
//!
//! HTTP keep-alive is the case in between: HTTP has no payload-packet budget, so a connection
//! carrying several requests keeps parsing them until it is classified (both directions
//! stopped, or `MAX_TRANSACTIONS` requests recorded and the last one answered — or twice that
//! many sent without its answer, see `one_way_http_stops_parsing`). During that
//! phase body segments and ACKs allocate nothing (the parser only counts body bytes down),
//! while each new request allocates its recorded strings — see
//! `http_keep_alive_while_classifying`. After it, requests are no longer looked at and cost
//! nothing (claim 2).
//!
//! Counting is per thread (a thread-local switch and counter), so the test harness's other
//! threads do not disturb the figures; frames are built before each measured phase.

// A counting `#[global_allocator]` needs an `unsafe impl GlobalAlloc`; the workspace denies
// unsafe code by default, and this test file is the only place that needs it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};
use netmon_capture::{LinkType, PacketMeta};
use netmon_engine::{Engine, EngineConfig, EngineSink, FlowClass};
use netmon_flow::{EndReason, Flow, FlowExt};
use netmon_testkit::tls;
use netmon_types::Timestamp;

// ------------------------------------------------------------------------------ the counter

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator also runs while a thread's locals are being torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the bookkeeping only touches const-initialised thread-locals without destructors,
// which neither allocate nor re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with
        // `layout`; the caller guarantees `new_size` is valid for it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations (alloc, alloc_zeroed, realloc) made by this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn the_counter_sees_allocations() {
    let mut keep = Vec::with_capacity(2);
    let n = allocations_during(|| {
        keep.push(Box::new(1u64));
        let mut v: Vec<u8> = Vec::with_capacity(1);
        v.extend_from_slice(&[0; 100]); // a realloc
        keep.push(Box::new(v.len() as u64));
    });
    assert_eq!(n, 4);
    assert_eq!(
        allocations_during(|| keep.clear()),
        0,
        "frees are not counted"
    );
}

// ------------------------------------------------------------------------------ traffic

fn ip(src: IpAddr, dst: IpAddr) -> PacketBuilderStep<IpHeaders> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("one address family per flow"),
    }
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// One TCP connection's frames (raw IP), with consistent sequence and acknowledgement numbers.
struct Tcp {
    ends: [(IpAddr, u16); 2],
    next: [u32; 2],
}

impl Tcp {
    fn new(client: (IpAddr, u16), server: (IpAddr, u16)) -> Tcp {
        Tcp {
            ends: [client, server],
            next: [0x1000_0000, 0xfff0_0000], // the server's wraps during the test
        }
    }

    fn segment(&mut self, from: usize, syn: bool, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = (self.ends[from], self.ends[1 - from]);
        let b = ip(src.0, dst.0).tcp(src.1, dst.1, self.next[from], 64240);
        let acked = self.next[1 - from];
        let b = match (syn, from) {
            (true, CLIENT) => b.syn(),
            (true, _) => b.syn().ack(acked),
            (false, _) if payload.is_empty() => b.ack(acked),
            (false, _) => b.ack(acked).psh(),
        };
        let mut v = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut v, payload).unwrap();
        self.next[from] = self.next[from]
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(syn));
        v
    }

    fn handshake(&mut self) -> Vec<Vec<u8>> {
        vec![
            self.segment(CLIENT, true, &[]),
            self.segment(SERVER, true, &[]),
            self.segment(CLIENT, false, &[]),
        ]
    }

    fn data(&mut self, from: usize, payload: &[u8]) -> Vec<u8> {
        self.segment(from, false, payload)
    }

    fn ack(&mut self, from: usize) -> Vec<u8> {
        self.segment(from, false, &[])
    }
}

/// One UDP flow's datagrams (raw IP).
struct Udp {
    ends: [(IpAddr, u16); 2],
}

impl Udp {
    fn datagram(&self, from: usize, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = (self.ends[from], self.ends[1 - from]);
        let b = ip(src.0, dst.0).udp(src.1, dst.1);
        let mut v = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut v, payload).unwrap();
        v
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

/// Packets measured per flow once it is in its steady state.
const STEADY: usize = 1000;
/// Packets a flow may take, after its setup, to finish classifying (HTTP: `MAX_TRANSACTIONS`
/// short exchanges of 5 packets).
const MAX_WARMUP: usize = 200;

/// One flow of the test: its opening exchange, then a stream of further packets long enough for
/// classification to finish and [`STEADY`] packets more.
struct Scenario {
    name: &'static str,
    proto: u8,
    server_port: u16,
    setup: Vec<Vec<u8>>,
    more: Vec<Vec<u8>>,
}

/// TLS 1.3: handshake, a ClientHello with SNI and ALPN, the server's first flight (ServerHello,
/// change_cipher_spec, encrypted records), then application data both ways and pure ACKs.
fn tls_flow() -> Scenario {
    let mut c = Tcp::new((v4(10), 51000), (v4(20), 443));
    let mut setup = c.handshake();
    let alpn = [b"h2".to_vec(), b"http/1.1".to_vec()];
    let hello = tls::records(&tls::client_hello(b"www.example.com", &alpn, 36), &[]);
    setup.push(c.data(CLIENT, &hello));
    let flight = [
        tls::records(&tls::server_hello(0x1301), &[]),
        tls::record(20, &[1]),
        tls::record(23, &[0x33; 1200]),
    ]
    .concat();
    setup.push(c.data(SERVER, &flight));
    setup.push(c.data(
        CLIENT,
        &[tls::record(20, &[1]), tls::record(23, &[0x44; 80])].concat(),
    ));
    let mut more = Vec::new();
    for i in 0..(STEADY + MAX_WARMUP) / 3 + 1 {
        more.push(c.data(CLIENT, &tls::record(23, &vec![0x55; 100 + i % 200])));
        more.push(c.data(SERVER, &tls::record(23, &[0x66; 1400])));
        more.push(c.ack(CLIENT));
    }
    Scenario {
        name: "tls",
        proto: 6,
        server_port: 443,
        setup,
        more,
    }
}

fn http_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\n\
         Accept: */*\r\nReferer: http://www.example.com/\r\n\r\n"
    )
    .into_bytes()
}

const BODY_SEGMENT: usize = 1400;

fn http_response(body_len: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {body_len}\r\nServer: nginx\r\n\r\n"
    )
    .into_bytes()
}

/// One keep-alive exchange: a request, the response head, a body of `segments` full segments,
/// the client's ACKs.
fn http_exchange(c: &mut Tcp, path: &str, segments: usize) -> Vec<Vec<u8>> {
    let mut v = vec![
        c.data(CLIENT, &http_request(path)),
        c.data(SERVER, &http_response(segments * BODY_SEGMENT)),
    ];
    for i in 0..segments {
        v.push(c.data(SERVER, &[b'x'; BODY_SEGMENT]));
        if i % 2 == 1 {
            v.push(c.ack(CLIENT));
        }
    }
    v
}

/// HTTP/1.1 over IPv6: requests on one keep-alive connection, each answered with a
/// Content-Length body of 2 segments (the flow is classified once `MAX_TRANSACTIONS`
/// requests are recorded and answered).
fn http_flow() -> Scenario {
    let mut c = Tcp::new((v6(10), 52000), (v6(20), 80));
    let setup = c.handshake();
    let mut more = Vec::new();
    let mut i = 0;
    while more.len() < STEADY + MAX_WARMUP {
        more.extend(http_exchange(&mut c, &format!("/file/{i}.bin"), 2));
        i += 1;
    }
    Scenario {
        name: "http",
        proto: 6,
        server_port: 80,
        setup,
        more,
    }
}

/// A DNS message for `www.example.com` A IN: a query, or a response with one address.
fn dns_message(id: u16, response: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend(if response { [0x81, 0x80] } else { [0x01, 0x00] });
    m.extend([0, 1, 0, u8::from(response), 0, 0, 0, 0]);
    for label in ["www", "example", "com"] {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend([0, 0, 1, 0, 1]);
    if response {
        m.extend([
            0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 80,
        ]);
    }
    m
}

/// DNS: queries and their responses, again and again on the same 5-tuple (a forwarder).
fn dns_flow() -> Scenario {
    let u = Udp {
        ends: [(v4(11), 53000), (v4(53), 53)],
    };
    let setup = vec![
        u.datagram(CLIENT, &dns_message(0, false)),
        u.datagram(SERVER, &dns_message(0, true)),
    ];
    let more = (1..=(STEADY + MAX_WARMUP) as u16)
        .map(|i| {
            let response = i % 2 == 0;
            u.datagram(usize::from(response), &dns_message(i.div_ceil(2), response))
        })
        .collect();
    Scenario {
        name: "dns",
        proto: 17,
        server_port: 53,
        setup,
        more,
    }
}

const DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
const SCID: [u8; 8] = [0xf0, 0x67, 0xa5, 0x50, 0x2a, 0x42, 0x62, 0xb5];

/// A QUIC v1 Initial of `total` bytes (RFC 9000 §17.2.2) whose protected payload is filler:
/// it looks like QUIC but does not decrypt.
fn quic_initial(dcid: &[u8], scid: &[u8], total: usize) -> Vec<u8> {
    let mut p = vec![0xc3];
    p.extend(1u32.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    p.push(0); // token length
    let rest = total - p.len() - 2;
    p.extend((0x4000 | rest as u16).to_be_bytes());
    p.resize(total, 0x5c);
    p
}

/// A QUIC 1-RTT (short header) packet to `dcid`.
fn quic_short(dcid: &[u8], len: usize) -> Vec<u8> {
    let mut p = vec![0x41];
    p.extend_from_slice(dcid);
    p.resize(len, 0x7e);
    p
}

/// QUIC over IPv6: a client Initial the classifier cannot open (as after a capture of a
/// version-negotiated or corrupted handshake), the server's Initial, then 1-RTT packets both
/// ways. The classifier names it `quic` from the long header and gives up on the ClientHello
/// after `MAX_DATAGRAMS` client datagrams.
fn quic_flow() -> Scenario {
    let u = Udp {
        ends: [(v6(11), 54000), (v6(443), 443)],
    };
    let setup = vec![
        u.datagram(CLIENT, &quic_initial(&DCID, &SCID, 1200)),
        u.datagram(SERVER, &quic_initial(&SCID, &DCID, 1200)),
    ];
    let more = (0..STEADY + MAX_WARMUP)
        .map(|i| match i % 3 {
            0 => u.datagram(CLIENT, &quic_short(&SCID, 60)),
            _ => u.datagram(SERVER, &quic_short(&DCID, 1350)),
        })
        .collect();
    Scenario {
        name: "quic",
        proto: 17,
        server_port: 443,
        setup,
        more,
    }
}

/// A TCP protocol the classifier does not know (Redis's RESP): given up on at the client's
/// first segment and guessed from the port.
fn unknown_tcp_flow() -> Scenario {
    let mut c = Tcp::new((v4(12), 55000), (v4(63), 6379));
    let mut setup = c.handshake();
    setup.push(c.data(CLIENT, b"*1\r\n$4\r\nPING\r\n"));
    setup.push(c.data(SERVER, b"+PONG\r\n"));
    let mut more = Vec::new();
    for i in 0..(STEADY + MAX_WARMUP) / 2 {
        let cmd = format!("*2\r\n$3\r\nGET\r\n$8\r\nkey:{i:04}\r\n");
        more.push(c.data(CLIENT, cmd.as_bytes()));
        more.push(c.data(SERVER, b"$5\r\nvalue\r\n"));
    }
    Scenario {
        name: "unknown tcp (redis)",
        proto: 6,
        server_port: 6379,
        setup,
        more,
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        tls_flow(),
        http_flow(),
        dns_flow(),
        quic_flow(),
        unknown_tcp_flow(),
    ]
}

// ------------------------------------------------------------------------------ the engine

/// Counts flow events (without allocating).
#[derive(Default)]
struct Events {
    started: u64,
    ended: u64,
}

impl<E> EngineSink<E> for Events {
    fn flow_started(&mut self, _: &Flow<E>, _: Option<&str>) {
        self.started += 1;
    }
    fn flow_ended(&mut self, _: &Flow<E>, _: Option<&str>) {
        self.ended += 1;
    }
}

/// An engine fed raw-IP frames one millisecond apart.
struct Feed<E: FlowExt> {
    engine: Engine<E>,
    events: Events,
    ts: i64,
}

impl<E: FlowExt> Feed<E> {
    fn new(engine: Engine<E>) -> Feed<E> {
        Feed {
            engine,
            events: Events::default(),
            ts: 1_700_000_000_000_000_000,
        }
    }

    fn send(&mut self, frame: &[u8]) {
        self.ts += 1_000_000;
        let meta = PacketMeta {
            direction: netmon_capture::Direction::Unknown,
            ts: Timestamp(self.ts),
            iface: 0,
            iface_name: None,
            link_type: LinkType::RAW,
            cap_len: frame.len() as u32,
            orig_len: frame.len() as u32,
        };
        self.engine.process(&meta, frame, &mut self.events);
    }

    fn send_all(&mut self, frames: &[Vec<u8>]) {
        for f in frames {
            self.send(f);
        }
    }

    fn flow(&self, proto: u8, server_port: u16) -> &Flow<E> {
        let mut found = self
            .engine
            .table()
            .iter()
            .filter(|f| f.core.key.proto() == proto && f.core.dst().port == server_port);
        let f = found.next().expect("the scenario's flow is in the table");
        assert!(found.next().is_none(), "one flow per scenario");
        f
    }

    /// Sends `frames` while counting allocations; checks no flow started or ended meanwhile
    /// and that every frame was counted to a flow.
    fn measure(&mut self, frames: &[Vec<u8>]) -> u64 {
        let before = (self.events.started, self.events.ended);
        let counted = self.engine.summary().flows.flow_packets;
        let n = allocations_during(|| self.send_all(frames));
        assert_eq!((self.events.started, self.events.ended), before);
        assert_eq!(
            self.engine.summary().flows.flow_packets,
            counted + frames.len() as u64
        );
        n
    }
}

/// What classification of each scenario must have found once done.
fn check_classified(name: &str, class: &FlowClass) {
    let info = class.info();
    match name {
        "tls" => {
            assert_eq!(class.app(), Some("tls"));
            let info = info.expect("hellos recorded");
            let hello = info.hello.as_deref().expect("ClientHello parsed");
            assert_eq!(
                hello.sni.as_ref().map(|s| s.as_bytes()),
                Some(&b"www.example.com"[..])
            );
            assert_eq!(hello.alpn.len(), 2);
            let server = info.server.as_deref().expect("ServerHello parsed");
            assert_eq!((server.version, server.cipher), (0x0304, 0x1301));
        }
        "http" => {
            assert_eq!(class.app(), Some("http"));
            let http = &info.expect("requests recorded").http;
            assert_eq!(http.len(), netmon_classify::http::MAX_TRANSACTIONS);
            for (i, t) in http.iter().enumerate() {
                let path = format!("/file/{i}.bin");
                assert_eq!(t.path.as_ref().unwrap().as_bytes(), path.as_bytes());
                assert_eq!(t.status, Some(200), "{path} answered");
            }
        }
        "dns" => {
            assert_eq!(class.app(), Some("dns"));
            let dns = &info.expect("questions recorded").dns;
            assert_eq!(dns.len(), netmon_classify::classifier::MAX_DNS);
            // The question that fills the list ends classification before its response.
            let (last, answered) = dns.split_last().unwrap();
            assert!(
                answered
                    .iter()
                    .all(|t| t.rcode == Some(0) && t.answers.len() == 1)
            );
            assert_eq!(last.rcode, None);
        }
        "quic" => {
            assert_eq!(class.app(), Some("quic"));
            let info = info.expect("version recorded");
            assert_eq!(info.quic_version, Some(1));
            assert!(info.hello.is_none(), "the Initial does not decrypt");
        }
        _ => {
            assert_eq!(class.app(), Some("redis"));
            assert!(class.is_guess());
        }
    }
}

#[test]
fn classified_flows_do_not_allocate_per_packet() {
    let mut feed = Feed::new(Engine::classifying(EngineConfig::default()).unwrap());
    for s in scenarios() {
        feed.send_all(&s.setup);
        // Warm up: the flow's further packets until its classification is done.
        let mut used = 0;
        while !feed.flow(s.proto, s.server_port).ext.is_done() {
            assert!(used < MAX_WARMUP, "{}: still classifying", s.name);
            feed.send(&s.more[used]);
            used += 1;
        }
        let class = &feed.flow(s.proto, s.server_port).ext;
        assert!(!class.has_work(), "{}: working state freed", s.name);
        check_classified(s.name, class);
        let steady = &s.more[used..used + STEADY];
        assert_eq!(
            feed.measure(steady),
            0,
            "{}: allocations in {STEADY} packets",
            s.name
        );
        // Every flow stays live and done while the next scenario runs.
        assert!(feed.flow(s.proto, s.server_port).ext.is_done());
    }
    assert_eq!(feed.events.started, 5);
    feed.engine
        .finish(EndReason::EndOfCapture, &mut feed.events);
    assert_eq!(feed.events.ended, 5);
}

#[test]
fn existing_flows_without_classifier_do_not_allocate() {
    let mut feed = Feed::new(Engine::<()>::new(EngineConfig::default()).unwrap());
    for s in scenarios() {
        // The first packet creates the flow; every later one, handshake included, is free.
        feed.send(&s.setup[0]);
        let rest: Vec<Vec<u8>> = s.setup[1..]
            .iter()
            .chain(&s.more[..STEADY])
            .cloned()
            .collect();
        assert_eq!(feed.measure(&rest), 0, "{}: allocations", s.name);
        assert!(feed.flow(s.proto, s.server_port).core.packets() > STEADY as u64);
    }
    assert_eq!(feed.events.started, 5);
}

#[test]
fn http_keep_alive_while_classifying() {
    let mut feed = Feed::new(Engine::classifying(EngineConfig::default()).unwrap());
    let mut c = Tcp::new((v4(14), 56000), (v4(80), 8080));
    let flow = |feed: &Feed<FlowClass>| feed.flow(6, 8080).ext.clone();
    feed.send_all(&c.handshake());
    feed.send_all(&http_exchange(&mut c, "/first", 2));
    assert_eq!(flow(&feed).app(), Some("http"));

    // Still classifying: a new request on the connection is parsed and recorded, which
    // allocates its strings (method, path, host, user agent, referer) and the list slot.
    let request = c.data(CLIENT, &http_request("/second"));
    let n = feed.measure(&[request]);
    assert!((1..=16).contains(&n), "a recorded request: {n} allocations");
    let requests = |feed: &Feed<FlowClass>| flow(feed).info().map_or(0, |i| i.http.len());
    assert_eq!(requests(&feed), 2);

    // Its response head is matched to it in place; body segments and ACKs are only counted
    // down by the parser: no allocation although the flow is still being classified.
    let head = c.data(SERVER, &http_response(60 * BODY_SEGMENT));
    let mut body = Vec::new();
    for _ in 0..60 {
        body.push(c.data(SERVER, &[b'y'; BODY_SEGMENT]));
        body.push(c.ack(CLIENT));
    }
    assert!(!flow(&feed).is_done());
    assert_eq!(feed.measure(&[head]), 0, "a response head");
    assert_eq!(feed.measure(&body), 0, "60 body segments and their ACKs");
    assert!(
        !flow(&feed).is_done(),
        "HTTP is followed past the payload-packet budget"
    );
    assert_eq!(
        flow(&feed).info().unwrap().http[1].status,
        Some(200),
        "the response was matched"
    );

    // Further exchanges are recorded until the list is full and its last request answered.
    let max = netmon_classify::http::MAX_TRANSACTIONS;
    let mut i = 3;
    while !flow(&feed).is_done() {
        assert!(requests(&feed) <= max, "{} requests", requests(&feed));
        feed.send_all(&http_exchange(&mut c, &format!("/{i}"), 1));
        i += 1;
    }
    assert_eq!(requests(&feed), max);
    assert_eq!(i, max + 1, "classified at the last answered request");
    assert!(
        flow(&feed)
            .info()
            .unwrap()
            .http
            .iter()
            .all(|t| t.status == Some(200))
    );

    // Classified: the next requests and their bodies are not looked at.
    let after = http_exchange(&mut c, "/after", 5);
    assert_eq!(feed.measure(&after), 0);
    assert_eq!(
        requests(&feed),
        max,
        "requests after classification are not recorded"
    );
}

/// Only the client's side of a keep-alive connection is captured (responses missing): its
/// requests are kept up to `MAX_TRANSACTIONS` and parsed up to twice that many, then the flow
/// is classified and further requests cost nothing.
#[test]
fn one_way_http_stops_parsing() {
    let max = netmon_classify::http::MAX_TRANSACTIONS;
    let mut feed = Feed::new(Engine::classifying(EngineConfig::default()).unwrap());
    let mut c = Tcp::new((v4(15), 57000), (v4(81), 80));
    feed.send_all(&c.handshake());
    let mut sent = 0;
    while !feed.flow(6, 80).ext.is_done() {
        assert!(sent < 2 * max, "still parsing after {sent} requests");
        feed.send(&c.data(CLIENT, &http_request(&format!("/{sent}"))));
        sent += 1;
    }
    assert_eq!(
        sent,
        2 * max,
        "classified once twice the list went unanswered"
    );
    let http = &feed.flow(6, 80).ext.info().unwrap().http;
    assert_eq!(http.len(), max);
    assert!(http.iter().all(|t| t.status.is_none()));
    let more: Vec<Vec<u8>> = (0..100)
        .map(|i| c.data(CLIENT, &http_request(&format!("/more/{i}"))))
        .collect();
    assert_eq!(feed.measure(&more), 0);
}
