//! Replays recorded flow rows into a fresh store: a repeatable measurement of the flow write
//! path (`SqliteStore::write_flows`, the work of netmond's `netmon-store` thread), e.g. under
//! `valgrind --tool=callgrind --toggle-collect='*store_replay::replay*'` for instruction
//! counts that do not depend on the machine's load.
//!
//! ```text
//! # once: the rows a netmond run stored, in their storage order, as JSON lines
//! cargo run --release -p netmon-store --example store_replay -- dump netmon.db rows.jsonl
//! # then: write the first N of them (all when N is 0) in transactions of BATCH rows
//! cargo run --release -p netmon-store --example store_replay -- write rows.jsonl out.db N BATCH
//! ```
//!
//! `dump` reads a database of the current schema version. `write` deletes `out.db` (and its
//! log) first, times the writes and the final close (its checkpoint), and prints rows per
//! second and the file sizes after the close.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use netmon_store::{FlowQuery, FlowRow, FlowSort, Order, RunInfo, SqliteStore, Store};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn dump(src: &Path, out: &Path) -> Res<()> {
    let mut s = SqliteStore::open_read_only(src)?;
    let mut rows = std::collections::HashMap::new();
    let mut q = FlowQuery {
        sort: FlowSort::FirstSeen,
        order: Order::Asc,
        limit: 10_000,
        ..FlowQuery::default()
    };
    loop {
        let page = s.query_flows(&q)?;
        for r in page.rows {
            rows.insert((r.run_id, r.id), r);
        }
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    // The storage order: the order netmond wrote them in.
    let c = rusqlite::Connection::open_with_flags(src, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut st = c.prepare("SELECT run_id, id FROM flows ORDER BY seq")?;
    let keys = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    let mut w = BufWriter::new(std::fs::File::create(out)?);
    let mut n = 0u64;
    for k in keys {
        let (run, id) = k?;
        let key = (u64::try_from(run)?, u64::try_from(id)?);
        if let Some(r) = rows.get(&key) {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
            n += 1;
        }
    }
    w.flush()?;
    eprintln!("{n} rows written to {}", out.display());
    Ok(())
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn size(path: &Path, suffix: &str) -> u64 {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    std::fs::metadata(PathBuf::from(p)).map_or(0, |m| m.len())
}

/// The measured part: every write, then the close.
#[inline(never)]
fn replay(mut s: SqliteStore, rows: &[FlowRow], batch: usize) -> Res<()> {
    for b in rows.chunks(batch.max(1)) {
        s.write_flows(b)?;
    }
    s.flush()?;
    drop(s);
    Ok(())
}

fn write(src: &Path, out: &Path, n: usize, batch: usize) -> Res<()> {
    let f = std::io::BufReader::new(std::fs::File::open(src)?);
    let mut rows: Vec<FlowRow> = Vec::new();
    for line in f.lines() {
        if n != 0 && rows.len() >= n {
            break;
        }
        let mut r: FlowRow = serde_json::from_str(&line?)?;
        r.run_id = 1;
        rows.push(r);
    }
    remove_db(out);
    let mut s = SqliteStore::open(out)?;
    s.begin_run(&RunInfo::default())?;
    if let Ok(sql) = std::env::var("STORE_REPLAY_SQL") {
        // Experiments: schema changes applied before the writes.
        rusqlite::Connection::open(out)?.execute_batch(&sql)?;
    }
    let t = Instant::now();
    replay(s, &rows, batch)?;
    let dt = t.elapsed();
    println!(
        "{} rows in {:.3} s: {:.2} us/row; file {} B, wal {} B",
        rows.len(),
        dt.as_secs_f64(),
        dt.as_secs_f64() * 1e6 / rows.len().max(1) as f64,
        size(out, ""),
        size(out, "-wal"),
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1), arg(2)) {
        (Some("dump"), Some(src), Some(out)) => dump(Path::new(src), Path::new(out)),
        (Some("write"), Some(src), Some(out)) => {
            let n = arg(3).map_or(Ok(0), str::parse)?;
            let batch = arg(4).map_or(Ok(1024), str::parse)?;
            write(Path::new(src), Path::new(out), n, batch)
        }
        _ => Err(
            "usage: store_replay dump DB OUT.jsonl | write ROWS.jsonl OUT.db [N] [BATCH]".into(),
        ),
    }
}
