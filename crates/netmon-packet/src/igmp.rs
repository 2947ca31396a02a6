//! IGMP versions 1, 2 and 3 (RFC 1112, RFC 2236, RFC 3376).
//!
//! [`Igmp`] is a `Copy` view over one IGMP message. Parsing checks the fixed header (8 bytes,
//! 12 for a v3 query) and nothing else; variable parts (v3 query sources, v3 report group
//! records) are read lazily by bounded iterators that stop at the end of the captured bytes,
//! whatever counts the message claims. No accessor panics.
//!
//! The version of a query is told by the message length (RFC 3376 §7.1), which is the IP
//! payload length, not what was captured: [`Igmp::parse`] therefore takes both. Group records
//! are parsed with etherparse's `ReportGroupRecordV3Slice`, max-response and QQI codes decoded
//! with its `MaxResponseCode`; [`Igmp::etherparse`] gives its `IgmpSlice` for a complete
//! message.
//!
//! ```text
//! RFC 2236 §2 (v1/v2: query 0x11, v1 report 0x12, v2 report 0x16, leave 0x17):
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Type     | Max Resp Time |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Group Address                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! RFC 3376 §4.1 (v3 query, type 0x11, length >= 12):
//! |  Type = 0x11  | Max Resp Code |           Checksum            |
//! |                         Group Address                         |
//! | Resv  |S| QRV |     QQIC      |     Number of Sources (N)     |
//! |                       Source Address [1..N]                   |
//!
//! RFC 3376 §4.2 (v3 report, type 0x22):
//! |  Type = 0x22  |    Reserved   |           Checksum            |
//! |           Reserved            |  Number of Group Records (M)  |
//! |                        Group Record [1..M]                    |
//!
//! RFC 3376 §4.2.4 (group record):
//! |  Record Type  |  Aux Data Len |     Number of Sources (N)     |
//! |                       Multicast Address                       |
//! |                       Source Address [1..N]                   |
//! |                         Auxiliary Data                        |
//! ```

use core::net::Ipv4Addr;

use etherparse::IgmpSlice;
use etherparse::igmp::{
    IGMP_TYPE_MEMBERSHIP_QUERY, IGMPV1_TYPE_MEMBERSHIP_REPORT, IGMPV2_TYPE_LEAVE_GROUP,
    IGMPV2_TYPE_MEMBERSHIP_REPORT, IGMPV3_TYPE_MEMBERSHIP_REPORT, MaxResponseCode,
    MembershipQueryWithSourcesHeader, ReportGroupRecordV3Slice,
};

use crate::bytes::{array, be16, tail, u8_at};
use crate::checksum::{ChecksumStatus, verify_plain};
use crate::error::{ErrorKind, Layer, ParseError};

/// Length of the common IGMP header.
pub const HEADER_LEN: usize = 8;

/// Length of the fixed part of an IGMPv3 query.
pub const QUERY_V3_LEN: usize = 12;

/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 2;

/// The IGMP version a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IgmpVersion {
    /// IGMPv1 (RFC 1112): a query with max-resp 0 and length 8, or a 0x12 report.
    V1,
    /// IGMPv2 (RFC 2236): a query with non-zero max-resp and length 8, a 0x16 report or a
    /// leave.
    V2,
    /// IGMPv3 (RFC 3376): a query of 12 bytes or more, or a 0x22 report.
    V3,
}

impl IgmpVersion {
    /// The version number.
    pub const fn number(self) -> u8 {
        match self {
            IgmpVersion::V1 => 1,
            IgmpVersion::V2 => 2,
            IgmpVersion::V3 => 3,
        }
    }
}

/// The fixed fields of an IGMPv3 query after the group address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryV3 {
    /// S flag: suppress router-side processing.
    pub s_flag: bool,
    /// Querier's robustness variable (0-7).
    pub qrv: u8,
    /// Querier's query interval code, raw.
    pub qqic: u8,
    /// The query interval in seconds decoded from `qqic` (RFC 3376 §4.1.7).
    pub qqi_secs: u16,
    /// Number of sources the query declares (may exceed what is present).
    pub num_sources: u16,
}

