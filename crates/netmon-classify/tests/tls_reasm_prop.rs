//! Properties of the reassembly buffer and of ClientHello parsing on top of it:
//!
//! * any segmentation of a byte stream, delivered in any order, with duplicates and
//!   overlapping retransmissions, gives a `contiguous()` that is always a prefix of the stream,
//!   and — once the sender has retransmitted what was dropped — the stream itself (up to the
//!   cap), across the 32-bit sequence wrap;
//! * any segmentation of a ClientHello (into TLS records and into TCP segments, in any order)
//!   yields the same SNI, ALPN and JA4, and the parser never reports anything but
//!   `Incomplete` before the hello is complete.

use netmon_classify::reasm::{MAX_PENDING, StreamBuf};
use netmon_classify::tls::{ClientHelloInfo, Parse};
// The ClientHello builder (TLS 1.3 shape, RFC 8446 §4.1.2) and its record framing.
use netmon_testkit::tls::{client_hello, records};
use proptest::prelude::*;

/// A stream, cut into segments `(offset, bytes)`: a covering segmentation plus extra
/// overlapping copies, shuffled.
fn segmented(max_len: usize) -> impl Strategy<Value = (Vec<u8>, Vec<(usize, usize)>)> {
    prop::collection::vec(any::<u8>(), 0..max_len).prop_flat_map(|data| {
        let n = data.len();
        let cuts = prop::collection::vec(0..=n, 0..12);
        let extra = prop::collection::vec((0..=n, 0..=n), 0..6);
        (Just(data), cuts, extra).prop_flat_map(|(data, mut cuts, extra)| {
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort_unstable();
            cuts.dedup();
            let mut segs: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
            segs.extend(extra.into_iter().map(|(a, b)| (a.min(b), a.max(b))));
            (Just(data), Just(segs).prop_shuffle())
        })
    })
}

fn seq_of(isn: u32, off: usize) -> u32 {
    isn.wrapping_add(1).wrapping_add(off as u32)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn contiguous_is_the_stream_prefix(
        (data, segs) in segmented(3000),
        isn in prop_oneof![any::<u32>(), (u32::MAX - 2000)..=u32::MAX],
        cap in prop_oneof![Just(16 * 1024), 1usize..4000],
    ) {
        let mut s = StreamBuf::new(cap);
        s.set_isn(isn);
        let want = &data[..data.len().min(cap)];
        for &(a, b) in &segs {
            s.push(seq_of(isn, a), &data[a..b]);
            prop_assert!(want.starts_with(s.contiguous()));
            prop_assert!(s.heap_bytes() <= cap);
        }
        // Without drops (few enough holes) everything is there already.
        if segs.len() <= MAX_PENDING + 1 {
            prop_assert_eq!(s.dropped_segments(), 0);
            prop_assert_eq!(s.contiguous(), want);
        }
        // The sender retransmits everything in order: the stream is complete.
        for &(a, b) in &segs {
            s.push(seq_of(isn, a), &data[a..b]);
        }
        let mut sorted = segs.clone();
        sorted.sort_unstable();
        for &(a, b) in &sorted {
            s.push(seq_of(isn, a), &data[a..b]);
        }
        prop_assert_eq!(s.contiguous(), want);
        prop_assert_eq!(s.overflowed(), data.len() > cap);
        prop_assert_eq!(s.pending_ranges(), 0);
        s.free();
        prop_assert_eq!(s.heap_bytes(), 0);
    }

    #[test]
    fn mid_stream_pickup(data in prop::collection::vec(any::<u8>(), 1..2000), seq in any::<u32>(), cut in 0usize..2000) {
        // No SYN: the first segment seen starts the stream; earlier bytes are ignored.
        let cut = cut.min(data.len() - 1);
        let mut s = StreamBuf::default();
        s.push(seq.wrapping_add(cut as u32), &data[cut..]);
        s.push(seq, &data);
        prop_assert_eq!(s.contiguous(), &data[cut..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_segmentation_of_a_hello_gives_the_same_sni(
        sni in prop::collection::vec(prop_oneof![b'a'..=b'z', b'0'..=b'9', Just(b'.'), Just(b'-')], 1..300),
        alpn in prop::collection::vec(prop::collection::vec(b'!'..=b'~', 1..12), 0..5),
        padding in 0usize..2500,
        record_cuts in prop::collection::vec(any::<usize>(), 0..4),
        tcp_cuts in prop::collection::vec(any::<usize>(), 0..10),
        order in any::<u64>(),
        dups in prop::collection::vec(any::<usize>(), 0..4),
        isn in any::<u32>(),
    ) {
        let msg = client_hello(&sni, &alpn, padding);
        let whole = ClientHelloInfo::parse_records(&records(&msg, &[]));
        let Parse::Done(want) = whole else { panic!("unsplit hello: {whole:?}") };
        prop_assert_eq!(want.sni.as_ref().map(|t| t.as_bytes()), Some(&sni[..]));
        prop_assert_eq!(want.alpn.len(), alpn.len());
        for (got, exp) in want.alpn.iter().zip(&alpn) {
            prop_assert_eq!(got.as_bytes(), &exp[..]);
        }

        let stream = records(&msg, &record_cuts);
        let mut cuts: Vec<usize> = tcp_cuts.iter().map(|c| c % stream.len()).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut segs: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        for d in &dups {
            let s = segs[d % segs.len()];
            segs.push(s);
        }
        // A deterministic shuffle driven by `order`.
        let mut x = order | 1;
        for i in (1..segs.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            segs.swap(i, (x % (i as u64 + 1)) as usize);
        }

        let mut buf = StreamBuf::default();
        buf.set_isn(isn);
        let mut got = None;
        for &(a, b) in &segs {
            buf.push(seq_of(isn, a), &stream[a..b]);
            match ClientHelloInfo::parse_records(buf.contiguous()) {
                Parse::Done(info) => { got = Some(info); break; }
                Parse::Incomplete => {}
                other => prop_assert!(false, "{other:?} after {} bytes", buf.contiguous().len()),
            }
        }
        let got = got.expect("every byte was delivered");
        prop_assert_eq!(got, want);
    }
}
