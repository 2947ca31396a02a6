//! Link Layer Discovery Protocol (IEEE 802.1AB), EtherType `0x88cc`.
//!
//! ```text
//! LLDPDU (IEEE 802.1AB-2016 §8.2): a sequence of TLVs
//! +------------+---------+-----+----------+-----+----------------------+
//! | Chassis ID | Port ID | TTL | optional | ... | End Of LLDPDU (opt.) |
//! +------------+---------+-----+----------+-----+----------------------+
//!
//! TLV (§8.4):
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - - - - - - -
//! |  type (7)   |   length (9)    | value: 0..=511 octets
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - - - - - - -
//! ```
//!
//! # Validation policy
//!
//! The view is lenient about *content* and strict about *framing*:
//!
//! * [`Lldp::new_checked`] fails only if the TLV framing is broken: no room for a first TLV
//!   header, a TLV whose declared length runs past the end of the slice, a dangling single byte
//!   where a TLV header should be, or more than [`MAX_TLVS`] TLVs. Walking stops at the End Of
//!   LLDPDU TLV (type 0); what follows it (Ethernet padding, a captured FCS) is ignored. The
//!   End TLV itself is optional (it is in 802.1AB-2016), so a DU that ends exactly at a TLV
//!   boundary is well formed.
//! * Missing or out-of-order mandatory TLVs (Chassis ID, Port ID, TTL must come first, in that
//!   order) are **not** an error: the accessors return `None` for what is absent, and
//!   [`Lldp::has_mandatory_tlvs`] tells whether the DU starts as the standard demands.
//! * [`Lldp::new_partial`] keeps a view even when the framing breaks (e.g. snaplen
//!   truncation): the accessors then see the TLVs before the break, and the framing error is
//!   returned beside the view.
//!
//! Errors are [`Layer::Lldp`] errors at offset 0 (the start of the slice given to the view);
//! [`ErrorKind::Truncated`] counts `needed`/`available` from that start. The offset of each
//! TLV is available from [`LldpTlv::offset`].

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{array, be16, be32, tail, u8_at};
use crate::error::{ErrorKind, Layer, ParseError};
use crate::text::{Escaped, MacAddr};

/// Upper bound on the TLVs walked in one LLDPDU; more is reported as [`ErrorKind::TooDeep`].
pub const MAX_TLVS: usize = 512;

/// A checked view of an LLDPDU (the Ethernet payload after EtherType `0x88cc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lldp<'a> {
    data: &'a [u8],
}

impl<'a> Lldp<'a> {
    /// Validates the TLV framing of `data` (see the [module docs](self)).
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let (view, err) = Self::new_partial(data)?;
        match err {
            Some(e) => Err(e),
            None => Ok(view),
        }
    }

    /// A view of `data` even when its TLV framing breaks part-way, together with the framing
    /// error if there is one. Fails only when not even one TLV header (2 bytes) is present.
    pub fn new_partial(data: &'a [u8]) -> Result<(Self, Option<ParseError>), ParseError> {
        if data.len() < 2 {
            return Err(ParseError::truncated(Layer::Lldp, 0, 2, data.len()));
        }
        let view = Lldp { data };
        let err = view.tlvs().find_map(Result::err);
        Ok((view, err))
    }

    /// The bytes the view was built on (including anything after the End TLV).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterates over the TLVs, up to and including the End Of LLDPDU TLV.
    ///
    /// Yields at most [`MAX_TLVS`] TLVs; after an `Err` item the iterator is exhausted.
    pub fn tlvs(&self) -> LldpTlvs<'a> {
        LldpTlvs {
            data: self.data,
            offset: 0,
            count: 0,
            done: false,
        }
    }

    /// The first well-framed TLV of type `tlv_type`.
    pub fn find(&self, tlv_type: u8) -> Option<LldpTlv<'a>> {
        self.tlvs()
            .map_while(Result::ok)
            .find(|t| t.tlv_type() == tlv_type)
    }

    /// Whether the DU starts with Chassis ID, Port ID and TTL TLVs, in that order, as
    /// 802.1AB requires.
    pub fn has_mandatory_tlvs(&self) -> bool {
        let mut t = self.tlvs().map_while(Result::ok).map(|t| t.tlv_type());
        t.next() == Some(LldpTlv::CHASSIS_ID)
            && t.next() == Some(LldpTlv::PORT_ID)
            && t.next() == Some(LldpTlv::TTL)
    }

    /// Whether an End Of LLDPDU TLV is present.
    pub fn has_end(&self) -> bool {
        self.find(LldpTlv::END).is_some()
    }

    /// Bytes covered by the well-framed TLVs (through the End TLV if present); what follows is
    /// padding, FCS, or the broken part.
    pub fn tlvs_len(&self) -> usize {
        self.tlvs()
            .map_while(Result::ok)
            .last()
            .map_or(0, |t| t.offset() + t.len())
    }

    /// The Chassis ID TLV (type 1): subtype and identifier. `None` if absent or empty.
    pub fn chassis_id(&self) -> Option<ChassisId<'a>> {
        let (&subtype, id) = self.find(LldpTlv::CHASSIS_ID)?.value().split_first()?;
        Some(ChassisId { subtype, id })
    }

    /// The Port ID TLV (type 2): subtype and identifier. `None` if absent or empty.
    pub fn port_id(&self) -> Option<PortId<'a>> {
        let (&subtype, id) = self.find(LldpTlv::PORT_ID)?.value().split_first()?;
        Some(PortId { subtype, id })
    }

    /// The Time To Live TLV (type 3), in seconds. `None` if absent or shorter than 2 bytes.
    pub fn ttl(&self) -> Option<u16> {
        be16(self.find(LldpTlv::TTL)?.value(), 0)
    }

    /// The Port Description TLV (type 4): untrusted text, show it with [`Escaped`].
    pub fn port_description(&self) -> Option<&'a [u8]> {
        Some(self.find(LldpTlv::PORT_DESCRIPTION)?.value())
    }

    /// The System Name TLV (type 5): untrusted text, show it with [`Escaped`].
    pub fn system_name(&self) -> Option<&'a [u8]> {
        Some(self.find(LldpTlv::SYSTEM_NAME)?.value())
    }

    /// The System Description TLV (type 6): untrusted text, show it with [`Escaped`].
    pub fn system_description(&self) -> Option<&'a [u8]> {
        Some(self.find(LldpTlv::SYSTEM_DESCRIPTION)?.value())
    }

    /// The System Capabilities TLV (type 7). `None` if absent or shorter than 4 bytes.
    pub fn capabilities(&self) -> Option<LldpCapabilities> {
        let v = self.find(LldpTlv::SYSTEM_CAPABILITIES)?.value();
        Some(LldpCapabilities {
            system: be16(v, 0)?,
            enabled: be16(v, 2)?,
        })
    }

    /// The first well-formed Management Address TLV (type 8).
    pub fn management_address(&self) -> Option<ManagementAddress<'a>> {
        self.management_addresses().next()
    }

    /// Every well-formed Management Address TLV (type 8); malformed ones are skipped.
    pub fn management_addresses(&self) -> ManagementAddresses<'a> {
        ManagementAddresses { tlvs: self.tlvs() }
    }
}

