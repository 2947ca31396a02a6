//! Bounded in-order reassembly of the first bytes of one direction of a TCP stream.
//!
//! Classifiers need the first few kilobytes a client sends (a TLS ClientHello with a
//! post-quantum key share is ≈1.8 KB and often spans two segments; an HTTP request head can be
//! longer). [`StreamBuf`] rebuilds that prefix from segments in any order, retransmitted or
//! overlapping, with hard bounds:
//!
//! * at most `cap` bytes are kept (default [`DEFAULT_CAP`], 16 KiB; at most [`MAX_CAP`]); data
//!   beyond is dropped and [`StreamBuf::overflowed`] says so;
//! * at most [`MAX_PENDING`] disjoint out-of-order ranges wait for a hole to be filled; a segment
//!   that would open one more is dropped (counted in [`StreamBuf::dropped_segments`]) and is
//!   picked up again when the sender retransmits it;
//! * memory is allocated only when bytes are buffered, grows with the highest offset written,
//!   never past `cap`, and is returned by [`StreamBuf::free`] once the flow is classified.
//!
//! Sequence numbers are 32-bit and wrap (RFC 9293 §3.4): every comparison is made on the
//! offset relative to the stream start, `seq.wrapping_sub(start)`, read as a signed 32-bit
//! distance. Bytes before the start (a retransmitted SYN, a segment from before a mid-stream
//! pickup) are ignored. Where copies of a byte disagree (a broken or malicious sender), the
//! first copy received wins — the same policy as Linux and Windows receivers for data already
//! queued.
//!
//! ```
//! use netmon_classify::reasm::StreamBuf;
//!
//! let mut s = StreamBuf::new(16 * 1024);
//! s.set_isn(1000); // SYN seen: data starts at 1001
//! s.push(1006, b"world"); // out of order: buffered
//! assert_eq!(s.contiguous(), b"");
//! s.push(1001, b"hello"); // fills the hole
//! assert_eq!(s.contiguous(), b"helloworld");
//! s.push(1001, b"HELLO"); // retransmission: first copy wins
//! assert_eq!(s.contiguous(), b"helloworld");
//! s.free(); // classified: memory released, later segments ignored
//! assert_eq!(s.contiguous(), b"");
//! ```

/// Default number of stream bytes kept: 16 KiB (a TLS record holds at most 16 KiB of
/// plaintext, so a ClientHello in one record always fits).
pub const DEFAULT_CAP: usize = 16 * 1024;

/// Largest `cap` accepted by [`StreamBuf::new`] (1 MiB); larger requests are clamped. Keeping
/// it far below 2³¹ makes every in-window offset an unambiguous signed sequence distance.
pub const MAX_CAP: usize = 1 << 20;

/// How many disjoint out-of-order byte ranges may wait for earlier data at once.
pub const MAX_PENDING: usize = 8;

/// Out-of-order ranges `[start, end)` of stream offsets.
type Ranges = [(u32, u32); MAX_PENDING];

/// `cap` as `u32` (always ≤ [`MAX_CAP`]).
fn clamp_cap(cap: usize) -> u32 {
    u32::try_from(cap.min(MAX_CAP)).unwrap_or(0)
}

/// The first bytes of one direction of a TCP stream, reassembled in order (see the
/// [module docs](self)).
#[derive(Clone, Debug)]
pub struct StreamBuf {
    /// Most stream bytes kept.
    cap: u32,
    /// Sequence number of stream byte 0, once known.
    start: Option<u32>,
    /// Stream bytes by offset: `[0, contig)` is the in-order prefix; above it, only the
    /// `pending` ranges hold data (the rest is zero filler). `len() ≤ cap`.
    buf: Vec<u8>,
    /// Length of the in-order prefix.
    contig: u32,
    /// Out-of-order ranges `[start, end)` (offsets), sorted, disjoint, not touching each
    /// other, all starting above `contig`. Only `pending[..npending]` is meaningful.
    pending: Ranges,
    npending: usize,
    overflowed: bool,
    dropped: u32,
    freed: bool,
}

impl Default for StreamBuf {
    /// A buffer of [`DEFAULT_CAP`] bytes.
    fn default() -> Self {
        StreamBuf::new(DEFAULT_CAP)
    }
}

impl StreamBuf {
    /// An empty buffer keeping at most `cap` stream bytes (clamped to [`MAX_CAP`]). Allocates
    /// nothing until data is pushed.
    pub fn new(cap: usize) -> StreamBuf {
        StreamBuf {
            cap: clamp_cap(cap),
            start: None,
            buf: Vec::new(),
            contig: 0,
            pending: [(0, 0); MAX_PENDING],
            npending: 0,
            overflowed: false,
            dropped: 0,
            freed: false,
        }
    }

