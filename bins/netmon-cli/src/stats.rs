//! `netmon stats FILE` and `netmon alerts FILE`: the statistics and detectors of a capture
//! (metrics, defaults and rule syntax: docs/stats.md).

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use netmon_capture::{CaptureSource, FileSource, Next};
use netmon_engine::{Engine, EngineConfig, EngineSink, Summary};
use netmon_flow::EndReason;
use netmon_stats::Stats;
use netmon_stats::{
    Alert, AlertEvent, Evidence, Report, SeriesConfig, SeriesPoint, StatsConfig, Subject,
};

use crate::Usage;
use crate::input::{Progress, describe, open};

/// Arguments of `netmon stats`.
#[derive(clap::Args, Debug)]
pub(crate) struct StatsArgs {
    /// Capture file to read (pcap or pcapng); `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Window lengths for the time series, e.g. `1s,10s,60s` (also 5m, 1h).
    #[arg(long, value_name = "LIST", default_value = "1s,10s,60s")]
    window: String,

    /// One JSON document instead of text.
    #[arg(long)]
    json: bool,

    /// How many top talkers of each kind to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
}

/// Arguments of `netmon alerts`.
#[derive(clap::Args, Debug)]
pub(crate) struct AlertsArgs {
    /// Capture file to read (pcap or pcapng); `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// One JSON object per alert.
    #[arg(long)]
    json: bool,

    /// A threshold rule, e.g. `bps on any over 10s > 1e6` (repeatable; syntax: docs/stats.md).
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<String>,
}

/// Collects what the engine reports: series points, and the final form of every alert.
#[derive(Default)]
struct Collect {
    series: Vec<SeriesPoint>,
    alerts: Vec<Alert>,
}

impl<E> EngineSink<E> for Collect {
    fn alert(&mut self, event: &AlertEvent) {
        // An alert is raised when its threshold is crossed and closed, with its final evidence,
        // when the activity stops: one record per scan.
        if let AlertEvent::Closed(a) = event {
            self.alerts.push(a.clone());
        }
    }
    fn series(&mut self, point: &SeriesPoint) {
        self.series.push(point.clone());
    }
}

/// Runs the engine with statistics over a file: the statistics at the end, the run's summary,
/// what was reported, and the capture error that ended the file early, if any.
fn analyse(
    file: &std::path::Path,
    cfg: StatsConfig,
) -> anyhow::Result<(Stats, Summary, Collect, Option<String>)> {
    let mut src: FileSource = open(file).map_err(|e| anyhow!(describe(&e)))?;
    let cfg = EngineConfig {
        stats: Some(cfg),
        ..EngineConfig::default()
    };
    let mut sink = Collect::default();
    let mut engine = Engine::classifying(cfg).map_err(|e| Usage(e.to_string()))?;
    let mut progress = Progress::new(&src, true);
    let mut n = 0u64;
    let error = loop {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                n += 1;
                engine.process(&p.meta, p.data, &mut sink);
                progress.tick(n, &src);
            }
            Ok(Next::Timeout) => {}
            Ok(Next::End) => break None,
            Err(e) => break Some(describe(&e)),
        }
    };
    progress.finish();
    engine.finish(EndReason::EndOfCapture, &mut sink);
    let mut summary = engine.summary();
    summary.capture = src.stats();
    let stats = engine
        .into_stats()
        .ok_or_else(|| anyhow!("internal: statistics were not enabled"))?;
    Ok((stats, summary, sink, error))
}

/// Runs `netmon stats`.
pub(crate) fn run_stats(args: &StatsArgs) -> anyhow::Result<()> {
    let windows = netmon_stats::detect::rule::parse_windows(&args.window).map_err(Usage)?;
    let cfg = StatsConfig {
        windows: windows.clone(),
        series: Some(SeriesConfig {
            windows: windows.clone(),
            ..SeriesConfig::default()
        }),
        ..StatsConfig::default()
    };
    let (stats, summary, collect, error) = analyse(&args.file, cfg)?;
    let report = stats.report(args.top);
    let mut out = BufWriter::new(io::stdout().lock());
    if args.json {
        let doc = serde_json::json!({
            "summary": summary_json(&summary),
            "hierarchy": report.hierarchy,
            "series": collect.series,
            "talkers": report.talkers,
            "alerts": collect.alerts,
        });
        serde_json::to_writer(&mut out, &doc).context("writing JSON")?;
        writeln!(out)?;
    } else {
        write_stats_text(
            &mut out,
            &summary,
            stats.hierarchy().render(),
            &collect.series,
            &windows,
            &report,
            &collect.alerts,
        )?;
    }
    out.flush()?;
    match error {
        Some(m) => Err(anyhow!(m)),
        None => Ok(()),
    }
}

/// Runs `netmon alerts`.
pub(crate) fn run_alerts(args: &AlertsArgs) -> anyhow::Result<()> {
    let mut cfg = StatsConfig::default();
    cfg.detectors.thresholds.clone_from(&args.rules);
    let (_stats, _summary, collect, error) = analyse(&args.file, cfg)?;
    let mut out = BufWriter::new(io::stdout().lock());
    for a in &collect.alerts {
        if args.json {
            serde_json::to_writer(&mut out, a).context("writing JSON")?;
            writeln!(out)?;
        } else {
            write_alert_text(&mut out, a)?;
        }
    }
    if collect.alerts.is_empty() && !args.json && io::stdout().is_terminal() {
        writeln!(out, "no alerts")?;
    }
    out.flush()?;
    match error {
        Some(m) => Err(anyhow!(m)),
        None => Ok(()),
    }
}

