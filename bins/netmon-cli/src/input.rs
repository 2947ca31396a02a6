//! Opening capture inputs for every subcommand: files or stdin, one-line error messages with a
//! hint, and the progress bar for long files.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use netmon_capture::{CaptureError, FileSource};

/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;

/// Opens a file, or standard input for `-`.
pub(crate) fn open(path: &std::path::Path) -> Result<FileSource, CaptureError> {
    if path.as_os_str() == "-" {
        FileSource::from_reader(io::stdin(), "<stdin>")
    } else {
        netmon_capture::open_file(path)
    }
}

/// A one-line description of a capture error with a hint what to do:
/// `<path>: <what> (<hint>)`.
pub(crate) fn describe(e: &CaptureError) -> String {
    let line = match e {
        CaptureError::Io { path, source } => {
            let hint = match source.kind() {
                io::ErrorKind::NotFound => "check the path",
                io::ErrorKind::PermissionDenied => "check the file's permissions",
                _ => "is it a regular, readable file?",
            };
            format!("{path}: {source} ({hint})")
        }
        CaptureError::NotACapture { .. } => {
            format!("{e} (netmon reads pcap and pcapng files)")
        }
        CaptureError::Truncated { .. } => {
            format!("{e} (the file was cut short, e.g. copied while still being written)")
        }
        CaptureError::Corrupt { .. } => {
            format!("{e} (the file is damaged; the packets before it were read)")
        }
        CaptureError::UnsupportedLinkType { .. } => {
            format!("{e} (capture on an Ethernet or \"any\" interface instead)")
        }
        _ => e.to_string(),
    };
    // One line, whatever a path or an OS message holds.
    line.replace(['\n', '\r'], " ")
}

/// A progress bar on stderr for long reads: only when stderr is a terminal, the input's size is
/// known and at least [`PROGRESS_MIN_BYTES`], and the records are not being printed to the
/// same terminal. Updated at most every 100 ms, checked every 16384 records.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: Instant,
}

impl Progress {
    const EVERY: u64 = 1 << 14;
    const INTERVAL: Duration = Duration::from_millis(100);

    pub(crate) fn new(src: &FileSource, stdout_free: bool) -> Progress {
        let bar = src
            .total_bytes()
            .filter(|&t| t >= PROGRESS_MIN_BYTES && stdout_free && io::stderr().is_terminal())
            .map(|total| {
                let bar = indicatif::ProgressBar::with_draw_target(
                    Some(total),
                    indicatif::ProgressDrawTarget::stderr_with_hz(10),
                );
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                ) {
                    bar.set_style(style);
                }
                bar
            });
        Progress {
            bar,
            last: Instant::now(),
        }
    }

    #[inline]
    pub(crate) fn tick(&mut self, n: u64, src: &FileSource) {
        if n % Self::EVERY != 0 {
            return;
        }
        if let Some(bar) = &self.bar {
            if self.last.elapsed() >= Self::INTERVAL {
                bar.set_position(src.bytes_consumed());
                self.last = Instant::now();
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
