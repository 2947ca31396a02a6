//! macOS capture through `/dev/bpf*`: opening the device, its ioctls, waiting and reading.
//!
//! Everything that can be done without the kernel — walking the read buffer, the ioctl
//! numbers, the link-type mapping — lives in the platform-independent modules beside this
//! one; this module only makes the system calls. One device is opened per interface; a
//! read fills that device's buffer (allocated once, of the size the kernel chose), and
//! [`CaptureSource::next_packet`] lends records from it in place.
//!
//! Waiting: `poll(2)` on the devices and the read end of a pipe the [`StopHandle`] writes
//! to, for at most [`LiveConfig::timeout`]. The devices also get that timeout as their read
//! timeout (`BIOCSRTIMEOUT`), so outside immediate mode a partly filled buffer is handed
//! over after it. Should `poll` refuse a device (`POLLNVAL`, as very old macOS did), reads
//! block instead, bounded by that read timeout.
//!
//! This module is the only one of the backend with `unsafe` code; every block says why it
//! is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use netmon_types::LinkType;

use super::buffer::{Cursor, HeaderLayout, RecordInfo};
use super::{buffer_request, ioctl, link_type_of_dlt};
use crate::filter::{self, BpfProgram};
use crate::live::LiveConfig;
use crate::{
    CaptureError, CaptureSource, CaptureStats, Interface, Next, PacketMeta, RawPacket, StopHandle,
};

/// `struct bpf_stat` (BIOCGSTATS).
#[repr(C)]
#[derive(Default)]
struct BpfStat {
    bs_recv: libc::c_uint,
    bs_drop: libc::c_uint,
}

// The request numbers encode these sizes; a mismatch would let the kernel copy the wrong
// number of bytes, so it fails the build.
const _: () = assert!(std::mem::size_of::<libc::c_uint>() == ioctl::UINT_SIZE);
const _: () = assert!(std::mem::size_of::<libc::bpf_program>() == ioctl::BPF_PROGRAM_SIZE);
const _: () = assert!(std::mem::size_of::<libc::ifreq>() == ioctl::IFREQ_SIZE);
const _: () = assert!(std::mem::size_of::<libc::timeval>() == ioctl::TIMEVAL_SIZE);
const _: () = assert!(std::mem::size_of::<BpfStat>() == ioctl::BPF_STAT_SIZE);
const _: () = assert!(ioctl::BIOCSSEESENT as libc::c_ulong == libc::BIOCSSEESENT);

/// Highest `/dev/bpfN` tried.
const MAX_DEVICES: u32 = 256;

/// One open BPF device, bound to one interface.
struct Device {
    fd: OwnedFd,
    /// The read buffer, exactly the size `BIOCGBLEN` returned (a read must ask for that).
    buf: Vec<u8>,
    /// Bytes the last read returned.
    len: usize,
    cursor: Cursor,
    layout: HeaderLayout,
    link_type: LinkType,
}

/// A live capture on one or several interfaces through macOS `/dev/bpf*` devices.
pub struct BpfSource {
    devs: Vec<Device>,
    interfaces: Vec<Interface>,
    /// `[stop pipe, device 0, device 1, …]`, reused for every wait.
    pollfds: Vec<libc::pollfd>,
    /// Read end of the stop pipe (polled through `pollfds`). The waker holds it too, so a
    /// stop after this source is gone writes to a pipe that still has a reader.
    _wake_rx: Arc<OwnedFd>,
    stop: StopHandle,
    timeout_ms: libc::c_int,
    poll_works: bool,
    packets: u64,
    bytes: u64,
    malformed: u64,
    done: bool,
}

impl std::fmt::Debug for BpfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfSource")
            .field("interfaces", &self.interfaces)
            .field("poll_works", &self.poll_works)
            .finish_non_exhaustive()
    }
}

fn os_err(what: &str, e: io::Error) -> CaptureError {
    if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
        return CaptureError::PermissionDenied {
            what: what.to_owned(),
            backend: "bpf",
        };
    }
    CaptureError::Io {
        path: what.to_owned(),
        source: e,
    }
}

