//! Linux AF_PACKET capture through a TPACKET_V3 memory-mapped ring (no libpcap needed).
//!
//! The kernel fills a ring of blocks shared with us; a block holds many packets and is handed
//! over whole (when full, or [`LiveConfig::timeout`] after its first packet). We walk its packets
//! in place — [`CaptureSource::next_packet`] lends a slice of the ring, nothing is copied — and
//! give the block back when the next one is needed.
//!
//! ```text
//! ring:  | block 0 | block 1 | ... | block N-1 |        (mmap of the socket, N × block size)
//! block: tpacket_block_desc { version, offset_to_priv, hdr.bh1 { block_status, num_pkts,
//!                             offset_to_first_pkt, blk_len, seq_num, ts_first, ts_last } }
//!        then num_pkts × { tpacket3_hdr | sockaddr_ll | (reserve) | frame }, each at
//!        tp_next_offset from the previous.
//! tpacket3_hdr { tp_next_offset u32, tp_sec u32, tp_nsec u32, tp_snaplen u32, tp_len u32,
//!                tp_status u32, tp_mac u16, tp_net u16, hv1 { tp_rxhash u32, tp_vlan_tci u32,
//!                tp_vlan_tpid u16, pad u16 }, pad[8] }                     (48 bytes)
//! sockaddr_ll  { sll_family u16, sll_protocol be16, sll_ifindex i32, sll_hatype u16,
//!                sll_pkttype u8, sll_halen u8, sll_addr[8] }               (at offset 48)
//! ```
//!
//! What the ring adds to the packet: kernel timestamps in nanoseconds, the direction
//! (`PACKET_OUTGOING`; on loopback each packet is seen leaving and arriving, and only the
//! arrival is kept), VLAN tags the NIC stripped (put back in front of the frame, as libpcap
//! does, in 4 bytes reserved with `PACKET_RESERVE`), kernel drop counters
//! (`PACKET_STATISTICS`), and fanout groups so several sockets share an interface.
//!
//! This is the crate's one module with `unsafe` code: socket options, `mmap`, `poll` and
//! reads of the shared ring. Every block is checked before its bytes are trusted.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use netmon_types::{LinkType, Timestamp};

use crate::filter::{self, BpfProgram};
use crate::live::{FanoutMode, LiveConfig};
use crate::{
    CaptureError, CaptureSource, CaptureStats, Direction, Interface, Next, PacketMeta, RawPacket,
    StopHandle,
};

const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const PACKET_OUTGOING: u8 = 4;
/// Bytes reserved in front of every frame: room to put a stripped VLAN tag back.
const RESERVE: u32 = 4;
/// Offsets in a block descriptor (`tpacket_block_desc` with `tpacket_hdr_v1` at 8).
const BLK_STATUS: usize = 8;
const BLK_NUM_PKTS: usize = 12;
const BLK_FIRST: usize = 16;
/// Size of `tpacket3_hdr`; `sockaddr_ll` follows.
const HDR3_LEN: usize = 48;
/// Largest ring we map (4 GiB would overflow the kernel's u32 sizes).
const MAX_RING: usize = 1 << 31;

/// `struct tpacket_req3`.
#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

/// The mapped ring; unmapped on drop.
struct Ring {
    base: *mut u8,
    len: usize,
    block_size: usize,
    blocks: usize,
}

// SAFETY: the mapping is owned by this struct alone (no aliases outside it); moving it to
// another thread moves that ownership. All reads of kernel-written memory go through
// `AfPacketSource`, which is not `Sync`.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing borrows the ring any
        // more (packets borrow `&mut AfPacketSource`, which is being dropped).
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

impl Ring {
    /// The status word of block `b`, read with acquire ordering (the kernel publishes the
    /// block's contents before setting `TP_STATUS_USER`).
    fn status(&self, b: usize) -> &AtomicU32 {
        debug_assert!(b < self.blocks);
        // SAFETY: `b < blocks`, so the word lies inside the mapping; it is 4-byte aligned
        // (blocks are page-aligned, the offset is 8); the kernel and we only access it
        // atomically (the kernel with smp_wmb + WRITE_ONCE, we through this AtomicU32).
        unsafe {
            &*self
                .base
                .add(b * self.block_size + BLK_STATUS)
                .cast::<AtomicU32>()
        }
    }

