//! Linux: the rtnetlink socket and the `AF_PACKET` probe. Safe code only: nix wraps the calls.
//!
//! Sockets are opened by the calling thread, so they belong to that thread's network
//! namespace (a thread that called `setns` sees the namespace it entered).

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt,
};
use nix::sys::time::TimeVal;

use super::netlink::{self, Msg, NlError};
use super::{CaptureAccess, DefaultRoute, IfaceError, NetInterface};

/// Receive buffer: the kernel sizes dump datagrams to at most 32 KiB (`netlink_dump`), so
/// 64 KiB always holds one; a larger one would be reported as truncated, not misread.
const RECV_BUF: usize = 64 * 1024;
/// Bounds on one dump, so a misbehaving kernel cannot keep us reading forever.
const MAX_DATAGRAMS: usize = 1 << 20;
const MAX_BYTES: usize = 1 << 30;
/// How long one `recvmsg` may wait for the kernel.
const RECV_TIMEOUT_S: i64 = 5;
/// Dumps interrupted by concurrent changes (`NLM_F_DUMP_INTR`) are retried this many times
/// in all; the last answer is used even if it was interrupted too.
const ATTEMPTS: usize = 3;

struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn io_err(what: &'static str) -> impl Fn(Errno) -> IfaceError {
    move |e| IfaceError::Io {
        what,
        source: std::io::Error::from(e),
    }
}

fn nl_err(what: &'static str, e: NlError) -> IfaceError {
    match e {
        NlError::Kernel(errno) => IfaceError::Io {
            what,
            source: std::io::Error::from_raw_os_error(errno),
        },
        NlError::Malformed(reason) => IfaceError::Malformed { what, reason },
    }
}

impl Netlink {
    fn open() -> Result<Netlink, IfaceError> {
        let what = "opening a netlink socket";
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(io_err(what))?;
        socket::setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &TimeVal::new(RECV_TIMEOUT_S, 0),
        )
        .map_err(io_err(what))?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(io_err(what))?;
        Ok(Netlink {
            fd,
            seq: std::process::id(),
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends a dump request of type `ty` with `header` and hands every data message of the
    /// answer to `on`. Returns whether the kernel flagged the dump as interrupted.
    fn dump(
        &mut self,
        what: &'static str,
        ty: u16,
        header: &[u8],
        on: &mut dyn FnMut(&Msg<'_>),
    ) -> Result<bool, IfaceError> {
        self.seq = self.seq.wrapping_add(1);
        let req = netlink::dump_request(ty, self.seq, header);
        let kernel = NetlinkAddr::new(0, 0);
        loop {
            match socket::sendto(self.fd.as_raw_fd(), &req, &kernel, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(io_err(what)(e)),
                Ok(_) => break,
            }
        }
        let mut interrupted = false;
        let mut total = 0usize;
        for _ in 0..MAX_DATAGRAMS {
            let (len, from_kernel) = {
                let mut iov = [IoSliceMut::new(&mut self.buf)];
                // MSG_TRUNC: netlink returns the datagram's real length even when it did not fit.
                match socket::recvmsg::<NetlinkAddr>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    None,
                    MsgFlags::MSG_TRUNC,
                ) {
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EAGAIN) => {
                        return Err(IfaceError::Io {
                            what,
                            source: std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "the kernel did not answer",
                            ),
                        });
                    }
                    Err(e) => return Err(io_err(what)(e)),
                    Ok(m) => (
                        m.bytes,
                        m.address.is_some_and(|a: NetlinkAddr| a.pid() == 0),
                    ),
                }
            };
            // Only the kernel (port 0) answers dumps; anything else is not ours to read.
            if !from_kernel {
                continue;
            }
            let Some(datagram) = self.buf.get(..len) else {
                return Err(IfaceError::Malformed {
                    what,
                    reason: "datagram larger than the receive buffer",
                });
            };
            total = total.saturating_add(len);
            if total > MAX_BYTES {
                return Err(IfaceError::Malformed {
                    what,
                    reason: "reply larger than 1 GiB",
                });
            }
            let w = netlink::walk(datagram, self.seq, on).map_err(|e| nl_err(what, e))?;
            interrupted |= w.interrupted;
            if w.done {
                return Ok(interrupted);
            }
        }
        Err(IfaceError::Malformed {
            what,
            reason: "dump did not end",
        })
    }

