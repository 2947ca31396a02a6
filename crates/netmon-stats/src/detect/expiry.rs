//! Expiry queue: lets a detector's once-a-second `tick` visit only the entries that may be due,
//! instead of walking its whole table.
//!
//! Every entry of a table keeps a `due` time: a **lower bound** on the earliest tick at which
//! the old walk would have changed or removed it (closing an alert, clearing a tombstone,
//! forgetting the entry). The queue holds `(due, key)` pairs in a min-heap; an entry whose
//! `due` no longer matches its queue pair is stale and skipped. At a tick, the due pairs are
//! popped and their entries handed to the same per-entry step the walk ran, which either
//! removes the entry or returns its next lower bound (re-queued after the tick's pops, so a
//! tick always ends).
//!
//! Since a step is only skipped for entries whose action time (≥ `due`) lies after the tick,
//! a tick changes exactly the entries the walk would have changed. Stale pairs are bounded: the
//! heap is rebuilt from the table once it holds more than twice the table's size (plus slack).

use core::cmp::Ordering;
use core::hash::{BuildHasher, Hash};
use std::collections::{BinaryHeap, HashMap};

/// "Not queued" (a new entry's `due` before its first [`Expiry::schedule`]).
pub(crate) const UNQUEUED: i64 = i64::MAX;

/// An entry that carries its own queue deadline.
pub(crate) trait Due {
    /// The deadline of the entry's live queue pair ([`UNQUEUED`] when none).
    fn due_mut(&mut self) -> &mut i64;
}

/// A min-heap of `(due, key)` pairs (see the [module documentation](self)).
#[derive(Debug)]
pub(crate) struct Expiry<K> {
    heap: BinaryHeap<Pending<K>>,
}

/// A queue pair, ordered by its deadline alone, earliest first in the max-heap. Pairs due at
/// the same time pop in any order: a tick visits every due entry, and each visit changes only
/// its own entry (what the steps collect, closed alerts, is sorted by the callers), so the
/// order changes nothing — and comparing deadlines alone never reads the keys.
#[derive(Debug)]
struct Pending<K> {
    at: i64,
    key: K,
}

impl<K> PartialEq for Pending<K> {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at
    }
}

impl<K> Eq for Pending<K> {}

impl<K> PartialOrd for Pending<K> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl<K> Ord for Pending<K> {
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at)
    }
}

impl<K: Hash + Eq + Clone> Expiry<K> {
    pub(crate) fn new() -> Self {
        Expiry {
            heap: BinaryHeap::new(),
        }
    }

    /// Pairs held (live and stale).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Makes sure the entry `key` (whose `due` is `due`) is visited at the first tick at or
    /// after `at`: queues it when `at` is earlier than its current deadline. A later `at` needs
    /// nothing — the entry is visited at its earlier deadline and re-queued then.
    pub(crate) fn schedule(&mut self, due: &mut i64, key: &K, at: i64) {
        // Never UNQUEUED itself: a deadline at the end of time is still a deadline.
        let at = at.min(UNQUEUED - 1);
        if at < *due {
            *due = at;
            self.heap.push(Pending {
                at,
                key: key.clone(),
            });
        }
    }

    /// Visits, in deadline order, every entry of `map` whose live deadline is at or before
    /// `now`. `step` returns the entry's next deadline, or `None` to remove it.
    pub(crate) fn expire<V: Due, S: BuildHasher>(
        &mut self,
        map: &mut HashMap<K, V, S>,
        now: i64,
        mut step: impl FnMut(&mut V) -> Option<i64>,
    ) {
        let mut again = Vec::new();
        while let Some(p) = self.heap.peek() {
            if p.at > now {
                break;
            }
            let Some(Pending { at, key }) = self.heap.pop() else {
                break;
            };
            let Some(v) = map.get_mut(&key) else {
                continue;
            };
            if *v.due_mut() != at {
                continue;
            }
            match step(v) {
                None => {
                    map.remove(&key);
                }
                Some(next) => {
                    // Ticks come at strictly later times: a deadline not after this tick
                    // means "the next tick".
                    let next = next.max(now.saturating_add(1)).min(UNQUEUED - 1);
                    *v.due_mut() = next;
                    again.push(Pending { at: next, key });
                }
            }
        }
        self.heap.extend(again);
        if self.heap.len() > map.len().saturating_mul(2).saturating_add(1024) {
            self.rebuild(map);
        }
    }

