//! The per-flow classifier: a [`FlowExt`] that watches a young flow's payload, names its
//! application, extracts what is worth keeping, and then stops working.
//!
//! Per flow it holds a [`FlowClass`] of 32 bytes. What it finds lives in a boxed [`AppInfo`]
//! (allocated once, when there is something to keep); its working state (TCP reassembly of the
//! first bytes of each direction, HTTP parsers, the QUIC Initial state, DNS-over-TCP framing)
//! lives in a boxed `Work` that is freed as soon as the flow is classified. A classified flow
//! costs one branch per packet: no allocation, no parsing.
//!
//! Decisions are made from the payload; ports only guess (`app_guess`), after a few payload
//! packets without a recognised protocol.

use core::net::IpAddr;
use std::sync::Arc;

use netmon_flow::{Direction, FlowCore, FlowExt};
use netmon_packet::{Packet, Transport};
use netmon_types::Timestamp;

use crate::correlate::{CorrelatorConfig, DnsCorrelator};
use crate::detect;
use crate::dns::{self, DnsMessage, RData, TcpDnsBuf};
use crate::http::{self, HttpStream, HttpTransaction, Looks, Message};
use crate::quic::{self, QuicInitialState, QuicVersionKind};
use crate::reasm::StreamBuf;
use crate::tls::{ClientHelloInfo, Parse, ServerHelloInfo, looks_like_tls};
use crate::{MAX_TEXT, Text};

/// Bytes of the server → client direction reassembled (a ServerHello, a banner, a status
/// line and its headers).
const SERVER_CAP: usize = 4 * 1024;

/// Most DNS questions kept per flow.
pub const MAX_DNS: usize = 32;
/// Most answers kept per DNS question.
pub const MAX_DNS_ANSWERS: usize = 16;
/// Most authority/additional-section addresses kept per DNS question (a root or TLD referral
/// carries 13 name servers with an IPv4 and an IPv6 address each).
pub const MAX_DNS_ADDITIONAL: usize = 32;

/// Classifier settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassifyConfig {
    /// Classify at all (off: every flow's extension does nothing).
    pub enabled: bool,
    /// Bytes of each TCP direction reassembled in order for detection and hello parsing.
    pub reassembly_bytes: usize,
    /// Payload packets examined before giving up and guessing from ports.
    pub max_probe_packets: u16,
    /// DNS correlation settings.
    pub correlator: CorrelatorConfig,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        ClassifyConfig {
            enabled: true,
            reassembly_bytes: 16 * 1024,
            max_probe_packets: 12,
            correlator: CorrelatorConfig::default(),
        }
    }
}

/// Counters of the classifier's work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassifyStats {
    /// Flows whose application was recognised in the payload.
    pub recognised: u64,
    /// Flows whose application was guessed from a port.
    pub guessed: u64,
    /// Flows given up on without a name.
    pub unknown: u64,
    /// TLS/QUIC ClientHellos parsed.
    pub hellos: u64,
    /// Hellos that did not fit the reassembly buffer or did not parse.
    pub hello_failures: u64,
    /// QUIC Initials decrypted to a complete ClientHello.
    pub quic_hellos: u64,
    /// DNS messages parsed.
    pub dns_messages: u64,
    /// HTTP requests parsed.
    pub http_requests: u64,
}

/// The classifier's shared context (one per engine): configuration, the DNS correlator, counters.
#[derive(Debug, Default)]
pub struct ClassifyCtx {
    /// Settings.
    pub config: ClassifyConfig,
    /// Name ↔ address map learnt from DNS answers.
    pub dns: DnsCorrelator,
    /// Counters.
    pub stats: ClassifyStats,
}

impl ClassifyCtx {
    /// A context with `config`.
    pub fn new(config: ClassifyConfig) -> ClassifyCtx {
        ClassifyCtx {
            dns: DnsCorrelator::new(config.correlator),
            config,
            stats: ClassifyStats::default(),
        }
    }
}

/// One answer to a DNS question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsAnswer {
    /// An A or AAAA record of the answer section.
    Addr(IpAddr),
    /// A CNAME target (answer section).
    Cname(Text),
    /// An A or AAAA record of the authority or additional section: referral glue, the host
    /// addresses an mDNS answer carries.
    Additional(IpAddr),
}

/// One DNS question of a flow and what its response said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsTxn {
    /// Message id.
    pub id: u16,
    /// Question name (dotted, raw bytes).
    pub query: Text,
    /// Question type.
    pub qtype: u16,
    /// Response code, once a response was seen.
    pub rcode: Option<u8>,
    /// What the response said, in message order: answer-section A/AAAA addresses and CNAME
    /// targets (at most [`MAX_DNS_ANSWERS`]), then authority/additional-section addresses (at
    /// most [`MAX_DNS_ADDITIONAL`]). One list: most questions have one or two of these, and a
    /// second vector would cost every question 24 bytes.
    pub answers: Vec<DnsAnswer>,
}

