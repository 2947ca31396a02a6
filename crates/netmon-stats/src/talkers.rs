//! Top talkers — hosts, host pairs and responder ports — by bytes and by packets, counted from
//! flow summaries (never per packet): what a flow added since its last count, at each periodic
//! update (active timeout) and at its end — as a NetFlow collector counts flow records. A
//! flow's start and its state changes (handshake, application named, FIN) do not count: the
//! bytes of an open flow show at its next periodic update or its end.
//!
//! Each ranking is a weighted **Space-Saving** summary (Metwally, Agrawal, El Abbadi, 2005)
//! with `capacity` counters: exact while fewer than `capacity` distinct keys were seen; after
//! that, a new key replaces the key with the smallest count and inherits that count as its
//! error. Guarantees, with `N` the total weight added and `m` the capacity:
//! - every reported count overestimates the true count by at most its `error` (≤ `N / m`);
//! - every key whose true count exceeds `N / m` is in the summary.
//!
//! The minimum is found with an indexed binary heap, so each update costs `O(log m)`.

use core::hash::Hash;
use core::net::IpAddr;
use std::collections::HashMap;

use serde::Serialize;

/// A weighted Space-Saving summary over keys `K`.
///
/// The counters live in stable slots; the min-heap holds each counter's count beside its slot
/// number (so comparing children reads one place), and each slot knows its heap position, so
/// moving a counter in the heap never hashes a key (one hash lookup per [`SpaceSaving::add`]).
#[derive(Clone, Debug)]
pub struct SpaceSaving<K> {
    ranking: Ranking<K>,
    pos: foldhash::HashMap<K, u32>,
}

/// One ranking's counters and min-heap, without the key index (shared by [`SpaceSaving`] and
/// the paired rankings of [`TopTalkers`]).
#[derive(Clone, Debug)]
struct Ranking<K> {
    capacity: usize,
    /// Keys, by slot (never moved).
    keys: Vec<K>,
    /// Maximum overestimation, by slot.
    errors: Vec<u64>,
    /// Heap position of each slot.
    at: Vec<u32>,
    /// Min-heap by count.
    heap: Vec<HeapItem>,
    total: u64,
}

#[derive(Clone, Copy, Debug)]
struct HeapItem {
    count: u64,
    slot: u32,
}

/// One ranked key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ranked<K> {
    /// The key.
    pub key: K,
    /// Its count (bytes or packets); an overestimate by at most `error`.
    pub count: u64,
    /// Maximum overestimation (0 while the summary is exact).
    pub error: u64,
}

impl<K: Clone + Ord> Ranking<K> {
    fn new(capacity: usize) -> Self {
        Ranking {
            capacity: capacity.clamp(1, u32::MAX as usize),
            keys: Vec::new(),
            errors: Vec::new(),
            at: Vec::new(),
            heap: Vec::new(),
            total: 0,
        }
    }

    /// Adds `weight` to the counter in `slot`.
    fn bump(&mut self, slot: u32, weight: u64) {
        let Some(&i) = self.at.get(slot as usize) else {
            return;
        };
        if let Some(h) = self.heap.get_mut(i as usize) {
            h.count = h.count.saturating_add(weight);
        }
        self.sift_down(i as usize);
    }

    /// Counts a key not held: a new counter while below capacity, else the minimum's counter
    /// taken over (its count becomes the new key's error). Returns the slot and the key
    /// replaced, if any; `None` only if there is no counter at all (capacity 0 cannot happen).
    fn insert(&mut self, key: &K, weight: u64) -> Option<(u32, Option<K>)> {
        if self.keys.len() < self.capacity {
            let slot = self.keys.len() as u32;
            self.keys.push(key.clone());
            self.errors.push(0);
            let i = self.heap.len();
            self.heap.push(HeapItem {
                count: weight,
                slot,
            });
            self.at.push(i as u32);
            self.sift_up(i);
            return Some((slot, None));
        }
        // Replace the minimum.
        let min = self.heap.first_mut()?;
        let slot = min.slot;
        let old = core::mem::replace(self.keys.get_mut(slot as usize)?, key.clone());
        if let Some(e) = self.errors.get_mut(slot as usize) {
            *e = min.count;
        }
        min.count = min.count.saturating_add(weight);
        self.sift_down(0);
        Some((slot, Some(old)))
    }

    fn is_exact(&self) -> bool {
        self.errors.iter().all(|&e| e == 0)
    }

