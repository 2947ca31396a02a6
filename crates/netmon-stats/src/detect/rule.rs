//! Threshold rules on window metrics.
//!
//! Syntax (words separated by spaces; keywords in lower case):
//!
//! ```text
//! <metric> on <iface|any> [proto <p>] over <window> (>|<) <value> [severity low|medium|high]
//!
//! metric  pps | bps | new_flows | active_flows
//! iface   an interface name (eth0), if<N> for interface index N, or any (all interfaces summed)
//! p       ipv4 | ipv6 | arp | other | tcp | udp | icmp | ... | an IP protocol number | an
//!         application name (tls, dns, ...)
//! window  <N>s | <N>m | <N>h, at most the longest configured window
//! value   a number, optionally with an SI suffix: 1e9, 2.5G, 800k, 10M
//! ```
//!
//! Examples: `bps on eth0 over 10s > 1e9`, `new_flows on any proto tcp over 60s > 500`,
//! `pps on if0 over 60s < 1 severity high` (the link went quiet).
//!
//! A rule fires when the value crosses the threshold (raising one alert), and re-arms when
//! the value is back on the other side (closing that alert with the peak value).

use serde::Serialize;
use thiserror::Error;

use crate::alert::Severity;
use crate::obs::{L3Kind, l4_name};
use crate::window::{Metric, ProtoKey};

/// Which side of the threshold fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// `>`: fires when the value rises above.
    Above,
    /// `<`: fires when the value falls below.
    Below,
}

/// The protocol a rule selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtoSel {
    /// A network layer.
    L3(L3Kind),
    /// An IP protocol number.
    L4(u8),
    /// An application name.
    App(String),
}

impl ProtoSel {
    fn parse(s: &str) -> ProtoSel {
        match s {
            "ipv4" => return ProtoSel::L3(L3Kind::Ipv4),
            "ipv6" => return ProtoSel::L3(L3Kind::Ipv6),
            "arp" => return ProtoSel::L3(L3Kind::Arp),
            "other" => return ProtoSel::L3(L3Kind::Other),
            _ => {}
        }
        if let Ok(n) = s.parse::<u8>() {
            return ProtoSel::L4(n);
        }
        if let Some(n) = s.strip_prefix("ip-").and_then(|d| d.parse::<u8>().ok()) {
            return ProtoSel::L4(n);
        }
        if let Some(n) = (0..=255u8).find(|&n| l4_name(n) == Some(s)) {
            return ProtoSel::L4(n);
        }
        ProtoSel::App(s.to_owned())
    }

    /// Whether a window key is the selected protocol.
    pub fn matches(&self, k: &ProtoKey) -> bool {
        match (self, k) {
            (ProtoSel::L3(a), ProtoKey::L3(b)) => a == b,
            (ProtoSel::L4(a), ProtoKey::L4(b)) => a == b,
            (ProtoSel::App(a), ProtoKey::App(b)) => a == b,
            _ => false,
        }
    }
}

/// A parsed threshold rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The rule as written (whitespace normalised).
    pub text: String,
    /// The metric.
    pub metric: Metric,
    /// Interface name, or `None` for `any`.
    pub iface: Option<String>,
    /// Protocol, or `None` for all traffic.
    pub proto: Option<ProtoSel>,
    /// Window length in seconds.
    pub window_secs: u32,
    /// Direction.
    pub cmp: Comparison,
    /// Threshold value (in the metric's unit: per second, bits per second, or flows).
    pub threshold: f64,
    /// Severity of the alerts it raises (default medium).
    pub severity: Severity,
}

/// A rule that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("threshold rule `{rule}`: {message}")]
pub struct RuleError {
    /// The rule text.
    pub rule: String,
    /// What is wrong, naming the word and what was expected.
    pub message: String,
}

const SYNTAX: &str =
    "<metric> on <iface|any> [proto <p>] over <window> (>|<) <value> [severity low|medium|high]";

