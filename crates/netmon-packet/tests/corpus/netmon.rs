//! Reads a capture with netmon-capture and reduces every frame netmon-packet parses to a
//! [`Frame`].

use std::path::Path;

use netmon_capture::{CaptureSource, Next, open_file};
use netmon_packet::{IpNumber, Net, Packet, Transport};

use super::model::{Frag, Frame, IpLayer};

/// Bound on tunnel nesting followed with [`Packet::inner`] (the oracle follows every level).
const MAX_TUNNEL_DEPTH: usize = 8;

fn ip_layer(p: &Packet<'_>) -> Option<IpLayer> {
    let (src, dst) = (p.src_ip()?, p.dst_ip()?);
    let complete = match &p.net {
        Net::Ipv6(v) => v.extensions_complete(),
        _ => true,
    };
    Some(IpLayer {
        src,
        dst,
        proto: if complete {
            p.ip_proto().map(|n| n.0)
        } else {
            None
        },
        ports: p.ports(),
        l4: match &p.transport {
            Transport::Tcp(_) => Some("tcp"),
            Transport::Udp(_) => Some("udp"),
            Transport::Sctp(_) => Some("sctp"),
            Transport::Icmpv4(_) => Some("icmp"),
            Transport::Icmpv6(_) => Some("icmpv6"),
            Transport::Igmp(_) => Some("igmp"),
            Transport::Gre(_) => Some("gre"),
            Transport::Esp(_) => Some("esp"),
            Transport::Partial { proto, .. } => match *proto {
                IpNumber::TCP => Some("tcp"),
                IpNumber::UDP => Some("udp"),
                IpNumber::SCTP => Some("sctp"),
                _ => Some("?"),
            },
            _ => None,
        },
        frag: p.fragment().map(|f| Frag {
            id: f.id,
            offset: f.offset,
            more: f.more,
        }),
    })
}

fn non_ip_name(p: &Packet<'_>) -> &'static str {
    match p.net {
        Net::Arp(_) => "arp",
        Net::Lldp(_) => "lldp",
        Net::Cdp(_) => "cdp",
        Net::Stp(_) => "stp",
        _ => "?",
    }
}

/// Reduces one parsed frame.
pub(crate) fn frame(number: u32, p: &Packet<'_>) -> Frame {
    let outer = ip_layer(p);
    let mut inner = None;
    if outer.is_some() {
        let mut cur = p.inner();
        for _ in 0..MAX_TUNNEL_DEPTH {
            let Some(i) = cur else { break };
            if let Some(l) = ip_layer(&i) {
                inner = Some(l);
            }
            cur = i.inner();
        }
    }
    Frame {
        number,
        len: p.orig_len as u64,
        non_ip: outer.is_none().then(|| non_ip_name(p).to_owned()),
        outer,
        inner,
    }
}

/// Every frame of the capture at `path`, parsed. An error of the capture reader is returned
/// with the frames read before it.
pub(crate) fn read(path: &Path) -> (Vec<Frame>, Option<String>) {
    let mut src = match open_file(path) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(format!("open: {e}"))),
    };
    let mut frames = Vec::new();
    // Bounded: a reader that never ends fails the test instead of hanging it.
    for n in 1..=10_000_000u32 {
        match src.next_packet() {
            Ok(Next::Packet(raw)) => {
                let p =
                    Packet::parse_frame(raw.meta.link_type, raw.data, raw.meta.orig_len as usize);
                frames.push(frame(n, &p));
            }
            Ok(Next::Timeout) => return (frames, Some("a file source timed out".to_owned())),
            Ok(Next::End) => return (frames, None),
            Err(e) => return (frames, Some(format!("read: {e}"))),
        }
    }
    (frames, Some("capture did not end".to_owned()))
}
