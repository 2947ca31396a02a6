//! ARP sweeps: one sender asking for many addresses, mostly in vain.

use core::net::{IpAddr, Ipv4Addr};
use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};

use super::expiry::{Due, Expiry, UNQUEUED};
use super::{Emitter, NS, ratio};
use crate::alert::{Alert, AlertKind, Evidence, Severity, Subject};
use crate::obs::ArpObs;
use netmon_types::Timestamp;

/// ARP sweep: one sender asking (who-has) for at least `min_targets` distinct addresses within
/// `window_secs`, of which at least `min_unanswered_ratio` never answered.
///
/// Default 20 targets in 60 s, half unanswered. A router or a busy server legitimately asks for
/// many neighbours, but they answer; a sweep (`nmap -sn`, `arp-scan`) asks for a whole range,
/// most of which is empty. Requests from 0.0.0.0 (RFC 5227 address probes) and gratuitous ARP
/// (sender = target) are not counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArpSweepConfig {
    /// Run the detector. Default true.
    pub enabled: bool,
    /// Distinct target addresses (K). Default 20.
    pub min_targets: u32,
    /// Window, seconds; also the quiet time that closes the alert. Default 60.
    pub window_secs: u32,
    /// Share of targets that must not have answered. Default 0.5.
    pub min_unanswered_ratio: f64,
    /// Severity when raised. Default low.
    pub severity: Severity,
    /// Targets at which the severity becomes medium. Default 256.
    pub medium_severity_targets: u32,
    /// Most senders tracked. Default 65 536.
    pub max_senders: usize,
    /// Most targets tracked per sender before the threshold. Default 128.
    pub max_targets_per_sender: usize,
    /// Distinct targets counted per alert (beyond, the count saturates). Default 65 536.
    pub max_alert_targets: usize,
}

impl Default for ArpSweepConfig {
    fn default() -> Self {
        ArpSweepConfig {
            enabled: true,
            min_targets: 20,
            window_secs: 60,
            min_unanswered_ratio: 0.5,
            severity: Severity::Low,
            medium_severity_targets: 256,
            max_senders: 65_536,
            max_targets_per_sender: 128,
            max_alert_targets: 65_536,
        }
    }
}

#[derive(Debug)]
struct Target {
    ip: Ipv4Addr,
    ts: i64,
    answered: bool,
}

#[derive(Debug)]
struct Sender {
    targets: Vec<Target>,
    newest: i64,
    active: Option<Box<Active>>,
    /// Expiry deadline (see [`Expiry`]).
    due: i64,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            targets: Vec::new(),
            newest: 0,
            active: None,
            due: UNQUEUED,
        }
    }
}

impl Due for Sender {
    fn due_mut(&mut self) -> &mut i64 {
        &mut self.due
    }
}

impl Sender {
    /// What a tick at `now` does to the sender; `false`: forget it (closing its alert).
    fn step(&mut self, now: i64, t: i64, closed: &mut Vec<Alert>) -> bool {
        if now.saturating_sub(self.newest) <= t {
            return true;
        }
        if let Some(a) = self.active.take() {
            closed.push(a.alert);
        }
        false
    }

    /// The earliest tick that may forget the sender.
    fn deadline(&self, t: i64) -> i64 {
        self.newest.saturating_add(t).saturating_add(1)
    }
}

#[derive(Debug)]
struct Active {
    alert: Alert,
    targets: foldhash::HashSet<Ipv4Addr>,
    saturated: bool,
    sample: Vec<IpAddr>,
    requests: u64,
    unanswered_ratio: f64,
}

impl Active {
    fn refresh(&mut self, cfg: &ArpSweepConfig) {
        self.alert.evidence = Evidence::ArpSweep {
            targets: u32::try_from(self.targets.len()).unwrap_or(u32::MAX),
            targets_saturated: self.saturated,
            targets_sample: self.sample.clone(),
            requests: self.requests,
            unanswered_ratio: self.unanswered_ratio,
            window_secs: cfg.window_secs,
        };
        if self.targets.len() >= cfg.medium_severity_targets as usize {
            self.alert.severity = self.alert.severity.max(Severity::Medium);
        }
    }

    fn add(&mut self, ip: Ipv4Addr, cap: usize) {
        if self.targets.contains(&ip) {
            return;
        }
        if self.targets.len() >= cap {
            self.saturated = true;
            return;
        }
        self.targets.insert(ip);
        if self.sample.len() < 16 {
            self.sample.push(IpAddr::V4(ip));
        }
    }
}

