//! Classic BPF programs: capture filters compiled by libpcap's compiler, in a form every kernel
//! backend attaches (Linux `SO_ATTACH_FILTER`, BSD/macOS `BIOCSETF`).
//!
//! libpcap is only the compiler here: [`compile`] turns `tcp port 443` into instructions
//! for a link type, and the backends hand them to their kernel themselves.

use netmon_types::LinkType;

use crate::CaptureError;

/// One classic BPF instruction (`struct sock_filter` / `struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    /// Operation code.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// `BPF_RET | BPF_K`: return the constant (bytes of the packet to keep; 0 drops it).
pub const RET_K: u16 = 0x06;
/// `BPF_LD | BPF_W | BPF_ABS`: load a 32-bit word (at an ancillary offset for metadata).
pub const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const JEQ_K: u16 = 0x15;
/// Linux's ancillary-data base offset (`SKF_AD_OFF`).
pub const SKF_AD_OFF: u32 = 0xffff_f000;
/// Linux ancillary offset of the receiving interface's index (`SKF_AD_IFINDEX`).
pub const SKF_AD_IFINDEX: u32 = 8;

/// A program: instructions run in order, jumps only forward.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BpfProgram {
    /// The instructions.
    pub insns: Vec<BpfInsn>,
}

impl BpfProgram {
    /// The program that keeps the first `snaplen` bytes of every packet.
    pub fn accept_all(snaplen: u32) -> BpfProgram {
        BpfProgram {
            insns: vec![BpfInsn {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: snaplen,
            }],
        }
    }

    /// Makes every "accept" return (a non-zero `ret #k`) keep `snaplen` bytes: libpcap's
    /// compiler returns the snaplen of the handle it compiled for, which is not ours.
    pub fn with_snaplen(mut self, snaplen: u32) -> BpfProgram {
        for i in &mut self.insns {
            if i.code == RET_K && i.k != 0 {
                i.k = snaplen;
            }
        }
        self
    }

    /// Puts a Linux prelude in front: only packets received on one of `ifindexes` go on to
    /// this program; others are dropped in the kernel. Fails with more than 200 interfaces
    /// (jump offsets are one byte).
    pub fn only_ifindexes(self, ifindexes: &[u32]) -> Result<BpfProgram, CaptureError> {
        let n = ifindexes.len();
        if n == 0 || n > 200 {
            return Err(CaptureError::InvalidArgument(format!(
                "{n} interfaces in one capture (1 to 200 are possible)"
            )));
        }
        let mut insns = Vec::with_capacity(self.insns.len() + n + 2);
        insns.push(BpfInsn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: SKF_AD_OFF + SKF_AD_IFINDEX,
        });
        for (i, &idx) in ifindexes.iter().enumerate() {
            // Match: skip the remaining compares and the `ret 0` to the program's start.
            let skip = u8::try_from(n - i).unwrap_or(u8::MAX);
            insns.push(BpfInsn {
                code: JEQ_K,
                jt: skip,
                jf: 0,
                k: idx,
            });
        }
        insns.push(BpfInsn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        });
        insns.extend(self.insns);
        Ok(BpfProgram { insns })
    }
}

/// Traffic a capture leaves out: a host, or one port of a host — typically the monitor's own
/// exports and API connections (a monitor that captures its own uploads feeds on itself).
///
/// Parsed from `ADDR` or `ADDR:PORT` (`[V6]:PORT` for IPv6 with a port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exclude {
    /// The host.
    pub addr: std::net::IpAddr,
    /// Only this TCP/UDP port of it (either direction), or every packet of the host.
    pub port: Option<u16>,
}

impl std::str::FromStr for Exclude {
    type Err = CaptureError;

    fn from_str(s: &str) -> Result<Exclude, CaptureError> {
        if let Ok(addr) = s.parse() {
            return Ok(Exclude { addr, port: None });
        }
        if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
            return Ok(Exclude {
                addr: sa.ip(),
                port: Some(sa.port()),
            });
        }
        Err(CaptureError::InvalidArgument(format!(
            "{s:?} is not ADDR or ADDR:PORT (IPv6 with a port: [ADDR]:PORT)"
        )))
    }
}

