//! The `/dev/bpf` ioctl request numbers of 64-bit macOS, computed as `<sys/ioccom.h>` does
//! (platform-independent, so the arithmetic is tested everywhere).
//!
//! The `libc` crate has only a few of them for macOS (`BIOCSSEESENT`, `BIOCGSEESENT`,
//! `BIOCSDLT`, `BIOCGDLTLIST`), so the rest are defined here from xnu's `bsd/net/bpf.h`:
//!
//! ```text
//! #define IOCPARM_MASK 0x1fff       // parameter length, at most 13 bits
//! #define IOC_VOID     0x20000000   // no parameters
//! #define IOC_OUT      0x40000000   // copy out parameters
//! #define IOC_IN       0x80000000   // copy in parameters
//! #define _IOC(inout, group, num, len) \
//!     (inout | ((len & IOCPARM_MASK) << 16) | ((group) << 8) | (num))
//!
//! #define BIOCGBLEN     _IOR('B', 102, u_int)
//! #define BIOCSBLEN     _IOWR('B', 102, u_int)
//! #define BIOCSETF      _IOW('B', 103, struct bpf_program)   // 16 bytes on LP64
//! #define BIOCPROMISC   _IO('B', 105)
//! #define BIOCGDLT      _IOR('B', 106, u_int)
//! #define BIOCSETIF     _IOW('B', 108, struct ifreq)         // 32 bytes
//! #define BIOCSRTIMEOUT _IOW('B', 109, struct timeval)       // 16 bytes on LP64
//! #define BIOCGSTATS    _IOR('B', 111, struct bpf_stat)      // { u_int bs_recv, bs_drop }
//! #define BIOCIMMEDIATE _IOW('B', 112, u_int)
//! #define BIOCSSEESENT  _IOW('B', 119, u_int)
//! #define BIOCSEXTHDR   _IOW('B', 124, u_int)                // Apple private
//! ```
//!
//! The macOS module checks the struct sizes against `libc`'s types at compile time.
#![forbid(unsafe_code)]
#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

const IOCPARM_MASK: u32 = 0x1fff;
const IOC_VOID: u32 = 0x2000_0000;
const IOC_OUT: u32 = 0x4000_0000;
const IOC_IN: u32 = 0x8000_0000;

/// `sizeof(u_int)`.
pub(crate) const UINT_SIZE: usize = 4;
/// `sizeof(struct bpf_program)` on LP64: `u_int bf_len`, padding, a pointer.
pub(crate) const BPF_PROGRAM_SIZE: usize = 16;
/// `sizeof(struct ifreq)` on macOS: a 16-byte name and a 16-byte union.
pub(crate) const IFREQ_SIZE: usize = 32;
/// `sizeof(struct timeval)` on LP64 macOS: `long tv_sec`, `int tv_usec`, padding.
pub(crate) const TIMEVAL_SIZE: usize = 16;
/// `sizeof(struct bpf_stat)`.
pub(crate) const BPF_STAT_SIZE: usize = 8;

const fn ioc(inout: u32, num: u32, len: usize) -> u32 {
    inout | (((len as u32) & IOCPARM_MASK) << 16) | ((b'B' as u32) << 8) | num
}

/// The parameter length encoded in a request number (what the kernel copies in or out).
pub(crate) const fn param_len(req: u32) -> usize {
    ((req >> 16) & IOCPARM_MASK) as usize
}

pub(crate) const BIOCGBLEN: u32 = ioc(IOC_OUT, 102, UINT_SIZE);
pub(crate) const BIOCSBLEN: u32 = ioc(IOC_IN | IOC_OUT, 102, UINT_SIZE);
pub(crate) const BIOCSETF: u32 = ioc(IOC_IN, 103, BPF_PROGRAM_SIZE);
pub(crate) const BIOCPROMISC: u32 = ioc(IOC_VOID, 105, 0);
pub(crate) const BIOCGDLT: u32 = ioc(IOC_OUT, 106, UINT_SIZE);
pub(crate) const BIOCSETIF: u32 = ioc(IOC_IN, 108, IFREQ_SIZE);
pub(crate) const BIOCSRTIMEOUT: u32 = ioc(IOC_IN, 109, TIMEVAL_SIZE);
pub(crate) const BIOCGSTATS: u32 = ioc(IOC_OUT, 111, BPF_STAT_SIZE);
pub(crate) const BIOCIMMEDIATE: u32 = ioc(IOC_IN, 112, UINT_SIZE);
pub(crate) const BIOCSSEESENT: u32 = ioc(IOC_IN, 119, UINT_SIZE);
pub(crate) const BIOCSEXTHDR: u32 = ioc(IOC_IN, 124, UINT_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_the_published_ones() {
        // The values BSD-derived headers publish for the same requests (e.g. the `libc`
        // crate's QNX io-sock and AIX tables, and macOS's own BIOCSSEESENT).
        assert_eq!(BIOCGBLEN, 0x4004_4266);
        assert_eq!(BIOCSBLEN, 0xc004_4266);
        assert_eq!(BIOCSETF, 0x8010_4267);
        assert_eq!(BIOCPROMISC, 0x2000_4269);
        assert_eq!(BIOCGDLT, 0x4004_426a);
        assert_eq!(BIOCSETIF, 0x8020_426c);
        assert_eq!(BIOCSRTIMEOUT, 0x8010_426d);
        assert_eq!(BIOCGSTATS, 0x4008_426f);
        assert_eq!(BIOCIMMEDIATE, 0x8004_4270);
        assert_eq!(BIOCSSEESENT, 0x8004_4277);
        assert_eq!(BIOCSEXTHDR, 0x8004_427c);
    }

    #[test]
    fn parameter_length_round_trips() {
        assert_eq!(param_len(BIOCSETIF), IFREQ_SIZE);
        assert_eq!(param_len(BIOCGSTATS), BPF_STAT_SIZE);
        assert_eq!(param_len(BIOCPROMISC), 0);
        assert_eq!(param_len(BIOCSBLEN), UINT_SIZE);
    }
}
