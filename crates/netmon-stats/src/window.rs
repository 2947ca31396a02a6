//! Rolling windows: per interface and protocol key, one bucket per second of the packets'
//! clock in a ring as long as the longest window.
//!
//! Each bucket counts packets, wire bytes and new flows; the number of active flows is a gauge
//! (flows started minus flows ended). A window of `W` seconds ending at second `s` sums the
//! buckets `s-W+1 ..= s`; rates divide by the seconds the window covers (`W`, or fewer right
//! after the first packet).

use core::fmt;
use std::collections::HashMap;

use foldhash::fast::FixedState;
use serde::Serialize;

use crate::obs::{L3Kind, l4_name};

/// What a row of window metrics counts: everything on an interface, or one protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtoKey {
    /// Every packet / flow of the interface.
    All,
    /// A network layer.
    L3(L3Kind),
    /// An IP protocol number.
    L4(u8),
    /// An application protocol (from the classifier).
    App(&'static str),
    /// Keys beyond the per-interface cap share this row.
    Overflow,
}

impl ProtoKey {
    /// `"all"`, `"l3"`, `"l4"`, `"app"` or `"overflow"`.
    pub const fn layer(&self) -> &'static str {
        match self {
            ProtoKey::All => "all",
            ProtoKey::L3(_) => "l3",
            ProtoKey::L4(_) => "l4",
            ProtoKey::App(_) => "app",
            ProtoKey::Overflow => "overflow",
        }
    }
}

/// `all`, `ipv4`, `tcp` (`ip-253` for unnamed protocol numbers), the app name, `overflow`.
impl fmt::Display for ProtoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoKey::All => f.write_str("all"),
            ProtoKey::L3(k) => f.write_str(k.name()),
            ProtoKey::L4(n) => match l4_name(*n) {
                Some(s) => f.write_str(s),
                None => write!(f, "ip-{n}"),
            },
            ProtoKey::App(a) => f.write_str(a),
            ProtoKey::Overflow => f.write_str("overflow"),
        }
    }
}

/// Counts of one window (or one bucket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Packets.
    pub packets: u64,
    /// Wire bytes.
    pub bytes: u64,
    /// Flows started.
    pub new_flows: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, o: &Counts) {
        self.packets = self.packets.saturating_add(o.packets);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.new_flows = self.new_flows.saturating_add(o.new_flows);
    }
}

/// A metric of a window, as threshold rules name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Packets per second.
    Pps,
    /// Bits per second (wire bytes × 8).
    Bps,
    /// Flows started per second.
    NewFlows,
    /// Active flows (gauge at the window's end).
    ActiveFlows,
}

impl Metric {
    /// The rule-syntax name: `pps`, `bps`, `new_flows`, `active_flows`.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Pps => "pps",
            Metric::Bps => "bps",
            Metric::NewFlows => "new_flows",
            Metric::ActiveFlows => "active_flows",
        }
    }
}

/// Metric values of one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct WindowValues {
    /// Window length in seconds.
    pub window_secs: u32,
    /// Seconds of the window that lie after the first packet (rates divide by this).
    pub covered_secs: u32,
    /// Packets in the window.
    pub packets: u64,
    /// Wire bytes in the window.
    pub bytes: u64,
    /// Flows started in the window.
    pub new_flows: u64,
    /// Packets per second.
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
    /// New flows per second.
    pub new_flows_per_s: f64,
    /// Active flows at the window's end.
    pub active_flows: u64,
}

impl WindowValues {
    pub(crate) fn new(window_secs: u32, covered_secs: u32, c: Counts, active: u64) -> Self {
        let d = f64::from(covered_secs.max(1));
        WindowValues {
            window_secs,
            covered_secs,
            packets: c.packets,
            bytes: c.bytes,
            new_flows: c.new_flows,
            pps: c.packets as f64 / d,
            bps: c.bytes as f64 * 8.0 / d,
            new_flows_per_s: c.new_flows as f64 / d,
            active_flows: active,
        }
    }

    /// The value of a metric.
    pub fn get(&self, m: Metric) -> f64 {
        match m {
            Metric::Pps => self.pps,
            Metric::Bps => self.bps,
            Metric::NewFlows => self.new_flows_per_s,
            Metric::ActiveFlows => self.active_flows as f64,
        }
    }
}