    /// Block `b` as bytes. Only valid while the block is ours (status has TP_STATUS_USER).
    fn block(&self, b: usize) -> &[u8] {
        // SAFETY: inside the mapping; while the block is user-owned the kernel does not write
        // to it, so shared reads are sound until `release` (which needs `&mut` on the
        // source, i.e. no packet borrowed from this block is alive).
        unsafe { std::slice::from_raw_parts(self.base.add(b * self.block_size), self.block_size) }
    }

    /// Block `b` writable (to move MAC addresses when re-inserting a VLAN tag).
    fn block_mut(&mut self, b: usize) -> &mut [u8] {
        // SAFETY: as `block`, and `&mut self` makes this the only view.
        unsafe {
            std::slice::from_raw_parts_mut(self.base.add(b * self.block_size), self.block_size)
        }
    }
}

/// Where the reader is in the ring.
#[derive(Clone, Copy, Default)]
struct Cursor {
    /// Current block index.
    block: usize,
    /// Whether `block` is user-owned and being walked.
    held: bool,
    /// Packets left in the held block.
    left: u32,
    /// Offset of the next packet header in the held block.
    next: usize,
}

/// A live capture on one or several interfaces through an AF_PACKET TPACKET_V3 ring.
pub struct AfPacketSource {
    fd: OwnedFd,
    wake: Arc<OwnedFd>,
    ring: Ring,
    cur: Cursor,
    interfaces: Vec<Interface>,
    /// Kernel index of each entry of `interfaces`.
    ifindexes: Vec<i32>,
    /// Index of the loopback interface among `ifindexes`, if captured: its outgoing copies
    /// are skipped.
    loopback: Option<i32>,
    stop: StopHandle,
    timeout_ms: libc::c_int,
    packets: u64,
    bytes: u64,
    skipped_outgoing: u64,
    /// Kernel counters, accumulated (the kernel resets them at each read).
    kernel: Cell<(u64, u64)>,
}

impl std::fmt::Debug for AfPacketSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketSource")
            .field("interfaces", &self.interfaces)
            .field("blocks", &self.ring.blocks)
            .field("block_size", &self.ring.block_size)
            .finish_non_exhaustive()
    }
}

fn os_err(what: &str, e: io::Error) -> CaptureError {
    if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
        return CaptureError::PermissionDenied {
            what: what.to_owned(),
            backend: "afpacket",
        };
    }
    CaptureError::Io {
        path: what.to_owned(),
        source: e,
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of `size_of::<T>()` bytes for the duration of the
    // call; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The kernel index of interface `name`, in the calling thread's network namespace.
fn ifindex(name: &str) -> Result<i32, CaptureError> {
    let c = CString::new(name).map_err(|_| CaptureError::NoSuchInterface {
        name: name.to_owned(),
    })?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    i32::try_from(i)
        .ok()
        .filter(|&i| i > 0)
        .ok_or_else(|| CaptureError::NoSuchInterface {
            name: name.to_owned(),
        })
}

/// The ARP hardware type of `name` (`SIOCGIFHWADDR`), asked through socket `fd`.
fn hatype(fd: RawFd, name: &str) -> io::Result<u16> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name; SIOCGIFHWADDR writes the
    // hardware address into its union.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFHWADDR the union holds `ifru_hwaddr`.
    Ok(unsafe { req.ifr_ifru.ifru_hwaddr.sa_family })
}

/// The link type of frames from an interface of ARP hardware type `hatype`, as SOCK_RAW
/// delivers them.
fn link_type_of(hatype: u16) -> Option<LinkType> {
    match hatype {
        // Ethernet, loopback (an Ethernet header of zeroes), IEEE 802 and friends.
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK | libc::ARPHRD_IEEE802 => {
            Some(LinkType::ETHERNET)
        }
        // tun devices and other layer-3 links: the frame is the IP packet.
        libc::ARPHRD_NONE | libc::ARPHRD_TUNNEL | libc::ARPHRD_TUNNEL6 | libc::ARPHRD_IPGRE => {
            Some(LinkType::RAW)
        }
        _ => None,
    }
}

