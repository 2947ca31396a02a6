//! Syslog (RFC 5424) messages for alerts and flow summaries, sent over UDP (RFC 5426) or TCP
//! with octet-counting framing (RFC 6587 §3.4.1).
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID PARAM="VALUE" ...] MSG
//! <132>1 2024-03-01T12:00:00.000000Z probe1 netmond 4242 alert [netmon@32473 kind="vertical_scan" ...] vertical_scan from 172.16.0.8
//! ```
//!
//! PRI is facility × 8 + severity; alerts use facility `local0` (16) unless configured and a
//! severity from the alert's (high → 2 critical, medium → 4 warning, low → 5 notice); flow
//! summaries are `info` (6). Fields are structured data under the SD-ID `netmon@32473`
//! (32473 is the documentation enterprise number of RFC 5612), values escaped as §6.3.3 says
//! (`"`, `\` and `]` get a backslash); header fields are printable US-ASCII without spaces,
//! cut to their maximum lengths; MSG is UTF-8 text.

use std::fmt::Write as _;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use netmon_engine::FlowRecord;
use netmon_stats::{AlertEvent, Severity, Timestamp};

/// SD-ID of netmon's structured data.
pub const SD_ID: &str = "netmon@32473";

/// How messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One datagram per message (RFC 5426).
    Udp,
    /// A TCP stream, each message preceded by its length (RFC 6587 octet counting).
    Tcp,
}

/// Sender settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SyslogConfig {
    /// The syslog server.
    pub server: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Facility number (0–23); default 16 (`local0`).
    pub facility: u8,
    /// HOSTNAME field.
    pub hostname: String,
    /// APP-NAME field.
    pub app_name: String,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("syslog server {server}: {source}")]
pub struct SyslogError {
    /// The server.
    pub server: SocketAddr,
    /// What failed.
    #[source]
    pub source: std::io::Error,
}

/// Printable US-ASCII without spaces, at most `max` characters; `-` (NILVALUE) when empty.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if v.is_empty() { "-".into() } else { v }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped; control characters dropped.
fn sd_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// RFC 3339 with microseconds (RFC 5424 allows at most six fraction digits).
fn timestamp(t: Timestamp) -> String {
    let s = t.rfc3339().to_string();
    // `2024-03-01T12:00:00.123456789Z` → keep six digits of the fraction.
    match s.split_once('.') {
        Some((head, frac)) => {
            let digits: String = frac
                .chars()
                .take_while(char::is_ascii_digit)
                .take(6)
                .collect();
            format!("{head}.{digits:0<6}Z")
        }
        None => s,
    }
}

/// Builds messages.
#[derive(Clone, Debug)]
pub struct Formatter {
    facility: u8,
    hostname: String,
    app_name: String,
    procid: String,
}

impl Formatter {
    /// A formatter for `cfg`, with this process's id as PROCID.
    pub fn new(cfg: &SyslogConfig) -> Formatter {
        Formatter {
            facility: cfg.facility.min(23),
            hostname: header_field(&cfg.hostname, 255),
            app_name: header_field(&cfg.app_name, 48),
            procid: std::process::id().to_string(),
        }
    }

    fn head(&self, severity: u8, ts: Timestamp, msgid: &str) -> String {
        let pri = u16::from(self.facility) * 8 + u16::from(severity.min(7));
        format!(
            "<{pri}>1 {} {} {} {} {}",
            timestamp(ts),
            self.hostname,
            self.app_name,
            self.procid,
            header_field(msgid, 32)
        )
    }

    fn sd(out: &mut String, params: &[(&str, String)]) {
        out.push_str(" [");
        out.push_str(SD_ID);
        for (k, v) in params {
            let _ = write!(out, " {k}=\"");
            sd_value(out, v);
            out.push('"');
        }
        out.push(']');
    }

    /// The message of an alert event.
    pub fn alert(&self, e: &AlertEvent) -> String {
        let a = e.alert();
        let (state, sev) = match e {
            AlertEvent::Raised(_) => ("raised", a.severity),
            AlertEvent::Closed(_) => ("closed", Severity::Low),
        };
        let severity = match sev {
            Severity::High => 2,
            Severity::Medium => 4,
            Severity::Low => 5,
        };
        let mut m = self.head(severity, a.ts, "alert");
        let mut p = vec![
            ("id", a.id.to_string()),
            ("state", state.to_owned()),
            ("kind", a.kind.name().to_owned()),
            ("severity", a.severity.name().to_owned()),
            ("source", a.source.to_string()),
        ];
        if let Some(t) = &a.target {
            p.push(("target", t.to_string()));
        }
        p.push(("first_seen", timestamp(a.first_seen)));
        p.push(("last_seen", timestamp(a.last_seen)));
        p.push((
            "evidence",
            serde_json::to_string(&a.evidence).unwrap_or_default(),
        ));
        Self::sd(&mut m, &p);
        let _ = write!(m, " {} {} from {}", state, a.kind.name(), a.source);
        if let Some(t) = &a.target {
            let _ = write!(m, " against {t}");
        }
        m
    }

