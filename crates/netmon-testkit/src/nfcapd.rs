//! A real IPFIX collector for export tests: Debian's `nfcapd` on a free loopback UDP port,
//! read back with `nfdump -r` once stopped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nfcapd writing into a directory of its own.
pub struct Nfcapd {
    child: Child,
    dir: PathBuf,
    /// The UDP port it listens on (127.0.0.1).
    pub port: u16,
}

/// Whether `nfcapd` and `nfdump` are installed; panics when they are not and
/// `NETMON_REQUIRE_NFDUMP` is set.
pub fn available() -> bool {
    let have = |t: &str| Command::new(t).arg("-V").output().is_ok();
    let ok = have("nfcapd") && have("nfdump");
    assert!(
        ok || std::env::var_os("NETMON_REQUIRE_NFDUMP").is_none(),
        "nfcapd/nfdump not installed (apt install nfdump)"
    );
    ok
}

impl Nfcapd {
    /// Starts nfcapd and waits until it listens (its current file exists).
    ///
    /// # Panics
    ///
    /// When it cannot be started or does not come up within 10 s (test setup errors).
    pub fn start(tag: &str) -> Nfcapd {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free UDP port");
        let dir = std::env::temp_dir().join(format!("netmon-nfcapd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("nfcapd directory");
        let child = Command::new("nfcapd")
            .args([
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "3600",
                "-w",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nfcapd");
        let t = Instant::now();
        while !std::fs::read_dir(&dir).is_ok_and(|mut d| {
            d.any(|e| {
                e.is_ok_and(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("nfcapd.current")
                })
            })
        }) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "nfcapd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        Nfcapd { child, dir, port }
    }

    /// Stops nfcapd (SIGTERM: it writes its file) and returns `nfdump -r FILE -q -N -6 -o
    /// fmt:<fmt>`'s output, one flow per line.
    ///
    /// # Panics
    ///
    /// When nfcapd wrote no file or nfdump fails (test errors).
    pub fn stop_and_dump(mut self, fmt: &str) -> String {
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let file = std::fs::read_dir(&self.dir)
            .expect("nfcapd directory")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| n.starts_with("nfcapd.") && !n.contains("current"))
            })
            .expect("nfcapd wrote no file");
        let out = Command::new("nfdump")
            .arg("-r")
            .arg(&file)
            .args(["-q", "-N", "-6", "-o", &format!("fmt:{fmt}")])
            .output()
            .expect("run nfdump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&self.dir);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
