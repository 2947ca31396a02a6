//! Time parameters: RFC 3339 or seconds since the Unix epoch.

use netmon_types::Timestamp;

const NS: i128 = 1_000_000_000;

/// Parses a time given as RFC 3339 (`2024-03-01T12:00:00Z`, `2024-03-01T12:00:00.5+02:00`)
/// or as seconds since the epoch (`1709294400`, `1709294400.25`).
///
/// In a query string a `+` decodes to a space, so an offset written `+02:00` without
/// percent-encoding arrives as ` 02:00`: that form is accepted too. Fractional digits beyond
/// the ninth are dropped. Times outside the range of [`Timestamp`] (years 1678 to 2262) are
/// clamped to its ends: `from=0001-01-01T00:00:00Z` means "since the beginning".
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let nanos = if s.len() >= 10 && s.as_bytes().get(4) == Some(&b'-') {
        parse_rfc3339(s)?
    } else {
        parse_epoch(s)?
    };
    let clamped = nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    Ok(Timestamp(i64::try_from(clamped).unwrap_or_default()))
}

fn bad(s: &str) -> String {
    format!("not an RFC 3339 time or epoch seconds: {s:?}")
}

/// `[-]digits[.digits]`: at most 12 integer digits.
fn parse_epoch(s: &str) -> Result<i128, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(s));
    }
    let secs: i128 = int.parse().map_err(|_| bad(s))?;
    let ns = match frac {
        Some(f) => frac_nanos(f).ok_or_else(|| bad(s))?,
        None => 0,
    };
    let v = secs * NS + ns;
    Ok(if neg { -v } else { v })
}

/// One or more fractional digits as nanoseconds (digits beyond the ninth dropped).
fn frac_nanos(f: &str) -> Option<i128> {
    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let f = f.get(..f.len().min(9))?;
    let v: i128 = f.parse().ok()?;
    Some(v * 10i128.pow(9 - f.len() as u32))
}

fn digits(s: &str, at: usize, n: usize) -> Option<i64> {
    let d = s.get(at..at + n)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// RFC 3339 `date-time` (section 5.6):
///
/// ```text
/// date-fullyear   = 4DIGIT
/// date-month      = 2DIGIT  ; 01-12
/// date-mday       = 2DIGIT  ; 01-28, 01-29, 01-30, 01-31 based on month/year
/// time-hour       = 2DIGIT  ; 00-23
/// time-minute     = 2DIGIT  ; 00-59
/// time-second     = 2DIGIT  ; 00-58, 00-59, 00-60 based on leap second rules
/// time-secfrac    = "." 1*DIGIT
/// time-numoffset  = ("+" / "-") time-hour ":" time-minute
/// time-offset     = "Z" / time-numoffset
/// partial-time    = time-hour ":" time-minute ":" time-second [time-secfrac]
/// full-date       = date-fullyear "-" date-month "-" date-mday
/// full-time       = partial-time time-offset
/// date-time       = full-date "T" full-time
/// ```
///
/// `t`, `z` and a space instead of `T` are accepted (section 5.6's NOTE); fractional digits
/// beyond the ninth are dropped (netmon's clock has nanoseconds).
fn parse_rfc3339(s: &str) -> Result<i128, String> {
    let b = s.as_bytes();
    let sep = |i: usize, ok: &[u8]| b.get(i).is_some_and(|c| ok.contains(c));
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        digits(s, 0, 4),
        digits(s, 5, 2),
        digits(s, 8, 2),
        digits(s, 11, 2),
        digits(s, 14, 2),
        digits(s, 17, 2),
    ) else {
        return Err(bad(s));
    };
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err(bad(s));
    }
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return Err(format!("invalid date or time: {s:?}"));
    }
    let mut rest = s.get(19..).ok_or_else(|| bad(s))?;
    let mut ns = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        ns = frac_nanos(r.get(..n).unwrap_or("")).ok_or_else(|| bad(s))?;
        rest = r.get(n..).unwrap_or("");
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.get(3..4) == Some(":") => {
            let sign = match rest.get(..1) {
                Some("+" | " ") => 1,
                Some("-") => -1,
                _ => return Err(bad(s)),
            };
            let (Some(oh), Some(om)) = (digits(rest, 1, 2), digits(rest, 4, 2)) else {
                return Err(bad(s));
            };
            if oh > 23 || om > 59 {
                return Err(format!("invalid offset: {s:?}"));
            }
            sign * (oh * 3600 + om * 60)
        }
        _ => return Err(bad(s)),
    };
    let days = days_from_civil(y, mo, d);
    let secs =
        i128::from(days) * 86_400 + i128::from(h * 3600 + mi * 60 + sec) - i128::from(offset_secs);
    Ok(secs * NS + ns)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date: Howard Hinnant's `days_from_civil`