impl AfPacketSource {
    /// Opens the ring on `cfg.interfaces` (in the calling thread's network namespace).
    ///
    /// Several interfaces share one socket, restricted to them by a kernel filter on the
    /// receiving interface; they must then have the same link type when a filter is given.
    /// `any` is not supported here (its frames have mixed link types): use the pcap backend.
    pub fn open(cfg: &LiveConfig) -> Result<AfPacketSource, CaptureError> {
        let names = &cfg.interfaces;
        if names.iter().any(|n| n == "any") {
            return Err(CaptureError::InvalidArgument(
                "the afpacket backend captures named interfaces; for `any` use --backend pcap"
                    .into(),
            ));
        }
        if names.is_empty() {
            return Err(CaptureError::InvalidArgument("no interface given".into()));
        }
        let what = names.join(",");
        // Protocol 0: the socket receives nothing until `bind` names ETH_P_ALL below, after
        // the filter and the ring are in place — so the kernel's counters and the ring start
        // together, with no unfiltered packet queued before.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err(&what, io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();

        let mut ifindexes = Vec::with_capacity(names.len());
        let mut interfaces = Vec::with_capacity(names.len());
        let mut loopback = None;
        for name in names {
            let idx = ifindex(name)?;
            if ifindexes.contains(&idx) {
                continue;
            }
            let ht = hatype(s, name).map_err(|e| os_err(name, e))?;
            let link_type = link_type_of(ht).ok_or_else(|| CaptureError::UnsupportedLinkType {
                path: name.clone(),
                link_type: LinkType(0),
            })?;
            if ht == libc::ARPHRD_LOOPBACK {
                loopback = Some(idx);
            }
            ifindexes.push(idx);
            interfaces.push(Interface {
                name: name.clone(),
                description: None,
                link_type,
                snaplen: cfg.snaplen,
            });
        }

        // The filter first, so nothing unfiltered enters the ring.
        let prog = match &cfg.filter {
            Some(expr) => {
                let lt = interfaces
                    .first()
                    .map_or(LinkType::ETHERNET, |i| i.link_type);
                if let Some(other) = interfaces.iter().find(|i| i.link_type != lt) {
                    return Err(CaptureError::InvalidArgument(format!(
                        "interfaces {} and {} have different link types, so one filter cannot \
                         serve both: capture them in separate runs",
                        names.first().map_or("", String::as_str),
                        other.name
                    )));
                }
                filter::compile(lt, cfg.snaplen, expr)?
            }
            None => BpfProgram::accept_all(cfg.snaplen),
        };
        let prog = if ifindexes.len() > 1 {
            let idx: Vec<u32> = ifindexes.iter().map(|&i| i as u32).collect();
            prog.only_ifindexes(&idx)?
        } else {
            prog
        };
        attach(s, &prog).map_err(|e| os_err(&what, e))?;

        setsockopt(s, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V3)
            .map_err(|e| os_err(&what, e))?;
        setsockopt(s, libc::SOL_PACKET, libc::PACKET_RESERVE, &RESERVE)
            .map_err(|e| os_err(&what, e))?;
        if ifindexes.len() == 1 && loopback.is_some() {
            // Linux ≥ 4.20: the kernel skips the outgoing copies itself (we also do below).
            let _ = setsockopt(s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32);
        }

        let page = 4096usize;
        // At least 8 blocks: the kernel fills one while we walk another, and with only two a
        // burst finds no free block (2 MiB as 2 × 1 MiB lost 1.2 % of a topspeed replay that
        // 8 × 256 KiB caught whole). Blocks of 128 KiB or more hold any frame below GRO's 64 KiB.
        let buffer = cfg.buffer_bytes.min(MAX_RING);
        let block_size = cfg
            .block_bytes
            .min((buffer / 8).max(128 << 10))
            .clamp(page, 1 << 26)
            .next_power_of_two();
        let blocks = (buffer / block_size).max(2);
        let frame_size = 2048u32;
        let retire_ms = if cfg.immediate {
            1
        } else {
            u32::try_from(cfg.timeout.as_millis())
                .unwrap_or(u32::MAX)
                .clamp(1, 1000)
        };
        let req = TpacketReq3 {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size,
            frame_nr: (block_size / frame_size as usize * blocks) as u32,
            retire_blk_tov: retire_ms,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| os_err(&format!("{what}: ring of {blocks} × {block_size} bytes"), e))?;
        let len = block_size * blocks;
        // SAFETY: maps the ring the kernel just allocated for this socket; the result is
        // checked; the mapping is owned by `Ring` and unmapped on drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                s,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_err(&what, io::Error::last_os_error()));
        }
        let ring = Ring {
            base: base.cast(),
            len,
            block_size,
            blocks,
        };

