//! Traffic statistics and detectors for netmon, driven by the packets' clock.
//!
//! One aggregator, [`Stats`], is fed packet observations ([`PacketObs`]) and flow summaries
//! ([`FlowObs`]) by the engine and keeps:
//!
//! - **rolling windows** (default 1 s, 10 s, 60 s) per interface and protocol key (all, L3,
//!   L4, application): packets/s, bits/s, new flows/s, active flows — published once per
//!   second as a [`Snapshot`] through a [`SnapshotCell`] that readers on other threads load
//!   without ever blocking the packet path, and optionally as a time series
//!   ([`SeriesPoint`]s) for offline reports;
//! - the **protocol hierarchy** ([`Hierarchy`], like `tshark -z io,phs`);
//! - **top talkers** ([`TopTalkers`]): hosts, host pairs and ports by bytes and packets;
//! - **detectors**: vertical and horizontal scans, ARP sweeps, flow-rate floods and threshold
//!   rules, each raising one [`Alert`] per incident ([`AlertEvent::Raised`], later
//!   [`AlertEvent::Closed`] with the final evidence).
//!
//! Time is only ever the packets' clock: [`Stats::advance`] (called by [`Stats::on_packet`])
//! closes finished seconds. Replaying a file is deterministic — the same observations in the
//! same order give the same alerts, snapshots and series, byte for byte. Every table is
//! bounded; what a bound refuses is counted in [`Counters`].
//!
//! This crate sits beside `netmon-flow`: it does not depend on it. The engine adapts its flow
//! events to [`FlowObs`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use netmon_stats::{AlertEvent, AlertKind, Endpoint, FlowObs, PacketObs, Stats, StatsConfig, TcpState};
//! use netmon_types::Timestamp;
//!
//! let mut stats = Stats::new(StatsConfig::default()).unwrap();
//! let scanner = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
//! let victim = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
//! for (i, port) in (20..40u16).enumerate() {
//!     let ts = Timestamp::from_secs_nanos(1_700_000_000, i as u32 * 1_000_000);
//!     stats.on_packet(&PacketObs::new(ts, 0, 60));
//!     let probe = FlowObs {
//!         id: i as u64,
//!         first_ts: ts,
//!         last_ts: ts,
//!         iface: 0,
//!         proto: 6,
//!         initiator: Endpoint { ip: scanner, port: 40_000 },
//!         responder: Endpoint { ip: victim, port },
//!         packets: [1, 1],
//!         bytes: [60, 60],
//!         tcp: Some(TcpState::Rejected),
//!         responder_answered: true,
//!         icmp_errors: 0,
//!         app: None,
//!         end: None,
//!     };
//!     stats.on_flow_start(&probe);
//!     stats.on_flow_end(&probe);
//! }
//! stats.finish();
//! let events = stats.drain_alerts();
//! let closed: Vec<_> = events.iter().filter(|e| e.is_closed()).map(AlertEvent::alert).collect();
//! assert_eq!(closed.len(), 1);
//! assert_eq!(closed[0].kind, AlertKind::VerticalScan);
//! assert_eq!(closed[0].source.to_string(), "192.0.2.1");
//! println!("{}", serde_json::to_string(closed[0]).unwrap());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod alert;
pub mod detect;
pub mod hierarchy;
pub mod obs;
pub mod snapshot;
pub mod talkers;
pub mod tally;
pub mod window;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use alert::{Alert, AlertEvent, AlertKind, Evidence, Severity, Subject};
pub use detect::{
    ArpSweepConfig, DetectorDrops, DetectorsConfig, HorizontalScanConfig, Rule, RuleError,
    SynFloodConfig, VerticalScanConfig,
};
pub use hierarchy::{Hierarchy, HierarchyNode};
pub use netmon_types::Timestamp;
pub use obs::{
    ArpObs, EndReason, Endpoint, FlowObs, IpObs, L3Kind, LayerKey, Layers, PacketBrief, PacketObs,
    ProbeOutcome, TcpState,
};
pub use snapshot::{
    Counters, IfaceSnapshot, ProtoSnapshot, SeriesConfig, SeriesPoint, Snapshot, SnapshotCell,
};
pub use talkers::{HostPair, RankBy, Ranked, ServicePort, SpaceSaving, TalkersReport, TopTalkers};
pub use tally::PacketTally;
pub use window::{Counts, Metric, ProtoKey, WindowValues};

use detect::{Emitter, NS, arp::ArpSweep, flood::Flood, rule::RuleState, scan};
use window::Rings;

/// Longest window (and rule window) accepted, seconds.
pub const MAX_WINDOW_SECS: u32 = 3600;

