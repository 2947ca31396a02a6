//! Zero-copy parsing of captured frames into borrowed views of every layer.
//!
//! [`Packet::parse`] takes the capture's [`LinkType`] and the frame's bytes and returns a
//! [`Packet`]: the link header, VLAN tags, network layer, transport layer, a recognised tunnel
//! and the payload — each a view borrowing the frame — plus the first [`ParseError`] met.
//!
//! Promises, for any input bytes:
//! - **no panic**: every read is bounds-checked (`#![forbid(unsafe_code)]`, and clippy's
//!   `indexing_slicing` is denied outside tests); fuzzed in `fuzz/`;
//! - **no allocation**: views borrow the frame; bounded collections (VLAN tags, IPv6
//!   extension types) live inline;
//! - **bounded work**: every loop over headers, options or TLVs has a bound, and tunnels are
//!   only recognised, never recursed into ([`Packet::inner`] decapsulates one level on demand);
//! - **lenient**: a truncated (snaplen) or malformed frame yields every layer that parsed and a
//!   typed error naming the layer and the byte offset where parsing stopped.
//!
//! Fixed-format headers come from etherparse's slices (Ethernet, IPv4, IPv6 and its extension
//! headers, TCP, UDP, ARP); the rest are views written here in smoltcp's style.
//!
//! ```
//! use netmon_packet::{LinkType, Net, Packet, Transport};
//!
//! // A Linux cooked (SLL) frame carrying IPv4/TCP SYN 10.0.0.1:40000 -> 10.0.0.2:443.
//! let mut frame = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
//! etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
//!     .tcp(40000, 443, 1, 64240)
//!     .syn()
//!     .write(&mut frame, &[])
//!     .unwrap();
//!
//! let p = Packet::parse(LinkType::LINUX_SLL, &frame);
//! assert!(p.error.is_none());
//! let Transport::Tcp(tcp) = &p.transport else { panic!("not tcp") };
//! assert_eq!(tcp.flags().to_string(), "S");
//! assert!(matches!(p.net, Net::Ipv4(_)));
//!
//! // Cut by a snaplen of 40: the TCP header is incomplete, the ports survive.
//! let cut = Packet::parse_frame(LinkType::LINUX_SLL, &frame[..40], frame.len());
//! assert!(cut.snaplen_truncated());
//! assert_eq!(cut.ports(), Some((40000, 443)));
//! assert_eq!(cut.error.unwrap().to_string(), "ipv4 at byte 16: truncated: needs 40 bytes, 24 available");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod bytes;
pub mod cdp;
pub mod checksum;
pub mod error;
pub mod icmp;
pub mod igmp;
pub mod ip;
pub mod link;
pub mod llc;
pub mod lldp;
pub mod packet;
pub mod text;
pub mod transport;
pub mod tunnel;

pub use checksum::ChecksumStatus;
pub use error::{ErrorKind, Layer, ParseError};
pub use ip::{Fragment, Ipv4, Ipv6};
pub use link::{Link, VlanTag};
pub use netmon_types::{LinkType, Timestamp};
pub use packet::{ArpPacketSlice, Checksums, EtherType, IpNumber, Net, Packet, Transport};
pub use text::{Escaped, MacAddr};
pub use transport::{Tcp, TcpFlags, TcpOptions, Udp};
pub use tunnel::{Tunnel, TunnelKind};