        // Bind to the one interface (several: stay unbound, the filter chose them).
        let bind_to = if ifindexes.len() == 1 {
            ifindexes.first().copied().unwrap_or(0)
        } else {
            0
        };
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = bind_to;
        // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
        let r = unsafe {
            libc::bind(
                s,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(os_err(&what, io::Error::last_os_error()));
        }

        if cfg.promiscuous {
            for &idx in &ifindexes {
                // SAFETY: packet_mreq is plain old data; all-zero is valid.
                let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
                mreq.mr_ifindex = idx;
                mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
                setsockopt(s, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                    .map_err(|e| os_err(&what, e))?;
            }
        }
        if let Some(f) = cfg.fanout {
            let mode = match f.mode {
                FanoutMode::Hash => libc::PACKET_FANOUT_HASH,
                FanoutMode::LoadBalance => libc::PACKET_FANOUT_LB,
                FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            };
            // Defragment before hashing, so every fragment of a datagram lands together.
            let flags = if f.mode == FanoutMode::Hash {
                libc::PACKET_FANOUT_FLAG_DEFRAG
            } else {
                0
            };
            let arg: u32 = u32::from(f.group) | ((mode | flags) << 16);
            setsockopt(s, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
                .map_err(|e| os_err(&format!("{what}: fanout group {}", f.group), e))?;
        }

        // The stop handle's waker: an eventfd polled beside the socket.
        // SAFETY: plain eventfd(2); the result is checked.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(os_err("eventfd", io::Error::last_os_error()));
        }
        // SAFETY: fresh descriptor owned by nobody else.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        let w = Arc::clone(&wake);
        let stop = StopHandle::with_waker(move || {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we keep open via `w`.
            unsafe {
                libc::write(w.as_raw_fd(), (&one as *const u64).cast(), 8);
            }
        });

        Ok(AfPacketSource {
            fd,
            wake,
            ring,
            cur: Cursor::default(),
            interfaces,
            ifindexes,
            loopback,
            stop,
            timeout_ms: libc::c_int::try_from(cfg.timeout.as_millis()).unwrap_or(1000),
            packets: 0,
            bytes: 0,
            skipped_outgoing: 0,
            kernel: Cell::new((0, 0)),
        })
    }

    /// Frames skipped because they were loopback's outgoing copies (each such frame is also
    /// seen, and counted, arriving).
    pub fn skipped_outgoing(&self) -> u64 {
        self.skipped_outgoing
    }

    /// The socket's descriptor (to poll it beside others).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn read_kernel_stats(&self) {
        let mut st = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `st` is a writable TpacketStatsV3 of `len` bytes; the kernel writes at most
        // `len` bytes and updates `len`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if r == 0 {
            let (p, d) = self.kernel.get();
            // tp_packets counts what passed the filter, drops included.
            self.kernel
                .set((p + u64::from(st.packets), d + u64::from(st.drops)));
        }
    }

    /// Gives the held block back to the kernel and moves to the next one.
    fn release(&mut self) {
        if self.cur.held {
            self.ring
                .status(self.cur.block)
                .store(TP_STATUS_KERNEL, Ordering::Release);
            self.cur.held = false;
            self.cur.block = (self.cur.block + 1) % self.ring.blocks;
        }
    }

    /// Takes the current block if the kernel handed it over.
    fn acquire(&mut self) -> bool {
        let st = self.ring.status(self.cur.block).load(Ordering::Acquire);
        if st & TP_STATUS_USER == 0 {
            return false;
        }
        let blk = self.ring.block(self.cur.block);
        let n = read_u32(blk, BLK_NUM_PKTS).unwrap_or(0);
        let first = read_u32(blk, BLK_FIRST).unwrap_or(0) as usize;
        self.cur = Cursor {
            block: self.cur.block,
            held: true,
            left: n,
            next: first,
        };
        true
    }

    /// Waits for the socket or the stop eventfd; `false` on timeout.
    fn wait(&self) -> Result<bool, CaptureError> {
        let mut fds = [
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, self.timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(true);
            }
            return Err(os_err("poll", e));
        }
        if fds[0].revents & libc::POLLERR != 0 {
            // A pending socket error (e.g. the interface went down): report it.
            let mut err: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `err` is a writable c_int of `len` bytes.
            unsafe {
                libc::getsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut len,
                );
            }
            if err != 0 {
                return Err(os_err(
                    self.interfaces.first().map_or("", |i| i.name.as_str()),
                    io::Error::from_raw_os_error(err),
                ));
            }
        }
        Ok(r > 0)
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(s.try_into().ok()?))
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(s.try_into().ok()?))
}