    /// The most stream bytes kept.
    pub fn cap(&self) -> usize {
        self.cap as usize
    }

    /// A SYN with sequence number `isn` was seen: the stream's first byte is `isn + 1`.
    ///
    /// Without a SYN, the first data segment pushed starts the stream (mid-stream pickup).
    /// Ignored once bytes are buffered (a late or retransmitted SYN does not move the start).
    pub fn set_isn(&mut self, isn: u32) {
        if self.freed || !self.is_empty() {
            return;
        }
        self.start = Some(isn.wrapping_add(1));
    }

    /// Sequence number of stream byte 0, once known (from [`set_isn`](Self::set_isn) or the
    /// first segment).
    pub fn start_seq(&self) -> Option<u32> {
        self.start
    }

    /// Sequence number of the first byte missing from [`contiguous`](Self::contiguous), once
    /// the start is known.
    pub fn next_seq(&self) -> Option<u32> {
        self.start.map(|s| s.wrapping_add(self.contig))
    }

    /// Whether nothing is buffered (no in-order and no out-of-order bytes).
    pub fn is_empty(&self) -> bool {
        self.contig == 0 && self.npending == 0
    }

    /// Whether a segment at `seq` would start the stream with nothing buffered: the caller may
    /// then parse that segment's payload in place, without copying, and push it only if the
    /// parser needs more bytes. This keeps the common case (a whole ClientHello or request in
    /// the first segment) allocation-free.
    pub fn starts_stream(&self, seq: u32) -> bool {
        !self.freed && self.is_empty() && self.start.is_none_or(|s| s == seq)
    }

    /// Adds a segment whose first payload byte has sequence number `seq`.
    ///
    /// In order, out of order, retransmitted, overlapping: all handled (see the
    /// [module docs](self)). Bytes before the stream start are ignored, bytes past `cap` are
    /// dropped (and [`overflowed`](Self::overflowed) set), a segment that would open more than
    /// [`MAX_PENDING`] holes is dropped. Does nothing after [`free`](Self::free).
    pub fn push(&mut self, seq: u32, payload: &[u8]) {
        if self.freed || payload.is_empty() {
            return;
        }
        let start = *self.start.get_or_insert(seq);
        // Signed distance from the stream start (RFC 9293 §3.4 modular comparison).
        let rel = i64::from(seq.wrapping_sub(start) as i32);
        let (off, data) = if rel < 0 {
            // Starts before the stream: keep only the part at or after the start.
            let skip = usize::try_from(rel.unsigned_abs()).unwrap_or(usize::MAX);
            match payload.get(skip..) {
                Some(rest) if !rest.is_empty() => (0u64, rest),
                _ => return,
            }
        } else {
            (rel.unsigned_abs(), payload)
        };
        let cap = u64::from(self.cap);
        if off >= cap {
            self.overflowed = true;
            return;
        }
        let mut end = off.saturating_add(data.len() as u64);
        if end > cap {
            self.overflowed = true;
            end = cap;
        }
        // Both fit in u32: off < end ≤ cap ≤ MAX_CAP.
        let (off, end) = (off as u32, end as u32);
        if end <= self.contig {
            return; // retransmission of in-order data
        }
        let a = off.max(self.contig);
        let Some((ranges, n, contig)) = self.merged(a, end) else {
            self.dropped = self.dropped.saturating_add(1);
            return;
        };
        if !self.grow(end) {
            return;
        }
        // Copy into the gaps of [a, end) not yet filled by pending ranges: first copy wins.
        let mut cursor = a;
        for &(rs, re) in self.pending.get(..self.npending).unwrap_or(&[]) {
            if re <= cursor {
                continue;
            }
            if rs >= end {
                break;
            }
            if rs > cursor {
                copy_range(&mut self.buf, data, off, cursor, rs);
            }
            cursor = cursor.max(re);
        }
        if cursor < end {
            copy_range(&mut self.buf, data, off, cursor, end);
        }
        self.pending = ranges;
        self.npending = n;
        self.contig = contig;
    }

