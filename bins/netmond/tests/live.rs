//! netmond capturing live in a network namespace made by the test: active flows in the API
//! carry the local process that owns their socket (`enrich.processes`).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use netmon_testkit::netns::{self, VethPair};

const BIN: &str = env!("CARGO_BIN_EXE_netmond");

#[test]
fn active_flows_name_their_local_process() {
    if let Some(why) = netns::unavailable() {
        assert!(
            std::env::var("NETMON_REQUIRE_NETNS").as_deref() != Ok("1"),
            "{why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let pair = VethPair::new("ndpr");
    let port = common::free_port();
    let cfg = common::temp("live.yaml");
    std::fs::write(
        &cfg,
        format!(
            "interfaces: [veth1]\ncapture:\n  bpf: tcp port 7010\nenrich:\n  processes: true\n\
             storage:\n  enabled: false\napi:\n  bind: 127.0.0.1:{port}\nlog:\n  format: json\n"
        ),
    )
    .unwrap();
    let mut daemon = pair
        .b
        .command(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let get = |path: &str| {
        let path = path.to_owned();
        pair.b.run(move || common::get_raw(addr, &path, ""))
    };
    let t = Instant::now();
    while pair.b.run(move || TcpStream::connect(addr).is_err()) || get("/readyz").0 != 200 {
        assert!(daemon.try_wait().unwrap().is_none(), "netmond exited");
        assert!(t.elapsed() < Duration::from_secs(20), "netmond not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A python3 server in the capture's namespace holds one connection for 3 s.
    let script = format!(
        "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{}',7010))\ns.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\n\
         c.recv(100)\nc.sendall(b'y'*50)\ntime.sleep(3)\nc.close()\n",
        VethPair::B_V4
    );
    let mut server = pair
        .b
        .command("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let client = pair.a.run(|| {
        let mut c = TcpStream::connect((VethPair::B_V4, 7010)).unwrap();
        c.write_all(&[b'x'; 100]).unwrap();
        let mut back = [0u8; 50];
        c.read_exact(&mut back).unwrap();
        c
    });
    // The shards export their active flows once a second.
    let t = Instant::now();
    let flow = loop {
        let (code, _, body) = get("/api/v1/flows?port=7010");
        assert_eq!(code, 200, "{body}");
        let flows: serde_json::Value = serde_json::from_str(&body).unwrap();
        if let Some(f) = flows.as_array().and_then(|a| a.first()).cloned() {
            break f;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no active flow: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let pid = server.id();
    // The privilege drop kept exactly CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19).
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.id())).unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(cap_eff, (1 << 2) | (1 << 19), "{status}");
    drop(client);
    server.wait().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let mut log = String::new();
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(daemon.wait().unwrap().code(), Some(0), "{log}");
    assert_eq!(flow["process"]["pid"], pid, "{flow}");
    assert!(
        flow["process"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("python3")),
        "{flow}"
    );
}
