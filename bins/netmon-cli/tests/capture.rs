//! `netmon capture`, live, in network namespaces made by the test: privilege drop, `-w`
//! re-read by tshark and `netmon read`, `--flows`, Ctrl-C, and the errors.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, temp_path};
use netmon_testkit::netns::{self, VethPair};

/// Starts `netmon capture ARGS` inside `ns`; returns once it says it is capturing (the
/// handle is open and privileges are dropped), with the rest of its stderr.
fn start(ns: &netns::Netns, args: &[&str]) -> (Child, BufReader<ChildStderr>) {
    let mut child = ns
        .command(BIN)
        .arg("capture")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netmon capture");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("netmon: capturing on "), "{line}");
    (child, err)
}

/// Waits for the child (killing it after `limit`); stdout and the rest of stderr.
fn finish(
    mut child: Child,
    mut err: BufReader<ChildStderr>,
    limit: Duration,
) -> (i32, String, String) {
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("netmon capture did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    (status.code().unwrap_or(-1), out, rest)
}

fn send_udp(pair: &VethPair, port: u16, n: u32) {
    pair.a.run(move || {
        let s = UdpSocket::bind((VethPair::A_V4, 0)).unwrap();
        for seq in 0..n {
            s.send_to(&seq.to_be_bytes(), (VethPair::B_V4, port))
                .unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
    });
}

/// The `n` and first payload word of each JSON record: checks order by sequence number.
fn udp_seqs(jsonl: &str) -> Vec<u64> {
    jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["iface_name"], "veth1");
            assert_eq!(v["direction"], "in");
            assert_eq!(v["link_type"], "ethernet");
            assert_eq!(v["orig_len"], 14 + 20 + 8 + 4);
            v["n"].as_u64().unwrap()
        })
        .collect()
}

fn proc_status(pid: u32) -> (String, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_owned()
    };
    (field("Uid:"), field("CapEff:"))
}

#[test]
fn privileges_are_dropped_after_opening_and_packets_still_arrive() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("clip");
    let (child, err) = start(
        &pair.b,
        &[
            "-i",
            "veth1",
            "-f",
            "udp port 5555",
            "-c",
            "40",
            "--json",
            "--user",
            "nobody",
        ],
    );
    // Looked at from outside while it captures: every uid is nobody's, no capability left.
    let (uid, cap_eff) = proc_status(child.id());
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let nobody = String::from_utf8(nobody.stdout).unwrap().trim().to_owned();
    assert_ne!(nobody, "0");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        vec![nobody.as_str(); 4],
        "Uid: {uid}"
    );
    assert_eq!(cap_eff, "0000000000000000");
    send_udp(&pair, 5555, 40);
    let (code, out, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(code, 0, "{rest}");
    assert_eq!(udp_seqs(&out), (1..=40).collect::<Vec<_>>());
    assert!(
        rest.contains("40 packets captured; kernel: ") && rest.contains(" 0 dropped;"),
        "{rest}"
    );
}