impl Rule {
    /// Parses a rule; see the module documentation for the syntax.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let norm = words.join(" ");
        let err = |message: String| RuleError {
            rule: norm.clone(),
            message,
        };
        let mut it = words.iter().copied().enumerate().peekable();
        let mut next = |what: &str| -> Result<(usize, &str), RuleError> {
            it.next()
                .ok_or_else(|| err(format!("ends early: expected {what} (syntax: {SYNTAX})")))
        };
        let (i, m) = next("a metric")?;
        let metric = match m {
            "pps" => Metric::Pps,
            "bps" => Metric::Bps,
            "new_flows" => Metric::NewFlows,
            "active_flows" => Metric::ActiveFlows,
            _ => {
                return Err(err(format!(
                    "word {}: unknown metric `{m}` (expected pps, bps, new_flows or active_flows)",
                    i + 1
                )));
            }
        };
        expect(&mut next, "on", &err)?;
        let (_, iface) = next("an interface name or `any`")?;
        let iface = (iface != "any").then(|| iface.to_owned());
        let (mut i, mut w) = next("`proto` or `over`")?;
        let mut proto = None;
        if w == "proto" {
            let (_, p) = next("a protocol name or number")?;
            proto = Some(ProtoSel::parse(p));
            (i, w) = next("`over`")?;
        }
        if w != "over" {
            return Err(err(format!(
                "word {}: expected `over` (or `proto`), found `{w}`",
                i + 1
            )));
        }
        let (i, win) = next("a window such as 10s")?;
        let window_secs = parse_window(win).ok_or_else(|| {
            err(format!(
                "word {}: `{win}` is not a window (use 1s, 10s, 5m, 1h)",
                i + 1
            ))
        })?;
        let (i, c) = next("`>` or `<`")?;
        let cmp = match c {
            ">" => Comparison::Above,
            "<" => Comparison::Below,
            _ => {
                return Err(err(format!(
                    "word {}: expected `>` or `<`, found `{c}`",
                    i + 1
                )));
            }
        };
        let (i, v) = next("a threshold value")?;
        let threshold = parse_value(v).ok_or_else(|| {
            err(format!(
                "word {}: `{v}` is not a non-negative number (e.g. 1e9, 2.5G, 800k)",
                i + 1
            ))
        })?;
        let mut severity = Severity::Medium;
        if let Some((i, w)) = it.next() {
            if w != "severity" {
                return Err(err(format!(
                    "word {}: unexpected `{w}` after the value (only `severity <level>` may follow)",
                    i + 1
                )));
            }
            let (i, s) = it.next().ok_or_else(|| {
                err("ends early: expected low, medium or high after `severity`".into())
            })?;
            severity = match s {
                "low" => Severity::Low,
                "medium" => Severity::Medium,
                "high" => Severity::High,
                _ => {
                    return Err(err(format!(
                        "word {}: unknown severity `{s}` (expected low, medium or high)",
                        i + 1
                    )));
                }
            };
            if let Some((i, w)) = it.next() {
                return Err(err(format!("word {}: unexpected `{w}` at the end", i + 1)));
            }
        }
        Ok(Rule {
            text: norm.clone(),
            metric,
            iface,
            proto,
            window_secs,
            cmp,
            threshold,
            severity,
        })
    }

    /// Whether `value` is on the firing side of the threshold.
    pub fn fires(&self, value: f64) -> bool {
        match self.cmp {
            Comparison::Above => value > self.threshold,
            Comparison::Below => value < self.threshold,
        }
    }

    /// The protocol key name of the rule (`all` without a proto).
    pub fn proto_name(&self) -> String {
        match &self.proto {
            None => "all".into(),
            Some(ProtoSel::L3(k)) => k.name().into(),
            Some(ProtoSel::L4(n)) => ProtoKey::L4(*n).to_string(),
            Some(ProtoSel::App(a)) => a.clone(),
        }
    }

    /// Whether a window key is what the rule measures.
    pub fn selects(&self, k: &ProtoKey) -> bool {
        match &self.proto {
            None => *k == ProtoKey::All,
            Some(p) => p.matches(k),
        }
    }
}

/// A rule and its firing state.
#[derive(Debug)]
pub(crate) struct RuleState {
    pub(crate) rule: Rule,
    active: Option<(crate::alert::Alert, f64)>,
}

impl RuleState {
    pub(crate) fn new(rule: Rule) -> RuleState {
        RuleState { rule, active: None }
    }

