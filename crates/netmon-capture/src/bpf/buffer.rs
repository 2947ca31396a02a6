//! Walking the buffer a `read(2)` on a BPF device returns (platform-independent, tested on
//! every platform).
//!
//! A read hands over whole records: a header, padding up to `bh_hdrlen`, then `bh_caplen`
//! captured bytes; the next record starts at `BPF_WORDALIGN(bh_hdrlen + bh_caplen)` from this
//! one's start. The last record is not padded. Fields are in the host's byte order.
//!
//! ```text
//! macOS (xnu bsd/net/bpf.h); 64-bit processes get the 32-bit timeval too:
//!   struct bpf_hdr {
//!       struct timeval32 bh_tstamp;   // int32 tv_sec @0, int32 tv_usec @4
//!       bpf_u_int32      bh_caplen;   // @8   bytes captured (follow the header)
//!       bpf_u_int32      bh_datalen;  // @12  length of the packet on the wire
//!       u_short          bh_hdrlen;   // @16  this header + padding to the frame
//!   };                                // 18 bytes used (SIZEOF_BPF_HDR)
//!   struct bpf_hdr_ext {              // after BIOCSEXTHDR (Apple private API)
//!       ... the five fields above ...
//!       u_short bh_flags;             // @18  BPF_HDR_EXT_FLAGS_DIR_OUT = 0x0001
//!       pid_t bh_pid; char bh_comm[17]; u_char pad[2]; u_char bh_proto;
//!       bpf_u_int32 bh_svc, bh_flowid;  // 52 bytes in all
//!   };
//!   #define BPF_ALIGNMENT    sizeof(int32_t)
//!   #define BPF_WORDALIGN(x) (((x) + (BPF_ALIGNMENT - 1)) & ~(BPF_ALIGNMENT - 1))
//!
//! 64-bit FreeBSD/NetBSD (struct timeval of two longs; BPF_ALIGNMENT sizeof(long)):
//!   { int64 tv_sec @0, int64 tv_usec @8, u32 bh_caplen @16, u32 bh_datalen @20,
//!     u16 bh_hdrlen @24 }               // 26 bytes used
//!
//! buffer: | hdr | pad | caplen bytes | pad | hdr | pad | caplen bytes |
//!         ^record      ^record + hdrlen      ^record + WORDALIGN(hdrlen + caplen)
//! ```
//!
//! The walk trusts nothing: a record whose `bh_hdrlen` is smaller than its header, whose
//! bytes run past the end of what was read, or a tail too short for a header stops the walk,
//! and the cursor keeps the reason ([`Malformed`]) for the caller to count. Since every
//! accepted `bh_hdrlen` is at least the header's size, each record advances the walk by at
//! least that much: the walk takes at most `len / 18` steps and can never stand still.
#![forbid(unsafe_code)]

use netmon_types::Timestamp;

use crate::Direction;

/// Which record header the kernel writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderLayout {
    /// macOS `struct bpf_hdr`: 32-bit seconds and microseconds, 4-byte alignment.
    Darwin,
    /// macOS `struct bpf_hdr_ext` (after `BIOCSEXTHDR`): as [`HeaderLayout::Darwin`], plus
    /// `bh_flags`, which tells the direction.
    DarwinExt,
    /// A `struct bpf_hdr` with a native 64-bit `struct timeval` and 8-byte alignment
    /// (64-bit FreeBSD and NetBSD).
    Timeval64,
}

impl HeaderLayout {
    /// Bytes of the header the walk reads: a record's `bh_hdrlen` must be at least this.
    pub const fn min_hdrlen(self) -> usize {
        match self {
            HeaderLayout::Darwin => 18,
            HeaderLayout::DarwinExt => 20,
            HeaderLayout::Timeval64 => 26,
        }
    }

    /// `BPF_ALIGNMENT`: records start at multiples of this.
    pub const fn alignment(self) -> usize {
        match self {
            HeaderLayout::Darwin | HeaderLayout::DarwinExt => 4,
            HeaderLayout::Timeval64 => 8,
        }
    }

