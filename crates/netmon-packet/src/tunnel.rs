//! Recognising encapsulations — GRE (incl. ERSPAN II/III), IP-in-IP (4in4, 6in4, 4in6, 6in6),
//! VXLAN, Geneve, Teredo and GTP-U — so that the inner packet can be parsed on demand with
//! [`crate::Packet::inner`].
//!
//! Recognition only: the frame parser does not recurse. The caller decides whether (and how
//! deep) to decapsulate, so an attacker's nesting cannot make one frame cost unbounded work.

use netmon_types::LinkType;

use crate::bytes::{be16, be32, tail, u8_at};
use crate::error::{ErrorKind, Layer, ParseError};

/// What kind of tunnel carries the inner packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// IP-in-IP (IP protocol 4 or 41).
    IpInIp,
    /// GRE with the given protocol type and key.
    Gre {
        /// EtherType of the payload (0x0800 IPv4, 0x86dd IPv6, 0x6558 Ethernet, 0x88be/0x22eb ERSPAN).
        protocol: u16,
        /// Key field, if present.
        key: Option<u32>,
    },
    /// VXLAN (UDP 4789) with its network identifier.
    Vxlan {
        /// VXLAN network identifier (24 bits).
        vni: u32,
    },
    /// Geneve (UDP 6081).
    Geneve {
        /// Virtual network identifier (24 bits).
        vni: u32,
        /// EtherType of the payload.
        protocol: u16,
    },
    /// Teredo (IPv6 over UDP 3544).
    Teredo,
    /// GTP-U G-PDU (UDP 2152).
    GtpU {
        /// Tunnel endpoint identifier.
        teid: u32,
    },
}

impl TunnelKind {
    /// Short name.
    pub const fn name(&self) -> &'static str {
        match self {
            TunnelKind::IpInIp => "ipip",
            TunnelKind::Gre { .. } => "gre",
            TunnelKind::Vxlan { .. } => "vxlan",
            TunnelKind::Geneve { .. } => "geneve",
            TunnelKind::Teredo => "teredo",
            TunnelKind::GtpU { .. } => "gtp-u",
        }
    }
}

/// An encapsulated packet found inside this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel<'a> {
    /// The encapsulation.
    pub kind: TunnelKind,
    /// How to parse `inner`: [`LinkType::ETHERNET`], [`LinkType::IPV4`], [`LinkType::IPV6`] or
    /// [`LinkType::RAW`] (version from the first nibble).
    pub inner_link: LinkType,
    /// The inner packet's bytes.
    pub inner: &'a [u8],
    /// Offset of `inner` within the outer frame.
    pub inner_offset: usize,
}

/// A GRE header (RFC 2784, RFC 2890 key and sequence; version 1 is PPTP's enhanced GRE, RFC 2637).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |C|R|K|S|s|Recur|A| Flags | Ver |         Protocol Type         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      Checksum (optional)      |       Offset (optional)       |  if C or R
/// |                         Key (optional)                        |  if K
/// |                 Sequence Number (optional)                    |  if S
/// |               Acknowledgment Number (optional)                |  if A (version 1)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gre<'a> {
    data: &'a [u8],
    header_len: usize,
}

impl<'a> Gre<'a> {
    /// Checks the flags' optional fields fit and builds the view.
    pub fn new_checked(data: &'a [u8]) -> Result<Gre<'a>, ParseError> {
        let Some(flags) = be16(data, 0) else {
            return Err(ParseError::truncated(Layer::Gre, 0, 4, data.len()));
        };
        let version = flags & 0x7;
        if version > 1 {
            return Err(ParseError::new(
                Layer::Gre,
                0,
                ErrorKind::BadVersion(version as u8),
            ));
        }
        let mut len = 4;
        if flags & 0xc000 != 0 {
            len += 4; // checksum + offset
        }
        if flags & 0x2000 != 0 {
            len += 4;
        }
        if flags & 0x1000 != 0 {
            len += 4;
        }
        if version == 1 && flags & 0x0080 != 0 {
            len += 4;
        }
        if data.len() < len {
            return Err(ParseError::truncated(Layer::Gre, 0, len, data.len()));
        }
        Ok(Gre {
            data,
            header_len: len,
        })
    }

    /// Flag and version bits.
    pub fn flags(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }
    /// Version (0 = GRE, 1 = PPTP enhanced GRE).
    pub fn version(&self) -> u8 {
        (self.flags() & 0x7) as u8
    }
    /// Payload EtherType.
    pub fn protocol(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }
    /// Key (version 0) or payload length + call id (version 1), if present.
    pub fn key(&self) -> Option<u32> {
        let f = self.flags();
        if f & 0x2000 == 0 {
            return None;
        }
        let at = if f & 0xc000 != 0 { 8 } else { 4 };
        be32(self.data, at)
    }
    /// Sequence number, if present.
    pub fn sequence(&self) -> Option<u32> {
        let f = self.flags();
        if f & 0x1000 == 0 {
            return None;
        }
        let at = 4 + if f & 0xc000 != 0 { 4 } else { 0 } + if f & 0x2000 != 0 { 4 } else { 0 };
        be32(self.data, at)
    }
    /// Header length.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.data, self.header_len)
    }
}

