//! The flow table: a slab of flows indexed by a hash table, expired by a timing wheel.
//!
//! Layout: flows live in a `Vec` (the slab) and a `hashbrown::HashTable<u32>` maps a key to
//! its slot, so the index costs ~5 bytes per flow and the key is stored once. Idle expiry is a
//! timing wheel of checks (`wheel.rs`) that packets never touch: an existing flow's packet costs
//! one hash, one probe and the slot's counter updates — no allocation, no lock, and no write
//! to any other flow's memory (an LRU list would touch two neighbours per packet, each a likely
//! cache miss). When the table is full, the flow closest to its idle timeout is evicted.

use core::net::IpAddr;

use core::hash::BuildHasher;

use hashbrown::HashTable;
use netmon_packet::{Net, Packet, Transport};
use netmon_types::Timestamp;

use crate::flow::{DirStats, Direction, EndReason, Flow, FlowCore, FlowExt, TcpState};
use crate::frag::{FragKey, FragMap, FragVerdict, Orphan, Pending};
use crate::key::{FlowKey, Side, VlanKey};
use crate::slab::Slab;
use crate::wheel::{Entry, Wheel};

const SEC: i64 = 1_000_000_000;
/// Expiry resolution: flows end at most this long after their idle timeout.
const WHEEL_TICK: i64 = SEC;
/// Wheel size in ticks (longer timeouts are re-filed at the horizon).
const WHEEL_BUCKETS: usize = 1024;

/// Idle timeouts per protocol class, in nanoseconds of packet time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP before the handshake completed (SYN sent / SYN-ACK seen). Default 30 s.
    pub tcp_handshake: i64,
    /// TCP established, mid-stream or half-closed. Default 300 s.
    pub tcp_established: i64,
    /// TCP after FIN from both sides or RST: how long late packets still count to the flow
    /// before it ends with reason `fin`/`rst`. Default 10 s.
    pub tcp_closed: i64,
    /// UDP. Default 60 s.
    pub udp: i64,
    /// ICMP and ICMPv6. Default 30 s.
    pub icmp: i64,
    /// Every other IP protocol. Default 60 s.
    pub other: i64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_handshake: 30 * SEC,
            tcp_established: 300 * SEC,
            tcp_closed: 10 * SEC,
            udp: 60 * SEC,
            icmp: 30 * SEC,
            other: 60 * SEC,
        }
    }
}

/// What the active timeout does to long flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ActiveTimeout {
    /// Emit an `updated` event and keep counting in the same record (default).
    #[default]
    Update,
    /// End the record with reason `active_timeout`; the next packet starts a new record
    /// (NetFlow/IPFIX style).
    Split,
}

/// Flow table configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most flows held at once; when full, the least recently seen flow is evicted (counted).
    pub max_flows: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Long flows are reported every `active_timeout` ns of packet time (`None`: never).
    pub active_timeout: Option<i64>,
    /// What the active timeout does.
    pub active_mode: ActiveTimeout,
    /// Most fragmented datagrams remembered at once.
    pub max_fragments: usize,
    /// How long a fragmented datagram's ports are remembered (ns).
    pub fragment_timeout: i64,
    /// How many tunnel levels are decapsulated and tracked as inner flows (0 = none).
    pub tunnel_depth: u8,
    /// Flow ids are `id_first`, `id_first + id_step`, ...: tables of a sharded pipeline take
    /// `shard + 1` and the shard count, so ids stay unique across shards. Defaults 1 and 1.
    pub id_first: u64,
    /// See [`FlowConfig::id_first`]; 0 counts as 1.
    pub id_step: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1 << 21,
            timeouts: Timeouts::default(),
            active_timeout: Some(1800 * SEC),
            active_mode: ActiveTimeout::Update,
            max_fragments: 1 << 16,
            fragment_timeout: 60 * SEC,
            tunnel_depth: 2,
            id_first: 1,
            id_step: 1,
        }
    }
}

/// Receives flow events. Every method has an empty default.
pub trait FlowSink<E> {
    /// A flow was created (its first packet is already counted).
    fn on_start(&mut self, _flow: &Flow<E>) {}
    /// A long flow reached the active timeout (periodic export).
    fn on_update(&mut self, _flow: &Flow<E>) {}
    /// Something a live view should know changed: the responder answered for the first time,
    /// the TCP state moved (the teardown is one move: FinWait, Closing and Closed are reported
    /// at the first FIN), an ICMP error quoting the flow arrived, or the extension named the
    /// application. At most a few calls per flow (not per packet).
    fn on_change(&mut self, _flow: &Flow<E>) {}
    /// A flow ended; `flow.core.end_reason` says why. It is removed right after.
    fn on_end(&mut self, _flow: &Flow<E>) {}
}

