//! Cisco Discovery Protocol, carried in LLC/SNAP with OUI `00-00-0c` and PID `0x2000`.
//!
//! ```text
//! CDP header:
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |  version (1)  |    TTL (s)    |           checksum            |
//! +---------------+---------------+-------------------------------+
//! | TLVs ...
//!
//! TLV:
//! +-------------------------------+-------------------------------+- - - - -
//! |           type (16)           | length (16, incl. the 4-byte  | value
//! |                               | TLV header, so >= 4)          |
//! +-------------------------------+-------------------------------+- - - - -
//!
//! Addresses TLV (0x0002) and Management Addresses TLV (0x0016) value:
//! +-------------------+  then `count` entries of:
//! | count (32)        |  +----------+----------+---------------+-----------+---------+
//! +-------------------+  | proto    | proto    | protocol      | address   | address |
//!                        | type (1) | len (1)  | (proto len)   | len (16)  |         |
//!                        +----------+----------+---------------+-----------+---------+
//!   proto type 1 (NLPID): protocol 0xcc = IPv4 (address length 4)
//!   proto type 2 (802.2): protocol AA AA 03 00 00 00 86 DD = IPv6 (address length 16)
//! ```
//!
//! # Validation policy
//!
//! Same as [`crate::lldp`]: [`Cdp::new_checked`] requires the 4-byte header and intact TLV
//! framing (a TLV length below 4 is [`ErrorKind::Invalid`], one running past the end is
//! [`ErrorKind::Truncated`], more than [`MAX_TLVS`] TLVs is [`ErrorKind::TooDeep`]);
//! [`Cdp::new_partial`] keeps the view of a DU whose framing breaks and returns the error
//! beside it. Version and checksum are data (not verified). Errors are [`Layer::Cdp`] errors at
//! offset 0 (the start of the CDP slice); `Truncated` counts from there.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{be16, be32, tail, u8_at};
use crate::error::{ErrorKind, Layer, ParseError};

/// Upper bound on the TLVs walked in one CDP packet; more is [`ErrorKind::TooDeep`].
pub const MAX_TLVS: usize = 512;

/// Length of the fixed CDP header.
pub const HEADER_LEN: usize = 4;

/// A checked view of a CDP packet (the SNAP payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cdp<'a> {
    data: &'a [u8],
}

