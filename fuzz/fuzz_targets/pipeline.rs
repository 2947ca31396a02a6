#![no_main]
//! The whole pipeline: frames into `Engine::classifying(EngineConfig::default())`, then
//! `finish`, and every ended flow as a `FlowRecord` written with `write_json`. Nothing may
//! panic or hang, and:
//!
//! - every flow created ends exactly once (records = flows created; the table is empty after
//!   `finish`), and every frame is counted;
//! - `write_json` writes exactly what serde_json writes for the record (so it is valid JSON);
//! - per-flow lists stay bounded (`MAX_TRANSACTIONS` HTTP requests, `MAX_DNS` questions of
//!   at most `MAX_DNS_ANSWERS` answers, `MAX_ALPN` protocols), and every string taken from a
//!   packet is escaped: printable ASCII, at most 4 × `MAX_TEXT` bytes plus a final `…`.
//!
//! So that the classifier's deep paths are reached, the input describes one conversation
//! rather than raw frames. Byte 0 picks a template: bits 0-3 one of [`TEMPLATES`] (TCP or UDP
//! to a server port), bit 7 IPv6. Then frames, each a control byte, a big-endian `u16` length
//! (bits 0-13) and that many bytes (the last one may be shorter). Control bits:
//!
//! | bit | meaning |
//! |---|---|
//! | 0 | server → client |
//! | 1 | raw: the bytes are a whole IP packet (link type RAW), not a payload |
//! | 2, 3, 4 | TCP SYN (SYN-ACK from the server), FIN, RST |
//! | 5 | hold: deliver this frame after the next one (reordering) |
//! | 6-7 | time since the previous frame: 1 ms, 1 s, 70 s (past the UDP timeout), 400 s (TCP) |
//!
//! Payload frames get IPv4/IPv6 and TCP/UDP headers; TCP sequence and acknowledgement numbers
//! follow the bytes sent (SYN and FIN count one), so reassembly sees a consistent stream.

use libfuzzer_sys::fuzz_target;
use netmon_capture::{LinkType, PacketMeta};
use netmon_classify::MAX_TEXT;
use netmon_classify::classifier::{MAX_DNS, MAX_DNS_ANSWERS};
use netmon_classify::http::MAX_TRANSACTIONS;
use netmon_classify::tls::MAX_ALPN;
use netmon_engine::{Engine, EngineConfig, FlowRecord};
use netmon_flow::EndReason;
use netmon_types::Timestamp;

/// (IP protocol, server port): what the classifier recognises or guesses there.
const TEMPLATES: [(u8, u16); 16] = [
    (6, 443),   // TLS
    (6, 80),    // HTTP/1.x
    (6, 22),    // SSH
    (6, 53),    // DNS over TCP
    (6, 8080),  // HTTP, h2c
    (6, 6379),  // unknown (port guess)
    (6, 25),    // server speaks first
    (6, 5000),  // no port guess
    (17, 53),   // DNS
    (17, 443),  // QUIC
    (17, 3478), // STUN
    (17, 5353), // mDNS
    (17, 1900), // SSDP (HTTP over UDP)
    (17, 5355), // LLMNR
    (17, 4433), // DTLS, anything by payload
    (17, 123),  // NTP (port guess)
];

const GAPS_NS: [i64; 4] = [1_000_000, 1_000_000_000, 70_000_000_000, 400_000_000_000];

struct Conversation {
    v6: bool,
    proto: u8,
    ports: [u16; 2],
    /// Next sequence number per direction (client, server).
    seq: [u32; 2],
}

impl Conversation {
    /// An IPv4 or IPv6 header (no options, checksum left 0) before `l4`.
    fn ip(&self, from: usize, l4: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(40 + l4.len());
        let (a, b) = if from == 0 { (1, 2) } else { (2, 1) };
        if self.v6 {
            p.extend([0x60, 0, 0, 0]);
            p.extend((l4.len() as u16).to_be_bytes());
            p.extend([self.proto, 64]);
            for host in [a, b] {
                p.extend([0x20, 0x01, 0x0d, 0xb8]);
                p.extend([0; 11]);
                p.push(host);
            }
        } else {
            p.extend([0x45, 0]);
            p.extend(((20 + l4.len()) as u16).to_be_bytes());
            p.extend([0, 1, 0x40, 0, 64, self.proto, 0, 0]);
            p.extend([192, 0, 2, a, 192, 0, 2, b]);
        }
        p.extend_from_slice(l4);
        p
    }