    /// `BPF_WORDALIGN(x)`; `None` if it would overflow.
    pub const fn word_align(self, x: usize) -> Option<usize> {
        let a = self.alignment();
        match x.checked_add(a - 1) {
            Some(v) => Some(v & !(a - 1)),
            None => None,
        }
    }

    /// Offsets of `bh_caplen`, `bh_datalen` and `bh_hdrlen`.
    const fn offsets(self) -> (usize, usize, usize) {
        match self {
            HeaderLayout::Darwin | HeaderLayout::DarwinExt => (8, 12, 16),
            HeaderLayout::Timeval64 => (16, 20, 24),
        }
    }
}

/// Where and what one record is, without borrowing the buffer (so a source can keep it while
/// it lends the bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// `bh_tstamp`, microsecond resolution.
    pub ts: Timestamp,
    /// `bh_caplen`: bytes captured.
    pub caplen: u32,
    /// `bh_datalen`: length of the packet on the wire (as the kernel says; not checked
    /// against `caplen`).
    pub datalen: u32,
    /// From `bh_flags` with [`HeaderLayout::DarwinExt`]; otherwise unknown.
    pub direction: Direction,
    /// Offset of the captured bytes in the buffer.
    pub offset: usize,
}

impl RecordInfo {
    /// The record's captured bytes in `buf` (the buffer it was read from); empty if `buf`
    /// is another, shorter buffer.
    pub fn data<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.offset
            .checked_add(self.caplen as usize)
            .and_then(|end| buf.get(self.offset..end))
            .unwrap_or(&[])
    }
}

/// Why a walk stopped before the end of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Fewer bytes are left than a record header needs.
    #[error("{left} bytes left at offset {offset}, too few for a BPF record header")]
    TruncatedHeader {
        /// Offset of the would-be record.
        offset: usize,
        /// Bytes left in the buffer.
        left: usize,
    },
    /// `bh_hdrlen` is smaller than the header itself.
    #[error("BPF record at offset {offset}: header length {hdrlen} is smaller than the header")]
    ShortHdrLen {
        /// Offset of the record.
        offset: usize,
        /// Its `bh_hdrlen`.
        hdrlen: u16,
    },
    /// `bh_hdrlen + bh_caplen` runs past the end of the buffer.
    #[error(
        "BPF record at offset {offset}: header length {hdrlen} and {caplen} captured bytes \
         run past the buffer's end"
    )]
    Overrun {
        /// Offset of the record.
        offset: usize,
        /// Its `bh_hdrlen`.
        hdrlen: u16,
        /// Its `bh_caplen`.
        caplen: u32,
    },
}

/// A position in a BPF read buffer. It holds no borrow: each call is given the buffer.
///
/// Once the walk stopped on a malformed record, [`Cursor::next_record`] returns `None`
/// until [`Cursor::reset`], and [`Cursor::error`] says why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pos: usize,
    error: Option<Malformed>,
}

impl Cursor {
    /// A cursor at the start of a buffer.
    pub const fn new() -> Cursor {
        Cursor {
            pos: 0,
            error: None,
        }
    }

    /// Back to the start, error cleared (for a freshly read buffer).
    pub fn reset(&mut self) {
        *self = Cursor::new();
    }

    /// Offset of the next record.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Why the walk stopped early, if it did.
    pub fn error(&self) -> Option<Malformed> {
        self.error
    }

