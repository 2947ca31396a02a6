#![no_main]
//! DNS entry points of netmon-classify: `DnsMessage` (header, questions, every record),
//! `looks_like_dns`, `DnsOverTcp`, `TcpDnsBuf` over a segmentation chosen by the input, and
//! `DnsCorrelator::learn`/`lookup`. No input may panic, hang, allocate without bound or break
//! the iteration bounds.

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use netmon_classify::correlate::{CorrelatorConfig, DnsCorrelator};
use netmon_classify::dns::{
    DnsMessage, DnsOverTcp, Name, RData, TCP_DNS_BUF_MAX, TcpDnsBuf, looks_like_dns,
};
use netmon_types::Timestamp;

/// Reads everything; checks that iteration ends within the message's bounds.
fn exercise(bytes: &[u8], correlator: &mut DnsCorrelator) {
    let _ = looks_like_dns(bytes, 53, 40000);
    let _ = looks_like_dns(bytes, 5353, 5353);
    let Ok(m) = DnsMessage::parse(bytes) else {
        assert!(bytes.len() < 12);
        return;
    };
    let _ = (m.id(), m.flags(), m.qdcount());
    let mut sink = String::new();
    let nq = m
        .questions()
        .inspect(|q| {
            if let Ok(q) = q {
                assert!(q.name.len() <= 253);
                sink.push_str(&q.name.to_string());
            }
        })
        .count();
    assert!(nq <= usize::from(m.qdcount()));
    let mut errors = 0;
    let mut nr = 0usize;
    for r in m.records() {
        nr += 1;
        match r {
            Ok(r) => {
                sink.push_str(&r.name.to_string());
                if let RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) = &r.data {
                    assert!(n.len() <= 253);
                }
            }
            Err(e) => {
                errors += 1;
                sink.push_str(&e.to_string());
            }
        }
    }
    assert!(errors <= 1);
    assert!(nr.saturating_sub(1) * 11 <= bytes.len());
    let client: IpAddr = [10, 0, 0, 1].into();
    correlator.learn(Timestamp::from_nanos(1), client, &m);
    for r in m.records().flatten() {
        let server = match r.data {
            RData::A(a) => IpAddr::V4(a),
            RData::Aaaa(a) => IpAddr::V6(a),
            _ => continue,
        };
        let _ = correlator.lookup(Timestamp::from_nanos(2), client, server);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = DnsCorrelator::new(CorrelatorConfig {
        max_entries: 8,
        ..CorrelatorConfig::default()
    });
    // As a UDP payload.
    exercise(data, &mut c);
    for at in 0..data.len().min(32) {
        let _ = Name::decode(data, at);
    }
    // As a TCP stream with length prefixes, whole and cut into segments whose lengths come
    // from the first byte (retransmitting every third one).
    let mut it = DnsOverTcp::new(data);
    let used: usize = it.by_ref().map(|m| m.len() + 2).sum();
    assert_eq!(used + it.rest().len(), data.len());
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut b = TcpDnsBuf::new();
    let mut msgs = Vec::new();
    for (i, seg) in data.chunks(step).enumerate() {
        let seq = (i * step) as u32;
        for _ in 0..(1 + usize::from(i % 3 == 2)) {
            b.push(seq, seg, |m| msgs.push(m.to_vec()));
            assert!(b.pending() <= TCP_DNS_BUF_MAX);
        }
    }
    for m in &msgs {
        exercise(m, &mut c);
    }
    let _ = (c.memory_bytes(), c.stats(), b.stats());
});
