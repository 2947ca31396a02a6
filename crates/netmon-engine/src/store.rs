//! Flow records as rows of the store (`netmon-store`): the engine depends on the store, never the
//! reverse, so the mapping lives here.

use netmon_flow::Side;
use netmon_stats::{AlertEvent, SeriesPoint};
use netmon_store::{AlertRow, DnsRow, FlowRow, HttpRow, KeyRow, SeriesRow, TcpFlags};

use crate::record::{FlowRecord, KeyRecord, TcpCounts};

/// The row of `record` in run `run_id` of the store: every field, strings as the record holds
/// them (already escaped where they came from packets).
pub fn flow_row(run_id: u64, r: &FlowRecord) -> FlowRow {
    FlowRow {
        run_id,
        id: r.id,
        proto: r.proto.0,
        src_ip: r.src_ip,
        src_port: r.src_port,
        dst_ip: r.dst_ip,
        dst_port: r.dst_port,
        icmp_id: r.icmp_id,
        packets_c2s: r.packets_c2s,
        bytes_c2s: r.bytes_c2s,
        packets_s2c: r.packets_s2c,
        bytes_s2c: r.bytes_s2c,
        payload_bytes_c2s: r.payload_bytes_c2s,
        payload_bytes_s2c: r.payload_bytes_s2c,
        first_seen: r.first_seen.0,
        last_seen: r.last_seen.0,
        duration_ns: r.duration_ns,
        state: r.state.to_owned(),
        end_reason: r.end_reason.map(str::to_owned),
        vlan: r.vlan.clone(),
        iface: r.iface,
        iface_name: r.iface_name.clone(),
        tcp_c2s: r.tcp_c2s.as_ref().map(tcp),
        tcp_s2c: r.tcp_s2c.as_ref().map(tcp),
        icmp_errors: r.icmp_errors,
        quoted: r.quoted.as_ref().map(key),
        outer: r.outer.as_ref().map(key),
        app: r.app.map(str::to_owned),
        app_guess: r.app_guess,
        sni: r.sni.clone(),
        alpn: r.alpn.clone(),
        alpn_server: r.alpn_server.clone(),
        tls_version: r.tls_version.clone(),
        ech: r.ech,
        ja4: r.ja4.clone(),
        http: r
            .http
            .iter()
            .map(|h| HttpRow {
                method: h.method.clone(),
                host: h.host.clone(),
                path: h.path.clone(),
                user_agent: h.user_agent.clone(),
                referer: h.referer.clone(),
                status: h.status,
            })
            .collect(),
        dns: r
            .dns
            .iter()
            .map(|d| DnsRow {
                query: d.query.clone(),
                qtype: d.qtype.clone(),
                rcode: d.rcode.map(str::to_owned),
                answers: d.answers.clone(),
                additional: d.additional.clone(),
            })
            .collect(),
        quic_version: r.quic_version.clone(),
        ssh_client: r.ssh_client.clone(),
        ssh_server: r.ssh_server.clone(),
        stun_software: r.stun_software.clone(),
        domain: r.domain.clone(),
    }
}

/// The row of a stats series point in run `run_id`.
pub fn series_row(run_id: u64, p: &SeriesPoint) -> SeriesRow {
    let v = &p.values;
    SeriesRow {
        run_id,
        start: p.start,
        end: p.end,
        iface: p.iface,
        iface_name: p.iface_name.clone(),
        layer: p.layer.to_owned(),
        proto: p.proto.clone(),
        window_secs: v.window_secs,
        covered_secs: v.covered_secs,
        packets: v.packets,
        bytes: v.bytes,
        new_flows: v.new_flows,
        pps: v.pps,
        bps: v.bps,
        new_flows_per_s: v.new_flows_per_s,
        active_flows: v.active_flows,
    }
}

/// The row of an alert event in run `run_id`: a `Closed` event's row replaces the `Raised`
/// one's in the store (same id).
pub fn alert_row(run_id: u64, e: &AlertEvent) -> AlertRow {
    let a = e.alert();
    AlertRow {
        run_id,
        id: a.id,
        ts: a.ts,
        kind: a.kind.name().to_owned(),
        severity: a.severity.name().to_owned(),
        source: a.source.to_string(),
        target: a.target.as_ref().map(ToString::to_string),
        evidence: serde_json::to_string(&a.evidence).unwrap_or_else(|_| "null".into()),
        first_seen: a.first_seen,
        last_seen: a.last_seen,
        closed: matches!(e, AlertEvent::Closed(_)),
    }
}

fn tcp(t: &TcpCounts) -> TcpFlags {
    TcpFlags {
        syn: t.syn,
        fin: t.fin,
        rst: t.rst,
        psh: t.psh,
        urg: t.urg,
        ece: t.ece,
        cwr: t.cwr,
        retransmits: t.retransmits,
    }
}

fn key(k: &KeyRecord) -> KeyRow {
    let k = &k.0;
    let (a, b) = (k.endpoint(Side::Lo), k.endpoint(Side::Hi));
    let icmp = matches!(k.proto(), 1 | 58);
    let port = |p: u16| (k.has_ports() && !icmp).then_some(p);
    KeyRow {
        proto: k.proto(),
        a_ip: a.ip,
        a_port: port(a.port),
        b_ip: b.ip,
        b_port: port(b.port),
        iface: u32::from(k.iface()),
        vlan: k.vlan().ids().collect(),
    }
}