/// One protocol key's ring of per-second buckets.
#[derive(Clone, Debug)]
pub(crate) struct KeyRing {
    pub(crate) key: ProtoKey,
    ring: Vec<Counts>,
    /// Flows started minus ended (never below zero).
    pub(crate) active: u64,
    /// Totals since the start.
    pub(crate) total: Counts,
    /// Activity in the current open second or any bucket in the ring.
    pub(crate) last_active_sec: i64,
}

impl KeyRing {
    fn new(key: ProtoKey, len: usize) -> KeyRing {
        KeyRing {
            key,
            ring: vec![Counts::default(); len],
            active: 0,
            total: Counts::default(),
            last_active_sec: i64::MIN,
        }
    }

    fn slot(&mut self, sec: i64) -> Option<&mut Counts> {
        let len = i64::try_from(self.ring.len()).ok()?;
        let i = usize::try_from(sec.rem_euclid(len)).ok()?;
        self.ring.get_mut(i)
    }

    /// Sum of the `w` buckets ending at `end`.
    ///
    /// Walks back from `end`'s bucket with a wrap instead of a remainder per bucket: a
    /// snapshot sums every key over every window each second, and the divisions were half
    /// of its cost. (Saturating sums of counts do not depend on the order.)
    pub(crate) fn sum(&self, end: i64, w: u32) -> Counts {
        let mut c = Counts::default();
        let len = self.ring.len();
        let (Ok(ilen), Some(last)) = (i64::try_from(len), len.checked_sub(1)) else {
            return c;
        };
        let w = usize::try_from(w).unwrap_or(usize::MAX).min(len);
        let mut i = usize::try_from(end.rem_euclid(ilen)).unwrap_or(0);
        for _ in 0..w {
            if let Some(b) = self.ring.get(i) {
                c.add(b);
            }
            i = i.checked_sub(1).unwrap_or(last);
        }
        c
    }
}

/// One interface's keys.
#[derive(Clone, Debug)]
pub(crate) struct IfaceRings {
    pub(crate) index: u32,
    pub(crate) name: Option<String>,
    pub(crate) keys: Vec<KeyRing>,
    lookup: HashMap<ProtoKey, usize, FixedState>,
    /// Position in `keys` of `All`, each `L3` and each `L4` key, by [`direct_slot`]
    /// ([`NO_KEY`]: not there yet): the keys every packet shape and flow event counts under,
    /// found without hashing.
    direct: Box<[u32; DIRECT_SLOTS]>,
}

/// `All`, four `L3` kinds, 256 `L4` protocols.
const DIRECT_SLOTS: usize = 1 + 4 + 256;

/// An empty [`IfaceRings::direct`] slot.
const NO_KEY: u32 = u32::MAX;

/// The slot of a key in [`IfaceRings::direct`] (`None`: application and overflow keys).
fn direct_slot(key: ProtoKey) -> Option<usize> {
    match key {
        ProtoKey::All => Some(0),
        ProtoKey::L3(k) => Some(
            1 + match k {
                L3Kind::Ipv4 => 0,
                L3Kind::Ipv6 => 1,
                L3Kind::Arp => 2,
                L3Kind::Other => 3,
            },
        ),
        ProtoKey::L4(n) => Some(5 + usize::from(n)),
        ProtoKey::App(_) | ProtoKey::Overflow => None,
    }
}

/// Index of the interface row for interfaces beyond the cap.
pub(crate) const OVERFLOW_IFACE: u32 = u32::MAX;

/// All interfaces' rings and the clock that closes their buckets.
#[derive(Clone, Debug)]
pub(crate) struct Rings {
    ring_len: usize,
    max_ifaces: usize,
    max_keys: usize,
    pub(crate) ifaces: Vec<IfaceRings>,
    /// Observations that went to the overflow key because an interface had `max_keys` keys.
    pub(crate) key_overflows: u64,
    /// Observations that went to the overflow interface.
    pub(crate) iface_overflows: u64,
    last_iface: Option<(u32, usize)>,
    /// Tests only: find every key by hashing (the reference for the direct slots).
    #[cfg(test)]
    pub(crate) hash_only: bool,
}

