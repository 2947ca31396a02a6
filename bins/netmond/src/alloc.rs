//! The allocator's settings: the one module of netmond with unsafe code (a call into
//! mimalloc's C API).
#![allow(unsafe_code)]

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same index in its v2 and v3
/// headers, which `libmimalloc-sys` does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc hand freed pages back to the system at once instead of after 10 ms.
///
/// The pipeline allocates flow records in the shards and frees them in the store's writer:
/// with the delay, pages freed by one thread stay resident while others allocate. On a replay
/// of `big.pcap` (2 shards, store on; `benches/daemon.sh`, `/usr/bin/time -f %M`) the peak
/// resident memory is ~48 MB lower (247 MB against 295 MB) for ~0.4 s more CPU (the system
/// time of returning and re-faulting pages, of ~9.5 s in all): kept, because a daemon that
/// runs for weeks should give memory back after a burst rather than hold its peak.
pub(crate) fn return_freed_memory_at_once() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; it has no
    // preconditions (any option index and value, any thread, any time: an unknown index is
    // ignored), takes no pointers and is called before any other thread starts.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}
