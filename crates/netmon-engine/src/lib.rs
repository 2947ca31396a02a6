//! The netmon pipeline, shared by `netmon`, `netmond` and embedders:
//!
//! ```text
//! CaptureSource ─▶ parse (netmon-packet) ─▶ flow table (netmon-flow) ─▶ EngineSink
//!                        │                     └─ per-flow extension (netmon-classify)
//!                        └──────────────▶ stats + detectors (netmon-stats) ─▶ alerts, series
//! ```
//!
//! The quickest way in is [`pipeline::Pipeline`]: a source, flow shards on their own threads,
//! statistics and detectors, callbacks for what comes out.
//!
//! ```no_run
//! use netmon_engine::pipeline::Pipeline;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let outcome = Pipeline::live(&["eth0"])?
//!     .shards(2)
//!     .with_stats(netmon_stats::StatsConfig::default())
//!     .on_flow(|r| println!("{} -> {} {:?} {:?}", r.src_ip, r.dst_ip, r.app, r.sni))
//!     .on_alert(|a| eprintln!("{:?} from {}", a.alert().kind, a.alert().source))
//!     .run()?; // until the source ends or its stop handle is used
//! eprintln!("{} packets, {} flows", outcome.summary.packets, outcome.summary.flows.created);
//! # Ok(())
//! # }
//! ```
//!
//! One [`Engine`] owns one flow table and processes packets on the calling thread: no lock, no
//! allocation per packet for existing flows. Flow events (started, updated, ended) reach an
//! [`EngineSink`]; [`FlowRecord`] is the serialisable form of a flow.
//!
//! ```no_run
//! use netmon_engine::{Engine, EngineConfig, EngineSink, FlowClass, FlowRecord};
//! use netmon_flow::Flow;
//!
//! struct Print;
//! impl EngineSink<FlowClass> for Print {
//!     fn flow_ended(&mut self, flow: &Flow<FlowClass>, iface_name: Option<&str>) {
//!         let r = FlowRecord::new(flow, iface_name);
//!         println!("{} {:?}", serde_json::to_string(&r).unwrap(), r.sni);
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut source = netmon_capture::open_file("capture.pcapng")?;
//! let mut engine = Engine::classifying(EngineConfig::default())?;
//! let outcome = engine.run(&mut source, &mut Print);
//! eprintln!("{} packets, {} flows", outcome.summary.packets, outcome.summary.flows.created);
//! if let Some(e) = outcome.error {
//!     return Err(e.into());
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod config;
pub mod enrich;
pub mod filter;
mod hash;
pub mod pipeline;
pub mod record;
pub mod sharded;
#[cfg(feature = "store")]
pub mod store;

use netmon_capture::{CaptureError, CaptureSource, CaptureStats, Next, PacketMeta};
pub use netmon_classify::classifier::{ClassifyConfig, ClassifyCtx, FlowClass};
use netmon_flow::{
    EndReason, Flow, FlowConfig, FlowCore, FlowExt, FlowSink, FlowTable, PacketInfo, TableStats,
    TcpState,
};
use netmon_packet::{Net, Packet};
use netmon_stats::{AlertEvent, FlowObs, PacketBrief, PacketObs, SeriesPoint, Stats, StatsConfig};
use netmon_types::Timestamp;

pub use config::Config;
pub use filter::{Filter, FilterError};
pub use record::{DnsRecord, FlowRecord, HttpRecord, RecordExt};

/// Pipeline configuration.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// Flow table settings.
    pub flow: FlowConfig,
    /// Traffic classification (used by [`Engine::classifying`]).
    pub classify: ClassifyConfig,
    /// Statistics and detectors; `None` leaves them out (e.g. `netmon flows`, which needs
    /// neither and runs faster without).
    pub stats: Option<StatsConfig>,
    /// Without local `stats`: hand the observations the stats would take to the sink instead
    /// ([`EngineSink::packet_observed`], [`EngineSink::flow_observed`]) — how a shard feeds the
    /// one statistics aggregator of the [`sharded`] pipeline.
    pub observe: bool,
}

