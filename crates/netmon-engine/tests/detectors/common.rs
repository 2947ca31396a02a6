//! Running the engine with statistics and collecting what it reports.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use netmon_engine::{Engine, EngineConfig, EngineSink, Outcome};
use netmon_flow::Flow;
use netmon_stats::{Alert, AlertEvent, Endpoint, FlowObs, StatsConfig, TcpState};

/// What the engine hands its sink: every alert event, and every ended flow in the detectors'
/// vocabulary (see [`flow_view`]).
#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) events: Vec<AlertEvent>,
    pub(crate) ended: Vec<FlowObs>,
}

impl<E: netmon_flow::FlowExt> EngineSink<E> for Collect {
    fn alert(&mut self, event: &AlertEvent) {
        self.events.push(event.clone());
    }
    fn flow_ended(&mut self, flow: &Flow<E>, _iface_name: Option<&str>) {
        self.ended.push(flow_view(flow));
    }
}

impl Collect {
    /// The closed alerts (the final record of each), checking that every raised alert was
    /// closed exactly once, after it was raised, and that nothing else was closed.
    pub(crate) fn closed_alerts(&self) -> Vec<Alert> {
        let mut open: HashMap<u64, &Alert> = HashMap::new();
        let mut closed = Vec::new();
        for e in &self.events {
            match e {
                AlertEvent::Raised(a) => {
                    assert!(open.insert(a.id, a).is_none(), "raised twice: {a:#?}");
                }
                AlertEvent::Closed(a) => {
                    let r = open.remove(&a.id);
                    let r = r.unwrap_or_else(|| panic!("closed but not open: {a:#?}"));
                    assert_eq!((r.kind, &r.source), (a.kind, &a.source), "same alert");
                    closed.push(a.clone());
                }
            }
        }
        assert!(open.is_empty(), "never closed: {open:#?}");
        closed
    }
}

/// A stats-enabled engine with the default configuration.
pub(crate) fn engine() -> Engine {
    Engine::new(EngineConfig {
        stats: Some(StatsConfig::default()),
        ..EngineConfig::default()
    })
    .unwrap()
}

/// Runs a capture through a stats-enabled engine (default configuration).
pub(crate) fn run(path: &Path) -> (Engine, Collect, Outcome) {
    let mut engine = engine();
    let mut sink = Collect::default();
    let mut src = netmon_capture::open_file(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let outcome = engine.run(&mut src, &mut sink);
    (engine, sink, outcome)
}

/// An ended flow as the detectors' [`FlowObs`], derived **here** from the flow record's
/// per-direction counters and flags (not with the engine's private adapter), following the
/// definitions of `netmon_stats::TcpState`:
/// - no SYN and no ACK from the initiator (a FIN, NULL or Xmas probe), answered by a RST and
///   never a SYN: `Rejected`;
/// - otherwise no SYN from the initiator: `Other` (picked up midstream);
/// - a SYN and no answer: `SynOnly`;
/// - the responder never sent a SYN but sent a RST: `Rejected`;
/// - a SYN-ACK, and the initiator never acknowledged anything: `HalfOpen`;
/// - a SYN-ACK, acknowledged: `Closed` after a FIN or RST, else `Established`.
///
/// Used by the batch oracle (workload test) and to count probes and ports; if the engine's
/// adapter ever disagreed with these definitions, the oracle comparison would show it.
pub(crate) fn flow_view<E>(flow: &Flow<E>) -> FlowObs {
    let c = &flow.core;
    let (i, r) = (c.c2s(), c.s2c());
    let tcp = (c.key.proto() == 6).then(|| {
        if i.syn == 0 {
            if !i.flags_seen.ack() && r.syn == 0 && r.rst > 0 {
                TcpState::Rejected
            } else {
                TcpState::Other
            }
        } else if r.packets == 0 {
            TcpState::SynOnly
        } else if r.syn == 0 {
            if r.rst > 0 {
                TcpState::Rejected
            } else {
                TcpState::Other
            }
        } else if !i.flags_seen.ack() {
            TcpState::HalfOpen
        } else if i.fin + r.fin + i.rst + r.rst > 0 {
            TcpState::Closed
        } else {
            TcpState::Established
        }
    });
    let (src, dst) = (c.src(), c.dst());
    FlowObs {
        id: c.id,
        first_ts: c.first_seen,
        last_ts: c.last_seen,
        iface: u32::from(c.key.iface()),
        proto: c.key.proto(),
        initiator: Endpoint {
            ip: src.ip,
            port: src.port,
        },
        responder: Endpoint {
            ip: dst.ip,
            port: dst.port,
        },
        packets: [i.packets, r.packets],
        bytes: [i.bytes, r.bytes],
        tcp,
        responder_answered: r.packets > 0,
        icmp_errors: c.icmp_errors,
        app: None,
        end: Some(netmon_stats::EndReason::Other),
    }
}

/// MANIFEST.tsv: file name → category.
pub(crate) fn categories(dir: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let cat = header.iter().position(|h| *h == "category").unwrap();
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.first()?.to_string(), f.get(cat)?.to_string()))
        })
        .collect()
}

/// The tshark command, when installed (`TSHARK` overrides the name). With
/// `NETMON_REQUIRE_TSHARK=1` a missing tshark fails the test.
pub(crate) fn tshark() -> Option<String> {
    let t = std::env::var("TSHARK").unwrap_or_else(|_| "tshark".into());
    let ok = Command::new(&t)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("NETMON_REQUIRE_TSHARK").as_deref() == Ok("1") {
        panic!("tshark not found and NETMON_REQUIRE_TSHARK=1");
    }
    ok.then_some(t)
}
