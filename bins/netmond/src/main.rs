//! `netmond --config FILE`: the netmon daemon.
//!
//! Opens its source (live interfaces, or a capture file replayed at `replay.speed`), binds the
//! API, drops privileges, then runs the sharded pipeline until the source ends or a signal
//! stops it. SIGINT/SIGTERM: stop the source, drain every queue, end the open flows with
//! reason `shutdown`, flush the output, exit 0. SIGHUP: reload the log level from the config
//! file. Errors before the start are one line on stderr and exit code 1 (2 for usage).
// No unsafe code but in `alloc` (one call into the allocator's C API), which allows it.
#![deny(unsafe_code)]
// `history::row_json` builds one large `json!` object.
#![recursion_limit = "256"]

#[cfg(target_os = "linux")]
mod alloc;
mod export;
mod history;
mod radar;
mod state;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, anyhow};
use clap::Parser;
use netmon_api::{ApiConfig, InterfaceInfo};
use netmon_capture::{CaptureSource, StopHandle, privilege};
use netmon_engine::config::{Config, LogFormat, Source};
use netmon_engine::sharded::{Backpressure, PipelineCounters, ShardConfig, run_sharded};
use tracing::{error, info, warn};
use tracing_subscriber::{EnvFilter, prelude::*, reload};

use state::{DaemonSink, Shared};

#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The netmon daemon: capture or replay, flows, statistics, history, REST API and metrics.
#[derive(Parser, Debug)]
#[command(name = "netmond", version, about)]
struct Args {
    /// The configuration file (`netmon config init` prints a template).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
}

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    alloc::return_freed_memory_at_once();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace(['\n', '\r'], " ");
            let _ = writeln!(std::io::stderr(), "netmond: {line}");
            ExitCode::FAILURE
        }
    }
}

type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

fn init_logging(cfg: &Config) -> anyhow::Result<ReloadHandle> {
    let filter = EnvFilter::try_new(&cfg.log.level)
        .with_context(|| format!("log.level {:?}", cfg.log.level))?;
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    match cfg.log.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    }
    .map_err(|e| anyhow!("logging: {e}"))?;
    Ok(handle)
}

