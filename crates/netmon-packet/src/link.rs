//! Link layers: Ethernet, Linux cooked captures (SLL, SLL2), BSD/OpenBSD loopback, and
//! 802.1Q / 802.1ad VLAN tags.
//!
//! Ethernet uses etherparse's [`Ethernet2HeaderSlice`]. Linux SLL has its own view because
//! etherparse's rejects packet types and protocol values it does not list (a capture may hold
//! them, and "unknown values are data"); SLL2 and the loopback headers are not in etherparse.

use arrayvec::ArrayVec;
pub use etherparse::{EtherType, Ethernet2HeaderSlice};

use crate::bytes::{array, be16, be32, u8_at};
use crate::error::{ErrorKind, Layer, ParseError};
pub use crate::text::MacAddr;

/// The link-layer header of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link<'a> {
    /// Ethernet II or IEEE 802.3 (an "EtherType" ≤ 1500 is then a length; an LLC header follows).
    Ethernet(Ethernet2HeaderSlice<'a>),
    /// Linux cooked capture v1.
    LinuxSll(LinuxSll<'a>),
    /// Linux cooked capture v2.
    LinuxSll2(LinuxSll2<'a>),
    /// BSD null (host byte order) or OpenBSD loop (network byte order) header.
    Loopback(Loopback),
    /// Raw IP: no link header.
    Raw,
    /// The link header could not be parsed (see the packet's error) or the link type is unknown.
    None,
}

impl Link<'_> {
    /// Source MAC address, where the link layer has one (Ethernet, and SLL/SLL2 with a 6-byte address).
    pub fn src_mac(&self) -> Option<MacAddr> {
        match self {
            Link::Ethernet(e) => Some(MacAddr(e.source())),
            Link::LinuxSll(s) => s.mac(),
            Link::LinuxSll2(s) => s.mac(),
            _ => None,
        }
    }

    /// Destination MAC address (Ethernet only).
    pub fn dst_mac(&self) -> Option<MacAddr> {
        match self {
            Link::Ethernet(e) => Some(MacAddr(e.destination())),
            _ => None,
        }
    }

    /// Length of the link header in bytes.
    pub fn header_len(&self) -> usize {
        match self {
            Link::Ethernet(_) => 14,
            Link::LinuxSll(_) => LinuxSll::LEN,
            Link::LinuxSll2(_) => LinuxSll2::LEN,
            Link::Loopback(_) => Loopback::LEN,
            Link::Raw | Link::None => 0,
        }
    }
}

/// Linux "cooked" capture v1 header (`LINKTYPE_LINUX_SLL`), 16 bytes.
///
/// ```text
/// +---------------------------+
/// | packet type (2)           |  0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing
/// | ARPHRD_ type (2)          |
/// | link-layer addr len (2)   |
/// | link-layer address (8)    |
/// | protocol type (2)         |  EtherType, or 1/4/... for non-Ethernet payloads
/// +---------------------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxSll<'a> {
    data: &'a [u8],
}

impl<'a> LinuxSll<'a> {
    /// Header length.
    pub const LEN: usize = 16;

    /// Checks the length and builds the view.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        match data.get(..Self::LEN) {
            Some(h) => Ok(LinuxSll { data: h }),
            None => Err(ParseError::truncated(
                Layer::LinuxSll,
                0,
                Self::LEN,
                data.len(),
            )),
        }
    }

    /// Packet type (0 = to us, 1 = broadcast, 2 = multicast, 3 = to another host, 4 = outgoing).
    pub fn packet_type(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }
    /// `ARPHRD_*` hardware type.
    pub fn arphrd(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }
    /// The sender's link-layer address (up to 8 bytes).
    pub fn addr(&self) -> &'a [u8] {
        let len = usize::from(be16(self.data, 4).unwrap_or(0)).min(8);
        self.data.get(6..6 + len).unwrap_or(&[])
    }
    /// Protocol type: an EtherType for Ethernet-like devices.
    pub fn protocol(&self) -> u16 {
        be16(self.data, 14).unwrap_or(0)
    }
    fn mac(&self) -> Option<MacAddr> {
        <[u8; 6]>::try_from(self.addr()).ok().map(MacAddr)
    }
}