impl<'a> Cdp<'a> {
    /// Validates the header and the TLV framing of `data` (see the [module docs](self)).
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let (view, err) = Self::new_partial(data)?;
        match err {
            Some(e) => Err(e),
            None => Ok(view),
        }
    }

    /// A view of `data` even when its TLV framing breaks part-way, together with the framing
    /// error if there is one. Fails only when the 4-byte header is incomplete.
    pub fn new_partial(data: &'a [u8]) -> Result<(Self, Option<ParseError>), ParseError> {
        if data.len() < HEADER_LEN {
            return Err(ParseError::truncated(Layer::Cdp, 0, HEADER_LEN, data.len()));
        }
        let view = Cdp { data };
        let err = view.tlvs().find_map(Result::err);
        Ok((view, err))
    }

    /// The bytes the view was built on.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// CDP version (1 or 2 in practice; other values are kept as they are).
    pub fn version(&self) -> u8 {
        u8_at(self.data, 0).unwrap_or(0)
    }

    /// Hold time in seconds.
    pub fn ttl(&self) -> u8 {
        u8_at(self.data, 1).unwrap_or(0)
    }

    /// The checksum field as sent (not verified).
    pub fn checksum(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }

    /// Iterates over the TLVs after the header.
    ///
    /// Yields at most [`MAX_TLVS`] TLVs; after an `Err` item the iterator is exhausted.
    pub fn tlvs(&self) -> CdpTlvs<'a> {
        CdpTlvs {
            data: self.data,
            offset: HEADER_LEN,
            count: 0,
            done: false,
        }
    }

    /// The first well-framed TLV of type `tlv_type`.
    pub fn find(&self, tlv_type: u16) -> Option<CdpTlv<'a>> {
        self.tlvs()
            .map_while(Result::ok)
            .find(|t| t.tlv_type() == tlv_type)
    }

    /// Device ID (type 0x0001): untrusted text, show it with [`crate::text::Escaped`].
    pub fn device_id(&self) -> Option<&'a [u8]> {
        Some(self.find(CdpTlv::DEVICE_ID)?.value())
    }

    /// IPv4/IPv6 addresses of the first Addresses TLV (type 0x0002); other protocols are
    /// skipped, and the iteration stops at a malformed entry. Empty if the TLV is absent.
    pub fn addresses(&self) -> CdpIpAddrs<'a> {
        CdpIpAddrs(self.address_entries())
    }

    /// Every entry of the first Addresses TLV (type 0x0002), malformed ones as errors.
    pub fn address_entries(&self) -> CdpAddresses<'a> {
        CdpAddresses::of(self.find(CdpTlv::ADDRESSES))
    }

    /// IPv4/IPv6 addresses of the first Management Addresses TLV (type 0x0016).
    pub fn management_addresses(&self) -> CdpIpAddrs<'a> {
        CdpIpAddrs(CdpAddresses::of(self.find(CdpTlv::MANAGEMENT_ADDRESSES)))
    }

    /// Port ID (type 0x0003), the sending interface: untrusted text.
    pub fn port_id(&self) -> Option<&'a [u8]> {
        Some(self.find(CdpTlv::PORT_ID)?.value())
    }

    /// Capabilities bitmap (type 0x0004): 0x01 router, 0x02 transparent bridge, 0x04 source
    /// route bridge, 0x08 switch, 0x10 host, 0x20 IGMP capable, 0x40 repeater, 0x80 phone.
    /// `None` if absent or shorter than 4 bytes.
    pub fn capabilities(&self) -> Option<u32> {
        be32(self.find(CdpTlv::CAPABILITIES)?.value(), 0)
    }

    /// Software version (type 0x0005): untrusted text, often multi-line.
    pub fn software_version(&self) -> Option<&'a [u8]> {
        Some(self.find(CdpTlv::SOFTWARE_VERSION)?.value())
    }

    /// Platform (type 0x0006): untrusted text.
    pub fn platform(&self) -> Option<&'a [u8]> {
        Some(self.find(CdpTlv::PLATFORM)?.value())
    }

    /// Native VLAN (type 0x000a). `None` if absent or shorter than 2 bytes.
    pub fn native_vlan(&self) -> Option<u16> {
        be16(self.find(CdpTlv::NATIVE_VLAN)?.value(), 0)
    }

    /// Duplex (type 0x000b): 0 half, 1 full (other values kept). `None` if absent or empty.
    pub fn duplex(&self) -> Option<u8> {
        u8_at(self.find(CdpTlv::DUPLEX)?.value(), 0)
    }
}

/// One CDP TLV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CdpTlv<'a> {
    tlv_type: u16,
    offset: usize,
    value: &'a [u8],
}

impl<'a> CdpTlv<'a> {
    /// Device ID.
    pub const DEVICE_ID: u16 = 0x0001;
    /// Addresses.
    pub const ADDRESSES: u16 = 0x0002;
    /// Port ID.
    pub const PORT_ID: u16 = 0x0003;
    /// Capabilities.
    pub const CAPABILITIES: u16 = 0x0004;
    /// Software version.
    pub const SOFTWARE_VERSION: u16 = 0x0005;
    /// Platform.
    pub const PLATFORM: u16 = 0x0006;
    /// IP prefixes.
    pub const IP_PREFIXES: u16 = 0x0007;
    /// Protocol hello.
    pub const PROTOCOL_HELLO: u16 = 0x0008;
    /// VTP management domain.
    pub const VTP_DOMAIN: u16 = 0x0009;
    /// Native VLAN.
    pub const NATIVE_VLAN: u16 = 0x000a;
    /// Duplex.
    pub const DUPLEX: u16 = 0x000b;
    /// Management addresses.
    pub const MANAGEMENT_ADDRESSES: u16 = 0x0016;

    /// The TLV type (unknown types are kept as they are).
    pub const fn tlv_type(&self) -> u16 {
        self.tlv_type
    }

    /// The value (length field minus the 4-byte TLV header).
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Offset of the TLV header from the start of the CDP packet.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Length of the TLV including its 4-byte header (the length field).
    pub const fn len(&self) -> usize {
        self.value.len() + 4
    }

