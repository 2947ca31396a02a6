//! Shared checks for the fuzz targets: parse, touch every view, and assert the invariants
//! `netmon-packet` promises for any input.

use std::fmt::Write;

use netmon_packet::{Net, Packet, Transport};
use netmon_types::LinkType;

/// Parses `data` as a frame of `link`, exercises every accessor and decapsulates tunnels up to
/// a small depth. Panics (= a fuzzer finding) if an invariant is broken.
pub fn check(link: LinkType, data: &[u8]) {
    // Also try a "snaplen-cut" interpretation: the wire length claims more than we have.
    for orig_len in [data.len(), data.len() + 1500] {
        check_frame(link, data, orig_len);
    }
}

/// Parses `data` as one frame of `link` whose wire length was `orig_len` (as a capture file
/// says, so possibly smaller than `data.len()`), exercises every accessor and decapsulates
/// tunnels up to a small depth. Panics (= a fuzzer finding) if an invariant is broken.
pub fn check_frame(link: LinkType, data: &[u8], orig_len: usize) {
    let p = Packet::parse_frame(link, data, orig_len);
    assert!(
        p.orig_len >= data.len(),
        "orig_len below the captured length"
    );
    exercise(&p, data.len());
    let mut cur = p.inner();
    let mut depth = 0;
    while let Some(inner) = cur {
        exercise(&inner, data.len());
        depth += 1;
        cur = if depth < 4 { inner.inner() } else { None };
    }
}

fn exercise(p: &Packet<'_>, frame_len: usize) {
    let end = p
        .payload_offset
        .checked_add(p.payload.len())
        .expect("payload end overflows");
    assert!(end <= frame_len, "payload past the frame");
    if let Some(e) = p.error {
        assert!(e.offset <= frame_len, "error offset past the frame");
        let mut s = String::new();
        let _ = write!(s, "{e}");
    }
    let _ = (
        p.src_ip(),
        p.dst_ip(),
        p.ports(),
        p.fragment(),
        p.ip_proto(),
        p.link.src_mac(),
    );
    let _ = (
        p.ip_version(),
        p.snaplen_truncated(),
        p.checksums().first_bad(),
    );
    let mut sink = String::new();
    match &p.net {
        Net::Ipv6(v) => {
            let _ = v.routing().map(|r| r.addresses().count());
            let _ = v.declared_payload_len();
        }
        Net::Ipv4(v) => {
            let _ = (v.options(), v.declared_payload_len());
        }
        Net::Lldp(l) => {
            for t in l.tlvs().take(1000) {
                let _ = t;
            }
            let _ = (
                l.chassis_id().map(|c| write!(sink, "{}", c.display())),
                l.system_name(),
                l.ttl(),
            );
        }
        Net::Cdp(c) => {
            let _ = c.addresses().count();
            let _ = (c.device_id(), c.platform(), c.port_id());
        }
        Net::Stp(s) => {
            let _ = s.config();
        }
        _ => {}
    }
    if let Transport::Tcp(t) = &p.transport {
        let o = t.options();
        let _ = write!(sink, "{} {:?}", t.flags(), o);
    }
    let _ = write!(sink, "{}", netmon_packet::Escaped::new(p.payload));
    let _ = write!(sink, "{}", netmon_packet::Escaped::new(p.payload).json());
}
