//! The dashboard ("radar") in headless Chromium: netmond replays a capture, and
//! `tests/browser/radar.mjs` (playwright-core driving the system's chromium) checks the page.
//!
//! Needs `node`, `/usr/bin/chromium` (or `$CHROMIUM`) and `npm ci` in `tests/browser`; without
//! them each test prints why it is skipped, unless `NETMON_REQUIRE_BROWSER=1` (CI), which
//! makes a missing tool a failure. Screenshots go to `target/tmp/radar-screens/`;
//! `NETMON_RADAR_SHOT=docs/radar.png` also writes the README's screenshot.

mod common;

use common::free_port;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_netmond");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("radar-screens");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tool() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not installed".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "{chromium} is missing (apt-get install chromium, or set CHROMIUM)"
        ));
    }
    let pw = repo().join("tests/browser/node_modules/playwright-core");
    if !pw.exists() {
        return Some(
            "tests/browser/node_modules is missing (run `npm ci` in tests/browser)".into(),
        );
    }
    None
}

/// One browser test at a time: each runs netmond and a Chromium, which together load both
/// cores of a small machine; in parallel their pages miss their timing.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether to run; panics when a tool is missing and `NETMON_REQUIRE_BROWSER=1`.
fn browser_available(test: &str) -> bool {
    match missing_tool() {
        None => true,
        Some(why) if std::env::var("NETMON_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("{test}: {why} (NETMON_REQUIRE_BROWSER=1)")
        }
        Some(why) => {
            eprintln!("{test}: skipped: {why}");
            false
        }
    }
}

/// A GET: status, lower-case head, body.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let (status, head, body) = common::get_raw(addr, path, &auth);
    (status, head.to_ascii_lowercase(), body)
}

