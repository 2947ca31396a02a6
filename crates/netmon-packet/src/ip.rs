//! IPv4 (with options, fragments and AH) and IPv6 (with extension headers: hop-by-hop, routing
//! including segment routing, fragment, destination options, AH; ESP ends the walk).
//!
//! Fixed headers come from etherparse's [`Ipv4HeaderSlice`] / [`Ipv6HeaderSlice`], extension
//! headers from its raw, fragment and authentication header slices. The walk over the
//! extension chain is ours, so that it is bounded ([`MAX_IPV6_EXTENSIONS`]), reports the exact
//! header and offset that failed, and stops at a non-first fragment (whose "next header" bytes
//! are the middle of someone's payload, not a header).
//!
//! Lengths: the payload is the part of the captured bytes that the header's length field
//! covers — Ethernet padding is cut off. A length field that claims more than was captured
//! yields what is there plus a [`ErrorKind::Truncated`] error; an IPv4 total length of 0
//! (segmentation offload on the capturing host) and IPv6 jumbograms use the captured length.

use core::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{IpAuthHeaderSlice, Ipv6FragmentHeaderSlice, Ipv6RawExtHeaderSlice};
pub use etherparse::{IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice};

use crate::bytes::{tail, u8_at};
use crate::error::{ErrorKind, Layer, ParseError};

/// Bound on the number of IPv6 extension headers (and IPv4 AH headers) walked per packet.
pub const MAX_IPV6_EXTENSIONS: usize = 16;

/// Fragmentation fields of an IPv4 header or IPv6 fragment header, for packets that are
/// fragments (more-fragments set or a non-zero offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Offset of this fragment's data in the original payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

impl Fragment {
    /// Whether this is the first fragment (offset 0), the one carrying the transport header.
    pub const fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// An IPv4 packet: header (with options), optional AH, and the payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4<'a> {
    header: Ipv4HeaderSlice<'a>,
    auth: Option<IpAuthHeaderSlice<'a>>,
    protocol: IpNumber,
    payload: &'a [u8],
    payload_offset: usize,
}

impl<'a> Ipv4<'a> {
    /// The fixed header and options (etherparse's view: every field accessor is there).
    pub fn header(&self) -> &Ipv4HeaderSlice<'a> {
        &self.header
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        self.header.source_addr()
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        self.header.destination_addr()
    }
    /// The protocol of the payload (after an AH header, the protocol AH protects).
    pub fn protocol(&self) -> IpNumber {
        self.protocol
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.header.ttl()
    }
    /// Header length including options.
    pub fn header_len(&self) -> usize {
        self.header.slice().len()
    }
    /// The total-length field.
    pub fn total_len(&self) -> u16 {
        self.header.total_len()
    }
    /// IP options (empty without options).
    pub fn options(&self) -> &'a [u8] {
        self.header.options()
    }
    /// The AH header, if the packet has one.
    pub fn auth(&self) -> Option<&IpAuthHeaderSlice<'a>> {
        self.auth.as_ref()
    }
    /// Fragment fields, if this packet is a fragment.
    pub fn fragment(&self) -> Option<Fragment> {
        let offset = u32::from(self.header.fragments_offset().value()) * 8;
        let more = self.header.more_fragments();
        (more || offset != 0).then(|| Fragment {
            id: u32::from(self.header.identification()),
            offset,
            more,
        })
    }
    /// Payload bytes: captured bytes after the header (and AH), cut to the total length.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// Offset of the payload within the frame.
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }
    /// Payload length the header declares (after AH), which may exceed what was captured.
    pub fn declared_payload_len(&self) -> usize {
        let total = usize::from(self.header.total_len());
        let hl = self.header_len() + self.auth.as_ref().map_or(0, |a| a.slice().len());
        if total == 0 {
            self.payload.len()
        } else {
            total.saturating_sub(hl)
        }
    }
}

/// An IPv6 packet: fixed header, extension headers, and the upper-layer payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6<'a> {
    header: Ipv6HeaderSlice<'a>,
    /// Extension headers, raw, in order.
    exts: &'a [u8],
    ext_types: ExtTypes,
    next_header: IpNumber,
    fragment: Option<Fragment>,
    routing: Option<Routing<'a>>,
    payload: &'a [u8],
    payload_offset: usize,
    declared_payload_len: usize,
    exts_complete: bool,
}