    fn links(&mut self) -> Result<(Vec<netlink::Link>, bool), IfaceError> {
        let mut links = Vec::new();
        let header = [0u8; netlink::IFINFOMSG_LEN]; // AF_UNSPEC: every link
        let intr = self.dump(
            "netlink link dump",
            netlink::RTM_GETLINK,
            &header,
            &mut |m| {
                if m.ty == netlink::RTM_NEWLINK {
                    links.extend(netlink::parse_link(m.payload));
                }
            },
        )?;
        Ok((links, intr))
    }
}

/// Whether this thread may open an `AF_PACKET` socket (what every Linux capture backend
/// needs). Protocol 0: the socket receives nothing while it exists.
fn probe_capture() -> CaptureAccess {
    match socket::socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    ) {
        Ok(_fd) => CaptureAccess::Yes,
        Err(Errno::EPERM | Errno::EACCES) => CaptureAccess::No(
            "needs CAP_NET_RAW (run as root, or `setcap cap_net_raw,cap_net_admin=eip` on the netmon binary)"
                .into(),
        ),
        Err(Errno::EAFNOSUPPORT) => {
            CaptureAccess::No("the kernel has no AF_PACKET support".into())
        }
        Err(e) => CaptureAccess::No(format!("cannot open an AF_PACKET socket: {}", e.desc())),
    }
}

pub(super) fn interfaces() -> Result<Vec<NetInterface>, IfaceError> {
    let mut nl = Netlink::open()?;
    let access = probe_capture();
    let mut attempt = 1;
    loop {
        let (links, links_intr) = nl.links()?;
        let mut addrs = Vec::new();
        let header = [0u8; netlink::IFADDRMSG_LEN]; // AF_UNSPEC: IPv4 and IPv6
        let addrs_intr = nl.dump(
            "netlink address dump",
            netlink::RTM_GETADDR,
            &header,
            &mut |m| {
                if m.ty == netlink::RTM_NEWADDR {
                    addrs.extend(netlink::parse_addr(m.payload));
                }
            },
        )?;
        if !(links_intr || addrs_intr) || attempt >= ATTEMPTS {
            return Ok(super::assemble(links, &addrs, &access));
        }
        attempt += 1;
    }
}

pub(super) fn default_gateways() -> Result<Vec<DefaultRoute>, IfaceError> {
    let mut nl = Netlink::open()?;
    let mut attempt = 1;
    loop {
        let (links, mut intr) = nl.links()?;
        let mut routes = Vec::new();
        for family in [netlink::AF_INET, netlink::AF_INET6] {
            let mut header = [0u8; netlink::RTMSG_LEN];
            header[0] = family;
            intr |= nl.dump(
                "netlink route dump",
                netlink::RTM_GETROUTE,
                &header,
                &mut |m| {
                    // Only default routes (rtm_dst_len 0) are parsed: a full routing table
                    // may hold a million routes.
                    if m.ty == netlink::RTM_NEWROUTE && m.payload.get(1) == Some(&0) {
                        routes.extend(netlink::parse_route(m.payload));
                    }
                },
            )?;
        }
        if !intr || attempt >= ATTEMPTS {
            let names: HashMap<u32, String> = links
                .into_iter()
                .map(|l| (l.index, String::from_utf8_lossy(&l.name).into_owned()))
                .collect();
            return Ok(super::default_routes(&routes, &names));
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loopback_of_this_namespace() {
        // Every namespace has `lo` at index 1 (the test may run anywhere: no other assumption).
        let all = interfaces().unwrap();
        let lo = all
            .iter()
            .find(|i| i.loopback)
            .expect("a loopback interface");
        assert_eq!(lo.index, 1);
        assert_eq!(lo.name, "lo");
        assert_eq!(lo.mac.map(|m| m.0), Some([0; 6]));
        assert!(lo.mtu.is_some_and(|m| m > 0));
        assert!(all.windows(2).all(|w| w[0].index < w[1].index));
        // Whatever the probe says, asking twice gives the same answer.
        assert_eq!(lo.capture, probe_capture());
    }

    #[test]
    fn gateways_do_not_fail() {
        let routes = default_gateways().unwrap();
        assert!(routes.windows(2).all(|w| w[0].family <= w[1].family));
    }
}