/// The capture filter that applies `filter` (if any) and leaves out every `exclude`, e.g.
/// `(tcp) and not (host 10.0.0.5 and port 9995)`; `None` when there is nothing to filter.
pub fn with_exclusions(filter: Option<&str>, exclude: &[Exclude]) -> Option<String> {
    if exclude.is_empty() {
        return filter.filter(|f| !f.trim().is_empty()).map(str::to_owned);
    }
    let mut parts: Vec<String> = Vec::with_capacity(exclude.len() + 1);
    if let Some(f) = filter.filter(|f| !f.trim().is_empty()) {
        parts.push(format!("({f})"));
    }
    for e in exclude {
        parts.push(match e.port {
            Some(p) => format!("not (host {} and port {p})", e.addr),
            None => format!("not host {}", e.addr),
        });
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// Compiles a tcpdump-syntax `expr` for frames of `link_type` with libpcap's optimising
/// compiler; every accepting return keeps `snaplen` bytes.
#[cfg(all(unix, feature = "libpcap"))]
pub fn compile(link_type: LinkType, snaplen: u32, expr: &str) -> Result<BpfProgram, CaptureError> {
    let bad = |reason: String| CaptureError::BadFilter {
        filter: expr.to_owned(),
        reason,
    };
    let dead = pcap::Capture::dead(pcap::Linktype(i32::try_from(link_type.0).unwrap_or(-1)))
        .map_err(|e| bad(e.to_string()))?;
    let prog = dead.compile(expr, true).map_err(|e| bad(e.to_string()))?;
    // The crate shows instructions only through `Display` ("code jt jf k", decimal).
    let insns = prog
        .get_instructions()
        .iter()
        .map(|i| parse_insn(&i.to_string()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("libpcap returned an instruction netmon cannot read".into()))?;
    Ok(BpfProgram { insns }.with_snaplen(snaplen))
}

/// Without libpcap there is no compiler: every filter is refused with a reason.
#[cfg(not(all(unix, feature = "libpcap")))]
pub fn compile(
    _link_type: LinkType,
    _snaplen: u32,
    expr: &str,
) -> Result<BpfProgram, CaptureError> {
    Err(CaptureError::BadFilter {
        filter: expr.to_owned(),
        reason: "this build has no filter compiler (it needs libpcap: cargo feature `libpcap`)"
            .into(),
    })
}

#[cfg_attr(not(all(unix, feature = "libpcap")), allow(dead_code))]
fn parse_insn(s: &str) -> Option<BpfInsn> {
    let mut it = s.split_ascii_whitespace();
    let insn = BpfInsn {
        code: it.next()?.parse().ok()?,
        jt: it.next()?.parse().ok()?,
        jf: it.next()?.parse().ok()?,
        k: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(insn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_insn_takes_four_numbers_only() {
        assert_eq!(
            parse_insn("6 0 0 262144"),
            Some(BpfInsn {
                code: 6,
                jt: 0,
                jf: 0,
                k: 262144
            })
        );
        assert_eq!(parse_insn("6 0 0"), None);
        assert_eq!(parse_insn("6 0 0 1 2"), None);
        assert_eq!(parse_insn("6 0 300 1"), None);
    }

    #[test]
    fn exclusions_compose_with_the_filter() {
        let ex: Vec<Exclude> = ["10.0.0.5:9995", "::1", "[fd00::2]:443"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            with_exclusions(Some("tcp or udp"), &ex).unwrap(),
            "(tcp or udp) and not (host 10.0.0.5 and port 9995) and not host ::1 \
             and not (host fd00::2 and port 443)"
        );
        assert_eq!(with_exclusions(None, &ex[1..2]).unwrap(), "not host ::1");
        assert_eq!(with_exclusions(Some(" "), &[]), None);
        assert_eq!(with_exclusions(Some("tcp"), &[]).unwrap(), "tcp");
        assert!("10.0.0.5:99999".parse::<Exclude>().is_err());
        assert!("host".parse::<Exclude>().is_err());
    }

    #[test]
    fn ifindex_prelude_jumps_to_the_program() {
        let p = BpfProgram::accept_all(100).only_ifindexes(&[3, 7]).unwrap();
        // ld ifindex; jeq 3 → +2; jeq 7 → +1; ret 0; ret 100
        assert_eq!(p.insns.len(), 5);
        assert_eq!(p.insns[1].jt, 2);
        assert_eq!(p.insns[2].jt, 1);
        // Both matches land on the `ret 100` (index 1 + 1 + 2 = 4, 2 + 1 + 1 = 4).
        assert_eq!(p.insns[4].k, 100);
        assert_eq!(p.insns[3].k, 0);
        assert!(BpfProgram::accept_all(1).only_ifindexes(&[]).is_err());
    }

    #[cfg(all(unix, feature = "libpcap"))]
    #[test]
    fn compiles_with_libpcap_and_sets_our_snaplen() {
        let p = compile(LinkType::ETHERNET, 1234, "udp port 53").unwrap();
        assert!(p.insns.len() > 3);
        let rets: Vec<u32> = p
            .insns
            .iter()
            .filter(|i| i.code == RET_K)
            .map(|i| i.k)
            .collect();
        assert!(rets.contains(&1234) && rets.contains(&0), "{rets:?}");
        let e = compile(LinkType::ETHERNET, 1234, "port 99999 and")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("bad capture filter \"port 99999 and\""),
            "{e}"
        );
    }
}