/// Configuration of [`Stats`]. Every field has a default; a config file may set any subset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// Window lengths in seconds. Default `[1, 10, 60]`.
    pub windows: Vec<u32>,
    /// Interfaces with their own rows; more share an `overflow` row. Default 64.
    pub max_ifaces: usize,
    /// Protocol keys per interface; more share an `overflow` key. Default 256.
    pub max_keys_per_iface: usize,
    /// Protocol hierarchy nodes. Default 4096.
    pub max_hierarchy_nodes: usize,
    /// Counters per top-talker ranking (six rankings). Default 16 384: exact up to that many
    /// distinct keys, beyond it every key above 1/16 384 of the total is listed.
    pub talkers_capacity: usize,
    /// Flows tracked individually (for application keys and talker updates). Default 262 144.
    pub max_tracked_flows: usize,
    /// Emit the per-window time series (off by default).
    pub series: Option<SeriesConfig>,
    /// Detector settings.
    pub detectors: DetectorsConfig,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            windows: vec![1, 10, 60],
            max_ifaces: 64,
            max_keys_per_iface: 256,
            max_hierarchy_nodes: 4096,
            talkers_capacity: 16_384,
            max_tracked_flows: 1 << 18,
            series: None,
            detectors: DetectorsConfig::default(),
        }
    }
}

/// A configuration [`Stats::new`] refuses.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A threshold rule does not parse.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A window is zero or longer than [`MAX_WINDOW_SECS`].
    #[error("window of {0} s: windows must be 1..={MAX_WINDOW_SECS} s")]
    Window(u32),
    /// No window configured.
    #[error("no window configured")]
    NoWindows,
    /// A rule's window is longer than the longest configured window.
    #[error(
        "threshold rule `{rule}`: window {window} s is longer than the longest configured window ({longest} s)"
    )]
    RuleWindow {
        /// The rule.
        rule: String,
        /// Its window.
        window: u32,
        /// The longest configured window.
        longest: u32,
    },
    /// The window rings would exceed the memory budget.
    #[error(
        "window rings would need up to {bytes} bytes (max_ifaces × max_keys_per_iface × longest window × 24); the limit is 512 MiB"
    )]
    Memory {
        /// Bytes needed.
        bytes: u64,
    },
}

/// Per-flow state kept while a flow lives (bounded by `max_tracked_flows`): four bytes, so
/// an entry of the table (keyed by flow id) takes 16 bytes; it took 48 with the application's
/// `&str` and the talkers' counts in it (a table of 131 072 buckets: 6.4 MB then, 2.2 MB now).
#[derive(Clone, Copy, Debug, Default)]
struct FlowTrack {
    /// The application the flow was counted under: 1 + its index in [`Apps`]; 0: none yet.
    app: u16,
    /// Whether the flood detector counted the flow as failed.
    failed_counted: bool,
    /// Whether the talkers counted part of the flow at a periodic update (what they counted
    /// is in `Stats::counted`).
    exported: bool,
    /// The probe outcome the scan detectors were last shown, as `scan::decided` gives it
    /// (`Some(true)`: failed; `None`: not shown yet, or undecided, which they ignore).
    decided: Option<bool>,
}

/// The applications seen, each given a small number (for [`FlowTrack::app`]). Names are the
/// classifier's `&'static str`s: a few dozen at most.
#[derive(Debug, Default)]
struct Apps(Vec<&'static str>);

impl Apps {
    /// The number of `app` (1-based), given one on first sight; 0 if the table is full
    /// (65 535 names: cannot happen with static names, but a full table only stops counting
    /// new applications).
    fn id(&mut self, app: &'static str) -> u16 {
        if let Some(i) = self
            .0
            .iter()
            .position(|&a| core::ptr::eq(a, app) || a == app)
        {
            return u16::try_from(i + 1).unwrap_or(0);
        }
        if self.0.len() >= usize::from(u16::MAX) {
            return 0;
        }
        self.0.push(app);
        u16::try_from(self.0.len()).unwrap_or(0)
    }

    fn name(&self, id: u16) -> Option<&'static str> {
        self.0.get(usize::from(id).checked_sub(1)?).copied()
    }
}

#[derive(Debug)]
struct Series {
    windows: Vec<u32>,
    points: Vec<SeriesPoint>,
    max_pending: usize,
}

