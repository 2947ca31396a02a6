//! Live capture through libpcap (the `pcap` crate): any device libpcap opens, including Linux's
//! `any` pseudo-device.
//!
//! Every interface in [`LiveConfig::interfaces`] gets its own libpcap handle (libpcap opens one
//! device per handle) and its own entry in [`CaptureSource::interfaces`]; `any` captures every
//! interface through one handle and must then be the only name. Each handle is configured with
//! the snaplen, buffer size, promiscuous mode (never on `any`, which libpcap refuses), immediate
//! mode, read timeout and the BPF filter (compiled and attached by libpcap itself, so it runs in
//! the kernel where the platform can) of the [`LiveConfig`].
//!
//! How packets are read: every handle is put in non-blocking mode, and [`PcapSource`] waits in
//! `poll(2)` on the handles' selectable descriptors plus a pipe written by the
//! [`StopHandle`]'s waker, for at most [`LiveConfig::timeout`]. A blocking `pcap_next_ex` may
//! never return on an idle interface (the Linux ring only hands over a block once a packet has
//! arrived); this way [`Next::Timeout`] comes on time and `stop` ends a wait at once.
//! With several handles, the ready ones are served in turn (round robin): packets of one
//! interface keep their order; across interfaces they come in the order the reader finds them,
//! not strictly by timestamp.
//!
//! What the metadata says:
//! - timestamps in nanoseconds when libpcap grants nanosecond precision (requested on every
//!   handle; Linux always grants it), else microseconds scaled to nanoseconds;
//! - the link type libpcap reports (`DLT_*`, mapped to the pcap-file `LINKTYPE_*` netmon
//!   uses): Ethernet on ordinary devices, Linux cooked (SLL, or SLL2 where chosen) on `any`;
//!   link types netmon cannot parse are refused when opening;
//! - the direction: libpcap does not report it for ordinary devices ([`Direction::Unknown`]);
//!   on cooked links (`any`) it is read from the SLL/SLL2 header's packet type
//!   (`PACKET_OUTGOING` → [`Direction::Outbound`], host/broadcast/multicast/other-host →
//!   [`Direction::Inbound`]). libpcap on Linux itself drops loopback's outgoing copies, so a
//!   packet on `lo` is seen once.
//! - kernel counters from `pcap_stats`: `ps_recv` → [`CaptureStats::kernel_received`],
//!   `ps_drop` → [`CaptureStats::kernel_dropped`], `ps_ifdrop` →
//!   [`CaptureStats::iface_dropped`], counted from the moment the source was opened (the
//!   32-bit libpcap counters are widened, wrap-arounds included, as long as `stats` is called
//!   at least once per 2³² packets).
//!
//! Copies: this module lends the bytes libpcap returns and allocates nothing per packet.
//! (On Linux, libpcap's `pcap_next_ex` itself copies each frame out of its ring into a buffer
//! of the handle — use the afpacket backend for a copy-free path.)
//!
//! The module has no `unsafe` code: libpcap through the `pcap` crate, `poll` and the pipe
//! through `nix`.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use ::pcap::{Active, Capture, Precision};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use netmon_types::{LinkType, Timestamp};

use crate::live::LiveConfig;
use crate::{
    CaptureError, CaptureSource, CaptureStats, Direction, Interface, Next, PacketMeta, RawPacket,
    StopHandle,
};

/// The backend's name in errors.
const BACKEND: &str = "pcap";

/// Most interfaces one source opens (one libpcap handle each); more: use `any`.
pub const MAX_INTERFACES: usize = 32;

/// Whether `poll` on a handle's descriptor also reports packets libpcap already holds. On
/// Linux libpcap reads in place from the kernel's ring, and the socket stays readable while a
/// handed-over block (or frame) is not given back; elsewhere (BPF) libpcap reads a whole buffer
/// into user space, which `poll` cannot see, so after a packet the same handle is asked again
/// before waiting.
const POLL_SEES_BUFFERED: bool = cfg!(target_os = "linux");

/// Savefile magic numbers: libpcap writes the handle's timestamp precision into the header.
const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const MAGIC_NANO: u32 = 0xa1b2_3c4d;

/// Linux `sll_pkttype` values in cooked headers.
const PACKET_OTHERHOST: u16 = 3;
const PACKET_OUTGOING: u16 = 4;

