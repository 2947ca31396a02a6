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
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use super::NS;

/// "Not queued" (a new entry's `due` before its first [`Expiry::schedule`]).
pub(crate) const UNQUEUED: i64 = i64::MAX;

/// An entry that carries its own queue deadline.
pub(crate) trait Due {
    /// The deadline of the entry's live queue pair ([`UNQUEUED`] when none).
    fn due_mut(&mut self) -> &mut i64;
}

/// `(due, key)` pairs by the second they fall due in (see the [module documentation](self)).
///
/// A pair goes into the list of its second (appended, no ordering work). When a tick enters
/// a second, the lists of the seconds before it are visited whole (all due) and the list of
/// its own second is sorted once and drained as the ticks of that second come. A pair due in
/// the second being drained, or before it, goes to a small heap instead (rare: new deadlines
/// lie a window ahead). Pairs of one tick
/// are visited in no particular order: each visit changes only its own entry (what the steps
/// collect, closed alerts, the callers sort by id), so the order changes nothing.
#[derive(Debug)]
pub(crate) struct Expiry<K> {
    /// Lists of the seconds after the one being drained.
    buckets: BTreeMap<i64, Vec<Pending<K>>>,
    /// The second being drained (`i64::MIN` before the first tick), its list sorted by
    /// deadline, and how far it is drained.
    cur: i64,
    cur_list: Vec<Pending<K>>,
    cur_pos: usize,
    /// Pairs due in or before the second being drained, queued after it was sorted.
    late: BinaryHeap<Pending<K>>,
    /// Pairs of seconds a tick left behind: all due.
    ready: Vec<Pending<K>>,
    /// Pairs held (live and stale).
    len: usize,
}