impl<E> FlowSink<E> for () {}

/// Collects ended flows into a `Vec` (tests, small captures).
impl<E: Clone> FlowSink<E> for Vec<Flow<E>> {
    fn on_end(&mut self, flow: &Flow<E>) {
        self.push(flow.clone());
    }
}

/// Counters about the table itself (what was dropped, where, and why).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Flows created.
    pub created: u64,
    /// Flows ended, by reason (indexed like [`EndReason`]'s declaration order).
    pub ended: [u64; 7],
    /// Packets counted to a flow (outer and inner flows both count).
    pub flow_packets: u64,
    /// IP packets that could not be keyed (IP layer unusable).
    pub unkeyed: u64,
    /// Non-first fragments waiting for their first fragment right now.
    pub fragments_pending: u64,
    /// Fragmented datagrams whose first fragment never came (counted to port-less flows).
    pub fragments_orphaned: u64,
    /// Fragment entries dropped early because the fragment map was full.
    pub fragment_overflows: u64,
    /// ICMP errors whose quoted flow was found in the table.
    pub icmp_errors_linked: u64,
}

impl TableStats {
    /// Flows ended for `reason`.
    pub fn ended_by(&self, reason: EndReason) -> u64 {
        self.ended.get(reason_index(reason)).copied().unwrap_or(0)
    }
}

fn reason_index(r: EndReason) -> usize {
    match r {
        EndReason::Fin => 0,
        EndReason::Rst => 1,
        EndReason::IdleTimeout => 2,
        EndReason::ActiveTimeout => 3,
        EndReason::Evicted => 4,
        EndReason::EndOfCapture => 5,
        EndReason::Shutdown => 6,
    }
}

/// Timeout classes (each with its own idle timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    TcpHandshake = 0,
    TcpEstablished = 1,
    TcpClosed = 2,
    Udp = 3,
    Icmp = 4,
    Other = 5,
}

struct Slot<E> {
    flow: Flow<E>,
    class: Class,
    live: bool,
}

impl<E> Slot<E> {
    /// Expiry is measured from the flow's latest packet.
    fn touched(&self) -> i64 {
        self.flow.core.last_seen.0
    }
}

/// The identity of a live flow in the table, valid until it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowRef {
    slot: u32,
    /// The flow's id, to detect a stale reference to a reused slot.
    pub id: u64,
}

/// What [`FlowTable::observe`] did with a packet's outermost IP layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The flow the packet was counted to.
    pub flow: FlowRef,
    /// Direction relative to the initiator.
    pub dir: Direction,
    /// Whether this packet created the flow.
    pub new: bool,
}

/// Per-packet facts the table needs beside the parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Capture timestamp.
    pub ts: Timestamp,
    /// Capture interface index.
    pub iface: u32,
    /// Frame length on the wire.
    pub wire_len: u32,
}

/// A bidirectional flow table with bounded memory.
pub struct FlowTable<E: FlowExt = ()> {
    cfg: FlowConfig,
    slots: Slab<Slot<E>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    wheel: Wheel,
    frags: FragMap,
    orphans: Vec<Orphan>,
    clock: i64,
    started: bool,
    next_id: u64,
    live: usize,
    stats: TableStats,
}