/// One opened device.
struct Handle {
    /// The libpcap handle. A `RefCell` so that [`CaptureSource::stats`] (`&self`) can call
    /// `pcap_stats` (`&mut` in the `pcap` crate); `next_packet` uses `get_mut`, so no runtime
    /// borrow is ever held and `stats` always gets it.
    cap: RefCell<Capture<Active>>,
    /// A duplicate of the handle's selectable descriptor, polled without borrowing `cap`.
    fd: OwnedFd,
    /// Whether libpcap gives nanosecond timestamps (else microseconds).
    nano: bool,
    link_type: LinkType,
    /// The last packet came from this handle (libpcap may hold more; see
    /// [`POLL_SEES_BUFFERED`]).
    pending: bool,
    kernel: Cell<Kernel>,
}

/// libpcap's cumulative 32-bit counters, widened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Kernel {
    /// Last raw values read (received, dropped, interface-dropped).
    last: [u32; 3],
    /// Totals since the source was opened.
    total: [u64; 3],
    /// At least one read succeeded.
    ok: bool,
}

impl Kernel {
    /// Adds what changed since the last read (wrapping, as libpcap's counters do).
    fn update(self, now: [u32; 3]) -> Kernel {
        let mut k = self;
        for ((t, l), n) in k.total.iter_mut().zip(k.last.iter_mut()).zip(now) {
            *t = t.saturating_add(u64::from(n.wrapping_sub(*l)));
            *l = n;
        }
        k.ok = true;
        k
    }
}

impl Handle {
    /// Reads `pcap_stats` into the widened counters.
    fn refresh(&self) {
        let Ok(mut cap) = self.cap.try_borrow_mut() else {
            return;
        };
        if let Ok(s) = cap.stats() {
            self.kernel.set(
                self.kernel
                    .get()
                    .update([s.received, s.dropped, s.if_dropped]),
            );
        }
    }
}

/// A live capture on one or several devices through libpcap (see the module docs).
pub struct PcapSource {
    handles: Vec<Handle>,
    interfaces: Vec<Interface>,
    /// Read end of the stop pipe (the waker writes a byte to the other end).
    wake: OwnedFd,
    stop: StopHandle,
    timeout: Duration,
    /// Where the round robin over ready handles starts next.
    next: usize,
    packets: u64,
    bytes: u64,
    /// An error ended the capture.
    done: bool,
}

impl std::fmt::Debug for PcapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nano: Vec<bool> = self.handles.iter().map(|h| h.nano).collect();
        f.debug_struct("PcapSource")
            .field("interfaces", &self.interfaces)
            .field("nanosecond_timestamps", &nano)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What waiting found.
enum Wait {
    /// Handle `i` has something (or an error) to read.
    Ready(usize),
    Timeout,
    Stopped,
}

impl PcapSource {
    /// Opens every interface of `cfg` with libpcap (in the calling thread's network namespace,
    /// on Linux).
    ///
    /// Errors: [`CaptureError::InvalidArgument`] for no interface, `any` beside other names or
    /// more than [`MAX_INTERFACES`]; [`CaptureError::PermissionDenied`] without capture
    /// privileges; [`CaptureError::NoSuchInterface`]; [`CaptureError::BadFilter`] when libpcap
    /// cannot compile the filter; [`CaptureError::UnsupportedLinkType`] for a device whose
    /// frames netmon cannot parse; [`CaptureError::Io`] for anything else libpcap reports.
    pub fn open(cfg: &LiveConfig) -> Result<PcapSource, CaptureError> {
        let mut names: Vec<&str> = Vec::with_capacity(cfg.interfaces.len());
        for n in &cfg.interfaces {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        if names.is_empty() {
            return Err(CaptureError::InvalidArgument("no interface given".into()));
        }
        if names.len() > 1 && names.contains(&"any") {
            return Err(CaptureError::InvalidArgument(
                "`any` already captures every interface: give it alone".into(),
            ));
        }
        if names.len() > MAX_INTERFACES {
            return Err(CaptureError::InvalidArgument(format!(
                "{} interfaces: the pcap backend opens at most {MAX_INTERFACES} (one libpcap \
                 handle each); use `any`",
                names.len()
            )));
        }

        let mut handles = Vec::with_capacity(names.len());
        let mut interfaces = Vec::with_capacity(names.len());
        for name in names {
            let h = open_device(name, cfg)?;
            interfaces.push(Interface {
                name: name.to_owned(),
                description: (name == "any").then(|| "all interfaces (Linux cooked)".to_owned()),
                link_type: h.link_type,
                snaplen: cfg.snaplen,
            });
            handles.push(h);
        }

        // The stop handle's waker: one byte into a pipe polled beside the handles.
        let (rx, tx) = nix::unistd::pipe().map_err(|e| io_err("pipe", e))?;
        for fd in [&rx, &tx] {
            fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| io_err("pipe", e))?;
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| io_err("pipe", e))?;
        }
        let stop = StopHandle::with_waker(move || {
            // Non-blocking: if the pipe were full, the poll would be woken anyway.
            let _ = nix::unistd::write(&tx, &[1]);
        });

