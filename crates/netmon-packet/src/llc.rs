//! IEEE 802.2 LLC, SNAP (RFC 1042 / IEEE 802) and spanning-tree BPDUs (IEEE 802.1D/Q).
//!
//! ```text
//! LLC PDU (IEEE 802.2 §3.2):
//! +--------+--------+--------------------+-------------
//! |  DSAP  |  SSAP  | control (1 or 2)   | information
//! +--------+--------+--------------------+-------------
//!   DSAP bit 0: I/G (1 = group address);  SSAP bit 0: C/R (1 = response)
//!   control, first octet: xxxxxxx0 I-format (2 octets), xxxxxx01 S-format (2 octets),
//!                         xxxxxx11 U-format (1 octet)
//!
//! SNAP (DSAP = SSAP = 0xAA, control = 0x03 UI):
//! +--------+--------+--------+--------+--------+-------------
//! |          OUI (3)         |    PID (2)      | payload
//! +--------+--------+--------+--------+--------+-------------
//!   OUI 00-00-00 (RFC 1042) and 00-00-F8 (802.1H): PID is an EtherType
//!   OUI 00-00-0C (Cisco): PID 0x2000 CDP, 0x2003 VTP, 0x2004 DTP, 0x010b PVST+
//! ```
//!
//! Errors are relative to the slice given to the view: an [`Llc`] error is a [`Layer::Llc`]
//! error at offset 0; [`Llc::snap`] reports [`Layer::Snap`] errors at the SNAP header's offset
//! (`header_len()`); [`Stp`] errors are [`Layer::Stp`] errors at offset 0.

use core::fmt;

use crate::bytes::{array, be16, be32, tail, u8_at};
use crate::error::{Layer, ParseError};
use crate::text::MacAddr;

/// A checked view of an IEEE 802.2 LLC header and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Llc<'a> {
    data: &'a [u8],
    header_len: usize,
}

/// The format of an LLC control field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LlcFormat {
    /// Information transfer (2-octet control).
    Information,
    /// Supervisory (2-octet control).
    Supervisory,
    /// Unnumbered (1-octet control), e.g. UI `0x03`.
    Unnumbered,
}

impl<'a> Llc<'a> {
    /// DSAP/SSAP of SNAP.
    pub const SAP_SNAP: u8 = 0xaa;
    /// DSAP/SSAP of the spanning tree protocol (IEEE 802.1 bridge).
    pub const SAP_STP: u8 = 0x42;
    /// Unnumbered Information control value.
    pub const CONTROL_UI: u16 = 0x03;

    /// Checks that the header (3 octets, 4 for I/S-format control) is present.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let Some(first) = u8_at(data, 2) else {
            return Err(ParseError::truncated(Layer::Llc, 0, 3, data.len()));
        };
        let header_len = if first & 0b11 == 0b11 { 3 } else { 4 };
        if data.len() < header_len {
            return Err(ParseError::truncated(Layer::Llc, 0, header_len, data.len()));
        }
        Ok(Llc { data, header_len })
    }

    /// Destination service access point, including the I/G bit.
    pub fn dsap(&self) -> u8 {
        u8_at(self.data, 0).unwrap_or(0)
    }

    /// Source service access point, including the C/R bit.
    pub fn ssap(&self) -> u8 {
        u8_at(self.data, 1).unwrap_or(0)
    }

    /// Whether the DSAP addresses a group (I/G bit set).
    pub fn dsap_is_group(&self) -> bool {
        self.dsap() & 1 == 1
    }

    /// Whether the PDU is a response (C/R bit of the SSAP set).
    pub fn is_response(&self) -> bool {
        self.ssap() & 1 == 1
    }

    /// The control field: the single octet of a U-format field, or the two octets of an
    /// I/S-format field with the first octet in the low byte (so the format bits stay in bits
    /// 0-1, as Wireshark shows it).
    pub fn control(&self) -> u16 {
        let first = u16::from(u8_at(self.data, 2).unwrap_or(0));
        if self.header_len == 4 {
            first | u16::from(u8_at(self.data, 3).unwrap_or(0)) << 8
        } else {
            first
        }
    }

    /// The format of the control field.
    pub fn format(&self) -> LlcFormat {
        match self.control() & 0b11 {
            0b11 => LlcFormat::Unnumbered,
            0b01 => LlcFormat::Supervisory,
            _ => LlcFormat::Information,
        }
    }

    /// Header length: 3, or 4 with an I/S-format control field.
    pub const fn header_len(&self) -> usize {
        self.header_len
    }

    /// The information field after the header.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.data, self.header_len)
    }

    /// Whether a SNAP header follows (DSAP = SSAP = 0xAA, control UI).
    pub fn is_snap(&self) -> bool {
        self.dsap() == Self::SAP_SNAP
            && self.ssap() == Self::SAP_SNAP
            && self.control() == Self::CONTROL_UI
    }

    /// Whether the payload is a spanning-tree BPDU (DSAP 0x42).
    pub fn is_stp(&self) -> bool {
        self.dsap() == Self::SAP_STP
    }

    /// For a SNAP PDU ([`is_snap`](Self::is_snap)): the SNAP header and its payload. Errors
    /// are [`Layer::Snap`] errors at offset [`header_len`](Self::header_len).
    pub fn snap(&self) -> Option<Result<(Snap, &'a [u8]), ParseError>> {
        self.is_snap()
            .then(|| Snap::parse(self.payload()).map_err(|e| e.shifted(self.header_len)))
    }
}

