//! Live capture: choosing a backend and what every backend is configured with.
//!
//! | backend    | platform | module |
//! |------------|----------|--------|
//! | `afpacket` | Linux    | `afpacket` — TPACKET_V3 ring, no libpcap needed |
//! | `pcap`     | Unix with libpcap (cargo feature `libpcap`) | `pcap` |
//! | `windivert`| Windows  | `windivert` |
//! | `bpf`      | macOS    | `bpf` |
//! | `file`     | any      | [`crate::file`] (replay) |
//!
//! [`open_live`] opens one; [`Backend::default_live`] names the best one for this platform.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{CaptureError, CaptureSource};

/// A capture backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Linux AF_PACKET with a TPACKET_V3 memory-mapped ring.
    AfPacket,
    /// libpcap (any Unix where it is installed; the `pcap` crate).
    Pcap,
    /// WinDivert in sniff mode (Windows).
    WinDivert,
    /// `/dev/bpf*` (macOS and the BSDs' kernel packet filter).
    Bpf,
    /// A capture file replayed (pcap or pcapng).
    File,
}

impl Backend {
    /// Every backend, in the order of preference for live capture.
    pub const ALL: [Backend; 5] = [
        Backend::AfPacket,
        Backend::WinDivert,
        Backend::Bpf,
        Backend::Pcap,
        Backend::File,
    ];

    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Backend::AfPacket => "afpacket",
            Backend::Pcap => "pcap",
            Backend::WinDivert => "windivert",
            Backend::Bpf => "bpf",
            Backend::File => "file",
        }
    }

    /// Whether this build can capture with the backend on this platform (compiled in; whether
    /// the caller has the privileges is only known when opening).
    pub fn is_available(self) -> bool {
        match self {
            Backend::AfPacket => cfg!(target_os = "linux"),
            Backend::Pcap => cfg!(all(unix, feature = "libpcap")),
            Backend::WinDivert => cfg!(windows),
            Backend::Bpf => cfg!(target_os = "macos"),
            Backend::File => true,
        }
    }

    /// Whether the backend captures live traffic (everything but `file`).
    pub fn is_live(self) -> bool {
        self != Backend::File
    }

    /// The live backends this build has, best first.
    pub fn available_live() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_live() && b.is_available())
            .collect()
    }

    /// The best live backend for `cfg` on this platform: AF_PACKET on Linux (libpcap for the
    /// `any` pseudo-device, whose frames have mixed link types), WinDivert on Windows, BPF on
    /// macOS, else libpcap; `None` when this build has none.
    pub fn default_live(cfg: &LiveConfig) -> Option<Backend> {
        let any = cfg.interfaces.iter().any(|i| i == "any");
        if any && Backend::Pcap.is_available() {
            return Some(Backend::Pcap);
        }
        Backend::available_live().into_iter().next()
    }

    fn names(list: &[Backend]) -> String {
        let v: Vec<&str> = list.iter().map(|b| b.name()).collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = CaptureError;

    fn from_str(s: &str) -> Result<Backend, CaptureError> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                CaptureError::InvalidArgument(format!(
                    "unknown capture backend {s:?} (known: {})",
                    Backend::names(&Backend::ALL)
                ))
            })
    }
}

/// How a fanout group spreads packets over the sockets that joined it (Linux `PACKET_FANOUT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutMode {
    /// By a symmetric hash of the flow: both directions of a flow reach the same member.
    Hash,
    /// Round robin.
    LoadBalance,
    /// By the CPU that received the packet.
    Cpu,
}

/// Several sockets sharing an interface: each sees a part of the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// The group id; sockets with the same id (in one network namespace) share the traffic.
    pub group: u16,
    /// How packets are spread.
    pub mode: FanoutMode,
}