        // Counters from now on (libpcap may have counted packets before the filter was set).
        for h in &handles {
            h.refresh();
            let k = h.kernel.get();
            h.kernel.set(Kernel { total: [0; 3], ..k });
        }
        Ok(PcapSource {
            handles,
            interfaces,
            wake: rx,
            stop,
            timeout: cfg.timeout,
            next: 0,
            packets: 0,
            bytes: 0,
            done: false,
        })
    }

    /// Whether the timestamps of interface `iface` (an index into
    /// [`CaptureSource::interfaces`]) have nanosecond precision (`false`: microseconds).
    pub fn nanosecond_timestamps(&self, iface: usize) -> Option<bool> {
        self.handles.get(iface).map(|h| h.nano)
    }

    /// Waits until a handle is readable, the source is stopped, or the timeout passes.
    fn wait(&self) -> Result<Wait, CaptureError> {
        // Round robin: a handle that may hold packets in user space is served without waiting.
        let n = self.handles.len();
        if !POLL_SEES_BUFFERED {
            if let Some(i) = (0..n)
                .map(|k| (self.next + k) % n)
                .find(|&i| self.handles.get(i).is_some_and(|h| h.pending))
            {
                return Ok(Wait::Ready(i));
            }
        }
        let deadline = Instant::now().checked_add(self.timeout);
        loop {
            if self.stop.is_stopped() {
                return Ok(Wait::Stopped);
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            // Rounded up, so a wait never ends a fraction of a millisecond early.
            let ms = left.as_nanos().div_ceil(1_000_000);
            let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            // Slot 0: the stop pipe; slot 1 + i: handle i. Unused slots repeat the pipe
            // (a fixed array: nothing allocated per wait).
            let mut fds: [PollFd<'_>; MAX_INTERFACES + 1] = std::array::from_fn(|s| {
                let fd = s
                    .checked_sub(1)
                    .and_then(|i| self.handles.get(i))
                    .map_or(self.wake.as_fd(), |h| h.fd.as_fd());
                PollFd::new(fd, PollFlags::POLLIN)
            });
            let used = fds.get_mut(..=n).unwrap_or_default();
            match nix::poll::poll(used, timeout) {
                Ok(0) => {
                    if left.is_zero() || deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(Wait::Timeout);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io_err("poll", e)),
            }
            if self.stop.is_stopped() {
                return Ok(Wait::Stopped);
            }
            let ready = |s: usize| {
                used.get(s)
                    .and_then(PollFd::revents)
                    .is_some_and(|r| !r.is_empty())
            };
            if let Some(i) = (0..n).map(|k| (self.next + k) % n).find(|&i| ready(i + 1)) {
                return Ok(Wait::Ready(i));
            }
            // Only the pipe, and not stopped: cannot happen (only `stop` writes to it); empty
            // it so a stray byte cannot keep the poll spinning.
            let _ = nix::unistd::read(&self.wake, &mut [0u8; 16]);
        }
    }
}

