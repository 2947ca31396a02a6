//! The multi-core pipeline: one reader, N flow shards, one statistics aggregator.
//!
//! ```text
//! source ─▶ reader (caller's thread) ──batches──▶ shard 0 ─┐  (Engine: flows + classification)
//!            symmetric address hash   ──batches──▶ shard 1 ─┼─events─▶ aggregator ─▶ PipelineSink
//!                                       …                   ┘  (stats, detectors; records out)
//! ```
//!
//! - The reader copies each frame into the current batch of the shard its **symmetric address
//!   hash** picks (both directions of a flow, and every fragment of a datagram, hash alike; an
//!   ICMP error goes where the packet it quotes went, so errors still link to their flow).
//!   Batches are recycled: in steady state nothing is allocated per packet. With one shard
//!   and [`Backpressure::Block`] (a replay) there is nothing to spread: the reader runs the
//!   shard inline on its own thread, in the same batches and ticks, without copying a frame
//!   (CPU figures in `docs/architecture.md`, from `benches/daemon.sh --threads`). A live
//!   source keeps its shard on a thread of its own, so that the capture never waits for a
//!   batch.
//! - Each shard owns an [`Engine`] (flow table and classifier): no lock on the packet path. It
//!   builds the [`FlowRecord`] of every ended flow and counts its packets' statistics into a
//!   [`PacketTally`] per batch (windows, hierarchy, totals: sums, merged by shape); flow events
//!   and ARP packets, which the detectors take one by one, go as events stamped with the
//!   shard's clock.
//! - The aggregator owns the one [`Stats`] (windows, hierarchy, talkers, detectors), so scans
//!   whose probes fall into different shards are still seen as one scan, and it hands records,
//!   alerts and series points to the [`PipelineSink`].
//! - Backpressure is explicit: each shard has a fixed pool of batches. With
//!   [`Backpressure::Block`] (replay) the reader waits for a free batch; with
//!   [`Backpressure::Drop`] (live) it drops the packet and counts it in
//!   [`PipelineCounters::dropped`], per shard.
//! - Time: a packet counts in the second of the reader's clock (latest timestamp read) — what
//!   one engine's statistics clock would say. The reader sends every batch when its clock
//!   enters a new second and ticks every shard, so a batch never spans two seconds and every
//!   shard's output carries a clock that never goes back (its watermark). The aggregator
//!   applies the shards' outputs in order of their seconds, a second only once every shard
//!   reported a later clock, so nothing of a second arrives after it closed. Every shard's
//!   timers follow the reader's clock (batch clocks and ticks), so flows time out as in one
//!   engine.
//!
//! With one shard the records and statistics are those of a single [`Engine`]. With several,
//! each flow's record is the same, but records come out in a different order; the windows,
//! series, totals, hierarchy (siblings first seen in the same second aside) and talkers are a
//! single engine's, and the detectors see the same flows (within a second, in another order).
//! DNS answers are correlated with flows of the same shard only.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};
use netmon_capture::{CaptureError, CaptureSource, Direction, LinkType, Next, PacketMeta};
use netmon_classify::classifier::{ClassifyCtx, FlowClass};
use netmon_flow::{EndReason, Flow};
use netmon_stats::{AlertEvent, ArpObs, FlowObs, PacketBrief, PacketTally, SeriesPoint, Stats};
use netmon_types::Timestamp;

use crate::{ConfigError, Engine, EngineConfig, EngineSink, FlowEvent, FlowRecord, Summary};

/// What the reader does when a shard has no free batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// Wait (replay: nothing may be lost, the file can wait).
    Block,
    /// Drop the packet and count it (live: never stall the kernel ring).
    Drop,
}

/// How the pipeline is split over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// Flow shards (threads), at least 1.
    pub shards: usize,
    /// Packets per batch.
    pub batch_packets: usize,
    /// Batches per shard (the queue's depth plus the one being filled and the one processed).
    pub batches_per_shard: usize,
    /// Shard outputs (a batch's flow events, tally and ended-flow records) that may wait for
    /// the aggregator, over all shards (at least one per shard). They are the pipeline's
    /// buffer against bursts: a second's timeouts end hundreds of flows at once, in outputs of
    /// [`RECORDS_PER_EVENTS`] records, and a shallow queue makes the shards wait for the
    /// aggregator while a core idles.
    pub queued_outputs: usize,
    /// Packets a shard counts into one output before handing it to the aggregator (at least
    /// one batch). An output also goes at each new second, at [`RECORDS_PER_EVENTS`] ended
    /// flows, with an active-flow export, and after a batch cut short (a quiet live source,
    /// whose flows so reach the sink without waiting). Each output costs the aggregator a
    /// merge of its tally and a call of the sink, and the shard a hand-over: 1 024 packets
    /// rather than one batch of 256 took 15–20 % off the aggregator's CPU over big.pcap
    /// (`perf sched record -- netmond --config target/bench/daemon-1-on.yaml`, then
    /// `perf sched timehist` summed per thread; builds alternated, three runs each).
    pub output_packets: usize,
    /// What happens when a shard falls behind.
    pub backpressure: Backpressure,
    /// Every this long (wall clock, checked after each batch), each shard hands the records of
    /// its busiest active flows (at most [`ACTIVE_EXPORT_MAX`] by bytes) to
    /// [`PipelineSink::active_flows`] — the "active flows" of a live view. `None`: never.
    pub active_every: Option<std::time::Duration>,
    /// Attribute each TCP/UDP flow to the local process owning its socket, looked up at the
    /// flow's first packet by the shard that owns it
    /// ([`ProcessTracker`](crate::enrich::ProcessTracker); live capture on this host only).
    pub processes: bool,
}

