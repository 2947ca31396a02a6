//! Capture-file replay: classic pcap and pcapng, streamed from any [`Read`] in constant memory.
//!
//! [`open_file`] (or [`FileSource::from_reader`] for stdin and tests) sniffs the format from the
//! magic number and returns a [`FileSource`], a [`CaptureSource`] that yields every frame of the
//! file in order. The file is read through one cache-sized buffer ([`READ_BUFFER_SIZE`]), grown
//! only when a single record is larger, up to [`MAX_RECORD_SIZE`]; frames are lent straight out
//! of that buffer, so replaying a multi-gigabyte file allocates nothing per packet.
//!
//! Container parsing: the pcap file header and the pcapng section header, interface description
//! and interface statistics blocks are decoded by the `pcap-parser` crate. The per-packet records
//! (classic pcap records, pcapng EPB/SPB/PB) have fixed layouts and are walked here: that is the
//! hot path, and `pcap-parser`'s packet-block parsers collect options into a `Vec` (an
//! allocation per packet) and report a corrupt block as "incomplete" when its inner lengths
//! disagree. Option values are decoded here in the section's byte order.
//!
//! Errors are precise: a file that is not a capture shows its first bytes in hex, a truncated
//! file reports how many complete packets preceded the cut (after yielding all of them), a
//! corrupt record gives its file offset. After any error the source is finished.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use pcap_parser::PcapNGOption;

use crate::{
    CaptureError, CaptureSource, CaptureStats, Direction, Interface, LinkType, Next, PacketMeta,
    RawPacket, StopHandle, Timestamp,
};

/// Size of the read buffer. A cache-sized buffer measured twice as fast as both an 8 MiB buffer
/// and `mmap` for a record walk (see the project's BENCHMARKS.md).
pub const READ_BUFFER_SIZE: usize = 256 * 1024;

/// Largest captured length accepted for one frame (16 MiB); a record claiming more is corrupt.
pub const MAX_CAPTURE_LEN: usize = 16 * 1024 * 1024;

/// Largest record (pcap record header + frame, or a whole pcapng block with its options) the
/// buffer grows to hold: [`MAX_CAPTURE_LEN`] plus 64 KiB for headers and options.
pub const MAX_RECORD_SIZE: usize = MAX_CAPTURE_LEN + 64 * 1024;

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Classic libpcap format (magic `a1b2c3d4` or `a1b23c4d`).
    Pcap,
    /// pcapng (section header block `0a0d0d0a`).
    PcapNg,
}

/// Byte order of a capture file's integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Little-endian (the file was written on x86, ARM, ...).
    Little,
    /// Big-endian (written on SPARC, PowerPC, MIPS, ... or by a tool choosing network order).
    Big,
}

impl ByteOrder {
    #[inline]
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        }
    }

    #[inline]
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }

    #[inline]
    fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            ByteOrder::Little => u64::from_le_bytes(b),
            ByteOrder::Big => u64::from_be_bytes(b),
        }
    }
}

/// Timestamp resolution of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsResolution {
    /// Microseconds (classic pcap magic `a1b2c3d4`).
    Micro,
    /// Nanoseconds (classic pcap magic `a1b23c4d`).
    Nano,
    /// Set per interface (pcapng `if_tsresol`; microseconds when absent).
    PerInterface,
}

/// File-level facts about a capture, known once it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileInfo {
    /// pcap or pcapng.
    pub format: FileFormat,
    /// Byte order of the file (for pcapng: of its first section; later sections may differ).
    pub byte_order: ByteOrder,
    /// Timestamp resolution.
    pub ts_resolution: TsResolution,
}

