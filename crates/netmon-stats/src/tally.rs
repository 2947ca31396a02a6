//! [`PacketTally`]: what [`Stats::on_packet`](crate::Stats::on_packet) counts for the packets
//! of one second, pre-aggregated.
//!
//! The per-packet statistics — window buckets per interface and protocol key, the protocol
//! hierarchy, the packet and byte totals — are sums, so packets that count in the same second
//! can be added up first and merged later. A tally groups packets by their **shape**
//! (interface, network layer, IP protocol, application and layer stack): a second of traffic
//! has a few dozen shapes however many packets it holds, so merging a tally costs a few dozen
//! updates instead of one per packet.
//!
//! [`Stats`](crate::Stats) keeps one for its open second ([`Stats::on_packet`](crate::Stats::on_packet) adds to it, the
//! second's close merges it), and a sharded engine fills one per worker and per batch, off the
//! aggregator's thread, and hands it over with [`Stats::merge_tally`](crate::Stats::merge_tally).
//! Shapes are merged in the order they were first seen, so the hierarchy's children keep
//! their order of first appearance.
//!
//! ARP requests and replies are not tallied: the ARP sweep detector needs them one by one
//! ([`Stats::on_arp`](crate::Stats::on_arp)).

use core::hash::{Hash, Hasher};

use crate::obs::{L3Kind, LayerKey, Layers, PacketBrief, PacketObs};
use crate::window::Counts;

/// Most distinct shapes one tally holds; packets of further shapes share one catch-all shape,
/// counted in the totals, the hierarchy's root and the `all` key of the `overflow` interface.
pub const MAX_SHAPES: usize = 4096;

/// What a packet adds to the statistics besides its length: the window keys it counts under
/// and its protocol path. Strings compare by address (they are `'static` names from a few
/// tables): two equal names at different addresses make two shapes that merge alike.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) iface: u32,
    pub(crate) l3: L3Kind,
    pub(crate) proto: Option<u8>,
    pub(crate) app: Option<&'static str>,
    /// The hierarchy path (with the application appended).
    pub(crate) layers: Layers,
    /// The catch-all shape of a full tally: counts only under `all`, path cut.
    pub(crate) overflow: bool,
    /// The layer key of the packets last counted here by [`PacketTally::add_brief`] — a
    /// shortcut, not part of the shape (two keys may name the same layers): equal keys give
    /// equal layers.
    pub(crate) key: Option<LayerKey>,
}

fn same_str(a: &'static str, b: &'static str) -> bool {
    core::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
}

impl PartialEq for Shape {
    fn eq(&self, o: &Shape) -> bool {
        self.iface == o.iface
            && self.l3 == o.l3
            && self.proto == o.proto
            && self.overflow == o.overflow
            && match (self.app, o.app) {
                (None, None) => true,
                (Some(a), Some(b)) => same_str(a, b),
                _ => false,
            }
            && self.layers.len() == o.layers.len()
            && self.layers.truncated() == o.layers.truncated()
            && self
                .layers
                .as_slice()
                .iter()
                .zip(o.layers.as_slice())
                .all(|(a, b)| same_str(a, b))
    }
}

impl Eq for Shape {}

impl Hash for Shape {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u32(self.iface);
        h.write_u8(self.l3 as u8);
        h.write_u16(self.proto.map_or(0x100, u16::from));
        h.write_usize(self.app.map_or(0, |a| a.as_ptr() as usize));
        for l in self.layers.as_slice() {
            h.write_usize(l.as_ptr() as usize);
        }
        h.write_usize(self.layers.len());
    }
}