impl<E: FlowExt> FlowTable<E> {
    /// An empty table.
    pub fn new(cfg: FlowConfig) -> FlowTable<E> {
        FlowTable {
            frags: FragMap::new(cfg.max_fragments, cfg.fragment_timeout),
            cfg,
            slots: Slab::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            wheel: Wheel::new(WHEEL_TICK, WHEEL_BUCKETS),
            orphans: Vec::new(),
            clock: i64::MIN,
            started: false,
            next_id: cfg.id_first,
            live: 0,
            stats: TableStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Flows currently in the table.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Table counters.
    pub fn stats(&self) -> TableStats {
        TableStats {
            fragments_pending: self.frags.len() as u64,
            fragment_overflows: self.frags.overflowed,
            ..self.stats
        }
    }

    /// The packet clock: the latest timestamp seen.
    pub fn clock(&self) -> Timestamp {
        Timestamp(self.clock)
    }

    /// Heap bytes held by the table (slab, index, fragment map, boxed keys): what the memory
    /// bound is about.
    pub fn memory_bytes(&self) -> usize {
        let boxed = self
            .slots
            .iter()
            .filter(|s| s.live)
            .filter(|s| s.flow.core.related.is_some())
            .map(|_| core::mem::size_of::<crate::flow::Related>())
            .sum::<usize>();
        self.slots.memory_bytes()
            + self.free.capacity() * 4
            + self.index.allocation_size()
            + self.wheel.memory_bytes()
            + self.frags.memory_bytes()
            + boxed
    }

    /// Size of one slab slot in bytes (the per-flow cost before the index's ~5 bytes).
    pub const fn slot_bytes() -> usize {
        core::mem::size_of::<Slot<E>>()
    }

    /// A live flow.
    pub fn get(&self, r: FlowRef) -> Option<&Flow<E>> {
        self.slots
            .get(r.slot as usize)
            .filter(|s| s.live && s.flow.core.id == r.id)
            .map(|s| &s.flow)
    }

    /// A live flow, mutably (the extension state is what callers change).
    pub fn get_mut(&mut self, r: FlowRef) -> Option<&mut Flow<E>> {
        self.slots
            .get_mut(r.slot as usize)
            .filter(|s| s.live && s.flow.core.id == r.id)
            .map(|s| &mut s.flow)
    }

    /// Looks a flow up by key.
    pub fn find(&self, key: &FlowKey) -> Option<&Flow<E>> {
        let i = self.slot_of(self.hasher.hash_one(key), key)?;
        self.slots.get(i as usize).map(|s| &s.flow)
    }

    /// The slot of the live flow with `key` (`h` is its hash), if any.
    #[inline]
    fn slot_of(&self, h: u64, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(h, |&i| {
                slots
                    .get(i as usize)
                    .is_some_and(|s| s.flow.core.key == *key)
            })
            .copied()
    }

    /// Every live flow, in slab order (not creation order).
    pub fn iter(&self) -> impl Iterator<Item = &Flow<E>> {
        self.slots.iter().filter(|s| s.live).map(|s| &s.flow)
    }

    // ------------------------------------------------------------------------------ time

    /// Moves the packet clock to `ts` (never backwards) and ends flows idle for longer than
    /// their timeout, and fragment entries past theirs.
    pub fn advance<S: FlowSink<E>>(&mut self, ts: Timestamp, ctx: &mut E::Ctx, sink: &mut S) {
        if !self.started || ts.0 > self.clock {
            self.clock = ts.0;
            if !self.started {
                self.wheel.start(ts.0);
            }
            self.started = true;
        }
        let now = self.clock;
        while let Some(mut due) = self.wheel.pop_due(now) {
            for e in due.drain(..) {
                if let Some((slot, expires)) = self.check(e) {
                    if expires <= now {
                        let reason = self.idle_reason(slot);
                        self.end_slot(slot, reason, ctx, sink);
                    } else {
                        self.wheel.schedule(expires, e);
                    }
                }
            }
            self.wheel.give_back(due);
        }
        self.frags.expire(now, &mut self.orphans);
        self.settle_orphans(ctx, sink);
    }

    /// For a wheel entry of a live flow: its slot and when it expires if nothing else comes.
    fn check(&self, e: Entry) -> Option<(u32, i64)> {
        let s = self.slots.get(e.slot as usize)?;
        if !s.live || s.flow.core.id as u32 != e.id {
            return None;
        }
        Some((
            e.slot,
            s.touched()
                .saturating_add(self.timeout_of(s.class as usize)),
        ))
    }

    /// The end reason of a flow that reached its idle timeout.
    fn idle_reason(&self, slot: u32) -> EndReason {
        match self
            .slots
            .get(slot as usize)
            .map(|s| (s.class, s.flow.core.tcp_state))
        {
            Some((Class::TcpClosed, TcpState::Reset)) => EndReason::Rst,
            Some((Class::TcpClosed, _)) => EndReason::Fin,
            _ => EndReason::IdleTimeout,
        }
    }

    fn timeout_of(&self, class: usize) -> i64 {
        timeout_in(&self.cfg.timeouts, class)
    }

    /// Ends every flow (end of capture or shutdown), in creation order, after counting
    /// fragments still waiting for their first fragment to port-less flows.
    pub fn flush<S: FlowSink<E>>(&mut self, reason: EndReason, ctx: &mut E::Ctx, sink: &mut S) {
        self.frags.drain(&mut self.orphans);
        self.settle_orphans(ctx, sink);
        let mut live: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, s)| (s.flow.core.id, i as u32))
            .collect();
        live.sort_unstable();
        for (_, i) in live {
            // A TCP flow that closed properly keeps its reason.
            let r = match self.slots.get(i as usize).map(|s| s.class) {
                Some(Class::TcpClosed) => self.idle_reason(i),
                _ => reason,
            };
            self.report_end(i, r, ctx, sink);
        }
        // Everything ended: drop the table in bulk rather than flow by flow.
        self.index.clear();
        self.free.clear();
        self.slots.clear();
        self.wheel = Wheel::new(WHEEL_TICK, WHEEL_BUCKETS);
        self.started = false;
        self.live = 0;
    }

