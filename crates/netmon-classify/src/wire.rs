//! Bounds-checked big-endian reads for this crate's parsers: `None` past the end, never a panic.

#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at.checked_add(2)?) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at.checked_add(4)?) {
        Some(&[w, x, y, z]) => Some(u32::from_be_bytes([w, x, y, z])),
        _ => None,
    }
}
