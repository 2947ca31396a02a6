//! Tests only: the scan detectors as they were before their tables were made compact
//! (commit 7ca6d1f), verbatim but for the configuration types (shared with [`super::scan`]).
//! The reference the compact detectors must match event for event.
#![allow(dead_code)]

use core::net::IpAddr;

use std::collections::hash_map::Entry;

use super::expiry::{Due, Expiry, UNQUEUED};
use super::scan::{HorizontalScanConfig, VerticalScanConfig};
use super::{Emitter, FlowDedup, NS, PortSet, longest_run, ratio};
use crate::alert::{Alert, AlertKind, Evidence, Severity, Subject};
use crate::obs::{FlowObs, ProbeOutcome, TcpState};
use netmon_types::Timestamp;

const SAMPLE: usize = 16;

/// Distinct items seen in a window, each with its latest outcome.
#[derive(Clone, Debug)]
struct Window<T> {
    items: Vec<Item<T>>,
    newest: i64,
    /// Expiry deadline (horizontal keys; see [`Expiry`]).
    due: i64,
}

impl<T> Due for Window<T> {
    fn due_mut(&mut self) -> &mut i64 {
        &mut self.due
    }
}

#[derive(Clone, Copy, Debug)]
struct Item<T> {
    what: T,
    first: i64,
    last: i64,
    failed: bool,
    /// The latest flow reported for this item in an update and not yet ended (so an alert
    /// raised now counts its end as already seen).
    open_flow: Option<u64>,
}

impl<T: Copy + PartialEq> Window<T> {
    fn new() -> Self {
        Window {
            items: Vec::new(),
            newest: i64::MIN,
            due: UNQUEUED,
        }
    }

    /// Records an outcome; `Err(())` when the item is new and the window is full. Returns the
    /// change in the number of items held.
    fn observe(
        &mut self,
        what: T,
        flow: (u64, bool),
        span: (i64, i64),
        failed: bool,
        cap: usize,
    ) -> Result<isize, ()> {
        let ((id, ended), (first, last)) = (flow, span);
        let open = (!ended).then_some(id);
        self.newest = self.newest.max(first);
        if let Some(it) = self.items.iter_mut().find(|i| i.what == what) {
            // A success wins: the port (host) works.
            it.failed &= failed;
            it.first = it.first.min(first);
            it.last = it.last.max(last);
            if ended && it.open_flow == Some(id) {
                it.open_flow = None;
            } else if !ended {
                it.open_flow = open;
            }
            return Ok(0);
        }
        if self.items.len() >= cap {
            return Err(());
        }
        if self.items.capacity() == 0 {
            // Most windows (pairs, ports) only ever see one probe: room for exactly one, not
            // the four a first push reserves (≈150 B less per tracked pair or key; growth after
            // that is the usual doubling).
            self.items.reserve_exact(1);
        }
        self.items.push(Item {
            what,
            first,
            last,
            failed,
            open_flow: open,
        });
        Ok(1)
    }

    /// A de-duplicator that knows the flows reported in updates and not yet ended.
    fn dedup(&self) -> FlowDedup {
        let mut d = FlowDedup::default();
        for id in self.items.iter().filter_map(|i| i.open_flow) {
            d.first(id, false);
        }
        d
    }

    /// Drops items older than `window` before the newest; returns how many.
    fn prune(&mut self, window: i64) -> usize {
        let cut = self.newest.saturating_sub(window);
        let before = self.items.len();
        self.items.retain(|i| i.first >= cut);
        before - self.items.len()
    }

    fn failed(&self) -> u64 {
        self.items.iter().filter(|i| i.failed).count() as u64
    }

    fn span(&self) -> (i64, i64) {
        let first = self.items.iter().map(|i| i.first).min().unwrap_or(0);
        let last = self.items.iter().map(|i| i.last).max().unwrap_or(0);
        (first, last)
    }

