//! Flow-rate floods: one source starting more than R flows per window (SYN floods, request
//! floods, aggressive scanners).
//!
//! Each source keeps six sub-window counters (a window of 60 s is counted in 10 s slots), so
//! "flows in the last window" is exact to within one slot: it covers between five sixths of the
//! window and the whole window. The alert closes when the source's rate falls to half the
//! limit (hysteresis, so a rate hovering around the limit raises one alert, not many).

use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use std::collections::hash_map::Entry;

use super::expiry::{Due, Expiry, UNQUEUED};
use super::{Emitter, NS, ratio};
use crate::alert::{Alert, AlertKind, Evidence, Severity, Subject};
use crate::obs::FlowObs;
use netmon_types::Timestamp;

/// Flood: one source (flow initiator) starting more than `max_new_flows` flows within
/// `window_secs`.
///
/// Default 6000 flows per 60 s (100 new flows per second sustained for a minute, from one
/// address). A busy workstation opens a few hundred connections in a minute (a page load is
/// ~50–150), a resolver a few thousand queries; 6000/min is clearly beyond one client yet low
/// enough to catch a single-source SYN flood or request flood (tools send thousands per
/// second). NAT gateways and proxies exceed it legitimately: raise the limit, or disable, for
/// them. Severity is `high` when at least `high_failed_ratio` of the source's flows were failed
/// TCP attempts (a SYN flood proper).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynFloodConfig {
    /// Run the detector. Default true.
    pub enabled: bool,
    /// New flows per window from one source (R). Default 6000.
    pub max_new_flows: u64,
    /// Window, seconds. Default 60.
    pub window_secs: u32,
    /// Severity when raised. Default medium.
    pub severity: Severity,
    /// Failed-TCP share that makes the alert high severity. Default 0.8.
    pub high_failed_ratio: f64,
    /// Most sources tracked. Default 65 536.
    pub max_sources: usize,
}

impl Default for SynFloodConfig {
    fn default() -> Self {
        SynFloodConfig {
            enabled: true,
            max_new_flows: 6000,
            window_secs: 60,
            severity: Severity::Medium,
            high_failed_ratio: 0.8,
            max_sources: 65_536,
        }
    }
}

const SLOTS: usize = 6;

/// One source's counters. Per-slot counts are `u32` (saturating; a slot is a sixth of the
/// window, and no capture starts 4 G flows from one source in it), summed as `u64`: 120 bytes
/// instead of 176, the table of 65 536 sources a third smaller.
#[derive(Debug)]
struct Source {
    slot_id: [i64; SLOTS],
    new: [u32; SLOTS],
    failed: [u32; SLOTS],
    /// Latest slot a flow started in.
    last_slot: i64,
    active: Option<Box<Active>>,
    /// Expiry deadline (see [`Expiry`]).
    due: i64,
}

impl Default for Source {
    fn default() -> Self {
        Source {
            slot_id: [0; SLOTS],
            new: [0; SLOTS],
            failed: [0; SLOTS],
            last_slot: i64::MIN,
            active: None,
            due: UNQUEUED,
        }
    }
}

impl Due for Source {
    fn due_mut(&mut self) -> &mut i64 {
        &mut self.due
    }
}

#[derive(Debug)]
struct Active {
    alert: Alert,
    peak: u64,
    total: u64,
    failed_ratio: f64,
    sample: Vec<IpAddr>,
}

impl Source {
    /// What a tick in slot `cur` does to the source; `false`: forget it.
    fn step(&mut self, cur: i64, half: u64, closed: &mut Vec<Alert>) -> bool {
        let (n, _) = self.window(cur);
        if self.active.is_some() {
            if n > half {
                return true;
            }
            if let Some(a) = self.active.take() {
                closed.push(a.alert);
            }
        }
        n > 0
    }

