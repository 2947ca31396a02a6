//! Safe display of packet-derived bytes.
//!
//! Every string that comes out of a packet (LLDP system names, CDP device ids, later TLS SNI,
//! HTTP Host, DNS names) is hostile: it may hold control characters, ANSI escape sequences,
//! invalid UTF-8 or be arbitrarily long. Nothing here trusts it as `str`; the wrappers below
//! render it without allocating:
//!
//! * [`Escaped`] (`Display`) — for terminal / log output: printable ASCII as is, `\` and `"`
//!   escaped, every other byte as `\xNN`; at most [`Escaped::DEFAULT_MAX`] input bytes
//!   (configurable with [`Escaped::max_len`]), followed by `…` when cut.
//! * [`EscapedJson`] (`Display`, from [`Escaped::json`]) — the *contents* of a JSON string
//!   (RFC 8259 §7; the caller writes the surrounding quotes): valid UTF-8 is kept, `"` and `\`
//!   are escaped, control characters (C0, DEL, C1) and the invisible line/bidi-override
//!   characters U+2028/U+2029, U+202A..U+202E, U+2066..U+2069 become `\u00XX` / `\uXXXX`,
//!   and each byte of invalid UTF-8 becomes the six characters `\\xNN` (which a JSON decoder
//!   turns into the text `\xNN`).
//! * [`MacAddr`] — a MAC address shown as `aa:bb:cc:dd:ee:ff`.

use core::fmt::{self, Write as _};

/// Packet bytes rendered safely for terminals and logs (see the [module docs](self)).
///
/// ```
/// use netmon_packet::text::Escaped;
/// let name = b"sw\x1b[31m1\"\\\xff";
/// assert_eq!(Escaped::new(name).to_string(), r#"sw\x1b[31m1\"\\\xff"#);
/// assert_eq!(Escaped::new(b"abcdef").max_len(3).to_string(), "abc…");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escaped<'a> {
    bytes: &'a [u8],
    max: usize,
}

impl<'a> Escaped<'a> {
    /// How many input bytes are shown unless [`max_len`](Escaped::max_len) says otherwise.
    pub const DEFAULT_MAX: usize = 256;

    /// Wraps `bytes`, showing at most [`Escaped::DEFAULT_MAX`] of them.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Escaped {
            bytes,
            max: Self::DEFAULT_MAX,
        }
    }

    /// Shows at most `max` input bytes (then `…`).
    #[must_use]
    pub const fn max_len(self, max: usize) -> Self {
        Escaped { max, ..self }
    }

    /// The JSON-string-content rendering of the same bytes, with the same length bound.
    pub const fn json(self) -> EscapedJson<'a> {
        EscapedJson(self)
    }

    /// Whether the output is cut (the input is longer than the bound).
    pub const fn is_truncated(&self) -> bool {
        self.bytes.len() > self.max
    }

    /// The input bytes that are shown (at most the bound), and whether some were cut.
    fn shown(&self) -> (&'a [u8], bool) {
        match self.bytes.get(..self.max) {
            Some(head) if self.bytes.len() > self.max => (head, true),
            _ => (self.bytes, false),
        }
    }
}

/// Bytes that [`Escaped`] writes unchanged.
const fn plain(b: u8) -> bool {
    matches!(b, 0x20..=0x7e) && b != b'\\' && b != b'"'
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(n: u8) -> char {
    char::from(HEX.get(usize::from(n & 0x0f)).copied().unwrap_or(b'?'))
}

/// Writes `\xNN` (with `prefix` backslashes, 1 for plain text, 2 for JSON).
fn write_hex_escape(f: &mut fmt::Formatter<'_>, prefix: &str, b: u8) -> fmt::Result {
    f.write_str(prefix)?;
    f.write_char('x')?;
    f.write_char(hex_digit(b >> 4))?;
    f.write_char(hex_digit(b))
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut rest, cut) = self.shown();
        while !rest.is_empty() {
            // The longest run of bytes written unchanged, then one byte to escape.
            let run = rest.iter().position(|&b| !plain(b)).unwrap_or(rest.len());
            let (head, tail) = rest.split_at(run);
            // `head` is printable ASCII, hence valid UTF-8.
            f.write_str(core::str::from_utf8(head).map_err(|_| fmt::Error)?)?;
            let Some((&b, tail)) = tail.split_first() else {
                break;
            };
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'"' => f.write_str("\\\"")?,
                _ => write_hex_escape(f, "\\", b)?,
            }
            rest = tail;
        }
        if cut {
            f.write_char('…')?;
        }
        Ok(())
    }
}