    /// The next record of `buf` (the bytes the read returned, not the whole allocation), or
    /// `None` at the end or on a malformed record.
    pub fn next_record(&mut self, buf: &[u8], layout: HeaderLayout) -> Option<RecordInfo> {
        if self.error.is_some() || self.pos >= buf.len() {
            return None;
        }
        match read_record(buf, self.pos, layout) {
            Ok((info, next)) => {
                self.pos = next;
                Some(info)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// Decodes the record at `pos`; returns it and the offset of the next one.
fn read_record(
    buf: &[u8],
    pos: usize,
    layout: HeaderLayout,
) -> Result<(RecordInfo, usize), Malformed> {
    let left = buf.len().saturating_sub(pos);
    let hdr = pos
        .checked_add(layout.min_hdrlen())
        .and_then(|end| buf.get(pos..end))
        .ok_or(Malformed::TruncatedHeader { offset: pos, left })?;
    let (cap_at, data_at, hdrlen_at) = layout.offsets();
    let u32_at = |at: usize| {
        hdr.get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    };
    let u16_at = |at: usize| {
        hdr.get(at..at + 2)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u16::from_ne_bytes)
    };
    let caplen = u32_at(cap_at);
    let datalen = u32_at(data_at);
    let hdrlen = u16_at(hdrlen_at);
    if usize::from(hdrlen) < layout.min_hdrlen() {
        return Err(Malformed::ShortHdrLen {
            offset: pos,
            hdrlen,
        });
    }
    let overrun = Malformed::Overrun {
        offset: pos,
        hdrlen,
        caplen,
    };
    let start = pos + usize::from(hdrlen);
    let end = usize::try_from(caplen)
        .ok()
        .and_then(|c| start.checked_add(c))
        .filter(|&e| e <= buf.len())
        .ok_or(overrun)?;
    // `end` ≤ buf.len() ≤ isize::MAX, so aligning cannot overflow; `next` > `pos` because
    // hdrlen ≥ min_hdrlen > 0.
    let next = layout.word_align(end).ok_or(overrun)?;
    let ts = match layout {
        HeaderLayout::Darwin | HeaderLayout::DarwinExt => {
            // tv_sec is an int32 in the header; read as unsigned it stays right until 2106
            // (the kernel stores the low 32 bits of the time).
            let secs = i64::from(u32_at(0));
            let usecs = i64::from(u32_at(4));
            Timestamp::from_nanos(secs * 1_000_000_000 + usecs * 1_000)
        }
        HeaderLayout::Timeval64 => {
            let i64_at = |at: usize| {
                hdr.get(at..at + 8)
                    .and_then(|s| s.try_into().ok())
                    .map_or(0, i64::from_ne_bytes)
            };
            Timestamp::from_nanos(
                i64_at(0)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64_at(8).saturating_mul(1_000)),
            )
        }
    };
    let direction = match layout {
        HeaderLayout::DarwinExt if u16_at(18) & 0x0001 != 0 => Direction::Outbound,
        HeaderLayout::DarwinExt => Direction::Inbound,
        _ => Direction::Unknown,
    };
    Ok((
        RecordInfo {
            ts,
            caplen,
            datalen,
            direction,
            offset: start,
        },
        next,
    ))
}

/// One record with its bytes, as [`Records`] yields it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// `bh_tstamp`.
    pub ts: Timestamp,
    /// `bh_caplen` (the length of `data`).
    pub caplen: u32,
    /// `bh_datalen`.
    pub datalen: u32,
    /// From `bh_flags` with [`HeaderLayout::DarwinExt`]; otherwise unknown.
    pub direction: Direction,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Iterator over the records of one buffer; see [`records`].
#[derive(Clone, Debug)]
pub struct Records<'a> {
    buf: &'a [u8],
    layout: HeaderLayout,
    cursor: Cursor,
}

/// The records of `buf`, the bytes one read returned. After the iterator ends,
/// [`Records::error`] tells whether it ended early on a malformed record.
pub fn records(buf: &[u8], layout: HeaderLayout) -> Records<'_> {
    Records {
        buf,
        layout,
        cursor: Cursor::new(),
    }
}

