//! The dashboard's `endpoints` event: per remote endpoint rates over the last second, from the
//! shards' exports of their busiest active flows (the difference of each flow's byte counters
//! between two exports of its shard, over the wall time between them).

use core::net::IpAddr;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use netmon_api::radar::{
    Endpoint, EndpointsReport, FlowBrief, IfaceRate, MAX_ENDPOINTS, MAX_FLOWS_PER_ENDPOINT, Scope,
};
use netmon_engine::FlowRecord;

/// One shard's previous export: each flow's byte counters, and when it came.
struct ShardState {
    at: Instant,
    /// Flow id → (bytes c2s, bytes s2c) at `at`.
    bytes: HashMap<u64, (u64, u64)>,
    /// Flow id → (rate c2s, rate s2c), bytes/s, between the last two exports.
    rates: HashMap<u64, (f64, f64)>,
    interval_ms: u64,
}

/// Turns the shards' exports into [`EndpointsReport`]s.
pub(crate) struct RadarTracker {
    /// This host's own addresses (live capture); loopback is always local.
    own: Vec<IpAddr>,
    shards: BTreeMap<usize, ShardState>,
    /// Whether an export came since the last report.
    fresh: bool,
}

impl RadarTracker {
    pub(crate) fn new(own: Vec<IpAddr>) -> RadarTracker {
        RadarTracker {
            own,
            shards: BTreeMap::new(),
            fresh: false,
        }
    }

    /// Takes `shard`'s new export, received at `now`.
    pub(crate) fn update(&mut self, shard: usize, records: &[FlowRecord], now: Instant) {
        let prev = self.shards.remove(&shard);
        let mut bytes = HashMap::with_capacity(records.len());
        let mut rates = HashMap::with_capacity(records.len());
        let dt = prev
            .as_ref()
            .map(|p| now.saturating_duration_since(p.at).as_secs_f64());
        for r in records {
            bytes.insert(r.id, (r.bytes_c2s, r.bytes_s2c));
            let (Some(p), Some(dt)) = (prev.as_ref(), dt) else {
                continue;
            };
            if dt <= 0.0 {
                continue;
            }
            // A flow new to the export brought all its bytes within the interval (or it was
            // below the export's cut before: then this over-estimates one second, once).
            let (b0, b1) = p.bytes.get(&r.id).copied().unwrap_or((0, 0));
            let d0 = r.bytes_c2s.saturating_sub(b0) as f64 / dt;
            let d1 = r.bytes_s2c.saturating_sub(b1) as f64 / dt;
            if d0 > 0.0 || d1 > 0.0 {
                rates.insert(r.id, (d0, d1));
            }
        }
        let interval_ms = dt.map_or(0, |d| (d * 1000.0) as u64);
        self.shards.insert(
            shard,
            ShardState {
                at: now,
                bytes,
                rates,
                interval_ms,
            },
        );
        self.fresh = true;
    }

    /// Whether an export came since the last [`report`](Self::report).
    pub(crate) fn fresh(&self) -> bool {
        self.fresh
    }

