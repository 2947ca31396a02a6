//! The Internet checksum (RFC 1071): a fast one's-complement sum, pseudo-headers, and
//! verification that classifies every outcome ([`ChecksumStatus`]).
//!
//! ```text
//! RFC 1071 §1: "Adjacent octets to be checksummed are paired to form 16-bit integers, and the
//! 1's complement sum of these 16-bit integers is formed." The checksum field is the 1's
//! complement of that sum; a receiver sums everything *including* the field and checks that
//! the result is all ones (0xFFFF, "-0").
//!
//! IPv4 pseudo-header (RFC 793 §3.1, RFC 768)     IPv6 pseudo-header (RFC 8200 §8.1)
//! +--------+--------+--------+--------+          +-----------------------------------+
//! |          Source Address           |          |    Source Address (16 octets)     |
//! +--------+--------+--------+--------+          +-----------------------------------+
//! |        Destination Address        |          | Destination Address (16 octets)   |
//! +--------+--------+--------+--------+          +-----------------------------------+
//! |  zero  |  PTCL  |  TCP/UDP Length |          |   Upper-Layer Packet Length (32)  |
//! +--------+--------+--------+--------+          +--------------------------+--------+
//!                                                |       zero (24 bits)     |  Next  |
//!                                                +--------------------------+--------+
//! ```
//!
//! # Speed
//!
//! [`Sum::add_bytes`] reads the data as native-endian 32-bit words and adds them into a `u64`
//! (no carry handling needed: 2^32 words fit), then folds once and byte-swaps on little-endian
//! hosts (RFC 1071 §2(B), byte-order independence). LLVM vectorises that loop. Verification
//! sums the segment once, field included, and only re-sums on failure to report the expected
//! value. Measured on the 2-core development machine (x86-64 baseline target, release, thin
//! LTO, shared with other jobs): `verify_transport` on valid IPv4/TCP segments takes ~10 ns at
//! 40 bytes, ~28 ns at 550 bytes (~19 GB/s) and ~45 ns at 1500 bytes (~33 GB/s). For the raw
//! sum at 550 bytes, 8-byte words with an end-around carry chain reached ~16 GB/s and a naive
//! 16-bit loop ~2.5 GB/s.
//!
//! Nothing here allocates or panics, whatever the input.

use crate::bytes::be16;

/// A running one's-complement sum (RFC 1071) over bytes and 16/32-bit values.
///
/// Bytes may be added in any number of pieces of any length: the sum keeps track of whether
/// the next byte falls on an odd offset, so `add_bytes(a); add_bytes(b)` equals
/// `add_bytes(a ++ b)`. [`add_u16`](Sum::add_u16) and [`add_u32`](Sum::add_u32) add values as
/// whole aligned words (the pseudo-header use) regardless of that byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sum {
    /// Sum of big-endian 16-bit values, not yet folded (end-around carry kept in range).
    acc: u64,
    /// Whether an odd number of bytes has been added so far.
    odd: bool,
}

impl Sum {
    /// An empty sum.
    pub const fn new() -> Sum {
        Sum { acc: 0, odd: false }
    }

    /// Adds `v` to the accumulator with an end-around carry.
    #[inline(always)]
    fn add_raw(&mut self, v: u64) {
        let (s, carry) = self.acc.overflowing_add(v);
        // If the add wrapped, `s < v`, so `s + 1` cannot overflow.
        self.acc = s.wrapping_add(u64::from(carry));
    }

    /// Adds the bytes of `data`, continuing at the byte offset the previous bytes ended on.
    /// An odd final byte is padded with a zero octet (RFC 1071 §4.1), unless more bytes follow
    /// in a later call.
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        let s = sum_slice(data);
        // Data starting at an odd offset contributes its byte-swapped sum (RFC 1071 §2(B)).
        let s = if self.odd { s.swap_bytes() } else { s };
        self.add_raw(u64::from(s));
        self.odd ^= data.len() % 2 == 1;
    }

    /// Adds one 16-bit value (as an aligned word).
    #[inline]
    pub fn add_u16(&mut self, v: u16) {
        self.add_raw(u64::from(v));
    }

    /// Adds one 32-bit value (as two aligned 16-bit words).
    #[inline]
    pub fn add_u32(&mut self, v: u32) {
        self.add_raw(u64::from(v));
    }

    /// The folded 16-bit one's-complement sum. Zero only if everything added was zero.
    #[inline]
    pub fn fold(&self) -> u16 {
        fold64(self.acc)
    }

    /// The value a sender puts into a checksum field: the complement of [`fold`](Sum::fold).
    #[inline]
    pub fn checksum(&self) -> u16 {
        !self.fold()
    }
}

/// The Internet checksum of `data` alone (the value for its checksum field when that field
/// was zero while summing).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut s = Sum::new();
    s.add_bytes(data);
    s.checksum()
}

