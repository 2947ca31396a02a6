//! Writers round-trip through the reader; the reader never panics or hangs on hostile input.

mod common;

use common::{Pkt, drain, fixture_bytes, from_bytes};
use netmon_capture::file::{MAX_CAPTURE_LEN, READ_BUFFER_SIZE};
use netmon_capture::{
    ByteOrder, CaptureError, CaptureSource, FileFormat, FileSource, LinkType, PcapNgWriter,
    PcapWriter, Timestamp, TsPrecision, TsResolution,
};
use proptest::prelude::*;

/// A frame to write: timestamp (ns), interface choice, bytes, extra wire length.
type Frame = (i64, usize, Vec<u8>, u32);

fn frames(max_len: usize) -> impl Strategy<Value = Vec<Frame>> {
    prop::collection::vec(
        (
            // Any instant a classic pcap can hold (32-bit seconds).
            0i64..=(u32::MAX as i64) * 1_000_000_000 + 999_999_999,
            0usize..3,
            prop::collection::vec(any::<u8>(), 0..max_len),
            prop_oneof![Just(0u32), 0u32..100_000],
        ),
        0..40,
    )
}

fn read_back(bytes: Vec<u8>, chunk: usize) -> (FileSource, Vec<Pkt>) {
    let mut src = from_bytes(bytes, chunk).unwrap();
    let (pkts, err) = drain(&mut src);
    assert!(err.is_none(), "{err:?}");
    (src, pkts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pcap_writer_round_trips(
        frames in frames(300),
        nanos in any::<bool>(),
        lt in prop::sample::select(vec![LinkType::ETHERNET, LinkType::RAW, LinkType::LINUX_SLL2, LinkType::NULL]),
        chunk in prop_oneof![Just(usize::MAX), 1usize..64],
    ) {
        let precision = if nanos { TsPrecision::Nano } else { TsPrecision::Micro };
        let mut w = PcapWriter::new(Vec::new(), lt, 0, precision).unwrap();
        for (ts, _, data, extra) in &frames {
            w.write_packet(Timestamp::from_nanos(*ts), data, data.len() as u32 + extra).unwrap();
        }
        prop_assert_eq!(w.packets(), frames.len() as u64);
        let (src, pkts) = read_back(w.into_inner().unwrap(), chunk);
        prop_assert_eq!(src.info().format, FileFormat::Pcap);
        prop_assert_eq!(src.info().byte_order, ByteOrder::Little);
        prop_assert_eq!(
            src.info().ts_resolution,
            if nanos { TsResolution::Nano } else { TsResolution::Micro }
        );
        prop_assert_eq!(pkts.len(), frames.len());
        for (p, (ts, _, data, extra)) in pkts.iter().zip(&frames) {
            // Microsecond files keep whole microseconds.
            let want = if nanos { *ts } else { ts - ts % 1_000 };
            prop_assert_eq!(p.ts, Timestamp::from_nanos(want));
            prop_assert_eq!(&p.data, data);
            prop_assert_eq!(p.cap_len as usize, data.len());
            prop_assert_eq!(p.orig_len, data.len() as u32 + extra);
            prop_assert_eq!(p.link_type, lt);
            prop_assert_eq!(p.iface, 0);
        }
    }

    #[test]
    fn pcapng_writer_round_trips(
        frames in frames(300),
        n_ifaces in 1usize..4,
        chunk in prop_oneof![Just(usize::MAX), 1usize..64],
    ) {
        let kinds = [(LinkType::ETHERNET, "eth0"), (LinkType::RAW, "tun0"), (LinkType(147), "user0")];
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        for (i, (lt, name)) in kinds.iter().take(n_ifaces).enumerate() {
            prop_assert_eq!(w.add_interface(name, *lt, 0).unwrap(), i as u32);
        }
        for (ts, iface, data, extra) in &frames {
            let iface = (*iface % n_ifaces) as u32;
            w.write_packet(Timestamp::from_nanos(*ts), iface, data, data.len() as u32 + extra).unwrap();
        }
        let (src, pkts) = read_back(w.into_inner().unwrap(), chunk);
        prop_assert_eq!(src.info().format, FileFormat::PcapNg);
        prop_assert_eq!(src.interfaces().len(), n_ifaces);
        prop_assert_eq!(pkts.len(), frames.len());
        for (p, (ts, iface, data, extra)) in pkts.iter().zip(&frames) {
            let iface = *iface % n_ifaces;
            prop_assert_eq!(p.ts, Timestamp::from_nanos(*ts));
            prop_assert_eq!(&p.data, data);
            prop_assert_eq!(p.orig_len, data.len() as u32 + extra);
            prop_assert_eq!(p.iface as usize, iface);
            prop_assert_eq!(p.link_type, kinds[iface].0);
            prop_assert_eq!(p.iface_name.as_deref(), Some(kinds[iface].1));
        }
    }

    /// Arbitrary bytes, alone or behind a valid pcap / pcapng header, never panic and end.
    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop::sample::select(vec!["", "pcap", "pcap_be", "pcap_ns", "pcapng"]),
        tail in prop::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..512,
    ) {
        let mut data = match prefix {
            "pcap" => fixture_bytes("empty.pcap"),
            "pcap_be" => fixture_bytes("pcap_be_us.pcap")[..24].to_vec(),
            "pcap_ns" => fixture_bytes("pcap_ns.pcap")[..24].to_vec(),
            "pcapng" => {
                let ng = fixture_bytes("pcapng_multi.pcapng");
                // The SHB and the three IDBs: the first EPB starts at 220.
                assert_eq!(ng[220..224], 6u32.to_le_bytes());
                ng[..220].to_vec()
            }
            _ => Vec::new(),
        };
        data.extend_from_slice(&tail);
        if let Ok(mut src) = from_bytes(data, chunk) {
            let _ = drain(&mut src);
        }
    }

    /// Every fixture, cut anywhere and with a few bytes changed, never panics and ends; cut on
    /// a record boundary it ends cleanly, elsewhere with Truncated (or Corrupt when mutated).
    #[test]
    fn damaged_fixtures_never_panic(
        name in prop::sample::select(vec![
            "pcap_le_us.pcap", "pcap_be_us.pcap", "pcap_ns.pcap",
            "pcapng_multi.pcapng", "pcapng_be.pcapng",
        ]),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        chunk in 1usize..300,
    ) {
        let full = fixture_bytes(name);
        let mut data = full[..cut.index(full.len() + 1)].to_vec();
        if !data.is_empty() {
            for (i, v) in &flips {
                let at = i.index(data.len());
                data[at] = *v;
            }
        }
        let unmutated = flips.is_empty();
        match from_bytes(data.clone(), chunk) {
            Ok(mut src) => {
                let (pkts, err) = drain(&mut src);
                if unmutated {
                    match err {
                        None => prop_assert_eq!(src.bytes_consumed(), data.len() as u64),
                        Some(CaptureError::Truncated { packets, .. }) => {
                            prop_assert_eq!(packets, pkts.len() as u64)
                        }
                        Some(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
            }
            Err(e) => prop_assert!(!unmutated || data.len() < 28, "{e:?}"),
        }
    }
}

#[test]
fn writer_snaplen_cuts_frames() {
    let frame: Vec<u8> = (0..200u8).collect();
    let ts = Timestamp::from_secs_nanos(1_700_000_000, 42);
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 64, TsPrecision::Nano).unwrap();
    w.write_packet(ts, &frame, 200).unwrap();
    let (src, pkts) = read_back(w.into_inner().unwrap(), usize::MAX);
    assert_eq!(src.interfaces()[0].snaplen, 64);
    assert_eq!((pkts[0].cap_len, pkts[0].orig_len), (64, 200));
    assert_eq!(pkts[0].data, frame[..64]);

    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let a = w.add_interface("a", LinkType::ETHERNET, 0).unwrap();
    let b = w.add_interface("b", LinkType::RAW, 10).unwrap();
    w.write_packet(ts, b, &frame, 200).unwrap();
    w.write_packet(ts, a, &frame, 200).unwrap();
    let (_, pkts) = read_back(w.into_inner().unwrap(), usize::MAX);
    assert_eq!((pkts[0].cap_len, pkts[0].iface), (10, 1));
    assert_eq!((pkts[1].cap_len, pkts[1].iface), (200, 0));
    assert_eq!(pkts[0].ts, ts);
}

#[test]
fn writer_rejects_what_it_cannot_store() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 0, TsPrecision::Micro).unwrap();
    let before = Timestamp::from_secs_nanos(-1, 0);
    let after_2106 = Timestamp::from_secs_nanos(u32::MAX as i64 + 1, 0);
    for ts in [before, after_2106] {
        let e = w.write_packet(ts, &[0; 10], 10).unwrap_err();
        assert!(matches!(e, CaptureError::InvalidArgument(_)), "{e:?}");
    }
    let huge = vec![0u8; MAX_CAPTURE_LEN + 1];
    assert!(matches!(
        w.write_packet(Timestamp::EPOCH, &huge, 0),
        Err(CaptureError::InvalidArgument(_))
    ));
    assert_eq!(w.packets(), 0);
    assert_eq!(
        w.get_ref().len(),
        24,
        "nothing written for rejected packets"
    );

    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    assert!(matches!(
        w.write_packet(Timestamp::EPOCH, 0, &[0; 4], 4),
        Err(CaptureError::InvalidArgument(_))
    ));
    assert!(matches!(
        w.add_interface("x", LinkType(70_000), 0),
        Err(CaptureError::InvalidArgument(_))
    ));
    w.add_interface("x", LinkType::ETHERNET, 0).unwrap();
    assert!(matches!(
        w.write_packet(before, 0, &[0; 4], 4),
        Err(CaptureError::InvalidArgument(_))
    ));
    assert_eq!(w.interface_count(), 1);
    // pcapng timestamps are 64-bit: far beyond 2106 is fine.
    w.write_packet(after_2106, 0, &[1, 2, 3], 3).unwrap();
    let (_, pkts) = read_back(w.into_inner().unwrap(), usize::MAX);
    assert_eq!(pkts[0].ts, after_2106);
}

