//! Enrichment of flow records (netmon-enrich): address scope, GeoIP/ASN, tracker lists.
//!
//! An [`Enricher`] is built once (databases and lists loaded off the packet path) and shared
//! read-only (`Arc`) by the sinks that make records. It runs when a record is made — a flow's
//! end, or a live view's export — so it costs nothing per packet: per record, a few table
//! lookups. [`ProcessTracker`] is the exception: it looks a flow's socket up at the flow's
//! first packet, the only moment a short-lived process can be caught.

use std::net::IpAddr;
use std::path::PathBuf;

use netmon_enrich::geo::{Asn, Geo, GeoDb, GeoError};
use netmon_enrich::process::{Attribution, ProcessResolver, Proto};
use netmon_enrich::scope::{Scope, scope_of};
use netmon_enrich::trackers::{Category, TrackerError, TrackerLists, TrackerMatch};
use serde::Serialize;

use crate::record::FlowRecord;

/// A value for each end of a flow (initiator `src`, responder `dst`); an end without one is
/// left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ends<T> {
    /// The initiator's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<T>,
    /// The responder's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<T>,
}

impl<T> Ends<T> {
    fn of(src: IpAddr, dst: IpAddr, f: impl Fn(IpAddr) -> Option<T>) -> Option<Ends<T>> {
        let e = Ends {
            src: f(src),
            dst: f(dst),
        };
        (e.src.is_some() || e.dst.is_some()).then_some(e)
    }
}

/// What enrichment adds to a flow record; every field is left out of the JSON when unknown
/// or not configured, so records of an engine without enrichment are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Enrichment {
    /// Each end's address scope (`private`, `public`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Ends<Scope>>,
    /// Each end's location (City/Country database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<Ends<Geo>>,
    /// Each end's autonomous system (ASN database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<Ends<Asn>>,
    /// The first of the flow's names (SNI, HTTP Hosts, DNS questions, domain) on a tracker
    /// list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker: Option<TrackerMatch>,
    /// The local process that owned the flow's socket at its first packet, or why it is not
    /// known (`{"reason": ...}`); see [`ProcessTracker`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Attribution>,
}

impl Enrichment {
    /// Nothing known.
    pub fn is_empty(&self) -> bool {
        self == &Enrichment::default()
    }
}

/// Why an enricher could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// A GeoIP/ASN database.
    #[error(transparent)]
    Geo(#[from] GeoError),
    /// A tracker list.
    #[error(transparent)]
    Trackers(#[from] TrackerError),
}

/// What to enrich records with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnrichConfig {
    /// Add each end's address scope.
    pub scope: bool,
    /// A GeoLite2/GeoIP2 City or Country database.
    pub geoip: Option<PathBuf>,
    /// A GeoLite2/GeoIP2 ASN database.
    pub asn: Option<PathBuf>,
    /// Tracker lists and their categories.
    pub trackers: Vec<(PathBuf, Category)>,
}

impl EnrichConfig {
    /// Anything to do.
    pub fn is_enabled(&self) -> bool {
        self.scope || self.geoip.is_some() || self.asn.is_some() || !self.trackers.is_empty()
    }
}

/// Loaded databases and lists; applies them to records.
#[derive(Debug, Default)]
pub struct Enricher {
    scope: bool,
    geo: GeoDb,
    trackers: TrackerLists,
}

impl Enricher {
    /// Loads what `cfg` names.
    pub fn load(cfg: &EnrichConfig) -> Result<Enricher, EnrichError> {
        let geo = GeoDb::open(cfg.geoip.as_deref(), cfg.asn.as_deref())?;
        let mut trackers = TrackerLists::new();
        for (path, cat) in &cfg.trackers {
            trackers.load(path, *cat)?;
        }
        Ok(Enricher {
            scope: cfg.scope,
            geo,
            trackers,
        })
    }

    /// An enricher from parts already loaded.
    pub fn new(scope: bool, geo: GeoDb, trackers: TrackerLists) -> Enricher {
        Enricher {
            scope,
            geo,
            trackers,
        }
    }

    /// The tracker lists (for per-application reports).
    pub fn trackers(&self) -> &TrackerLists {
        &self.trackers
    }

