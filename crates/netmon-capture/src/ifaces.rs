//! The host's network interfaces and default gateways, as the calling thread's network
//! namespace sees them (`netmon interfaces`, `netmon gateways`).
//!
//! On Linux both come from rtnetlink dumps (`RTM_GETLINK`, `RTM_GETADDR`, `RTM_GETROUTE`) on a
//! socket opened by the calling thread, so a thread that entered another namespace with
//! `setns` sees that namespace — unlike `/sys/class/net` (the mounting process's view) and
//! `/proc/net` (the thread-group leader's). Other platforms return
//! [`IfaceError::Unsupported`].
//!
//! ```no_run
//! for iface in netmon_capture::ifaces::interfaces()? {
//!     println!("{} mtu {:?} capture: {:?}", iface.name, iface.mtu, iface.capture);
//! }
//! for route in netmon_capture::ifaces::default_gateways()? {
//!     println!("{:?} via {:?} dev {:?}", route.family, route.gateway, route.interface);
//! }
//! # Ok::<(), netmon_capture::ifaces::IfaceError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

#[cfg(target_os = "linux")]
mod linux;
// The message parsing is platform-independent (and tested everywhere); only Linux calls it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
mod netlink;

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetInterface {
    /// Name (`eth0`). Linux allows names that are not UTF-8; their invalid bytes are shown as
    /// U+FFFD here.
    pub name: String,
    /// Kernel interface index (`ifindex`), unique within the namespace.
    pub index: u32,
    /// Six-byte hardware address (Ethernet, Wi-Fi, veth; `00:00:00:00:00:00` on loopback).
    /// `None` for links without one or with another length (tunnels, InfiniBand).
    pub mac: Option<MacAddr>,
    /// IPv4 and IPv6 addresses with their prefix lengths, in the kernel's order (IPv4 first).
    pub addresses: Vec<IfAddr>,
    /// Maximum transmission unit in bytes, if the kernel reported one.
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up: carrier present (`IFF_RUNNING`).
    pub running: bool,
    /// A loopback interface (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// Whether this process can open a capture on the interface right now.
    pub capture: CaptureAccess,
}

/// A 6-byte hardware address; displays as `02:00:5e:10:00:01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// An interface address and its prefix length; displays as `10.0.0.1/24` or `fd00::1/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IfAddr {
    /// The address (for point-to-point links, the local end).
    pub addr: IpAddr,
    /// Prefix length in bits (0–32 for IPv4, 0–128 for IPv6).
    pub prefix_len: u8,
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Whether a capture can be opened, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureAccess {
    /// An `AF_PACKET` socket could be opened in this namespace.
    Yes,
    /// It could not; the reason says what to do (e.g. "needs CAP_NET_RAW ...").
    No(String),
}

impl CaptureAccess {
    /// `true` for [`CaptureAccess::Yes`].
    pub fn is_yes(&self) -> bool {
        matches!(self, CaptureAccess::Yes)
    }

    /// The reason for [`CaptureAccess::No`].
    pub fn reason(&self) -> Option<&str> {
        match self {
            CaptureAccess::Yes => None,
            CaptureAccess::No(why) => Some(why),
        }
    }
}

/// IP version of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    /// `"ipv4"` or `"ipv6"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::V4 => "ipv4",
            IpFamily::V6 => "ipv6",
        }
    }
}

/// A default route (`0.0.0.0/0` or `::/0`) of the main routing table. A multipath route
/// gives one `DefaultRoute` per next hop, all with the same metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    /// Which table: IPv4 or IPv6.
    pub family: IpFamily,
    /// The next hop; `None` for a device route (`default dev wg0`). An IPv4 route may have an
    /// IPv6 gateway (`via inet6 ...`).
    pub gateway: Option<IpAddr>,
    /// Name of the outgoing interface, if the route has one.
    pub interface: Option<String>,
    /// Index of the outgoing interface, if the route has one.
    pub index: Option<u32>,
    /// Route metric (`RTA_PRIORITY`; 0 when unset, IPv6 routes default to 1024). Lower wins.
    pub metric: u32,
}