/// The statistics aggregator. See the [crate documentation](crate).
#[derive(Debug)]
pub struct Stats {
    cfg: StatsConfig,
    windows: Vec<u32>,
    rings: Rings,
    hierarchy: Hierarchy,
    talkers: TopTalkers,
    flows: foldhash::HashMap<u64, FlowTrack>,
    /// What the talkers counted of tracked flows that had a periodic update (bytes, packets).
    counted: foldhash::HashMap<u64, [u64; 2]>,
    apps: Apps,
    vertical: scan::Vertical,
    horizontal: scan::Horizontal,
    arp: ArpSweep,
    flood: Flood,
    rules: Vec<RuleState>,
    em: Emitter,
    /// Second of the first observation.
    start: Option<i64>,
    /// The open (current) second.
    cur: i64,
    /// Latest time seen, ns.
    now: i64,
    /// Latest second with any activity.
    last_activity: i64,
    cell: Option<SnapshotCell>,
    series: Option<Series>,
    counters: Counters,
    finished: bool,
    /// The packets of the open second, counted at its close.
    pending: PacketTally,
}

/// Adds what a periodic update or an end adds to the talkers since the flow's last periodic
/// update. `track`: the flow's state (`None`: untracked, only its end counts, whole);
/// `counted`: what earlier updates counted of tracked flows.
fn talk(
    talkers: &mut TopTalkers,
    counted: &mut foldhash::HashMap<u64, [u64; 2]>,
    track: Option<&mut FlowTrack>,
    f: &FlowObs,
) {
    let (bytes, packets) = (f.total_bytes(), f.total_packets());
    let ended = f.end.is_some();
    let (db, dp) = match track {
        Some(t) => {
            let before = if !t.exported {
                [0, 0]
            } else if ended {
                counted.remove(&f.id).unwrap_or_default()
            } else {
                counted.get(&f.id).copied().unwrap_or_default()
            };
            if !ended {
                // Bounded like the tracked flows: one entry per tracked flow at most.
                let c = counted.entry(f.id).or_default();
                *c = [c[0].max(bytes), c[1].max(packets)];
                t.exported = true;
            }
            (
                bytes.saturating_sub(before[0]),
                packets.saturating_sub(before[1]),
            )
        }
        None if ended => (bytes, packets),
        None => (0, 0),
    };
    if db > 0 || dp > 0 {
        talkers.add(
            f.initiator.ip,
            f.responder.ip,
            f.proto,
            f.responder.port,
            db,
            dp,
        );
    }
}