/// Many records through the 256 KiB buffer, plus records larger than it (the buffer grows), up
/// to the 16 MiB maximum, in both formats and through a pipe-like reader.
#[test]
fn large_and_many_records() {
    let sizes: Vec<usize> = (0..3000)
        .map(|i| (i * 7919) % 1600)
        .chain([
            READ_BUFFER_SIZE + 1,
            3 * READ_BUFFER_SIZE,
            17,
            MAX_CAPTURE_LEN,
            60,
        ])
        .collect();
    let frame = |i: usize, n: usize| -> Vec<u8> { (0..n).map(|j| (i + j) as u8).collect() };
    let ts = |i: usize| Timestamp::from_secs_nanos(1_600_000_000 + i as i64, (i * 1000) as u32);

    let mut pw = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 0, TsPrecision::Nano).unwrap();
    let mut nw = PcapNgWriter::new(Vec::new()).unwrap();
    nw.add_interface("eth0", LinkType::ETHERNET, 0).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let f = frame(i, n);
        pw.write_packet(ts(i), &f, n as u32).unwrap();
        nw.write_packet(ts(i), 0, &f, n as u32).unwrap();
    }
    for bytes in [pw.into_inner().unwrap(), nw.into_inner().unwrap()] {
        for chunk in [usize::MAX, 65_536 + 3] {
            let mut src = from_bytes(bytes.clone(), chunk).unwrap();
            let mut i = 0;
            while let netmon_capture::Next::Packet(p) = src.next_packet().unwrap() {
                assert_eq!(p.data.len(), sizes[i]);
                assert_eq!(p.meta.ts, ts(i));
                assert!(p.data.iter().enumerate().all(|(j, &b)| b == (i + j) as u8));
                i += 1;
            }
            assert_eq!(i, sizes.len());
            assert_eq!(src.bytes_consumed(), bytes.len() as u64);
        }
    }
}