/// Most active flows one shard exports at a time (its busiest by bytes).
pub const ACTIVE_EXPORT_MAX: usize = 5_000;

impl Default for ShardConfig {
    fn default() -> ShardConfig {
        ShardConfig {
            shards: 1,
            batch_packets: 256,
            batches_per_shard: 16,
            queued_outputs: 32,
            output_packets: 1024,
            backpressure: Backpressure::Block,
            active_every: None,
            processes: false,
        }
    }
}

/// Receives what the pipeline produces, on the aggregator's thread.
pub trait PipelineSink: Send {
    /// Once, before anything else, with the aggregator's statistics (when enabled): e.g. to
    /// take a [`Stats::snapshot_cell`] for readers on other threads.
    fn attach(&mut self, _stats: &mut Stats) {}
    /// After each batch of events, with the statistics (when enabled), for periodic reports.
    fn after_batch(&mut self, _stats: Option<&Stats>) {}
    /// Once, at the end, after the last records and alerts and the statistics' final close:
    /// the final state for reports (a rate-limited periodic report may have missed it).
    fn finished(&mut self, _stats: Option<&Stats>) {}
    /// A shard's busiest active flows (see [`ShardConfig::active_every`]); replaces what that
    /// shard exported before.
    fn active_flows(&mut self, _shard: usize, _records: Vec<FlowRecord>) {}
    /// A flow ended.
    fn flow_ended(&mut self, _record: FlowRecord) {}
    /// A detector raised or closed an alert.
    fn alert(&mut self, _event: &AlertEvent) {}
    /// A window value closed.
    fn series(&mut self, _point: &SeriesPoint) {}
}

impl PipelineSink for Vec<FlowRecord> {
    fn flow_ended(&mut self, record: FlowRecord) {
        self.push(record);
    }
}

/// Counters of the stages, readable while the pipeline runs (all relaxed atomics, updated per
/// batch, never per packet).
#[derive(Debug)]
pub struct PipelineCounters {
    /// Frames read from the source.
    pub read: AtomicU64,
    /// Frames handed to each shard.
    pub to_shard: Vec<AtomicU64>,
    /// Frames dropped because the shard had no free batch ([`Backpressure::Drop`]).
    pub dropped: Vec<AtomicU64>,
    /// Frames each shard processed (`to_shard - processed`: frames queued for the shard).
    pub processed: Vec<AtomicU64>,
    /// Flows in each shard's table, as of its last batch.
    pub active_flows: Vec<AtomicU64>,
    /// Flows each shard's full table evicted.
    pub evicted: Vec<AtomicU64>,
    /// Flow records handed to the sink.
    pub records: AtomicU64,
    /// Event batches the aggregator handled.
    pub event_batches: AtomicU64,
}

impl PipelineCounters {
    /// Zeroed counters for `shards` shards.
    pub fn new(shards: usize) -> PipelineCounters {
        let v = || (0..shards).map(|_| AtomicU64::new(0)).collect();
        PipelineCounters {
            read: AtomicU64::new(0),
            to_shard: v(),
            dropped: v(),
            processed: v(),
            active_flows: v(),
            evicted: v(),
            records: AtomicU64::new(0),
            event_batches: AtomicU64::new(0),
        }
    }

    /// Sum of [`PipelineCounters::dropped`].
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// What [`run_sharded`] returns.
#[derive(Debug)]
pub struct ShardedOutcome {
    /// Counters of the whole run: shard summaries added up, the source's counters.
    pub summary: Summary,
    /// Each shard's summary.
    pub shards: Vec<Summary>,
    /// The source's error, if it ended with one.
    pub error: Option<CaptureError>,
    /// The aggregator's statistics at the end (with [`EngineConfig::stats`]).
    pub stats: Option<Stats>,
}

/// One frame's place in a batch.
#[derive(Clone, Copy, Debug)]
struct Rec {
    ts: Timestamp,
    iface: u32,
    link_type: LinkType,
    direction: Direction,
    orig_len: u32,
    start: u32,
    len: u32,
}

/// Frames for one shard, with the reader's clock.
struct Batch {
    data: Vec<u8>,
    recs: Vec<Rec>,
    clock: Timestamp,
    names: Arc<Vec<Option<String>>>,
}

impl Batch {
    fn new(packets: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(packets * 256),
            recs: Vec::with_capacity(packets),
            clock: Timestamp::EPOCH,
            names: Arc::default(),
        }
    }
}

enum ToShard {
    Batch(Batch),
    /// The reader's clock entered a new second: move the timers to the last time of the old
    /// second (the flows that expired in it end in it, as in one engine), then to the new
    /// clock, and report both.
    Tick(Timestamp, Timestamp),
    Finish(EndReason),
}

/// What the statistics take one by one, in the order the shard saw it, each with the shard's
/// clock when it happened (the latest timestamp it had seen).
#[derive(Clone, Copy, Debug)]
enum Ev {
    Flow(FlowEvent, FlowObs, Timestamp),
    /// An ARP packet (for the sweep detector) and its own timestamp.
    Arp(ArpObs, Timestamp, Timestamp),
}

/// A shard's output for the aggregator: one per batch or tick.
struct Events {
    shard: usize,
    /// The reader's clock of the batch (or tick): every later `Events` of this shard has a
    /// clock at least as late — the shard's watermark.
    clock: Timestamp,
    /// The batch's packets, counted (they all count in `clock`'s second).
    tally: PacketTally,
    evs: Vec<Ev>,
    records: Vec<FlowRecord>,
    names: Arc<Vec<Option<String>>>,
    active: Option<Vec<FlowRecord>>,
    /// The shard's last output (after `Finish`).
    last: bool,
}

