//! A small test-only engine: reads a capture with netmon-capture, parses with netmon-packet,
//! tracks flows in a plain 5-tuple map and feeds `Stats`.
//!
//! Flow rules (deliberately simple, not netmon-flow's):
//! - key: (proto, the two (address, port) endpoints in canonical order); ICMP echo by id,
//!   other ICMP by address pair; non-first fragments are not flows;
//! - initiator: the SYN sender (a SYN-ACK's receiver), else the first sender;
//! - TCP state: `SynOnly` while the responder never answered a SYN; `Rejected` if the
//!   responder's first packet was a RST; `HalfOpen` after a SYN-ACK without the initiator's
//!   ACK; `Established` after it; `Closed` once FIN or RST followed; else `Other`;
//! - an update is sent when the responder first answers and when the handshake completes;
//! - ICMP errors quoting a flow count against it (and are not flows themselves);
//! - flows end after 120 s idle (checked once per second of packet time) or at the end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use netmon_capture::{CaptureSource, Next};
use netmon_packet::{Packet, Transport};
use netmon_stats::{EndReason, Endpoint, FlowObs, PacketObs, Stats, TcpState, Timestamp};

const IDLE_NS: i64 = 120 * 1_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    proto: u8,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
}

impl Key {
    fn new(proto: u8, x: (IpAddr, u16), y: (IpAddr, u16)) -> Key {
        if x <= y {
            Key { proto, a: x, b: y }
        } else {
            Key { proto, a: y, b: x }
        }
    }
}

struct Flow {
    obs: FlowObs,
    syn: bool,
    synack: bool,
    acked: bool,
    rejected: bool,
    closed: bool,
}

impl Flow {
    fn state(&self) -> TcpState {
        if self.rejected {
            TcpState::Rejected
        } else if self.acked {
            if self.closed {
                TcpState::Closed
            } else {
                TcpState::Established
            }
        } else if self.synack {
            TcpState::HalfOpen
        } else if self.syn && !self.obs.responder_answered {
            TcpState::SynOnly
        } else {
            TcpState::Other
        }
    }
}

/// Feeds a `Stats` from captures.
pub(crate) struct Driver {
    pub(crate) stats: Stats,
    flows: HashMap<Key, Flow>,
    next_id: u64,
    last_sweep: i64,
    /// Every flow summary passed at an end, in order (for batch oracles).
    pub(crate) ended: Vec<FlowObs>,
}

const TCP: u8 = 6;

impl Driver {
    pub(crate) fn new(stats: Stats) -> Driver {
        Driver {
            stats,
            flows: HashMap::new(),
            next_id: 0,
            last_sweep: i64::MIN,
            ended: Vec::new(),
        }
    }

    /// Reads a whole capture.
    pub(crate) fn run_file(&mut self, path: &Path) {
        let mut src = netmon_capture::open_file(path).unwrap();
        loop {
            match src.next_packet().unwrap() {
                Next::Packet(p) => self.packet(
                    p.meta.ts,
                    p.meta.iface,
                    p.meta.iface_name,
                    p.meta.link_type,
                    p.data,
                    p.meta.orig_len,
                ),
                Next::Timeout => continue,
                Next::End => break,
            }
        }
    }

    /// One frame.
    pub(crate) fn packet(
        &mut self,
        ts: Timestamp,
        iface: u32,
        iface_name: Option<&str>,
        link: netmon_packet::LinkType,
        data: &[u8],
        orig_len: u32,
    ) {
        let p = Packet::parse_frame(link, data, orig_len as usize);
        let obs = PacketObs::from_packet(ts, iface, iface_name, &p);
        self.stats.on_packet(&obs);
        if ts.secs() != self.last_sweep {
            self.last_sweep = ts.secs();
            self.sweep(ts);
        }
        self.track(ts, iface, &p, u64::from(obs.wire_len));
    }

    fn sweep(&mut self, now: Timestamp) {
        let mut idle: Vec<Key> = self
            .flows
            .iter()
            .filter(|(_, f)| now.0.saturating_sub(f.obs.last_ts.0) > IDLE_NS)
            .map(|(k, _)| *k)
            .collect();
        idle.sort_by_key(|k| self.flows[k].obs.id);
        for k in idle {
            if let Some(f) = self.flows.remove(&k) {
                self.end(f, EndReason::IdleTimeout);
            }
        }
    }

    fn end(&mut self, mut f: Flow, why: EndReason) {
        if f.obs.proto == TCP {
            f.obs.tcp = Some(f.state());
        }
        f.obs.end = Some(why);
        self.stats.on_flow_end(&f.obs);
        self.ended.push(f.obs);
    }