/// One LLDP TLV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LldpTlv<'a> {
    tlv_type: u8,
    offset: usize,
    value: &'a [u8],
}

impl<'a> LldpTlv<'a> {
    /// End Of LLDPDU.
    pub const END: u8 = 0;
    /// Chassis ID (mandatory, first).
    pub const CHASSIS_ID: u8 = 1;
    /// Port ID (mandatory, second).
    pub const PORT_ID: u8 = 2;
    /// Time To Live (mandatory, third).
    pub const TTL: u8 = 3;
    /// Port Description.
    pub const PORT_DESCRIPTION: u8 = 4;
    /// System Name.
    pub const SYSTEM_NAME: u8 = 5;
    /// System Description.
    pub const SYSTEM_DESCRIPTION: u8 = 6;
    /// System Capabilities.
    pub const SYSTEM_CAPABILITIES: u8 = 7;
    /// Management Address.
    pub const MANAGEMENT_ADDRESS: u8 = 8;
    /// Organizationally Specific.
    pub const ORG_SPECIFIC: u8 = 127;

    /// The 7-bit TLV type (unknown types are kept as they are).
    pub const fn tlv_type(&self) -> u8 {
        self.tlv_type
    }

    /// The value (information string), exactly as long as the 9-bit length says.
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Offset of the TLV header from the start of the LLDPDU.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Length of the TLV including its 2-byte header.
    pub const fn len(&self) -> usize {
        self.value.len() + 2
    }

    /// Always `false`: a TLV has at least its header (present for API symmetry with `len`).
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// For an Organizationally Specific TLV (type 127) with room for OUI and subtype: those
    /// and the rest of the value.
    pub fn org_specific(&self) -> Option<OrgSpecific<'a>> {
        if self.tlv_type != Self::ORG_SPECIFIC {
            return None;
        }
        Some(OrgSpecific {
            oui: array(self.value, 0)?,
            subtype: u8_at(self.value, 3)?,
            info: tail(self.value, 4),
        })
    }
}

/// Iterator over the TLVs of an [`Lldp`] view; see [`Lldp::tlvs`].
///
/// Each step consumes at least the 2-byte header, and the walk ends after the End TLV, at
/// the end of the data, after [`MAX_TLVS`] TLVs (with a [`ErrorKind::TooDeep`] item), or at the
/// first framing error (yielded once).
#[derive(Clone, Debug)]
pub struct LldpTlvs<'a> {
    data: &'a [u8],
    offset: usize,
    count: usize,
    done: bool,
}

