//! The RFC 1071 Internet checksum over typical packet sizes.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netmon_packet::checksum::{Sum, internet_checksum};

/// Sizes: a minimal frame, a typical TLS ClientHello-ish segment, an Ethernet MTU, a jumbo frame.
const SIZES: [usize; 4] = [64, 550, 1500, 9000];

/// Deterministic, non-trivial bytes (xorshift), so no summing shortcut applies.
fn buffer(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in SIZES {
        let buf = buffer(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(
            BenchmarkId::new("internet_checksum", size),
            &buf,
            |b, buf| b.iter(|| internet_checksum(black_box(buf))),
        );
        g.bench_with_input(BenchmarkId::new("sum_add_bytes", size), &buf, |b, buf| {
            b.iter(|| {
                let mut s = Sum::new();
                s.add_bytes(black_box(buf));
                s.fold()
            })
        });
        // Two pieces split at an odd offset: the byte-swapped continuation path (a header and
        // a payload summed separately).
        let split = (size / 2) | 1;
        g.bench_with_input(
            BenchmarkId::new("sum_add_bytes_odd_split", size),
            &buf,
            |b, buf| {
                b.iter(|| {
                    let (head, tail) = black_box(buf).split_at(split);
                    let mut s = Sum::new();
                    s.add_bytes(head);
                    s.add_bytes(tail);
                    s.fold()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, checksum);
criterion_main!(benches);