/// netmond replaying `file` at `speed`; killed on drop.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    /// Its stderr (log level info), shown when a browser check fails.
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(tag: &str, file: &Path, speed: &str, token: Option<&str>) -> Daemon {
        let port = free_port();
        let cfg = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("radar-{tag}.yaml"));
        let token = token.map_or(String::new(), |t| format!("  token: {t}\n"));
        std::fs::write(
            &cfg,
            format!(
                "capture:\n  file: {}\nreplay:\n  speed: {speed}\nstorage:\n  enabled: false\n\
                 api:\n  bind: 127.0.0.1:{port}\n{token}log:\n  level: info\n",
                file.display()
            ),
        )
        .unwrap();
        let log = cfg.with_extension("log");
        let mut child = Command::new(BIN)
            .args(["--config", cfg.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let t = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "netmond exited early");
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "netmond not listening"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        Daemon { child, addr, log }
    }

    /// Whether it still runs, and its log: what a failed browser check reports.
    fn diagnose(&mut self) -> String {
        let state = match self.child.try_wait() {
            Ok(None) => "still running".to_owned(),
            Ok(Some(s)) => format!("exited: {s}"),
            Err(e) => format!("unknown: {e}"),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("netmond {state}; its log:\n{log}")
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/browser/radar.mjs` started before the daemon: Chromium is launched and waits for the
/// URL, so its start-up (seconds on a loaded machine) cannot race the replay it is to watch.
struct Browser {
    child: Child,
    /// Its standard output, line by line, from a reader thread.
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Browser {
    /// Starts the script in `mode` with `args` and waits until its browser is up.
    fn launch(mode: &str, args: &[&str]) -> Browser {
        use std::io::{BufRead, Read};
        let script = repo().join("tests/browser/radar.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .args([mode, "-"])
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut b = Browser {
            child,
            lines,
            stderr: Some(stderr),
        };
        match b.lines.recv_timeout(Duration::from_secs(120)) {
            Ok(l) if l == "READY" => b,
            other => {
                let _ = b.child.kill();
                let _ = b.child.wait();
                let err = b.stderr.take().unwrap().join().unwrap_or_default();
                panic!("the browser did not start: {other:?}\n{err}")
            }
        }
    }

    /// Sends the page's URL, waits for the checks to end and returns their output (printed);
    /// on failure the daemon's state and log are in the message.
    fn run(mut self, d: &mut Daemon) -> String {
        use std::io::Write;
        let mut stdin = self.child.stdin.take().unwrap();
        writeln!(stdin, "{}", d.url()).unwrap();
        drop(stdin);
        let mut text = String::new();
        let t = Instant::now();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if t.elapsed() > Duration::from_secs(300) {
                        let _ = self.child.kill();
                    }
                }
            }
        }
        let status = self.child.wait().unwrap();
        println!("{text}");
        eprintln!("{}", self.stderr.take().unwrap().join().unwrap_or_default());
        assert!(
            status.success(),
            "the browser checks failed ({status}):\n{text}\n{}",
            d.diagnose()
        );
        text
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----------------------------------------------------------------------------- pcap files

/// Classic little-endian microsecond pcap records: (seconds, microseconds, frame).
type Records = Vec<(u32, u32, Vec<u8>)>;

fn read_pcap(path: &Path) -> Records {
    let b = std::fs::read(path).unwrap();
    assert_eq!(b[..4], [0xd4, 0xc3, 0xb2, 0xa1], "{}", path.display());
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let w = |o: usize| u32::from_le_bytes(b[i + o..i + o + 4].try_into().unwrap());
        let (sec, usec, incl) = (w(0), w(4), w(8) as usize);
        out.push((sec, usec, b[i + 16..i + 16 + incl].to_vec()));
        i += 16 + incl;
    }
    out
}

fn write_pcap(path: &Path, mut recs: Records) {
    recs.sort_by_key(|r| (r.0, r.1));
    // magic, version 2.4, thiszone, sigfigs, snaplen, LINKTYPE_ETHERNET.
    let mut b = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    b.extend([2, 0, 4, 0]);
    for v in [0u32, 0, 65535, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (s, us, f) in recs {
        for v in [s, us, f.len() as u32, f.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&f);
    }
    std::fs::write(path, b).unwrap();
}

/// A TLS ClientHello record carrying `sni`.
fn client_hello(sni: &[u8]) -> Vec<u8> {
    // struct { NameType name_type; opaque HostName<1..2^16-1>; } ServerName;
    // ServerName server_name_list<1..2^16-1>;                              RFC 6066 §3
    let be16 = |n: usize| (n as u16).to_be_bytes();
    let mut name = vec![0u8];
    name.extend(be16(sni.len()));
    name.extend_from_slice(sni);
    let mut list = be16(name.len()).to_vec();
    list.extend(name);
    let mut ext = vec![0, 0];
    ext.extend(be16(list.len()));
    ext.extend(list);
    // struct { ProtocolVersion legacy_version; Random random; opaque legacy_session_id<0..32>;
    //   CipherSuite cipher_suites<2..2^16-2>; opaque legacy_compression_methods<1..2^8-1>;
    //   Extension extensions<8..2^16-1>; } ClientHello;                    RFC 8446 §4.1.2
    let mut body = vec![3, 3];
    body.extend([0x42; 32]);
    body.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend(be16(ext.len()));
    body.extend(ext);
    // Handshake { msg_type(1) = client_hello; uint24 length; body }, in a TLSPlaintext record
    // { type(22) = handshake; legacy_record_version 0x0301; uint16 length }.
    let mut hs = vec![1];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend(be16(hs.len()));
    rec.extend(hs);
    rec
}

/// One TCP conversation, client 10.0.0.2 → `server`:`port`: handshake, `request`, then a
/// response and an acknowledgement every half second for `secs` seconds (no FIN: the flow
/// stays active until the capture ends).
fn conversation(server: [u8; 4], port: u16, request: &[u8], start: u32, secs: u32) -> Records {
    use etherparse::PacketBuilder;
    let client = [10, 0, 0, 2];
    let cport = 40000 + port;
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut out = Vec::new();
    let mut t_us = u64::from(start) * 1_000_000;
    let mut push = |c2s: bool, flags: &str, payload: &[u8], cseq: u32, sseq: u32, t: u64| {
        let (src, dst, sp, dp, seq, ack) = if c2s {
            (client, server, cport, port, cseq, sseq)
        } else {
            (server, client, port, cport, sseq, cseq)
        };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 64240);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if flags.contains('P') {
            b = b.psh();
        }
        let mut f = Vec::new();
        b.write(&mut f, payload).unwrap();
        out.push(((t / 1_000_000) as u32, (t % 1_000_000) as u32, f));
    };
    push(true, "S", &[], cseq, 0, t_us);
    cseq += 1;
    push(false, "SA", &[], cseq, sseq, t_us + 20_000);
    sseq += 1;
    push(true, "A", &[], cseq, sseq, t_us + 40_000);
    push(true, "PA", request, cseq, sseq, t_us + 50_000);
    cseq += request.len() as u32;
    let data = [0x17u8; 600];
    for _ in 0..secs * 2 {
        t_us += 500_000;
        push(false, "PA", &data, cseq, sseq, t_us);
        sseq += data.len() as u32;
        push(true, "A", &[], cseq, sseq, t_us + 10_000);
    }
    out
}

// ----------------------------------------------------------------------------- the tests

/// The synscan capture with a TLS conversation (SNI clients2.google.com) moved 12 s into it,
/// replayed at half speed (46 s) behind a token to a browser started before the daemon (CI once
/// saw a 2x replay end before a slowly starting browser was up): blips, chart, the SNI in the
/// table, the scan alert.
#[test]
fn radar_live_replay() {
    if !browser_available("radar_live_replay") {
        return;
    }
    let _one = one_browser();
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        eprintln!("radar_live_replay: skipped: no shared corpus");
        return;
    };
    let scan = read_pcap(&corpus.dir().join("ndpi_synscan.pcap"));
    let tls = read_pcap(&corpus.dir().join("arkime_tls-split-client-hello.pcap"));
    let (s0, t0) = (scan[0].0, tls[0].0);
    let mut all = scan;
    all.extend(tls.into_iter().map(|(s, us, f)| (s - t0 + s0 + 12, us, f)));
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("radar-synscan-tls.pcap");
    write_pcap(&file, all);

    const TOKEN: &str = "radar-test-token-0123456789";
    let out = out_dir();
    let shot = std::env::var("NETMON_RADAR_SHOT").ok();
    let mut args = vec![
        "--token",
        TOKEN,
        "--out",
        out.to_str().unwrap(),
        "--sni",
        "clients2.google.com",
        "--alert",
        "vertical_scan",
        "--alert-source",
        "172.16.0.8",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    if let Some(s) = shot {
        args.extend(["--shot".to_owned(), s]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The browser first, then the daemon: the replay starts once Chromium is up.
    let browser = Browser::launch("live", &args);
    let mut d = Daemon::start("live", &file, "0.5x", Some(TOKEN));
    // The page loads without the token; data does not.
    let (status, head, body) = get(d.addr, "/", None);
    assert_eq!(status, 200);
    assert!(head.contains("content-security-policy: default-src 'self'; script-src 'self'"));
    assert!(head.contains("x-content-type-options: nosniff"));
    assert!(body.contains("/assets/app.js"));
    assert_eq!(get(d.addr, "/assets/app.js", None).0, 200);
    assert_eq!(get(d.addr, "/api/v1/flows", None).0, 401);
    assert_eq!(get(d.addr, "/api/v1/events", None).0, 401);
    assert_eq!(get(d.addr, "/api/v1/flows", Some(TOKEN)).0, 200);

    let text = browser.run(&mut d);
    assert!(text.contains("RESULT: PASS"));
}

/// A capture whose TLS SNI and HTTP Host are markup: the page shows them as text in the table
/// and in the blips' tooltips, nothing is injected, no script runs.
#[test]
fn radar_renders_hostile_names_as_text() {
    if !browser_available("radar_renders_hostile_names_as_text") {
        return;
    }
    let _one = one_browser();
    const SNI: &str = "<img src=x onerror=alert(1)>";
    const HOST: &str = "<svg onload=alert(2)><script>alert(3)</script>";
    let mut recs = conversation(
        [93, 184, 216, 34],
        443,
        &client_hello(SNI.as_bytes()),
        1000,
        9,
    );
    let http = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: <b>ua</b>\r\n\r\n");
    recs.extend(conversation(
        [198, 51, 100, 7],
        80,
        http.as_bytes(),
        1000,
        9,
    ));
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("radar-xss.pcap");
    write_pcap(&file, recs);
    // What the classifier keeps of them is what the page must show literally. The browser is
    // up before the replay starts; the quarter speed (about 36 s) leaves the page time to load
    // on a loaded machine while the flows are active.
    let out = out_dir();
    let browser = Browser::launch(
        "xss",
        &[
            "--out",
            out.to_str().unwrap(),
            "--hostile",
            SNI,
            "--hostile",
            HOST,
        ],
    );
    let mut d = Daemon::start("xss", &file, "0.25x", None);
    let t = Instant::now();
    let flows = loop {
        let (_, _, body) = get(d.addr, "/api/v1/flows", None);
        if body.contains("onerror") && body.contains("onload") {
            break body;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "flows: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let v: serde_json::Value = serde_json::from_str(&flows).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            f["sni"]
                .as_str()
                .or_else(|| f["http"].get(0).and_then(|h| h["host"].as_str()))
        })
        .collect();
    assert!(names.contains(&SNI), "the SNI is kept as is: {names:?}");
    assert!(names.contains(&HOST), "the Host is kept as is: {names:?}");
    let text = browser.run(&mut d);
    assert!(text.contains("ok: no script ran"));
}

/// 5 000 flows (gen_pcap.py) replayed in real time: the page keeps drawing; frame and event
/// handling times are printed (`PERF {...}`), with only a very generous sanity bound.
#[test]
fn radar_stays_responsive_with_5000_flows() {
    if !browser_available("radar_stays_responsive_with_5000_flows") {
        return;
    }
    let _one = one_browser();
    let Some(generator) = netmon_testkit::shared_dir(env!("CARGO_MANIFEST_DIR"))
        .map(|s| s.join("tools/gen_pcap.py"))
        .filter(|p| p.exists())
    else {
        eprintln!("radar_stays_responsive_with_5000_flows: skipped: no shared/tools/gen_pcap.py");
        return;
    };
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("radar-5000-flows.pcap");
    if !file.exists() {
        let ok = Command::new("python3")
            .arg(&generator)
            .args(["-o", file.to_str().unwrap(), "-f", "5000", "-n", "150000"])
            .args(["--pps", "6000", "-s", "7", "-q"])
            .status()
            .unwrap();
        assert!(ok.success(), "gen_pcap.py failed");
    }
    let out = out_dir();
    let browser = Browser::launch("perf", &["--out", out.to_str().unwrap(), "--seconds", "15"]);
    let mut d = Daemon::start("perf", &file, "realtime", None);
    let text = browser.run(&mut d);
    assert!(text.contains("PERF {"));
}