impl<'a> Iterator for LldpTlvs<'a> {
    type Item = Result<LldpTlv<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = tail(self.data, self.offset);
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        // Whatever happens below, this call either ends the walk or advances by >= 2 bytes.
        self.done = true;
        if self.count >= MAX_TLVS {
            return Some(Err(ParseError::new(Layer::Lldp, 0, ErrorKind::TooDeep)));
        }
        let available = self.data.len();
        let Some(header) = be16(rest, 0) else {
            let needed = self.offset.saturating_add(2);
            return Some(Err(ParseError::truncated(
                Layer::Lldp,
                0,
                needed,
                available,
            )));
        };
        let tlv_type = (header >> 9) as u8; // 7 bits: the cast cannot lose anything
        let len = usize::from(header & 0x01ff);
        let Some(value) = rest.get(2..2 + len) else {
            let needed = self.offset.saturating_add(2 + len);
            return Some(Err(ParseError::truncated(
                Layer::Lldp,
                0,
                needed,
                available,
            )));
        };
        let tlv = LldpTlv {
            tlv_type,
            offset: self.offset,
            value,
        };
        self.offset = self.offset.saturating_add(2 + len);
        self.count += 1;
        self.done = tlv_type == LldpTlv::END;
        Some(Ok(tlv))
    }
}

impl core::iter::FusedIterator for LldpTlvs<'_> {}

/// An Organizationally Specific TLV's content (IEEE 802.1AB §8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrgSpecific<'a> {
    /// Organizationally unique identifier (e.g. `00-80-c2` IEEE 802.1, `00-12-0f` 802.3).
    pub oui: [u8; 3],
    /// Organizationally defined subtype.
    pub subtype: u8,
    /// The rest of the value.
    pub info: &'a [u8],
}

/// The Chassis ID TLV's content (IEEE 802.1AB §8.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChassisId<'a> {
    /// Chassis ID subtype: 1 chassis component, 2 interface alias, 3 port component,
    /// 4 MAC address, 5 network address, 6 interface name, 7 locally assigned.
    pub subtype: u8,
    /// The identifier, interpreted according to `subtype`.
    pub id: &'a [u8],
}

impl<'a> ChassisId<'a> {
    /// Subtype: MAC address.
    pub const MAC_ADDRESS: u8 = 4;
    /// Subtype: network address (IANA address family + address).
    pub const NETWORK_ADDRESS: u8 = 5;

    /// The MAC address for subtype 4 with a 6-byte identifier.
    pub fn mac(&self) -> Option<MacAddr> {
        (self.subtype == Self::MAC_ADDRESS)
            .then(|| MacAddr::from_slice(self.id))
            .flatten()
    }

    /// The IPv4/IPv6 address for subtype 5 (IANA family 1 or 2 with a matching length).
    pub fn ip(&self) -> Option<IpAddr> {
        (self.subtype == Self::NETWORK_ADDRESS)
            .then(|| network_address_ip(self.id))
            .flatten()
    }

    /// A safe rendering: MAC as `aa:bb:..`, network address as IP (or `family N: ..`), any
    /// other subtype as [`Escaped`] text.
    pub fn display(&self) -> IdDisplay<'a> {
        IdDisplay::new(
            self.id,
            self.subtype == Self::MAC_ADDRESS,
            self.subtype == Self::NETWORK_ADDRESS,
        )
    }
}

/// The Port ID TLV's content (IEEE 802.1AB §8.5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortId<'a> {
    /// Port ID subtype: 1 interface alias, 2 port component, 3 MAC address, 4 network
    /// address, 5 interface name, 6 agent circuit ID, 7 locally assigned.
    pub subtype: u8,
    /// The identifier, interpreted according to `subtype`.
    pub id: &'a [u8],
}

impl<'a> PortId<'a> {
    /// Subtype: MAC address.
    pub const MAC_ADDRESS: u8 = 3;
    /// Subtype: network address (IANA address family + address).
    pub const NETWORK_ADDRESS: u8 = 4;

    /// The MAC address for subtype 3 with a 6-byte identifier.
    pub fn mac(&self) -> Option<MacAddr> {
        (self.subtype == Self::MAC_ADDRESS)
            .then(|| MacAddr::from_slice(self.id))
            .flatten()
    }

    /// The IPv4/IPv6 address for subtype 4 (IANA family 1 or 2 with a matching length).
    pub fn ip(&self) -> Option<IpAddr> {
        (self.subtype == Self::NETWORK_ADDRESS)
            .then(|| network_address_ip(self.id))
            .flatten()
    }

    /// A safe rendering: MAC as `aa:bb:..`, network address as IP (or `family N: ..`), any
    /// other subtype as [`Escaped`] text.
    pub fn display(&self) -> IdDisplay<'a> {
        IdDisplay::new(
            self.id,
            self.subtype == Self::MAC_ADDRESS,
            self.subtype == Self::NETWORK_ADDRESS,
        )
    }
}