/// What the classifier learnt about a flow. Rarely used parts are boxed: a flow table may hold
/// a million of these (most of them DNS), so the common case must stay small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppInfo {
    /// The TLS or QUIC ClientHello.
    pub hello: Option<Box<ClientHelloInfo>>,
    /// The TLS ServerHello.
    pub server: Option<Box<ServerHelloInfo>>,
    /// HTTP/1.x requests with their statuses (bounded).
    pub http: Vec<HttpTransaction>,
    /// DNS questions and answers (bounded).
    pub dns: Vec<DnsTxn>,
    /// QUIC version of the client's long header.
    pub quic_version: Option<u32>,
    /// SSH, STUN and DTLS details.
    pub extra: Option<Box<Extra>>,
    /// The name the responder's address resolved from (DNS correlation).
    pub domain: Option<Arc<Text>>,
}

/// Details of the less common applications.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// The client's SSH identification string.
    pub ssh_client: Option<Text>,
    /// The server's SSH identification string.
    pub ssh_server: Option<Text>,
    /// STUN SOFTWARE attribute.
    pub stun_software: Option<Text>,
    /// DTLS record version.
    pub dtls_version: Option<u16>,
}

impl AppInfo {
    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

/// Working state while a flow is being classified.
#[derive(Default)]
struct Work {
    /// TCP: the first bytes of each direction in order (client → server, server → client).
    streams: [StreamBuf; 2],
    /// HTTP parsers per direction, and how much of `streams` each has consumed.
    http: [HttpStream; 2],
    http_fed: [usize; 2],
    /// After the reassembly buffer is full: the next sequence number HTTP expects.
    http_live: [Option<u32>; 2],
    /// DNS over TCP, per direction.
    tcp_dns: Option<Box<[TcpDnsBuf; 2]>>,
    /// QUIC Initial decryption (client → server).
    quic: Option<Box<QuicInitialState>>,
}

const F_GUESS: u8 = 1;
const F_DONE: u8 = 2;
const F_HELLO_DONE: u8 = 4;
const F_SERVER_DONE: u8 = 8;
const F_ISN: [u8; 2] = [16, 32];

/// Every application name the classifier can give, recognised or guessed. A flow stores an
/// index into this table (one byte instead of a 16-byte `&str`: the flow record's size decides
/// how many flows fit in memory and cache).
pub const APPS: &[&str] = &[
    "",
    "http",
    "http2",
    "tls",
    "dns",
    "mdns",
    "llmnr",
    "quic",
    "gquic",
    "stun",
    "dtls",
    "ssh",
    "ssdp",
    "ftp",
    "telnet",
    "smtp",
    "dhcp",
    "tftp",
    "kerberos",
    "pop3",
    "ntp",
    "netbios",
    "imap",
    "snmp",
    "bgp",
    "ldap",
    "smb",
    "ipsec",
    "syslog",
    "dhcpv6",
    "rtsp",
    "openvpn",
    "mssql",
    "oracle",
    "mqtt",
    "nfs",
    "mysql",
    "rdp",
    "sip",
    "postgresql",
    "amqp",
    "vnc",
    "redis",
    "kafka",
    "elasticsearch",
    "memcache",
    "wireguard",
    "mongodb",
];

fn app_index(name: &str) -> u8 {
    APPS.iter()
        .position(|a| *a == name)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

/// The classifier's per-flow state (the flow table's extension slot).
#[derive(Default)]
pub struct FlowClass {
    app: u8,
    flags: u8,
    probes: u16,
    /// Initial sequence number + 1 per direction, from the SYN / SYN-ACK.
    isn: [u32; 2],
    /// The correlator's `learned` count (low 32 bits) when the flow's first packet looked its
    /// responder up: the lookup at the end is repeated only if answers were learnt since.
    dns_learned: u32,
    info: Option<Box<AppInfo>>,
    work: Option<Box<Work>>,
}

impl core::fmt::Debug for FlowClass {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowClass")
            .field("app", &self.app())
            .field("guess", &self.is_guess())
            .field("done", &self.is_done())
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Clone for FlowClass {
    /// Clones what was learnt; working state is not cloned.
    fn clone(&self) -> Self {
        FlowClass {
            app: self.app,
            flags: self.flags,
            probes: self.probes,
            isn: self.isn,
            dns_learned: self.dns_learned,
            info: self.info.clone(),
            work: None,
        }
    }
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl FlowClass {
    /// The application, if recognised or guessed.
    pub fn app(&self) -> Option<&'static str> {
        APPS.get(usize::from(self.app))
            .copied()
            .filter(|a| !a.is_empty())
    }
    /// Whether [`app`](Self::app) was guessed from a port.
    pub fn is_guess(&self) -> bool {
        self.flags & F_GUESS != 0
    }
    /// Whether classification finished (no more per-packet work).
    pub fn is_done(&self) -> bool {
        self.flags & F_DONE != 0
    }
    /// What was learnt.
    pub fn info(&self) -> Option<&AppInfo> {
        self.info.as_deref()
    }
    /// Whether working state is allocated (for tests: it must be gone once classified).
    pub fn has_work(&self) -> bool {
        self.work.is_some()
    }

    fn info_mut(&mut self) -> &mut AppInfo {
        self.info.get_or_insert_with(Box::default)
    }

    fn work_mut(&mut self, cap: usize) -> &mut Work {
        self.work.get_or_insert_with(|| {
            // The client's first flight may be a large ClientHello (post-quantum key shares:
            // ~1.8 KB, more with ECH); the server's first bytes only need to show a banner,
            // a status line or a ServerHello (which leads its first flight).
            Box::new(Work {
                streams: [StreamBuf::new(cap), StreamBuf::new(cap.min(SERVER_CAP))],
                ..Work::default()
            })
        })
    }

    fn recognise(&mut self, ctx: &mut ClassifyCtx, app: &'static str) {
        if self.app == 0 || self.is_guess() {
            ctx.stats.recognised += 1;
        }
        self.app = app_index(app);
        self.flags &= !F_GUESS;
    }

    /// Stops all per-packet work and frees the working state.
    fn finish(&mut self) {
        self.flags |= F_DONE;
        self.work = None;
    }

    /// Gives up on recognising: guess from the ports, then stop.
    fn give_up(&mut self, ctx: &mut ClassifyCtx, core: &FlowCore) {
        if self.app == 0 {
            let (c, s) = (core.src().port, core.dst().port);
            match detect::port_guess(core.key.proto(), s, c) {
                Some(g) => {
                    self.app = app_index(g);
                    self.flags |= F_GUESS;
                    ctx.stats.guessed += 1;
                }
                None => ctx.stats.unknown += 1,
            }
        }
        self.finish();
    }

    // ------------------------------------------------------------------------------ TCP

    fn tcp(&mut self, ctx: &mut ClassifyCtx, core: &FlowCore, dir: Direction, p: &Packet<'_>) {
        let Transport::Tcp(t) = &p.transport else {
            return;
        };
        let d = idx(dir);
        let flags = t.flags();
        if flags.syn() {
            if let (Some(isn), Some(f)) = (self.isn.get_mut(d), F_ISN.get(d)) {
                *isn = t.seq().wrapping_add(1);
                self.flags |= f;
            }
        }
        let payload = t.payload();
        if payload.is_empty() {
            return;
        }
        self.probes = self.probes.saturating_add(1);
        // Fast path: this direction has nothing buffered and the segment starts its stream, so
        // the payload can be examined in place. Most flows are decided here without copying or
        // allocating anything: protocols netmon does not recognise are given up at once, and a
        // ClientHello or ServerHello in one segment is parsed where it lies.
        let fresh = self.work.as_deref().is_none_or(|w| {
            w.streams
                .get(d)
                .is_some_and(|s| s.is_empty() && s.starts_stream(t.seq()))
        });
        if fresh && self.in_place(ctx, core, d, payload) {
            return;
        }
        let cap = ctx.config.reassembly_bytes;
        let isn = self.isn;
        let known = self.flags;
        let w = self.work_mut(cap);
        if let (Some(s), Some(&isn), Some(&f)) = (w.streams.get_mut(d), isn.get(d), F_ISN.get(d)) {
            if known & f != 0 && s.is_empty() && s.start_seq().is_none() {
                s.set_isn(isn.wrapping_sub(1));
            }
            s.push(t.seq(), payload);
        }
        if self.app == 0 && !self.detect_tcp(ctx, core) {
            if self.probes >= ctx.config.max_probe_packets || !self.tcp_could_match(core) {
                self.give_up(ctx, core);
            }
            return;
        }
        match self.app() {
            Some("tls") => self.tls(ctx),
            Some("http") => self.http(ctx, d, t.seq(), payload),
            Some("ssh") => self.ssh(),
            Some("dns") => self.tcp_dns(ctx, core, d, t.seq(), payload),
            _ => self.finish(),
        }
        // A budget for every kind of flow but HTTP: long-lived flows stop costing parse time.
        // HTTP keeps following its messages (keep-alive, pipelining) until its bounded request
        // list is full or a gap desynchronises both directions: skipping a body costs a
        // length comparison per segment, and every request matters to the user.
        if !self.is_done()
            && self.app() != Some("http")
            && self.probes >= ctx.config.max_probe_packets.saturating_mul(4)
        {
            self.finish();
        }
    }

    /// Recognises the application from the first bytes of either direction.
    fn detect_tcp(&mut self, ctx: &mut ClassifyCtx, core: &FlowCore) -> bool {
        let Some(w) = self.work.as_deref() else {
            return false;
        };
        let [c, s] = &w.streams;
        match detect_app(c.contiguous(), s.contiguous(), is_dns_port(core)) {
            Some(a) => {
                self.recognise(ctx, a);
                true
            }
            None => false,
        }
    }

    /// Examines a direction's first segment where it lies. `true`: handled (nothing to
    /// buffer); `false`: the caller buffers it and carries on.
    fn in_place(
        &mut self,
        ctx: &mut ClassifyCtx,
        core: &FlowCore,
        d: usize,
        payload: &[u8],
    ) -> bool {
        if self.app == 0 {
            let other = self
                .work
                .as_deref()
                .and_then(|w| w.streams.get(1 - d))
                .map_or(&[][..], StreamBuf::contiguous);
            let (c, s) = if d == 0 {
                (payload, other)
            } else {
                (other, payload)
            };
            let dns = is_dns_port(core);
            match detect_app(c, s, dns) {
                Some(a) => self.recognise(ctx, a),
                None if !could_match(c, s, dns) => {
                    self.give_up(ctx, core);
                    return true;
                }
                None => return false,
            }
        }
        if self.app() != Some("tls") {
            return false;
        }
        let (flag, parsed) = if d == 0 {
            if self.flags & F_HELLO_DONE != 0 {
                return true;
            }
            (
                F_HELLO_DONE,
                ClientHelloInfo::parse_records(payload).map(Either::Client),
            )
        } else {
            if self.flags & F_SERVER_DONE != 0 {
                return true;
            }
            (
                F_SERVER_DONE,
                ServerHelloInfo::parse_records(payload).map(Either::Server),
            )
        };
        match parsed {
            Parse::Incomplete => return false,
            Parse::Done(Either::Client(h)) => {
                ctx.stats.hellos += 1;
                self.info_mut().hello = Some(Box::new(h));
            }
            Parse::Done(Either::Server(h)) => self.info_mut().server = Some(Box::new(h)),
            _ if d == 0 => ctx.stats.hello_failures += 1,
            _ => {}
        }
        self.flags |= flag;
        if self.flags & (F_HELLO_DONE | F_SERVER_DONE) == F_HELLO_DONE | F_SERVER_DONE {
            self.finish();
        }
        true
    }

    /// Whether the bytes buffered so far could still become one of the recognised protocols.
    fn tcp_could_match(&self, core: &FlowCore) -> bool {
        let Some(w) = self.work.as_deref() else {
            return true;
        };
        let [c, s] = &w.streams;
        could_match(c.contiguous(), s.contiguous(), is_dns_port(core))
    }

    fn tls(&mut self, ctx: &mut ClassifyCtx) {
        let Some(w) = self.work.as_deref() else {
            return;
        };
        let [c, s] = &w.streams;
        let mut hello = None;
        let mut server = None;
        if self.flags & F_HELLO_DONE == 0 {
            match ClientHelloInfo::parse_records(c.contiguous()) {
                Parse::Done(h) => hello = Some(Some(h)),
                Parse::Incomplete if !c.is_full() => {}
                _ => hello = Some(None),
            }
        }
        if self.flags & F_SERVER_DONE == 0 {
            match ServerHelloInfo::parse_records(s.contiguous()) {
                Parse::Done(h) => server = Some(Some(h)),
                Parse::Incomplete if !s.is_full() => {}
                _ => server = Some(None),
            }
        }
        if let Some(h) = hello {
            self.flags |= F_HELLO_DONE;
            if let Some(w) = self.work.as_deref_mut() {
                if let Some(c) = w.streams.first_mut() {
                    c.free();
                }
            }
            match h {
                Some(h) => {
                    ctx.stats.hellos += 1;
                    self.info_mut().hello = Some(Box::new(h));
                }
                None => ctx.stats.hello_failures += 1,
            }
        }
        if let Some(h) = server {
            self.flags |= F_SERVER_DONE;
            if let Some(w) = self.work.as_deref_mut() {
                if let Some(s) = w.streams.get_mut(1) {
                    s.free();
                }
            }
            if let Some(h) = h {
                self.info_mut().server = Some(Box::new(h));
            }
        }
        if self.flags & (F_HELLO_DONE | F_SERVER_DONE) == F_HELLO_DONE | F_SERVER_DONE {
            self.finish();
        }
    }

    fn ssh(&mut self) {
        let Some(w) = self.work.as_deref() else {
            return;
        };
        let [c, s] = &w.streams;
        let complete = |b: &[u8]| b.contains(&b'\n');
        let client = detect::ssh_banner(c.contiguous())
            .filter(|_| complete(c.contiguous()))
            .map(Text::new);
        let server = detect::ssh_banner(s.contiguous())
            .filter(|_| complete(s.contiguous()))
            .map(Text::new);
        let done = client.is_some() && server.is_some();
        if client.is_some() || server.is_some() {
            let x = self.info_mut().extra_mut();
            if x.ssh_client.is_none() {
                x.ssh_client = client;
            }
            if x.ssh_server.is_none() {
                x.ssh_server = server;
            }
        }
        if done {
            self.finish();
        }
    }

    fn http(&mut self, ctx: &mut ClassifyCtx, d: usize, seq: u32, payload: &[u8]) {
        let Some(mut w) = self.work.take() else {
            return;
        };
        let head_pending = self
            .info
            .as_deref()
            .and_then(|i| i.http.iter().find(|t| t.status.is_none()))
            .is_some_and(|t| t.method.as_ref().is_some_and(|m| m.as_bytes() == b"HEAD"));
        let work = &mut *w;
        // Messages are recorded as the parser finds them (the working state is out of `self`
        // meanwhile): no list in between, so a request costs only what is recorded of it and
        // a response head nothing.
        let mut out = |m| self.http_message(ctx, m);
        if let (Some(stream), Some(parser), Some(fed), Some(live)) = (
            work.streams.get_mut(d),
            work.http.get_mut(d),
            work.http_fed.get_mut(d),
            work.http_live.get_mut(d),
        ) {
            match *live {
                None => {
                    // Feed what the reassembly buffer has in order, then follow the direction
                    // packet by packet (the HTTP parser keeps a header that spans segments
                    // itself), so the buffer can go.
                    let buf = stream.contiguous();
                    if let Some(new) = buf.get(*fed..) {
                        parser.push(new, d == 0, head_pending, &mut out);
                    }
                    *fed = buf.len();
                    if let Some(next) = stream.next_seq() {
                        *live = Some(next);
                        stream.free();
                    }
                }
                Some(next) => {
                    // Past the buffer: in-order packets only; a gap ends parsing here.
                    let off = seq.wrapping_sub(next) as i32;
                    if off > 0 {
                        parser.stop();
                    } else {
                        let skip = off.unsigned_abs() as usize;
                        if let Some(new) = payload.get(skip..) {
                            parser.push(new, d == 0, head_pending, &mut out);
                            *live = Some(next.wrapping_add(new.len() as u32));
                        }
                    }
                }
            }
        }
        let both_done = work.http.iter().all(HttpStream::is_done);
        // Full once the last request kept has its response too, or the server's side is done,
        // or the client has sent as many requests again without that response (a one-way
        // capture): requests beyond the list are parsed (which allocates) but not kept.
        let full = self.info.as_deref().is_some_and(|i| {
            let [client, server] = &work.http;
            i.http.len() >= http::MAX_TRANSACTIONS
                && (i.http.last().is_some_and(|t| t.status.is_some())
                    || server.is_done()
                    || client.messages as usize >= 2 * http::MAX_TRANSACTIONS)
        });
        // A message may have finished the flow already (an accepted h2c upgrade).
        if both_done || full || self.is_done() {
            self.finish();
        } else {
            self.work = Some(w);
        }
    }

    fn http_message(&mut self, ctx: &mut ClassifyCtx, m: Message) {
        match m {
            Message::Request(t) => {
                ctx.stats.http_requests += 1;
                let info = self.info_mut();
                if info.http.len() < http::MAX_TRANSACTIONS {
                    info.http.reserve_exact(1);
                    info.http.push(t);
                }
            }
            Message::Response { status, switching } => {
                let info = self.info_mut();
                let Some(t) = info.http.iter_mut().find(|t| t.status.is_none()) else {
                    return;
                };
                t.status = Some(status);
                let h2c = t
                    .upgrade
                    .as_ref()
                    .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"h2c"));
                if switching && h2c {
                    self.app = app_index("http2");
                    self.finish();
                }
            }
        }
    }

    fn tcp_dns(
        &mut self,
        ctx: &mut ClassifyCtx,
        core: &FlowCore,
        d: usize,
        seq: u32,
        payload: &[u8],
    ) {
        let Some(w) = self.work.as_deref_mut() else {
            return;
        };
        let bufs = w
            .tcp_dns
            .get_or_insert_with(|| Box::new([TcpDnsBuf::new(), TcpDnsBuf::new()]));
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        if let Some(b) = bufs.get_mut(d) {
            b.push(seq, payload, |m| {
                if msgs.len() < 64 {
                    msgs.push(m.to_vec());
                }
            });
        }
        // The reassembly buffer is not needed for DNS.
        for s in &mut w.streams {
            s.free();
        }
        let receiver = if d == 0 { core.dst().ip } else { core.src().ip };
        for m in msgs {
            if let Ok(msg) = DnsMessage::parse(&m) {
                self.dns_message(ctx, core.last_seen, receiver, &msg);
            }
        }
        if self.info.as_deref().is_some_and(|i| i.dns.len() >= MAX_DNS) {
            self.finish();
        }
    }

    // ------------------------------------------------------------------------------ UDP

    fn udp(&mut self, ctx: &mut ClassifyCtx, core: &FlowCore, dir: Direction, p: &Packet<'_>) {
        let payload = p.payload;
        if payload.is_empty() || !matches!(p.transport, Transport::Udp(_)) {
            return;
        }
        self.probes = self.probes.saturating_add(1);
        let (cport, sport) = (core.src().port, core.dst().port);
        if self.app == 0 {
            let app = if dns::DNS_PORTS.iter().any(|&q| q == cport || q == sport)
                && dns::looks_like_dns(payload, cport, sport)
                || dns::looks_like_dns(payload, cport, sport)
                    && ![cport, sport].contains(&dns::NBNS_PORT)
            {
                Some(if cport == 5353 || sport == 5353 {
                    "mdns"
                } else if cport == 5355 || sport == 5355 {
                    "llmnr"
                } else {
                    "dns"
                })
            } else if let Some(v) = quic::looks_like_quic(payload) {
                self.info_mut().quic_version = Some(v.version);
                Some(match v.kind {
                    QuicVersionKind::Gquic => "gquic",
                    _ => "quic",
                })
            } else if detect::stun(payload).is_some() {
                Some("stun")
            } else if detect::dtls(payload).is_some() {
                Some("dtls")
            } else if matches!(http::looks(payload), Looks::Request | Looks::Response) {
                Some(if cport == 1900 || sport == 1900 {
                    "ssdp"
                } else {
                    "http"
                })
            } else {
                None
            };
            match app {
                Some(a) => self.recognise(ctx, a),
                None => {
                    if self.probes >= ctx.config.max_probe_packets.min(4) {
                        self.give_up(ctx, core);
                    }
                    return;
                }
            }
        }
        let d = idx(dir);
        match self.app() {
            Some("dns" | "mdns" | "llmnr") => {
                if let Ok(msg) = DnsMessage::parse(payload) {
                    let receiver = if d == 0 { core.dst().ip } else { core.src().ip };
                    self.dns_message(ctx, core.last_seen, receiver, &msg);
                }
                if self.info.as_deref().is_some_and(|i| i.dns.len() >= MAX_DNS) {
                    self.finish();
                }
            }
            Some("quic") => self.quic(ctx, d, payload),
            Some("stun") => {
                if let Some(sw) = detect::stun(payload).and_then(|s| s.software) {
                    self.info_mut().extra_mut().stun_software = Some(sw);
                    self.finish();
                } else if self.probes >= ctx.config.max_probe_packets {
                    self.finish();
                }
            }
            Some("dtls") => {
                self.info_mut().extra_mut().dtls_version = detect::dtls(payload);
                self.finish();
            }
            Some("ssdp" | "http") => {
                let mut parser = HttpStream::default();
                let request = http::looks(payload) == Looks::Request;
                parser.push(payload, request, false, &mut |m| {
                    if let Message::Request(t) = m {
                        ctx.stats.http_requests += 1;
                        let info = self.info_mut();
                        if info.http.len() < http::MAX_TRANSACTIONS {
                            info.http.reserve_exact(1);
                            info.http.push(t);
                        }
                    }
                });
                if self
                    .info
                    .as_deref()
                    .is_some_and(|i| i.http.len() >= http::MAX_TRANSACTIONS)
                {
                    self.finish();
                }
            }
            _ => self.finish(),
        }
    }

    fn quic(&mut self, ctx: &mut ClassifyCtx, d: usize, payload: &[u8]) {
        let cap = ctx.config.reassembly_bytes;
        let w = self.work_mut(cap);
        // No TCP reassembly for UDP.
        for s in &mut w.streams {
            s.free();
        }
        let q = w.quic.get_or_insert_with(Box::default);
        if d == 0 {
            q.push_datagram(payload);
        } else {
            q.push_server_datagram(payload);
        }
        let hello = match q.progress() {
            quic::Progress::Complete => {
                Some(q.client_hello().map(ClientHelloInfo::parse_handshake))
            }
            quic::Progress::GaveUp(_) => Some(None),
            _ => None,
        };
        if let Some(h) = hello {
            match h {
                Some(Parse::Done(h)) => {
                    ctx.stats.quic_hellos += 1;
                    ctx.stats.hellos += 1;
                    self.info_mut().hello = Some(Box::new(h));
                }
                _ => ctx.stats.hello_failures += 1,
            }
            self.finish();
        }
    }

    // ------------------------------------------------------------------------------ DNS

    /// Records a DNS message (queries and answers) and teaches the correlator from responses.
    /// `receiver` is the address the message was sent to (the client for a response).
    fn dns_message(
        &mut self,
        ctx: &mut ClassifyCtx,
        ts: Timestamp,
        receiver: IpAddr,
        msg: &DnsMessage<'_>,
    ) {
        ctx.stats.dns_messages += 1;
        let flags = msg.flags();
        let response = flags.qr();
        if response {
            ctx.dns.learn(ts, receiver, msg);
        }
        let id = msg.id();
        let info = self.info_mut();
        // A response without a question (mDNS announcements, RFC 6762 §8.3) is recorded under
        // its first answer's owner name and type.
        let unasked = if response && msg.qdcount() == 0 {
            msg.records()
                .take(64)
                .flatten()
                .find(|r| r.section == dns::Section::Answer)
                .map(|r| (r.name, r.rtype))
        } else {
            None
        };
        let questions = msg
            .questions()
            .take(4)
            .flatten()
            .map(|q| (q.name, q.qtype))
            .chain(unasked);
        for (name, qtype) in questions {
            // Compare before copying: a response usually answers a question already recorded.
            let existing = info.dns.iter().position(|t| {
                t.id == id
                    && t.qtype == qtype
                    && t.rcode.is_none()
                    && t.query.as_bytes() == name.as_bytes()
            });
            let i = match existing {
                Some(i) if response => i,
                _ if info.dns.len() < MAX_DNS => {
                    info.dns.reserve_exact(1);
                    info.dns.push(DnsTxn {
                        id,
                        query: name.to_text(),
                        qtype,
                        rcode: None,
                        answers: Vec::new(),
                    });
                    info.dns.len() - 1
                }
                _ => continue,
            };
            if !response {
                continue;
            }
            let Some(t) = info.dns.get_mut(i) else {
                continue;
            };
            t.rcode = Some(flags.rcode());
            // One pass over the records into stack buffers, then one exact allocation.
            let (mut n_ans, mut n_add) = (0, 0);
            for a in &t.answers {
                match a {
                    DnsAnswer::Additional(_) => n_add += 1,
                    _ => n_ans += 1,
                }
            }
            let mut found: arrayvec::ArrayVec<DnsAnswer, MAX_DNS_ANSWERS> =
                arrayvec::ArrayVec::new();
            let mut extra: arrayvec::ArrayVec<IpAddr, MAX_DNS_ADDITIONAL> =
                arrayvec::ArrayVec::new();
            for r in msg.records().take(64).flatten() {
                let addr = match r.data {
                    RData::A(a) => Some(IpAddr::V4(a)),
                    RData::Aaaa(a) => Some(IpAddr::V6(a)),
                    _ => None,
                };
                if r.section != dns::Section::Answer {
                    if let Some(a) = addr.filter(|_| n_add + extra.len() < MAX_DNS_ADDITIONAL) {
                        let _ = extra.try_push(a);
                    }
                    continue;
                }
                if n_ans + found.len() >= MAX_DNS_ANSWERS {
                    continue;
                }
                let _ = found.try_push(match (addr, r.data) {
                    (Some(a), _) => DnsAnswer::Addr(a),
                    (None, RData::Cname(n)) => DnsAnswer::Cname(n.to_text()),
                    _ => continue,
                });
            }
            t.answers.reserve_exact(found.len() + extra.len());
            t.answers.extend(found);
            t.answers
                .extend(extra.into_iter().map(DnsAnswer::Additional));
        }
    }
}

/// A parsed hello of either side.
enum Either {
    Client(ClientHelloInfo),
    Server(ServerHelloInfo),
}

fn is_dns_port(core: &FlowCore) -> bool {
    core.src().port == 53 || core.dst().port == 53
}

/// The application the first bytes of the client (`c`) and server (`s`) directions show.
fn detect_app(c: &[u8], s: &[u8], dns_port: bool) -> Option<&'static str> {
    if looks_like_tls(c) || looks_like_tls(s) {
        Some("tls")
    } else if http::looks(c) == Looks::Http2Preface {
        Some("http2")
    } else if http::looks(c) == Looks::Request || http::looks(s) == Looks::Response {
        Some("http")
    } else if detect::ssh_banner(c).is_some() || detect::ssh_banner(s).is_some() {
        Some("ssh")
    } else if dns_port && (tcp_dns_start(c) || tcp_dns_start(s)) {
        Some("dns")
    } else {
        None
    }
}

