//! Process attribution: which local process owns a flow's socket, and the socket table
//! (`netmon sockets`, like `ss -tunap`).
//!
//! # How (Linux)
//! 1. One netlink `NETLINK_SOCK_DIAG` request (`SOCK_DIAG_BY_FAMILY`, `inet_diag_req_v2`) names
//!    the socket by its exact 4-tuple; the kernel answers with the socket's state, owner uid and
//!    inode (or `ENOENT`). The kernel's lookup is the one packets use, so a TCP listener or an
//!    unconnected UDP socket matches too, and an IPv4 flow finds the dual-stack `AF_INET6`
//!    socket that carries it (reported with `::ffff:a.b.c.d` addresses).
//! 2. The inode is mapped to a process through a cache of `/proc/*/fd` (`socket:[INODE]`
//!    links). A hit is re-checked with one `readlink`; a miss rescans: the whole of `/proc` at
//!    most once per [`ResolverConfig::min_full_scan_interval`] (100 ms by default), and in
//!    between only the processes started since the last full scan (the short-lived ones that
//!    are every peer's weak spot) and those that held sockets then (a browser opening its
//!    next connection), within [`ResolverConfig::scan_budget`] (10 ms per 100 ms).
//! 3. The process is described from `/proc/PID` (`comm`, `exe`, `cmdline` cut at
//!    [`CMDLINE_MAX`] bytes, effective uid and user name, cgroup and container id), cached per
//!    pid and start time.
//!
//! Other platforms compile the same types; every lookup says [`Unattributed::NotSupported`].
//!
//! # Where the engine calls it
//! At a flow's **first packet**, once: [`ProcessResolver::lookup_flow`] with the flow's
//! protocol and its first packet's source and destination, keeping the [`Attribution`] for
//! the flow's lifetime (a process that lives 50 ms is gone by any periodic scan). Later packets
//! cost nothing. A lookup costs one netlink round trip and one `readlink` plus a read of
//! `/proc/PID/stat` when the owner is cached (tens of microseconds; see docs/enrich.md), so the
//! engine should call it off the per-packet hot loop only for new flows, and skip protocols
//! other than TCP and UDP ([`Proto::from_ip_proto`]).
//!
//! ```no_run
//! use netmon_enrich::process::{Attribution, ProcessResolver, Proto};
//!
//! let mut r = ProcessResolver::new();
//! let src = "10.0.0.5:41234".parse().unwrap();
//! let dst = "93.184.216.34:443".parse().unwrap();
//! match r.lookup_flow(Proto::Tcp, src, dst) {
//!     Attribution::Process(p) => println!("{}({})", p.name, p.pid),
//!     Attribution::Unattributed(why) => println!("unknown: {why}"),
//! }
//! ```
//!
//! # Degraded modes
//! Each is an [`Unattributed`] reason, never a guess: the socket does not exist here
//! ([`Unattributed::SocketNotFound`]; also NAT'd container traffic, whose translated port has
//! no socket on this host), the flow is not this network namespace's
//! ([`Unattributed::NotLocal`]: forwarded, bridged, another namespace's), the socket exists but
//! its owner's `/proc` entry is another user's ([`Unattributed::NoPermission`]) or invisible
//! ([`Unattributed::OwnerNotVisible`]), the socket has no file any more
//! ([`Unattributed::NoInode`], `TIME_WAIT`).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

#[cfg(target_os = "linux")]
mod diag;

/// For the fuzz target: parses `buf` as a netlink sock_diag reply datagram (every message,
/// until the first malformed one) and returns how many parsed. Not a stable interface.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub fn fuzz_sock_diag_reply(buf: &[u8]) -> usize {
    diag::messages(buf).filter(Result::is_ok).count()
}
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod procfs;
#[cfg(target_os = "linux")]
use linux as imp;
#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
use unsupported as imp;

/// Bytes of a command line kept in [`ProcessInfo::cmdline`].
pub const CMDLINE_MAX: usize = 4096;