/// A view of an IGMP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Igmp<'a> {
    /// Captured bytes, clamped to the declared length.
    bytes: &'a [u8],
    /// Message length from the IP header.
    declared_len: usize,
}

impl<'a> Igmp<'a> {
    /// Parses the fixed header. `captured` is the captured IP payload, `declared_len` the
    /// payload length from the IP header (pass `captured.len()` when the capture is complete
    /// and holds no padding). Bytes past `declared_len` are ignored.
    ///
    /// Errors (offsets relative to `captured`):
    /// - [`ErrorKind::BadLength`] when `declared_len` is below 8;
    /// - [`ErrorKind::Invalid`] for a query whose length is 9-11 (RFC 3376 §7.1: neither v2
    ///   nor v3, to be ignored);
    /// - [`ErrorKind::Truncated`] when fewer than 8 bytes (12 for a v3 query) were captured.
    pub fn parse(captured: &'a [u8], declared_len: usize) -> Result<Igmp<'a>, ParseError> {
        if declared_len < HEADER_LEN {
            return Err(ParseError::new(
                Layer::Igmp,
                0,
                ErrorKind::BadLength(declared_len),
            ));
        }
        let bytes = captured.get(..declared_len).unwrap_or(captured);
        if bytes.len() < HEADER_LEN {
            return Err(ParseError::truncated(
                Layer::Igmp,
                0,
                HEADER_LEN,
                bytes.len(),
            ));
        }
        if u8_at(bytes, 0) == Some(IGMP_TYPE_MEMBERSHIP_QUERY) && declared_len != HEADER_LEN {
            if declared_len < QUERY_V3_LEN {
                return Err(ParseError::new(
                    Layer::Igmp,
                    0,
                    ErrorKind::Invalid("igmp query length between 8 and 12"),
                ));
            }
            if bytes.len() < QUERY_V3_LEN {
                return Err(ParseError::truncated(
                    Layer::Igmp,
                    0,
                    QUERY_V3_LEN,
                    bytes.len(),
                ));
            }
        }
        Ok(Igmp {
            bytes,
            declared_len,
        })
    }

    /// The captured message bytes (at most `declared_len`).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The message length from the IP header.
    pub fn declared_len(&self) -> usize {
        self.declared_len
    }

    /// Whether the whole declared message was captured.
    pub fn is_complete(&self) -> bool {
        self.bytes.len() == self.declared_len
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        u8_at(self.bytes, 0).unwrap_or(0)
    }

    /// Short static name of the message type, e.g. `"membership-query"`, `"leave-group"`.
    pub fn name(&self) -> &'static str {
        igmp_type_name(self.msg_type())
    }

