//! A timing wheel of flow expiry checks, driven by the packet clock.
//!
//! Each live flow has at least one entry in the bucket of the tick when it would expire if no
//! further packet came. Packets do not touch the wheel (they only update the flow's "last
//! touched" time), so the per-packet path stays one hash lookup and one slot update. When a
//! bucket's tick has fully passed, each of its entries is checked: still idle → the flow ends;
//! touched since → the entry moves to the bucket of its new expiry. A flow is therefore
//! re-filed at most once per timeout period.
//!
//! Entries of ended flows (or of reused slots) are recognised by the flow id and dropped.

/// One scheduled check: a slab slot and the low 32 bits of the flow id it was filed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) slot: u32,
    pub(crate) id: u32,
}

pub(crate) struct Wheel {
    buckets: Vec<Vec<Entry>>,
    tick_ns: i64,
    /// Every bucket for ticks `<= cursor` has been processed.
    cursor: i64,
    started: bool,
}

impl Wheel {
    /// `buckets` ticks of `tick_ns` each; a due time further ahead is filed at the horizon and
    /// re-filed when that bucket comes round.
    pub(crate) fn new(tick_ns: i64, buckets: usize) -> Wheel {
        Wheel {
            buckets: (0..buckets.max(2)).map(|_| Vec::new()).collect(),
            tick_ns: tick_ns.max(1),
            cursor: 0,
            started: false,
        }
    }

    fn tick(&self, ns: i64) -> i64 {
        ns.div_euclid(self.tick_ns)
    }

    fn slot_of(&self, tick: i64) -> usize {
        tick.rem_euclid(self.buckets.len() as i64) as usize
    }

    /// Starts the clock at `now_ns` (the first packet).
    pub(crate) fn start(&mut self, now_ns: i64) {
        if !self.started {
            self.cursor = self.tick(now_ns) - 1;
            self.started = true;
        }
    }

    /// Files a check for `due_ns`.
    pub(crate) fn schedule(&mut self, due_ns: i64, e: Entry) {
        let horizon = self.cursor + self.buckets.len() as i64;
        let t = self.tick(due_ns).clamp(self.cursor + 1, horizon);
        let i = self.slot_of(t);
        if let Some(b) = self.buckets.get_mut(i) {
            b.push(e);
        }
    }

    /// The next bucket whose tick lies wholly before `now_ns`, taken out of the wheel (give
    /// it back with [`Wheel::give_back`] to keep its capacity). Advances the cursor.
    pub(crate) fn pop_due(&mut self, now_ns: i64) -> Option<Vec<Entry>> {
        let now_tick = self.tick(now_ns);
        let n = self.buckets.len() as i64;
        // After a jump of more than one revolution every bucket is due once; skip the rest.
        if now_tick - self.cursor > n + 1 {
            self.cursor = now_tick - n - 1;
        }
        while self.cursor + 1 < now_tick {
            self.cursor += 1;
            let i = self.slot_of(self.cursor);
            if let Some(b) = self.buckets.get_mut(i) {
                if !b.is_empty() {
                    return Some(core::mem::take(b));
                }
            }
        }
        None
    }

    /// The earliest non-empty bucket (for eviction), without advancing the cursor.
    pub(crate) fn pop_earliest(&mut self) -> Option<Vec<Entry>> {
        let n = self.buckets.len() as i64;
        for t in self.cursor + 1..=self.cursor + n {
            let i = self.slot_of(t);
            if let Some(b) = self.buckets.get_mut(i) {
                if !b.is_empty() {
                    return Some(core::mem::take(b));
                }
            }
        }
        None
    }

    /// Returns a bucket's vector (emptied, or with entries still to check) for reuse: its
    /// entries go to the next tick's bucket and its capacity is kept.
    pub(crate) fn give_back(&mut self, mut v: Vec<Entry>) {
        let i = self.slot_of(self.cursor + 1);
        if let Some(b) = self.buckets.get_mut(i) {
            if b.is_empty() && b.capacity() < v.capacity() {
                // Keep the bigger allocation where the entries go.
                v.append(b);
                *b = v;
            } else {
                b.append(&mut v);
            }
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| b.capacity() * core::mem::size_of::<Entry>())
            .sum::<usize>()
            + self.buckets.capacity() * core::mem::size_of::<Vec<Entry>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(slot: u32) -> Entry {
        Entry { slot, id: slot }
    }

    #[test]
    fn buckets_come_due_in_order() {
        let mut w = Wheel::new(10, 8);
        w.start(0);
        w.schedule(25, e(1));
        w.schedule(5, e(0));
        w.schedule(1_000, e(9)); // beyond the horizon: filed at the horizon
        assert_eq!(w.pop_due(9), None, "tick 0 is not over yet");
        assert_eq!(w.pop_due(10), Some(vec![e(0)]));
        assert_eq!(w.pop_due(29), None);
        assert_eq!(w.pop_due(30), Some(vec![e(1)]));
        let mut later = None;
        for now in (30..=100).step_by(10) {
            if let Some(v) = w.pop_due(now) {
                later = Some((now, v));
                break;
            }
        }
        assert_eq!(later, Some((80, vec![e(9)])), "re-examined at the horizon");
    }

    #[test]
    fn long_jumps_visit_each_bucket_once() {
        let mut w = Wheel::new(1, 4);
        w.start(0);
        for s in 0..4 {
            w.schedule(s, e(s as u32));
        }
        let mut seen = Vec::new();
        while let Some(v) = w.pop_due(1_000_000_000) {
            seen.extend(v);
        }
        seen.sort_by_key(|x| x.slot);
        assert_eq!(seen, [e(0), e(1), e(2), e(3)]);
    }

    #[test]
    fn earliest_for_eviction() {
        let mut w = Wheel::new(10, 8);
        w.start(0);
        w.schedule(55, e(5));
        w.schedule(35, e(3));
        assert_eq!(w.pop_earliest(), Some(vec![e(3)]));
        assert_eq!(w.pop_earliest(), Some(vec![e(5)]));
        assert_eq!(w.pop_earliest(), None);
    }
}