/// The application name [`Shape::of`] appends to a packet's layers, if any.
fn appended(p: &PacketObs<'_>) -> Option<&'static str> {
    p.app
        .filter(|a| p.layers.as_slice().last() != Some(a) && !a.is_empty())
}

/// A cheap hash of the shape [`Shape::of`] gives `p`, without building it: packets of equal
/// shapes (same strings at the same addresses) have equal fingerprints. In `0..RECENT`.
fn fingerprint(p: &PacketObs<'_>) -> usize {
    let mut x = u64::from(p.iface)
        ^ (p.l3 as u64) << 32
        ^ u64::from(p.ip.map_or(0x100, |ip| u16::from(ip.proto))) << 40
        ^ p.app.map_or(0, |a| a.as_ptr() as u64);
    // The shape's layers: the packet's, and the application `Shape::of` appends (if room).
    let extra = appended(p).filter(|_| p.layers.len() < crate::obs::MAX_LAYERS);
    for l in p.layers.as_slice().iter().chain(&extra) {
        x = x.rotate_left(7) ^ l.as_ptr() as u64;
    }
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - RECENT.trailing_zeros())) as usize
        & (RECENT - 1)
}

/// [`fingerprint`] for a [`PacketBrief`] (its layer key instead of its layers). In `0..RECENT`.
fn brief_fingerprint(p: &PacketBrief) -> usize {
    let x = u64::from(p.iface)
        ^ (p.l3 as u64) << 32
        ^ u64::from(p.proto.map_or(0x100, u16::from)) << 40
        ^ p.app.map_or(0, |a| a.as_ptr() as u64)
        ^ p.stack.bits().rotate_left(23);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - RECENT.trailing_zeros())) as usize
        & (RECENT - 1)
}

impl Shape {
    /// Whether `Shape::of(p) == *self`, without building `Shape::of(p)` (a packet's shape
    /// is some 250 bytes: building and comparing it cost more than the rest of the tally).
    fn matches(&self, p: &PacketObs<'_>) -> bool {
        if self.overflow
            || self.iface != p.iface
            || self.l3 != p.l3
            || self.proto != p.ip.map(|ip| ip.proto)
        {
            return false;
        }
        let app_same = match (self.app, p.app) {
            (None, None) => true,
            (Some(a), Some(b)) => same_str(a, b),
            _ => false,
        };
        if !app_same {
            return false;
        }
        // `Shape::of` pushes the application onto the packet's layers (`Layers::push`: into
        // the next free place, or marks the stack truncated when it is full).
        let mine = self.layers.as_slice();
        let theirs = p.layers.as_slice();
        let (len, truncated, extra) = match appended(p) {
            Some(a) if theirs.len() < crate::obs::MAX_LAYERS => {
                (theirs.len() + 1, p.layers.truncated(), Some(a))
            }
            Some(_) => (theirs.len(), true, None),
            None => (theirs.len(), p.layers.truncated(), None),
        };
        if mine.len() != len || self.layers.truncated() != truncated {
            return false;
        }
        let (head, tail) = mine.split_at(theirs.len().min(mine.len()));
        head.iter().zip(theirs).all(|(a, b)| same_str(a, b))
            && match (tail.first(), extra) {
                (None, None) => true,
                (Some(a), Some(b)) => same_str(a, b),
                _ => false,
            }
    }

    /// Whether `Shape::of_brief(p) == *self`, by `p`'s layer key.
    fn matches_brief(&self, p: &PacketBrief) -> bool {
        self.key == Some(p.stack)
            && !self.overflow
            && self.iface == p.iface
            && self.l3 == p.l3
            && self.proto == p.proto
            && match (self.app, p.app) {
                (None, None) => true,
                (Some(a), Some(b)) => same_str(a, b),
                _ => false,
            }
    }

    fn of(p: &PacketObs<'_>) -> Shape {
        Shape::build(
            p.iface,
            p.l3,
            p.ip.map(|ip| ip.proto),
            p.app,
            p.layers,
            None,
        )
    }

    fn of_brief(p: &PacketBrief) -> Shape {
        Shape::build(p.iface, p.l3, p.proto, p.app, p.layers(), Some(p.stack))
    }

    fn build(
        iface: u32,
        l3: L3Kind,
        proto: Option<u8>,
        app: Option<&'static str>,
        mut layers: Layers,
        key: Option<LayerKey>,
    ) -> Shape {
        if let Some(a) = app {
            if layers.as_slice().last() != Some(&a) {
                layers.push(a);
            }
        }
        Shape {
            iface,
            l3,
            proto,
            app,
            layers,
            overflow: false,
            key,
        }
    }