/// The extension header types of an IPv6 packet, in order (bounded).
pub type ExtTypes = arrayvec::ArrayVec<IpNumber, MAX_IPV6_EXTENSIONS>;

impl<'a> Ipv6<'a> {
    /// The fixed header (etherparse's view).
    pub fn header(&self) -> &Ipv6HeaderSlice<'a> {
        &self.header
    }
    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        self.header.source_addr()
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        self.header.destination_addr()
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.header.hop_limit()
    }
    /// The upper-layer protocol after the extension headers (e.g. TCP, or ESP / No Next Header).
    pub fn protocol(&self) -> IpNumber {
        self.next_header
    }
    /// The extension headers' raw bytes.
    pub fn extension_bytes(&self) -> &'a [u8] {
        self.exts
    }
    /// The extension header types, in order.
    pub fn extension_types(&self) -> &[IpNumber] {
        &self.ext_types
    }
    /// Fragment fields, if a fragment header makes this packet a fragment (atomic fragments,
    /// offset 0 without more-fragments, are not fragments).
    pub fn fragment(&self) -> Option<Fragment> {
        self.fragment
    }
    /// The routing header, if any.
    pub fn routing(&self) -> Option<&Routing<'a>> {
        self.routing.as_ref()
    }
    /// Upper-layer payload: captured bytes after the extension headers, cut to the payload length.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// Offset of the upper-layer payload within the frame.
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }
    /// Upper-layer length the header declares (payload length minus extension headers), which
    /// may exceed what was captured.
    pub fn declared_payload_len(&self) -> usize {
        self.declared_payload_len
    }
    /// Whether the extension header chain was walked to its end. When it was not (a header cut
    /// short, or the bound hit), [`protocol`](Ipv6::protocol) is the extension header that
    /// failed and the payload is empty.
    pub fn extensions_complete(&self) -> bool {
        self.exts_complete
    }
}

/// An IPv6 routing header.
///
/// ```text
///  0                   1                   2                   3
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |  Next Header  |  Hdr Ext Len  | Routing Type  | Segments Left |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |  type-specific data (SRH, type 4: Last Entry | Flags | Tag,    |
///  |  then Segment List[0..=Last Entry], 16 bytes each; type 0:     |
///  |  4 reserved bytes, then addresses)                             |
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routing<'a> {
    data: &'a [u8],
}

impl<'a> Routing<'a> {
    /// Routing type (0 = deprecated source route, 2 = mobile IPv6, 3 = RPL, 4 = segment routing).
    pub fn routing_type(&self) -> u8 {
        u8_at(self.data, 2).unwrap_or(0)
    }
    /// Segments left.
    pub fn segments_left(&self) -> u8 {
        u8_at(self.data, 3).unwrap_or(0)
    }
    /// For a segment routing header: the last entry index.
    pub fn last_entry(&self) -> Option<u8> {
        (self.routing_type() == 4).then(|| u8_at(self.data, 4).unwrap_or(0))
    }
    /// The addresses listed (type 0 and 4): the segment list, in header order.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv6Addr> + 'a {
        let list = match self.routing_type() {
            0 | 4 => tail(self.data, 8),
            _ => &[],
        };
        list.chunks_exact(16)
            .filter_map(|c| <[u8; 16]>::try_from(c).ok().map(Ipv6Addr::from))
    }
    /// Raw header bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }
}