/// Folds a 64-bit sum of 16-bit values into 16 bits with end-around carries.
#[inline(always)]
fn fold64(a: u64) -> u16 {
    let a = (a & 0xffff_ffff) + (a >> 32); // <= 2^33 - 2
    let a = (a & 0xffff_ffff) + (a >> 32); // <= 2^32 - 1
    let a = (a & 0xffff) + (a >> 16); // <= 0x1_fffe
    let a = (a & 0xffff) + (a >> 16); // <= 0xffff
    (a & 0xffff) as u16
}

/// Bytes per block summed before folding: a multiple of 4, and at most 2^29 words each below
/// 2^32, so a block's sum stays below 2^61.
const BLOCK: usize = 1 << 31;

/// Folded sum of `data` as big-endian 16-bit words starting at an even offset, with an odd
/// last byte padded by a zero octet.
#[inline]
fn sum_slice(data: &[u8]) -> u16 {
    let folded = if data.len() <= BLOCK {
        fold64(sum_block_native(data))
    } else {
        let mut total: u64 = 0;
        for block in data.chunks(BLOCK) {
            total += u64::from(fold64(sum_block_native(block)));
        }
        fold64(total)
    };
    // The words were read in native order; on little-endian hosts that is the byte-swapped
    // sum (RFC 1071 §2(B)).
    if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    }
}

/// Sum of `block` read as native-endian `u32` words (the tail zero-padded), not folded.
#[inline(always)]
fn sum_block_native(block: &[u8]) -> u64 {
    // Eight independent lanes per 32-byte chunk: the compiler turns this into SIMD adds.
    let mut lanes = [0u64; 8];
    let mut chunks = block.chunks_exact(32);
    for c in &mut chunks {
        for (lane, w) in lanes.iter_mut().zip(c.chunks_exact(4)) {
            if let Some(w) = w.first_chunk::<4>() {
                *lane += u64::from(u32::from_ne_bytes(*w));
            }
        }
    }
    let mut acc: u64 = lanes.iter().sum();
    let mut words = chunks.remainder().chunks_exact(4);
    for w in &mut words {
        if let Some(w) = w.first_chunk::<4>() {
            acc += u64::from(u32::from_ne_bytes(*w));
        }
    }
    // An explicit match: a copy loop here compiles to a libc memcpy call per packet.
    let tail = match *words.remainder() {
        [a] => [a, 0, 0, 0],
        [a, b] => [a, b, 0, 0],
        [a, b, c] => [a, b, c, 0],
        _ => [0; 4],
    };
    acc + u64::from(u32::from_ne_bytes(tail))
}

/// Sum of the IPv4 pseudo-header (RFC 793 §3.1): addresses, protocol and the L4 length.
pub fn pseudo_ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> Sum {
    let mut s = Sum::new();
    s.add_u32(u32::from_be_bytes(src));
    s.add_u32(u32::from_be_bytes(dst));
    s.add_u16(u16::from(protocol));
    s.add_u16(length);
    s
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses, the 32-bit upper-layer length and
/// the next-header value of the upper layer.
pub fn pseudo_ipv6(src: [u8; 16], dst: [u8; 16], length: u32, next_header: u8) -> Sum {
    let mut s = Sum::new();
    for addr in [src, dst] {
        for w in addr.chunks_exact(4) {
            if let Some(w) = w.first_chunk::<4>() {
                s.add_u32(u32::from_be_bytes(*w));
            }
        }
    }
    s.add_u32(length);
    s.add_u16(u16::from(next_header));
    s
}

/// The addresses and protocol of a pseudo-header; the length comes from the verify call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PseudoHeader {
    /// IPv4 pseudo-header.
    V4 {
        /// Source address.
        src: [u8; 4],
        /// Destination address.
        dst: [u8; 4],
        /// IP protocol number of the upper layer (6 TCP, 17 UDP, ...).
        protocol: u8,
    },
    /// IPv6 pseudo-header.
    V6 {
        /// Source address.
        src: [u8; 16],
        /// Final destination address (the last routing-header address, if one is present).
        dst: [u8; 16],
        /// Next-header value of the upper layer (after extension headers): 6, 17, 58, ...
        next_header: u8,
    },
}

impl PseudoHeader {
    /// The pseudo-header's sum for an upper-layer length of `length` bytes.
    ///
    /// For IPv4 the length field is 16 bits; lengths above 65535 cannot come from an IPv4
    /// header and are added as a 32-bit value.
    pub fn sum(&self, length: u32) -> Sum {
        match *self {
            PseudoHeader::V4 { src, dst, protocol } => {
                let mut s = pseudo_ipv4(src, dst, protocol, 0);
                s.add_u32(length);
                s
            }
            PseudoHeader::V6 {
                src,
                dst,
                next_header,
            } => pseudo_ipv6(src, dst, length, next_header),
        }
    }
}

