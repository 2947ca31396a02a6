//! Flow filters: a small BPF-like language over flow records (`netmon flows --filter`).
//!
//! ```text
//! expr  := and ("or" and)*
//! and   := unary (["and"] unary)*          juxtaposition means "and", as in tcpdump
//! unary := "not" unary | "(" expr ")" | term
//! term  := "tcp" | "udp" | "icmp" | "icmpv6" | "sctp" | "proto" (NAME | NUMBER)
//!        | [dir] "host" IP | [dir] "net" IP/PREFIX | [dir] "port" N | [dir] "portrange" N-M
//!        | "iface" (N | NAME) | "vlan" N | "state" NAME | "reason" NAME
//!        | "app" NAME | "name" DOMAIN
//!        | ("bytes" | "packets" | "duration") ("<" | "<=" | ">" | ">=" | "=") N
//! dir   := "src" | "dst"                   src = initiator, dst = responder; none = either
//! ```
//!
//! Examples: `tcp and dst port 443`, `not net 10.0.0.0/8`, `udp and (port 53 or port 5353)`,
//! `bytes > 1000000`, `state reset`, `duration >= 60` (seconds), `app tls`,
//! `name example.com` (the SNI, an HTTP Host, a DNS question or the DNS-learnt domain is
//! `example.com` or one of its subdomains; case-insensitive).

use core::net::IpAddr;

use crate::record::FlowRecord;

/// Whether `name` is `domain` or a subdomain of it (ASCII case-insensitive; a trailing dot on
/// `name` is ignored). `domain` is lower-case without a trailing dot.
fn in_domain(name: &str, domain: &str) -> bool {
    let name = name.trim_end_matches('.');
    let Some(cut) = name.len().checked_sub(domain.len()) else {
        return false;
    };
    let (head, tail) = (name.get(..cut), name.get(cut..));
    tail.is_some_and(|t| t.eq_ignore_ascii_case(domain))
        && (cut == 0 || head.is_some_and(|h| h.ends_with('.')))
}

/// A parse error with the position (byte offset) in the filter text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("filter: {message} at character {pos}")]
pub struct FilterError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the filter text.
    pub pos: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Src,
    Dst,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Eq => a == b,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Proto(u8),
    Host(Dir, IpAddr),
    Net(Dir, IpAddr, u8),
    Port(Dir, u16, u16),
    Iface(Result<u32, String>),
    Vlan(u16),
    State(String),
    Reason(String),
    App(String),
    Name(String),
    Bytes(Cmp, u64),
    Packets(Cmp, u64),
    Duration(Cmp, u64),
}

/// A compiled filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    root: Node,
}

impl Filter {
    /// Parses a filter expression.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let toks = tokenize(text)?;
        let mut p = Parser {
            toks,
            i: 0,
            len: text.len(),
        };
        let root = p.expr()?;
        if let Some((t, pos)) = p.toks.get(p.i) {
            return Err(FilterError {
                message: format!("unexpected '{t}'"),
                pos: *pos,
            });
        }
        Ok(Filter { root })
    }

    /// Whether a flow record matches.
    pub fn matches(&self, r: &FlowRecord) -> bool {
        eval(&self.root, r)
    }
}

fn eval(n: &Node, r: &FlowRecord) -> bool {
    let ep = |d: Dir, f: &dyn Fn(IpAddr, Option<u16>) -> bool| match d {
        Dir::Src => f(r.src_ip, r.src_port),
        Dir::Dst => f(r.dst_ip, r.dst_port),
        Dir::Any => f(r.src_ip, r.src_port) || f(r.dst_ip, r.dst_port),
    };
    match n {
        Node::Or(a, b) => eval(a, r) || eval(b, r),
        Node::And(a, b) => eval(a, r) && eval(b, r),
        Node::Not(a) => !eval(a, r),
        Node::Proto(p) => r.proto.0 == *p,
        Node::Host(d, ip) => ep(*d, &|a, _| a == *ip),
        Node::Net(d, net, len) => ep(*d, &|a, _| in_net(a, *net, *len)),
        Node::Port(d, lo, hi) => ep(*d, &|_, p| p.is_some_and(|p| (*lo..=*hi).contains(&p))),
        Node::Iface(Ok(i)) => r.iface == *i,
        Node::Iface(Err(name)) => r.iface_name.as_deref() == Some(name.as_str()),
        Node::Vlan(v) => r.vlan.contains(v),
        Node::State(s) => r.state == s,
        Node::Reason(s) => r.end_reason == Some(s.as_str()),
        Node::App(a) => r.app.is_some_and(|x| x.eq_ignore_ascii_case(a)),
        Node::Name(d) => r.names().any(|n| in_domain(n, d)),
        Node::Bytes(c, v) => c.holds(r.bytes_c2s + r.bytes_s2c, *v),
        Node::Packets(c, v) => c.holds(r.packets_c2s + r.packets_s2c, *v),
        Node::Duration(c, v) => c.holds(
            u64::try_from(r.duration_ns / 1_000_000_000).unwrap_or(0),
            *v,
        ),
    }
}

