//! `netmon read` end to end: the built binary run on the fixtures, on crafted captures and on
//! the shared corpus.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use etherparse::PacketBuilder;
use netmon_capture::{
    CaptureSource, LinkType, Next, PcapNgWriter, PcapWriter, Timestamp, TsPrecision, open_file,
};
use serde_json::Value;

mod common;
use common::*;

/// Writes `frames` as an Ethernet (or `link`) pcap with nanosecond timestamps 1 s apart.
fn write_pcap(name: &str, link: LinkType, frames: &[Vec<u8>]) -> PathBuf {
    let path = temp_path("read", name);
    let mut w = PcapWriter::create(&path, link, 0, TsPrecision::Nano).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = Timestamp::from_secs_nanos(1_700_000_000 + i as i64, 123_456_789);
        w.write_packet(ts, f, f.len() as u32).unwrap();
    }
    w.flush().unwrap();
    path
}

/// Packets in a capture as netmon-capture reads them (the record-count oracle), and whether
/// reading ended in an error.
fn packet_count(path: &Path) -> Option<(usize, bool)> {
    let mut src = open_file(path).ok()?;
    let mut n = 0;
    loop {
        match src.next_packet() {
            Ok(Next::Packet(_)) => n += 1,
            Ok(Next::Timeout) => {}
            Ok(Next::End) => return Some((n, false)),
            Err(_) => return Some((n, true)),
        }
    }
}

/// The fields every JSON record has.
const ALWAYS: [&str; 10] = [
    "n",
    "ts",
    "ts_epoch",
    "iface",
    "link_type",
    "cap_len",
    "orig_len",
    "layers",
    "payload_len",
    "layers",
];

fn check_json_record(v: &Value, n: usize) {
    for k in ALWAYS {
        assert!(v.get(k).is_some(), "record {n} lacks {k}: {v}");
    }
    assert_eq!(v["n"], n as u64, "{v}");
    assert!(v["layers"].as_array().unwrap().iter().all(Value::is_string));
    let ts = v["ts"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 30, "{ts}");
    let epoch = v["ts_epoch"].as_str().unwrap();
    let (_, frac) = epoch.split_once('.').unwrap();
    assert_eq!(frac.len(), 9, "{epoch}");
    assert!(v["cap_len"].as_u64().unwrap() <= v["orig_len"].as_u64().unwrap());
    for absent_is_not_null in v.as_object().unwrap().values() {
        assert!(!absent_is_not_null.is_null(), "null member in {v}");
    }
}

#[test]
fn every_fixture_in_text_and_json() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".txt")) {
            continue;
        }
        seen += 1;
        let p = path.to_str().unwrap();
        let oracle = packet_count(&path);
        let want_rc = match oracle {
            Some((_, false)) => 0,
            _ => 1,
        };
        let packets = oracle.map_or(0, |o| o.0);

        let text = netmon(&["read", p]);
        assert_eq!(
            text.status.code(),
            Some(want_rc),
            "{name}: {}",
            stderr(&text)
        );
        let lines: Vec<&str> = stdout(&text).lines().collect();
        assert_eq!(lines.len(), packets, "{name}: text lines");
        for l in &lines {
            assert!(
                l.ends_with(" bytes)") || l.ends_with(" captured)"),
                "{name}: {l}"
            );
            assert!(l.starts_with("19") || l.starts_with("20"), "{name}: {l}");
        }
        if want_rc == 1 {
            let err = stderr(&text);
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(
                err.starts_with("netmon: ") && err.contains(p),
                "{name}: {err}"
            );
        } else {
            assert_eq!(stderr(&text), "", "{name}");
        }

        let json = netmon(&["read", "--json", "--stats", p]);
        assert_eq!(
            json.status.code(),
            Some(want_rc),
            "{name}: {}",
            stderr(&json)
        );
        let lines: Vec<&str> = stdout(&json).lines().collect();
        if oracle.is_none() {
            assert!(
                lines.is_empty(),
                "{name}: nothing to print for an unreadable file"
            );
            continue;
        }
        assert_eq!(lines.len(), packets + 1, "{name}: records + summary");
        for (i, l) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"));
            if i < packets {
                check_json_record(&v, i + 1);
            } else {
                let s = &v["summary"];
                assert_eq!(s["packets"], packets as u64, "{name}");
                assert_eq!(s["capture_errors"], u64::from(want_rc == 1), "{name}");
            }
        }
    }
    assert!(seen >= 11, "only {seen} fixtures found");
}

