//! Every committed fixture (see fixtures/README.md), read through `open_file` and through a
//! reader that trickles bytes, plus the error cases.

mod common;

use common::{Pkt, drain, fixture, fixture_bytes, from_bytes, ts};
use netmon_capture::{
    ByteOrder, CaptureError, CaptureSource, FileFormat, FileInfo, Interface, LinkType, Next,
    Timestamp, TsResolution, open_file,
};

const T0: i64 = 1_700_000_000;

fn read_all(name: &str) -> (Vec<Pkt>, Option<CaptureError>, netmon_capture::FileSource) {
    let mut src = open_file(fixture(name)).unwrap();
    let (pkts, err) = drain(&mut src);
    // The same file through 1-, 7- and 4096-byte reads gives the same result.
    for chunk in [1, 7, 4096] {
        let mut s = from_bytes(fixture_bytes(name), chunk).unwrap();
        let (p2, e2) = drain(&mut s);
        assert_eq!(p2, pkts, "{name} read in {chunk}-byte chunks");
        assert_eq!(
            e2.map(|e| e.to_string().replace("<memory>", "")),
            err.as_ref()
                .map(|e| e.to_string().replace(&src.name().to_owned(), "")),
            "{name} read in {chunk}-byte chunks"
        );
    }
    (pkts, err, src)
}

fn summary(p: &[Pkt]) -> Vec<(Timestamp, u32, u32, u32)> {
    p.iter()
        .map(|p| (p.ts, p.iface, p.cap_len, p.orig_len))
        .collect()
}

fn ethertype(p: &Pkt) -> u16 {
    u16::from_be_bytes([p.data[12], p.data[13]])
}

fn expected_eth_us() -> Vec<(Timestamp, u32, u32, u32)> {
    vec![
        (ts(T0, 123_456_000), 0, 71, 71),
        (ts(T0, 145_678_000), 0, 87, 87),
        (ts(T0 + 1, 0), 0, 74, 74),
        (ts(T0 + 1, 500_000_000), 0, 42, 42),
        (ts(T0 + 2, 999_999_000), 0, 128, 283),
    ]
}

#[test]
fn pcap_little_endian_micro() {
    let (pkts, err, src) = read_all("pcap_le_us.pcap");
    assert!(err.is_none(), "{err:?}");
    assert_eq!(summary(&pkts), expected_eth_us());
    assert_eq!(
        src.info(),
        FileInfo {
            format: FileFormat::Pcap,
            byte_order: ByteOrder::Little,
            ts_resolution: TsResolution::Micro
        }
    );
    assert!(pkts.iter().all(|p| p.link_type == LinkType::ETHERNET));
    assert!(pkts.iter().all(|p| p.iface_name.is_none()));
    let types: Vec<u16> = pkts.iter().map(ethertype).collect();
    assert_eq!(types, [0x0800, 0x0800, 0x0800, 0x0806, 0x0800]);
    // The DNS query: IPv4, UDP, port 53.
    assert_eq!(pkts[0].data[23], 17);
    assert_eq!(&pkts[0].data[36..38], &53u16.to_be_bytes());
    assert_eq!(
        src.interfaces(),
        &[Interface {
            name: "if0".into(),
            description: None,
            link_type: LinkType::ETHERNET,
            snaplen: 128
        }]
    );
    let st = src.stats();
    assert_eq!((st.packets, st.bytes), (5, 71 + 87 + 74 + 42 + 283));
    assert_eq!(st.iface_dropped, None);
    let len = fixture_bytes("pcap_le_us.pcap").len() as u64;
    assert_eq!(src.total_bytes(), Some(len));
    assert_eq!(src.bytes_consumed(), len);
}

#[test]
fn pcap_big_endian_reads_like_little_endian() {
    let (le, _, _) = read_all("pcap_le_us.pcap");
    let (be, err, src) = read_all("pcap_be_us.pcap");
    assert!(err.is_none(), "{err:?}");
    assert_eq!(src.info().byte_order, ByteOrder::Big);
    assert_eq!(src.info().ts_resolution, TsResolution::Micro);
    assert_eq!(be, le);
}

#[test]
fn pcap_nanosecond_raw_ip() {
    let (pkts, err, src) = read_all("pcap_ns.pcap");
    assert!(err.is_none(), "{err:?}");
    assert_eq!(src.info().ts_resolution, TsResolution::Nano);
    assert_eq!(
        summary(&pkts),
        vec![
            (ts(T0, 123_456_789), 0, 57, 57),
            (ts(T0, 123_456_790), 0, 67, 67),
            (ts(T0 + 5, 1), 0, 60, 60),
        ]
    );
    assert!(pkts.iter().all(|p| p.link_type == LinkType::RAW));
    let versions: Vec<u8> = pkts.iter().map(|p| p.data[0] >> 4).collect();
    assert_eq!(versions, [4, 6, 4]);
}

