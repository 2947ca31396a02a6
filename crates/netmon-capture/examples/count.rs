//! Counts the packets and bytes of a capture file: `count FILE` (`-` reads stdin).
//!
//! The reference for netmon-capture's replay speed:
//! `cargo run --release -p netmon-capture --example count -- big.pcap`.

use std::time::Instant;

use netmon_capture::{CaptureError, CaptureSource, FileSource, Next};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: count FILE|-");
        std::process::exit(2);
    };
    if let Err(e) = run(&path) {
        eprintln!("count: {e}");
        std::process::exit(1);
    }
}

fn run(path: &str) -> Result<(), CaptureError> {
    let start = Instant::now();
    let mut src = if path == "-" {
        FileSource::from_reader(std::io::stdin(), "<stdin>")?
    } else {
        netmon_capture::open_file(path)?
    };
    let (mut packets, mut captured, mut wire) = (0u64, 0u64, 0u64);
    loop {
        match src.next_packet()? {
            Next::Packet(p) => {
                packets += 1;
                captured += p.data.len() as u64;
                wire += u64::from(p.meta.orig_len);
            }
            Next::Timeout => {}
            Next::End => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{packets} packets, {captured} bytes captured, {wire} bytes on the wire, {} interface(s), {:.3} s, {:.2} Mpps",
        src.interfaces().len(),
        secs,
        packets as f64 / secs.max(1e-9) / 1e6
    );
    Ok(())
}
