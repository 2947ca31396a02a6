//! Frames of decrypted Initial packets (RFC 9000 §19) and the bounded reassembly of the
//! CRYPTO stream they carry.

use super::packet::Cursor;

/// Most bytes of the Initial CRYPTO stream kept per flow (a ClientHello with a
/// post-quantum key share is ≈1.8 KB; the largest seen in the wild stay well under 8 KB).
pub const MAX_CRYPTO: usize = 16 * 1024;

/// What one packet's frames held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FrameWalk {
    /// CRYPTO frames seen.
    pub(crate) crypto: u32,
    /// Other frames seen (PADDING runs count once).
    pub(crate) other: u32,
    /// The walk stopped at a malformed frame or at a frame type not allowed in Initial
    /// packets (whose length it cannot know).
    pub(crate) stopped: bool,
}

/// Walks the frames of an Initial packet's plaintext and hands every CRYPTO frame's
/// `(offset, data)` to `on_crypto`. Frames allowed in Initial packets (RFC 9000 §12.4,
/// Table 3):
///
/// ```text
/// PADDING Frame { Type (i) = 0x00 }
/// PING Frame { Type (i) = 0x01 }
/// ACK Frame {
///   Type (i) = 0x02..0x03,
///   Largest Acknowledged (i),
///   ACK Delay (i),
///   ACK Range Count (i),
///   First ACK Range (i),
///   ACK Range (..) ...,          // ACK Range { Gap (i), ACK Range Length (i) }
///   [ECN Counts (..)],           // type 0x03: ECT0 Count (i), ECT1 Count (i), ECN-CE Count (i)
/// }
/// CRYPTO Frame {
///   Type (i) = 0x06,
///   Offset (i),
///   Length (i),
///   Crypto Data (..),
/// }
/// CONNECTION_CLOSE Frame {
///   Type (i) = 0x1c..0x1d,
///   Error Code (i),
///   [Frame Type (i)],            // type 0x1c only
///   Reason Phrase Length (i),
///   Reason Phrase (..),
/// }
/// ```
///
/// Any other type ends the walk: its length is unknown. Every loop consumes at least one
/// byte per iteration, so the walk is bounded by the payload length.
pub(crate) fn walk_frames(payload: &[u8], mut on_crypto: impl FnMut(u64, &[u8])) -> FrameWalk {
    let mut c = Cursor::new(payload);
    let mut w = FrameWalk::default();
    while !c.is_empty() {
        let Some(ty) = c.varint() else {
            w.stopped = true;
            break;
        };
        let ok = match ty {
            0x00 => {
                // A run of PADDING: skip all the zeros at once.
                while c.clone().u8() == Some(0) {
                    c.u8();
                }
                w.other += 1;
                Some(())
            }
            0x01 => {
                w.other += 1;
                Some(())
            }
            0x02 | 0x03 => {
                w.other += 1;
                skip_ack(&mut c, ty == 0x03)
            }
            0x06 => crypto_frame(&mut c).map(|(offset, data)| {
                w.crypto += 1;
                on_crypto(offset, data);
            }),
            0x1c | 0x1d => {
                w.other += 1;
                skip_close(&mut c, ty == 0x1c)
            }
            _ => None,
        };
        if ok.is_none() {
            w.stopped = true;
            break;
        }
    }
    w
}

fn crypto_frame<'a>(c: &mut Cursor<'a>) -> Option<(u64, &'a [u8])> {
    let offset = c.varint()?;
    let len = c.varint_len()?;
    let data = c.bytes(len)?;
    // RFC 9000 §19.6: offset + length must stay below 2^62.
    let end = offset.checked_add(u64::try_from(len).ok()?)?;
    (end < 1 << 62).then_some((offset, data))
}

fn skip_close(c: &mut Cursor<'_>, with_frame_type: bool) -> Option<()> {
    c.varint()?; // Error Code
    if with_frame_type {
        c.varint()?; // Frame Type
    }
    let n = c.varint_len()?;
    c.bytes(n)?;
    Some(())
}

fn skip_ack(c: &mut Cursor<'_>, ecn: bool) -> Option<()> {
    c.varint()?; // Largest Acknowledged
    c.varint()?; // ACK Delay
    let ranges = c.varint()?;
    c.varint()?; // First ACK Range
    // Each range reads at least two bytes, so a lying count ends at the payload's end.
    for _ in 0..ranges {
        c.varint()?;
        c.varint()?;
    }
    if ecn {
        c.varint()?;
        c.varint()?;
        c.varint()?;
    }
    Some(())
}

/// The client's Initial CRYPTO stream, reassembled by offset into at most [`MAX_CRYPTO`]
/// bytes. Out-of-order and duplicate data are fine (later copies overwrite earlier ones);
/// bytes beyond the bound are dropped and counted.
#[derive(Clone, Debug, Default)]
pub(crate) struct CryptoStream {
    data: Vec<u8>,
    /// One bit per byte of `data`: received.
    have: Vec<u64>,
    /// Bytes offered beyond [`MAX_CRYPTO`].
    pub(crate) dropped: u64,
}

