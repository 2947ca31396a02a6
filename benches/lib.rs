//! Shared helpers for netmon benchmarks: finding and generating the synthetic workload, loading
//! a capture into memory, and hand-crafted frames of each link type.
//!
//! Benchmark inputs are generated, never committed: [`workload`] runs
//! `shared/tools/gen_pcap.py` once into `target/bench-data/` and reuses the file afterwards.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use netmon_capture::{CaptureError, CaptureSource, Next, PacketMeta};
use netmon_flow::PacketInfo;
use netmon_packet::LinkType;
use netmon_types::Timestamp;

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The shared material directory (`shared/`, holding `tools/gen_pcap.py` and `corpus/`):
/// `$NETMON_SHARED` if set, else the first `shared/` with `tools/gen_pcap.py` found walking up
/// from this package's directory (the main checkout has it at `../shared`, a worktree further
/// up).
pub fn shared_dir() -> Option<PathBuf> {
    netmon_testkit::shared_dir(env!("CARGO_MANIFEST_DIR"))
}

/// Path of `gen_pcap.py`. Panics with a clear message when it cannot be found: the benchmarks
/// cannot run without their workload.
pub fn gen_pcap_script() -> PathBuf {
    let script = shared_dir().map(|d| d.join("tools").join("gen_pcap.py"));
    match (script, std::env::var_os("NETMON_SHARED")) {
        (Some(s), _) if s.is_file() => s,
        (_, Some(env)) => panic!(
            "NETMON_SHARED={} has no tools/gen_pcap.py: point it at the shared/ directory that \
             holds tools/gen_pcap.py (the benchmarks generate their workload with it)",
            PathBuf::from(env).display()
        ),
        (_, None) => panic!(
            "cannot find shared/tools/gen_pcap.py in any directory above {}: set NETMON_SHARED \
             to the shared/ directory that holds tools/gen_pcap.py (the benchmarks generate \
             their workload with it)",
            env!("CARGO_MANIFEST_DIR"),
        ),
    }
}

/// Where generated benchmark inputs live: `$CARGO_TARGET_DIR/bench-data` if that variable is
/// set, else `<workspace>/target/bench-data`.
pub fn bench_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("bench-data")
}

/// A `gen_pcap.py` workload of `packets` packets from `seed` (the generator's default flow
/// count, `packets / 25`), at `target/bench-data/<name>.pcap`. Generated on first use (≈1 s per
/// 100 k packets), reused afterwards; delete the file to regenerate it. Panics if it cannot be
/// generated.
pub fn workload(name: &str, packets: u32, seed: u32) -> PathBuf {
    generate(name, packets, None, seed)
}

/// Like [`workload`] with exactly `flows` distinct IP flows (`gen_pcap.py -f flows`).
pub fn workload_with_flows(name: &str, packets: u32, flows: u32, seed: u32) -> PathBuf {
    generate(name, packets, Some(flows), seed)
}

fn generate(name: &str, packets: u32, flows: Option<u32>, seed: u32) -> PathBuf {
    let dir = bench_data_dir();
    let path = dir.join(format!("{name}.pcap"));
    if path.is_file() {
        return path;
    }
    let script = gen_pcap_script();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    // Generate under a temporary name and rename, so an interrupted run leaves no partial file.
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let flows_arg = flows.map(|f| f.to_string());
    eprintln!(
        "generating {} ({packets} packets, {} flows, seed {seed}) with {}",
        path.display(),
        flows_arg.as_deref().unwrap_or("default"),
        script.display()
    );
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg("-o").arg(&tmp).args([
        "-n",
        &packets.to_string(),
        "--seed",
        &seed.to_string(),
        "-q",
    ]);
    if let Some(f) = &flows_arg {
        cmd.args(["-f", f]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{} failed ({s})", script.display()),
        Err(e) => panic!("cannot run python3 {}: {e}", script.display()),
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        panic!("cannot rename {} to {}: {e}", tmp.display(), path.display());
    }
    path
}

/// One frame of a [`Frames`] set.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture timestamp.
    pub ts: Timestamp,
    /// How to parse the frame.
    pub link_type: LinkType,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: usize,
}

#[derive(Clone, Copy, Debug)]
struct FrameLoc {
    ts: Timestamp,
    link_type: LinkType,
    start: usize,
    end: usize,
    orig_len: usize,
}

/// Every frame of a capture file, loaded into one contiguous buffer (as a capture source's
/// read buffer would hold them), so benchmarks measure parsing, not I/O.
#[derive(Debug, Default)]
pub struct Frames {
    buf: Vec<u8>,
    locs: Vec<FrameLoc>,
}