fn open_source(cfg: &Config) -> anyhow::Result<Box<dyn CaptureSource>> {
    netmon_engine::pipeline::open_source(cfg).map_err(|e| anyhow!("{e}"))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn describe_source(cfg: &Config) -> String {
    match cfg.source() {
        Source::None => String::new(),
        Source::File { path, .. } => format!("file:{}", path.display()),
        Source::Live { config, .. } => format!("live:{}", config.interfaces.join(",")),
    }
}

pub(crate) fn now() -> netmon_types::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    netmon_types::Timestamp::from_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// This host's interface addresses (the dashboard's inner ring), where the system says.
fn own_addresses() -> Vec<core::net::IpAddr> {
    netmon_capture::ifaces::interfaces()
        .map(|v| {
            v.iter()
                .flat_map(|i| i.addresses.iter().map(|a| a.addr))
                .collect()
        })
        .unwrap_or_default()
}

fn interface_infos(src: &dyn CaptureSource) -> Vec<InterfaceInfo> {
    let st = src.stats();
    let n = src.interfaces().len();
    src.interfaces()
        .iter()
        .enumerate()
        .map(|(i, x)| InterfaceInfo {
            index: i as u32,
            name: x.name.clone(),
            link_type: x
                .link_type
                .name()
                .map_or_else(|| x.link_type.0.to_string(), str::to_owned),
            // The source counts for all its interfaces together; one interface gets them.
            packets: if n == 1 { st.packets } else { 0 },
            bytes: if n == 1 { st.bytes } else { 0 },
            kernel_received: st.kernel_received,
            kernel_dropped: st.kernel_dropped,
            iface_dropped: st.iface_dropped,
        })
        .collect()
}

/// Stops `stop` on SIGINT/SIGTERM; reloads the log level on SIGHUP.
#[cfg(unix)]
fn watch_signals(
    stop: StopHandle,
    path: PathBuf,
    mut current: Config,
    reload: ReloadHandle,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig != SIGHUP {
                    info!(signal = sig, "stopping: draining the pipeline");
                    stop.stop();
                    continue;
                }
                match Config::load(&path) {
                    Ok(new) => {
                        reload_config(&current, &new, &reload, &shared);
                        current = new;
                    }
                    Err(e) => warn!("SIGHUP: config not reloaded: {e}"),
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// SIGHUP: applies what can change while running (`log.level`, `storage.retention`) and
/// names the sections whose changes wait for a restart.
#[cfg(unix)]
fn reload_config(old: &Config, new: &Config, reload: &ReloadHandle, shared: &Shared) {
    match EnvFilter::try_new(&new.log.level) {
        Ok(f) => {
            let _ = reload.reload(f);
            info!(level = %new.log.level, "SIGHUP: log level reloaded");
        }
        Err(e) => warn!("SIGHUP: log.level: {e}"),
    }
    if new.storage.retention != old.storage.retention {
        *shared.retention.lock() = retention_policy(new);
        info!("SIGHUP: storage.retention reloaded");
    }
    let mut restart = Vec::new();
    let mut differs = |name: &'static str, changed: bool| {
        if changed {
            restart.push(name);
        }
    };
    differs("interfaces", old.interfaces != new.interfaces);
    differs("capture", old.capture != new.capture);
    differs("replay", old.replay != new.replay);
    differs("engine", old.engine != new.engine);
    differs("aggregation", old.aggregation != new.aggregation);
    differs("flows", old.flows != new.flows);
    differs("classify", old.classify != new.classify);
    differs("detectors", old.detectors != new.detectors);
    differs("alerts", old.alerts != new.alerts);
    differs(
        "storage.enabled/path",
        (old.storage.enabled, &old.storage.path) != (new.storage.enabled, &new.storage.path),
    );
    differs("api", old.api != new.api);
    differs("privileges", old.privileges != new.privileges);
    differs("log.format", old.log.format != new.log.format);
    if !restart.is_empty() {
        warn!(
            "SIGHUP: changes to {} take effect after a restart",
            restart.join(", ")
        );
    }
}

/// `storage.postgres`: the PostgreSQL sink behind its spool, on a writer thread of its own;
/// the spool directory is made before privileges are dropped. Never fails because the
/// database is down (that is what the spool is for).
fn open_postgres(
    cfg: &Config,
    shared: &Arc<Shared>,
    live: bool,
) -> anyhow::Result<Option<history::StoreSink>> {
    let p = &cfg.storage.postgres;
    let Some(url) = &p.url else {
        return Ok(None);
    };
    std::fs::create_dir_all(&p.spool_dir).with_context(|| {
        format!(
            "storage.postgres.spool_dir: cannot create {}",
            p.spool_dir.display()
        )
    })?;
    let pg = netmon_store::PgStore::new(netmon_store::PgConfig::new(url.expose(), hostname()))
        .map_err(|e| anyhow!("storage.postgres: {e}"))?;
    let mut spool = netmon_store::SpoolingStore::open(
        pg,
        &netmon_store::SpoolConfig {
            dir: p.spool_dir.clone(),
            max_bytes: p.spool_max_mib.saturating_mul(1 << 20),
        },
    )
    .map_err(|e| anyhow!("storage.postgres.spool_dir: {e}"))?;
    *shared.pg_status.lock() = Some(spool.status());
    let run = netmon_store::RunInfo {
        host: hostname(),
        source: describe_source(cfg),
        started: now(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let run_id = netmon_store::Store::begin_run(&mut spool, &run)
        .map_err(|e| anyhow!("storage.postgres: {e}"))?;
    let wcfg = netmon_store::WriterConfig {
        queue_batches: 8,
        ..Default::default()
    };
    let writer = netmon_store::StoreWriter::spawn(Box::new(spool), &wcfg)
        .map_err(|e| anyhow!("storage.postgres: {e}"))?;
    info!(run_id, spool = %p.spool_dir.display(), "PostgreSQL sink open");
    Ok(Some(history::StoreSink::new(writer, run_id, live).quiet()))
}

/// The store's retention policy of a configuration.
fn retention_policy(cfg: &Config) -> (netmon_store::Retention, std::time::Duration) {
    let r = &cfg.storage.retention;
    (
        netmon_store::Retention {
            max_age: r.max_age,
            max_bytes: r.max_size_mib.map(|m| m.saturating_mul(1 << 20)),
        },
        r.interval,
    )
}

#[cfg(not(unix))]
fn watch_signals(
    _stop: StopHandle,
    _path: PathBuf,
    _current: Config,
    _reload: ReloadHandle,
    _shared: Arc<Shared>,
) -> anyhow::Result<()> {
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config).map_err(|e| anyhow!("{e}"))?;
    let reload = init_logging(&cfg)?;

    // Everything privileged first: the source, the API socket.
    let mut source = open_source(&cfg)?;
    let shards = cfg.engine.resolved_shards();
    let counters = Arc::new(PipelineCounters::new(shards));
    let shared = Arc::new(Shared::new(Arc::clone(&counters)));
    *shared.interfaces.lock() = interface_infos(source.as_ref());

    // Enrichment databases and lists: read before privileges are dropped.
    let enrich_cfg = cfg.enrich_config();
    let enricher = if enrich_cfg.is_enabled() {
        let e = netmon_engine::enrich::Enricher::load(&enrich_cfg)
            .map_err(|e| anyhow!("enrich: {e}"))?;
        Some(Arc::new(e))
    } else {
        None
    };

    // Exporters: sockets opened before privileges are dropped.
    let export = export::start(&cfg, Arc::clone(&shared))?;

    // The store: opened (and created) before privileges are dropped.
    let live = matches!(cfg.source(), Source::Live { .. });
    let store = if cfg.storage.enabled {
        let path = &cfg.storage.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("storage.path: cannot create {}", dir.display()))?;
        }
        let mut db =
            netmon_store::SqliteStore::open(path).map_err(|e| anyhow!("storage.path: {e}"))?;
        let run = netmon_store::RunInfo {
            host: hostname(),
            source: describe_source(&cfg),
            started: now(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let run_id =
            netmon_store::Store::begin_run(&mut db, &run).map_err(|e| anyhow!("storage: {e}"))?;
        *shared.history.lock() = Some(
            netmon_store::SqliteStore::open_read_only(path)
                .map_err(|e| anyhow!("storage.path: {e}"))?,
        );
        // Retention's own connection, opened now: after the privilege drop the directory
        // may not be writable any more. Its policy can change on SIGHUP. It checkpoints at
        // the end of each pass itself: no checkpoint thread of its own.
        *shared.retention.lock() = retention_policy(&cfg);
        let retention = Some(
            netmon_store::SqliteStore::open_with(
                path,
                &netmon_store::SqliteConfig {
                    background_checkpoints: false,
                    ..netmon_store::SqliteConfig::default()
                },
            )
            .map_err(|e| anyhow!("storage.path: {e}"))?,
        );
        // 4 queued batches of 1 024 rows (about 1 KiB each), written 4 096 rows at most per
        // transaction: a replay waits for the writer anyway and a live capture drops what does
        // not fit. The default 64 held ~64 MB; 8 batches coalesced up to 16 384 rows held
        // ~9 MB more at the peak of big.pcap than this, for no speed.
        let wcfg = netmon_store::WriterConfig {
            queue_batches: 4,
            coalesce_rows: 4096,
        };
        let writer = netmon_store::StoreWriter::spawn(Box::new(db), &wcfg)
            .map_err(|e| anyhow!("storage: {e}"))?;
        info!(path = %path.display(), run_id, "store open");
        Some((history::StoreSink::new(writer, run_id, live), retention))
    } else {
        None
    };
    let (store, retention) = match store {
        Some((s, r)) => (Some(s), r),
        None => (None, None),
    };
    let pg = open_postgres(&cfg, &shared, live)?;

    let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The API's runtime (one worker thread), started only when the API is on.
    let api = if cfg.api.enabled {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("api")
            .enable_all()
            .build()
            .context("starting the API runtime")?;
        let api_cfg = ApiConfig {
            bind: cfg.api.bind,
            token: cfg.api.token.as_ref().map(|t| t.expose().to_owned()),
        };
        let server = runtime
            .block_on(netmon_api::Server::bind(
                api_cfg,
                shared.clone() as Arc<dyn netmon_api::ApiBackend>,
            ))
            .map_err(|e| anyhow!("{e}"))?;
        if let Ok(addr) = server.local_addr() {
            info!(%addr, "API listening");
        }
        let task = runtime.spawn(server.run(async move {
            let _ = api_stop_rx.await;
        }));
        Some((runtime, task))
    } else {
        None
    };

    let processes = live && cfg.enrich.processes;
    let dropped = if processes {
        // Reading other processes' /proc/PID/fd needs these two, and nothing else is kept.
        privilege::drop_privileges_keeping_process_inspection()
    } else {
        privilege::drop_privileges(cfg.privileges.user.as_deref())
    };
    match dropped {
        Ok(d) => info!("{d}"),
        Err(privilege::PrivilegeError::Unsupported) if cfg.privileges.user.is_none() => {}
        Err(e) => return Err(anyhow!("privileges.user: {e}")),
    }

    let stop = source.stop_handle();
    watch_signals(
        stop.clone(),
        args.config.clone(),
        cfg.clone(),
        reload,
        Arc::clone(&shared),
    )?;

    let engine_cfg = cfg.engine_config();
    let sc = ShardConfig {
        shards,
        backpressure: if live {
            Backpressure::Drop
        } else {
            Backpressure::Block
        },
        active_every: cfg.api.enabled.then_some(std::time::Duration::from_secs(1)),
        processes,
        // A replay's reader waits for a free batch anyway: 4 per shard keep the shards busy
        // and hold less in flight (frames, and their outputs to the aggregator) than 16. A
        // live capture keeps the default, its slack against drops.
        batches_per_shard: if live {
            ShardConfig::default().batches_per_shard
        } else {
            4
        },
        ..ShardConfig::default()
    };
    let (retention_stop, retention_rx) = std::sync::mpsc::channel::<()>();
    let retention = match retention {
        Some(conn) => Some(
            history::spawn_retention(conn, live, Arc::clone(&shared), retention_rx)
                .context("cannot start the retention thread")?,
        ),
        None => None,
    };
    let own = if live { own_addresses() } else { Vec::new() };
    let mut sink = DaemonSink::new(Arc::clone(&shared), store, own);
    sink.enricher = enricher;
    sink.export = export;
    sink.pg = pg;
    shared.ready.store(true, Ordering::Release);
    info!(shards, "pipeline running");
    let outcome = run_sharded(&engine_cfg, &sc, source.as_mut(), &mut sink, Some(counters))
        .map_err(|e| anyhow!("{e}"))?;
    *shared.interfaces.lock() = interface_infos(source.as_ref());
    let s = &outcome.summary;
    info!(
        packets = s.packets,
        bytes = s.bytes,
        flows = s.flows.created,
        records = shared.records.load(Ordering::Relaxed),
        "pipeline drained"
    );
    if let Some(e) = outcome.error {
        error!("capture ended with an error: {e}");
    }
    // Everything the pipeline produced is in the sink: commit it before anything else.
    if let Some(x) = sink.export.take() {
        x.finish(&shared);
    }
    sink.store.take().map(|st| st.finish(&shared)).transpose()?;
    // The PostgreSQL sink's writer stays up while a finished replay is served: its spool
    // drains whenever the database comes back. Closed at the exit below.
    let mut pg = sink.pg.take();
    if let Some(pg) = pg.as_mut() {
        pg.send_pending(&shared);
    }
    if api.is_some() && !stop.is_stopped() {
        // A replay finished: its flows, statistics and alerts stay served until a signal.
        info!("source finished; serving the results until SIGINT or SIGTERM");
        while !stop.is_stopped() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    if let Some(pg) = pg.take() {
        // What did not reach the database is in the spool, on disk: not an error to exit on.
        if let Err(e) = pg.finish(&shared) {
            warn!("storage.postgres: {e}");
        }
    }
    shared.ready.store(false, Ordering::Release);
    drop(retention_stop);
    if let Some(t) = retention {
        let _ = t.join();
    }
    let _ = api_stop_tx.send(());
    if let Some((runtime, task)) = api {
        match runtime.block_on(task) {
            Ok(Err(e)) => warn!("API: {e}"),
            Err(e) => warn!("API task: {e}"),
            Ok(Ok(())) => {}
        }
    }
    info!("stopped");
    Ok(())
}