    /// Always `false`: a TLV has at least its header (present for API symmetry with `len`).
    pub const fn is_empty(&self) -> bool {
        false
    }
}

/// Iterator over the TLVs of a [`Cdp`] view; see [`Cdp::tlvs`].
///
/// Each step consumes at least the 4-byte TLV header; the walk ends at the end of the data,
/// after [`MAX_TLVS`] TLVs (with a [`ErrorKind::TooDeep`] item), or at the first framing error
/// (yielded once).
#[derive(Clone, Debug)]
pub struct CdpTlvs<'a> {
    data: &'a [u8],
    offset: usize,
    count: usize,
    done: bool,
}

impl<'a> Iterator for CdpTlvs<'a> {
    type Item = Result<CdpTlv<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = tail(self.data, self.offset);
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        // Every path below either ends the walk or advances by >= 4 bytes.
        self.done = true;
        if self.count >= MAX_TLVS {
            return Some(Err(ParseError::new(Layer::Cdp, 0, ErrorKind::TooDeep)));
        }
        let available = self.data.len();
        let (Some(tlv_type), Some(len)) = (be16(rest, 0), be16(rest, 2)) else {
            let needed = self.offset.saturating_add(4);
            return Some(Err(ParseError::truncated(Layer::Cdp, 0, needed, available)));
        };
        let len = usize::from(len);
        if len < 4 {
            let kind = ErrorKind::Invalid("cdp tlv length below 4");
            return Some(Err(ParseError::new(Layer::Cdp, 0, kind)));
        }
        let Some(value) = rest.get(4..len) else {
            let needed = self.offset.saturating_add(len);
            return Some(Err(ParseError::truncated(Layer::Cdp, 0, needed, available)));
        };
        let tlv = CdpTlv {
            tlv_type,
            offset: self.offset,
            value,
        };
        self.offset = self.offset.saturating_add(len);
        self.count += 1;
        self.done = false;
        Some(Ok(tlv))
    }
}

impl core::iter::FusedIterator for CdpTlvs<'_> {}

/// One entry of a CDP Addresses / Management Addresses TLV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CdpAddress<'a> {
    /// Protocol type: 1 NLPID, 2 IEEE 802.2.
    pub protocol_type: u8,
    /// Protocol identifier (NLPID byte, or an 802.2 LLC/SNAP header).
    pub protocol: &'a [u8],
    /// The address bytes.
    pub address: &'a [u8],
}

impl CdpAddress<'_> {
    /// Protocol type NLPID.
    pub const PROTOCOL_TYPE_NLPID: u8 = 1;
    /// Protocol type IEEE 802.2.
    pub const PROTOCOL_TYPE_8022: u8 = 2;
    /// NLPID of IPv4.
    pub const NLPID_IPV4: &'static [u8] = &[0xcc];
    /// 802.2 protocol of IPv6: LLC AA AA 03, SNAP OUI 00 00 00, EtherType 86 DD.
    pub const LLC_IPV6: &'static [u8] = &[0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x86, 0xdd];

    /// The address as IPv4 (NLPID 0xcc, 4 bytes) or IPv6 (802.2 `..86DD`, 16 bytes).
    pub fn ip(&self) -> Option<IpAddr> {
        match (self.protocol_type, self.protocol) {
            (Self::PROTOCOL_TYPE_NLPID, Self::NLPID_IPV4) => <[u8; 4]>::try_from(self.address)
                .ok()
                .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            (Self::PROTOCOL_TYPE_8022, Self::LLC_IPV6) => <[u8; 16]>::try_from(self.address)
                .ok()
                .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            _ => None,
        }
    }
}

/// Iterator over the entries of an Addresses TLV; see [`Cdp::address_entries`].
///
/// Yields at most `count` entries, each consuming at least 4 bytes; a malformed or missing
/// entry is yielded once as an error and ends the iteration.
#[derive(Clone, Debug)]
pub struct CdpAddresses<'a> {
    /// The TLV value after the count field.
    data: &'a [u8],
    /// Offset of `data` from the start of the CDP packet (for `Truncated`).
    base: usize,
    offset: usize,
    remaining: u32,
}

