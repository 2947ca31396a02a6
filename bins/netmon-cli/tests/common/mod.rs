//! What the `netmon` CLI tests share: running the binary and reading its output.
#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_netmon");

/// Runs `netmon ARGS` with stdin closed.
pub(crate) fn netmon(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run netmon")
}

/// Standard output as UTF-8.
pub(crate) fn stdout(o: &Output) -> &str {
    std::str::from_utf8(&o.stdout).expect("stdout is UTF-8")
}

/// Standard error as UTF-8.
pub(crate) fn stderr(o: &Output) -> &str {
    std::str::from_utf8(&o.stderr).expect("stderr is UTF-8")
}

/// Runs netmon, which must exit 0 with nothing on stderr; its stdout.
pub(crate) fn ok(args: &[&str]) -> String {
    let out = netmon(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "{args:?}");
    stdout(&out).to_owned()
}

/// The repository's `fixtures/`.
pub(crate) fn fixtures() -> PathBuf {
    netmon_testkit::fixtures_dir(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture's path as a string argument.
pub(crate) fn fixture(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_owned()
}

/// A fresh path in the temp directory (`tag` names the test file).
pub(crate) fn temp_path(tag: &str, name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "netmon-{tag}-test-{}-{n}-{name}",
        std::process::id()
    ))
}

/// An Ethernet/IPv4/UDP frame 10.0.0.1:`src` → 10.0.0.2:`dst` carrying `payload`.
pub(crate) fn eth_ipv4_udp(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(src, dst)
        .write(&mut f, payload)
        .unwrap();
    f
}