    /// The pending ranges after adding `[a, end)` (`a ≥ contig`), merged, with the in-order
    /// prefix extended; `None` if more than [`MAX_PENDING`] ranges would remain.
    fn merged(&self, a: u32, end: u32) -> Option<(Ranges, usize, u32)> {
        let mut all = [(0u32, 0u32); MAX_PENDING + 1];
        let mut n = 0;
        let mut inserted = false;
        for &r in self.pending.get(..self.npending).unwrap_or(&[]) {
            if !inserted && a <= r.0 {
                *all.get_mut(n)? = (a, end);
                n += 1;
                inserted = true;
            }
            *all.get_mut(n)? = r;
            n += 1;
        }
        if !inserted {
            *all.get_mut(n)? = (a, end);
            n += 1;
        }
        // Merge overlapping or touching ranges, and absorb the one starting at the prefix end.
        let mut contig = self.contig;
        let mut out = [(0u32, 0u32); MAX_PENDING];
        let mut m = 0;
        let mut cur: Option<(u32, u32)> = None;
        for &(s, e) in all.get(..n)? {
            cur = match cur {
                Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
                Some(done) => {
                    if done.0 <= contig {
                        contig = contig.max(done.1);
                    } else {
                        *out.get_mut(m)? = done;
                        m += 1;
                    }
                    Some((s, e))
                }
                None => Some((s, e)),
            };
        }
        if let Some(done) = cur {
            if done.0 <= contig {
                contig = contig.max(done.1);
            } else {
                *out.get_mut(m)? = done;
                m += 1;
            }
        }
        Some((out, m, contig))
    }

    /// Makes `buf` at least `end` bytes long (`end ≤ cap`), growing capacity geometrically but
    /// never past `cap`. `false` if the allocation failed.
    fn grow(&mut self, end: u32) -> bool {
        let end = end as usize;
        if self.buf.len() >= end {
            return true;
        }
        if self.buf.capacity() < end {
            let target = end
                .max(self.buf.capacity().saturating_mul(2))
                .max(512)
                .min(self.cap as usize)
                .max(end);
            if self.buf.try_reserve_exact(target - self.buf.len()).is_err() {
                return false;
            }
        }
        self.buf.resize(end, 0);
        true
    }

    /// The in-order prefix of the stream assembled so far (at most `cap` bytes).
    pub fn contiguous(&self) -> &[u8] {
        self.buf.get(..self.contig as usize).unwrap_or(&[])
    }

    /// Whether bytes past `cap` were dropped.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Whether the in-order prefix reached `cap`: nothing more can be added.
    pub fn is_full(&self) -> bool {
        self.contig >= self.cap
    }

    /// Segments dropped because they would have opened more than [`MAX_PENDING`] holes.
    pub fn dropped_segments(&self) -> u32 {
        self.dropped
    }

    /// Number of out-of-order ranges waiting for a hole to be filled.
    pub fn pending_ranges(&self) -> usize {
        self.npending
    }

    /// Bytes of heap memory held (the buffer's capacity; at most `cap`).
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Releases the memory and stops buffering: later pushes are ignored and
    /// [`contiguous`](Self::contiguous) is empty. Call it once the flow is classified.
    pub fn free(&mut self) {
        *self = StreamBuf {
            freed: true,
            ..StreamBuf::new(self.cap as usize)
        };
    }

    /// Whether [`free`](Self::free) was called.
    pub fn is_freed(&self) -> bool {
        self.freed
    }

    /// Forgets everything (start, data, flags) and releases the memory, keeping `cap`: the
    /// buffer is as new and accepts data again.
    pub fn clear(&mut self) {
        *self = StreamBuf::new(self.cap as usize);
    }
}