    /// The report over the latest exports (`active`: shard → its exported records).
    pub(crate) fn report<'a>(
        &mut self,
        active: impl Iterator<Item = (usize, &'a [FlowRecord])>,
        iface_names: &[String],
    ) -> EndpointsReport {
        self.fresh = false;
        struct Acc<'r> {
            ep: Endpoint,
            /// (rate, bytes, record, outbound, (rate c2s, rate s2c)) of its flows.
            flows: Vec<Flow<'r>>,
            best_app: (f64, u64),
            best_name: (f64, u64),
        }
        let mut eps: HashMap<IpAddr, Acc<'a>> = HashMap::new();
        let mut ifaces: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        let mut rep = EndpointsReport::default();
        for (shard, records) in active {
            let st = self.shards.get(&shard);
            if let Some(s) = st {
                rep.interval_ms = rep.interval_ms.max(s.interval_ms);
            }
            for r in records {
                rep.active_flows += 1;
                let (c2s, s2c) = st
                    .and_then(|s| s.rates.get(&r.id).copied())
                    .unwrap_or((0.0, 0.0));
                // The remote side: the responder, unless it is this host and the initiator
                // is not.
                let outbound = !(Scope::of(r.dst_ip, &self.own) == Scope::Local
                    && Scope::of(r.src_ip, &self.own) != Scope::Local);
                let (remote, rin, rout, bin, bout) = if outbound {
                    (r.dst_ip, s2c, c2s, r.bytes_s2c, r.bytes_c2s)
                } else {
                    (r.src_ip, c2s, s2c, r.bytes_c2s, r.bytes_s2c)
                };
                rep.rate_in += rin;
                rep.rate_out += rout;
                let i = ifaces.entry(r.iface).or_default();
                i.0 += rin;
                i.1 += rout;
                let a = eps.entry(remote).or_insert_with(|| Acc {
                    ep: Endpoint {
                        addr: remote,
                        scope: Scope::of(remote, &self.own),
                        rate_in: 0.0,
                        rate_out: 0.0,
                        bytes_in: 0,
                        bytes_out: 0,
                        flows: 0,
                        app: None,
                        name: None,
                    },
                    flows: Vec::new(),
                    best_app: (-1.0, 0),
                    best_name: (-1.0, 0),
                });
                let (rate, bytes) = (rin + rout, bin.saturating_add(bout));
                a.ep.rate_in += rin;
                a.ep.rate_out += rout;
                a.ep.bytes_in = a.ep.bytes_in.saturating_add(bin);
                a.ep.bytes_out = a.ep.bytes_out.saturating_add(bout);
                a.ep.flows += 1;
                let key = (rate, bytes);
                if r.app.is_some() && gt(key, a.best_app) {
                    a.best_app = key;
                    a.ep.app = r.app;
                }
                if let Some(n) = r.name() {
                    if gt(key, a.best_name) {
                        a.best_name = key;
                        a.ep.name = Some(n.to_owned());
                    }
                }
                a.flows.push((rate, bytes, r, outbound, (c2s, s2c)));
            }
        }
        rep.endpoints_total = eps.len() as u64;
        let mut list: Vec<Acc<'a>> = eps.into_values().collect();
        let by = |a: &Acc<'_>, b: &Acc<'_>| {
            let ka = (a.ep.rate_in + a.ep.rate_out, a.ep.bytes_in + a.ep.bytes_out);
            let kb = (b.ep.rate_in + b.ep.rate_out, b.ep.bytes_in + b.ep.bytes_out);
            kb.0.total_cmp(&ka.0)
                .then(kb.1.cmp(&ka.1))
                .then(a.ep.addr.cmp(&b.ep.addr))
        };
        if list.len() > MAX_ENDPOINTS {
            list.select_nth_unstable_by(MAX_ENDPOINTS - 1, by);
            list.truncate(MAX_ENDPOINTS);
        }
        list.sort_unstable_by(by);
        for mut a in list {
            a.flows.sort_unstable_by(|x, y| {
                y.0.total_cmp(&x.0)
                    .then(y.1.cmp(&x.1))
                    .then(x.2.id.cmp(&y.2.id))
            });
            for &(_, _, r, outbound, rates) in a.flows.iter().take(MAX_FLOWS_PER_ENDPOINT) {
                rep.flows.push(brief(r, outbound, rates));
            }
            rep.endpoints.push(a.ep);
        }
        rep.ifaces = ifaces
            .into_iter()
            .map(|(iface, (rate_in, rate_out))| IfaceRate {
                iface,
                name: usize::try_from(iface)
                    .ok()
                    .and_then(|i| iface_names.get(i))
                    .cloned(),
                rate_in,
                rate_out,
            })
            .collect();
        rep
    }
}

/// A flow of an endpoint: total rate, total bytes, the record, whether this host opened it,
/// and its rates c2s and s2c.
type Flow<'r> = (f64, u64, &'r FlowRecord, bool, (f64, f64));

fn gt(a: (f64, u64), b: (f64, u64)) -> bool {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).is_gt()
}

