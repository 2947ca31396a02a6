//! Vertical scans (one source, one host, many ports) and horizontal scans (one source, one
//! port, many hosts), judged from flow summaries.
//!
//! A flow is a **probe** of its responder's port. Its outcome ([`FlowObs::probe_outcome`]) is
//! taken when it is decided — a refusal (RST, ICMP unreachable) or an answer usually in a flow
//! update, an unanswered SYN at the flow's end (or in an update at least
//! [`VerticalScanConfig::syn_timeout_secs`] after the SYN). Probes are placed in time by their
//! first packet, so a late report (a SYN-only flow ending at its idle timeout) still lands in the
//! right window.

use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use std::collections::hash_map::Entry;

use super::expiry::{Due, Expiry, UNQUEUED};
use super::{Emitter, FlowDedup, NS, PortSet, longest_run, ratio};
use crate::alert::{Alert, AlertKind, Evidence, Severity, Subject};
use crate::obs::{FlowObs, ProbeOutcome, TcpState};
use netmon_types::Timestamp;

/// Vertical port scan: one source probing at least `min_ports` distinct ports of one host
/// within `window_secs`, mostly failed (or sequential).
///
/// Defaults — N = 5 ports, T = 60 s — are the SIEM seed's rule. A host contacting one server on
/// five ports is common (mail, web and admin ports of one box), so "mostly failed" is what
/// makes it a scan: at least 80 % of the distinct ports refused, unanswered or torn down
/// without data. A run of `sequential_run` consecutive port numbers (nmap's sequential mode,
/// `-r`) lowers the bar to 50 % failed; it never fires alone, because active-mode FTP opens
/// data connections to consecutive ports that all succeed. Browsing to many hosts on 443
/// touches one port per host and cannot fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerticalScanConfig {
    /// Run the detector. Default true.
    pub enabled: bool,
    /// Distinct ports (N). Default 5.
    pub min_ports: u32,
    /// Window (T), seconds; also the quiet time that closes the alert. Default 60.
    pub window_secs: u32,
    /// Share of distinct ports whose probes failed. Default 0.8.
    pub min_failed_ratio: f64,
    /// Consecutive port numbers that count as sequential probing (0 disables). Default 5.
    pub sequential_run: u32,
    /// Failed share required when the ports are sequential. Default 0.5.
    pub sequential_min_failed_ratio: f64,
    /// A SYN-only flow reported in an update this long after its SYN counts as failed.
    /// Default 5 (the SYN has been retransmitted at least twice by then).
    pub syn_timeout_secs: u32,
    /// Severity when raised. Default medium.
    pub severity: Severity,
    /// Distinct ports at which the severity becomes high. Default 100.
    pub high_severity_ports: u32,
    /// Most (source, host) pairs tracked at once. Default 262 144.
    pub max_pairs: usize,
    /// Most distinct ports tracked per pair before the threshold is crossed. Default 256.
    pub max_ports_per_pair: usize,
    /// Most probes tracked over all pairs. Default 1 048 576.
    pub max_probes: usize,
}

impl Default for VerticalScanConfig {
    fn default() -> Self {
        VerticalScanConfig {
            enabled: true,
            min_ports: 5,
            window_secs: 60,
            min_failed_ratio: 0.8,
            sequential_run: 5,
            sequential_min_failed_ratio: 0.5,
            syn_timeout_secs: 5,
            severity: Severity::Medium,
            high_severity_ports: 100,
            max_pairs: 262_144,
            max_ports_per_pair: 256,
            max_probes: 1 << 20,
        }
    }
}

