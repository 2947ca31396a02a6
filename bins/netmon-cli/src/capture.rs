//! `netmon capture -i IFACE`: a one-shot live capture.
//!
//! Opens every interface first, then drops privileges (`--user`, and always every capability),
//! then reads until `-c COUNT` packets, `--duration`, or Ctrl-C / SIGTERM — each a clean stop
//! that flushes the output and prints the counts (captured, received and dropped by the
//! kernel, dropped by netmon) on stderr. Packets are printed like `netmon read` (text or
//! `--json`), written to `-w FILE`, or followed as flows (`--flows`, records like
//! `netmon flows`).

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use netmon_capture::filter::{Exclude, with_exclusions};
use netmon_capture::privilege;
use netmon_capture::{
    Backend, CaptureSource, LiveConfig, Next, PcapNgWriter, PcapWriter, TsPrecision,
};
use netmon_engine::{Engine, EngineConfig};
use netmon_flow::EndReason;

use crate::flows::{Format, Out};
use crate::input::describe;
use crate::read::{decode::decode, fastfmt::TsFmt, jsonl, text};

/// Arguments of `netmon capture`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Interface to capture on (repeat for several; `any` with the pcap backend).
    #[arg(short = 'i', long = "interface", value_name = "IFACE", required = true)]
    interfaces: Vec<String>,

    /// Capture filter in tcpdump's syntax, e.g. `tcp port 443` (compiled by libpcap).
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    filter: Option<String>,

    /// Leave out traffic of ADDR or ADDR:PORT (repeatable) — e.g. this host's own exports.
    #[arg(long = "exclude", value_name = "ADDR[:PORT]")]
    exclude: Vec<String>,

    /// Stop after COUNT packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    count: Option<u64>,

    /// Stop after this long: `30s`, `500ms`, `5m`, `1h` (a bare number is seconds).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Write the packets to FILE: pcapng if it ends in `.pcapng`, else pcap (nanosecond).
    /// Nothing is printed per packet unless --json or --print is given too.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<PathBuf>,

    /// One JSON object per packet (fields: docs/read-json.md).
    #[arg(long, conflicts_with = "flows")]
    json: bool,

    /// Print packets as text even when writing to a file.
    #[arg(long, conflicts_with_all = ["json", "flows"])]
    print: bool,

    /// Follow flows instead of printing packets; records as flows end (like `netmon flows`).
    #[arg(long)]
    flows: bool,

    /// With --flows: attribute each flow to the local process owning its socket, looked up at
    /// the flow's first packet (Linux; `process` in the JSON records; implies --immediate so
    /// that short connections are still open when their first packet is seen; docs/enrich.md).
    #[arg(long, requires = "flows")]
    processes: bool,

    /// Output format of --flows.
    #[arg(long, value_enum, default_value = "table", requires = "flows")]
    format: Format,

    /// Capture backend (default: the best this platform has).
    #[arg(long, value_name = "afpacket|pcap|windivert|bpf")]
    backend: Option<String>,

    /// After opening the interfaces, switch to this user (needs root). Capabilities are
    /// dropped in any case.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,

    /// Bytes kept per packet.
    #[arg(short = 's', long, default_value_t = 262_144)]
    snaplen: u32,

    /// Do not put the interfaces into promiscuous mode.
    #[arg(long)]
    no_promisc: bool,

    /// Kernel buffer size in MiB.
    #[arg(
        short = 'B',
        long = "buffer-size",
        value_name = "MIB",
        default_value_t = 64
    )]
    buffer_mib: usize,

    /// Deliver each packet at once instead of in batches (lower latency, more CPU).
    #[arg(long)]
    immediate: bool,

    /// AF_PACKET: join fanout group ID (hash mode) to share the interface with other captures.
    #[arg(long, value_name = "ID")]
    fanout: Option<u16>,
}

/// `30s`, `500ms`, `5m`, `1h`, `2.5s`, or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 500ms, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

/// Where packets go.
enum Writer {
    Pcap(PcapWriter<BufWriter<std::fs::File>>),
    PcapNg(PcapNgWriter<BufWriter<std::fs::File>>),
}