impl Rings {
    pub(crate) fn new(ring_len: usize, max_ifaces: usize, max_keys: usize) -> Rings {
        Rings {
            ring_len: ring_len.max(1),
            max_ifaces: max_ifaces.max(1),
            max_keys: max_keys.max(2),
            ifaces: Vec::new(),
            key_overflows: 0,
            iface_overflows: 0,
            last_iface: None,
            #[cfg(test)]
            hash_only: false,
        }
    }

    pub(crate) fn ring_len(&self) -> usize {
        self.ring_len
    }

    fn iface(&mut self, index: u32, name: Option<&str>) -> usize {
        if let Some((i, pos)) = self.last_iface {
            if i == index
                && name.is_none_or(|_| self.ifaces.get(pos).is_some_and(|f| f.name.is_some()))
            {
                return pos;
            }
        }
        let pos = match self.ifaces.iter().position(|f| f.index == index) {
            Some(p) => p,
            None if self.ifaces.len() < self.max_ifaces || index == OVERFLOW_IFACE => {
                self.ifaces.push(IfaceRings {
                    index,
                    name: None,
                    keys: Vec::new(),
                    lookup: HashMap::with_hasher(FixedState::default()),
                    direct: Box::new([NO_KEY; DIRECT_SLOTS]),
                });
                self.ifaces.len() - 1
            }
            None => {
                self.iface_overflows += 1;
                return self.iface(OVERFLOW_IFACE, Some("overflow"));
            }
        };
        if let (Some(f), Some(n)) = (self.ifaces.get_mut(pos), name) {
            if f.name.is_none() {
                f.name = Some(n.chars().take(64).collect());
            }
        }
        self.last_iface = Some((index, pos));
        pos
    }

    fn key(&mut self, iface: usize, key: ProtoKey) -> Option<&mut KeyRing> {
        let ring_len = self.ring_len;
        let max_keys = self.max_keys;
        let f = self.ifaces.get_mut(iface)?;
        let direct = direct_slot(key);
        #[cfg(test)]
        let direct = direct.filter(|_| !self.hash_only);
        if let Some(&p) = direct.and_then(|d| f.direct.get(d)) {
            if p != NO_KEY {
                return f.keys.get_mut(p as usize);
            }
        }
        let pos = match f.lookup.get(&key) {
            Some(&p) => p,
            None => {
                let key = if f.keys.len() < max_keys {
                    key
                } else {
                    self.key_overflows += 1;
                    ProtoKey::Overflow
                };
                match f.lookup.get(&key) {
                    Some(&p) => p,
                    None => {
                        f.keys.push(KeyRing::new(key, ring_len));
                        f.lookup.insert(key, f.keys.len() - 1);
                        f.keys.len() - 1
                    }
                }
            }
        };
        // Only a key's own row is remembered (a key sent to the overflow row asks again, and
        // is counted again, every time).
        if let (Some(d), Some(k)) = (direct, f.keys.get(pos)) {
            if direct_slot(k.key) == Some(d) {
                if let Some(slot) = f.direct.get_mut(d) {
                    *slot = u32::try_from(pos).unwrap_or(NO_KEY);
                }
            }
        }
        f.keys.get_mut(pos)
    }

    /// Makes sure interface `index` has a row, named `name` unless it has a name already.
    pub(crate) fn note_iface(&mut self, index: u32, name: Option<&str>) {
        self.iface(index, name);
    }

    /// Adds `c` to the bucket of `sec` for each key.
    pub(crate) fn count(
        &mut self,
        sec: i64,
        iface: u32,
        name: Option<&str>,
        keys: &[ProtoKey],
        c: Counts,
    ) {
        let f = self.iface(iface, name);
        for &k in keys {
            if let Some(r) = self.key(f, k) {
                if let Some(b) = r.slot(sec) {
                    b.add(&c);
                }
                r.total.add(&c);
                r.last_active_sec = sec;
            }
        }
    }

    /// [`Rings::count`] then [`Rings::gauge`] `up` for the same keys (a flow's start), with
    /// one lookup per key: the same rows, totals and overflow counts as the two calls.
    pub(crate) fn count_and_raise(&mut self, sec: i64, iface: u32, keys: &[ProtoKey], c: Counts) {
        let before = self.iface_overflows;
        let f = self.iface(iface, None);
        // The two calls would each have sent the interface to the overflow row.
        self.iface_overflows += self.iface_overflows - before;
        for &k in keys {
            let overflows = self.key_overflows;
            if let Some(r) = self.key(f, k) {
                if let Some(b) = r.slot(sec) {
                    b.add(&c);
                }
                r.total.add(&c);
                r.last_active_sec = sec;
                r.active = r.active.saturating_add(1);
            }
            // The two calls would each have found the key's row full.
            if self.key_overflows != overflows {
                self.key_overflows += 1;
            }
        }
    }

