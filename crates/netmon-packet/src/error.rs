//! Typed parse errors: which layer stopped, where, and why.
//!
//! A parse error never discards what was already parsed: [`crate::Packet`] keeps every layer
//! that parsed and carries at most one [`ParseError`], the one that stopped the walk. Errors are
//! small `Copy` values (no allocation) and each has a bounded [`label`](ParseError::label) that
//! statistics can count by.

use core::fmt;

/// The protocol layer a parse error (or a view) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// The capture's link type itself (e.g. an unsupported one).
    LinkType,
    /// Ethernet II / IEEE 802.3 MAC header.
    Ethernet,
    /// Linux cooked capture v1.
    LinuxSll,
    /// Linux cooked capture v2.
    LinuxSll2,
    /// BSD null / OpenBSD loop 4-byte family header.
    Loopback,
    /// An 802.1Q / 802.1ad VLAN tag.
    Vlan,
    /// IEEE 802.2 LLC header.
    Llc,
    /// SNAP header following LLC.
    Snap,
    /// Spanning-tree BPDU.
    Stp,
    /// ARP / RARP.
    Arp,
    /// Link Layer Discovery Protocol.
    Lldp,
    /// Cisco Discovery Protocol.
    Cdp,
    /// IPv4 header (including options).
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// IPv6 hop-by-hop options header.
    Ipv6HopByHop,
    /// IPv6 routing header (including segment routing).
    Ipv6Routing,
    /// IPv6 fragment header.
    Ipv6Fragment,
    /// IPv6 destination options header.
    Ipv6DestOptions,
    /// IP authentication header (AH), in IPv4 or IPv6.
    IpAuth,
    /// TCP header (including options).
    Tcp,
    /// UDP header.
    Udp,
    /// SCTP common header.
    Sctp,
    /// IPsec ESP (SPI and sequence number; the rest is encrypted).
    Esp,
    /// ICMP for IPv4.
    Icmpv4,
    /// ICMP for IPv6.
    Icmpv6,
    /// IGMP.
    Igmp,
    /// Generic Routing Encapsulation.
    Gre,
    /// VXLAN.
    Vxlan,
    /// Teredo (IPv6 over UDP).
    Teredo,
    /// Geneve.
    Geneve,
}

impl Layer {
    /// Lower-case protocol name, stable for output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Layer::LinkType => "linktype",
            Layer::Ethernet => "eth",
            Layer::LinuxSll => "sll",
            Layer::LinuxSll2 => "sll2",
            Layer::Loopback => "loopback",
            Layer::Vlan => "vlan",
            Layer::Llc => "llc",
            Layer::Snap => "snap",
            Layer::Stp => "stp",
            Layer::Arp => "arp",
            Layer::Lldp => "lldp",
            Layer::Cdp => "cdp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6HopByHop => "ipv6.hopopts",
            Layer::Ipv6Routing => "ipv6.routing",
            Layer::Ipv6Fragment => "ipv6.fragment",
            Layer::Ipv6DestOptions => "ipv6.dstopts",
            Layer::IpAuth => "ah",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Sctp => "sctp",
            Layer::Esp => "esp",
            Layer::Icmpv4 => "icmp",
            Layer::Icmpv6 => "icmpv6",
            Layer::Igmp => "igmp",
            Layer::Gre => "gre",
            Layer::Vxlan => "vxlan",
            Layer::Teredo => "teredo",
            Layer::Geneve => "geneve",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why parsing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The header (or a length it declares) needs more bytes than were captured.
    ///
    /// Whether this is snaplen truncation or a lying length field is told by
    /// [`crate::Packet::snaplen_truncated`].
    Truncated {
        /// Bytes the layer needs, counted from the layer's start.
        needed: usize,
        /// Bytes that were available from the layer's start.
        available: usize,
    },
    /// The capture's link type is not one netmon parses.
    UnsupportedLinkType(u32),
    /// A version field holds a value this layer cannot be (e.g. IPv4 header with version 6).
    BadVersion(u8),
    /// A header-length field is smaller than the fixed header, or otherwise impossible.
    BadHeaderLength(usize),
    /// A total/payload length field is smaller than the header it must contain.
    BadLength(usize),
    /// More stacked headers than the parser's bound (VLAN tags, IPv6 extensions, TLVs).
    TooDeep,
    /// A protocol-specific rule was broken; the text is a short, static description.
    Invalid(&'static str),
}

impl ErrorKind {
    /// A short, bounded, static label for counting errors by kind.
    pub const fn label(&self) -> &'static str {
        match self {
            ErrorKind::Truncated { .. } => "truncated",
            ErrorKind::UnsupportedLinkType(_) => "unsupported-linktype",
            ErrorKind::BadVersion(_) => "bad-version",
            ErrorKind::BadHeaderLength(_) => "bad-header-length",
            ErrorKind::BadLength(_) => "bad-length",
            ErrorKind::TooDeep => "too-deep",
            ErrorKind::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            ErrorKind::UnsupportedLinkType(lt) => write!(f, "unsupported link type {lt}"),
            ErrorKind::BadVersion(v) => write!(f, "bad version {v}"),
            ErrorKind::BadHeaderLength(l) => write!(f, "bad header length {l}"),
            ErrorKind::BadLength(l) => write!(f, "bad length {l}"),
            ErrorKind::TooDeep => f.write_str("too many nested headers"),
            ErrorKind::Invalid(why) => f.write_str(why),
        }
    }
}

/// A parse error: the layer that failed, the byte offset in the frame where that layer starts,
/// and the reason.
///
/// Views that parse a sub-slice report offsets relative to their own slice; the frame parser
/// shifts them with [`ParseError::shifted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{layer} at byte {offset}: {kind}")]
pub struct ParseError {
    /// The layer that could not be parsed.
    pub layer: Layer,
    /// Byte offset, from the start of the frame, of the layer that failed.
    pub offset: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl ParseError {
    /// Builds an error.
    pub const fn new(layer: Layer, offset: usize, kind: ErrorKind) -> ParseError {
        ParseError {
            layer,
            offset,
            kind,
        }
    }

    /// A [`ErrorKind::Truncated`] error for `layer` at `offset`.
    pub const fn truncated(layer: Layer, offset: usize, needed: usize, available: usize) -> Self {
        ParseError::new(layer, offset, ErrorKind::Truncated { needed, available })
    }

    /// The same error with its offset moved `base` bytes further into the frame.
    pub const fn shifted(self, base: usize) -> ParseError {
        ParseError {
            offset: self.offset.saturating_add(base),
            ..self
        }
    }

    /// Whether parsing stopped only because bytes were missing.
    pub const fn is_truncation(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated { .. })
    }

    /// A bounded label, `"<layer>.<kind>"` style pair, for counting errors.
    pub const fn label(&self) -> (&'static str, &'static str) {
        (self.layer.name(), self.kind.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_shift() {
        let e = ParseError::truncated(Layer::Ipv4, 0, 20, 6).shifted(14);
        assert_eq!(
            e.to_string(),
            "ipv4 at byte 14: truncated: needs 20 bytes, 6 available"
        );
        assert!(e.is_truncation());
        assert_eq!(e.label(), ("ipv4", "truncated"));
        let e = ParseError::new(Layer::Lldp, 3, ErrorKind::Invalid("tlv length past end"));
        assert_eq!(e.to_string(), "lldp at byte 3: tlv length past end");
        assert_eq!(
            ParseError::new(Layer::Tcp, usize::MAX, ErrorKind::TooDeep)
                .shifted(1)
                .offset,
            usize::MAX
        );
    }
}
