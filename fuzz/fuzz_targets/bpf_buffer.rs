#![no_main]
//! Arbitrary bytes as a BPF read buffer (macOS/BSD `/dev/bpf*`), walked with each header
//! layout: the walk must never panic or loop, every record must lie inside the buffer, and the
//! records must cover the buffer in order (each one after the previous).

use libfuzzer_sys::fuzz_target;
use netmon_capture::bpf::buffer::{HeaderLayout, records};

fuzz_target!(|data: &[u8]| {
    let base = data.as_ptr() as usize;
    for layout in [
        HeaderLayout::Darwin,
        HeaderLayout::DarwinExt,
        HeaderLayout::Timeval64,
    ] {
        let mut it = records(data, layout);
        let mut end = 0usize;
        let mut n = 0usize;
        for r in it.by_ref() {
            let start = r.data.as_ptr() as usize - base;
            assert!(start >= end, "record overlaps the previous one");
            assert!(start + r.data.len() <= data.len());
            assert_eq!(r.data.len(), r.caplen as usize);
            end = start + r.data.len();
            n += 1;
            // Each record has a header of at least min_hdrlen bytes in front of its data.
            assert!(n <= data.len() / layout.min_hdrlen() + 1, "more records than headers fit");
        }
        let _ = it.error();
    }
});