/// A queue pair, ordered by its deadline alone (earliest first in the max-heap: reversed).
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
            buckets: BTreeMap::new(),
            cur: i64::MIN,
            cur_list: Vec::new(),
            cur_pos: 0,
            late: BinaryHeap::new(),
            ready: Vec::new(),
            len: 0,
        }
    }

    /// Pairs held (live and stale).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, p: Pending<K>) {
        let sec = p.at.div_euclid(NS);
        self.len += 1;
        if sec <= self.cur {
            self.late.push(p);
        } else {
            self.buckets.entry(sec).or_default().push(p);
        }
    }

    /// Makes sure the entry `key` (whose `due` is `due`) is visited at the first tick at or
    /// after `at`: queues it when `at` is earlier than its current deadline. A later `at` needs
    /// nothing — the entry is visited at its earlier deadline and re-queued then.
    pub(crate) fn schedule(&mut self, due: &mut i64, key: &K, at: i64) {
        // Never UNQUEUED itself: a deadline at the end of time is still a deadline.
        let at = at.min(UNQUEUED - 1);
        if at < *due {
            *due = at;
            self.push(Pending {
                at,
                key: key.clone(),
            });
        }
    }

    /// The next pair due at or before `now`, if any (taken out).
    fn pop_due(&mut self, now: i64) -> Option<Pending<K>> {
        let sec = now.div_euclid(NS);
        if sec > self.cur {
            // Entering a later second: what is left of the current one and the lists of the
            // seconds before `sec` are all due, to be visited in any order.
            let mut rest = core::mem::take(&mut self.cur_list);
            let drained = self.cur_pos.min(rest.len());
            rest.drain(..drained);
            self.ready.append(&mut rest);
            while let Some(e) = self.buckets.first_entry() {
                if *e.key() >= sec {
                    break;
                }
                self.ready.append(&mut e.remove());
            }
            let mut list = self.buckets.remove(&sec).unwrap_or_default();
            list.sort_unstable_by_key(|p| p.at);
            self.cur = sec;
            self.cur_list = list;
            self.cur_pos = 0;
        }
        if let Some(p) = self.ready.pop() {
            self.len = self.len.saturating_sub(1);
            return Some(p);
        }
        let from_list = self.cur_list.get(self.cur_pos).map(|p| p.at);
        let from_late = self.late.peek().map(|p| p.at);
        let p = match (from_list, from_late) {
            (Some(a), Some(b)) if a <= b && a <= now => self.take_listed(),
            (Some(a), None) if a <= now => self.take_listed(),
            (_, Some(b)) if b <= now => self.late.pop(),
            _ => None,
        };
        if p.is_some() {
            self.len = self.len.saturating_sub(1);
        }
        p
    }

    fn take_listed(&mut self) -> Option<Pending<K>> {
        let slot = self.cur_list.get_mut(self.cur_pos)?;
        self.cur_pos += 1;
        // Moved out; the slot is never read again (the cursor is past it).
        let at = slot.at;
        let key = slot.key.clone();
        Some(Pending { at, key })
    }

    /// Visits every entry of `map` whose live deadline is at or before `now` (in no
    /// particular order). `step` returns the entry's next deadline, or `None` to remove it.
    pub(crate) fn expire<V: Due, S: BuildHasher>(
        &mut self,
        map: &mut HashMap<K, V, S>,
        now: i64,
        mut step: impl FnMut(&mut V) -> Option<i64>,
    ) {
        let mut again = Vec::new();
        while let Some(Pending { at, key }) = self.pop_due(now) {
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
        for p in again {
            self.push(p);
        }
        if self.cur_pos > 0 && self.cur_pos * 2 > self.cur_list.len() {
            // Forget the drained half of the current list.
            let drained = self.cur_pos.min(self.cur_list.len());
            self.cur_list.drain(..drained);
            self.cur_pos = 0;
        }
        if self.len > map.len().saturating_mul(2).saturating_add(1024) {
            self.rebuild(map);
        }
    }

    /// Drops stale pairs: one pair per entry of `map`, at its `due`.
    fn rebuild<V: Due, S: BuildHasher>(&mut self, map: &mut HashMap<K, V, S>) {
        self.buckets.clear();
        self.cur_list.clear();
        self.cur_pos = 0;
        self.late.clear();
        self.ready.clear();
        self.len = 0;
        for (k, e) in map.iter_mut() {
            let at = *e.due_mut();
            self.push(Pending { at, key: k.clone() });
        }
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

    /// Against the walk: after every tick the queue-driven table equals a table whose every
    /// entry is visited at every tick. Times are `scale` ns apart (within one second, or
    /// spread over many, so that seconds are entered, skipped and drained part-way).
    fn against_the_walk(ops: Vec<(u32, i64, bool)>, scale: i64) -> Result<(), TestCaseError> {
        let mut q = Expiry::new();
        let mut m = HashMap::new();
        let mut walk: HashMap<u32, i64> = HashMap::new();
        let mut now = 0i64;
        for (k, d, is_tick) in ops {
            if is_tick {
                now += (d % 7 + 1) * scale;
                tick(&mut q, &mut m, now);
                walk.retain(|_, e| now <= *e);
                let mut a: Vec<(u32, i64)> = m.iter().map(|(k, e)| (*k, e.expires)).collect();
                let mut b: Vec<(u32, i64)> = walk.iter().map(|(k, e)| (*k, *e)).collect();
                a.sort_unstable();
                b.sort_unstable();
                prop_assert_eq!(a, b);
                prop_assert!(q.len() <= m.len() * 2 + 1024);
            } else {
                // Refresh to any time, earlier or later than before (and in the past).
                let expires = now + (d - 50) * scale + d % 3;
                touch(&mut q, &mut m, k, expires);
                walk.insert(k, expires);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn same_as_walking_every_entry(
            ops in proptest::collection::vec((0u32..40, 0i64..200, any::<bool>()), 1..400),
            scale in prop_oneof![Just(1i64), Just(super::NS / 4), Just(super::NS / 3 + 7), Just(3 * super::NS)],
        ) {
            against_the_walk(ops, scale)?;
        }
    }
}