/// A transport protocol with sockets the kernel can be asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Proto {
    /// From an IP protocol number: `Some` for TCP (6) and UDP (17) only.
    pub const fn from_ip_proto(p: u8) -> Option<Proto> {
        match p {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    /// `tcp` or `udp`.
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// The address family of a socket (not of a flow: a dual-stack `AF_INET6` socket carries IPv4
/// flows, with `::ffff:a.b.c.d` addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `AF_INET`.
    Ipv4,
    /// `AF_INET6`.
    Ipv6,
}

/// A socket's state: the kernel's TCP state numbers (`include/net/tcp_states.h`), which UDP
/// reuses (`Established`: connected, `Close`: unconnected).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SocketState {
    /// 1.
    Established,
    /// 2.
    SynSent,
    /// 3.
    SynRecv,
    /// 4.
    FinWait1,
    /// 5.
    FinWait2,
    /// 6.
    TimeWait,
    /// 7 (an unconnected UDP socket).
    Close,
    /// 8.
    CloseWait,
    /// 9.
    LastAck,
    /// 10.
    Listen,
    /// 11.
    Closing,
    /// 12: a request socket (a SYN answered, the handshake not finished).
    NewSynRecv,
    /// 13: bound, not listening nor connected (Linux 6.8+).
    BoundInactive,
    /// Any other number.
    Other(u8),
}

impl SocketState {
    /// From the kernel's number.
    pub const fn from_kernel(n: u8) -> SocketState {
        match n {
            1 => SocketState::Established,
            2 => SocketState::SynSent,
            3 => SocketState::SynRecv,
            4 => SocketState::FinWait1,
            5 => SocketState::FinWait2,
            6 => SocketState::TimeWait,
            7 => SocketState::Close,
            8 => SocketState::CloseWait,
            9 => SocketState::LastAck,
            10 => SocketState::Listen,
            11 => SocketState::Closing,
            12 => SocketState::NewSynRecv,
            13 => SocketState::BoundInactive,
            n => SocketState::Other(n),
        }
    }

    /// The kernel's number.
    pub const fn number(self) -> u8 {
        match self {
            SocketState::Established => 1,
            SocketState::SynSent => 2,
            SocketState::SynRecv => 3,
            SocketState::FinWait1 => 4,
            SocketState::FinWait2 => 5,
            SocketState::TimeWait => 6,
            SocketState::Close => 7,
            SocketState::CloseWait => 8,
            SocketState::LastAck => 9,
            SocketState::Listen => 10,
            SocketState::Closing => 11,
            SocketState::NewSynRecv => 12,
            SocketState::BoundInactive => 13,
            SocketState::Other(n) => n,
        }
    }

    /// `ss`'s spelling: `ESTAB`, `LISTEN`, `SYN-SENT`, ..., `UNCONN` for an unconnected
    /// (closed) socket; `?` for unknown numbers.
    pub const fn ss_name(self) -> &'static str {
        match self {
            SocketState::Established => "ESTAB",
            SocketState::SynSent => "SYN-SENT",
            SocketState::SynRecv | SocketState::NewSynRecv => "SYN-RECV",
            SocketState::FinWait1 => "FIN-WAIT-1",
            SocketState::FinWait2 => "FIN-WAIT-2",
            SocketState::TimeWait => "TIME-WAIT",
            SocketState::Close => "UNCONN",
            SocketState::CloseWait => "CLOSE-WAIT",
            SocketState::LastAck => "LAST-ACK",
            SocketState::Listen => "LISTEN",
            SocketState::Closing => "CLOSING",
            SocketState::BoundInactive => "BOUND-INACTIVE",
            SocketState::Other(_) => "?",
        }
    }

    /// Lower-case `ss` name for JSON: `estab`, `syn_sent`, ..., `unconn`, `listen`;
    /// unknown numbers are `state_N`.
    pub fn json_name(self) -> String {
        match self {
            SocketState::Other(n) => format!("state_{n}"),
            s => s.ss_name().to_ascii_lowercase().replace('-', "_"),
        }
    }
}

impl Serialize for SocketState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.json_name())
    }
}