impl<'a> CdpAddresses<'a> {
    fn of(tlv: Option<CdpTlv<'a>>) -> Self {
        let empty = CdpAddresses {
            data: &[],
            base: 0,
            offset: 0,
            remaining: 0,
        };
        let Some(tlv) = tlv else {
            return empty;
        };
        let base = tlv.offset().saturating_add(4);
        match be32(tlv.value(), 0) {
            Some(count) => CdpAddresses {
                data: tail(tlv.value(), 4),
                base: base.saturating_add(4),
                offset: 0,
                remaining: count,
            },
            // No room for the count: parsing one entry from these < 4 bytes fails and reports
            // the 4 bytes the count needs.
            None => CdpAddresses {
                data: tlv.value(),
                base,
                offset: 0,
                remaining: 1,
            },
        }
    }

    /// Parses the entry at `at`; `Err(n)`: `data` would need `n` bytes for it.
    fn entry(data: &'a [u8], at: usize) -> Result<(CdpAddress<'a>, usize), usize> {
        let protocol_type = u8_at(data, at).ok_or(at.saturating_add(1))?;
        let pstart = at.saturating_add(2);
        let plen = usize::from(u8_at(data, at.saturating_add(1)).ok_or(pstart)?);
        let pend = pstart.saturating_add(plen);
        let protocol = data.get(pstart..pend).ok_or(pend)?;
        let astart = pend.saturating_add(2);
        let alen = usize::from(be16(data, pend).ok_or(astart)?);
        let aend = astart.saturating_add(alen);
        let address = data.get(astart..aend).ok_or(aend)?;
        let addr = CdpAddress {
            protocol_type,
            protocol,
            address,
        };
        Ok((addr, aend))
    }

    fn truncated(&self, needed_in_data: usize) -> ParseError {
        // `needed` from the CDP start; `available` is what the TLV grants.
        let needed = self.base.saturating_add(needed_in_data);
        let available = self.base.saturating_add(self.data.len());
        ParseError::truncated(Layer::Cdp, 0, needed, available)
    }
}

impl<'a> Iterator for CdpAddresses<'a> {
    type Item = Result<CdpAddress<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match Self::entry(self.data, self.offset) {
            Ok((addr, end)) => {
                self.offset = end;
                Some(Ok(addr))
            }
            Err(needed) => {
                self.remaining = 0;
                Some(Err(self.truncated(needed)))
            }
        }
    }
}

impl core::iter::FusedIterator for CdpAddresses<'_> {}

/// The IPv4/IPv6 addresses of an Addresses TLV; see [`Cdp::addresses`].
#[derive(Clone, Debug)]
pub struct CdpIpAddrs<'a>(CdpAddresses<'a>);

impl Iterator for CdpIpAddrs<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        for entry in self.0.by_ref() {
            if let Some(ip) = entry.ok()?.ip() {
                return Some(ip);
            }
        }
        None
    }
}