/// Most flow records one shard output carries (each output is one hand-over to the
/// aggregator): a burst of ended flows (the end of a capture, a mass timeout) goes out in
/// pieces of this size, so memory stays bounded by the queues' depth instead of growing with
/// the flow table. Recycled outputs keep their room, so this times the outputs in flight (the
/// queue to the aggregator and each shard's pool) is what records may hold: 64 rather than
/// 256, which held ~14 MB of records at the peak of a 5 M-packet replay over 2 shards
/// (`heaptrack netmond --config target/bench/daemon-2-on.yaml` on a build without mimalloc,
/// `heaptrack_print --print-peaks 1`); an output per 64 ended flows costs nothing measurable.
pub const RECORDS_PER_EVENTS: usize = 64;

/// The shard engine's sink: collects events into the current `Events`.
struct ShardSink {
    cur: Events,
    /// The shard's clock: latest timestamp of its packets, ticks and batch clocks.
    now: Timestamp,
    /// Observations go to the aggregator's statistics (else they only serve `processes`).
    stats: bool,
    processes: Option<crate::enrich::ProcessTracker>,
    /// Where full `Events` go, and the recycled ones come back from.
    out: Sender<Events>,
    recycled: Receiver<Events>,
    /// Packets counted into `cur` (by whole batches) since it was started.
    unsent: u64,
}

impl ShardSink {
    /// Sends the current `Events` with `clock` (even an empty one carries the shard's clock,
    /// its watermark) and starts the next, recycled when one is back, counted in the same
    /// second.
    fn send(&mut self, clock: Timestamp) {
        let mut next = match self.recycled.try_recv() {
            Ok(mut e) => {
                e.evs.clear();
                e.records.clear();
                e.active = None;
                e.last = false;
                e
            }
            // None back yet: a new one, with the room its predecessor took (growing from
            // empty copied the events and records at each doubling: about 1 % of the
            // reader's instructions with one shard).
            Err(_) => Events {
                shard: self.cur.shard,
                clock: Timestamp::EPOCH,
                tally: PacketTally::new(0),
                evs: Vec::with_capacity(self.cur.evs.capacity()),
                records: Vec::with_capacity(self.cur.records.capacity()),
                names: Arc::default(),
                active: None,
                last: false,
            },
        };
        next.names = Arc::clone(&self.cur.names);
        next.tally.reset(clock.secs());
        next.clock = clock;
        let full = std::mem::replace(&mut self.cur, next);
        self.unsent = 0;
        let _ = self.out.send(full);
    }
}

impl EngineSink<FlowClass> for ShardSink {
    fn flow_ended(&mut self, flow: &Flow<FlowClass>, iface_name: Option<&str>) {
        let mut r = FlowRecord::new(flow, iface_name);
        if let Some(t) = self.processes.as_mut() {
            r.enrich.process = t.take(r.id);
        }
        self.cur.records.push(r);
        if self.cur.records.len() >= RECORDS_PER_EVENTS {
            // The packets of this batch still count in its second: the next `Events` keeps
            // the clock.
            let clock = self.cur.clock;
            self.send(clock);
        }
    }
    fn packet_observed(&mut self, obs: &PacketBrief) {
        if !self.stats {
            return;
        }
        self.cur.tally.add_brief(obs);
        if let Some(a) = obs.arp {
            self.cur.evs.push(Ev::Arp(a, obs.ts, self.now));
        }
    }
    fn flow_observed(&mut self, event: FlowEvent, obs: &FlowObs) {
        if event == FlowEvent::Start {
            if let Some(t) = self.processes.as_mut() {
                t.flow_started(obs);
            }
        }
        if self.stats {
            self.cur.evs.push(Ev::Flow(event, *obs, self.now));
        }
    }
}

/// Which shard a frame belongs to: a hash of its two IP addresses, order-independent (for an
/// ICMP error, those of the packet it quotes). Frames without IP go to shard 0.
pub fn shard_of(link_type: LinkType, frame: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let h = crate::hash::symmetric_ip_hash(link_type, frame).unwrap_or(0);
    // Multiply-shift onto 0..shards.
    ((u128::from(h) * shards as u128) >> 64) as usize
}

