//! Properties of the DNS view: arbitrary bytes never panic and iteration always ends within
//! the message's bounds; names round-trip through (compressed) wire form; the TCP buffer
//! yields the same messages whatever the segmentation.

use netmon_classify::dns::{
    DnsMessage, DnsOverTcp, HEADER_LEN, Name, RData, TCP_DNS_BUF_MAX, TcpDnsBuf, looks_like_dns,
};
use proptest::prelude::*;

/// Reads everything a message offers; returns (questions, records) yielded.
fn exercise(bytes: &[u8]) -> (usize, usize) {
    let Ok(m) = DnsMessage::parse(bytes) else {
        assert!(bytes.len() < HEADER_LEN);
        return (0, 0);
    };
    let _ = (
        m.id(),
        m.flags().opcode(),
        m.flags().rcode(),
        m.flags().tc(),
    );
    let mut nq = 0;
    for q in m.questions() {
        nq += 1;
        if let Ok(q) = q {
            assert!(q.name.len() <= 253);
            let _ = (q.name.to_string(), q.unicast_response(), q.class());
        }
    }
    assert!(nq <= usize::from(m.qdcount()));
    let mut nr = 0;
    let mut errors = 0;
    for r in m.records() {
        nr += 1;
        match r {
            Ok(r) => {
                let _ = (r.name.to_string(), r.is_opt(), r.cache_flush());
                match r.data {
                    RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => assert!(n.len() <= 253),
                    RData::Mx { exchange, .. } => assert!(exchange.len() <= 253),
                    RData::Other { bytes: b, .. } => assert!(b.len() <= bytes.len()),
                    RData::A(_) | RData::Aaaa(_) => {}
                }
            }
            Err(e) => {
                errors += 1;
                let _ = e.to_string();
            }
        }
    }
    assert!(errors <= 1, "iteration ends at the first error");
    let announced = usize::from(m.ancount()) + usize::from(m.nscount()) + usize::from(m.arcount());
    assert!(nr <= announced + 1);
    // Each record takes at least 11 bytes; only the error item may come for free.
    assert!(nr.saturating_sub(1) * 11 <= bytes.len());
    (nq, nr)
}

/// Messages biased towards the interesting cases: a plausible header with small counts and a
/// body rich in compression pointers and label lengths.
fn dnsish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => any::<u8>(),
        2 => Just(0xc0u8),
        2 => 0u8..16,
        1 => Just(0u8),
    ];
    (
        any::<u16>(),
        any::<u16>(),
        prop::array::uniform4(0u16..6),
        prop::collection::vec(byte, 0..300),
    )
        .prop_map(|(id, flags, counts, body)| {
            let mut v = Vec::new();
            for x in [id, flags, counts[0], counts[1], counts[2], counts[3]] {
                v.extend_from_slice(&x.to_be_bytes());
            }
            v.extend_from_slice(&body);
            v
        })
}

/// A query for `labels` (raw label bytes), uncompressed.
fn query(id: u16, labels: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    v[..2].copy_from_slice(&id.to_be_bytes());
    for l in labels {
        v.push(u8::try_from(l.len()).unwrap());
        v.extend_from_slice(l);
    }
    v.extend_from_slice(&[0, 0, 1, 0, 1]);
    v
}

fn labels() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 1..=63), 0..5)
        .prop_filter("wire length ≤ 255", |ls| {
            ls.iter().map(|l| l.len() + 1).sum::<usize>() < 255
        })
}

fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    for m in msgs {
        v.extend_from_slice(&u16::try_from(m.len()).unwrap().to_be_bytes());
        v.extend_from_slice(m);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&bytes);
        let _ = looks_like_dns(&bytes, 53, 1000);
        let _ = looks_like_dns(&bytes, 5353, 5353);
        for at in 0..bytes.len().min(64) {
            let _ = Name::decode(&bytes, at);
        }
    }

    #[test]
    fn dns_like_bytes_never_panic(bytes in dnsish()) {
        exercise(&bytes);
        if looks_like_dns(&bytes, 1, 2) {
            // Detection promises a header and a readable first question.
            let m = DnsMessage::parse(&bytes).unwrap();
            if m.qdcount() > 0 {
                prop_assert!(m.questions().next().unwrap().is_ok());
            }
        }
    }

    #[test]
    fn names_round_trip(ls in labels(), suffix_ptr in any::<bool>()) {
        let q = query(1, &ls);
        let m = DnsMessage::parse(&q).unwrap();
        let got = m.questions().next().unwrap().unwrap();
        let dotted = ls.join(&b'.');
        prop_assert_eq!(got.name.as_bytes(), &dotted[..]);
        prop_assert_eq!(got.name.label_count(), ls.len());
        // A second question: one new label + a pointer to the first name.
        if suffix_ptr {
            let mut two = q.clone();
            two[5] = 2;
            two.extend_from_slice(&[1, b'x', 0xc0, 12, 0, 1, 0, 1]);
            let m = DnsMessage::parse(&two).unwrap();
            let qs: Vec<_> = m.questions().collect();
            let n = qs[1].as_ref().map(|q| q.name.as_bytes().to_vec());
            let mut want = b"x".to_vec();
            if !ls.is_empty() {
                want.push(b'.');
                want.extend_from_slice(&dotted);
            }
            prop_assert_eq!(n, Ok(want));
        }
    }

    #[test]
    fn tcp_framing_is_consistent(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut it = DnsOverTcp::new(&bytes);
        let used: usize = it.by_ref().map(|m| m.len() + 2).sum();
        prop_assert_eq!(used + it.rest().len(), bytes.len());
    }

    #[test]
    fn tcp_buffer_survives_anything(
        segs in prop::collection::vec(
            (any::<u32>(), prop::collection::vec(any::<u8>(), 0..200)),
            0..20
        ),
        sequential in any::<bool>(),
    ) {
        let mut b = TcpDnsBuf::new();
        let mut seq = 1u32;
        for (s, data) in &segs {
            let at = if sequential { seq } else { *s };
            b.push(at, data, |m| { exercise(m); });
            seq = seq.wrapping_add(data.len() as u32);
            prop_assert!(b.pending() <= TCP_DNS_BUF_MAX);
        }
    }

    #[test]
    fn any_segmentation_yields_the_same_messages(
        names in prop::collection::vec(labels(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        isn in any::<u32>(),
        retransmit in any::<bool>(),
    ) {
        let msgs: Vec<Vec<u8>> = names
            .iter()
            .enumerate()
            .map(|(i, ls)| query(u16::try_from(i).unwrap(), ls))
            .collect();
        let stream = framed(&msgs);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut b = TcpDnsBuf::new();
        let mut got = Vec::new();
        for w in cuts.windows(2) {
            let (from, to) = (w[0], w[1]);
            let seq = isn.wrapping_add(from as u32);
            b.push(seq, &stream[from..to], |m| got.push(m.to_vec()));
            if retransmit {
                // The same segment again changes nothing.
                b.push(seq, &stream[from..to], |m| got.push(m.to_vec()));
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(b.pending(), 0);
    }
}
