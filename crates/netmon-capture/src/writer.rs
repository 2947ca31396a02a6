//! Writing captures: classic pcap ([`PcapWriter`]) and pcapng ([`PcapNgWriter`]).
//!
//! Both write little-endian files that [`FileSource`](crate::FileSource), libpcap, tcpdump and
//! Wireshark read. They write straight to the given [`Write`]; wrap it in a
//! [`BufWriter`] (the `create` constructors do) so each packet is not several system calls.
//!
//! ```
//! use netmon_capture::{LinkType, PcapWriter, Timestamp, TsPrecision};
//!
//! # fn main() -> Result<(), netmon_capture::CaptureError> {
//! let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535, TsPrecision::Nano)?;
//! w.write_packet(Timestamp::from_secs_nanos(1_700_000_000, 5), &[0u8; 60], 60)?;
//! let bytes = w.into_inner()?;
//! assert_eq!(bytes.len(), 24 + 16 + 60);
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::file::MAX_CAPTURE_LEN;
use crate::{CaptureError, LinkType, Timestamp};

/// Timestamp precision of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsPrecision {
    /// Microseconds (magic `a1b2c3d4`): timestamps are truncated to whole microseconds.
    Micro,
    /// Nanoseconds (magic `a1b23c4d`).
    Nano,
}

const DEFAULT_NAME: &str = "<writer>";

fn io_error(name: &str, source: io::Error) -> CaptureError {
    CaptureError::Io {
        path: name.to_owned(),
        source,
    }
}

/// `N` u32s as little-endian bytes (`M` = 4 * `N`).
fn le_words<const N: usize, const M: usize>(words: [u32; N]) -> [u8; M] {
    let mut out = [0u8; M];
    for (dst, w) in out.chunks_exact_mut(4).zip(words) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn check_len(data: &[u8]) -> Result<u32, CaptureError> {
    if data.len() > MAX_CAPTURE_LEN {
        return Err(CaptureError::InvalidArgument(format!(
            "frame of {} bytes exceeds the {MAX_CAPTURE_LEN}-byte record limit",
            data.len()
        )));
    }
    Ok(data.len() as u32)
}

fn check_ts(ts: Timestamp) -> Result<u64, CaptureError> {
    u64::try_from(ts.as_nanos()).map_err(|_| {
        CaptureError::InvalidArgument(format!(
            "timestamp {ts} is before 1970 and cannot be stored"
        ))
    })
}

/// Writes a classic pcap file: a 24-byte file header, then one 16-byte record header plus the
/// frame per packet (layouts in [`crate::file`]).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    name: String,
    precision: TsPrecision,
    snaplen: u32,
    packets: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes the pcap file header.
    pub fn create(
        path: impl AsRef<Path>,
        link_type: LinkType,
        snaplen: u32,
        precision: TsPrecision,
    ) -> Result<Self, CaptureError> {
        let name = path.as_ref().display().to_string();
        let file = File::create(path.as_ref()).map_err(|e| io_error(&name, e))?;
        PcapWriter::with_name(BufWriter::new(file), name, link_type, snaplen, precision)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header (version 2.4, little-endian) to `out`.
    ///
    /// `snaplen` is recorded in the header; frames longer than a non-zero `snaplen` are cut to
    /// it when written (their `orig_len` is kept).
    pub fn new(
        out: W,
        link_type: LinkType,
        snaplen: u32,
        precision: TsPrecision,
    ) -> Result<Self, CaptureError> {
        PcapWriter::with_name(out, DEFAULT_NAME.to_owned(), link_type, snaplen, precision)
    }

    fn with_name(
        mut out: W,
        name: String,
        link_type: LinkType,
        snaplen: u32,
        precision: TsPrecision,
    ) -> Result<Self, CaptureError> {
        let magic: u32 = match precision {
            TsPrecision::Micro => 0xa1b2_c3d4,
            TsPrecision::Nano => 0xa1b2_3c4d,
        };
        // Version 2.4 as two u16s; thiszone and sigfigs 0.
        let version = u32::from_le_bytes([2, 0, 4, 0]);
        let hdr: [u8; 24] = le_words([magic, version, 0, 0, snaplen, link_type.0]);
        out.write_all(&hdr).map_err(|e| io_error(&name, e))?;
        Ok(PcapWriter {
            out,
            name,
            precision,
            snaplen,
            packets: 0,
        })
    }

    /// Appends one frame captured at `ts` that was `orig_len` bytes on the wire.
    ///
    /// Fails (writing nothing) when `ts` is before 1970 or past 2106 (the format's 32-bit
    /// seconds), or when `data` is longer than the 16 MiB record limit.
    pub fn write_packet(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), CaptureError> {
        let mut cap = check_len(data)?;
        if self.snaplen != 0 {
            cap = cap.min(self.snaplen);
        }
        let nanos = check_ts(ts)?;
        let secs = u32::try_from(nanos / 1_000_000_000).map_err(|_| {
            CaptureError::InvalidArgument(format!(
                "timestamp {ts} is past 2106 and cannot be stored in a pcap file"
            ))
        })?;
        let sub = (nanos % 1_000_000_000) as u32;
        let frac = match self.precision {
            TsPrecision::Micro => sub / 1_000,
            TsPrecision::Nano => sub,
        };
        let hdr: [u8; 16] = le_words([secs, frac, cap, orig_len]);
        let body = data.get(..cap as usize).unwrap_or(data);
        self.out
            .write_all(&hdr)
            .and_then(|()| self.out.write_all(body))
            .map_err(|e| io_error(&self.name, e))?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|e| io_error(&self.name, e))
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W, CaptureError> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Writes a pcapng file: one section (little-endian), one interface description block per
/// [`add_interface`](PcapNgWriter::add_interface) with nanosecond timestamps (`if_tsresol` = 9)
/// and its `if_name`, and an enhanced packet block per frame.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    out: W,
    name: String,
    /// Snaplen of each interface added.
    snaplens: Vec<u32>,
    packets: u64,
}

// pcapng option codes and block types used by the writer.
const OPT_ENDOFOPT: u16 = 0;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// Appends an option (code, length, value padded to 32 bits) to `buf`.
fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + pad4(value.len()), 0);
}

