//! Flow ↔ DNS correlation: which names resolved to which addresses, learnt from observed DNS
//! responses, so that a flow to an address can be labelled with the domain its client asked
//! for.
//!
//! [`DnsCorrelator::learn`] reads the answer section of a response: every A/AAAA record's
//! owner name is followed back through the CNAME records of the same message to the head of
//! the chain — the question name (`www.example.com CNAME cdn.example.net`, `cdn.example.net A
//! 192.0.2.7` teaches `192.0.2.7 ↦ www.example.com`). It stores, per address, the most recent
//! name per client (up to [`CorrelatorConfig::clients_per_address`] clients; the least
//! recently learnt client is replaced, so the most recent answer overall is always kept),
//! valid until `ts + max(TTL, min_window)`.
//!
//! [`DnsCorrelator::lookup`] answers "which name did `client` ask for that resolved to
//! `server`": the client's own unexpired answer if there is one, else the most recent
//! unexpired answer of any client.
//!
//! Time is the packets' clock ([`Timestamp`]), so replaying a capture gives the same result
//! every time; no result depends on hash iteration order (eviction picks entries by
//! `(expiry, address)`). Memory is bounded: at most [`CorrelatorConfig::max_entries`]
//! addresses (when full, expired addresses go first, then the 1/16 with the earliest expiry,
//! counted as evicted), names are interned once each (`Arc<Text>`, shared by every address
//! and client that uses them), and interned names nobody references are dropped.
//!
//! ```
//! use netmon_classify::correlate::DnsCorrelator;
//! use netmon_classify::dns::DnsMessage;
//! use netmon_types::Timestamp;
//! // Response: "www.a.example" CNAME "cdn.b.example", "cdn.b.example" A 192.0.2.7, TTL 60.
//! let msg = [
//!     0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
//!     3, b'w', b'w', b'w', 1, b'a', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1,
//!     0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 8, 3, b'c', b'd', b'n', 1, b'b', 0xc0, 18,
//!     0xc0, 43, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7,
//! ];
//! let mut c = DnsCorrelator::default();
//! let client = "10.0.0.5".parse().unwrap();
//! c.learn(Timestamp::from_secs_nanos(100, 0), client, &DnsMessage::parse(&msg).unwrap());
//! let name = c.lookup(Timestamp::from_secs_nanos(130, 0), client, "192.0.2.7".parse().unwrap());
//! assert_eq!(name.unwrap().as_bytes(), b"www.a.example");
//! // The minimum window (5 minutes) outlives the 60 s TTL; then the answer expires.
//! assert!(c.lookup(Timestamp::from_secs_nanos(399, 0), client, "192.0.2.7".parse().unwrap()).is_some());
//! assert!(c.lookup(Timestamp::from_secs_nanos(401, 0), client, "192.0.2.7".parse().unwrap()).is_none());
//! ```

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashTable};
use netmon_types::Timestamp;

use crate::Text;
use crate::dns::{DnsMessage, Name, RData, Section};

/// Most clients remembered per address (the bound of
/// [`CorrelatorConfig::clients_per_address`]).
pub const MAX_CLIENTS_PER_ADDRESS: usize = 16;
/// Most CNAME records of one response used to follow chains (more are ignored).
pub const MAX_CNAMES: usize = 16;
/// Most addresses learnt from one response (bounds the work per packet).
pub const MAX_ADDRESSES_PER_MESSAGE: usize = 64;

/// Settings of a [`DnsCorrelator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorrelatorConfig {
    /// An answer is kept at least this long, even with a shorter TTL (default 5 minutes).
    pub min_window: Duration,
    /// Most addresses remembered (default 200 000).
    pub max_entries: usize,
    /// Most clients remembered per address, 1..=[`MAX_CLIENTS_PER_ADDRESS`] (default 4).
    pub clients_per_address: usize,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            min_window: Duration::from_secs(300),
            max_entries: 200_000,
            clients_per_address: 4,
        }
    }
}