/// One packet's place in a block, checked against the block's bounds.
#[derive(Debug, PartialEq, Eq)]
struct Frame {
    /// Offset of the next header (0: last).
    next: u32,
    sec: u32,
    nsec: u32,
    /// Start and length of the frame bytes in the block (VLAN tag included once re-inserted).
    start: usize,
    cap: usize,
    wire: u32,
    vlan: Option<(u16, u16)>,
    ifindex: i32,
    pkttype: u8,
}

/// Reads the tpacket3 header at `off` of `blk`. `None` if anything points outside the block.
fn frame_at(blk: &[u8], off: usize) -> Option<Frame> {
    let hdr = blk.get(off..off.checked_add(HDR3_LEN + 12)?)?;
    let status = read_u32(hdr, 20)?;
    let mac = usize::from(read_u16(hdr, 24)?);
    let snap = read_u32(hdr, 12)? as usize;
    let start = off.checked_add(mac)?;
    blk.get(start..start.checked_add(snap)?)?;
    let vlan = (status & TP_STATUS_VLAN_VALID != 0).then(|| {
        let tci = read_u32(hdr, 32).unwrap_or(0) as u16;
        let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
            read_u16(hdr, 36).unwrap_or(0x8100)
        } else {
            0x8100
        };
        (tpid, tci)
    });
    Some(Frame {
        next: read_u32(hdr, 0)?,
        sec: read_u32(hdr, 4)?,
        nsec: read_u32(hdr, 8)?,
        start,
        cap: snap,
        wire: read_u32(hdr, 16)?,
        vlan,
        ifindex: i32::from_ne_bytes(hdr.get(HDR3_LEN + 4..HDR3_LEN + 8)?.try_into().ok()?),
        pkttype: *hdr.get(HDR3_LEN + 10)?,
    })
}

/// Puts a stripped VLAN tag back in front of the EtherType: moves the two MAC addresses 4
/// bytes down (into the reserved room) and writes TPID + TCI after them. Returns the new
/// start, or `None` if there is no room (then the frame is left as it is).
fn insert_vlan(blk: &mut [u8], start: usize, cap: usize, tpid: u16, tci: u16) -> Option<usize> {
    if cap < 12 || start < 4 {
        return None;
    }
    let new = start - 4;
    blk.get(new..start + cap)?;
    blk.copy_within(start..start + 12, new);
    blk.get_mut(new + 12..new + 14)?
        .copy_from_slice(&tpid.to_be_bytes());
    blk.get_mut(new + 14..new + 16)?
        .copy_from_slice(&tci.to_be_bytes());
    Some(new)
}