/// Runs `source` through `shards.shards` flow shards and one aggregator until it ends, then
/// ends every flow with [`EndReason::EndOfCapture`] — or [`EndReason::Shutdown`] when the
/// source was stopped through its [`netmon_capture::StopHandle`] (every packet read before
/// the stop is processed, every record reaches the sink before this returns). `counters`, if given, is updated while it
/// runs (for self-metrics).
pub fn run_sharded<S: PipelineSink>(
    cfg: &EngineConfig,
    shards: &ShardConfig,
    source: &mut dyn CaptureSource,
    sink: &mut S,
    counters: Option<Arc<PipelineCounters>>,
) -> Result<ShardedOutcome, ConfigError> {
    let n = shards.shards.max(1);
    let counters = counters.unwrap_or_else(|| Arc::new(PipelineCounters::new(n)));
    let mut stats = cfg.stats.clone().map(Stats::new).transpose()?;
    let has_stats = stats.is_some();
    let shard_cfg = EngineConfig {
        stats: None,
        observe: stats.is_some() || shards.processes,
        ..cfg.clone()
    };
    // Validate once, before any thread starts.
    let mut engines = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = shard_cfg.clone();
        // Ids unique across shards: shard i numbers its flows i+1, i+1+n, ...
        c.flow.id_first = i as u64 + 1;
        c.flow.id_step = n as u64;
        let ctx = ClassifyCtx::new(c.classify.clone());
        engines.push(Engine::with_context(c, ctx)?);
    }
    // One shard replaying a file: the reader runs it inline, on its own thread (no copy of
    // the frames into batches, no hand-over between cores). A live source keeps its shard on
    // a thread of its own, so that a slow batch never holds up the capture ring.
    let inline = n == 1 && shards.backpressure == Backpressure::Block;

    let per = shards.batches_per_shard.max(2);
    let batch_packets = shards.batch_packets.max(1);

    let (ev_tx, ev_rx) = bounded::<Events>(shards.queued_outputs.max(n));
    let mut to_shard: Vec<Sender<ToShard>> = Vec::with_capacity(n);
    let mut free: Vec<Receiver<Batch>> = Vec::with_capacity(n);
    let mut shard_ends = Vec::with_capacity(n);
    let mut ev_free_tx = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = bounded::<ToShard>(per);
        let (free_tx, free_rx) = bounded::<Batch>(per);
        // An inline shard takes no batches: the reader hands it each frame in place.
        for _ in 0..if inline { 0 } else { per } {
            let _ = free_tx.send(Batch::new(batch_packets));
        }
        let (evf_tx, evf_rx) = bounded::<Events>(per + 2);
        to_shard.push(tx);
        free.push(free_rx);
        ev_free_tx.push(evf_tx.clone());
        shard_ends.push((rx, free_tx, evf_tx, evf_rx));
    }

    let result = std::thread::scope(|scope| {
        // Shards.
        let mut handles = Vec::with_capacity(n);
        let mut inline_shard = None;
        for (i, (engine, (rx, free_tx, _evf_tx, evf_rx))) in
            engines.into_iter().zip(shard_ends).enumerate()
        {
            let shard = Shard::new(
                i,
                engine,
                shards,
                batch_packets,
                has_stats,
                ev_tx.clone(),
                evf_rx,
            );
            if inline {
                inline_shard = Some(shard);
                continue;
            }
            let counters = Arc::clone(&counters);
            // Named, so that profiles and `top -H` tell the stages apart.
            let h = std::thread::Builder::new()
                .name(format!("netmon-shard-{i}"))
                .spawn_scoped(scope, move || shard_loop(shard, rx, free_tx, &counters));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => return Err(e),
            }
        }
        drop(ev_tx);

        // Aggregator.
        let agg_counters = Arc::clone(&counters);
        let stats_ref = &mut stats;
        let agg = std::thread::Builder::new()
            .name("netmon-aggregate".into())
            .spawn_scoped(scope, move || {
                aggregate(ev_rx, ev_free_tx, stats_ref, sink, &agg_counters);
            })?;

        // Reader (this thread).
        let stop = source.stop_handle();
        let (error, inline_shard) = match inline_shard {
            Some(mut shard) => {
                let error = read_inline(source, &mut shard, batch_packets, &counters);
                (error, Some(shard))
            }
            None => (
                read_loop(source, &to_shard, &free, batch_packets, shards, &counters),
                None,
            ),
        };
        // Stopped from outside (a signal): the flows still open end with `shutdown`.
        let reason = if stop.is_stopped() {
            EndReason::Shutdown
        } else {
            EndReason::EndOfCapture
        };
        for tx in &to_shard {
            let _ = tx.send(ToShard::Finish(reason));
        }
        drop(to_shard);
        let mut summaries: Vec<Summary> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        // The inline shard's end (its sender to the aggregator goes with it).
        if let Some(shard) = inline_shard {
            summaries.push(shard.finish(reason));
        }
        let _ = agg.join();
        Ok((summaries, error))
    });
    let (summaries, error) = result.map_err(ConfigError::Thread)?;
    let mut summary = Summary::default();
    for s in &summaries {
        add_summary(&mut summary, s);
    }
    summary.capture = source.stats();
    Ok(ShardedOutcome {
        summary,
        shards: summaries,
        error,
        stats,
    })
}

fn add_summary(to: &mut Summary, s: &Summary) {
    to.packets += s.packets;
    to.bytes += s.bytes;
    to.ip_packets += s.ip_packets;
    to.non_ip_packets += s.non_ip_packets;
    to.parse_errors += s.parse_errors;
    to.first = match (to.first, s.first) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    to.last = to.last.max(s.last);
    let (f, g) = (&mut to.flows, &s.flows);
    f.created += g.created;
    for (a, b) in f.ended.iter_mut().zip(g.ended) {
        *a += b;
    }
    f.flow_packets += g.flow_packets;
    f.unkeyed += g.unkeyed;
    f.fragments_pending += g.fragments_pending;
    f.fragments_orphaned += g.fragments_orphaned;
    f.fragment_overflows += g.fragment_overflows;
    f.icmp_errors_linked += g.icmp_errors_linked;
}

/// Keeps the reader's table of interface names up to date with a frame's: a new interface
/// (or its name) makes a new table, a superset of the old one, for the batches that follow.
/// True when the table changed.
fn learn_name(names: &mut Arc<Vec<Option<String>>>, meta: &PacketMeta<'_>) -> bool {
    let idx = meta.iface as usize;
    let known = names.get(idx).is_some_and(Option::is_some);
    if known || idx >= 65_536 || (meta.iface_name.is_none() && idx < names.len()) {
        return false;
    }
    let mut v = (**names).clone();
    if v.len() <= idx {
        v.resize(idx + 1, None);
    }
    if let Some(slot) = v.get_mut(idx) {
        *slot = meta.iface_name.map(str::to_owned);
    }
    *names = Arc::new(v);
    true
}