/// Opens a pcap or pcapng file for replay.
///
/// Reads the file header at once: a file that is not a capture, a classic pcap with a link type
/// netmon cannot parse, or an I/O failure is reported here.
pub fn open_file(path: impl AsRef<Path>) -> Result<FileSource, CaptureError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io_err = |source| CaptureError::Io {
        path: name.clone(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let total = file.metadata().map_err(io_err)?.len();
    FileSource::open(Box::new(file), name, Some(total))
}

/// The read buffer: `buf[start..end]` holds file bytes not yet consumed; `buf[0]` is at file
/// offset `base`.
struct Buffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: u64,
    eof: bool,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            buf: vec![0; READ_BUFFER_SIZE],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// The unconsumed bytes.
    #[inline]
    fn avail(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    #[inline]
    fn avail_len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// File offset of the first unconsumed byte.
    #[inline]
    fn offset(&self) -> u64 {
        self.base.saturating_add(self.start as u64)
    }

    /// Marks `n` bytes consumed. The bytes stay in place until the next [`Buffer::fill`], so a
    /// frame lent out of them stays valid until the caller asks for the next one.
    #[inline]
    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Makes at least `n` bytes available (`n <= MAX_RECORD_SIZE`), reading as much as fits.
    /// `Ok(false)`: the input ended first.
    #[inline]
    fn fill(&mut self, reader: &mut dyn Read, n: usize) -> io::Result<bool> {
        if self.avail_len() >= n {
            return Ok(true);
        }
        self.fill_slow(reader, n)
    }

    #[cold]
    fn fill_slow(&mut self, reader: &mut dyn Read, n: usize) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // Move the partial record to the front so one read can fill the rest of the buffer.
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base = self.base.saturating_add(self.start as u64);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < n {
            // Grow for one large record only; callers cap `n` at MAX_RECORD_SIZE.
            let new_len = n
                .checked_next_power_of_two()
                .unwrap_or(n)
                .min(MAX_RECORD_SIZE)
                .max(n);
            self.buf.resize(new_len, 0);
        }
        while self.avail_len() < n {
            let space = match self.buf.get_mut(self.end..) {
                Some(s) if !s.is_empty() => s,
                _ => return Ok(false),
            };
            let space_len = space.len();
            match reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                // A misbehaving reader may claim more than it was given; never trust it.
                Ok(k) => self.end += k.min(space_len),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// How one pcapng interface's raw 64-bit timestamps become nanoseconds.
#[derive(Clone, Copy, Debug)]
enum TsScale {
    /// Units of 10^-k s with k <= 9: multiply by 10^(9-k).
    Mul(u64),
    /// Units of 10^-k s with k > 9: divide by 10^(k-9).
    Div(u64),
    /// Units of 2^-k s: nanos = raw * 10^9 >> k.
    Shift(u32),
}

#[derive(Clone, Copy, Debug)]
struct TsConv {
    scale: TsScale,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_secs: i64,
}

impl TsConv {
    const MICROS: TsConv = TsConv {
        scale: TsScale::Mul(1_000),
        offset_secs: 0,
    };

    /// From an `if_tsresol` byte: the most significant bit selects a power of 2 (set) or of 10
    /// (clear); the rest is the negative exponent. `None` when the unit does not fit in a u64.
    fn from_tsresol(v: u8, offset_secs: i64) -> Option<TsConv> {
        let k = u32::from(v & 0x7f);
        let scale = if v & 0x80 != 0 {
            if k > 63 {
                return None;
            }
            TsScale::Shift(k)
        } else if k <= 9 {
            TsScale::Mul(10u64.pow(9 - k))
        } else if k <= 19 {
            TsScale::Div(10u64.pow(k - 9))
        } else {
            return None;
        };
        Some(TsConv { scale, offset_secs })
    }

    #[inline]
    fn convert(self, raw: u64) -> Timestamp {
        let nanos: i128 = match self.scale {
            TsScale::Mul(m) => i128::from(raw) * i128::from(m),
            TsScale::Div(d) => i128::from(raw / d.max(1)),
            TsScale::Shift(k) => ((u128::from(raw) * 1_000_000_000) >> k) as i128,
        };
        let total = nanos + i128::from(self.offset_secs) * 1_000_000_000;
        Timestamp::from_nanos(total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

/// What the source knows about one interface beyond the public [`Interface`].
#[derive(Clone, Copy, Debug)]
struct IfState {
    ts: TsConv,
    /// Whether the interface has a real name (`if_name`), as opposed to a synthetic `if<N>`.
    named: bool,
    /// Latest `isb_ifdrop` seen for this interface.
    ifdrop: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Pcap {
        order: ByteOrder,
        nanos: bool,
    },
    PcapNg {
        order: ByteOrder,
        section_base: usize,
    },
}

/// Where the next frame lies in the buffer, and its metadata (no borrow, so the block loop can
/// mutate the source freely before the frame is lent out).
#[derive(Clone, Copy, Debug)]
struct Loc {
    direction: Direction,
    data_start: usize,
    cap_len: u32,
    orig_len: u32,
    ts: Timestamp,
    iface: usize,
}

/// A capture file being replayed: classic pcap or pcapng, from a file, stdin or any reader.
///
/// Implements [`CaptureSource`]; see the [module docs](self).
pub struct FileSource {
    name: String,
    reader: Box<dyn Read + Send>,
    buf: Buffer,
    total: Option<u64>,
    info: FileInfo,
    format: Format,
    interfaces: Vec<Interface>,
    if_state: Vec<IfState>,
    stats: CaptureStats,
    stop: StopHandle,
    done: bool,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("name", &self.name)
            .field("info", &self.info)
            .field("offset", &self.buf.offset())
            .field("total", &self.total)
            .field("interfaces", &self.interfaces)
            .field("stats", &self.stats)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

// Magic numbers as they appear in the file.
const PCAP_US_LE: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
const PCAP_US_BE: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
const PCAP_NS_LE: [u8; 4] = [0x4d, 0x3c, 0xb2, 0xa1];
const PCAP_NS_BE: [u8; 4] = [0xa1, 0xb2, 0x3c, 0x4d];
const PCAP_MODIFIED_LE: [u8; 4] = [0x34, 0xcd, 0xb2, 0xa1];
const PCAP_MODIFIED_BE: [u8; 4] = [0xa1, 0xb2, 0xcd, 0x34];
const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BOM_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];
const BOM_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];

// pcapng block types.
const BT_IDB: u32 = 0x0000_0001;
const BT_PB: u32 = 0x0000_0002;
const BT_SPB: u32 = 0x0000_0003;
const BT_ISB: u32 = 0x0000_0005;
const BT_EPB: u32 = 0x0000_0006;
const BT_SHB: u32 = 0x0a0d_0d0a;

// Option codes.
const OPT_ENDOFOPT: u16 = 0;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
const ISB_IFDROP: u16 = 5;

/// Classic pcap file header and record header sizes.
const PCAP_FILE_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;

#[inline]
fn arr<const N: usize>(s: &[u8], off: usize) -> Option<[u8; N]> {
    s.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// Bytes of padding after `len` bytes to the next 32-bit boundary.
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

fn hex_prefix(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "none, the file is empty".to_owned();
    }
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl FileSource {
    /// Replays a capture read from `reader` (stdin, a socket, an in-memory buffer, ...).
    ///
    /// `name` identifies the input in error messages (e.g. `"<stdin>"`). The file header is read
    /// at once; errors are the same as [`open_file`]'s. The total size is unknown.
    pub fn from_reader(
        reader: impl Read + Send + 'static,
        name: &str,
    ) -> Result<FileSource, CaptureError> {
        FileSource::open(Box::new(reader), name.to_owned(), None)
    }

    fn open(
        reader: Box<dyn Read + Send>,
        name: String,
        total: Option<u64>,
    ) -> Result<FileSource, CaptureError> {
        let mut src = FileSource {
            name,
            reader,
            buf: Buffer::new(),
            total,
            info: FileInfo {
                format: FileFormat::Pcap,
                byte_order: ByteOrder::Little,
                ts_resolution: TsResolution::Micro,
            },
            format: Format::Pcap {
                order: ByteOrder::Little,
                nanos: false,
            },
            interfaces: Vec::new(),
            if_state: Vec::new(),
            stats: CaptureStats::default(),
            stop: StopHandle::new(),
            done: false,
        };
        // 16 bytes are enough to recognise anything and to show the user something useful.
        src.fill(16)?;
        let magic: [u8; 4] = match arr(src.buf.avail(), 0) {
            Some(m) => m,
            None => return Err(src.not_a_capture()),
        };
        match magic {
            PCAP_US_LE | PCAP_US_BE | PCAP_NS_LE | PCAP_NS_BE => src.open_pcap()?,
            SHB_TYPE => src.open_pcapng()?,
            PCAP_MODIFIED_LE | PCAP_MODIFIED_BE => {
                return Err(CaptureError::Unsupported(format!(
                    "{}: the \"modified\" (Kuznetzov) pcap format (magic a1b2cd34) is not supported; convert it with editcap",
                    src.name
                )));
            }
            _ => return Err(src.not_a_capture()),
        }
        Ok(src)
    }

    // The pcap file header (libpcap's pcap-savefile(5)), in the writer's byte order:
    //
    //  0                   1                   2                   3
    //  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |                          Magic Number                         |  a1b2c3d4 us / a1b23c4d ns
    // |          Major Version        |         Minor Version         |  2.4
    // |                           Reserved1 (thiszone)                |
    // |                           Reserved2 (sigfigs)                 |
    // |                            SnapLen                            |
    // | FCS |f|0 0 0 0 0 0 0 0 0 0 0 0|         LinkType              |
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    fn open_pcap(&mut self) -> Result<(), CaptureError> {
        if !self.fill(PCAP_FILE_HEADER_LEN)? {
            return Err(self.truncated());
        }
        let hdr = match pcap_parser::parse_pcap_header(self.buf.avail()) {
            Ok((_, h)) => h,
            Err(_) => return Err(self.corrupt(0, "unreadable pcap file header")),
        };
        let order = if hdr.is_bigendian() {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        let nanos = hdr.is_nanosecond_precision();
        // The upper 16 bits of the link-type field carry FCS flags (libpcap's LT_LINKTYPE).
        let link_type = LinkType(hdr.network.0 as u32 & 0xffff);
        if !link_type.is_supported() {
            return Err(CaptureError::UnsupportedLinkType {
                path: self.name.clone(),
                link_type,
            });
        }
        self.buf.consume(PCAP_FILE_HEADER_LEN);
        self.info = FileInfo {
            format: FileFormat::Pcap,
            byte_order: order,
            ts_resolution: if nanos {
                TsResolution::Nano
            } else {
                TsResolution::Micro
            },
        };
        self.format = Format::Pcap { order, nanos };
        self.interfaces.push(Interface {
            name: "if0".to_owned(),
            description: None,
            link_type,
            snaplen: hdr.snaplen,
        });
        self.if_state.push(IfState {
            ts: TsConv::MICROS,
            named: false,
            ifdrop: None,
        });
        Ok(())
    }

    fn open_pcapng(&mut self) -> Result<(), CaptureError> {
        if !self.fill(12)? {
            return Err(self.truncated());
        }
        let order = match arr(self.buf.avail(), 8) {
            Some(BOM_LE) => ByteOrder::Little,
            Some(BOM_BE) => ByteOrder::Big,
            _ => return Err(self.corrupt(8, "bad pcapng byte-order magic")),
        };
        self.info = FileInfo {
            format: FileFormat::PcapNg,
            byte_order: order,
            ts_resolution: TsResolution::PerInterface,
        };
        // The section header itself is read by the block loop like every later one.
        self.format = Format::PcapNg {
            order,
            section_base: 0,
        };
        Ok(())
    }

    /// The name given at open (the path for [`open_file`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Format, byte order and timestamp resolution of the file.
    pub fn info(&self) -> FileInfo {
        self.info
    }

    /// Bytes of the input consumed so far: the file offset just past the last record returned.
    /// With [`total_bytes`](FileSource::total_bytes) this drives a progress bar.
    pub fn bytes_consumed(&self) -> u64 {
        self.buf.offset()
    }

    /// The size of the input when known (a regular file opened by [`open_file`]).
    pub fn total_bytes(&self) -> Option<u64> {
        self.total
    }

    fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        match self.buf.fill(&mut *self.reader, n) {
            Ok(b) => Ok(b),
            Err(source) => Err(CaptureError::Io {
                path: self.name.clone(),
                source,
            }),
        }
    }

    fn not_a_capture(&self) -> CaptureError {
        let a = self.buf.avail();
        CaptureError::NotACapture {
            path: self.name.clone(),
            magic: hex_prefix(a.get(..16).unwrap_or(a)),
        }
    }

    fn truncated(&self) -> CaptureError {
        CaptureError::Truncated {
            path: self.name.clone(),
            packets: self.stats.packets,
        }
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> CaptureError {
        CaptureError::Corrupt {
            path: self.name.clone(),
            offset,
            reason: reason.into(),
            packets: self.stats.packets,
        }
    }

    /// At the end of input: clean end on a record boundary, truncation otherwise.
    fn end_or_truncated(&self) -> Result<Option<Loc>, CaptureError> {
        if self.buf.avail_len() == 0 {
            Ok(None)
        } else {
            Err(self.truncated())
        }
    }

    // A classic pcap record:
    //
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |                      Timestamp (Seconds)                      |
    // |            Timestamp (Microseconds or nanoseconds)            |
    // |                    Captured Packet Length                     |
    // |                    Original Packet Length                     |
    // /                          Packet Data                          /  Captured Packet Length bytes
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //
    // Records are split by pcap-parser's `parse_pcap_frame{,_be}` when one lies whole in the
    // buffer (the hot path); otherwise the record header is read here to refill, grow or report.
    #[inline]
    fn next_pcap(&mut self, order: ByteOrder, nanos: bool) -> Result<Option<Loc>, CaptureError> {
        // A complete record needs at most two refills (header, then body); a third round
        // cannot happen, but the bound keeps the loop finite whatever the buffer does.
        for _ in 0..3 {
            let a = self.buf.avail();
            let parsed = match order {
                ByteOrder::Little => pcap_parser::parse_pcap_frame(a),
                ByteOrder::Big => pcap_parser::parse_pcap_frame_be(a),
            };
            match parsed {
                Ok((rest, rec)) if rec.caplen as usize <= MAX_CAPTURE_LEN => {
                    let rec_len = a.len() - rest.len();
                    let frac_nanos = if nanos {
                        i64::from(rec.ts_usec)
                    } else {
                        i64::from(rec.ts_usec) * 1_000
                    };
                    let loc = Loc {
                        direction: Direction::Unknown,
                        data_start: self.buf.start + PCAP_RECORD_HEADER_LEN,
                        cap_len: rec.caplen,
                        orig_len: rec.origlen,
                        // u32 seconds * 1e9 + u32 * 1e3 stays far below i64::MAX.
                        ts: Timestamp::from_nanos(
                            i64::from(rec.ts_sec) * 1_000_000_000 + frac_nanos,
                        ),
                        iface: 0,
                    };
                    self.buf.consume(rec_len);
                    return Ok(Some(loc));
                }
                Ok(_) | Err(pcap_parser::nom::Err::Incomplete(_)) => {}
                Err(_) => return Err(self.corrupt(self.buf.offset(), "unreadable record")),
            }
            // The record is not whole in the buffer (or too large): read its length.
            if !self.fill(PCAP_RECORD_HEADER_LEN)? {
                return self.end_or_truncated();
            }
            let Some(cap) = arr(self.buf.avail(), 8).map(|b| order.u32(b)) else {
                return self.end_or_truncated();
            };
            if cap as usize > MAX_CAPTURE_LEN {
                return Err(self.corrupt(
                    self.buf.offset(),
                    format!("record claims {cap} captured bytes (limit {MAX_CAPTURE_LEN})"),
                ));
            }
            if !self.fill(PCAP_RECORD_HEADER_LEN + cap as usize)? {
                return Err(self.truncated());
            }
        }
        Err(self.corrupt(self.buf.offset(), "internal: record not decodable"))
    }

    // A pcapng block (draft-ietf-opsawg-pcapng), in its section's byte order:
    //
    //  0                   1                   2                   3
    //  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    // +---------------------------------------------------------------+
    // |                          Block Type                           |
    // +---------------------------------------------------------------+
    // |                      Block Total Length                       |  multiple of 4, >= 12
    // +---------------------------------------------------------------+
    // /                          Block Body                           /
    // +---------------------------------------------------------------+
    // |                      Block Total Length                       |
    // +---------------------------------------------------------------+
    fn next_pcapng(&mut self) -> Result<Option<Loc>, CaptureError> {
        loop {
            let off = self.buf.offset();
            if !self.fill(12)? {
                return self.end_or_truncated();
            }
            let Format::PcapNg {
                mut order,
                section_base,
            } = self.format
            else {
                return Ok(None);
            };
            let head = self.buf.avail();
            let (Some(type_bytes), Some(len_bytes)) = (arr::<4>(head, 0), arr::<4>(head, 4)) else {
                return self.end_or_truncated();
            };
            if type_bytes == SHB_TYPE {
                // A new section may switch byte order: its byte-order magic says which.
                order = match arr(head, 8) {
                    Some(BOM_LE) => ByteOrder::Little,
                    Some(BOM_BE) => ByteOrder::Big,
                    _ => return Err(self.corrupt(off + 8, "bad pcapng byte-order magic")),
                };
            }
            let block_type = order.u32(type_bytes);
            let block_len32 = order.u32(len_bytes);
            let block_len = block_len32 as usize;
            if block_len < 12 || block_len % 4 != 0 || block_len > MAX_RECORD_SIZE {
                return Err(self.corrupt(
                    off,
                    format!("block type {block_type:#x} has an invalid length {block_len32}"),
                ));
            }
            if !self.fill(block_len)? {
                return Err(self.truncated());
            }
            let start = self.buf.start;
            let block = self.buf.avail().get(..block_len).unwrap_or(&[]);
            if arr(block, block_len - 4).map(|b| order.u32(b)) != Some(block_len32) {
                return Err(self.corrupt(
                    off,
                    format!(
                        "block type {block_type:#x}: trailing length differs from the leading {block_len32}"
                    ),
                ));
            }
            match block_type {
                BT_EPB | BT_PB => {
                    let loc =
                        self.packet_block(block_type, block, start, off, order, section_base)?;
                    self.buf.consume(block_len);
                    return Ok(Some(loc));
                }
                BT_SPB => {
                    let loc = self.simple_packet_block(block, start, off, order, section_base)?;
                    self.buf.consume(block_len);
                    return Ok(Some(loc));
                }
                BT_SHB => {
                    self.section_header(block, off)?;
                    // Interface ids restart at 0 in every section; ours keep counting.
                    self.format = Format::PcapNg {
                        order,
                        section_base: self.interfaces.len(),
                    };
                }
                BT_IDB => {
                    let (iface, state) = self.interface_description(block, off, order)?;
                    self.interfaces.push(iface);
                    self.if_state.push(state);
                }
                BT_ISB => {
                    if let Some((global, drop)) =
                        self.interface_statistics(block, order, section_base)
                    {
                        if let Some(state) = self.if_state.get_mut(global) {
                            // Counters are cumulative: the latest block wins.
                            state.ifdrop = Some(drop);
                        }
                    }
                }
                // Name resolution, decryption secrets, custom and unknown blocks: not ours.
                _ => {}
            }
            self.buf.consume(block_len);
        }
    }

    // Enhanced Packet Block (type 6) and the obsolete Packet Block (type 2):
    //
    // +---------------------------------------------------------------+
    // |                    Block Type = 6 (or 2)                      |
    // |                      Block Total Length                       |
    // |                         Interface ID                          |  PB: u16 interface ID, u16 drops count
    // |                        Timestamp (High)                       |
    // |                        Timestamp (Low)                        |
    // |                    Captured Packet Length                     |
    // |                    Original Packet Length                     |
    // /                          Packet Data                          /  padded to 32 bits
    // /                      Options (variable)                       /
    // |                      Block Total Length                       |
    // +---------------------------------------------------------------+
    #[inline]
    fn packet_block(
        &self,
        block_type: u32,
        block: &[u8],
        start: usize,
        off: u64,
        order: ByteOrder,
        section_base: usize,
    ) -> Result<Loc, CaptureError> {
        let what = if block_type == BT_EPB {
            "enhanced packet block"
        } else {
            "packet block"
        };
        let (Some(id), Some(hi), Some(lo), Some(cap), Some(orig)) = (
            arr(block, 8),
            arr(block, 12).map(|b| order.u32(b)),
            arr(block, 16).map(|b| order.u32(b)),
            arr(block, 20).map(|b| order.u32(b)),
            arr(block, 24).map(|b| order.u32(b)),
        ) else {
            return Err(self.corrupt(off, format!("{what} shorter than its 32-byte minimum")));
        };
        if block.len() < 32 {
            return Err(self.corrupt(off, format!("{what} shorter than its 32-byte minimum")));
        }
        let if_id = if block_type == BT_EPB {
            order.u32(id)
        } else {
            let [a, b, _, _] = id;
            u32::from(order.u16([a, b]))
        };
        if cap as usize > block.len() - 32 {
            return Err(self.corrupt(
                off,
                format!(
                    "{what} claims {cap} captured bytes but holds {}",
                    block.len() - 32
                ),
            ));
        }
        let iface = self.section_iface(if_id, section_base, off, what)?;
        let raw = (u64::from(hi) << 32) | u64::from(lo);
        let ts = self
            .if_state
            .get(iface)
            .map_or(Timestamp::EPOCH, |s| s.ts.convert(raw));
        let direction = if block_type == BT_EPB {
            epb_direction(block, cap, order)
        } else {
            Direction::Unknown
        };
        Ok(Loc {
            direction,
            data_start: start + 28,
            cap_len: cap,
            orig_len: orig,
            ts,
            iface,
        })
    }

    // Simple Packet Block (type 3), always on the section's interface 0, without a timestamp:
    //
    // +---------------------------------------------------------------+
    // |                        Block Type = 3                         |
    // |                      Block Total Length                       |
    // |                    Original Packet Length                     |
    // /                          Packet Data                          /  padded to 32 bits
    // |                      Block Total Length                       |
    // +---------------------------------------------------------------+
    //
    // The captured length is the smallest of the original length, the interface's snaplen and
    // the room in the block. Like Wireshark, the frame gets the epoch as its timestamp.
    fn simple_packet_block(
        &self,
        block: &[u8],
        start: usize,
        off: u64,
        order: ByteOrder,
        section_base: usize,
    ) -> Result<Loc, CaptureError> {
        let Some(orig) = arr(block, 8).map(|b| order.u32(b)) else {
            return Err(self.corrupt(off, "simple packet block shorter than 16 bytes"));
        };
        let room = block.len().saturating_sub(16);
        let iface = self.section_iface(0, section_base, off, "simple packet block")?;
        let snaplen = self.interfaces.get(iface).map_or(0, |i| i.snaplen);
        let mut cap = room.min(orig as usize);
        if snaplen != 0 {
            cap = cap.min(snaplen as usize);
        }
        Ok(Loc {
            direction: Direction::Unknown,
            data_start: start + 12,
            cap_len: cap as u32,
            orig_len: orig,
            ts: Timestamp::EPOCH,
            iface,
        })
    }

    /// The global interface index of a section-relative interface id.
    fn section_iface(
        &self,
        if_id: u32,
        section_base: usize,
        off: u64,
        what: &str,
    ) -> Result<usize, CaptureError> {
        let global = section_base.saturating_add(if_id as usize);
        if global < self.interfaces.len() {
            Ok(global)
        } else {
            Err(self.corrupt(
                off,
                format!(
                    "{what} refers to interface {if_id}, but its section describes {}",
                    self.interfaces.len() - section_base.min(self.interfaces.len())
                ),
            ))
        }
    }

    // Section Header Block (decoded by pcap-parser):
    //
    // +---------------------------------------------------------------+
    // |                   Block Type = 0x0A0D0D0A                     |
    // |                      Block Total Length                       |
    // |                      Byte-Order Magic = 0x1A2B3C4D            |
    // |          Major Version        |         Minor Version         |  1.0
    // |                          Section Length (64 bits, -1 = unknown)|
    // /                      Options (variable)                       /
    // |                      Block Total Length                       |
    // +---------------------------------------------------------------+
    fn section_header(&self, block: &[u8], off: u64) -> Result<(), CaptureError> {
        let shb = match pcap_parser::parse_sectionheaderblock(block) {
            Ok((_, shb)) => shb,
            Err(_) => return Err(self.corrupt(off, "malformed section header block")),
        };
        if shb.major_version != 1 {
            return Err(self.corrupt(
                off,
                format!(
                    "unsupported pcapng version {}.{}",
                    shb.major_version, shb.minor_version
                ),
            ));
        }
        Ok(())
    }

    // Interface Description Block (decoded by pcap-parser; option values decoded here in the
    // section's byte order):
    //
    // +---------------------------------------------------------------+
    // |                    Block Type = 0x00000001                    |
    // |                      Block Total Length                       |
    // |           LinkType            |           Reserved            |
    // |                            SnapLen                            |
    // /                      Options (variable)                       /  if_name 2, if_description 3,
    // |                      Block Total Length                       |  if_tsresol 9, if_tsoffset 14
    // +---------------------------------------------------------------+
    fn interface_description(
        &self,
        block: &[u8],
        off: u64,
        order: ByteOrder,
    ) -> Result<(Interface, IfState), CaptureError> {
        let parsed = match order {
            ByteOrder::Little => pcap_parser::parse_interfacedescriptionblock_le(block),
            ByteOrder::Big => pcap_parser::parse_interfacedescriptionblock_be(block),
        };
        let idb = match parsed {
            Ok((_, idb)) => idb,
            Err(_) => return Err(self.corrupt(off, "malformed interface description block")),
        };
        let link_type = LinkType(u32::from(arr(block, 8).map_or(0, |b| order.u16(b))));
        let index = self.interfaces.len();
        let mut name = None;
        let mut description = None;
        let mut tsresol = 6u8;
        let mut tsoffset = 0i64;
        for opt in options(&idb.options) {
            let Ok(v) = opt.as_bytes() else { continue };
            match opt.code.0 {
                IF_NAME if name.is_none() => name = Some(String::from_utf8_lossy(v).into_owned()),
                IF_DESCRIPTION if description.is_none() => {
                    description = Some(String::from_utf8_lossy(v).into_owned());
                }
                IF_TSRESOL => {
                    if let Some(&r) = v.first() {
                        tsresol = r;
                    }
                }
                IF_TSOFFSET => {
                    if let Some(b) = arr(v, 0) {
                        tsoffset = order.u64(b) as i64;
                    }
                }
                _ => {}
            }
        }
        let Some(ts) = TsConv::from_tsresol(tsresol, tsoffset) else {
            return Err(self.corrupt(
                off,
                format!("interface {index}: if_tsresol {tsresol:#x} is out of range"),
            ));
        };
        let state = IfState {
            ts,
            named: name.is_some(),
            ifdrop: None,
        };
        let iface = Interface {
            name: name.unwrap_or_else(|| format!("if{index}")),
            description,
            link_type,
            snaplen: arr(block, 12).map_or(0, |b| order.u32(b)),
        };
        Ok((iface, state))
    }

    // Interface Statistics Block (decoded by pcap-parser); only isb_ifdrop (5) is used:
    //
    // +---------------------------------------------------------------+
    // |                    Block Type = 0x00000005                    |
    // |                      Block Total Length                       |
    // |                         Interface ID                          |
    // |                        Timestamp (High)                       |
    // |                        Timestamp (Low)                        |
    // /                      Options (variable)                       /
    // |                      Block Total Length                       |
    // +---------------------------------------------------------------+
    //
    // Statistics are informational: a malformed ISB is skipped, not an error. Returns the global
    // interface index and its isb_ifdrop.
    fn interface_statistics(
        &self,
        block: &[u8],
        order: ByteOrder,
        section_base: usize,
    ) -> Option<(usize, u64)> {
        let parsed = match order {
            ByteOrder::Little => pcap_parser::parse_interfacestatisticsblock_le(block),
            ByteOrder::Big => pcap_parser::parse_interfacestatisticsblock_be(block),
        };
        let (_, isb) = parsed.ok()?;
        let global = section_base.saturating_add(isb.if_id as usize);
        let drop = options(&isb.options)
            .filter(|o| o.code.0 == ISB_IFDROP)
            .find_map(|o| o.as_bytes().ok().and_then(|v| arr(v, 0)))
            .map(|b| order.u64(b))?;
        Some((global, drop))
    }
}

/// The direction an EPB's `epb_flags` option (code 2, a 32-bit word; bits 0-1: 1 inbound, 2
/// outbound) gives, walking the options after the padded packet data. `Unknown` without the
/// option or when the options are malformed (the packet itself is still good).
fn epb_direction(block: &[u8], cap: u32, order: ByteOrder) -> Direction {
    let Some(mut at) = (cap as usize).checked_add(28 + pad4(cap as usize)) else {
        return Direction::Unknown;
    };
    let end = block.len().saturating_sub(4);
    while at + 4 <= end {
        let (Some(code), Some(len)) = (arr::<2>(block, at), arr::<2>(block, at + 2)) else {
            break;
        };
        let (code, len) = (
            order.u16([code[0], code[1]]),
            usize::from(order.u16([len[0], len[1]])),
        );
        if code == 0 {
            break;
        }
        if code == 2 && len == 4 {
            return match arr::<4>(block, at + 4).map(|b| order.u32(b) & 3) {
                Some(1) => Direction::Inbound,
                Some(2) => Direction::Outbound,
                _ => Direction::Unknown,
            };
        }
        at += 4 + len + pad4(len);
    }
    Direction::Unknown
}

/// The options of a block up to `opt_endofopt`.
fn options<'a, 'b>(opts: &'b [PcapNGOption<'a>]) -> impl Iterator<Item = &'b PcapNGOption<'a>> {
    opts.iter().take_while(|o| o.code.0 != OPT_ENDOFOPT)
}

impl CaptureSource for FileSource {
    #[inline]
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        if self.done || self.stop.is_stopped() {
            self.done = true;
            return Ok(Next::End);
        }
        let found = match self.format {
            Format::Pcap { order, nanos } => self.next_pcap(order, nanos),
            Format::PcapNg { .. } => self.next_pcapng(),
        };
        let loc = match found {
            Ok(Some(loc)) => loc,
            Ok(None) => {
                self.done = true;
                return Ok(Next::End);
            }
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        let data = loc
            .data_start
            .checked_add(loc.cap_len as usize)
            .and_then(|end| self.buf.buf.get(loc.data_start..end));
        let Some(data) = data else {
            // Unreachable: every Loc lies inside a filled record.
            self.done = true;
            return Err(self.corrupt(self.buf.offset(), "internal: record outside the buffer"));
        };
        self.stats.packets += 1;
        self.stats.bytes += u64::from(loc.orig_len);
        let iface = self.interfaces.get(loc.iface);
        let named = self.if_state.get(loc.iface).is_some_and(|s| s.named);
        Ok(Next::Packet(RawPacket {
            meta: PacketMeta {
                direction: loc.direction,
                ts: loc.ts,
                iface: loc.iface as u32,
                iface_name: iface.filter(|_| named).map(|i| i.name.as_str()),
                link_type: iface.map_or(LinkType(0), |i| i.link_type),
                cap_len: loc.cap_len,
                orig_len: loc.orig_len,
            },
            data,
        }))
    }

    fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn stats(&self) -> CaptureStats {
        let mut dropped = None;
        for d in self.if_state.iter().filter_map(|s| s.ifdrop) {
            dropped = Some(dropped.unwrap_or(0u64).saturating_add(d));
        }
        CaptureStats {
            iface_dropped: dropped,
            ..self.stats
        }
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_forms() {
        let us = TsConv::from_tsresol(6, 0).unwrap();
        assert_eq!(us.convert(1_500_000), Timestamp::from_nanos(1_500_000_000));
        let ns = TsConv::from_tsresol(9, 0).unwrap();
        assert_eq!(ns.convert(7), Timestamp::from_nanos(7));
        let ps = TsConv::from_tsresol(12, 0).unwrap();
        assert_eq!(ps.convert(5_000), Timestamp::from_nanos(5));
        let s = TsConv::from_tsresol(0, 10).unwrap();
        assert_eq!(s.convert(3), Timestamp::from_secs_nanos(13, 0));
        // 2^-10 s units: 1024 units = 1 s; 512 = 0.5 s.
        let p2 = TsConv::from_tsresol(0x80 | 10, 0).unwrap();
        assert_eq!(p2.convert(1024 + 512), Timestamp::from_nanos(1_500_000_000));
        // 2^-63 still works without overflow.
        let p63 = TsConv::from_tsresol(0x80 | 63, 0).unwrap();
        assert_eq!(p63.convert(1 << 62), Timestamp::from_nanos(500_000_000));
        assert!(TsConv::from_tsresol(20, 0).is_none());
        assert!(TsConv::from_tsresol(0x80 | 64, 0).is_none());
        assert!(TsConv::from_tsresol(19, 0).is_some());
        // Saturates instead of overflowing.
        let big = TsConv::from_tsresol(0, i64::MAX).unwrap();
        assert_eq!(big.convert(u64::MAX), Timestamp::from_nanos(i64::MAX));
        let neg = TsConv::from_tsresol(9, -5).unwrap();
        assert_eq!(neg.convert(0), Timestamp::from_secs_nanos(-5, 0));
    }

    #[test]
    fn hex_prefix_formats() {
        assert_eq!(hex_prefix(&[0x47, 0x45, 0x54]), "47 45 54");
        assert_eq!(hex_prefix(&[]), "none, the file is empty");
    }

    /// A reader that hands out one byte per call, to exercise refills at every boundary.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.get(self.1), buf.first_mut()) {
                (Some(&b), Some(slot)) => {
                    *slot = b;
                    self.1 += 1;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn buffer_fill_shifts_and_grows() {
        let data: Vec<u8> = (0..=255u8).cycle().take(READ_BUFFER_SIZE * 3).collect();
        let mut r = Trickle(data.clone(), 0);
        let mut b = Buffer::new();
        assert!(b.fill(&mut r, 10).unwrap());
        b.consume(7);
        assert_eq!(b.offset(), 7);
        // Needs a grow past the initial size; the unconsumed bytes move to the front.
        assert!(b.fill(&mut r, READ_BUFFER_SIZE + 100).unwrap());
        assert!(b.buf.len() >= READ_BUFFER_SIZE + 100);
        assert_eq!(&b.avail()[..5], &data[7..12]);
        b.consume(READ_BUFFER_SIZE + 100);
        assert_eq!(b.offset(), (READ_BUFFER_SIZE + 107) as u64);
        assert!(!b.fill(&mut r, READ_BUFFER_SIZE * 3).unwrap());
    }
}