/// A SNAP header: organizationally unique identifier and protocol id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Snap {
    /// Organizationally unique identifier.
    pub oui: [u8; 3],
    /// Protocol identifier (an EtherType for OUI 00-00-00 and 00-00-F8).
    pub pid: u16,
}

impl Snap {
    /// Length of the SNAP header.
    pub const LEN: usize = 5;
    /// RFC 1042 encapsulated Ethernet: the PID is an EtherType.
    pub const OUI_ETHERNET: [u8; 3] = [0x00, 0x00, 0x00];
    /// IEEE 802.1H bridge tunnel: the PID is an EtherType.
    pub const OUI_BRIDGE_TUNNEL: [u8; 3] = [0x00, 0x00, 0xf8];
    /// Cisco.
    pub const OUI_CISCO: [u8; 3] = [0x00, 0x00, 0x0c];
    /// Cisco PID of CDP.
    pub const PID_CDP: u16 = 0x2000;

    /// Parses the 5-byte SNAP header at the start of `data`; returns it and the payload.
    pub fn parse(data: &[u8]) -> Result<(Snap, &[u8]), ParseError> {
        match (array::<3>(data, 0), be16(data, 3)) {
            (Some(oui), Some(pid)) => Ok((Snap { oui, pid }, tail(data, Self::LEN))),
            _ => Err(ParseError::truncated(Layer::Snap, 0, Self::LEN, data.len())),
        }
    }

    /// The EtherType carried, for OUI 00-00-00 or 00-00-F8.
    pub fn ethertype(&self) -> Option<u16> {
        (self.oui == Self::OUI_ETHERNET || self.oui == Self::OUI_BRIDGE_TUNNEL).then_some(self.pid)
    }

    /// Whether this is Cisco Discovery Protocol (OUI 00-00-0C, PID 0x2000).
    pub fn is_cdp(&self) -> bool {
        self.oui == Self::OUI_CISCO && self.pid == Self::PID_CDP
    }
}

/// A bridge identifier: 16-bit priority field (4-bit priority, 12-bit system ID extension in
/// 802.1D-2004/802.1Q) and the bridge MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BridgeId {
    /// The whole 16-bit priority field.
    pub priority: u16,
    /// The bridge address.
    pub mac: MacAddr,
}

impl BridgeId {
    /// Bridge priority (the top 4 bits, a multiple of 4096).
    pub const fn bridge_priority(&self) -> u16 {
        self.priority & 0xf000
    }

    /// System ID extension (the low 12 bits, usually the VLAN / MST instance).
    pub const fn system_id_ext(&self) -> u16 {
        self.priority & 0x0fff
    }

    fn read(b: &[u8], at: usize) -> Option<BridgeId> {
        Some(BridgeId {
            priority: be16(b, at)?,
            mac: MacAddr(array(b, at + 2)?),
        })
    }
}