impl CryptoStream {
    /// Stores `bytes` at stream offset `offset` (the part below [`MAX_CRYPTO`]).
    pub(crate) fn insert(&mut self, offset: u64, bytes: &[u8]) {
        let Ok(start) = usize::try_from(offset) else {
            self.dropped = self.dropped.saturating_add(bytes.len() as u64);
            return;
        };
        let end = start.saturating_add(bytes.len());
        let kept_end = end.min(MAX_CRYPTO);
        let kept = kept_end.saturating_sub(start);
        self.dropped = self.dropped.saturating_add((bytes.len() - kept) as u64);
        if kept == 0 {
            return;
        }
        if self.data.len() < kept_end {
            self.data.resize(kept_end, 0);
            self.have.resize(kept_end.div_ceil(64), 0);
        }
        if let (Some(dst), Some(src)) = (self.data.get_mut(start..kept_end), bytes.get(..kept)) {
            dst.copy_from_slice(src);
        }
        for i in start..kept_end {
            if let Some(w) = self.have.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        }
    }

    /// Length of the prefix received without gaps.
    pub(crate) fn contiguous(&self) -> usize {
        let mut n = 0;
        for w in &self.have {
            if *w == u64::MAX {
                n += 64;
            } else {
                n += w.trailing_ones() as usize;
                break;
            }
        }
        n.min(self.data.len())
    }

    /// The first `n` bytes, if all were received.
    pub(crate) fn prefix(&self, n: usize) -> Option<&[u8]> {
        if self.contiguous() >= n {
            self.data.get(..n)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_stream_out_of_order_and_duplicates() {
        let mut s = CryptoStream::default();
        s.insert(5, b"fghij");
        assert_eq!(s.contiguous(), 0);
        assert_eq!(s.prefix(1), None);
        s.insert(0, b"abc");
        assert_eq!(s.contiguous(), 3);
        s.insert(2, b"cde");
        s.insert(0, b"ab");
        assert_eq!(s.prefix(10), Some(&b"abcdefghij"[..]));
        assert_eq!(s.prefix(11), None);
        assert_eq!(s.dropped, 0);
    }

    #[test]
    fn crypto_stream_bounds() {
        let mut s = CryptoStream::default();
        s.insert(MAX_CRYPTO as u64 - 2, b"xyzw");
        assert_eq!(s.dropped, 2);
        s.insert(u64::MAX - 1, b"ab");
        s.insert(1 << 40, b"ab");
        assert_eq!(s.dropped, 6);
        assert_eq!(s.data.len(), MAX_CRYPTO);
        // Filling everything gives a contiguous prefix of exactly MAX_CRYPTO.
        s.insert(0, &vec![1u8; MAX_CRYPTO]);
        assert_eq!(s.contiguous(), MAX_CRYPTO);
    }

    fn collect(payload: &[u8]) -> (FrameWalk, Vec<(u64, Vec<u8>)>) {
        let mut v = Vec::new();
        let w = walk_frames(payload, |o, d| v.push((o, d.to_vec())));
        (w, v)
    }

    #[test]
    fn frames_padding_ping_ack_crypto() {
        let mut p = vec![0, 0, 0, 1];
        // ACK with one extra range and ECN counts.
        p.extend_from_slice(&[0x03, 0x05, 0x40, 0x10, 0x01, 0x00, 0x01, 0x01, 0, 0, 0]);
        // CRYPTO offset 3 "def", then offset 0 (2-byte varint) "abc".
        p.extend_from_slice(&[0x06, 0x03, 0x03, b'd', b'e', b'f']);
        p.extend_from_slice(&[0x06, 0x40, 0x00, 0x03, b'a', b'b', b'c']);
        p.extend_from_slice(&[0x1c, 0x01, 0x06, 0x02, b'n', b'o']);
        p.extend_from_slice(&[0; 10]);
        let (w, v) = collect(&p);
        assert!(!w.stopped, "{w:?}");
        assert_eq!(w.crypto, 2);
        assert_eq!(v, vec![(3, b"def".to_vec()), (0, b"abc".to_vec())]);
        // Every truncation stops cleanly, never panics, and keeps complete frames only.
        for n in 0..p.len() {
            let (_, v) = collect(&p[..n]);
            assert!(v.len() <= 2);
        }
    }

    #[test]
    fn frames_unknown_type_and_lying_lengths() {
        // STREAM (0x08) is not allowed in Initial packets: the walk stops.
        let (w, v) = collect(&[0x08, 0x00, 0x06, 0x00, 0x01, b'x']);
        assert!(w.stopped);
        assert!(v.is_empty());
        // CRYPTO frame claiming more data than present.
        let (w, v) = collect(&[0x06, 0x00, 0x10, b'x']);
        assert!(w.stopped && v.is_empty());
        // ACK with a huge range count.
        let (w, _) = collect(&[0x02, 0, 0, 0xbf, 0xff, 0xff, 0xff, 0, 1, 1]);
        assert!(w.stopped);
        // CRYPTO offset near 2^62.
        let (w, v) = collect(&[
            0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
        ]);
        assert!(w.stopped && v.is_empty());
    }
}