/// Which flow event an observation comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    /// The flow's first packet.
    Start,
    /// A periodic update (active timeout): the counters so far.
    Update,
    /// A change of state: the responder answered, the TCP state moved, or the application
    /// was named.
    Change,
    /// The flow ended.
    End,
}

/// Receives what the pipeline produces. Every method has an empty default.
pub trait EngineSink<E> {
    /// A flow started (its first packet is counted).
    fn flow_started(&mut self, _flow: &Flow<E>, _iface_name: Option<&str>) {}
    /// A long flow's periodic update (active timeout).
    fn flow_updated(&mut self, _flow: &Flow<E>, _iface_name: Option<&str>) {}
    /// A flow ended; `flow.core.end_reason` says why.
    fn flow_ended(&mut self, _flow: &Flow<E>, _iface_name: Option<&str>) {}
    /// A detector raised or closed an alert (with stats enabled).
    fn alert(&mut self, _event: &AlertEvent) {}
    /// A window value closed (with stats and its series enabled).
    fn series(&mut self, _point: &SeriesPoint) {}
    /// With [`EngineConfig::observe`] and no local stats: what the stats would count for one
    /// packet, in brief (what a [`netmon_stats::PacketTally`] and the ARP detector take).
    fn packet_observed(&mut self, _obs: &PacketBrief) {}
    /// With [`EngineConfig::observe`] and no local stats: what the stats would see of a flow.
    fn flow_observed(&mut self, _event: FlowEvent, _obs: &FlowObs) {}
}

impl<E> EngineSink<E> for () {}

