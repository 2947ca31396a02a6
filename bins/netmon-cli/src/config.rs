//! `netmon config init`: print the commented configuration template; `netmon config check
//! FILE`: validate a configuration file (reference: docs/config.md).
//!
//! `check` prints `FILE: ok` and a short summary on stdout, or the one-line error
//! (`netmon: FILE:LINE:COLUMN: key.path: ...`) on stderr and exits 1.

use std::io::{self, Write};
use std::path::PathBuf;

use netmon_engine::config::{Config, Source, Speed, format_duration};

/// Arguments of `netmon config`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print a commented configuration template: every key at its default.
    Init,
    /// Validate a configuration file: `FILE: ok` and a summary, or the error (exit 1).
    Check {
        /// The YAML file.
        file: PathBuf,
    },
}

/// Runs `netmon config`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match &args.command {
        Command::Init => out.write_all(Config::template().as_bytes())?,
        Command::Check { file } => {
            let cfg = Config::load(file)?;
            writeln!(out, "{}: ok", file.display())?;
            out.write_all(summary(&cfg).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// What the configuration does, in a few lines.
fn summary(c: &Config) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        s.push_str(&format!("  {:<10} {v}\n", format!("{k}:")));
    };
    line(
        "source",
        match c.source() {
            Source::None => "none (set interfaces or capture.file)".into(),
            Source::File { path, speed } => format!(
                "replay {} at {}",
                path.display(),
                match speed {
                    Speed::Max => "full speed".to_owned(),
                    Speed::Realtime => "the capture's pace".to_owned(),
                    Speed::Factor(f) => format!("{f}x the capture's pace"),
                }
            ),
            Source::Live { backend, config } => {
                let mut v = format!(
                    "live on {} ({})",
                    config.interfaces.join(", "),
                    backend.map_or("best backend of the platform".to_owned(), |b| format!(
                        "{b} backend"
                    ))
                );
                if let Some(f) = &config.filter {
                    v.push_str(&format!(", filter {f:?}"));
                }
                v
            }
        },
    );
    let windows: Vec<String> = c
        .aggregation
        .windows
        .iter()
        .map(|w| format_duration(*w))
        .collect();
    line(
        "engine",
        format!(
            "{} shard{}, up to {} flows, windows {}",
            c.engine.resolved_shards(),
            if c.engine.resolved_shards() == 1 {
                ""
            } else {
                "s"
            },
            c.flows.max,
            windows.join(", ")
        ),
    );
    let d = &c.detectors;
    let on: Vec<&str> = [
        ("vertical_scan", d.vertical_scan.enabled),
        ("horizontal_scan", d.horizontal_scan.enabled),
        ("arp_sweep", d.arp_sweep.enabled),
        ("syn_flood", d.syn_flood.enabled),
    ]
    .into_iter()
    .filter_map(|(n, e)| e.then_some(n))
    .collect();
    line(
        "alerts",
        format!(
            "detectors {}; {} threshold rule{}",
            if on.is_empty() {
                "none".to_owned()
            } else {
                on.join(", ")
            },
            c.alerts.len(),
            if c.alerts.len() == 1 { "" } else { "s" }
        ),
    );
    let st = &c.storage;
    line(
        "storage",
        if st.enabled {
            format!(
                "{} (max age {}, max size {})",
                st.path.display(),
                st.retention.max_age.map_or("off".into(), format_duration),
                st.retention
                    .max_size_mib
                    .map_or("off".into(), |m| format!("{m} MiB"))
            )
        } else {
            "off".into()
        },
    );
    line(
        "api",
        if c.api.enabled {
            format!(
                "http://{}{}",
                c.api.bind,
                if c.api.token.is_some() {
                    " (bearer token)"
                } else {
                    " (no token)"
                }
            )
        } else {
            "off".into()
        },
    );
    line(
        "run as",
        c.privileges
            .user
            .clone()
            .unwrap_or_else(|| "the starting user".into()),
    );
    line(
        "log",
        format!(
            "{}, level {}",
            match c.log.format {
                netmon_engine::config::LogFormat::Text => "text",
                netmon_engine::config::LogFormat::Json => "json",
            },
            c.log.level
        ),
    );
    s
}