#[inline]
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Wraps a block body into a block: type, total length, body, total length.
fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

impl PcapNgWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes the section header block.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let name = path.as_ref().display().to_string();
        let file = File::create(path.as_ref()).map_err(|e| io_error(&name, e))?;
        PcapNgWriter::with_name(BufWriter::new(file), name)
    }
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header block (version 1.0, section length unknown,
    /// `shb_userappl` = "netmon") to `out`.
    pub fn new(out: W) -> Result<Self, CaptureError> {
        PcapNgWriter::with_name(out, DEFAULT_NAME.to_owned())
    }

    fn with_name(mut out: W, name: String) -> Result<Self, CaptureError> {
        let mut body = Vec::with_capacity(40);
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        push_option(&mut body, SHB_USERAPPL, b"netmon");
        push_option(&mut body, OPT_ENDOFOPT, &[]);
        write_block(&mut out, 0x0a0d_0d0a, &body).map_err(|e| io_error(&name, e))?;
        Ok(PcapNgWriter {
            out,
            name,
            snaplens: Vec::new(),
            packets: 0,
        })
    }

    /// Describes a new interface; returns its id for [`write_packet`](PcapNgWriter::write_packet)
    /// (0, 1, ... in order). Fails if `link_type` does not fit pcapng's 16 bits or `name` is
    /// longer than an option can hold.
    pub fn add_interface(
        &mut self,
        name: &str,
        link_type: LinkType,
        snaplen: u32,
    ) -> Result<u32, CaptureError> {
        let lt = u16::try_from(link_type.0).map_err(|_| {
            CaptureError::InvalidArgument(format!(
                "link type {} does not fit a pcapng interface (16 bits)",
                link_type.0
            ))
        })?;
        if name.len() > 0xfff0 {
            return Err(CaptureError::InvalidArgument(format!(
                "interface name of {} bytes is too long",
                name.len()
            )));
        }
        let id = u32::try_from(self.snaplens.len())
            .map_err(|_| CaptureError::InvalidArgument("too many interfaces".to_owned()))?;
        let mut body = Vec::with_capacity(24 + name.len());
        body.extend_from_slice(&lt.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        if !name.is_empty() {
            push_option(&mut body, IF_NAME, name.as_bytes());
        }
        push_option(&mut body, IF_TSRESOL, &[9]);
        push_option(&mut body, OPT_ENDOFOPT, &[]);
        write_block(&mut self.out, 1, &body).map_err(|e| io_error(&self.name, e))?;
        self.snaplens.push(snaplen);
        Ok(id)
    }

    /// Appends one frame captured at `ts` on interface `iface` that was `orig_len` bytes on the
    /// wire. Frames longer than the interface's non-zero snaplen are cut to it.
    ///
    /// Fails (writing nothing) when `iface` was not added, `ts` is before 1970, or `data` is
    /// longer than the 16 MiB record limit.
    pub fn write_packet(
        &mut self,
        ts: Timestamp,
        iface: u32,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), CaptureError> {
        self.write_packet_dir(ts, iface, data, orig_len, crate::Direction::Unknown)
    }

    /// [`write_packet`](PcapNgWriter::write_packet) for a frame whose direction is known: an
    /// `epb_flags` option records it (bits 0-1: 1 inbound, 2 outbound), as tshark shows in
    /// `frame.packet_flags_direction` and [`crate::FileSource`] reads back.
    pub fn write_packet_dir(
        &mut self,
        ts: Timestamp,
        iface: u32,
        data: &[u8],
        orig_len: u32,
        direction: crate::Direction,
    ) -> Result<(), CaptureError> {
        let Some(&snaplen) = self.snaplens.get(iface as usize) else {
            return Err(CaptureError::InvalidArgument(format!(
                "interface {iface} was not added (the writer has {})",
                self.snaplens.len()
            )));
        };
        let mut cap = check_len(data)?;
        if snaplen != 0 {
            cap = cap.min(snaplen);
        }
        let nanos = check_ts(ts)?;
        let pad = pad4(cap as usize);
        // epb_flags (code 2, 4 bytes) and opt_endofopt: 12 bytes of options.
        let flags: u32 = match direction {
            crate::Direction::Unknown => 0,
            crate::Direction::Inbound => 1,
            crate::Direction::Outbound => 2,
        };
        let opts: &[u8] = if flags == 0 {
            &[]
        } else {
            &[2, 0, 4, 0, flags as u8, 0, 0, 0, 0, 0, 0, 0]
        };
        let total = 32 + cap + pad as u32 + opts.len() as u32;
        let hdr: [u8; 28] = le_words([
            6,
            total,
            iface,
            (nanos >> 32) as u32,
            nanos as u32,
            cap,
            orig_len,
        ]);
        let body = data.get(..cap as usize).unwrap_or(data);
        let padding = [0u8; 3];
        self.out
            .write_all(&hdr)
            .and_then(|()| self.out.write_all(body))
            .and_then(|()| self.out.write_all(padding.get(..pad).unwrap_or(&[])))
            .and_then(|()| self.out.write_all(opts))
            .and_then(|()| self.out.write_all(&total.to_le_bytes()))
            .map_err(|e| io_error(&self.name, e))?;
        self.packets += 1;
        Ok(())
    }

    /// Number of interfaces added.
    pub fn interface_count(&self) -> u32 {
        self.snaplens.len() as u32
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|e| io_error(&self.name, e))
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W, CaptureError> {
        self.flush()?;
        Ok(self.out)
    }
}