/// Collects every ended flow as a [`FlowRecord`].
impl<E: RecordExt> EngineSink<E> for Vec<FlowRecord> {
    fn flow_ended(&mut self, flow: &Flow<E>, iface_name: Option<&str>) {
        self.push(FlowRecord::new(flow, iface_name));
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Frames read.
    pub packets: u64,
    /// Bytes on the wire (original frame lengths).
    pub bytes: u64,
    /// Frames with an IP layer.
    pub ip_packets: u64,
    /// Frames without one (ARP, LLDP, STP, unparsable...).
    pub non_ip_packets: u64,
    /// Frames whose parse stopped with an error (they still count where they could).
    pub parse_errors: u64,
    /// First packet's timestamp.
    pub first: Option<Timestamp>,
    /// Last packet's timestamp (the latest seen).
    pub last: Option<Timestamp>,
    /// The flow table's counters.
    pub flows: TableStats,
    /// The capture source's counters (kernel drops for live sources).
    pub capture: CaptureStats,
}

/// What [`Engine::run`] returns: the counters, and the error that ended the source early (a
/// truncated file), after every complete packet was processed and every flow was ended.
#[derive(Debug)]
pub struct Outcome {
    /// Counters.
    pub summary: Summary,
    /// The source's error, if it ended with one.
    pub error: Option<CaptureError>,
}

/// The pipeline.
pub struct Engine<E: FlowExt = FlowClass> {
    table: FlowTable<E>,
    ctx: E::Ctx,
    stats: Option<Stats>,
    observe: bool,
    iface_names: Vec<Option<String>>,
    summary: Summary,
}

/// An invalid pipeline configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The statistics configuration was refused (e.g. a threshold rule does not parse).
    #[error("stats: {0}")]
    Stats(#[from] netmon_stats::ConfigError),
    /// The operating system refused to start a pipeline thread.
    #[error("cannot start a pipeline thread: {0} (check the process and memory limits)")]
    Thread(#[source] std::io::Error),
}

impl<E: FlowExt> Engine<E>
where
    E::Ctx: Default,
{
    /// A pipeline with a default extension context.
    pub fn new(cfg: EngineConfig) -> Result<Engine<E>, ConfigError> {
        Engine::with_context(cfg, E::Ctx::default())
    }
}

impl Engine<FlowClass> {
    /// The full pipeline: flows classified with `cfg.classify`.
    pub fn classifying(cfg: EngineConfig) -> Result<Engine<FlowClass>, ConfigError> {
        let ctx = ClassifyCtx::new(cfg.classify.clone());
        Engine::with_context(cfg, ctx)
    }
}

impl<E: FlowExt> Engine<E> {
    /// A pipeline whose flow extension uses `ctx` (e.g. a configured classifier context).
    pub fn with_context(cfg: EngineConfig, ctx: E::Ctx) -> Result<Engine<E>, ConfigError> {
        let observe = cfg.observe && cfg.stats.is_none();
        let stats = cfg.stats.map(Stats::new).transpose()?;
        Ok(Engine {
            table: FlowTable::new(cfg.flow),
            ctx,
            stats,
            observe,
            iface_names: Vec::new(),
            summary: Summary::default(),
        })
    }

    /// The statistics and detectors, when enabled, taken out of the finished pipeline.
    pub fn into_stats(self) -> Option<Stats> {
        self.stats
    }

    /// The statistics and detectors, when enabled.
    pub fn stats(&self) -> Option<&Stats> {
        self.stats.as_ref()
    }

    /// The flow table (for inspection; memory figures).
    pub fn table(&self) -> &FlowTable<E> {
        &self.table
    }

    /// The extension context.
    pub fn context(&self) -> &E::Ctx {
        &self.ctx
    }

    /// Counters so far.
    pub fn summary(&self) -> Summary {
        Summary {
            flows: self.table.stats(),
            ..self.summary.clone()
        }
    }

    /// The name of a capture interface, as far as the source said, escaped (see
    /// [`netmon_packet::Escaped`]).
    pub fn iface_name(&self, iface: u32) -> Option<&str> {
        self.iface_names
            .get(iface as usize)
            .and_then(|n| n.as_deref())
    }

    /// Processes one frame.
    pub fn process<S: EngineSink<E>>(&mut self, meta: &PacketMeta<'_>, data: &[u8], sink: &mut S) {
        let s = &mut self.summary;
        s.packets += 1;
        s.bytes += u64::from(meta.orig_len);
        if s.first.is_none() {
            s.first = Some(meta.ts);
        }
        if s.last.is_none_or(|l| meta.ts > l) {
            s.last = Some(meta.ts);
        }
        self.learn_iface(meta);
        let info = PacketInfo {
            ts: meta.ts,
            iface: meta.iface,
            wire_len: meta.orig_len,
        };
        let (table, ctx, summary) = (&mut self.table, &mut self.ctx, &mut self.summary);
        let names = &self.iface_names;
        let mut stats = self.stats.as_mut();
        let observe = self.observe;
        Packet::parse_frame_with(meta.link_type, data, meta.orig_len as usize, |p| {
            if p.error.is_some() {
                summary.parse_errors += 1;
            }
            match p.net {
                Net::Ipv4(_) | Net::Ipv6(_) => summary.ip_packets += 1,
                _ => summary.non_ip_packets += 1,
            }
            if let Some(st) = stats.as_deref_mut() {
                // The stats clock first: a flow starting in a new second counts in that second.
                st.advance(meta.ts);
            }
            let mut adapter = Adapter {
                sink: &mut *sink,
                names,
                stats: stats.as_deref_mut(),
                observe,
            };
            let seen = table.observe(info, p, ctx, &mut adapter);
            if let Some(st) = stats {
                let name = names.get(meta.iface as usize).and_then(|n| n.as_deref());
                let mut obs = PacketObs::from_packet(meta.ts, meta.iface, name, p);
                obs.app = seen
                    .and_then(|o| table.get(o.flow))
                    .and_then(|f| f.ext.app());
                st.on_packet(&obs);
            } else if observe {
                let mut obs = PacketBrief::from_packet(meta.ts, meta.iface, p);
                obs.app = seen
                    .and_then(|o| table.get(o.flow))
                    .and_then(|f| f.ext.app());
                sink.packet_observed(&obs);
            }
        });
        self.drain(sink);
    }

    /// Hands queued alerts and series points to the sink.
    fn drain<S: EngineSink<E>>(&mut self, sink: &mut S) {
        if let Some(st) = self.stats.as_mut() {
            if st.has_pending() {
                for ev in st.drain_alerts() {
                    sink.alert(&ev);
                }
                for p in st.drain_series() {
                    sink.series(&p);
                }
            }
        }
    }

    /// Moves the clocks to `ts` without a packet, never backwards: flows idle past their
    /// timeout end and the stats windows close. A live capture calls it with the current time
    /// when its source reports [`Next::Timeout`], so flows end while the link is quiet (the
    /// kernel's capture timestamps are the same wall clock).
    pub fn advance<S: EngineSink<E>>(&mut self, ts: Timestamp, sink: &mut S) {
        if let Some(st) = self.stats.as_mut() {
            st.advance(ts);
        }
        let mut adapter = Adapter {
            sink: &mut *sink,
            names: &self.iface_names,
            stats: self.stats.as_mut(),
            observe: self.observe,
        };
        self.table.advance(ts, &mut self.ctx, &mut adapter);
        self.drain(sink);
    }

    /// Ends every flow with `reason` (end of capture, shutdown).
    pub fn finish<S: EngineSink<E>>(&mut self, reason: EndReason, sink: &mut S) {
        let mut adapter = Adapter {
            sink: &mut *sink,
            names: &self.iface_names,
            stats: self.stats.as_mut(),
            observe: self.observe,
        };
        self.table.flush(reason, &mut self.ctx, &mut adapter);
        if let Some(st) = self.stats.as_mut() {
            st.finish();
        }
        self.drain(sink);
    }

    /// Reads `source` to its end, processes every frame, then ends every flow.
    pub fn run<S: EngineSink<E>>(
        &mut self,
        source: &mut dyn CaptureSource,
        sink: &mut S,
    ) -> Outcome {
        let error = loop {
            match source.next_packet() {
                Ok(Next::Packet(p)) => self.process(&p.meta, p.data, sink),
                Ok(Next::Timeout) => {
                    // A quiet link or a gap of a paced replay: idle flows end meanwhile.
                    if let Some(now) = source.clock() {
                        self.advance(now, sink);
                    }
                }
                Ok(Next::End) => break None,
                Err(e) => break Some(e),
            }
        };
        self.finish(EndReason::EndOfCapture, sink);
        self.summary.capture = source.stats();
        Outcome {
            summary: self.summary(),
            error,
        }
    }

    fn learn_iface(&mut self, meta: &PacketMeta<'_>) {
        let i = meta.iface as usize;
        if i >= self.iface_names.len() {
            // Bounded by the source's interface table; allocates once per new interface.
            if i > 65_535 {
                return;
            }
            self.iface_names.resize(i + 1, None);
        }
        if let (Some(slot @ None), Some(name)) = (self.iface_names.get_mut(i), meta.iface_name) {
            // Names come from capture files (or the OS): keep them escaped (printable ASCII,
            // `\xNN` for other bytes, at most 256 bytes), so every output is safe to show.
            *slot = Some(netmon_packet::Escaped::new(name.as_bytes()).to_string());
        }
    }
}

/// Turns flow-table events into engine-sink calls (with interface names) and stats updates.
struct Adapter<'s, S> {
    sink: &'s mut S,
    names: &'s [Option<String>],
    stats: Option<&'s mut Stats>,
    /// No local stats: forward observations to the sink.
    observe: bool,
}

impl<S> Adapter<'_, S> {
    fn name(names: &[Option<String>], iface: u16) -> Option<&str> {
        names.get(usize::from(iface)).and_then(|n| n.as_deref())
    }
}

