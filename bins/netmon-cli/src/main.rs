//! `netmon`: the one-shot command-line network monitor.
//!
//! `main` only parses the command line and dispatches; each subcommand lives in its own module
//! and returns `anyhow::Result<()>`. Exit codes: 0 success (also when stdout is a pipe that was
//! closed early, e.g. `netmon read f | head`), 1 an error (printed as one `netmon: ...` line on
//! stderr), 2 bad usage (clap's, and arguments that parse but make no sense, e.g. a filter).
#![forbid(unsafe_code)]

mod capture;
mod config;
mod flows;
mod ifaces;
mod input;
mod json;
mod privacy;
mod read;
mod sockets;
mod stats;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See Cargo.toml: faster than glibc's malloc for the classifier's per-flow allocations.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A network monitor: decode captures, follow flows, raise alerts.
#[derive(Parser, Debug)]
#[command(name = "netmon", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode a capture file: one line (or JSON object) per packet, and/or a summary.
    Read(read::Args),
    /// Follow the flows of a capture file: one record per flow (table, JSON lines or CSV).
    Flows(flows::Args),
    /// Statistics of a capture file: protocol hierarchy, per-window series, top talkers.
    Stats(stats::StatsArgs),
    /// Run the detectors (scans, sweeps, floods, threshold rules) over a capture file.
    Alerts(stats::AlertsArgs),
    /// Capture live from network interfaces: print, write to a file, or follow flows.
    Capture(capture::Args),
    /// List network interfaces: index, name, MAC, MTU, state, addresses, whether capture works.
    Interfaces(ifaces::Args),
    /// List default routes (IPv4 and IPv6): gateway, interface, metric.
    Gateways(ifaces::Args),
    /// List TCP and UDP sockets with their processes (like `ss -tunap`; Linux).
    Sockets(sockets::Args),
    /// The YAML configuration of netmond: print a commented template, or check a file.
    Config(config::Args),
    /// Per application, the tracker domains contacted and a privacy score (docs/enrich.md).
    Privacy(privacy::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Read(args) => read::run(args),
        Command::Flows(args) => flows::run(args),
        Command::Stats(args) => stats::run_stats(args),
        Command::Alerts(args) => stats::run_alerts(args),
        Command::Capture(args) => capture::run(args),
        Command::Interfaces(args) => ifaces::run_interfaces(args),
        Command::Gateways(args) => ifaces::run_gateways(args),
        Command::Sockets(args) => sockets::run(args),
        Command::Config(args) => config::run(args),
        Command::Privacy(args) => privacy::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Usage>().is_some() => {
            let _ = writeln!(io::stderr(), "netmon: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            // Nothing else to do if stderr is gone too.
            let _ = writeln!(io::stderr(), "netmon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A command line that parsed but makes no sense (a bad filter expression, ...): exit code 2,
/// like clap's own usage errors.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Whether the error is stdout's reader going away (`EPIPE`): the normal end of
/// `netmon ... | head`, not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