/// (<http://howardhinnant.github.io/date_algorithms.html>), the inverse of the one in
/// `netmon-types`. `y` is 0..=9999 here.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_rfc3339_and_epoch() {
        let t = Timestamp::from_secs_nanos(1_709_294_400, 0);
        for s in [
            "2024-03-01T12:00:00Z",
            "2024-03-01t12:00:00z",
            "2024-03-01 12:00:00Z",
            "2024-03-01T14:00:00+02:00",
            "2024-03-01T14:00:00 02:00",
            "2024-03-01T10:30:00-01:30",
            "1709294400",
            "1709294400.000",
        ] {
            assert_eq!(parse_time(s), Ok(t), "{s}");
        }
        assert_eq!(
            parse_time("2024-03-01T12:00:00.000000123Z"),
            Ok(Timestamp(t.0 + 123))
        );
        assert_eq!(
            parse_time("1709294400.25"),
            Ok(Timestamp(t.0 + 250_000_000))
        );
        assert_eq!(parse_time("-1.5"), Ok(Timestamp(-1_500_000_000)));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(Timestamp(0)));
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z"),
            Ok(Timestamp::from_secs_nanos(951_782_400, 0))
        );
    }

    #[test]
    fn clamps_out_of_range_and_drops_extra_digits() {
        let (min, max) = (Timestamp(i64::MIN), Timestamp(i64::MAX));
        assert_eq!(parse_time("0000-01-01T00:00:00Z"), Ok(min));
        assert_eq!(parse_time("1500-01-01T00:00:00Z"), Ok(min));
        assert_eq!(parse_time("9999-12-31T23:59:60Z"), Ok(max));
        assert_eq!(parse_time("999999999999"), Ok(max));
        assert_eq!(parse_time("-999999999999.5"), Ok(min));
        assert_eq!(
            parse_time("2024-03-01T12:00:00.1234567891234Z"),
            Ok(Timestamp::from_secs_nanos(1_709_294_400, 123_456_789))
        );
        assert_eq!(
            parse_time("1709294400.9999999999"),
            Ok(Timestamp::from_secs_nanos(1_709_294_400, 999_999_999))
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "now",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T12:00:00",
            "2024-03-01T12:00:00+0200",
            "2024-03-01T12:00:00.Z",
            "2024-03-01T12:00:00.12a4Z",
            "2024-03-01T12:00:00+24:00",
            "2024-03-01",
            "２０２4-03-01T12:00:00Z",
            "1709294400.",
            "1709294400.1a",
            "+5",
            "1e9",
            "1234567890123",
            "2024-03-01T12:00:00-",
            "-2024-03-01T12:00:00Z",
        ] {
            assert!(parse_time(s).is_err(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trips_every_timestamp(ns in any::<i64>()) {
            let t = Timestamp(ns);
            prop_assert_eq!(parse_time(&t.rfc3339().to_string()), Ok(t));
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_time(&s);
        }

        #[test]
        fn never_panics_near_valid(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.+Z -]{0,20}") {
            let _ = parse_time(&s);
        }
    }
}