/// Parses an IPv4 packet starting at `data[0]` (offsets in errors are relative to `data`).
///
/// Returns the view (if the header parsed) and the first error met. A non-first fragment's
/// payload is fragment data; the caller must not parse a transport header from it.
pub(crate) fn parse_ipv4(data: &[u8]) -> (Option<Ipv4<'_>>, Option<ParseError>) {
    use etherparse::err::ipv4::{HeaderError, HeaderSliceError};
    let header = match Ipv4HeaderSlice::from_slice(data) {
        Ok(h) => h,
        Err(HeaderSliceError::Len(e)) => {
            return (
                None,
                Some(ParseError::truncated(Layer::Ipv4, 0, e.required_len, e.len)),
            );
        }
        Err(HeaderSliceError::Content(HeaderError::UnexpectedVersion { version_number })) => {
            return (
                None,
                Some(ParseError::new(
                    Layer::Ipv4,
                    0,
                    ErrorKind::BadVersion(version_number),
                )),
            );
        }
        Err(HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { ihl })) => {
            let e = ErrorKind::BadHeaderLength(usize::from(ihl) * 4);
            return (None, Some(ParseError::new(Layer::Ipv4, 0, e)));
        }
    };
    let hl = header.slice().len();
    let total = usize::from(header.total_len());
    let mut err = None;
    // Total length 0: the capturing host's NIC segments (TSO); trust the captured length.
    let end = if total == 0 {
        data.len()
    } else if total < hl {
        return (
            None,
            Some(ParseError::new(Layer::Ipv4, 0, ErrorKind::BadLength(total))),
        );
    } else if total > data.len() {
        err = Some(ParseError::truncated(Layer::Ipv4, 0, total, data.len()));
        data.len()
    } else {
        total
    };
    let packet = data.get(..end).unwrap_or(data);
    let mut protocol = header.protocol();
    let mut off = hl;
    let mut auth = None;
    let is_later_fragment = header.fragments_offset().value() != 0;
    if protocol == IpNumber::AUTHENTICATION_HEADER && !is_later_fragment {
        match IpAuthHeaderSlice::from_slice(tail(packet, off)) {
            Ok(a) => {
                protocol = a.next_header();
                off += a.slice().len();
                auth = Some(a);
            }
            Err(e) => {
                err = err.or(Some(auth_error(e).shifted(off)));
            }
        }
    }
    let v = Ipv4 {
        header,
        auth,
        protocol,
        payload: tail(packet, off),
        payload_offset: off,
    };
    (Some(v), err)
}

fn auth_error(e: etherparse::err::ip_auth::HeaderSliceError) -> ParseError {
    use etherparse::err::ip_auth::HeaderSliceError;
    match e {
        HeaderSliceError::Len(l) => ParseError::truncated(Layer::IpAuth, 0, l.required_len, l.len),
        HeaderSliceError::Content(_) => {
            ParseError::new(Layer::IpAuth, 0, ErrorKind::BadHeaderLength(0))
        }
    }
}