impl Frames {
    /// Reads all frames of `path` with `netmon_capture::open_file`.
    pub fn load(path: impl AsRef<Path>) -> Result<Frames, CaptureError> {
        let mut src = netmon_capture::open_file(path)?;
        let mut frames = Frames::default();
        loop {
            match src.next_packet()? {
                Next::Packet(p) => frames.push_at(
                    p.meta.ts,
                    p.meta.link_type,
                    p.data,
                    p.meta.orig_len as usize,
                ),
                Next::Timeout => {}
                Next::End => break,
            }
        }
        Ok(frames)
    }

    /// Appends a frame with timestamp 0.
    pub fn push(&mut self, link_type: LinkType, data: &[u8], orig_len: usize) {
        self.push_at(Timestamp(0), link_type, data, orig_len);
    }

    /// Appends a frame captured at `ts`.
    pub fn push_at(&mut self, ts: Timestamp, link_type: LinkType, data: &[u8], orig_len: usize) {
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        self.locs.push(FrameLoc {
            ts,
            link_type,
            start,
            end: self.buf.len(),
            orig_len,
        });
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }

    /// Sum of the captured lengths.
    pub fn captured_bytes(&self) -> u64 {
        self.buf.len() as u64
    }

    /// The frames, in file order.
    pub fn iter(&self) -> impl Iterator<Item = Frame<'_>> + '_ {
        self.locs.iter().map(|l| Frame {
            ts: l.ts,
            link_type: l.link_type,
            data: self.buf.get(l.start..l.end).unwrap_or_default(),
            orig_len: l.orig_len,
        })
    }
}

impl<'a> Frame<'a> {
    /// The frame's metadata as a capture source would report it (interface 0, no name), for
    /// `Engine::process`.
    pub fn meta(&self) -> PacketMeta<'a> {
        PacketMeta {
            direction: netmon_capture::Direction::Unknown,
            ts: self.ts,
            iface: 0,
            iface_name: None,
            link_type: self.link_type,
            cap_len: u32::try_from(self.data.len()).unwrap_or(u32::MAX),
            orig_len: u32::try_from(self.orig_len).unwrap_or(u32::MAX),
        }
    }

    /// The per-packet facts `FlowTable::observe` needs beside the parsed packet.
    pub fn info(&self) -> PacketInfo {
        PacketInfo {
            ts: self.ts,
            iface: 0,
            wire_len: u32::try_from(self.orig_len).unwrap_or(u32::MAX),
        }
    }
}

/// Hand-built frames with valid lengths and checksums, one per link type the micro benchmarks
/// cover. Addresses are from the documentation ranges (RFC 5737, RFC 3849).
pub mod craft {
    use netmon_packet::LinkType;
    use netmon_packet::checksum::{Sum, pseudo_ipv4, pseudo_ipv6};

    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const SRC4: [u8; 4] = [192, 0, 2, 1];
    const DST4: [u8; 4] = [198, 51, 100, 2];
    const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const HTTP: &[u8] =
        b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench/1.0\r\n\r\n";
    /// A DNS query for `www.example.com` (A, recursion desired).
    const DNS: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
        \x03www\x07example\x03com\x00\x00\x01\x00\x01";

    /// A named frame and its link type.
    #[derive(Clone, Debug)]
    pub struct Crafted {
        /// Benchmark name, e.g. `eth_ipv4_tcp`.
        pub name: &'static str,
        /// Link type to parse it as.
        pub link_type: LinkType,
        /// The frame.
        pub frame: Vec<u8>,
    }

    fn put_checksum(segment: &mut [u8], at: usize, mut sum: Sum, zero_means_none: bool) {
        sum.add_bytes(segment);
        let mut c = sum.checksum();
        if zero_means_none && c == 0 {
            c = 0xffff; // UDP sends an all-zero result as all ones (RFC 768)
        }
        if let Some(f) = segment.get_mut(at..at + 2) {
            f.copy_from_slice(&c.to_be_bytes());
        }
    }

