//! Export of flow records and alerts to the collectors a network already runs.
//!
//! - [`ipfix`]: flow records as IPFIX (RFC 7011/7012) over UDP or TCP — nfdump/nfcapd,
//!   ntopng, Elastic, most NetFlow/IPFIX collectors.
//! - [`syslog`]: alerts (and optionally flow summaries) as RFC 5424 messages with structured
//!   data, over UDP or TCP (RFC 6587 octet counting).
//!
//! Both are sinks: they run off the packet path, on records the engine already made, and count
//! what they could not send instead of blocking the pipeline.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ipfix;
pub mod syslog;