/// The remote end's country and AS, `SE · AS29518 Bredband2 AB`, when enrichment knows them.
fn remote_geo(r: &FlowRecord, outbound: bool) -> Option<String> {
    fn remote<T: Clone>(e: &netmon_engine::enrich::Ends<T>, outbound: bool) -> Option<T> {
        if outbound {
            e.dst.clone()
        } else {
            e.src.clone()
        }
    }
    let country = r
        .enrich
        .geo
        .as_ref()
        .and_then(|g| remote(g, outbound))
        .and_then(|g| g.country);
    let asn = r
        .enrich
        .asn
        .as_ref()
        .and_then(|a| remote(a, outbound))
        .map(|a| match a.org {
            Some(o) => format!("AS{} {o}", a.number),
            None => format!("AS{}", a.number),
        });
    let parts: Vec<String> = [country, asn].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

fn brief(r: &FlowRecord, outbound: bool, (c2s, s2c): (f64, f64)) -> FlowBrief {
    let (local_ip, local_port, remote_ip, remote_port) = if outbound {
        (r.src_ip, r.src_port, r.dst_ip, r.dst_port)
    } else {
        (r.dst_ip, r.dst_port, r.src_ip, r.src_port)
    };
    let (bytes_in, bytes_out, rate_in, rate_out) = if outbound {
        (r.bytes_s2c, r.bytes_c2s, s2c, c2s)
    } else {
        (r.bytes_c2s, r.bytes_s2c, c2s, s2c)
    };
    FlowBrief {
        id: r.id,
        proto: r.proto,
        local_ip,
        local_port,
        remote_ip,
        remote_port,
        outbound,
        app: r.app,
        name: r.name().map(str::to_owned),
        bytes_in,
        bytes_out,
        rate_in,
        rate_out,
        first_seen: r.first_seen,
        duration_ns: r.duration_ns,
        state: r.state,
        iface: r.iface,
        process: r
            .enrich
            .process
            .as_ref()
            .and_then(|a| a.process())
            .map(|p| format!("{} ({})", p.name, p.pid)),
        tracker: r
            .enrich
            .tracker
            .as_ref()
            .map(|t| format!("{} ({})", t.domain, t.category.name())),
        geo: remote_geo(r, outbound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_engine::record::{ProtoName, Rfc3339};
    use netmon_stats::Timestamp;
    use std::time::Duration;

    fn rec(id: u64, src: &str, dst: &str, c2s: u64, s2c: u64, sni: Option<&str>) -> FlowRecord {
        FlowRecord {
            id,
            proto: ProtoName(6),
            src_ip: src.parse().unwrap(),
            src_port: Some(40000),
            dst_ip: dst.parse().unwrap(),
            dst_port: Some(443),
            packets_c2s: 1,
            bytes_c2s: c2s,
            packets_s2c: 1,
            bytes_s2c: s2c,
            first_seen: Rfc3339(Timestamp(0)),
            last_seen: Rfc3339(Timestamp(10)),
            duration_ns: 10,
            state: "established",
            app: sni.map(|_| "tls"),
            sni: sni.map(str::to_owned),
            ..FlowRecord::default()
        }
    }

    #[test]
    fn rates_from_counter_deltas_grouped_by_remote_endpoint() {
        let own: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap()];
        let mut t = RadarTracker::new(own);
        let t0 = Instant::now();
        let first = vec![
            rec(1, "192.0.2.1", "8.8.8.8", 100, 1000, Some("dns.google")),
            // Inbound to this host: the initiator is the remote side.
            rec(2, "10.0.0.5", "192.0.2.1", 50, 500, None),
        ];
        t.update(0, &first, t0);
        let rep = t.report([(0, first.as_slice())].into_iter(), &[]);
        assert_eq!(rep.rate_in, 0.0, "one export has no rates yet");
        assert_eq!(rep.endpoints.len(), 2);

        let second = vec![
            rec(1, "192.0.2.1", "8.8.8.8", 300, 5000, Some("dns.google")),
            rec(2, "10.0.0.5", "192.0.2.1", 150, 500, None),
            rec(3, "192.0.2.1", "8.8.8.8", 10, 20, None),
        ];
        t.update(0, &second, t0 + Duration::from_secs(2));
        assert!(t.fresh());
        let rep = t.report([(0, second.as_slice())].into_iter(), &["eth0".into()]);
        assert!(!t.fresh());
        assert_eq!(rep.interval_ms, 2000);
        assert_eq!(rep.active_flows, 3);
        assert_eq!(rep.endpoints_total, 2);
        let g = &rep.endpoints[0];
        assert_eq!(g.addr.to_string(), "8.8.8.8");
        assert_eq!(g.scope, Scope::External);
        assert_eq!(g.flows, 2);
        // (5000-1000 + 20) / 2 in, (300-100 + 10) / 2 out.
        assert_eq!(g.rate_in, 2010.0);
        assert_eq!(g.rate_out, 105.0);
        assert_eq!(g.bytes_in, 5020);
        assert_eq!(g.name.as_deref(), Some("dns.google"));
        assert_eq!(g.app, Some("tls"));
        let l = &rep.endpoints[1];
        assert_eq!(l.addr.to_string(), "10.0.0.5");
        assert_eq!(l.scope, Scope::Internal);
        // The initiator sent 100 bytes more: this host received them.
        assert_eq!((l.rate_in, l.rate_out), (50.0, 0.0));
        let f2 = rep.flows.iter().find(|f| f.id == 2).unwrap();
        assert!(!f2.outbound);
        assert_eq!(f2.local_ip.to_string(), "192.0.2.1");
        assert_eq!(f2.local_port, Some(443));
        assert_eq!(f2.bytes_in, 150);
        assert_eq!(rep.rate_in, 2060.0);
        assert_eq!(rep.ifaces.len(), 1);
        assert_eq!(rep.ifaces[0].name.as_deref(), Some("eth0"));
        assert_eq!(rep.ifaces[0].rate_out, 105.0);
    }

    #[test]
    fn bounded_endpoints_and_flows() {
        let mut t = RadarTracker::new(Vec::new());
        let recs: Vec<FlowRecord> = (0..(MAX_ENDPOINTS as u64 + 100) * 6)
            .map(|i| {
                let ep = i % (MAX_ENDPOINTS as u64 + 100);
                let dst = format!("203.0.{}.{}", ep / 250, ep % 250);
                rec(i, "10.0.0.1", &dst, i, i, None)
            })
            .collect();
        t.update(0, &recs, Instant::now());
        let rep = t.report([(0, recs.as_slice())].into_iter(), &[]);
        assert_eq!(rep.endpoints.len(), MAX_ENDPOINTS);
        assert_eq!(rep.endpoints_total, MAX_ENDPOINTS as u64 + 100);
        assert_eq!(rep.flows.len(), MAX_ENDPOINTS * MAX_FLOWS_PER_ENDPOINT);
        // Busiest first: the endpoints with the largest flows survive the cut.
        let w = rep
            .endpoints
            .windows(2)
            .all(|w| w[0].bytes_in + w[0].bytes_out >= w[1].bytes_in + w[1].bytes_out);
        assert!(w);
    }

    /// The briefs carry what enrichment learnt: process, tracker, the remote end's country and
    /// AS (the remote end is the responder of an outbound flow, the initiator otherwise).
    #[test]
    fn briefs_carry_enrichment() {
        use netmon_engine::enrich::Ends;
        use netmon_enrich::geo::{Asn, Geo};
        let mut r = rec(
            1,
            "10.0.0.1",
            "203.0.113.9",
            100,
            200,
            Some("ads.example.com"),
        );
        r.enrich.geo = Some(Ends {
            src: None,
            dst: Some(Geo {
                country: Some("SE".into()),
                ..Geo::default()
            }),
        });
        r.enrich.asn = Some(Ends {
            src: None,
            dst: Some(Asn {
                number: 64496,
                org: Some("Example".into()),
            }),
        });
        r.enrich.tracker = Some(netmon_enrich::trackers::TrackerMatch {
            domain: "example.com".into(),
            category: netmon_enrich::trackers::Category::Ads,
            list: "ads.txt".into(),
        });
        let b = brief(&r, true, (0.0, 0.0));
        assert_eq!(b.geo.as_deref(), Some("SE · AS64496 Example"));
        assert_eq!(b.tracker.as_deref(), Some("example.com (ads)"));
        assert_eq!(b.process, None);
        // Seen inbound, the remote end is the initiator: nothing known there.
        assert_eq!(brief(&r, false, (0.0, 0.0)).geo, None);
    }
}