impl<E: FlowExt, S: EngineSink<E>> FlowSink<E> for Adapter<'_, S> {
    fn on_start(&mut self, flow: &Flow<E>) {
        if let Some(st) = self.stats.as_deref_mut() {
            st.on_flow_start(&flow_obs(flow));
        } else if self.observe {
            self.sink.flow_observed(FlowEvent::Start, &flow_obs(flow));
        }
        self.sink
            .flow_started(flow, Self::name(self.names, flow.core.key.iface()));
    }
    fn on_update(&mut self, flow: &Flow<E>) {
        if let Some(st) = self.stats.as_deref_mut() {
            st.on_flow_update(&flow_obs(flow));
        } else if self.observe {
            self.sink.flow_observed(FlowEvent::Update, &flow_obs(flow));
        }
        self.sink
            .flow_updated(flow, Self::name(self.names, flow.core.key.iface()));
    }
    fn on_change(&mut self, flow: &Flow<E>) {
        if let Some(st) = self.stats.as_deref_mut() {
            st.on_flow_change(&flow_obs(flow));
        } else if self.observe {
            self.sink.flow_observed(FlowEvent::Change, &flow_obs(flow));
        }
    }
    fn on_end(&mut self, flow: &Flow<E>) {
        if let Some(st) = self.stats.as_deref_mut() {
            st.on_flow_end(&flow_obs(flow));
        } else if self.observe {
            self.sink.flow_observed(FlowEvent::End, &flow_obs(flow));
        }
        self.sink
            .flow_ended(flow, Self::name(self.names, flow.core.key.iface()));
    }
}