    /// The tick that forgets this window ([`Window::keep`]): at once when empty, after `t`
    /// idle, or after `t + grace` idle while it holds a failed probe.
    fn deadline(&self, t: i64, grace: i64) -> i64 {
        if self.items.is_empty() {
            i64::MIN
        } else if self.failed() > 0 {
            self.newest
                .saturating_add(t.saturating_add(grace))
                .saturating_add(1)
        } else {
            self.newest.saturating_add(t).saturating_add(1)
        }
    }

    /// Whether a tick at `now` keeps the window (`false`: forget it, freeing its items).
    fn keep(&self, now: i64, t: i64, grace: i64) -> bool {
        let idle = now.saturating_sub(self.newest);
        !self.items.is_empty()
            && (idle <= t || (self.failed() > 0 && idle <= t.saturating_add(grace)))
    }
}

/// Whether an address can be probed (unicast, specified).
pub(crate) fn probeable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// The decided outcome of a flow as a probe, or `None` (undecided, or not a port probe).
pub(crate) fn decided(f: &FlowObs, ended: bool, now: i64, syn_timeout_secs: u32) -> Option<bool> {
    if !matches!(f.proto, 6 | 17 | 132) || !probeable(f.responder.ip) || !probeable(f.initiator.ip)
    {
        return None;
    }
    match f.probe_outcome(ended) {
        ProbeOutcome::Failed => Some(true),
        ProbeOutcome::Succeeded => Some(false),
        ProbeOutcome::Undecided => {
            let old = now.saturating_sub(f.first_ts.0) >= i64::from(syn_timeout_secs) * NS;
            (f.tcp == Some(TcpState::SynOnly) && old).then_some(true)
        }
    }
}

#[derive(Debug)]
struct VPair {
    window: Window<u16>,
    active: Option<Box<VActive>>,
    /// Latest probe start of the last closed alert: earlier probes are late reports of it.
    tomb: Option<i64>,
    tomb_until: i64,
    /// Expiry deadline (see [`Expiry`]).
    due: i64,
}

impl Due for VPair {
    fn due_mut(&mut self) -> &mut i64 {
        &mut self.due
    }
}

impl VPair {
    /// The earliest tick that may change the pair: its alert's close, its tombstone's end,
    /// or its window's expiry.
    fn deadline(&self, t: i64, grace: i64) -> i64 {
        if let Some(a) = &self.active {
            a.last_probe_start.saturating_add(t).saturating_add(1)
        } else if self.tomb.is_some() {
            self.tomb_until.saturating_add(1)
        } else {
            self.window.deadline(t, grace)
        }
    }

    /// What a tick at `now` does to the pair; `false`: forget it.
    fn step(
        &mut self,
        now: i64,
        (t, grace): (i64, i64),
        closed: &mut Vec<Alert>,
        freed: &mut usize,
    ) -> bool {
        if let Some(a) = &self.active {
            if now.saturating_sub(a.last_probe_start) > t {
                if let Some(a) = self.active.take() {
                    self.tomb = Some(a.last_probe_start);
                    self.tomb_until = now.saturating_add(grace);
                    closed.push(a.alert);
                }
            } else {
                return true;
            }
        }
        if self.tomb.is_some() && now <= self.tomb_until {
            return true;
        }
        self.tomb = None;
        let keep = self.window.keep(now, t, grace);
        if !keep {
            *freed += self.window.items.len();
        }
        keep
    }
}

#[derive(Debug)]
struct VActive {
    alert: Alert,
    ports: PortSet,
    /// Ports with a successful probe.
    ok: PortSet,
    sample: Vec<u16>,
    probes: u64,
    dedup: FlowDedup,
    sequential: bool,
    last_probe_start: i64,
}