/// Counters of a [`DnsCorrelator`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    /// Address ↦ name answers stored (new or refreshed).
    pub learned: u64,
    /// Addresses dropped to make room before they expired.
    pub evicted: u64,
    /// Addresses dropped because all their answers expired.
    pub expired: u64,
    /// Lookups that found a name.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
}

/// One client's most recent answer for an address.
#[derive(Clone, Debug)]
struct Slot {
    name: Arc<Text>,
    client: IpAddr,
    learned: Timestamp,
    expiry: Timestamp,
}

/// Everything known about one address.
#[derive(Clone, Debug)]
struct Entry {
    slots: Vec<Slot>,
    /// The latest expiry of its slots.
    expiry: Timestamp,
}

/// Learns address ↦ name from DNS responses and answers which name a flow's server address
/// was resolved from. See the [module docs](self).
#[derive(Debug)]
pub struct DnsCorrelator {
    config: CorrelatorConfig,
    min_window_nanos: i64,
    entries: HashMap<IpAddr, Entry, RandomState>,
    names: HashTable<Arc<Text>>,
    hasher: RandomState,
    /// Slots stored over all entries.
    slots: usize,
    /// When `learn` next drops expired addresses by itself (every `min_window` of packet time).
    next_sweep: Option<Timestamp>,
    stats: CorrelatorStats,
}

impl Default for DnsCorrelator {
    fn default() -> Self {
        DnsCorrelator::new(CorrelatorConfig::default())
    }
}

impl DnsCorrelator {
    /// An empty correlator (allocates nothing until it learns). `max_entries` is at least 1;
    /// `clients_per_address` is clamped to 1..=[`MAX_CLIENTS_PER_ADDRESS`].
    pub fn new(config: CorrelatorConfig) -> Self {
        let config = CorrelatorConfig {
            max_entries: config.max_entries.max(1),
            clients_per_address: config.clients_per_address.clamp(1, MAX_CLIENTS_PER_ADDRESS),
            ..config
        };
        DnsCorrelator {
            min_window_nanos: i64::try_from(config.min_window.as_nanos()).unwrap_or(i64::MAX),
            config,
            entries: HashMap::with_hasher(RandomState::default()),
            names: HashTable::new(),
            hasher: RandomState::default(),
            slots: 0,
            next_sweep: None,
            stats: CorrelatorStats::default(),
        }
    }

    /// The settings in use (after clamping).
    pub fn config(&self) -> CorrelatorConfig {
        self.config
    }