#[test]
fn written_files_read_back_the_same_in_tshark_and_netmon_read() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("cliw");
    // A listener, so b answers no "port unreachable" (whose quoted datagrams tshark would
    // also show as udp.payload).
    let _sink = pair
        .b
        .run(|| UdpSocket::bind((VethPair::B_V4, 5556)).unwrap());
    for ext in ["pcap", "pcapng"] {
        let path = temp_path("capture", &format!("out.{ext}"));
        let p = path.to_str().unwrap();
        let (child, err) = start(
            &pair.b,
            &[
                "-i",
                "veth1",
                "-f",
                "udp port 5556 or icmp",
                "-c",
                "26",
                "-w",
                p,
            ],
        );
        send_udp(&pair, 5556, 20);
        pair.a.ok(&["ping", "-c3", "-i0.2", "-W2", VethPair::B_V4]);
        let (code, out, rest) = finish(child, err, Duration::from_secs(10));
        assert_eq!(code, 0, "{rest}");
        assert_eq!(out, "", "-w prints nothing per packet");

        let ours = common::ok(&["read", "--json", p]);
        let ours: Vec<(String, u64, u64)> = ours
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                // pcapng keeps each frame's direction (epb_flags); pcap has no place for it.
                let want = match (ext, v["icmp"]["name"].as_str()) {
                    ("pcap", _) => serde_json::Value::Null,
                    (_, Some("echo-reply")) => "out".into(),
                    _ => "in".into(),
                };
                assert_eq!(v["direction"], want, "{ext}: {l}");
                (
                    v["ts_epoch"].as_str().unwrap().to_owned(),
                    v["orig_len"].as_u64().unwrap(),
                    v["cap_len"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ours.len(), 26);
        let Some(tshark) = netmon_testkit::tshark() else {
            netmon_testkit::tshark_missing("capture -w re-read");
            continue;
        };
        let t = Command::new(tshark)
            .args([
                "-r",
                p,
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
                "-e",
                "frame.len",
            ])
            .args(["-e", "frame.cap_len", "-e", "udp.payload", "-e", "icmp.seq"])
            .output()
            .unwrap();
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        let lines: Vec<Vec<String>> = String::from_utf8(t.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect();
        assert_eq!(lines.len(), 26);
        let theirs: Vec<(String, u64, u64)> = lines
            .iter()
            .map(|f| (f[0].clone(), f[1].parse().unwrap(), f[2].parse().unwrap()))
            .collect();
        assert_eq!(ours, theirs, "{ext}");
        // The datagrams in order, then the pings.
        let payloads: Vec<&str> = lines
            .iter()
            .map(|f| f[3].as_str())
            .filter(|s| !s.is_empty())
            .collect();
        let want: Vec<String> = (0..20u32).map(|i| format!("{i:08x}")).collect();
        assert_eq!(payloads, want);
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn flows_of_a_live_tcp_connection() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("clif");
    let (child, err) = start(
        &pair.b,
        &[
            "-i",
            "veth1",
            "-f",
            "tcp port 7002",
            "--flows",
            "--format",
            "jsonl",
            "--duration",
            "2s",
        ],
    );
    let listener = pair
        .b
        .run(|| TcpListener::bind((VethPair::B_V4, 7002)).unwrap());
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 100];
        let mut got = 0;
        while got < 1000 {
            got += s.read(&mut buf).unwrap();
        }
        s.write_all(&[b'y'; 300]).unwrap();
    });
    pair.a.run(|| {
        use std::io::Write;
        let mut c = TcpStream::connect((VethPair::B_V4, 7002)).unwrap();
        c.write_all(&[b'x'; 1000]).unwrap();
        let mut back = [0u8; 300];
        c.read_exact(&mut back).unwrap();
    });
    server.join().unwrap();
    let (code, out, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(code, 0, "{rest}");
    let recs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1, "{out}");
    let r = &recs[0];
    assert_eq!(r["proto"], "tcp");
    assert_eq!(r["src_ip"], VethPair::A_V4);
    assert_eq!(r["dst_port"], 7002);
    assert_eq!(r["payload_bytes_c2s"], 1000);
    assert_eq!(r["payload_bytes_s2c"], 300);
    assert_eq!(r["iface_name"], "veth1");
}

#[test]
fn sigint_stops_cleanly_with_the_counts() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("clis");
    let (child, err) = start(&pair.b, &["-i", "veth1", "-f", "udp port 5557"]);
    send_udp(&pair, 5557, 5);
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (code, out, rest) = finish(child, err, Duration::from_secs(5));
    assert_eq!(code, 0, "{rest}");
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(
        rest.starts_with("netmon: 5 packets captured; kernel: 5 received, 0 dropped"),
        "{rest}"
    );
}

#[test]
fn errors_are_one_line_with_what_to_do() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("clie");
    let run = |argv: &[&str]| {
        let o = pair.b.exec(argv);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{argv:?}: {err}");
        (o.status.code(), err)
    };
    // Without CAP_NET_RAW.
    let (code, err) = run(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        BIN,
        "capture",
        "-i",
        "veth1",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("permission denied")
            && err.contains("setcap cap_net_raw,cap_net_admin=eip")
            && err.contains("--user"),
        "{err}"
    );
    let (code, err) = run(&[BIN, "capture", "-i", "nosuch9"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no interface named \"nosuch9\""), "{err}");
    let (code, err) = run(&[BIN, "capture", "-i", "veth1", "-f", "tcp port"]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("netmon: bad capture filter \"tcp port\""),
        "{err}"
    );
    let (code, err) = run(&[BIN, "capture", "-i", "veth1", "--backend", "dpdk"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("known: afpacket"), "{err}");
    let (code, err) = run(&[BIN, "capture", "-i", "veth1", "--user", "no-such-user-x"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no user named \"no-such-user-x\""), "{err}");
    let (code, err) = run(&[BIN, "capture", "-i", "veth1", "--exclude", "10.0.0.1:99999"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ADDR:PORT"), "{err}");
}

#[test]
fn exclusions_leave_our_own_traffic_out() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("clix");
    let (child, err) = start(
        &pair.b,
        &[
            "-i",
            "veth1",
            "-f",
            "udp",
            "--exclude",
            "10.77.0.1:5559",
            "-c",
            "3",
            "--json",
        ],
    );
    pair.a.run(|| {
        let s = UdpSocket::bind((VethPair::A_V4, 5559)).unwrap();
        let t = UdpSocket::bind((VethPair::A_V4, 5560)).unwrap();
        for _ in 0..3 {
            s.send_to(b"own", (VethPair::B_V4, 9000)).unwrap();
            t.send_to(b"other", (VethPair::B_V4, 9000)).unwrap();
        }
    });
    let (code, out, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(code, 0, "{rest}");
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["src_port"], 5560, "{l}");
    }
    assert_eq!(out.lines().count(), 3);
}

