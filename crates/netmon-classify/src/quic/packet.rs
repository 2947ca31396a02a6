//! QUIC packet headers: variable-length integers, long headers, versions (RFC 8999, RFC 9000
//! §16-17, RFC 9369 §3), and the legacy Google QUIC public header.

use super::{QUIC_V1, QUIC_V2, QUIC_V2_DRAFT};

/// Longest connection ID of QUIC v1 and v2 (RFC 9000 §17.2: "MUST NOT exceed 20 bytes").
pub const MAX_CID_LEN: usize = 20;

/// Reads a variable-length integer (RFC 9000 §16): the two high bits of the first byte give
/// the length (1, 2, 4 or 8 bytes), the rest is the big-endian value. Returns the value and
/// the bytes consumed.
///
/// ```text
/// 2MSB | Length | Usable Bits | Range
/// 00   | 1      | 6           | 0-63
/// 01   | 2      | 14          | 0-16383
/// 10   | 4      | 30          | 0-1073741823
/// 11   | 8      | 62          | 0-4611686018427387903
/// ```
pub fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for x in bytes.iter().skip(1) {
        v = (v << 8) | u64::from(*x);
    }
    Some((v, len))
}

/// A byte cursor over hostile input: every read is bounds-checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let v = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(v)
    }
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let (v, n) = read_varint(self.buf.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }
    /// A varint used as a length: must fit `usize`.
    pub(crate) fn varint_len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }
}

/// What a QUIC version number says about the protocol in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuicVersionKind {
    /// QUIC version 1 (RFC 9000), `0x00000001`.
    V1,
    /// QUIC version 2 (RFC 9369), `0x6b3343cf`.
    V2,
    /// The provisional codepoint of the QUIC v2 drafts, `0x709a50c4`.
    V2Draft,
    /// An IETF draft version `0xff0000NN`; the draft number `NN`.
    IetfDraft(u8),
    /// Google QUIC: `Q0NN` (e.g. Q043, Q046, Q050) or `T0NN` (e.g. T051) in ASCII.
    Gquic,
    /// Facebook's mvfst versions `0xfaceb0NN`.
    Mvfst,
    /// A reserved version `0x?a?a?a?a` (RFC 9000 §15), sent to force version negotiation.
    Reserved,
    /// A Version Negotiation packet (version 0).
    VersionNegotiation,
}

impl QuicVersionKind {
    /// Classifies a version number; `None` for versions this module does not know.
    pub fn of(version: u32) -> Option<QuicVersionKind> {
        let [a, b, c, d] = version.to_be_bytes();
        Some(match version {
            0 => QuicVersionKind::VersionNegotiation,
            QUIC_V1 => QuicVersionKind::V1,
            QUIC_V2 => QuicVersionKind::V2,
            QUIC_V2_DRAFT => QuicVersionKind::V2Draft,
            v if v & 0xffff_ff00 == 0xff00_0000 => QuicVersionKind::IetfDraft(d),
            v if v & 0xffff_ff00 == 0xface_b000 => QuicVersionKind::Mvfst,
            v if v & 0x0f0f_0f0f == 0x0a0a_0a0a => QuicVersionKind::Reserved,
            _ if (a == b'Q' || a == b'T')
                && b.is_ascii_digit()
                && c.is_ascii_digit()
                && d.is_ascii_digit() =>
            {
                QuicVersionKind::Gquic
            }
            _ => return None,
        })
    }

    /// Whether packets of this version use the IETF long header layout (RFC 9000 §17.2):
    /// separate DCID/SCID length bytes, and Initial/0-RTT/Handshake packets with a Length
    /// field, so coalesced packets can be walked.
    pub fn is_ietf_layout(self) -> bool {
        matches!(
            self,
            QuicVersionKind::V1
                | QuicVersionKind::V2
                | QuicVersionKind::V2Draft
                | QuicVersionKind::IetfDraft(_)
                | QuicVersionKind::Mvfst
        )
    }
}

/// The type of a long-header packet (RFC 9000 §17.2, RFC 9369 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LongPacketType {
    /// Initial: carries the ClientHello / ServerHello in CRYPTO frames.
    Initial,
    /// 0-RTT.
    ZeroRtt,
    /// Handshake.
    Handshake,
    /// Retry: the server asks the client to start again with a token and a new DCID.
    Retry,
}