impl VActive {
    fn refresh(&mut self, cfg: &VerticalScanConfig) {
        self.alert.evidence = Evidence::VerticalScan {
            ports: self.ports.len(),
            ports_sample: self.sample.clone(),
            probes: self.probes,
            failed_ratio: ratio(
                u64::from(self.ports.len().saturating_sub(self.ok.len())),
                u64::from(self.ports.len()),
            ),
            sequential: self.sequential,
            window_secs: cfg.window_secs,
        };
        if self.ports.len() >= cfg.high_severity_ports {
            self.alert.severity = self.alert.severity.max(Severity::High);
        }
    }
}

/// The vertical scan detector.
#[derive(Debug)]
pub(crate) struct Vertical {
    cfg: VerticalScanConfig,
    pairs: foldhash::HashMap<(IpAddr, IpAddr), VPair>,
    queue: Expiry<(IpAddr, IpAddr)>,
    /// Tests only: expire by walking every pair (the reference behaviour).
    #[cfg(test)]
    pub(crate) walk: bool,
    probes: usize,
    pub(crate) drops: u64,
    late_grace: i64,
}

impl Vertical {
    pub(crate) fn new(cfg: VerticalScanConfig, late_grace_secs: u32) -> Vertical {
        Vertical {
            cfg,
            pairs: Default::default(),
            queue: Expiry::new(),
            #[cfg(test)]
            walk: false,
            probes: 0,
            drops: 0,
            late_grace: i64::from(late_grace_secs) * NS,
        }
    }

    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.pairs.len(), self.probes)
    }

    pub(crate) fn observe(&mut self, f: &FlowObs, ended: bool, now: i64, em: &mut Emitter) {
        if !self.cfg.enabled {
            return;
        }
        let Some(failed) = decided(f, ended, now, self.cfg.syn_timeout_secs) else {
            return;
        };
        let key = (f.initiator.ip, f.responder.ip);
        let full = self.pairs.len() >= self.cfg.max_pairs;
        let pair = match self.pairs.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if full => {
                self.drops += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(VPair {
                window: Window::new(),
                active: None,
                tomb: None,
                tomb_until: 0,
                due: UNQUEUED,
            }),
        };
        let mut st = VState {
            cfg: &self.cfg,
            probes: &mut self.probes,
            drops: &mut self.drops,
        };
        st.observe_pair(pair, key, f, (ended, failed), now, em);
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let at = pair.deadline(t, self.late_grace);
        self.queue.schedule(&mut pair.due, &key, at);
    }

    /// Closes alerts quiet for the window; forgets stale pairs.
    pub(crate) fn tick(&mut self, now: i64, em: &mut Emitter) {
        #[cfg(test)]
        if self.walk {
            return self.tick_walk(now, em);
        }
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let grace = self.late_grace;
        let mut closed = Vec::new();
        let mut freed = 0usize;
        self.queue.expire(&mut self.pairs, now, |p| {
            p.step(now, (t, grace), &mut closed, &mut freed)
                .then(|| p.deadline(t, grace))
        });
        self.probes = self.probes.saturating_sub(freed);
        em.close_all(closed);
    }

    /// [`Vertical::tick`] by walking every pair (the reference the queue must match).
    #[cfg(test)]
    fn tick_walk(&mut self, now: i64, em: &mut Emitter) {
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let grace = self.late_grace;
        let mut closed = Vec::new();
        let mut freed = 0usize;
        self.pairs
            .retain(|_, p| p.step(now, (t, grace), &mut closed, &mut freed));
        self.probes = self.probes.saturating_sub(freed);
        em.close_all(closed);
    }

    /// Closes every open alert (end of capture).
    pub(crate) fn finish(&mut self, em: &mut Emitter) {
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let mut closed = Vec::new();
        for (k, p) in &mut self.pairs {
            if let Some(a) = p.active.take() {
                closed.push(a.alert);
                // Without its alert the pair may go sooner.
                let at = p.deadline(t, self.late_grace);
                self.queue.schedule(&mut p.due, k, at);
            }
        }
        em.close_all(closed);
    }

    pub(crate) fn active(&self) -> impl Iterator<Item = &Alert> {
        self.pairs
            .values()
            .filter_map(|p| p.active.as_ref().map(|a| &a.alert))
    }
}