#[test]
fn golden_lines_of_the_fixture() {
    let p = fixtures().join("pcap_le_us.pcap");
    let out = netmon(&["read", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<&str> = stdout(&out).lines().collect();
    assert_eq!(
        lines[0],
        "2023-11-14T22:13:20.123456000Z if0 IPv4 192.168.1.10.53124 > 192.168.1.1.53: UDP length 29 (71 bytes)"
    );
    assert_eq!(
        lines[2],
        "2023-11-14T22:13:21.000000000Z if0 IPv4 192.168.1.10.40000 > 93.184.216.34.80: TCP [S] seq 287454020 win 64240 options [mss 1460,sackOK,TS val 123456 ecr 0,nop,wscale 7] length 0 (74 bytes)"
    );
    assert_eq!(
        lines[3],
        "2023-11-14T22:13:21.500000000Z if0 ARP 02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff: who-has 192.168.1.1 tell 192.168.1.10 (42 bytes)"
    );
    // The HTTP GET cut by the snaplen: the IPv4 layer says what is missing.
    assert_eq!(
        lines[4],
        "2023-11-14T22:13:22.999999000Z if0 IPv4 192.168.1.10.40000 > 93.184.216.34.80: TCP [P.] seq 287454021 ack 1432778632 win 502 length 74 [|ipv4 @14: truncated: needs 269 bytes, 114 available] (283 bytes, 128 captured)"
    );
    // pcapng interface names.
    let p = fixtures().join("pcapng_multi.pcapng");
    let out = netmon(&["read", p.to_str().unwrap(), "-c", "2"]);
    let lines: Vec<&str> = stdout(&out).lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("2023-11-14T22:13:20.123456789Z eth0 IPv4 "));
    assert!(lines[1].contains(" tun0 IPv6 2001:db8::1 > 2001:db8::2: ICMPv6 128/0 echo-request"));
}

#[test]
fn crafted_frames_text_and_json() {
    // 1: UDP with a wrong checksum field.
    let mut bad = eth_ipv4_udp(1000, 53, b"abcd");
    let good_ck = u16::from_be_bytes([bad[40], bad[41]]);
    bad[40..42].copy_from_slice(&0x1234u16.to_be_bytes());
    // 2: IPv4 header cut at 19 bytes.
    let cut = eth_ipv4_udp(1, 2, b"")[..14 + 19].to_vec();
    // 3: VXLAN (vni 42) carrying Ethernet/IPv4/UDP 5000 -> 6000.
    let inner = eth_ipv4_udp(5000, 6000, b"inner");
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vx.extend_from_slice(&inner);
    let vxlan = eth_ipv4_udp(33333, 4789, &vx);
    // 4: 802.1Q tag 10 around ICMP echo.
    let mut tagged = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .single_vlan(10.try_into().unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .icmpv4_echo_request(7, 9)
        .write(&mut tagged, b"ping")
        .unwrap();
    // 5: TCP SYN-ACK over IPv6.
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .tcp(443, 50000, 100, 1000)
        .syn()
        .ack(200)
        .write(&mut v6, &[])
        .unwrap();
    // 6: ICMP port unreachable quoting the UDP datagram 10.0.0.2:5353 -> 10.0.0.1:53.
    let mut quoted_dgram = eth_ipv4_udp(5353, 53, b"query")[14..].to_vec();
    quoted_dgram[12..16].copy_from_slice(&[10, 0, 0, 2]);
    quoted_dgram[16..20].copy_from_slice(&[10, 0, 0, 1]);
    let mut unreach = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut unreach, &quoted_dgram[..28])
        .unwrap();
    let path = write_pcap(
        "crafted.pcap",
        LinkType::ETHERNET,
        &[bad, cut, vxlan, tagged, v6, unreach],
    );
    let p = path.to_str().unwrap();

    let out = netmon(&["read", p]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<&str> = stdout(&out).lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "2023-11-14T22:13:20.123456789Z if0 IPv4 10.0.0.1.1000 > 10.0.0.2.53: UDP length 4 [bad udp cksum 0x1234 -> 0x{good_ck:04x}] (46 bytes)"
        )
    );
    assert_eq!(
        lines[1],
        "2023-11-14T22:13:21.123456789Z if0 eth 02:00:00:00:00:01 > 02:00:00:00:00:02 [|ipv4 @14: truncated: needs 20 bytes, 19 available] (33 bytes)"
    );
    assert_eq!(
        lines[2],
        "2023-11-14T22:13:22.123456789Z if0 IPv4 10.0.0.1.33333 > 10.0.0.2.4789: UDP length 55, VXLAN vni 42: IPv4 10.0.0.1.5000 > 10.0.0.2.6000: UDP length 5 (97 bytes)"
    );
    assert_eq!(
        lines[3],
        "2023-11-14T22:13:23.123456789Z if0 vlan 10 IPv4 10.0.0.1 > 10.0.0.2: ICMP 8/0 echo-request id 7 seq 9 length 4 (50 bytes)"
    );
    assert_eq!(
        lines[4],
        "2023-11-14T22:13:24.123456789Z if0 IPv6 2001:db8::1.443 > 2001:db8::2.50000: TCP [S.] seq 100 ack 200 win 1000 length 0 (74 bytes)"
    );

    assert_eq!(
        lines[5],
        "2023-11-14T22:13:25.123456789Z if0 IPv4 10.0.0.1 > 10.0.0.2: ICMP 3/3 port-unreachable, quoting UDP 10.0.0.2.5353 > 10.0.0.1.53, length 28 (70 bytes)"
    );

    let out = netmon(&["read", "--json", p]);
    assert_eq!(out.status.code(), Some(0));
    let recs: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 6);
    for (i, r) in recs.iter().enumerate() {
        check_json_record(r, i + 1);
    }
    let r = &recs[0];
    assert_eq!(r["ts_epoch"], "1700000000.123456789");
    assert_eq!(r["layers"], serde_json::json!(["eth", "ipv4", "udp"]));
    assert_eq!(r["checksums"]["ipv4"], "good");
    assert_eq!(r["checksums"]["udp"], "bad");
    assert_eq!(
        r["bad_checksums"],
        serde_json::json!([{"layer": "udp", "found": 0x1234, "expected": good_ck}])
    );
    assert_eq!(
        (r["src_port"].as_u64(), r["dst_port"].as_u64()),
        (Some(1000), Some(53))
    );
    assert_eq!(r["payload_len"], 4);
    let r = &recs[1];
    assert_eq!(r["layers"], serde_json::json!(["eth"]));
    assert_eq!(
        r["error"],
        serde_json::json!({"layer": "ipv4", "offset": 14, "kind": "truncated",
            "message": "ipv4 at byte 14: truncated: needs 20 bytes, 19 available"})
    );
    let r = &recs[2];
    assert_eq!(
        r["layers"],
        serde_json::json!(["eth", "ipv4", "udp", "vxlan"])
    );
    assert_eq!(r["tunnel"]["kind"], "vxlan");
    assert_eq!(r["tunnel"]["vni"], 42);
    let inner = &r["tunnel"]["inner"];
    assert_eq!(inner["layers"], serde_json::json!(["eth", "ipv4", "udp"]));
    assert_eq!(inner["src_port"], 5000);
    assert_eq!(inner["checksums"]["udp"], "good");
    assert!(inner.get("n").is_none() && inner.get("tunnel").is_none());
    let r = &recs[3];
    assert_eq!(
        r["vlans"],
        serde_json::json!([{"tpid": 0x8100, "vid": 10, "pcp": 0, "dei": false}])
    );
    assert_eq!(r["icmp"]["name"], "echo-request");
    assert_eq!(
        (
            r["icmp"]["echo_id"].as_u64(),
            r["icmp"]["echo_seq"].as_u64()
        ),
        (Some(7), Some(9))
    );
    let r = &recs[4];
    assert_eq!(r["hop_limit"], 64);
    assert_eq!(r["tcp"]["flags"], "S.");
    assert_eq!(
        (r["tcp"]["seq"].as_u64(), r["tcp"]["ack"].as_u64()),
        (Some(100), Some(200))
    );
    let r = &recs[5];
    assert_eq!(r["icmp"]["name"], "port-unreachable");
    assert_eq!(
        (r["icmp"]["type"].as_u64(), r["icmp"]["code"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        r["icmp"]["quoted"],
        serde_json::json!({"version": 4, "src_ip": "10.0.0.2", "dst_ip": "10.0.0.1",
            "ip_proto": 17, "src_port": 5353, "dst_port": 53})
    );

    // The summary counts what the records show.
    let out = netmon(&["read", "--json", "--quiet", p]);
    let s: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let s = &s["summary"];
    assert_eq!(s["packets"], 6);
    assert_eq!(s["protocols"]["eth"], 6);
    assert_eq!(s["protocols"]["icmp"], 2);
    assert_eq!(s["protocols"]["vlan"], 1);
    assert_eq!(s["protocols"]["udp"], 2);
    assert_eq!(s["inner_protocols"]["udp"], 1);
    assert_eq!(s["tunnels"]["vxlan"], 1);
    assert_eq!(s["bad_checksums"]["udp"], 1);
    assert_eq!(s["parse_errors"]["ipv4"]["truncated"], 1);
    assert_eq!(s["duration_ns"], 5_000_000_000u64);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn text_summary() {
    let p = fixtures().join("pcap_le_us.pcap");
    let out = netmon(&["read", "--quiet", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "summary:
  packets: 5
  bytes: 402 captured, 557 on the wire
  first: 2023-11-14T22:13:20.123456000Z
  last: 2023-11-14T22:13:22.999999000Z
  duration: 2.876543000 s
  protocols: eth 5, arp 1, ipv4 4, tcp 2, udp 2
  parse errors: ipv4/truncated 1
  bad checksums: none
  tunnels: none
  capture errors: 0
"
    );
    // --stats after the records.
    let out = netmon(&["read", "--stats", "-c", "1", p.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1 + 11, "{text}");
    assert!(text.contains("\n  packets: 1\n"));
}

#[test]
fn exit_codes_and_messages() {
    // Missing file.
    let out = netmon(&["read", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "netmon: /nonexistent/x.pcap: No such file or directory (os error 2) (check the path)\n"
    );
    // Not a capture.
    let p = fixtures().join("not_a_capture.txt");
    let out = netmon(&["read", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.contains("not a pcap or pcapng capture file (first bytes: 47 45 54 20"),
        "{err}"
    );
    // Unsupported link type.
    let p = fixtures().join("unsupported_linktype.pcap");
    let out = netmon(&["read", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unsupported link type"));
    // Truncated: every complete packet and the summary first, then the error.
    let p = fixtures().join("truncated.pcap");
    let out = netmon(&["read", "--stats", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.ends_with("bytes)")).count(), 3);
    assert!(text.contains("  capture errors: 1 ("), "{text}");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("netmon: ") && err.contains("truncated"),
        "{err}"
    );
    // Bad usage.
    for args in [
        &["read", "--bogus", "x"][..],
        &["read"],
        &["read", "f", "-c", "x"],
        &[],
    ] {
        let out = netmon(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // --help is not an error.
    assert_eq!(netmon(&["read", "--help"]).status.code(), Some(0));
    // -c stops early.
    let p = fixtures().join("pcap_le_us.pcap");
    let out = netmon(&["read", "-c", "2", "--json", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).lines().count(), 2);
}

#[test]
fn reads_stdin() {
    let p = fixtures().join("pcap_ns.pcap");
    let bytes = std::fs::read(&p).unwrap();
    let mut child = Command::new(BIN)
        .args(["read", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["ts_epoch"], "1700000005.000000001");
    assert_eq!(lines[0]["link_type"], "raw");
}

#[test]
fn closed_pipe_is_a_quiet_success() {
    // Enough output (~3 MB) to fill the pipe and the 256 KiB buffer many times over.
    let frames: Vec<Vec<u8>> = (0..20_000u16).map(|i| eth_ipv4_udp(i, 53, b"x")).collect();
    let path = write_pcap("many.pcap", LinkType::ETHERNET, &frames);
    for mode in [&["read"][..], &["read", "--json"]] {
        let mut child = Command::new(BIN)
            .args(mode)
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert!(first.contains("10.0.0.1"), "{first}");
        drop(reader); // `| head -1`
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{mode:?}");
        assert_eq!(stderr(&out), "", "{mode:?}: no noise on a closed pipe");
    }
    let _ = std::fs::remove_file(&path);
}

/// An LLDP frame whose port id and system name are hostile text.
fn lldp_frame(port: &[u8], system: &[u8]) -> Vec<u8> {
    fn tlv(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
        out.extend_from_slice(&((ty << 9) | value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    let mut f = vec![
        0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x00, 0x19, 0x2f, 0xa7, 0xb2, 0x8d, 0x88, 0xcc,
    ];
    tlv(&mut f, 1, &[4, 0x00, 0x19, 0x2f, 0xa7, 0xb2, 0x8d]);
    let mut port_id = vec![5]; // interface name
    port_id.extend_from_slice(port);
    tlv(&mut f, 2, &port_id);
    tlv(&mut f, 3, &120u16.to_be_bytes());
    tlv(&mut f, 5, system);
    tlv(&mut f, 0, &[]);
    f
}

#[test]
fn hostile_strings_are_escaped() {
    let system = b"evil\x1b[31mred\x1b[0m\x07\r\n\"q\"\\\xff\xfe\xe2\x80\xae";
    let port = b"Gi0/1\x1b]0;title\x07";
    let frame = lldp_frame(port, system);
    let path = temp_path("read", "hostile.pcapng");
    {
        let mut w = PcapNgWriter::create(&path).unwrap();
        let id = w
            .add_interface("eth\x1b[2J0", LinkType::ETHERNET, 0)
            .unwrap();
        w.write_packet(
            Timestamp::from_secs_nanos(1_700_000_000, 0),
            id,
            &frame,
            frame.len() as u32,
        )
        .unwrap();
        w.flush().unwrap();
    }
    let p = path.to_str().unwrap();

    let out = netmon(&["read", p]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let raw = &out.stdout;
    assert!(
        !raw.iter().any(|&b| (b < 0x20 && b != b'\n') || b == 0x7f),
        "raw control bytes in text output: {:?}",
        String::from_utf8_lossy(raw)
    );
    let line = stdout(&out).trim_end();
    assert_eq!(
        line,
        r#"2023-11-14T22:13:20.000000000Z eth\x1b[2J0 LLDP 00:19:2f:a7:b2:8d > 01:80:c2:00:00:0e: chassis 00:19:2f:a7:b2:8d port "Gi0/1\x1b]0;title\x07" ttl 120 system "evil\x1b[31mred\x1b[0m\x07\x0d\x0a\"q\"\\\xff\xfe\xe2\x80\xae" (77 bytes)"#
    );

    let out = netmon(&["read", "--json", p]);
    assert_eq!(out.status.code(), Some(0));
    let raw = &out.stdout;
    assert!(
        !raw[..raw.len() - 1].iter().any(|&b| b < 0x20),
        "raw control bytes in JSON"
    );
    assert!(
        !stdout(&out).contains('\u{202e}'),
        "bidi override passed through"
    );
    let v: Value = serde_json::from_str(stdout(&out).trim_end()).unwrap();
    assert_eq!(v["iface_name"], "eth\u{1b}[2J0");
    assert_eq!(v["lldp"]["port"], "Gi0/1\u{1b}]0;title\u{7}");
    assert_eq!(
        v["lldp"]["system_name"],
        "evil\u{1b}[31mred\u{1b}[0m\u{7}\r\n\"q\"\\\\xff\\xfe\u{202e}"
    );
    assert_eq!(v["lldp"]["ttl"], 120);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn corpus_reads_cleanly_as_json() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let dir = corpus.dir().to_path_buf();
    let files = corpus.captures();
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let oracle = dir.join("oracle").join(format!("{name}.oracle.json"));
        let oracle: Value = serde_json::from_slice(&std::fs::read(&oracle).unwrap()).unwrap();
        let frames = oracle["summary"]["frames"].as_u64().unwrap() as usize;
        let out = netmon(&["read", "--json", path.to_str().unwrap()]);
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            failures.push(format!(
                "{name}: exit {:?}: {}",
                out.status.code(),
                stderr(&out)
            ));
            continue;
        }
        let mut n = 0;
        for line in stdout(&out).lines() {
            n += 1;
            match serde_json::from_str::<Value>(line) {
                Ok(v) => check_json_record(&v, n),
                Err(e) => failures.push(format!("{name}: record {n}: {e}")),
            }
        }
        if n != frames {
            failures.push(format!("{name}: {n} records, tshark saw {frames}"));
        }
        // Text mode agrees on the record count.
        let out = netmon(&["read", path.to_str().unwrap()]);
        if out.status.code() != Some(0) || stdout(&out).lines().count() != frames {
            failures.push(format!("{name}: text mode disagrees"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} corpus captures read as JSON", files.len());

    // A few exact lines of real traffic: CDP, LLDP, STP, VXLAN, IPv4 fragments.
    let line = |file: &str, n: usize| -> String {
        let out = netmon(&[
            "read",
            "-c",
            &n.to_string(),
            dir.join(file).to_str().unwrap(),
        ]);
        stdout(&out).lines().last().unwrap_or_default().to_owned()
    };
    assert_eq!(
        line("tcpdump_LLDP_and_CDP.pcap", 1),
        "2010-10-02T03:00:34.141848000Z if0 CDPv2 00:18:ba:98:68:8f > 01:00:0c:cc:cc:cc: device \"S1\" port \"FastEthernet0/13\" platform \"cisco WS-C3560-24TS\" addresses 0.0.0.0 native-vlan 1 ttl 180 (388 bytes)"
    );
    assert_eq!(
        line("tcpdump_LLDP_and_CDP.pcap", 3),
        "2010-10-02T03:00:41.163180000Z if0 LLDP 00:19:2f:a7:b2:8d > 01:80:c2:00:00:0e: chassis 00:19:2f:a7:b2:8d port \"Uplink to S1\" ttl 120 system \"S2.cisco.com\" (296 bytes)"
    );
    assert_eq!(
        line("tcpdump_802.1D_spanning_tree.pcap", 1),
        "2008-06-18T11:44:05.787073000Z if0 STP 00:19:06:ea:b8:85 > 01:80:c2:00:00:00: stp root 32768/1/00:19:06:ea:b8:80 cost 0 bridge 32768/1/00:19:06:ea:b8:80 port 0x8005 (60 bytes)"
    );
    assert_eq!(
        line("zeek_tunnels-vxlan.pcap", 1),
        "2016-07-06T15:20:32.675392000Z if0 IPv4 192.168.56.11.39924 > 192.168.56.12.4789: UDP length 50, VXLAN vni 123: ARP ba:09:2b:6e:f8:be > ff:ff:ff:ff:ff:ff: who-has 10.0.0.2 tell 10.0.0.1 (92 bytes)"
    );
    assert_eq!(
        line("zeek_ipv4-fragmented-1.pcap", 2),
        "2000-02-19T19:23:55.156077000Z if0 IPv4 164.1.123.163 > 164.1.123.61: frag id 242 offset 48, UDP length 116 (150 bytes)"
    );
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_frames_never_break_the_output() {
    // Valid frames of many kinds, then bit flips and cuts: every record must still give one
    // text line and one parseable JSON object, and the process must exit 0.
    let inner = eth_ipv4_udp(5000, 6000, b"inner");
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vx.extend_from_slice(&inner);
    let mut tcp = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .single_vlan(5.try_into().unwrap())
        .ipv6([1; 16], [2; 16], 64)
        .tcp(1, 2, 3, 4)
        .options(&[
            etherparse::TcpOptionElement::MaximumSegmentSize(1460),
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::WindowScale(7),
            etherparse::TcpOptionElement::SelectiveAcknowledgement(
                (1, 2),
                [Some((3, 4)), None, None],
            ),
        ])
        .unwrap()
        .write(&mut tcp, b"data")
        .unwrap();
    let bases = [
        eth_ipv4_udp(1, 2, b"payload"),
        eth_ipv4_udp(33333, 4789, &vx),
        tcp,
        lldp_frame(b"port", b"system"),
        std::fs::read(fixtures().join("pcap_le_us.pcap")).unwrap()[24 + 16..24 + 16 + 71].to_vec(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut frames = Vec::new();
    for i in 0..3000 {
        let mut f = bases[i % bases.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(f.len());
            f[at] ^= 1 << rng.below(8);
        }
        if rng.below(3) == 0 {
            f.truncate(rng.below(f.len() + 1));
        }
        frames.push(f);
    }
    for link in [
        LinkType::ETHERNET,
        LinkType::RAW,
        LinkType::LINUX_SLL,
        LinkType::NULL,
    ] {
        let path = write_pcap("mutated.pcap", link, &frames);
        let p = path.to_str().unwrap();
        let out = netmon(&["read", p]);
        assert_eq!(out.status.code(), Some(0), "{link:?}: {}", stderr(&out));
        assert_eq!(stdout(&out).lines().count(), frames.len(), "{link:?}");
        assert!(
            !out.stdout.iter().any(|&b| b < 0x20 && b != b'\n'),
            "{link:?}"
        );
        let out = netmon(&["read", "--json", "--stats", p]);
        assert_eq!(out.status.code(), Some(0), "{link:?}: {}", stderr(&out));
        let mut n = 0;
        for l in stdout(&out).lines() {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{link:?}: {e}: {l}"));
            n += 1;
            if n <= frames.len() {
                check_json_record(&v, n);
            } else {
                assert_eq!(v["summary"]["packets"], frames.len() as u64);
            }
        }
        assert_eq!(n, frames.len() + 1, "{link:?}");
        let _ = std::fs::remove_file(&path);
    }
}