    /// Drops stale pairs: one pair per entry of `map`, at its `due`.
    fn rebuild<V: Due, S: BuildHasher>(&mut self, map: &mut HashMap<K, V, S>) {
        let mut v = core::mem::take(&mut self.heap).into_vec();
        v.clear();
        for (k, e) in map.iter_mut() {
            v.push(Pending {
                at: *e.due_mut(),
                key: k.clone(),
            });
        }
        self.heap = BinaryHeap::from(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct E {
        expires: i64,
        due: i64,
    }

    impl Due for E {
        fn due_mut(&mut self) -> &mut i64 {
            &mut self.due
        }
    }

    /// Inserts or refreshes `k` to expire after `expires`.
    fn touch(q: &mut Expiry<u32>, m: &mut HashMap<u32, E>, k: u32, expires: i64) {
        let e = m.entry(k).or_insert(E {
            expires,
            due: UNQUEUED,
        });
        e.expires = expires;
        let at = expires.saturating_add(1);
        q.schedule(&mut e.due, &k, at);
    }

    fn tick(q: &mut Expiry<u32>, m: &mut HashMap<u32, E>, now: i64) {
        q.expire(m, now, |e| {
            (now <= e.expires).then_some(e.expires.saturating_add(1))
        });
    }

    #[test]
    fn refreshed_entry_is_not_expired_early() {
        let mut q = Expiry::new();
        let mut m = HashMap::new();
        touch(&mut q, &mut m, 1, 10);
        touch(&mut q, &mut m, 2, 10);
        // Key 1 refreshed after being queued: its old pair (due 11) must not drop it.
        touch(&mut q, &mut m, 1, 30);
        tick(&mut q, &mut m, 11);
        assert!(m.contains_key(&1));
        assert!(!m.contains_key(&2));
        tick(&mut q, &mut m, 30);
        assert!(m.contains_key(&1));
        tick(&mut q, &mut m, 31);
        assert!(m.is_empty());
    }

    #[test]
    fn earlier_deadline_requeues() {
        let mut q = Expiry::new();
        let mut m = HashMap::new();
        touch(&mut q, &mut m, 1, 100);
        // Shortened: the entry must go at 6, not at 101.
        touch(&mut q, &mut m, 1, 5);
        tick(&mut q, &mut m, 6);
        assert!(m.is_empty());
    }

    #[test]
    fn removed_and_reinserted_keys_use_their_new_deadline() {
        let mut q = Expiry::new();
        let mut m = HashMap::new();
        touch(&mut q, &mut m, 1, 5);
        m.remove(&1);
        touch(&mut q, &mut m, 1, 50);
        tick(&mut q, &mut m, 10);
        assert!(m.contains_key(&1));
        tick(&mut q, &mut m, 51);
        assert!(m.is_empty());
    }

    #[test]
    fn a_tick_at_the_end_of_time_ends() {
        let mut q = Expiry::new();
        let mut m = HashMap::new();
        touch(&mut q, &mut m, 1, i64::MAX);
        // The step keeps the entry and asks for "now" again: no endless loop.
        q.expire(&mut m, i64::MAX, |_| Some(i64::MIN));
        assert!(m.contains_key(&1));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn stale_pairs_stay_bounded() {
        let mut q = Expiry::new();
        let mut m = HashMap::new();
        // One entry, its deadline shortened many times: each shortening leaves a stale pair.
        for i in 0..10_000i64 {
            touch(&mut q, &mut m, 7, 1_000_000 - i);
        }
        tick(&mut q, &mut m, 0);
        assert!(q.len() <= 1025, "{}", q.len());
        tick(&mut q, &mut m, 1_000_000);
        assert!(m.is_empty());
    }

    proptest! {
        /// Against the walk: after every tick the queue-driven table equals a table whose
        /// every entry is visited at every tick.
        #[test]
        fn same_as_walking_every_entry(
            ops in proptest::collection::vec((0u32..40, 0i64..200, any::<bool>()), 1..400)
        ) {
            let mut q = Expiry::new();
            let mut m = HashMap::new();
            let mut walk: HashMap<u32, i64> = HashMap::new();
            let mut now = 0i64;
            for (k, d, is_tick) in ops {
                if is_tick {
                    now += d % 7 + 1;
                    tick(&mut q, &mut m, now);
                    walk.retain(|_, e| now <= *e);
                    let mut a: Vec<(u32, i64)> = m.iter().map(|(k, e)| (*k, e.expires)).collect();
                    let mut b: Vec<(u32, i64)> = walk.iter().map(|(k, e)| (*k, *e)).collect();
                    a.sort_unstable();
                    b.sort_unstable();
                    prop_assert_eq!(a, b);
                } else {
                    // Refresh to any time, earlier or later than before.
                    let expires = now + d - 50;
                    touch(&mut q, &mut m, k, expires);
                    walk.insert(k, expires);
                }
            }
        }
    }
}