    /// The catch-all shape.
    fn catch_all() -> Shape {
        Shape {
            iface: crate::window::OVERFLOW_IFACE,
            l3: L3Kind::Other,
            proto: None,
            app: None,
            layers: Layers::new(),
            overflow: true,
            key: None,
        }
    }
}

/// Packets of one second, pre-aggregated by shape. See the [module documentation](self).
///
/// A tally keeps the shapes it has seen across [`PacketTally::reset`] (only their counts are
/// cleared), so a packet of a shape seen before finds it in a small cache without building it.
/// Adding a packet allocates only when a shape is seen for the first time since the tally was
/// created (a reset tally keeps its room). It holds at most [`MAX_SHAPES`] + 1 shapes.
#[derive(Clone, Debug)]
pub struct PacketTally {
    /// The second the packets count in (the aggregator's clock when they were seen).
    sec: i64,
    /// Latest packet timestamp, ns (`i64::MIN` when empty).
    max_ts: i64,
    packets: u64,
    bytes: u64,
    late: u64,
    /// The shapes seen since the tally was created (kept across resets), with their counts
    /// since the last reset (zero for a shape not seen since).
    shapes: Vec<(Shape, Counts)>,
    index: foldhash::HashMap<Shape, u32>,
    /// Positions in `shapes` of the shapes counted since the last reset, in order of first
    /// appearance (at most [`MAX_SHAPES`] + 1, the catch-all last).
    order: Vec<u32>,
    /// A direct-mapped cache in front of `index`, by [`fingerprint`]: position + 1 of
    /// the shape last seen with each fingerprint (0: none). A batch has a few dozen shapes,
    /// so most packets find theirs here with one comparison instead of a hash-map lookup.
    recent: [u32; RECENT],
}

/// Entries of [`PacketTally`]'s recent-shape cache (a power of two).
const RECENT: usize = 256;

impl Default for PacketTally {
    /// An empty tally for second 0 whose latest timestamp reads 0 (as the derived default
    /// did); [`PacketTally::new`] is what callers want.
    fn default() -> Self {
        PacketTally {
            max_ts: 0,
            ..PacketTally::new(0)
        }
    }
}

impl PacketTally {
    /// An empty tally for second `sec` (seconds since the Unix epoch, on the packets' clock).
    pub fn new(sec: i64) -> PacketTally {
        PacketTally {
            sec,
            max_ts: i64::MIN,
            packets: 0,
            bytes: 0,
            late: 0,
            shapes: Vec::new(),
            index: foldhash::HashMap::default(),
            order: Vec::new(),
            recent: [0; RECENT],
        }
    }

    /// Empties the tally and makes it count for second `sec` (keeps its room and the shapes
    /// it knows).
    pub fn reset(&mut self, sec: i64) {
        self.sec = sec;
        self.max_ts = i64::MIN;
        self.packets = 0;
        self.bytes = 0;
        self.late = 0;
        for &i in &self.order {
            if let Some((_, n)) = self.shapes.get_mut(i as usize) {
                *n = Counts::default();
            }
        }
        self.order.clear();
    }

    /// The second the packets count in.
    pub fn sec(&self) -> i64 {
        self.sec
    }

    /// Packets added.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Wire bytes added.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets whose own timestamp lies in an earlier second than [`PacketTally::sec`].
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Whether no packet was added.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// The latest packet timestamp (`None` when empty).
    pub fn max_ts(&self) -> Option<netmon_types::Timestamp> {
        (self.packets > 0).then_some(netmon_types::Timestamp(self.max_ts))
    }

    /// Distinct shapes counted since the last reset.
    pub fn shapes(&self) -> usize {
        self.order.len()
    }

    /// Counts one packet (its interface name is not kept: the merge takes names apart).
    /// Its ARP fields, if any, are not looked at (see [`crate::Stats::on_arp`]).
    pub fn add(&mut self, p: &PacketObs<'_>) {
        let c = self.count(p.ts, p.wire_len);
        let fp = fingerprint(p);
        if let Some(i) = self.recent_slot(fp) {
            if self.shapes.get(i).is_some_and(|(s, _)| s.matches(p)) && self.count_at(i, &c) {
                return;
            }
        }
        let i = self.slot_of(Shape::of(p));
        self.finish_add(i, fp, &c);
    }