/// Opens, configures and activates one device.
fn open_device(name: &str, cfg: &LiveConfig) -> Result<Handle, CaptureError> {
    let any = name == "any";
    let timeout_ms = i32::try_from(cfg.timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    let inactive = Capture::from_device(name).map_err(|e| open_err(name, e))?;
    let cap = inactive
        // libpcap refuses promiscuous mode on `any` (a warning the crate treats as failure).
        .promisc(cfg.promiscuous && !any)
        .snaplen(i32::try_from(cfg.snaplen).unwrap_or(i32::MAX))
        .buffer_size(i32::try_from(cfg.buffer_bytes).unwrap_or(i32::MAX))
        .immediate_mode(cfg.immediate)
        // On Linux (TPACKET_V3) this is how long a block waits for more packets.
        .timeout(timeout_ms)
        .precision(Precision::Nano)
        .open()
        .map_err(|e| open_err(name, e))?;
    let mut cap = cap.setnonblock().map_err(|e| open_err(name, e))?;

    let dlt = cap.get_datalink().0;
    let link_type = link_type_of(dlt).ok_or_else(|| CaptureError::UnsupportedLinkType {
        path: name.to_owned(),
        link_type: LinkType(u32::try_from(dlt).unwrap_or(u32::MAX)),
    })?;

    if let Some(expr) = &cfg.filter {
        // Compile first, so a syntax error is told apart from a failure to attach.
        cap.compile(expr, true)
            .map_err(|e| CaptureError::BadFilter {
                filter: expr.clone(),
                reason: message(&e),
            })?;
        cap.filter(expr, true).map_err(|e| open_err(name, e))?;
    }

    let nano = probe_nano(&cap).unwrap_or(cfg!(target_os = "linux"));
    let fd = cap
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| CaptureError::Io {
            path: name.to_owned(),
            source: e,
        })?;
    Ok(Handle {
        cap: RefCell::new(cap),
        fd,
        nano,
        link_type,
        pending: false,
        kernel: Cell::new(Kernel::default()),
    })
}

/// The timestamp precision libpcap granted: `Some(true)` for nanoseconds.
///
/// The `pcap` crate does not expose `pcap_get_tstamp_precision`, and a refused
/// `pcap_set_tstamp_precision` is silent; but a savefile header states the handle's precision
/// in its magic number. So libpcap writes one into a pipe (`/dev/fd/N`) and we read it back.
/// `None` if that is not possible here (no `/dev/fd`, a link type savefiles cannot hold).
fn probe_nano(cap: &Capture<Active>) -> Option<bool> {
    let (rx, tx) = nix::unistd::pipe().ok()?;
    let path = format!("/dev/fd/{}", tx.as_raw_fd());
    // Written when the savefile is closed (dropped): a 24-byte header, well under a pipe's
    // capacity. Every write end is closed before the read, so the read cannot block.
    let written = cap.savefile(&path).map(drop).is_ok();
    drop(tx);
    if !written {
        return None;
    }
    let mut magic = [0u8; 4];
    let n = nix::unistd::read(&rx, &mut magic).ok()?;
    match (n, u32::from_ne_bytes(magic)) {
        (4, MAGIC_NANO) => Some(true),
        (4, MAGIC_MICRO) => Some(false),
        _ => None,
    }
}

/// The netmon link type of libpcap's `DLT_*` value, if netmon parses it.
fn link_type_of(dlt: i32) -> Option<LinkType> {
    let lt = match dlt {
        // OpenBSD numbers DLT_LOOP 12 and DLT_RAW 14; everywhere else DLT_RAW is 12 (netmon
        // reads it as raw IP) and the other values equal the savefile LINKTYPE_* values.
        #[cfg(target_os = "openbsd")]
        12 => LinkType::LOOP,
        #[cfg(target_os = "openbsd")]
        14 => LinkType::RAW,
        d => LinkType(u32::try_from(d).ok()?),
    };
    lt.is_supported().then_some(lt)
}

/// The direction a Linux cooked header states (`sll_pkttype`), [`Direction::Unknown`] for
/// other link types.
///
/// ```text
/// SLL  (16 bytes): pkttype be16 | hatype be16 | halen be16 | addr[8] | protocol be16
/// SLL2 (20 bytes): protocol be16 | reserved be16 | ifindex be32 | hatype be16 |
///                  pkttype u8 | halen u8 | addr[8]
/// ```
fn direction_of(link_type: LinkType, frame: &[u8]) -> Direction {
    let pkttype = match link_type {
        LinkType::LINUX_SLL => frame
            .get(..2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_be_bytes),
        LinkType::LINUX_SLL2 => frame.get(10).copied().map(u16::from),
        _ => None,
    };
    match pkttype {
        Some(PACKET_OUTGOING) => Direction::Outbound,
        Some(0..=PACKET_OTHERHOST) => Direction::Inbound,
        _ => Direction::Unknown,
    }
}

/// A libpcap timestamp (`tv_sec`, and `tv_usec` holding micro- or nanoseconds) in nanoseconds.
fn timestamp(secs: i64, frac: i64, nano: bool) -> Timestamp {
    let frac_ns = if nano {
        frac
    } else {
        frac.saturating_mul(1000)
    };
    Timestamp::from_nanos(secs.saturating_mul(1_000_000_000).saturating_add(frac_ns))
}