/// Errors listing interfaces or routes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IfaceError {
    /// This platform has no implementation.
    #[error("{what} is not supported on this platform (Linux only)")]
    Unsupported {
        /// What was asked ("listing interfaces", "listing gateways").
        what: &'static str,
    },
    /// A system call or the kernel's reply failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done ("netlink link dump", ...).
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel's reply did not follow the netlink layout.
    #[error("{what}: malformed netlink reply ({reason})")]
    Malformed {
        /// What was being done.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The interfaces of the calling thread's network namespace, by index.
///
/// # Errors
/// [`IfaceError::Unsupported`] off Linux; [`IfaceError::Io`] when the netlink socket cannot
/// be opened or the kernel refuses the dump.
pub fn interfaces() -> Result<Vec<NetInterface>, IfaceError> {
    #[cfg(target_os = "linux")]
    {
        linux::interfaces()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(IfaceError::Unsupported {
            what: "listing interfaces",
        })
    }
}

/// The default routes (IPv4, then IPv6; each by metric) of the main routing table of the
/// calling thread's network namespace — what `ip route show default` and
/// `ip -6 route show default` print.
///
/// # Errors
/// As [`interfaces`].
pub fn default_gateways() -> Result<Vec<DefaultRoute>, IfaceError> {
    #[cfg(target_os = "linux")]
    {
        linux::default_gateways()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(IfaceError::Unsupported {
            what: "listing gateways",
        })
    }
}

/// Joins the link and address dumps: one [`NetInterface`] per link, ordered by index.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn assemble(
    links: Vec<netlink::Link>,
    addrs: &[netlink::Addr],
    access: &CaptureAccess,
) -> Vec<NetInterface> {
    let mut out: Vec<NetInterface> = links
        .into_iter()
        .map(|l| NetInterface {
            name: String::from_utf8_lossy(&l.name).into_owned(),
            index: l.index,
            mac: <[u8; 6]>::try_from(l.hwaddr.as_slice()).ok().map(MacAddr),
            addresses: addrs
                .iter()
                .filter(|a| a.index == l.index)
                .map(|a| IfAddr {
                    addr: a.addr,
                    prefix_len: a.prefix_len,
                })
                .collect(),
            mtu: l.mtu,
            up: l.flags & netlink::IFF_UP != 0,
            running: l.flags & netlink::IFF_RUNNING != 0,
            loopback: l.flags & netlink::IFF_LOOPBACK != 0,
            capture: access.clone(),
        })
        .collect();
    out.sort_by_key(|i| i.index);
    // A link changed during the dump may appear twice; keep the later one.
    out.dedup_by(|later, earlier| {
        if later.index == earlier.index {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    out
}

/// The default routes of the main table among `routes`, one per next hop, with interface names
/// from `names` (index → name), sorted by family then metric.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn default_routes(routes: &[netlink::Route], names: &HashMap<u32, String>) -> Vec<DefaultRoute> {
    let mut out = Vec::new();
    for r in routes {
        let family = match r.family {
            netlink::AF_INET => IpFamily::V4,
            netlink::AF_INET6 => IpFamily::V6,
            _ => continue,
        };
        if r.dst_len != 0
            || r.table != netlink::RT_TABLE_MAIN
            || r.rtype != netlink::RTN_UNICAST
            || r.flags & netlink::RTM_F_CLONED != 0
        {
            continue;
        }
        for hop in &r.hops {
            out.push(DefaultRoute {
                family,
                gateway: hop.gateway,
                interface: hop.oif.and_then(|i| names.get(&i).cloned()),
                index: hop.oif,
                metric: r.metric,
            });
        }
    }
    // Stable: equal keys keep the kernel's order (multipath hops in their order).
    out.sort_by_key(|r| (r.family, r.metric));
    out
}

#[cfg(test)]
mod tests {
    use super::netlink::{Addr, Hop, Link, Route};
    use super::*;

    fn link(index: u32, name: &[u8], flags: u32, hw: &[u8]) -> Link {
        Link {
            index,
            flags,
            name: name.to_vec(),
            mtu: Some(1500),
            hwaddr: hw.to_vec(),
        }
    }

    #[test]
    fn assemble_joins_addresses_and_flags() {
        let links = vec![
            link(3, b"veth0", 0x1 | 0x40, &[2, 0, 0, 0, 0, 9]),
            link(1, b"lo", 0x1 | 0x8 | 0x40, &[0; 6]),
            link(4, b"ipip\xff", 0, &[10, 0, 0, 1]),
        ];
        let addrs = [
            Addr {
                index: 3,
                addr: "10.77.0.1".parse().unwrap(),
                prefix_len: 24,
            },
            Addr {
                index: 1,
                addr: "::1".parse().unwrap(),
                prefix_len: 128,
            },
            Addr {
                index: 3,
                addr: "fd77::1".parse().unwrap(),
                prefix_len: 64,
            },
            Addr {
                index: 9, // no such link: dropped
                addr: "10.9.9.9".parse().unwrap(),
                prefix_len: 8,
            },
        ];
        let no = CaptureAccess::No("needs CAP_NET_RAW".into());
        let got = assemble(links, &addrs, &no);
        assert_eq!(got.iter().map(|i| i.index).collect::<Vec<_>>(), [1, 3, 4]);
        let lo = &got[0];
        assert!(lo.up && lo.running && lo.loopback);
        assert_eq!(lo.mac.unwrap().to_string(), "00:00:00:00:00:00");
        assert_eq!(lo.addresses[0].to_string(), "::1/128");
        let v = &got[1];
        assert_eq!(v.name, "veth0");
        assert!(v.up && v.running && !v.loopback);
        assert_eq!(v.mac.unwrap().to_string(), "02:00:00:00:00:09");
        let a: Vec<String> = v.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(a, ["10.77.0.1/24", "fd77::1/64"]);
        assert_eq!(v.capture.reason(), Some("needs CAP_NET_RAW"));
        let t = &got[2];
        assert_eq!(t.name, "ipip\u{fffd}");
        assert_eq!(t.mac, None); // 4-byte link address
        assert!(!t.up && !t.running);
        assert!(t.addresses.is_empty());
    }

    #[test]
    fn assemble_keeps_one_entry_per_index() {
        let links = vec![link(2, b"old", 0, &[]), link(2, b"new", 0, &[])];
        let got = assemble(links, &[], &CaptureAccess::Yes);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "new");
    }

    fn route(family: u8, dst_len: u8, table: u32, rtype: u8, metric: u32, hops: &[Hop]) -> Route {
        Route {
            family,
            dst_len,
            table,
            rtype,
            flags: 0,
            metric,
            hops: hops.to_vec(),
        }
    }

    #[test]
    fn default_routes_filter_and_sort() {
        let gw = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let hop = |oif, g| Hop { oif, gateway: g };
        let names = HashMap::from([(3, "veth0".to_owned()), (4, "wg0".to_owned())]);
        let mut cloned = route(10, 0, 254, 1, 0, &[hop(Some(3), gw("fe80::9"))]);
        cloned.flags = 0x200;
        let routes = [
            route(10, 0, 254, 1, 1024, &[hop(Some(3), gw("fd77::2"))]),
            route(2, 0, 254, 1, 200, &[hop(Some(4), None)]),
            route(2, 0, 254, 1, 100, &[hop(Some(3), gw("10.77.0.2"))]),
            route(2, 24, 254, 1, 0, &[hop(Some(3), None)]), // not default
            route(2, 0, 100, 1, 0, &[hop(Some(3), gw("10.77.0.9"))]), // other table
            route(2, 0, 254, 6, 0, &[hop(None, None)]),     // blackhole
            route(10, 0, 255, 2, 0, &[hop(Some(1), None)]), // local table
            route(7, 0, 254, 1, 0, &[hop(Some(3), None)]),  // unknown family
            cloned,
        ];
        let got = default_routes(&routes, &names);
        let summary: Vec<_> = got
            .iter()
            .map(|r| {
                (
                    r.family.as_str(),
                    r.gateway.map(|g| g.to_string()),
                    r.interface.as_deref(),
                    r.index,
                    r.metric,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "ipv4",
                    Some("10.77.0.2".into()),
                    Some("veth0"),
                    Some(3),
                    100
                ),
                ("ipv4", None, Some("wg0"), Some(4), 200),
                ("ipv6", Some("fd77::2".into()), Some("veth0"), Some(3), 1024),
            ]
        );
    }

    #[test]
    fn default_routes_multipath_and_unknown_index() {
        let hops = [
            Hop {
                oif: Some(3),
                gateway: Some("10.77.0.2".parse().unwrap()),
            },
            Hop {
                oif: Some(99),
                gateway: Some("10.77.0.3".parse().unwrap()),
            },
        ];
        let names = HashMap::from([(3, "veth0".to_owned())]);
        let got = default_routes(&[route(2, 0, 254, 1, 5, &hops)], &names);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].interface.as_deref(), Some("veth0"));
        assert_eq!(
            (got[1].interface.as_deref(), got[1].index),
            (None, Some(99))
        );
        assert!(got.iter().all(|r| r.metric == 5));
    }

    #[test]
    fn errors_are_one_line() {
        let e = IfaceError::Unsupported {
            what: "listing gateways",
        };
        assert_eq!(
            e.to_string(),
            "listing gateways is not supported on this platform (Linux only)"
        );
    }
}
