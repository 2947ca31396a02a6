//! netmon-stats integration tests (one binary; modules by subject).

// A minimal capture → flows → Stats driver (the engine stands in for it in production).
#[path = "stats/driver.rs"]
mod driver;

// Real captures of the shared corpus: the SYN scan, the non-scan captures, tshark's hierarchy.
#[path = "stats/corpus.rs"]
mod corpus;

// gen_pcap.py background traffic plus a crafted scan.
#[path = "stats/workload.rs"]
mod workload;