impl core::iter::FusedIterator for CdpIpAddrs<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::unhex;
    use proptest::prelude::*;

    /// `tcpdump_LLDP_and_CDP.pcap` frame 1: the CDP packet after Ethernet (802.3) + LLC/SNAP.
    const S1_FRAME1: &str = "02b40bea000100065331000500c2436973636f20494f5320536f6674776172652c20433335363020536f667477617265202843333536302d414456495053455256494345534b392d4d292c2056657273696f6e2031322e322834342953452c2052454c4541534520534f4654574152452028666331290a436f707972696768742028632920313938362d3230303820627920436973636f2053797374656d732c20496e632e0a436f6d70696c6564205361742030352d4a616e2d30382030303a3135206279207765696c697500060017636973636f2057532d43333536302d3234545300020011000000010101cc000400000000000300144661737445746865726e6574302f313300040008000000280008002400000c011200000000ffffffff010220ff0000000000000018ba986880ff000000090004000a00060001000b0005010012000500001300050000160011000000010101cc000400000000001a00100000000100000000ffffffff";
    /// Frame 2 (from S2).
    const S2_FRAME2: &str = "02b4971d000100065332000500c2436973636f20494f5320536f6674776172652c20433335363020536f667477617265202843333536302d414456495053455256494345534b392d4d292c2056657273696f6e2031322e322834342953452c2052454c4541534520534f4654574152452028666331290a436f707972696768742028632920313938362d3230303820627920436973636f2053797374656d732c20496e632e0a436f6d70696c6564205361742030352d4a616e2d30382030303a3135206279207765696c697500060018636973636f2057532d4333353630472d3234505300020011000000010101cc000400000000000300174769676162697445746865726e6574302f313300040008000000280008002400000c011200000000ffffffff010220ff00000000000000192fa7b280ff000000090004000a00060001000b0005010012000500001300050000160011000000010101cc000400000000001a00100000000100000000ffffffff";

    const SW: &[u8] = b"Cisco IOS Software, C3560 Software (C3560-ADVIPSERVICESK9-M), Version 12.2(44)SE, RELEASE SOFTWARE (fc1)\nCopyright (c) 1986-2008 by Cisco Systems, Inc.\nCompiled Sat 05-Jan-08 00:15 by weiliu";

    const V4_ZERO: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

    /// Expected values from `tshark -r tcpdump_LLDP_and_CDP.pcap -V` (tshark 4.0).
    #[test]
    fn corpus_frame1() {
        let b = unhex(S1_FRAME1);
        let c = Cdp::new_checked(&b).unwrap();
        assert_eq!((c.version(), c.ttl(), c.checksum()), (2, 180, 0x0bea));
        let types: Vec<u16> = c.tlvs().map(|t| t.unwrap().tlv_type()).collect();
        assert_eq!(
            types,
            [
                0x01, 0x05, 0x06, 0x02, 0x03, 0x04, 0x08, 0x09, 0x0a, 0x0b, 0x12, 0x13, 0x16, 0x1a
            ]
        );
        assert_eq!(c.device_id(), Some(&b"S1"[..]));
        assert_eq!(c.software_version(), Some(SW));
        assert_eq!(c.platform(), Some(&b"cisco WS-C3560-24TS"[..]));
        assert_eq!(c.addresses().collect::<Vec<_>>(), [V4_ZERO]);
        let e: Vec<_> = c.address_entries().map(Result::unwrap).collect();
        assert_eq!(
            e,
            [CdpAddress {
                protocol_type: 1,
                protocol: &[0xcc],
                address: &[0, 0, 0, 0]
            }]
        );
        assert_eq!(c.port_id(), Some(&b"FastEthernet0/13"[..]));
        assert_eq!(c.capabilities(), Some(0x28));
        assert_eq!(c.native_vlan(), Some(1));
        assert_eq!(c.duplex(), Some(1)); // Full
        assert_eq!(c.management_addresses().collect::<Vec<_>>(), [V4_ZERO]);
        assert_eq!(c.find(CdpTlv::VTP_DOMAIN).unwrap().value(), b"");
        let last = c.tlvs().last().unwrap().unwrap();
        assert_eq!(last.offset() + last.len(), b.len());
    }

    #[test]
    fn corpus_frame2() {
        let b = unhex(S2_FRAME2);
        let c = Cdp::new_checked(&b).unwrap();
        assert_eq!(c.checksum(), 0x971d);
        assert_eq!(c.device_id(), Some(&b"S2"[..]));
        assert_eq!(c.platform(), Some(&b"cisco WS-C3560G-24PS"[..]));
        assert_eq!(c.port_id(), Some(&b"GigabitEthernet0/13"[..]));
        assert_eq!(c.addresses().collect::<Vec<_>>(), [V4_ZERO]);
    }

    #[test]
    fn every_prefix() {
        for hex in [S1_FRAME1, S2_FRAME2] {
            let full = unhex(hex);
            let full_view = Cdp::new_checked(&full).unwrap();
            let all: Vec<_> = full_view.tlvs().map(Result::unwrap).collect();
            let addrs = full_view.find(CdpTlv::ADDRESSES).unwrap();
            let addr_end = addrs.offset() + addrs.len();
            assert!(addr_end == 244 || addr_end == 245);
            for n in 0..=full.len() {
                let b = &full[..n];
                let at_boundary = n == HEADER_LEN || all.iter().any(|t| t.offset() + t.len() == n);
                assert_eq!(Cdp::new_checked(b).is_ok(), at_boundary, "prefix {n}");
                match Cdp::new_partial(b) {
                    Err(e) => {
                        assert!(n < HEADER_LEN);
                        assert_eq!(e, ParseError::truncated(Layer::Cdp, 0, HEADER_LEN, n));
                    }
                    Ok((c, err)) => {
                        assert_eq!(err.is_none(), at_boundary);
                        if let Some(e) = err {
                            let ErrorKind::Truncated { needed, available } = e.kind else {
                                panic!("{e}")
                            };
                            assert!(needed > n && available == n);
                        }
                        let got: Vec<_> = c.tlvs().map_while(Result::ok).collect();
                        let want: Vec<_> = all
                            .iter()
                            .copied()
                            .filter(|t| t.offset() + t.len() <= n)
                            .collect();
                        assert_eq!(got, want);
                        let _ = (c.version(), c.ttl(), c.checksum(), c.capabilities());
                        // The address appears only once its TLV is complete.
                        assert_eq!(c.addresses().count(), usize::from(n >= addr_end));
                    }
                }
            }
        }
    }

    fn tlv(t: u16, v: &[u8]) -> Vec<u8> {
        let mut out = t.to_be_bytes().to_vec();
        out.extend_from_slice(&(v.len() as u16 + 4).to_be_bytes());
        out.extend_from_slice(v);
        out
    }

    #[test]
    fn malformed_tlv_lengths() {
        for bad_len in 0u16..4 {
            let mut b = vec![2, 180, 0, 0];
            b.extend_from_slice(&tlv(1, b"sw1"));
            b.extend_from_slice(&[0x00, 0x03]);
            b.extend_from_slice(&bad_len.to_be_bytes());
            b.extend_from_slice(&[0; 8]);
            let e = Cdp::new_checked(&b).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid("cdp tlv length below 4"));
            let (c, err) = Cdp::new_partial(&b).unwrap();
            assert_eq!(err, Some(e));
            assert_eq!(c.device_id(), Some(&b"sw1"[..]));
            assert_eq!(c.port_id(), None);
            assert_eq!(c.tlvs().count(), 2);
        }
        // Length past the end.
        let b = [2, 180, 0, 0, 0, 1, 0xff, 0xff, b'x'];
        assert_eq!(
            Cdp::new_checked(&b),
            Err(ParseError::truncated(Layer::Cdp, 0, 4 + 0xffff, 9))
        );
        // Header only: valid, no TLVs.
        let c = Cdp::new_checked(&[1, 60, 0xab, 0xcd]).unwrap();
        assert_eq!((c.version(), c.ttl(), c.checksum()), (1, 60, 0xabcd));
        assert_eq!(c.tlvs().count(), 0);
        assert_eq!(c.device_id(), None);
        assert_eq!(c.addresses().count(), 0);
        // Too many (empty) TLVs.
        let mut b = vec![2, 180, 0, 0];
        b.extend_from_slice(&tlv(0x99, b"").repeat(MAX_TLVS + 1));
        let e = Cdp::new_checked(&b).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooDeep);
        assert!(Cdp::new_checked(&b[..4 + 4 * MAX_TLVS]).is_ok());
        // Short fixed-size values give None.
        let mut b = vec![2, 180, 0, 0];
        b.extend_from_slice(&tlv(CdpTlv::CAPABILITIES, &[0, 0, 1]));
        b.extend_from_slice(&tlv(CdpTlv::NATIVE_VLAN, &[0]));
        b.extend_from_slice(&tlv(CdpTlv::DUPLEX, &[]));
        let c = Cdp::new_checked(&b).unwrap();
        assert_eq!(
            (c.capabilities(), c.native_vlan(), c.duplex()),
            (None, None, None)
        );
    }

    #[test]
    fn addresses() {
        let mut v = 4u32.to_be_bytes().to_vec();
        // IPv4 192.0.2.1
        v.extend_from_slice(&[1, 1, 0xcc, 0, 4, 192, 0, 2, 1]);
        // Unknown NLPID (CLNS 0x81): skipped.
        v.extend_from_slice(&[1, 1, 0x81, 0, 2, 0x49, 0x00]);
        // IPv6 2001:db8::1
        v.extend_from_slice(&[2, 8, 0xaa, 0xaa, 3, 0, 0, 0, 0x86, 0xdd, 0, 16]);
        v.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        // IPv4 with a wrong address length: not an IpAddr.
        v.extend_from_slice(&[1, 1, 0xcc, 0, 3, 10, 0, 0]);
        let mut b = vec![2, 180, 0, 0];
        b.extend_from_slice(&tlv(CdpTlv::ADDRESSES, &v));
        let c = Cdp::new_checked(&b).unwrap();
        let ips: Vec<IpAddr> = c.addresses().collect();
        assert_eq!(
            ips,
            [
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(c.address_entries().count(), 4);
        assert!(c.address_entries().all(|e| e.is_ok()));

        // Count larger than the entries present: the IPs that are there, then an error.
        let mut v2 = v.clone();
        v2[..4].copy_from_slice(&1000u32.to_be_bytes());
        let mut b = vec![2, 180, 0, 0];
        b.extend_from_slice(&tlv(CdpTlv::ADDRESSES, &v2));
        let c = Cdp::new_checked(&b).unwrap();
        assert_eq!(c.addresses().count(), 2);
        let entries: Vec<_> = c.address_entries().collect();
        assert_eq!(entries.len(), 5);
        let e = entries[4].unwrap_err();
        assert_eq!(
            e,
            ParseError::truncated(Layer::Cdp, 0, 9 + v.len(), 8 + v.len())
        );

        // An entry whose protocol length runs past the TLV.
        let mut b = vec![2, 180, 0, 0];
        b.extend_from_slice(&tlv(CdpTlv::ADDRESSES, &[0, 0, 0, 1, 1, 200, 0xcc]));
        let c = Cdp::new_checked(&b).unwrap();
        assert_eq!(c.addresses().count(), 0);
        assert!(c.address_entries().next().unwrap().is_err());
        assert_eq!(c.address_entries().count(), 1);

        // No room for the count.
        let mut b = vec![2, 180, 0, 0];
        b.extend_from_slice(&tlv(CdpTlv::ADDRESSES, &[0, 0]));
        let c = Cdp::new_checked(&b).unwrap();
        let entries: Vec<_> = c.address_entries().collect();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].unwrap_err().is_truncation());
        // Count 0.
        let mut b = vec![2, 180, 0, 0];
        b.extend_from_slice(&tlv(CdpTlv::ADDRESSES, &[0, 0, 0, 0, 9, 9]));
        assert_eq!(Cdp::new_checked(&b).unwrap().address_entries().count(), 0);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1500)) {
            if let Ok((c, err)) = Cdp::new_partial(&b) {
                let n = c.tlvs().count();
                prop_assert!(n <= MAX_TLVS + 1 && n <= b.len() / 4 + 1);
                prop_assert_eq!(Cdp::new_checked(&b).err(), err);
                let entries = c.address_entries().count();
                prop_assert!(entries <= b.len() / 4 + 1);
                let _ = (c.device_id(), c.addresses().count(), c.management_addresses().count(),
                         c.port_id(), c.capabilities(), c.software_version(), c.platform(),
                         c.native_vlan(), c.duplex());
            }
        }

        #[test]
        fn roundtrip(tlvs in proptest::collection::vec(
                (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
            ips in proptest::collection::vec(any::<IpAddr>(), 0..8)) {
            let mut b = vec![2, 180, 0x12, 0x34];
            for (t, v) in &tlvs {
                b.extend_from_slice(&tlv(*t, v));
            }
            let mut v = (ips.len() as u32).to_be_bytes().to_vec();
            for ip in &ips {
                match ip {
                    IpAddr::V4(a) => { v.extend_from_slice(&[1, 1, 0xcc, 0, 4]); v.extend_from_slice(&a.octets()); }
                    IpAddr::V6(a) => {
                        v.extend_from_slice(&[2, 8]);
                        v.extend_from_slice(CdpAddress::LLC_IPV6);
                        v.extend_from_slice(&[0, 16]);
                        v.extend_from_slice(&a.octets());
                    }
                }
            }
            b.extend_from_slice(&tlv(0x16, &v));
            let c = Cdp::new_checked(&b).unwrap();
            let got: Vec<(u16, Vec<u8>)> =
                c.tlvs().map(|t| t.unwrap()).map(|t| (t.tlv_type(), t.value().to_vec())).collect();
            prop_assert_eq!(&got[..tlvs.len()], &tlvs[..]);
            if !tlvs.iter().any(|(t, _)| *t == 0x16) {
                prop_assert_eq!(c.management_addresses().collect::<Vec<_>>(), ips);
            }
        }
    }
}