/// IANA address family numbers used by LLDP network addresses.
const IANA_AF_IPV4: u8 = 1;
const IANA_AF_IPV6: u8 = 2;

/// An IP address from an IANA address family number and address bytes.
fn family_ip(family: u8, addr: &[u8]) -> Option<IpAddr> {
    match family {
        IANA_AF_IPV4 => <[u8; 4]>::try_from(addr)
            .ok()
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        IANA_AF_IPV6 => <[u8; 16]>::try_from(addr)
            .ok()
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
}

/// An IP address from a "network address" id: IANA family byte, then the address.
fn network_address_ip(id: &[u8]) -> Option<IpAddr> {
    let (&family, addr) = id.split_first()?;
    family_ip(family, addr)
}

/// Safe `Display` of a chassis or port identifier; see [`ChassisId::display`].
#[derive(Clone, Copy, Debug)]
pub struct IdDisplay<'a>(IdRepr<'a>);

#[derive(Clone, Copy, Debug)]
enum IdRepr<'a> {
    Mac(MacAddr),
    Ip(IpAddr),
    Network { family: u8, addr: Escaped<'a> },
    Text(Escaped<'a>),
}

impl<'a> IdDisplay<'a> {
    fn new(id: &'a [u8], is_mac: bool, is_network: bool) -> Self {
        let repr = if let Some(mac) = is_mac.then(|| MacAddr::from_slice(id)).flatten() {
            IdRepr::Mac(mac)
        } else if is_network {
            match id.split_first() {
                Some((&family, addr)) => match family_ip(family, addr) {
                    Some(ip) => IdRepr::Ip(ip),
                    None => IdRepr::Network {
                        family,
                        addr: Escaped::new(addr),
                    },
                },
                None => IdRepr::Text(Escaped::new(id)),
            }
        } else {
            IdRepr::Text(Escaped::new(id))
        };
        IdDisplay(repr)
    }
}

impl fmt::Display for IdDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IdRepr::Mac(m) => m.fmt(f),
            IdRepr::Ip(ip) => ip.fmt(f),
            IdRepr::Network { family, addr } => write!(f, "family {family}: {addr}"),
            IdRepr::Text(t) => t.fmt(f),
        }
    }
}

/// The System Capabilities TLV (IEEE 802.1AB §8.5.8): bit 0 other, 1 repeater, 2 bridge,
/// 3 WLAN AP, 4 router, 5 telephone, 6 DOCSIS, 7 station only, 8 C-VLAN, 9 S-VLAN, 10 TPMR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LldpCapabilities {
    /// Capabilities the system supports.
    pub system: u16,
    /// Capabilities currently enabled.
    pub enabled: u16,
}

/// The Management Address TLV (IEEE 802.1AB §8.5.9).
///
/// ```text
/// +----------+---------+-----------+-----------+-----------+---------+----------+
/// | addr str | addr    | address   | interface | interface | OID str | OID      |
/// | len (1)  | subtype | (1..=31)  | subtype(1)| number (4)| len (1) | (0..=128)|
/// +----------+---------+-----------+-----------+-----------+---------+----------+
///   addr str len = 1 (subtype) + address length, 2..=32
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManagementAddress<'a> {
    /// Address subtype: IANA address family (1 IPv4, 2 IPv6, 6 802 MAC, ...).
    pub subtype: u8,
    /// The address bytes.
    pub address: &'a [u8],
    /// Interface numbering subtype: 1 unknown, 2 ifIndex, 3 system port number.
    pub interface_subtype: u8,
    /// Interface number.
    pub interface_number: u32,
    /// Object identifier (BER-encoded), possibly empty.
    pub oid: &'a [u8],
}

impl<'a> ManagementAddress<'a> {
    /// Parses a Management Address TLV value; `None` if any length is inconsistent.
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let str_len = usize::from(u8_at(value, 0)?);
        if !(2..=32).contains(&str_len) {
            return None;
        }
        let subtype = u8_at(value, 1)?;
        let address = value.get(2..1 + str_len)?;
        let at = 1 + str_len;
        let interface_subtype = u8_at(value, at)?;
        let interface_number = be32(value, at + 1)?;
        let oid_len = usize::from(u8_at(value, at + 5)?);
        let oid = value.get(at + 6..at + 6 + oid_len)?;
        Some(ManagementAddress {
            subtype,
            address,
            interface_subtype,
            interface_number,
            oid,
        })
    }

    /// The address as IPv4/IPv6 for subtypes 1/2 with a matching length.
    pub fn ip(&self) -> Option<IpAddr> {
        family_ip(self.subtype, self.address)
    }
}

/// Iterator over the well-formed Management Address TLVs; see [`Lldp::management_addresses`].
#[derive(Clone, Debug)]
pub struct ManagementAddresses<'a> {
    tlvs: LldpTlvs<'a>,
}