/// What a checksum field of zero means for the protocol being verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZeroChecksum {
    /// Zero is an ordinary one's-complement value (TCP, ICMP, ICMPv6, IGMP, IPv4 header).
    Allowed,
    /// Zero means "no checksum computed" ([`ChecksumStatus::Absent`]); a computed zero is sent
    /// as 0xFFFF (UDP over IPv4, RFC 768).
    MeansAbsent,
    /// Zero is never valid; a computed zero is sent as 0xFFFF (UDP over IPv6, RFC 8200 §8.1).
    Forbidden,
}

/// The outcome of checking a checksum.
///
/// netmon never drops a packet for its checksum; the status is recorded and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumStatus {
    /// The checksum verifies.
    Good,
    /// The checksum does not verify.
    Bad {
        /// The value in the checksum field.
        found: u16,
        /// The value the field should hold.
        expected: u16,
    },
    /// Not all bytes the checksum covers were captured (snaplen, or a length field that
    /// claims more than the frame holds), so it cannot be checked.
    Truncated,
    /// The segment is an IP fragment; its L4 checksum covers the reassembled datagram and
    /// cannot be checked here. (Set by the caller, which knows about fragmentation.)
    Fragmented,
    /// The field holds a partial checksum left for the NIC by transmit checksum offload, as
    /// seen in captures taken on the sending host.
    ///
    /// Detection: for checksums with a pseudo-header, the field equals the folded,
    /// *uncomplemented* pseudo-header sum — with the L4 length (what Linux and the BSDs store
    /// for `CHECKSUM_PARTIAL`) or with length 0 (what several TSO drivers expect). For the IPv4
    /// header checksum: the field is 0 (IP header checksum offload, as Wireshark notes).
    /// Either way the real checksum is wrong; a genuinely corrupt packet matches by chance with
    /// probability about 2^-16.
    Offloaded,
    /// The sender did not compute a checksum (UDP over IPv4 with checksum 0).
    Absent,
}

impl ChecksumStatus {
    /// A short, stable label for output and counters.
    pub const fn label(&self) -> &'static str {
        match self {
            ChecksumStatus::Good => "good",
            ChecksumStatus::Bad { .. } => "bad",
            ChecksumStatus::Truncated => "truncated",
            ChecksumStatus::Fragmented => "fragmented",
            ChecksumStatus::Offloaded => "offloaded",
            ChecksumStatus::Absent => "absent",
        }
    }

    /// Whether the checksum was checked and found wrong.
    pub const fn is_bad(&self) -> bool {
        matches!(self, ChecksumStatus::Bad { .. })
    }

    /// Whether the checksum was checked and found right.
    pub const fn is_good(&self) -> bool {
        matches!(self, ChecksumStatus::Good)
    }
}

/// Offset of the header checksum in an IPv4 header.
const IPV4_CHECKSUM_OFFSET: usize = 10;

/// Verifies an IPv4 header checksum. `header` is the header including options (IHL × 4
/// bytes); anything after it is ignored only if the caller trims it, so pass exactly the
/// header.
///
/// ```text
/// RFC 791 §3.1: "The checksum field is the 16 bit one's complement of the one's complement
/// sum of all 16 bit words in the header."
/// ```
///
/// A header shorter than 20 bytes is [`ChecksumStatus::Truncated`]. A wrong checksum whose
/// field is 0 is reported as [`ChecksumStatus::Offloaded`] (IPv4 checksum offload on the
/// capturing sender).
pub fn verify_ipv4_header(header: &[u8]) -> ChecksumStatus {
    if header.len() < 20 {
        return ChecksumStatus::Truncated;
    }
    match verify_inner(
        None,
        header,
        header.len(),
        IPV4_CHECKSUM_OFFSET,
        ZeroChecksum::Allowed,
    ) {
        ChecksumStatus::Bad { found: 0, .. } => ChecksumStatus::Offloaded,
        status => status,
    }
}

/// Verifies a checksum that covers a pseudo-header plus the L4 segment (TCP, UDP, UDP-Lite
/// with full coverage, ICMPv6).
///
/// - `segment`: the captured bytes of the L4 segment (header and payload). Bytes beyond
///   `declared_len` (e.g. Ethernet padding) are ignored.
/// - `declared_len`: the segment length from the IP header, which also goes into the
///   pseudo-header.
/// - `checksum_offset`: where the 16-bit checksum field sits in the segment (TCP 16, UDP 6,
///   ICMPv6 2).
/// - `zero`: what a zero field means ([`ZeroChecksum`]).
///
/// Returns [`ChecksumStatus::Truncated`] when fewer than `declared_len` bytes were captured
/// (or the field itself is missing), [`ChecksumStatus::Absent`] for a zero field under
/// [`ZeroChecksum::MeansAbsent`] (even if truncated), and [`ChecksumStatus::Offloaded`] for a
/// partial checksum (see its docs). Never [`ChecksumStatus::Fragmented`]: the caller decides
/// that before calling.
pub fn verify_transport(
    pseudo: PseudoHeader,
    segment: &[u8],
    declared_len: usize,
    checksum_offset: usize,
    zero: ZeroChecksum,
) -> ChecksumStatus {
    let length = u32::try_from(declared_len).unwrap_or(u32::MAX);
    let pseudo_sum = pseudo.sum(length);
    match verify_inner(
        Some(pseudo_sum),
        segment,
        declared_len,
        checksum_offset,
        zero,
    ) {
        ChecksumStatus::Bad { found, expected } => {
            if found == pseudo_sum.fold() || found == pseudo.sum(0).fold() {
                ChecksumStatus::Offloaded
            } else {
                ChecksumStatus::Bad { found, expected }
            }
        }
        status => status,
    }
}