/// Horizontal scan: one source probing one port (protocol + port) on at least `min_hosts`
/// distinct hosts within `window_secs`, mostly failed.
///
/// Default 25 hosts in 60 s at ≥ 80 % failed. 25 is Zeek's `addr_scan_threshold` (there over
/// 5 minutes); requiring failures is what keeps a browser that reaches 50 web servers on 443 —
/// all answering — silent. While an alert is open, every further failed probe from the source
/// (any port) and every probe of an alerted port is aggregated into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HorizontalScanConfig {
    /// Run the detector. Default true.
    pub enabled: bool,
    /// Distinct hosts (M). Default 25.
    pub min_hosts: u32,
    /// Window (T), seconds; also the quiet time that closes the alert. Default 60.
    pub window_secs: u32,
    /// Share of distinct hosts whose probes failed. Default 0.8.
    pub min_failed_ratio: f64,
    /// Severity when raised. Default medium.
    pub severity: Severity,
    /// Distinct hosts at which the severity becomes high. Default 256.
    pub high_severity_hosts: u32,
    /// Most (source, port) keys tracked at once. Default 262 144.
    pub max_keys: usize,
    /// Most distinct hosts tracked per key before the threshold is crossed. Default 128.
    pub max_hosts_per_key: usize,
    /// Most probes tracked over all keys. Default 1 048 576.
    pub max_probes: usize,
    /// Distinct hosts counted exactly per alert (beyond, the count saturates). Default 65 536.
    pub max_alert_hosts: usize,
}

impl Default for HorizontalScanConfig {
    fn default() -> Self {
        HorizontalScanConfig {
            enabled: true,
            min_hosts: 25,
            window_secs: 60,
            min_failed_ratio: 0.8,
            severity: Severity::Medium,
            high_severity_hosts: 256,
            max_keys: 262_144,
            max_hosts_per_key: 128,
            max_probes: 1 << 20,
            max_alert_hosts: 65_536,
        }
    }
}

const SAMPLE: usize = 16;

/// Distinct items seen in a window, each with its latest outcome.
///
/// Most windows (a pair's ports, a key's hosts) only ever see one probe: that one is held
/// inline, a list is allocated from the second on.
#[derive(Clone, Debug)]
struct Window<T> {
    items: Items<T>,
    newest: i64,
}

/// A window's items: one inline, or a list (empty: no item).
#[derive(Clone, Debug)]
enum Items<T> {
    One(Item<T>),
    Many(Vec<Item<T>>),
}