impl<'a> Iterator for ManagementAddresses<'a> {
    type Item = ManagementAddress<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        for tlv in self.tlvs.by_ref() {
            let tlv = tlv.ok()?;
            if tlv.tlv_type() == LldpTlv::MANAGEMENT_ADDRESS {
                if let Some(m) = ManagementAddress::parse(tlv.value()) {
                    return Some(m);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::unhex;
    use proptest::prelude::*;

    /// `tcpdump_LLDP_and_CDP.pcap` frame 3, Ethernet payload (after the 14-byte header).
    const S2_FRAME3: &str = "02070400192fa7b28d040d0155706c696e6b20746f205331060200780a0c53322e636973636f2e636f6d0cbe436973636f20494f5320536f6674776172652c20433335363020536f667477617265202843333536302d414456495053455256494345534b392d4d292c2056657273696f6e2031322e322834342953452c2052454c4541534520534f4654574152452028666331290a436f707972696768742028632920313938362d3230303820627920436973636f2053797374656d732c20496e632e0a436f6d70696c6564205361742030352d4a616e2d30382030303a3135206279207765696c697508134769676162697445746865726e6574302f31330e0400140004fe060080c2010001fe0900120f0103c03600100000";
    /// `tcpdump_LLDP_and_CDP.pcap` frame 4, Ethernet payload.
    const S1_FRAME4: &str = "0207040018ba98688f0407074661302f3133060200780a0c53312e636973636f2e636f6d0cbe436973636f20494f5320536f6674776172652c20433335363020536f667477617265202843333536302d414456495053455256494345534b392d4d292c2056657273696f6e2031322e322834342953452c2052454c4541534520534f4654574152452028666331290a436f707972696768742028632920313938362d3230303820627920436973636f2053797374656d732c20496e632e0a436f6d70696c6564205361742030352d4a616e2d30382030303a3135206279207765696c697508104661737445746865726e6574302f31330e0400140004fe060080c2010001fe0900120f0103003600100000";
    /// `zeek_lldp.pcap` frame 1, Ethernet payload (ends with 4 bytes of FCS after End).
    const ZEEK: &str = "02070400222d81db1004020731060200780807506f72742023310a0d534d43475338502d536d6172740c23534d43475338502d536d617274202d20534d43475338502d536d6172742076332e32300e0400040004100c0501c0a8020a0200000001000000bb14272c";
    /// `tcpdump_lldp_8023_mtu-oobr.pcap`: snaplen 20, an 802.3 org TLV cut short.
    const MTU_OOBR: &str = "fe0400120f04";
    /// `tcpdump_lldp_asan.pcap`: network-address chassis id, no Port ID / TTL, 8 trailing bytes.
    const ASAN: &str =
        "0206050100002000fe0900120f0100ffff2000fe0900120f010000fe0f000000fe06ef7f55557675";
    /// `tcpdump_lldp-infinite-loop-1.pcap`, first 341 bytes of the payload (through the End
    /// TLV at 335 and a few of the 1404 trailing bytes the original loops on).
    const LOOP_PREFIX: &str = "02070408002742ba5904070308002742ba5906020078fe060080c2010000fe070080c202020000fe0e0080c20300010764656661756c74fe0d0080c204080000424203008008ff070080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c000000000000000080c20c00";

    const SYS_DESC: &[u8] = b"Cisco IOS Software, C3560 Software (C3560-ADVIPSERVICESK9-M), Version 12.2(44)SE, RELEASE SOFTWARE (fc1)\nCopyright (c) 1986-2008 by Cisco Systems, Inc.\nCompiled Sat 05-Jan-08 00:15 by weiliu";

    fn types(l: &Lldp<'_>) -> Vec<u8> {
        l.tlvs().map(|t| t.unwrap().tlv_type()).collect()
    }

    /// Expected values from `tshark -r tcpdump_LLDP_and_CDP.pcap -V -O lldp` (tshark 4.0).
    #[test]
    fn corpus_s2_frame3() {
        let b = unhex(S2_FRAME3);
        let l = Lldp::new_checked(&b).unwrap();
        assert_eq!(types(&l), [1, 2, 3, 5, 6, 4, 7, 127, 127, 0]);
        let c = l.chassis_id().unwrap();
        assert_eq!(c.subtype, 4);
        assert_eq!(c.mac(), Some(MacAddr([0x00, 0x19, 0x2f, 0xa7, 0xb2, 0x8d])));
        assert_eq!(c.display().to_string(), "00:19:2f:a7:b2:8d");
        let p = l.port_id().unwrap();
        assert_eq!(p.subtype, 1); // interface alias
        assert_eq!(p.id, b"Uplink to S1");
        assert_eq!(p.display().to_string(), "Uplink to S1");
        assert_eq!(p.mac(), None);
        assert_eq!(l.ttl(), Some(120));
        assert_eq!(l.system_name(), Some(&b"S2.cisco.com"[..]));
        assert_eq!(l.system_description(), Some(SYS_DESC));
        assert_eq!(
            Escaped::new(l.system_description().unwrap()).to_string(),
            "Cisco IOS Software, C3560 Software (C3560-ADVIPSERVICESK9-M), Version 12.2(44)SE, \
             RELEASE SOFTWARE (fc1)\\x0aCopyright (c) 1986-2008 by Cisco Systems, Inc.\\x0a\
             Compiled Sat 05-Jan-08 00:15 by weiliu"
        );
        assert_eq!(l.port_description(), Some(&b"GigabitEthernet0/13"[..]));
        assert_eq!(
            l.capabilities(),
            Some(LldpCapabilities {
                system: 0x0014,
                enabled: 0x0004
            })
        );
        assert_eq!(l.management_address(), None);
        let orgs: Vec<_> = l.tlvs().filter_map(|t| t.unwrap().org_specific()).collect();
        assert_eq!(orgs.len(), 2);
        assert_eq!((orgs[0].oui, orgs[0].subtype), ([0x00, 0x80, 0xc2], 1));
        assert_eq!(orgs[0].info, [0x00, 0x01]); // Port VLAN ID 1
        assert_eq!((orgs[1].oui, orgs[1].subtype), ([0x00, 0x12, 0x0f], 1));
        assert!(l.has_mandatory_tlvs());
        assert!(l.has_end());
        assert_eq!(l.tlvs_len(), b.len());
    }

    #[test]
    fn corpus_s1_frame4() {
        let b = unhex(S1_FRAME4);
        let l = Lldp::new_checked(&b).unwrap();
        assert_eq!(
            l.chassis_id().unwrap().display().to_string(),
            "00:18:ba:98:68:8f"
        );
        let p = l.port_id().unwrap();
        assert_eq!((p.subtype, p.id), (7, &b"Fa0/13"[..])); // locally assigned
        assert_eq!(l.ttl(), Some(120));
        assert_eq!(l.system_name(), Some(&b"S1.cisco.com"[..]));
        assert_eq!(l.port_description(), Some(&b"FastEthernet0/13"[..]));
        assert_eq!(l.system_description(), Some(SYS_DESC));
    }

    /// Expected values from `tshark -r zeek_lldp.pcap -V -O lldp`.
    #[test]
    fn corpus_zeek() {
        let b = unhex(ZEEK);
        let l = Lldp::new_checked(&b).unwrap();
        assert_eq!(types(&l), [1, 2, 3, 4, 5, 6, 7, 8, 0]);
        assert_eq!(
            l.chassis_id().unwrap().mac(),
            Some(MacAddr([0x00, 0x22, 0x2d, 0x81, 0xdb, 0x10]))
        );
        assert_eq!(l.port_id().unwrap().display().to_string(), "1");
        assert_eq!(l.ttl(), Some(120));
        assert_eq!(l.port_description(), Some(&b"Port #1"[..]));
        assert_eq!(l.system_name(), Some(&b"SMCGS8P-Smart"[..]));
        assert_eq!(
            l.system_description(),
            Some(&b"SMCGS8P-Smart - SMCGS8P-Smart v3.20"[..])
        );
        assert_eq!(
            l.capabilities(),
            Some(LldpCapabilities {
                system: 4,
                enabled: 4
            })
        );
        let m = l.management_address().unwrap();
        assert_eq!(m.subtype, 1);
        assert_eq!(m.ip(), Some(IpAddr::V4(Ipv4Addr::new(192, 168, 2, 10))));
        assert_eq!((m.interface_subtype, m.interface_number), (2, 1));
        assert_eq!(m.oid, b"");
        assert_eq!(l.management_addresses().count(), 1);
        // The 4 FCS bytes after the End TLV are not TLVs.
        assert_eq!(l.tlvs_len(), b.len() - 4);
    }

    /// tshark: "Invalid Chassis ID (0x7F), expected (0x01)". The framing is intact (a 4-byte
    /// 802.3 org TLV, subtype 4 "maximum frame size", whose 2-byte size is missing): the view
    /// parses, the 802.3 content is short, and the mandatory TLVs are reported absent.
    #[test]
    fn corpus_mtu_oobr() {
        let b = unhex(MTU_OOBR);
        let l = Lldp::new_checked(&b).unwrap();
        let tlvs: Vec<_> = l.tlvs().map(Result::unwrap).collect();
        assert_eq!(tlvs.len(), 1);
        let org = tlvs[0].org_specific().unwrap();
        assert_eq!(
            (org.oui, org.subtype, org.info),
            ([0x00, 0x12, 0x0f], 4, &[][..])
        );
        assert_eq!(l.chassis_id(), None);
        assert!(!l.has_mandatory_tlvs());
        assert!(!l.has_end());
        assert_eq!(l.tlvs_len(), 6);
        // One byte less and the framing breaks.
        assert_eq!(
            Lldp::new_checked(&b[..5]),
            Err(ParseError::truncated(Layer::Lldp, 0, 6, 5))
        );
    }

    /// tshark: chassis "Network address, Id: 0.0.32.0", then "Invalid Port ID (0x7F)".
    #[test]
    fn corpus_asan() {
        let b = unhex(ASAN);
        let l = Lldp::new_checked(&b).unwrap();
        assert_eq!(types(&l), [1, 127, 127, 0]);
        let c = l.chassis_id().unwrap();
        assert_eq!(c.subtype, 5);
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(0, 0, 32, 0))));
        assert_eq!(c.display().to_string(), "0.0.32.0");
        assert_eq!(l.port_id(), None);
        assert_eq!(l.ttl(), None);
        assert!(!l.has_mandatory_tlvs());
        assert_eq!(l.tlvs_len(), b.len() - 8);
    }