#[test]
fn the_pcap_backend_from_the_command_line() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("clib");
    let (child, err) = start(
        &pair.b,
        &[
            "-i",
            "veth1",
            "--backend",
            "pcap",
            "-f",
            "udp port 5561",
            "-c",
            "10",
            "--json",
        ],
    );
    send_udp(&pair, 5561, 10);
    let (code, out, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(code, 0, "{rest}");
    let lens: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["iface_name"], "veth1");
            assert_eq!(v["dst_port"], 5561);
            v["orig_len"].to_string()
        })
        .collect();
    assert_eq!(lens, vec!["46"; 10]);
    assert!(rest.contains("10 packets captured; kernel: "), "{rest}");
}

/// `--flows --processes`: the flow to a python3 server in the capture's namespace carries that
/// server's pid and name, looked up when the SYN arrived — for a connection of about 50 ms.
#[test]
fn flows_name_their_local_process() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("clip");
    let (child, err) = start(
        &pair.b,
        &[
            "-i",
            "veth1",
            "-f",
            "tcp port 7003",
            "--flows",
            "--processes",
            "--format",
            "jsonl",
            "--duration",
            "3s",
        ],
    );
    let script = format!(
        "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{}',7003))\ns.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\n\
         import time\ntime.sleep(0.05)\nc.recv(100)\nc.sendall(b'y'*50)\nc.close()\n",
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
    assert_eq!(ready.trim(), "ready");
    pair.a.run(|| {
        use std::io::Write;
        let mut c = TcpStream::connect((VethPair::B_V4, 7003)).unwrap();
        c.write_all(&[b'x'; 100]).unwrap();
        let mut back = [0u8; 50];
        c.read_exact(&mut back).unwrap();
    });
    let pid = server.id();
    server.wait().unwrap();
    let (code, out, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(code, 0, "{rest}");
    let recs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1, "{out}");
    let p = &recs[0]["process"];
    assert_eq!(p["pid"], pid, "{out}");
    assert!(p["name"].as_str().unwrap().starts_with("python3"), "{out}");
}

/// `netmon privacy --live`: a python3 client in the capture's namespace fetches a page with a
/// listed Host; the report names python3 with that tracker and the one-ad-domain score (67).
#[test]
fn privacy_live_names_the_process() {
    if netns::unavailable().is_some() {
        return;
    }
    let pair = VethPair::new("cliq");
    let list = temp_path("privacy", "ads.txt");
    std::fs::write(&list, "0.0.0.0 ads.example.com\n").unwrap();
    let trackers = format!("ads={}", list.display());
    let mut child = pair
        .b
        .command(BIN)
        .args([
            "privacy",
            "--live",
            "veth1",
            "--duration",
            "3s",
            "--trackers",
            &trackers,
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("netmon: capturing on veth1"), "{line}");
    // An HTTP server on the other side of the veth pair.
    let listener = pair
        .a
        .run(|| TcpListener::bind((VethPair::A_V4, 7004)).unwrap());
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
    });
    let script = format!(
        "import socket,time\nc=socket.create_connection(('{}',7004))\n\
         c.sendall(b'GET / HTTP/1.1\\r\\nHost: ads.example.com\\r\\n\\r\\n')\n\
         c.recv(100)\ntime.sleep(0.2)\nc.close()\n",
        VethPair::A_V4
    );
    let status = pair
        .b
        .command("python3")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    server.join().unwrap();
    let (code, out, rest) = finish(child, err, Duration::from_secs(15));
    assert_eq!(code, 0, "{rest}");
    let apps: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let py = apps
        .iter()
        .find(|a| a["app"].as_str().is_some_and(|n| n.starts_with("python3")))
        .unwrap_or_else(|| panic!("no python3 in {out}"));
    assert_eq!(py["tracker_flows"], 1, "{out}");
    assert_eq!(py["trackers"][0]["domain"], "ads.example.com", "{out}");
    assert_eq!(py["score"], 67, "{out}");
}
