#![no_main]
//! QUIC Initial handling: arbitrary datagrams pushed into one `QuicInitialState`, both
//! directions, plus `looks_like_quic` and `open_initial` on each. Nothing may panic, hang or
//! break the state's bounds.
//!
//! Input: a sequence of datagrams, each a big-endian `u16` header (bit 15: server→client,
//! bits 0-14: length) followed by that many bytes (the last one may be shorter).
//!
//! cargo-fuzz builds with `cfg(fuzzing)`, under which a packet failing AEAD authentication
//! is taken as plaintext, so the frame parser and CRYPTO reassembly are reached.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use netmon_classify::quic::{
    InitialKeys, MAX_CRYPTO, MAX_DATAGRAMS, MAX_VERSIONS, Progress, QUIC_V1, QuicInitialState,
    Side, looks_like_quic, open_initial,
};

fn keys() -> &'static InitialKeys {
    static KEYS: OnceLock<InitialKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        // RFC 9001 Appendix A's connection ID.
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        InitialKeys::derive(QUIC_V1, &dcid, Side::Client).expect("v1 keys")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut st = QuicInitialState::new();
    let mut buf = Vec::new();
    let mut rest = data;
    // Each datagram consumes at least its 2-byte header: bounded by the input length.
    while let [a, b, tail @ ..] = rest {
        let hdr = u16::from_be_bytes([*a, *b]);
        let len = usize::from(hdr & 0x7fff).min(tail.len());
        let (d, next) = tail.split_at(len);
        rest = next;
        let _ = looks_like_quic(d);
        let _ = open_initial(d, keys(), None, &mut buf);
        if hdr & 0x8000 != 0 {
            st.push_server_datagram(d);
        } else {
            let p = st.push_datagram(d);
            assert_eq!(p, st.progress());
        }
        assert!(st.versions().len() <= MAX_VERSIONS);
        assert!(st.stats().datagrams <= u32::from(MAX_DATAGRAMS));
    }
    match st.progress() {
        Progress::Complete => {
            let h = st.client_hello().expect("complete means a hello");
            assert_eq!(h.first(), Some(&1));
            let len = h
                .get(1..4)
                .map(|l| usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2]));
            assert_eq!(len.map(|l| l + 4), Some(h.len()));
            assert!(h.len() <= MAX_CRYPTO);
        }
        _ => assert!(st.client_hello().is_none()),
    }
});
