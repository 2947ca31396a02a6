//! netmon-store write throughput: flow rows per second into a SQLite file through the
//! `StoreWriter` thread (the daemon's path), sustained on a database that already holds rows.
//!
//! Rows are `netmon_benches::store_rows::flow` (a classified-capture mix: TLS with SNI/ALPN/JA4,
//! DNS with answers, HTTP requests; 4 096 clients, 512 servers). Each benchmark opens a fresh
//! database under `target/bench-data/store/` (deleted at the start and the end), pre-fills it
//! with 200 000 flows, then each iteration queues `ROWS_PER_ITER` new flows in 1 024-row
//! batches (`send`, blocking) and waits for `flush()`: the time is until every row is
//! committed. The file keeps growing over the iterations (to 0.5–1 M rows), so later samples
//! write into bigger indexes.
//!
//! - `write_flows/batch_1024`: `WriterConfig::default()`: batches waiting in the queue join one
//!   transaction (up to 16 384 rows), as in the daemon;
//! - `write_flows/batch_1024_no_coalesce`: one transaction per batch.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use netmon_benches::store_rows;
use netmon_store::{Batch, RunInfo, SqliteStore, Store, StoreWriter, WriterConfig};

const BATCH: u64 = 1024;

const PREFILL: u64 = 200_000;
const ROWS_PER_ITER: u64 = 20_000;

fn db_path(name: &str) -> PathBuf {
    let dir = netmon_benches::bench_data_dir().join("store");
    std::fs::create_dir_all(&dir).expect("create target/bench-data/store");
    dir.join(format!("{name}.db"))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn write_rows(writer: &StoreWriter, run_id: u64, ids: std::ops::Range<u64>, batch: u64) {
    let mut id = ids.start;
    while id < ids.end {
        let end = (id + batch).min(ids.end);
        let rows = (id..end).map(|i| store_rows::flow(run_id, i)).collect();
        writer.send(Batch::Flows(rows)).expect("writer running");
        id = end;
    }
    writer.flush().expect("flush");
}

fn bench_store(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(ROWS_PER_ITER));
    let configs = [
        ("batch_1024", WriterConfig::default()),
        (
            "batch_1024_no_coalesce",
            WriterConfig {
                coalesce_rows: 0,
                ..WriterConfig::default()
            },
        ),
    ];
    for (name, config) in configs {
        let batch = BATCH;
        let path = db_path(name);
        remove_db(&path);
        let mut store = SqliteStore::open(&path).expect("open bench database");
        let run_id = store.begin_run(&RunInfo::default()).expect("begin run");
        let writer = StoreWriter::spawn(Box::new(store), &config).expect("spawn writer");
        write_rows(&writer, run_id, 0..PREFILL, batch);
        let mut next = PREFILL;
        g.bench_function(BenchmarkId::new("write_flows", name), |b| {
            b.iter_custom(|iters| {
                // Rows are built outside the timed section: the engine hands ready rows over.
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let batches: Vec<Batch> = (next..next + ROWS_PER_ITER)
                        .step_by(batch as usize)
                        .map(|s| {
                            let e = (s + batch).min(next + ROWS_PER_ITER);
                            Batch::Flows((s..e).map(|i| store_rows::flow(run_id, i)).collect())
                        })
                        .collect();
                    next += ROWS_PER_ITER;
                    let t = Instant::now();
                    for b in batches {
                        writer.send(b).expect("writer running");
                    }
                    writer.flush().expect("flush");
                    elapsed += t.elapsed();
                }
                elapsed
            });
        });
        let stats = writer.close().expect("close");
        eprintln!(
            "store/write_flows/{name}: {} rows committed in {} batches, {} transactions, {} errors, file {:.0} MB",
            stats.flow_rows,
            stats.batches,
            stats.commits,
            stats.errors,
            std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / 1e6)
        );
        remove_db(&path);
    }
    g.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