/// `create` writes real files that `open_file` (and tcpdump/Wireshark) read back.
#[test]
fn create_files_on_disk() {
    let dir = std::env::temp_dir().join(format!("netmon-capture-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let frame = fixture_bytes("pcap_le_us.pcap")[40..40 + 71].to_vec(); // the DNS query
    let ts = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);

    let p = dir.join("w.pcap");
    let mut w = PcapWriter::create(&p, LinkType::ETHERNET, 65535, TsPrecision::Nano).unwrap();
    w.write_packet(ts, &frame, 71).unwrap();
    w.flush().unwrap();
    drop(w);
    let mut src = netmon_capture::open_file(&p).unwrap();
    let (pkts, err) = drain(&mut src);
    assert!(err.is_none());
    assert_eq!((pkts[0].ts, &pkts[0].data), (ts, &frame));

    let p = dir.join("w.pcapng");
    let mut w = PcapNgWriter::create(&p).unwrap();
    let i = w.add_interface("eth0", LinkType::ETHERNET, 0).unwrap();
    w.write_packet(ts, i, &frame, 71).unwrap();
    drop(w.into_inner().unwrap());
    let mut src = netmon_capture::open_file(&p).unwrap();
    let (pkts, err) = drain(&mut src);
    assert!(err.is_none());
    assert_eq!(pkts[0].iface_name.as_deref(), Some("eth0"));
    assert_eq!((pkts[0].ts, &pkts[0].data), (ts, &frame));

    if std::env::var_os("NETMON_KEEP_TEST_FILES").is_none() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let e = PcapNgWriter::create("/nonexistent/dir/x.pcapng").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/dir/x.pcapng"), "{e}");
}

/// Directions written as `epb_flags` come back from the reader and from tshark.
#[test]
fn pcapng_direction_round_trips_through_epb_flags() {
    use netmon_capture::{Direction, Next};
    let dirs = [
        Direction::Inbound,
        Direction::Outbound,
        Direction::Unknown,
        Direction::Outbound,
    ];
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.add_interface("eth0", LinkType::ETHERNET, 0).unwrap();
    for (i, d) in dirs.iter().enumerate() {
        // Odd lengths: the options follow padded data.
        let frame = vec![i as u8; 61 + i];
        w.write_packet_dir(
            Timestamp(1_700_000_000_000_000_000),
            0,
            &frame,
            61 + i as u32,
            *d,
        )
        .unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let mut src = from_bytes(bytes.clone(), 7).unwrap();
    let mut got = Vec::new();
    while let Next::Packet(p) = src.next_packet().unwrap() {
        assert_eq!(p.data.len(), 61 + got.len());
        got.push(p.meta.direction);
    }
    assert_eq!(got, dirs);

    let Some(tshark) = netmon_testkit::tshark() else {
        netmon_testkit::tshark_missing("epb_flags direction");
        return;
    };
    let path = std::env::temp_dir().join(format!("netmon-epb-dir-{}.pcapng", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new(tshark)
        .args(["-r", path.to_str().unwrap(), "-T", "fields"])
        .args(["-e", "frame.packet_flags_direction", "-e", "frame.len"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        ["0x00000001\t61", "0x00000002\t62", "\t63", "0x00000002\t64"]
    );
}
