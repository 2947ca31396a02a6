//! Crash safety: a child process writes batches through a StoreWriter and is killed
//! (SIGKILL on Unix) in the middle of writing; the database reopens (WAL recovery), passes
//! `PRAGMA integrity_check`, and holds every batch that `flush()` reported committed.
//!
//! The child is this test binary run again with `NETMON_STORE_CRASH_CHILD` set, executing only
//! the `crash_child` test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use netmon_store::{Batch, FlowQuery, RunInfo, SqliteStore, Store, StoreWriter, WriterConfig};

const CHILD_ENV: &str = "NETMON_STORE_CRASH_CHILD";
const BATCH: u64 = 500;

/// The child's body (a no-op in a normal test run): writes forever, printing after each
/// successful flush how many batches of its run are committed.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut store = SqliteStore::open(&path).unwrap();
    let run = store
        .begin_run(&RunInfo {
            host: "crash".into(),
            ..RunInfo::default()
        })
        .unwrap();
    let w = StoreWriter::spawn(
        Box::new(store),
        &WriterConfig {
            queue_batches: 4,
            ..WriterConfig::default()
        },
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    for b in 0u64.. {
        let rows = (b * BATCH..(b + 1) * BATCH)
            .map(|i| common::full_flow(run, i))
            .collect();
        w.send(Batch::Flows(rows)).unwrap();
        if b % 2 == 1 {
            w.flush().unwrap();
            writeln!(out, "COMMITTED {run} {}", b + 1).unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn sigkill_mid_write_keeps_every_flushed_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let exe = std::env::current_exe().unwrap();
    // (run, batches committed) as the children reported them.
    let mut committed: Vec<(u64, u64)> = Vec::new();
    for round in 0..4u64 {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let want = 2 + round * 3;
        let mut last = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let Some(rest) = line.strip_prefix("COMMITTED ") else {
                continue;
            };
            let mut it = rest.split(' ').map(|x| x.parse::<u64>().unwrap());
            let (run, n) = (it.next().unwrap(), it.next().unwrap());
            last = Some((run, n));
            if n >= want * 2 {
                break;
            }
        }
        // Let it get into the next batches, then kill it mid-write.
        std::thread::sleep(Duration::from_millis(7 * round + 3));
        child.kill().unwrap();
        // Whatever it printed before dying is committed too.
        for line in lines.map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("COMMITTED ") {
                let mut it = rest.split(' ').map(|x| x.parse::<u64>().unwrap());
                last = Some((it.next().unwrap(), it.next().unwrap()));
            }
        }
        child.wait().unwrap();
        committed.push(last.expect("the child committed nothing"));

        // Reopen: WAL recovery, integrity, and every flushed batch of every run so far.
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.integrity_check().unwrap(), vec!["ok"], "round {round}");
        for &(run, n) in &committed {
            let q = FlowQuery {
                run_id: Some(run),
                order: netmon_store::Order::Asc,
                limit: 10_000,
                ..FlowQuery::default()
            };
            let mut ids = Vec::new();
            let mut q2 = q.clone();
            loop {
                let p = s.query_flows(&q2).unwrap();
                ids.extend(p.rows.iter().map(|r| r.id));
                match p.next {
                    Some(c) => q2.cursor = Some(c),
                    None => break,
                }
            }
            ids.sort_unstable();
            let flushed = n * BATCH;
            assert!(
                ids.len() as u64 >= flushed,
                "run {run}: {} rows, {flushed} flushed",
                ids.len()
            );
            // Batches are whole: ids 0.. without gaps, a multiple of the batch size.
            assert!(
                ids.iter().enumerate().all(|(i, &id)| i as u64 == id),
                "run {run}: gap"
            );
            assert_eq!(ids.len() as u64 % BATCH, 0, "run {run}: a partial batch");
        }
        // The reopened store writes on.
        s.write_flows(&[common::flow(999, round, 0, 1)]).unwrap();
    }
}
