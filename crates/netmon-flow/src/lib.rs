//! Bidirectional flow tracking: 5-tuple keys, TCP lifecycle, idle and active timeouts,
//! fragments, ICMP errors and tunnels, in bounded memory.
//!
//! [`FlowTable::observe`] takes each parsed frame ([`netmon_packet::Packet`]) with its
//! timestamp, interface and wire length, counts it to its flow and emits flow events to a
//! [`FlowSink`]: started, updated (active timeout), ended (with an [`EndReason`]). Time is the
//! packets' clock, so replaying a file is deterministic.
//!
//! Other crates attach per-flow state through [`FlowExt`] (the classifier does); the table
//! calls it for every packet of the flow.
//!
//! ```
//! use netmon_flow::{EndReason, Flow, FlowConfig, FlowTable, PacketInfo};
//! use netmon_packet::{LinkType, Packet};
//! use netmon_types::Timestamp;
//!
//! let mut syn = Vec::new();
//! etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
//!     .tcp(40000, 443, 1, 64240)
//!     .syn()
//!     .write(&mut syn, &[])
//!     .unwrap();
//!
//! let mut table: FlowTable = FlowTable::new(FlowConfig::default());
//! let mut ended: Vec<Flow<()>> = Vec::new();
//! let info = PacketInfo { ts: Timestamp::from_secs_nanos(1, 0), iface: 0, wire_len: syn.len() as u32 };
//! let p = Packet::parse(LinkType::RAW, &syn);
//! let seen = table.observe(info, &p, &mut (), &mut ended).unwrap();
//! assert!(seen.new);
//! table.flush(EndReason::EndOfCapture, &mut (), &mut ended);
//! let f = &ended[0].core;
//! assert_eq!(f.src().port, 40000);
//! assert_eq!(f.tcp_state.name(), "syn_sent");
//! assert_eq!(f.c2s().bytes, 40);
//! ```
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

pub mod flow;
mod frag;
pub mod key;
mod slab;
pub mod table;
mod wheel;

pub use flow::{DirStats, Direction, EndReason, Flow, FlowCore, FlowExt, TcpState};
pub use key::{Endpoint, FlowKey, Side, VlanKey};
pub use table::{
    ActiveTimeout, FlowConfig, FlowRef, FlowSink, FlowTable, Observed, PacketInfo, TableStats,
    Timeouts,
};