    /// Byte 1: max response time (v1/v2, tenths of a second), max response code (v3 query),
    /// reserved otherwise.
    pub fn max_resp_code(&self) -> u8 {
        u8_at(self.bytes, 1).unwrap_or(0)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.bytes, CHECKSUM_OFFSET).unwrap_or(0)
    }

    /// Whether this is a v3 query (a query of 12 bytes or more).
    fn is_query_v3(&self) -> bool {
        self.msg_type() == IGMP_TYPE_MEMBERSHIP_QUERY && self.declared_len >= QUERY_V3_LEN
    }

    /// The IGMP version inferred from type, length and max-resp (see [`IgmpVersion`]);
    /// `None` for other message types (DVMRP, PIMv1, mtrace, ...).
    pub fn version(&self) -> Option<IgmpVersion> {
        match self.msg_type() {
            IGMP_TYPE_MEMBERSHIP_QUERY if self.is_query_v3() => Some(IgmpVersion::V3),
            IGMP_TYPE_MEMBERSHIP_QUERY if self.max_resp_code() == 0 => Some(IgmpVersion::V1),
            IGMP_TYPE_MEMBERSHIP_QUERY => Some(IgmpVersion::V2),
            IGMPV1_TYPE_MEMBERSHIP_REPORT => Some(IgmpVersion::V1),
            IGMPV2_TYPE_MEMBERSHIP_REPORT | IGMPV2_TYPE_LEAVE_GROUP => Some(IgmpVersion::V2),
            IGMPV3_TYPE_MEMBERSHIP_REPORT => Some(IgmpVersion::V3),
            _ => None,
        }
    }

    /// Maximum response time of a query in tenths of a second: the raw byte for v2, decoded
    /// from the exponential code for v3 (RFC 3376 §4.1.1). `None` for v1 queries (no such
    /// field) and other messages.
    pub fn max_resp_time_ds(&self) -> Option<u16> {
        match self.version() {
            Some(IgmpVersion::V3) if self.is_query_v3() => {
                Some(MaxResponseCode(self.max_resp_code()).as_10th_secs())
            }
            Some(IgmpVersion::V2) if self.msg_type() == IGMP_TYPE_MEMBERSHIP_QUERY => {
                Some(u16::from(self.max_resp_code()))
            }
            _ => None,
        }
    }

    /// Group address of a query (0.0.0.0 for a general query), v1/v2 report or leave.
    pub fn group(&self) -> Option<Ipv4Addr> {
        match self.msg_type() {
            IGMP_TYPE_MEMBERSHIP_QUERY
            | IGMPV1_TYPE_MEMBERSHIP_REPORT
            | IGMPV2_TYPE_MEMBERSHIP_REPORT
            | IGMPV2_TYPE_LEAVE_GROUP => array::<4>(self.bytes, 4).map(Ipv4Addr::from),
            _ => None,
        }
    }

    /// The v3 query fields after the group address.
    pub fn query_v3(&self) -> Option<QueryV3> {
        if !self.is_query_v3() {
            return None;
        }
        let b8 = u8_at(self.bytes, 8)?;
        let qqic = u8_at(self.bytes, 9)?;
        Some(QueryV3 {
            s_flag: b8 & MembershipQueryWithSourcesHeader::RAW_BYTE_8_MASK_S_FLAG != 0,
            qrv: b8 & MembershipQueryWithSourcesHeader::RAW_BYTE_8_MASK_QRV,
            qqic,
            // Same exponential format as the max response code (RFC 3376 §4.1.7).
            qqi_secs: MaxResponseCode(qqic).as_10th_secs(),
            num_sources: be16(self.bytes, 10)?,
        })
    }

    /// The source addresses of a v3 query: at most the declared number, and only those fully
    /// captured. Empty for other messages.
    pub fn query_sources(&self) -> impl Iterator<Item = Ipv4Addr> + use<'a> {
        let n = self.query_v3().map_or(0, |q| usize::from(q.num_sources));
        tail(self.bytes, QUERY_V3_LEN)
            .chunks_exact(4)
            .take(n)
            .filter_map(|c| c.first_chunk::<4>().map(|a| Ipv4Addr::from(*a)))
    }

    /// Number of group records a v3 report declares.
    pub fn num_group_records(&self) -> Option<u16> {
        (self.msg_type() == IGMPV3_TYPE_MEMBERSHIP_REPORT).then(|| be16(self.bytes, 6).unwrap_or(0))
    }

    /// The group records of a v3 report (empty for other messages).
    pub fn group_records(&self) -> GroupRecords<'a> {
        GroupRecords {
            rest: tail(self.bytes, HEADER_LEN),
            offset: HEADER_LEN,
            remaining: self.num_group_records().unwrap_or(0),
        }
    }

    /// etherparse's slice of the message, when all of it was captured and etherparse accepts
    /// it (it rejects v3 queries whose source list overruns the message).
    pub fn etherparse(&self) -> Option<IgmpSlice<'a>> {
        if !self.is_complete() {
            return None;
        }
        IgmpSlice::from_slice(self.bytes).ok()
    }

    /// Verifies the checksum (whole message, no pseudo-header).
    pub fn verify_checksum(&self) -> ChecksumStatus {
        verify_plain(self.bytes, self.declared_len, CHECKSUM_OFFSET)
    }
}