/// An ioctl whose parameter is a `T` the kernel reads and/or writes.
fn ioctl_with<T>(fd: RawFd, req: u32, arg: &mut T) -> io::Result<()> {
    if ioctl::param_len(req) != std::mem::size_of::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ioctl parameter of the wrong size",
        ));
    }
    // SAFETY: `arg` is a live, writable `T`, and the request's encoded length (what the
    // kernel copies in or out) was just checked to be exactly `size_of::<T>()`.
    let r = unsafe { libc::ioctl(fd, libc::c_ulong::from(req), arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// An ioctl without a parameter (`BIOCPROMISC`).
fn ioctl_void(fd: RawFd, req: u32) -> io::Result<()> {
    if ioctl::param_len(req) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ioctl needs a parameter",
        ));
    }
    // SAFETY: the request takes no parameter (length 0, checked), so the kernel reads none.
    let r = unsafe { libc::ioctl(fd, libc::c_ulong::from(req)) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_uint(fd: RawFd, req: u32, v: libc::c_uint) -> io::Result<()> {
    let mut v = v;
    ioctl_with(fd, req, &mut v)
}

/// Opens the first free BPF device.
fn open_device() -> Result<OwnedFd, CaptureError> {
    let mut last = io::Error::from_raw_os_error(libc::ENOENT);
    for n in 0..MAX_DEVICES {
        let path = format!("/dev/bpf{n}");
        let c = CString::new(path.as_str())
            .map_err(|_| CaptureError::InvalidArgument("device path with a NUL byte".into()))?;
        // SAFETY: `c` is a valid NUL-terminated path; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor nobody else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // In use by another capture: try the next one.
            Some(libc::EBUSY) => last = e,
            // No more devices (macOS creates them on demand, up to a limit).
            Some(libc::ENOENT | libc::ENXIO) => break,
            _ => return Err(os_err(&path, e)),
        }
    }
    Err(CaptureError::Io {
        path: "/dev/bpf*".into(),
        source: io::Error::new(last.kind(), format!("no free BPF device ({last})")),
    })
}

