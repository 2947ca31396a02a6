//! The detectors (netmon-stats) driven by the real pipeline: `netmon_engine::Engine` with
//! `EngineConfig { stats: Some(StatsConfig::default()), .. }` over real and generated captures,
//! alerts collected through [`EngineSink::alert`](netmon_engine::EngineSink::alert).
//!
//! The acceptance criteria for detectors:
//! - `ndpi_synscan.pcap` raises exactly one vertical-scan alert naming its source;
//! - the non-scan captures of the corpus raise none;
//! - gen_pcap traffic (~100 k flows) plus a crafted scan: the scan is found.
//!
//! The corpus is found by [`netmon_testkit::corpus`] (`NETMON_CORPUS`, `NETMON_SKIP_CORPUS=1`);
//! tshark cross-checks run where tshark is installed (`NETMON_REQUIRE_TSHARK=1` makes it
//! mandatory).

// Running the engine with stats, collecting alerts and ended flows; tshark; MANIFEST.tsv.
#[path = "detectors/common.rs"]
mod common;

// Real captures of the shared corpus: the SYN scan, the non-scan captures, tshark's hierarchy.
#[path = "detectors/corpus.rs"]
mod corpus;

// gen_pcap.py background traffic plus a crafted 1000-port SYN scan, merged by timestamp.
#[path = "detectors/workload.rs"]
mod workload;
