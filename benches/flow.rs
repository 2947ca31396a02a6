//! The flow table alone (`FlowTable::observe` over pre-parsed packets), the whole engine
//! (`Engine::process` over frames: parse + flow table), and the memory cost of a flow.
//!
//! Workloads (generated on first use into `target/bench-data/`, reused afterwards):
//! - `100k_pkts_25k_flows`: `gen_pcap.py -n 100000 -f 25000 --seed 1` (≈4 packets per flow);
//! - `200k_pkts_100k_flows`: `gen_pcap.py -n 200000 -f 100000 --seed 2` (≈2 packets per flow:
//!   inserts dominate, like `manyflows.pcap`).
//!
//! Every iteration starts from an empty table (or engine) built outside the timed routine and
//! dropped outside it too, so one iteration is "track every packet of the workload from
//! scratch", as `netmon flows` does over a file.
//!
//! `flow_table/observe` times the table alone: frames are parsed 256 at a time outside the
//! timed section, then that chunk is observed inside it. Chunks keep the parsed packets (408 B
//! each) in the L2 cache, as they are in the engine where a packet is observed right after it
//! is parsed; pre-parsing the whole workload would instead stream 40+ MB of `Packet`s from
//! memory per iteration and time that.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use netmon_benches::{Frame, Frames};
use netmon_engine::{ClassifyConfig, ClassifyCtx, FlowClass};
use netmon_engine::{Engine, EngineConfig};
use netmon_flow::{EndReason, FlowConfig, FlowExt, FlowTable, PacketInfo, Timeouts};
use netmon_packet::Packet;

/// One gen_pcap workload.
struct Workload {
    /// Benchmark parameter name.
    label: &'static str,
    /// File name under `target/bench-data/` (without `.pcap`).
    file: &'static str,
    packets: u32,
    flows: u32,
    seed: u32,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        label: "100k_pkts_25k_flows",
        file: "flow-100k-25k",
        packets: 100_000,
        flows: 25_000,
        seed: 1,
    },
    Workload {
        label: "200k_pkts_100k_flows",
        file: "flow-200k-100k",
        packets: 200_000,
        flows: 100_000,
        seed: 2,
    },
];

static FRAMES: [OnceLock<Frames>; 2] = [const { OnceLock::new() }; 2];
static LISTS: [OnceLock<Vec<Frame<'static>>>; 2] = [const { OnceLock::new() }; 2];

/// The frames of workload `i`, loaded once.
fn frames(i: usize) -> &'static Frames {
    FRAMES[i].get_or_init(|| {
        let w = &WORKLOADS[i];
        let path = netmon_benches::workload_with_flows(w.file, w.packets, w.flows, w.seed);
        let frames =
            Frames::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        assert!(!frames.is_empty(), "{} has no packets", path.display());
        frames
    })
}

/// The frames of workload `i` as a slice (to take chunks of).
fn frame_list(i: usize) -> &'static [Frame<'static>] {
    LISTS[i].get_or_init(|| frames(i).iter().collect())
}

/// Packets parsed (and observed) per timed section of `flow_table/observe`.
const CHUNK: usize = 256;

/// Observes every frame into a fresh table with `cfg`, `iters` times; returns the time spent
/// in `FlowTable::observe` alone (parsing happens outside the timed sections).
fn observe_all(frames: &[Frame<'_>], cfg: FlowConfig, iters: u64) -> Duration {
    let mut parsed: Vec<(PacketInfo, Packet<'_>)> = Vec::with_capacity(CHUNK);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut t = FlowTable::<()>::new(cfg);
        for chunk in frames.chunks(CHUNK) {
            parsed.clear();
            parsed.extend(chunk.iter().map(|f| {
                (
                    f.info(),
                    Packet::parse_frame(f.link_type, f.data, f.orig_len),
                )
            }));
            let start = Instant::now();
            for (info, p) in &parsed {
                black_box(t.observe(*info, black_box(p), &mut (), &mut ()));
            }
            total += start.elapsed();
        }
        // Dropped outside the timed sections.
        black_box(t);
    }
    total
}

/// `FlowTable::observe` for every packet, into a table with the CLI's configuration.
fn flow_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    // One iteration takes milliseconds: flat sampling keeps the run short.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for (i, w) in WORKLOADS.iter().enumerate() {
        let frames = frame_list(i);
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_function(BenchmarkId::new("observe", w.label), |b| {
            b.iter_custom(|iters| observe_all(frames, FlowConfig::default(), iters))
        });
    }
    g.finish();
}