/// Copies stream offsets `[from, to)` out of `data` (which starts at stream offset `off`) into
/// `buf`. Offsets are checked by the caller; out-of-range slices copy nothing.
fn copy_range(buf: &mut [u8], data: &[u8], off: u32, from: u32, to: u32) {
    let (s, e) = ((from - off) as usize, (to - off) as usize);
    if let (Some(dst), Some(src)) = (buf.get_mut(from as usize..to as usize), data.get(s..e)) {
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_with_syn() {
        let mut s = StreamBuf::new(100);
        assert_eq!(s.heap_bytes(), 0);
        s.set_isn(u32::MAX); // wraps: data starts at 0
        assert_eq!(s.start_seq(), Some(0));
        s.push(0, b"abc");
        s.push(3, b"def");
        assert_eq!(s.contiguous(), b"abcdef");
        assert_eq!(s.next_seq(), Some(6));
        assert!(!s.overflowed());
        assert!(s.heap_bytes() <= 100);
    }

    #[test]
    fn mid_stream_pickup_and_bytes_before_start() {
        let mut s = StreamBuf::new(100);
        assert!(s.starts_stream(500));
        s.push(500, b"xyz");
        assert!(!s.starts_stream(503));
        // A segment entirely before the start is ignored; one straddling it is trimmed.
        s.push(490, b"0123456789");
        assert_eq!(s.contiguous(), b"xyz");
        s.push(498, b"..xyzAB");
        assert_eq!(s.contiguous(), b"xyzAB");
        // A late SYN does not move the start.
        s.set_isn(400);
        assert_eq!(s.start_seq(), Some(500));
    }

    #[test]
    fn out_of_order_overlap_first_copy_wins() {
        let mut s = StreamBuf::new(100);
        s.set_isn(9);
        s.push(20, b"KLMN"); // offsets 10..14
        s.push(16, b"ghij"); // offsets 6..10 (touches the first range)
        assert_eq!(s.pending_ranges(), 1);
        s.push(18, b"XXXXXXXX"); // overlaps pending bytes and goes beyond: first copy wins
        assert_eq!(s.contiguous(), b"");
        s.push(10, b"abcdef");
        assert_eq!(s.contiguous(), b"abcdefghijKLMNXX");
        assert_eq!(s.pending_ranges(), 0);
        // Retransmission with different bytes changes nothing.
        s.push(10, b"ZZZZZZZZZZZZZZZZZZZZ");
        assert_eq!(s.contiguous(), b"abcdefghijKLMNXXZZZZ");
    }

    #[test]
    fn wraparound() {
        let mut s = StreamBuf::new(100);
        let isn = u32::MAX - 3;
        s.set_isn(isn); // first byte u32::MAX - 2
        s.push(0, b"def"); // after the wrap, offsets 3..6
        s.push(u32::MAX - 2, b"abc");
        assert_eq!(s.contiguous(), b"abcdef");
    }

    #[test]
    fn cap_and_overflow() {
        let mut s = StreamBuf::new(8);
        s.set_isn(0);
        s.push(1, b"0123456789");
        assert_eq!(s.contiguous(), b"01234567");
        assert!(s.overflowed() && s.is_full());
        assert!(s.heap_bytes() <= 8);
        let mut s = StreamBuf::new(8);
        s.set_isn(0);
        s.push(100, b"far away");
        assert!(s.overflowed());
        assert_eq!(s.heap_bytes(), 0, "nothing allocated for a dropped segment");
        // Far in the "past" by wrapping distance: ignored, no overflow flag needed.
        let mut s = StreamBuf::new(8);
        s.set_isn(0x8000_0000);
        s.push(5, b"x");
        assert!(s.contiguous().is_empty());
    }

    #[test]
    fn pending_limit() {
        let mut s = StreamBuf::new(1000);
        s.set_isn(0);
        // Eight disjoint holes are fine, the ninth is dropped.
        for i in 0..MAX_PENDING as u32 {
            s.push(1 + 10 * (i + 1), b"x");
        }
        assert_eq!(s.pending_ranges(), MAX_PENDING);
        s.push(1 + 500, b"y");
        assert_eq!(s.dropped_segments(), 1);
        // A segment merging into an existing range is still accepted.
        s.push(1 + 11, b"z");
        assert_eq!(s.dropped_segments(), 1);
        // Filling everything up to the last range makes it contiguous.
        let data = vec![b'.'; 81];
        s.push(1, &data);
        assert_eq!(s.contiguous().len(), 81);
        assert_eq!(s.pending_ranges(), 0);
        assert_eq!(s.contiguous().get(10), Some(&b'x'));
        assert_eq!(s.contiguous().get(11), Some(&b'z'));
    }

    #[test]
    fn free_and_clear() {
        let mut s = StreamBuf::new(64);
        s.push(7, b"abc");
        s.free();
        assert!(s.is_freed() && s.contiguous().is_empty() && s.heap_bytes() == 0);
        s.push(10, b"def");
        assert!(s.contiguous().is_empty() && s.heap_bytes() == 0);
        assert!(!s.starts_stream(10));
        s.clear();
        s.push(10, b"def");
        assert_eq!(s.contiguous(), b"def");
        assert_eq!(StreamBuf::new(usize::MAX).cap(), MAX_CAP);
        assert_eq!(StreamBuf::default().cap(), DEFAULT_CAP);
    }

    #[test]
    fn zero_cap() {
        let mut s = StreamBuf::new(0);
        s.push(1, b"a");
        assert!(s.overflowed() && s.contiguous().is_empty() && s.heap_bytes() == 0);
    }
}
