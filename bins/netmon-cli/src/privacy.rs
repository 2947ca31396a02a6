//! `netmon privacy FILE`: per application, the tracker domains it contacted and its privacy
//! score (docs/enrich.md has the formula).
//!
//! The application of a flow is its local process when process attribution knows it; in a
//! capture file there is none, so it is the local end: the initiator when its address is not
//! public (the host inside the network that opened the connection), else the initiator's
//! address all the same.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::anyhow;
use netmon_engine::{Engine, EngineConfig, EngineSink, FlowClass, FlowRecord};
use netmon_enrich::scope::scope_of;
use netmon_enrich::trackers::PrivacyTally;
use netmon_flow::Flow;

use crate::input::{describe, open};

/// Arguments of `netmon privacy`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Capture file to read (pcap or pcapng); `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// A tracker list with its category, e.g. `ads=/etc/netmon/ads.txt`; repeatable, at least
    /// one. Categories: ads, analytics, social, fingerprinting, cdn, other.
    #[arg(long, value_name = "CATEGORY=FILE", required = true)]
    trackers: Vec<String>,

    /// One JSON object per application instead of a table.
    #[arg(long)]
    json: bool,
}

struct Tally {
    enricher: std::sync::Arc<netmon_engine::enrich::Enricher>,
    tally: PrivacyTally,
}

impl EngineSink<FlowClass> for Tally {
    fn flow_ended(&mut self, flow: &Flow<FlowClass>, iface_name: Option<&str>) {
        let mut r = FlowRecord::new(flow, iface_name);
        self.enricher.apply(&mut r);
        let app = app_of(&r);
        self.tally.add(&app, r.enrich.tracker.as_ref());
    }
}

/// The application a record belongs to (see the module docs).
fn app_of(r: &FlowRecord) -> String {
    let local = if scope_of(r.src_ip).is_external() && !scope_of(r.dst_ip).is_external() {
        r.dst_ip
    } else {
        r.src_ip
    };
    format!("host {local}")
}

/// Runs `netmon privacy`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let enricher = crate::flows::enricher(false, None, None, &args.trackers)?
        .ok_or_else(|| crate::Usage("give at least one --trackers CATEGORY=FILE".into()))?;
    let mut src = open(&args.file).map_err(|e| anyhow!(describe(&e)))?;
    let mut engine =
        Engine::classifying(EngineConfig::default()).map_err(|e| crate::Usage(e.to_string()))?;
    let mut sink = Tally {
        enricher,
        tally: PrivacyTally::new(),
    };
    let outcome = engine.run(&mut src, &mut sink);
    let report = sink.tally.report();
    let mut out = BufWriter::new(io::stdout().lock());
    if args.json {
        for a in &report {
            let trackers: Vec<serde_json::Value> = a
                .trackers
                .iter()
                .map(|(d, c)| serde_json::json!({"domain": d, "category": c.name()}))
                .collect();
            let v = serde_json::json!({
                "app": a.app,
                "flows": a.flows,
                "tracker_flows": a.tracker_flows,
                "trackers": trackers,
                "exposure": (a.exposure * 100.0).round() / 100.0,
                "score": a.score,
            });
            serde_json::to_writer(&mut out, &v)?;
            writeln!(out)?;
        }
    } else {
        writeln!(
            out,
            "{:>5}  {:<40} {:>8} {:>8}  trackers",
            "score", "application", "flows", "tracked"
        )?;
        for a in &report {
            // Listed domains are normalised DNS names (letters, digits, `-`, `_`, `.`).
            let names: Vec<String> = a
                .trackers
                .iter()
                .map(|(d, c)| format!("{d} ({})", c.name()))
                .collect();
            writeln!(
                out,
                "{:>5}  {:<40} {:>8} {:>8}  {}",
                a.score,
                a.app,
                a.flows,
                a.tracker_flows,
                names.join(", ")
            )?;
        }
    }
    out.flush()?;
    match outcome.error {
        Some(e) => Err(anyhow!(describe(&e))),
        None => Ok(()),
    }
}