    /// Changes the active-flow gauge of each key by +1 (`up`) or -1.
    pub(crate) fn gauge(&mut self, sec: i64, iface: u32, keys: &[ProtoKey], up: bool) {
        let f = self.iface(iface, None);
        for &k in keys {
            if let Some(r) = self.key(f, k) {
                r.active = if up {
                    r.active.saturating_add(1)
                } else {
                    r.active.saturating_sub(1)
                };
                r.last_active_sec = r.last_active_sec.max(sec);
            }
        }
    }

    /// Clears the bucket of `sec` in every ring (before the second is first used).
    pub(crate) fn clear(&mut self, sec: i64) {
        for f in &mut self.ifaces {
            for k in &mut f.keys {
                if let Some(b) = k.slot(sec) {
                    *b = Counts::default();
                }
            }
        }
    }

    /// Clears every bucket (after an idle gap longer than the ring).
    pub(crate) fn clear_all(&mut self) {
        for f in &mut self.ifaces {
            for k in &mut f.keys {
                k.ring.iter_mut().for_each(|b| *b = Counts::default());
            }
        }
    }

    /// The counts of `w` seconds ending at `end` and the active gauge for a key on one
    /// interface (`iface = None`: summed over interfaces). Keys are matched with `pred`.
    pub(crate) fn select(
        &self,
        end: i64,
        w: u32,
        iface: Option<&str>,
        pred: impl Fn(&ProtoKey) -> bool,
    ) -> (Counts, u64) {
        let mut c = Counts::default();
        let mut active = 0u64;
        for f in &self.ifaces {
            if let Some(n) = iface {
                if !iface_matches(f, n) {
                    continue;
                }
            }
            for k in f.keys.iter().filter(|k| pred(&k.key)) {
                c.add(&k.sum(end, w));
                active = active.saturating_add(k.active);
            }
        }
        (c, active)
    }
}