/// The reader with one shard run inline (a replay): the same batches and ticks as
/// [`read_loop`] and [`shard_loop`] together, without copying a frame. Returns the source's
/// error, if any.
fn read_inline(
    source: &mut dyn CaptureSource,
    shard: &mut Shard,
    batch_packets: usize,
    counters: &PipelineCounters,
) -> Option<CaptureError> {
    let mut names: Arc<Vec<Option<String>>> = Arc::default();
    let mut clock = Timestamp::EPOCH;
    let mut started = false;
    // Frames in the current batch, and whether one is open.
    let mut in_batch = 0u64;
    let mut open = false;
    let mut read = 0u64;
    let mut reported = 0u64;
    let batch_packets = batch_packets as u64;
    let end = |shard: &mut Shard, clock: Timestamp, in_batch: &mut u64, open: &mut bool| {
        if let Some(c) = counters.to_shard.first() {
            c.fetch_add(*in_batch, Ordering::Relaxed);
        }
        shard.end(clock, *in_batch, counters);
        *in_batch = 0;
        *open = false;
    };
    let error = loop {
        match source.next_packet() {
            Ok(Next::Packet(p)) => {
                read += 1;
                let ts = p.meta.ts;
                if !started || ts.secs() > clock.secs() {
                    // A new second: the batch so far goes out, then the shard hears the new
                    // clock (as `read_loop` flushes, then ticks).
                    if open {
                        end(shard, clock, &mut in_batch, &mut open);
                    }
                    let prev = if started { clock } else { ts };
                    shard.tick(prev, ts);
                    started = true;
                }
                if ts > clock {
                    clock = ts;
                }
                if learn_name(&mut names, &p.meta) {
                    shard.set_names(&names);
                }
                if !open {
                    shard.begin(clock, &names);
                    open = true;
                }
                let meta = PacketMeta {
                    iface_name: names.get(p.meta.iface as usize).and_then(|n| n.as_deref()),
                    ..p.meta
                };
                shard.packet(&meta, p.data);
                in_batch += 1;
                if in_batch >= batch_packets {
                    end(shard, clock, &mut in_batch, &mut open);
                }
                if read - reported >= 65_536 {
                    counters.read.fetch_add(read - reported, Ordering::Relaxed);
                    reported = read;
                }
            }
            Ok(Next::Timeout) => {
                // The source is quiet: time still goes on; the shard gets a batch, empty if
                // need be, carrying the source's clock.
                if let Some(now) = source.clock() {
                    clock = clock.max(now);
                }
                counters.read.fetch_add(read - reported, Ordering::Relaxed);
                reported = read;
                if !open {
                    shard.begin(clock, &names);
                }
                end(shard, clock, &mut in_batch, &mut open);
            }
            Ok(Next::End) => break None,
            Err(e) => break Some(e),
        }
    };
    if open {
        end(shard, clock, &mut in_batch, &mut open);
    }
    counters.read.fetch_add(read - reported, Ordering::Relaxed);
    error
}