    fn track(&mut self, ts: Timestamp, iface: u32, p: &Packet<'_>, wire: u64) {
        let (Some(src), Some(dst), Some(proto)) = (p.src_ip(), p.dst_ip(), p.ip_proto()) else {
            return;
        };
        let proto = proto.0;
        // ICMP errors count against the flow they quote.
        let quoted = match &p.transport {
            Transport::Icmpv4(i) if i.is_error() => Some(i.quoted()),
            Transport::Icmpv6(i) if i.is_error() => Some(i.quoted()),
            _ => None,
        };
        if let Some(q) = quoted {
            if let Some(q) = q {
                let (sp, dp) = q.ports.unwrap_or((0, 0));
                let k = Key::new(q.protocol, (q.src, sp), (q.dst, dp));
                if let Some(f) = self.flows.get_mut(&k) {
                    f.obs.icmp_errors += 1;
                    let o = f.obs;
                    self.stats.on_flow_update(&o);
                }
            }
            return;
        }
        let (sp, dp) = match (&p.transport, p.ports()) {
            (Transport::Fragment, _) => return,
            (_, Some(ports)) => ports,
            (Transport::Icmpv4(i), None) => i.echo().map_or((0, 0), |e| (e.id, 0)),
            (Transport::Icmpv6(i), None) => i.echo().map_or((0, 0), |e| (e.id, 0)),
            _ => (0, 0),
        };
        let flags = match &p.transport {
            Transport::Tcp(t) => Some(t.flags().0),
            _ => None,
        };
        let key = Key::new(proto, (src, sp), (dst, dp));
        let is_new = !self.flows.contains_key(&key);
        if is_new {
            // A SYN-ACK's receiver initiated; else the sender did.
            let synack = flags.is_some_and(|f| f & 0x12 == 0x12);
            let (init, resp) = if synack {
                ((dst, dp), (src, sp))
            } else {
                ((src, sp), (dst, dp))
            };
            let id = self.next_id;
            self.next_id += 1;
            self.flows.insert(
                key,
                Flow {
                    obs: FlowObs {
                        id,
                        first_ts: ts,
                        last_ts: ts,
                        iface,
                        proto,
                        initiator: Endpoint {
                            ip: init.0,
                            port: init.1,
                        },
                        responder: Endpoint {
                            ip: resp.0,
                            port: resp.1,
                        },
                        packets: [0, 0],
                        bytes: [0, 0],
                        tcp: (proto == TCP).then_some(TcpState::Other),
                        responder_answered: false,
                        icmp_errors: 0,
                        app: None,
                        end: None,
                    },
                    syn: false,
                    synack: false,
                    acked: false,
                    rejected: false,
                    closed: false,
                },
            );
        }
        let Some(f) = self.flows.get_mut(&key) else {
            return;
        };
        let dir = usize::from(f.obs.initiator.ip != src || f.obs.initiator.port != sp);
        let first_answer = dir == 1 && !f.obs.responder_answered;
        f.obs.last_ts = ts.max(f.obs.last_ts);
        f.obs.packets[dir] += 1;
        f.obs.bytes[dir] += wire;
        let mut handshake_done = false;
        if let Some(fl) = flags {
            let (syn, ack, rst, fin) = (
                fl & 0x02 != 0,
                fl & 0x10 != 0,
                fl & 0x04 != 0,
                fl & 0x01 != 0,
            );
            if dir == 0 {
                if syn && !ack {
                    f.syn = true;
                }
                if f.synack && ack && !syn && !rst && !f.acked {
                    f.acked = true;
                    handshake_done = true;
                }
            } else {
                if first_answer && rst {
                    f.rejected = true;
                }
                if syn && ack {
                    f.synack = true;
                }
            }
            if f.acked && (rst || fin) {
                f.closed = true;
            }
        }
        if dir == 1 {
            f.obs.responder_answered = true;
        }
        if f.obs.proto == TCP {
            f.obs.tcp = Some(f.state());
        }
        let o = f.obs;
        if is_new {
            self.stats.on_flow_start(&o);
        } else if first_answer || handshake_done {
            self.stats.on_flow_update(&o);
        }
    }

    /// Ends every flow (by id) and finishes the stats.
    pub(crate) fn finish(&mut self) {
        let mut all: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        all.sort_by_key(|f| f.obs.id);
        for f in all {
            self.end(f, EndReason::Finish);
        }
        self.stats.finish();
    }
}
