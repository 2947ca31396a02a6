#![no_main]
//! Arbitrary bytes as a pcap/pcapng file: reading it to the end (bounded) must never panic,
//! hang or allocate without bound, must keep the `CaptureSource` contract, and every frame it
//! yields goes through the frame parser checks of `netmon_fuzz::check_frame`.

use libfuzzer_sys::fuzz_target;
use netmon_capture::{CaptureSource, FileSource, Next};

/// Stop after this many packets (a 16-byte pcap record with an empty frame is the smallest,
/// so libFuzzer's default inputs never reach it; it bounds the work on huge seeds).
const MAX_PACKETS: u64 = 100_000;

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = FileSource::from_reader(std::io::Cursor::new(data.to_vec()), "fuzz") else {
        return;
    };
    let (mut packets, mut bytes) = (0u64, 0u64);
    while packets < MAX_PACKETS {
        let iface = match src.next_packet() {
            Ok(Next::Packet(p)) => {
                assert_eq!(
                    p.data.len(),
                    p.meta.cap_len as usize,
                    "cap_len is not the data length"
                );
                packets += 1;
                bytes += u64::from(p.meta.orig_len);
                netmon_fuzz::check_frame(p.meta.link_type, p.data, p.meta.orig_len as usize);
                p.meta.iface
            }
            Ok(Next::Timeout) => panic!("a file source returned Timeout"),
            Ok(Next::End) => break,
            Err(e) => {
                let _ = e.to_string();
                // After an error the source is finished.
                assert!(
                    matches!(src.next_packet(), Ok(Next::End)),
                    "source continued after an error"
                );
                break;
            }
        };
        assert!(
            (iface as usize) < src.interfaces().len(),
            "packet on interface {iface}, but only {} known",
            src.interfaces().len()
        );
    }
    let stats = src.stats();
    assert_eq!(
        stats.packets, packets,
        "stats.packets disagrees with the packets yielded"
    );
    assert_eq!(
        stats.bytes, bytes,
        "stats.bytes disagrees with the packets' orig_len sum"
    );
    assert!(
        src.bytes_consumed() <= data.len() as u64,
        "consumed more bytes than the input has"
    );
    let _ = (src.info(), src.name());
});