/// The stats crate's view of a flow.
fn flow_obs<E: FlowExt>(flow: &Flow<E>) -> FlowObs {
    let c = &flow.core;
    let (src, dst) = (c.src(), c.dst());
    FlowObs {
        id: c.id,
        first_ts: c.first_seen,
        last_ts: c.last_seen,
        iface: u32::from(c.key.iface()),
        proto: c.key.proto(),
        initiator: netmon_stats::Endpoint {
            ip: src.ip,
            port: src.port,
        },
        responder: netmon_stats::Endpoint {
            ip: dst.ip,
            port: dst.port,
        },
        packets: [c.c2s().packets, c.s2c().packets],
        bytes: [c.c2s().bytes, c.s2c().bytes],
        tcp: (c.key.proto() == 6).then(|| stats_tcp_state(c)),
        responder_answered: c.s2c().packets > 0,
        icmp_errors: c.icmp_errors,
        app: flow.ext.app(),
        end: c.end_reason.map(|r| match r {
            EndReason::Fin => netmon_stats::EndReason::Fin,
            EndReason::Rst => netmon_stats::EndReason::Rst,
            EndReason::IdleTimeout => netmon_stats::EndReason::IdleTimeout,
            EndReason::ActiveTimeout => netmon_stats::EndReason::ActiveTimeout,
            EndReason::Evicted => netmon_stats::EndReason::Evicted,
            EndReason::EndOfCapture | EndReason::Shutdown => netmon_stats::EndReason::Finish,
        }),
    }
}

/// Maps the tracker's TCP state onto the detectors' probe vocabulary (Zeek-like).
fn stats_tcp_state(c: &FlowCore) -> netmon_stats::TcpState {
    use netmon_stats::TcpState as S;
    let (init, resp) = (c.c2s(), c.s2c());
    let handshake = init.syn > 0 && resp.syn > 0;
    match c.tcp_state {
        TcpState::SynSent => S::SynOnly,
        TcpState::SynReceived => S::HalfOpen,
        TcpState::Established => S::Established,
        TcpState::FinWait | TcpState::Closing | TcpState::Closed if handshake => S::Closed,
        // The responder's only answer was RST, to a SYN or to a stealth probe (FIN, NULL or
        // Xmas: a first packet without SYN or ACK, which no connection picked up midstream
        // sends): refused.
        TcpState::Reset
            if resp.syn == 0 && resp.rst > 0 && (init.syn > 0 || !init.flags_seen.ack()) =>
        {
            S::Rejected
        }
        // SYN-ACK answered by the initiator's bare RST: a half-open (SYN) scan of an open port.
        TcpState::Reset if handshake && !init.flags_seen.ack() => S::HalfOpen,
        TcpState::Reset if handshake => S::Closed,
        _ => S::Other,
    }
}
