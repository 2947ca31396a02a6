//! Bearer-token authentication (RFC 6750 section 2.1), compared in constant time.

use sha2::{Digest, Sha256};

/// A configured token, kept as its SHA-256 digest.
///
/// Comparing digests rather than the strings makes the comparison take the same time whatever
/// the presented token's length and content: both sides are 32 bytes, compared with
/// [`ct_eq`]. (A timing side channel on the digest would reveal digest bytes, which do not help
/// to find the token.)
#[derive(Clone)]
pub(crate) struct Token {
    digest: [u8; 32],
}

impl core::fmt::Debug for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    pub(crate) fn new(token: &str) -> Token {
        Token {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether an `Authorization` header value carries this token:
    ///
    /// ```text
    /// credentials = "Bearer" 1*SP b64token
    /// ```
    ///
    /// The scheme is case-insensitive (RFC 9110 section 11.1).
    pub(crate) fn verify_header(&self, value: &[u8]) -> bool {
        let Some((scheme, rest)) = value.split_at_checked(6) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"Bearer") || !rest.starts_with(b" ") {
            return false;
        }
        let presented = rest.trim_ascii_start();
        let d: [u8; 32] = Sha256::digest(presented).into();
        ct_eq(&d, &self.digest)
    }
}

/// Constant-time equality of two 32-byte arrays: every byte is compared, no early exit, and
/// the accumulated difference goes through [`core::hint::black_box`] so that the compiler
/// cannot turn the loop back into a short-circuiting comparison.
pub(crate) fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= core::hint::black_box(x ^ y);
    }
    core::hint::black_box(diff) == 0
}

/// Whether a configured token is acceptable: non-empty visible ASCII (an HTTP header value
/// cannot carry anything else intact).
pub(crate) fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_every_byte() {
        let a = [7u8; 32];
        assert!(ct_eq(&a, &a));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!ct_eq(&a, &b), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn ct_eq_time_does_not_depend_on_where_the_difference_is() {
        // Not a benchmark (the machine is shared): a loose check that a difference in the first
        // byte is not answered much faster than one in the last, which a short-circuiting
        // comparison of this size would not show either. The functional guarantee is the loop
        // above; this guards against an obvious early return sneaking in.
        use std::time::Instant;
        let a = [0u8; 32];
        let mut first = a;
        first[0] = 1;
        let mut last = a;
        last[31] = 1;
        let time = |b: &[u8; 32]| {
            let mut best = u128::MAX;
            for _ in 0..20 {
                let t = Instant::now();
                for _ in 0..20_000 {
                    core::hint::black_box(ct_eq(core::hint::black_box(&a), b));
                }
                best = best.min(t.elapsed().as_nanos());
            }
            best
        };
        let (f, l) = (time(&first), time(&last));
        assert!(f * 3 > l && l * 3 > f, "first {f} ns, last {l} ns");
    }

    #[test]
    fn header_forms() {
        let t = Token::new("s3cret-token");
        assert!(t.verify_header(b"Bearer s3cret-token"));
        assert!(t.verify_header(b"bearer   s3cret-token"));
        assert!(t.verify_header(b"BEARER s3cret-token"));
        assert!(!t.verify_header(b"Bearer s3cret-tokeN"));
        assert!(!t.verify_header(b"Bearer s3cret-token "));
        assert!(!t.verify_header(b"Bearers3cret-token"));
        assert!(!t.verify_header(b"Basic s3cret-token"));
        assert!(!t.verify_header(b"Bearer"));
        assert!(!t.verify_header(b""));
        assert!(!t.verify_header(b"s3cret-token"));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn token_validity() {
        assert!(valid_token("abc-DEF_123.~+/="));
        assert!(!valid_token(""));
        assert!(!valid_token("with space"));
        assert!(!valid_token("tab\t"));
        assert!(!valid_token("é"));
    }
}
