//! WinDivert, the Windows capture backend: the WinDivert driver in sniff mode at the
//! network layer.
//!
//! Split in two so that most of it is tested on every platform:
//!
//! - [`convert`] turns WinDivert's packet address (timestamp in `QueryPerformanceCounter`
//!   ticks, direction and loopback flags, interface index) into
//!   [`PacketMeta`](crate::PacketMeta), builds the filter string and the queue parameters
//!   — platform-independent, no `unsafe`;
//! - `sys` (only on Windows) opens the handle with the `windivert` crate and receives
//!   packets: the thin part.
//!
//! Packets are IP packets without a link-layer header
//! ([`LinkType::RAW`](netmon_types::LinkType::RAW)). The capture filter is WinDivert's own
//! language, passed through as given (see [`convert`]); tcpdump syntax is not translated.
//!
//! Building for Windows needs the WinDivert library: `windivert-sys`'s build script wants
//! the environment variable `WINDIVERT_PATH` pointing at a directory with `WinDivert.dll`,
//! `WinDivert.lib` and `WinDivert64.sys` (or its `vendored` feature). Type-checking
//! without it: `DOCS_RS=1 cargo check --target x86_64-pc-windows-gnu` (the script then
//! skips the native library). Running needs Administrator rights (the driver refuses
//! others).

pub mod convert;
#[cfg(windows)]
pub mod sys;

#[cfg(windows)]
pub use sys::WinDivertSource;