/// Linux "cooked" capture v2 header (`LINKTYPE_LINUX_SLL2`), 20 bytes.
///
/// ```text
/// +---------------------------+
/// | protocol type (2)         |
/// | reserved (2)              |
/// | interface index (4)       |
/// | ARPHRD_ type (2)          |
/// | packet type (1)           |
/// | link-layer addr len (1)   |
/// | link-layer address (8)    |
/// +---------------------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxSll2<'a> {
    data: &'a [u8],
}

impl<'a> LinuxSll2<'a> {
    /// Header length.
    pub const LEN: usize = 20;

    /// Checks the length and builds the view.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        match data.get(..Self::LEN) {
            Some(h) => Ok(LinuxSll2 { data: h }),
            None => Err(ParseError::truncated(
                Layer::LinuxSll2,
                0,
                Self::LEN,
                data.len(),
            )),
        }
    }

    /// Protocol type: an EtherType for Ethernet-like devices.
    pub fn protocol(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }
    /// The capturing host's interface index.
    pub fn ifindex(&self) -> u32 {
        be32(self.data, 4).unwrap_or(0)
    }
    /// `ARPHRD_*` hardware type.
    pub fn arphrd(&self) -> u16 {
        be16(self.data, 8).unwrap_or(0)
    }
    /// Packet type (as in SLL v1).
    pub fn packet_type(&self) -> u8 {
        u8_at(self.data, 10).unwrap_or(0)
    }
    /// The sender's link-layer address (up to 8 bytes).
    pub fn addr(&self) -> &'a [u8] {
        let len = usize::from(u8_at(self.data, 11).unwrap_or(0)).min(8);
        self.data.get(12..12 + len).unwrap_or(&[])
    }
    fn mac(&self) -> Option<MacAddr> {
        <[u8; 6]>::try_from(self.addr()).ok().map(MacAddr)
    }
}

/// BSD loopback header: a 4-byte address family (`LINKTYPE_NULL`: host byte order of the
/// capturing machine, so either order is accepted; `LINKTYPE_LOOP`: network byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loopback {
    /// The raw family value as read in the byte order the link type implies (NULL: the order
    /// that gives a small number).
    pub family: u32,
}

impl Loopback {
    /// Header length.
    pub const LEN: usize = 4;

    /// Parses the header; `network_order` is true for `LINKTYPE_LOOP`.
    pub fn parse(data: &[u8], network_order: bool) -> Result<Loopback, ParseError> {
        let raw: [u8; 4] = array(data, 0)
            .ok_or_else(|| ParseError::truncated(Layer::Loopback, 0, Self::LEN, data.len()))?;
        let family = if network_order {
            u32::from_be_bytes(raw)
        } else {
            // Written in the capturing host's order, which the file does not say: AF values are
            // small, so the order that yields the smaller number is the right one.
            u32::from_le_bytes(raw).min(u32::from_be_bytes(raw))
        };
        Ok(Loopback { family })
    }

    /// The IP version the family denotes: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD,
    /// OpenBSD), 28 (FreeBSD, DragonFly), 30 (macOS) or 10 (Linux).
    pub fn ip_version(&self) -> Option<u8> {
        match self.family {
            2 => Some(4),
            10 | 24 | 28 | 30 => Some(6),
            _ => None,
        }
    }
}

/// One 802.1Q / 802.1ad VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// The tag protocol identifier that introduced it (0x8100, 0x88a8, 0x9100, 0x9200).
    pub tpid: u16,
    /// Priority code point (0–7).
    pub pcp: u8,
    /// Drop-eligible indicator.
    pub dei: bool,
    /// VLAN identifier (0–4095).
    pub vid: u16,
}

impl VlanTag {
    /// Length of a tag on the wire.
    pub const LEN: usize = 4;

