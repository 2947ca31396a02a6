//! Alert records and their life cycle.
//!
//! A detector **raises** an alert once, when its threshold is crossed, keeps aggregating
//! further evidence into it while the activity goes on, and **closes** it when the activity has
//! been quiet for the detector's window (or the threshold metric went back below, or the
//! capture ended). Both moments reach the caller as [`AlertEvent`]s with the same alert `id`:
//! a live consumer shows `raised` at once; a report of a file (`netmon alerts`) prints the
//! `closed` records, one per scan, with the final evidence.

use core::fmt;
use core::net::IpAddr;

use netmon_types::Timestamp;
use serde::{Deserialize, Serialize, Serializer};

/// What a detector found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// One source probing many ports of one host.
    VerticalScan,
    /// One source probing one port on many hosts.
    HorizontalScan,
    /// One sender asking ARP for many addresses.
    ArpSweep,
    /// One source opening flows faster than allowed.
    SynFlood,
    /// A window metric above a configured threshold.
    Threshold,
}

impl AlertKind {
    /// `vertical_scan`, `horizontal_scan`, `arp_sweep`, `syn_flood`, `threshold`.
    pub const fn name(self) -> &'static str {
        match self {
            AlertKind::VerticalScan => "vertical_scan",
            AlertKind::HorizontalScan => "horizontal_scan",
            AlertKind::ArpSweep => "arp_sweep",
            AlertKind::SynFlood => "syn_flood",
            AlertKind::Threshold => "threshold",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How urgent an alert is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Likely hostile or harmful.
    #[default]
    Medium,
    /// Act now.
    High,
}

impl Severity {
    /// `low`, `medium`, `high`.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// Who or what an alert is about: an address, or an interface (threshold alerts).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A host.
    Ip(IpAddr),
    /// An interface name (`any` for all interfaces).
    Iface(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Ip(ip) => ip.fmt(f),
            Subject::Iface(n) => f.write_str(n),
        }
    }
}

/// Serialized as the plain string (`"10.0.0.1"`, `"eth0"`).
impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Structured evidence; the variant matches the alert's kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    /// Vertical scan: ports of one host.
    VerticalScan {
        /// Distinct ports probed (exact up to 65 536).
        ports: u32,
        /// The first ports probed, in order of appearance.
        ports_sample: Vec<u16>,
        /// Probe flows: one per distinct port held when the alert was raised, then every
        /// further flow once.
        probes: u64,
        /// Share of the distinct ports that never answered a probe successfully.
        failed_ratio: f64,
        /// Whether a run of consecutive port numbers (≥ the configured length) was seen.
        sequential: bool,
        /// The detector's window.
        window_secs: u32,
    },
    /// Horizontal scan: hosts on one (or a few) ports.
    HorizontalScan {
        /// Distinct hosts probed (saturates at the configured cap; see `hosts_saturated`).
        hosts: u32,
        /// Whether `hosts` hit the cap.
        hosts_saturated: bool,
        /// The first hosts probed.
        hosts_sample: Vec<IpAddr>,
        /// The ports (`proto/port`, e.g. `tcp/22`) that crossed the threshold.
        ports: Vec<String>,
        /// Probe flows: one per distinct host held when the alert was raised, then every
        /// further failed flow (or flow to an alerted port) once.
        probes: u64,
        /// Share of distinct hosts whose probes failed, when the threshold was crossed.
        failed_ratio: f64,
        /// The detector's window.
        window_secs: u32,
    },
    /// ARP sweep.
    ArpSweep {
        /// Distinct target addresses asked for.
        targets: u32,
        /// Whether `targets` hit the cap.
        targets_saturated: bool,
        /// The first targets.
        targets_sample: Vec<IpAddr>,
        /// Requests aggregated.
        requests: u64,
        /// Share of targets that never answered, when the threshold was crossed.
        unanswered_ratio: f64,
        /// The detector's window.
        window_secs: u32,
    },
    /// Flow-rate flood.
    SynFlood {
        /// Most flows started within one window (the peak).
        peak_new_flows: u64,
        /// Flows started over the alert's life.
        new_flows: u64,
        /// Share of those flows that were failed TCP attempts, at the peak.
        failed_ratio: f64,
        /// Distinct responder hosts in the sample (up to the cap).
        targets_sample: Vec<IpAddr>,
        /// The limit (flows per window).
        limit: u64,
        /// The detector's window.
        window_secs: u32,
    },
    /// Threshold rule.
    Threshold {
        /// The rule as written.
        rule: String,
        /// Metric name.
        metric: &'static str,
        /// Protocol key (`all` when the rule names none).
        proto: String,
        /// Window length.
        window_secs: u32,
        /// The value that crossed the threshold.
        value: f64,
        /// The highest value while above.
        peak: f64,
        /// The threshold.
        threshold: f64,
    },
}

/// An alert record. Serialized with stable field names; times are RFC 3339 with nanoseconds
/// on the packets' clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Sequence number, unique within one [`crate::Stats`], in order of raising.
    pub id: u64,
    /// When the alert was raised.
    #[serde(serialize_with = "ser_ts")]
    pub ts: Timestamp,
    /// What was found.
    pub kind: AlertKind,
    /// Who did it (scanner, flooder, ARP sender) or which interface (threshold).
    pub source: Subject,
    /// The scanned host (vertical scan), when there is one.
    pub target: Option<Subject>,
    /// Severity.
    pub severity: Severity,
    /// Supporting numbers.
    pub evidence: Evidence,
    /// Time of the first observation aggregated.
    #[serde(serialize_with = "ser_ts")]
    pub first_seen: Timestamp,
    /// Time of the latest observation aggregated.
    #[serde(serialize_with = "ser_ts")]
    pub last_seen: Timestamp,
}

fn ser_ts<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ts)
}

/// A step in an alert's life.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", content = "alert", rename_all = "snake_case")]
pub enum AlertEvent {
    /// The threshold was crossed (evidence as of that moment).
    Raised(Alert),
    /// The activity stopped; final evidence.
    Closed(Alert),
}

impl AlertEvent {
    /// The alert.
    pub fn alert(&self) -> &Alert {
        match self {
            AlertEvent::Raised(a) | AlertEvent::Closed(a) => a,
        }
    }

    /// Whether this is the closing event.
    pub fn is_closed(&self) -> bool {
        matches!(self, AlertEvent::Closed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn json_shape_is_stable() {
        let a = Alert {
            id: 0,
            ts: Timestamp::from_secs_nanos(60, 5),
            kind: AlertKind::VerticalScan,
            source: Subject::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            target: Some(Subject::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)))),
            severity: Severity::High,
            evidence: Evidence::VerticalScan {
                ports: 5,
                ports_sample: vec![1, 2, 3, 4, 5],
                probes: 5,
                failed_ratio: 1.0,
                sequential: true,
                window_secs: 60,
            },
            first_seen: Timestamp::from_secs_nanos(59, 0),
            last_seen: Timestamp::from_secs_nanos(60, 0),
        };
        let j = serde_json::to_string(&AlertEvent::Closed(a)).unwrap();
        assert_eq!(
            j,
            r#"{"event":"closed","alert":{"id":0,"ts":"1970-01-01T00:01:00.000000005Z","kind":"vertical_scan","source":"10.0.0.1","target":"10.0.0.2","severity":"high","evidence":{"ports":5,"ports_sample":[1,2,3,4,5],"probes":5,"failed_ratio":1.0,"sequential":true,"window_secs":60},"first_seen":"1970-01-01T00:00:59.000000000Z","last_seen":"1970-01-01T00:01:00.000000000Z"}}"#
        );
    }
}