    /// The capture that made tcpdump loop: a 263-byte org TLV then End, then 1404 bytes.
    #[test]
    fn corpus_infinite_loop() {
        let b = unhex(LOOP_PREFIX);
        let l = Lldp::new_checked(&b).unwrap();
        assert_eq!(types(&l), [1, 2, 3, 127, 127, 127, 127, 127, 0]);
        let c = l.chassis_id().unwrap();
        assert_eq!(c.mac(), Some(MacAddr([0x08, 0x00, 0x27, 0x42, 0xba, 0x59])));
        let p = l.port_id().unwrap();
        assert_eq!(p.mac(), Some(MacAddr([0x08, 0x00, 0x27, 0x42, 0xba, 0x59])));
        assert_eq!(p.display().to_string(), "08:00:27:42:ba:59");
        assert_eq!(l.ttl(), Some(120));
        let last = l.tlvs().nth(7).unwrap().unwrap();
        assert_eq!((last.offset(), last.value().len()), (70, 263));
        assert_eq!(l.tlvs_len(), 337);
    }

    /// Every prefix: never panics; strict parse succeeds exactly at TLV boundaries.
    #[test]
    fn every_prefix() {
        for hex in [S2_FRAME3, S1_FRAME4, ZEEK, ASAN, LOOP_PREFIX, MTU_OOBR] {
            let full = unhex(hex);
            let full_view = Lldp::new_checked(&full).unwrap();
            let boundaries: Vec<usize> = full_view
                .tlvs()
                .map(|t| {
                    let t = t.unwrap();
                    t.offset() + t.len()
                })
                .collect();
            let end = *boundaries.last().unwrap();
            for n in 0..=full.len() {
                let b = &full[..n];
                let strict = Lldp::new_checked(b);
                let ok_expected = n >= end || boundaries.contains(&n);
                assert_eq!(strict.is_ok(), ok_expected, "prefix {n} of {}", full.len());
                match Lldp::new_partial(b) {
                    Err(e) => {
                        assert!(n < 2);
                        assert_eq!(e, ParseError::truncated(Layer::Lldp, 0, 2, n));
                    }
                    Ok((l, err)) => {
                        assert_eq!(err.is_none(), ok_expected);
                        if let Some(e) = err {
                            assert!(e.is_truncation(), "{e}");
                            let ErrorKind::Truncated { needed, available } = e.kind else {
                                unreachable!()
                            };
                            assert!(needed > available && available == n);
                        }
                        // Exactly the complete TLVs of the prefix are visible.
                        let got: Vec<_> = l.tlvs().map_while(Result::ok).collect();
                        let want: Vec<_> = full_view
                            .tlvs()
                            .map(Result::unwrap)
                            .filter(|t| t.offset() + t.len() <= n)
                            .collect();
                        assert_eq!(got, want);
                        let chassis = (n >= boundaries[0]).then(|| full_view.chassis_id());
                        assert_eq!(l.chassis_id(), chassis.flatten());
                        let _ = (l.port_id(), l.ttl(), l.management_address(), l.has_end());
                        assert!(l.tlvs_len() <= n);
                    }
                }
            }
        }
    }