/// Verifies a checksum without pseudo-header over a whole message (ICMPv4, IGMP): `message`
/// is the captured message, `declared_len` its length from the IP header, `checksum_offset`
/// the field's offset (2 for both). Zero is an ordinary value.
pub fn verify_plain(message: &[u8], declared_len: usize, checksum_offset: usize) -> ChecksumStatus {
    verify_inner(
        None,
        message,
        declared_len,
        checksum_offset,
        ZeroChecksum::Allowed,
    )
}

/// Shared verification. The fast path sums everything once, including the field (RFC 1071
/// §1: a good checksum makes that all ones); only a failing check sums again without the
/// field to report the expected value exactly.
fn verify_inner(
    start: Option<Sum>,
    data: &[u8],
    declared_len: usize,
    checksum_offset: usize,
    zero: ZeroChecksum,
) -> ChecksumStatus {
    let Some(found) = be16(data, checksum_offset) else {
        return ChecksumStatus::Truncated;
    };
    if found == 0 && zero == ZeroChecksum::MeansAbsent {
        return ChecksumStatus::Absent;
    }
    let covered = data.get(..declared_len).unwrap_or(data);
    if covered.len() < declared_len {
        return ChecksumStatus::Truncated;
    }
    let start = start.unwrap_or_default();
    let field_end = checksum_offset.saturating_add(2);
    let field_covered = field_end <= declared_len;
    if field_covered && !(found == 0 && zero == ZeroChecksum::Forbidden) {
        let mut all = start;
        all.add_bytes(covered);
        if all.fold() == 0xffff {
            return ChecksumStatus::Good;
        }
    }
    // Slow path: the sum without the field (exact, including the +0/-0 distinction).
    let mut s = start;
    if field_covered {
        s.add_bytes(covered.get(..checksum_offset).unwrap_or_default());
        // Skipping the two field bytes keeps the byte parity the same.
        s.add_bytes(covered.get(field_end..).unwrap_or_default());
    } else {
        // A declared length that ends before the field: the field is not covered, so it can't
        // verify; report what the covered bytes would need.
        s.add_bytes(covered);
    }
    let mut expected = !s.fold();
    if expected == 0 && zero != ZeroChecksum::Allowed {
        expected = 0xffff;
    }
    ChecksumStatus::Bad { found, expected }
}

/// Test-only access to the capture corpus (shared by the checksum, ICMP and IGMP tests).
#[cfg(test)]
pub(crate) mod corpus {
    use std::path::PathBuf;

