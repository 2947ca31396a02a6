//! `netmon flows FILE`: follow the flows of a capture and print one record per flow as it ends
//! (fields: docs/flows.md).
//!
//! Records stream out in the order flows end (timeouts during the capture, then the rest in
//! creation order at the end of the file): the same file always gives the same bytes.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::ValueEnum;
use netmon_capture::{CaptureSource, Next};
use netmon_engine::{Engine, EngineConfig, EngineSink, Filter, FlowRecord};
use netmon_flow::{EndReason, Flow};

use crate::input::{Progress, describe, open};

/// Output format of `netmon flows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
}

/// Arguments of `netmon flows`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Capture file to read (pcap or pcapng); `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,

    /// Only flows matching this expression, e.g. `tcp and dst port 443` (syntax: docs/flows.md).
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,

    /// After the records, print a summary to stderr.
    #[arg(long)]
    stats: bool,

    /// Do not classify applications (no app, SNI, HTTP, DNS fields; faster).
    #[arg(long)]
    no_classify: bool,

    /// Run the sharded pipeline: a reader thread, N flow shards, an aggregator thread. Records
    /// are those of the default single-threaded run, in another order when N > 1 (and DNS
    /// answers name flows of their own shard only).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,

    /// JSON records: add each end's address scope (`private`, `public`, ...; docs/enrich.md).
    #[arg(long)]
    scope: bool,

    /// JSON records: each public end's country, city and coordinates from this GeoLite2/GeoIP2
    /// City or Country database (MaxMind DB file).
    #[arg(long, value_name = "FILE")]
    geoip: Option<PathBuf>,

    /// JSON records: each public end's AS number and organisation from this GeoLite2/GeoIP2
    /// ASN database.
    #[arg(long, value_name = "FILE")]
    asn: Option<PathBuf>,

    /// JSON records: the tracker a flow's names are listed as, from this list (hosts file or
    /// domain list) with its category, e.g. `ads=/etc/netmon/ads.txt`; repeatable. Categories:
    /// ads, analytics, social, fingerprinting, cdn, other.
    #[arg(long, value_name = "CATEGORY=FILE")]
    trackers: Vec<String>,
}

/// The enricher the arguments ask for, if any.
pub(crate) fn enricher(
    scope: bool,
    geoip: Option<&std::path::Path>,
    asn: Option<&std::path::Path>,
    trackers: &[String],
) -> anyhow::Result<Option<std::sync::Arc<netmon_engine::enrich::Enricher>>> {
    use netmon_enrich::trackers::Category;
    let mut lists = Vec::new();
    for t in trackers {
        let (cat, path) = t.split_once('=').ok_or_else(|| {
            crate::Usage(format!(
                "--trackers {t:?}: write CATEGORY=FILE, e.g. ads=/etc/netmon/ads.txt"
            ))
        })?;
        let cat = Category::parse(cat).ok_or_else(|| {
            let known: Vec<&str> = Category::ALL.iter().map(|(n, _)| *n).collect();
            crate::Usage(format!(
                "--trackers {t:?}: {cat:?} is not one of {}",
                known.join(", ")
            ))
        })?;
        lists.push((PathBuf::from(path), cat));
    }
    let cfg = netmon_engine::enrich::EnrichConfig {
        scope,
        geoip: geoip.map(ToOwned::to_owned),
        asn: asn.map(ToOwned::to_owned),
        trackers: lists,
    };
    if !cfg.is_enabled() {
        return Ok(None);
    }
    let e = netmon_engine::enrich::Enricher::load(&cfg).map_err(|e| anyhow!("{e}"))?;
    Ok(Some(std::sync::Arc::new(e)))
}

impl<W: Write + Send> netmon_engine::sharded::PipelineSink for Out<W> {
    fn flow_ended(&mut self, mut r: FlowRecord) {
        if let Some(e) = &self.enricher {
            e.apply(&mut r);
        }
        if self.error.is_some() || self.filter.as_ref().is_some_and(|f| !f.matches(&r)) {
            return;
        }
        self.printed += 1;
        if let Err(e) = self.write(&r) {
            self.error = Some(e);
        }
    }
}

