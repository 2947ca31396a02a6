//! The `endpoints` live event: what the dashboard's radar draws, once a second.
//!
//! The daemon builds an [`EndpointsReport`] from its shards' exports of their busiest active
//! flows (the difference of each flow's byte counters between two exports gives its current
//! rate) and publishes it as [`LiveEvent::Endpoints`](crate::LiveEvent::Endpoints). Everything
//! in it is bounded ([`MAX_ENDPOINTS`], [`MAX_FLOWS_PER_ENDPOINT`]), so a client never receives
//! the whole flow table.
//!
//! "In" and "out" are seen from this host: for each flow one side is the *remote* endpoint
//! (the responder, unless the responder is one of this host's own addresses, then the
//! initiator); "out" is what the other (local) side sent to it.

use core::net::IpAddr;

use netmon_engine::record::{ProtoName, Rfc3339};
use serde::Serialize;

/// At most this many endpoints in one report (the busiest).
pub const MAX_ENDPOINTS: usize = 500;
/// At most this many flows per endpoint in [`EndpointsReport::flows`] (its busiest).
pub const MAX_FLOWS_PER_ENDPOINT: usize = 4;

/// Where an address lies, as seen from this host: the radar's ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// This host: loopback, unspecified, or one of its own interface addresses.
    Local,
    /// Private and link-scoped networks: RFC 1918, CGNAT `100.64.0.0/10`, link-local
    /// (`169.254.0.0/16`, `fe80::/10`), IPv6 unique local `fc00::/7`, multicast, broadcast.
    Internal,
    /// Everything else.
    External,
}

impl Scope {
    /// The scope of `ip`, given this host's own addresses.
    pub fn of(ip: IpAddr, own: &[IpAddr]) -> Scope {
        use netmon_enrich::scope::{Scope as S, scope_of};
        if own.contains(&ip.to_canonical()) {
            return Scope::Local;
        }
        match scope_of(ip) {
            S::Loopback | S::Unspecified => Scope::Local,
            S::Private | S::Cgnat | S::LinkLocal | S::Multicast => Scope::Internal,
            S::Public | S::Documentation | S::Reserved => Scope::External,
        }
    }
}

/// One report: the busiest remote endpoints of the last second and their busiest flows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EndpointsReport {
    /// Wall-clock milliseconds the rates were measured over (about 1000).
    pub interval_ms: u64,
    /// Active flows in the shards' exports this report was built from.
    pub active_flows: u64,
    /// Remote endpoints among them (before the cut to [`MAX_ENDPOINTS`]).
    pub endpoints_total: u64,
    /// Bytes per second received by this host (all exported flows).
    pub rate_in: f64,
    /// Bytes per second sent by this host.
    pub rate_out: f64,
    /// The same per capture interface.
    pub ifaces: Vec<IfaceRate>,
    /// The busiest remote endpoints (by current rate, then bytes), at most [`MAX_ENDPOINTS`].
    pub endpoints: Vec<Endpoint>,
    /// The busiest flows of each listed endpoint, at most [`MAX_FLOWS_PER_ENDPOINT`] each.
    pub flows: Vec<FlowBrief>,
}

/// Current rates of one capture interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IfaceRate {
    /// Interface index, as in flow records' `iface`.
    pub iface: u32,
    /// Its name, when known.
    pub name: Option<String>,
    /// Bytes per second received.
    pub rate_in: f64,
    /// Bytes per second sent.
    pub rate_out: f64,
}

/// One remote endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Endpoint {
    /// The remote address.
    pub addr: IpAddr,
    /// Its ring.
    pub scope: Scope,
    /// Bytes per second it sent to this host over the last interval.
    pub rate_in: f64,
    /// Bytes per second this host sent to it.
    pub rate_out: f64,
    /// Bytes it sent, over its active flows' lifetimes.
    pub bytes_in: u64,
    /// Bytes this host sent to it.
    pub bytes_out: u64,
    /// Its active flows.
    pub flows: u64,
    /// The application of its busiest flow that has one (`tls`, `dns`, ...).
    pub app: Option<&'static str>,
    /// The name (SNI, HTTP host, DNS name, learnt domain) of its busiest named flow.
    pub name: Option<String>,
}

/// A short summary of one active flow, oriented local → remote.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowBrief {
    /// Flow id (as in flow records).
    pub id: u64,
    /// `tcp`, `udp`, ...
    pub proto: ProtoName,
    /// This host's side.
    pub local_ip: IpAddr,
    /// Its port.
    pub local_port: Option<u16>,
    /// The remote side (an [`Endpoint::addr`]).
    pub remote_ip: IpAddr,
    /// Its port.
    pub remote_port: Option<u16>,
    /// Whether this host's side opened the flow.
    pub outbound: bool,
    /// Application protocol.
    pub app: Option<&'static str>,
    /// SNI, HTTP host, DNS name or learnt domain (escaped like every string from packets).
    pub name: Option<String>,
    /// Bytes received from the remote side.
    pub bytes_in: u64,
    /// Bytes sent to it.
    pub bytes_out: u64,
    /// Bytes per second received over the last interval.
    pub rate_in: f64,
    /// Bytes per second sent.
    pub rate_out: f64,
    /// First packet's time (the packets' clock).
    pub first_seen: Rfc3339,
    /// Last packet minus first packet, nanoseconds.
    pub duration_ns: i64,
    /// Flow state (`established`, ...).
    pub state: &'static str,
    /// Capture interface index.
    pub iface: u32,
    /// The local process owning the socket, `name (pid)`, when attribution knows it.
    pub process: Option<String>,
    /// The tracker list entry the flow's names fall under, `domain (category)`.
    pub tracker: Option<String>,
    /// The remote end's country (ISO code) and AS organisation, when GeoIP/ASN know them.
    pub geo: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let own: [IpAddr; 1] = ["192.0.2.7".parse().unwrap()];
        let s = |a: &str| Scope::of(a.parse().unwrap(), &own);
        for a in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "192.0.2.7",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(s(a), Scope::Local, "{a}");
        }
        for a in [
            "10.1.2.3",
            "172.16.0.8",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.1.1",
            "224.0.0.251",
            "255.255.255.255",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::fb",
        ] {
            assert_eq!(s(a), Scope::Internal, "{a}");
        }
        for a in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "100.63.255.255",
            "192.0.2.8",
            "2001:db8::1",
            "2606:4700::1111",
        ] {
            assert_eq!(s(a), Scope::External, "{a}");
        }
    }
}
