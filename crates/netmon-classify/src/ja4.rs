//! The JA4 TLS client fingerprint (FoxIO, `technical_details/JA4.md` in
//! <https://github.com/FoxIO-LLC/ja4>).
//!
//! ```text
//! JA4 = JA4_a "_" JA4_b "_" JA4_c, e.g. t13d1516h2_8daaf6152771_e5627efa2ab1
//!
//! JA4_a = transport  "t" TLS over TCP, "q" QUIC, "d" DTLS
//!         version    2 chars: highest non-GREASE supported_versions (0x002b) value if any,
//!                    else the ClientHello's legacy_version: 0304 "13", 0303 "12", 0302 "11",
//!                    0301 "10", 0300 "s3", 0002 "s2", feff "d1", fefd "d2", fefc "d3",
//!                    anything else "00"
//!         sni        "d" if the server_name extension (0x0000) is present, else "i"
//!         ciphers    number of non-GREASE cipher suites, 2 digits, capped at 99
//!         extensions number of non-GREASE extensions (SNI and ALPN included), 2 digits, ≤ 99
//!         alpn       first and last character of the first ALPN value; "00" without one; if
//!                    either end byte is not ASCII alphanumeric, the first and last character of
//!                    the value's lower-case hex form instead
//! JA4_b = sha256("002f,0035,...": non-GREASE cipher suites, 4-digit lower-case hex, sorted,
//!         comma-separated), first 12 hex digits; "000000000000" if there are none
//! JA4_c = sha256(non-GREASE extensions except 0000 (SNI) and 0010 (ALPN), same form, sorted;
//!         then, if there are any, "_" and the non-GREASE signature algorithms (0x000d) in
//!         wire order), first 12 hex digits; "000000000000" if the extension list is empty
//! ```
//!
//! GREASE values (RFC 8701: `0x?a?a` with equal bytes) are ignored everywhere.
//! [`ja4_r`] gives the raw form (JA4_r: the lists instead of their hashes), which is what
//! other tools print next to the fingerprint and what the unit tests compare with.

use core::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Which transport carried the ClientHello: JA4's first character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ja4Transport {
    /// TLS over TCP: `t`.
    Tcp,
    /// QUIC (the hello came from Initial CRYPTO frames): `q`.
    Quic,
    /// DTLS: `d`.
    Dtls,
}

impl Ja4Transport {
    /// The fingerprint character: `t`, `q` or `d`.
    pub const fn code(self) -> char {
        match self {
            Ja4Transport::Tcp => 't',
            Ja4Transport::Quic => 'q',
            Ja4Transport::Dtls => 'd',
        }
    }
}

/// The ClientHello fields JA4 is computed from, borrowed. Lists are in wire order and may
/// contain GREASE values (they are skipped here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ja4Input<'a> {
    /// `legacy_version` of the ClientHello body (not the record layer's version).
    pub legacy_version: u16,
    /// The supported_versions (0x002b) extension's list; empty when absent.
    pub supported_versions: &'a [u16],
    /// Whether the server_name extension (0x0000) is present (even if empty or unparsable).
    pub sni: bool,
    /// Cipher suites.
    pub ciphers: &'a [u16],
    /// Extension types.
    pub extensions: &'a [u16],
    /// The first ALPN protocol name, when the ALPN extension has one.
    pub first_alpn: Option<&'a [u8]>,
    /// The signature_algorithms (0x000d) extension's list.
    pub signature_algorithms: &'a [u16],
}

/// Whether `v` is a GREASE value (RFC 8701 §2: 0x0A0A, 0x1A1A, …, 0xFAFA).
pub const fn is_grease(v: u16) -> bool {
    let [hi, lo] = v.to_be_bytes();
    hi == lo && lo & 0x0f == 0x0a
}

/// JA4's two-character code of a TLS/DTLS version (`"00"` for unknown ones).
pub const fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// Order of versions from oldest to newest. DTLS versions count down (0xfeff is DTLS 1.0,
/// 0xfefc DTLS 1.3), so they are ranked by their inverted minor byte, above every TLS version.
const fn version_rank(v: u16) -> u32 {
    let [hi, lo] = v.to_be_bytes();
    if hi == 0xfe {
        0x1_0000 + (0xff - lo as u32)
    } else {
        v as u32
    }
}

/// The version JA4 reports: the highest non-GREASE supported_versions value, else
/// `legacy_version`.
pub fn ja4_version(legacy_version: u16, supported_versions: &[u16]) -> u16 {
    supported_versions
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .max_by_key(|&v| version_rank(v))
        .unwrap_or(legacy_version)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_char(nibble: u8) -> char {
    char::from(HEX.get(usize::from(nibble & 0x0f)).copied().unwrap_or(b'0'))
}

/// The two ALPN characters of JA4_a.
fn alpn_chars(first_alpn: Option<&[u8]>) -> [char; 2] {
    match first_alpn {
        Some([first, .., last]) | Some([first @ last]) => {
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                [char::from(*first), char::from(*last)]
            } else {
                [hex_char(first >> 4), hex_char(*last)]
            }
        }
        _ => ['0', '0'],
    }
}