/// `netmon flows --shards N`: the sharded pipeline, records written by its aggregator.
fn run_sharded(args: &Args, shards: usize, filter: Option<Filter>) -> anyhow::Result<()> {
    use netmon_engine::sharded::{ShardConfig, run_sharded};
    let mut src = open(&args.file).map_err(|e| anyhow!(describe(&e)))?;
    let mut sink = Out::new(
        BufWriter::with_capacity(256 * 1024, io::stdout()),
        args.format,
        filter,
    )
    .with_enricher(enricher(
        args.scope,
        args.geoip.as_deref(),
        args.asn.as_deref(),
        &args.trackers,
    )?);
    sink.header()?;
    let mut cfg = EngineConfig::default();
    cfg.classify.enabled = !args.no_classify;
    let sc = ShardConfig {
        shards,
        ..ShardConfig::default()
    };
    let o = run_sharded(&cfg, &sc, &mut src, &mut sink, None)
        .map_err(|e| crate::Usage(e.to_string()))?;
    if let Some(e) = sink.error.take() {
        return Err(e).context("writing flow records");
    }
    sink.out.flush()?;
    if args.stats {
        let s = &o.summary;
        let per: Vec<String> = o.shards.iter().map(|s| s.packets.to_string()).collect();
        writeln!(
            io::stderr(),
            "packets {} ({} IP, {} other, {} with parse errors), bytes {}, flows {} ({} printed), \
             evicted {}; per shard: {} packets",
            s.packets,
            s.ip_packets,
            s.non_ip_packets,
            s.parse_errors,
            s.bytes,
            s.flows.created,
            sink.printed,
            s.flows.ended_by(EndReason::Evicted),
            per.join(" / "),
        )?;
    }
    match o.error {
        Some(e) => Err(anyhow!(describe(&e))),
        None => Ok(()),
    }
}

/// Writes records as flows end. I/O errors are kept and reported after the packet that caused
/// them (the flow table cannot return errors from its callbacks).
pub(crate) struct Out<W: Write> {
    out: W,
    format: Format,
    filter: Option<Filter>,
    printed: u64,
    error: Option<io::Error>,
    enricher: Option<std::sync::Arc<netmon_engine::enrich::Enricher>>,
    processes: Option<netmon_engine::enrich::ProcessTracker>,
}

impl<W: Write> Out<W> {
    /// A sink printing to `out` in `format`, only records that `filter` matches.
    pub(crate) fn new(out: W, format: Format, filter: Option<Filter>) -> Out<W> {
        Out {
            out,
            format,
            filter,
            printed: 0,
            error: None,
            enricher: None,
            processes: None,
        }
    }

    /// Attributes flows to local processes (needs `EngineConfig::observe`).
    pub(crate) fn with_processes(mut self, t: netmon_engine::enrich::ProcessTracker) -> Out<W> {
        self.processes = Some(t);
        self
    }

    /// Enriches every record before it is filtered and written.
    pub(crate) fn with_enricher(
        mut self,
        e: Option<std::sync::Arc<netmon_engine::enrich::Enricher>>,
    ) -> Out<W> {
        self.enricher = e;
        self
    }

    /// The first write error since the last call, if any.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Flushes the output.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The table or CSV header line (nothing for JSON lines).
    pub(crate) fn header(&mut self) -> io::Result<()> {
        match self.format {
            Format::Table => writeln!(
                self.out,
                "{:<6} {:<47} {:<47} {:>8} {:>12} {:>8} {:>12} {:>12} {:<12} {:<14} {:<13} name",
                "proto",
                "src",
                "dst",
                "pkts>",
                "bytes>",
                "pkts<",
                "bytes<",
                "duration",
                "state",
                "end",
                "app",
            ),
            Format::Csv => writeln!(
                self.out,
                "id,proto,src_ip,src_port,dst_ip,dst_port,packets_c2s,bytes_c2s,packets_s2c,bytes_s2c,\
                 payload_bytes_c2s,payload_bytes_s2c,first_seen,last_seen,duration_ns,state,end_reason,\
                 vlan,iface,iface_name,icmp_errors,outer,app,app_guess,sni,alpn,http_host,dns_query,\
                 domain,ja4"
            ),
            Format::Jsonl => Ok(()),
        }
    }