    /// The corpus directory (see `netmon_testkit::corpus`): `None` when skipped.
    pub(crate) fn dir() -> Option<PathBuf> {
        netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).map(|c| c.dir().to_path_buf())
    }

    /// One IP packet of a corpus frame, decoded by etherparse (lax).
    #[derive(Debug)]
    pub(crate) struct IpFrame {
        /// IPv4 header bytes (empty for IPv6).
        pub(crate) ipv4_header: Vec<u8>,
        /// Source address bytes (4 or 16).
        pub(crate) src: Vec<u8>,
        /// Destination address bytes (4 or 16).
        pub(crate) dst: Vec<u8>,
        /// Upper-layer protocol after extension headers.
        pub(crate) protocol: u8,
        /// Captured upper-layer bytes, trimmed to the declared length.
        pub(crate) payload: Vec<u8>,
        /// Upper-layer length declared by the IP header(s).
        pub(crate) declared_len: usize,
    }

    /// Reads a classic pcap file and returns, per frame (index 0 = frame 1), its IP packet.
    pub(crate) fn ip_frames(file: &str) -> Option<Vec<Option<IpFrame>>> {
        let Some(dir) = dir() else {
            eprintln!("corpus not found; skipping {file}");
            return None;
        };
        let data = std::fs::read(dir.join(file)).expect("corpus file");
        let le = match data[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
            _ => panic!("{file}: not a classic pcap"),
        };
        let u32_at = |at: usize| {
            let b: [u8; 4] = data[at..at + 4].try_into().unwrap();
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let linktype = u32_at(20);
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= data.len() {
            let incl = u32_at(at + 8) as usize;
            let frame = &data[at + 16..at + 16 + incl];
            at += 16 + incl;
            out.push(decode(linktype, frame));
        }
        Some(out)
    }

    fn decode(linktype: u32, frame: &[u8]) -> Option<IpFrame> {
        use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket};
        let p = match linktype {
            1 => LaxSlicedPacket::from_ethernet(frame).ok()?,
            113 => LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([frame[14], frame[15]])),
                &frame[16..],
            ),
            _ => panic!("unexpected linktype {linktype}"),
        };
        let (ipv4_header, src, dst, declared_len, pl) = match p.net? {
            LaxNetSlice::Ipv4(v4) => {
                let h = v4.header();
                let declared = usize::from(h.total_len()).saturating_sub(h.slice().len())
                    - v4.extensions().auth.map_or(0, |a| a.slice().len());
                (
                    h.slice().to_vec(),
                    h.source().to_vec(),
                    h.destination().to_vec(),
                    declared,
                    v4.payload().clone(),
                )
            }
            LaxNetSlice::Ipv6(v6) => {
                let h = v6.header();
                let declared =
                    usize::from(h.payload_length()).saturating_sub(v6.extensions().slice().len());
                (
                    Vec::new(),
                    h.source().to_vec(),
                    h.destination().to_vec(),
                    declared,
                    v6.payload().clone(),
                )
            }
            LaxNetSlice::Arp(_) => return None,
        };
        Some(IpFrame {
            ipv4_header,
            src,
            dst,
            protocol: pl.ip_number.0,
            payload: pl.payload.to_vec(),
            declared_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: RFC 1071 summed 16 bits at a time, one byte at a time.
    fn naive_sum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for (i, b) in data.iter().enumerate() {
            s += if i % 2 == 0 {
                u32::from(*b) << 8
            } else {
                u32::from(*b)
            };
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (one's complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut s = Sum::new();
        s.add_bytes(&data);
        assert_eq!(s.fold(), 0xddf2);
        assert_eq!(s.checksum(), 0x220d);
        assert_eq!(internet_checksum(&data), 0x220d);
        // The same sum, added in odd-length pieces.
        let mut s = Sum::new();
        s.add_bytes(&data[..3]);
        s.add_bytes(&data[3..4]);
        s.add_bytes(&data[4..]);
        assert_eq!(s.fold(), 0xddf2);
        // And as values.
        let mut s = Sum::new();
        s.add_u32(0x0001_f203);
        s.add_u16(0xf4f5);
        s.add_u16(0xf6f7);
        assert_eq!(s.fold(), 0xddf2);
    }

    #[test]
    fn folding_edges() {
        assert_eq!(Sum::new().fold(), 0);
        assert_eq!(internet_checksum(&[]), 0xffff);
        // Odd length: the last byte is the high octet of a zero-padded word.
        assert_eq!(naive_sum(&[0xab]), 0xab00);
        let mut s = Sum::new();
        s.add_bytes(&[0xab]);
        assert_eq!(s.fold(), 0xab00);
        // Carries wrap around: ffff + 0001 = 0001 in one's complement.
        let mut s = Sum::new();
        s.add_bytes(&[0xff, 0xff, 0x00, 0x01]);
        assert_eq!(s.fold(), 0x0001);
        // Many all-ones words stay 0xffff (-0), never become +0.
        let mut s = Sum::new();
        s.add_bytes(&[0xff; 4096]);
        assert_eq!(s.fold(), 0xffff);
        let mut s = Sum::new();
        for _ in 0..100_000 {
            s.add_u32(u32::MAX);
        }
        assert_eq!(s.fold(), 0xffff);
    }

    proptest! {
        #[test]
        fn fast_sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..3000),
                                  start in 0usize..8, cut in 0usize..3000) {
            // Odd and even starting offsets into the buffer (alignment) and lengths.
            let start = start.min(data.len());
            let d = &data[start..];
            let mut s = Sum::new();
            s.add_bytes(d);
            prop_assert_eq!(s.fold(), naive_sum(d));
            // Any split point gives the same sum (byte-parity tracking).
            let cut = cut.min(d.len());
            let mut s2 = Sum::new();
            s2.add_bytes(&d[..cut]);
            s2.add_bytes(&d[cut..]);
            prop_assert_eq!(s2.fold(), naive_sum(d));
        }

        #[test]
        fn verify_plain_roundtrip(mut msg in proptest::collection::vec(any::<u8>(), 4..600),
                                  flip in any::<prop::sample::Index>()) {
            msg[2] = 0;
            msg[3] = 0;
            let c = internet_checksum(&msg);
            msg[2..4].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(verify_plain(&msg, msg.len(), 2), ChecksumStatus::Good);
            // Flipping one bit anywhere (even in the field) breaks it.
            let i = flip.index(msg.len());
            msg[i] ^= 0x10;
            prop_assert!(verify_plain(&msg, msg.len(), 2).is_bad());
        }

        #[test]
        fn verify_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64),
                               declared in 0usize..80, off in 0usize..70,
                               src in any::<[u8; 16]>(), dst in any::<[u8; 16]>()) {
            let _ = verify_plain(&data, declared, off);
            let _ = verify_ipv4_header(&data);
            for zero in [ZeroChecksum::Allowed, ZeroChecksum::MeansAbsent, ZeroChecksum::Forbidden] {
                let _ = verify_transport(PseudoHeader::V6 { src, dst, next_header: 17 },
                    &data, declared, off, zero);
            }
            let _ = verify_inner(None, &data, usize::MAX, usize::MAX, ZeroChecksum::Allowed);
        }
    }

    #[test]
    fn ipv4_header_vectors() {
        // A well-known IPv4 header (Wikipedia "IPv4 header checksum" example): checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(verify_ipv4_header(&h), ChecksumStatus::Good);
        h[8] = 0x3f; // TTL 63: now wrong by 0x0100
        assert_eq!(
            verify_ipv4_header(&h),
            ChecksumStatus::Bad {
                found: 0xb861,
                expected: 0xb961
            }
        );
        h[10] = 0;
        h[11] = 0;
        assert_eq!(verify_ipv4_header(&h), ChecksumStatus::Offloaded);
        assert_eq!(verify_ipv4_header(&h[..19]), ChecksumStatus::Truncated);
    }

    #[test]
    fn udp_zero_rules() {
        let src = [10, 0, 0, 1];
        let dst = [10, 0, 0, 2];
        // UDP header, ports 1000 -> 2000, length 10, checksum 0, 2 bytes payload.
        let mut seg = [0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0a, 0x00, 0x00, 0xab, 0xcd];
        let v4 = PseudoHeader::V4 {
            src,
            dst,
            protocol: 17,
        };
        assert_eq!(
            verify_transport(v4, &seg, 10, 6, ZeroChecksum::MeansAbsent),
            ChecksumStatus::Absent
        );
        // Absent even when the capture is short, as long as the field is there.
        assert_eq!(
            verify_transport(v4, &seg[..8], 10, 6, ZeroChecksum::MeansAbsent),
            ChecksumStatus::Absent
        );
        assert_eq!(
            verify_transport(v4, &seg[..5], 10, 6, ZeroChecksum::MeansAbsent),
            ChecksumStatus::Truncated
        );
        let mut s = v4.sum(10);
        s.add_bytes(&seg);
        let c = s.checksum();
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            verify_transport(v4, &seg, 10, 6, ZeroChecksum::MeansAbsent),
            ChecksumStatus::Good
        );
        assert_eq!(
            verify_transport(v4, &seg[..9], 10, 6, ZeroChecksum::MeansAbsent),
            ChecksumStatus::Truncated
        );
        // Trailing bytes beyond the declared length (Ethernet padding) are ignored.
        let mut padded = seg.to_vec();
        padded.extend_from_slice(&[0x55; 6]);
        assert_eq!(
            verify_transport(v4, &padded, 10, 6, ZeroChecksum::MeansAbsent),
            ChecksumStatus::Good
        );

        // IPv6: a zero field is Bad, and a computed 0 is expected as 0xFFFF.
        // Choose payload bytes so the checksum computes to exactly 0: first find the sum.
        let v6 = PseudoHeader::V6 {
            src: [0x20; 16],
            dst: [0x30; 16],
            next_header: 17,
        };
        let mut seg6 = [0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00];
        let mut s = v6.sum(10);
        s.add_bytes(&seg6);
        // Put the complement of the sum into the payload so the total becomes 0xFFFF -> checksum 0.
        let fill = !s.fold();
        seg6[8..10].copy_from_slice(&fill.to_be_bytes());
        let mut s = v6.sum(10);
        s.add_bytes(&seg6);
        assert_eq!(s.checksum(), 0);
        assert_eq!(
            verify_transport(v6, &seg6, 10, 6, ZeroChecksum::Forbidden),
            ChecksumStatus::Bad {
                found: 0,
                expected: 0xffff
            }
        );
        seg6[6..8].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(
            verify_transport(v6, &seg6, 10, 6, ZeroChecksum::Forbidden),
            ChecksumStatus::Good
        );
        // For TCP-like rules a computed 0 is expected as 0 and 0xFFFF is equivalent.
        assert_eq!(
            verify_transport(v6, &seg6, 10, 6, ZeroChecksum::Allowed),
            ChecksumStatus::Good
        );
        seg6[6..8].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(
            verify_transport(v6, &seg6, 10, 6, ZeroChecksum::Allowed),
            ChecksumStatus::Bad {
                found: 0x1234,
                expected: 0
            }
        );
    }

    #[test]
    fn offload_detection() {
        let v4 = PseudoHeader::V4 {
            src: [192, 168, 1, 10],
            dst: [93, 184, 216, 34],
            protocol: 6,
        };
        // A 20-byte TCP header (checksum at 16) plus 5 payload bytes.
        let mut seg = vec![0u8; 25];
        seg[..4].copy_from_slice(&[0xc3, 0x50, 0x01, 0xbb]);
        seg[12] = 0x50;
        seg[13] = 0x18;
        seg[20..].copy_from_slice(b"hello");
        // Linux CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum incl. length.
        let partial = v4.sum(25).fold();
        seg[16..18].copy_from_slice(&partial.to_be_bytes());
        assert_eq!(
            verify_transport(v4, &seg, 25, 16, ZeroChecksum::Allowed),
            ChecksumStatus::Offloaded
        );
        // TSO drivers: pseudo-header sum with length 0.
        let partial0 = v4.sum(0).fold();
        seg[16..18].copy_from_slice(&partial0.to_be_bytes());
        assert_eq!(
            verify_transport(v4, &seg, 25, 16, ZeroChecksum::Allowed),
            ChecksumStatus::Offloaded
        );
        // Any other wrong value is Bad, with the right value as `expected`.
        seg[16..18].copy_from_slice(&[0, 0]);
        let mut s = v4.sum(25);
        s.add_bytes(&seg);
        let right = s.checksum();
        seg[16..18].copy_from_slice(&partial.wrapping_add(1).to_be_bytes());
        assert_eq!(
            verify_transport(v4, &seg, 25, 16, ZeroChecksum::Allowed),
            ChecksumStatus::Bad {
                found: partial.wrapping_add(1),
                expected: right
            }
        );
        seg[16..18].copy_from_slice(&right.to_be_bytes());
        assert_eq!(
            verify_transport(v4, &seg, 25, 16, ZeroChecksum::Allowed),
            ChecksumStatus::Good
        );
    }

    #[test]
    fn labels() {
        let all = [
            ChecksumStatus::Good,
            ChecksumStatus::Bad {
                found: 1,
                expected: 2,
            },
            ChecksumStatus::Truncated,
            ChecksumStatus::Fragmented,
            ChecksumStatus::Offloaded,
            ChecksumStatus::Absent,
        ];
        let labels: Vec<_> = all.iter().map(|s| s.label()).collect();
        assert_eq!(
            labels,
            [
                "good",
                "bad",
                "truncated",
                "fragmented",
                "offloaded",
                "absent"
            ]
        );
        assert_eq!(
            all.iter().map(|s| s.is_bad()).collect::<Vec<_>>(),
            [false, true, false, false, false, false]
        );
        assert!(all[0].is_good() && !all[2].is_good());
    }

    /// The walker's view of the L4 segment inside an etherparse-built frame.
    fn l4_of(frame: &[u8]) -> (PseudoHeader, Vec<u8>, u8) {
        let p = etherparse::LaxSlicedPacket::from_ethernet(frame).unwrap();
        match p.net.unwrap() {
            etherparse::LaxNetSlice::Ipv4(v4) => {
                let h = v4.header();
                let pl = v4.payload();
                (
                    PseudoHeader::V4 {
                        src: h.source(),
                        dst: h.destination(),
                        protocol: pl.ip_number.0,
                    },
                    pl.payload.to_vec(),
                    pl.ip_number.0,
                )
            }
            etherparse::LaxNetSlice::Ipv6(v6) => {
                let h = v6.header();
                let pl = v6.payload();
                (
                    PseudoHeader::V6 {
                        src: h.source(),
                        dst: h.destination(),
                        next_header: pl.ip_number.0,
                    },
                    pl.payload.to_vec(),
                    pl.ip_number.0,
                )
            }
            etherparse::LaxNetSlice::Arp(_) => unreachable!(),
        }
    }

    #[test]
    fn etherparse_built_packets_verify() {
        use etherparse::PacketBuilder;
        let payload: Vec<u8> = (0..=200u8).collect(); // odd length on purpose
        let mac = [0u8; 6];
        let mut frames = Vec::new();
        let b = PacketBuilder::ethernet2(mac, mac)
            .ipv4([10, 1, 2, 3], [172, 16, 0, 9], 64)
            .tcp(40000, 443, 0x1234_5678, 1024)
            .ack(77);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        frames.push((f, 16, ZeroChecksum::Allowed));
        let b = PacketBuilder::ethernet2(mac, mac)
            .ipv4([10, 1, 2, 3], [172, 16, 0, 9], 64)
            .udp(5353, 53);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        frames.push((f, 6, ZeroChecksum::MeansAbsent));
        let b = PacketBuilder::ethernet2(mac, mac)
            .ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xfe; 16],
                64,
            )
            .udp(5353, 53);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        frames.push((f, 6, ZeroChecksum::Forbidden));
        let b = PacketBuilder::ethernet2(mac, mac)
            .ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xfe; 16],
                64,
            )
            .tcp(1, 2, 3, 4)
            .syn();
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        frames.push((f, 16, ZeroChecksum::Allowed));
        let b = PacketBuilder::ethernet2(mac, mac)
            .ipv6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xff; 16],
                255,
            )
            .icmpv6_echo_request(0x42, 7);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        frames.push((f, 2, ZeroChecksum::Allowed));

        for (mut frame, off, zero) in frames {
            let (pseudo, seg, _) = l4_of(&frame);
            assert_eq!(
                verify_transport(pseudo, &seg, seg.len(), off, zero),
                ChecksumStatus::Good,
                "{pseudo:?}"
            );
            let found = u16::from_be_bytes([seg[off], seg[off + 1]]);
            // Flip the last payload byte.
            let last = frame.len() - 1;
            frame[last] ^= 0x01;
            let (pseudo, seg, _) = l4_of(&frame);
            let st = verify_transport(pseudo, &seg, seg.len(), off, zero);
            assert!(st.is_bad(), "{pseudo:?}: {st:?}");
            assert!(matches!(st, ChecksumStatus::Bad { found: f, .. } if f == found));
            // A short capture of it is Truncated, not Bad.
            assert_eq!(
                verify_transport(pseudo, &seg[..seg.len() - 1], seg.len(), off, zero),
                ChecksumStatus::Truncated
            );
        }

        // ICMPv4 (no pseudo-header) built by etherparse verifies with verify_plain.
        let b = PacketBuilder::ethernet2(mac, mac)
            .ipv4([10, 1, 2, 3], [172, 16, 0, 9], 64)
            .icmpv4_echo_request(9, 10);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        let (_, seg, proto) = l4_of(&f);
        assert_eq!(proto, 1);
        assert_eq!(verify_plain(&seg, seg.len(), 2), ChecksumStatus::Good);
        let mut seg = seg;
        seg[100] ^= 0xff;
        assert!(verify_plain(&seg, seg.len(), 2).is_bad());
    }

    #[test]
    fn corpus_checksums_match_tshark() {
        // zeek_icmp-destunreach-udp.pcap frame 1: tshark shows the ICMP checksum 0x03bb
        // [correct] over a 156-byte message.
        if let Some(frames) = corpus::ip_frames("zeek_icmp-destunreach-udp.pcap") {
            let f = frames[0].as_ref().unwrap();
            assert_eq!(f.payload.len(), 156);
            assert_eq!(
                verify_plain(&f.payload, f.declared_len, 2),
                ChecksumStatus::Good
            );
            assert_eq!(verify_ipv4_header(&f.ipv4_header), ChecksumStatus::Good);
        }
        // tcpdump_icmp-cksum-oobr-1.pcap frame 1: IPv4 total length 13911 but 188 bytes
        // captured. tshark: "Checksum: 0x90c2 incorrect, should be 0x5770" (it sums what was
        // captured). We call it Truncated; over the captured bytes we agree with tshark.
        if let Some(frames) = corpus::ip_frames("tcpdump_icmp-cksum-oobr-1.pcap") {
            let f = frames[0].as_ref().unwrap();
            assert_eq!(f.declared_len, 13911 - 20);
            assert_eq!(
                verify_plain(&f.payload, f.declared_len, 2),
                ChecksumStatus::Truncated
            );
            assert_eq!(
                verify_plain(&f.payload, f.payload.len(), 2),
                ChecksumStatus::Bad {
                    found: 0x90c2,
                    expected: 0x5770
                }
            );
        }
        // zeek_communityid-icmp6.pcap: tshark reports icmpv6.checksum.status Good (1) for all
        // 49 frames.
        if let Some(frames) = corpus::ip_frames("zeek_communityid-icmp6.pcap") {
            assert_eq!(frames.len(), 49);
            for (i, f) in frames.iter().enumerate() {
                let f = f.as_ref().unwrap();
                assert_eq!(f.protocol, 58);
                let pseudo = PseudoHeader::V6 {
                    src: f.src.clone().try_into().unwrap(),
                    dst: f.dst.clone().try_into().unwrap(),
                    next_header: 58,
                };
                assert_eq!(
                    verify_transport(pseudo, &f.payload, f.declared_len, 2, ZeroChecksum::Allowed),
                    ChecksumStatus::Good,
                    "frame {}",
                    i + 1
                );
            }
        }
        // tcpdump_IGMP_V2.pcap: tshark shows igmp.checksum.status Good for all 18 frames,
        // e.g. frame 1 checksum 0xee9b.
        if let Some(frames) = corpus::ip_frames("tcpdump_IGMP_V2.pcap") {
            assert_eq!(frames.len(), 18);
            for f in &frames {
                let f = f.as_ref().unwrap();
                assert_eq!(
                    verify_plain(&f.payload, f.declared_len, 2),
                    ChecksumStatus::Good
                );
            }
        }
    }
}
