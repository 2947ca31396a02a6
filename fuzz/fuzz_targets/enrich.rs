#![no_main]
//! netmon-enrich's inputs from outside: netlink sock_diag reply datagrams (the kernel's, but
//! parsed by hand), MaxMind DB files (user-given), tracker lists (user-given text). No input may
//! panic, hang or allocate without bound.

use libfuzzer_sys::fuzz_target;
use netmon_enrich::geo::GeoDb;
use netmon_enrich::trackers::{Category, TrackerLists};

fuzz_target!(|data: &[u8]| {
    // A reply datagram: messages parse or the walk stops at the first bad one.
    let n = netmon_enrich::process::fuzz_sock_diag_reply(data);
    assert!(n * 16 <= data.len());
    // A MaxMind DB file: an error or a database whose lookups answer or fail, never panic.
    if let Ok(db) = GeoDb::from_bytes(Some(data.to_vec()), None) {
        for ip in ["1.2.3.4", "89.160.20.128", "::1", "2001:db8::1", "255.255.255.255"] {
            let _ = db.geo(ip.parse().unwrap());
        }
    }
    if let Ok(db) = GeoDb::from_bytes(None, Some(data.to_vec())) {
        let _ = db.asn("8.8.8.8".parse().unwrap());
    }
    // A tracker list, then lookups of names taken from the same bytes.
    let text = String::from_utf8_lossy(data);
    let mut lists = TrackerLists::new();
    let added = lists.add_text("fuzz", &text, Category::Ads);
    assert!(added <= text.len() / 2 + 1);
    for w in text.split_whitespace().take(32) {
        let _ = lists.lookup(w);
    }
    let _ = lists.lookup("a.b.example.co.uk");
});
