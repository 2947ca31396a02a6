//! `netmon privacy FILE`: per application, the tracker domains it contacted and its privacy
//! score (docs/enrich.md has the formula).
//!
//! The application of a flow is its local process when process attribution knows it
//! (`--live`); in a capture file there is none, so it is the local end: the initiator when its address is not
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
    #[arg(value_name = "FILE", required_unless_present = "live")]
    file: Option<PathBuf>,

    /// Capture live on this interface instead (repeatable; Linux): applications are the local
    /// processes owning the flows' sockets; the report comes at Ctrl-C or after --duration.
    #[arg(long, value_name = "IFACE", conflicts_with = "file")]
    live: Vec<String>,

    /// With --live: stop after this long (e.g. `30s`, `5m`).
    #[arg(long, value_name = "DURATION", requires = "live", value_parser = crate::capture::parse_duration)]
    duration: Option<std::time::Duration>,

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
    processes: Option<netmon_engine::enrich::ProcessTracker>,
}

impl EngineSink<FlowClass> for Tally {
    fn flow_observed(&mut self, event: netmon_engine::FlowEvent, obs: &netmon_stats::FlowObs) {
        if event == netmon_engine::FlowEvent::Start {
            if let Some(t) = self.processes.as_mut() {
                t.flow_started(obs);
            }
        }
    }

    fn flow_ended(&mut self, flow: &Flow<FlowClass>, iface_name: Option<&str>) {
        let mut r = FlowRecord::new(flow, iface_name);
        if let Some(t) = self.processes.as_mut() {
            r.enrich.process = t.take(r.id);
        }
        self.enricher.apply(&mut r);
        let app = app_of(&r);
        self.tally.add(&app, r.enrich.tracker.as_ref());
    }
}

/// The application a record belongs to (see the module docs): its process when attribution
/// found one, else the local host.
fn app_of(r: &FlowRecord) -> String {
    if let Some(p) = r.enrich.process.as_ref().and_then(|a| a.process()) {
        return p.name.clone();
    }
    let local = if scope_of(r.src_ip).is_external() && !scope_of(r.dst_ip).is_external() {
        r.dst_ip
    } else {
        r.src_ip
    };
    format!("host {local}")
}

/// `--live`: the interfaces opened, privileges dropped to the two that process attribution
/// needs, Ctrl-C and `--duration` wired to the source's stop.
fn open_live(args: &Args) -> anyhow::Result<Box<dyn netmon_capture::CaptureSource>> {
    let cfg = netmon_capture::LiveConfig {
        interfaces: args.live.clone(),
        // Attribution races the sockets' owners: packets at once.
        immediate: true,
        ..netmon_capture::LiveConfig::default()
    };
    let backend = netmon_capture::Backend::default_live(&cfg)
        .ok_or_else(|| anyhow!("this build has no live capture backend"))?;
    let src = netmon_capture::open_live(backend, &cfg)
        .map_err(|e| anyhow!(crate::capture::describe_live(&e)))?;
    match netmon_capture::privilege::drop_privileges_keeping_process_inspection() {
        Ok(_) | Err(netmon_capture::privilege::PrivilegeError::Unsupported) => {}
        Err(e) => return Err(anyhow!("{e}")),
    }
    let stop = src.stop_handle();
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.stop())
        .map_err(|e| anyhow!("installing the Ctrl-C handler: {e}"))?;
    if let Some(d) = args.duration {
        std::thread::spawn(move || {
            std::thread::sleep(d);
            stop.stop();
        });
    }
    use std::io::Write as _;
    let _ = writeln!(
        io::stderr(),
        "netmon: capturing on {} (the report comes at Ctrl-C{})",
        args.live.join(", "),
        if args.duration.is_some() {
            " or after --duration"
        } else {
            ""
        }
    );
    Ok(src)
}

/// Runs `netmon privacy`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let enricher = crate::flows::enricher(false, None, None, &args.trackers)?
        .ok_or_else(|| crate::Usage("give at least one --trackers CATEGORY=FILE".into()))?;
    let live = !args.live.is_empty();
    let mut src: Box<dyn netmon_capture::CaptureSource> = match &args.file {
        Some(f) if !live => Box::new(open(f).map_err(|e| anyhow!(describe(&e)))?),
        _ => open_live(args)?,
    };
    let cfg = EngineConfig {
        observe: live,
        ..EngineConfig::default()
    };
    let mut engine = Engine::classifying(cfg).map_err(|e| crate::Usage(e.to_string()))?;
    let mut sink = Tally {
        enricher,
        tally: PrivacyTally::new(),
        processes: live.then(netmon_engine::enrich::ProcessTracker::new),
    };
    let outcome = engine.run(src.as_mut(), &mut sink);
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
