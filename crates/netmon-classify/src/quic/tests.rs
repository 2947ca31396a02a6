//! Unit tests of the Initial state machine, on packets built here with the same RustCrypto
//! primitives (sealing is the mirror image of opening).

use super::*;
use proptest::prelude::*;

const DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
const SERVER_CID: [u8; 8] = [0xf0, 0x67, 0xa5, 0x50, 0x2a, 0x42, 0x62, 0xb5];

fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=63 => vec![v as u8],
        64..=16383 => (0x4000 | v as u16).to_be_bytes().to_vec(),
        16384..=1_073_741_823 => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
        _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
    }
}

fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend(varint(offset));
    f.extend(varint(data.len() as u64));
    f.extend_from_slice(data);
    f
}

/// A synthetic ClientHello handshake message with a body of `body` bytes.
fn hello(body: usize) -> Vec<u8> {
    let mut h = vec![1, (body >> 16) as u8, (body >> 8) as u8, body as u8];
    h.extend((0..body).map(|i| (i * 7 + 3) as u8));
    h
}

struct Build<'a> {
    version: u32,
    /// DCID in the header.
    dcid: &'a [u8],
    /// DCID the keys derive from.
    key_dcid: &'a [u8],
    scid: &'a [u8],
    token: &'a [u8],
    pn: u64,
    pn_len: usize,
    /// Payload padded with PADDING to at least this many bytes.
    min_payload: usize,
    /// Long packet type bits (v1 numbering: 0 Initial, 2 Handshake).
    v1_type: u8,
}

impl Default for Build<'_> {
    fn default() -> Self {
        Build {
            version: QUIC_V1,
            dcid: &DCID,
            key_dcid: &DCID,
            scid: &[],
            token: &[],
            pn: 0,
            pn_len: 4,
            min_payload: 0,
            v1_type: 0,
        }
    }
}

impl Build<'_> {
    fn packet(&self, frames: &[u8]) -> Vec<u8> {
        let ty = if self.version == QUIC_V2 {
            (self.v1_type + 1) & 3
        } else {
            self.v1_type
        };
        let first = 0xc0 | (ty << 4) | (self.pn_len as u8 - 1);
        let mut payload = frames.to_vec();
        payload.resize(payload.len().max(self.min_payload).max(4), 0);
        let mut h = vec![first];
        h.extend(self.version.to_be_bytes());
        h.push(self.dcid.len() as u8);
        h.extend_from_slice(self.dcid);
        h.push(self.scid.len() as u8);
        h.extend_from_slice(self.scid);
        if self.v1_type == 0 {
            h.extend(varint(self.token.len() as u64));
            h.extend_from_slice(self.token);
        }
        let length = self.pn_len + payload.len() + 16;
        h.extend((0x4000 | length as u16).to_be_bytes());
        let pn_offset = h.len();
        h.extend(&self.pn.to_be_bytes()[8 - self.pn_len..]);
        let keys = InitialKeys::derive(self.version, self.key_dcid, Side::Client).unwrap();
        let tag = keys.seal_in_place(self.pn, &h, &mut payload);
        let mut p = h;
        p.extend(payload);
        p.extend(tag);
        let sample: [u8; 16] = p[pn_offset + 4..pn_offset + 20].try_into().unwrap();
        let mask = keys.header_mask(&sample);
        p[0] ^= mask[0] & 0x0f;
        for i in 0..self.pn_len {
            p[pn_offset + i] ^= mask[1 + i];
        }
        p
    }
}

#[test]
fn packet_number_decoding_rfc9000_a3() {
    // RFC 9000 §A.3's example.
    assert_eq!(
        decode_packet_number(Some(0xa82f_30ea), 0x9b32, 16),
        0xa82f_9b32
    );
    assert_eq!(decode_packet_number(None, 0, 32), 0);
    assert_eq!(decode_packet_number(None, 2, 8), 2);
    assert_eq!(decode_packet_number(Some(255), 0, 8), 256);
    assert_eq!(decode_packet_number(Some(u64::MAX), 0xff, 8), u64::MAX);
    assert_eq!(decode_packet_number(Some(300), 0xff, 8), 255);
}

