//! Capture sources for netmon.
//!
//! Every source — a capture file today; libpcap, the Linux AF_PACKET ring, WinDivert and macOS
//! BPF later — implements one trait, [`CaptureSource`]. A source yields borrowed frame bytes
//! plus [`PacketMeta`] (timestamp, interface, link type, lengths) and knows nothing about
//! protocols: parsing is `netmon-packet`'s job.
//!
//! ```no_run
//! use netmon_capture::{CaptureSource, Next};
//!
//! # fn main() -> Result<(), netmon_capture::CaptureError> {
//! let mut source = netmon_capture::open_file("capture.pcapng")?;
//! let mut bytes = 0u64;
//! loop {
//!     match source.next_packet()? {
//!         Next::Packet(p) => bytes += u64::from(p.meta.orig_len),
//!         Next::Timeout => continue, // live or paced sources: nothing arrived in time
//!         Next::End => break,
//!     }
//! }
//! println!("{bytes} bytes on the wire");
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use netmon_types::{LinkType, Timestamp};

#[cfg(target_os = "linux")]
pub mod afpacket;
pub mod bpf;
pub mod file;
pub mod filter;
pub mod ifaces;
pub mod live;
#[cfg(all(unix, feature = "libpcap"))]
pub mod pcap;
pub mod privilege;
pub mod replay;
pub mod windivert;
pub mod writer;

pub use file::{ByteOrder, FileFormat, FileInfo, FileSource, TsResolution, open_file};
pub use live::{Backend, Fanout, FanoutMode, LiveConfig, open_live};
pub use writer::{PcapNgWriter, PcapWriter, TsPrecision};

/// Metadata of one captured frame.
///
/// `Copy` and borrowed: the interface name points into the source's interface table, so
/// yielding a packet never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta<'a> {
    /// Whether the host sent or received the frame, where the source knows (AF_PACKET's
    /// `PACKET_OUTGOING`, WinDivert's outbound flag, pcapng `epb_flags`).
    pub direction: Direction,
    /// Capture timestamp (the packets' clock), nanosecond resolution.
    pub ts: Timestamp,
    /// Index of the interface in the source's [`CaptureSource::interfaces`] table
    /// (the pcapng interface id; 0 for classic pcap and single-interface sources).
    pub iface: u32,
    /// Interface name, if the source knows one (pcapng `if_name`, live interface name).
    pub iface_name: Option<&'a str>,
    /// How to parse the frame's first byte.
    pub link_type: LinkType,
    /// Bytes captured (the length of [`RawPacket::data`]).
    pub cap_len: u32,
    /// Length of the frame on the wire; larger than `cap_len` when the snaplen cut it.
    pub orig_len: u32,
}

/// Which way a frame crossed the capturing host's interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The source does not say (capture files without `epb_flags`, libpcap).
    #[default]
    Unknown,
    /// Received by this host (or seen passing by, in promiscuous mode).
    Inbound,
    /// Sent by this host.
    Outbound,
}

impl Direction {
    /// `"in"`, `"out"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Unknown => "unknown",
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        }
    }
}

/// One captured frame, borrowed from the source until the next call to
/// [`CaptureSource::next_packet`].
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Frame metadata.
    pub meta: PacketMeta<'a>,
    /// The captured bytes, starting with the link-layer header.
    pub data: &'a [u8],
}

/// What [`CaptureSource::next_packet`] produced.
#[derive(Debug)]
pub enum Next<'a> {
    /// A frame.
    Packet(RawPacket<'a>),
    /// No frame arrived within the source's read timeout (live sources, paced replays). Callers use it
    /// to run timers; the source is still open.
    Timeout,
    /// The source is exhausted (end of file) or was stopped through its [`StopHandle`].
    End,
}

/// A capture interface as the source knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Name (`eth0`, pcapng `if_name`, or a synthetic `if<N>` when unnamed).
    pub name: String,
    /// Description, if any (pcapng `if_description`).
    pub description: Option<String>,
    /// Link type of frames captured on this interface.
    pub link_type: LinkType,
    /// Snapshot length in bytes (0 = unlimited).
    pub snaplen: u32,
}

/// Counters a source keeps about what it saw and lost. Live backends fill the kernel counters;
/// files leave them at zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames handed to the caller.
    pub packets: u64,
    /// Sum of `orig_len` over those frames.
    pub bytes: u64,
    /// Frames the kernel (or driver) received, where it says (AF_PACKET `tp_packets`, pcap `ps_recv`).
    pub kernel_received: Option<u64>,
    /// Frames dropped because the kernel buffer/ring was full.
    pub kernel_dropped: Option<u64>,
    /// Frames dropped by the interface or driver, where known.
    pub iface_dropped: Option<u64>,
}

/// Stops a (possibly blocking) source from another thread.
///
/// Cloneable and `Send + Sync`. After [`StopHandle::stop`], the source's next (or current,
/// blocked) `next_packet` call returns [`Next::End`] promptly. A live backend registers a
/// waker (e.g. writing to an eventfd or calling `pcap_breakloop`) so a blocked read returns at
/// once; sources that never block need none.
#[derive(Clone, Default)]
pub struct StopHandle {
    inner: Arc<StopInner>,
}