/// Finds the tunnel inside a GRE packet (whose header starts at `offset` in the frame).
pub(crate) fn gre_tunnel<'a>(gre: &Gre<'a>, offset: usize) -> Option<Tunnel<'a>> {
    if gre.version() != 0 || gre.flags() & 0x4000 != 0 {
        return None; // PPTP's PPP payload and source-routed GRE are not decapsulated
    }
    let payload = gre.payload();
    let (skip, link) = match gre.protocol() {
        0x0800 => (0, LinkType::IPV4),
        0x86dd => (0, LinkType::IPV6),
        0x6558 => (0, LinkType::ETHERNET),
        // ERSPAN type II: 8-byte header, then the mirrored Ethernet frame.
        0x88be => (8, LinkType::ETHERNET),
        // ERSPAN type III: 12-byte header, plus an 8-byte platform sub-header when O is set.
        0x22eb => (
            12 + if u8_at(payload, 11)? & 1 != 0 { 8 } else { 0 },
            LinkType::ETHERNET,
        ),
        _ => return None,
    };
    let inner = payload.get(skip..)?;
    Some(Tunnel {
        kind: TunnelKind::Gre {
            protocol: gre.protocol(),
            key: gre.key(),
        },
        inner_link: link,
        inner,
        inner_offset: offset + gre.header_len() + skip,
    })
}

/// IANA ports whose UDP payload may be a tunnel.
pub(crate) const VXLAN_PORT: u16 = 4789;
pub(crate) const GENEVE_PORT: u16 = 6081;
pub(crate) const TEREDO_PORT: u16 = 3544;
pub(crate) const GTPU_PORT: u16 = 2152;

/// Recognises a tunnel in a UDP payload (`payload` starts at `offset` in the frame).
pub(crate) fn udp_tunnel(src: u16, dst: u16, payload: &[u8], offset: usize) -> Option<Tunnel<'_>> {
    let on = |p: u16| src == p || dst == p;
    if dst == VXLAN_PORT {
        // RFC 7348: |R|R|R|R|I|R|R|R| Reserved (24) | VNI (24) | Reserved (8) |
        let flags = u8_at(payload, 0)?;
        if flags & 0x08 == 0 || payload.len() < 8 + 14 {
            return None;
        }
        let vni = be32(payload, 4)? >> 8;
        return Some(Tunnel {
            kind: TunnelKind::Vxlan { vni },
            inner_link: LinkType::ETHERNET,
            inner: tail(payload, 8),
            inner_offset: offset + 8,
        });
    }
    if dst == GENEVE_PORT {
        // RFC 8926: |Ver|Opt Len|O|C|Rsvd.| Protocol Type | VNI (24) | Reserved |, options follow.
        let b0 = u8_at(payload, 0)?;
        if b0 >> 6 != 0 {
            return None;
        }
        let hl = 8 + usize::from(b0 & 0x3f) * 4;
        let protocol = be16(payload, 2)?;
        let link = match protocol {
            0x6558 => LinkType::ETHERNET,
            0x0800 => LinkType::IPV4,
            0x86dd => LinkType::IPV6,
            _ => return None,
        };
        let vni = be32(payload, 4)? >> 8;
        return Some(Tunnel {
            kind: TunnelKind::Geneve { vni, protocol },
            inner_link: link,
            inner: payload.get(hl..)?,
            inner_offset: offset + hl,
        });
    }
    if on(GTPU_PORT) {
        return gtpu(payload, offset);
    }
    if on(TEREDO_PORT) {
        return teredo(payload, offset);
    }
    None
}

/// GTPv1-U (3GPP TS 29.281): G-PDU messages carry a user IP packet.
///
/// ```text
/// | Ver(3)=1 | PT=1 | * | E | S | PN | Message Type (0xff = G-PDU) | Length (16) | TEID (32) |
/// | Sequence (16) | N-PDU (8) | Next Ext Type (8) |   only if any of E, S, PN is set
/// | extension headers: Length (8, in 4-byte units) | contents | Next Ext Type (8) | ...
/// ```
fn gtpu(p: &[u8], offset: usize) -> Option<Tunnel<'_>> {
    let flags = u8_at(p, 0)?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || u8_at(p, 1)? != 0xff {
        return None;
    }
    let teid = be32(p, 4)?;
    let mut off = 8;
    if flags & 0x07 != 0 {
        let mut next = u8_at(p, 11)?;
        off = 12;
        let mut hops = 0;
        while next != 0 {
            let units = usize::from(u8_at(p, off)?);
            hops += 1;
            if units == 0 || hops > 16 {
                return None;
            }
            off += units * 4;
            next = u8_at(p, off - 1)?;
        }
    }
    let inner = p.get(off..)?;
    match u8_at(inner, 0)? >> 4 {
        4 | 6 => Some(Tunnel {
            kind: TunnelKind::GtpU { teid },
            inner_link: LinkType::RAW,
            inner,
            inner_offset: offset + off,
        }),
        _ => None,
    }
}

