//! Bounded bookkeeping for IP fragments: which ports a fragmented datagram's flow has, so that
//! non-first fragments (which carry no transport header) count towards the right flow — also
//! when they arrive before the first fragment.

use std::collections::VecDeque;

use hashbrown::HashMap;
use netmon_types::Timestamp;

use crate::key::VlanKey;

/// Identifies one fragmented datagram: (interface, VLANs, src, dst, protocol, IP id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
    pub(crate) id: u32,
    pub(crate) proto: u8,
    pub(crate) v6: bool,
    pub(crate) iface: u16,
    pub(crate) vlan: VlanKey,
}

/// Counters of fragments seen before their datagram's ports were known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) payload: u64,
    pub(crate) first: Timestamp,
    pub(crate) last: Timestamp,
}

impl Pending {
    pub(crate) fn add(&mut self, ts: Timestamp, bytes: u64, payload: u64) {
        if self.packets == 0 || ts < self.first {
            self.first = ts;
        }
        if self.packets == 0 || ts > self.last {
            self.last = ts;
        }
        self.packets += 1;
        self.bytes += bytes;
        self.payload += payload;
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FragEntry {
    /// Ports from the first fragment, once seen (`Some(None)`: the first fragment had no
    /// transport header with ports).
    pub(crate) ports: Option<Option<(u16, u16)>>,
    pub(crate) pending: Pending,
    /// Generation: an entry replaced under the same key must not be expired by the old
    /// queue item.
    generation: u64,
}

/// What to do with a fragment.
pub(crate) enum FragVerdict {
    /// Count it to the flow with these ports (`None`: a protocol without ports).
    Ports(Option<(u16, u16)>),
    /// The first fragment has not been seen yet: it was added to the pending counters.
    Pending,
}

/// The map plus an expiry queue in creation order.
pub(crate) struct FragMap {
    map: HashMap<FragKey, FragEntry, foldhash::fast::RandomState>,
    queue: VecDeque<(FragKey, i64, u64)>,
    cap: usize,
    timeout: i64,
    generation: u64,
    /// Entries dropped because the map was full.
    pub(crate) overflowed: u64,
}

/// An expired entry whose first fragment never came: its counters go to a port-less flow.
pub(crate) struct Orphan {
    pub(crate) key: FragKey,
    pub(crate) pending: Pending,
}

impl FragMap {
    pub(crate) fn new(cap: usize, timeout_ns: i64) -> FragMap {
        FragMap {
            map: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            queue: VecDeque::new(),
            cap: cap.max(1),
            timeout: timeout_ns,
            generation: 0,
            overflowed: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn entry(&mut self, k: FragKey, now: i64, orphans: &mut Vec<Orphan>) -> &mut FragEntry {
        if !self.map.contains_key(&k) {
            while self.map.len() >= self.cap {
                let before = self.map.len();
                if !self.pop_oldest(orphans) {
                    break;
                }
                if self.map.len() < before {
                    self.overflowed += 1;
                }
            }
            self.generation += 1;
            self.queue.push_back((k, now, self.generation));
        }
        let generation = self.generation;
        self.map.entry(k).or_insert(FragEntry {
            ports: None,
            pending: Pending::default(),
            generation,
        })
    }

    /// The first fragment (offset 0) of a datagram: remembers its ports and returns the
    /// counters of later fragments that arrived before it.
    pub(crate) fn first(
        &mut self,
        k: FragKey,
        ports: Option<(u16, u16)>,
        now: i64,
        orphans: &mut Vec<Orphan>,
    ) -> Pending {
        let e = self.entry(k, now, orphans);
        e.ports = Some(ports);
        core::mem::take(&mut e.pending)
    }

    /// A non-first fragment.
    pub(crate) fn later(
        &mut self,
        k: FragKey,
        ts: Timestamp,
        bytes: u64,
        payload: u64,
        now: i64,
        orphans: &mut Vec<Orphan>,
    ) -> FragVerdict {
        let e = self.entry(k, now, orphans);
        match e.ports {
            Some(p) => FragVerdict::Ports(p),
            None => {
                e.pending.add(ts, bytes, payload);
                FragVerdict::Pending
            }
        }
    }

    fn pop_oldest(&mut self, orphans: &mut Vec<Orphan>) -> bool {
        let Some((k, _, generation)) = self.queue.pop_front() else {
            return false;
        };
        if self.map.get(&k).is_some_and(|e| e.generation == generation) {
            if let Some(e) = self.map.remove(&k) {
                if e.ports.is_none() && e.pending.packets > 0 {
                    orphans.push(Orphan {
                        key: k,
                        pending: e.pending,
                    });
                }
            }
        }
        true
    }

    /// Drops entries older than the timeout; unresolved ones become orphans.
    pub(crate) fn expire(&mut self, now: i64, orphans: &mut Vec<Orphan>) {
        while let Some(&(_, created, _)) = self.queue.front() {
            if created.saturating_add(self.timeout) > now {
                break;
            }
            self.pop_oldest(orphans);
        }
    }

    /// Drops everything (end of capture); unresolved entries become orphans, oldest first.
    pub(crate) fn drain(&mut self, orphans: &mut Vec<Orphan>) {
        while self.pop_oldest(orphans) {}
        self.map.clear();
    }

    /// Approximate heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.map.allocation_size()
            + self.queue.capacity() * core::mem::size_of::<(FragKey, i64, u64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: [1; 16],
            dst: [2; 16],
            id,
            proto: 17,
            v6: false,
            iface: 0,
            vlan: VlanKey::NONE,
        }
    }

    #[test]
    fn out_of_order_fragments_wait_for_their_ports() {
        let mut m = FragMap::new(16, 1_000);
        let mut o = Vec::new();
        assert!(matches!(
            m.later(key(1), Timestamp(5), 100, 80, 5, &mut o),
            FragVerdict::Pending
        ));
        assert!(matches!(
            m.later(key(1), Timestamp(6), 50, 30, 6, &mut o),
            FragVerdict::Pending
        ));
        let p = m.first(key(1), Some((53, 4000)), 7, &mut o);
        assert_eq!(
            (p.packets, p.bytes, p.payload, p.first, p.last),
            (2, 150, 110, Timestamp(5), Timestamp(6))
        );
        assert!(matches!(
            m.later(key(1), Timestamp(8), 10, 10, 8, &mut o),
            FragVerdict::Ports(Some((53, 4000)))
        ));
        assert!(o.is_empty());
    }

    #[test]
    fn orphans_on_timeout_and_overflow() {
        let mut m = FragMap::new(2, 1_000);
        let mut o = Vec::new();
        let _ = m.later(key(1), Timestamp(0), 10, 1, 0, &mut o);
        let _ = m.later(key(2), Timestamp(1), 10, 1, 1, &mut o);
        let _ = m.later(key(3), Timestamp(2), 10, 1, 2, &mut o); // over capacity: key 1 goes
        assert_eq!(m.overflowed, 1);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].key.id, 1);
        m.expire(1_001, &mut o); // key 2 (created at 1) expires
        assert_eq!(o.len(), 2);
        m.drain(&mut o);
        assert_eq!(o.iter().map(|x| x.key.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(m.len(), 0);
    }
}