/// The ARP sweep detector.
#[derive(Debug)]
pub(crate) struct ArpSweep {
    cfg: ArpSweepConfig,
    senders: foldhash::HashMap<Ipv4Addr, Sender>,
    queue: Expiry<Ipv4Addr>,
    /// Tests only: expire by walking every sender (the reference behaviour).
    #[cfg(test)]
    pub(crate) walk: bool,
    pub(crate) drops: u64,
}

impl ArpSweep {
    pub(crate) fn new(cfg: ArpSweepConfig) -> ArpSweep {
        ArpSweep {
            cfg,
            senders: Default::default(),
            queue: Expiry::new(),
            #[cfg(test)]
            walk: false,
            drops: 0,
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.senders.len()
    }

    pub(crate) fn observe(&mut self, a: &ArpObs, ts: i64, em: &mut Emitter) {
        if !self.cfg.enabled || a.sender.is_unspecified() || a.sender == a.target {
            return;
        }
        match a.op {
            ArpObs::REPLY => {
                // `sender` answers the asker `target`.
                if let Some(s) = self.senders.get_mut(&a.target) {
                    if let Some(t) = s.targets.iter_mut().find(|t| t.ip == a.sender) {
                        t.answered = true;
                    }
                }
            }
            ArpObs::REQUEST => self.request(a, ts, em),
            _ => {}
        }
    }

    fn request(&mut self, a: &ArpObs, ts: i64, em: &mut Emitter) {
        let full = self.senders.len() >= self.cfg.max_senders;
        let s = match self.senders.entry(a.sender) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if full => {
                self.drops += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(Sender::default()),
        };
        s.newest = s.newest.max(ts);
        let window = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let at = s.deadline(window);
        self.queue.schedule(&mut s.due, &a.sender, at);
        if let Some(act) = &mut s.active {
            act.requests += 1;
            act.add(a.target, self.cfg.max_alert_targets);
            act.alert.last_seen = act.alert.last_seen.max(Timestamp(ts));
            act.refresh(&self.cfg);
            return;
        }
        let len = s.targets.len();
        match s.targets.iter_mut().find(|t| t.ip == a.target) {
            Some(t) => t.ts = t.ts.max(ts),
            None if len < self.cfg.max_targets_per_sender => s.targets.push(Target {
                ip: a.target,
                ts,
                answered: false,
            }),
            None => {
                self.drops += 1;
                return;
            }
        }
        let cut = s
            .newest
            .saturating_sub(i64::from(self.cfg.window_secs).saturating_mul(NS));
        s.targets.retain(|t| t.ts >= cut);
        let n = s.targets.len() as u64;
        if n < u64::from(self.cfg.min_targets) {
            return;
        }
        let unanswered = s.targets.iter().filter(|t| !t.answered).count() as u64;
        let r = ratio(unanswered, n);
        if r < self.cfg.min_unanswered_ratio {
            return;
        }
        let first = s.targets.iter().map(|t| t.ts).min().unwrap_or(ts);
        let mut act = Active {
            alert: Alert {
                id: em.next_id(),
                ts: Timestamp(ts),
                kind: AlertKind::ArpSweep,
                source: Subject::Ip(IpAddr::V4(a.sender)),
                target: None,
                severity: self.cfg.severity,
                evidence: Evidence::ArpSweep {
                    targets: 0,
                    targets_saturated: false,
                    targets_sample: Vec::new(),
                    requests: 0,
                    unanswered_ratio: 0.0,
                    window_secs: 0,
                },
                first_seen: Timestamp(first),
                last_seen: Timestamp(ts),
            },
            targets: Default::default(),
            saturated: false,
            sample: Vec::new(),
            requests: n,
            unanswered_ratio: r,
        };
        for t in &s.targets {
            act.add(t.ip, self.cfg.max_alert_targets);
        }
        act.refresh(&self.cfg);
        em.raise(&act.alert);
        s.targets = Vec::new();
        s.active = Some(Box::new(act));
    }

    pub(crate) fn tick(&mut self, now: i64, em: &mut Emitter) {
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let mut closed = Vec::new();
        #[cfg(test)]
        if self.walk {
            self.senders.retain(|_, s| s.step(now, t, &mut closed));
            em.close_all(closed);
            return;
        }
        self.queue.expire(&mut self.senders, now, |s| {
            s.step(now, t, &mut closed).then(|| s.deadline(t))
        });
        em.close_all(closed);
    }

    pub(crate) fn finish(&mut self, em: &mut Emitter) {
        let closed = self
            .senders
            .values_mut()
            .filter_map(|s| s.active.take().map(|a| a.alert))
            .collect();
        em.close_all(closed);
    }

    pub(crate) fn active(&self) -> impl Iterator<Item = &Alert> {
        self.senders
            .values()
            .filter_map(|s| s.active.as_ref().map(|a| &a.alert))
    }
}