impl Writer {
    fn create(path: &Path, src: &dyn CaptureSource, snaplen: u32) -> anyhow::Result<Writer> {
        let ng = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pcapng"));
        let ifaces = src.interfaces();
        let err = |e: netmon_capture::CaptureError| anyhow!(describe(&e));
        if ng {
            let mut w = PcapNgWriter::create(path).map_err(err)?;
            for i in ifaces {
                w.add_interface(&i.name, i.link_type, i.snaplen)
                    .map_err(err)?;
            }
            Ok(Writer::PcapNg(w))
        } else {
            let lt = ifaces
                .first()
                .map_or(netmon_capture::LinkType::ETHERNET, |i| i.link_type);
            if let Some(other) = ifaces.iter().find(|i| i.link_type != lt) {
                return Err(anyhow!(
                    "{} and {} have different link types, which one pcap file cannot hold: \
                     write a .pcapng file instead",
                    ifaces.first().map_or("", |i| i.name.as_str()),
                    other.name
                ));
            }
            Ok(Writer::Pcap(
                PcapWriter::create(path, lt, snaplen, TsPrecision::Nano).map_err(err)?,
            ))
        }
    }

    fn write(
        &mut self,
        p: &netmon_capture::RawPacket<'_>,
    ) -> Result<(), netmon_capture::CaptureError> {
        match self {
            Writer::Pcap(w) => w.write_packet(p.meta.ts, p.data, p.meta.orig_len),
            Writer::PcapNg(w) => w.write_packet_dir(
                p.meta.ts,
                p.meta.iface,
                p.data,
                p.meta.orig_len,
                p.meta.direction,
            ),
        }
    }

    fn flush(&mut self) -> Result<(), netmon_capture::CaptureError> {
        match self {
            Writer::Pcap(w) => w.flush(),
            Writer::PcapNg(w) => w.flush(),
        }
    }
}

/// Per-packet output mode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Print {
    Text,
    Json,
    Nothing,
}