    /// Counters.
    pub fn stats(&self) -> CorrelatorStats {
        self.stats
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Distinct names held.
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// Approximate heap bytes held: the tables, the per-address slot lists and the names.
    pub fn memory_bytes(&self) -> usize {
        let map = self.entries.capacity() * (core::mem::size_of::<(IpAddr, Entry)>() + 1)
            + self
                .entries
                .values()
                .map(|e| e.slots.capacity() * core::mem::size_of::<Slot>())
                .sum::<usize>();
        // An Arc's allocation holds two counters and the Text, which owns its bytes.
        let names = self.names.capacity() * (core::mem::size_of::<Arc<Text>>() + 1)
            + self
                .names
                .iter()
                .map(|n| {
                    2 * core::mem::size_of::<usize>()
                        + core::mem::size_of::<Text>()
                        + n.as_bytes().len()
                })
                .sum::<usize>();
        map + names
    }

    /// Learns from a DNS response received by `client` at `ts` (queries are ignored): each
    /// A/AAAA record of the answer section maps its address to the head of its CNAME chain
    /// (normally the question name). Returns how many address ↦ name answers were stored.
    /// Reading stops at the first malformed record; what was read before is kept.
    pub fn learn(&mut self, ts: Timestamp, client: IpAddr, msg: &DnsMessage<'_>) -> usize {
        if !msg.flags().qr() || msg.ancount() == 0 {
            return 0;
        }
        self.maybe_sweep(ts);
        // CNAME owner → target pairs of the answer section (bounded, on the stack).
        // (An ArrayVec: a `[Option<(Name, Name)>; 16]` would be 8 KB to initialise per call.)
        let mut cnames: arrayvec::ArrayVec<(Name, Name), MAX_CNAMES> = arrayvec::ArrayVec::new();
        for r in msg.records() {
            let Ok(r) = r else { break };
            if r.section != Section::Answer {
                break;
            }
            if let RData::Cname(target) = r.data {
                let _ = cnames.try_push((r.name, target));
            }
        }
        let cnames = cnames.as_slice();
        let mut learned = 0;
        // The last owner resolved and its interned head: consecutive A/AAAA records usually
        // share their owner.
        let mut last: Option<(Name, Arc<Text>)> = None;
        for r in msg.records() {
            let Ok(r) = r else { break };
            if r.section != Section::Answer || learned >= MAX_ADDRESSES_PER_MESSAGE {
                break;
            }
            let addr = match r.data {
                RData::A(a) => IpAddr::V4(a),
                RData::Aaaa(a) => IpAddr::V6(a),
                _ => continue,
            };
            let name = match &last {
                Some((owner, name)) if owner.eq_ignore_ascii_case(&r.name) => Arc::clone(name),
                _ => {
                    let head = chain_head(cnames, &r.name);
                    let name = self.intern(head.as_bytes());
                    last = Some((r.name, Arc::clone(&name)));
                    name
                }
            };
            // RFC 2181 §8: a TTL with the top bit set is treated as zero.
            let ttl = if r.ttl & 0x8000_0000 != 0 { 0 } else { r.ttl };
            let keep = (i64::from(ttl) * 1_000_000_000).max(self.min_window_nanos);
            let expiry = Timestamp::from_nanos(ts.as_nanos().saturating_add(keep));
            self.store(ts, addr, client, name, expiry);
            learned += 1;
        }
        self.stats.learned += learned as u64;
        learned
    }

    /// The most recent unexpired name that resolved to `server`, preferring an answer
    /// received by `client`. Counts a hit or a miss.
    pub fn lookup(&mut self, ts: Timestamp, client: IpAddr, server: IpAddr) -> Option<&Arc<Text>> {
        let found = self.entries.get(&server).and_then(|e| {
            let live = e.slots.iter().filter(|s| s.expiry > ts);
            live.clone()
                .find(|s| s.client == client)
                .or_else(|| live.max_by_key(|s| s.learned))
        });
        match found {
            Some(s) => {
                self.stats.hits += 1;
                Some(&s.name)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Drops every address whose answers have all expired at `ts`, and names no longer used.
    /// [`learn`](Self::learn) does this by itself once per `min_window` of packet time, and
    /// whenever the table is full. Returns how many addresses were dropped.
    pub fn expire(&mut self, ts: Timestamp) -> usize {
        let before = self.entries.len();
        let mut slots = 0;
        self.entries.retain(|_, e| {
            let keep = e.expiry > ts;
            if !keep {
                slots += e.slots.len();
            }
            keep
        });
        self.slots -= slots;
        let n = before - self.entries.len();
        self.stats.expired += n as u64;
        self.gc_names();
        n
    }

    fn maybe_sweep(&mut self, ts: Timestamp) {
        match self.next_sweep {
            Some(t) if ts < t => {}
            Some(_) => {
                self.expire(ts);
                self.next_sweep = Some(Timestamp::from_nanos(
                    ts.as_nanos().saturating_add(self.min_window_nanos),
                ));
            }
            None => {
                self.next_sweep = Some(Timestamp::from_nanos(
                    ts.as_nanos().saturating_add(self.min_window_nanos),
                ));
            }
        }
    }

    /// Stores one answer, making room first if `addr` is new and the table is full.
    fn store(
        &mut self,
        ts: Timestamp,
        addr: IpAddr,
        client: IpAddr,
        name: Arc<Text>,
        expiry: Timestamp,
    ) {
        if !self.entries.contains_key(&addr) && self.entries.len() >= self.config.max_entries {
            self.make_room(ts);
        }
        let cap = self.config.clients_per_address;
        let e = self.entries.entry(addr).or_insert_with(|| Entry {
            slots: Vec::new(),
            expiry,
        });
        let slot = Slot {
            name,
            client,
            learned: ts,
            expiry,
        };
        if let Some(s) = e.slots.iter_mut().find(|s| s.client == client) {
            *s = slot;
        } else if e.slots.len() < cap {
            e.slots.push(slot);
            self.slots += 1;
        } else if let Some(oldest) = e.slots.iter_mut().min_by_key(|s| (s.learned, s.client)) {
            *oldest = slot;
        }
        e.expiry = e.slots.iter().map(|s| s.expiry).max().unwrap_or(expiry);
        // Keep unused names from piling up between sweeps.
        if self.names.len() > 2 * self.slots + 1024 {
            self.gc_names();
        }
    }

    /// Drops expired addresses; if the table is still more than 15/16 full, evicts the
    /// addresses with the earliest expiry (ties: the lower address) down to 15/16.
    fn make_room(&mut self, ts: Timestamp) {
        self.expire(ts);
        let max = self.config.max_entries;
        let target = max - (max / 16).max(1);
        let excess = self.entries.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut order: Vec<(Timestamp, IpAddr)> =
            self.entries.iter().map(|(a, e)| (e.expiry, *a)).collect();
        order.select_nth_unstable(excess - 1);
        for (_, a) in order.get(..excess).unwrap_or(&[]) {
            if let Some(e) = self.entries.remove(a) {
                self.slots -= e.slots.len();
                self.stats.evicted += 1;
            }
        }
        self.gc_names();
    }

    /// The shared copy of `name`, interning it if new.
    fn intern(&mut self, name: &[u8]) -> Arc<Text> {
        let hash = self.hasher.hash_one(name);
        if let Some(n) = self.names.find(hash, |n| n.as_bytes() == name) {
            return Arc::clone(n);
        }
        let n = Arc::new(Text::new(name));
        let hasher = &self.hasher;
        self.names
            .insert_unique(hash, Arc::clone(&n), |n| hasher.hash_one(n.as_bytes()));
        n
    }

    /// Drops interned names only the interner holds.
    fn gc_names(&mut self) {
        self.names.retain(|n| Arc::strong_count(n) > 1);
    }
}

/// Follows CNAMEs backwards from `owner` (who points to it?) to the head of the chain.
/// Bounded by the number of CNAMEs, so a CNAME loop ends.
fn chain_head<'n>(cnames: &'n [(Name, Name)], owner: &'n Name) -> &'n Name {
    let mut cur = owner;
    for _ in 0..cnames.len() {
        let prev = cnames
            .iter()
            .find(|(_, target)| target.eq_ignore_ascii_case(cur));
        match prev {
            Some((alias, _)) if !alias.eq_ignore_ascii_case(owner) => cur = alias,
            _ => break,
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::build::{Msg, wire};
    use crate::dns::{TYPE_A, TYPE_AAAA, TYPE_CNAME};

    enum Rd<'s> {
        A([u8; 4]),
        Aaaa(&'s str),
        Cname(&'s str),
    }

    /// A response to `qname` with answer records `(owner, ttl, data)`, uncompressed.
    fn resp(qname: &str, answers: &[(&str, u32, Rd<'_>)]) -> Vec<u8> {
        let n = u16::try_from(answers.len()).unwrap();
        let mut m = Msg::new(7, 0x8180, [1, n, 0, 0]);
        m.name(qname).q(TYPE_A, 1);
        for (owner, ttl, d) in answers {
            m.name(owner);
            match d {
                Rd::A(a) => m.rr(TYPE_A, 1, *ttl, a),
                Rd::Aaaa(a) => {
                    let a: std::net::Ipv6Addr = a.parse().unwrap();
                    m.rr(TYPE_AAAA, 1, *ttl, &a.octets())
                }
                Rd::Cname(t) => m.rr(TYPE_CNAME, 1, *ttl, &wire(t)),
            };
        }
        m.0
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs_nanos(secs, 0)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn learn(c: &mut DnsCorrelator, secs: i64, client: &str, msg: &[u8]) -> usize {
        c.learn(t(secs), ip(client), &DnsMessage::parse(msg).unwrap())
    }

    fn name_of(c: &mut DnsCorrelator, secs: i64, client: &str, server: &str) -> Option<String> {
        c.lookup(t(secs), ip(client), ip(server))
            .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
    }

    #[test]
    fn cname_chains_lead_back_to_the_question() {
        let mut c = DnsCorrelator::default();
        // Answer order shuffled, and a target in another case.
        let msg = resp(
            "www.example.com",
            &[
                ("b.cdn.net", 60, Rd::A([192, 0, 2, 1])),
                ("a.cdn.net", 60, Rd::Cname("B.cdn.NET")),
                ("www.example.com", 60, Rd::Cname("a.cdn.net")),
                ("b.cdn.net", 60, Rd::Aaaa("2001:db8::1")),
                ("b.cdn.net", 60, Rd::A([192, 0, 2, 2])),
            ],
        );
        assert_eq!(learn(&mut c, 10, "10.0.0.1", &msg), 3);
        for server in ["192.0.2.1", "192.0.2.2", "2001:db8::1"] {
            assert_eq!(
                name_of(&mut c, 11, "10.0.0.1", server).as_deref(),
                Some("www.example.com"),
                "{server}"
            );
        }
        assert_eq!(c.name_count(), 1, "one name, shared");
        assert_eq!(c.len(), 3);
        // A record without a chain keeps its own owner; a CNAME loop ends.
        let msg = resp(
            "loop.example",
            &[
                ("x.example", 60, Rd::Cname("y.example")),
                ("y.example", 60, Rd::Cname("x.example")),
                ("y.example", 60, Rd::A([192, 0, 2, 9])),
                ("plain.example", 60, Rd::A([192, 0, 2, 10])),
            ],
        );
        assert_eq!(learn(&mut c, 12, "10.0.0.1", &msg), 2);
        assert!(name_of(&mut c, 13, "10.0.0.1", "192.0.2.9").is_some());
        assert_eq!(
            name_of(&mut c, 13, "10.0.0.1", "192.0.2.10").as_deref(),
            Some("plain.example")
        );
        assert_eq!(c.stats().learned, 5);
    }

    #[test]
    fn only_answer_records_of_responses_are_learnt() {
        let mut c = DnsCorrelator::default();
        let mut q = Msg::new(1, 0x0100, [1, 1, 0, 0]);
        q.name("a.example")
            .q(TYPE_A, 1)
            .name("a.example")
            .rr(TYPE_A, 1, 60, &[1, 1, 1, 1]);
        assert_eq!(learn(&mut c, 1, "10.0.0.1", q.bytes()), 0, "a query");
        let mut glue = Msg::new(1, 0x8180, [1, 0, 0, 1]);
        glue.name("a.example")
            .q(TYPE_A, 1)
            .name("ns.example")
            .rr(TYPE_A, 1, 60, &[2, 2, 2, 2]);
        assert_eq!(learn(&mut c, 1, "10.0.0.1", glue.bytes()), 0, "glue");
        // A malformed record ends learning, keeping what came before.
        let mut m = Msg::new(1, 0x8180, [1, 2, 0, 0]);
        m.name("a.example")
            .q(TYPE_A, 1)
            .name("a.example")
            .rr(TYPE_A, 1, 60, &[3, 3, 3, 3]);
        m.raw(&[0xc0, 0xff]);
        assert_eq!(learn(&mut c, 1, "10.0.0.1", m.bytes()), 1);
        assert!(c.lookup(t(2), ip("10.0.0.1"), ip("1.1.1.1")).is_none());
        assert!(c.lookup(t(2), ip("10.0.0.1"), ip("3.3.3.3")).is_some());
        assert_eq!((c.stats().hits, c.stats().misses), (1, 1));
    }

    #[test]
    fn ttl_against_the_minimum_window() {
        let short = resp("s.example", &[("s.example", 60, Rd::A([192, 0, 2, 1]))]);
        let long = resp("l.example", &[("l.example", 3600, Rd::A([192, 0, 2, 2]))]);
        let bogus = resp(
            "b.example",
            &[("b.example", 0x8000_0000, Rd::A([192, 0, 2, 3]))],
        );
        let mut c = DnsCorrelator::default();
        for m in [&short, &long, &bogus] {
            learn(&mut c, 1000, "10.0.0.1", m);
        }
        let alive = |c: &mut DnsCorrelator, s: i64, a: &str| name_of(c, s, "10.0.0.1", a).is_some();
        assert!(
            alive(&mut c, 1299, "192.0.2.1"),
            "min window 300 s > TTL 60"
        );
        assert!(!alive(&mut c, 1300, "192.0.2.1"));
        assert!(alive(&mut c, 4599, "192.0.2.2"), "TTL 3600 > min window");
        assert!(!alive(&mut c, 4600, "192.0.2.2"));
        assert!(alive(&mut c, 1299, "192.0.2.3"), "a TTL ≥ 2^31 counts as 0");
        assert!(!alive(&mut c, 1300, "192.0.2.3"));
        // A configured window of 10 s: the TTL rules.
        let mut c = DnsCorrelator::new(CorrelatorConfig {
            min_window: Duration::from_secs(10),
            ..CorrelatorConfig::default()
        });
        learn(&mut c, 1000, "10.0.0.1", &short);
        assert!(alive(&mut c, 1059, "192.0.2.1"));
        assert!(!alive(&mut c, 1060, "192.0.2.1"));
        // Dropped by an explicit sweep, with its name.
        assert_eq!((c.len(), c.name_count()), (1, 1));
        assert_eq!(c.expire(t(1059)), 0);
        assert_eq!(c.expire(t(1060)), 1);
        assert_eq!((c.len(), c.name_count(), c.stats().expired), (0, 0, 1));
    }

    #[test]
    fn learning_sweeps_expired_answers_by_itself() {
        let mut c = DnsCorrelator::default();
        learn(
            &mut c,
            0,
            "10.0.0.1",
            &resp("a.example", &[("a.example", 1, Rd::A([1, 0, 0, 1]))]),
        );
        learn(
            &mut c,
            299,
            "10.0.0.1",
            &resp("b.example", &[("b.example", 1, Rd::A([1, 0, 0, 2]))]),
        );
        assert_eq!(c.len(), 2);
        // 300 s of packet time later the first one has expired and is swept.
        learn(
            &mut c,
            300,
            "10.0.0.1",
            &resp("c.example", &[("c.example", 1, Rd::A([1, 0, 0, 3]))]),
        );
        assert_eq!((c.len(), c.stats().expired), (2, 1));
        assert_eq!(c.name_count(), 2);
    }

    #[test]
    fn prefers_the_clients_own_answer() {
        let mut c = DnsCorrelator::new(CorrelatorConfig {
            clients_per_address: 2,
            ..CorrelatorConfig::default()
        });
        let srv = "192.0.2.80";
        let a = resp("a.example", &[("a.example", 1000, Rd::A([192, 0, 2, 80]))]);
        let b = resp("b.example", &[("b.example", 10, Rd::A([192, 0, 2, 80]))]);
        let d = resp("d.example", &[("d.example", 10, Rd::A([192, 0, 2, 80]))]);
        learn(&mut c, 100, "10.0.0.1", &a);
        learn(&mut c, 200, "10.0.0.2", &b);
        assert_eq!(
            name_of(&mut c, 201, "10.0.0.1", srv).as_deref(),
            Some("a.example")
        );
        assert_eq!(
            name_of(&mut c, 201, "10.0.0.2", srv).as_deref(),
            Some("b.example")
        );
        assert_eq!(
            name_of(&mut c, 201, "10.0.0.3", srv).as_deref(),
            Some("b.example"),
            "others get the most recent"
        );
        // b's answer expires (200 + 300): others now get a's.
        assert_eq!(
            name_of(&mut c, 500, "10.0.0.3", srv).as_deref(),
            Some("a.example")
        );
        assert_eq!(
            name_of(&mut c, 500, "10.0.0.2", srv).as_deref(),
            Some("a.example")
        );
        // A newer answer for the same client replaces its old one.
        learn(&mut c, 300, "10.0.0.1", &d);
        assert_eq!(
            name_of(&mut c, 301, "10.0.0.1", srv).as_deref(),
            Some("d.example")
        );
        // A third client replaces the least recently learnt (10.0.0.2), never the newest.
        learn(&mut c, 310, "10.0.0.3", &a);
        assert_eq!(
            name_of(&mut c, 311, "10.0.0.1", srv).as_deref(),
            Some("d.example")
        );
        assert_eq!(
            name_of(&mut c, 311, "10.0.0.2", srv).as_deref(),
            Some("a.example")
        );
        assert_eq!(c.len(), 1);
    }

    /// Feeds `n` responses for distinct addresses (ascending TTLs wrap every 50) to `c`.
    fn flood(c: &mut DnsCorrelator, n: u32) {
        for i in 0..n {
            let [_, x, y, z] = i.to_be_bytes();
            let name = format!("h{}.example", i % 37);
            let msg = resp(&name, &[(&name, 400 + i % 50, Rd::A([10, x, y, z]))]);
            learn(c, i64::from(i / 10), &format!("172.16.0.{}", i % 5), &msg);
        }
    }

    #[test]
    fn memory_is_bounded_and_eviction_counted() {
        let cfg = CorrelatorConfig {
            max_entries: 64,
            ..CorrelatorConfig::default()
        };
        let mut c = DnsCorrelator::new(cfg);
        flood(&mut c, 200);
        assert!(c.len() <= 64);
        let s = c.stats();
        assert_eq!(s.learned, 200);
        assert_eq!(s.evicted + s.expired + c.len() as u64, 200);
        assert!(s.evicted > 0);
        let m200 = c.memory_bytes();
        flood(&mut c, 20_000);
        assert!(c.len() <= 64 && c.name_count() <= 37);
        assert!(
            c.memory_bytes() <= 2 * m200,
            "{} vs {m200}",
            c.memory_bytes()
        );
        // The most recent answer is always kept.
        assert!(name_of(&mut c, 2000, "172.16.0.4", "10.0.78.31").is_some());
        let tiny = DnsCorrelator::new(CorrelatorConfig {
            max_entries: 0,
            clients_per_address: 99,
            ..cfg
        });
        assert_eq!(tiny.config().max_entries, 1);
        assert_eq!(tiny.config().clients_per_address, MAX_CLIENTS_PER_ADDRESS);
    }

    #[test]
    fn results_do_not_depend_on_hash_seeds() {
        // Two correlators have different random hash seeds; with eviction in play every
        // lookup must still agree.
        let cfg = CorrelatorConfig {
            max_entries: 100,
            ..CorrelatorConfig::default()
        };
        let (mut a, mut b) = (DnsCorrelator::new(cfg), DnsCorrelator::new(cfg));
        flood(&mut a, 3000);
        flood(&mut b, 3000);
        assert_eq!(a.stats(), b.stats());
        let mut found = 0;
        for i in 0..3000u32 {
            let [_, x, y, z] = i.to_be_bytes();
            let srv = format!("10.{x}.{y}.{z}");
            let ra = name_of(&mut a, 300, "172.16.0.1", &srv);
            assert_eq!(ra, name_of(&mut b, 300, "172.16.0.1", &srv), "{srv}");
            found += usize::from(ra.is_some());
        }
        assert!(found > 50, "{found}");
    }
}