/// Non-GREASE count, capped at 99.
fn count(list: &[u16]) -> usize {
    list.iter().filter(|&&v| !is_grease(v)).count().min(99)
}

/// JA4_a: `t13d1516h2`.
fn part_a(transport: Ja4Transport, h: &Ja4Input<'_>) -> String {
    let [a0, a1] = alpn_chars(h.first_alpn);
    let mut s = String::with_capacity(10);
    s.push(transport.code());
    s.push_str(version_code(ja4_version(
        h.legacy_version,
        h.supported_versions,
    )));
    s.push(if h.sni { 'd' } else { 'i' });
    let _ = write!(
        s,
        "{:02}{:02}{a0}{a1}",
        count(h.ciphers),
        count(h.extensions)
    );
    s
}

/// Appends `list` as comma-separated 4-digit lower-case hex.
fn push_hex_list(out: &mut String, list: impl Iterator<Item = u16>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, v) in list.enumerate() {
        if i > 0 {
            out.push(',');
        }
        for shift in [12, 8, 4, 0] {
            let d = HEX
                .get(usize::from((v >> shift) & 0xf))
                .copied()
                .unwrap_or(b'0');
            out.push(char::from(d));
        }
    }
}

/// Non-GREASE values of `list`, sorted.
fn sorted(list: &[u16], keep: impl Fn(u16) -> bool) -> Vec<u16> {
    let mut v: Vec<u16> = list
        .iter()
        .copied()
        .filter(|&v| !is_grease(v) && keep(v))
        .collect();
    v.sort_unstable();
    v
}

/// The string hashed into JA4_b; empty when there are no ciphers.
fn cipher_string(h: &Ja4Input<'_>) -> String {
    let mut s = String::new();
    push_hex_list(&mut s, sorted(h.ciphers, |_| true).into_iter());
    s
}

/// The string hashed into JA4_c; empty when no extension other than SNI/ALPN remains.
fn extension_string(h: &Ja4Input<'_>) -> String {
    let exts = sorted(h.extensions, |v| v != 0x0000 && v != 0x0010);
    let mut s = String::new();
    if exts.is_empty() {
        return s;
    }
    push_hex_list(&mut s, exts.into_iter());
    let mut sigs = h
        .signature_algorithms
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .peekable();
    if sigs.peek().is_some() {
        s.push('_');
        push_hex_list(&mut s, sigs);
    }
    s
}

/// First 12 hex digits of SHA-256 of `s`, or `000000000000` when `s` is empty.
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(12);
    for b in digest.iter().take(6) {
        out.push(hex_char(b >> 4));
        out.push(hex_char(*b));
    }
    out
}

/// The JA4 fingerprint of a ClientHello (see the [module docs](self)).
///
/// ```
/// use netmon_classify::ja4::{ja4, Ja4Input, Ja4Transport};
///
/// // The example of the JA4 specification (GREASE values added: they are ignored).
/// let ciphers = [0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
///                0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
/// let extensions = [0x1a1a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
///                   0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015];
/// let sigs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
/// let hello = Ja4Input {
///     legacy_version: 0x0303,
///     supported_versions: &[0x2a2a, 0x0304, 0x0303],
///     sni: true,
///     ciphers: &ciphers,
///     extensions: &extensions,
///     first_alpn: Some(b"h2"),
///     signature_algorithms: &sigs,
/// };
/// assert_eq!(ja4(Ja4Transport::Tcp, &hello), "t13d1516h2_8daaf6152771_e5627efa2ab1");
/// ```
pub fn ja4(transport: Ja4Transport, hello: &Ja4Input<'_>) -> String {
    let mut s = part_a(transport, hello);
    s.push('_');
    s.push_str(&hash12(&cipher_string(hello)));
    s.push('_');
    s.push_str(&hash12(&extension_string(hello)));
    s
}

