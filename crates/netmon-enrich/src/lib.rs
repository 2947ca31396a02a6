//! Enrichment of flow records: facts about a flow that its packets do not carry.
//!
//! | module | adds | source |
//! | --- | --- | --- |
//! | [`scope`] | `scope`: loopback, private, CGNAT, link-local, multicast, documentation, public | the address alone |
//! | [`geo`] | `geo` (country, city, coordinates), `asn` (number, organisation) | MaxMind DB files the user gives |
//! | [`trackers`] | `tracker` (listed domain, category, list); per-app privacy score | domain lists the user gives |
//! | [`process`] | `process`: pid, name, exe, command line, user, container of the socket's owner (or why not) | netlink sock_diag and `/proc` (Linux) |
//!
//! Each enricher is optional and cheap on the packet path: it is consulted once per flow (at
//! its first packet) and keeps its result for the flow's lifetime; its tables are loaded or
//! refreshed off the packet path.
//!
//! ```
//! use netmon_enrich::scope::{Scope, scope_of};
//!
//! assert_eq!(scope_of("192.168.1.10".parse().unwrap()), Scope::Private);
//! assert_eq!(scope_of("9.9.9.9".parse().unwrap()), Scope::Public);
//! assert!(!Scope::Private.is_external());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod geo;
pub mod process;
pub mod scope;
pub mod trackers;