/// A local process, as `/proc/PID` described it when it was first seen owning a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Its name (`/proc/PID/comm`: at most 15 bytes, set by the kernel from the executable
    /// or by the process).
    pub name: String,
    /// Executable path (`/proc/PID/exe`); `None` when unreadable (another user's process).
    pub exe: Option<String>,
    /// Command line, arguments joined by spaces, at most [`CMDLINE_MAX`] bytes (lossy UTF-8).
    pub cmdline: String,
    /// Whether `cmdline` was cut.
    pub cmdline_truncated: bool,
    /// Effective uid.
    pub uid: Option<u32>,
    /// The user name of `uid` (from the user database); `None` when it has none.
    pub user: Option<String>,
    /// Its cgroup path (v2, else the first v1 hierarchy), at most 512 bytes.
    pub cgroup: Option<String>,
    /// The container id (64 hex digits) in the cgroup path, when it runs in a container
    /// (Docker, containerd, CRI-O, Podman naming).
    pub container_id: Option<String>,
    /// Start time in clock ticks after boot: with the pid, it names the process (pids are
    /// reused).
    pub start_time: Option<u64>,
}

/// One socket of the table ([`ProcessResolver::sockets`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SocketEntry {
    /// TCP or UDP.
    pub proto: Proto,
    /// The socket's family.
    pub family: Family,
    /// Its state.
    pub state: SocketState,
    /// Local address and port (unspecified address: bound to all).
    pub local: SocketAddr,
    /// Remote address and port (unspecified and 0 when not connected).
    pub remote: SocketAddr,
    /// Socket inode (0: none, e.g. `TIME_WAIT`).
    pub inode: u64,
    /// The socket's owner uid.
    pub uid: u32,
    /// The process holding it (the lowest pid when several share it), or `None` when no
    /// visible process does.
    pub process: Option<Arc<ProcessInfo>>,
}

/// The answer to "which process owns this flow": the process, or why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Attribution {
    /// The owning process.
    Process(Arc<ProcessInfo>),
    /// Why there is none.
    Unattributed(Unattributed),
}

impl Attribution {
    /// The process, if attributed.
    pub fn process(&self) -> Option<&ProcessInfo> {
        match self {
            Attribution::Process(p) => Some(p),
            Attribution::Unattributed(_) => None,
        }
    }

    /// The reason, if not attributed.
    pub fn reason(&self) -> Option<&Unattributed> {
        match self {
            Attribution::Process(_) => None,
            Attribution::Unattributed(u) => Some(u),
        }
    }
}

/// Why a flow has no process. Serialised as `{"reason": "<name>", ...fields}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unattributed {
    /// Process attribution is implemented for Linux only.
    NotSupported,
    /// The kernel could not be asked (no `NETLINK_SOCK_DIAG` in this sandbox, the UDP diag
    /// module missing, a timeout, a malformed reply).
    Unavailable {
        /// What failed.
        error: String,
    },
    /// Neither address is one of this network namespace's: the flow is forwarded or bridged
    /// through this host (a container's or VM's traffic seen on a bridge, another host's
    /// traffic on a mirror port): its socket lives elsewhere.
    NotLocal,
    /// An address is local but no socket has this 4-tuple: closed before the lookup, owned by
    /// another network namespace sharing the address, a NAT'd port (a container's connection
    /// after masquerading has no socket on the host), or not a socket's traffic (raw, kernel).
    SocketNotFound,
    /// The socket exists but has no file, so no process: `TIME_WAIT` after the owner closed
    /// it, or a connection not accepted yet (half open, or in the accept queue) with no
    /// listener found.
    NoInode {
        /// Its state.
        state: SocketState,
    },
    /// The socket exists, but the process holding it cannot be seen: a `/proc/PID/fd` of the
    /// socket's user could not be read (run netmon as root or with `CAP_SYS_PTRACE`).
    NoPermission {
        /// Socket inode.
        inode: u64,
        /// Socket owner.
        uid: u32,
    },
    /// The socket exists and `/proc` was fully rescanned, but no visible process holds it:
    /// the process is in another PID namespace (netmon in a container), `/proc` hides it
    /// (`hidepid`), or it exited and the kernel still holds the socket.
    OwnerNotVisible {
        /// Socket inode.
        inode: u64,
        /// Socket owner.
        uid: u32,
    },
    /// The socket exists and its owner is not in the cache; a full `/proc` walk is not due
    /// yet ([`ResolverConfig::min_full_scan_interval`]), and either a quick walk (new
    /// processes, socket holders) did not find it or their budget for the current 100 ms is
    /// spent ([`ResolverConfig::scan_budget`]). Asking again later (at a later packet of a
    /// longer flow) may succeed.
    RateLimited {
        /// Socket inode.
        inode: u64,
        /// Socket owner.
        uid: u32,
    },
}

