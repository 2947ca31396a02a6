#![no_main]
//! Frame parser under link type `NULL`: no input may panic, hang or break the view invariants.

use libfuzzer_sys::fuzz_target;
use netmon_types::LinkType;

fuzz_target!(|data: &[u8]| {
    netmon_fuzz::check(LinkType::NULL, data);
});