/// libpcap's own message (without the crate's "libpcap error: " prefix).
fn message(e: &::pcap::Error) -> String {
    match e {
        ::pcap::Error::PcapError(m) => m.clone(),
        ::pcap::Error::InvalidInputString => "contains a NUL byte".into(),
        other => other.to_string(),
    }
}

/// Maps an error met opening device `name`. The `pcap` crate keeps only libpcap's message,
/// not its status code, so the message decides (libpcap 1.10: "You don't have permission to
/// perform this capture on that device (socket: Operation not permitted)", "No such device
/// exists").
fn open_err(name: &str, e: ::pcap::Error) -> CaptureError {
    if e == ::pcap::Error::InvalidInputString {
        return CaptureError::NoSuchInterface {
            name: name.to_owned(),
        };
    }
    let msg = message(&e);
    let lower = msg.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        return CaptureError::PermissionDenied {
            what: name.to_owned(),
            backend: BACKEND,
        };
    }
    if lower.contains("no such device") {
        return CaptureError::NoSuchInterface {
            name: name.to_owned(),
        };
    }
    CaptureError::Io {
        path: name.to_owned(),
        source: io::Error::other(msg),
    }
}

fn io_err(what: &str, e: nix::errno::Errno) -> CaptureError {
    CaptureError::Io {
        path: what.to_owned(),
        source: io::Error::from(e),
    }
}