impl Unattributed {
    /// The reason's name as in JSON: `not_supported`, `unavailable`, `not_local`,
    /// `socket_not_found`, `no_inode`, `no_permission`, `owner_not_visible`, `rate_limited`.
    pub const fn name(&self) -> &'static str {
        match self {
            Unattributed::NotSupported => "not_supported",
            Unattributed::Unavailable { .. } => "unavailable",
            Unattributed::NotLocal => "not_local",
            Unattributed::SocketNotFound => "socket_not_found",
            Unattributed::NoInode { .. } => "no_inode",
            Unattributed::NoPermission { .. } => "no_permission",
            Unattributed::OwnerNotVisible { .. } => "owner_not_visible",
            Unattributed::RateLimited { .. } => "rate_limited",
        }
    }

    /// Whether no socket was found at all (as opposed to a socket without a visible owner).
    pub const fn is_socket_missing(&self) -> bool {
        matches!(self, Unattributed::NotLocal | Unattributed::SocketNotFound)
    }
}

impl fmt::Display for Unattributed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unattributed::NotSupported => f.write_str("not supported on this platform"),
            Unattributed::Unavailable { error } => {
                write!(f, "socket diagnostics unavailable: {error}")
            }
            Unattributed::NotLocal => f.write_str("not a local address of this network namespace"),
            Unattributed::SocketNotFound => f.write_str("no such socket"),
            Unattributed::NoInode { state } => {
                write!(f, "socket without owner ({})", state.ss_name())
            }
            Unattributed::NoPermission { inode, uid } => {
                write!(
                    f,
                    "socket {inode} of uid {uid}: no permission to see its process"
                )
            }
            Unattributed::OwnerNotVisible { inode, uid } => {
                write!(
                    f,
                    "socket {inode} of uid {uid}: no visible process holds it"
                )
            }
            Unattributed::RateLimited { inode, uid } => {
                write!(
                    f,
                    "socket {inode} of uid {uid}: owner not cached, rescan rate-limited"
                )
            }
        }
    }
}

/// Tuning of a [`ProcessResolver`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The procfs mount (`/proc`).
    pub proc_root: PathBuf,
    /// At most one full `/proc/*/fd` walk per this interval (100 ms), and per ten times the
    /// last full walk's duration (so full walks take at most a tenth of a core). Between full
    /// walks, a miss walks only the processes started since the last full walk and those that
    /// held sockets then (a "quick" walk).
    pub min_full_scan_interval: Duration,
    /// At most this much time in quick walks per 100 ms window (10 ms: a tenth of a core);
    /// past it, a miss is [`Unattributed::RateLimited`].
    pub scan_budget: Duration,
    /// How long a "no socket" answer for a 4-tuple is kept (1 s): repeated lookups of a
    /// forwarded or scanning flow cost no netlink query.
    pub negative_ttl: Duration,
    /// How long the list of this namespace's addresses (used to tell
    /// [`Unattributed::NotLocal`] from [`Unattributed::SocketNotFound`]) is kept (1 s).
    pub local_addrs_ttl: Duration,
    /// How long to wait for the kernel's answer (1 s).
    pub timeout: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            proc_root: PathBuf::from("/proc"),
            min_full_scan_interval: Duration::from_millis(100),
            scan_budget: Duration::from_millis(10),
            negative_ttl: Duration::from_secs(1),
            local_addrs_ttl: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }
}

/// Counters of a [`ProcessResolver`] (what the lookups cost).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResolverStats {
    /// Calls of [`ProcessResolver::lookup`] (each [`ProcessResolver::lookup_flow`] makes one
    /// or two).
    pub lookups: u64,
    /// Netlink requests sent (exact lookups and dumps).
    pub netlink_queries: u64,
    /// Lookups answered from the negative cache.
    pub negative_hits: u64,
    /// Inodes found in the `/proc` cache (still valid).
    pub owner_hits: u64,
    /// Full `/proc/*/fd` walks.
    pub full_scans: u64,
    /// Walks of only the processes started since the last full walk and those that held
    /// sockets then.
    pub quick_scans: u64,
    /// Time spent walking `/proc`, in microseconds.
    pub scan_micros: u64,
}