/// The parts of [`Vertical`] an observation of one pair updates besides the pair.
struct VState<'a> {
    cfg: &'a VerticalScanConfig,
    probes: &'a mut usize,
    drops: &'a mut u64,
}

impl VState<'_> {
    fn observe_pair(
        &mut self,
        pair: &mut VPair,
        key: (IpAddr, IpAddr),
        f: &FlowObs,
        (ended, failed): (bool, bool),
        now: i64,
        em: &mut Emitter,
    ) {
        let port = f.responder.port;
        let (first, last) = (f.first_ts.0, f.last_ts.0.max(f.first_ts.0));
        if pair.tomb.is_some_and(|t| first <= t) {
            return;
        }
        if let Some(a) = &mut pair.active {
            if a.dedup.first(f.id, ended) {
                a.probes += 1;
            }
            if !failed {
                a.ok.insert(port);
            }
            if a.ports.insert(port) && a.sample.len() < SAMPLE {
                a.sample.push(port);
            }
            a.alert.first_seen = a.alert.first_seen.min(Timestamp(first));
            a.alert.last_seen = a.alert.last_seen.max(Timestamp(last));
            a.last_probe_start = a.last_probe_start.max(first);
            a.refresh(self.cfg);
            return;
        }
        if *self.probes >= self.cfg.max_probes && !pair.window.items.iter().any(|i| i.what == port)
        {
            *self.drops += 1;
            return;
        }
        match pair.window.observe(
            port,
            (f.id, ended),
            (first, last),
            failed,
            self.cfg.max_ports_per_pair,
        ) {
            Ok(d) => *self.probes = self.probes.saturating_add_signed(d),
            Err(()) => {
                *self.drops += 1;
                return;
            }
        }
        let pruned = pair
            .window
            .prune(i64::from(self.cfg.window_secs).saturating_mul(NS));
        *self.probes = self.probes.saturating_sub(pruned);
        let n = pair.window.items.len() as u64;
        if n < u64::from(self.cfg.min_ports) {
            return;
        }
        let failed_n = pair.window.failed();
        let r = ratio(failed_n, n);
        if r < self.cfg.min_failed_ratio && r < self.cfg.sequential_min_failed_ratio {
            // Fires under neither bar, sequential or not.
            return;
        }
        let mut ports: Vec<u16> = pair.window.items.iter().map(|i| i.what).collect();
        ports.sort_unstable();
        let sequential =
            self.cfg.sequential_run > 0 && longest_run(&ports) >= self.cfg.sequential_run;
        let fire = r >= self.cfg.min_failed_ratio
            || (sequential && r >= self.cfg.sequential_min_failed_ratio);
        if !fire {
            return;
        }
        let (first_seen, last_seen) = pair.window.span();
        let mut set = PortSet::default();
        let mut ok = PortSet::default();
        for it in &pair.window.items {
            set.insert(it.what);
            if !it.failed {
                ok.insert(it.what);
            }
        }
        let dedup = pair.window.dedup();
        let mut a = VActive {
            alert: Alert {
                id: em.next_id(),
                ts: Timestamp(now),
                kind: AlertKind::VerticalScan,
                source: Subject::Ip(key.0),
                target: Some(Subject::Ip(key.1)),
                severity: self.cfg.severity,
                evidence: Evidence::VerticalScan {
                    ports: 0,
                    ports_sample: Vec::new(),
                    probes: 0,
                    failed_ratio: 0.0,
                    sequential: false,
                    window_secs: 0,
                },
                first_seen: Timestamp(first_seen),
                last_seen: Timestamp(last_seen),
            },
            ports: set,
            ok,
            sample: pair
                .window
                .items
                .iter()
                .take(SAMPLE)
                .map(|i| i.what)
                .collect(),
            probes: n,
            dedup,
            sequential,
            last_probe_start: pair.window.newest,
        };
        a.refresh(self.cfg);
        em.raise(&a.alert);
        *self.probes = self.probes.saturating_sub(pair.window.items.len());
        pair.window = Window::new();
        pair.active = Some(Box::new(a));
    }
}