/// Attaches `prog` with BIOCSETF (which also empties the device's buffers).
fn attach(fd: RawFd, prog: &BpfProgram) -> io::Result<()> {
    let mut insns: Vec<libc::bpf_insn> = prog
        .insns
        .iter()
        .map(|i| libc::bpf_insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let mut p = libc::bpf_program {
        bf_len: libc::c_uint::try_from(insns.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?,
        bf_insns: insns.as_mut_ptr(),
    };
    // The kernel copies the instructions during the call; `insns` outlives it.
    ioctl_with(fd, ioctl::BIOCSETF, &mut p)
}

/// Opens and configures one device for interface `name`.
fn open_one(name: &str, cfg: &LiveConfig) -> Result<Device, CaptureError> {
    let no_such = || CaptureError::NoSuchInterface {
        name: name.to_owned(),
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(no_such());
    }
    let fd = open_device()?;
    let s = fd.as_raw_fd();
    let err = |e: io::Error| os_err(name, e);

    // The buffer size must be set before the interface.
    set_uint(s, ioctl::BIOCSBLEN, buffer_request(cfg.buffer_bytes)).map_err(err)?;
    // Extended headers carry the direction; without them (a kernel that refuses this
    // private request) the direction is unknown. (BIOCSETF below empties the buffers, so
    // no record of the other format is ever read.)
    let layout = if set_uint(s, ioctl::BIOCSEXTHDR, 1).is_ok() {
        HeaderLayout::DarwinExt
    } else {
        HeaderLayout::Darwin
    };

    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, b) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = b as libc::c_char;
    }
    if let Err(e) = ioctl_with(s, ioctl::BIOCSETIF, &mut req) {
        return Err(match e.raw_os_error() {
            Some(libc::ENXIO | libc::ENOENT | libc::EINVAL) => no_such(),
            _ => err(e),
        });
    }

    let mut blen: libc::c_uint = 0;
    ioctl_with(s, ioctl::BIOCGBLEN, &mut blen).map_err(err)?;
    let mut dlt: libc::c_uint = 0;
    ioctl_with(s, ioctl::BIOCGDLT, &mut dlt).map_err(err)?;

    set_uint(s, ioctl::BIOCIMMEDIATE, libc::c_uint::from(cfg.immediate)).map_err(err)?;
    // Also frames this host sends (the default, made explicit).
    set_uint(s, ioctl::BIOCSSEESENT, 1).map_err(err)?;

    // The filter is compiled for the device's own DLT value, which is what this machine's
    // libpcap expects; every accepting return keeps `snaplen` bytes.
    let prog = match &cfg.filter {
        Some(expr) => filter::compile(LinkType(dlt), cfg.snaplen, expr)?,
        None => BpfProgram::accept_all(cfg.snaplen),
    };
    attach(s, &prog).map_err(err)?;

    if cfg.promiscuous {
        ioctl_void(s, ioctl::BIOCPROMISC).map_err(err)?;
    }
    // A zero read timeout would mean "wait for a full buffer".
    let rtimeout = cfg.timeout.max(std::time::Duration::from_millis(1));
    let mut tv = libc::timeval {
        tv_sec: libc::time_t::try_from(rtimeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::try_from(rtimeout.subsec_micros()).unwrap_or(0),
    };
    ioctl_with(s, ioctl::BIOCSRTIMEOUT, &mut tv).map_err(err)?;

    Ok(Device {
        fd,
        buf: vec![0; blen as usize],
        len: 0,
        cursor: Cursor::new(),
        layout,
        link_type: link_type_of_dlt(dlt),
    })
}

/// A pipe whose write end wakes `poll`; both ends close-on-exec, the write end non-blocking.
fn wake_pipe() -> Result<(OwnedFd, OwnedFd), CaptureError> {
    let mut fds: [libc::c_int; 2] = [-1; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe(2) requires.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(os_err("pipe", io::Error::last_os_error()));
    }
    // SAFETY: pipe(2) succeeded, so both are fresh descriptors nobody else owns.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [rx.as_raw_fd(), tx.as_raw_fd()] {
        // SAFETY: plain fcntl calls on descriptors we own.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    Ok((rx, tx))
}

impl BpfSource {
    /// Opens one BPF device per interface of `cfg.interfaces` (`any` is not supported here:
    /// use the pcap backend).
    pub fn open(cfg: &LiveConfig) -> Result<BpfSource, CaptureError> {
        if cfg.interfaces.iter().any(|n| n == "any") {
            return Err(CaptureError::InvalidArgument(
                "the bpf backend captures named interfaces; for `any` use --backend pcap".into(),
            ));
        }
        if cfg.interfaces.is_empty() {
            return Err(CaptureError::InvalidArgument("no interface given".into()));
        }
        let mut devs = Vec::with_capacity(cfg.interfaces.len());
        let mut interfaces: Vec<Interface> = Vec::with_capacity(cfg.interfaces.len());
        for name in &cfg.interfaces {
            if interfaces.iter().any(|i| &i.name == name) {
                continue;
            }
            let d = open_one(name, cfg)?;
            interfaces.push(Interface {
                name: name.clone(),
                description: None,
                link_type: d.link_type,
                snaplen: cfg.snaplen,
            });
            devs.push(d);
        }

        let (wake_rx, wake_tx) = wake_pipe()?;
        let wake_rx = Arc::new(wake_rx);
        let rx = Arc::clone(&wake_rx);
        let stop = StopHandle::with_waker(move || {
            let _reader = &rx;
            let one = 1u8;
            // SAFETY: writes one byte from a live u8 to the pipe's write end, owned by this
            // closure (as is a reference to its read end).
            unsafe {
                libc::write(wake_tx.as_raw_fd(), (&one as *const u8).cast(), 1);
            }
        });
        let mut pollfds = Vec::with_capacity(devs.len() + 1);
        pollfds.push(libc::pollfd {
            fd: wake_rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for d in &devs {
            pollfds.push(libc::pollfd {
                fd: d.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        Ok(BpfSource {
            devs,
            interfaces,
            pollfds,
            _wake_rx: wake_rx,
            stop,
            timeout_ms: libc::c_int::try_from(cfg.timeout.as_millis()).unwrap_or(1000),
            poll_works: true,
            packets: 0,
            bytes: 0,
            malformed: 0,
            done: false,
        })
    }

    /// Read buffers whose walk stopped on a malformed record (the rest of such a buffer is
    /// skipped).
    pub fn malformed_buffers(&self) -> u64 {
        let current = self.devs.iter().filter(|d| d.cursor.error().is_some());
        self.malformed + current.count() as u64
    }

    /// Reads device `i` into its buffer. `Ok(false)` if nothing came.
    fn refill(&mut self, i: usize) -> Result<bool, CaptureError> {
        let Some(d) = self.devs.get_mut(i) else {
            return Ok(false);
        };
        if d.cursor.error().is_some() {
            self.malformed += 1;
        }
        d.cursor.reset();
        d.len = 0;
        // SAFETY: `buf` is a live, writable allocation of exactly `buf.len()` bytes (the
        // size BIOCGBLEN returned, as a BPF read requires); the kernel writes at most that.
        let n = unsafe { libc::read(d.fd.as_raw_fd(), d.buf.as_mut_ptr().cast(), d.buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINTR | libc::EAGAIN) => Ok(false),
                _ => Err(os_err(
                    self.interfaces.get(i).map_or("bpf", |x| x.name.as_str()),
                    e,
                )),
            };
        }
        d.len = usize::try_from(n).unwrap_or(0).min(d.buf.len());
        Ok(d.len > 0)
    }

    /// Waits for data or a stop, then reads every ready device. `Ok(false)`: nothing came.
    fn wait_and_read(&mut self) -> Result<bool, CaptureError> {
        if !self.poll_works {
            // Blocking reads, each bounded by BIOCSRTIMEOUT.
            let mut any = false;
            for i in 0..self.devs.len() {
                any |= self.refill(i)?;
            }
            return Ok(any);
        }
        for p in &mut self.pollfds {
            p.revents = 0;
        }
        let nfds = libc::nfds_t::try_from(self.pollfds.len()).unwrap_or(0);
        // SAFETY: `pollfds` is a valid, writable array of `nfds` pollfd for the call.
        let r = unsafe { libc::poll(self.pollfds.as_mut_ptr(), nfds, self.timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(os_err("poll", e));
        }
        if r == 0 || self.pollfds.first().is_some_and(|p| p.revents != 0) {
            return Ok(false);
        }
        let mut any = false;
        for i in 0..self.devs.len() {
            let rev = self.pollfds.get(i + 1).map_or(0, |p| p.revents);
            if rev & libc::POLLNVAL != 0 {
                self.poll_works = false;
            }
            if rev & (libc::POLLIN | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                any |= self.refill(i)?;
            }
        }
        Ok(any)
    }
}

impl BpfSource {
    /// The next record of the first device that has one left in its buffer.
    fn next_record(&mut self) -> Option<(usize, RecordInfo)> {
        for (i, d) in self.devs.iter_mut().enumerate() {
            let buf = d.buf.get(..d.len).unwrap_or(&[]);
            if let Some(r) = d.cursor.next_record(buf, d.layout) {
                return Some((i, r));
            }
        }
        None
    }

    /// Lends record `r` of device `i`.
    fn packet(&mut self, i: usize, r: RecordInfo) -> Next<'_> {
        let Some(d) = self.devs.get(i) else {
            return Next::Timeout;
        };
        let data = r.data(d.buf.get(..d.len).unwrap_or(&[]));
        self.packets += 1;
        self.bytes += u64::from(r.datalen);
        Next::Packet(RawPacket {
            meta: PacketMeta {
                direction: r.direction,
                ts: r.ts,
                iface: u32::try_from(i).unwrap_or(u32::MAX),
                iface_name: self.interfaces.get(i).map(|x| x.name.as_str()),
                link_type: d.link_type,
                cap_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                orig_len: r.datalen,
            },
            data,
        })
    }
}

impl CaptureSource for BpfSource {
    fn clock(&self) -> Option<netmon_types::Timestamp> {
        Some(crate::wall_clock())
    }

    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            if self.done || self.stop.is_stopped() {
                return Ok(Next::End);
            }
            if let Some((i, r)) = self.next_record() {
                return Ok(self.packet(i, r));
            }
            match self.wait_and_read() {
                Ok(true) => {}
                Ok(false) => {
                    if self.stop.is_stopped() {
                        return Ok(Next::End);
                    }
                    return Ok(Next::Timeout);
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// `kernel_received` is the devices' `bs_recv` (packets they saw, before their filter, on
    /// BSD kernels) and `kernel_dropped` their `bs_drop` (lost to a full buffer), summed.
    fn stats(&self) -> CaptureStats {
        let (mut recv, mut drop) = (0u64, 0u64);
        for d in &self.devs {
            let mut st = BpfStat::default();
            if ioctl_with(d.fd.as_raw_fd(), ioctl::BIOCGSTATS, &mut st).is_ok() {
                recv += u64::from(st.bs_recv);
                drop += u64::from(st.bs_drop);
            }
        }
        CaptureStats {
            packets: self.packets,
            bytes: self.bytes,
            kernel_received: Some(recv),
            kernel_dropped: Some(drop),
            iface_dropped: None,
        }
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }
}
