//! Transport headers: TCP (with options), UDP, SCTP's common header, and ESP's cleartext part.
//!
//! TCP and UDP headers are etherparse's [`TcpHeaderSlice`] / [`UdpHeaderSlice`]. TCP options
//! have our own walker because etherparse's iterator stops at option kinds it does not know
//! (MPTCP, TCP Fast Open, ...), which real captures are full of.

pub use etherparse::{TcpHeaderSlice, UdpHeaderSlice};

use crate::bytes::{be16, be32, u8_at};
use crate::error::{ErrorKind, Layer, ParseError};

/// TCP flags (the low 9 bits of bytes 12–13 of the header: NS, CWR, ECE, URG, ACK, PSH, RST, SYN, FIN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (ECN nonce, historic; now reserved / AccECN).
    pub const NS: u16 = 0x100;

    /// Whether every flag in `mask` is set.
    pub const fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }
    /// SYN set.
    pub const fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// ACK set.
    pub const fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// FIN set.
    pub const fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// RST set.
    pub const fn rst(self) -> bool {
        self.has(Self::RST)
    }
}

/// tcpdump's notation: `S` SYN, `F` FIN, `R` RST, `P` PSH, `.` ACK, `U` URG, `E` ECE, `W` CWR,
/// `N` NS; `none` when no flag is set.
impl core::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        const ORDER: [(u16, char); 9] = [
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::NS, 'N'),
            (TcpFlags::ACK, '.'),
        ];
        if self.0 & 0x1ff == 0 {
            return f.write_str("none");
        }
        for (bit, c) in ORDER {
            if self.0 & bit != 0 {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// A TCP segment: header (etherparse's view) and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tcp<'a> {
    header: TcpHeaderSlice<'a>,
    payload: &'a [u8],
}

impl<'a> Tcp<'a> {
    /// The header, options included.
    pub fn header(&self) -> &TcpHeaderSlice<'a> {
        &self.header
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.header.source_port()
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.header.destination_port()
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        self.header.sequence_number()
    }
    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        self.header.acknowledgment_number()
    }
    /// Window (unscaled).
    pub fn window(&self) -> u16 {
        self.header.window_size()
    }
    /// All flags.
    pub fn flags(&self) -> TcpFlags {
        let s = self.header.slice();
        let hi = u16::from(u8_at(s, 12).unwrap_or(0) & 1);
        TcpFlags((hi << 8) | u16::from(u8_at(s, 13).unwrap_or(0)))
    }
    /// Header length including options.
    pub fn header_len(&self) -> usize {
        self.header.slice().len()
    }
    /// Payload bytes (cut to the IP length, so Ethernet padding is excluded).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// The options, decoded. Walking them is cheap but not free; call only when needed.
    pub fn options(&self) -> TcpOptions {
        TcpOptions::parse(self.header.options())
    }
}

/// The TCP options netmon decodes (RFC 793 MSS, RFC 7323 window scale and timestamps,
/// RFC 2018 SACK), plus whether malformed or unknown options were present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift count.
    pub window_scale: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// SACK blocks (left, right edge), up to four.
    pub sack: [Option<(u32, u32)>; 4],
    /// Timestamps (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// Option kinds seen that are not decoded above (e.g. 30 MPTCP, 34 TFO), as a count.
    pub unknown: u8,
    /// An option's length byte was impossible (< 2) or ran past the header: the walk stopped.
    pub malformed: bool,
}

impl TcpOptions {
    /// Walks the option bytes.
    ///
    /// ```text
    /// kind 0: end of list     kind 1: no-op        kind 2 len 4: MSS (u16)
    /// kind 3 len 3: shift     kind 4 len 2: SACK permitted
    /// kind 5 len 2+8n: SACK blocks (left, right: u32)   kind 8 len 10: TSval, TSecr
    /// any other kind: kind, len (>= 2, covering kind and len), data
    /// ```
    pub fn parse(opts: &[u8]) -> TcpOptions {
        let mut o = TcpOptions::default();
        let mut i = 0;
        while let Some(kind) = u8_at(opts, i) {
            match kind {
                0 => break,
                1 => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let Some(len) = u8_at(opts, i + 1).map(usize::from) else {
                o.malformed = true;
                break;
            };
            if len < 2 || i + len > opts.len() {
                o.malformed = true;
                break;
            }
            match (kind, len) {
                (2, 4) => o.mss = be16(opts, i + 2),
                (3, 3) => o.window_scale = u8_at(opts, i + 2),
                (4, 2) => o.sack_permitted = true,
                (5, _) if (len - 2) % 8 == 0 => {
                    for (n, slot) in o.sack.iter_mut().enumerate().take((len - 2) / 8) {
                        let at = i + 2 + n * 8;
                        *slot = be32(opts, at).zip(be32(opts, at + 4));
                    }
                }
                (8, 10) => o.timestamps = be32(opts, i + 2).zip(be32(opts, i + 6)),
                _ => o.unknown = o.unknown.saturating_add(1),
            }
            i += len;
        }
        o
    }
}

/// A UDP datagram: header (etherparse's view) and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp<'a> {
    header: UdpHeaderSlice<'a>,
    payload: &'a [u8],
}