/// Parses an IPv6 packet and its extension headers starting at `data[0]`.
pub(crate) fn parse_ipv6(data: &[u8]) -> (Option<Ipv6<'_>>, Option<ParseError>) {
    use etherparse::err::ipv6::{HeaderError, HeaderSliceError};
    let header = match Ipv6HeaderSlice::from_slice(data) {
        Ok(h) => h,
        Err(HeaderSliceError::Len(e)) => {
            return (
                None,
                Some(ParseError::truncated(Layer::Ipv6, 0, e.required_len, e.len)),
            );
        }
        Err(HeaderSliceError::Content(HeaderError::UnexpectedVersion { version_number })) => {
            return (
                None,
                Some(ParseError::new(
                    Layer::Ipv6,
                    0,
                    ErrorKind::BadVersion(version_number),
                )),
            );
        }
    };
    const HL: usize = 40;
    let mut err = None;
    let plen = usize::from(header.payload_length());
    let next = header.next_header();
    let end = if plen == 0 && next == IpNumber::IPV6_HEADER_HOP_BY_HOP {
        // A jumbogram (RFC 2675) or a lying zero: either way the captured bytes are all we have.
        data.len()
    } else if HL + plen > data.len() {
        err = Some(ParseError::truncated(Layer::Ipv6, 0, HL + plen, data.len()));
        data.len()
    } else {
        HL + plen
    };
    let packet = data.get(..end).unwrap_or(data);
    let declared_end = if plen == 0 && next == IpNumber::IPV6_HEADER_HOP_BY_HOP {
        end
    } else {
        HL + plen
    };

    let mut v = Ipv6 {
        header,
        exts: &[],
        ext_types: ExtTypes::new(),
        next_header: next,
        fragment: None,
        routing: None,
        payload: &[],
        payload_offset: HL,
        declared_payload_len: 0,
        exts_complete: false,
    };
    let mut off = HL;
    let mut nh = next;
    let mut complete = true;
    loop {
        let layer = match nh {
            IpNumber::IPV6_HEADER_HOP_BY_HOP => Layer::Ipv6HopByHop,
            IpNumber::IPV6_ROUTE_HEADER => Layer::Ipv6Routing,
            IpNumber::IPV6_FRAGMENTATION_HEADER => Layer::Ipv6Fragment,
            IpNumber::IPV6_DESTINATION_OPTIONS => Layer::Ipv6DestOptions,
            IpNumber::AUTHENTICATION_HEADER => Layer::IpAuth,
            _ => break,
        };
        if nh == IpNumber::IPV6_HEADER_HOP_BY_HOP && off != HL {
            err = err.or(Some(ParseError::new(
                layer,
                off,
                ErrorKind::Invalid("hop-by-hop header not first"),
            )));
            complete = false;
            break;
        }
        if v.ext_types.is_full() {
            err = err.or(Some(ParseError::new(layer, off, ErrorKind::TooDeep)));
            complete = false;
            break;
        }
        let rest = tail(packet, off);
        let (len, next, stop) = match layer {
            Layer::Ipv6Fragment => match Ipv6FragmentHeaderSlice::from_slice(rest) {
                Ok(f) => {
                    let offset = u32::from(f.fragment_offset().value()) * 8;
                    let more = f.more_fragments();
                    if more || offset != 0 {
                        v.fragment = Some(Fragment {
                            id: f.identification(),
                            offset,
                            more,
                        });
                    }
                    // After a non-first fragment header comes fragment data, not a header.
                    (f.slice().len(), f.next_header(), offset != 0)
                }
                Err(e) => {
                    err = err.or(Some(ParseError::truncated(
                        layer,
                        off,
                        e.required_len,
                        e.len,
                    )));
                    complete = false;
                    break;
                }
            },
            Layer::IpAuth => match IpAuthHeaderSlice::from_slice(rest) {
                Ok(a) => (a.slice().len(), a.next_header(), false),
                Err(e) => {
                    err = err.or(Some(auth_error(e).shifted(off)));
                    complete = false;
                    break;
                }
            },
            _ => match Ipv6RawExtHeaderSlice::from_slice(rest) {
                Ok(r) => {
                    if layer == Layer::Ipv6Routing {
                        v.routing = Some(Routing { data: r.slice() });
                    }
                    (r.slice().len(), r.next_header(), false)
                }
                Err(e) => {
                    err = err.or(Some(ParseError::truncated(
                        layer,
                        off,
                        e.required_len,
                        e.len,
                    )));
                    complete = false;
                    break;
                }
            },
        };
        // Bounded by MAX_IPV6_EXTENSIONS; each step advances by at least 8 bytes.
        let _ = v.ext_types.try_push(nh);
        off += len;
        nh = next;
        if stop {
            break;
        }
    }
    v.exts = packet.get(HL..off).unwrap_or(&[]);
    v.next_header = nh;
    v.exts_complete = complete;
    v.payload = if complete { tail(packet, off) } else { &[] };
    v.payload_offset = off;
    v.declared_payload_len = declared_end.saturating_sub(off);
    (Some(v), err)
}

