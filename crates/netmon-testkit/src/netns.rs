//! Network namespaces and veth pairs for live-capture tests.
//!
//! Tests never send traffic anywhere but into namespaces they made: [`VethPair::new`] creates two
//! fresh namespaces joined by a veth pair with IPv4 and IPv6 addresses (no DAD, so IPv6 works at
//! once), and deletes both namespaces (and so the pair) when dropped.
//!
//! Live tests need root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and `ip` from iproute2;
//! [`unavailable`] says why not, so a test can report a skip instead of failing on a developer's
//! unprivileged machine — and `NETMON_REQUIRE_NETNS=1` (set by CI) turns that skip into a
//! failure, like `NETMON_REQUIRE_TSHARK`.

use std::fs::File;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why namespaces cannot be made here, or `None` when they can.
///
/// When they cannot and `NETMON_REQUIRE_NETNS` is set, this panics (the test fails).
pub fn unavailable() -> Option<String> {
    let why = probe();
    if let Some(why) = &why {
        assert!(
            std::env::var_os("NETMON_REQUIRE_NETNS").is_none(),
            "NETMON_REQUIRE_NETNS is set but network namespaces are unavailable: {why}"
        );
        eprintln!("skipped: network namespaces unavailable ({why})");
    }
    why
}

fn probe() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip` (iproute2) not found".into()),
    }
}

/// A network namespace made for one test; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `netmon-<tag>-<pid>-<n>` with its loopback up.
    pub fn new(tag: &str) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("nm-{tag}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` inside the namespace and returns its output.
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {argv:?}: {e}", self.name))
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `argv` inside the namespace; panics with its stderr unless it succeeds.
    pub fn ok(&self, argv: &[&str]) -> String {
        let o = self.exec(argv);
        assert!(
            o.status.success(),
            "in {}: {argv:?} failed: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Waits (at most 10 s) until `ifname` has its IPv6 link-local address: the kernel adds it
    /// asynchronously when the carrier comes up, so comparing address lists before could race
    /// with it.
    pub fn wait_link_local(&self, ifname: &str) {
        let t0 = std::time::Instant::now();
        while self
            .ok(&["ip", "-6", "addr", "show", "dev", ifname, "scope", "link"])
            .trim()
            .is_empty()
        {
            assert!(
                t0.elapsed().as_secs() < 10,
                "no link-local address on {ifname} after 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Runs `f` on a new thread that has entered this namespace (`setns`), and returns its
    /// result. Sockets opened there stay in the namespace, whichever thread uses them later.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(
        o.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two namespaces joined by a veth pair:
/// `a` holds `veth0` (10.77.0.1/24, fd77::1/64), `b` holds `veth1` (10.77.0.2/24, fd77::2/64).
#[derive(Debug)]
pub struct VethPair {
    /// The first namespace (interface [`VethPair::A_IF`]).
    pub a: Netns,
    /// The second namespace (interface [`VethPair::B_IF`]).
    pub b: Netns,
}

impl VethPair {
    /// Interface name in `a`.
    pub const A_IF: &'static str = "veth0";
    /// Interface name in `b`.
    pub const B_IF: &'static str = "veth1";
    /// IPv4 address of `a`.
    pub const A_V4: &'static str = "10.77.0.1";
    /// IPv4 address of `b`.
    pub const B_V4: &'static str = "10.77.0.2";
    /// IPv6 address of `a`.
    pub const A_V6: &'static str = "fd77::1";
    /// IPv6 address of `b`.
    pub const B_V6: &'static str = "fd77::2";

    /// Makes both namespaces and the pair, addressed and up. IPv6 router solicitations are
    /// turned off so the link stays quiet but for what the test sends (MLD reports may still
    /// appear right after the link comes up).
    pub fn new(tag: &str) -> VethPair {
        let a = Netns::new(&format!("{tag}a"));
        let b = Netns::new(&format!("{tag}b"));
        a.ok(&[
            "ip",
            "link",
            "add",
            Self::A_IF,
            "type",
            "veth",
            "peer",
            "name",
            Self::B_IF,
            "netns",
            b.name(),
        ]);
        for (ns, ifc, v4, v6) in [
            (&a, Self::A_IF, Self::A_V4, Self::A_V6),
            (&b, Self::B_IF, Self::B_V4, Self::B_V6),
        ] {
            ns.ok(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{ifc}.router_solicitations=0"),
            ]);
            ns.ok(&["ip", "addr", "add", &format!("{v4}/24"), "dev", ifc]);
            ns.ok(&[
                "ip",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifc,
                "nodad",
            ]);
            ns.ok(&["ip", "link", "set", ifc, "up"]);
        }
        VethPair { a, b }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_pair_carries_v4_and_v6_and_is_deleted() {
        if unavailable().is_some() {
            return;
        }
        let names;
        {
            let p = VethPair::new("tk");
            names = (p.a.name().to_owned(), p.b.name().to_owned());
            p.a.ok(&["ping", "-c1", "-W2", VethPair::B_V4]);
            p.b.ok(&["ping", "-c1", "-W2", VethPair::A_V6]);
            // A thread inside `b` sees veth1, not the host's interfaces.
            let links =
                p.b.run(|| std::fs::read_dir("/sys/class/net").map(|d| d.count()));
            assert!(links.is_ok());
            let inside = p.b.run(|| nix::net::if_::if_nametoindex("veth1").is_ok());
            assert!(inside, "setns thread does not see veth1");
        }
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        assert!(
            !list.contains(&names.0) && !list.contains(&names.1),
            "{list}"
        );
    }
}