impl Stats {
    /// An aggregator with the given configuration (rules parsed, windows checked).
    pub fn new(cfg: StatsConfig) -> Result<Stats, ConfigError> {
        let mut windows = cfg.windows.clone();
        windows.sort_unstable();
        windows.dedup();
        if windows.is_empty() {
            return Err(ConfigError::NoWindows);
        }
        if let Some(&w) = windows.iter().find(|&&w| w == 0 || w > MAX_WINDOW_SECS) {
            return Err(ConfigError::Window(w));
        }
        let mut series = cfg.series.clone().map(|s| Series {
            windows: if s.windows.is_empty() {
                windows.clone()
            } else {
                s.windows.clone()
            },
            points: Vec::new(),
            max_pending: s.max_pending,
        });
        if let Some(s) = &mut series {
            s.windows.sort_unstable();
            s.windows.dedup();
            if let Some(&w) = s.windows.iter().find(|&&w| w == 0 || w > MAX_WINDOW_SECS) {
                return Err(ConfigError::Window(w));
            }
        }
        let longest = windows.iter().copied().max().unwrap_or(1).max(
            series
                .as_ref()
                .and_then(|s| s.windows.iter().copied().max())
                .unwrap_or(1),
        );
        let mut rules = Vec::new();
        for text in &cfg.detectors.thresholds {
            let r = Rule::parse(text)?;
            if r.window_secs > longest {
                return Err(ConfigError::RuleWindow {
                    rule: r.text,
                    window: r.window_secs,
                    longest,
                });
            }
            rules.push(RuleState::new(r));
        }
        let bytes = (cfg.max_ifaces.max(1) as u64 + 1)
            .saturating_mul(cfg.max_keys_per_iface.max(2) as u64 + 1)
            .saturating_mul(u64::from(longest))
            .saturating_mul(24);
        if bytes > 512 << 20 {
            return Err(ConfigError::Memory { bytes });
        }
        let d = &cfg.detectors;
        Ok(Stats {
            windows,
            // One slot more than the longest window: the open second never aliases a closed one.
            rings: Rings::new(longest as usize + 1, cfg.max_ifaces, cfg.max_keys_per_iface),
            hierarchy: Hierarchy::new(cfg.max_hierarchy_nodes),
            talkers: TopTalkers::new(cfg.talkers_capacity),
            flows: Default::default(),
            counted: Default::default(),
            apps: Apps::default(),
            vertical: scan::Vertical::new(d.vertical_scan.clone(), d.late_grace_secs),
            horizontal: scan::Horizontal::new(d.horizontal_scan.clone(), d.late_grace_secs),
            arp: ArpSweep::new(d.arp_sweep.clone()),
            flood: Flood::new(d.syn_flood.clone()),
            rules,
            em: Emitter::new(d.max_pending_events),
            start: None,
            cur: 0,
            now: i64::MIN,
            last_activity: 0,
            cell: None,
            series,
            counters: Counters::default(),
            finished: false,
            pending: PacketTally::new(0),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &StatsConfig {
        &self.cfg
    }

    /// The window lengths, ascending.
    pub fn windows(&self) -> &[u32] {
        &self.windows
    }

    /// The latest time seen on the packets' clock (`None` before the first observation).
    pub fn now(&self) -> Option<Timestamp> {
        self.start.map(|_| Timestamp(self.now))
    }

    /// Counts one packet (and moves the clock to its timestamp). Allocation-free except when
    /// a new interface, protocol key or hierarchy path appears, or a second closes.
    ///
    /// The packet joins the open second's [`PacketTally`]; the windows, the hierarchy and the
    /// keys' totals take it when the second closes (or at [`Stats::finish`]), the
    /// [`Stats::counters`] at once.
    pub fn on_packet(&mut self, p: &PacketObs<'_>) {
        self.advance(p.ts);
        if self.pending.sec() != self.cur {
            self.flush_pending();
            self.pending.reset(self.cur);
        }
        self.last_activity = self.cur;
        if p.iface_name.is_some() {
            self.rings.note_iface(p.iface, p.iface_name);
        }
        self.pending.add(p);
        if let Some(a) = &p.arp {
            self.arp.observe(a, p.ts.0, &mut self.em);
        }
    }

    /// An ARP packet, for the ARP sweep detector (the clock moves to `ts` first): what
    /// [`Stats::on_packet`] does with [`PacketObs::arp`], for callers that count packets
    /// through a [`PacketTally`] and [`Stats::merge_tally`].
    pub fn on_arp(&mut self, a: &ArpObs, ts: Timestamp) {
        self.advance(ts);
        self.arp.observe(a, ts.0, &mut self.em);
    }

    /// Counts the packets of a tally filled elsewhere (e.g. by a worker thread), as
    /// [`Stats::on_packet`] would have counted them one by one — their ARP fields aside
    /// (see [`Stats::on_arp`]). The clock moves to the tally's latest packet; the packets count
    /// in the current second (those of a tally for an earlier second count as late).
    /// `names` are the interface names by index.
    pub fn merge_tally(&mut self, t: &PacketTally, names: &[Option<String>]) {
        let Some(ts) = t.max_ts() else {
            return;
        };
        self.advance(ts);
        let extra_late = if t.sec() < self.cur {
            t.packets().saturating_sub(t.late())
        } else {
            0
        };
        self.apply_tally(t, names, extra_late);
    }

    /// Counts the open second's packets.
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let sec = self.pending.sec();
        let t = core::mem::take(&mut self.pending);
        self.apply_tally(&t, &[], 0);
        self.pending = t;
        self.pending.reset(sec);
    }

    fn apply_tally(&mut self, t: &PacketTally, names: &[Option<String>], extra_late: u64) {
        let sec = self.cur;
        self.last_activity = sec;
        let c = &mut self.counters;
        c.packets += t.packets();
        c.bytes = c.bytes.saturating_add(t.bytes());
        c.late_packets += t.late() + extra_late;
        count_shapes(&mut self.rings, Some(&mut self.hierarchy), t, sec, names);
    }

    fn flow_keys(f: &FlowObs) -> [ProtoKey; 3] {
        [ProtoKey::All, ProtoKey::L3(f.l3()), ProtoKey::L4(f.proto)]
    }

    fn clock_for_flow(&mut self, f: &FlowObs) -> i64 {
        if self.start.is_none() {
            self.advance(f.first_ts);
        }
        self.last_activity = self.cur;
        self.cur
    }

    /// A flow started.
    pub fn on_flow_start(&mut self, f: &FlowObs) {
        let sec = self.clock_for_flow(f);
        self.counters.flows_started += 1;
        let new = Counts {
            packets: 0,
            bytes: 0,
            new_flows: 1,
        };
        let keys = Self::flow_keys(f);
        self.rings.count_and_raise(sec, f.iface, &keys, new);
        if let Some(a) = f.app {
            self.rings
                .count_and_raise(sec, f.iface, &[ProtoKey::App(a)], new);
        }
        // Nothing counted by the talkers yet: they count the flow at its next periodic
        // update or its end.
        let room = self.flows.len() < self.cfg.max_tracked_flows;
        let fresh = FlowTrack {
            app: f.app.map_or(0, |a| self.apps.id(a)),
            ..FlowTrack::default()
        };
        match self.flows.entry(f.id) {
            std::collections::hash_map::Entry::Occupied(e) => {
                // A flow id seen again (a new table, a replay): start over.
                if core::mem::replace(e.into_mut(), fresh).exported {
                    self.counted.remove(&f.id);
                }
            }
            std::collections::hash_map::Entry::Vacant(e) if room => {
                e.insert(fresh);
            }
            std::collections::hash_map::Entry::Vacant(_) => self.counters.flows_untracked += 1,
        }
        self.flood.on_start(f, self.now, &mut self.em);
    }

    /// A flow's periodic summary (active timeout: counters so far, state, application once
    /// known). The talkers count what the flow added since its last periodic summary.
    pub fn on_flow_update(&mut self, f: &FlowObs) {
        self.clock_for_flow(f);
        self.flow_common(f, false, true);
    }

    /// A flow's state changed (the responder answered, the TCP state moved, the application
    /// was named): the detectors and the application key see it; the talkers wait for the
    /// flow's next periodic update or its end (see [`TopTalkers`]).
    pub fn on_flow_change(&mut self, f: &FlowObs) {
        self.clock_for_flow(f);
        self.flow_common(f, false, false);
    }

    /// A flow ended (`f.end` says why).
    pub fn on_flow_end(&mut self, f: &FlowObs) {
        let sec = self.clock_for_flow(f);
        self.counters.flows_ended += 1;
        let app = self.flow_common(f, true, true);
        self.rings.gauge(sec, f.iface, &Self::flow_keys(f), false);
        if let Some(Some(a)) = app {
            self.rings.gauge(sec, f.iface, &[ProtoKey::App(a)], false);
        }
    }

    /// What every summary (change, update or end) does; `talk_now`: the summary feeds the
    /// talkers. An ended flow's track is removed first (one lookup per event); returns the
    /// track's application (`None`: the flow was untracked).
    fn flow_common(
        &mut self,
        f: &FlowObs,
        ended: bool,
        talk_now: bool,
    ) -> Option<Option<&'static str>> {
        let sec = self.cur;
        let now = self.now;
        let mut removed;
        let mut track = if ended {
            removed = self.flows.remove(&f.id);
            removed.as_mut()
        } else {
            self.flows.get_mut(&f.id)
        };
        // The application key counts a flow from the first summary that names it.
        if let (Some(a), Some(t)) = (f.app, track.as_deref_mut()) {
            let id = if t.app == 0 { self.apps.id(a) } else { 0 };
            if id != 0 {
                t.app = id;
                let new = Counts {
                    packets: 0,
                    bytes: 0,
                    new_flows: 1,
                };
                self.rings
                    .count_and_raise(sec, f.iface, &[ProtoKey::App(a)], new);
            }
        }
        if talk_now {
            talk(
                &mut self.talkers,
                &mut self.counted,
                track.as_deref_mut(),
                f,
            );
        }
        // Once for the three detectors (the vertical detector's own `syn_timeout_secs` is
        // this one: it was cloned from this configuration).
        let syn_timeout = self.cfg.detectors.vertical_scan.syn_timeout_secs;
        let decided = scan::decided(f, ended, now, syn_timeout);
        // A change that leaves the outcome as the detectors last saw it (an established
        // connection's FIN, the application named) tells them nothing but the flow's latest
        // packet time, which its periodic update or its end brings them. Updates and ends
        // always reach them; so does a change of outcome (the handshake's last ACK turns the
        // SYN-ACK's half-open failure into a success).
        let repeat = match track.as_deref_mut() {
            Some(t) if !ended => {
                core::mem::replace(&mut t.decided, decided) == decided && !talk_now
            }
            _ => false,
        };
        if repeat {
            self.counters.summaries_repeated += 1;
        } else {
            self.vertical.observe(f, ended, decided, now, &mut self.em);
            self.horizontal
                .observe(f, ended, decided, now, &mut self.em);
        }
        if f.proto == 6 && decided == Some(true) {
            let first = match track.as_deref_mut() {
                Some(t) => !core::mem::replace(&mut t.failed_counted, true),
                None => ended,
            };
            if first {
                self.flood.on_failed(f, now);
            }
        }
        track.map(|t| self.apps.name(t.app))
    }

    /// Moves the packets' clock to `now`, closing every finished second: window rows,
    /// threshold rules, series points, the published snapshot; then detector expiry.
    ///
    /// Time never goes back: an earlier `now` is ignored. An idle gap longer than the longest
    /// window is not stepped through second by second: once the windows have drained, the
    /// clock jumps (so a timestamp hours ahead costs at most one window's worth of steps).
    pub fn advance(&mut self, now: Timestamp) {
        let sec = now.secs();
        let Some(_) = self.start else {
            self.start = Some(sec);
            self.cur = sec;
            self.now = now.0;
            self.last_activity = sec;
            return;
        };
        if now.0 <= self.now {
            return;
        }
        self.now = now.0;
        if sec <= self.cur {
            return;
        }
        // The closing second's packets first.
        self.flush_pending();
        let ring = i64::try_from(self.rings.ring_len()).unwrap_or(i64::MAX);
        while self.cur < sec {
            if self.cur.saturating_sub(self.last_activity) >= ring {
                self.rings.clear_all();
                self.counters.clock_jumps += 1;
                self.cur = sec;
                break;
            }
            self.close_second(self.cur, false);
            self.cur += 1;
            self.rings.clear(self.cur);
        }
        let n = self.now;
        self.vertical.tick(n, &mut self.em);
        self.horizontal.tick(n, &mut self.em);
        self.arp.tick(n, &mut self.em);
        self.flood.tick(n, &mut self.em);
    }

    /// Seconds of a `w`-second window ending at `sec` that lie after the first second.
    fn covered(&self, sec: i64, w: u32) -> u32 {
        let since = sec
            .saturating_sub(self.start.unwrap_or(sec))
            .saturating_add(1);
        u32::try_from(since.clamp(1, i64::from(w))).unwrap_or(w)
    }

    fn close_second(&mut self, sec: i64, last: bool) {
        for i in 0..self.rules.len() {
            let covered = self
                .rules
                .get(i)
                .map_or(1, |r| self.covered(sec, r.rule.window_secs));
            if let Some(r) = self.rules.get_mut(i) {
                r.eval(&self.rings, sec, covered, &mut self.em);
            }
        }
        if self.series.is_some() {
            self.emit_series(sec, last);
        }
        if self.cell.as_ref().is_some_and(SnapshotCell::has_readers) {
            let snap = Arc::new(self.build_snapshot(sec));
            if let Some(c) = &self.cell {
                if !c.try_store(snap) {
                    self.counters.snapshots_skipped += 1;
                }
            }
        }
    }

    fn emit_series(&mut self, sec: i64, last: bool) {
        let start = self.start.unwrap_or(sec);
        let Some(series) = &self.series else {
            return;
        };
        let mut out = Vec::new();
        for &w in &series.windows {
            let elapsed = sec - start + 1;
            let rem = elapsed.rem_euclid(i64::from(w));
            let len = if rem == 0 {
                i64::from(w)
            } else if last {
                rem
            } else {
                continue;
            };
            let covered = u32::try_from(len).unwrap_or(w);
            let t0 = Timestamp((sec + 1 - len).saturating_mul(NS));
            let t1 = Timestamp((sec + 1).saturating_mul(NS));
            for f in &self.rings.ifaces {
                for k in &f.keys {
                    let c = k.sum(sec, covered);
                    if k.key != ProtoKey::All && c == Counts::default() && k.active == 0 {
                        continue;
                    }
                    let mut values = WindowValues::new(w, covered, c, k.active);
                    values.window_secs = w;
                    out.push(SeriesPoint {
                        start: t0,
                        end: t1,
                        iface: f.index,
                        iface_name: f.name.clone(),
                        layer: k.key.layer(),
                        proto: k.key.to_string(),
                        values,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            (a.values.window_secs, a.iface)
                .cmp(&(b.values.window_secs, b.iface))
                .then_with(|| key_order(a).cmp(&key_order(b)))
        });
        if let Some(s) = &mut self.series {
            for p in out {
                if s.points.len() < s.max_pending {
                    s.points.push(p);
                } else {
                    self.counters.series_points_dropped += 1;
                }
            }
        }
    }

    fn build_snapshot(&self, sec: i64) -> Snapshot {
        self.build_snapshot_of(&self.rings, sec)
    }

    fn build_snapshot_of(&self, rings: &Rings, sec: i64) -> Snapshot {
        let mut ifaces: Vec<IfaceSnapshot> = rings
            .ifaces
            .iter()
            .map(|f| {
                let mut keys: Vec<&window::KeyRing> = f.keys.iter().collect();
                keys.sort_by_key(|k| k.key);
                IfaceSnapshot {
                    iface: f.index,
                    name: f.name.clone(),
                    protos: keys
                        .into_iter()
                        .map(|k| ProtoSnapshot {
                            layer: k.key.layer(),
                            proto: k.key.to_string(),
                            active_flows: k.active,
                            total_packets: k.total.packets,
                            total_bytes: k.total.bytes,
                            total_new_flows: k.total.new_flows,
                            windows: self
                                .windows
                                .iter()
                                .map(|&w| {
                                    let cov = self.covered(sec, w);
                                    WindowValues::new(w, cov, k.sum(sec, w), k.active)
                                })
                                .collect(),
                        })
                        .collect(),
                }
            })
            .collect();
        ifaces.sort_by_key(|f| f.iface);
        Snapshot {
            ts: Timestamp(sec.saturating_add(1).saturating_mul(NS)),
            windows: self.windows.clone(),
            ifaces,
            counters: self.counters(),
        }
    }

    /// The cell readers load snapshots from (created on first call; clone it freely).
    /// Snapshots are built only while some clone of the cell is alive besides the
    /// aggregator's own.
    pub fn snapshot_cell(&mut self) -> SnapshotCell {
        self.cell.get_or_insert_with(SnapshotCell::new).clone()
    }

    /// A snapshot of the windows ending at the last closed second, built now (its totals
    /// include the open second).
    pub fn snapshot(&self) -> Snapshot {
        let sec = self.cur.saturating_sub(1);
        if self.pending.is_empty() {
            return self.build_snapshot(sec);
        }
        let mut rings = self.rings.clone();
        count_shapes(&mut rings, None, &self.pending, self.pending.sec(), &[]);
        self.build_snapshot_of(&rings, sec)
    }

    /// Ends the capture: closes the current second (emitting the last, possibly partial,
    /// series intervals), publishes a final snapshot and closes every open alert.
    /// Idempotent.
    pub fn finish(&mut self) {
        if self.finished || self.start.is_none() {
            self.finished = true;
            return;
        }
        self.finished = true;
        self.flush_pending();
        self.close_second(self.cur, true);
        if let Some(c) = &self.cell {
            let snap = Arc::new(self.build_snapshot(self.cur));
            if !c.try_store(snap) {
                self.counters.snapshots_skipped += 1;
            }
        }
        self.vertical.finish(&mut self.em);
        self.horizontal.finish(&mut self.em);
        self.arp.finish(&mut self.em);
        self.flood.finish(&mut self.em);
        for r in &mut self.rules {
            r.finish(&mut self.em);
        }
    }

    /// Whether alert events or series points are waiting to be drained (cheap; for callers
    /// that drain after every packet).
    pub fn has_pending(&self) -> bool {
        !self.em.events.is_empty() || self.series.as_ref().is_some_and(|s| !s.points.is_empty())
    }

    /// Takes the alert events raised since the last call, in order.
    pub fn drain_alerts(&mut self) -> Vec<AlertEvent> {
        core::mem::take(&mut self.em.events)
    }

    /// Takes the series points emitted so far (empty unless [`StatsConfig::series`] is set),
    /// ordered by closing second, then window, interface and key.
    pub fn drain_series(&mut self) -> Vec<SeriesPoint> {
        self.series
            .as_mut()
            .map(|s| core::mem::take(&mut s.points))
            .unwrap_or_default()
    }

    /// The alerts open now, with their evidence so far, by id.
    pub fn active_alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self
            .vertical
            .active()
            .chain(self.horizontal.active())
            .chain(self.arp.active())
            .chain(self.flood.active())
            .chain(self.rules.iter().filter_map(RuleState::active))
            .cloned()
            .collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// The protocol hierarchy (including the open second's packets).
    pub fn hierarchy(&self) -> std::borrow::Cow<'_, Hierarchy> {
        if self.pending.is_empty() {
            return std::borrow::Cow::Borrowed(&self.hierarchy);
        }
        let mut h = self.hierarchy.clone();
        for (shape, n) in self.pending.iter() {
            h.add_frames(shape.layers.as_slice(), n.packets, n.bytes);
        }
        std::borrow::Cow::Owned(h)
    }

    /// The top-talker rankings.
    pub fn talkers(&self) -> &TopTalkers {
        &self.talkers
    }

    /// Totals and drop counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        // The open second's packets are counted in the totals already.
        c.packets += self.pending.packets();
        c.bytes = c.bytes.saturating_add(self.pending.bytes());
        c.late_packets += self.pending.late();
        c.key_overflows = self.rings.key_overflows;
        c.iface_overflows = self.rings.iface_overflows;
        c.hierarchy_overflow_frames = self.hierarchy.overflow_frames();
        c.detector_drops = DetectorDrops {
            vertical_scan: self.vertical.drops,
            horizontal_scan: self.horizontal.drops,
            arp_sweep: self.arp.drops,
            syn_flood: self.flood.drops,
            alert_events: self.em.dropped,
        };
        c.alerts_raised = self.em.raised;
        c
    }

    /// Sizes of the bounded tables, for tests and `/metrics`.
    pub fn table_sizes(&self) -> TableSizes {
        let (vp, vprobes) = self.vertical.tracked();
        let (hk, hprobes) = self.horizontal.tracked();
        TableSizes {
            tracked_flows: self.flows.len(),
            exported_flows: self.counted.len(),
            vertical_pairs: vp,
            vertical_probes: vprobes,
            horizontal_keys: hk,
            horizontal_probes: hprobes,
            arp_senders: self.arp.tracked(),
            flood_sources: self.flood.tracked(),
            ifaces: self.rings.ifaces.len(),
            keys: self.rings.ifaces.iter().map(|f| f.keys.len()).sum(),
            hierarchy_nodes: self.hierarchy.rows().len(),
            pending_alert_events: self.em.events.len(),
            pending_series_points: self.series.as_ref().map_or(0, |s| s.points.len()),
        }
    }

    /// Everything at once: a snapshot, the hierarchy, the top `n` talkers, open alerts.
    pub fn report(&self, n: usize) -> Report {
        Report {
            snapshot: self.snapshot(),
            hierarchy: self.hierarchy().tree(),
            talkers: self.talkers.top(n),
            active_alerts: self.active_alerts(),
        }
    }
}

/// Adds a tally's shapes to the windows' second `sec` (and to the hierarchy, if given).
fn count_shapes(
    rings: &mut Rings,
    mut hierarchy: Option<&mut Hierarchy>,
    t: &PacketTally,
    sec: i64,
    names: &[Option<String>],
) {
    for (shape, n) in t.iter() {
        let mut keys = [ProtoKey::All; 4];
        let mut k = 1;
        if !shape.overflow {
            let mut push = |key| {
                if let Some(s) = keys.get_mut(k) {
                    *s = key;
                    k += 1;
                }
            };
            push(ProtoKey::L3(shape.l3));
            if let Some(proto) = shape.proto {
                push(ProtoKey::L4(proto));
            }
            if let Some(a) = shape.app {
                push(ProtoKey::App(a));
            }
        }
        let name = if shape.overflow {
            Some("overflow")
        } else {
            names.get(shape.iface as usize).and_then(|n| n.as_deref())
        };
        rings.count(sec, shape.iface, name, keys.get(..k).unwrap_or(&[]), *n);
        if let Some(h) = hierarchy.as_deref_mut() {
            h.add_frames(shape.layers.as_slice(), n.packets, n.bytes);
        }
    }
}

fn key_order(p: &SeriesPoint) -> (u8, &str) {
    let l = match p.layer {
        "all" => 0,
        "l3" => 1,
        "l4" => 2,
        "app" => 3,
        _ => 4,
    };
    (l, p.proto.as_str())
}

/// Sizes of the aggregator's bounded tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableSizes {
    /// Flows tracked individually.
    pub tracked_flows: usize,
    /// Tracked flows the talkers counted at a periodic update (each also a tracked flow).
    pub exported_flows: usize,
    /// Vertical scan (source, host) pairs.
    pub vertical_pairs: usize,
    /// Vertical scan probes held.
    pub vertical_probes: usize,
    /// Horizontal scan keys and sources.
    pub horizontal_keys: usize,
    /// Horizontal scan probes held.
    pub horizontal_probes: usize,
    /// ARP senders.
    pub arp_senders: usize,
    /// Flood sources.
    pub flood_sources: usize,
    /// Interface rows.
    pub ifaces: usize,
    /// Protocol keys over all interfaces.
    pub keys: usize,
    /// Hierarchy nodes.
    pub hierarchy_nodes: usize,
    /// Alert events waiting to be drained.
    pub pending_alert_events: usize,
    /// Series points waiting to be drained.
    pub pending_series_points: usize,
}

/// A full report ([`Stats::report`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Window metrics at the last closed second.
    pub snapshot: Snapshot,
    /// Protocol hierarchy.
    pub hierarchy: Vec<HierarchyNode>,
    /// Top talkers.
    pub talkers: TalkersReport,
    /// Alerts open now.
    pub active_alerts: Vec<Alert>,
}

#[cfg(test)]
mod tests;