    fn write(&mut self, r: &FlowRecord) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                r.write_json(&mut self.out)?;
                self.out.write_all(b"\n")
            }
            Format::Csv => write_csv(&mut self.out, r),
            Format::Table => write_table(&mut self.out, r),
        }
    }
}

impl<W: Write, E: netmon_engine::RecordExt> EngineSink<E> for Out<W> {
    fn flow_observed(&mut self, event: netmon_engine::FlowEvent, obs: &netmon_stats::FlowObs) {
        if event == netmon_engine::FlowEvent::Start {
            if let Some(t) = self.processes.as_mut() {
                t.flow_started(obs);
            }
        }
    }

    fn flow_ended(&mut self, flow: &Flow<E>, iface_name: Option<&str>) {
        if self.error.is_some() {
            return;
        }
        let mut r = FlowRecord::new(flow, iface_name);
        if let Some(t) = self.processes.as_mut() {
            r.enrich.process = t.take(r.id);
        }
        if let Some(e) = &self.enricher {
            e.apply(&mut r);
        }
        if self.filter.as_ref().is_some_and(|f| !f.matches(&r)) {
            return;
        }
        self.printed += 1;
        if let Err(e) = self.write(&r) {
            self.error = Some(e);
        }
    }
}

/// `ip:port`, `[v6]:port`, or the bare address without a port.
struct Endpoint<'a>(&'a std::net::IpAddr, Option<u16>);

impl std::fmt::Display for Endpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0, self.1) {
            (std::net::IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
            (a, Some(p)) => write!(f, "{a}:{p}"),
            (a, None) => write!(f, "{a}"),
        }
    }
}

/// Longest name the table shows (names are escaped already; longer ones end in `…`).
const TABLE_NAME_CHARS: usize = 64;

fn write_table<W: Write>(w: &mut W, r: &FlowRecord) -> io::Result<()> {
    let secs = r.duration_ns as f64 / 1e9;
    // A guessed application (from a port) is marked with `?`.
    let app = match (r.app, r.app_guess) {
        (Some(a), true) => format!("{a}?"),
        (Some(a), false) => a.to_owned(),
        (None, _) => "-".to_owned(),
    };
    let name = r.name().unwrap_or("-");
    let name = match name.char_indices().nth(TABLE_NAME_CHARS) {
        Some((cut, _)) => format!("{}…", name.get(..cut).unwrap_or_default()),
        None => name.to_owned(),
    };
    writeln!(
        w,
        "{:<6} {:<47} {:<47} {:>8} {:>12} {:>8} {:>12} {:>11.3}s {:<12} {:<14} {:<13} {}",
        r.proto.to_string(),
        Endpoint(&r.src_ip, r.src_port).to_string(),
        Endpoint(&r.dst_ip, r.dst_port).to_string(),
        r.packets_c2s,
        r.bytes_c2s,
        r.packets_s2c,
        r.bytes_s2c,
        secs,
        r.state,
        r.end_reason.unwrap_or("-"),
        app,
        name,
    )
}

/// A CSV field: quoted (RFC 4180) when it holds a comma, quote or line break.
struct Csv<'a>(&'a str);

impl std::fmt::Display for Csv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.contains([',', '"', '\n', '\r']) {
            write!(f, "\"{}\"", self.0.replace('"', "\"\""))
        } else {
            f.write_str(self.0)
        }
    }
}

fn write_csv<W: Write>(w: &mut W, r: &FlowRecord) -> io::Result<()> {
    let opt = |v: Option<u16>| v.map(|p| p.to_string()).unwrap_or_default();
    let vlan = r
        .vlan
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(";");
    // The engine escapes interface names once (they come from the capture file).
    let name = r.iface_name.as_deref().unwrap_or_default();
    let outer = match &r.outer {
        Some(k) => serde_json::to_string(k).map_err(io::Error::from)?,
        None => String::new(),
    };
    writeln!(
        w,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        r.id,
        r.proto,
        r.src_ip,
        opt(r.src_port),
        r.dst_ip,
        opt(r.dst_port),
        r.packets_c2s,
        r.bytes_c2s,
        r.packets_s2c,
        r.bytes_s2c,
        r.payload_bytes_c2s,
        r.payload_bytes_s2c,
        r.first_seen.0.rfc3339(),
        r.last_seen.0.rfc3339(),
        r.duration_ns,
        r.state,
        r.end_reason.unwrap_or(""),
        vlan,
        r.iface,
        Csv(name),
        r.icmp_errors,
        Csv(&outer),
        r.app.unwrap_or_default(),
        r.app_guess,
        Csv(r.sni.as_deref().unwrap_or_default()),
        Csv(&r.alpn.join(";")),
        Csv(first(r.http.iter().filter_map(|h| h.host.as_deref()))),
        Csv(first(r.dns.iter().map(|d| d.query.as_str()))),
        Csv(r.domain.as_deref().unwrap_or_default()),
        r.ja4.as_deref().unwrap_or_default(),
    )
}