/// JA4_r, the raw form: JA4_a, then the strings JA4_b and JA4_c hash, `_`-separated
/// (`t13d1516h2_002f,0035,…_0005,000a,…_0403,0804,…`).
pub fn ja4_r(transport: Ja4Transport, hello: &Ja4Input<'_>) -> String {
    let mut s = part_a(transport, hello);
    s.push('_');
    s.push_str(&cipher_string(hello));
    s.push('_');
    s.push_str(&extension_string(hello));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's example hello (JA4.md, "Example" and "Raw Output").
    const CIPHERS: [u16; 15] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ];
    const EXTS: [u16; 16] = [
        0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
        0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
    ];
    const SIGS: [u16; 8] = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];

    fn spec_hello() -> Ja4Input<'static> {
        Ja4Input {
            legacy_version: 0x0303,
            supported_versions: &[0x0304, 0x0303],
            sni: true,
            ciphers: &CIPHERS,
            extensions: &EXTS,
            first_alpn: Some(b"h2"),
            signature_algorithms: &SIGS,
        }
    }

    #[test]
    fn spec_example() {
        let h = spec_hello();
        assert_eq!(
            ja4(Ja4Transport::Tcp, &h),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
        assert_eq!(
            ja4_r(Ja4Transport::Tcp, &h),
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,\
             cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,\
             0804,0401,0503,0805,0501,0806,0601"
        );
        // Without signature algorithms the string ends without "_" (spec: 6d807ffa2a79).
        let h = Ja4Input {
            signature_algorithms: &[],
            ..spec_hello()
        };
        assert!(ja4(Ja4Transport::Quic, &h).ends_with("_6d807ffa2a79"));
        assert!(ja4(Ja4Transport::Quic, &h).starts_with("q13d1516h2_"));
    }

    #[test]
    fn grease_everywhere_is_ignored() {
        let mut ciphers = vec![0xdada];
        ciphers.extend_from_slice(&CIPHERS);
        let mut exts = vec![0x3a3a];
        exts.extend_from_slice(&EXTS);
        exts.push(0xfafa);
        let mut sigs = vec![0x7a7a];
        sigs.extend_from_slice(&SIGS);
        let h = Ja4Input {
            supported_versions: &[0x4a4a, 0x0304, 0x0303],
            ciphers: &ciphers,
            extensions: &exts,
            signature_algorithms: &sigs,
            ..spec_hello()
        };
        assert_eq!(
            ja4(Ja4Transport::Tcp, &h),
            ja4(Ja4Transport::Tcp, &spec_hello())
        );
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a));
        assert!(!is_grease(0xefef) && !is_grease(0x0000));
    }

    #[test]
    fn empty_lists_and_no_sni_no_alpn() {
        let h = Ja4Input {
            legacy_version: 0x0301,
            ..Ja4Input::default()
        };
        assert_eq!(
            ja4(Ja4Transport::Tcp, &h),
            "t10i000000_000000000000_000000000000"
        );
        // Only SNI and ALPN: JA4_c is empty even with signature algorithms.
        let h = Ja4Input {
            legacy_version: 0x0300,
            sni: true,
            extensions: &[0x0000, 0x0010],
            signature_algorithms: &[0x0401],
            ..Ja4Input::default()
        };
        assert!(ja4(Ja4Transport::Dtls, &h).ends_with("_000000000000_000000000000"));
        assert!(ja4(Ja4Transport::Dtls, &h).starts_with("ds3d000200"));
    }

    #[test]
    fn versions() {
        assert_eq!(ja4_version(0x0303, &[]), 0x0303);
        assert_eq!(ja4_version(0x0303, &[0x0a0a]), 0x0303);
        assert_eq!(ja4_version(0x0301, &[0x0302, 0x0304, 0x0303]), 0x0304);
        assert_eq!(ja4_version(0xfefd, &[0xfefd, 0xfefc]), 0xfefc);
        for (v, c) in [
            (0x0304, "13"),
            (0x0300, "s3"),
            (0x0002, "s2"),
            (0xfeff, "d1"),
            (0xfefd, "d2"),
            (0xfefc, "d3"),
            (0x7f12, "00"),
        ] {
            assert_eq!(version_code(v), c);
        }
    }

    #[test]
    fn alpn_rules() {
        // The specification's examples.
        assert_eq!(alpn_chars(Some(b"h2")), ['h', '2']);
        assert_eq!(alpn_chars(Some(b"http/1.1")), ['h', '1']);
        assert_eq!(alpn_chars(Some(b"x")), ['x', 'x']);
        assert_eq!(alpn_chars(Some(&[])), ['0', '0']);
        assert_eq!(alpn_chars(None), ['0', '0']);
        assert_eq!(alpn_chars(Some(&[0xab])), ['a', 'b']);
        assert_eq!(alpn_chars(Some(&[0xab, 0xcd])), ['a', 'd']);
        assert_eq!(alpn_chars(Some(&[0x30, 0xab])), ['3', 'b']);
        assert_eq!(alpn_chars(Some(&[0x30, 0x31, 0xab, 0xcd])), ['3', 'd']);
        assert_eq!(alpn_chars(Some(&[0x30, 0xab, 0xcd, 0x31])), ['0', '1']);
    }

    #[test]
    fn counts_cap_at_99() {
        let ciphers: Vec<u16> = (1..=150).collect();
        let h = Ja4Input {
            ciphers: &ciphers,
            ..spec_hello()
        };
        assert!(ja4(Ja4Transport::Tcp, &h).starts_with("t13d9916h2_"));
    }
}