    // ------------------------------------------------------------------------------ packets

    /// Counts one parsed frame: its outermost IP layer to a flow, and (up to the configured
    /// depth) each tunnelled packet to an inner flow marked with its outer key. Runs the
    /// extension's `on_packet` for each. Returns what happened to the outermost IP layer, or
    /// `None` for non-IP frames and fragments still waiting for their first fragment.
    pub fn observe<S: FlowSink<E>>(
        &mut self,
        info: PacketInfo,
        packet: &Packet<'_>,
        ctx: &mut E::Ctx,
        sink: &mut S,
    ) -> Option<Observed> {
        self.advance(info.ts, ctx, sink);
        let outer = self.observe_layer(info, packet, None, ctx, sink);
        if self.cfg.tunnel_depth > 0 && packet.tunnel.is_some() {
            let mut outer_key = outer.and_then(|o| self.get(o.flow)).map(|f| f.core.key);
            let mut cur = packet.inner();
            let mut depth = 1;
            while let Some(inner) = cur {
                let o = self.observe_layer(info, &inner, outer_key, ctx, sink);
                if depth >= self.cfg.tunnel_depth || inner.tunnel.is_none() {
                    break;
                }
                outer_key = o.and_then(|o| self.get(o.flow)).map(|f| f.core.key);
                cur = inner.inner();
                depth += 1;
            }
        }
        outer
    }

    fn observe_layer<S: FlowSink<E>>(
        &mut self,
        info: PacketInfo,
        p: &Packet<'_>,
        outer: Option<FlowKey>,
        ctx: &mut E::Ctx,
        sink: &mut S,
    ) -> Option<Observed> {
        let (src, dst, proto) = match &p.net {
            Net::Ipv4(v) => (IpAddr::V4(v.src()), IpAddr::V4(v.dst()), v.protocol()),
            Net::Ipv6(v) => (IpAddr::V6(v.src()), IpAddr::V6(v.dst()), v.protocol()),
            _ => return None,
        };
        let iface = u16::try_from(info.iface).unwrap_or(u16::MAX);
        let vlan = VlanKey::from_tags(&p.vlans);
        let payload = p.payload.len() as u64;
        let mut ports = key_ports(p);
        let mut pending = None;
        if let Some(frag) = p.fragment() {
            let fk = FragKey {
                src: ip16(src),
                dst: ip16(dst),
                id: frag.id,
                proto: proto.0,
                v6: src.is_ipv6(),
                iface,
                vlan,
            };
            if frag.is_first() {
                let got = self.frags.first(fk, ports, self.clock, &mut self.orphans);
                if got.packets > 0 {
                    pending = Some(got);
                }
            } else {
                match self.frags.later(
                    fk,
                    info.ts,
                    u64::from(info.wire_len),
                    payload,
                    self.clock,
                    &mut self.orphans,
                ) {
                    FragVerdict::Ports(pp) => ports = pp,
                    FragVerdict::Pending => {
                        self.settle_orphans(ctx, sink);
                        return None;
                    }
                }
            }
        }
        let (key, side) = FlowKey::new(iface, vlan, proto.0, src, dst, ports);
        let (slot, new) = self.lookup_or_create(key, side, p, info.ts, outer, ctx, sink);
        let before = self.slots.get(slot as usize).map(|s| change_marks(&s.flow));
        let obs = self.count(slot, side, info, p, payload, ctx);
        if let Some(pend) = pending {
            self.add_pending(slot, side, &pend);
        }
        if let Some(s) = self.slots.get(slot as usize) {
            if new {
                sink.on_start(&s.flow);
            } else if before != Some(change_marks(&s.flow)) {
                sink.on_change(&s.flow);
            }
        }
        self.active_timeout(slot, ctx, sink);
        if let Some(q) = quoted_key(p, iface, vlan) {
            self.link_icmp_error(slot, q, sink);
        }
        self.settle_orphans(ctx, sink);
        obs.map(|(flow, dir)| Observed { flow, dir, new })
    }