    /// Evaluates the rule on the window ending at second `sec` (covering `covered` seconds).
    pub(crate) fn eval(
        &mut self,
        rings: &crate::window::Rings,
        sec: i64,
        covered: u32,
        em: &mut super::Emitter,
    ) {
        use crate::alert::{Alert, AlertKind, Evidence, Subject};
        use crate::window::WindowValues;
        use netmon_types::Timestamp;
        let r = &self.rule;
        let (c, active) = rings.select(sec, r.window_secs, r.iface.as_deref(), |k| r.selects(k));
        let v =
            WindowValues::new(r.window_secs, covered.min(r.window_secs), c, active).get(r.metric);
        let end = Timestamp(sec.saturating_add(1).saturating_mul(super::NS));
        let fires = r.fires(v);
        match (&mut self.active, fires) {
            (None, true) => {
                let a = Alert {
                    id: em.next_id(),
                    ts: end,
                    kind: AlertKind::Threshold,
                    source: Subject::Iface(r.iface.clone().unwrap_or_else(|| "any".into())),
                    target: None,
                    severity: r.severity,
                    evidence: Evidence::Threshold {
                        rule: r.text.clone(),
                        metric: r.metric.name(),
                        proto: r.proto_name(),
                        window_secs: r.window_secs,
                        value: v,
                        peak: v,
                        threshold: r.threshold,
                    },
                    first_seen: end,
                    last_seen: end,
                };
                em.raise(&a);
                self.active = Some((a, v));
            }
            (Some((a, peak)), true) => {
                let more = match r.cmp {
                    Comparison::Above => v > *peak,
                    Comparison::Below => v < *peak,
                };
                if more {
                    *peak = v;
                }
                a.last_seen = end;
                if let Evidence::Threshold { peak: p, .. } = &mut a.evidence {
                    *p = *peak;
                }
            }
            (Some(_), false) => {
                if let Some((a, _)) = self.active.take() {
                    em.close_all(vec![a]);
                }
            }
            (None, false) => {}
        }
    }

    pub(crate) fn finish(&mut self, em: &mut super::Emitter) {
        if let Some((a, _)) = self.active.take() {
            em.close_all(vec![a]);
        }
    }

    pub(crate) fn active(&self) -> Option<&crate::alert::Alert> {
        self.active.as_ref().map(|(a, _)| a)
    }
}

fn expect<'a>(
    next: &mut impl FnMut(&str) -> Result<(usize, &'a str), RuleError>,
    word: &str,
    err: &impl Fn(String) -> RuleError,
) -> Result<(), RuleError> {
    let (i, w) = next(&format!("`{word}`"))?;
    if w == word {
        Ok(())
    } else {
        Err(err(format!(
            "word {}: expected `{word}`, found `{w}`",
            i + 1
        )))
    }
}

/// Parses a window length: `10s`, `5m`, `1h` (a bare number is seconds). `None` for zero,
/// garbage or more than a day.
pub fn parse_window(s: &str) -> Option<u32> {
    let (num, mul) = match s.as_bytes().last()? {
        b's' => (s.get(..s.len() - 1)?, 1),
        b'm' => (s.get(..s.len() - 1)?, 60),
        b'h' => (s.get(..s.len() - 1)?, 3600),
        _ => (s, 1),
    };
    let n: u32 = num.parse().ok()?;
    let secs = n.checked_mul(mul)?;
    (1..=86_400).contains(&secs).then_some(secs)
}

/// Parses a comma-separated list of windows (`1s,10s,60s`), as the CLI's `--window` takes.
pub fn parse_windows(s: &str) -> Result<Vec<u32>, String> {
    let mut v = Vec::new();
    for w in s.split(',').map(str::trim) {
        match parse_window(w) {
            Some(x) => v.push(x),
            None => return Err(format!("`{w}` is not a window (use 1s, 10s, 5m, 1h)")),
        }
    }
    if v.is_empty() {
        return Err("no window given".into());
    }
    Ok(v)
}

