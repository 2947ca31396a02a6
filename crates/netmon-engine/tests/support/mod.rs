//! What the corpus tests against the tshark oracle share: running a capture through the real
//! pipeline and keying its records as the oracle keys flows.

use std::collections::HashSet;
use std::path::Path;

use netmon_engine::{Engine, EngineConfig, EngineSink, FlowRecord};
use netmon_flow::{Flow, FlowKey};
use netmon_testkit::oracle::{OracleKey, PORT_PROTOS};

/// Collects every ended flow with its key.
#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) flows: Vec<(FlowKey, FlowRecord)>,
}

impl<E: netmon_engine::RecordExt> EngineSink<E> for Collect {
    fn flow_ended(&mut self, flow: &Flow<E>, iface_name: Option<&str>) {
        self.flows
            .push((flow.core.key, FlowRecord::new(flow, iface_name)));
    }
}

/// One capture through the real pipeline.
pub(crate) struct Run {
    pub(crate) frames: u64,
    pub(crate) non_ip: u64,
    pub(crate) flows: Vec<(FlowKey, FlowRecord)>,
    /// The capture reader's error, if the file ended with one.
    pub(crate) error: Option<String>,
}

/// Runs `path` through the classifying pipeline with the default configuration.
pub(crate) fn run_engine(path: &Path) -> Result<Run, String> {
    let mut src = netmon_capture::open_file(path).map_err(|e| format!("open: {e}"))?;
    let mut engine = Engine::classifying(EngineConfig::default()).map_err(|e| e.to_string())?;
    let mut sink = Collect::default();
    let out = engine.run(&mut src, &mut sink);
    Ok(Run {
        frames: out.summary.packets,
        non_ip: out.summary.non_ip_packets,
        flows: sink.flows,
        error: out.error.map(|e| e.to_string()),
    })
}

/// The oracle key of a record and whether its initiator is the key's B.
pub(crate) fn oracle_key(r: &FlowRecord) -> (OracleKey, bool) {
    let proto = r.proto.0;
    let ports = PORT_PROTOS.contains(&proto);
    let port = |p: Option<u16>| p.filter(|_| ports);
    OracleKey::canon(
        Some(proto),
        (r.src_ip, port(r.src_port)),
        (r.dst_ip, port(r.dst_port)),
    )
}

/// Which of the oracle's flow lists a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Not inside a tunnel: the oracle's `flows`.
    Outer,
    /// The innermost tracked tunnel level: the oracle's `tunnel_inner_flows`.
    Inner,
    /// A tunnel level that carries another one: the oracle has no such flow.
    Intermediate,
}

/// The level of every record (the oracle keys tunnelled traffic on its innermost IP header).
pub(crate) fn levels(records: &[(FlowKey, FlowRecord)]) -> Vec<Level> {
    // Keys that carried another tunnel level.
    let carriers: HashSet<FlowKey> = records
        .iter()
        .filter_map(|(_, r)| r.outer.as_ref().map(|k| k.0))
        .collect();
    records
        .iter()
        .map(|(k, r)| match &r.outer {
            None => Level::Outer,
            Some(_) if carriers.contains(k) => Level::Intermediate,
            Some(_) => Level::Inner,
        })
        .collect()
}
