//! Flow ↔ DNS correlation through the engine: a flow's `domain` is the name its responder's
//! address was resolved from, whether the answer came before the flow started or while it ran.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use netmon_capture::{LinkType, PacketMeta};
use netmon_engine::{Engine, EngineConfig, EngineSink, FlowRecord};
use netmon_flow::{EndReason, Flow};
use netmon_types::Timestamp;

#[derive(Default)]
struct Records(Vec<FlowRecord>);

impl<E: netmon_engine::RecordExt> EngineSink<E> for Records {
    fn flow_ended(&mut self, flow: &Flow<E>, iface_name: Option<&str>) {
        self.0.push(FlowRecord::new(flow, iface_name));
    }
}

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const RESOLVER: [u8; 4] = [192, 0, 2, 53];

/// A DNS response for `name` A IN with one address.
fn dns_response(id: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend([0, 0, 1, 0, 1]);
    m.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    m.extend(addr);
    m
}

struct Feed {
    engine: Engine<netmon_classify::classifier::FlowClass>,
    out: Records,
    ts: i64,
}

impl Feed {
    fn send(&mut self, frame: Vec<u8>) {
        self.ts += 1_000_000;
        let meta = PacketMeta {
            direction: netmon_capture::Direction::Unknown,
            ts: Timestamp(self.ts),
            iface: 0,
            iface_name: None,
            link_type: LinkType::RAW,
            cap_len: frame.len() as u32,
            orig_len: frame.len() as u32,
        };
        self.engine.process(&meta, &frame, &mut self.out);
    }

    fn answer(&mut self, id: u16, name: &str, addr: [u8; 4]) {
        let b = PacketBuilder::ipv4(RESOLVER, CLIENT, 64).udp(53, 40000 + id);
        let payload = dns_response(id, name, addr);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        self.send(f);
    }

    fn tcp(&mut self, server: [u8; 4], port: u16, syn: bool) {
        let b = PacketBuilder::ipv4(CLIENT, server, 64).tcp(port, 443, 1, 64240);
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut f = Vec::new();
        b.write(&mut f, &[]).unwrap();
        self.send(f);
    }
}

#[test]
fn domain_from_answers_before_and_during_the_flow() {
    let mut feed = Feed {
        engine: Engine::classifying(EngineConfig::default()).unwrap(),
        out: Records::default(),
        ts: 1_700_000_000_000_000_000,
    };
    // Resolved before the flow starts.
    feed.answer(1, "before.example", [198, 51, 100, 1]);
    feed.tcp([198, 51, 100, 1], 50001, true);
    // Started before its address is resolved (the capture missed the first answer, or the
    // client re-resolved while connected): learnt at the flow's end.
    feed.tcp([198, 51, 100, 2], 50002, true);
    feed.answer(2, "during.example", [198, 51, 100, 2]);
    feed.tcp([198, 51, 100, 2], 50002, false);
    // Never resolved, while other answers keep coming.
    feed.tcp([198, 51, 100, 3], 50003, true);
    feed.answer(3, "other.example", [198, 51, 100, 4]);
    feed.engine.finish(EndReason::EndOfCapture, &mut feed.out);

    let domain = |ip: [u8; 4]| {
        let ip = std::net::IpAddr::V4(Ipv4Addr::from(ip));
        let r = feed
            .out
            .0
            .iter()
            .find(|r| r.dst_ip == ip)
            .expect("the flow");
        r.domain.clone()
    };
    assert_eq!(domain([198, 51, 100, 1]).as_deref(), Some("before.example"));
    assert_eq!(domain([198, 51, 100, 2]).as_deref(), Some("during.example"));
    assert_eq!(domain([198, 51, 100, 3]), None);
}

/// A live source's idle tick: `Engine::advance` ends flows idle past their timeout without a
/// packet, and never moves the clock backwards.
#[test]
fn advance_ends_idle_flows_without_a_packet() {
    let mut feed = Feed {
        engine: Engine::classifying(EngineConfig::default()).unwrap(),
        out: Records::default(),
        ts: 1_700_000_000_000_000_000,
    };
    feed.answer(1, "example.org", [192, 0, 2, 80]);
    let t = Timestamp(feed.ts);
    feed.engine
        .advance(Timestamp(t.0 + 59_000_000_000), &mut feed.out);
    assert!(feed.out.0.is_empty(), "ended before the UDP timeout");
    feed.engine
        .advance(Timestamp(t.0 - 1_000_000_000), &mut feed.out);
    assert!(feed.out.0.is_empty());
    feed.engine
        .advance(Timestamp(t.0 + 61_000_000_000), &mut feed.out);
    assert_eq!(feed.out.0.len(), 1);
    assert_eq!(feed.out.0[0].end_reason, Some("idle_timeout"));
    assert_eq!(feed.out.0[0].dst_port, Some(53));
}