fn in_net(a: IpAddr, net: IpAddr, len: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

fn tokenize(text: &str) -> Result<Vec<(String, usize)>, FilterError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            out.push((c.to_string(), i));
            chars.next();
        } else if matches!(c, '<' | '>' | '=' | '!') {
            chars.next();
            let mut t = c.to_string();
            if chars.peek().is_some_and(|&(_, n)| n == '=') {
                t.push('=');
                chars.next();
            }
            out.push((t, i));
        } else {
            let mut t = String::new();
            while let Some(&(_, n)) = chars.peek() {
                if n.is_whitespace() || matches!(n, '(' | ')' | '<' | '>' | '=') {
                    break;
                }
                t.push(n);
                chars.next();
            }
            if t.is_empty() {
                return Err(FilterError {
                    message: format!("unexpected '{c}'"),
                    pos: i,
                });
            }
            out.push((t, i));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(String, usize)>,
    i: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.i).map(|(t, _)| t.as_str())
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.len, |(_, p)| *p)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError {
            message: message.into(),
            pos: self.pos(),
        })
    }
    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.i).map(|(t, _)| t.clone());
        self.i += 1;
        t
    }
    fn word(&mut self, what: &str) -> Result<String, FilterError> {
        match self.peek() {
            Some(t) if t != "(" && t != ")" => Ok(self.next().unwrap_or_default()),
            _ => self.err(format!("expected {what}")),
        }
    }

    fn expr(&mut self) -> Result<Node, FilterError> {
        let mut left = self.and()?;
        while self
            .peek()
            .is_some_and(|t| t.eq_ignore_ascii_case("or") || t == "||")
        {
            self.i += 1;
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some(t) if t.eq_ignore_ascii_case("and") || t == "&&" => {
                    self.i += 1;
                }
                Some(t) if t.eq_ignore_ascii_case("or") || t == "||" || t == ")" => break,
                None => break,
                Some(_) => {} // juxtaposition
            }
            let right = self.unary()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        match self.peek() {
            Some(t) if t.eq_ignore_ascii_case("not") || t == "!" => {
                self.i += 1;
                Ok(Node::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.i += 1;
                let e = self.expr()?;
                if self.peek() != Some(")") {
                    return self.err("expected ')'");
                }
                self.i += 1;
                Ok(e)
            }
            Some(_) => self.term(),
            None => self.err("expected a filter term"),
        }
    }

    fn term(&mut self) -> Result<Node, FilterError> {
        let start = self.pos();
        let w = self.word("a filter term")?.to_ascii_lowercase();
        let dir = match w.as_str() {
            "src" => Some(Dir::Src),
            "dst" => Some(Dir::Dst),
            _ => None,
        };
        let w = if dir.is_some() {
            self.word("host, net, port or portrange")?
                .to_ascii_lowercase()
        } else {
            w
        };
        let d = dir.unwrap_or(Dir::Any);
        let node = match w.as_str() {
            "tcp" => Node::Proto(6),
            "udp" => Node::Proto(17),
            "icmp" => Node::Proto(1),
            "icmpv6" | "icmp6" => Node::Proto(58),
            "sctp" => Node::Proto(132),
            "proto" => {
                let p = self.word("a protocol")?;
                Node::Proto(match p.to_ascii_lowercase().as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    "icmp" => 1,
                    "icmpv6" | "icmp6" => 58,
                    "sctp" => 132,
                    "gre" => 47,
                    "esp" => 50,
                    "igmp" => 2,
                    n => match n.parse::<u8>() {
                        Ok(n) => n,
                        Err(_) => return self.err_at(start, format!("unknown protocol '{p}'")),
                    },
                })
            }
            "host" => {
                let t = self.word("an IP address")?;
                match t.parse::<IpAddr>() {
                    Ok(ip) => Node::Host(d, ip),
                    Err(_) => return self.err_at(start, format!("'{t}' is not an IP address")),
                }
            }
            "net" => {
                let t = self.word("a network (address/prefix)")?;
                let (a, l) = t.split_once('/').unwrap_or((t.as_str(), ""));
                let ip: IpAddr = match a.parse() {
                    Ok(ip) => ip,
                    Err(_) => return self.err_at(start, format!("'{t}' is not a network")),
                };
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len = if l.is_empty() {
                    max
                } else {
                    l.parse::<u8>().unwrap_or(u8::MAX)
                };
                if len > max {
                    return self.err_at(start, format!("'{t}': prefix length must be 0..={max}"));
                }
                Node::Net(d, ip, len)
            }
            "port" => {
                let t = self.word("a port")?;
                match t.parse::<u16>() {
                    Ok(p) => Node::Port(d, p, p),
                    Err(_) => return self.err_at(start, format!("'{t}' is not a port (0-65535)")),
                }
            }
            "portrange" => {
                let t = self.word("a port range (N-M)")?;
                match t
                    .split_once('-')
                    .map(|(a, b)| (a.parse::<u16>(), b.parse::<u16>()))
                {
                    Some((Ok(a), Ok(b))) if a <= b => Node::Port(d, a, b),
                    _ => return self.err_at(start, format!("'{t}' is not a port range N-M")),
                }
            }
            "iface" => {
                let t = self.word("an interface index or name")?;
                Node::Iface(t.parse::<u32>().map_err(|_| t.clone()))
            }
            "vlan" => {
                let t = self.word("a VLAN id")?;
                match t.parse::<u16>() {
                    Ok(v) if v < 4096 => Node::Vlan(v),
                    _ => return self.err_at(start, format!("'{t}' is not a VLAN id (0-4095)")),
                }
            }
            "state" => Node::State(self.word("a TCP state")?.to_ascii_lowercase()),
            "reason" => Node::Reason(self.word("an end reason")?.to_ascii_lowercase()),
            "app" => Node::App(self.word("an application name")?.to_ascii_lowercase()),
            "name" => Node::Name(
                self.word("a domain name")?
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            ),
            "bytes" | "packets" | "duration" => {
                let op = match self.next().as_deref() {
                    Some("<") => Cmp::Lt,
                    Some("<=") => Cmp::Le,
                    Some(">") => Cmp::Gt,
                    Some(">=") => Cmp::Ge,
                    Some("=") | Some("==") => Cmp::Eq,
                    _ => {
                        return self
                            .err_at(start, format!("'{w}' needs a comparison (<, <=, >, >=, =)"));
                    }
                };
                let t = self.word("a number")?;
                let v = match t.parse::<f64>() {
                    Ok(v) if v >= 0.0 && v.is_finite() => v as u64,
                    _ => return self.err_at(start, format!("'{t}' is not a non-negative number")),
                };
                match w.as_str() {
                    "bytes" => Node::Bytes(op, v),
                    "packets" => Node::Packets(op, v),
                    _ => Node::Duration(op, v),
                }
            }
            _ if dir.is_some() => {
                return self.err_at(
                    start,
                    format!("'{w}' cannot follow src/dst (use host, net, port or portrange)"),
                );
            }
            _ => return self.err_at(start, format!("unknown filter term '{w}'")),
        };
        if dir.is_some() && !matches!(node, Node::Host(..) | Node::Net(..) | Node::Port(..)) {
            return self.err_at(start, "src/dst apply only to host, net, port and portrange");
        }
        Ok(node)
    }

    fn err_at<T>(&self, pos: usize, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError {
            message: message.into(),
            pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ProtoName, Rfc3339};
    use netmon_types::Timestamp;

    fn rec() -> FlowRecord {
        FlowRecord {
            id: 1,
            proto: ProtoName(6),
            src_ip: "10.1.2.3".parse().unwrap(),
            src_port: Some(51000),
            dst_ip: "93.184.216.34".parse().unwrap(),
            dst_port: Some(443),
            packets_c2s: 10,
            bytes_c2s: 1000,
            packets_s2c: 12,
            bytes_s2c: 9000,
            first_seen: Rfc3339(Timestamp(0)),
            last_seen: Rfc3339(Timestamp(90_000_000_000)),
            duration_ns: 90_000_000_000,
            state: "closed",
            end_reason: Some("fin"),
            vlan: vec![10],
            iface_name: Some("eth0".into()),
            app: Some("tls"),
            sni: Some("www.example.com".into()),
            alpn: vec!["h2".into()],
            tls_version: Some("1.3".into()),
            ..FlowRecord::default()
        }
    }

    fn m(f: &str) -> bool {
        Filter::parse(f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .matches(&rec())
    }

    #[test]
    fn terms() {
        assert!(m("tcp"));
        assert!(!m("udp"));
        assert!(m("proto 6") && m("proto TCP"));
        assert!(m("port 443") && m("dst port 443") && !m("src port 443"));
        assert!(m("src net 10.0.0.0/8") && !m("dst net 10.0.0.0/8") && m("net 93.184.216.0/24"));
        assert!(m("host 93.184.216.34") && !m("host ::1"));
        assert!(m("portrange 440-450") && !m("src portrange 440-450"));
        assert!(m("iface 0") && m("iface eth0") && !m("iface eth1"));
        assert!(m("vlan 10") && !m("vlan 11"));
        assert!(m("state closed") && m("reason fin"));
        assert!(m("bytes > 9999") && !m("bytes > 10000") && m("bytes>=10000") && m("packets = 22"));
        assert!(m("duration >= 90") && !m("duration > 90"));
        assert!(
            !m("net ::/0"),
            "an IPv6 network never matches IPv4 addresses"
        );
        assert!(m("net 0.0.0.0/0"));
    }

    #[test]
    fn application_terms() {
        assert!(m("app tls") && m("app TLS") && !m("app http"));
        assert!(m("name example.com") && m("name www.example.com") && m("name EXAMPLE.com."));
        assert!(
            !m("name ample.com"),
            "a suffix match stops at a label boundary"
        );
        assert!(!m("name w.example.com") && !m("name org"));
        assert!(m("tcp and app tls and not name example.org"));
        assert!(in_domain("a.b.", "b") && in_domain("B", "b") && !in_domain("ab", "b"));
        assert!(!in_domain("", "b") && in_domain("x", "x"));
    }

    #[test]
    fn combinators_and_precedence() {
        assert!(m("tcp and dst port 443"));
        assert!(m("tcp dst port 443"), "juxtaposition is and");
        assert!(m("udp or tcp"));
        assert!(m("not udp"));
        assert!(m("udp or tcp and port 443"), "and binds tighter than or");
        assert!(!m("(udp or tcp) and port 80"));
        assert!(m("not (udp or port 80)"));
        assert!(m("tcp && !udp || udp"));
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = Filter::parse("tcp and prot 6").unwrap_err();
        assert_eq!(
            e.to_string(),
            "filter: unknown filter term 'prot' at character 8"
        );
        assert_eq!(Filter::parse("port 70000").unwrap_err().pos, 0);
        assert!(Filter::parse("(tcp").unwrap_err().message.contains("')'"));
        assert!(
            Filter::parse("tcp)")
                .unwrap_err()
                .message
                .contains("unexpected ')'")
        );
        assert!(
            Filter::parse("")
                .unwrap_err()
                .message
                .contains("expected a filter term")
        );
        assert!(
            Filter::parse("net 10.0.0.0/33")
                .unwrap_err()
                .message
                .contains("0..=32")
        );
        let msg = |f: &str| Filter::parse(f).unwrap_err().message;
        assert!(msg("src tcp").contains("apply only"));
        assert!(msg("src banana").contains("cannot follow"));
        assert!(Filter::parse("bytes 5").is_err());
        assert!(Filter::parse("host nope").is_err());
    }
}