impl LongPacketType {
    /// The type of a long header's first byte, for versions whose numbering is known: bits
    /// `0x30` are 0 Initial, 1 0-RTT, 2 Handshake, 3 Retry in v1 and the drafts; v2 rotates
    /// them (Initial 1, 0-RTT 2, Handshake 3, Retry 0).
    pub fn of(kind: QuicVersionKind, first: u8) -> Option<LongPacketType> {
        let bits = (first >> 4) & 0x03;
        let v1 = match kind {
            QuicVersionKind::V1 | QuicVersionKind::IetfDraft(_) | QuicVersionKind::Mvfst => bits,
            QuicVersionKind::V2 | QuicVersionKind::V2Draft => (bits + 3) & 0x03,
            _ => return None,
        };
        Some(match v1 {
            0 => LongPacketType::Initial,
            1 => LongPacketType::ZeroRtt,
            2 => LongPacketType::Handshake,
            _ => LongPacketType::Retry,
        })
    }
}

/// What [`looks_like_quic`](super::looks_like_quic) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuicVersionInfo {
    /// The version field (0 for Version Negotiation).
    pub version: u32,
    /// What the version means.
    pub kind: QuicVersionKind,
    /// The long-header packet type, for versions whose numbering is known (v1, v2, drafts,
    /// mvfst). `None` for Google QUIC, reserved versions and Version Negotiation.
    pub packet_type: Option<LongPacketType>,
}

/// The version-independent part of a long header (RFC 8999 §5.1, RFC 9000 §17.2):
///
/// ```text
/// Long Header Packet {
///   Header Form (1) = 1,
///   Fixed Bit (1) = 1,
///   Long Packet Type (2),
///   Type-Specific Bits (4),
///   Version (32),
///   Destination Connection ID Length (8),
///   Destination Connection ID (0..160),
///   Source Connection ID Length (8),
///   Source Connection ID (0..160),
///   Type-Specific Payload (..),
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub(crate) struct LongHeader<'a> {
    pub(crate) first: u8,
    pub(crate) version: u32,
    pub(crate) dcid: &'a [u8],
    pub(crate) scid: &'a [u8],
    /// Offset of the type-specific payload.
    pub(crate) rest: usize,
}

/// Parses the invariant long header at the start of `b`. Connection IDs longer than
/// `max_cid` are refused (20 for QUIC v1/v2; the invariants allow 255).
pub(crate) fn parse_long_header(b: &[u8], max_cid: usize) -> Option<LongHeader<'_>> {
    let mut c = Cursor::new(b);
    let first = c.u8()?;
    if first & 0x80 == 0 {
        return None;
    }
    let version = c.u32()?;
    let dl = usize::from(c.u8()?);
    if dl > max_cid {
        return None;
    }
    let dcid = c.bytes(dl)?;
    let sl = usize::from(c.u8()?);
    if sl > max_cid {
        return None;
    }
    let scid = c.bytes(sl)?;
    Some(LongHeader {
        first,
        version,
        dcid,
        scid,
        rest: c.pos(),
    })
}

/// The layout of an Initial, 0-RTT or Handshake packet after the connection IDs (RFC 9000
/// §17.2.2-17.2.4):
///
/// ```text
/// Initial Packet {
///   ... long header, Long Packet Type = Initial ...
///   Token Length (i),
///   Token (..),
///   Length (i),
///   Packet Number (8..32),
///   Packet Payload (8..),
/// }
/// 0-RTT / Handshake Packet {
///   ... long header ...
///   Length (i),
///   Packet Number (8..32),
///   Packet Payload (8..),
/// }
/// ```
///
/// `Length` covers the packet number and the payload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LengthFramed {
    /// Offset of the (protected) packet number.
    pub(crate) pn_offset: usize,
    /// Offset just past the packet (`pn_offset + Length`); may exceed the buffer when the
    /// capture cut the packet.
    pub(crate) end: usize,
}

pub(crate) fn parse_length_framed(
    b: &[u8],
    h: &LongHeader<'_>,
    ty: LongPacketType,
) -> Option<LengthFramed> {
    let mut c = Cursor::new(b);
    c.bytes(h.rest)?;
    match ty {
        LongPacketType::Initial => {
            let n = c.varint_len()?; // Token Length
            c.bytes(n)?; // Token
        }
        LongPacketType::ZeroRtt | LongPacketType::Handshake => {}
        LongPacketType::Retry => return None,
    }
    let len = c.varint_len()?;
    let pn_offset = c.pos();
    Some(LengthFramed {
        pn_offset,
        end: pn_offset.checked_add(len)?,
    })
}

