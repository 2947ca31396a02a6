#![no_main]
//! Arbitrary segment sequences into the TCP reassembly buffer: it must never panic, never hold
//! more than its cap, never change or shrink the in-order prefix it already gave out, and
//! always extend that prefix with a segment that continues it.
//!
//! Input: 2 bytes cap (0..=65535), 4 bytes base sequence number, then operations:
//! `op` (1 byte), then for op % 8 == 0: set_isn(base + u16); 1: free(); 2: clear();
//! 3: push at next_seq (u16 length); otherwise push at base + u16 offset (u16 length), the
//! payload taken from the input that follows.

use libfuzzer_sys::fuzz_target;
use netmon_classify::reasm::{MAX_PENDING, StreamBuf};

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn payload(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.u16()? % 4096);
        let n = len.min(self.0.len());
        self.take(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let (Some(cap), Some(base)) = (inp.u16(), inp.u32()) else {
        return;
    };
    let cap = usize::from(cap);
    let mut s = StreamBuf::new(cap);
    let mut prev: Vec<u8> = Vec::new();
    while let Some(op) = inp.take(1).map(|b| b[0]) {
        match op % 8 {
            0 => {
                let Some(off) = inp.u16() else { break };
                s.set_isn(base.wrapping_add(u32::from(off)));
            }
            1 => {
                s.free();
                assert!(s.contiguous().is_empty() && s.heap_bytes() == 0);
                prev.clear();
                continue;
            }
            2 => {
                s.clear();
                assert!(s.contiguous().is_empty() && s.heap_bytes() == 0);
                prev.clear();
                continue;
            }
            3 => {
                let Some(payload) = inp.payload() else { break };
                let before = s.contiguous().len();
                let at = s.next_seq();
                let freed = s.is_freed();
                s.push(at.unwrap_or(base), payload);
                if !freed {
                    let grow = payload.len().min(cap - before);
                    assert!(
                        s.contiguous().len() >= before + grow,
                        "an in-order segment must extend the prefix"
                    );
                }
            }
            _ => {
                let Some(off) = inp.u16() else { break };
                let Some(payload) = inp.payload() else { break };
                let seq = if op & 0x80 != 0 {
                    base.wrapping_sub(u32::from(off))
                } else {
                    base.wrapping_add(u32::from(off))
                };
                s.push(seq, payload);
            }
        }
        let now = s.contiguous();
        assert!(now.len() <= cap && s.heap_bytes() <= cap);
        assert!(s.pending_ranges() <= MAX_PENDING);
        assert!(
            now.starts_with(&prev),
            "the in-order prefix changed or shrank"
        );
        prev.clear();
        prev.extend_from_slice(now);
    }
});