impl Records<'_> {
    /// Why the walk stopped early, if it did.
    pub fn error(&self) -> Option<Malformed> {
        self.cursor.error()
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let info = self.cursor.next_record(self.buf, self.layout)?;
        Some(Record {
            ts: info.ts,
            caplen: info.caplen,
            datalen: info.datalen,
            direction: info.direction,
            data: info.data(self.buf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One record as a test writes it: (seconds, microseconds, datalen, flags, frame).
    #[derive(Clone, Debug)]
    struct Rec {
        secs: u32,
        usecs: u32,
        datalen: u32,
        flags: u16,
        data: Vec<u8>,
    }

    /// Writes records the way the kernel does: hdrlen padded so the frame after it is
    /// aligned as for a 14-byte link header, each record aligned, the last one unpadded.
    fn encode(recs: &[Rec], layout: HeaderLayout) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            let start = out.len();
            let hdrlen = layout.word_align(layout.min_hdrlen() + 14).unwrap() - 14;
            out.resize(start + hdrlen, 0);
            let h = &mut out[start..];
            match layout {
                HeaderLayout::Darwin | HeaderLayout::DarwinExt => {
                    h[0..4].copy_from_slice(&r.secs.to_ne_bytes());
                    h[4..8].copy_from_slice(&r.usecs.to_ne_bytes());
                }
                HeaderLayout::Timeval64 => {
                    h[0..8].copy_from_slice(&i64::from(r.secs).to_ne_bytes());
                    h[8..16].copy_from_slice(&i64::from(r.usecs).to_ne_bytes());
                }
            }
            let (c, d, l) = layout.offsets();
            h[c..c + 4].copy_from_slice(&(r.data.len() as u32).to_ne_bytes());
            h[d..d + 4].copy_from_slice(&r.datalen.to_ne_bytes());
            h[l..l + 2].copy_from_slice(&(hdrlen as u16).to_ne_bytes());
            if layout == HeaderLayout::DarwinExt {
                h[18..20].copy_from_slice(&r.flags.to_ne_bytes());
            }
            out.extend_from_slice(&r.data);
            if i + 1 < recs.len() {
                out.resize(layout.word_align(out.len()).unwrap(), 0xee);
            }
        }
        out
    }

    fn rec(secs: u32, usecs: u32, data: &[u8]) -> Rec {
        Rec {
            secs,
            usecs,
            datalen: data.len() as u32 + 100,
            flags: 0,
            data: data.to_vec(),
        }
    }

    const LAYOUTS: [HeaderLayout; 3] = [
        HeaderLayout::Darwin,
        HeaderLayout::DarwinExt,
        HeaderLayout::Timeval64,
    ];

    #[test]
    fn walks_records_of_every_layout() {
        for layout in LAYOUTS {
            let recs = [
                rec(1_700_000_000, 123_456, &[1, 2, 3, 4, 5]),
                rec(1_700_000_001, 0, &[]),
                rec(1_700_000_002, 999_999, &[9; 61]),
            ];
            let buf = encode(&recs, layout);
            let mut it = records(&buf, layout);
            let got: Vec<Record<'_>> = it.by_ref().collect();
            assert_eq!(it.error(), None, "{layout:?}");
            assert_eq!(got.len(), 3, "{layout:?}");
            for (g, r) in got.iter().zip(&recs) {
                assert_eq!(g.data, &r.data[..]);
                assert_eq!(g.caplen as usize, r.data.len());
                assert_eq!(g.datalen, r.datalen);
                assert_eq!(
                    g.ts,
                    Timestamp::from_secs_nanos(i64::from(r.secs), r.usecs * 1000)
                );
            }
        }
    }

    #[test]
    fn records_are_word_aligned_after_header_and_frame() {
        // Darwin: hdrlen 18 (18 + 14 = 32), frame of 5 → next record at align4(23) = 24.
        let buf = encode(
            &[rec(1, 0, &[1, 2, 3, 4, 5]), rec(2, 0, &[6])],
            HeaderLayout::Darwin,
        );
        let mut c = Cursor::new();
        let a = c.next_record(&buf, HeaderLayout::Darwin).unwrap();
        assert_eq!(a.offset, 18);
        assert_eq!(c.position(), 24);
        let b = c.next_record(&buf, HeaderLayout::Darwin).unwrap();
        assert_eq!(b.offset, 24 + 18);
        assert_eq!(b.data(&buf), &[6]);
        assert_eq!(c.next_record(&buf, HeaderLayout::Darwin), None);
        assert_eq!(c.error(), None);
        // Timeval64 aligns to 8: hdrlen 26 (26 + 14 = 40), frame of 5 → align8(31) = 32.
        let buf = encode(
            &[rec(1, 0, &[1, 2, 3, 4, 5]), rec(2, 0, &[6])],
            HeaderLayout::Timeval64,
        );
        let mut c = Cursor::new();
        c.next_record(&buf, HeaderLayout::Timeval64).unwrap();
        assert_eq!(c.position(), 32);
    }

    #[test]
    fn direction_only_from_the_extended_header() {
        let mut out = rec(5, 0, &[0x45]);
        out.flags = 1;
        let mut inb = rec(6, 0, &[0x45]);
        inb.flags = 0;
        let buf = encode(&[out.clone(), inb.clone()], HeaderLayout::DarwinExt);
        let dirs: Vec<Direction> = records(&buf, HeaderLayout::DarwinExt)
            .map(|r| r.direction)
            .collect();
        assert_eq!(dirs, [Direction::Outbound, Direction::Inbound]);
        let buf = encode(&[out, inb], HeaderLayout::Darwin);
        assert!(records(&buf, HeaderLayout::Darwin).all(|r| r.direction == Direction::Unknown));
    }

    #[test]
    fn seconds_past_2038_are_not_negative() {
        // 0x8000_0000 s is 2038-01-19T03:14:08Z; an int32 reading would go back to 1901.
        let buf = encode(&[rec(0x8000_0000, 1, &[0])], HeaderLayout::Darwin);
        let r = records(&buf, HeaderLayout::Darwin).next().unwrap();
        assert_eq!(r.ts.secs(), 0x8000_0000);
        assert_eq!(r.ts.subsec_nanos(), 1000);
    }

    #[test]
    fn truncated_buffers_stop_with_a_reason() {
        let buf = encode(
            &[rec(1, 0, &[1; 10]), rec(2, 0, &[2; 10])],
            HeaderLayout::Darwin,
        );
        // Cut inside the second record's frame: first record yielded, then an overrun.
        let cut = &buf[..buf.len() - 1];
        let mut it = records(cut, HeaderLayout::Darwin);
        assert_eq!(it.next().unwrap().data, &[1; 10]);
        assert_eq!(it.next(), None);
        assert_eq!(
            it.error(),
            Some(Malformed::Overrun {
                offset: 28,
                hdrlen: 18,
                caplen: 10
            })
        );
        // Cut inside the second header.
        let cut = &buf[..28 + 17];
        let mut it = records(cut, HeaderLayout::Darwin);
        assert!(it.next().is_some());
        assert_eq!(it.next(), None);
        assert_eq!(
            it.error(),
            Some(Malformed::TruncatedHeader {
                offset: 28,
                left: 17
            })
        );
        // An empty read is a clean end.
        let mut it = records(&[], HeaderLayout::Darwin);
        assert_eq!(it.next(), None);
        assert_eq!(it.error(), None);
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let good = encode(&[rec(1, 0, &[7; 8])], HeaderLayout::Darwin);
        // hdrlen 0 would make a record that does not advance; any hdrlen below 18 is refused.
        for hdrlen in [0u16, 1, 17] {
            let mut b = good.clone();
            b[16..18].copy_from_slice(&hdrlen.to_ne_bytes());
            let mut it = records(&b, HeaderLayout::Darwin);
            assert_eq!(it.next(), None);
            assert_eq!(
                it.error(),
                Some(Malformed::ShortHdrLen { offset: 0, hdrlen })
            );
        }
        // hdrlen pointing past the buffer.
        let mut b = good.clone();
        b[16..18].copy_from_slice(&u16::MAX.to_ne_bytes());
        let mut it = records(&b, HeaderLayout::Darwin);
        assert_eq!(it.next(), None);
        assert_eq!(
            it.error(),
            Some(Malformed::Overrun {
                offset: 0,
                hdrlen: u16::MAX,
                caplen: 8
            })
        );
        // caplen of 4 GiB.
        let mut b = good.clone();
        b[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
        let mut it = records(&b, HeaderLayout::Darwin);
        assert_eq!(it.next(), None);
        assert_eq!(
            it.error(),
            Some(Malformed::Overrun {
                offset: 0,
                hdrlen: 18,
                caplen: u32::MAX
            })
        );
        // After an error the cursor stays stopped until reset.
        let mut c = Cursor::new();
        assert_eq!(c.next_record(&b, HeaderLayout::Darwin), None);
        assert_eq!(c.next_record(&good, HeaderLayout::Darwin), None);
        c.reset();
        assert!(c.next_record(&good, HeaderLayout::Darwin).is_some());
    }

    #[test]
    fn record_data_of_a_foreign_buffer_is_empty() {
        let buf = encode(&[rec(1, 0, &[1; 10])], HeaderLayout::Darwin);
        let info = Cursor::new()
            .next_record(&buf, HeaderLayout::Darwin)
            .unwrap();
        assert_eq!(info.data(&buf).len(), 10);
        assert_eq!(info.data(&buf[..20]), &[] as &[u8]);
    }

    fn arb_layout() -> impl Strategy<Value = HeaderLayout> {
        prop_oneof![
            Just(HeaderLayout::Darwin),
            Just(HeaderLayout::DarwinExt),
            Just(HeaderLayout::Timeval64),
        ]
    }

    proptest! {
        #[test]
        fn never_panics_and_always_advances(
            buf in proptest::collection::vec(any::<u8>(), 0..2048),
            layout in arb_layout(),
        ) {
            let mut c = Cursor::new();
            let mut steps = 0usize;
            let mut last = 0usize;
            while let Some(info) = c.next_record(&buf, layout) {
                steps += 1;
                prop_assert!(c.position() > last, "no progress at {}", last);
                prop_assert!(info.offset + info.caplen as usize <= buf.len());
                prop_assert_eq!(info.data(&buf).len(), info.caplen as usize);
                last = c.position();
                prop_assert!(steps <= buf.len() / layout.min_hdrlen() + 1);
            }
        }

        #[test]
        fn encoded_records_come_back(
            recs in proptest::collection::vec(
                (any::<u32>(), 0u32..1_000_000, any::<u32>(), any::<u16>(),
                 proptest::collection::vec(any::<u8>(), 0..80)),
                0..12,
            ),
            layout in arb_layout(),
        ) {
            let recs: Vec<Rec> = recs
                .into_iter()
                .map(|(secs, usecs, datalen, flags, data)| Rec { secs, usecs, datalen, flags, data })
                .collect();
            let buf = encode(&recs, layout);
            let mut it = records(&buf, layout);
            let got: Vec<Record<'_>> = it.by_ref().collect();
            prop_assert_eq!(it.error(), None);
            prop_assert_eq!(got.len(), recs.len());
            for (g, r) in got.iter().zip(&recs) {
                prop_assert_eq!(g.data, &r.data[..]);
                prop_assert_eq!(g.datalen, r.datalen);
                prop_assert_eq!(g.ts.secs(), i64::from(r.secs));
                prop_assert_eq!(g.ts.subsec_nanos(), r.usecs * 1000);
                if layout == HeaderLayout::DarwinExt {
                    let out = r.flags & 1 != 0;
                    prop_assert_eq!(g.direction == Direction::Outbound, out);
                }
            }
        }
    }
}