/// Runs `netmon capture`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let exclude = args
        .exclude
        .iter()
        .map(|s| s.parse::<Exclude>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| crate::Usage(e.to_string()))?;
    let mut cfg = LiveConfig {
        interfaces: args.interfaces.clone(),
        snaplen: args.snaplen.max(64),
        promiscuous: !args.no_promisc,
        buffer_bytes: args.buffer_mib.clamp(1, 4095) << 20,
        // Process attribution races the socket's owner: hand packets over at once.
        immediate: args.immediate || args.processes,
        filter: with_exclusions(args.filter.as_deref(), &exclude),
        ..LiveConfig::default()
    };
    cfg.fanout = args.fanout.map(|group| netmon_capture::Fanout {
        group,
        mode: netmon_capture::FanoutMode::Hash,
    });
    let backend = match &args.backend {
        Some(b) => b
            .parse::<Backend>()
            .map_err(|e| crate::Usage(e.to_string()))?,
        None => Backend::default_live(&cfg).ok_or_else(|| {
            anyhow!(
                "this build has no live capture backend (read a capture file with `netmon read`)"
            )
        })?,
    };
    let mut src =
        netmon_capture::open_live(backend, &cfg).map_err(|e| anyhow!(describe_live(&e)))?;
    let mut writer = match &args.write {
        Some(p) => Some(Writer::create(p, src.as_ref(), cfg.snaplen)?),
        None => None,
    };

    // Every handle and file is open: give up privileges before anything else runs.
    // --processes keeps the two capabilities that reading other processes' /proc/PID/fd
    // needs (and no other); with --user nothing is kept.
    if args.processes && args.user.is_some() {
        return Err(crate::Usage(
            "--processes needs to read other processes' /proc entries: leave out --user".into(),
        )
        .into());
    }
    let dropped = match if args.processes {
        privilege::drop_privileges_keeping_process_inspection()
    } else {
        privilege::drop_privileges(args.user.as_deref())
    } {
        Ok(d) => Some(d),
        Err(privilege::PrivilegeError::Unsupported) if args.user.is_none() => None,
        Err(e) => return Err(anyhow!("{e}")),
    };

    let stop = src.stop_handle();
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.stop()).context("installing the Ctrl-C handler")?;
    if let Some(d) = args.duration {
        let s = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(d);
            s.stop();
        });
    }

    let names: Vec<&str> = src.interfaces().iter().map(|i| i.name.as_str()).collect();
    let mut err = io::stderr().lock();
    write!(err, "netmon: capturing on {} ({backend}", names.join(", "))?;
    if let Some(f) = &cfg.filter {
        write!(err, ", filter {f:?}")?;
    }
    match &dropped {
        Some(d) => writeln!(err, "); {d}")?,
        None => writeln!(err, ")")?,
    }
    drop(err);

    let print = if args.flows {
        Print::Nothing
    } else if args.json {
        Print::Json
    } else if args.write.is_some() && !args.print {
        Print::Nothing
    } else {
        Print::Text
    };
    let stdout = io::stdout();
    let interactive = stdout.is_terminal();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut flows = if args.flows {
        let mut sink = Out::new(
            BufWriter::with_capacity(64 * 1024, io::stdout()),
            args.format,
            None,
        );
        sink.header()?;
        let mut cfg = EngineConfig::default();
        if args.processes {
            // Flow starts reach the sink, which looks their sockets up at once.
            cfg.observe = true;
            sink = sink.with_processes(netmon_engine::enrich::ProcessTracker::new());
        }
        let engine = Engine::classifying(cfg).map_err(|e| crate::Usage(e.to_string()))?;
        Some((engine, sink))
    } else {
        None
    };

    let mut tsf = TsFmt::new();
    let mut n: u64 = 0;
    let mut failure = None;
    loop {
        if args.count.is_some_and(|c| n >= c) {
            break;
        }
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                n += 1;
                if let Some(w) = &mut writer {
                    if let Err(e) = w.write(&p) {
                        failure = Some(anyhow!(describe(&e)));
                        break;
                    }
                }
                if let Some((engine, sink)) = &mut flows {
                    engine.process(&p.meta, p.data, sink);
                    if let Some(e) = sink.take_error() {
                        failure = Some(anyhow::Error::new(e).context("writing flow records"));
                        break;
                    }
                }
                let meta = &p.meta;
                let r = decode(meta, p.data, |d| match print {
                    Print::Text => text::write_record(&mut out, &mut tsf, meta, d),
                    Print::Json => jsonl::write_record(&mut out, &mut tsf, n, meta, d),
                    Print::Nothing => Ok(()),
                });
                if let Err(e) = r {
                    failure = Some(e.into());
                    break;
                }
                if interactive && print != Print::Nothing {
                    // Live output on a terminal shows up as it happens.
                    out.flush()?;
                }
            }
            Ok(Next::Timeout) => {
                if let Some((engine, sink)) = &mut flows {
                    // The link is quiet: let idle flows end on the wall clock.
                    engine.advance(wall_clock(), sink);
                }
                if print != Print::Nothing {
                    out.flush()?;
                }
            }
            Ok(Next::End) => break,
            Err(e) => {
                failure = Some(anyhow!(describe_live(&e)));
                break;
            }
        }
    }
    let st = src.stats();
    stop.stop();
    out.flush()?;
    if let Some(w) = &mut writer {
        w.flush().map_err(|e| anyhow!(describe(&e)))?;
    }
    if let Some((mut engine, mut sink)) = flows {
        engine.finish(EndReason::EndOfCapture, &mut sink);
        if let Some(e) = sink.take_error() {
            return Err(anyhow::Error::new(e).context("writing flow records"));
        }
        sink.flush()?;
    }
    let mut line = format!("netmon: {} packets captured", st.packets);
    if let (Some(r), Some(d)) = (st.kernel_received, st.kernel_dropped) {
        line += &format!("; kernel: {r} received, {d} dropped");
    }
    if let Some(d) = st.iface_dropped {
        line += &format!("; interface: {d} dropped");
    }
    // One thread reads and handles every packet: netmon has no queue of its own to overflow.
    line += "; 0 dropped by netmon";
    writeln!(io::stderr(), "{line}")?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Now, as a capture timestamp (the kernel stamps packets with the same realtime clock).
fn wall_clock() -> netmon_capture::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    netmon_capture::Timestamp::from_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// [`describe`], plus what to do when capturing is not allowed.
pub(crate) fn describe_live(e: &netmon_capture::CaptureError) -> String {
    use netmon_capture::CaptureError as E;
    match e {
        E::PermissionDenied { .. } if cfg!(target_os = "linux") => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "netmon".into());
            format!(
                "{e}: run as root (add --user NAME to drop privileges once the capture is open), \
                 or grant the capability once: sudo setcap cap_net_raw,cap_net_admin=eip {exe}; \
                 or read a capture file with `netmon read`"
            )
        }
        E::PermissionDenied { .. } => format!(
            "{e}: run netmon with those rights (add --user NAME to drop them once the capture \
             is open), or read a capture file with `netmon read`"
        ),
        E::NoSuchInterface { .. } => format!("{e} (`netmon interfaces` lists them)"),
        _ => describe(e),
    }
    .replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1e400s").is_err());
    }
}
