//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{self, Read};
use std::path::PathBuf;

use netmon_capture::{CaptureError, CaptureSource, FileSource, LinkType, Next, Timestamp};

/// Path of a committed fixture.
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures")).join(name)
}

pub(crate) fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{}: {e}", fixture(name).display()))
}

/// An owned copy of one yielded packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pkt {
    pub(crate) ts: Timestamp,
    pub(crate) iface: u32,
    pub(crate) iface_name: Option<String>,
    pub(crate) link_type: LinkType,
    pub(crate) cap_len: u32,
    pub(crate) orig_len: u32,
    pub(crate) data: Vec<u8>,
}

/// Reads `src` to the end (or its first error), checking the lending invariants on the way.
/// Bounded, so a source that never ends fails the test instead of hanging it.
pub(crate) fn drain(src: &mut dyn CaptureSource) -> (Vec<Pkt>, Option<CaptureError>) {
    let mut out = Vec::new();
    for _ in 0..10_000_000 {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                assert_eq!(p.data.len(), p.meta.cap_len as usize);
                out.push(Pkt {
                    ts: p.meta.ts,
                    iface: p.meta.iface,
                    iface_name: p.meta.iface_name.map(str::to_owned),
                    link_type: p.meta.link_type,
                    cap_len: p.meta.cap_len,
                    orig_len: p.meta.orig_len,
                    data: p.data.to_vec(),
                });
            }
            Ok(Next::Timeout) => panic!("a file source never times out"),
            Ok(Next::End) => {
                // Finished sources stay finished.
                assert!(matches!(src.next_packet(), Ok(Next::End)));
                return (out, None);
            }
            Err(e) => {
                assert!(
                    matches!(src.next_packet(), Ok(Next::End)),
                    "a source must end after an error"
                );
                return (out, Some(e));
            }
        }
    }
    panic!("source did not end");
}

/// A reader that returns at most `chunk` bytes per call (like a pipe), to exercise refills.
pub(crate) struct Chunked {
    pub(crate) data: Vec<u8>,
    pub(crate) pos: usize,
    pub(crate) chunk: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

pub(crate) fn from_bytes(data: Vec<u8>, chunk: usize) -> Result<FileSource, CaptureError> {
    FileSource::from_reader(
        Chunked {
            data,
            pos: 0,
            chunk,
        },
        "<memory>",
    )
}

pub(crate) fn ts(secs: i64, nanos: u32) -> Timestamp {
    Timestamp::from_secs_nanos(secs, nanos)
}