/// Shown like Wireshark: `priority/system-id-ext/mac`, e.g. `32768/720/00:13:7f:be:8c:c0`.
impl fmt::Display for BridgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.bridge_priority(),
            self.system_id_ext(),
            self.mac
        )
    }
}

/// A checked view of a spanning-tree BPDU (the LLC payload for DSAP 0x42).
///
/// ```text
/// offset  size  field                     (IEEE 802.1D-2004 §9.3, 802.1Q §14)
///  0      2     protocol identifier (0x0000)
///  2      1     protocol version: 0 STP, 2 RSTP, 3 MSTP
///  3      1     BPDU type: 0x00 configuration, 0x80 TCN, 0x02 RST/MST
///  --- TCN BPDUs end here (4 octets) ---
///  4      1     flags: bit 0 topology change, 7 TC ack; RST: 1 proposal, 2-3 port role,
///                      4 learning, 5 forwarding, 6 agreement
///  5      8     root identifier (priority 2, MAC 6)
/// 13      4     root path cost
/// 17      8     bridge identifier
/// 25      2     port identifier
/// 27      2     message age    \
/// 29      2     max age         | units of 1/256 s
/// 31      2     hello time      |
/// 33      2     forward delay  /
///  --- configuration BPDUs end here (35 octets) ---
/// 35      1     version 1 length (0)
///  --- RST BPDUs end here (36 octets); MST BPDUs continue with version 3 length (2) ...
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stp<'a> {
    data: &'a [u8],
}

/// The fields of a configuration or RST BPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StpConfig {
    /// Flags (see [`Stp`] for the bits).
    pub flags: u8,
    /// The root bridge.
    pub root: BridgeId,
    /// Cost of the path to the root.
    pub root_path_cost: u32,
    /// The transmitting bridge.
    pub bridge: BridgeId,
    /// The transmitting port (priority in the top 4 bits, port number below).
    pub port_id: u16,
    /// Message age, in 1/256 s.
    pub message_age: u16,
    /// Max age, in 1/256 s.
    pub max_age: u16,
    /// Hello time, in 1/256 s.
    pub hello_time: u16,
    /// Forward delay, in 1/256 s.
    pub forward_delay: u16,
}

impl StpConfig {
    /// Topology change flag.
    pub const fn topology_change(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// Topology change acknowledgment flag.
    pub const fn topology_change_ack(&self) -> bool {
        self.flags & 0x80 != 0
    }

    /// RST port role (flags bits 2-3): 0 unknown/master, 1 alternate/backup, 2 root,
    /// 3 designated.
    pub const fn port_role(&self) -> u8 {
        (self.flags >> 2) & 0b11
    }
}

impl<'a> Stp<'a> {
    /// Protocol version: STP (802.1D).
    pub const VERSION_STP: u8 = 0;
    /// Protocol version: RSTP (802.1w).
    pub const VERSION_RSTP: u8 = 2;
    /// Protocol version: MSTP (802.1s).
    pub const VERSION_MSTP: u8 = 3;
    /// BPDU type: configuration.
    pub const TYPE_CONFIG: u8 = 0x00;
    /// BPDU type: RST (also MST).
    pub const TYPE_RST: u8 = 0x02;
    /// BPDU type: topology change notification.
    pub const TYPE_TCN: u8 = 0x80;
    /// Length of a TCN BPDU (and of the common prefix of all BPDUs).
    pub const TCN_LEN: usize = 4;
    /// Length of a configuration BPDU.
    pub const CONFIG_LEN: usize = 35;
    /// Length of an RST BPDU.
    pub const RST_LEN: usize = 36;