#[test]
fn one_packet_hello() {
    let h = hello(300);
    let mut frames = vec![0x01]; // PING first
    frames.extend(crypto_frame(0, &h));
    let p = Build {
        min_payload: 1162,
        ..Build::default()
    }
    .packet(&frames);
    let mut st = QuicInitialState::new();
    assert_eq!(st.push_datagram(&p), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
    assert_eq!(st.versions(), &[QUIC_V1]);
    let s = st.stats();
    assert_eq!((s.initial_packets, s.decrypted, s.crypto_frames), (1, 1, 1));
    assert_eq!(s.key_derivations, 1);
    // Done: further datagrams are ignored.
    assert_eq!(st.push_datagram(&p), Progress::Complete);
    assert_eq!(st.stats().datagrams, 1);
    assert!(st.is_done());
}

#[test]
fn open_initial_reports_layout() {
    let frames = crypto_frame(0, &hello(10));
    let p = Build {
        pn: 7,
        pn_len: 1,
        ..Build::default()
    }
    .packet(&frames);
    let keys = InitialKeys::derive(QUIC_V1, &DCID, Side::Client).unwrap();
    let mut buf = Vec::new();
    let o = open_initial(&p, &keys, None, &mut buf).unwrap();
    assert_eq!(o.packet_number, 7);
    assert_eq!(o.packet_len, p.len());
    assert_eq!(o.header_len, 1 + 4 + 1 + 8 + 1 + 1 + 2 + 1);
    assert_eq!(&buf[o.header_len..o.header_len + frames.len()], &frames[..]);
    // Errors: wrong keys, truncated, too short, not Initial, unknown version.
    let other = InitialKeys::derive(QUIC_V1, &[9; 8], Side::Client).unwrap();
    assert_eq!(
        open_initial(&p, &other, None, &mut buf),
        Err(QuicError::Authentication)
    );
    assert!(matches!(
        open_initial(&p[..p.len() - 1], &keys, None, &mut buf),
        Err(QuicError::Truncated { .. })
    ));
    assert_eq!(
        open_initial(&p[..3], &keys, None, &mut buf),
        Err(QuicError::NotLongHeader)
    );
    let mut hs = p.clone();
    hs[0] = (hs[0] & 0xcf) | 0x20;
    assert_eq!(
        open_initial(&hs, &keys, None, &mut buf),
        Err(QuicError::NotInitial)
    );
    let mut draft = p.clone();
    draft[1..5].copy_from_slice(&0xff00_001du32.to_be_bytes());
    assert_eq!(
        open_initial(&draft, &keys, None, &mut buf),
        Err(QuicError::UnsupportedVersion(0xff00_001d))
    );
}

#[test]
fn too_short_for_sample() {
    // Length = 1 (pn) + 3 bytes: no room for a 16-byte sample at pn_offset + 4.
    let mut p = vec![0xc0, 0, 0, 0, 1, 8];
    p.extend_from_slice(&DCID);
    p.extend_from_slice(&[0, 0, 4, 0, 1, 2, 3]);
    let keys = InitialKeys::derive(QUIC_V1, &DCID, Side::Client).unwrap();
    assert_eq!(
        open_initial(&p, &keys, None, &mut Vec::new()),
        Err(QuicError::TooShort)
    );
    let mut st = QuicInitialState::new();
    assert_eq!(st.push_datagram(&p), Progress::InProgress);
    assert_eq!(st.stats().truncated, 1);
}

#[test]
fn hello_over_several_packets_out_of_order_with_duplicates() {
    let h = hello(3000);
    let (a, rest) = h.split_at(1000);
    let (b, c) = rest.split_at(1000);
    let mut st = QuicInitialState::new();
    // Third part first, then the second twice, then the first.
    let b0 = Build::default();
    let p3 = Build { pn: 2, ..b0 }.packet(&crypto_frame(2000, c));
    let p2 = Build {
        pn: 1,
        ..Build::default()
    }
    .packet(&crypto_frame(1000, b));
    let p1 = Build {
        pn: 0,
        ..Build::default()
    }
    .packet(&crypto_frame(0, a));
    assert_eq!(st.push_datagram(&p3), Progress::InProgress);
    assert_eq!(st.push_datagram(&p2), Progress::InProgress);
    assert_eq!(st.push_datagram(&p2), Progress::InProgress);
    assert_eq!(st.client_hello(), None);
    assert_eq!(st.push_datagram(&p1), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
    assert_eq!(st.stats().decrypted, 4);
}

#[test]
fn coalesced_packets_in_one_datagram() {
    let h = hello(900);
    let (a, b) = h.split_at(500);
    // Initial (part 2) + Handshake (skipped: wrong keys on purpose) + Initial (part 1) +
    // trailing zero padding.
    let mut d = Build {
        pn: 1,
        ..Build::default()
    }
    .packet(&crypto_frame(500, b));
    d.extend(
        Build {
            v1_type: 2,
            key_dcid: &[7; 8],
            ..Build::default()
        }
        .packet(&[1, 2, 3]),
    );
    d.extend(
        Build {
            pn: 0,
            ..Build::default()
        }
        .packet(&crypto_frame(0, a)),
    );
    d.extend([0u8; 40]);
    let mut st = QuicInitialState::new();
    assert_eq!(st.push_datagram(&d), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
    let s = st.stats();
    assert_eq!(
        (s.initial_packets, s.decrypted, s.skipped_packets),
        (2, 2, 1)
    );
}

#[test]
fn later_initials_keep_the_original_dcid_keys() {
    // RFC 9001 §5.2: after the server's Initial, the client's DCID is the server's SCID but
    // its Initial keys still derive from the original DCID.
    let h = hello(2000);
    let (a, b) = h.split_at(1100);
    let p1 = Build::default().packet(&crypto_frame(0, a));
    let p2 = Build {
        pn: 1,
        dcid: &SERVER_CID,
        key_dcid: &DCID,
        scid: &[1, 2, 3, 4],
        ..Build::default()
    }
    .packet(&crypto_frame(1100, b));
    let mut st = QuicInitialState::new();
    st.push_datagram(&p1);
    assert_eq!(st.push_datagram(&p2), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
    assert_eq!(st.stats().key_derivations, 1, "no second derivation needed");
}

#[test]
fn retry_switches_keys_to_the_new_dcid() {
    let h = hello(2000);
    let (a, b) = h.split_at(1100);
    let mut st = QuicInitialState::new();
    st.push_datagram(&Build::default().packet(&crypto_frame(0, a)));
    // RFC 9001 §A.4's Retry (v1): SCID f067a5502a4262b5, token "token".
    let retry = [
        0xff, 0, 0, 0, 1, 0, 8, 0xf0, 0x67, 0xa5, 0x50, 0x2a, 0x42, 0x62, 0xb5, 0x74, 0x6f, 0x6b,
        0x65, 0x6e, 0x04, 0xa2, 0x65, 0xba, 0x2e, 0xff, 0x4d, 0x82, 0x90, 0x58, 0xfb, 0x3f, 0x0f,
        0x24, 0x96, 0xba,
    ];
    st.push_server_datagram(&retry);
    assert!(st.retry_seen());
    // The client starts over: new DCID (the Retry's SCID), new keys, the token, the whole
    // hello again.
    let after = |pn, off: usize, data: &[u8]| {
        Build {
            pn,
            dcid: &SERVER_CID,
            key_dcid: &SERVER_CID,
            token: b"token",
            ..Build::default()
        }
        .packet(&crypto_frame(off as u64, data))
    };
    assert_eq!(st.push_datagram(&after(1, 0, a)), Progress::InProgress);
    assert_eq!(st.push_datagram(&after(2, 1100, b)), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
    let s = st.stats();
    assert_eq!((s.decrypted, s.decrypt_failures), (3, 0));
    assert_eq!(s.key_derivations, 2, "Retry SCID tried first");
}

#[test]
fn retry_not_seen_falls_back_to_the_packet_dcid() {
    let h = hello(200);
    let mut st = QuicInitialState::new();
    // A first Initial with another connection's hello bytes cut short...
    st.push_datagram(&Build::default().packet(&crypto_frame(0, &h[..10])));
    // ...then Initials under a new DCID (Retry or a new connection, not seen).
    let p = Build {
        pn: 1,
        dcid: &SERVER_CID,
        key_dcid: &SERVER_CID,
        ..Build::default()
    }
    .packet(&crypto_frame(0, &h));
    assert_eq!(st.push_datagram(&p), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
}

#[test]
fn quic_v2_initial() {
    let h = hello(500);
    let p = Build {
        version: QUIC_V2,
        min_payload: 1162,
        ..Build::default()
    }
    .packet(&crypto_frame(0, &h));
    assert_eq!(looks_like_quic(&p).unwrap().kind, QuicVersionKind::V2);
    assert_eq!(
        looks_like_quic(&p).unwrap().packet_type,
        Some(LongPacketType::Initial)
    );
    let mut st = QuicInitialState::new();
    assert_eq!(st.push_datagram(&p), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
    assert_eq!(st.versions(), &[QUIC_V2]);
}

#[test]
fn version_change_derives_new_keys() {
    // Compatible version negotiation: the client continues in v2 with the original DCID.
    let h = hello(2000);
    let (a, b) = h.split_at(1000);
    let mut st = QuicInitialState::new();
    st.push_datagram(&Build::default().packet(&crypto_frame(0, a)));
    let p = Build {
        version: QUIC_V2,
        pn: 1,
        ..Build::default()
    }
    .packet(&crypto_frame(1000, b));
    assert_eq!(st.push_datagram(&p), Progress::Complete);
    assert_eq!(st.versions(), &[QUIC_V1, QUIC_V2]);
}

#[test]
fn no_allocation_for_truncated_or_foreign_packets() {
    let p = Build {
        min_payload: 1162,
        ..Build::default()
    }
    .packet(&crypto_frame(0, &hello(100)));
    let mut st = QuicInitialState::new();
    // Snaplen-cut packet: counted, nothing allocated.
    assert_eq!(st.push_datagram(&p[..300]), Progress::NotStarted);
    assert!(st.conn.is_none());
    assert_eq!(st.stats().truncated, 1);
    // Draft version: recognised, not decrypted.
    let mut d = p.clone();
    d[1..5].copy_from_slice(&0xff00_001du32.to_be_bytes());
    assert_eq!(st.push_datagram(&d), Progress::NotStarted);
    assert_eq!(st.stats().unsupported_version, 1);
    // A short DCID on a first Initial: not a connection start.
    let s = Build {
        dcid: &[1, 2, 3],
        key_dcid: &[1, 2, 3],
        ..Build::default()
    }
    .packet(&crypto_frame(0, &hello(100)));
    assert_eq!(st.push_datagram(&s), Progress::NotStarted);
    assert!(st.conn.is_none());
    assert_eq!(st.stats().short_dcid, 1);
    // Short header and junk.
    assert_eq!(st.push_datagram(&[0x40; 50]), Progress::NotStarted);
    assert_eq!(st.push_datagram(&[]), Progress::NotStarted);
    assert!(st.conn.is_none());
    // The complete packet finishes it.
    assert_eq!(st.push_datagram(&p), Progress::Complete);
}

#[test]
fn gives_up_on_non_hello_and_oversized_hello() {
    let mut st = QuicInitialState::new();
    let p = Build::default().packet(&crypto_frame(0, &[2, 0, 0, 10, 1, 2, 3]));
    assert_eq!(
        st.push_datagram(&p),
        Progress::GaveUp(GiveUp::NotClientHello)
    );
    assert_eq!(st.client_hello(), None);

    let mut st = QuicInitialState::new();
    let p = Build::default().packet(&crypto_frame(0, &[1, 0, 0x40, 0x00, 1, 2, 3]));
    assert_eq!(
        st.push_datagram(&p),
        Progress::GaveUp(GiveUp::HelloTooLarge)
    );
}

#[test]
fn gives_up_after_the_datagram_budget() {
    let mut st = QuicInitialState::new();
    let h = hello(100);
    for i in 0..MAX_DATAGRAMS - 1 {
        let p = Build {
            pn: u64::from(i),
            ..Build::default()
        }
        .packet(&crypto_frame(50, &h[50..]));
        assert_eq!(st.push_datagram(&p), Progress::InProgress);
    }
    assert_eq!(
        st.push_datagram(&[0x40; 20]),
        Progress::GaveUp(GiveUp::DatagramBudget)
    );
    // The first bytes come too late.
    let p = Build::default().packet(&crypto_frame(0, &h[..50]));
    assert_eq!(
        st.push_datagram(&p),
        Progress::GaveUp(GiveUp::DatagramBudget)
    );
    assert_eq!(st.stats().datagrams, u32::from(MAX_DATAGRAMS));
}

#[test]
fn gives_up_when_initials_never_decrypt() {
    // The capture began after the client's first Initial: its later Initials name the
    // server's CID but are keyed from the first DCID, never seen.
    let h = hello(2000);
    let later = |pn| {
        Build {
            pn,
            dcid: &SERVER_CID,
            key_dcid: &DCID,
            ..Build::default()
        }
        .packet(&crypto_frame(0, &h[..1100]))
    };
    let mut st = QuicInitialState::new();
    assert_eq!(st.push_datagram(&later(1)), Progress::InProgress);
    // Nothing decrypted: the decryption buffer is not kept.
    assert_eq!(st.conn.as_ref().map(|c| c.scratch.capacity()), Some(0));
    assert_eq!(
        st.push_datagram(&later(2)),
        Progress::GaveUp(GiveUp::Undecryptable)
    );
    assert_eq!(st.stats().decrypt_failures, MAX_UNDECRYPTABLE);
    // Done: further datagrams are not examined.
    assert_eq!(
        st.push_datagram(&later(3)),
        Progress::GaveUp(GiveUp::Undecryptable)
    );
    assert_eq!(st.stats().datagrams, 2);

    // One damaged Initial, then the client's retransmission: the hello is found.
    let mut bad = Build::default().packet(&crypto_frame(0, &h[..1100]));
    let n = bad.len();
    bad[n - 20] ^= 0x40;
    let mut st = QuicInitialState::new();
    assert_eq!(st.push_datagram(&bad), Progress::InProgress);
    let resent = Build {
        pn: 1,
        ..Build::default()
    }
    .packet(&crypto_frame(0, &h[..1100]));
    assert_eq!(st.push_datagram(&resent), Progress::InProgress);
    let rest = Build {
        pn: 2,
        ..Build::default()
    }
    .packet(&crypto_frame(1100, &h[1100..]));
    assert_eq!(st.push_datagram(&rest), Progress::Complete);
    assert_eq!(st.client_hello(), Some(&h[..]));
    // After a first decryption, failures no longer end the search.
    let mut st = QuicInitialState::new();
    st.push_datagram(&Build::default().packet(&crypto_frame(0, &h[..1100])));
    for pn in 1..4 {
        assert_eq!(st.push_datagram(&later(pn)), Progress::InProgress);
    }
}

#[test]
fn server_datagrams_record_versions_and_retry() {
    let mut st = QuicInitialState::new();
    // A server Initial + Handshake coalesced (keys irrelevant here).
    let mut d = Build {
        dcid: &[],
        scid: &SERVER_CID,
        ..Build::default()
    }
    .packet(&[1]);
    d.extend(
        Build {
            v1_type: 2,
            dcid: &[],
            scid: &SERVER_CID,
            ..Build::default()
        }
        .packet(&[1]),
    );
    st.push_server_datagram(&d);
    assert_eq!(st.stats().server_initials, 1);
    assert_eq!(st.versions(), &[QUIC_V1]);
    assert!(!st.retry_seen());
    st.push_server_datagram(&[0xc0, 0x6b, 0x33, 0x43, 0xcf, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(st.retry_seen(), "a v2 Retry has type bits 0b00");
    assert_eq!(st.versions(), &[QUIC_V1, QUIC_V2]);
}

proptest! {
    /// Any split of a hello into CRYPTO frames, spread over packets and datagrams in any
    /// order (with PADDING and PING between frames), yields the same hello.
    #[test]
    fn any_segmentation_yields_the_same_hello(
        body in 4usize..3000,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        order in any::<prop::sample::Index>(),
        per_packet in 1usize..4,
    ) {
        let h = hello(body);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(h.len())).collect();
        points.push(0);
        points.push(h.len());
        points.sort_unstable();
        points.dedup();
        let mut frames: Vec<Vec<u8>> = points
            .windows(2)
            .map(|w| {
                let mut f = crypto_frame(w[0] as u64, &h[w[0]..w[1]]);
                f.extend([0, 0, 1]);
                f
            })
            .collect();
        // Rotate the frame order.
        let k = order.index(frames.len());
        frames.rotate_left(k);
        let mut st = QuicInitialState::new();
        let mut last = Progress::NotStarted;
        for (pn, group) in frames.chunks(per_packet).enumerate() {
            let p = Build { pn: pn as u64, ..Build::default() }.packet(&group.concat());
            last = st.push_datagram(&p);
        }
        // Fewer datagrams than the budget always complete.
        if frames.len().div_ceil(per_packet) <= usize::from(MAX_DATAGRAMS) {
            prop_assert_eq!(last, Progress::Complete);
            prop_assert_eq!(st.client_hello(), Some(&h[..]));
        }
    }
}