    /// Finds the flow of `key` or creates it. A SYN on a finished TCP flow ends the old one
    /// first (port reuse).
    #[allow(clippy::too_many_arguments)]
    fn lookup_or_create<S: FlowSink<E>>(
        &mut self,
        key: FlowKey,
        side: Side,
        p: &Packet<'_>,
        ts: Timestamp,
        outer: Option<FlowKey>,
        ctx: &mut E::Ctx,
        sink: &mut S,
    ) -> (u32, bool) {
        let h = self.hasher.hash_one(key);
        if let Some(i) = self.slot_of(h, &key) {
            let restart = match (&p.transport, self.slots.get(i as usize)) {
                (Transport::Tcp(t), Some(s)) => {
                    let f = t.flags();
                    f.syn() && !f.ack() && s.flow.core.tcp_state.is_finished()
                }
                _ => false,
            };
            if !restart {
                return (i, false);
            }
            let reason = match self.slots.get(i as usize).map(|s| s.flow.core.tcp_state) {
                Some(TcpState::Reset) => EndReason::Rst,
                _ => EndReason::Fin,
            };
            self.end_slot(i, reason, ctx, sink);
        }
        if self.live >= self.cfg.max_flows.max(1) {
            self.evict_one(ctx, sink);
        }
        let core = new_core(key, side, p, ts, self.next_id, outer);
        (self.insert(core, h), true)
    }