/// Attaches a classic BPF program to the socket.
fn attach(fd: RawFd, prog: &BpfProgram) -> io::Result<()> {
    let mut insns: Vec<libc::sock_filter> = prog
        .insns
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: u16::try_from(insns.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?,
        filter: insns.as_mut_ptr(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

impl CaptureSource for AfPacketSource {
    fn clock(&self) -> Option<Timestamp> {
        Some(crate::wall_clock())
    }

    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            if self.stop.is_stopped() {
                self.release();
                return Ok(Next::End);
            }
            if self.cur.held && self.cur.left == 0 {
                self.release();
            }
            if !self.cur.held && !self.acquire() {
                if !self.wait()? {
                    return Ok(Next::Timeout);
                }
                if !self.acquire() {
                    continue;
                }
            }
            let b = self.cur.block;
            let Some(f) = frame_at(self.ring.block(b), self.cur.next) else {
                // A header pointing outside its block: skip the rest of the block.
                self.cur.left = 0;
                continue;
            };
            self.cur.left -= 1;
            self.cur.next = if f.next == 0 {
                self.cur.left = 0;
                self.cur.next
            } else {
                self.cur.next.saturating_add(f.next as usize)
            };
            if f.pkttype == PACKET_OUTGOING && Some(f.ifindex) == self.loopback {
                self.skipped_outgoing += 1;
                continue;
            }
            let (mut start, mut cap, mut wire) = (f.start, f.cap, f.wire);
            let slot = self
                .ifindexes
                .iter()
                .position(|&i| i == f.ifindex)
                .unwrap_or(0);
            let iface = self.interfaces.get(slot);
            let link_type = iface.map_or(LinkType::ETHERNET, |i| i.link_type);
            if let (Some((tpid, tci)), LinkType::ETHERNET) = (f.vlan, link_type) {
                if let Some(s) = insert_vlan(self.ring.block_mut(b), start, cap, tpid, tci) {
                    start = s;
                    cap += 4;
                    wire = wire.saturating_add(4);
                }
            }
            let data = self.ring.block(b).get(start..start + cap).unwrap_or(&[]);
            self.packets += 1;
            self.bytes += u64::from(wire);
            let iface = self.interfaces.get(slot);
            return Ok(Next::Packet(RawPacket {
                meta: PacketMeta {
                    direction: if f.pkttype == PACKET_OUTGOING {
                        Direction::Outbound
                    } else {
                        Direction::Inbound
                    },
                    ts: Timestamp::from_secs_nanos(i64::from(f.sec), f.nsec),
                    iface: slot as u32,
                    iface_name: iface.map(|i| i.name.as_str()),
                    link_type,
                    cap_len: data.len() as u32,
                    orig_len: wire,
                },
                data,
            }));
        }
    }

    fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn stats(&self) -> CaptureStats {
        self.read_kernel_stats();
        let (received, dropped) = self.kernel.get();
        CaptureStats {
            packets: self.packets,
            bytes: self.bytes,
            kernel_received: Some(received),
            kernel_dropped: Some(dropped),
            iface_dropped: None,
        }
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u32, mac: u16, snap: u32, wire: u32, status: u32) -> Vec<u8> {
        let mut h = vec![0u8; 256];
        h[0..4].copy_from_slice(&next.to_ne_bytes());
        h[4..8].copy_from_slice(&7u32.to_ne_bytes());
        h[8..12].copy_from_slice(&9u32.to_ne_bytes());
        h[12..16].copy_from_slice(&snap.to_ne_bytes());
        h[16..20].copy_from_slice(&wire.to_ne_bytes());
        h[20..24].copy_from_slice(&status.to_ne_bytes());
        h[24..26].copy_from_slice(&mac.to_ne_bytes());
        h[32..36].copy_from_slice(&0x0064u32.to_ne_bytes());
        h[36..38].copy_from_slice(&0x88a8u16.to_ne_bytes());
        h[52..56].copy_from_slice(&3i32.to_ne_bytes());
        h[58] = PACKET_OUTGOING;
        h
    }

    #[test]
    fn frame_header_is_read_and_bounded() {
        let blk = header(0, 80, 60, 1514, TP_STATUS_USER);
        let f = frame_at(&blk, 0).unwrap();
        assert_eq!(
            f,
            Frame {
                next: 0,
                sec: 7,
                nsec: 9,
                start: 80,
                cap: 60,
                wire: 1514,
                vlan: None,
                ifindex: 3,
                pkttype: PACKET_OUTGOING
            }
        );
        // Snap length past the block's end, a header past it: refused.
        assert_eq!(frame_at(&header(0, 80, 200, 200, 1), 0), None);
        assert_eq!(frame_at(&blk, 250), None);
        assert_eq!(frame_at(&blk, usize::MAX - 3), None);
    }

    #[test]
    fn vlan_tag_is_put_back_in_front_of_the_ethertype() {
        let mut blk = header(
            0,
            80,
            20,
            20,
            TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID,
        );
        let frame: Vec<u8> = (1..=20).collect();
        blk[80..100].copy_from_slice(&frame);
        let f = frame_at(&blk, 0).unwrap();
        assert_eq!(f.vlan, Some((0x88a8, 0x64)));
        let (tpid, tci) = f.vlan.unwrap();
        let s = insert_vlan(&mut blk, f.start, f.cap, tpid, tci).unwrap();
        assert_eq!(s, 76);
        assert_eq!(&blk[76..88], &frame[..12]);
        assert_eq!(&blk[88..92], &[0x88, 0xa8, 0x00, 0x64]);
        assert_eq!(&blk[92..100], &frame[12..]);
        // No room in front, or too short a frame: left alone.
        assert_eq!(insert_vlan(&mut blk, 2, 20, tpid, tci), None);
        assert_eq!(insert_vlan(&mut blk, 80, 11, tpid, tci), None);
    }

    #[test]
    fn link_types_of_hardware_types() {
        assert_eq!(link_type_of(libc::ARPHRD_ETHER), Some(LinkType::ETHERNET));
        assert_eq!(
            link_type_of(libc::ARPHRD_LOOPBACK),
            Some(LinkType::ETHERNET)
        );
        assert_eq!(link_type_of(libc::ARPHRD_NONE), Some(LinkType::RAW));
        assert_eq!(link_type_of(libc::ARPHRD_INFINIBAND), None);
    }
}