    /// TCP segment (ACK|PSH, timestamps option), checksummed against `pseudo`.
    fn tcp(pseudo: impl Fn(u16) -> Sum, payload: &[u8]) -> Vec<u8> {
        let mut s = Vec::with_capacity(32 + payload.len());
        s.extend_from_slice(&49152u16.to_be_bytes());
        s.extend_from_slice(&80u16.to_be_bytes());
        s.extend_from_slice(&0x1000_0001u32.to_be_bytes()); // seq
        s.extend_from_slice(&0x2000_0001u32.to_be_bytes()); // ack
        s.extend_from_slice(&[0x80, 0x18]); // data offset 8 words, ACK|PSH
        s.extend_from_slice(&502u16.to_be_bytes()); // window
        s.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        s.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0]); // NOP NOP TS
        s.extend_from_slice(payload);
        let len = s.len() as u16;
        put_checksum(&mut s, 16, pseudo(len), false);
        s
    }

    /// UDP datagram 53000 -> 53, checksummed against `pseudo`.
    fn udp(pseudo: impl Fn(u16) -> Sum, payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut s = Vec::with_capacity(usize::from(len));
        s.extend_from_slice(&53000u16.to_be_bytes());
        s.extend_from_slice(&53u16.to_be_bytes());
        s.extend_from_slice(&len.to_be_bytes());
        s.extend_from_slice(&[0, 0]);
        s.extend_from_slice(payload);
        put_checksum(&mut s, 6, pseudo(len), true);
        s
    }

    fn ipv4(protocol: u8, l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0x1c, 0x46, 0x40, 0]); // id, DF
        h.extend_from_slice(&[64, protocol, 0, 0]);
        h.extend_from_slice(&SRC4);
        h.extend_from_slice(&DST4);
        put_checksum(&mut h, 10, Sum::new(), false);
        h.extend_from_slice(l4);
        h
    }

    fn ipv6(next_header: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0x0a, 0xbc, 0xde];
        h.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        h.extend_from_slice(&[next_header, 64]);
        h.extend_from_slice(&SRC6);
        h.extend_from_slice(&DST6);
        h.extend_from_slice(l4);
        h
    }

    fn ethernet(vlans: &[u16], ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
        f.extend_from_slice(&MAC_B);
        f.extend_from_slice(&MAC_A);
        for vid in vlans {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn tcp4(payload: &[u8]) -> Vec<u8> {
        ipv4(6, &tcp(|len| pseudo_ipv4(SRC4, DST4, 6, len), payload))
    }

    fn udp4(payload: &[u8]) -> Vec<u8> {
        ipv4(17, &udp(|len| pseudo_ipv4(SRC4, DST4, 17, len), payload))
    }

    fn udp6(payload: &[u8]) -> Vec<u8> {
        ipv6(
            17,
            &udp(|len| pseudo_ipv6(SRC6, DST6, u32::from(len), 17), payload),
        )
    }

    /// Ethernet / IPv4 / TCP carrying an HTTP request.
    pub fn eth_ipv4_tcp() -> Vec<u8> {
        ethernet(&[], 0x0800, &tcp4(HTTP))
    }

    /// Ethernet / 802.1Q VLAN 100 / IPv6 / UDP carrying a DNS query.
    pub fn vlan_ipv6_udp() -> Vec<u8> {
        ethernet(&[100], 0x86dd, &udp6(DNS))
    }

    /// Linux cooked capture v2 / IPv4 / TCP carrying an HTTP request.
    pub fn sll2_ipv4_tcp() -> Vec<u8> {
        // protocol, reserved, ifindex, ARPHRD_ETHER, PACKET_OUTGOING, address length, address.
        let mut f = Vec::new();
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&2u32.to_be_bytes());
        f.extend_from_slice(&1u16.to_be_bytes());
        f.extend_from_slice(&[4, 6]);
        f.extend_from_slice(&MAC_A);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&tcp4(HTTP));
        f
    }

    /// Raw IP (`LINKTYPE_RAW`) / IPv4 / UDP carrying a DNS query.
    pub fn raw_ipv4_udp() -> Vec<u8> {
        udp4(DNS)
    }

    /// Ethernet / IPv4 / UDP 4789 / VXLAN (VNI 42) / Ethernet / IPv4 / TCP: a tunnel for
    /// `Packet::inner`.
    pub fn eth_vxlan_tcp() -> Vec<u8> {
        let inner = eth_ipv4_tcp();
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vxlan.extend_from_slice(&inner);
        let mut outer = udp(|len| pseudo_ipv4(SRC4, DST4, 17, len), &vxlan);
        // Destination port 4789 (VXLAN): rewrite the port and redo the checksum.
        outer[2..4].copy_from_slice(&4789u16.to_be_bytes());
        outer[6..8].copy_from_slice(&[0, 0]);
        let len = outer.len() as u16;
        put_checksum(&mut outer, 6, pseudo_ipv4(SRC4, DST4, 17, len), true);
        ethernet(&[], 0x0800, &ipv4(17, &outer))
    }

    /// The micro-benchmark frames, one per link-layer shape.
    pub fn all() -> Vec<Crafted> {
        vec![
            Crafted {
                name: "eth_ipv4_tcp",
                link_type: LinkType::ETHERNET,
                frame: eth_ipv4_tcp(),
            },
            Crafted {
                name: "vlan_ipv6_udp",
                link_type: LinkType::ETHERNET,
                frame: vlan_ipv6_udp(),
            },
            Crafted {
                name: "sll2_ipv4_tcp",
                link_type: LinkType::LINUX_SLL2,
                frame: sll2_ipv4_tcp(),
            },
            Crafted {
                name: "raw_ipv4_udp",
                link_type: LinkType::RAW,
                frame: raw_ipv4_udp(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use netmon_packet::{ChecksumStatus, Net, Packet, Transport, TunnelKind};
    use netmon_types::Timestamp;

    use super::craft;

    #[test]
    fn crafted_frames_parse_cleanly_with_good_checksums() {
        for c in craft::all() {
            let p = Packet::parse(c.link_type, &c.frame);
            assert_eq!(p.error, None, "{}", c.name);
            let sums = p.checksums();
            assert_eq!(sums.first_bad(), None, "{}: {sums:?}", c.name);
            if matches!(p.net, Net::Ipv4(_)) {
                assert_eq!(sums.ipv4, Some(ChecksumStatus::Good), "{}", c.name);
            }
            let (_, status) = sums
                .transport
                .unwrap_or_else(|| panic!("{}: no L4", c.name));
            assert_eq!(status, ChecksumStatus::Good, "{}", c.name);
            assert!(!p.payload.is_empty(), "{}", c.name);
        }
    }

    #[test]
    fn crafted_frames_have_the_layers_their_names_say() {
        let (vf, sf) = (craft::vlan_ipv6_udp(), craft::sll2_ipv4_tcp());
        let v = Packet::parse(netmon_packet::LinkType::ETHERNET, &vf);
        assert_eq!(v.vlans.len(), 1);
        assert!(matches!(v.net, Net::Ipv6(_)));
        assert!(matches!(v.transport, Transport::Udp(_)));
        assert_eq!(v.ports(), Some((53000, 53)));
        let s = Packet::parse(netmon_packet::LinkType::LINUX_SLL2, &sf);
        assert!(matches!(s.transport, Transport::Tcp(_)));
        assert_eq!(
            s.payload,
            b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench/1.0\r\n\r\n"
        );
    }

    #[test]
    fn vxlan_frame_decapsulates() {
        let f = craft::eth_vxlan_tcp();
        let p = Packet::parse(netmon_packet::LinkType::ETHERNET, &f);
        assert_eq!(p.error, None);
        assert_eq!(p.checksums().first_bad(), None);
        let t = p.tunnel.expect("a VXLAN tunnel");
        assert_eq!(t.kind, TunnelKind::Vxlan { vni: 42 });
        let inner = p.inner().expect("inner packet");
        assert_eq!(inner.error, None);
        assert_eq!(inner.ports(), Some((49152, 80)));
        assert_eq!(inner.checksums().first_bad(), None);
    }

    #[test]
    fn frames_round_trip_through_the_buffer() {
        let mut fs = super::Frames::default();
        assert!(fs.is_empty());
        fs.push(netmon_packet::LinkType::RAW, b"abc", 10);
        fs.push(netmon_packet::LinkType::ETHERNET, b"", 0);
        fs.push_at(Timestamp(7), netmon_packet::LinkType::IPV4, b"de", 2);
        let got: Vec<_> = fs
            .iter()
            .map(|f| (f.ts, f.link_type, f.data, f.orig_len))
            .collect();
        assert_eq!(
            got,
            [
                (Timestamp(0), netmon_packet::LinkType::RAW, &b"abc"[..], 10),
                (Timestamp(0), netmon_packet::LinkType::ETHERNET, &b""[..], 0),
                (Timestamp(7), netmon_packet::LinkType::IPV4, &b"de"[..], 2),
            ]
        );
        assert_eq!((fs.len(), fs.captured_bytes()), (3, 5));
        let last = fs.iter().last().expect("three frames");
        let meta = last.meta();
        assert_eq!(
            (
                meta.ts,
                meta.iface,
                meta.link_type,
                meta.cap_len,
                meta.orig_len
            ),
            (Timestamp(7), 0, netmon_packet::LinkType::IPV4, 2, 2)
        );
        assert_eq!(last.info().wire_len, 2);
    }
}

/// Synthetic flow rows for the `store` benchmark: deterministic, with the mix of fields a
/// classified capture gives.
pub mod store_rows {
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use netmon_store::{DnsRow, FlowRow, HttpRow, TcpFlags};
    use netmon_types::Timestamp;

    /// SplitMix64 of `x`: a cheap deterministic hash.
    fn mix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    const SITES: [&str; 8] = [
        "www.example.com",
        "api.example.net",
        "cdn.static-host.org",
        "mail.provider.de",
        "updates.vendor.io",
        "video.stream.tv",
        "time.ntp.pool.org",
        "tracker.ads.example",
    ];

    /// Flow `id` of run `run_id`: 45 % TLS over TCP (SNI, ALPN, JA4, TCP counters, DNS-learnt
    /// domain), 30 % DNS over UDP (one question with two answers), 10 % HTTP (one request),
    /// 15 % other UDP; 4 096 client addresses (one in eight IPv6), 512 servers; first seen
    /// `id` milliseconds after 2024-01-01, lasting up to 60 s.
    pub fn flow(run_id: u64, id: u64) -> FlowRow {
        let h = mix(id);
        let kind = h % 100;
        let client = (h >> 8) % 4096;
        let server = (h >> 20) % 512;
        let site = SITES[((h >> 32) % 8) as usize];
        let v6 = client % 8 == 0;
        let (src_ip, dst_ip) = if v6 {
            (
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, client as u16)),
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0xffff,
                    0,
                    0,
                    0,
                    0,
                    server as u16,
                )),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::new(10, 1, (client >> 8) as u8, client as u8)),
                IpAddr::V4(Ipv4Addr::new(198, 51, (server >> 8) as u8, server as u8)),
            )
        };
        let first = Timestamp::from_nanos(1_704_067_200_000_000_000 + id as i64 * 1_000_000);
        let dur = ((h >> 40) % 60_000) as i64 * 1_000_000;
        let pk = 2 + (h >> 44) % 40;
        let mut r = FlowRow {
            run_id,
            id,
            proto: 17,
            src_ip,
            src_port: Some(32768 + ((h >> 16) % 28000) as u16),
            dst_ip,
            dst_port: Some(53),
            packets_c2s: pk,
            bytes_c2s: pk * 120,
            packets_s2c: pk,
            bytes_s2c: pk * 900,
            payload_bytes_c2s: pk * 66,
            payload_bytes_s2c: pk * 846,
            first_seen: first,
            last_seen: Timestamp::from_nanos(first.0 + dur),
            duration_ns: dur,
            state: "none".into(),
            end_reason: Some("idle_timeout".into()),
            ..FlowRow::default()
        };
        let tcp = TcpFlags {
            syn: 1,
            fin: 1,
            psh: (pk / 2) as u32,
            ..TcpFlags::default()
        };
        match kind {
            0..45 => {
                r.proto = 6;
                r.dst_port = Some(443);
                r.state = "closed".into();
                r.end_reason = Some("fin".into());
                r.tcp_c2s = Some(tcp);
                r.tcp_s2c = Some(tcp);
                r.app = Some("tls".into());
                r.sni = Some(site.into());
                r.alpn = vec!["h2".into(), "http/1.1".into()];
                r.tls_version = Some("1.3".into());
                r.ja4 = Some("t13d1516h2_8daaf6152771_02713d6af862".into());
                r.domain = Some(site.into());
            }
            45..75 => {
                r.app = Some("dns".into());
                r.dns = vec![DnsRow {
                    query: site.into(),
                    qtype: "A".into(),
                    rcode: Some("NOERROR".into()),
                    answers: vec!["93.184.216.34".into(), "93.184.216.35".into()],
                    additional: Vec::new(),
                }];
            }
            75..85 => {
                r.proto = 6;
                r.dst_port = Some(80);
                r.state = "closed".into();
                r.end_reason = Some("fin".into());
                r.tcp_c2s = Some(tcp);
                r.tcp_s2c = Some(tcp);
                r.app = Some("http".into());
                r.http = vec![HttpRow {
                    method: Some("GET".into()),
                    host: Some(site.into()),
                    path: Some(format!("/item/{}", h % 10_000)),
                    user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
                    referer: None,
                    status: Some(200),
                }];
            }
            _ => {
                r.dst_port = Some(1024 + ((h >> 50) % 40_000) as u16);
            }
        }
        r
    }
}