/// Packet bytes rendered as the contents of a JSON string (see the [module docs](self)).
///
/// ```
/// use netmon_packet::text::Escaped;
/// let s = Escaped::new(b"caf\xc3\xa9 \"x\"\n\xff").json().to_string();
/// assert_eq!(s, r#"café \"x\"\u000a\\xff"#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscapedJson<'a>(Escaped<'a>);

/// Characters that are valid in a JSON string but are escaped anyway because they are
/// invisible or control terminals/text direction.
const fn json_needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '"' | '\\' | '\u{7f}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn write_json_escape(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '"' => f.write_str("\\\""),
        '\\' => f.write_str("\\\\"),
        _ => {
            let n = u32::from(c);
            f.write_str("\\u")?;
            for shift in [12u32, 8, 4, 0] {
                // Truncation to the low nibble is the point.
                f.write_char(hex_digit(((n >> shift) & 0xf) as u8))?;
            }
            Ok(())
        }
    }
}

impl fmt::Display for EscapedJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, cut) = self.0.shown();
        for chunk in shown.utf8_chunks() {
            let mut valid = chunk.valid();
            while !valid.is_empty() {
                let run = valid
                    .char_indices()
                    .find(|&(_, c)| json_needs_escape(c))
                    .map_or(valid.len(), |(i, _)| i);
                let (head, tail) = valid.split_at(run);
                f.write_str(head)?;
                let mut chars = tail.chars();
                let Some(c) = chars.next() else {
                    break;
                };
                write_json_escape(f, c)?;
                valid = chars.as_str();
            }
            for &b in chunk.invalid() {
                write_hex_escape(f, "\\\\", b)?;
            }
        }
        if cut {
            f.write_char('…')?;
        }
        Ok(())
    }
}

/// An IEEE 802 MAC address, shown as `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The address in `bytes` if it is exactly 6 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        bytes.try_into().ok().map(MacAddr)
    }

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// The OUI (first three octets).
    pub const fn oui(&self) -> [u8; 3] {
        [self.0[0], self.0[1], self.0[2]]
    }

    /// Whether the I/G bit marks a group (multicast or broadcast) address.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