impl CaptureSource for PcapSource {
    fn clock(&self) -> Option<Timestamp> {
        Some(crate::wall_clock())
    }

    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        if self.done || self.stop.is_stopped() {
            return Ok(Next::End);
        }
        let i = match self.wait()? {
            Wait::Ready(i) => i,
            Wait::Timeout => return Ok(Next::Timeout),
            Wait::Stopped => return Ok(Next::End),
        };
        let n = self.handles.len();
        let Some(h) = self.handles.get_mut(i) else {
            return Ok(Next::Timeout);
        };
        // The one read of this call: a packet lent from libpcap can only be returned from a
        // read whose failure path does not read again (the borrow checker's rule), so when
        // the poll woke for nothing (libpcap discarded what arrived) this is a (short)
        // timeout tick.
        match h.cap.get_mut().next_packet() {
            Ok(p) => {
                h.pending = true;
                self.next = (i + 1) % n.max(1);
                let data = p.data;
                let cap_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                let orig_len = p.header.len.max(cap_len);
                #[allow(clippy::unnecessary_cast)] // time_t/suseconds_t differ by platform
                let ts = timestamp(
                    p.header.ts.tv_sec as i64,
                    p.header.ts.tv_usec as i64,
                    h.nano,
                );
                self.packets += 1;
                self.bytes += u64::from(orig_len);
                Ok(Next::Packet(RawPacket {
                    meta: PacketMeta {
                        direction: direction_of(h.link_type, data),
                        ts,
                        iface: u32::try_from(i).unwrap_or(u32::MAX),
                        iface_name: self.interfaces.get(i).map(|f| f.name.as_str()),
                        link_type: h.link_type,
                        cap_len,
                        orig_len,
                    },
                    data,
                }))
            }
            Err(::pcap::Error::TimeoutExpired) => {
                h.pending = false;
                Ok(Next::Timeout)
            }
            Err(::pcap::Error::NoMorePackets) => {
                self.done = true;
                Ok(Next::End)
            }
            Err(e) => {
                self.done = true;
                let name = self.interfaces.get(i).map_or("pcap", |f| f.name.as_str());
                Err(CaptureError::Io {
                    path: name.to_owned(),
                    source: io::Error::other(message(&e)),
                })
            }
        }
    }

    fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn stats(&self) -> CaptureStats {
        let mut total = [0u64; 3];
        let mut ok = false;
        for h in &self.handles {
            h.refresh();
            let k = h.kernel.get();
            if k.ok {
                ok = true;
                for (t, v) in total.iter_mut().zip(k.total) {
                    *t = t.saturating_add(v);
                }
            }
        }
        let [received, dropped, if_dropped] = total;
        CaptureStats {
            packets: self.packets,
            bytes: self.bytes,
            kernel_received: ok.then_some(received),
            kernel_dropped: ok.then_some(dropped),
            iface_dropped: ok.then_some(if_dropped),
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
    fn dlt_values_map_to_supported_link_types_only() {
        assert_eq!(link_type_of(1), Some(LinkType::ETHERNET));
        assert_eq!(link_type_of(113), Some(LinkType::LINUX_SLL));
        assert_eq!(link_type_of(276), Some(LinkType::LINUX_SLL2));
        assert_eq!(link_type_of(0), Some(LinkType::NULL));
        assert_eq!(link_type_of(101), Some(LinkType::RAW));
        #[cfg(not(target_os = "openbsd"))]
        assert_eq!(link_type_of(12), Some(LinkType::RAW_BSD));
        // 802.11 with radiotap, USB, negative: refused.
        assert_eq!(link_type_of(127), None);
        assert_eq!(link_type_of(220), None);
        assert_eq!(link_type_of(-1), None);
    }

    #[test]
    fn cooked_headers_give_the_direction() {
        let mut sll = [0u8; 16];
        assert_eq!(direction_of(LinkType::LINUX_SLL, &sll), Direction::Inbound);
        sll[1] = 4;
        assert_eq!(direction_of(LinkType::LINUX_SLL, &sll), Direction::Outbound);
        sll[1] = 3;
        assert_eq!(direction_of(LinkType::LINUX_SLL, &sll), Direction::Inbound);
        sll[1] = 7; // PACKET_KERNEL
        assert_eq!(direction_of(LinkType::LINUX_SLL, &sll), Direction::Unknown);
        sll[0] = 1; // 0x0104: not a packet type
        assert_eq!(direction_of(LinkType::LINUX_SLL, &sll), Direction::Unknown);

        let mut sll2 = [0u8; 20];
        sll2[10] = 4;
        assert_eq!(
            direction_of(LinkType::LINUX_SLL2, &sll2),
            Direction::Outbound
        );
        sll2[10] = 1;
        assert_eq!(
            direction_of(LinkType::LINUX_SLL2, &sll2),
            Direction::Inbound
        );
        // Truncated headers and other link types: unknown, no panic.
        assert_eq!(
            direction_of(LinkType::LINUX_SLL2, &sll2[..10]),
            Direction::Unknown
        );
        assert_eq!(
            direction_of(LinkType::LINUX_SLL, &sll[..1]),
            Direction::Unknown
        );
        assert_eq!(direction_of(LinkType::ETHERNET, &sll2), Direction::Unknown);
    }

    #[test]
    fn timestamps_scale_micro_and_keep_nano() {
        assert_eq!(
            timestamp(1_700_000_000, 123_456_789, true),
            Timestamp::from_secs_nanos(1_700_000_000, 123_456_789)
        );
        assert_eq!(
            timestamp(1_700_000_000, 123_456, false),
            Timestamp::from_secs_nanos(1_700_000_000, 123_456_000)
        );
        // Hostile values saturate instead of overflowing.
        assert_eq!(
            timestamp(i64::MAX, i64::MAX, false),
            Timestamp::from_nanos(i64::MAX)
        );
        assert_eq!(
            timestamp(i64::MIN, -1, true),
            Timestamp::from_nanos(i64::MIN)
        );
    }

    #[test]
    fn kernel_counters_widen_across_wraps() {
        let k = Kernel::default().update([10, 1, 0]);
        assert_eq!((k.total, k.ok), ([10, 1, 0], true));
        let k = k.update([u32::MAX, 2, 0]);
        assert_eq!(k.total, [u64::from(u32::MAX), 2, 0]);
        // libpcap's u32 wrapped: 5 more after u32::MAX.
        let k = k.update([4, 2, 3]);
        assert_eq!(k.total, [u64::from(u32::MAX) + 5, 2, 3]);
    }

    #[test]
    fn libpcap_messages_map_to_typed_errors() {
        let e = |m: &str| open_err("eth9", ::pcap::Error::PcapError(m.into()));
        assert!(matches!(
            e(
                "You don't have permission to perform this capture on that device \
               (socket: Operation not permitted)"
            ),
            CaptureError::PermissionDenied {
                backend: "pcap",
                ..
            }
        ));
        assert!(matches!(
            e("socket: Operation not permitted"),
            CaptureError::PermissionDenied { .. }
        ));
        assert!(matches!(
            e("No such device exists"),
            CaptureError::NoSuchInterface { ref name } if name == "eth9"
        ));
        assert!(matches!(
            open_err("a\0b", ::pcap::Error::InvalidInputString),
            CaptureError::NoSuchInterface { .. }
        ));
        let other = e("can't mmap rx ring: Cannot allocate memory");
        assert!(matches!(other, CaptureError::Io { .. }));
        assert!(
            other.to_string().contains("Cannot allocate memory"),
            "{other}"
        );
    }
}
