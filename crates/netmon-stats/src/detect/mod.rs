//! Detectors: vertical and horizontal scans, ARP sweeps, flow-rate floods and threshold rules.
//!
//! Every detector has a named configuration with defaults (serde-deserializable, so a config
//! file can set any subset of fields), keeps bounded state that expires on the packets'
//! clock, counts what it had to drop, and raises one alert per incident (see
//! [`crate::alert`]).

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertEvent};

pub mod arp;
mod expiry;
pub mod flood;
pub mod rule;
pub mod scan;
#[cfg(test)]
mod scan_ref;

pub use arp::ArpSweepConfig;
pub use flood::SynFloodConfig;
pub use rule::{Comparison, Rule, RuleError};
pub use scan::{HorizontalScanConfig, VerticalScanConfig};

/// Nanoseconds per second.
pub(crate) const NS: i64 = 1_000_000_000;

/// Configuration of every detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorsConfig {
    /// Vertical port scans.
    pub vertical_scan: VerticalScanConfig,
    /// Horizontal scans.
    pub horizontal_scan: HorizontalScanConfig,
    /// ARP sweeps.
    pub arp_sweep: ArpSweepConfig,
    /// Flow-rate (SYN) floods.
    pub syn_flood: SynFloodConfig,
    /// Threshold rules in the rule syntax (see [`Rule`]), e.g. `"bps on eth0 over 10s > 1e9"`.
    pub thresholds: Vec<String>,
    /// How long (seconds) after a scan alert closed a flow summary that started before the
    /// close is still taken as a late report of that scan and ignored, rather than the start
    /// of a new one. Should be at least the engine's longest flow timeout. Default 300.
    pub late_grace_secs: u32,
    /// Alert events held until drained; more are dropped and counted. Default 65 536.
    pub max_pending_events: usize,
}

impl Default for DetectorsConfig {
    fn default() -> Self {
        DetectorsConfig {
            vertical_scan: VerticalScanConfig::default(),
            horizontal_scan: HorizontalScanConfig::default(),
            arp_sweep: ArpSweepConfig::default(),
            syn_flood: SynFloodConfig::default(),
            thresholds: Vec::new(),
            late_grace_secs: 300,
            max_pending_events: 65_536,
        }
    }
}

/// Hands out alert ids and queues alert events.
#[derive(Debug)]
pub(crate) struct Emitter {
    next_id: u64,
    pub(crate) events: Vec<AlertEvent>,
    max_pending: usize,
    pub(crate) dropped: u64,
    pub(crate) raised: u64,
}

impl Emitter {
    pub(crate) fn new(max_pending: usize) -> Emitter {
        Emitter {
            next_id: 0,
            events: Vec::new(),
            max_pending,
            dropped: 0,
            raised: 0,
        }
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.raised += 1;
        id
    }

    pub(crate) fn push(&mut self, e: AlertEvent) {
        if self.events.len() < self.max_pending {
            self.events.push(e);
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn raise(&mut self, a: &Alert) {
        self.push(AlertEvent::Raised(a.clone()));
    }

    /// Emits closes in id order (the callers collect them from hash maps).
    pub(crate) fn close_all(&mut self, mut alerts: Vec<Alert>) {
        alerts.sort_by_key(|a| a.id);
        for a in alerts {
            self.push(AlertEvent::Closed(a));
        }
    }
}

/// The per-detector drop counters (state that could not be kept because a cap was reached).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DetectorDrops {
    /// Vertical scan: observations not tracked (pair table or probe budget full).
    pub vertical_scan: u64,
    /// Horizontal scan: observations not tracked.
    pub horizontal_scan: u64,
    /// ARP sweep: requests not tracked.
    pub arp_sweep: u64,
    /// Flood: sources not tracked.
    pub syn_flood: u64,
    /// Alert events dropped because nobody drained them.
    pub alert_events: u64,
}

/// A set of ports: a sorted list while small, a 65 536-bit map beyond.
#[derive(Clone, Debug, Default)]
pub(crate) struct PortSet {
    small: Vec<u16>,
    bits: Option<Box<[u64; 1024]>>,
    len: u32,
}

impl PortSet {
    const SMALL: usize = 4096;

    /// Inserts; true when new.
    pub(crate) fn insert(&mut self, p: u16) -> bool {
        if let Some(b) = &mut self.bits {
            let (w, m) = (usize::from(p / 64), 1u64 << (p % 64));
            let Some(word) = b.get_mut(w) else {
                return false;
            };
            if *word & m != 0 {
                return false;
            }
            *word |= m;
            self.len += 1;
            return true;
        }
        match self.small.binary_search(&p) {
            Ok(_) => false,
            Err(i) => {
                self.small.insert(i, p);
                self.len += 1;
                if self.small.len() > Self::SMALL {
                    let mut b = Box::new([0u64; 1024]);
                    for &q in &self.small {
                        if let Some(word) = b.get_mut(usize::from(q / 64)) {
                            *word |= 1u64 << (q % 64);
                        }
                    }
                    self.bits = Some(b);
                    self.small = Vec::new();
                }
                true
            }
        }
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }
}

/// Counts each flow once although it may be reported in updates and at its end: ids seen in
/// an update are remembered (up to a cap) until the flow's end. Beyond the cap a flow reported
/// in an update and at its end counts twice.
#[derive(Clone, Debug, Default)]
pub(crate) struct FlowDedup {
    ids: foldhash::HashSet<u64>,
}

impl FlowDedup {
    const CAP: usize = 4096;

    /// Whether this report is the flow's first.
    pub(crate) fn first(&mut self, id: u64, ended: bool) -> bool {
        if ended {
            !self.ids.remove(&id)
        } else if self.ids.contains(&id) {
            false
        } else {
            if self.ids.len() < Self::CAP {
                self.ids.insert(id);
            }
            true
        }
    }
}

/// The longest run of consecutive values in a sorted, deduplicated list.
pub(crate) fn longest_run(sorted: &[u16]) -> u32 {
    let mut best = 0u32;
    let mut run = 0u32;
    let mut prev: Option<u16> = None;
    for &p in sorted {
        run = match prev {
            Some(q) if q.checked_add(1) == Some(p) => run + 1,
            _ => 1,
        };
        best = best.max(run);
        prev = Some(p);
    }
    best
}

/// `part / whole`, 0 when `whole` is 0.
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_set_grows_into_a_bitmap() {
        let mut s = PortSet::default();
        for p in (0..=u16::MAX).rev() {
            assert!(s.insert(p));
        }
        assert!(!s.insert(7));
        assert_eq!(s.len(), 65_536);
        assert!(s.bits.is_some());
    }

    #[test]
    fn dedup_counts_each_flow_once() {
        let mut d = FlowDedup::default();
        assert!(d.first(1, false));
        assert!(!d.first(1, false));
        assert!(!d.first(1, true));
        assert!(d.first(2, true));
        assert!(d.first(1, true), "a new flow with a reused id");
    }

    #[test]
    fn runs() {
        assert_eq!(longest_run(&[]), 0);
        assert_eq!(longest_run(&[5]), 1);
        assert_eq!(longest_run(&[1, 2, 3, 7, 8, 65534, 65535]), 3);
        assert_eq!(longest_run(&[65535]), 1);
    }
}