/// Decodes a hex string (whitespace ignored) for byte-array tests.
#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("bad hex digit {b}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Inverse of the plain rendering (test oracle), for untruncated output.
    fn unescape(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                match b[i + 1] {
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'x' => {
                        out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                        i += 2;
                    }
                    other => panic!("unexpected escape {other}"),
                }
                i += 2;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    /// Minimal JSON string-content decoder (test oracle): `\"`, `\\`, `\uXXXX` (BMP only).
    fn json_unescape(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next().unwrap() {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'u' => {
                    let h: String = it.by_ref().take(4).collect();
                    let n = u32::from_str_radix(&h, 16).unwrap();
                    out.push(char::from_u32(n).unwrap());
                }
                other => panic!("unexpected escape {other}"),
            }
        }
        out
    }

    #[test]
    fn plain_escapes() {
        assert_eq!(Escaped::new(b"").to_string(), "");
        assert_eq!(Escaped::new(b"S1.cisco.com").to_string(), "S1.cisco.com");
        assert_eq!(
            Escaped::new(b"a\x1b[2Jb\r\n\x00\x7f\x80").to_string(),
            r"a\x1b[2Jb\x0d\x0a\x00\x7f\x80"
        );
        assert_eq!(Escaped::new(b"q\"b\\").to_string(), r#"q\"b\\"#);
        // UTF-8 is not trusted for terminal output either.
        assert_eq!(Escaped::new("é".as_bytes()).to_string(), r"\xc3\xa9");
    }

    #[test]
    fn plain_bound() {
        let long = [b'a'; 300];
        let s = Escaped::new(&long).to_string();
        assert_eq!(s.len(), 256 + '…'.len_utf8());
        assert!(s.ends_with('…'));
        assert!(Escaped::new(&long).is_truncated());
        assert_eq!(Escaped::new(&long[..256]).to_string(), "a".repeat(256));
        assert!(!Escaped::new(&long[..256]).is_truncated());
        assert_eq!(
            Escaped::new(b"\x01\x02\x03").max_len(2).to_string(),
            r"\x01\x02…"
        );
        assert_eq!(Escaped::new(b"abc").max_len(0).to_string(), "…");
        assert_eq!(Escaped::new(b"").max_len(0).to_string(), "");
    }

    #[test]
    fn json_escapes() {
        let j = |b: &[u8]| Escaped::new(b).json().to_string();
        assert_eq!(j(b"plain text"), "plain text");
        assert_eq!(j(b"\"\\/"), r#"\"\\/"#);
        assert_eq!(j(b"\x00\x1f\x7f\t"), r"\u0000\u001f\u007f\u0009");
        // C1 CSI (U+009B), line separator and right-to-left override are neutralised.
        assert_eq!(
            j("\u{9b}\u{2028}\u{202e}x".as_bytes()),
            r"\u009b\u2028\u202ex"
        );
        assert_eq!(j("naïve ☃".as_bytes()), "naïve ☃");
        // Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong form.
        assert_eq!(
            j(b"a\x80b\xe2\x98c\xc0\xaf"),
            r"a\\x80b\\xe2\\x98c\\xc0\\xaf"
        );
        assert_eq!(
            Escaped::new(b"abcdef").max_len(4).json().to_string(),
            "abcd…"
        );
        // Cutting inside a multi-byte character shows its bytes, never half a char.
        assert_eq!(
            Escaped::new("aé".as_bytes()).max_len(2).json().to_string(),
            r"a\\xc3…"
        );
    }

    #[test]
    fn mac_display() {
        let m = MacAddr([0x00, 0x19, 0x2f, 0xa7, 0xb2, 0x8d]);
        assert_eq!(m.to_string(), "00:19:2f:a7:b2:8d");
        assert_eq!(format!("{m:?}"), "MacAddr(00:19:2f:a7:b2:8d)");
        assert_eq!(m.oui(), [0x00, 0x19, 0x2f]);
        assert!(!m.is_multicast());
        assert!(MacAddr([1, 0x80, 0xc2, 0, 0, 0x0e]).is_multicast());
        assert_eq!(
            MacAddr::from_slice(&[1, 2, 3, 4, 5, 6]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(MacAddr::from_slice(&[1, 2, 3, 4, 5]), None);
        assert_eq!(MacAddr::from_slice(&[0; 7]), None);
    }

    #[test]
    fn unhex_works() {
        assert_eq!(unhex("00 fF\n1a"), vec![0x00, 0xff, 0x1a]);
    }

    proptest! {
        #[test]
        fn plain_is_safe_and_reversible(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                        max in 0usize..700) {
            let e = Escaped::new(&bytes).max_len(max);
            let s = e.to_string();
            let body = s.strip_suffix('…').unwrap_or(&s);
            // Only printable ASCII in the body: no control characters, no escapes, no UTF-8.
            prop_assert!(body.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert!(body.len() <= 4 * max.min(bytes.len()));
            prop_assert_eq!(s.ends_with('…'), bytes.len() > max);
            prop_assert_eq!(unescape(body), &bytes[..max.min(bytes.len())]);
        }

        #[test]
        fn json_is_safe_and_reversible(s in "\\PC*|[\\x00-\\x1f\"\\\\\u{80}-\u{a0}\u{2028}-\u{2070}]*",
                                       junk in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Valid UTF-8 round-trips through a JSON decoder.
            let out = Escaped::new(s.as_bytes()).max_len(usize::MAX).json().to_string();
            prop_assert!(json_safe(&out), "unsafe JSON text {:?}", out);
            prop_assert_eq!(json_unescape(&out), s);
            // Arbitrary bytes: safe, and bounded (at most 6 output bytes per input byte).
            let out = Escaped::new(&junk).json().to_string();
            prop_assert!(json_safe(&out), "unsafe JSON text {:?}", out);
            prop_assert!(out.len() <= 6 * junk.len());
        }
    }

    /// No raw control / bidi-override character, and every `"` is escaped (preceded by an odd
    /// number of backslashes).
    fn json_safe(out: &str) -> bool {
        let raw_bad = out
            .chars()
            .any(|c| json_needs_escape(c) && c != '"' && c != '\\');
        let b = out.as_bytes();
        let quotes_escaped = b
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == b'"')
            .all(|(i, _)| b[..i].iter().rev().take_while(|&&x| x == b'\\').count() % 2 == 1);
        !raw_bad && quotes_escaped
    }

    #[test]
    fn json_safety_checker() {
        assert!(json_safe(
            &Escaped::new(b"a\"\"\\\"\x1b").json().to_string()
        ));
        assert!(!json_safe("a\\\"b\""));
        assert!(!json_safe("a\u{1b}"));
        assert!(json_safe(r#"a\\\"b"#));
    }
}