/// Teredo (RFC 4380): optional authentication and origin-indication headers, then an IPv6
/// packet whose payload length must account for exactly the rest of the datagram.
fn teredo(p: &[u8], offset: usize) -> Option<Tunnel<'_>> {
    let mut off = 0;
    if be16(p, off)? == 0x0001 {
        // | 0x0001 | ID-len (8) | AU-len (8) | Client ID | Auth value | Nonce (8) | Confirmation (1) |
        let id_len = usize::from(u8_at(p, 2)?);
        let au_len = usize::from(u8_at(p, 3)?);
        off += 4 + id_len + au_len + 8 + 1;
    }
    if be16(p, off)? == 0x0000 {
        off += 8; // | 0x0000 | obfuscated port (16) | obfuscated IPv4 address (32) |
    }
    let inner = p.get(off..)?;
    if u8_at(inner, 0)? >> 4 != 6 || inner.len() < 40 {
        return None;
    }
    if usize::from(be16(inner, 4)?) + 40 != inner.len() {
        return None;
    }
    Some(Tunnel {
        kind: TunnelKind::Teredo,
        inner_link: LinkType::IPV6,
        inner,
        inner_offset: offset + off,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_optional_fields() {
        // C + K + S set, protocol IPv4.
        let d = [
            0xb0, 0x00, 0x08, 0x00, 0xaa, 0xbb, 0, 0, 0, 0, 0, 42, 0, 0, 0, 7, 0x45,
        ];
        let g = Gre::new_checked(&d).unwrap();
        assert_eq!(
            (g.header_len(), g.key(), g.sequence(), g.protocol()),
            (16, Some(42), Some(7), 0x0800)
        );
        assert_eq!(g.payload(), &[0x45]);
        let t = gre_tunnel(&g, 34).unwrap();
        assert_eq!((t.inner_link, t.inner_offset), (LinkType::IPV4, 50));
        for n in 0..16 {
            assert!(Gre::new_checked(&d[..n]).is_err());
        }
        assert!(Gre::new_checked(&[0, 3, 8, 0]).is_err()); // version 3
    }

    #[test]
    fn vxlan_and_geneve() {
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 0x64, 0];
        v.extend_from_slice(&[0u8; 14]);
        let t = udp_tunnel(40000, VXLAN_PORT, &v, 42).unwrap();
        assert_eq!(
            (t.kind, t.inner_link, t.inner_offset),
            (TunnelKind::Vxlan { vni: 100 }, LinkType::ETHERNET, 50)
        );
        v[0] = 0; // I flag clear: not VXLAN
        assert!(udp_tunnel(40000, VXLAN_PORT, &v, 42).is_none());
        let g = [0x01, 0, 0x65, 0x58, 0, 0, 0x05, 0, 1, 2, 3, 4, 0xaa];
        let t = udp_tunnel(1, GENEVE_PORT, &g, 0).unwrap();
        assert_eq!(
            t.kind,
            TunnelKind::Geneve {
                vni: 5,
                protocol: 0x6558
            }
        );
        assert_eq!(t.inner, &[0xaa]);
    }

    #[test]
    fn teredo_requires_consistent_ipv6() {
        let mut p = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4]; // origin indication
        p.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, 59, 64]);
        p.extend_from_slice(&[0; 32]);
        let t = udp_tunnel(TEREDO_PORT, 50000, &p, 42).unwrap();
        assert_eq!(
            (t.kind, t.inner_offset, t.inner.len()),
            (TunnelKind::Teredo, 50, 40)
        );
        p.push(0); // payload length no longer matches
        assert!(udp_tunnel(TEREDO_PORT, 50000, &p, 42).is_none());
        assert!(udp_tunnel(TEREDO_PORT, 50000, &[0, 1, 255, 255], 0).is_none());
    }

    #[test]
    fn gtpu_with_extension_header() {
        let mut p = vec![0x34, 0xff, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0x85];
        p.extend_from_slice(&[1, 0, 0, 0]); // one 4-byte extension, next type 0
        p.push(0x45);
        let t = udp_tunnel(2152, 2152, &p, 0).unwrap();
        assert_eq!((t.kind, t.inner_offset), (TunnelKind::GtpU { teid: 9 }, 16));
        p[12] = 0; // zero-length extension: rejected, not looped on
        assert!(udp_tunnel(2152, 2152, &p, 0).is_none());
    }
}