/// `Engine::process` for every frame (parse + flow table + counters), then `Engine::finish`
/// (every flow ends, as at the end of a file), with an empty sink: `netmon flows` without the
/// capture reader and the output.
fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for (i, w) in WORKLOADS.iter().enumerate() {
        let frames = frames(i);
        g.throughput(Throughput::ElementsAndBytes {
            elements: frames.len() as u64,
            bytes: frames.captured_bytes(),
        });
        g.bench_function(BenchmarkId::new("process", w.label), |b| {
            b.iter_batched(
                || Engine::<()>::new(EngineConfig::default()).expect("default engine config"),
                |mut e| {
                    for f in frames.iter() {
                        e.process(&f.meta(), black_box(f.data), &mut ());
                    }
                    e.finish(EndReason::EndOfCapture, &mut ());
                    e
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(BenchmarkId::new("process+classify", w.label), |b| {
            b.iter_batched(
                || Engine::classifying(EngineConfig::default()).expect("default engine config"),
                |mut e| {
                    for f in frames.iter() {
                        e.process(&f.meta(), black_box(f.data), &mut ());
                    }
                    e.finish(EndReason::EndOfCapture, &mut ());
                    e
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// Not timed: prints what a live flow costs in memory, with every flow of each workload held
/// at once (idle and active timeouts far beyond the capture's span, so none ends).
fn bytes_per_flow(_c: &mut Criterion) {
    const HOUR: i64 = 3_600_000_000_000;
    let never = 24 * 365 * HOUR;
    let cfg = FlowConfig {
        timeouts: Timeouts {
            tcp_handshake: never,
            tcp_established: never,
            tcp_closed: never,
            udp: never,
            icmp: never,
            other: never,
        },
        active_timeout: None,
        ..FlowConfig::default()
    };
    for (i, w) in WORKLOADS.iter().enumerate() {
        table_bytes::<()>(cfg, i, w, "no extension", &mut ());
        let mut ctx = ClassifyCtx::new(ClassifyConfig::default());
        table_bytes::<FlowClass>(cfg, i, w, "classifier", &mut ctx);
    }
}

/// Tracks workload `i` with extension `E` and prints the table's bytes per live flow.
fn table_bytes<E: FlowExt>(cfg: FlowConfig, i: usize, w: &Workload, what: &str, ctx: &mut E::Ctx) {
    let slot = FlowTable::<E>::slot_bytes();
    let mut t = FlowTable::<E>::new(cfg);
    for f in frame_list(i) {
        let p = Packet::parse_frame(f.link_type, f.data, f.orig_len);
        t.observe(f.info(), &p, ctx, &mut ());
    }
    let s = t.stats();
    let ended: u64 = s.ended.iter().sum();
    assert_eq!(ended, 0, "{}: flows ended despite the timeouts", w.label);
    let (flows, mem) = (t.len(), t.memory_bytes());
    let per_flow = mem as f64 / flows.max(1) as f64;
    eprintln!(
        "bytes_per_flow/{} ({what}): {flows} live flows ({} created), \
         FlowTable::memory_bytes() = {mem} B = {per_flow:.1} B/flow; FlowTable::slot_bytes() = \
         {slot} B (the rest is the index, the slab's last partial chunk, the timing wheel and \
         the fragment map; what the classifier keeps in its boxes is not counted)",
        w.label, s.created,
    );
    black_box(t);
}

criterion_group!(benches, bytes_per_flow, flow_table, engine);
criterion_main!(benches);