/// Reads the version nibble.
pub(crate) fn ip_version(data: &[u8]) -> Option<u8> {
    u8_at(data, 0).map(|b| b >> 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn v4_udp(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1234, 53)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn ipv4_basic_and_padding_cut() {
        let mut p = v4_udp(b"hello");
        p.extend_from_slice(&[0; 10]); // Ethernet padding
        let (v, e) = parse_ipv4(&p);
        let v = v.unwrap();
        assert_eq!(e, None);
        assert_eq!(v.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(v.protocol(), IpNumber::UDP);
        assert_eq!(v.payload().len(), 8 + 5);
        assert_eq!(v.fragment(), None);
    }

    #[test]
    fn ipv4_truncated_and_bogus_lengths() {
        let p = v4_udp(b"hello world");
        let (v, e) = parse_ipv4(&p[..30]);
        assert_eq!(v.unwrap().payload().len(), 10);
        assert_eq!(
            e.unwrap().kind,
            ErrorKind::Truncated {
                needed: p.len(),
                available: 30
            }
        );
        // total length smaller than the header
        let mut bad = p.clone();
        bad[2..4].copy_from_slice(&10u16.to_be_bytes());
        let (v, e) = parse_ipv4(&bad);
        assert!(v.is_none());
        assert_eq!(e.unwrap().kind, ErrorKind::BadLength(10));
        // total length 0 (TSO): captured length is used, no error
        let mut tso = p.clone();
        tso[2..4].copy_from_slice(&[0, 0]);
        let (v, e) = parse_ipv4(&tso);
        assert_eq!((v.unwrap().payload().len(), e), (8 + 11, None));
        // every prefix parses or errors, never panics
        for n in 0..p.len() {
            let _ = parse_ipv4(&p[..n]);
        }
    }

    #[test]
    fn ipv6_extension_chain_and_fragment() {
        // IPv6 + hop-by-hop (8) + fragment (8, offset 0, more) + UDP
        let mut p = vec![0x60, 0, 0, 0, 0, 8 + 8 + 8 + 4, 0, 64];
        p.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // HBH -> frag, PadN
        p.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // frag -> UDP, off 0, M
        p.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]);
        let (v, e) = parse_ipv6(&p);
        let v = v.unwrap();
        assert_eq!(e, None);
        assert_eq!(v.protocol(), IpNumber::UDP);
        assert_eq!(
            v.extension_types(),
            &[
                IpNumber::IPV6_HEADER_HOP_BY_HOP,
                IpNumber::IPV6_FRAGMENTATION_HEADER
            ]
        );
        assert_eq!(
            v.fragment(),
            Some(Fragment {
                id: 0xdead_beef,
                offset: 0,
                more: true
            })
        );
        assert_eq!(v.payload().len(), 12);
        assert_eq!(v.payload_offset(), 56);
        // A later fragment stops the walk at the fragment header.
        let mut later = p.clone();
        later[50] = 0x00;
        later[51] = 0x08; // offset 1 (8 bytes), M = 0
        later[48] = 60; // next header claims dest-options: must not be parsed
        let (v, _) = parse_ipv6(&later);
        let v = v.unwrap();
        assert_eq!(v.fragment().unwrap().offset, 8);
        assert_eq!(v.protocol(), IpNumber::IPV6_DESTINATION_OPTIONS);
        assert_eq!(v.payload().len(), 12);
        // Truncated in the fragment header.
        let (v, e) = parse_ipv6(&p[..52]);
        assert!(v.is_some());
        let e = e.unwrap();
        assert_eq!(e.layer, Layer::Ipv6); // payload length says more than captured: first error
        let _ = e;
        for n in 0..p.len() {
            let _ = parse_ipv6(&p[..n]);
        }
    }

    #[test]
    fn ipv6_segment_routing() {
        // SRH with two segments, then no next header (59).
        let mut p = vec![0x60, 0, 0, 0, 0, 8 + 32, 43, 64];
        p.extend_from_slice(&[0; 32]);
        p.extend_from_slice(&[59, 4, 4, 1, 1, 0, 0, 0]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let (v, e) = parse_ipv6(&p);
        assert_eq!(e, None);
        let v = v.unwrap();
        let r = v.routing().unwrap();
        assert_eq!(
            (r.routing_type(), r.segments_left(), r.last_entry()),
            (4, 1, Some(1))
        );
        let segs: Vec<_> = r.addresses().map(|a| a.to_string()).collect();
        assert_eq!(segs, ["2001:db8::1", "2001:db8::2"]);
        assert_eq!(v.protocol(), IpNumber::IPV6_NO_NEXT_HEADER);
    }

    #[test]
    fn ipv6_extension_bound() {
        // 40 destination-option headers chained: stops at the bound with TooDeep.
        let n = 40usize;
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((n * 8) as u16).to_be_bytes());
        p.extend_from_slice(&[60, 64]);
        p.extend_from_slice(&[0; 32]);
        for _ in 0..n {
            p.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let (v, e) = parse_ipv6(&p);
        assert_eq!(v.unwrap().extension_types().len(), MAX_IPV6_EXTENSIONS);
        assert_eq!(e.unwrap().kind, ErrorKind::TooDeep);
    }
}