/// One IGMPv3 group record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRecord<'a> {
    /// Record type (1-6, see [`record_type_name`]); other values are kept as they are.
    pub record_type: u8,
    /// Auxiliary data length in 32-bit words.
    pub aux_data_len: u8,
    /// Multicast address.
    pub group: Ipv4Addr,
    /// Number of sources.
    pub num_sources: u16,
    /// The source addresses, 4 bytes each.
    pub sources: &'a [u8],
}

/// Iterator over the group records of a v3 report.
///
/// Yields at most the declared number of records; when a record does not fit in the captured
/// bytes it yields one [`ErrorKind::Truncated`] error (offset of that record within the IGMP
/// message) and stops. Each record is at least 8 bytes, so iteration is bounded by the data.
#[derive(Clone, Debug)]
pub struct GroupRecords<'a> {
    rest: &'a [u8],
    offset: usize,
    remaining: u16,
}

impl<'a> Iterator for GroupRecords<'a> {
    type Item = Result<GroupRecord<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match ReportGroupRecordV3Slice::from_slice(self.rest) {
            Ok((r, rest)) => {
                let record = GroupRecord {
                    record_type: r.record_type().0,
                    aux_data_len: r.aux_data_len(),
                    group: Ipv4Addr::from(r.multicast_address()),
                    num_sources: r.num_of_sources(),
                    sources: r.source_addrs_bytes(),
                };
                self.offset += r.slice().len();
                self.rest = rest;
                Some(Ok(record))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(ParseError::truncated(
                    Layer::Igmp,
                    self.offset,
                    e.required_len,
                    e.len,
                )))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

/// Short static name of an IGMP message type.
pub const fn igmp_type_name(msg_type: u8) -> &'static str {
    match msg_type {
        0x11 => "membership-query",
        0x12 => "v1-membership-report",
        0x13 => "dvmrp",
        0x14 => "pim-v1",
        0x16 => "v2-membership-report",
        0x17 => "leave-group",
        0x1e => "mtrace-response",
        0x1f => "mtrace",
        0x22 => "v3-membership-report",
        0x30 => "mrd-advertisement",
        0x31 => "mrd-solicitation",
        0x32 => "mrd-termination",
        _ => "unknown",
    }
}

/// Short static name of an IGMPv3 group record type (RFC 3376 §4.2.12).
pub const fn record_type_name(record_type: u8) -> &'static str {
    match record_type {
        1 => "mode-is-include",
        2 => "mode-is-exclude",
        3 => "change-to-include",
        4 => "change-to-exclude",
        5 => "allow-new-sources",
        6 => "block-old-sources",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{corpus, internet_checksum};
    use proptest::prelude::*;

    /// Fills in the checksum of an IGMP message.
    fn with_checksum(mut m: Vec<u8>) -> Vec<u8> {
        m[2] = 0;
        m[3] = 0;
        let c = internet_checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    fn parse_full(m: &[u8]) -> Igmp<'_> {
        Igmp::parse(m, m.len()).unwrap()
    }

    #[test]
    fn v1_v2_messages() {
        // v1 query: max-resp 0, general.
        let m = with_checksum(vec![0x11, 0, 0, 0, 0, 0, 0, 0]);
        let g = parse_full(&m);
        assert_eq!(
            (g.name(), g.version()),
            ("membership-query", Some(IgmpVersion::V1))
        );
        assert_eq!(g.group(), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(g.max_resp_time_ds(), None);
        assert_eq!(g.verify_checksum(), ChecksumStatus::Good);
        assert!(matches!(
            g.etherparse(),
            Some(IgmpSlice::MembershipQuery(_))
        ));
        // v2 group-specific query, 1.0 s.
        let m = with_checksum(vec![0x11, 10, 0, 0, 225, 1, 1, 3]);
        let g = parse_full(&m);
        assert_eq!(g.version(), Some(IgmpVersion::V2));
        assert_eq!(g.max_resp_time_ds(), Some(10));
        assert_eq!(g.group(), Some(Ipv4Addr::new(225, 1, 1, 3)));
        assert_eq!(g.query_v3(), None);
        assert_eq!(g.query_sources().count(), 0);
        // Reports and leave.
        for (t, v, name) in [
            (0x12, IgmpVersion::V1, "v1-membership-report"),
            (0x16, IgmpVersion::V2, "v2-membership-report"),
            (0x17, IgmpVersion::V2, "leave-group"),
        ] {
            let m = with_checksum(vec![t, 0, 0, 0, 239, 255, 255, 250]);
            let g = parse_full(&m);
            assert_eq!((g.name(), g.version()), (name, Some(v)));
            assert_eq!(g.group(), Some(Ipv4Addr::new(239, 255, 255, 250)));
            assert_eq!((g.max_resp_time_ds(), g.num_group_records()), (None, None));
            assert_eq!(g.verify_checksum(), ChecksumStatus::Good);
        }
        // Unknown types are data.
        let g = parse_full(&[0x13, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!((g.name(), g.version(), g.group()), ("dvmrp", None, None));
        assert_eq!(parse_full(&[0x99; 8]).name(), "unknown");
        // A corrupted checksum.
        let mut m = with_checksum(vec![0x16, 0, 0, 0, 239, 255, 255, 250]);
        m[7] = 251;
        assert!(parse_full(&m).verify_checksum().is_bad());
    }

    fn v3_query() -> Vec<u8> {
        // Max resp code 0x8c (exp 0, mant 0xc -> (0x1c) << 3 = 224 ds), group 0, S=1 QRV=2,
        // QQIC 125, two sources.
        with_checksum(vec![
            0x11, 0x8c, 0, 0, 0, 0, 0, 0, 0x0a, 125, 0, 2, 10, 0, 0, 1, 10, 0, 0, 2,
        ])
    }

    #[test]
    fn v3_query_fields_and_prefixes() {
        let m = v3_query();
        let g = parse_full(&m);
        assert_eq!(g.version(), Some(IgmpVersion::V3));
        assert_eq!(g.max_resp_time_ds(), Some(224));
        let q = g.query_v3().unwrap();
        assert_eq!(
            q,
            QueryV3 {
                s_flag: true,
                qrv: 2,
                qqic: 125,
                qqi_secs: 125,
                num_sources: 2
            }
        );
        let srcs: Vec<_> = g.query_sources().collect();
        assert_eq!(
            srcs,
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert_eq!(g.verify_checksum(), ChecksumStatus::Good);
        assert!(matches!(
            g.etherparse(),
            Some(IgmpSlice::MembershipQueryWithSources(_))
        ));

        // Every captured prefix of the 20-byte message (declared length 20).
        for n in 0..m.len() {
            match Igmp::parse(&m[..n], m.len()) {
                Ok(g) => {
                    assert!(n >= 12, "prefix {n}");
                    assert_eq!(g.version(), Some(IgmpVersion::V3));
                    assert_eq!(g.query_v3().unwrap().num_sources, 2);
                    assert_eq!(g.query_sources().count(), (n - 12) / 4);
                    assert_eq!(g.verify_checksum(), ChecksumStatus::Truncated);
                    assert!(g.etherparse().is_none());
                }
                Err(e) => {
                    let needed = if n < 8 { 8 } else { 12 };
                    assert_eq!(
                        e,
                        ParseError::truncated(Layer::Igmp, 0, needed, n),
                        "prefix {n}"
                    );
                }
            }
        }
        // The same prefixes taken as whole messages: 8 bytes is a v2 query, 9-11 invalid.
        for n in 0..m.len() {
            let r = Igmp::parse(&m[..n], n);
            match n {
                ..8 => assert_eq!(r.unwrap_err().kind, ErrorKind::BadLength(n)),
                8 => assert_eq!(r.unwrap().version(), Some(IgmpVersion::V2)),
                9..12 => assert_eq!(r.unwrap_err().kind.label(), "invalid"),
                _ => assert_eq!(r.unwrap().version(), Some(IgmpVersion::V3)),
            }
        }
        // A lying source count: only what's there, and etherparse refuses the message.
        let mut lying = m.clone();
        lying[10..12].copy_from_slice(&[0xff, 0xff]);
        let g = parse_full(&lying);
        assert_eq!(g.query_v3().unwrap().num_sources, 0xffff);
        assert_eq!(g.query_sources().count(), 2);
        assert!(g.etherparse().is_none());
        // Trailing bytes beyond the declared length are ignored.
        let mut padded = m.clone();
        padded.extend_from_slice(&[0; 6]);
        let g = Igmp::parse(&padded, m.len()).unwrap();
        assert_eq!(g.bytes().len(), 20);
        assert_eq!(g.verify_checksum(), ChecksumStatus::Good);
    }

    fn v3_report() -> Vec<u8> {
        let mut m = vec![0x22, 0, 0, 0, 0, 0, 0, 2];
        // Record 1: change-to-exclude 239.1.1.1, no sources, one aux word.
        m.extend_from_slice(&[4, 1, 0, 0, 239, 1, 1, 1, 0xaa, 0xbb, 0xcc, 0xdd]);
        // Record 2: allow-new-sources 232.1.1.1 with 2 sources.
        m.extend_from_slice(&[5, 0, 0, 2, 232, 1, 1, 1, 10, 0, 0, 1, 10, 0, 0, 2]);
        with_checksum(m)
    }

    #[test]
    fn v3_report_records_and_prefixes() {
        let m = v3_report();
        assert_eq!(m.len(), 36);
        let g = parse_full(&m);
        assert_eq!(
            (g.name(), g.version()),
            ("v3-membership-report", Some(IgmpVersion::V3))
        );
        assert_eq!((g.group(), g.num_group_records()), (None, Some(2)));
        assert_eq!(g.verify_checksum(), ChecksumStatus::Good);
        let recs: Vec<_> = g.group_records().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (
                recs[0].record_type,
                recs[0].aux_data_len,
                recs[0].group,
                recs[0].num_sources
            ),
            (4, 1, Ipv4Addr::new(239, 1, 1, 1), 0)
        );
        assert_eq!(record_type_name(recs[0].record_type), "change-to-exclude");
        assert_eq!(record_type_name(recs[1].record_type), "allow-new-sources");
        assert_eq!(recs[1].sources, &[10, 0, 0, 1, 10, 0, 0, 2]);
        assert_eq!(record_type_name(0), "unknown");

        for n in 0..m.len() {
            let Ok(g) = Igmp::parse(&m[..n], m.len()) else {
                assert!(n < 8);
                continue;
            };
            let recs: Vec<_> = g.group_records().collect();
            let ok = recs.iter().filter(|r| r.is_ok()).count();
            assert_eq!(ok, usize::from(n >= 20), "prefix {n}");
            let e = recs.last().unwrap().unwrap_err();
            assert!(e.is_truncation());
            assert_eq!(e.offset, if n >= 20 { 20 } else { 8 }, "prefix {n}");
            assert_eq!(g.verify_checksum(), ChecksumStatus::Truncated);
        }
        // A lying record count: two records, then one error, then nothing.
        let mut lying = m.clone();
        lying[6..8].copy_from_slice(&[0xff, 0xff]);
        let recs: Vec<_> = parse_full(&lying).group_records().collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[2].unwrap_err(),
            ParseError::truncated(Layer::Igmp, 36, 8, 0)
        );
        // A record claiming many sources.
        let mut big = m.clone();
        big[10..12].copy_from_slice(&[0xff, 0xff]);
        let recs: Vec<_> = parse_full(&big).group_records().collect();
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].unwrap_err(),
            ParseError::truncated(Layer::Igmp, 8, 8 + 0xffff * 4 + 4, 28)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120),
                                       ty in prop::sample::select(vec![0x11u8, 0x12, 0x16, 0x17, 0x22, 0x13, 0xff]),
                                       declared in 0usize..140) {
            let mut b = bytes;
            if let Some(x) = b.first_mut() { *x = ty; }
            for d in [declared, b.len()] {
                if let Ok(g) = Igmp::parse(&b, d) {
                    let _ = (g.name(), g.version(), g.max_resp_time_ds(), g.group(), g.query_v3());
                    let _ = (g.checksum(), g.verify_checksum(), g.etherparse(), g.is_complete());
                    prop_assert!(g.query_sources().count() <= 120 / 4);
                    prop_assert!(g.group_records().count() <= 120 / 8 + 1);
                }
            }
        }
    }