/// Whether the first bytes seen could still become one of the recognised TCP protocols. Most
/// TCP flows carry something else (databases, RPC, ...): they are given up on (port guess) as
/// soon as the client's first bytes match no prefix — every protocol recognised here starts
/// with the client speaking (TLS, HTTP, HTTP/2, SSH, DNS) — so they stop costing reassembly
/// and memory after their first segment. Before the client speaks, a server's short banner is
/// waited on (the client's answer decides).
fn could_match(c: &[u8], s: &[u8], dns_port: bool) -> bool {
    let open = |b: &[u8]| {
        b.len() < 64
            && (prefix_of_tls(b)
                || !matches!(http::looks(b), Looks::No)
                || prefix_ssh(b)
                || (dns_port && b.len() < 14))
    };
    if c.is_empty() {
        s.len() < 64 || open(s)
    } else {
        open(c)
    }
}

/// Whether `b` is (a prefix of) a TLS record header: handshake (22) or alert (21) / change
/// cipher spec (20) / application data (23), version 3.x.
fn prefix_of_tls(b: &[u8]) -> bool {
    matches!(b, [t, rest @ ..] if (20..=23).contains(t) && matches!(rest, [] | [3, ..]))
}

/// Whether `b` starts like (or is a prefix of) an SSH identification string.
fn prefix_ssh(b: &[u8]) -> bool {
    let n = b.len().min(4);
    b.get(..n) == b"SSH-".get(..n)
}