    /// Parses the 2-byte TCI that follows `tpid`.
    pub fn from_tci(tpid: u16, tci: u16) -> VlanTag {
        VlanTag {
            tpid,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }
}

/// The VLAN tags of a frame, outermost first, at most [`MAX_VLANS`] of them (a frame with
/// more gets [`ErrorKind::TooDeep`]).
pub type VlanStack = ArrayVec<VlanTag, { MAX_VLANS }>;

/// Bound on stacked VLAN tags.
pub const MAX_VLANS: usize = 8;

/// Whether `ether_type` introduces a VLAN tag (802.1Q, 802.1ad, and the pre-standard QinQ values).
pub const fn is_vlan_tpid(ether_type: u16) -> bool {
    matches!(ether_type, 0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300)
}

/// Parses VLAN tags starting at `data` (which begins right after an EtherType that
/// [`is_vlan_tpid`]). Returns the tags, the EtherType after the last tag and the bytes consumed.
pub(crate) fn parse_vlans(
    mut tpid: u16,
    data: &[u8],
    tags: &mut VlanStack,
) -> Result<(u16, usize), ParseError> {
    let mut off = 0;
    while is_vlan_tpid(tpid) {
        let (Some(tci), Some(next)) = (be16(data, off), be16(data, off + 2)) else {
            return Err(ParseError::truncated(
                Layer::Vlan,
                off,
                VlanTag::LEN,
                data.len().saturating_sub(off),
            ));
        };
        if tags.try_push(VlanTag::from_tci(tpid, tci)).is_err() {
            return Err(ParseError::new(Layer::Vlan, off, ErrorKind::TooDeep));
        }
        off += VlanTag::LEN;
        tpid = next;
    }
    Ok((tpid, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll_fields() {
        let h = [
            0, 4, 0, 1, 0, 6, 0, 0x0c, 0x29, 0xaa, 0xbb, 0xcc, 0, 0, 0x08, 0x00, 0x45,
        ];
        let s = LinuxSll::new_checked(&h).unwrap();
        assert_eq!((s.packet_type(), s.arphrd(), s.protocol()), (4, 1, 0x0800));
        assert_eq!(s.addr(), &[0, 0x0c, 0x29, 0xaa, 0xbb, 0xcc]);
        assert_eq!(
            Link::LinuxSll(s).src_mac().unwrap().to_string(),
            "00:0c:29:aa:bb:cc"
        );
        // A lying address length is clamped to the 8-byte field.
        let mut bad = h;
        bad[5] = 200;
        assert_eq!(LinuxSll::new_checked(&bad).unwrap().addr().len(), 8);
        for n in 0..16 {
            let e = LinuxSll::new_checked(&h[..n]).unwrap_err();
            assert_eq!(
                e.kind,
                ErrorKind::Truncated {
                    needed: 16,
                    available: n
                }
            );
        }
    }

    #[test]
    fn sll2_fields() {
        let h = [
            0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        let s = LinuxSll2::new_checked(&h).unwrap();
        assert_eq!(
            (s.protocol(), s.ifindex(), s.arphrd(), s.packet_type()),
            (0x86dd, 3, 1, 0)
        );
        assert_eq!(s.addr(), &[1, 2, 3, 4, 5, 6]);
        assert!(LinuxSll2::new_checked(&h[..19]).is_err());
    }

    #[test]
    fn loopback_orders() {
        assert_eq!(
            Loopback::parse(&[2, 0, 0, 0], false).unwrap().ip_version(),
            Some(4)
        );
        assert_eq!(
            Loopback::parse(&[0, 0, 0, 30], false).unwrap().ip_version(),
            Some(6)
        );
        assert_eq!(
            Loopback::parse(&[0, 0, 0, 24], true).unwrap().ip_version(),
            Some(6)
        );
        assert_eq!(
            Loopback::parse(&[24, 0, 0, 0], true).unwrap().ip_version(),
            None
        );
        assert!(Loopback::parse(&[2, 0, 0], false).is_err());
    }

    #[test]
    fn vlan_stack_bounded() {
        // Three tags then IPv4.
        let d = [
            0x20, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x81, 0x00, 0x00, 0x1e, 0x08, 0x00,
        ];
        let mut tags = VlanStack::new();
        let (et, used) = parse_vlans(0x88a8, &d, &mut tags).unwrap();
        assert_eq!((et, used), (0x0800, 12));
        let vids: Vec<_> = tags.iter().map(|t| (t.tpid, t.vid, t.pcp)).collect();
        assert_eq!(vids, [(0x88a8, 10, 1), (0x8100, 20, 0), (0x8100, 30, 0)]);
        // An endless chain of tags stops at the bound with TooDeep, not a hang.
        let chain: Vec<u8> = [0x00u8, 0x01, 0x81, 0x00].repeat(100);
        let mut tags = VlanStack::new();
        let e = parse_vlans(0x8100, &chain, &mut tags).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::TooDeep, 32));
        // Cut mid-tag.
        let mut tags = VlanStack::new();
        let e = parse_vlans(0x8100, &d[..6], &mut tags).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        );
    }
}