    fn top(&self, n: usize) -> Vec<Ranked<K>> {
        let mut v: Vec<(u64, &K, u64)> = self
            .keys
            .iter()
            .zip(&self.errors)
            .zip(&self.at)
            .map(|((k, &e), &i)| {
                let c = self.heap.get(i as usize).map_or(0, |h| h.count);
                (c, k, e)
            })
            .collect();
        let order =
            |a: &(u64, &K, u64), b: &(u64, &K, u64)| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1));
        if n < v.len() {
            // Only the first `n` need sorting (a report takes the top 10-100 of 16 384).
            v.select_nth_unstable_by(n, order);
            v.truncate(n);
        }
        v.sort_by(order);
        v.into_iter()
            .take(n)
            .map(|(count, k, error)| Ranked {
                key: k.clone(),
                count,
                error,
            })
            .collect()
    }

    fn count_at(&self, i: usize) -> u64 {
        self.heap.get(i).map_or(u64::MAX, |h| h.count)
    }

    /// Puts `item` at heap position `i` and tells its slot.
    fn place(&mut self, i: usize, item: HeapItem) {
        if let Some(h) = self.heap.get_mut(i) {
            *h = item;
        }
        if let Some(p) = self.at.get_mut(item.slot as usize) {
            *p = i as u32;
        }
    }

    /// Moves the item at `i` up while it counts less than its parent. The item is held aside
    /// and the parents move down into the hole: the same moves as swapping it up step by
    /// step, with one write per level instead of two.
    fn sift_up(&mut self, mut i: usize) {
        let Some(&item) = self.heap.get(i) else {
            return;
        };
        while i > 0 {
            let parent = (i - 1) / 2;
            let Some(&p) = self.heap.get(parent) else {
                break;
            };
            if item.count >= p.count {
                break;
            }
            self.place(i, p);
            i = parent;
        }
        self.place(i, item);
    }

    /// Moves the item at `i` down while a child counts less (the smaller child, the left one
    /// on a tie), with the hole technique of [`Ranking::sift_up`].
    fn sift_down(&mut self, mut i: usize) {
        let Some(&item) = self.heap.get(i) else {
            return;
        };
        let len = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            let mut mc = item.count;
            if l < len && self.count_at(l) < mc {
                m = l;
                mc = self.count_at(l);
            }
            if r < len && self.count_at(r) < mc {
                m = r;
            }
            if m == i {
                break;
            }
            let Some(&c) = self.heap.get(m) else {
                break;
            };
            self.place(i, c);
            i = m;
        }
        self.place(i, item);
    }
}

impl<K: Hash + Eq + Clone + Ord> SpaceSaving<K> {
    /// A summary with `capacity` counters (at least 1, at most 2^32).
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            ranking: Ranking::new(capacity),
            pos: HashMap::default(),
        }
    }

    /// Adds `weight` to `key`.
    pub fn add(&mut self, key: &K, weight: u64) {
        if weight == 0 {
            return;
        }
        let r = &mut self.ranking;
        r.total = r.total.saturating_add(weight);
        if let Some(&slot) = self.pos.get(key) {
            r.bump(slot, weight);
            return;
        }
        if let Some((slot, old)) = r.insert(key, weight) {
            if let Some(old) = old {
                self.pos.remove(&old);
            }
            self.pos.insert(key.clone(), slot);
        }
    }

    /// Total weight added.
    pub fn total(&self) -> u64 {
        self.ranking.total
    }

    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.ranking.keys.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.ranking.keys.is_empty()
    }

    /// Whether counts are exact (the capacity was never exceeded).
    pub fn is_exact(&self) -> bool {
        self.ranking.is_exact()
    }

    /// The `n` largest counts, largest first; ties by key, so the order is deterministic.
    pub fn top(&self, n: usize) -> Vec<Ranked<K>> {
        self.ranking.top(n)
    }
}

/// Two Space-Saving rankings over the same keys (by bytes and by packets), fed together: one
/// index maps a key to its slot in each, so a key costs one hash lookup for both. Each ranking
/// evolves exactly as a [`SpaceSaving`] fed the same weights would.
#[derive(Clone, Debug)]
struct Paired<K> {
    rankings: [Ranking<K>; 2],
    /// Slot of the key in each ranking ([`Paired::NONE`]: not held there).
    index: foldhash::HashMap<K, [u32; 2]>,
}