    /// The earliest tick (slot `cur` now, `slot_ns` long) that may change the source. The
    /// window's count only falls when slots leave it: an alert is checked again at the next
    /// slot; otherwise the count is positive until the latest start's slot has left.
    fn deadline(&self, cur: i64, slot_ns: i64) -> i64 {
        let slot = if self.active.is_some() {
            cur.saturating_add(1)
        } else {
            self.last_slot.saturating_add(SLOTS as i64)
        };
        slot.saturating_mul(slot_ns)
    }

    fn slot(&mut self, id: i64) -> usize {
        let i = usize::try_from(id.rem_euclid(SLOTS as i64)).unwrap_or(0);
        if self.slot_id.get(i) != Some(&id) {
            if let (Some(s), Some(n), Some(f)) = (
                self.slot_id.get_mut(i),
                self.new.get_mut(i),
                self.failed.get_mut(i),
            ) {
                *s = id;
                *n = 0;
                *f = 0;
            }
        }
        i
    }

    /// (new, failed) over the slots of the window ending in slot `cur`.
    fn window(&self, cur: i64) -> (u64, u64) {
        let mut n = 0u64;
        let mut f = 0u64;
        for i in 0..SLOTS {
            let id = self.slot_id.get(i).copied().unwrap_or(i64::MIN);
            if id > cur - SLOTS as i64 && id <= cur {
                n = n.saturating_add(u64::from(self.new.get(i).copied().unwrap_or(0)));
                f = f.saturating_add(u64::from(self.failed.get(i).copied().unwrap_or(0)));
            }
        }
        (n, f)
    }
}

/// The flood detector.
#[derive(Debug)]
pub(crate) struct Flood {
    cfg: SynFloodConfig,
    slot_ns: i64,
    sources: foldhash::HashMap<IpAddr, Source>,
    queue: Expiry<IpAddr>,
    /// Tests only: expire by walking every source (the reference behaviour).
    #[cfg(test)]
    pub(crate) walk: bool,
    pub(crate) drops: u64,
}

