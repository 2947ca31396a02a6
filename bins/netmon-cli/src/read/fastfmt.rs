//! Formatting of the values every record prints — timestamps, IPv4 addresses — without
//! `core::fmt`, which dominated profiles of the printing modes. Output is byte-for-byte what
//! the `Display` implementations give (tested below).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use netmon_packet::MacAddr;
use netmon_types::Timestamp;

use super::ts_epoch;
use crate::json::write_u64;

/// Writes `v` as exactly `out.len()` decimal digits (zero-padded; higher digits dropped).
#[inline]
fn digits(out: &mut [u8], mut v: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Timestamp formatting that computes the calendar date once per second of capture time.
pub(crate) struct TsFmt {
    secs: i64,
    /// `YYYY-MM-DDTHH:MM:SS` of `secs`, when `fast`.
    head: [u8; 19],
    /// Whether `head` is valid (years 0..=9999; others go through `Display`).
    fast: bool,
}

impl TsFmt {
    pub(crate) fn new() -> TsFmt {
        TsFmt {
            secs: i64::MIN,
            head: [0; 19],
            fast: false,
        }
    }

    /// RFC 3339, UTC, nine fractional digits: the same text as `Timestamp`'s `Display`.
    #[inline]
    pub(crate) fn rfc3339<W: Write>(&mut self, w: &mut W, ts: Timestamp) -> io::Result<()> {
        let secs = ts.secs();
        if secs != self.secs {
            self.secs = secs;
            let (y, mo, d, h, mi, s) = ts.to_civil();
            self.fast = (0..=9999).contains(&y);
            if self.fast {
                let hd = &mut self.head;
                digits(&mut hd[0..4], y as u32);
                hd[4] = b'-';
                digits(&mut hd[5..7], mo);
                hd[7] = b'-';
                digits(&mut hd[8..10], d);
                hd[10] = b'T';
                digits(&mut hd[11..13], h);
                hd[13] = b':';
                digits(&mut hd[14..16], mi);
                hd[16] = b':';
                digits(&mut hd[17..19], s);
            }
        }
        if !self.fast {
            return write!(w, "{ts}");
        }
        let mut buf = [0u8; 30];
        buf[..19].copy_from_slice(&self.head);
        buf[19] = b'.';
        digits(&mut buf[20..29], ts.subsec_nanos());
        buf[29] = b'Z';
        w.write_all(&buf)
    }

    /// `secs.nanos` (tshark's `frame.time_epoch`); the same text as [`ts_epoch`].
    #[inline]
    pub(crate) fn epoch<W: Write>(w: &mut W, ts: Timestamp) -> io::Result<()> {
        if ts.as_nanos() < 0 {
            return write!(w, "{}", ts_epoch(ts.as_nanos()));
        }
        write_u64(w, ts.secs() as u64)?;
        let mut buf = [0u8; 10];
        buf[0] = b'.';
        digits(&mut buf[1..], ts.subsec_nanos());
        w.write_all(&buf)
    }
}

/// An IPv4 address in dotted decimal; the same text as `Ipv4Addr`'s `Display`.
#[inline]
pub(crate) fn ipv4<W: Write>(w: &mut W, a: Ipv4Addr) -> io::Result<()> {
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        let len = match o {
            0..=9 => 1,
            10..=99 => 2,
            _ => 3,
        };
        digits(&mut buf[n..n + len], u32::from(o));
        n += len;
    }
    w.write_all(&buf[..n])
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`; the same text as `MacAddr`'s `Display`.
#[inline]
pub(crate) fn mac<W: Write>(w: &mut W, m: MacAddr) -> io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [b':'; 17];
    for (i, o) in m.octets().into_iter().enumerate() {
        buf[i * 3] = HEX[usize::from(o >> 4)];
        buf[i * 3 + 1] = HEX[usize::from(o & 0xf)];
    }
    w.write_all(&buf)
}

/// An IP address: IPv4 by [`ipv4`], IPv6 by `Display` (RFC 5952 compression).
#[inline]
pub(crate) fn ip<W: Write>(w: &mut W, a: IpAddr) -> io::Result<()> {
    match a {
        IpAddr::V4(v4) => ipv4(w, v4),
        IpAddr::V6(v6) => write!(w, "{v6}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut b = Vec::new();
        f(&mut b).unwrap();
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn timestamps_match_display() {
        let mut f = TsFmt::new();
        let samples = [
            0,
            1,
            999_999_999,
            1_000_000_000,
            1_700_000_000_123_456_789,
            1_700_000_000_999_999_999,
            1_700_000_001_000_000_000,
            951_782_400_000_000_000,
            -1,
            -86_400_000_000_001,
            i64::MAX,
            i64::MIN,
        ];
        for n in samples {
            let ts = Timestamp(n);
            assert_eq!(s(|w| f.rfc3339(w, ts)), ts.to_string(), "{n}");
            assert_eq!(s(|w| TsFmt::epoch(w, ts)), ts_epoch(n).to_string(), "{n}");
        }
        // The cached date is reused within a second and replaced after it.
        let a = Timestamp::from_secs_nanos(1_700_000_000, 5);
        let b = Timestamp::from_secs_nanos(1_700_000_000, 6);
        let c = Timestamp::from_secs_nanos(1_700_086_400, 7);
        for ts in [a, b, c, a] {
            assert_eq!(s(|w| f.rfc3339(w, ts)), ts.to_string());
        }
    }

    #[test]
    fn ipv4_matches_display() {
        for a in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 0, 100, 9],
            [1, 22, 133, 99],
        ] {
            let a = Ipv4Addr::from(a);
            assert_eq!(s(|w| ipv4(w, a)), a.to_string());
        }
        let m = MacAddr([0x00, 0x19, 0x2f, 0xa7, 0xb2, 0xff]);
        assert_eq!(s(|w| mac(w, m)), m.to_string());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(s(|w| ip(w, v6)), "2001:db8::1");
    }
}