/// The reader: fills batches and sends them; returns the source's error, if any.
fn read_loop(
    source: &mut dyn CaptureSource,
    to_shard: &[Sender<ToShard>],
    free: &[Receiver<Batch>],
    batch_packets: usize,
    cfg: &ShardConfig,
    counters: &PipelineCounters,
) -> Option<CaptureError> {
    let n = to_shard.len();
    let mut cur: Vec<Option<Batch>> = (0..n).map(|_| None).collect();
    let mut names: Arc<Vec<Option<String>>> = Arc::default();
    let mut clock = Timestamp::EPOCH;
    let mut read = 0u64;
    // `read` as last added to `counters.read`.
    let mut reported = 0u64;
    let mut sent = vec![0u64; n];
    let mut dropped = vec![0u64; n];
    let flush = |i: usize, cur: &mut Vec<Option<Batch>>, clock: Timestamp, sent: &mut [u64]| {
        if let Some(mut b) = cur.get_mut(i).and_then(Option::take) {
            b.clock = clock;
            if let (Some(tx), Some(c), Some(s)) =
                (to_shard.get(i), counters.to_shard.get(i), sent.get_mut(i))
            {
                c.fetch_add(*s, Ordering::Relaxed);
                *s = 0;
                let _ = tx.send(ToShard::Batch(b));
            }
        }
    };
    // Ticks a shard is owed (a live reader never waits for a shard's queue: it retries).
    let mut owed = vec![false; n];
    let mut any_owed = false;
    let tick = |i: usize, prev: Timestamp, clock: Timestamp, owed: &mut [bool]| -> bool {
        let Some(tx) = to_shard.get(i) else {
            return true;
        };
        let sent = match cfg.backpressure {
            Backpressure::Block => tx.send(ToShard::Tick(prev, clock)).is_ok(),
            Backpressure::Drop => tx.try_send(ToShard::Tick(prev, clock)).is_ok(),
        };
        if let Some(o) = owed.get_mut(i) {
            *o = !sent;
        }
        sent
    };
    let mut started = false;
    let error = loop {
        let next = source.next_packet();
        match next {
            Ok(Next::Packet(p)) => {
                read += 1;
                let ts = p.meta.ts;
                if !started || ts.secs() > clock.secs() {
                    // A new second on the reader's clock: every batch so far goes out (a batch
                    // holds the packets of one second), and every shard hears the new clock,
                    // so the aggregator knows when all shards are past a second.
                    for i in 0..n {
                        flush(i, &mut cur, clock, &mut sent);
                    }
                    any_owed = false;
                    let prev = if started { clock } else { ts };
                    for i in 0..n {
                        any_owed |= !tick(i, prev, ts, &mut owed);
                    }
                    started = true;
                } else if any_owed {
                    any_owed = false;
                    for i in 0..n {
                        if owed.get(i).copied().unwrap_or(false) {
                            any_owed |= !tick(i, clock, clock, &mut owed);
                        }
                    }
                }
                if ts > clock {
                    clock = ts;
                }
                let i = shard_of(p.meta.link_type, p.data, n);
                let slot = match cur.get_mut(i) {
                    Some(s) => s,
                    None => continue,
                };
                if slot.is_none() {
                    let got = match cfg.backpressure {
                        Backpressure::Block => free.get(i).and_then(|f| f.recv().ok()),
                        Backpressure::Drop => free.get(i).and_then(|f| f.try_recv().ok()),
                    };
                    match got {
                        Some(mut b) => {
                            b.data.clear();
                            b.recs.clear();
                            if !Arc::ptr_eq(&b.names, &names) {
                                b.names = Arc::clone(&names);
                            }
                            *slot = Some(b);
                        }
                        None => {
                            if let Some(d) = dropped.get_mut(i) {
                                *d += 1;
                            }
                            continue;
                        }
                    }
                }
                let Some(b) = slot.as_mut() else { continue };
                if learn_name(&mut names, &p.meta) {
                    b.names = Arc::clone(&names);
                }
                let start = b.data.len();
                b.data.extend_from_slice(p.data);
                b.recs.push(Rec {
                    ts: p.meta.ts,
                    iface: p.meta.iface,
                    link_type: p.meta.link_type,
                    direction: p.meta.direction,
                    orig_len: p.meta.orig_len,
                    start: u32::try_from(start).unwrap_or(u32::MAX),
                    len: u32::try_from(p.data.len()).unwrap_or(0),
                });
                if let Some(s) = sent.get_mut(i) {
                    *s += 1;
                }
                if b.recs.len() >= batch_packets {
                    flush(i, &mut cur, clock, &mut sent);
                }
                if read - reported >= 65_536 {
                    counters.read.fetch_add(read - reported, Ordering::Relaxed);
                    reported = read;
                }
            }
            Ok(Next::Timeout) => {
                // The source is quiet: time still goes on (a live link, a gap of a paced
                // replay). Every shard gets a batch, empty if need be, carrying the source's
                // clock, so that idle flows end and windows close.
                if let Some(now) = source.clock() {
                    clock = clock.max(now);
                }
                counters.read.fetch_add(read - reported, Ordering::Relaxed);
                reported = read;
                for i in 0..n {
                    if let (Some(slot @ None), Some(f)) = (cur.get_mut(i), free.get(i)) {
                        if let Ok(mut b) = f.try_recv() {
                            b.data.clear();
                            b.recs.clear();
                            b.names = Arc::clone(&names);
                            *slot = Some(b);
                        }
                    }
                    flush(i, &mut cur, clock, &mut sent);
                }
                if any_owed {
                    any_owed = false;
                    for i in 0..n {
                        if owed.get(i).copied().unwrap_or(false) {
                            any_owed |= !tick(i, clock, clock, &mut owed);
                        }
                    }
                }
            }
            Ok(Next::End) => break None,
            Err(e) => break Some(e),
        }
    };
    for i in 0..n {
        flush(i, &mut cur, clock, &mut sent);
    }
    counters.read.fetch_add(read - reported, Ordering::Relaxed);
    for (c, d) in counters.dropped.iter().zip(dropped) {
        c.fetch_add(d, Ordering::Relaxed);
    }
    error
}

/// The records of the engine's busiest active flows (by bytes), at most [`ACTIVE_EXPORT_MAX`].
fn busiest(
    engine: &Engine<FlowClass>,
    processes: Option<&crate::enrich::ProcessTracker>,
) -> Vec<FlowRecord> {
    let mut by_bytes: Vec<(u64, &Flow<FlowClass>)> = engine
        .table()
        .iter()
        .map(|f| (f.core.c2s().bytes + f.core.s2c().bytes, f))
        .collect();
    if by_bytes.len() > ACTIVE_EXPORT_MAX {
        by_bytes.select_nth_unstable_by(ACTIVE_EXPORT_MAX, |a, b| b.0.cmp(&a.0));
        by_bytes.truncate(ACTIVE_EXPORT_MAX);
    }
    by_bytes
        .into_iter()
        .map(|(_, f)| {
            let mut r = FlowRecord::new(f, engine.iface_name(u32::from(f.core.key.iface())));
            r.enrich.process = processes.and_then(|t| t.get(r.id)).cloned();
            r
        })
        .collect()
}

/// One shard: its engine and the sink collecting its output for the aggregator. It runs on a
/// thread of its own ([`shard_loop`]) or, with one shard replaying a file, inline on the
/// reader's ([`read_inline`]); either way it sees the same packets, batches and ticks.
struct Shard {
    i: usize,
    engine: Engine<FlowClass>,
    sink: ShardSink,
    active_every: Option<std::time::Duration>,
    last_export: std::time::Instant,
    /// See [`ShardConfig::output_packets`].
    output_packets: u64,
    /// A batch with fewer packets was cut short: the source paused (a live capture) or ended.
    batch_packets: u64,
}