#[test]
fn pcapng_multi_interface_multi_section() {
    let (pkts, err, src) = read_all("pcapng_multi.pcapng");
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        src.info(),
        FileInfo {
            format: FileFormat::PcapNg,
            byte_order: ByteOrder::Little,
            ts_resolution: TsResolution::PerInterface
        }
    );
    assert_eq!(
        summary(&pkts),
        vec![
            // EPB, eth0, if_tsresol 9
            (ts(T0, 123_456_789), 0, 71, 71),
            // EPB, tun0, if_tsresol 2^-20 and if_tsoffset T0
            (ts(T0 + 5, 500_000_000), 1, 67, 67),
            // SPB: interface 0, no timestamp
            (Timestamp::EPOCH, 0, 42, 42),
            // obsolete Packet Block on tun0
            (ts(T0 + 6, 250_000_000), 1, 60, 60),
            // EPB with options
            (ts(T0 + 7, 1), 0, 74, 74),
            // EPB on the unnamed link-type-147 interface (default microseconds)
            (ts(T0 + 8, 0), 2, 22, 22),
            // second section: its interface 0 is our 3
            (ts(T0 + 10, 250_000_000), 3, 96, 283),
            (ts(T0 + 10, 500_000_000), 3, 87, 87),
        ]
    );
    let names: Vec<Option<&str>> = pkts.iter().map(|p| p.iface_name.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some("eth0"),
            Some("tun0"),
            Some("eth0"),
            Some("tun0"),
            Some("eth0"),
            None,
            None,
            None
        ]
    );
    let links: Vec<LinkType> = pkts.iter().map(|p| p.link_type).collect();
    use LinkType as L;
    assert_eq!(
        links,
        [
            L::ETHERNET,
            L::RAW,
            L::ETHERNET,
            L::RAW,
            L::ETHERNET,
            L(147),
            L::ETHERNET,
            L::ETHERNET
        ]
    );
    // Frame contents: raw IPv6 on tun0, ARP in the SPB (without its block padding).
    assert_eq!(pkts[1].data[0] >> 4, 6);
    assert_eq!(ethertype(&pkts[2]), 0x0806);
    assert_eq!(pkts[5].data, b"\x00\x01hello, link type 147");
    assert_eq!(
        src.interfaces(),
        &[
            Interface {
                name: "eth0".into(),
                description: Some("Fixture Ethernet".into()),
                link_type: L::ETHERNET,
                snaplen: 65535
            },
            Interface {
                name: "tun0".into(),
                description: None,
                link_type: L::RAW,
                snaplen: 262_144
            },
            Interface {
                name: "if2".into(),
                description: None,
                link_type: L(147),
                snaplen: 0
            },
            Interface {
                name: "if3".into(),
                description: None,
                link_type: L::ETHERNET,
                snaplen: 96
            },
        ]
    );
    let st = src.stats();
    assert_eq!(st.packets, 8);
    assert_eq!(st.bytes, 71 + 67 + 42 + 60 + 74 + 22 + 283 + 87);
    // isb_ifdrop: eth0's latest 3 (an earlier block said 1), tun0 2, second section 4.
    assert_eq!(st.iface_dropped, Some(9));
    assert_eq!(
        Some(src.bytes_consumed()),
        src.total_bytes(),
        "consumed the whole file"
    );
}

#[test]
fn pcapng_big_endian_with_tsoffset() {
    let (pkts, err, src) = read_all("pcapng_be.pcapng");
    assert!(err.is_none(), "{err:?}");
    assert_eq!(src.info().byte_order, ByteOrder::Big);
    assert_eq!(
        summary(&pkts),
        vec![
            (ts(T0 + 1, 500_000_000), 0, 71, 71),
            (Timestamp::EPOCH, 0, 42, 42),
            (ts(T0 + 2, 1_000), 0, 87, 87),
        ]
    );
    assert!(pkts.iter().all(|p| p.iface_name.as_deref() == Some("en0")));
    assert_eq!(ethertype(&pkts[1]), 0x0806);
    assert_eq!(src.stats().iface_dropped, Some(5));
}

