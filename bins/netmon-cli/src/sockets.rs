//! `netmon sockets`: the TCP and UDP socket table of this network namespace with the process
//! holding each socket, like `ss -tunap` (fields: docs/enrich.md, "Process attribution").

use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;

use netmon_enrich::process::{ProcessResolver, Proto, SocketEntry, SocketState};
use netmon_packet::Escaped;

/// Arguments of `netmon sockets`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    json: bool,
    /// Only listening sockets (TCP LISTEN, unconnected UDP).
    #[arg(short, long)]
    listening: bool,
    /// Only sockets of processes with this name (as in /proc/PID/comm) or this pid.
    #[arg(short, long, value_name = "NAME")]
    process: Option<String>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let mut list = ProcessResolver::new().sockets()?;
    list.retain(|e| keep(args, e));
    list.sort_by_key(|e| (e.proto, e.local, e.remote));
    let mut out = BufWriter::new(io::stdout().lock());
    if args.json {
        // Serialised first, then written: an EPIPE stays an io::Error (see ifaces.rs).
        let text = serde_json::to_string(&list).map_err(io::Error::other)?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
    } else {
        table(&mut out, &list)?;
    }
    out.flush()?;
    Ok(())
}

fn keep(args: &Args, e: &SocketEntry) -> bool {
    if args.listening && !is_listening(e) {
        return false;
    }
    match &args.process {
        None => true,
        Some(want) => e
            .process
            .as_ref()
            .is_some_and(|p| p.name == *want || p.pid.to_string() == *want),
    }
}

/// What `ss -l` calls listening: TCP LISTEN and unconnected UDP.
fn is_listening(e: &SocketEntry) -> bool {
    match e.proto {
        Proto::Tcp => e.state == SocketState::Listen,
        Proto::Udp => e.state == SocketState::Close,
    }
}

/// `ss`'s form: IPv6 in brackets, `*` for port 0.
fn addr(a: &SocketAddr) -> String {
    let port = match a.port() {
        0 => "*".to_owned(),
        p => p.to_string(),
    };
    match a {
        SocketAddr::V4(v4) => format!("{}:{port}", v4.ip()),
        SocketAddr::V6(v6) => format!("[{}]:{port}", v6.ip()),
    }
}

fn table<W: Write>(w: &mut W, list: &[SocketEntry]) -> io::Result<()> {
    let locals: Vec<String> = list.iter().map(|e| addr(&e.local)).collect();
    let remotes: Vec<String> = list.iter().map(|e| addr(&e.remote)).collect();
    let lw = locals.iter().map(String::len).max().unwrap_or(0).max(5);
    let rw = remotes.iter().map(String::len).max().unwrap_or(0).max(6);
    writeln!(
        w,
        "{:<5}  {:<10}  {:<lw$}  {:<rw$}  process",
        "proto", "state", "local", "remote"
    )?;
    for ((e, l), r) in list.iter().zip(&locals).zip(&remotes) {
        let process = e.process.as_ref().map_or_else(
            || "-".to_owned(),
            |p| format!("\"{}\"({})", Escaped::new(p.name.as_bytes()), p.pid),
        );
        writeln!(
            w,
            "{:<5}  {:<10}  {:<lw$}  {:<rw$}  {process}",
            e.proto.name(),
            e.state.ss_name(),
            l,
            r,
        )?;
    }
    Ok(())
}