/// Whether a TCP payload starts like DNS over TCP: a 2-byte length prefix and a DNS header.
fn tcp_dns_start(b: &[u8]) -> bool {
    match b {
        [hi, lo, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            len >= 12 && DnsMessage::parse(rest.get(..len.min(rest.len())).unwrap_or(rest)).is_ok()
        }
        _ => false,
    }
}

impl FlowExt for FlowClass {
    type Ctx = ClassifyCtx;

    #[inline]
    fn on_packet(
        &mut self,
        ctx: &mut ClassifyCtx,
        flow: &FlowCore,
        dir: Direction,
        packet: &Packet<'_>,
    ) {
        if self.flags & F_DONE != 0 || !ctx.config.enabled {
            return;
        }
        if flow.packets() == 1 {
            // A new flow: the name its responder was resolved from, if a DNS answer said.
            self.dns_learned = ctx.dns.stats().learned as u32;
            if let Some(name) = ctx.dns.lookup(flow.last_seen, flow.src().ip, flow.dst().ip) {
                let name = Arc::clone(name);
                self.info_mut().domain = Some(name);
            }
        }
        match flow.key.proto() {
            6 => self.tcp(ctx, flow, dir, packet),
            17 => self.udp(ctx, flow, dir, packet),
            _ => self.finish(),
        }
    }

