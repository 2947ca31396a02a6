//! Bounds-checked big-endian reads. Every accessor returns `None` past the end, so code built on
//! them cannot panic on short input. Public for the other parsers of the workspace
//! (`netmon-classify`'s DNS, TLS and detection code).
//!
//! ```
//! use netmon_packet::bytes::{be16, tail};
//! assert_eq!(be16(&[0x12, 0x34], 0), Some(0x1234));
//! assert_eq!(be16(&[0x12], 0), None);
//! assert_eq!(tail(&[1, 2], 5), &[] as &[u8]);
//! ```

/// Byte at `at`.
#[inline(always)]
pub fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

/// Big-endian `u16` at `at..at + 2`.
#[inline(always)]
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at.checked_add(2)?) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

/// Big-endian `u32` at `at..at + 4`.
#[inline(always)]
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at.checked_add(4)?) {
        Some(&[w, x, y, z]) => Some(u32::from_be_bytes([w, x, y, z])),
        _ => None,
    }
}

/// A fixed-size array copied from `at..at + N`.
#[inline(always)]
pub fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// `b[from..]`, or an empty slice past the end.
#[inline(always)]
pub fn tail(b: &[u8], from: usize) -> &[u8] {
    b.get(from..).unwrap_or(&[])
}

/// `b[from..from + len]`, clamped to what is there.
#[inline(always)]
pub fn clamp(b: &[u8], from: usize, len: usize) -> &[u8] {
    let t = tail(b, from);
    t.get(..len).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(u8_at(&b, 4), Some(5));
        assert_eq!(u8_at(&b, 5), None);
        assert_eq!(be16(&b, 3), Some(0x0405));
        assert_eq!(be16(&b, 4), None);
        assert_eq!(be16(&b, usize::MAX), None);
        assert_eq!(be32(&b, 1), Some(0x0203_0405));
        assert_eq!(be32(&b, 2), None);
        assert_eq!(array::<2>(&b, 3), Some([4, 5]));
        assert_eq!(array::<2>(&b, 4), None);
        assert_eq!(tail(&b, 9), &[] as &[u8]);
        assert_eq!(clamp(&b, 3, 9), &[4, 5]);
        assert_eq!(clamp(&b, 1, 2), &[2, 3]);
    }
}