impl<K: Hash + Eq + Clone + Ord> Paired<K> {
    const NONE: u32 = u32::MAX;

    fn new(capacity: usize) -> Self {
        Paired {
            rankings: [Ranking::new(capacity), Ranking::new(capacity)],
            index: HashMap::default(),
        }
    }

    /// Adds `weights[i]` to `key` in ranking `i`.
    ///
    /// The rankings change in order (0, then 1), as before; the index is brought up to date
    /// once at the end: the keys each ranking evicted lose their slot there, then `key` gets
    /// its new slots — one lookup of `key` for both rankings instead of one per ranking.
    fn add(&mut self, key: &K, weights: [u64; 2]) {
        let held = self.index.get(key).copied().unwrap_or([Self::NONE; 2]);
        let mut slots = held;
        let mut evicted: [Option<K>; 2] = [None, None];
        for (i, (r, w)) in self.rankings.iter_mut().zip(weights).enumerate() {
            if w == 0 {
                continue;
            }
            r.total = r.total.saturating_add(w);
            let slot = held.get(i).copied().unwrap_or(Self::NONE);
            if slot != Self::NONE {
                r.bump(slot, w);
                continue;
            }
            let Some((slot, old)) = r.insert(key, w) else {
                continue;
            };
            if let Some(s) = slots.get_mut(i) {
                *s = slot;
            }
            if let Some(e) = evicted.get_mut(i) {
                *e = old;
            }
        }
        if slots == held {
            return;
        }
        // An evicted key is never `key` (`key` was not held in the ranking that evicted it).
        for (i, old) in evicted.iter().enumerate() {
            let Some(old) = old else { continue };
            if let Some(e) = self.index.get_mut(old) {
                if let Some(s) = e.get_mut(i) {
                    *s = Self::NONE;
                }
                if e.iter().all(|&s| s == Self::NONE) {
                    self.index.remove(old);
                }
            }
        }
        match self.index.get_mut(key) {
            Some(e) => *e = slots,
            None => {
                self.index.insert(key.clone(), slots);
            }
        }
    }

    fn top(&self, i: usize, n: usize) -> Vec<Ranked<K>> {
        self.rankings.get(i).map(|r| r.top(n)).unwrap_or_default()
    }
}

/// A host pair, order-independent (the smaller address first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HostPair {
    /// The smaller address.
    pub a: IpAddr,
    /// The larger address.
    pub b: IpAddr,
}

impl HostPair {
    /// The pair of `x` and `y` in either order.
    pub fn new(x: IpAddr, y: IpAddr) -> HostPair {
        if x <= y {
            HostPair { a: x, b: y }
        } else {
            HostPair { a: y, b: x }
        }
    }
}

/// `a <-> b`.
impl core::fmt::Display for HostPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} <-> {}", self.a, self.b)
    }
}

/// A responder port: IP protocol and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServicePort {
    /// IP protocol number.
    pub proto: u8,
    /// Responder port.
    pub port: u16,
}

/// `tcp/443`, `udp/53`, or `<number>/<port>` for other protocols.
impl core::fmt::Display for ServicePort {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.proto {
            6 => write!(f, "tcp/{}", self.port),
            17 => write!(f, "udp/{}", self.port),
            132 => write!(f, "sctp/{}", self.port),
            p => write!(f, "{p}/{}", self.port),
        }
    }
}

/// What to rank by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    /// Wire bytes (both directions).
    Bytes,
    /// Packets (both directions).
    Packets,
}

/// The six rankings: hosts, host pairs and ports, each by bytes and by packets.
#[derive(Clone, Debug)]
pub struct TopTalkers {
    hosts: Paired<IpAddr>,
    pairs: Paired<HostPair>,
    ports: Paired<ServicePort>,
}

/// The top-n lists of [`TopTalkers`], owned and serializable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TalkersReport {
    /// Hosts by bytes.
    pub hosts_by_bytes: Vec<Ranked<IpAddr>>,
    /// Hosts by packets.
    pub hosts_by_packets: Vec<Ranked<IpAddr>>,
    /// Host pairs by bytes.
    pub pairs_by_bytes: Vec<Ranked<HostPair>>,
    /// Host pairs by packets.
    pub pairs_by_packets: Vec<Ranked<HostPair>>,
    /// Responder ports by bytes.
    pub ports_by_bytes: Vec<Ranked<ServicePort>>,
    /// Responder ports by packets.
    pub ports_by_packets: Vec<Ranked<ServicePort>>,
}