/// Whether a rule's interface name selects `f`: its name, or `if<index>`.
fn iface_matches(f: &IfaceRings, n: &str) -> bool {
    f.name.as_deref() == Some(n)
        || n.strip_prefix("if")
            .and_then(|d| d.parse::<u32>().ok())
            .is_some_and(|i| i == f.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(p: u64, b: u64) -> Counts {
        Counts {
            packets: p,
            bytes: b,
            new_flows: 0,
        }
    }

    proptest::proptest! {
        /// The walk back from `end` sums the same buckets as one remainder per second.
        #[test]
        fn a_window_sum_is_the_sum_of_its_seconds(
            len in 1usize..70,
            end in -200i64..200,
            w in 0u32..100,
            vals in proptest::collection::vec(0u64..1_000, 70),
        ) {
            let mut k = KeyRing::new(ProtoKey::All, len);
            for (i, v) in vals.iter().take(len).enumerate() {
                if let Some(b) = k.ring.get_mut(i) {
                    *b = Counts { packets: *v, bytes: v * 3, new_flows: v % 7 };
                }
            }
            let mut want = Counts::default();
            let ilen = len as i64;
            for sec in (end - i64::from(w).min(ilen) + 1)..=end {
                want.add(&k.ring[sec.rem_euclid(ilen) as usize]);
            }
            proptest::prop_assert_eq!(k.sum(end, w), want);
        }
    }

    #[test]
    fn sums_over_the_ring() {
        let mut r = Rings::new(10, 4, 8);
        for s in 0..10 {
            r.count(s, 0, Some("eth0"), &[ProtoKey::All], pk(1, 100));
        }
        let (c, _) = r.select(9, 10, Some("eth0"), |k| *k == ProtoKey::All);
        assert_eq!(c, pk(10, 1000));
        let (c, _) = r.select(9, 3, None, |k| *k == ProtoKey::All);
        assert_eq!(c, pk(3, 300));
        // Second 10 reuses the slot of second 0 once cleared.
        r.clear(10);
        let (c, _) = r.select(10, 10, None, |k| *k == ProtoKey::All);
        assert_eq!(c, pk(9, 900));
        // A window longer than the ring is cut to the ring.
        let (c, _) = r.select(10, 100, None, |k| *k == ProtoKey::All);
        assert_eq!(c, pk(9, 900));
        assert_eq!(r.select(10, 1, Some("eth9"), |_| true).0, Counts::default());
        assert_eq!(r.select(9, 1, Some("if0"), |_| true).0, pk(1, 100));
    }

    #[test]
    fn key_and_iface_caps() {
        let mut r = Rings::new(4, 2, 3);
        for n in 0..10u8 {
            r.count(0, 0, None, &[ProtoKey::L4(n)], pk(1, 1));
        }
        // 3 real keys, then the overflow row.
        assert_eq!(r.ifaces[0].keys.len(), 4);
        assert_eq!(r.key_overflows, 7);
        let (c, _) = r.select(0, 1, None, |k| *k == ProtoKey::Overflow);
        assert_eq!(c.packets, 7);
        for i in 0..5 {
            r.count(0, i, None, &[ProtoKey::All], pk(1, 1));
        }
        assert_eq!(r.ifaces.len(), 3);
        assert_eq!(r.iface_overflows, 3);
        assert_eq!(r.ifaces[2].name.as_deref(), Some("overflow"));
    }

    #[test]
    fn gauge_never_negative() {
        let mut r = Rings::new(4, 2, 8);
        r.gauge(0, 0, &[ProtoKey::All], false);
        r.gauge(0, 0, &[ProtoKey::All], true);
        assert_eq!(r.select(0, 1, None, |_| true).1, 1);
    }

    /// Everything a reader of the rings can see.
    fn state(r: &Rings) -> String {
        format!(
            "{:?} {} {}",
            r.ifaces
                .iter()
                .map(|f| (f.index, &f.name, &f.keys))
                .collect::<Vec<_>>(),
            r.key_overflows,
            r.iface_overflows
        )
    }

    proptest::proptest! {
        /// The direct slots find the rows hashing finds (overflow rows and counts included),
        /// and `count_and_raise` does what `count` then `gauge` do.
        #[test]
        fn direct_slots_and_merged_calls_change_nothing(
            max_keys in 2usize..8,
            ops in proptest::collection::vec((0u8..4, 0u32..3, 0u8..12, 0i64..12), 1..200),
        ) {
            let mut fast = Rings::new(5, 2, max_keys);
            let mut slow = Rings::new(5, 2, max_keys);
            slow.hash_only = true;
            for (kind, iface, n, sec) in ops {
                let keys = [
                    ProtoKey::All,
                    ProtoKey::L3([L3Kind::Ipv4, L3Kind::Ipv6, L3Kind::Arp, L3Kind::Other][usize::from(n % 4)]),
                    ProtoKey::L4(n.wrapping_mul(37)),
                    ProtoKey::App(["tls", "dns", "http"][usize::from(n % 3)]),
                ];
                let keys = &keys[usize::from(n % 3)..];
                let c = pk(u64::from(n), 60);
                match kind {
                    0 => {
                        fast.count_and_raise(sec, iface, keys, c);
                        slow.count(sec, iface, None, keys, c);
                        slow.gauge(sec, iface, keys, true);
                    }
                    1 => {
                        fast.count(sec, iface, Some("eth0"), keys, c);
                        slow.count(sec, iface, Some("eth0"), keys, c);
                    }
                    2 => {
                        fast.gauge(sec, iface, keys, n % 2 == 0);
                        slow.gauge(sec, iface, keys, n % 2 == 0);
                    }
                    _ => {
                        fast.clear(sec);
                        slow.clear(sec);
                    }
                }
                proptest::prop_assert_eq!(state(&fast), state(&slow));
            }
        }
    }

    #[test]
    fn key_names() {
        assert_eq!(ProtoKey::L4(6).to_string(), "tcp");
        assert_eq!(ProtoKey::L4(253).to_string(), "ip-253");
        assert_eq!(ProtoKey::L3(L3Kind::Arp).to_string(), "arp");
        assert_eq!(ProtoKey::App("tls").layer(), "app");
    }
}