/// The first item, or the empty string.
fn first<'a>(mut it: impl Iterator<Item = &'a str>) -> &'a str {
    it.next().unwrap_or_default()
}

/// Runs `netmon flows`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let filter = match &args.filter {
        Some(f) => {
            let usage = |e| crate::Usage(format!("{e} (see docs/flows.md for the syntax)"));
            Some(Filter::parse(f).map_err(usage)?)
        }
        None => None,
    };
    match args.shards {
        Some(0) => return Err(crate::Usage("--shards must be at least 1".into()).into()),
        Some(n) => return run_sharded(args, n, filter),
        None => {}
    }
    let mut src = open(&args.file).map_err(|e| anyhow!(describe(&e)))?;
    let stdout = io::stdout();
    let mut sink = Out::new(
        BufWriter::with_capacity(256 * 1024, stdout.lock()),
        args.format,
        filter,
    )
    .with_enricher(enricher(
        args.scope,
        args.geoip.as_deref(),
        args.asn.as_deref(),
        &args.trackers,
    )?);
    sink.header()?;
    let mut cfg = EngineConfig::default();
    cfg.classify.enabled = !args.no_classify;
    let mut engine = Engine::classifying(cfg).map_err(|e| crate::Usage(e.to_string()))?;
    let mut progress = Progress::new(&src, !io::stdout().is_terminal());
    let mut n = 0u64;
    let mut peak_table = 0usize;
    let capture_error = loop {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                n += 1;
                engine.process(&p.meta, p.data, &mut sink);
                if args.stats && n % 65_536 == 0 {
                    peak_table = peak_table.max(engine.table().memory_bytes());
                }
                if let Some(e) = sink.error.take() {
                    return Err(e).context("writing flow records");
                }
                progress.tick(n, &src);
            }
            Ok(Next::Timeout) => {}
            Ok(Next::End) => break None,
            Err(e) => break Some(e),
        }
    };
    progress.finish();
    engine.finish(EndReason::EndOfCapture, &mut sink);
    if let Some(e) = sink.error.take() {
        return Err(e).context("writing flow records");
    }
    sink.out.flush()?;
    if args.stats {
        let s = engine.summary();
        let mut err = io::stderr().lock();
        writeln!(
            err,
            "packets {} ({} IP, {} other, {} with parse errors), bytes {}, flows {} ({} printed), \
             evicted {}, fragments orphaned {}",
            s.packets,
            s.ip_packets,
            s.non_ip_packets,
            s.parse_errors,
            s.bytes,
            s.flows.created,
            sink.printed,
            s.flows.ended_by(EndReason::Evicted),
            s.flows.fragments_orphaned,
        )?;
        let c = engine.context();
        writeln!(
            err,
            "classified: {} recognised, {} guessed, {} unknown; {} hellos ({} QUIC, {} failed), \
             {} HTTP requests, {} DNS messages; DNS correlator: {} addresses, {} names, {} KiB; \
             flow table peak {} KiB",
            c.stats.recognised,
            c.stats.guessed,
            c.stats.unknown,
            c.stats.hellos,
            c.stats.quic_hellos,
            c.stats.hello_failures,
            c.stats.http_requests,
            c.stats.dns_messages,
            c.dns.len(),
            c.dns.name_count(),
            c.dns.memory_bytes() / 1024,
            peak_table / 1024,
        )?;
    }
    match capture_error {
        Some(e) => Err(anyhow!(describe(&e))),
        None => Ok(()),
    }
}