/// The first packet of a Google QUIC connection up to Q043 uses the "public header":
///
/// ```text
/// Public Flags (8): 0x01 version present, 0x02 public reset, 0x04 diversification nonce,
///                   0x08 8-byte connection ID present, 0x30 packet number length,
///                   0x40 multipath, 0x80 reserved (0)
/// Connection ID (64), present when flag 0x08
/// Version (32), present when flag 0x01 (client packets before negotiation): "Q043", ...
/// Packet Number (8..48)
/// ```
fn legacy_gquic_version(b: &[u8]) -> Option<u32> {
    let flags = *b.first()?;
    if flags & 0x80 != 0 || flags & 0x0b != 0x09 {
        return None;
    }
    let v = u32::from_be_bytes(b.get(9..13)?.try_into().ok()?);
    (QuicVersionKind::of(v) == Some(QuicVersionKind::Gquic)).then_some(v)
}

/// Recognises the first QUIC packet of a UDP datagram by its version (see
/// [`looks_like_quic`](super::looks_like_quic)).
pub(crate) fn detect(b: &[u8]) -> Option<QuicVersionInfo> {
    let first = *b.first()?;
    if first & 0x80 == 0 {
        let version = legacy_gquic_version(b)?;
        return Some(QuicVersionInfo {
            version,
            kind: QuicVersionKind::Gquic,
            packet_type: None,
        });
    }
    let version = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?);
    let kind = QuicVersionKind::of(version)?;
    match kind {
        QuicVersionKind::Gquic => {
            // Q046 and later carry the version in a long header; their connection ID
            // encoding changed between releases, so only the version is checked.
            return Some(QuicVersionInfo {
                version,
                kind,
                packet_type: None,
            });
        }
        QuicVersionKind::VersionNegotiation => {
            // RFC 8999 §6: connection IDs up to 255 bytes, then a list of 32-bit versions.
            // Version 0 with a list is a weak signature (a DNS header with ID 0x??00 and
            // zero flags matches it), so every listed version must be one this module
            // knows (servers list v1, v2, drafts, gQUIC and greased reserved versions).
            let h = parse_long_header(b, 255)?;
            let list = b.get(h.rest..)?;
            if list.is_empty() || list.len() % 4 != 0 {
                return None;
            }
            let known = list.chunks_exact(4).all(|v| {
                let v = u32::from_be_bytes(v.try_into().unwrap_or([0; 4]));
                !matches!(
                    QuicVersionKind::of(v),
                    None | Some(QuicVersionKind::VersionNegotiation)
                )
            });
            if !known {
                return None;
            }
            return Some(QuicVersionInfo {
                version,
                kind,
                packet_type: None,
            });
        }
        _ => {}
    }
    // IETF-style versions: the fixed bit is set (RFC 9000 §17.2; a greased QUIC bit,
    // RFC 9287, is only allowed once the peer advertised support, which never applies to
    // a client's first packets) and connection IDs are at most 20 bytes.
    if first & 0x40 == 0 {
        return None;
    }
    let h = parse_long_header(b, MAX_CID_LEN)?;
    let packet_type = LongPacketType::of(kind, first);
    if let Some(
        ty @ (LongPacketType::Initial | LongPacketType::ZeroRtt | LongPacketType::Handshake),
    ) = packet_type
    {
        // The token and Length varints must be present; the packet itself may be cut by
        // the capture's snaplen.
        parse_length_framed(b, &h, ty)?;
    }
    Some(QuicVersionInfo {
        version,
        kind,
        packet_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_rfc9000_a1() {
        // RFC 9000 §A.1 examples.
        assert_eq!(
            read_varint(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]),
            Some((151_288_809_941_952_652, 8))
        );
        assert_eq!(
            read_varint(&[0x9d, 0x7f, 0x3e, 0x7d]),
            Some((494_878_333, 4))
        );
        assert_eq!(read_varint(&[0x7b, 0xbd]), Some((15_293, 2)));
        assert_eq!(read_varint(&[0x25]), Some((37, 1)));
        assert_eq!(read_varint(&[0x40, 0x25]), Some((37, 2)));
        // Truncated encodings.
        assert_eq!(read_varint(&[]), None);
        assert_eq!(read_varint(&[0x40]), None);
        assert_eq!(read_varint(&[0xc2, 0x19, 0x7c]), None);
    }

    #[test]
    fn version_kinds() {
        use QuicVersionKind as K;
        assert_eq!(K::of(1), Some(K::V1));
        assert_eq!(K::of(0x6b33_43cf), Some(K::V2));
        assert_eq!(K::of(0x709a_50c4), Some(K::V2Draft));
        assert_eq!(K::of(0xff00_001d), Some(K::IetfDraft(29)));
        assert_eq!(K::of(u32::from_be_bytes(*b"Q046")), Some(K::Gquic));
        assert_eq!(K::of(u32::from_be_bytes(*b"T051")), Some(K::Gquic));
        assert_eq!(K::of(u32::from_be_bytes(*b"Q04x")), None);
        assert_eq!(K::of(0xface_b002), Some(K::Mvfst));
        assert_eq!(K::of(0x1a2a_3a4a), Some(K::Reserved));
        assert_eq!(K::of(0), Some(K::VersionNegotiation));
        assert_eq!(K::of(2), None);
        assert_eq!(K::of(0x4854_5450), None, "\"HTTP\" is not a version");
    }

    #[test]
    fn packet_types_v1_v2() {
        use LongPacketType as T;
        use QuicVersionKind as K;
        // v1: 0xc0 Initial, 0xd0 0-RTT, 0xe0 Handshake, 0xf0 Retry.
        assert_eq!(LongPacketType::of(K::V1, 0xc3), Some(T::Initial));
        assert_eq!(LongPacketType::of(K::V1, 0xe1), Some(T::Handshake));
        assert_eq!(LongPacketType::of(K::V1, 0xf0), Some(T::Retry));
        // v2: 0xd0 Initial, 0xe0 0-RTT, 0xf0 Handshake, 0xc0 Retry.
        assert_eq!(LongPacketType::of(K::V2, 0xd3), Some(T::Initial));
        assert_eq!(LongPacketType::of(K::V2, 0xe0), Some(T::ZeroRtt));
        assert_eq!(LongPacketType::of(K::V2, 0xf0), Some(T::Handshake));
        assert_eq!(LongPacketType::of(K::V2, 0xcf), Some(T::Retry));
        assert_eq!(LongPacketType::of(K::Gquic, 0xc3), None);
    }

    #[test]
    fn legacy_gquic_public_header() {
        let mut p = vec![0x09];
        p.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        p.extend_from_slice(b"Q043");
        p.push(1);
        let i = detect(&p).unwrap();
        assert_eq!(i.kind, QuicVersionKind::Gquic);
        assert_eq!(i.version, u32::from_be_bytes(*b"Q043"));
        // Without the version flag, or with a non-gQUIC version: not recognised.
        p[0] = 0x08;
        assert_eq!(detect(&p), None);
        p[0] = 0x09;
        p[9] = b'X';
        assert_eq!(detect(&p), None);
        assert_eq!(detect(&p[..12]), None);
    }

    #[test]
    fn header_bounds() {
        // DCID length 21 is refused; 20 accepted.
        let mut p = vec![0xc0, 0, 0, 0, 1, 21];
        p.extend_from_slice(&[0; 21]);
        p.extend_from_slice(&[0, 0, 1, 0]);
        assert_eq!(detect(&p), None);
        let mut p = vec![0xc0, 0, 0, 0, 1, 20];
        p.extend_from_slice(&[0; 20]);
        p.extend_from_slice(&[0, 0, 0x41, 0]);
        let i = detect(&p).unwrap();
        assert_eq!(i.packet_type, Some(LongPacketType::Initial));
        // Cut inside the connection IDs, before the Length field, or without fixed bit.
        for n in 0..p.len() - 2 {
            assert_eq!(detect(&p[..n]), None, "{n}");
        }
        p[0] = 0x80;
        assert_eq!(detect(&p), None);
        // Version negotiation: the version list must be a non-empty multiple of 4.
        let vn = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(detect(&vn), None);
        let vn = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf];
        assert_eq!(
            detect(&vn).unwrap().kind,
            QuicVersionKind::VersionNegotiation
        );
        // A version list with an unknown or zero version is not Version Negotiation.
        let vn = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(detect(&vn), None);
        let vn = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(detect(&vn), None);
        // An LLMNR query from the corpus (ndpi_1kxun.pcap frame 14: ID 0xa000, flags 0, one
        // question "RO_X1C" ANY) parses as version 0, a 1-byte DCID, an empty SCID and a
        // 16-byte "version list" starting with 0: not QUIC.
        let llmnr = [
            0xa0, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x52,
            0x4f, 0x5f, 0x58, 0x31, 0x43, 0x00, 0x00, 0xff, 0x00, 0x01,
        ];
        assert_eq!(detect(&llmnr), None);
    }
}
