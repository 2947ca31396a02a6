//! The Linux resolver: netlink sock_diag for sockets, `/proc` for their processes.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

use super::diag::{self, DiagMsg, Exact, Query, Reply};
use super::procfs::{self, FdScan};
use super::{
    Attribution, Family, ProcessError, ProcessInfo, Proto, ResolverConfig, ResolverStats,
    SocketEntry, SocketState, Unattributed,
};

/// Receive buffer: the kernel sends dump datagrams of at most 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// Datagrams read for one request at most (a dump of a million sockets is ~40 000).
const MAX_RECVS: usize = 1 << 20;
/// Negative-cache entries at most.
const NEGATIVE_MAX: usize = 4096;
/// The window of [`ResolverConfig::scan_budget`] (quick walks).
const SCAN_WINDOW: Duration = Duration::from_millis(100);

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The netlink socket.
#[derive(Debug)]
struct DiagSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    timeout: Duration,
}

impl DiagSocket {
    fn open(timeout: Duration) -> Result<DiagSocket, Errno> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
        let tv = TimeVal::new(secs, i64::from(timeout.subsec_micros()));
        setsockopt(&fd, sockopt::ReceiveTimeout, &tv)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(DiagSocket {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
            timeout,
        })
    }

    /// Sends `q` and calls `each` for every socket of the reply. An exact lookup that finds
    /// nothing (`ENOENT`) is `Ok` with no call.
    fn exchange(&mut self, q: &Query, mut each: impl FnMut(DiagMsg)) -> Result<(), ProcessError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = diag::request(seq, q);
        let to = NetlinkAddr::new(0, 0);
        loop {
            match sendto(self.fd.as_raw_fd(), &req, &to, MsgFlags::empty()) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ProcessError::Netlink(e.into())),
            }
        }
        let deadline = Instant::now() + self.timeout.saturating_mul(10);
        for _ in 0..MAX_RECVS {
            let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(ProcessError::Timeout(self.timeout)),
                Err(e) => return Err(ProcessError::Netlink(e.into())),
            };
            let got = self.buf.get(..n).unwrap_or(&[]);
            for m in diag::messages(got) {
                let (mseq, reply) = m.map_err(|e| ProcessError::Malformed(e.to_string()))?;
                if mseq != seq {
                    continue; // a late answer to an earlier request that timed out
                }
                match reply {
                    Reply::Socket(d) => {
                        each(d);
                        if q.exact.is_some() {
                            return Ok(());
                        }
                    }
                    Reply::Done | Reply::Error(0) => return Ok(()),
                    Reply::Error(e) if e == Errno::ENOENT as i32 && q.exact.is_some() => {
                        return Ok(());
                    }
                    Reply::Error(e) => {
                        return Err(ProcessError::Netlink(std::io::Error::from_raw_os_error(e)));
                    }
                    Reply::Other(_) => {}
                }
            }
            if Instant::now() > deadline {
                break;
            }
        }
        Err(ProcessError::Timeout(self.timeout.saturating_mul(10)))
    }
}

/// This namespace's addresses, refreshed at most once per TTL.
#[derive(Debug)]
struct LocalAddrs {
    set: HashSet<IpAddr>,
    at: Option<Instant>,
}