    fn on_end(&mut self, ctx: &mut ClassifyCtx, flow: &FlowCore) {
        // Looked up again only if answers were learnt since the first packet's lookup (an
        // address resolved while the flow ran): otherwise the answer would be the same.
        let learned_since = ctx.dns.stats().learned as u32 != self.dns_learned;
        if ctx.config.enabled
            && learned_since
            && self.info.as_deref().is_none_or(|i| i.domain.is_none())
        {
            if let Some(name) = ctx.dns.lookup(flow.last_seen, flow.src().ip, flow.dst().ip) {
                let name = Arc::clone(name);
                self.info_mut().domain = Some(name);
            }
        }
        if !self.is_done() && ctx.config.enabled {
            // Ended before being recognised: a port guess is still better than nothing.
            if self.app == 0 && self.probes > 0 {
                self.give_up(ctx, flow);
            }
        }
        self.work = None;
        self.flags |= F_DONE;
    }

    fn app(&self) -> Option<&'static str> {
        FlowClass::app(self)
    }
}

/// `"1.3"`, `"1.2"`, ... for a TLS version number.
pub fn tls_version_name(v: u16) -> String {
    match v {
        0x0304 => "1.3".into(),
        0x0303 => "1.2".into(),
        0x0302 => "1.1".into(),
        0x0301 => "1.0".into(),
        0x0300 => "ssl3".into(),
        0x0002 => "ssl2".into(),
        v if v >> 8 == 0x7f => format!("1.3-draft-{}", v & 0xff),
        v => format!("0x{v:04x}"),
    }
}

