//! `netmon read FILE`: decode a capture file and print one line (or one JSON object) per
//! record, and/or a summary.
//!
//! The per-record path parses the frame once ([`decode::Decoded`]) and hands it to the
//! printer of the chosen mode and to the summary counters. With `--quiet` nothing is formatted
//! per packet: the summary counts into fixed arrays, so reading is bound by parsing and
//! checksum verification.

pub(crate) mod decode;
pub(crate) mod fastfmt;
pub(crate) mod jsonl;
mod proto;
mod summary;
pub(crate) mod text;

use std::fmt;
use std::io::{self, BufWriter, IsTerminal, Write};

use crate::input::{Progress, describe, open};
use std::path::PathBuf;

use anyhow::anyhow;
use netmon_capture::{CaptureSource, Next};

use decode::decode;
use summary::Summary;

/// Output buffer size for the printing modes.
const OUT_BUFFER: usize = 256 * 1024;

/// Arguments of `netmon read`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Capture file to read (pcap or pcapng); `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Stop after COUNT records.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    count: Option<u64>,

    /// One JSON object per record (fields: docs/read-json.md).
    #[arg(long)]
    json: bool,

    /// After the records, print a summary (one JSON object with --json).
    #[arg(long)]
    stats: bool,

    /// Print only the summary (implies --stats).
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// What is printed per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Text,
    Json,
    Quiet,
}

/// `secs.nanos` with nine fractional digits (tshark's `frame.time_epoch`), from nanoseconds
/// since the epoch (or a duration in nanoseconds); negative values get a leading `-`.
pub(crate) struct EpochSecs(i64);

pub(crate) fn ts_epoch(nanos: i64) -> EpochSecs {
    EpochSecs(nanos)
}

impl fmt::Display for EpochSecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(
            f,
            "{sign}{}.{:09}",
            abs / 1_000_000_000,
            abs % 1_000_000_000
        )
    }
}

/// Runs `netmon read`. Errors: the file could not be read (message ready for
/// `netmon: <message>`), or writing to stdout failed (a closed pipe is an `io::Error` of kind
/// `BrokenPipe`, which the caller treats as success).
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let mut src = open(&args.file).map_err(|e| anyhow!(describe(&e)))?;
    let mode = if args.quiet {
        Mode::Quiet
    } else if args.json {
        Mode::Json
    } else {
        Mode::Text
    };
    let stats = args.stats || args.quiet;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(OUT_BUFFER, stdout.lock());
    let mut progress = Progress::new(&src, mode == Mode::Quiet || !io::stdout().is_terminal());
    let mut summary = Summary::default();
    let mut tsf = fastfmt::TsFmt::new();
    let mut n: u64 = 0;
    let mut capture_error = None;
    loop {
        if args.count.is_some_and(|c| n >= c) {
            break;
        }
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                n += 1;
                let meta = &p.meta;
                decode(meta, p.data, |d| {
                    match mode {
                        Mode::Text => text::write_record(&mut out, &mut tsf, meta, d)?,
                        Mode::Json => jsonl::write_record(&mut out, &mut tsf, n, meta, d)?,
                        Mode::Quiet => {}
                    }
                    if stats {
                        summary.add(meta, d);
                    }
                    io::Result::Ok(())
                })?;
            }
            Ok(Next::Timeout) => continue,
            Ok(Next::End) => break,
            Err(e) => {
                capture_error = Some(e);
                break;
            }
        }
        progress.tick(n, &src);
    }
    progress.finish();
    let message = capture_error.as_ref().map(describe);
    if stats {
        summary.iface_dropped = src.stats().iface_dropped;
        summary.capture_error = message.clone();
        debug_assert_eq!(summary.packets(), n);
        if args.json {
            summary.write_json(&mut out)?;
        } else {
            summary.write_text(&mut out)?;
        }
    }
    out.flush()?;
    match message {
        Some(m) => Err(anyhow!(m)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_format() {
        assert_eq!(ts_epoch(0).to_string(), "0.000000000");
        assert_eq!(
            ts_epoch(1_700_000_000_123_456_789).to_string(),
            "1700000000.123456789"
        );
        assert_eq!(ts_epoch(-1).to_string(), "-0.000000001");
        assert_eq!(ts_epoch(i64::MIN).to_string(), "-9223372036.854775808");
    }
}
