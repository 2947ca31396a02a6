//! A growable slab stored in fixed-size chunks.
//!
//! A `Vec` that doubles leaves up to half its capacity unused and, while it grows, briefly
//! holds both the old and the new buffer: with a million flows of 256 bytes that is a
//! 256 MiB spike for a 128 MiB table. Chunks of [`CHUNK`] slots grow one chunk at a time,
//! never move a slot, and waste at most one partly filled chunk.

/// Slots per chunk (a power of two).
pub(crate) const CHUNK: usize = 1 << 12;
const SHIFT: u32 = CHUNK.trailing_zeros();
const MASK: usize = CHUNK - 1;

/// Slots addressed by a dense `u32`-sized index, stored in chunks of [`CHUNK`].
pub(crate) struct Slab<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Slab<T> {
    /// An empty slab; allocates nothing.
    pub(crate) const fn new() -> Slab<T> {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Slots allocated.
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.capacity() * core::mem::size_of::<T>()
            + self.chunks.capacity() * core::mem::size_of::<Vec<T>>()
    }

    /// The slot at `i`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> SHIFT)?.get(i & MASK)
    }

    /// The slot at `i`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks.get_mut(i >> SHIFT)?.get_mut(i & MASK)
    }

    /// Appends a slot and returns its index.
    pub(crate) fn push(&mut self, v: T) -> usize {
        let i = self.len;
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(v),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(v);
                self.chunks.push(c);
            }
        }
        self.len += 1;
        i
    }

    /// Drops every slot and frees every chunk.
    pub(crate) fn clear(&mut self) {
        self.chunks = Vec::new();
        self.len = 0;
    }

    /// Every slot, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_across_chunks() {
        let mut s = Slab::new();
        for i in 0..(CHUNK * 2 + 5) {
            assert_eq!(s.push(i), i);
        }
        assert_eq!(s.capacity(), CHUNK * 3);
        assert_eq!(s.get(CHUNK), Some(&CHUNK));
        assert_eq!(s.get(CHUNK * 2 + 4), Some(&(CHUNK * 2 + 4)));
        assert_eq!(s.get(CHUNK * 2 + 5), None);
        assert_eq!(s.get(usize::MAX), None);
        *s.get_mut(7).unwrap() = 70;
        assert_eq!(s.iter().nth(7), Some(&70));
        assert_eq!(s.iter().count(), CHUNK * 2 + 5);
        s.clear();
        assert_eq!((s.iter().count(), s.capacity(), s.get(0)), (0, 0, None));
    }
}