impl TopTalkers {
    /// Rankings with `capacity` counters each.
    pub fn new(capacity: usize) -> TopTalkers {
        TopTalkers {
            hosts: Paired::new(capacity),
            pairs: Paired::new(capacity),
            ports: Paired::new(capacity),
        }
    }

    /// Adds `bytes` and `packets` exchanged between `initiator` and `responder`, whose
    /// service is `proto`/`port`. A host is credited with the bytes it sent and received.
    pub fn add(
        &mut self,
        initiator: IpAddr,
        responder: IpAddr,
        proto: u8,
        port: u16,
        bytes: u64,
        packets: u64,
    ) {
        let w = [bytes, packets];
        self.hosts.add(&initiator, w);
        if responder != initiator {
            self.hosts.add(&responder, w);
        }
        self.pairs.add(&HostPair::new(initiator, responder), w);
        self.ports.add(&ServicePort { proto, port }, w);
    }

    fn idx(by: RankBy) -> usize {
        match by {
            RankBy::Bytes => 0,
            RankBy::Packets => 1,
        }
    }

    /// Top `n` hosts.
    pub fn hosts(&self, by: RankBy, n: usize) -> Vec<Ranked<IpAddr>> {
        self.hosts.top(Self::idx(by), n)
    }

    /// Top `n` host pairs.
    pub fn pairs(&self, by: RankBy, n: usize) -> Vec<Ranked<HostPair>> {
        self.pairs.top(Self::idx(by), n)
    }

    /// Top `n` responder ports.
    pub fn ports(&self, by: RankBy, n: usize) -> Vec<Ranked<ServicePort>> {
        self.ports.top(Self::idx(by), n)
    }

    /// All six top-`n` lists.
    pub fn top(&self, n: usize) -> TalkersReport {
        TalkersReport {
            hosts_by_bytes: self.hosts(RankBy::Bytes, n),
            hosts_by_packets: self.hosts(RankBy::Packets, n),
            pairs_by_bytes: self.pairs(RankBy::Bytes, n),
            pairs_by_packets: self.pairs(RankBy::Packets, n),
            ports_by_bytes: self.ports(RankBy::Bytes, n),
            ports_by_packets: self.ports(RankBy::Packets, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn ip(a: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, a))
    }

    #[test]
    fn exact_under_capacity() {
        let mut s = SpaceSaving::new(10);
        for (k, w) in [(1u32, 5u64), (2, 7), (1, 4), (3, 1)] {
            s.add(&k, w);
        }
        let t = s.top(10);
        assert_eq!(
            t.iter().map(|r| (r.key, r.count)).collect::<Vec<_>>(),
            vec![(1, 9), (2, 7), (3, 1)]
        );
        assert!(s.is_exact());
        assert_eq!(s.total(), 17);
    }

    #[test]
    fn space_saving_bound() {
        // Heavy hitters 0..4 with weight 1000 each, interleaved with 10_000 one-off keys.
        let mut s = SpaceSaving::new(64);
        let mut truth: HashMap<u32, u64> = HashMap::new();
        for i in 0..10_000u32 {
            let k = 100 + i;
            s.add(&k, 1);
            *truth.entry(k).or_default() += 1;
            if i % 50 == 0 {
                for h in 0..5u32 {
                    s.add(&h, 5);
                    *truth.entry(h).or_default() += 5;
                }
            }
        }
        let n = s.total();
        let m = 64u64;
        let top = s.top(5);
        let mut keys: Vec<u32> = top.iter().map(|r| r.key).collect();
        keys.sort();
        assert_eq!(keys, vec![0, 1, 2, 3, 4]);
        for r in s.top(64) {
            let t = truth[&r.key];
            assert!(r.count >= t, "never underestimates");
            assert!(r.count - t <= r.error, "error bounds the overestimate");
            assert!(r.error <= n / m, "error ≤ N/m");
        }
        assert!(!s.is_exact());
        assert_eq!(s.len(), 64);
    }

    #[test]
    fn top_is_the_sorted_prefix() {
        let mut s = SpaceSaving::new(50);
        let mut x = 7u64;
        for _ in 0..5_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.add(&((x >> 33) % 120), (x >> 50) % 9);
        }
        let all = s.top(usize::MAX);
        assert_eq!(all.len(), 50);
        assert!(
            all.windows(2)
                .all(|w| (w[1].count, &w[0].key) <= (w[0].count, &w[1].key))
        );
        for n in [0, 1, 5, 49, 50, 51] {
            assert_eq!(s.top(n), all[..n.min(50)].to_vec(), "{n}");
        }
        // The heap still finds the minimum after all those moves: a new key takes its count.
        let min = all.last().unwrap().count;
        s.add(&1_000, 1);
        let r = s
            .top(usize::MAX)
            .into_iter()
            .find(|r| r.key == 1_000)
            .unwrap();
        assert_eq!((r.count, r.error), (min + 1, min));
    }