    /// Counts one packet in brief, as [`PacketTally::add`] counts the [`PacketObs`] it
    /// abridges (with the same layers and application). Its ARP fields are not looked at.
    pub fn add_brief(&mut self, p: &PacketBrief) {
        let c = self.count(p.ts, p.wire_len);
        let fp = brief_fingerprint(p);
        if let Some(i) = self.recent_slot(fp) {
            if self.shapes.get(i).is_some_and(|(s, _)| s.matches_brief(p)) && self.count_at(i, &c) {
                return;
            }
        }
        let i = self.slot_of(Shape::of_brief(p));
        self.finish_add(i, fp, &c);
    }

    /// Adds a packet to the totals; what it adds to its shape.
    fn count(&mut self, ts: netmon_types::Timestamp, wire_len: u32) -> Counts {
        let len = u64::from(wire_len);
        self.packets += 1;
        self.bytes = self.bytes.saturating_add(len);
        if ts.secs() < self.sec {
            self.late += 1;
        }
        self.max_ts = self.max_ts.max(ts.0);
        Counts {
            packets: 1,
            bytes: len,
            new_flows: 0,
        }
    }

    /// The position the recent-shape cache holds for fingerprint `fp`, if any.
    fn recent_slot(&self, fp: usize) -> Option<usize> {
        self.recent
            .get(fp)
            .and_then(|&r| (r as usize).checked_sub(1))
    }

    /// Adds `c` to the shape at position `i`. A shape's first packet since the reset puts it
    /// in `order` — unless the tally already counts [`MAX_SHAPES`] shapes (then nothing is
    /// counted and `false` returned: the packet belongs to the catch-all).
    fn count_at(&mut self, i: usize, c: &Counts) -> bool {
        let full = self.order.len() >= MAX_SHAPES;
        let Some((s, n)) = self.shapes.get_mut(i) else {
            return false;
        };
        if n.packets == 0 {
            if full && !s.overflow {
                return false;
            }
            // Positions stay below MAX_SHAPES + 1.
            self.order.push(i as u32);
        }
        n.add(c);
        true
    }

    /// Counts `c` at position `i` (or, when the tally is full, at the catch-all), and
    /// remembers the position for fingerprint `fp`.
    fn finish_add(&mut self, i: usize, fp: usize, c: &Counts) {
        let i = if self.count_at(i, c) {
            i
        } else {
            let j = self.catch_all();
            self.count_at(j, c);
            j
        };
        if let Some(r) = self.recent.get_mut(fp) {
            *r = i as u32 + 1;
        }
    }

    /// The position of `shape`, added if new (the catch-all's when the tally counts
    /// [`MAX_SHAPES`] shapes already).
    fn slot_of(&mut self, shape: Shape) -> usize {
        if let Some(&i) = self.index.get(&shape) {
            if let (Some(k), Some((s, _))) = (shape.key, self.shapes.get_mut(i as usize)) {
                s.key = Some(k);
            }
            return i as usize;
        }
        if self.order.len() >= MAX_SHAPES {
            return self.catch_all();
        }
        self.push_shape(shape)
    }

    /// The catch-all shape's position (added if new).
    fn catch_all(&mut self) -> usize {
        let s = Shape::catch_all();
        match self.index.get(&s) {
            Some(&i) => i as usize,
            None => self.push_shape(s),
        }
    }

    /// Adds a new shape; when the tally holds [`MAX_SHAPES`] + 1 shapes already, it first
    /// forgets those not counted since the last reset.
    fn push_shape(&mut self, shape: Shape) -> usize {
        if self.shapes.len() > MAX_SHAPES {
            self.forget_uncounted();
        }
        let i = self.shapes.len();
        self.shapes.push((shape, Counts::default()));
        self.index.insert(shape, i as u32);
        i
    }