impl<'a> Udp<'a> {
    /// The header.
    pub fn header(&self) -> &UdpHeaderSlice<'a> {
        &self.header
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.header.source_port()
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.header.destination_port()
    }
    /// The length field (header + payload).
    pub fn length(&self) -> u16 {
        self.header.length()
    }
    /// Payload bytes, cut to the UDP and IP lengths.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// SCTP common header (RFC 9260 §3.1): ports, verification tag, CRC32c checksum; chunks follow.
///
/// ```text
/// | Source Port (16) | Destination Port (16) | Verification Tag (32) | Checksum (32) |
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sctp<'a> {
    data: &'a [u8],
}

impl<'a> Sctp<'a> {
    /// Common header length.
    pub const LEN: usize = 12;
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }
    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        be32(self.data, 4).unwrap_or(0)
    }
    /// The chunks (unparsed).
    pub fn chunks(&self) -> &'a [u8] {
        self.data.get(Self::LEN..).unwrap_or(&[])
    }
    /// Type of the first chunk (0 DATA, 1 INIT, ...), if present.
    pub fn first_chunk_type(&self) -> Option<u8> {
        u8_at(self.data, Self::LEN)
    }
}

/// The cleartext part of an ESP header (RFC 4303): SPI and sequence number. Everything after
/// is encrypted, so parsing ends here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Esp {
    /// Security parameters index.
    pub spi: u32,
    /// Sequence number.
    pub seq: u32,
}

/// A transport header that failed: the error, and the ports when the first four bytes survived.
pub(crate) type L4Failure = (ParseError, Option<(u16, u16)>);

/// Parses TCP from `seg` (the IP payload, already cut to the IP length).
///
/// On failure returns the error and, when the first four bytes are there, the ports, which are
/// enough to key a flow.
pub(crate) fn parse_tcp(seg: &[u8]) -> Result<Tcp<'_>, L4Failure> {
    use etherparse::err::tcp::{HeaderError, HeaderSliceError};
    let ports = be16(seg, 0).zip(be16(seg, 2));
    match TcpHeaderSlice::from_slice(seg) {
        Ok(header) => {
            let payload = seg.get(header.slice().len()..).unwrap_or(&[]);
            Ok(Tcp { header, payload })
        }
        Err(HeaderSliceError::Len(e)) => Err((
            ParseError::truncated(Layer::Tcp, 0, e.required_len, e.len),
            ports,
        )),
        Err(HeaderSliceError::Content(HeaderError::DataOffsetTooSmall { data_offset })) => {
            let k = ErrorKind::BadHeaderLength(usize::from(data_offset) * 4);
            Err((ParseError::new(Layer::Tcp, 0, k), ports))
        }
    }
}

/// Parses UDP from `seg` (the IP payload, already cut to the IP length).
///
/// A length field below 8 is an error but the header (ports) is kept; a length beyond the
/// captured bytes yields what is there plus a truncation error.
pub(crate) fn parse_udp(seg: &[u8]) -> Result<(Udp<'_>, Option<ParseError>), L4Failure> {
    let header = match UdpHeaderSlice::from_slice(seg) {
        Ok(h) => h,
        Err(e) => {
            let ports = be16(seg, 0).zip(be16(seg, 2));
            return Err((
                ParseError::truncated(Layer::Udp, 0, e.required_len, e.len),
                ports,
            ));
        }
    };
    let len = usize::from(header.length());
    let body = seg.get(8..).unwrap_or(&[]);
    let (payload, err) = if len == 0 {
        // Length 0 occurs in IPv6 jumbograms (RFC 2675); use what the IP layer gave.
        (body, None)
    } else if len < 8 {
        (
            body,
            Some(ParseError::new(Layer::Udp, 0, ErrorKind::BadLength(len))),
        )
    } else if len > seg.len() {
        (
            body,
            Some(ParseError::truncated(Layer::Udp, 0, len, seg.len())),
        )
    } else {
        (body.get(..len - 8).unwrap_or(body), None)
    };
    Ok((Udp { header, payload }, err))
}