    #[test]
    fn talkers_pairs_are_unordered() {
        let mut t = TopTalkers::new(100);
        t.add(ip(1), ip(2), 6, 443, 1000, 10);
        t.add(ip(2), ip(1), 6, 22, 500, 20);
        t.add(ip(3), ip(2), 17, 53, 100, 2);
        let pairs = t.pairs(RankBy::Bytes, 10);
        assert_eq!(pairs[0].key, HostPair::new(ip(1), ip(2)));
        assert_eq!(pairs[0].count, 1500);
        let hosts = t.hosts(RankBy::Bytes, 1);
        assert_eq!((hosts[0].key, hosts[0].count), (ip(2), 1600));
        let ports = t.ports(RankBy::Packets, 1);
        assert_eq!(ports[0].key, ServicePort { proto: 6, port: 22 });
        let r = t.top(2);
        assert_eq!(r.hosts_by_packets.len(), 2);
    }

    /// The summary before counts moved into the heap, verbatim: the reference.
    #[derive(Clone, Debug)]
    struct OldSpaceSaving<K> {
        capacity: usize,
        /// Counters, by slot (never moved).
        slots: Vec<Counter<K>>,
        /// Min-heap by count, of slot numbers.
        heap: Vec<u32>,
        /// Heap position of each slot.
        at: Vec<u32>,
        pos: foldhash::HashMap<K, u32>,
        total: u64,
    }

    #[derive(Clone, Debug)]
    struct Counter<K> {
        key: K,
        count: u64,
        error: u64,
    }

    impl<K: Hash + Eq + Clone + Ord> OldSpaceSaving<K> {
        /// A summary with `capacity` counters (at least 1, at most 2^32).
        fn new(capacity: usize) -> Self {
            OldSpaceSaving {
                capacity: capacity.clamp(1, u32::MAX as usize),
                slots: Vec::new(),
                heap: Vec::new(),
                at: Vec::new(),
                pos: HashMap::default(),
                total: 0,
            }
        }

        /// Adds `weight` to `key`.
        fn add(&mut self, key: &K, weight: u64) {
            if weight == 0 {
                return;
            }
            self.total = self.total.saturating_add(weight);
            if let Some(&slot) = self.pos.get(key) {
                if let Some(c) = self.slots.get_mut(slot as usize) {
                    c.count = c.count.saturating_add(weight);
                }
                if let Some(&i) = self.at.get(slot as usize) {
                    self.sift_down(i as usize);
                }
                return;
            }
            if self.slots.len() < self.capacity {
                let slot = self.slots.len() as u32;
                self.slots.push(Counter {
                    key: key.clone(),
                    count: weight,
                    error: 0,
                });
                let i = self.heap.len();
                self.heap.push(slot);
                self.at.push(i as u32);
                self.pos.insert(key.clone(), slot);
                self.sift_up(i);
                return;
            }
            // Replace the minimum.
            let Some(&slot) = self.heap.first() else {
                return;
            };
            let Some(min) = self.slots.get_mut(slot as usize) else {
                return;
            };
            let old = core::mem::replace(&mut min.key, key.clone());
            min.error = min.count;
            min.count = min.count.saturating_add(weight);
            self.pos.remove(&old);
            self.pos.insert(key.clone(), slot);
            self.sift_down(0);
        }

        /// Total weight added.
        fn total(&self) -> u64 {
            self.total
        }

        /// Whether counts are exact (the capacity was never exceeded).
        fn is_exact(&self) -> bool {
            self.slots.iter().all(|c| c.error == 0)
        }