    /// Fills `r.enrich`.
    pub fn apply(&self, r: &mut FlowRecord) {
        let (src, dst) = (r.src_ip, r.dst_ip);
        let mut e = Enrichment::default();
        if self.scope {
            e.scope = Ends::of(src, dst, |ip| Some(scope_of(ip)));
        }
        if !self.geo.is_empty() {
            // Only public addresses have records; skip the lookups for the others.
            let public = |ip: IpAddr| scope_of(ip).is_external();
            e.geo = Ends::of(src, dst, |ip| {
                public(ip).then(|| self.geo.geo(ip)).flatten()
            });
            e.asn = Ends::of(src, dst, |ip| {
                public(ip).then(|| self.geo.asn(ip)).flatten()
            });
        }
        if !self.trackers.is_empty() {
            let names = r
                .sni
                .iter()
                .chain(r.http.iter().filter_map(|h| h.host.as_ref()))
                .chain(r.dns.iter().map(|d| &d.query))
                .chain(r.domain.iter());
            e.tracker = names
                .filter_map(|n| {
                    // An HTTP Host may carry a port.
                    let host = n.rsplit_once(':').map_or(n.as_str(), |(h, p)| {
                        if p.bytes().all(|b| b.is_ascii_digit()) {
                            h
                        } else {
                            n
                        }
                    });
                    self.trackers.lookup(host)
                })
                .next();
        }
        // The process was found at the flow's start (ProcessTracker), not here.
        e.process = r.enrich.process.take();
        r.enrich = e;
    }
}

/// Attributes flows to local processes at their first packet (the only moment a short-lived
/// process can be caught) and keeps the answer until the flow's record is made.
///
/// Feed it the engine's flow-start observations
/// ([`EngineConfig::observe`](crate::EngineConfig::observe) and
/// [`EngineSink::flow_observed`](crate::EngineSink::flow_observed)),
/// then [`take`](Self::take) the answer when the record is built. Memory: one entry per
/// active TCP/UDP flow. It must run on a thread inside the network namespace being captured.
pub struct ProcessTracker {
    resolver: ProcessResolver,
    by_flow: std::collections::HashMap<u64, Attribution>,
    flows_resolved: u64,
}

impl std::fmt::Debug for ProcessTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTracker")
            .field("flows", &self.by_flow.len())
            .finish()
    }
}

impl Default for ProcessTracker {
    fn default() -> Self {
        ProcessTracker::new()
    }
}

impl ProcessTracker {
    /// A tracker with the resolver's defaults.
    pub fn new() -> ProcessTracker {
        ProcessTracker {
            resolver: ProcessResolver::new(),
            by_flow: std::collections::HashMap::new(),
            flows_resolved: 0,
        }
    }

    /// A flow started: look its socket up now (TCP and UDP flows only).
    pub fn flow_started(&mut self, obs: &netmon_stats::FlowObs) {
        let Some(proto) = Proto::from_ip_proto(obs.proto) else {
            return;
        };
        let src = std::net::SocketAddr::new(obs.initiator.ip, obs.initiator.port);
        let dst = std::net::SocketAddr::new(obs.responder.ip, obs.responder.port);
        let a = self.resolver.lookup_flow(proto, src, dst);
        self.flows_resolved += 1;
        self.by_flow.insert(obs.id, a);
    }

    /// The answer for flow `id`, kept (e.g. for a live view's export of an active flow).
    pub fn get(&self, id: u64) -> Option<&Attribution> {
        self.by_flow.get(&id)
    }

    /// The answer for flow `id` (its record is being made), forgotten here.
    pub fn take(&mut self, id: u64) -> Option<Attribution> {
        self.by_flow.remove(&id)
    }

    /// Flows looked up so far (one resolver call each; the resolver may ask the kernel about
    /// both ends of a flow).
    pub fn flows_resolved(&self) -> u64 {
        self.flows_resolved
    }

