//! Test support shared by netmon's test suites (a dev-dependency only; nothing ships it).
//!
//! The shared material lives beside the repository in `../shared` (`corpus/` with real
//! captures and their tshark oracle, `tools/` with the workload generator). It is found
//! through environment variables or by walking up from the calling crate:
//!
//! | variable | meaning |
//! |---|---|
//! | `NETMON_SHARED` | the `shared/` directory |
//! | `NETMON_CORPUS` | the `shared/corpus` directory (overrides the above for the corpus) |
//! | `NETMON_SKIP_CORPUS=1` | corpus tests print a notice and pass without running |
//!
//! [`oracle`] holds the oracle's flow accounting (key, counts, reading and diffing).
//! [`tls`] builds TLS handshake messages and records for tests.
//!
//! Without `NETMON_SKIP_CORPUS=1`, a corpus that cannot be found **fails** the test: a test
//! that silently skips its real inputs would be a test that cannot fail.
//!
//! ```no_run
//! let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else { return };
//! for capture in corpus.captures() {
//!     let oracle = corpus.oracle(&capture);
//!     assert!(oracle["summary"]["frames"].as_u64().is_some());
//! }
//! ```
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod mmdb;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod nfcapd;
pub mod oracle;
pub mod tls;

pub use netmon_types::Timestamp;

/// The `shared/` directory: `$NETMON_SHARED`, else the first `shared` directory beside an
/// ancestor of `start` (pass `env!("CARGO_MANIFEST_DIR")`) that holds `corpus/` or `tools/`,
/// else the parent of `$NETMON_CORPUS` when it holds `tools/` (a clone away from `shared/`
/// that only points at the corpus).
pub fn shared_dir(start: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETMON_SHARED") {
        return Some(PathBuf::from(p));
    }
    Path::new(start)
        .ancestors()
        .map(|a| a.join("shared"))
        .find(|s| s.join("corpus").is_dir() || s.join("tools").is_dir())
        .or_else(|| {
            let corpus = PathBuf::from(std::env::var_os("NETMON_CORPUS")?);
            corpus
                .parent()
                .filter(|p| p.join("tools").is_dir())
                .map(Path::to_path_buf)
        })
}

/// The tshark to run: `$TSHARK`, else `tshark` on `PATH`; `None` if it does not run.
pub fn tshark() -> Option<String> {
    let exe = std::env::var("TSHARK").unwrap_or_else(|_| "tshark".to_owned());
    let out = std::process::Command::new(&exe)
        .arg("--version")
        .output()
        .ok()?;
    out.status.success().then_some(exe)
}

/// What a test that compares with tshark does when tshark is missing: panics if
/// `NETMON_REQUIRE_TSHARK=1`, else prints `what` as NOT RUN (returns).
pub fn tshark_missing(what: &str) {
    let msg = format!("tshark not found ($TSHARK or tshark on PATH): {what} NOT RUN");
    if std::env::var("NETMON_REQUIRE_TSHARK").as_deref() == Ok("1") {
        panic!("{msg}, and NETMON_REQUIRE_TSHARK=1");
    }
    eprintln!("\n!!!!!!!!\n!!! {msg}\n!!!!!!!!\n");
}

/// The repository's `fixtures/` directory, found by walking up from `start`.
pub fn fixtures_dir(start: &str) -> PathBuf {
    Path::new(start)
        .ancestors()
        .map(|a| a.join("fixtures"))
        .find(|f| f.join("README.md").is_file())
        .unwrap_or_else(|| panic!("no fixtures/ directory above {start}"))
}

/// The shared capture corpus.
#[derive(Clone, Debug)]
pub struct Corpus {
    dir: PathBuf,
}

/// Locates the corpus for a test, or `None` when `NETMON_SKIP_CORPUS=1` asks to skip (a notice
/// is printed). Panics with instructions when it cannot be found.
pub fn corpus(start: &str) -> Option<Corpus> {
    if std::env::var("NETMON_SKIP_CORPUS").as_deref() == Ok("1") {
        eprintln!("NETMON_SKIP_CORPUS=1: corpus test skipped");
        return None;
    }
    let dir = match std::env::var_os("NETMON_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => shared_dir(start)
            .map(|s| s.join("corpus"))
            .unwrap_or_default(),
    };
    assert!(
        dir.is_dir(),
        "capture corpus not found (looked for shared/corpus above {start}): set NETMON_CORPUS to \
         the corpus directory, or NETMON_SKIP_CORPUS=1 to skip corpus tests"
    );
    Some(Corpus { dir })
}

impl Corpus {
    /// The corpus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every capture (`.pcap`, `.pcapng`), sorted by name. Panics if there are none.
    pub fn captures(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap_or_else(|e| panic!("{}: {e}", self.dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("pcap" | "pcapng")
                )
            })
            .collect();
        v.sort();
        assert!(!v.is_empty(), "{}: no captures", self.dir.display());
        v
    }

    /// A capture by file name.
    pub fn capture(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        assert!(p.is_file(), "{}: not in the corpus", p.display());
        p
    }

    /// The tshark oracle of a capture (`oracle/<file name>.oracle.json`), parsed. Panics when
    /// it is missing or not JSON.
    pub fn oracle(&self, capture: &Path) -> serde_json::Value {
        self.try_oracle(capture).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The tshark oracle of a capture, or a message naming the file and the problem.
    pub fn try_oracle(&self, capture: &Path) -> Result<serde_json::Value, String> {
        let name = capture
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let path = self.dir.join("oracle").join(format!("{name}.oracle.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Parses tshark's `frame.time_epoch` form, `secs.nanos` (up to nine fractional digits).
pub fn parse_epoch(s: &str) -> Option<Timestamp> {
    let (secs, frac) = s.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{frac:0<9}").parse().ok()?;
    Some(Timestamp::from_secs_nanos(secs.parse().ok()?, nanos))
}

/// The file name of `p` (lossy), for messages and exception tables.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs `f` over every file on a few threads (at most 4); results in file order.
pub fn par_map<T: Send>(files: &[PathBuf], f: impl Fn(&Path) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let next = AtomicUsize::new(0);
    let out: Mutex<BTreeMap<usize, T>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let r = f(path);
                    out.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(i, r);
                }
            });
        }
    });
    out.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_values()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_forms() {
        assert_eq!(
            parse_epoch("5.000000001"),
            Some(Timestamp::from_nanos(5_000_000_001))
        );
        assert_eq!(
            parse_epoch("5.5"),
            Some(Timestamp::from_nanos(5_500_000_000))
        );
        assert_eq!(parse_epoch("5"), None);
        assert_eq!(parse_epoch("5.1234567890"), None);
        assert_eq!(parse_epoch("5.x"), None);
    }

    #[test]
    fn finds_the_corpus_and_its_oracle() {
        let Some(c) = corpus(env!("CARGO_MANIFEST_DIR")) else {
            return;
        };
        let caps = c.captures();
        assert!(caps.len() >= 80, "the corpus has 80 captures");
        let o = c.oracle(&c.capture("zeek_http-get.pcap"));
        assert_eq!(o["summary"]["frames"], 14);
        assert!(
            fixtures_dir(env!("CARGO_MANIFEST_DIR"))
                .join("demo.pcap")
                .is_file()
        );
    }
}
