//! A small typed writer of the Prometheus text exposition format, version 0.0.4.
//!
//! ```text
//! # HELP netmon_packets_total Packets that went through a pipeline stage.
//! # TYPE netmon_packets_total counter
//! netmon_packets_total{interface="eth0",stage="capture"} 1027
//! netmon_packets_total{interface="eth0",stage="parse"} 1027
//! ```
//!
//! Samples are grouped by metric name whatever the order of the calls, each family gets its
//! `# HELP` and `# TYPE` lines once, label values are escaped (`\\`, `\"`, `\n`), and names
//! that are not valid Prometheus names are made valid (every other character becomes `_`).
//!
//! Conventions for netmon: counters are named `netmon_<what>_total`, and labels are bounded
//! sets: `interface`, `protocol`, `app`, `stage` (plus small fixed enumerations such as
//! `reason` or `kind`). Never a label whose values come from the traffic itself (addresses,
//! ports, names): that would let the traffic grow the time-series database without bound.

use core::fmt::Write as _;
use std::collections::HashMap;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only ever goes up (resets to zero when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl MetricKind {
    fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricKind,
    /// Rendered sample lines, without the trailing newline.
    samples: Vec<String>,
}

/// Collects metric samples and renders them in the text format.
///
/// ```
/// use netmon_api::metrics::MetricsWriter;
///
/// let mut w = MetricsWriter::new();
/// w.counter("netmon_packets_total", "Packets seen.", &[("interface", "eth0")], 12);
/// w.gauge("netmon_flows_active", "Flows in the table.", &[], 3.0);
/// w.counter("netmon_packets_total", "Packets seen.", &[("interface", "lo\"x")], 5);
/// let expected = [
///     "# HELP netmon_packets_total Packets seen.",
///     "# TYPE netmon_packets_total counter",
///     "netmon_packets_total{interface=\"eth0\"} 12",
///     "netmon_packets_total{interface=\"lo\\\"x\"} 5",
///     "# HELP netmon_flows_active Flows in the table.",
///     "# TYPE netmon_flows_active gauge",
///     "netmon_flows_active 3",
///     "",
/// ];
/// assert_eq!(w.render(), expected.join("\n"));
/// ```
#[derive(Debug, Default)]
pub struct MetricsWriter {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    rejected: u64,
}

impl MetricsWriter {
    /// An empty writer.
    pub fn new() -> MetricsWriter {
        MetricsWriter::default()
    }

    /// Adds a counter sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.sample(name, help, MetricKind::Counter, labels, Value::Int(value));
    }

    /// Adds a gauge sample (`NaN` and infinities are written as Prometheus spells them).
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(name, help, MetricKind::Gauge, labels, Value::Float(value));
    }

    /// Adds an integer gauge sample.
    pub fn gauge_int(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.sample(name, help, MetricKind::Gauge, labels, Value::Int(value));
    }

    /// Samples refused because their name was already used by a family of the other kind.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    fn sample(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
        value: Value,
    ) {
        let name = sanitize_name(name, true);
        let i = match self.index.get(&name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.clone(),
                    help: escape_help(help),
                    kind,
                    samples: Vec::new(),
                });
                let i = self.families.len() - 1;
                self.index.insert(name.clone(), i);
                i
            }
        };
        let Some(f) = self.families.get_mut(i) else {
            return;
        };
        if f.kind != kind {
            self.rejected += 1;
            return;
        }
        let mut line = name;
        if !labels.is_empty() {
            line.push('{');
            for (j, (k, v)) in labels.iter().enumerate() {
                if j > 0 {
                    line.push(',');
                }
                line.push_str(&sanitize_name(k, false));
                line.push_str("=\"");
                escape_label_value(&mut line, v);
                line.push('"');
            }
            line.push('}');
        }
        line.push(' ');
        match value {
            Value::Int(v) => {
                let _ = write!(line, "{v}");
            }
            Value::Float(v) if v.is_nan() => line.push_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => line.push_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => line.push_str("-Inf"),
            Value::Float(v) => {
                let _ = write!(line, "{v}");
            }
        }
        f.samples.push(line);
    }

    /// The text exposition of every sample, grouped by family in order of first appearance.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
            for s in &f.samples {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug)]
enum Value {
    Int(u64),
    Float(f64),
}

/// A valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label name (the same without `:`):
/// every other character becomes `_`, and an empty name or one starting with a digit gets a
/// leading `_`.
fn sanitize_name(s: &str, metric: bool) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in s.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':');
        out.push(if ok { c } else { '_' });
    }
    out
}

/// HELP text: `\` and newline escaped.
fn escape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Label value: `\`, `"` and newline escaped.
fn escape_label_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sanitizes() {
        let mut w = MetricsWriter::new();
        w.counter(
            "9bad-name",
            "a\\b\nc",
            &[("in-terface", "a\\b\"c\nd"), ("", "x")],
            1,
        );
        assert_eq!(
            w.render(),
            "# HELP _9bad_name a\\\\b\\nc\n# TYPE _9bad_name counter\n\
             _9bad_name{in_terface=\"a\\\\b\\\"c\\nd\",_=\"x\"} 1\n"
        );
    }

    #[test]
    fn floats_and_kind_clash() {
        let mut w = MetricsWriter::new();
        w.gauge("g", "h", &[("k", "nan")], f64::NAN);
        w.gauge("g", "h", &[("k", "inf")], f64::INFINITY);
        w.gauge("g", "h", &[("k", "-inf")], f64::NEG_INFINITY);
        w.gauge("g", "h", &[("k", "half")], 0.5);
        w.counter("g", "h", &[], 1);
        assert_eq!(w.rejected(), 1);
        let text = w.render();
        assert!(text.contains("g{k=\"nan\"} NaN\n"));
        assert!(text.contains("g{k=\"inf\"} +Inf\n"));
        assert!(text.contains("g{k=\"-inf\"} -Inf\n"));
        assert!(text.contains("g{k=\"half\"} 0.5\n"));
        assert_eq!(text.matches("# TYPE").count(), 1);
    }
}
