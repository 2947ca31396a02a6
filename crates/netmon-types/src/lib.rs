//! Metadata types shared by every netmon crate: the capture's [`LinkType`] and packet
//! [`Timestamp`]s.
//!
//! This crate is the only thing `netmon-capture` and `netmon-packet` have in common: a capture
//! source yields bytes plus a link type and a timestamp; a parser turns bytes plus a link type
//! into views. Neither depends on the other.
//!
//! ```
//! use netmon_types::{LinkType, Timestamp};
//!
//! assert_eq!(LinkType::ETHERNET.name(), Some("ethernet"));
//! assert_eq!(LinkType(9999).name(), None); // unknown values are data, not errors
//!
//! let ts = Timestamp::from_secs_nanos(1_362_692_526, 869_344_000);
//! assert_eq!(ts.to_string(), "2013-03-07T21:42:06.869344000Z");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use core::fmt;

/// A pcap/pcapng `LINKTYPE_*` value: what the first byte of a captured frame is.
///
/// Unknown values are kept as they are ("unknown values are data"); parsers report them rather
/// than guess. See <https://www.tcpdump.org/linktypes.html>.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// `LINKTYPE_NULL` (0): BSD loopback, a 4-byte address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// `LINKTYPE_ETHERNET` (1): IEEE 802.3 / Ethernet II.
    pub const ETHERNET: LinkType = LinkType(1);
    /// `DLT_RAW` as some BSDs number it (12): raw IPv4 or IPv6, version from the first nibble.
    pub const RAW_BSD: LinkType = LinkType(12);
    /// `LINKTYPE_RAW` (101): raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, a 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture v1, 16-byte header.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// `LINKTYPE_IPV4` (228): raw IPv4 only.
    pub const IPV4: LinkType = LinkType(228);
    /// `LINKTYPE_IPV6` (229): raw IPv6 only.
    pub const IPV6: LinkType = LinkType(229);
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" capture v2, 20-byte header.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// A short lower-case name for the link types netmon parses, `None` for the rest.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            LinkType::NULL => "null",
            LinkType::ETHERNET => "ethernet",
            LinkType::RAW_BSD | LinkType::RAW => "raw",
            LinkType::LOOP => "loop",
            LinkType::LINUX_SLL => "linux-sll",
            LinkType::IPV4 => "ipv4",
            LinkType::IPV6 => "ipv6",
            LinkType::LINUX_SLL2 => "linux-sll2",
            _ => return None,
        })
    }

    /// Whether netmon's parser understands this link type.
    pub const fn is_supported(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "linktype-{}", self.0),
        }
    }
}

/// A point in time with nanosecond resolution: nanoseconds since the Unix epoch (UTC).
///
/// Packet timestamps come from the capture (the packets' clock), never from the wall clock, so
/// replaying a file is deterministic. An `i64` of nanoseconds covers the years 1678–2262, and
/// is cheap to compare, subtract and store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// Builds a timestamp from whole seconds and nanoseconds, saturating at the ends of the range.
    pub const fn from_secs_nanos(secs: i64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(NANOS_PER_SEC)
                .saturating_add(nanos as i64),
        )
    }

    /// Builds a timestamp from nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded towards negative infinity).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// The sub-second part, 0..1e9.
    pub const fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(NANOS_PER_SEC) as u32
    }

    /// `self - earlier` in nanoseconds, saturating.
    pub const fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This timestamp as RFC 3339 with nine fractional digits, in UTC; see [`Rfc3339`].
    pub const fn rfc3339(self) -> Rfc3339 {
        Rfc3339(self)
    }

    /// Writes RFC 3339 with nine fractional digits (`2024-03-01T12:00:00.000000123Z`, 30 bytes
    /// for years 0–9999) into `buf` without the formatting machinery, and returns it as `&str`.
    /// Equal to [`Rfc3339`]'s `Display` for every timestamp: `i64` nanoseconds only span the
    /// years 1677–2262 (the clamp to 0–9999 is a guard, never reached).
    pub fn write_rfc3339(self, buf: &mut [u8; 32]) -> &str {
        let (y, mo, d, h, mi, s) = self.to_civil();
        let y = y.clamp(0, 9999) as u32;
        let ns = self.subsec_nanos();
        let mut put = |at: usize, v: u32, digits: usize| {
            let mut v = v;
            for i in (0..digits).rev() {
                if let Some(b) = buf.get_mut(at + i) {
                    *b = b'0' + (v % 10) as u8;
                }
                v /= 10;
            }
        };
        put(0, y, 4);
        put(5, mo, 2);
        put(8, d, 2);
        put(11, h, 2);
        put(14, mi, 2);
        put(17, s, 2);
        put(20, ns, 9);
        for (at, c) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (29, b'Z'),
        ] {
            if let Some(b) = buf.get_mut(at) {
                *b = c;
            }
        }
        // Only ASCII digits and separators were written.
        core::str::from_utf8(buf.get(..30).unwrap_or(&[])).unwrap_or("")
    }

    /// The civil date and time (UTC) of this timestamp: `(year, month, day, hour, minute, second)`.
    pub const fn to_civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let secs = self.secs();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, sod / 3600, (sod / 60) % 60, sod % 60)
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days` algorithm (<http://howardhinnant.github.io/date_algorithms.html>).
const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Displays a [`Timestamp`] as RFC 3339 in UTC with nanoseconds: `2024-03-01T12:00:00.000000123Z`.
///
/// Formatting writes straight into the formatter; it never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339(pub Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.0.to_civil();
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
            self.0.subsec_nanos()
        )
    }
}

/// Displays as RFC 3339 in UTC with nanoseconds, the same as [`Rfc3339`].
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Rfc3339(*self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            Timestamp::from_secs_nanos(1_709_294_400, 123).to_string(),
            "2024-03-01T12:00:00.000000123Z"
        );
        // A leap day and the last nanosecond of a year.
        assert_eq!(
            Timestamp::from_secs_nanos(951_782_400, 0).to_string(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            Timestamp::from_secs_nanos(1_704_067_199, 999_999_999).to_string(),
            "2023-12-31T23:59:59.999999999Z"
        );
        // Before the epoch: floor division keeps the fraction positive.
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn fast_rfc3339_matches_display() {
        let mut buf = [0u8; 32];
        for t in [
            0,
            1,
            -1,
            1_709_294_400_000_000_123,
            951_782_400_999_999_999,
            9_000_000_000_000_000_000,
            -2_000_000_000_000_000_000,
            i64::MIN,
            i64::MAX,
        ] {
            let ts = Timestamp(t);
            assert_eq!(ts.write_rfc3339(&mut buf), ts.rfc3339().to_string(), "{t}");
        }
    }

    #[test]
    fn accessors_and_saturation() {
        let t = Timestamp::from_secs_nanos(5, 7);
        assert_eq!((t.secs(), t.subsec_nanos()), (5, 7));
        assert_eq!(t.nanos_since(Timestamp(0)), 5_000_000_007);
        assert_eq!(Timestamp::from_secs_nanos(i64::MAX, 0), Timestamp(i64::MAX));
        // Extremes must format without panicking.
        let _ = Timestamp(i64::MAX).to_string();
        let _ = Timestamp(i64::MIN).to_string();
    }

    #[test]
    fn link_type_names() {
        assert_eq!(LinkType::LINUX_SLL2.to_string(), "linux-sll2");
        assert_eq!(LinkType(147).to_string(), "linktype-147");
        assert!(LinkType::RAW_BSD.is_supported());
        assert!(!LinkType(147).is_supported());
    }
}
