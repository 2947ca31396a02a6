//! The WinDivert handle: opening it in sniff mode at the network layer, receiving packets.
//!
//! Thin on purpose: what can be computed without the driver is in [`super::convert`]. Each
//! [`CaptureSource::next_packet`] receives one packet into a buffer allocated once (of
//! [`convert::MAX_PACKET`] bytes, so nothing is cut by it) and lends it, waiting at most
//! [`LiveConfig::timeout`] (WinDivert's overlapped receive). The [`StopHandle`] shuts the
//! handle down, which ends a pending receive.
//!
//! The `windivert` crate allocates a little per receive (the address array of its
//! overlapped receive); no copy of the packet is made.
#![allow(unsafe_code)]

use std::io;
use std::sync::Mutex;
use std::time::SystemTime;

use windivert::WinDivert;
use windivert::address::WinDivertAddress;
use windivert::error::{WinDivertError, WinDivertOpenError, WinDivertRecvError};
use windivert::layer::NetworkLayer;
use windivert::prelude::{WinDivertFlags, WinDivertParam};
use windows::Win32::System::Performance::{QueryPerformanceCounter, QueryPerformanceFrequency};

use super::convert::{self, AddressInfo, Converter, QpcClock};
use crate::live::LiveConfig;
use crate::{CaptureError, CaptureSource, CaptureStats, Interface, Next, RawPacket, StopHandle};

/// A live capture through the WinDivert driver (sniff mode, network layer).
pub struct WinDivertSource {
    divert: WinDivert<NetworkLayer>,
    buf: Vec<u8>,
    conv: Converter,
    stop: StopHandle,
    timeout_ms: u32,
    filter: String,
    packets: u64,
    bytes: u64,
    done: bool,
}

impl std::fmt::Debug for WinDivertSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WinDivertSource")
            .field("filter", &self.filter)
            .field("interfaces", &self.conv.interfaces())
            .finish_non_exhaustive()
    }
}

/// Reads the performance counter around the system clock (see [`QpcClock::calibrate`]).
fn qpc_clock() -> QpcClock {
    let (mut freq, mut before, mut after) = (0i64, 0i64, 0i64);
    // SAFETY: each call writes one i64 through a pointer to a live local.
    unsafe {
        let _ = QueryPerformanceFrequency(&mut freq);
        let _ = QueryPerformanceCounter(&mut before);
    }
    let wall = convert::timestamp_of(SystemTime::now());
    // SAFETY: as above.
    unsafe {
        let _ = QueryPerformanceCounter(&mut after);
    }
    QpcClock::calibrate(before, wall, after, freq)
}

fn address_info(a: &WinDivertAddress<NetworkLayer>) -> AddressInfo {
    AddressInfo {
        timestamp: a.event_timestamp(),
        layer: u8::from(a.event_layer()),
        outbound: a.outbound(),
        loopback: a.loopback(),
        impostor: a.impostor(),
        ipv6: a.ipv6(),
        if_idx: a.interface_index(),
        sub_if_idx: a.subinterface_index(),
    }
}

fn io_err(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Io {
        path: "WinDivert".into(),
        source: io::Error::other(e.to_string()),
    }
}

fn open_err(e: WinDivertError, filter: &str) -> CaptureError {
    match &e {
        WinDivertError::Open(WinDivertOpenError::AccessDenied) => CaptureError::PermissionDenied {
            what: "the WinDivert driver".into(),
            backend: "windivert",
        },
        WinDivertError::Open(WinDivertOpenError::InvalidParameter)
        | WinDivertError::NullError(_) => CaptureError::BadFilter {
            filter: filter.to_owned(),
            reason: format!("WinDivert refused it; {}", convert::FILTER_HINT),
        },
        WinDivertError::Open(o) => CaptureError::Unsupported(format!("WinDivert: {o}")),
        _ => io_err(e),
    }
}

impl WinDivertSource {
    /// Opens a WinDivert handle for `cfg`: interfaces `any` or indexes
    /// ([`convert::parse_interfaces`]), [`LiveConfig::filter`] as a WinDivert filter
    /// ([`convert::filter_string`]), queue sized from [`LiveConfig::buffer_bytes`].
    /// `promiscuous`, `immediate` and `fanout` do not apply.
    pub fn open(cfg: &LiveConfig) -> Result<WinDivertSource, CaptureError> {
        let selection = convert::parse_interfaces(&cfg.interfaces)?;
        let filter = convert::filter_string(cfg.filter.as_deref(), &selection)?;
        let flags = WinDivertFlags::new().set_sniff().set_recv_only();
        let clock = qpc_clock();
        let divert = WinDivert::network(&filter, 0, flags).map_err(|e| open_err(e, &filter))?;
        let q = convert::queue_params(cfg.buffer_bytes);
        for (param, value) in [
            (WinDivertParam::QueueLength, q.length),
            (WinDivertParam::QueueTime, q.time_ms),
            (WinDivertParam::QueueSize, q.size),
        ] {
            divert.set_param(param, value).map_err(io_err)?;
        }
        let shutdown = Mutex::new(divert.shutdown_handle());
        let stop = StopHandle::with_waker(move || {
            if let Ok(h) = shutdown.lock() {
                let _ = h.shutdown();
            }
        });
        Ok(WinDivertSource {
            divert,
            buf: vec![0; convert::MAX_PACKET],
            conv: Converter::new(clock, cfg.snaplen, &selection),
            stop,
            timeout_ms: u32::try_from(cfg.timeout.as_millis()).unwrap_or(u32::MAX),
            filter,
            packets: 0,
            bytes: 0,
            done: false,
        })
    }

    /// The filter string WinDivert was opened with.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Loopback packets captured so far (WinDivert sees each once, outbound).
    pub fn loopback_packets(&self) -> u64 {
        self.conv.loopback_packets()
    }
}

impl CaptureSource for WinDivertSource {
    fn clock(&self) -> Option<netmon_types::Timestamp> {
        Some(crate::wall_clock())
    }

    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        if self.done || self.stop.is_stopped() {
            return Ok(Next::End);
        }
        let (addr, len) = match self.divert.recv_wait(&mut self.buf, self.timeout_ms) {
            Ok(None) => return Ok(Next::Timeout),
            Ok(Some(p)) => (address_info(&p.address), p.data.len()),
            // The handle was shut down (stop) and its queue is empty.
            Err(WinDivertError::Recv(WinDivertRecvError::NoData)) => {
                self.done = true;
                return Ok(Next::End);
            }
            Err(e) => {
                self.done = true;
                return Err(io_err(e));
            }
        };
        // The packet is the first `len` bytes of the buffer.
        let meta = self.conv.meta(&addr, len);
        let data = self.buf.get(..meta.cap_len as usize).unwrap_or(&[]);
        self.packets += 1;
        self.bytes += u64::from(meta.orig_len);
        Ok(Next::Packet(RawPacket { meta, data }))
    }

    fn interfaces(&self) -> &[Interface] {
        self.conv.interfaces()
    }

    /// WinDivert keeps no drop counters: the kernel fields are `None`.
    fn stats(&self) -> CaptureStats {
        CaptureStats {
            packets: self.packets,
            bytes: self.bytes,
            kernel_received: None,
            kernel_dropped: None,
            iface_dropped: None,
        }
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }
}
