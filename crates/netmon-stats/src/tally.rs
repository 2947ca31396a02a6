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

use crate::obs::{L3Kind, Layers, PacketObs};
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

impl Shape {
    fn of(p: &PacketObs<'_>) -> Shape {
        let mut layers = p.layers;
        if let Some(a) = p.app {
            if layers.as_slice().last() != Some(&a) {
                layers.push(a);
            }
        }
        Shape {
            iface: p.iface,
            l3: p.l3,
            proto: p.ip.map(|ip| ip.proto),
            app: p.app,
            layers,
            overflow: false,
        }
    }
}

/// Packets of one second, pre-aggregated by shape. See the [module documentation](self).
///
/// Adding a packet allocates only when a shape is seen for the first time since the tally was
/// created (a cleared tally keeps its room).
#[derive(Clone, Debug, Default)]
pub struct PacketTally {
    /// The second the packets count in (the aggregator's clock when they were seen).
    sec: i64,
    /// Latest packet timestamp, ns (`i64::MIN` when empty).
    max_ts: i64,
    packets: u64,
    bytes: u64,
    late: u64,
    shapes: Vec<(Shape, Counts)>,
    index: foldhash::HashMap<Shape, u32>,
    /// Position of the last shape hit (consecutive packets often share one).
    last: Option<usize>,
}

impl PacketTally {
    /// An empty tally for second `sec` (seconds since the Unix epoch, on the packets' clock).
    pub fn new(sec: i64) -> PacketTally {
        PacketTally {
            sec,
            max_ts: i64::MIN,
            ..PacketTally::default()
        }
    }

    /// Empties the tally and makes it count for second `sec` (keeps its room).
    pub fn reset(&mut self, sec: i64) {
        self.sec = sec;
        self.max_ts = i64::MIN;
        self.packets = 0;
        self.bytes = 0;
        self.late = 0;
        self.shapes.clear();
        self.index.clear();
        self.last = None;
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

    /// Distinct shapes held.
    pub fn shapes(&self) -> usize {
        self.shapes.len()
    }

    /// Counts one packet (its interface name is not kept: the merge takes names apart).
    /// Its ARP fields, if any, are not looked at (see [`crate::Stats::on_arp`]).
    pub fn add(&mut self, p: &PacketObs<'_>) {
        let len = u64::from(p.wire_len);
        self.packets += 1;
        self.bytes = self.bytes.saturating_add(len);
        if p.ts.secs() < self.sec {
            self.late += 1;
        }
        self.max_ts = self.max_ts.max(p.ts.0);
        let shape = Shape::of(p);
        let c = Counts {
            packets: 1,
            bytes: len,
            new_flows: 0,
        };
        if let Some(i) = self.last {
            if let Some((s, n)) = self.shapes.get_mut(i) {
                if *s == shape {
                    n.add(&c);
                    return;
                }
            }
        }
        let i = match self.index.get(&shape) {
            Some(&i) => i as usize,
            None if self.shapes.len() < MAX_SHAPES => {
                let i = self.shapes.len();
                self.shapes.push((shape, Counts::default()));
                self.index.insert(shape, i as u32);
                i
            }
            None => {
                let catch_all = Shape {
                    iface: crate::window::OVERFLOW_IFACE,
                    l3: L3Kind::Other,
                    proto: None,
                    app: None,
                    layers: Layers::new(),
                    overflow: true,
                };
                match self.index.get(&catch_all) {
                    Some(&i) => i as usize,
                    None => {
                        let i = self.shapes.len();
                        self.shapes.push((catch_all, Counts::default()));
                        self.index.insert(catch_all, i as u32);
                        i
                    }
                }
            }
        };
        if let Some((_, n)) = self.shapes.get_mut(i) {
            n.add(&c);
        }
        self.last = Some(i);
    }

    /// The shapes and their counts, in order of first appearance.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Shape, Counts)> {
        self.shapes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::IpObs;
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
