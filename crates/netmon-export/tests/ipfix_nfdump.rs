//! IPFIX export checked by a real collector: flow records of a corpus capture sent over UDP to
//! nfcapd (Debian's nfdump), read back with `nfdump -r`, compared with the records themselves
//! (what `netmon flows` prints): every direction with packets is one IPFIX flow with its
//! 5-tuple, packets and bytes. TCP export is checked by decoding the stream in the test (nfcapd
//! takes UDP only).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use netmon_engine::{Engine, EngineConfig, EngineSink, FlowClass, FlowRecord};
use netmon_export::ipfix::{IpfixConfig, IpfixExporter, Transport};

fn records(file: &Path) -> Vec<FlowRecord> {
    struct C(Vec<FlowRecord>);
    impl EngineSink<FlowClass> for C {
        fn flow_ended(&mut self, f: &netmon_flow::Flow<FlowClass>, i: Option<&str>) {
            self.0.push(FlowRecord::new(f, i));
        }
    }
    let mut src = netmon_capture::open_file(file).unwrap();
    let mut c = C(Vec::new());
    Engine::classifying(EngineConfig::default())
        .unwrap()
        .run(&mut src, &mut c);
    c.0
}

type Key = (String, String, u16, u16, u8);

/// What the records say, per uni-directional flow: (packets, bytes), summed over equal keys.
fn expected(recs: &[FlowRecord]) -> BTreeMap<Key, (u64, u64)> {
    let mut m: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    for r in recs {
        let (sp, dp) = (
            r.src_port.or(r.icmp_id).unwrap_or(0),
            r.dst_port.unwrap_or(0),
        );
        let mut add = |s: String, d: String, sp: u16, dp: u16, p: u64, b: u64| {
            if p > 0 {
                let e = m.entry((s, d, sp, dp, r.proto.0)).or_default();
                e.0 += p;
                e.1 += b;
            }
        };
        add(
            r.src_ip.to_string(),
            r.dst_ip.to_string(),
            sp,
            dp,
            r.packets_c2s,
            r.bytes_c2s,
        );
        add(
            r.dst_ip.to_string(),
            r.src_ip.to_string(),
            dp,
            sp,
            r.packets_s2c,
            r.bytes_s2c,
        );
    }
    m
}

fn corpus(name: &str) -> Option<PathBuf> {
    netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")).map(|c| c.dir().join(name))
}

#[test]
fn nfcapd_receives_every_flow_with_its_counts() {
    if !netmon_testkit::nfcapd::available() {
        eprintln!("skipped: nfcapd/nfdump not installed");
        return;
    }
    let mut want = BTreeMap::new();
    let mut recs = Vec::new();
    for name in [
        "ndpi_1kxun.pcap",
        "arkime_tls13.pcap",
        "tcpdump_dns_udp.pcap",
    ] {
        let Some(f) = corpus(name) else { return };
        let r = records(&f);
        for (k, v) in expected(&r) {
            let e: &mut (u64, u64) = want.entry(k).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        recs.extend(r);
    }
    let nfcapd = netmon_testkit::nfcapd::Nfcapd::start("export");
    let port = nfcapd.port;
    let mut cfg = IpfixConfig::udp(format!("127.0.0.1:{port}").parse().unwrap());
    cfg.domain_id = 7;
    let mut ex = IpfixExporter::new(cfg).unwrap();
    // In chunks, paced so that the collector's socket buffer never overflows.
    for chunk in recs.chunks(50) {
        ex.export(chunk, 1_700_000_000).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = ex.stats();
    let directions: u64 = recs
        .iter()
        .map(|r| u64::from(r.packets_c2s > 0) + u64::from(r.packets_s2c > 0))
        .sum();
    assert_eq!(st.records, directions);
    assert_eq!(st.send_errors, 0);
    let text = nfcapd.stop_and_dump("%pr,%sa,%da,%sp,%dp,%pkt,%byt");
    let mut got: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    let mut lines = 0;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        assert_eq!(f.len(), 7, "{l}");
        let proto = match f[0] {
            "TCP" => 6,
            "UDP" => 17,
            "ICMP" => 1,
            "ICMP6" => 58,
            "IGMP" => 2,
            p => p.parse().unwrap_or_else(|_| panic!("protocol {p} in {l}")),
        };
        let key = (
            f[1].to_owned(),
            f[2].to_owned(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            proto,
        );
        let e = got.entry(key).or_default();
        e.0 += f[5].parse::<u64>().unwrap();
        e.1 += f[6].parse::<u64>().unwrap();
        lines += 1;
    }
    assert_eq!(lines as u64, st.records, "{text}");
    // ICMP: nfdump folds type/code into the destination port; compare the rest only.
    let strip = |m: &BTreeMap<Key, (u64, u64)>| -> BTreeMap<Key, (u64, u64)> {
        let mut o: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
        for ((s, d, sp, dp, p), v) in m {
            let k = if *p == 1 || *p == 58 {
                (s.clone(), d.clone(), 0, 0, *p)
            } else {
                (s.clone(), d.clone(), *sp, *dp, *p)
            };
            let e = o.entry(k).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        o
    };
    assert_eq!(strip(&got), strip(&want));
}

/// Over TCP: one stream of messages, templates first, each message's length field right,
/// sequence numbers counting the data records before it.
#[test]
fn tcp_stream_is_well_formed() {
    let Some(f) = corpus("ndpi_1kxun.pcap") else {
        return;
    };
    let recs = records(&f);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let mut cfg = IpfixConfig::udp(addr);
    cfg.transport = Transport::Tcp;
    let mut ex = IpfixExporter::new(cfg).unwrap();
    ex.export(&recs, 1_700_000_000).unwrap();
    let st = ex.stats();
    drop(ex);
    let bytes = reader.join().unwrap();
    let mut at = 0;
    let (mut msgs, mut data_records, mut saw_template) = (0, 0u64, false);
    while at < bytes.len() {
        let h = &bytes[at..at + 16];
        assert_eq!(u16::from_be_bytes([h[0], h[1]]), 10);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        assert_eq!(
            u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as u64,
            data_records
        );
        let mut set = at + 16;
        while set < at + len {
            let id = u16::from_be_bytes([bytes[set], bytes[set + 1]]);
            let slen = usize::from(u16::from_be_bytes([bytes[set + 2], bytes[set + 3]]));
            match id {
                2 => saw_template = true,
                256 => {
                    assert!(saw_template);
                    data_records += ((slen - 4) / 60) as u64;
                    assert_eq!((slen - 4) % 60, 0);
                }
                257 => {
                    assert!(saw_template);
                    data_records += ((slen - 4) / 84) as u64;
                    assert_eq!((slen - 4) % 84, 0);
                }
                other => panic!("set id {other}"),
            }
            set += slen;
        }
        assert_eq!(set, at + len);
        at += len;
        msgs += 1;
    }
    assert_eq!(data_records, st.records);
    assert_eq!(msgs, st.messages);
    assert!(st.records as usize >= recs.len());
}
