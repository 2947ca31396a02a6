//! `netmon interfaces` and `netmon gateways`: the host's interfaces and default routes, as a
//! table or a JSON array (fields: docs/interfaces.md). Both reflect the network namespace
//! netmon runs in.

use std::io::{self, BufWriter, Write};

use netmon_capture::ifaces::{self, DefaultRoute, NetInterface};
use netmon_packet::Escaped;
use serde_json::{Value, json};

/// Arguments of `netmon interfaces` and `netmon gateways`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run_interfaces(args: &Args) -> anyhow::Result<()> {
    let list = ifaces::interfaces()?;
    let mut out = BufWriter::new(io::stdout().lock());
    if args.json {
        let v: Vec<Value> = list.iter().map(interface_json).collect();
        write_json(&mut out, &v)?;
    } else {
        interfaces_table(&mut out, &list)?;
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn run_gateways(args: &Args) -> anyhow::Result<()> {
    let routes = ifaces::default_gateways()?;
    let mut out = BufWriter::new(io::stdout().lock());
    if args.json {
        let v: Vec<Value> = routes.iter().map(gateway_json).collect();
        write_json(&mut out, &v)?;
    } else {
        gateways_table(&mut out, &routes)?;
    }
    out.flush()?;
    Ok(())
}

/// Serialises first, then writes: an `EPIPE` then stays an `io::Error` in the chain (main.rs
/// treats it as a normal end), which serde_json's own writer would hide.
fn write_json<W: Write>(out: &mut W, v: &[Value]) -> io::Result<()> {
    let text = serde_json::to_string(v).map_err(io::Error::other)?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")
}

fn interface_json(i: &NetInterface) -> Value {
    let addresses: Vec<Value> = i
        .addresses
        .iter()
        .map(|a| {
            json!({
                "family": if a.addr.is_ipv4() { "ipv4" } else { "ipv6" },
                "address": a.addr.to_string(),
                "prefix_len": a.prefix_len,
            })
        })
        .collect();
    json!({
        "name": i.name,
        "index": i.index,
        "mac": i.mac.map(|m| m.to_string()),
        "mtu": i.mtu,
        "up": i.up,
        "running": i.running,
        "loopback": i.loopback,
        "addresses": addresses,
        "capturable": i.capture.is_yes(),
        "capture_error": i.capture.reason(),
    })
}

fn gateway_json(r: &DefaultRoute) -> Value {
    json!({
        "family": r.family.as_str(),
        "gateway": r.gateway.map(|g| g.to_string()),
        "interface": r.interface,
        "index": r.index,
        "metric": r.metric,
    })
}

/// An interface name for the terminal: Linux names may hold control bytes.
fn shown(name: &str) -> String {
    Escaped::new(name.as_bytes()).to_string()
}

fn state(i: &NetInterface) -> String {
    let mut s = String::from(if i.up { "up" } else { "down" });
    if i.running {
        s.push_str(",running");
    }
    if i.loopback {
        s.push_str(",loopback");
    }
    s
}

fn interfaces_table<W: Write>(w: &mut W, list: &[NetInterface]) -> io::Result<()> {
    let names: Vec<String> = list.iter().map(|i| shown(&i.name)).collect();
    let nw = names.iter().map(String::len).max().unwrap_or(0).max(4);
    writeln!(
        w,
        "{:>5}  {:<nw$}  {:<17}  {:>6}  {:<19}  {:<7}  addresses",
        "index", "name", "mac", "mtu", "state", "capture"
    )?;
    for (i, name) in list.iter().zip(&names) {
        let addrs: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
        writeln!(
            w,
            "{:>5}  {:<nw$}  {:<17}  {:>6}  {:<19}  {:<7}  {}",
            i.index,
            name,
            i.mac.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            i.mtu.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            state(i),
            if i.capture.is_yes() { "yes" } else { "no" },
            if addrs.is_empty() {
                "-".to_owned()
            } else {
                addrs.join(" ")
            },
        )?;
    }
    // Why not, once per distinct reason (in practice one: the process's privileges).
    let mut reasons: Vec<&str> = list.iter().filter_map(|i| i.capture.reason()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    for r in reasons {
        writeln!(w, "capture: no: {r}")?;
    }
    Ok(())
}

fn gateways_table<W: Write>(w: &mut W, routes: &[DefaultRoute]) -> io::Result<()> {
    let gws: Vec<String> = routes
        .iter()
        .map(|r| r.gateway.map_or_else(|| "-".to_owned(), |g| g.to_string()))
        .collect();
    let names: Vec<String> = routes
        .iter()
        .map(|r| r.interface.as_deref().map_or_else(|| "-".to_owned(), shown))
        .collect();
    let gw = gws.iter().map(String::len).max().unwrap_or(0).max(7);
    let nw = names.iter().map(String::len).max().unwrap_or(0).max(9);
    writeln!(
        w,
        "{:<6}  {:<gw$}  {:<nw$}  {:>5}  {:>10}",
        "family", "gateway", "interface", "index", "metric"
    )?;
    for ((r, g), n) in routes.iter().zip(&gws).zip(&names) {
        writeln!(
            w,
            "{:<6}  {:<gw$}  {:<nw$}  {:>5}  {:>10}",
            r.family.as_str(),
            g,
            n,
            r.index.map_or_else(|| "-".to_owned(), |i| i.to_string()),
            r.metric,
        )?;
    }
    Ok(())
}