#[test]
fn pcapng_matches_pcap_frames() {
    // The same frames stored in both formats come out byte-identical.
    let (pcap, _, _) = read_all("pcap_le_us.pcap");
    let (ng, _, _) = read_all("pcapng_multi.pcapng");
    assert_eq!(ng[0].data, pcap[0].data); // DNS query
    assert_eq!(ng[2].data, pcap[3].data); // ARP
    assert_eq!(ng[4].data, pcap[2].data); // TCP SYN
    assert_eq!(ng[7].data, pcap[1].data); // DNS response
    assert_eq!(ng[6].data[..], pcap[4].data[..96]); // HTTP cut to 96
}

#[test]
fn empty_pcap_ends_at_once() {
    let (pkts, err, src) = read_all("empty.pcap");
    assert!(pkts.is_empty());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(src.interfaces().len(), 1);
    assert_eq!(src.stats().packets, 0);
    assert_eq!(src.bytes_consumed(), 24);
}

#[test]
fn truncated_pcap_yields_complete_packets_then_error() {
    let (pkts, err, _) = read_all("truncated.pcap");
    assert_eq!(summary(&pkts), expected_eth_us()[..3].to_vec());
    match err {
        Some(CaptureError::Truncated { packets, path }) => {
            assert_eq!(packets, 3);
            assert!(path.ends_with("truncated.pcap"));
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn truncated_pcapng_yields_complete_packets_then_error() {
    let (pkts, err, _) = read_all("truncated.pcapng");
    assert_eq!(pkts.len(), 2);
    let e = err.expect("an error");
    assert!(
        matches!(e, CaptureError::Truncated { packets: 2, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("after 2 complete packets"), "{e}");
}

#[test]
fn corrupt_caplen_reports_offset() {
    let (pkts, err, _) = read_all("corrupt_caplen.pcap");
    assert_eq!(pkts.len(), 3);
    match err {
        Some(CaptureError::Corrupt {
            offset, packets, ..
        }) => {
            assert_eq!(offset, 24 + (16 + 71) + (16 + 87) + (16 + 74));
            assert_eq!(packets, 3);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn not_a_capture_shows_first_bytes() {
    let e = open_file(fixture("not_a_capture.txt")).unwrap_err();
    match &e {
        CaptureError::NotACapture { magic, path } => {
            assert!(magic.starts_with("47 45 54 20 2f"), "{magic}");
            assert!(path.ends_with("not_a_capture.txt"));
        }
        other => panic!("expected NotACapture, got {other:?}"),
    }
    assert!(e.to_string().contains("not a pcap or pcapng"), "{e}");
    // An empty input and one too short for a magic number.
    for data in [vec![], vec![0xd4, 0xc3]] {
        let e = from_bytes(data, 4096).unwrap_err();
        assert!(matches!(e, CaptureError::NotACapture { .. }), "{e:?}");
    }
    assert!(
        from_bytes(vec![], 1)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
}

#[test]
fn unsupported_link_type_in_classic_pcap() {
    let e = open_file(fixture("unsupported_linktype.pcap")).unwrap_err();
    match &e {
        CaptureError::UnsupportedLinkType { link_type, .. } => {
            assert_eq!(*link_type, LinkType(147))
        }
        other => panic!("expected UnsupportedLinkType, got {other:?}"),
    }
    assert!(e.to_string().contains("linktype-147"), "{e}");
}

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let e = open_file("/nonexistent/dir/x.pcap").unwrap_err();
    assert!(matches!(e, CaptureError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/dir/x.pcap"), "{e}");
}

#[test]
fn truncated_headers() {
    // A pcap magic followed by half a file header; a pcapng SHB cut short.
    let pcap = fixture_bytes("pcap_le_us.pcap");
    let e = from_bytes(pcap[..10].to_vec(), 4096).unwrap_err();
    assert!(
        matches!(e, CaptureError::Truncated { packets: 0, .. }),
        "{e:?}"
    );
    let ng = fixture_bytes("pcapng_multi.pcapng");
    let mut src = from_bytes(ng[..20].to_vec(), 4096).unwrap();
    let (pkts, err) = drain(&mut src);
    assert!(pkts.is_empty());
    assert!(
        matches!(err, Some(CaptureError::Truncated { packets: 0, .. })),
        "{err:?}"
    );
    // A header-only pcap cut exactly on a record boundary is a clean end.
    let mut src = from_bytes(pcap[..24 + 16 + 71].to_vec(), 4096).unwrap();
    let (pkts, err) = drain(&mut src);
    assert_eq!((pkts.len(), err.is_none()), (1, true));
}

/// Offsets of the blocks of a little-endian pcapng file.
fn blocks(data: &[u8]) -> Vec<(usize, u32, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 8 <= data.len() {
        let t = u32::from_le_bytes(data[off..off + 4].try_into().unwrap());
        let l = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap()) as usize;
        out.push((off, t, l));
        off += l;
    }
    out
}

fn corrupt_error(data: Vec<u8>) -> (usize, CaptureError) {
    let mut src = from_bytes(data, 4096).unwrap();
    let (pkts, err) = drain(&mut src);
    (pkts.len(), err.expect("an error"))
}

#[test]
fn corrupt_pcapng_blocks() {
    let ng = fixture_bytes("pcapng_multi.pcapng");
    let bl = blocks(&ng);
    let epbs: Vec<_> = bl.iter().filter(|b| b.1 == 6).collect();
    let (epb2_off, _, epb2_len) = *epbs[1];

    // Block length not a multiple of 4.
    let mut d = ng.clone();
    d[epb2_off + 4] += 1;
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 1);
    match e {
        CaptureError::Corrupt {
            offset, packets, ..
        } => assert_eq!((offset, packets), (epb2_off as u64, 1)),
        other => panic!("{other:?}"),
    }

    // Trailing length differs from the leading one.
    let mut d = ng.clone();
    d[epb2_off + epb2_len - 4] ^= 0x40;
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 1);
    assert!(e.to_string().contains("trailing length"), "{e}");

    // Captured length larger than the block.
    let mut d = ng.clone();
    d[epb2_off + 20..epb2_off + 24].copy_from_slice(&5000u32.to_le_bytes());
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 1);
    assert!(e.to_string().contains("captured bytes"), "{e}");

    // An EPB naming an interface the section does not have.
    let mut d = ng.clone();
    d[epb2_off + 8..epb2_off + 12].copy_from_slice(&7u32.to_le_bytes());
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 1);
    assert!(e.to_string().contains("interface 7"), "{e}");

    // A block length beyond the 16 MiB cap.
    let mut d = ng.clone();
    d[epb2_off + 4..epb2_off + 8].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 1);
    assert!(matches!(e, CaptureError::Corrupt { .. }), "{e:?}");

    // A bad byte-order magic in the second section header.
    let shb2 = bl.iter().filter(|b| b.1 == 0x0a0d_0d0a).nth(1).unwrap().0;
    let mut d = ng.clone();
    d[shb2 + 8] = 0;
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 6);
    assert!(e.to_string().contains("byte-order"), "{e}");

    // An out-of-range if_tsresol (10^-25).
    let idb = bl.iter().find(|b| b.1 == 1).unwrap().0;
    let pos = ng[idb..]
        .windows(5)
        .position(|w| w == [9, 0, 1, 0, 9])
        .unwrap();
    let mut d = ng.clone();
    d[idb + pos + 4] = 25;
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 0);
    assert!(e.to_string().contains("if_tsresol"), "{e}");
}

#[test]
fn oversized_classic_record_is_corrupt_not_allocated() {
    let mut d = fixture_bytes("empty.pcap");
    d.extend_from_slice(&[0; 8]);
    d.extend_from_slice(&u32::MAX.to_le_bytes());
    d.extend_from_slice(&60u32.to_le_bytes());
    let (n, e) = corrupt_error(d);
    assert_eq!(n, 0);
    match e {
        CaptureError::Corrupt { offset, .. } => assert_eq!(offset, 24),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stop_handle_ends_the_source() {
    let mut src = open_file(fixture("pcap_le_us.pcap")).unwrap();
    let stop = src.stop_handle();
    assert!(matches!(src.next_packet(), Ok(Next::Packet(_))));
    // Stopped from another thread: the next call ends, and stays ended.
    std::thread::spawn(move || stop.stop()).join().unwrap();
    assert!(matches!(src.next_packet(), Ok(Next::End)));
    assert!(matches!(src.next_packet(), Ok(Next::End)));
    assert_eq!(src.stats().packets, 1);

    // Stopped before the first read.
    let mut src = open_file(fixture("pcapng_multi.pcapng")).unwrap();
    src.stop_handle().stop();
    assert!(src.stop_handle().is_stopped());
    assert!(matches!(src.next_packet(), Ok(Next::End)));
}

#[test]
fn boxed_dyn_source() {
    let mut src: Box<dyn CaptureSource> = Box::new(open_file(fixture("pcap_ns.pcap")).unwrap());
    let (pkts, err) = drain(src.as_mut());
    assert_eq!((pkts.len(), err.is_none()), (3, true));
}