    #[test]
    fn malformed() {
        // Single dangling byte after a good TLV.
        let b = [0x06, 0x02, 0x00, 0x78, 0x00];
        let (l, e) = Lldp::new_partial(&b).unwrap();
        assert_eq!(e, Some(ParseError::truncated(Layer::Lldp, 0, 6, 5)));
        assert_eq!(l.ttl(), Some(120));
        // Max length TLV (511) claimed, 3 bytes present.
        let b = [0x0b, 0xff, 1, 2, 3];
        assert_eq!(
            Lldp::new_checked(&b),
            Err(ParseError::truncated(Layer::Lldp, 0, 513, 5))
        );
        // Empty / one byte.
        assert!(Lldp::new_checked(&[]).unwrap_err().is_truncation());
        assert!(Lldp::new_checked(&[0]).unwrap_err().is_truncation());
        // Zero-length typed TLVs give None, not garbage.
        let b = [
            0x02, 0x00, 0x04, 0x00, 0x06, 0x00, 0x0e, 0x01, 0xff, 0x00, 0x00,
        ];
        let l = Lldp::new_checked(&b).unwrap();
        assert_eq!((l.chassis_id(), l.port_id(), l.ttl()), (None, None, None));
        assert_eq!(l.capabilities(), None);
        // Wrong-length MAC subtype falls back to escaped text.
        let b = [0x02, 0x04, 0x04, 0x01, 0x1b, 0x02];
        let c = Lldp::new_checked(&b).unwrap().chassis_id().unwrap();
        assert_eq!(c.mac(), None);
        assert_eq!(c.display().to_string(), r"\x01\x1b\x02");
        // Unknown network address family.
        let b = [0x02, 0x04, 0x05, 0x09, 0xaa, 0xbb];
        let c = Lldp::new_checked(&b).unwrap().chassis_id().unwrap();
        assert_eq!(c.ip(), None);
        assert_eq!(c.display().to_string(), r"family 9: \xaa\xbb");
        // IPv6 network-address port id.
        let mut b = vec![0x04, 0x12, 0x04, 0x02];
        b.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let p = Lldp::new_checked(&b).unwrap().port_id().unwrap();
        assert_eq!(p.display().to_string(), "::1");
    }