/// `"v1"`, `"v2"`, `"draft-29"`, `"Q046"`, or hex, for a QUIC version number.
pub fn quic_version_name(v: u32) -> String {
    let b = v.to_be_bytes();
    match v {
        quic::QUIC_V1 => "v1".into(),
        quic::QUIC_V2 => "v2".into(),
        v if v >> 8 == 0x00ff_0000 => format!("draft-{}", v & 0xff),
        _ if (b[0] == b'Q' || b[0] == b'T') && b[1..].iter().all(u8::is_ascii_digit) => {
            String::from_utf8_lossy(&b).into_owned()
        }
        v => format!("0x{v:08x}"),
    }
}

/// The mnemonic of a DNS type.
pub fn dns_type_name(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        t => return t.to_string(),
    };
    s.into()
}

/// The mnemonic of a DNS response code.
pub fn dns_rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "RCODE_OTHER",
    }
}

const _: () = assert!(MAX_TEXT >= 255, "DNS names must fit a Text");
const _: () = assert!(APPS.len() <= 256, "app indices are one byte");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_guess_has_an_index() {
        for proto in [6u8, 17] {
            for port in 0..=u16::MAX {
                if let Some(g) = detect::port_guess(proto, port, 0) {
                    assert_ne!(app_index(g), 0, "{g} missing from APPS");
                }
            }
        }
        assert_eq!(APPS.get(usize::from(app_index("tls"))), Some(&"tls"));
    }

    #[test]
    fn flow_state_stays_small() {
        assert!(
            core::mem::size_of::<FlowClass>() <= 32,
            "{}",
            core::mem::size_of::<FlowClass>()
        );
        assert!(
            core::mem::size_of::<AppInfo>() <= 96,
            "{}",
            core::mem::size_of::<AppInfo>()
        );
    }
}
