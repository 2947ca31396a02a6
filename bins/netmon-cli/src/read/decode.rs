//! One record decoded once for every output: the parsed packet, its checksum verdicts, the set
//! of its layers, and the packet its tunnel carries (one level).
//!
//! The views borrow the parsed [`Packet`]s, which stay where they were built on the stack:
//! a `Packet` is a few hundred bytes, and moving it per record showed up as `memcpy` in
//! profiles of `--quiet`.

use netmon_capture::PacketMeta;
use netmon_packet::{Checksums, Packet};

use super::proto::layer_mask;

/// A parsed packet with what every output needs about it.
pub(crate) struct Layered<'p, 'a> {
    /// The parse.
    pub(crate) pkt: &'p Packet<'a>,
    /// IPv4 header and transport checksum verdicts.
    pub(crate) ck: Checksums,
    /// One bit per layer present (see `Proto::bit`).
    pub(crate) mask: u64,
}

impl<'p, 'a> Layered<'p, 'a> {
    #[inline]
    fn of(pkt: &'p Packet<'a>) -> Layered<'p, 'a> {
        Layered {
            pkt,
            ck: pkt.checksums(),
            mask: layer_mask(pkt),
        }
    }
}

/// A record: the outer packet and, when it is a tunnel, the inner one.
pub(crate) struct Decoded<'p, 'a> {
    /// The frame as captured.
    pub(crate) outer: Layered<'p, 'a>,
    /// The decapsulated packet (one level; its own tunnel is recognised, not decoded).
    pub(crate) inner: Option<Layered<'p, 'a>>,
}

/// Parses the frame, verifies checksums, decapsulates one tunnel level, and hands the result
/// to `f`.
#[inline]
pub(crate) fn decode<R>(
    meta: &PacketMeta<'_>,
    data: &[u8],
    f: impl FnOnce(&Decoded<'_, '_>) -> R,
) -> R {
    Packet::parse_frame_with(meta.link_type, data, meta.orig_len as usize, |pkt| {
        let inner = if pkt.tunnel.is_some() {
            pkt.inner()
        } else {
            None
        };
        let d = Decoded {
            outer: Layered::of(pkt),
            inner: inner.as_ref().map(Layered::of),
        };
        f(&d)
    })
}