    #[test]
    fn too_many_tlvs() {
        // 600 zero-length "port description" TLVs: stops at MAX_TLVS with TooDeep.
        let b = [0x08u8, 0x00].repeat(600);
        let err = Lldp::new_checked(&b).unwrap_err();
        assert_eq!(err, ParseError::new(Layer::Lldp, 0, ErrorKind::TooDeep));
        let (l, _) = Lldp::new_partial(&b).unwrap();
        assert_eq!(l.tlvs().count(), MAX_TLVS + 1);
        assert_eq!(l.tlvs().filter(|t| t.is_ok()).count(), MAX_TLVS);
        // Exactly MAX_TLVS is fine.
        assert!(Lldp::new_checked(&b[..2 * MAX_TLVS]).is_ok());
    }

    #[test]
    fn management_address_parse() {
        // Too short address string length, and OID running past the value.
        assert_eq!(ManagementAddress::parse(&[1, 1, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            ManagementAddress::parse(&[5, 1, 10, 0, 0, 1, 2, 0, 0, 0, 1, 3, 0x2b]),
            None
        );
        let m = ManagementAddress::parse(&[5, 1, 10, 0, 0, 1, 2, 0, 0, 0, 1, 1, 0x2b]).unwrap();
        assert_eq!(m.oid, [0x2b]);
        assert_eq!(m.ip(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        // Malformed first one is skipped, the second is found.
        let mut b = vec![0x10, 0x01, 0x00];
        b.extend_from_slice(&[0x10, 12, 5, 1, 10, 0, 0, 2, 2, 0, 0, 0, 7, 0]);
        let l = Lldp::new_checked(&b).unwrap();
        let m = l.management_address().unwrap();
        assert_eq!(m.interface_number, 7);
        assert_eq!(m.ip(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
    }

    fn encode(tlvs: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (t, v) in tlvs {
            let h = u16::from(*t) << 9 | v.len() as u16;
            out.extend_from_slice(&h.to_be_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1500)) {
            if let Ok((l, err)) = Lldp::new_partial(&b) {
                let n = l.tlvs().count();
                prop_assert!(n <= MAX_TLVS + 1 && n <= b.len() / 2 + 1);
                prop_assert_eq!(Lldp::new_checked(&b).err(), err);
                let _ = (l.chassis_id().map(|c| c.display().to_string()),
                         l.port_id().map(|p| p.display().to_string()),
                         l.ttl(), l.system_name(), l.capabilities(),
                         l.management_addresses().count(), l.has_mandatory_tlvs());
                prop_assert!(l.tlvs_len() <= b.len());
            }
        }

        #[test]
        fn roundtrip(tlvs in proptest::collection::vec(
            (1u8..=127, proptest::collection::vec(any::<u8>(), 0..=511)), 0..20)) {
            let mut b = encode(&tlvs);
            b.extend_from_slice(&[0, 0, 0xde, 0xad]); // End + junk
            let l = Lldp::new_checked(&b).unwrap();
            let got: Vec<(u8, Vec<u8>)> = l.tlvs()
                .map(|t| t.unwrap())
                .filter(|t| t.tlv_type() != LldpTlv::END)
                .map(|t| (t.tlv_type(), t.value().to_vec()))
                .collect();
            prop_assert_eq!(&got, &tlvs);
            prop_assert_eq!(l.tlvs_len(), b.len() - 2);
        }
    }
}