/// The socket table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Not implemented on this platform.
    #[error("socket table: not supported on this platform")]
    NotSupported,
    /// The netlink socket or request failed.
    #[error("socket diagnostics (netlink sock_diag): {0}")]
    Netlink(std::io::Error),
    /// The kernel's reply did not parse.
    #[error("socket diagnostics: malformed reply: {0}")]
    Malformed(String),
    /// No answer in time.
    #[error("socket diagnostics: no answer within {0:?}")]
    Timeout(Duration),
}

/// Attributes flows to local processes, and lists the socket table. One per thread (the
/// caches are not shared); it works in the network namespace of the thread that made it.
#[derive(Debug)]
pub struct ProcessResolver {
    inner: imp::Resolver,
}

impl Default for ProcessResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessResolver {
    /// A resolver with the default [`ResolverConfig`]. Never fails: when the kernel cannot be
    /// asked, lookups say [`Unattributed::Unavailable`] (or [`Unattributed::NotSupported`]
    /// off Linux) and [`ProcessResolver::sockets`] returns the error.
    pub fn new() -> ProcessResolver {
        Self::with_config(ResolverConfig::default())
    }

    /// A resolver with `config`.
    pub fn with_config(config: ResolverConfig) -> ProcessResolver {
        ProcessResolver {
            inner: imp::Resolver::new(config),
        }
    }

    /// The process owning the socket `local` <-> `remote` (as the socket sees it). IPv4-mapped
    /// IPv6 addresses are treated as IPv4; an IPv4 tuple also finds a dual-stack IPv6 socket.
    pub fn lookup(&mut self, proto: Proto, local: SocketAddr, remote: SocketAddr) -> Attribution {
        self.inner.lookup(proto, local, remote)
    }

    /// The process of a flow from its first packet (`src` -> `dst`): the sender's socket when
    /// it is local (the initiator: a client, or on loopback the connecting side), else the
    /// receiver's (a local server). One netlink query when the first side answers, two when
    /// it must try both.
    pub fn lookup_flow(&mut self, proto: Proto, src: SocketAddr, dst: SocketAddr) -> Attribution {
        self.inner.lookup_flow(proto, src, dst)
    }

    /// The whole TCP and UDP socket table of this network namespace (IPv4 and IPv6, every
    /// state), each socket with its process when a visible one holds it.
    pub fn sockets(&mut self) -> Result<Vec<SocketEntry>, ProcessError> {
        self.inner.sockets()
    }

    /// What the lookups have cost so far.
    pub fn stats(&self) -> ResolverStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_and_state_names() {
        assert_eq!(Proto::from_ip_proto(6), Some(Proto::Tcp));
        assert_eq!(Proto::from_ip_proto(17), Some(Proto::Udp));
        assert_eq!(Proto::from_ip_proto(1), None);
        for n in 0..=255u8 {
            assert_eq!(SocketState::from_kernel(n).number(), n);
        }
        assert_eq!(SocketState::from_kernel(1).ss_name(), "ESTAB");
        assert_eq!(SocketState::from_kernel(7).ss_name(), "UNCONN");
        assert_eq!(SocketState::from_kernel(10).json_name(), "listen");
        assert_eq!(SocketState::from_kernel(4).json_name(), "fin_wait_1");
        assert_eq!(SocketState::from_kernel(200).json_name(), "state_200");
    }

    #[test]
    fn attribution_json() {
        let p = Arc::new(ProcessInfo {
            pid: 42,
            name: "curl".into(),
            exe: Some("/usr/bin/curl".into()),
            cmdline: "curl x".into(),
            cmdline_truncated: false,
            uid: Some(0),
            user: Some("root".into()),
            cgroup: None,
            container_id: None,
            start_time: Some(7),
        });
        let v = serde_json::to_value(Attribution::Process(p)).unwrap();
        assert_eq!(v["pid"], 42);
        assert_eq!(v["name"], "curl");
        let v = serde_json::to_value(Attribution::Unattributed(Unattributed::NoPermission {
            inode: 5,
            uid: 1000,
        }))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"reason": "no_permission", "inode": 5, "uid": 1000})
        );
        let v = serde_json::to_value(Unattributed::NoInode {
            state: SocketState::TimeWait,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"reason": "no_inode", "state": "time_wait"})
        );
        assert_eq!(Unattributed::NotLocal.name(), "not_local");
        assert!(Unattributed::SocketNotFound.is_socket_missing());
    }
}