    fn frame(&mut self, ctl: u8, payload: &[u8]) -> Vec<u8> {
        let from = usize::from(ctl & 1);
        let (sport, dport) = (self.ports[from], self.ports[1 - from]);
        let mut l4 = Vec::with_capacity(20 + payload.len());
        l4.extend(sport.to_be_bytes());
        l4.extend(dport.to_be_bytes());
        if self.proto == 6 {
            let (syn, fin, rst) = (ctl & 4 != 0, ctl & 8 != 0, ctl & 16 != 0);
            let ack = !(syn && from == 0);
            let flags = u8::from(fin)
                | u8::from(syn) << 1
                | u8::from(rst) << 2
                | u8::from(!payload.is_empty()) << 3
                | u8::from(ack) << 4;
            l4.extend(self.seq[from].to_be_bytes());
            l4.extend((if ack { self.seq[1 - from] } else { 0 }).to_be_bytes());
            l4.extend([5 << 4, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
            self.seq[from] = self.seq[from]
                .wrapping_add(payload.len() as u32)
                .wrapping_add(u32::from(syn) + u32::from(fin));
        } else {
            l4.extend(((8 + payload.len()) as u16).to_be_bytes());
            l4.extend([0, 0]);
        }
        l4.extend_from_slice(payload);
        self.ip(from, &l4)
    }
}

/// An escaped string from a packet: printable ASCII (`\xNN` for other bytes), bounded.
fn check_text(s: &str) {
    let body = s.strip_suffix('…').unwrap_or(s);
    assert!(body.len() <= 4 * MAX_TEXT, "{} bytes", body.len());
    assert!(body.bytes().all(|b| (0x20..0x7f).contains(&b)), "{s:?}");
}

fn check_record(r: &FlowRecord) {
    let mut fast = Vec::new();
    r.write_json(&mut fast).expect("writing to a Vec");
    let serde = serde_json::to_vec(r).expect("serialisable");
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&serde)
    );
    assert!(r.http.len() <= MAX_TRANSACTIONS);
    assert!(r.dns.len() <= MAX_DNS);
    assert!(r.dns.iter().all(|d| d.answers.len() <= MAX_DNS_ANSWERS));
    assert!(r.alpn.len() <= MAX_ALPN);
    let http = r.http.iter().flat_map(|h| {
        [&h.method, &h.host, &h.path, &h.user_agent, &h.referer]
            .into_iter()
            .flatten()
    });
    let dns = r
        .dns
        .iter()
        .flat_map(|d| std::iter::once(&d.query).chain(&d.answers));
    let other = [
        &r.sni,
        &r.alpn_server,
        &r.ssh_client,
        &r.ssh_server,
        &r.stun_software,
        &r.domain,
    ];
    for s in http
        .chain(dns)
        .chain(&r.alpn)
        .chain(other.into_iter().flatten())
    {
        check_text(s);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&template, mut rest)) = data.split_first() else {
        return;
    };
    let (proto, port) = TEMPLATES[usize::from(template & 0x0f)];
    let mut conv = Conversation {
        v6: template & 0x80 != 0,
        proto,
        ports: [40000 + u16::from(template & 0x70), port],
        seq: [0x1000_0000, 0xffff_f000], // the server's wraps early
    };
    let mut engine = Engine::classifying(EngineConfig::default()).expect("default config");
    let mut records: Vec<FlowRecord> = Vec::new();
    let mut ts = Timestamp::from_secs_nanos(1_700_000_000, 0).0;
    let mut frames = 0u64;
    let mut held: Option<Vec<u8>> = None;
    let mut send = |engine: &mut Engine, records: &mut Vec<FlowRecord>, ts: i64, f: &[u8]| {
        let meta = PacketMeta {
            direction: netmon_capture::Direction::Unknown,
            ts: Timestamp(ts),
            iface: 0,
            iface_name: None,
            link_type: LinkType::RAW,
            cap_len: f.len() as u32,
            orig_len: f.len() as u32,
        };
        engine.process(&meta, f, records);
        frames += 1;
    };
    // Each frame consumes at least its 3-byte header: bounded by the input length.
    while let [ctl, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]) & 0x3fff).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        ts += GAPS_NS[usize::from(ctl >> 6)];
        let frame = if ctl & 2 != 0 {
            bytes.to_vec()
        } else {
            conv.frame(*ctl, bytes)
        };
        if ctl & 32 != 0 && held.is_none() {
            held = Some(frame);
            continue;
        }
        send(&mut engine, &mut records, ts, &frame);
        if let Some(h) = held.take() {
            send(&mut engine, &mut records, ts, &h);
        }
    }
    if let Some(h) = held.take() {
        send(&mut engine, &mut records, ts, &h);
    }
    engine.finish(EndReason::EndOfCapture, &mut records);
    let summary = engine.summary();
    assert_eq!(summary.packets, frames);
    assert!(engine.table().is_empty());
    assert_eq!(records.len() as u64, summary.flows.created);
    for r in &records {
        check_record(r);
    }
});
