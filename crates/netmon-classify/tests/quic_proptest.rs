//! Arbitrary bytes through every QUIC entry point: nothing panics, and the per-flow state
//! keeps its bounds.

use netmon_classify::quic::{
    InitialKeys, MAX_DATAGRAMS, Progress, QUIC_V1, QuicInitialState, Side, looks_like_quic,
    open_initial, read_varint,
};
use proptest::prelude::*;

/// Bytes that start like a QUIC long header more often than uniform bytes would.
fn quicish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(0xc0u8),
            Just(0xd0),
            Just(0xe0),
            Just(0xf0),
            Just(0x80),
            any::<u8>()
        ],
        prop_oneof![
            Just(1u32),
            Just(0x6b33_43cf),
            Just(0),
            Just(0xff00_001d),
            Just(u32::from_be_bytes(*b"Q046")),
            any::<u32>()
        ],
        0u8..24,
        proptest::collection::vec(any::<u8>(), 0..1400),
    )
        .prop_map(|(first, version, dcil, rest)| {
            let mut v = vec![first | 0x03];
            v.extend(version.to_be_bytes());
            v.push(dcil);
            v.extend(rest);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = looks_like_quic(&b);
        let _ = read_varint(&b);
        let mut st = QuicInitialState::new();
        st.push_datagram(&b);
        st.push_server_datagram(&b);
        let _ = st.client_hello();
    }

    #[test]
    fn quic_like_datagrams_never_panic_and_stay_bounded(
        ds in proptest::collection::vec(quicish(), 1..24),
    ) {
        let keys = InitialKeys::derive(QUIC_V1, &[0x83; 8], Side::Client).unwrap();
        let mut st = QuicInitialState::new();
        for (i, d) in ds.iter().enumerate() {
            let _ = looks_like_quic(d);
            let _ = open_initial(d, &keys, Some(i as u64), &mut Vec::new());
            if i % 3 == 2 {
                st.push_server_datagram(d);
            } else {
                st.push_datagram(d);
            }
        }
        let s = *st.stats();
        prop_assert!(s.datagrams <= u32::from(MAX_DATAGRAMS));
        if st.progress() == Progress::Complete {
            prop_assert_eq!(st.client_hello().map(|h| h[0]), Some(1));
        }
    }
}