        /// The `n` largest counts, largest first; ties by key, so the order is deterministic.
        fn top(&self, n: usize) -> Vec<Ranked<K>> {
            let order = |a: &&Counter<K>, b: &&Counter<K>| {
                b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key))
            };
            let mut v: Vec<&Counter<K>> = self.slots.iter().collect();
            if n < v.len() {
                // Only the first `n` need sorting (a report takes the top 10-100 of 16 384).
                v.select_nth_unstable_by(n, order);
                v.truncate(n);
            }
            v.sort_by(order);
            v.into_iter()
                .take(n)
                .map(|c| Ranked {
                    key: c.key.clone(),
                    count: c.count,
                    error: c.error,
                })
                .collect()
        }

        fn count_at(&self, i: usize) -> u64 {
            self.heap
                .get(i)
                .and_then(|&s| self.slots.get(s as usize))
                .map_or(u64::MAX, |c| c.count)
        }

        fn swap(&mut self, a: usize, b: usize) {
            if a == b || a >= self.heap.len() || b >= self.heap.len() {
                return;
            }
            self.heap.swap(a, b);
            for i in [a, b] {
                if let Some(&s) = self.heap.get(i) {
                    if let Some(p) = self.at.get_mut(s as usize) {
                        *p = i as u32;
                    }
                }
            }
        }

        fn sift_up(&mut self, mut i: usize) {
            while i > 0 {
                let parent = (i - 1) / 2;
                if self.count_at(i) >= self.count_at(parent) {
                    break;
                }
                self.swap(i, parent);
                i = parent;
            }
        }

        fn sift_down(&mut self, mut i: usize) {
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut m = i;
                if l < self.heap.len() && self.count_at(l) < self.count_at(m) {
                    m = l;
                }
                if r < self.heap.len() && self.count_at(r) < self.count_at(m) {
                    m = r;
                }
                if m == i {
                    break;
                }
                self.swap(i, m);
                i = m;
            }
        }
    }

    /// Old-style six rankings: independent summaries fed in the old order.
    struct OldTalkers {
        hosts: [OldSpaceSaving<IpAddr>; 2],
        pairs: [OldSpaceSaving<HostPair>; 2],
        ports: [OldSpaceSaving<ServicePort>; 2],
    }

    impl OldTalkers {
        fn add(&mut self, a: IpAddr, b: IpAddr, proto: u8, port: u16, bytes: u64, packets: u64) {
            for (i, w) in [bytes, packets].into_iter().enumerate() {
                self.hosts[i].add(&a, w);
                if b != a {
                    self.hosts[i].add(&b, w);
                }
                self.pairs[i].add(&HostPair::new(a, b), w);
                self.ports[i].add(&ServicePort { proto, port }, w);
            }
        }
    }

    proptest::proptest! {
        /// Same counters, errors, evictions (ties included) as the old summary, for
        /// `SpaceSaving` and for the paired rankings of `TopTalkers`, at every step.
        #[test]
        fn same_as_the_old_summary(
            cap in 1usize..12,
            adds in proptest::collection::vec((0u8..30, 0u8..30, 0u16..6, 0u64..4, 0u64..3), 1..300),
        ) {
            let mut new = SpaceSaving::new(cap);
            let mut old = OldSpaceSaving::new(cap);
            let mut t = TopTalkers::new(cap);
            let mut o = OldTalkers {
                hosts: [OldSpaceSaving::new(cap), OldSpaceSaving::new(cap)],
                pairs: [OldSpaceSaving::new(cap), OldSpaceSaving::new(cap)],
                ports: [OldSpaceSaving::new(cap), OldSpaceSaving::new(cap)],
            };
            for (a, b, port, bytes, packets) in adds {
                new.add(&a, bytes);
                old.add(&a, bytes);
                proptest::prop_assert_eq!(new.top(usize::MAX), old.top(usize::MAX));
                proptest::prop_assert_eq!(new.total(), old.total());
                proptest::prop_assert_eq!(new.is_exact(), old.is_exact());
                let (a, b) = (ip(a), ip(b));
                t.add(a, b, 6, port, bytes, packets);
                o.add(a, b, 6, port, bytes, packets);
                for i in 0..2 {
                    let by = [RankBy::Bytes, RankBy::Packets][i];
                    proptest::prop_assert_eq!(t.hosts(by, usize::MAX), o.hosts[i].top(usize::MAX));
                    proptest::prop_assert_eq!(t.pairs(by, usize::MAX), o.pairs[i].top(usize::MAX));
                    proptest::prop_assert_eq!(t.ports(by, usize::MAX), o.ports[i].top(usize::MAX));
                }
            }
        }
    }
}