impl Flood {
    pub(crate) fn new(cfg: SynFloodConfig) -> Flood {
        let slot_ns = (i64::from(cfg.window_secs.max(1)) * NS / SLOTS as i64).max(1);
        Flood {
            cfg,
            slot_ns,
            sources: Default::default(),
            queue: Expiry::new(),
            #[cfg(test)]
            walk: false,
            drops: 0,
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.sources.len()
    }

    pub(crate) fn on_start(&mut self, f: &FlowObs, now: i64, em: &mut Emitter) {
        if !self.cfg.enabled {
            return;
        }
        let src = f.initiator.ip;
        let full = self.sources.len() >= self.cfg.max_sources;
        let s = match self.sources.entry(src) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if full => {
                self.drops += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(Source::default()),
        };
        let cur = now.div_euclid(self.slot_ns);
        let i = s.slot(cur);
        if let Some(n) = s.new.get_mut(i) {
            *n = n.saturating_add(1);
        }
        s.last_slot = s.last_slot.max(cur);
        // Scheduled for the state after this start, alert or not (an alert only brings the
        // deadline closer, and is scheduled below).
        let at = s.deadline(cur, self.slot_ns);
        self.queue.schedule(&mut s.due, &src, at);
        let (n, failed) = s.window(cur);
        let r = ratio(failed, n);
        if let Some(a) = &mut s.active {
            a.total += 1;
            if n > a.peak {
                a.peak = n;
                a.failed_ratio = r;
            }
            a.alert.last_seen = a.alert.last_seen.max(Timestamp(now));
            if a.sample.len() < 16 && !a.sample.contains(&f.responder.ip) {
                a.sample.push(f.responder.ip);
            }
            refresh(a, &self.cfg);
            return;
        }
        if n <= self.cfg.max_new_flows {
            return;
        }
        let mut a = Active {
            alert: Alert {
                id: em.next_id(),
                ts: Timestamp(now),
                kind: AlertKind::SynFlood,
                source: Subject::Ip(src),
                target: None,
                severity: self.cfg.severity,
                evidence: Evidence::SynFlood {
                    peak_new_flows: 0,
                    new_flows: 0,
                    failed_ratio: 0.0,
                    targets_sample: Vec::new(),
                    limit: 0,
                    window_secs: 0,
                },
                first_seen: Timestamp(
                    now.saturating_sub(i64::from(self.cfg.window_secs).saturating_mul(NS)),
                ),
                last_seen: Timestamp(now),
            },
            peak: n,
            total: n,
            failed_ratio: r,
            sample: vec![f.responder.ip],
        };
        refresh(&mut a, &self.cfg);
        em.raise(&a.alert);
        s.active = Some(Box::new(a));
        let at = s.deadline(cur, self.slot_ns);
        self.queue.schedule(&mut s.due, &src, at);
    }

    /// Counts a failed TCP attempt of `f`'s initiator (flow end or decisive update).
    pub(crate) fn on_failed(&mut self, f: &FlowObs, now: i64) {
        if !self.cfg.enabled || f.proto != 6 {
            return;
        }
        if let Some(s) = self.sources.get_mut(&f.initiator.ip) {
            let cur = now.div_euclid(self.slot_ns);
            let i = s.slot(cur);
            if let Some(x) = s.failed.get_mut(i) {
                *x = x.saturating_add(1);
            }
            let (n, failed) = s.window(cur);
            if let Some(a) = &mut s.active {
                a.failed_ratio = a.failed_ratio.max(ratio(failed, n).min(1.0));
                refresh(a, &self.cfg);
            }
        }
    }

    pub(crate) fn tick(&mut self, now: i64, em: &mut Emitter) {
        let cur = now.div_euclid(self.slot_ns);
        let half = self.cfg.max_new_flows / 2;
        let mut closed = Vec::new();
        #[cfg(test)]
        if self.walk {
            self.sources.retain(|_, s| s.step(cur, half, &mut closed));
            em.close_all(closed);
            return;
        }
        let slot_ns = self.slot_ns;
        self.queue.expire(&mut self.sources, now, |s| {
            s.step(cur, half, &mut closed)
                .then(|| s.deadline(cur, slot_ns))
        });
        em.close_all(closed);
    }

    pub(crate) fn finish(&mut self, em: &mut Emitter) {
        let closed = self
            .sources
            .values_mut()
            .filter_map(|s| s.active.take().map(|a| a.alert))
            .collect();
        em.close_all(closed);
    }

    pub(crate) fn active(&self) -> impl Iterator<Item = &Alert> {
        self.sources
            .values()
            .filter_map(|s| s.active.as_ref().map(|a| &a.alert))
    }
}

fn refresh(a: &mut Active, cfg: &SynFloodConfig) {
    a.alert.evidence = Evidence::SynFlood {
        peak_new_flows: a.peak,
        new_flows: a.total,
        failed_ratio: a.failed_ratio,
        targets_sample: a.sample.clone(),
        limit: cfg.max_new_flows,
        window_secs: cfg.window_secs,
    };
    if a.failed_ratio >= cfg.high_failed_ratio {
        a.alert.severity = a.alert.severity.max(Severity::High);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_source() {
        assert_eq!(size_of::<Source>(), 120);
    }

    #[test]
    fn slot_counts_saturate_and_sum_wide() {
        let mut s = Source::default();
        for id in 0..SLOTS as i64 {
            let i = s.slot(id);
            s.new[i] = u32::MAX;
            s.failed[i] = 1;
        }
        let i = s.slot(SLOTS as i64 - 1);
        s.new[i] = s.new[i].saturating_add(1);
        assert_eq!(s.new[i], u32::MAX);
        let (n, f) = s.window(SLOTS as i64 - 1);
        assert_eq!(n, SLOTS as u64 * u64::from(u32::MAX));
        assert_eq!(f, SLOTS as u64);
    }
}