fn parse_value(s: &str) -> Option<f64> {
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (s.get(..s.len() - 1)?, 1e3),
        b'M' => (s.get(..s.len() - 1)?, 1e6),
        b'G' => (s.get(..s.len() - 1)?, 1e9),
        b'T' => (s.get(..s.len() - 1)?, 1e12),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().ok()?;
    let v = v * mul;
    (v.is_finite() && v >= 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_examples() {
        let r = Rule::parse("bps on eth0 over 10s > 1e9").unwrap();
        assert_eq!(r.metric, Metric::Bps);
        assert_eq!(r.iface.as_deref(), Some("eth0"));
        assert_eq!(r.proto, None);
        assert_eq!(r.window_secs, 10);
        assert_eq!(r.cmp, Comparison::Above);
        assert_eq!(r.threshold, 1e9);
        assert_eq!(r.severity, Severity::Medium);
        assert!(r.selects(&ProtoKey::All));

        let r =
            Rule::parse("  new_flows on any   proto tcp over 1m > 2.5k severity high ").unwrap();
        assert_eq!(
            r.text,
            "new_flows on any proto tcp over 1m > 2.5k severity high"
        );
        assert_eq!(r.iface, None);
        assert_eq!(r.proto, Some(ProtoSel::L4(6)));
        assert_eq!(r.window_secs, 60);
        assert_eq!(r.threshold, 2500.0);
        assert_eq!(r.severity, Severity::High);
        assert!(r.selects(&ProtoKey::L4(6)));
        assert!(!r.selects(&ProtoKey::All));

        let r = Rule::parse("pps on if0 proto tls over 60s < 1").unwrap();
        assert_eq!(r.proto, Some(ProtoSel::App("tls".into())));
        assert_eq!(r.cmp, Comparison::Below);
        assert!(r.fires(0.5) && !r.fires(1.0));
        assert_eq!(
            Rule::parse("pps on any proto 47 over 1s > 1")
                .unwrap()
                .proto_name(),
            "gre"
        );
        assert_eq!(
            Rule::parse("pps on any proto ip-253 over 1s > 1")
                .unwrap()
                .proto_name(),
            "ip-253"
        );
        assert_eq!(
            Rule::parse("pps on any proto ipv6 over 1s > 1")
                .unwrap()
                .proto_name(),
            "ipv6"
        );
    }

    fn msg(s: &str) -> String {
        Rule::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(
            msg("bandwidth on eth0 over 10s > 1"),
            "threshold rule `bandwidth on eth0 over 10s > 1`: word 1: unknown metric `bandwidth` (expected pps, bps, new_flows or active_flows)"
        );
        assert!(msg("bps at eth0 over 10s > 1").contains("word 2: expected `on`, found `at`"));
        assert!(
            msg("bps on eth0 10s > 1")
                .contains("word 4: expected `over` (or `proto`), found `10s`")
        );
        assert!(msg("bps on eth0 over ten > 1").contains("word 5: `ten` is not a window"));
        assert!(msg("bps on eth0 over 0s > 1").contains("`0s` is not a window"));
        assert!(
            msg("bps on eth0 over 10s >= 1").contains("word 6: expected `>` or `<`, found `>=`")
        );
        assert!(
            msg("bps on eth0 over 10s > lots")
                .contains("word 7: `lots` is not a non-negative number")
        );
        assert!(msg("bps on eth0 over 10s > -5").contains("not a non-negative number"));
        assert!(msg("bps on eth0 over 10s > NaN").contains("not a non-negative number"));
        assert!(msg("bps on eth0 over 10s > 1 please").contains("word 8: unexpected `please`"));
        assert!(msg("bps on eth0 over 10s > 1 severity dire").contains("unknown severity `dire`"));
        assert!(
            msg("bps on eth0 over 10s > 1 severity high now")
                .contains("word 10: unexpected `now` at the end")
        );
        assert!(msg("bps on eth0 over 10s").contains("ends early: expected `>` or `<`"));
        assert!(msg("").contains("ends early: expected a metric"));
        assert!(msg("bps on eth0 proto").contains("ends early: expected a protocol"));
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("1s"), Some(1));
        assert_eq!(parse_window("10"), Some(10));
        assert_eq!(parse_window("5m"), Some(300));
        assert_eq!(parse_window("1h"), Some(3600));
        assert_eq!(parse_window("2d"), None);
        assert_eq!(parse_window("99999h"), None);
        assert_eq!(parse_window("s"), None);
        assert_eq!(parse_window(""), None);
        assert_eq!(parse_windows("1s,10s,60s"), Ok(vec![1, 10, 60]));
        assert!(parse_windows("1s,,60s").is_err());
    }
}