    /// Keeps only the shapes counted since the last reset, in their order. Rare: only a
    /// tally that met more than [`MAX_SHAPES`] shapes across its resets gets here.
    fn forget_uncounted(&mut self) {
        let old = core::mem::take(&mut self.shapes);
        self.shapes.reserve_exact(MAX_SHAPES + 1);
        self.index.clear();
        self.recent = [0; RECENT];
        for k in self.order.iter_mut() {
            if let Some(&e) = old.get(*k as usize) {
                *k = self.shapes.len() as u32;
                self.index.insert(e.0, *k);
                self.shapes.push(e);
            }
        }
    }

    /// The shapes counted since the last reset and their counts, in order of first
    /// appearance.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Shape, Counts)> {
        self.order
            .iter()
            .filter_map(|&i| self.shapes.get(i as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::IpObs;
    use crate::obs::PacketBrief;
    use core::net::{IpAddr, Ipv4Addr};
    use netmon_types::Timestamp;

    fn pkt(
        sec: i64,
        len: u32,
        layers: &[&'static str],
        app: Option<&'static str>,
    ) -> PacketObs<'static> {
        let mut p = PacketObs::new(Timestamp::from_secs_nanos(sec, 5), 0, len);
        p.layers = Layers::from_names(layers);
        p.l3 = L3Kind::Ipv4;
        p.ip = Some(IpObs {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            proto: 6,
        });
        p.app = app;
        p
    }

    /// The fast path (`matches`, `fingerprint`) agrees with building and comparing shapes, on
    /// every pair of a set of packets that differ in each field the shape takes, including
    /// full and truncated layer stacks and an application equal to the last layer or empty.
    #[test]
    fn match_without_building_agrees_with_shape_equality() {
        let twelve = ["eth", "vlan", "vlan", "vlan", "vlan", "vlan"];
        let full: Vec<&'static str> = twelve.iter().chain(&twelve).copied().collect();
        let stacks: [&[&'static str]; 5] = [
            &[],
            &["eth", "ipv4", "tcp"],
            &["eth", "ipv4", "tcp", "tls"],
            &full,
            &["eth", "ipv4", "udp"],
        ];
        let apps = [None, Some("tls"), Some("dns"), Some("")];
        let mut all = Vec::new();
        for layers in stacks {
            for app in apps {
                let p = pkt(10, 1, layers, app);
                all.push(p);
                let mut q = p;
                q.layers.push("extra-past-the-end");
                all.push(q);
                let mut other = p;
                other.iface = 2;
                all.push(other);
                let mut v6 = p;
                v6.l3 = L3Kind::Ipv6;
                all.push(v6);
                let mut udp = p;
                udp.ip = udp.ip.map(|ip| IpObs { proto: 17, ..ip });
                all.push(udp);
                let mut no_ip = p;
                no_ip.ip = None;
                all.push(no_ip);
            }
        }
        for a in &all {
            let sa = Shape::of(a);
            for b in &all {
                let sb = Shape::of(b);
                assert_eq!(sa.matches(b), sa == sb, "{sa:?} vs {b:?}");
                if sa == sb {
                    assert_eq!(fingerprint(a), fingerprint(b));
                }
            }
        }
        let mut catch_all = Shape::of(&pkt(10, 1, &[], None));
        catch_all.overflow = true;
        assert!(all.iter().all(|p| !catch_all.matches(p)));
    }

    #[test]
    fn groups_by_shape_in_first_seen_order() {
        let mut t = PacketTally::new(10);
        let tcp = ["eth", "ipv4", "tcp"];
        t.add(&pkt(10, 100, &tcp, Some("tls")));
        t.add(&pkt(10, 60, &tcp, None));
        t.add(&pkt(9, 40, &tcp, Some("tls")));
        t.add(&pkt(10, 1, &tcp, None));
        assert_eq!((t.packets(), t.bytes(), t.late()), (4, 201, 1));
        assert_eq!(t.shapes(), 2);
        let v: Vec<_> = t
            .iter()
            .map(|(s, c)| (s.layers.len(), c.packets, c.bytes))
            .collect();
        assert_eq!(v, vec![(4, 2, 140), (3, 2, 61)]);
        assert_eq!(t.max_ts(), Some(Timestamp::from_secs_nanos(10, 5)));
        t.reset(11);
        assert!(t.is_empty());
        assert_eq!((t.sec(), t.shapes(), t.max_ts()), (11, 0, None));
    }

    /// What a tally hands to the merge: its totals and its shapes (layers, keys, counts) in
    /// order.
    type Seen = (
        (u64, u64, u64, i64),
        Vec<(
            u32,
            L3Kind,
            Option<u8>,
            Option<&'static str>,
            Layers,
            bool,
            u64,
            u64,
        )>,
    );
    fn seen(t: &PacketTally) -> Seen {
        (
            (t.packets(), t.bytes(), t.late(), t.sec()),
            t.iter()
                .map(|(s, c)| {
                    (
                        s.iface, s.l3, s.proto, s.app, s.layers, s.overflow, c.packets, c.bytes,
                    )
                })
                .collect(),
        )
    }

    /// A tally kept across resets (its shapes remembered) counts each batch as a new tally
    /// would, whether packets come in brief or in full: same totals, same shapes in the same
    /// order, the catch-all taking the same packets — over batches that reorder, drop and add
    /// shapes, and batches of more than [`MAX_SHAPES`] shapes (which make the kept tally
    /// forget shapes).
    #[test]
    fn kept_shapes_count_as_a_new_tally() {
        use netmon_packet::{LinkType, Packet};
        let mut frames = Vec::new();
        for (i, proto) in [6u8, 17, 1].into_iter().enumerate() {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let mut f = Vec::new();
            match (i, proto) {
                (_, 6) => b
                    .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .tcp(1, 2, 3, 4)
                    .write(&mut f, b"x"),
                (_, 17) => b.ipv6([1; 16], [2; 16], 64).udp(1, 2).write(&mut f, b"x"),
                _ => b
                    .single_vlan(etherparse::VlanId::try_new(7).unwrap())
                    .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .icmpv4_echo_request(1, 2)
                    .write(&mut f, b"x"),
            }
            .unwrap();
            frames.push(f);
        }
        frames.push(vec![0xff; 14]);
        let apps = [None, Some("tls"), Some("dns"), Some("tcp")];
        // A small deterministic generator (xorshift).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut kept = PacketTally::new(0);
        let mut kept_brief = PacketTally::new(0);
        for batch in 0..40i64 {
            kept.reset(batch);
            kept_brief.reset(batch);
            let mut fresh = PacketTally::new(batch);
            // Some batches meet many interfaces: more shapes than a tally holds.
            let (ifaces, packets) = match batch % 8 {
                3 => (MAX_SHAPES as u64 + 300, 9_000),
                5 => (MAX_SHAPES as u64 / 2, 5_000),
                _ => (4 + batch as u64 % 5, 300),
            };
            for _ in 0..packets {
                let f = frames.get(next(frames.len() as u64) as usize).unwrap();
                let p = Packet::parse(LinkType::ETHERNET, f);
                let iface = next(ifaces) as u32;
                let ts = Timestamp::from_secs_nanos(batch - next(2) as i64, 1);
                let app = apps
                    .get(next(apps.len() as u64) as usize)
                    .copied()
                    .flatten();
                let mut o = PacketObs::from_packet(ts, iface, None, &p);
                o.app = app;
                let mut b = PacketBrief::from_packet(ts, iface, &p);
                b.app = app;
                fresh.add(&o);
                kept.add(&o);
                kept_brief.add_brief(&b);
            }
            let want = seen(&fresh);
            assert_eq!(seen(&kept), want, "batch {batch}");
            assert_eq!(seen(&kept_brief), want, "batch {batch} in brief");
            assert!(kept.shapes.len() <= MAX_SHAPES + 1);
            assert!(kept_brief.shapes.len() <= MAX_SHAPES + 1);
        }
    }

    #[test]
    fn bounded_shapes() {
        let mut t = PacketTally::new(0);
        // Distinct interfaces make distinct shapes.
        for i in 0..(MAX_SHAPES as u32 + 100) {
            let mut p = pkt(0, 10, &["eth"], None);
            p.iface = i;
            t.add(&p);
        }
        assert_eq!(t.shapes(), MAX_SHAPES + 1);
        assert_eq!(t.packets(), MAX_SHAPES as u64 + 100);
        assert!(t.iter().any(|(s, _)| s.overflow));
    }
}