    /// The resolver's counters.
    pub fn stats(&self) -> netmon_enrich::process::ResolverStats {
        self.resolver.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_testkit::mmdb::{Value, build};

    fn record(src: &str, dst: &str) -> FlowRecord {
        let mut r = crate::record::tests_support::record();
        r.src_ip = src.parse().unwrap();
        r.dst_ip = dst.parse().unwrap();
        r
    }

    fn enricher() -> Enricher {
        let city = build(
            "GeoLite2-City",
            &[(
                "64.13.134.0".parse().unwrap(),
                24,
                Value::map([("country", Value::map([("iso_code", Value::str("US"))]))]),
            )],
        );
        let asn = build(
            "GeoLite2-ASN",
            &[(
                "64.13.0.0".parse().unwrap(),
                16,
                Value::map([
                    ("autonomous_system_number", Value::U32(64496)),
                    ("autonomous_system_organization", Value::str("Example AS")),
                ]),
            )],
        );
        let mut t = TrackerLists::new();
        t.add_text("ads", "ads.example.com\n", Category::Ads);
        Enricher::new(true, GeoDb::from_bytes(Some(city), Some(asn)).unwrap(), t)
    }

    #[test]
    fn scope_geo_asn_and_tracker() {
        let en = enricher();
        let mut r = record("192.168.1.5", "64.13.134.52");
        r.http.push(crate::record::HttpRecord {
            host: Some("www.ads.example.com:8080".into()),
            ..Default::default()
        });
        en.apply(&mut r);
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(
            j["scope"],
            serde_json::json!({"src": "private", "dst": "public"})
        );
        assert_eq!(j["geo"], serde_json::json!({"dst": {"country": "US"}}));
        assert_eq!(
            j["asn"],
            serde_json::json!({"dst": {"number": 64496, "org": "Example AS"}})
        );
        assert_eq!(
            j["tracker"],
            serde_json::json!({"domain": "ads.example.com", "category": "ads", "list": "ads"})
        );
        // The allocation-free writer agrees with serde.
        let mut out = Vec::new();
        r.write_json(&mut out).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            j
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&r).unwrap()
        );
    }

    #[test]
    fn nothing_configured_changes_nothing() {
        let mut r = record("10.0.0.1", "8.8.8.8");
        let before = serde_json::to_string(&r).unwrap();
        Enricher::default().apply(&mut r);
        assert!(r.enrich.is_empty());
        assert_eq!(serde_json::to_string(&r).unwrap(), before);
        assert!(!before.contains("\"scope\""));
        // Private ends get no GeoIP lookup, public ones without a record nothing.
        let mut r = record("10.0.0.1", "8.8.8.8");
        enricher().apply(&mut r);
        assert_eq!(r.enrich.geo, None);
        assert_eq!(r.enrich.tracker, None);
        assert!(r.enrich.scope.is_some());
    }

    /// Process lookups happen once per TCP/UDP flow, at its start, whatever its packet count:
    /// over a capture of 1 723 packets in 197 flows the resolver is asked once per such flow,
    /// and every such record carries an answer (here reasons: the capture is not this host's).
    #[test]
    fn process_lookups_once_per_flow() {
        use crate::{Engine, EngineConfig, EngineSink, FlowClass, FlowEvent};
        let Some(c) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
            return;
        };
        struct S {
            t: ProcessTracker,
            starts: u64,
            recs: Vec<FlowRecord>,
        }
        impl EngineSink<FlowClass> for S {
            fn flow_observed(&mut self, e: FlowEvent, o: &netmon_stats::FlowObs) {
                if e == FlowEvent::Start && matches!(o.proto, 6 | 17) {
                    self.starts += 1;
                }
                if e == FlowEvent::Start {
                    self.t.flow_started(o);
                }
            }
            fn flow_ended(&mut self, f: &netmon_flow::Flow<FlowClass>, i: Option<&str>) {
                let mut r = FlowRecord::new(f, i);
                r.enrich.process = self.t.take(r.id);
                self.recs.push(r);
            }
        }
        let mut src = netmon_capture::open_file(c.dir().join("ndpi_1kxun.pcap")).unwrap();
        let mut s = S {
            t: ProcessTracker::new(),
            starts: 0,
            recs: Vec::new(),
        };
        let cfg = EngineConfig {
            observe: true,
            ..EngineConfig::default()
        };
        let out = Engine::classifying(cfg).unwrap().run(&mut src, &mut s);
        assert!(out.summary.packets > 1000 && s.starts > 100);
        assert_eq!(s.t.flows_resolved(), s.starts);
        // At most both ends of each flow asked of the kernel: bounded by flows, not packets.
        assert!(s.t.stats().lookups <= 2 * s.starts, "{:?}", s.t.stats());
        let tcp_udp = s.recs.iter().filter(|r| matches!(r.proto.0, 6 | 17));
        assert!(tcp_udp.clone().all(|r| r.enrich.process.is_some()));
        assert_eq!(tcp_udp.count() as u64, s.starts);
        assert!(
            s.recs
                .iter()
                .filter(|r| !matches!(r.proto.0, 6 | 17))
                .all(|r| r.enrich.process.is_none())
        );
    }

    #[test]
    fn missing_files_are_named() {
        let e = Enricher::load(&EnrichConfig {
            trackers: vec![("/nonexistent/ads.txt".into(), Category::Ads)],
            ..EnrichConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ads.txt"), "{e}");
        let e = Enricher::load(&EnrichConfig {
            geoip: Some("/nonexistent/city.mmdb".into()),
            ..EnrichConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/city.mmdb"), "{e}");
    }
}