    /// Updates the flow's counters and state with one packet, runs the extension, and moves the
    /// flow to the tail of its (possibly new) class list.
    fn count(
        &mut self,
        i: u32,
        side: Side,
        info: PacketInfo,
        p: &Packet<'_>,
        payload: u64,
        ctx: &mut E::Ctx,
    ) -> Option<(FlowRef, Direction)> {
        let s = self.slots.get_mut(i as usize)?;
        let core = &mut s.flow.core;
        if info.ts < core.first_seen {
            core.first_seen = info.ts;
        }
        if info.ts > core.last_seen {
            core.last_seen = info.ts;
        }
        let d = core.sent_by_mut(side);
        d.packets += 1;
        d.bytes += u64::from(info.wire_len);
        d.payload_bytes += payload;
        if let Transport::Tcp(t) = &p.transport {
            let flags = t.flags();
            d.tcp(flags, t.seq(), t.payload().len() as u32);
            tcp_transition(core, side, flags, !t.payload().is_empty());
        }
        let dir = if side == core.initiator {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        s.flow.ext.on_packet(ctx, &s.flow.core, dir, p);
        let r = FlowRef {
            slot: i,
            id: s.flow.core.id,
        };
        self.stats.flow_packets += 1;
        self.touch(i);
        Some((r, dir))
    }

    fn active_timeout<S: FlowSink<E>>(&mut self, i: u32, ctx: &mut E::Ctx, sink: &mut S) {
        let Some(at) = self.cfg.active_timeout else {
            return;
        };
        let now = self.clock;
        let Some(s) = self.slots.get_mut(i as usize) else {
            return;
        };
        let since = s.flow.core.last_export.0.max(s.flow.core.first_seen.0);
        if now.saturating_sub(since) < at {
            return;
        }
        match self.cfg.active_mode {
            ActiveTimeout::Update => {
                s.flow.core.last_export = Timestamp(now);
                sink.on_update(&s.flow);
            }
            ActiveTimeout::Split => self.end_slot(i, EndReason::ActiveTimeout, ctx, sink),
        }
    }

    fn add_pending(&mut self, i: u32, side: Side, pend: &Pending) {
        if let Some(s) = self.slots.get_mut(i as usize) {
            let c = &mut s.flow.core;
            let d = c.sent_by_mut(side);
            d.packets += pend.packets;
            d.bytes += pend.bytes;
            d.payload_bytes += pend.payload;
            c.first_seen = c.first_seen.min(pend.first);
            c.last_seen = c.last_seen.max(pend.last);
            self.stats.flow_packets += pend.packets;
        }
    }

    /// Counts fragments whose first fragment never came to a port-less flow of their datagram's
    /// addresses and protocol.
    fn settle_orphans<S: FlowSink<E>>(&mut self, ctx: &mut E::Ctx, sink: &mut S) {
        if self.orphans.is_empty() {
            return;
        }
        let orphans = core::mem::take(&mut self.orphans);
        for o in &orphans {
            self.stats.fragments_orphaned += 1;
            let k = &o.key;
            let (src, dst) = if k.v6 {
                (IpAddr::from(k.src), IpAddr::from(k.dst))
            } else {
                (v4_of(&k.src), v4_of(&k.dst))
            };
            let (key, side) = FlowKey::new(k.iface, k.vlan, k.proto, src, dst, None);
            let h = self.hasher.hash_one(key);
            let i = match self.slot_of(h, &key) {
                Some(i) => i,
                None => {
                    if self.live >= self.cfg.max_flows.max(1) {
                        self.evict_one(ctx, sink);
                    }
                    let mut core = empty_core(key, side, o.pending.first, self.next_id);
                    core.last_seen = o.pending.last;
                    let i = self.insert(core, h);
                    self.add_pending(i, side, &o.pending);
                    if let Some(s) = self.slots.get(i as usize) {
                        sink.on_start(&s.flow);
                    }
                    continue;
                }
            };
            self.add_pending(i, side, &o.pending);
        }
        // Give the buffer back (keeps its capacity; no allocation next time).
        self.orphans = orphans;
        self.orphans.clear();
    }

    fn link_icmp_error<S: FlowSink<E>>(&mut self, icmp_slot: u32, quoted: FlowKey, sink: &mut S) {
        if let Some(t) = self.slot_of(self.hasher.hash_one(quoted), &quoted) {
            if let Some(s) = self.slots.get_mut(t as usize) {
                s.flow.core.icmp_errors = s.flow.core.icmp_errors.saturating_add(1);
                self.stats.icmp_errors_linked += 1;
                if s.flow.core.icmp_errors == 1 {
                    sink.on_change(&s.flow);
                }
            }
        }
        if let Some(s) = self.slots.get_mut(icmp_slot as usize) {
            s.flow.core.set_quoted(quoted);
        }
    }

    // ------------------------------------------------------------------------------ slab

    /// Puts a new flow into a free slot (or a new one), indexes it and links it. The caller
    /// announces it (`on_start`) once its first packet is counted.
    fn insert(&mut self, core: FlowCore, h: u64) -> u32 {
        self.next_id = self
            .next_id
            .max(core.id.saturating_add(self.cfg.id_step.max(1)));
        let slot = Slot {
            flow: Flow {
                core,
                ext: E::default(),
            },
            class: Class::Other,
            live: true,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => self.slots.push(slot) as u32,
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(h, i, |&j| {
            slots
                .get(j as usize)
                .map_or(0, |s| hasher.hash_one(s.flow.core.key))
        });
        self.live += 1;
        self.stats.created += 1;
        let class = self.class_of(i);
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.class = class;
        }
        self.schedule(i);
        i
    }

    /// Files an expiry check for the flow in `i` at its current expiry time.
    fn schedule(&mut self, i: u32) {
        if let Some(s) = self.slots.get(i as usize) {
            let due = s
                .touched()
                .saturating_add(self.timeout_of(s.class as usize));
            let e = Entry {
                slot: i,
                id: s.flow.core.id as u32,
            };
            self.wheel.schedule(due, e);
        }
    }

    /// A packet touched the flow (its `last_seen` is the expiry reference): when its state
    /// moved it to a class with a shorter timeout (e.g. TCP closed), file a check for the
    /// earlier expiry.
    fn touch(&mut self, i: u32) {
        let class = self.class_of(i);
        let new_timeout = self.timeout_of(class as usize);
        let Some(s) = self.slots.get_mut(i as usize) else {
            return;
        };
        if s.class == class {
            return;
        }
        let old_timeout = timeout_in(&self.cfg.timeouts, s.class as usize);
        s.class = class;
        if new_timeout < old_timeout {
            self.schedule(i);
        }
    }

    /// Ends the flow closest to its idle timeout (reason `evicted`).
    fn evict_one<S: FlowSink<E>>(&mut self, ctx: &mut E::Ctx, sink: &mut S) {
        // Each live flow has an entry at or before its expiry, so the earliest bucket holding
        // a valid entry that is not stale holds a flow due within one tick of the earliest.
        while let Some(mut bucket) = self.wheel.pop_earliest() {
            let mut victim = None;
            let mut rest = Vec::new();
            for (n, e) in bucket.iter().enumerate() {
                let Some((slot, expires)) = self.check(*e) else {
                    continue;
                };
                if victim.is_none() {
                    victim = Some((slot, expires, n));
                } else if let Some((_, best, _)) = victim {
                    if expires < best {
                        victim = Some((slot, expires, n));
                    }
                }
            }
            if let Some((slot, _, n)) = victim {
                for (k, e) in bucket.drain(..).enumerate() {
                    if k != n && self.check(e).is_some() {
                        rest.push(e);
                    }
                }
                self.wheel.give_back(rest);
                self.wheel.give_back(bucket);
                self.end_slot(slot, EndReason::Evicted, ctx, sink);
                return;
            }
            bucket.clear();
            self.wheel.give_back(bucket);
        }
    }

    /// Announces the end of the flow in `i` (extension, sink, counters) without removing it.
    fn report_end<S: FlowSink<E>>(
        &mut self,
        i: u32,
        reason: EndReason,
        ctx: &mut E::Ctx,
        sink: &mut S,
    ) {
        let Some(s) = self.slots.get_mut(i as usize) else {
            return;
        };
        if !s.live {
            return;
        }
        s.flow.core.end_reason = Some(reason);
        s.flow.ext.on_end(ctx, &s.flow.core);
        sink.on_end(&s.flow);
        if let Some(c) = self.stats.ended.get_mut(reason_index(reason)) {
            *c += 1;
        }
    }

    /// Ends the flow in `i` and frees its slot.
    fn end_slot<S: FlowSink<E>>(
        &mut self,
        i: u32,
        reason: EndReason,
        ctx: &mut E::Ctx,
        sink: &mut S,
    ) {
        if !self.slots.get(i as usize).is_some_and(|s| s.live) {
            return;
        }
        self.report_end(i, reason, ctx, sink);
        let Some(s) = self.slots.get_mut(i as usize) else {
            return;
        };
        let h = self.hasher.hash_one(s.flow.core.key);
        s.live = false;
        // Release what the slot owns now; the rest is overwritten on reuse.
        s.flow.core.related = None;
        s.flow.ext = E::default();
        if let Ok(e) = self.index.find_entry(h, |&j| j == i) {
            e.remove();
        }
        self.free.push(i);
        self.live -= 1;
    }

    fn class_of(&self, i: u32) -> Class {
        let Some(s) = self.slots.get(i as usize) else {
            return Class::Other;
        };
        let c = &s.flow.core;
        match c.key.proto() {
            6 => match c.tcp_state {
                TcpState::SynSent | TcpState::SynReceived => Class::TcpHandshake,
                TcpState::Closed | TcpState::Reset | TcpState::Closing => Class::TcpClosed,
                _ => Class::TcpEstablished,
            },
            17 | 136 => Class::Udp,
            1 | 58 => Class::Icmp,
            _ => Class::Other,
        }
    }
}

/// What `on_change` reports a change of: whether the responder has answered, the TCP state,
/// and whether the extension has named the application.
///
/// The teardown is one change: its first FIN. Closing and Closed follow within a round trip
/// and say nothing a summary needs (a probe that got that far has succeeded or failed
/// already); the flow's end reports its final state. That spares the consumers (the
/// statistics' detectors) two summaries per closed connection.
fn change_marks<E: FlowExt>(f: &Flow<E>) -> (bool, TcpState, bool) {
    let tcp = match f.core.tcp_state {
        TcpState::Closing | TcpState::Closed => TcpState::FinWait,
        s => s,
    };
    (f.core.s2c().packets > 0, tcp, f.ext.app().is_some())
}

fn timeout_in(t: &Timeouts, class: usize) -> i64 {
    match class {
        0 => t.tcp_handshake,
        1 => t.tcp_established,
        2 => t.tcp_closed,
        3 => t.udp,
        4 => t.icmp,
        _ => t.other,
    }
}

fn ip16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            if let Some(d) = b.get_mut(..4) {
                d.copy_from_slice(&a.octets());
            }
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

fn v4_of(b: &[u8; 16]) -> IpAddr {
    let [a, b, c, d, ..] = *b;
    IpAddr::from([a, b, c, d])
}

/// The key's ports: transport ports (also of cut headers), UDP-Lite/DCCP ports read from the
/// payload, the ICMP echo identifier for echo messages, else none.
fn key_ports(p: &Packet<'_>) -> Option<(u16, u16)> {
    if let Some(ports) = p.ports() {
        return Some(ports);
    }
    match &p.transport {
        Transport::Icmpv4(i) if matches!(i.type_u8(), 0 | 8) => i.echo().map(|e| (e.id, e.id)),
        Transport::Icmpv6(i) if matches!(i.type_u8(), 128 | 129) => i.echo().map(|e| (e.id, e.id)),
        Transport::Other(n) if matches!(n.0, 33 | 136) => {
            // DCCP and UDP-Lite start with source and destination ports like UDP.
            let b = p.payload;
            match (
                b.first_chunk::<2>(),
                b.get(2..4).and_then(|x| x.first_chunk::<2>()),
            ) {
                (Some(s), Some(d)) => Some((u16::from_be_bytes(*s), u16::from_be_bytes(*d))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The key of the flow an ICMP error quotes (same interface and VLANs as the error).
fn quoted_key(p: &Packet<'_>, iface: u16, vlan: VlanKey) -> Option<FlowKey> {
    let q = match &p.transport {
        Transport::Icmpv4(i) if i.is_error() => i.quoted()?,
        Transport::Icmpv6(i) if i.is_error() => i.quoted()?,
        _ => return None,
    };
    let ports = match q.protocol {
        6 | 17 | 33 | 132 | 136 => q.ports,
        1 | 58 => q.echo_id.map(|id| (id, id)),
        _ => None,
    };
    if matches!(q.protocol, 6 | 17 | 33 | 132 | 136) && ports.is_none() {
        return None;
    }
    Some(FlowKey::new(iface, vlan, q.protocol, q.src, q.dst, ports).0)
}

fn empty_core(key: FlowKey, initiator: Side, ts: Timestamp, id: u64) -> FlowCore {
    FlowCore {
        key,
        id,
        initiator,
        first_seen: ts,
        last_seen: ts,
        stats: [DirStats::default(); 2],
        tcp_state: TcpState::None,
        icmp_errors: 0,
        end_reason: None,
        related: None,
        last_export: ts,
    }
}

/// A new flow's record before its first packet is counted: initiator and initial TCP state.
fn new_core(
    key: FlowKey,
    side: Side,
    p: &Packet<'_>,
    ts: Timestamp,
    id: u64,
    outer: Option<FlowKey>,
) -> FlowCore {
    let mut c = empty_core(key, side, ts, id);
    if let Some(o) = outer {
        c.related = Some(Box::new(crate::flow::Related {
            outer: Some(o),
            quoted: None,
        }));
    }
    let other = side.other();
    c.initiator = match &p.transport {
        Transport::Tcp(t) => {
            let f = t.flags();
            if f.syn() && !f.ack() {
                side
            } else if f.syn() && f.ack() {
                other
            } else {
                by_ports(key, side)
            }
        }
        Transport::Icmpv4(i) => match i.type_u8() {
            0 => other,
            _ => side,
        },
        Transport::Icmpv6(i) => match i.type_u8() {
            129 => other,
            _ => side,
        },
        _ if key.has_ports() => by_ports(key, side),
        _ => side,
    };
    c
}

/// Mid-stream heuristic: the sender is the initiator unless its port looks like a service and
/// the receiver's like an ephemeral port.
fn by_ports(key: FlowKey, sender: Side) -> Side {
    let sp = key.endpoint(sender).port;
    let dp = key.endpoint(sender.other()).port;
    if is_service_port(sp) && !is_service_port(dp) {
        sender.other()
    } else {
        sender
    }
}

/// Well-known ports (< 1024) and common registered service ports.
fn is_service_port(p: u16) -> bool {
    p < 1024
        || matches!(
            p,
            1080 | 1194
                | 1433
                | 1521
                | 1723
                | 1883
                | 2049
                | 2181
                | 2375
                | 2376
                | 3128
                | 3306
                | 3389
                | 3478
                | 3544
                | 4789
                | 5060
                | 5061
                | 5222
                | 5349
                | 5353
                | 5432
                | 5672
                | 5900
                | 6379
                | 6443
                | 6881
                | 8000
                | 8008
                | 8080
                | 8081
                | 8086
                | 8443
                | 8888
                | 9000
                | 9042
                | 9092
                | 9200
                | 9300
                | 11211
                | 19302
                | 27017
        )
}

/// TCP state machine (as seen from the wire; both directions through one state). The
/// handshake step comes first, then FIN on top of it, so a FIN riding on the handshake's last
/// ACK or on the first data segment is not lost.
fn tcp_transition(c: &mut FlowCore, side: Side, f: netmon_packet::TcpFlags, data: bool) {
    use TcpState::*;
    if f.rst() {
        c.tcp_state = Reset;
        return;
    }
    let from_init = side == c.initiator;
    let both_fins = c.sent_by(Side::Lo).fin > 0 && c.sent_by(Side::Hi).fin > 0;
    let mut st = match c.tcp_state {
        None if f.syn() && !f.ack() => SynSent,
        None if f.syn() => SynReceived,
        None => MidStream,
        SynSent if f.syn() && f.ack() && !from_init => SynReceived,
        SynSent | SynReceived if data => Established,
        SynReceived if f.ack() && !f.syn() && from_init => Established,
        Closing if f.ack() && !f.fin() => Closed,
        s => s,
    };
    if f.fin() {
        st = match st {
            None | SynSent | SynReceived | Established | MidStream | FinWait => {
                if both_fins {
                    Closing
                } else {
                    FinWait
                }
            }
            s => s,
        };
    }
    c.tcp_state = st;
}