impl Shard {
    /// Shard `i` with its engine. `batch_packets`: the reader's batch size (a smaller batch
    /// was cut short); `stats`: its observations feed the aggregator's statistics; its outputs
    /// go to `out` and come back through `recycled`.
    fn new(
        i: usize,
        engine: Engine<FlowClass>,
        cfg: &ShardConfig,
        batch_packets: usize,
        stats: bool,
        out: Sender<Events>,
        recycled: Receiver<Events>,
    ) -> Shard {
        Shard {
            i,
            engine,
            sink: ShardSink {
                cur: Events {
                    shard: i,
                    clock: Timestamp::EPOCH,
                    tally: PacketTally::new(0),
                    evs: Vec::new(),
                    records: Vec::new(),
                    names: Arc::default(),
                    active: None,
                    last: false,
                },
                now: Timestamp::EPOCH,
                stats,
                processes: cfg.processes.then(crate::enrich::ProcessTracker::new),
                out,
                recycled,
                unsent: 0,
            },
            active_every: cfg.active_every,
            last_export: std::time::Instant::now(),
            output_packets: cfg.output_packets as u64,
            batch_packets: batch_packets.max(1) as u64,
        }
    }

    /// Starts a batch: its packets all count in the second of `clock` (the reader starts a
    /// new batch when its clock enters a new second, after a tick). The current output may
    /// hold earlier batches of the same second (see [`ShardConfig::output_packets`]); one of
    /// another second goes out first.
    fn begin(&mut self, clock: Timestamp, names: &Arc<Vec<Option<String>>>) {
        if self.sink.unsent > 0 && self.sink.cur.tally.sec() != clock.secs() {
            let c = self.sink.cur.clock;
            self.sink.send(c);
        }
        self.set_names(names);
        self.sink.cur.clock = clock;
        if self.sink.unsent == 0 {
            self.sink.cur.tally.reset(clock.secs());
        }
    }

    /// The reader's interface names (the current output carries them; the next one starts
    /// with the same).
    fn set_names(&mut self, names: &Arc<Vec<Option<String>>>) {
        if !Arc::ptr_eq(names, &self.sink.cur.names) {
            self.sink.cur.names = Arc::clone(names);
        }
    }

    /// One frame of the batch.
    fn packet(&mut self, meta: &PacketMeta<'_>, data: &[u8]) {
        self.sink.now = self.sink.now.max(meta.ts);
        self.engine.process(meta, data, &mut self.sink);
    }

    /// Ends the batch of `packets` frames: the timers follow the reader's `clock` (its latest
    /// timestamp), and the batch's output goes to the aggregator.
    fn end(&mut self, clock: Timestamp, packets: u64, counters: &PipelineCounters) {
        self.sink.cur.clock = clock;
        self.sink.now = self.sink.now.max(clock);
        self.engine.advance(clock, &mut self.sink);
        if let Some(c) = counters.processed.get(self.i) {
            c.fetch_add(packets, Ordering::Relaxed);
        }
        if let Some(c) = counters.active_flows.get(self.i) {
            c.store(self.engine.table().len() as u64, Ordering::Relaxed);
        }
        if let Some(c) = counters.evicted.get(self.i) {
            c.store(
                self.engine
                    .table()
                    .stats()
                    .ended_by(netmon_flow::EndReason::Evicted),
                Ordering::Relaxed,
            );
        }
        if self
            .active_every
            .is_some_and(|every| self.last_export.elapsed() >= every)
        {
            self.last_export = std::time::Instant::now();
            self.sink.cur.active = Some(busiest(&self.engine, self.sink.processes.as_ref()));
        }
        // A batch cut short means a quiet source: its output goes now, not after more
        // batches, so that a slow live capture's flows reach the sink at once.
        self.sink.unsent += packets;
        if packets < self.batch_packets
            || self.sink.unsent >= self.output_packets
            || self.sink.cur.active.is_some()
        {
            let clock = self.sink.cur.clock;
            self.sink.send(clock);
        }
    }

    /// The reader's clock entered a new second: the timers move to the last time of the old
    /// second (`prev`), then to the new clock (`ts`), each reported.
    fn tick(&mut self, prev: Timestamp, ts: Timestamp) {
        if self.sink.unsent > 0 {
            // The batches of the old second go out as they are.
            let c = self.sink.cur.clock;
            self.sink.send(c);
        }
        for t in [prev, ts] {
            self.sink.now = self.sink.now.max(t);
            self.sink.cur.clock = self.sink.now;
            self.sink.cur.tally.reset(self.sink.now.secs());
            self.engine.advance(t, &mut self.sink);
            let clock = self.sink.cur.clock;
            self.sink.send(clock);
        }
    }

    /// Ends every flow still open, sends the shard's last output and returns its summary.
    fn finish(mut self, reason: EndReason) -> Summary {
        self.sink.cur.clock = self.sink.now;
        self.engine.finish(reason, &mut self.sink);
        self.sink.cur.last = true;
        let clock = self.sink.now;
        self.sink.send(clock);
        self.engine.summary()
    }
}

/// A shard on its own thread: takes the reader's batches and ticks until `Finish`.
fn shard_loop(
    mut shard: Shard,
    rx: Receiver<ToShard>,
    free_tx: Sender<Batch>,
    counters: &PipelineCounters,
) -> Summary {
    while let Ok(msg) = rx.recv() {
        match msg {
            ToShard::Batch(b) => {
                // Every packet of the batch counts in the second of the batch's clock (the
                // reader sends a batch per second at least).
                shard.begin(b.clock, &b.names);
                for r in &b.recs {
                    let start = r.start as usize;
                    let Some(data) = b.data.get(start..start + r.len as usize) else {
                        continue;
                    };
                    let meta = PacketMeta {
                        direction: r.direction,
                        ts: r.ts,
                        iface: r.iface,
                        iface_name: b.names.get(r.iface as usize).and_then(|n| n.as_deref()),
                        link_type: r.link_type,
                        cap_len: r.len,
                        orig_len: r.orig_len,
                    };
                    shard.packet(&meta, data);
                }
                shard.end(b.clock, b.recs.len() as u64, counters);
                let _ = free_tx.try_send(b);
            }
            ToShard::Tick(prev, ts) => shard.tick(prev, ts),
            ToShard::Finish(reason) => return shard.finish(reason),
        }
    }
    shard.engine.summary()
}