/// Parses the SCTP common header.
pub(crate) fn parse_sctp(seg: &[u8]) -> Result<Sctp<'_>, L4Failure> {
    if seg.len() < Sctp::LEN {
        let ports = be16(seg, 0).zip(be16(seg, 2));
        return Err((
            ParseError::truncated(Layer::Sctp, 0, Sctp::LEN, seg.len()),
            ports,
        ));
    }
    Ok(Sctp { data: seg })
}

/// Parses ESP's SPI and sequence number.
pub(crate) fn parse_esp(seg: &[u8]) -> Option<Esp> {
    Some(Esp {
        spi: be32(seg, 0)?,
        seq: be32(seg, 4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_decoded_and_unknown_kept() {
        // MSS 1460, SACK-perm, TS, NOP, WS 7, MPTCP (30, len 4), then SACK with 2 blocks
        let opts = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7, 30, 4, 0, 0, 5, 18,
            0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40,
        ];
        let o = TcpOptions::parse(&opts);
        assert_eq!(o.mss, Some(1460));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamps, Some((1, 2)));
        assert_eq!(o.window_scale, Some(7));
        assert_eq!(o.unknown, 1);
        assert_eq!(o.sack[..3], [Some((10, 20)), Some((30, 40)), None]);
        assert!(!o.malformed);
    }

    #[test]
    fn options_malformed_stop() {
        assert!(TcpOptions::parse(&[2, 0, 0, 0]).malformed); // len 0 would loop forever
        assert!(TcpOptions::parse(&[2, 40]).malformed); // runs past the end
        assert!(TcpOptions::parse(&[8]).malformed); // no length byte
        assert_eq!(TcpOptions::parse(&[1, 1, 0, 2, 4, 5, 0]).mss, None); // after EOL: ignored
    }

    #[test]
    fn flags_display() {
        assert_eq!(TcpFlags(TcpFlags::SYN).to_string(), "S");
        assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).to_string(), "S.");
        assert_eq!(TcpFlags(TcpFlags::PSH | TcpFlags::ACK).to_string(), "P.");
        assert_eq!(
            TcpFlags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK).to_string(),
            "FP."
        );
        assert_eq!(TcpFlags(0).to_string(), "none");
    }

    #[test]
    fn tcp_partial_header_keeps_ports() {
        let seg = [0x01, 0xbb, 0xc0, 0x00, 0, 0, 0];
        let (e, ports) = parse_tcp(&seg).unwrap_err();
        assert_eq!(ports, Some((443, 0xc000)));
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                needed: 20,
                available: 7
            }
        );
        let mut bad = [0u8; 20];
        bad[12] = 0x20; // data offset 2
        let (e, _) = parse_tcp(&bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadHeaderLength(8));
    }

    #[test]
    fn udp_lengths() {
        let mut d = vec![0, 53, 0x30, 0x39, 0, 12, 0, 0, 1, 2, 3, 4, 0xff, 0xff];
        let (u, e) = parse_udp(&d).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.payload(), e),
            (53, 12345, &[1u8, 2, 3, 4][..], None)
        );
        d[5] = 40;
        let (u, e) = parse_udp(&d).unwrap();
        assert_eq!(u.payload().len(), 6);
        assert_eq!(
            e.unwrap().kind,
            ErrorKind::Truncated {
                needed: 40,
                available: 14
            }
        );
        d[5] = 3;
        let (_, e) = parse_udp(&d).unwrap();
        assert_eq!(e.unwrap().kind, ErrorKind::BadLength(3));
        let (e, ports) = parse_udp(&d[..5]).unwrap_err();
        assert_eq!((e.layer, ports), (Layer::Udp, Some((53, 12345))));
    }
}
