//! Frame parsing over a realistic workload, per-link-type micro benchmarks, and capture-file
//! replay speed.
//!
//! The workload is `gen_pcap.py -n 100000 --seed 1` (≈55 MB), generated on first use into
//! `target/bench-data/parse-100k.pcap`; `NETMON_BENCH_PCAP=FILE` benchmarks another capture.
//! All frames are loaded into memory once, so the `workload` group measures parsing only.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use netmon_benches::{Frames, craft};
use netmon_capture::{CaptureSource, Next};
use netmon_packet::{LinkType, Packet};

fn workload_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os("NETMON_BENCH_PCAP") {
        Some(p) => PathBuf::from(p),
        None => netmon_benches::workload("parse-100k", 100_000, 1),
    })
}

fn frames() -> &'static Frames {
    static FRAMES: OnceLock<Frames> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let path = workload_path();
        let frames =
            Frames::load(path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        assert!(!frames.is_empty(), "{} has no packets", path.display());
        // What the workload holds, to read the figures by.
        let (mut errors, mut tunnels, mut bad_sums) = (0usize, 0usize, 0usize);
        for f in frames.iter() {
            let p = Packet::parse_frame(f.link_type, f.data, f.orig_len);
            errors += usize::from(p.error.is_some());
            tunnels += usize::from(p.tunnel.is_some());
            bad_sums += usize::from(p.checksums().first_bad().is_some());
        }
        eprintln!(
            "workload {}: {} frames, {} bytes captured; {errors} with a parse error, \
             {tunnels} with a tunnel, {bad_sums} with a bad checksum",
            path.display(),
            frames.len(),
            frames.captured_bytes(),
        );
        frames
    })
}

/// Whole-workload parsing: one iteration parses every frame once.
fn workload(c: &mut Criterion) {
    let frames = frames();
    let mut g = c.benchmark_group("workload");
    g.throughput(Throughput::ElementsAndBytes {
        elements: frames.len() as u64,
        bytes: frames.captured_bytes(),
    });
    // One iteration takes milliseconds: flat sampling keeps the run short.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    g.bench_function("parse_frame", |b| {
        b.iter(|| {
            for f in frames.iter() {
                black_box(Packet::parse_frame(
                    f.link_type,
                    black_box(f.data),
                    f.orig_len,
                ));
            }
        })
    });
    g.bench_function("parse_frame+checksums", |b| {
        b.iter(|| {
            for f in frames.iter() {
                let p = Packet::parse_frame(f.link_type, black_box(f.data), f.orig_len);
                black_box(p.checksums());
                black_box(p);
            }
        })
    });
    g.bench_function("parse_frame+inner", |b| {
        b.iter(|| {
            for f in frames.iter() {
                let p = Packet::parse_frame(f.link_type, black_box(f.data), f.orig_len);
                if let Some(inner) = p.inner() {
                    black_box(inner);
                }
                black_box(p);
            }
        })
    });
    g.finish();
}

/// One hand-built frame per link-layer shape.
fn frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(1));
    for cr in craft::all() {
        g.bench_function(cr.name, |b| {
            b.iter(|| Packet::parse_frame(cr.link_type, black_box(&cr.frame), cr.frame.len()))
        });
    }
    let tcp = craft::eth_ipv4_tcp();
    g.bench_function("eth_ipv4_tcp+checksums", |b| {
        b.iter(|| {
            let p = Packet::parse_frame(LinkType::ETHERNET, black_box(&tcp), tcp.len());
            (p.checksums(), p)
        })
    });
    let vxlan = craft::eth_vxlan_tcp();
    g.bench_function("eth_vxlan_tcp+inner", |b| {
        b.iter(|| {
            let p = Packet::parse_frame(LinkType::ETHERNET, black_box(&vxlan), vxlan.len());
            (p.inner(), p)
        })
    });
    g.finish();
}

/// Replaying the workload file with `netmon_capture::open_file` (warm page cache), no parsing.
fn open_file(c: &mut Criterion) {
    let path = workload_path();
    let bytes = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    let read_all = || {
        let mut src = netmon_capture::open_file(path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let (mut packets, mut captured) = (0u64, 0usize);
        loop {
            match src.next_packet() {
                Ok(Next::Packet(p)) => {
                    packets += 1;
                    captured += black_box(p.data).len();
                }
                Ok(Next::Timeout) => {}
                Ok(Next::End) => break,
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
        (packets, captured)
    };
    let (packets, _) = read_all();
    let mut g = c.benchmark_group("open_file");
    g.throughput(Throughput::ElementsAndBytes {
        elements: packets,
        bytes,
    });
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    g.bench_function("read_all", |b| b.iter(read_all));
    g.finish();
}

criterion_group!(benches, workload, frame, open_file);
criterion_main!(benches);