#[derive(Debug)]
struct HSrc {
    active: Option<Box<HActive>>,
    tomb: Option<i64>,
    tomb_until: i64,
    /// Expiry deadline (see [`Expiry`]).
    due: i64,
}

impl Due for HSrc {
    fn due_mut(&mut self) -> &mut i64 {
        &mut self.due
    }
}

impl HSrc {
    /// The earliest tick that may change the source: its alert's close or its tombstone's end
    /// (at once without either).
    fn deadline(&self, t: i64) -> i64 {
        if let Some(a) = &self.active {
            a.last_probe_start.saturating_add(t).saturating_add(1)
        } else if self.tomb.is_some() {
            self.tomb_until.saturating_add(1)
        } else {
            i64::MIN
        }
    }

    /// What a tick at `now` does to the source; `false`: forget it.
    fn step(&mut self, now: i64, (t, grace): (i64, i64), closed: &mut Vec<Alert>) -> bool {
        if let Some(a) = &self.active {
            if now.saturating_sub(a.last_probe_start) > t {
                if let Some(a) = self.active.take() {
                    self.tomb = Some(a.last_probe_start);
                    self.tomb_until = now.saturating_add(grace);
                    closed.push(a.alert);
                }
            } else {
                return true;
            }
        }
        self.tomb.is_some() && now <= self.tomb_until
    }
}

#[derive(Debug)]
struct HActive {
    alert: Alert,
    hosts: foldhash::HashSet<IpAddr>,
    saturated: bool,
    sample: Vec<IpAddr>,
    /// (proto, port) of probes aggregated, first appearance order (≤ 32).
    ports: Vec<(u8, u16)>,
    /// Ports that crossed the threshold.
    alerted_ports: Vec<(u8, u16)>,
    probes: u64,
    dedup: FlowDedup,
    failed_ratio: f64,
    last_probe_start: i64,
}

impl HActive {
    fn refresh(&mut self, cfg: &HorizontalScanConfig) {
        let names = self
            .ports
            .iter()
            .map(|&(proto, port)| format!("{}/{port}", crate::obs::l4_name(proto).unwrap_or("ip")))
            .collect();
        self.alert.evidence = Evidence::HorizontalScan {
            hosts: u32::try_from(self.hosts.len()).unwrap_or(u32::MAX),
            hosts_saturated: self.saturated,
            hosts_sample: self.sample.clone(),
            ports: names,
            probes: self.probes,
            failed_ratio: self.failed_ratio,
            window_secs: cfg.window_secs,
        };
        if self.hosts.len() >= cfg.high_severity_hosts as usize {
            self.alert.severity = self.alert.severity.max(Severity::High);
        }
    }

    fn add_host(&mut self, h: IpAddr, cap: usize) {
        if self.hosts.contains(&h) {
            return;
        }
        if self.hosts.len() >= cap {
            self.saturated = true;
            return;
        }
        self.hosts.insert(h);
        if self.sample.len() < SAMPLE {
            self.sample.push(h);
        }
    }

    fn add_port(&mut self, p: (u8, u16)) {
        if self.ports.len() < 32 && !self.ports.contains(&p) {
            self.ports.push(p);
        }
    }
}

/// The horizontal scan detector.
#[derive(Debug)]
pub(crate) struct Horizontal {
    cfg: HorizontalScanConfig,
    keys: foldhash::HashMap<(IpAddr, u8, u16), Window<IpAddr>>,
    key_queue: Expiry<(IpAddr, u8, u16)>,
    srcs: foldhash::HashMap<IpAddr, HSrc>,
    src_queue: Expiry<IpAddr>,
    /// Tests only: expire by walking every entry (the reference behaviour).
    #[cfg(test)]
    pub(crate) walk: bool,
    probes: usize,
    pub(crate) drops: u64,
    late_grace: i64,
}