#[derive(Default)]
struct StopInner {
    stopped: AtomicBool,
    waker: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl StopHandle {
    /// A new handle, not stopped, without a waker.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    /// A new handle whose [`stop`](StopHandle::stop) also calls `waker`, to interrupt a blocked read.
    pub fn with_waker(waker: impl Fn() + Send + Sync + 'static) -> StopHandle {
        let h = StopHandle::default();
        // A fresh OnceLock is empty, so this cannot fail.
        let _ = h.inner.waker.set(Box::new(waker));
        h
    }

    /// Asks the source to stop. Idempotent; safe to call from any thread or a signal-handling task.
    pub fn stop(&self) {
        if !self.inner.stopped.swap(true, Ordering::AcqRel) {
            if let Some(w) = self.inner.waker.get() {
                w();
            }
        }
    }

    /// Whether [`stop`](StopHandle::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

/// A source of captured frames: a file being replayed or a live interface.
///
/// The trait is object-safe (`Box<dyn CaptureSource>`), and `next_packet` lends the frame:
/// the bytes stay valid until the next call, so no source copies or allocates per packet.
pub trait CaptureSource: Send {
    /// The next frame, a timeout tick, or the end.
    ///
    /// Errors are the source's (I/O, a corrupt or truncated file); after an error the source
    /// is finished and further calls return [`Next::End`].
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError>;

    /// The interfaces frames may come from, indexed by [`PacketMeta::iface`]. For a pcapng file
    /// this grows as interface blocks are read.
    fn interfaces(&self) -> &[Interface];

    /// Counters so far, including kernel drop counters for live sources.
    fn stats(&self) -> CaptureStats;

    /// A handle that stops this source from another thread.
    fn stop_handle(&self) -> StopHandle;

    /// Now, on the packets' clock, for a source whose time goes on while no frame arrives:
    /// the wall clock for a live capture, the replay position for a paced replay. After a
    /// [`Next::Timeout`] the consumer lets idle flows end and windows close at this time.
    /// `None` (the default) for a file read at full speed, where only packets move time.
    fn clock(&self) -> Option<Timestamp> {
        None
    }
}

/// The wall clock as a [`Timestamp`] (what live capture timestamps are measured against).
pub fn wall_clock() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// What capturing with `backend` needs, for [`CaptureError::PermissionDenied`].
pub fn permission_needs(backend: &str) -> &'static str {
    match backend {
        "bpf" => "bpf capture needs read access to /dev/bpf*, as root or in the access_bpf group",
        "windivert" => "windivert capture needs Administrator rights",
        "pcap" if !cfg!(target_os = "linux") => {
            "pcap capture needs root or access to the capture device"
        }
        _ => "capturing needs CAP_NET_RAW, as root or through setcap on the binary",
    }
}

/// Errors from capture sources and writers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file or device could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read or written.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with a pcap or pcapng magic number.
    #[error("{path}: not a pcap or pcapng capture file (first bytes: {magic})")]
    NotACapture {
        /// The file.
        path: String,
        /// The first bytes, in hex, to help the user recognise what it is.
        magic: String,
    },
    /// The file ends in the middle of a record. Every complete packet before it was yielded.
    #[error("{path}: file truncated in the middle of a record after {packets} complete packets")]
    Truncated {
        /// The file.
        path: String,
        /// Complete packets read before the cut.
        packets: u64,
    },
    /// A record is malformed (impossible length, bad block structure).
    #[error("{path}: corrupt capture at byte {offset}: {reason} (after {packets} packets)")]
    Corrupt {
        /// The file.
        path: String,
        /// File offset of the bad record.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// Complete packets read before it.
        packets: u64,
    },
    /// The capture uses a link type netmon cannot parse.
    #[error(
        "{path}: unsupported link type {link_type} (netmon reads ethernet, linux-sll, linux-sll2, raw ip, null and loop)"
    )]
    UnsupportedLinkType {
        /// The file or interface.
        path: String,
        /// The link type.
        link_type: LinkType,
    },
    /// The backend is not part of this build or platform.
    #[error("the {backend} capture backend is not available here (available here: {available})")]
    BackendUnavailable {
        /// The backend asked for.
        backend: &'static str,
        /// Those this build has, comma-separated.
        available: String,
    },
    /// The process may not capture (no CAP_NET_RAW, no access to the device).
    #[error("{what}: permission denied ({})", permission_needs(backend))]
    PermissionDenied {
        /// What was being opened (an interface, a device).
        what: String,
        /// The backend.
        backend: &'static str,
    },
    /// No interface has that name.
    #[error("no interface named {name:?}")]
    NoSuchInterface {
        /// The name given.
        name: String,
    },
    /// The BPF filter expression does not compile.
    #[error("bad capture filter {filter:?}: {reason}")]
    BadFilter {
        /// The expression.
        filter: String,
        /// The compiler's message.
        reason: String,
    },
    /// The operation is not available on this source or platform.
    #[error("{0}")]
    Unsupported(String),
    /// A caller passed a value the operation cannot represent (e.g. a writer asked to store a
    /// timestamp before 1970 or a frame larger than the record limit).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