/// Most `Events` the aggregator holds back waiting for a slow shard; past it, the oldest is
/// applied anyway (its packets may then count as late).
const MAX_HELD: usize = 4096;

/// The reader's interface names, escaped.
#[derive(Default)]
struct Names {
    raw: Arc<Vec<Option<String>>>,
    escaped: Vec<Option<String>>,
}

impl Names {
    fn of(&mut self, raw: &Arc<Vec<Option<String>>>) -> &[Option<String>] {
        if !Arc::ptr_eq(raw, &self.raw) {
            self.raw = Arc::clone(raw);
            self.escaped = raw
                .iter()
                .map(|n| {
                    n.as_ref()
                        .map(|n| netmon_packet::Escaped::new(n.as_bytes()).to_string())
                })
                .collect();
        }
        &self.escaped
    }
}

/// One shard's output waiting at the aggregator.
struct Lane {
    queue: VecDeque<Events>,
    /// The second of the shard's latest clock: it will send nothing for an earlier second.
    mark: i64,
    done: bool,
}

/// The aggregator: applies the shards' outputs in the order of their clocks' seconds, a second
/// only once every shard is past the one before (so no packet of it can still come).
fn aggregate<S: PipelineSink>(
    ev_rx: Receiver<Events>,
    ev_free: Vec<Sender<Events>>,
    stats: &mut Option<Stats>,
    sink: &mut S,
    counters: &PipelineCounters,
) {
    if let Some(st) = stats.as_mut() {
        sink.attach(st);
    }
    let mut lanes: Vec<Lane> = (0..ev_free.len())
        .map(|_| Lane {
            queue: VecDeque::new(),
            mark: i64::MIN,
            done: false,
        })
        .collect();
    let mut held = 0usize;
    // The interface names as the statistics show them (escaped, as a single engine keeps them),
    // rebuilt when the reader's table changes.
    let mut escaped = Names::default();
    let mut pump =
        |lanes: &mut Vec<Lane>, held: &mut usize, stats: &mut Option<Stats>, sink: &mut S| loop {
            let watermark = lanes
                .iter()
                .filter(|l| !l.done)
                .map(|l| l.mark)
                .min()
                .unwrap_or(i64::MAX);
            let Some(next) = lanes
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.queue.front().map(|e| (e.clock.secs(), i)))
                .min()
            else {
                return;
            };
            if next.0 > watermark && *held <= MAX_HELD {
                return;
            }
            let Some(ev) = lanes.get_mut(next.1).and_then(|l| l.queue.pop_front()) else {
                return;
            };
            *held = held.saturating_sub(1);
            apply(ev, &ev_free, stats, sink, counters, &mut escaped);
        };
    while let Ok(ev) = ev_rx.recv() {
        if let Some(l) = lanes.get_mut(ev.shard) {
            l.mark = l.mark.max(ev.clock.secs());
            l.done |= ev.last;
            l.queue.push_back(ev);
            held += 1;
        }
        pump(&mut lanes, &mut held, stats, sink);
    }
    for l in &mut lanes {
        l.done = true;
    }
    pump(&mut lanes, &mut held, stats, sink);
    if let Some(st) = stats.as_mut() {
        st.finish();
        drain(st, sink);
    }
    sink.finished(stats.as_ref());
}

/// Hands one shard output to the statistics and the sink.
fn apply<S: PipelineSink>(
    mut ev: Events,
    ev_free: &[Sender<Events>],
    stats: &mut Option<Stats>,
    sink: &mut S,
    counters: &PipelineCounters,
    escaped: &mut Names,
) {
    if let Some(active) = ev.active.take() {
        sink.active_flows(ev.shard, active);
    }
    // A tick's output (a clock and nothing else) is no batch for the sink.
    let something = !(ev.evs.is_empty() && ev.records.is_empty() && ev.tally.is_empty());
    if let Some(st) = stats.as_mut() {
        for e in &ev.evs {
            match e {
                Ev::Flow(kind, f, at) => {
                    st.advance(*at);
                    match kind {
                        FlowEvent::Start => st.on_flow_start(f),
                        FlowEvent::Update => st.on_flow_update(f),
                        FlowEvent::Change => st.on_flow_change(f),
                        FlowEvent::End => st.on_flow_end(f),
                    }
                }
                Ev::Arp(a, ts, at) => {
                    st.advance(*at);
                    st.on_arp(a, *ts);
                }
            }
        }
        st.advance(ev.clock);
        st.merge_tally(&ev.tally, escaped.of(&ev.names));
        drain(st, sink);
    }
    counters
        .records
        .fetch_add(ev.records.len() as u64, Ordering::Relaxed);
    counters.event_batches.fetch_add(1, Ordering::Relaxed);
    for r in ev.records.drain(..) {
        sink.flow_ended(r);
    }
    if something {
        sink.after_batch(stats.as_ref());
    }
    if let Some(tx) = ev_free.get(ev.shard) {
        let _ = tx.try_send(ev);
    }
}

fn drain<S: PipelineSink>(st: &mut Stats, sink: &mut S) {
    if st.has_pending() {
        for a in st.drain_alerts() {
            sink.alert(&a);
        }
        for p in st.drain_series() {
            sink.series(&p);
        }
    }
}