    /// The message of a flow record (a summary: 5-tuple, counters, app and name).
    pub fn flow(&self, r: &FlowRecord) -> String {
        let mut m = self.head(6, r.last_seen.0, "flow");
        let opt = |v: Option<u16>| v.map(|p| p.to_string()).unwrap_or_default();
        let mut p = vec![
            ("id", r.id.to_string()),
            ("proto", r.proto.to_string()),
            ("src", r.src_ip.to_string()),
            ("sport", opt(r.src_port)),
            ("dst", r.dst_ip.to_string()),
            ("dport", opt(r.dst_port)),
            ("packets_c2s", r.packets_c2s.to_string()),
            ("bytes_c2s", r.bytes_c2s.to_string()),
            ("packets_s2c", r.packets_s2c.to_string()),
            ("bytes_s2c", r.bytes_s2c.to_string()),
            ("first_seen", timestamp(r.first_seen.0)),
            ("end_reason", r.end_reason.unwrap_or("update").to_owned()),
        ];
        if let Some(a) = r.app {
            p.push(("app", a.to_owned()));
        }
        if let Some(name) = r.name() {
            p.push(("name", name.to_owned()));
        }
        Self::sd(&mut m, &p);
        let _ = write!(
            m,
            " {} {} -> {} {} bytes",
            r.proto,
            r.src_ip,
            r.dst_ip,
            r.bytes_c2s.saturating_add(r.bytes_s2c)
        );
        m
    }
}

/// Sends messages to one server; a TCP connection is made at the first send and remade after
/// a failure.
pub struct SyslogSender {
    cfg: SyslogConfig,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    /// Messages that could not be sent.
    pub send_errors: u64,
}

impl SyslogSender {
    /// A sender for `cfg`.
    pub fn new(cfg: SyslogConfig) -> Result<SyslogSender, SyslogError> {
        let udp = match cfg.transport {
            Transport::Udp => {
                let bind = if cfg.server.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind).map_err(|source| SyslogError {
                    server: cfg.server,
                    source,
                })?;
                s.connect(cfg.server).map_err(|source| SyslogError {
                    server: cfg.server,
                    source,
                })?;
                Some(s)
            }
            Transport::Tcp => None,
        };
        Ok(SyslogSender {
            cfg,
            udp,
            tcp: None,
            send_errors: 0,
        })
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &str) -> Result<(), SyslogError> {
        let server = self.cfg.server;
        let r = if let Some(u) = &self.udp {
            u.send(msg.as_bytes()).map(|_| ())
        } else {
            if self.tcp.is_none() {
                match TcpStream::connect_timeout(&server, Duration::from_secs(5)) {
                    Ok(s) => self.tcp = Some(s),
                    Err(source) => {
                        self.send_errors += 1;
                        return Err(SyslogError { server, source });
                    }
                }
            }
            let framed = format!("{} {msg}", msg.len());
            let r = match self.tcp.as_mut() {
                Some(s) => s.write_all(framed.as_bytes()),
                None => Ok(()),
            };
            if r.is_err() {
                self.tcp = None;
            }
            r
        };
        r.map_err(|source| {
            self.send_errors += 1;
            SyslogError { server, source }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_sd_values_are_escaped() {
        assert_eq!(header_field("probe 1\u{7f}é", 255), "probe1");
        assert_eq!(header_field("", 10), "-");
        assert_eq!(header_field(&"x".repeat(300), 255).len(), 255);
        let mut s = String::new();
        sd_value(&mut s, "a\"b\\c]d\ne<img>");
        assert_eq!(s, "a\\\"b\\\\c\\]de<img>");
    }

    #[test]
    fn hostile_values_cannot_end_the_structured_data() {
        let mut s = String::new();
        sd_value(&mut s, "x\"] [evil@1 a=\"b");
        assert!(!s.contains("\"]"), "{s}");
        assert_eq!(s, "x\\\"\\] [evil@1 a=\\\"b");
    }

    #[test]
    fn timestamps_have_six_fraction_digits() {
        let t = Timestamp(1_709_294_400_123_456_789);
        assert_eq!(timestamp(t), "2024-03-01T12:00:00.123456Z");
        assert_eq!(
            timestamp(Timestamp(1_709_294_400_000_000_000)),
            "2024-03-01T12:00:00.000000Z"
        );
    }
}