fn summary_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "packets": s.packets,
        "bytes": s.bytes,
        "ip_packets": s.ip_packets,
        "non_ip_packets": s.non_ip_packets,
        "parse_errors": s.parse_errors,
        "first": s.first.map(|t| t.to_string()),
        "last": s.last.map(|t| t.to_string()),
        "flows": s.flows.created,
    })
}

/// Interface names reach the detectors through the engine, which escapes them.
fn subject(s: &Subject) -> String {
    s.to_string()
}

fn write_alert_text<W: Write>(w: &mut W, a: &Alert) -> io::Result<()> {
    write!(
        w,
        "{} {} {} {}",
        a.first_seen,
        a.severity.name(),
        a.kind,
        subject(&a.source)
    )?;
    if let Some(t) = &a.target {
        write!(w, " -> {}", subject(t))?;
    }
    match &a.evidence {
        Evidence::VerticalScan {
            ports,
            probes,
            failed_ratio,
            window_secs,
            ports_sample,
            ..
        } => write!(
            w,
            ": {ports} ports, {probes} probes, {:.0}% failed within {window_secs} s (ports {})",
            failed_ratio * 100.0,
            sample(ports_sample)
        )?,
        Evidence::HorizontalScan {
            hosts,
            ports,
            probes,
            failed_ratio,
            window_secs,
            ..
        } => write!(
            w,
            ": {hosts} hosts on port {}, {probes} probes, {:.0}% failed within {window_secs} s",
            ports.join(","),
            failed_ratio * 100.0
        )?,
        Evidence::ArpSweep {
            targets,
            requests,
            unanswered_ratio,
            window_secs,
            ..
        } => write!(
            w,
            ": {targets} addresses asked in {requests} requests, {:.0}% unanswered within {window_secs} s",
            unanswered_ratio * 100.0
        )?,
        Evidence::SynFlood {
            peak_new_flows,
            new_flows,
            failed_ratio,
            limit,
            window_secs,
            ..
        } => write!(
            w,
            ": {new_flows} new flows (peak {peak_new_flows} per {window_secs} s, limit {limit}), {:.0}% failed",
            failed_ratio * 100.0
        )?,
        Evidence::Threshold {
            rule, value, peak, ..
        } => write!(w, ": {rule} (value {value:.3}, peak {peak:.3})")?,
    }
    writeln!(w, " [until {}]", a.last_seen)
}

fn sample(ports: &[u16]) -> String {
    let mut s: Vec<String> = ports.iter().take(12).map(u16::to_string).collect();
    if ports.len() > 12 {
        s.push("…".into());
    }
    s.join(",")
}

#[allow(clippy::too_many_arguments)]
fn write_stats_text<W: Write>(
    w: &mut W,
    s: &Summary,
    hierarchy: String,
    series: &[SeriesPoint],
    windows: &[u32],
    report: &Report,
    alerts: &[Alert],
) -> io::Result<()> {
    writeln!(w, "Capture")?;
    writeln!(
        w,
        "  packets {}, bytes {}, IP {}, other {}, parse errors {}, flows {}",
        s.packets, s.bytes, s.ip_packets, s.non_ip_packets, s.parse_errors, s.flows.created
    )?;
    if let (Some(a), Some(b)) = (s.first, s.last) {
        writeln!(
            w,
            "  from {a} to {b} ({:.3} s)",
            b.nanos_since(a) as f64 / 1e9
        )?;
    }
    writeln!(w, "\nProtocol hierarchy (frames, bytes)")?;
    w.write_all(hierarchy.as_bytes())?;
    for &win in windows {
        writeln!(
            w,
            "\nWindow {win} s, all protocols (start, packets/s, bits/s, new flows/s, active flows)"
        )?;
        for p in series
            .iter()
            .filter(|p| p.values.window_secs == win && p.layer == "all")
        {
            // Escaped by the engine already.
            let iface = p.iface_name.clone();
            writeln!(
                w,
                "  {} {:<8} {:>12.1} {:>14.1} {:>10.2} {:>9}",
                p.start,
                iface.unwrap_or_else(|| format!("if{}", p.iface)),
                p.values.pps,
                p.values.bps,
                p.values.new_flows_per_s,
                p.values.active_flows
            )?;
        }
    }
    let t = &report.talkers;
    writeln!(w, "\nTop hosts by bytes")?;
    for r in &t.hosts_by_bytes {
        writeln!(w, "  {:<40} {:>14}", r.key.to_string(), r.count)?;
    }
    writeln!(w, "\nTop hosts by packets")?;
    for r in &t.hosts_by_packets {
        writeln!(w, "  {:<40} {:>14}", r.key.to_string(), r.count)?;
    }
    writeln!(w, "\nTop host pairs by bytes")?;
    for r in &t.pairs_by_bytes {
        writeln!(w, "  {:<82} {:>14}", r.key.to_string(), r.count)?;
    }
    writeln!(w, "\nTop host pairs by packets")?;
    for r in &t.pairs_by_packets {
        writeln!(w, "  {:<82} {:>14}", r.key.to_string(), r.count)?;
    }
    writeln!(w, "\nTop services by bytes")?;
    for r in &t.ports_by_bytes {
        writeln!(w, "  {:<20} {:>14}", r.key.to_string(), r.count)?;
    }
    writeln!(w, "\nTop services by packets")?;
    for r in &t.ports_by_packets {
        writeln!(w, "  {:<20} {:>14}", r.key.to_string(), r.count)?;
    }
    writeln!(w, "\nAlerts ({})", alerts.len())?;
    for a in alerts {
        write!(w, "  ")?;
        write_alert_text(w, a)?;
    }
    Ok(())
}
