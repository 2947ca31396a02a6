//! Helpers shared by netmond's integration tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A path for a test's file (config, database, spool) in this test run's own directory under
/// `target/tmp` (Cargo's `CARGO_TARGET_TMPDIR`): nothing is left in `/tmp`, names are stable
/// (each test removes or overwrites its files before use), and `cargo clean` removes them.
#[allow(dead_code)] // Not every test binary writes files.
pub(crate) fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("netmond-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A port nobody listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET over a fresh connection (`headers`: extra header lines, each ending in `\r\n`):
/// status code, head, raw body.
pub(crate) fn get_raw(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Writes `yaml` to `cfg` and runs netmond on it until it exits (standard input closed,
/// output captured).
#[allow(dead_code)] // Not every test binary runs a daemon to its end.
pub(crate) fn run_netmond(cfg: &std::path::Path, yaml: &str) -> std::process::Output {
    std::fs::write(cfg, yaml).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_netmond"))
        .arg("--config")
        .arg(cfg)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}