    #[test]
    fn corpus_igmp_v2() {
        // tcpdump_IGMP_V2.pcap, all 18 frames as tshark shows them (igmp.version 2 for all;
        // igmp.type, igmp.max_resp, igmp.maddr, igmp.checksum; checksum status Good).
        let expected: [(u8, u8, [u8; 4], u16); 18] = [
            (0x11, 100, [0, 0, 0, 0], 0xee9b),
            (0x16, 0, [239, 255, 255, 250], 0xfa04),
            (0x16, 0, [225, 10, 10, 10], 0xfeea),
            (0x16, 0, [225, 1, 1, 3], 0x07fb),
            (0x17, 0, [225, 1, 1, 3], 0x06fb),
            (0x11, 10, [225, 1, 1, 3], 0x0cf1),
            (0x16, 0, [225, 1, 1, 4], 0x07fa),
            (0x16, 0, [225, 1, 1, 4], 0x07fa),
            (0x16, 0, [225, 1, 1, 4], 0x07fa),
            (0x17, 0, [225, 1, 1, 4], 0x06fa),
            (0x11, 10, [225, 1, 1, 4], 0x0cf0),
            (0x16, 0, [225, 1, 1, 5], 0x07f9),
            (0x16, 0, [225, 1, 1, 5], 0x07f9),
            (0x16, 0, [225, 1, 1, 5], 0x07f9),
            (0x11, 100, [0, 0, 0, 0], 0xee9b),
            (0x16, 0, [225, 10, 10, 10], 0xfeea),
            (0x16, 0, [239, 255, 255, 250], 0xfa04),
            (0x16, 0, [225, 1, 1, 5], 0x07f9),
        ];
        let Some(frames) = corpus::ip_frames("tcpdump_IGMP_V2.pcap") else {
            return;
        };
        assert_eq!(frames.len(), expected.len());
        for (i, (f, (ty, max, group, cksum))) in frames.iter().zip(expected).enumerate() {
            let f = f.as_ref().unwrap();
            assert_eq!(f.protocol, 2, "frame {}", i + 1);
            let g = Igmp::parse(&f.payload, f.declared_len).unwrap();
            assert_eq!(g.version(), Some(IgmpVersion::V2), "frame {}", i + 1);
            assert_eq!(g.msg_type(), ty, "frame {}", i + 1);
            assert_eq!(g.max_resp_code(), max, "frame {}", i + 1);
            assert_eq!(g.group(), Some(Ipv4Addr::from(group)), "frame {}", i + 1);
            assert_eq!(g.checksum(), cksum, "frame {}", i + 1);
            assert_eq!(g.verify_checksum(), ChecksumStatus::Good, "frame {}", i + 1);
            if ty == 0x11 {
                assert_eq!(g.max_resp_time_ds(), Some(u16::from(max)));
            }
        }
    }
}
