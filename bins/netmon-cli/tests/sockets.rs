//! `netmon sockets` inside a test namespace, compared with `ss -tunap` there: the same set of
//! (protocol, state, local, remote, pid).
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Stdio};

use common::{BIN, stderr, stdout};
use netmon_testkit::netns::{self, Netns};
use serde_json::Value;

/// Listeners (IPv4, IPv6-only), a dual-stack UDP socket, and one accepted connection.
const SERVER: &str = "import socket, sys
t4 = socket.socket(); t4.bind(('127.0.0.1', 0)); t4.listen()
t6 = socket.socket(socket.AF_INET6)
t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
t6.bind(('::1', 0)); t6.listen()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::', 0))
print(t4.getsockname()[1], t6.getsockname()[1], u.getsockname()[1], flush=True)
c, _ = t4.accept()
print('ok', flush=True)
sys.stdin.read()";

/// Connects to both listeners (the IPv6 one never accepts: its server side has no process)
/// and connects a UDP socket to the dual-stack one over IPv4.
const CLIENT: &str = "import socket, sys
a = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
b = socket.create_connection(('::1', int(sys.argv[2])))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(('127.0.0.1', int(sys.argv[3])))
print('ok', flush=True)
sys.stdin.read()";

/// (proto, state as ss spells it, local, remote, pid); `None` addresses are wildcards.
type Row = (
    String,
    String,
    (Option<IpAddr>, u16),
    (Option<IpAddr>, u16),
    Option<u32>,
);

fn spawn(ns: &Netns, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut c = ns
        .command("python3")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let out = BufReader::new(c.stdout.take().unwrap());
    (c, out)
}

fn line(r: &mut impl BufRead) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s.trim().to_owned()
}

fn wild(a: IpAddr) -> Option<IpAddr> {
    (!a.is_unspecified()).then_some(a)
}

/// `127.0.0.1:80`, `[::1]:80`, `*:80`, `0.0.0.0:*`, `[::ffff:1.2.3.4]:5`, `1.2.3.4%lo:53`.
fn ss_addr(s: &str) -> (Option<IpAddr>, u16) {
    let (host, port) = s.rsplit_once(':').unwrap_or_else(|| panic!("address {s}"));
    let port = if port == "*" {
        0
    } else {
        port.parse().unwrap()
    };
    let host = host.split('%').next().unwrap();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host == "*" {
        None
    } else {
        wild(host.parse().unwrap_or_else(|_| panic!("host {host}")))
    };
    (ip, port)
}

/// `ss -tunapH` (or with `-l`): one row per socket; the pid of `users:((...,pid=N,...))`.
fn ss_rows(ns: &Netns, listening: bool) -> BTreeSet<Row> {
    let flags = if listening { "-tunlpH" } else { "-tunapH" };
    let text = ns.ok(&["ss", flags]);
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "ss line {l}");
            let pids: Vec<u32> = l
                .split("pid=")
                .skip(1)
                .map(|p| {
                    p.split(|c: char| !c.is_ascii_digit())
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert!(pids.len() <= 1, "shared socket in {l}");
            (
                f[0].to_owned(),
                f[1].to_owned(),
                ss_addr(f[4]),
                ss_addr(f[5]),
                pids.first().copied(),
            )
        })
        .collect()
}

fn netmon_in(ns: &Netns, args: &[&str]) -> String {
    let out = ns
        .command(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "{args:?}");
    stdout(&out).to_owned()
}

fn netmon_rows(ns: &Netns, extra: &[&str]) -> BTreeSet<Row> {
    let mut args = vec!["sockets", "--json"];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_str(&netmon_in(ns, &args)).unwrap();
    let addr = |v: &Value| {
        let a: SocketAddr = v.as_str().unwrap().parse().unwrap();
        (wild(a.ip()), a.port())
    };
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["proto"].as_str().unwrap().to_owned(),
                e["state"]
                    .as_str()
                    .unwrap()
                    .to_ascii_uppercase()
                    .replace('_', "-"),
                addr(&e["local"]),
                addr(&e["remote"]),
                e["process"]["pid"].as_u64().map(|p| p as u32),
            )
        })
        .collect()
}

#[test]
fn sockets_match_ss_in_a_namespace() {
    if netns::unavailable().is_some() {
        return;
    }
    let ns = Netns::new("sock");
    let (mut server, mut sout) = spawn(&ns, &["-c", SERVER]);
    let ports = line(&mut sout);
    let p: Vec<&str> = ports.split(' ').collect();
    let (mut client, mut cout) = spawn(&ns, &["-c", CLIENT, p[0], p[1], p[2]]);
    assert_eq!(line(&mut cout), "ok");
    assert_eq!(line(&mut sout), "ok");

    let ss = ss_rows(&ns, false);
    let ours = netmon_rows(&ns, &[]);
    assert_eq!(ours, ss, "netmon sockets vs ss -tunap");
    // What the set must hold: 2 listeners, 4 ESTAB TCP ends (one without a process: not
    // accepted yet), 2 UDP.
    assert_eq!(ours.len(), 8, "{ours:#?}");
    let (sp, cp) = (server.id(), client.id());
    assert!(
        ours.iter()
            .any(|r| r.0 == "tcp" && r.1 == "ESTAB" && r.4.is_none())
    );
    assert_eq!(ours.iter().filter(|r| r.4 == Some(sp)).count(), 4);
    assert_eq!(ours.iter().filter(|r| r.4 == Some(cp)).count(), 3);

    // --listening is ss -l.
    let listening = netmon_rows(&ns, &["--listening"]);
    assert_eq!(listening, ss_rows(&ns, true));
    assert_eq!(listening.len(), 3);
    // --process by name and by pid.
    assert_eq!(netmon_rows(&ns, &["--process", "python3"]).len(), 7);
    assert_eq!(netmon_rows(&ns, &["--process", &cp.to_string()]).len(), 3);
    assert!(netmon_rows(&ns, &["--process", "nosuch"]).is_empty());
    // The table: a header, one line per socket, the process as "name"(pid).
    let table = netmon_in(&ns, &["sockets"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 9, "{table}");
    assert!(lines[0].starts_with("proto  state"), "{table}");
    let (local, proc) = (
        format!(" 127.0.0.1:{} ", p[0]),
        format!(" \"python3\"({sp})"),
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tcp    LISTEN") && l.contains(&local) && l.ends_with(&proc)),
        "{table}"
    );

    drop(client.stdin.take());
    drop(server.stdin.take());
    assert!(client.wait().unwrap().success());
    assert!(server.wait().unwrap().success());
}