impl Horizontal {
    pub(crate) fn new(cfg: HorizontalScanConfig, late_grace_secs: u32) -> Horizontal {
        Horizontal {
            cfg,
            keys: Default::default(),
            key_queue: Expiry::new(),
            srcs: Default::default(),
            src_queue: Expiry::new(),
            #[cfg(test)]
            walk: false,
            probes: 0,
            drops: 0,
            late_grace: i64::from(late_grace_secs) * NS,
        }
    }

    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.keys.len() + self.srcs.len(), self.probes)
    }

    pub(crate) fn observe(
        &mut self,
        f: &FlowObs,
        ended: bool,
        now: i64,
        em: &mut Emitter,
        syn_timeout_secs: u32,
    ) {
        if !self.cfg.enabled {
            return;
        }
        let Some(failed) = decided(f, ended, now, syn_timeout_secs) else {
            return;
        };
        let src = f.initiator.ip;
        let port = (f.proto, f.responder.port);
        let (first, last) = (f.first_ts.0, f.last_ts.0.max(f.first_ts.0));
        if let Some(s) = self.srcs.get_mut(&src) {
            if s.tomb.is_some_and(|t| first <= t) {
                return;
            }
            if let Some(a) = &mut s.active {
                if failed || a.alerted_ports.contains(&port) {
                    if a.dedup.first(f.id, ended) {
                        a.probes += 1;
                    }
                    a.add_host(f.responder.ip, self.cfg.max_alert_hosts);
                    a.add_port(port);
                    a.alert.first_seen = a.alert.first_seen.min(Timestamp(first));
                    a.alert.last_seen = a.alert.last_seen.max(Timestamp(last));
                    a.last_probe_start = a.last_probe_start.max(first);
                    a.refresh(&self.cfg);
                }
                return;
            }
        }
        let key = (src, port.0, port.1);
        let full = self.keys.len() >= self.cfg.max_keys || self.probes >= self.cfg.max_probes;
        let w = match self.keys.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if full => {
                self.drops += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(Window::new()),
        };
        if self.probes >= self.cfg.max_probes && !w.items.iter().any(|i| i.what == f.responder.ip) {
            // (Only a key held before: a new one needs probes below the budget.)
            self.drops += 1;
            return;
        }
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let observed = w.observe(
            f.responder.ip,
            (f.id, ended),
            (first, last),
            failed,
            self.cfg.max_hosts_per_key,
        );
        let pruned = match observed {
            Ok(_) => w.prune(t),
            Err(()) => 0,
        };
        let at = w.deadline(t, self.late_grace);
        self.key_queue.schedule(&mut w.due, &key, at);
        match observed {
            Ok(d) => self.probes = self.probes.saturating_add_signed(d),
            Err(()) => {
                self.drops += 1;
                return;
            }
        }
        self.probes = self.probes.saturating_sub(pruned);
        let n = w.items.len() as u64;
        if n < u64::from(self.cfg.min_hosts) {
            return;
        }
        let failed_n = w.failed();
        let r = ratio(failed_n, n);
        if r < self.cfg.min_failed_ratio {
            return;
        }
        let (first_seen, last_seen) = w.span();
        let mut a = HActive {
            alert: Alert {
                id: em.next_id(),
                ts: Timestamp(now),
                kind: AlertKind::HorizontalScan,
                source: Subject::Ip(src),
                target: None,
                severity: self.cfg.severity,
                evidence: Evidence::HorizontalScan {
                    hosts: 0,
                    hosts_saturated: false,
                    hosts_sample: Vec::new(),
                    ports: Vec::new(),
                    probes: 0,
                    failed_ratio: 0.0,
                    window_secs: 0,
                },
                first_seen: Timestamp(first_seen),
                last_seen: Timestamp(last_seen),
            },
            hosts: Default::default(),
            saturated: false,
            sample: Vec::new(),
            ports: vec![port],
            alerted_ports: vec![port],
            probes: n,
            dedup: w.dedup(),
            failed_ratio: r,
            last_probe_start: w.newest,
        };
        for it in &w.items {
            a.add_host(it.what, self.cfg.max_alert_hosts);
        }
        self.probes = self.probes.saturating_sub(w.items.len());
        self.keys.remove(&key);
        // The same source's failed probes of other ports join the alert: a scan sweeping
        // several ports across many hosts is one scan, counted in full.
        // In key order: the hash map's order is random per process (and per table), and the
        // order decides the alert's host sample and port list.
        let mut others: Vec<(IpAddr, u8, u16)> =
            self.keys.keys().filter(|k| k.0 == src).copied().collect();
        others.sort_unstable();
        for k in others {
            let Some(ow) = self.keys.remove(&k) else {
                continue;
            };
            self.probes = self.probes.saturating_sub(ow.items.len());
            let mut joined = false;
            for it in ow.items.iter().filter(|i| i.failed) {
                a.add_host(it.what, self.cfg.max_alert_hosts);
                a.probes += 1;
                a.alert.first_seen = a.alert.first_seen.min(Timestamp(it.first));
                a.alert.last_seen = a.alert.last_seen.max(Timestamp(it.last));
                joined = true;
            }
            if joined {
                a.add_port((k.1, k.2));
            }
        }
        a.refresh(&self.cfg);
        em.raise(&a.alert);
        let mut s = HSrc {
            active: Some(Box::new(a)),
            tomb: None,
            tomb_until: 0,
            due: UNQUEUED,
        };
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let at = s.deadline(t);
        self.src_queue.schedule(&mut s.due, &src, at);
        self.srcs.insert(src, s);
    }

    pub(crate) fn tick(&mut self, now: i64, em: &mut Emitter) {
        #[cfg(test)]
        if self.walk {
            return self.tick_walk(now, em);
        }
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let grace = self.late_grace;
        let mut closed = Vec::new();
        self.src_queue.expire(&mut self.srcs, now, |s| {
            s.step(now, (t, grace), &mut closed).then(|| s.deadline(t))
        });
        let mut freed = 0usize;
        self.key_queue.expire(&mut self.keys, now, |w| {
            let keep = w.keep(now, t, grace);
            if !keep {
                freed += w.items.len();
            }
            keep.then(|| w.deadline(t, grace))
        });
        self.probes = self.probes.saturating_sub(freed);
        em.close_all(closed);
    }

    /// [`Horizontal::tick`] by walking every entry (the reference the queues must match).
    #[cfg(test)]
    fn tick_walk(&mut self, now: i64, em: &mut Emitter) {
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let grace = self.late_grace;
        let mut closed = Vec::new();
        self.srcs
            .retain(|_, s| s.step(now, (t, grace), &mut closed));
        let mut freed = 0usize;
        self.keys.retain(|_, w| {
            let keep = w.keep(now, t, grace);
            if !keep {
                freed += w.items.len();
            }
            keep
        });
        self.probes = self.probes.saturating_sub(freed);
        em.close_all(closed);
    }

    pub(crate) fn finish(&mut self, em: &mut Emitter) {
        let t = i64::from(self.cfg.window_secs).saturating_mul(NS);
        let mut closed = Vec::new();
        for (k, s) in &mut self.srcs {
            if let Some(a) = s.active.take() {
                closed.push(a.alert);
                // Without its alert the source may go sooner.
                let at = s.deadline(t);
                self.src_queue.schedule(&mut s.due, k, at);
            }
        }
        em.close_all(closed);
    }

    pub(crate) fn active(&self) -> impl Iterator<Item = &Alert> {
        self.srcs
            .values()
            .filter_map(|s| s.active.as_ref().map(|a| &a.alert))
    }
}