impl LocalAddrs {
    fn refresh(&mut self) {
        self.at = Some(Instant::now());
        self.set.clear();
        let Ok(list) = nix::ifaddrs::getifaddrs() else {
            return;
        };
        for ifa in list {
            let Some(a) = ifa.address else { continue };
            if let Some(v4) = a.as_sockaddr_in() {
                self.set.insert(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = a.as_sockaddr_in6() {
                self.set.insert(IpAddr::V6(v6.ip()));
            }
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// The Linux resolver (see the parent module).
#[derive(Debug)]
pub(super) struct Resolver {
    config: ResolverConfig,
    socket: Result<DiagSocket, String>,
    scan: FdScan,
    last_full_scan: Option<Instant>,
    last_full_scan_took: Duration,
    window_start: Instant,
    window_spent: Duration,
    procs: HashMap<u32, Arc<ProcessInfo>>,
    users: HashMap<u32, Option<String>>,
    negative: HashMap<(Proto, SocketAddr, SocketAddr), (Instant, Unattributed)>,
    locals: LocalAddrs,
    stats: ResolverStats,
}

impl Resolver {
    pub(super) fn new(config: ResolverConfig) -> Resolver {
        let socket = DiagSocket::open(config.timeout).map_err(|e| e.desc().to_owned());
        Resolver {
            config,
            socket,
            scan: FdScan::default(),
            last_full_scan: None,
            last_full_scan_took: Duration::ZERO,
            window_start: Instant::now(),
            window_spent: Duration::ZERO,
            procs: HashMap::new(),
            users: HashMap::new(),
            negative: HashMap::new(),
            locals: LocalAddrs {
                set: HashSet::new(),
                at: None,
            },
            stats: ResolverStats::default(),
        }
    }

    pub(super) fn stats(&self) -> ResolverStats {
        self.stats
    }

    fn socket(&mut self) -> Result<&mut DiagSocket, ProcessError> {
        match &mut self.socket {
            Ok(s) => Ok(s),
            Err(e) => Err(ProcessError::Netlink(std::io::Error::other(e.clone()))),
        }
    }

    /// Whether `ip` is an address of this namespace (loopback ranges always are).
    fn is_local(&mut self, ip: IpAddr) -> bool {
        if ip.is_loopback() {
            return true;
        }
        let stale = self
            .locals
            .at
            .is_none_or(|t| t.elapsed() >= self.config.local_addrs_ttl);
        if stale {
            self.locals.refresh();
        }
        self.locals.set.contains(&ip)
    }

    /// The one socket `local` <-> `remote`, if any (addresses already unmapped).
    fn query_one(
        &mut self,
        proto: Proto,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<DiagMsg>, ProcessError> {
        let family = if local.is_ipv4() {
            diag::AF_INET
        } else {
            diag::AF_INET6
        };
        let q = Query {
            family,
            protocol: ip_proto(proto),
            exact: Some(Exact {
                local: local.ip(),
                local_port: local.port(),
                remote: remote.ip(),
                remote_port: remote.port(),
            }),
        };
        self.stats.netlink_queries += 1;
        let mut found = None;
        self.socket()?.exchange(&q, |d| found = Some(d))?;
        // The kernel found it by this tuple; a reply for another local port would be a bug or
        // a stale answer: not this socket.
        Ok(found.filter(|d| d.sport == local.port()))
    }

    pub(super) fn lookup(
        &mut self,
        proto: Proto,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Attribution {
        self.stats.lookups += 1;
        let (local, remote) = (unmap(local), unmap(remote));
        if local.is_ipv4() != remote.is_ipv4() {
            return Attribution::Unattributed(Unattributed::SocketNotFound);
        }
        let key = (proto, local, remote);
        if let Some((at, why)) = self.negative.get(&key) {
            if at.elapsed() < self.config.negative_ttl {
                self.stats.negative_hits += 1;
                return Attribution::Unattributed(why.clone());
            }
        }
        let found = match self.query_one(proto, local, remote) {
            Ok(f) => f,
            Err(e) => {
                return Attribution::Unattributed(Unattributed::Unavailable {
                    error: e.to_string(),
                });
            }
        };
        let Some(mut d) = found else {
            let why = if self.is_local(local.ip()) {
                Unattributed::SocketNotFound
            } else {
                Unattributed::NotLocal
            };
            self.remember_negative(key, why.clone());
            return Attribution::Unattributed(why);
        };
        if d.inode == 0 && proto == Proto::Tcp {
            let state = SocketState::from_kernel(d.state);
            if matches!(
                state,
                SocketState::SynRecv | SocketState::NewSynRecv | SocketState::Established
            ) {
                // A connection to a local server not accepted yet: half open, or established
                // in the listener's accept queue (no file until `accept()`; a lookup at the
                // SYN can run after the handshake). Its listener's process will own it. (A
                // closed socket leaves the established state at once: FIN_WAIT, TIME_WAIT.)
                let any = SocketAddr::new(
                    if local.is_ipv4() {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    },
                    0,
                );
                if let Ok(Some(l)) = self.query_one(proto, local, any) {
                    if l.inode != 0 {
                        d = l;
                    }
                }
            }
        }
        if d.inode == 0 {
            return Attribution::Unattributed(Unattributed::NoInode {
                state: SocketState::from_kernel(d.state),
            });
        }
        self.owner(u64::from(d.inode), d.uid)
    }

    fn remember_negative(&mut self, key: (Proto, SocketAddr, SocketAddr), why: Unattributed) {
        if self.negative.len() >= NEGATIVE_MAX {
            let ttl = self.config.negative_ttl;
            self.negative.retain(|_, (at, _)| at.elapsed() < ttl);
            if self.negative.len() >= NEGATIVE_MAX {
                self.negative.clear();
            }
        }
        self.negative.insert(key, (Instant::now(), why));
    }

    pub(super) fn lookup_flow(
        &mut self,
        proto: Proto,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Attribution {
        // The sender first unless only the receiver is local: usually one query.
        let order = if !self.is_local(unmap(src).ip()) && self.is_local(unmap(dst).ip()) {
            [(dst, src), (src, dst)]
        } else {
            [(src, dst), (dst, src)]
        };
        let mut missing = Vec::with_capacity(2);
        for (local, remote) in order {
            match self.lookup(proto, local, remote) {
                Attribution::Unattributed(why) if why.is_socket_missing() => missing.push(why),
                other => return other,
            }
        }
        let why = if missing.contains(&Unattributed::SocketNotFound) {
            Unattributed::SocketNotFound
        } else {
            Unattributed::NotLocal
        };
        Attribution::Unattributed(why)
    }

    /// The process holding socket `inode` (owned by `uid`), through the cache and rescans.
    fn owner(&mut self, inode: u64, uid: u32) -> Attribution {
        let root = self.config.proc_root.clone();
        if let Some(&o) = self.scan.inodes.get(&inode) {
            if procfs::still_owns(&root, o, inode) {
                if let Some(p) = self.process(o.pid) {
                    self.stats.owner_hits += 1;
                    return Attribution::Process(p);
                }
            }
        }
        // Full walks: at most one per `min_full_scan_interval`, and per ten times the last
        // one's duration (at most a tenth of a core however large /proc is).
        let interval = self
            .config
            .min_full_scan_interval
            .max(self.last_full_scan_took.saturating_mul(10));
        let full = self.last_full_scan.is_none_or(|t| t.elapsed() >= interval);
        if full {
            self.full_scan();
        } else {
            // Quick walks: at most `scan_budget` of them per 100 ms window.
            let now = Instant::now();
            if now.duration_since(self.window_start) >= SCAN_WINDOW {
                self.window_start = now;
                self.window_spent = Duration::ZERO;
            }
            if self.window_spent >= self.config.scan_budget {
                return Attribution::Unattributed(Unattributed::RateLimited { inode, uid });
            }
            self.quick_scan();
            self.window_spent += now.elapsed();
        }
        if let Some(&o) = self.scan.inodes.get(&inode) {
            if let Some(p) = self.process(o.pid) {
                return Attribution::Process(p);
            }
        }
        Attribution::Unattributed(if self.scan.denied_uid(uid) {
            Unattributed::NoPermission { inode, uid }
        } else if full {
            Unattributed::OwnerNotVisible { inode, uid }
        } else {
            Unattributed::RateLimited { inode, uid }
        })
    }

    fn full_scan(&mut self) {
        let t = Instant::now();
        self.stats.full_scans += 1;
        let mut scan = FdScan::default();
        procfs::scan_fds(&self.config.proc_root, |_| true, &mut scan);
        self.procs.retain(|pid, _| scan.pids.contains(pid));
        self.scan = scan;
        self.last_full_scan = Some(Instant::now());
        self.last_full_scan_took = t.elapsed();
        self.stats.scan_micros += micros(self.last_full_scan_took);
    }

    /// Between full scans: the processes started since the last full scan (short-lived ones)
    /// and those that held sockets then (the likely owners of a new one).
    fn quick_scan(&mut self) {
        let t = Instant::now();
        self.stats.quick_scans += 1;
        let mut new = FdScan::default();
        let (known, holders) = (&self.scan.pids, &self.scan.holders);
        procfs::scan_fds(
            &self.config.proc_root,
            |pid| !known.contains(&pid) || holders.contains(&pid),
            &mut new,
        );
        self.scan.pids.extend(new.pids);
        self.scan.denied.extend(new.denied);
        self.scan.holders.extend(new.holders);
        for (k, v) in new.inodes {
            self.scan.inodes.insert(k, v);
        }
        self.stats.scan_micros += micros(t.elapsed());
    }

    /// `pid`'s description, cached while its start time stays the same (pids are reused).
    fn process(&mut self, pid: u32) -> Option<Arc<ProcessInfo>> {
        let root = &self.config.proc_root;
        let start = procfs::start_time(root, pid);
        if let Some(p) = self.procs.get(&pid) {
            if p.start_time == start && start.is_some() {
                return Some(Arc::clone(p));
            }
        }
        let mut info = procfs::read_process(root, pid)?;
        if let Some(uid) = info.uid {
            info.user = self
                .users
                .entry(uid)
                .or_insert_with(|| user_name(uid))
                .clone();
        }
        let info = Arc::new(info);
        self.procs.insert(pid, Arc::clone(&info));
        Some(info)
    }

    pub(super) fn sockets(&mut self) -> Result<Vec<SocketEntry>, ProcessError> {
        let mut msgs = Vec::new();
        for proto in [Proto::Tcp, Proto::Udp] {
            for family in [diag::AF_INET, diag::AF_INET6] {
                let q = Query {
                    family,
                    protocol: ip_proto(proto),
                    exact: None,
                };
                self.stats.netlink_queries += 1;
                self.socket()?.exchange(&q, |d| msgs.push((proto, d)))?;
            }
        }
        if self
            .last_full_scan
            .is_none_or(|t| t.elapsed() >= self.config.min_full_scan_interval)
        {
            self.full_scan();
        }
        let mut out = Vec::with_capacity(msgs.len());
        for (proto, d) in msgs {
            let family = match d.family {
                diag::AF_INET => Family::Ipv4,
                diag::AF_INET6 => Family::Ipv6,
                _ => continue,
            };
            let inode = u64::from(d.inode);
            let owner = (inode != 0)
                .then(|| self.scan.inodes.get(&inode).copied())
                .flatten();
            let process = owner.and_then(|o| self.process(o.pid));
            out.push(SocketEntry {
                proto,
                family,
                state: SocketState::from_kernel(d.state),
                local: SocketAddr::new(d.src, d.sport),
                remote: SocketAddr::new(d.dst, d.dport),
                inode,
                uid: d.uid,
                process,
            });
        }
        Ok(out)
    }
}

fn ip_proto(p: Proto) -> u8 {
    match p {
        Proto::Tcp => diag::IPPROTO_TCP,
        Proto::Udp => diag::IPPROTO_UDP,
    }
}

/// The user database's name of `uid`.
fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}
