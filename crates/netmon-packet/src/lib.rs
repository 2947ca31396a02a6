//! Zero-copy parsing of captured frames into borrowed views of every layer.
//!
//! (Work in progress: the frame walker lands in the next commits.)
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

#[allow(dead_code)] // used by the views that follow
mod bytes;
pub mod checksum;
pub mod error;
pub mod icmp;
pub mod igmp;

pub use error::{ErrorKind, Layer, ParseError};
pub use netmon_types::{LinkType, Timestamp};
