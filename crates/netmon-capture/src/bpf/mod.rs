//! The BSD kernel packet filter, `/dev/bpf*`: the macOS capture backend.
//!
//! Split in two so that most of it is tested on every platform:
//!
//! - [`buffer`] walks what a `read(2)` on a BPF device returns (record headers,
//!   `BPF_WORDALIGN`) — platform-independent, no `unsafe`;
//! - `ioctl` (crate-private) computes the `BIOC*` request numbers — platform-independent;
//! - `macos` (only on macOS) opens the device and makes the ioctl and `poll` calls: the
//!   one part with `unsafe` code, kept thin.
//!
//! What the device is asked for, in order: a free `/dev/bpfN`; `BIOCSBLEN` (the buffer
//! size, from [`LiveConfig::buffer_bytes`](crate::LiveConfig::buffer_bytes), capped, and
//! read back with `BIOCGBLEN` since the kernel caps it too); `BIOCSETIF`; `BIOCGDLT` (the
//! link type); `BIOCIMMEDIATE`; `BIOCSSEESENT` (also frames this host sends); `BIOCSEXTHDR`
//! (headers that carry the direction; optional); `BIOCSETF` (the filter, compiled by
//! libpcap for the device's link type, or one that keeps `snaplen` bytes of everything);
//! `BIOCPROMISC`; `BIOCSRTIMEOUT`. Drops come from `BIOCGSTATS`.

use netmon_types::LinkType;

pub mod buffer;
pub(crate) mod ioctl;
#[cfg(target_os = "macos")]
pub mod macos;

#[cfg(target_os = "macos")]
pub use macos::BpfSource;

/// macOS's `DLT_RAW` (12; `LINKTYPE_RAW` is 101).
const DLT_RAW: u32 = 12;

/// The `LINKTYPE_*` of frames from a device whose `BIOCGDLT` is `dlt`.
///
/// `DLT_*` and `LINKTYPE_*` values agree except for a few low ones; of those macOS
/// interfaces use `DLT_RAW` (utun and other layer-3 tunnels), mapped to `LINKTYPE_RAW` as
/// libpcap does. `DLT_NULL` (lo0) and `DLT_EN10MB` are the same numbers in both.
pub fn link_type_of_dlt(dlt: u32) -> LinkType {
    match dlt {
        DLT_RAW => LinkType::RAW,
        other => LinkType(other),
    }
}

/// Smallest buffer asked of the kernel.
pub const MIN_BUFFER: usize = 4096;
/// Largest buffer asked of the kernel (it caps further, at `debug.bpf_maxbufsize`).
pub const MAX_BUFFER: usize = 16 << 20;

/// The buffer size to ask `BIOCSBLEN` for, given
/// [`LiveConfig::buffer_bytes`](crate::LiveConfig::buffer_bytes): clamped to
/// [`MIN_BUFFER`]..=[`MAX_BUFFER`].
pub fn buffer_request(buffer_bytes: usize) -> u32 {
    let b = buffer_bytes.clamp(MIN_BUFFER, MAX_BUFFER);
    u32::try_from(b).unwrap_or(MAX_BUFFER as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlt_raw_becomes_linktype_raw_and_the_rest_stay() {
        assert_eq!(link_type_of_dlt(12), LinkType::RAW);
        assert_eq!(link_type_of_dlt(0), LinkType::NULL);
        assert_eq!(link_type_of_dlt(1), LinkType::ETHERNET);
        assert_eq!(link_type_of_dlt(108), LinkType::LOOP);
        assert_eq!(link_type_of_dlt(105), LinkType(105));
    }

    #[test]
    fn buffer_request_is_clamped() {
        assert_eq!(buffer_request(0), 4096);
        assert_eq!(buffer_request(1 << 20), 1 << 20);
        assert_eq!(buffer_request(64 << 20), 16 << 20);
        assert_eq!(buffer_request(usize::MAX), 16 << 20);
    }
}