impl<T: Copy> Items<T> {
    fn as_slice(&self) -> &[Item<T>] {
        match self {
            Items::One(i) => core::slice::from_ref(i),
            Items::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Item<T>] {
        match self {
            Items::One(i) => core::slice::from_mut(i),
            Items::Many(v) => v,
        }
    }

    fn iter(&self) -> core::slice::Iter<'_, Item<T>> {
        self.as_slice().iter()
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn push(&mut self, item: Item<T>) {
        match self {
            Items::Many(v) if v.is_empty() && v.capacity() == 0 => *self = Items::One(item),
            Items::Many(v) => v.push(item),
            Items::One(first) => {
                let mut v = Vec::with_capacity(4);
                v.push(*first);
                v.push(item);
                *self = Items::Many(v);
            }
        }
    }

    fn retain(&mut self, keep: impl FnMut(&Item<T>) -> bool) {
        match self {
            Items::One(i) => {
                let mut keep = keep;
                if !keep(i) {
                    *self = Items::Many(Vec::new());
                }
            }
            Items::Many(v) => v.retain(keep),
        }
    }
}

/// One item of a window. `open_flow` is meaningful only while `open` (two fields instead of an
/// `Option<u64>`: 8 bytes less, and the flags leave a niche for [`Items`]' tag).
#[derive(Clone, Copy, Debug)]
struct Item<T> {
    first: i64,
    last: i64,
    /// The latest flow reported for this item in an update and not yet ended (so an alert
    /// raised now counts its end as already seen), when `open`.
    open_flow: u64,
    what: T,
    failed: bool,
    open: bool,
}

/// A horizontal key's window and its expiry deadline (see [`Expiry`]).
#[derive(Clone, Debug)]
struct HWindow {
    window: Window<IpAddr>,
    due: i64,
}

impl Due for HWindow {
    fn due_mut(&mut self) -> &mut i64 {
        &mut self.due
    }
}

impl<T: Copy + PartialEq> Window<T> {
    fn new() -> Self {
        Window {
            items: Items::Many(Vec::new()),
            newest: i64::MIN,
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
        self.newest = self.newest.max(first);
        if let Some(it) = self
            .items
            .as_mut_slice()
            .iter_mut()
            .find(|i| i.what == what)
        {
            // A success wins: the port (host) works.
            it.failed &= failed;
            it.first = it.first.min(first);
            it.last = it.last.max(last);
            if ended && it.open && it.open_flow == id {
                it.open = false;
            } else if !ended {
                it.open = true;
                it.open_flow = id;
            }
            return Ok(0);
        }
        if self.items.len() >= cap {
            return Err(());
        }
        self.items.push(Item {
            what,
            first,
            last,
            failed,
            open: !ended,
            open_flow: id,
        });
        Ok(1)
    }

    /// A de-duplicator that knows the flows reported in updates and not yet ended.
    fn dedup(&self) -> FlowDedup {
        let mut d = FlowDedup::default();
        for id in self.items.iter().filter(|i| i.open).map(|i| i.open_flow) {
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
    /// The pair's alert and tombstone, when it has either (few pairs ever do).
    ext: Option<Box<VExt>>,
    /// Expiry deadline (see [`Expiry`]).
    due: i64,
}

/// What only pairs that raised an alert carry.
#[derive(Debug)]
struct VExt {
    active: Option<VActive>,
    /// Latest probe start of the last closed alert: earlier probes are late reports of it.
    tomb: Option<i64>,
    tomb_until: i64,
}

impl Due for VPair {
    fn due_mut(&mut self) -> &mut i64 {
        &mut self.due
    }
}

impl VPair {
    fn active(&self) -> Option<&VActive> {
        self.ext.as_ref().and_then(|e| e.active.as_ref())
    }

    fn tomb(&self) -> Option<i64> {
        self.ext.as_ref().and_then(|e| e.tomb)
    }

    /// Drops the extension once it holds neither an alert nor a tombstone.
    fn trim(&mut self) {
        if self
            .ext
            .as_ref()
            .is_some_and(|e| e.active.is_none() && e.tomb.is_none())
        {
            self.ext = None;
        }
    }

    /// The earliest tick that may change the pair: its alert's close, its tombstone's end,
    /// or its window's expiry.
    fn deadline(&self, t: i64, grace: i64) -> i64 {
        match self.ext.as_deref() {
            Some(VExt {
                active: Some(a), ..
            }) => a.last_probe_start.saturating_add(t).saturating_add(1),
            Some(VExt {
                tomb: Some(_),
                tomb_until,
                ..
            }) => tomb_until.saturating_add(1),
            _ => self.window.deadline(t, grace),
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
        if let Some(e) = self.ext.as_deref_mut() {
            if let Some(a) = &e.active {
                if now.saturating_sub(a.last_probe_start) > t {
                    if let Some(a) = e.active.take() {
                        e.tomb = Some(a.last_probe_start);
                        e.tomb_until = now.saturating_add(grace);
                        closed.push(a.alert);
                    }
                } else {
                    return true;
                }
            }
            if e.tomb.is_some() && now <= e.tomb_until {
                return true;
            }
            e.tomb = None;
        }
        self.trim();
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

    /// One flow summary; `decided`: its [`decided`] outcome (with this detector's
    /// `syn_timeout_secs`), computed once by the caller for every detector.
    pub(crate) fn observe(
        &mut self,
        f: &FlowObs,
        ended: bool,
        decided: Option<bool>,
        now: i64,
        em: &mut Emitter,
    ) {
        if !self.cfg.enabled {
            return;
        }
        let Some(failed) = decided else {
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
                ext: None,
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
            if let Some(a) = p.ext.as_deref_mut().and_then(|e| e.active.take()) {
                p.trim();
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
            .filter_map(|p| p.active().map(|a| &a.alert))
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
        if pair.tomb().is_some_and(|t| first <= t) {
            return;
        }
        if let Some(a) = pair.ext.as_deref_mut().and_then(|e| e.active.as_mut()) {
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
        for it in pair.window.items.iter() {
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
        match pair.ext.as_deref_mut() {
            Some(e) => e.active = Some(a),
            None => {
                pair.ext = Some(Box::new(VExt {
                    active: Some(a),
                    tomb: None,
                    tomb_until: 0,
                }))
            }
        }
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
    keys: foldhash::HashMap<(IpAddr, u8, u16), HWindow>,
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

    /// One flow summary; `decided`: its [`decided`] outcome (computed once by the caller).
    pub(crate) fn observe(
        &mut self,
        f: &FlowObs,
        ended: bool,
        decided: Option<bool>,
        now: i64,
        em: &mut Emitter,
    ) {
        if !self.cfg.enabled {
            return;
        }
        let Some(failed) = decided else {
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
        let hw = match self.keys.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if full => {
                self.drops += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(HWindow {
                window: Window::new(),
                due: UNQUEUED,
            }),
        };
        let w = &mut hw.window;
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
        self.key_queue.schedule(&mut hw.due, &key, at);
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
        for it in w.items.iter() {
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
            let ow = ow.window;
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
        self.key_queue.expire(&mut self.keys, now, |hw| {
            let w = &hw.window;
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
        self.keys.retain(|_, hw| {
            let w = &hw.window;
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::scan_ref;
    use crate::obs::Endpoint;
    use proptest::prelude::*;

    #[test]
    fn compact_sizes() {
        // One probe per window is held inline; pairs without an alert carry no tombstone.
        assert_eq!(size_of::<Item<u16>>(), 32);
        assert_eq!(size_of::<Items<u16>>(), 32);
        assert_eq!(size_of::<Items<IpAddr>>(), 48);
        assert_eq!(size_of::<VPair>(), 56);
        assert_eq!(size_of::<HWindow>(), 64);
    }

    #[test]
    fn items_inline_then_list() {
        let mut w: Window<u16> = Window::new();
        assert_eq!(w.observe(7, (1, false), (5, 6), true, 8), Ok(1));
        assert!(matches!(w.items, Items::One(_)));
        assert_eq!(w.observe(7, (1, true), (5, 9), false, 8), Ok(0));
        assert_eq!(w.items.len(), 1);
        assert!(!w.items.as_slice()[0].failed && !w.items.as_slice()[0].open);
        assert_eq!(w.observe(8, (2, false), (10, 10), true, 8), Ok(1));
        assert!(matches!(w.items, Items::Many(_)));
        // Refused (full), but the window's newest start moves on, as before.
        assert_eq!(w.observe(9, (3, false), (11, 11), true, 2), Err(()));
        assert_eq!(w.prune(1), 1);
        assert_eq!(w.items.len(), 1);
        assert_eq!(w.prune(0), 1);
        assert!(w.items.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Flow {
            id: u64,
            src: u8,
            dst: u8,
            port: u16,
            proto: u8,
            st: u8,
            ended: bool,
            answered: bool,
            icmp: bool,
            age: i64,
            dur: i64,
        },
        Tick(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (
                (0u64..24, 0u8..4, 0u8..8, 0u16..12, 0u8..3),
                (0u8..6, any::<bool>(), any::<bool>(), 0u8..8, 0i64..90, 0i64..20),
            )
                .prop_map(|((id, src, dst, port, proto), (st, ended, answered, icmp, age, dur))| Op::Flow {
                    id,
                    src,
                    dst,
                    port,
                    proto: [6, 17, 132][usize::from(proto)],
                    st,
                    ended,
                    answered,
                    icmp: icmp == 0,
                    age,
                    dur,
                }),
            3 => prop_oneof![0i64..3, 0i64..40, Just(400)].prop_map(Op::Tick),
        ]
    }

    fn obs(o: &Op, now: i64) -> Option<(FlowObs, bool)> {
        let Op::Flow {
            id,
            src,
            dst,
            port,
            proto,
            st,
            ended,
            answered,
            icmp,
            age,
            dur,
        } = *o
        else {
            return None;
        };
        let states = [
            TcpState::SynOnly,
            TcpState::Rejected,
            TcpState::HalfOpen,
            TcpState::Established,
            TcpState::Closed,
            TcpState::Other,
        ];
        let ip = |a: u8, b: u8| IpAddr::V4(core::net::Ipv4Addr::new(10, 0, a, b));
        let first = now.saturating_sub(age * NS / 2);
        let f = FlowObs {
            id,
            first_ts: Timestamp(first),
            last_ts: Timestamp(first.saturating_add(dur * NS / 4)),
            iface: 0,
            proto,
            initiator: Endpoint {
                ip: ip(0, src),
                port: 40_000,
            },
            responder: Endpoint {
                ip: ip(1, dst),
                port,
            },
            packets: [1, u64::from(answered)],
            bytes: [60, 60 * u64::from(answered)],
            tcp: (proto == 6).then(|| states[usize::from(st) % 6]),
            responder_answered: answered,
            icmp_errors: u32::from(icmp),
            app: None,
            end: ended.then_some(crate::obs::EndReason::Other),
        };
        Some((f, ended))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        /// The compact tables raise, update and close exactly the alerts the tables before
        /// them did (same events in the same order, same evidence), keep as many pairs, keys
        /// and probes, and drop the same observations.
        #[test]
        fn same_alerts_as_before_the_compact_tables(
            ops in prop::collection::vec(op(), 1..300),
            (min_ports, min_hosts, window) in (2u32..6, 2u32..6, 1u32..30),
            (max_pairs, max_ports, max_probes) in (1usize..6, 1usize..6, 1usize..24),
            (max_keys, max_hosts, alert_hosts) in (1usize..8, 1usize..6, 1usize..8),
            grace in 0u32..60,
        ) {
            let vcfg = VerticalScanConfig {
                min_ports,
                window_secs: window,
                sequential_run: 3,
                high_severity_ports: 6,
                max_pairs,
                max_ports_per_pair: max_ports,
                max_probes,
                ..VerticalScanConfig::default()
            };
            let hcfg = HorizontalScanConfig {
                min_hosts,
                window_secs: window,
                high_severity_hosts: 5,
                max_keys,
                max_hosts_per_key: max_hosts,
                max_probes,
                max_alert_hosts: alert_hosts,
                ..HorizontalScanConfig::default()
            };
            let mut v = Vertical::new(vcfg.clone(), grace);
            let mut h = Horizontal::new(hcfg.clone(), grace);
            let mut rv = scan_ref::Vertical::new(vcfg, grace);
            let mut rh = scan_ref::Horizontal::new(hcfg, grace);
            let (mut em, mut rem) = (Emitter::new(1 << 20), Emitter::new(1 << 20));
            let mut now = 1_000 * NS;
            for o in &ops {
                match obs(o, now) {
                    Some((f, ended)) => {
                        let d = decided(&f, ended, now, 5);
                        v.observe(&f, ended, d, now, &mut em);
                        h.observe(&f, ended, d, now, &mut em);
                        rv.observe(&f, ended, now, &mut rem);
                        rh.observe(&f, ended, now, &mut rem, 5);
                    }
                    None => {
                        let Op::Tick(d) = o else { continue };
                        now += d * NS / 2 + 1;
                        v.tick(now, &mut em);
                        h.tick(now, &mut em);
                        rv.tick(now, &mut rem);
                        rh.tick(now, &mut rem);
                    }
                }
                prop_assert_eq!(&em.events, &rem.events);
                prop_assert_eq!(v.tracked(), rv.tracked());
                prop_assert_eq!(h.tracked(), rh.tracked());
                prop_assert_eq!((v.drops, h.drops), (rv.drops, rh.drops));
                let mut a: Vec<Alert> = v.active().chain(h.active()).cloned().collect();
                let mut b: Vec<Alert> = rv.active().chain(rh.active()).cloned().collect();
                a.sort_by_key(|a| a.id);
                b.sort_by_key(|a| a.id);
                prop_assert_eq!(a, b);
            }
            v.finish(&mut em);
            h.finish(&mut em);
            rv.finish(&mut rem);
            rh.finish(&mut rem);
            for k in 1..4 {
                v.tick(now + k * 200 * NS, &mut em);
                h.tick(now + k * 200 * NS, &mut em);
                rv.tick(now + k * 200 * NS, &mut rem);
                rh.tick(now + k * 200 * NS, &mut rem);
                prop_assert_eq!(v.tracked(), rv.tracked());
                prop_assert_eq!(h.tracked(), rh.tracked());
            }
            prop_assert_eq!(&em.events, &rem.events);
        }
    }
}