/// What a live backend opens. Backends ignore what they cannot do (documented per field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// Interfaces to capture on (`any` for all, libpcap only). At least one.
    pub interfaces: Vec<String>,
    /// Bytes kept of each frame (the rest is cut; `orig_len` still tells the wire length).
    pub snaplen: u32,
    /// Promiscuous mode: also frames not addressed to this host.
    pub promiscuous: bool,
    /// Kernel buffer in bytes (the AF_PACKET ring's size; libpcap's buffer size; BPF's buffer).
    pub buffer_bytes: usize,
    /// AF_PACKET: size of one ring block (a power of two multiple of the page size). The
    /// kernel hands blocks to the reader whole, when full or after [`LiveConfig::timeout`].
    pub block_bytes: usize,
    /// Deliver packets as soon as they arrive instead of batching (libpcap/BPF immediate mode;
    /// AF_PACKET retires a block after at most 1 ms).
    pub immediate: bool,
    /// A BPF filter expression in tcpdump's syntax, compiled by libpcap's compiler.
    pub filter: Option<String>,
    /// How long `next_packet` waits before returning [`crate::Next::Timeout`].
    pub timeout: Duration,
    /// AF_PACKET: join a fanout group.
    pub fanout: Option<Fanout>,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            interfaces: Vec::new(),
            snaplen: 262_144,
            promiscuous: true,
            buffer_bytes: 64 << 20,
            block_bytes: 1 << 20,
            immediate: false,
            filter: None,
            timeout: Duration::from_millis(100),
            fanout: None,
        }
    }
}

impl LiveConfig {
    /// A configuration for one interface with the defaults (64 MiB buffer, 256 KiB snaplen,
    /// promiscuous, 100 ms timeout).
    pub fn new(interface: impl Into<String>) -> LiveConfig {
        LiveConfig {
            interfaces: vec![interface.into()],
            ..LiveConfig::default()
        }
    }
}

/// Opens a live capture with `backend` (see the module table).
///
/// Errors: [`CaptureError::BackendUnavailable`] when this build or platform has no such
/// backend (the message names those it has), [`CaptureError::PermissionDenied`] without
/// capture privileges, [`CaptureError::NoSuchInterface`], [`CaptureError::BadFilter`].
pub fn open_live(
    backend: Backend,
    cfg: &LiveConfig,
) -> Result<Box<dyn CaptureSource>, CaptureError> {
    if cfg.interfaces.is_empty() {
        return Err(CaptureError::InvalidArgument(
            "no interface to capture on".into(),
        ));
    }
    if !backend.is_available() || !backend.is_live() {
        return Err(CaptureError::BackendUnavailable {
            backend: backend.name(),
            available: Backend::names(&Backend::available_live()),
        });
    }
    match backend {
        #[cfg(target_os = "linux")]
        Backend::AfPacket => Ok(Box::new(crate::afpacket::AfPacketSource::open(cfg)?)),
        #[cfg(all(unix, feature = "libpcap"))]
        Backend::Pcap => Ok(Box::new(crate::pcap::PcapSource::open(cfg)?)),
        #[cfg(windows)]
        Backend::WinDivert => Ok(Box::new(crate::windivert::WinDivertSource::open(cfg)?)),
        #[cfg(target_os = "macos")]
        Backend::Bpf => Ok(Box::new(crate::bpf::BpfSource::open(cfg)?)),
        _ => Err(CaptureError::BackendUnavailable {
            backend: backend.name(),
            available: Backend::names(&Backend::available_live()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        let e = "dpdk".parse::<Backend>().unwrap_err().to_string();
        assert!(e.contains("afpacket, windivert, bpf, pcap, file"), "{e}");
    }

    #[test]
    fn default_backend_is_the_platforms_best() {
        let cfg = LiveConfig::new("eth0");
        let d = Backend::default_live(&cfg);
        if cfg!(target_os = "linux") {
            assert_eq!(d, Some(Backend::AfPacket));
            if cfg!(feature = "libpcap") {
                assert_eq!(
                    Backend::default_live(&LiveConfig::new("any")),
                    Some(Backend::Pcap)
                );
            }
        }
    }

    #[test]
    fn unavailable_backend_names_the_alternatives() {
        let other = if cfg!(windows) {
            Backend::Bpf
        } else {
            Backend::WinDivert
        };
        let e = open_live(other, &LiveConfig::new("eth0"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(other.name()) && e.contains("available here"),
            "{e}"
        );
        let e = open_live(Backend::File, &LiveConfig::new("eth0"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("file"), "{e}");
    }
}