    /// Checks that the BPDU is as long as its type requires (4 octets for TCN and unknown
    /// types, 35 for configuration, 36 for RST/MST). The protocol identifier, version and
    /// unknown types are data.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let needed = match u8_at(data, 3) {
            None => Self::TCN_LEN,
            Some(Self::TYPE_CONFIG) => Self::CONFIG_LEN,
            Some(Self::TYPE_RST) => Self::RST_LEN,
            Some(_) => Self::TCN_LEN,
        };
        if data.len() < needed {
            return Err(ParseError::truncated(Layer::Stp, 0, needed, data.len()));
        }
        Ok(Stp { data })
    }

    /// The bytes the view was built on (including any padding after the BPDU).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Protocol identifier (0x0000 for all spanning-tree versions).
    pub fn protocol_id(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }

    /// Protocol version identifier (see the `VERSION_*` constants).
    pub fn version(&self) -> u8 {
        u8_at(self.data, 2).unwrap_or(0)
    }

    /// BPDU type (see the `TYPE_*` constants).
    pub fn bpdu_type(&self) -> u8 {
        u8_at(self.data, 3).unwrap_or(0)
    }

    /// Whether this is a topology change notification BPDU.
    pub fn is_tcn(&self) -> bool {
        self.bpdu_type() == Self::TYPE_TCN
    }

    /// The fields of a configuration or RST BPDU; `None` for TCN and unknown types.
    pub fn config(&self) -> Option<StpConfig> {
        if !matches!(self.bpdu_type(), Self::TYPE_CONFIG | Self::TYPE_RST) {
            return None;
        }
        let d = self.data;
        Some(StpConfig {
            flags: u8_at(d, 4)?,
            root: BridgeId::read(d, 5)?,
            root_path_cost: be32(d, 13)?,
            bridge: BridgeId::read(d, 17)?,
            port_id: be16(d, 25)?,
            message_age: be16(d, 27)?,
            max_age: be16(d, 29)?,
            hello_time: be16(d, 31)?,
            forward_delay: be16(d, 33)?,
        })
    }

    /// The version 1 length octet of an RST BPDU.
    pub fn version1_length(&self) -> Option<u8> {
        (self.bpdu_type() == Self::TYPE_RST)
            .then(|| u8_at(self.data, 35))
            .flatten()
    }

    /// The length of the BPDU proper by its type (the rest of the slice is padding or, for
    /// MSTP, the MST extension): 4, 35 or 36.
    pub fn bpdu_len(&self) -> usize {
        match self.bpdu_type() {
            Self::TYPE_CONFIG => Self::CONFIG_LEN,
            Self::TYPE_RST => Self::RST_LEN,
            _ => Self::TCN_LEN,
        }
    }

    /// The bytes after the RST part of an MST BPDU (version 3): version 3 length, MST
    /// configuration identifier, CIST and MSTI data. `None` for other versions or types.
    pub fn mst_extension(&self) -> Option<&'a [u8]> {
        (self.bpdu_type() == Self::TYPE_RST && self.version() >= Self::VERSION_MSTP)
            .then(|| tail(self.data, Self::RST_LEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::text::unhex;
    use proptest::prelude::*;

    /// `tcpdump_802.1D_spanning_tree.pcap` frame 1, after the 14-byte 802.3 header
    /// (length 0x26 = 38: LLC 3 + BPDU 35, then 8 bytes of padding).
    const STP_8021D: &str = "424203000000000080010019\
        06eab880000000008001001906eab88080050000140002000f000000000000000000";
    /// `zeek_wikipedia.pcap` frame 4 (RST BPDU, 802.3 length 0x27 = 39).
    const RSTP_WIKI: &str = "42420300000202\
        3c82d000137fbe8cc00000000082d000137fbe8cc081930000140002000f000000000000000000";
    /// `zeek_snap-tcp.pcap` frame 1 after 802.3 header: LLC/SNAP carrying IPv4 (TCP SYN).
    const SNAP_IPV4: &str = "aaaa03000000080045000028000100004006f77bc0a80101c0a80102\
        30390050000000640000000050022000dba10000";
    /// `tcpdump_LLDP_and_CDP.pcap` frame 1: LLC/SNAP header and the start of CDP.
    const SNAP_CDP: &str = "aaaa0300000c200002b40bea";

    /// Expected values from `tshark -r tcpdump_802.1D_spanning_tree.pcap -V`:
    /// "Conf. Root = 32768/1/00:19:06:ea:b8:80  Cost = 0  Port = 0x8005", ages 0/20/2/15.
    #[test]
    fn corpus_stp_config() {
        let b = unhex(STP_8021D);
        let llc = Llc::new_checked(&b).unwrap();
        assert_eq!((llc.dsap(), llc.ssap(), llc.control()), (0x42, 0x42, 0x03));
        assert_eq!(llc.format(), LlcFormat::Unnumbered);
        assert_eq!(llc.header_len(), 3);
        assert!(llc.is_stp() && !llc.is_snap());
        assert_eq!(llc.snap(), None);
        let stp = Stp::new_checked(llc.payload()).unwrap();
        assert_eq!(
            (stp.protocol_id(), stp.version(), stp.bpdu_type()),
            (0, 0, 0)
        );
        assert_eq!(stp.bpdu_len(), 35);
        assert_eq!(stp.version1_length(), None);
        assert_eq!(stp.mst_extension(), None);
        let c = stp.config().unwrap();
        assert_eq!(c.flags, 0);
        assert_eq!(c.root.to_string(), "32768/1/00:19:06:ea:b8:80");
        assert_eq!(c.root, c.bridge);
        assert_eq!(c.root_path_cost, 0);
        assert_eq!(c.port_id, 0x8005);
        assert_eq!(
            (c.message_age, c.max_age, c.hello_time, c.forward_delay),
            (0, 20 * 256, 2 * 256, 15 * 256)
        );
    }

    /// tshark: "RST. Root = 32768/720/00:13:7f:be:8c:c0  Cost = 0  Port = 0x8193",
    /// flags 0x3c (forwarding, learning, designated role).
    #[test]
    fn corpus_rstp() {
        let b = unhex(RSTP_WIKI);
        let llc = Llc::new_checked(&b).unwrap();
        let stp = Stp::new_checked(llc.payload()).unwrap();
        assert_eq!(
            (stp.version(), stp.bpdu_type()),
            (Stp::VERSION_RSTP, Stp::TYPE_RST)
        );
        assert_eq!(stp.version1_length(), Some(0));
        let c = stp.config().unwrap();
        assert_eq!(c.flags, 0x3c);
        assert_eq!(c.port_role(), 3);
        assert!(!c.topology_change() && !c.topology_change_ack());
        assert_eq!(c.root.to_string(), "32768/720/00:13:7f:be:8c:c0");
        assert_eq!(c.root.bridge_priority(), 32768);
        assert_eq!(c.root.system_id_ext(), 720);
        assert_eq!(c.port_id, 0x8193);
        assert_eq!(c.hello_time, 512);
    }

    /// tshark: LLC DSAP/SSAP 0xaa, UI, OUI 00:00:00, PID IPv4 (0x0800).
    #[test]
    fn corpus_snap_ipv4() {
        let b = unhex(SNAP_IPV4);
        let llc = Llc::new_checked(&b).unwrap();
        assert!(llc.is_snap());
        let (snap, payload) = llc.snap().unwrap().unwrap();
        assert_eq!(
            snap,
            Snap {
                oui: [0, 0, 0],
                pid: 0x0800
            }
        );
        assert_eq!(snap.ethertype(), Some(0x0800));
        assert!(!snap.is_cdp());
        assert_eq!(payload.len(), 40);
        assert_eq!(payload[0], 0x45);
    }

    #[test]
    fn corpus_snap_cdp() {
        let b = unhex(SNAP_CDP);
        let (snap, payload) = Llc::new_checked(&b).unwrap().snap().unwrap().unwrap();
        assert!(snap.is_cdp());
        assert_eq!(snap.ethertype(), None);
        assert_eq!(payload, [0x02, 0xb4, 0x0b, 0xea]);
    }

    #[test]
    fn control_formats() {
        // I-format: two octets, N(S)=1 N(R)=2.
        let b = [0xf0, 0xf0, 0x02, 0x04, 0xde, 0xad];
        let llc = Llc::new_checked(&b).unwrap();
        assert_eq!(llc.format(), LlcFormat::Information);
        assert_eq!((llc.header_len(), llc.control()), (4, 0x0402));
        assert_eq!(llc.payload(), [0xde, 0xad]);
        // S-format (RR), response, group DSAP.
        let b = [0xf1, 0xf1, 0x01, 0x05];
        let llc = Llc::new_checked(&b).unwrap();
        assert_eq!(llc.format(), LlcFormat::Supervisory);
        assert!(llc.dsap_is_group() && llc.is_response());
        assert_eq!(llc.payload(), &[] as &[u8]);
        // I-format with the second control octet missing.
        assert_eq!(
            Llc::new_checked(&[0xf0, 0xf0, 0x00]),
            Err(ParseError::truncated(Layer::Llc, 0, 4, 3))
        );
        // SNAP SAPs but not UI (XID 0xaf): no SNAP.
        let llc = Llc::new_checked(&[0xaa, 0xaa, 0xaf, 1, 2, 3, 4, 5]).unwrap();
        assert!(!llc.is_snap());
        assert_eq!(llc.snap(), None);
    }

    #[test]
    fn truncation_everywhere() {
        for hex in [STP_8021D, RSTP_WIKI, SNAP_IPV4, SNAP_CDP] {
            let full = unhex(hex);
            for n in 0..=full.len() {
                let b = &full[..n];
                match Llc::new_checked(b) {
                    Err(e) => {
                        assert!(n < 3);
                        assert_eq!(e, ParseError::truncated(Layer::Llc, 0, 3, n));
                    }
                    Ok(llc) => {
                        assert_eq!(llc.payload().len(), n - 3);
                        if let Some(snap) = llc.snap() {
                            match snap {
                                Ok((_, p)) => assert!(n >= 8 && p.len() == n - 8),
                                Err(e) => {
                                    assert!(n < 8);
                                    assert_eq!(e, ParseError::truncated(Layer::Snap, 3, 5, n - 3));
                                }
                            }
                        }
                        if llc.is_stp() {
                            let need = if full[6] == Stp::TYPE_RST { 36 } else { 35 };
                            let need = if n < 3 + 4 { 4 } else { need };
                            match Stp::new_checked(llc.payload()) {
                                Ok(stp) => {
                                    assert!(n - 3 >= need);
                                    assert!(stp.config().is_some());
                                }
                                Err(e) => {
                                    assert!(n - 3 < need);
                                    assert_eq!(
                                        e,
                                        ParseError::truncated(Layer::Stp, 0, need, n - 3)
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tcn_and_unknown_bpdus() {
        let stp = Stp::new_checked(&[0, 0, 0, 0x80]).unwrap();
        assert!(stp.is_tcn());
        assert_eq!((stp.config(), stp.bpdu_len()), (None, 4));
        // Unknown type: 4 bytes suffice, no config.
        let stp = Stp::new_checked(&[0, 0, 7, 0x55]).unwrap();
        assert_eq!(stp.config(), None);
        assert_eq!(stp.bpdu_type(), 0x55);
        // Non-zero protocol identifier is data.
        let stp = Stp::new_checked(&[0xab, 0xcd, 0, 0x80]).unwrap();
        assert_eq!(stp.protocol_id(), 0xabcd);
        // MSTP: extension after 36 bytes.
        let mut b = unhex(RSTP_WIKI)[3..].to_vec();
        b.truncate(36);
        b[2] = Stp::VERSION_MSTP;
        b.extend_from_slice(&[0x00, 0x40, 0x00]);
        let stp = Stp::new_checked(&b).unwrap();
        assert_eq!(stp.mst_extension(), Some(&[0x00, 0x40, 0x00][..]));
        assert_eq!(stp.version1_length(), Some(0));
        // RST type needs 36 bytes, 35 is not enough.
        assert_eq!(
            Stp::new_checked(&b[..35]).unwrap_err().kind,
            ErrorKind::Truncated {
                needed: 36,
                available: 35
            }
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(llc) = Llc::new_checked(&b) {
                prop_assert!(llc.header_len() == 3 || llc.header_len() == 4);
                prop_assert_eq!(llc.header_len() + llc.payload().len(), b.len());
                let _ = (llc.control(), llc.format(), llc.is_stp());
                if let Some(Ok((snap, p))) = llc.snap() {
                    prop_assert_eq!(p.len() + 8, b.len());
                    let _ = (snap.ethertype(), snap.is_cdp());
                }
            }
            if let Ok(stp) = Stp::new_checked(&b) {
                prop_assert!(stp.bpdu_len() <= b.len());
                let is_config = matches!(stp.bpdu_type(), Stp::TYPE_CONFIG | Stp::TYPE_RST);
                prop_assert_eq!(stp.config().is_some(), is_config);
                let _ = (stp.version1_length(), stp.mst_extension(), stp.protocol_id());
            }
        }
    }
}
