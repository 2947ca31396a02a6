//! Shared helpers for netmon benchmarks.
