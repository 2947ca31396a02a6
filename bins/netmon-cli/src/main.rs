//! `netmon`: the one-shot command-line network monitor.

fn main() {}
