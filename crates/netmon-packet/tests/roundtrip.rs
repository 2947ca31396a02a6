//! Property tests for the frame walker.
//!
//! - `roundtrip_*`: frames built with etherparse's builders (random link layer, VLAN stack, IP
//!   version, IPv4 options / IPv6 extension headers, TCP options or UDP, payload, link padding)
//!   parse back with every field equal to what was built, and no error.
//! - `truncated_*`: any prefix of such a frame parses without panicking, reports a truncation
//!   only, and every field that lies inside the prefix still equals what was built.
//! - `arbitrary_*`: random bytes under every link type never panic, and the structural
//!   invariants (payload is the frame's bytes at `payload_offset`, offsets within the frame) hold.
#![allow(unreachable_pub)] // the generators are `pub` inside a private test module

use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, Ipv4Options, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader,
    PacketBuilder, TcpOptionElement,
};
use netmon_packet::{Link, LinkType, Net, Packet, Transport};
use proptest::prelude::*;

mod test_gens {
    use super::*;

    /// How the frame starts.
    #[derive(Clone, Debug)]
    pub enum LinkSpec {
        Ethernet {
            src: [u8; 6],
            dst: [u8; 6],
            vlans: Vec<(u16, u8)>,
            padding: usize,
        },
        Sll {
            packet_type: u16,
            addr: [u8; 6],
        },
        Sll2 {
            ifindex: u32,
            addr: [u8; 6],
        },
        Null {
            big_endian_host: bool,
        },
        Raw,
    }

    #[derive(Clone, Debug)]
    pub enum IpSpec {
        V4 {
            src: [u8; 4],
            dst: [u8; 4],
            ttl: u8,
            id: u16,
            df: bool,
            options_words: usize,
        },
        V6 {
            src: [u8; 16],
            dst: [u8; 16],
            hop_limit: u8,
            hbh: bool,
            dstopts: bool,
            atomic_frag: bool,
        },
    }

    #[derive(Clone, Debug)]
    pub enum L4Spec {
        Tcp {
            src: u16,
            dst: u16,
            seq: u32,
            ack: Option<u32>,
            syn: bool,
            fin: bool,
            psh: bool,
            window: u16,
            mss: Option<u16>,
            ws: Option<u8>,
            ts: Option<(u32, u32)>,
        },
        Udp {
            src: u16,
            dst: u16,
        },
    }

    #[derive(Clone, Debug)]
    pub struct FrameSpec {
        pub link: LinkSpec,
        pub ip: IpSpec,
        pub l4: L4Spec,
        pub payload: Vec<u8>,
    }

    pub fn link() -> impl Strategy<Value = LinkSpec> {
        prop_oneof![
            4 => (any::<[u8; 6]>(), any::<[u8; 6]>(), prop::collection::vec((0u16..4096, 0u8..8), 0..=4), 0usize..24)
                .prop_map(|(src, dst, vlans, padding)| LinkSpec::Ethernet { src, dst, vlans, padding }),
            1 => (0u16..5, any::<[u8; 6]>()).prop_map(|(packet_type, addr)| LinkSpec::Sll { packet_type, addr }),
            1 => (any::<u32>(), any::<[u8; 6]>()).prop_map(|(ifindex, addr)| LinkSpec::Sll2 { ifindex, addr }),
            1 => any::<bool>().prop_map(|big_endian_host| LinkSpec::Null { big_endian_host }),
            1 => Just(LinkSpec::Raw),
        ]
    }

    pub fn ip() -> impl Strategy<Value = IpSpec> {
        prop_oneof![
            (
                any::<[u8; 4]>(),
                any::<[u8; 4]>(),
                1u8..,
                any::<u16>(),
                any::<bool>(),
                0usize..=10
            )
                .prop_map(|(src, dst, ttl, id, df, options_words)| IpSpec::V4 {
                    src,
                    dst,
                    ttl,
                    id,
                    df,
                    options_words
                }),
            (
                any::<[u8; 16]>(),
                any::<[u8; 16]>(),
                any::<u8>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(src, dst, hop_limit, hbh, dstopts, atomic_frag)| {
                    IpSpec::V6 {
                        src,
                        dst,
                        hop_limit,
                        hbh,
                        dstopts,
                        atomic_frag,
                    }
                }),
        ]
    }

    pub fn l4() -> impl Strategy<Value = L4Spec> {
        prop_oneof![
            (
                any::<u16>(),
                any::<u16>(),
                any::<u32>(),
                any::<Option<u32>>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<u16>(),
                any::<Option<u16>>(),
                prop::option::of(0u8..15),
                any::<Option<(u32, u32)>>()
            )
                .prop_map(
                    |(src, dst, seq, ack, syn, fin, psh, window, mss, ws, ts)| L4Spec::Tcp {
                        src,
                        dst,
                        seq,
                        ack,
                        syn,
                        fin,
                        psh,
                        window,
                        mss,
                        ws,
                        ts
                    }
                ),
            (any::<u16>(), any::<u16>()).prop_map(|(src, dst)| L4Spec::Udp { src, dst }),
        ]
    }

    pub fn frame() -> impl Strategy<Value = FrameSpec> {
        (
            link(),
            ip(),
            l4(),
            prop::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(link, ip, l4, payload)| FrameSpec {
                link,
                ip,
                l4,
                payload,
            })
    }

    /// The IP headers etherparse should write (payload length and protocol are filled by the builder).
    fn ip_headers(ip: &IpSpec) -> IpHeaders {
        match ip {
            IpSpec::V4 {
                src,
                dst,
                ttl,
                id,
                df,
                options_words,
            } => {
                let mut h = Ipv4Header::new(0, *ttl, IpNumber::UDP, *src, *dst).unwrap();
                h.identification = *id;
                h.dont_fragment = *df;
                // NOP options (type 1) padded with one End-of-list, a word at a time.
                let mut opts = vec![1u8; options_words * 4];
                if let Some(last) = opts.last_mut() {
                    *last = 0;
                }
                h.options = Ipv4Options::try_from(&opts[..]).unwrap();
                IpHeaders::Ipv4(h, Default::default())
            }
            IpSpec::V6 {
                src,
                dst,
                hop_limit,
                hbh,
                dstopts,
                atomic_frag,
            } => {
                let h = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Default::default(),
                    payload_length: 0,
                    next_header: IpNumber::UDP,
                    hop_limit: *hop_limit,
                    source: *src,
                    destination: *dst,
                };
                let mut exts = etherparse::Ipv6Extensions::default();
                let padn = [1u8, 4, 0, 0, 0, 0];
                if *hbh {
                    exts.hop_by_hop_options =
                        Some(Ipv6RawExtHeader::new_raw(IpNumber::UDP, &padn).unwrap());
                }
                if *dstopts {
                    exts.destination_options =
                        Some(Ipv6RawExtHeader::new_raw(IpNumber::UDP, &padn).unwrap());
                }
                if *atomic_frag {
                    exts.fragment = Some(Ipv6FragmentHeader::new(
                        IpNumber::UDP,
                        Default::default(),
                        false,
                        7,
                    ));
                }
                IpHeaders::Ipv6(h, exts)
            }
        }
    }

    /// Serialises the frame. Returns the bytes and the padding added after the IP packet.
    pub fn build(f: &FrameSpec) -> (LinkType, Vec<u8>) {
        let ip = ip_headers(&f.ip);
        let mut out = Vec::new();
        let (link_type, step) = match &f.link {
            LinkSpec::Ethernet {
                src, dst, vlans, ..
            } => {
                // Write Ethernet + VLAN tags by hand (etherparse's builder stops at two tags), then
                // let the builder write from IP down.
                out.extend_from_slice(dst);
                out.extend_from_slice(src);
                for (i, (vid, pcp)) in vlans.iter().enumerate() {
                    out.extend_from_slice(
                        &(if i == 0 && vlans.len() > 1 {
                            0x88a8u16
                        } else {
                            0x8100
                        })
                        .to_be_bytes(),
                    );
                    out.extend_from_slice(&((u16::from(*pcp) << 13) | vid).to_be_bytes());
                }
                let et: u16 = if matches!(f.ip, IpSpec::V4 { .. }) {
                    0x0800
                } else {
                    0x86dd
                };
                out.extend_from_slice(&et.to_be_bytes());
                (LinkType::ETHERNET, PacketBuilder::ip(ip))
            }
            LinkSpec::Sll { packet_type, addr } => {
                out.extend_from_slice(&packet_type.to_be_bytes());
                out.extend_from_slice(&[0, 1, 0, 6]);
                out.extend_from_slice(addr);
                out.extend_from_slice(&[0, 0]);
                let et: u16 = if matches!(f.ip, IpSpec::V4 { .. }) {
                    0x0800
                } else {
                    0x86dd
                };
                out.extend_from_slice(&et.to_be_bytes());
                (LinkType::LINUX_SLL, PacketBuilder::ip(ip))
            }
            LinkSpec::Sll2 { ifindex, addr } => {
                let et: u16 = if matches!(f.ip, IpSpec::V4 { .. }) {
                    0x0800
                } else {
                    0x86dd
                };
                out.extend_from_slice(&et.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&ifindex.to_be_bytes());
                out.extend_from_slice(&[0, 1, 0, 6]);
                out.extend_from_slice(addr);
                out.extend_from_slice(&[0, 0]);
                (LinkType::LINUX_SLL2, PacketBuilder::ip(ip))
            }
            LinkSpec::Null { big_endian_host } => {
                let fam: u32 = if matches!(f.ip, IpSpec::V4 { .. }) {
                    2
                } else {
                    30
                };
                out.extend_from_slice(&if *big_endian_host {
                    fam.to_be_bytes()
                } else {
                    fam.to_le_bytes()
                });
                (LinkType::NULL, PacketBuilder::ip(ip))
            }
            LinkSpec::Raw => (LinkType::RAW, PacketBuilder::ip(ip)),
        };
        match &f.l4 {
            L4Spec::Tcp {
                src,
                dst,
                seq,
                ack,
                syn,
                fin,
                psh,
                window,
                mss,
                ws,
                ts,
            } => {
                let mut s = step.tcp(*src, *dst, *seq, *window);
                if let Some(a) = ack {
                    s = s.ack(*a);
                }
                if *syn {
                    s = s.syn();
                }
                if *fin {
                    s = s.fin();
                }
                if *psh {
                    s = s.psh();
                }
                let mut opts = Vec::new();
                if let Some(m) = mss {
                    opts.push(TcpOptionElement::MaximumSegmentSize(*m));
                }
                if let Some(w) = ws {
                    opts.push(TcpOptionElement::WindowScale(*w));
                }
                if let Some((a, b)) = ts {
                    opts.push(TcpOptionElement::Timestamp(*a, *b));
                }
                let s = s.options(&opts).unwrap();
                s.write(&mut out, &f.payload).unwrap();
            }
            L4Spec::Udp { src, dst } => step.udp(*src, *dst).write(&mut out, &f.payload).unwrap(),
        }
        if let LinkSpec::Ethernet { padding, .. } = &f.link {
            out.extend(std::iter::repeat_n(0xeeu8, *padding));
        }
        (link_type, out)
    }
}

use test_gens::*;

/// Checks every field the spec fixed. `full` is false for truncated frames: then only fields
/// whose bytes are present are required, and missing ones must be absent, not wrong.
fn check(spec: &FrameSpec, p: &Packet<'_>, full: bool) -> Result<(), TestCaseError> {
    match (&spec.link, &p.link) {
        (
            LinkSpec::Ethernet {
                src, dst, vlans, ..
            },
            Link::Ethernet(e),
        ) => {
            prop_assert_eq!(&e.source(), src);
            prop_assert_eq!(&e.destination(), dst);
            let got: Vec<_> = p.vlans.iter().map(|t| (t.vid, t.pcp)).collect();
            if full {
                prop_assert_eq!(&got, vlans);
            } else {
                prop_assert!(vlans.starts_with(&got));
            }
        }
        (LinkSpec::Sll { packet_type, addr }, Link::LinuxSll(s)) => {
            prop_assert_eq!(s.packet_type(), *packet_type);
            prop_assert_eq!(s.addr(), addr);
        }
        (LinkSpec::Sll2 { ifindex, addr }, Link::LinuxSll2(s)) => {
            prop_assert_eq!(s.ifindex(), *ifindex);
            prop_assert_eq!(s.addr(), addr);
        }
        (LinkSpec::Null { .. }, Link::Loopback(_)) | (LinkSpec::Raw, Link::Raw) => {}
        (_, Link::None) if !full => return Ok(()),
        (s, l) => prop_assert!(false, "link mismatch: {s:?} vs {l:?}"),
    }
    match (&spec.ip, &p.net) {
        (
            IpSpec::V4 {
                src,
                dst,
                ttl,
                id,
                df,
                options_words,
            },
            Net::Ipv4(v),
        ) => {
            prop_assert_eq!(v.src().octets(), *src);
            prop_assert_eq!(v.dst().octets(), *dst);
            prop_assert_eq!(v.ttl(), *ttl);
            prop_assert_eq!(v.header().identification(), *id);
            prop_assert_eq!(v.header().dont_fragment(), *df);
            prop_assert_eq!(v.options().len(), options_words * 4);
            prop_assert!(v.fragment().is_none());
        }
        (
            IpSpec::V6 {
                src,
                dst,
                hop_limit,
                hbh,
                dstopts,
                atomic_frag,
            },
            Net::Ipv6(v),
        ) => {
            prop_assert_eq!(v.src().octets(), *src);
            prop_assert_eq!(v.dst().octets(), *dst);
            prop_assert_eq!(v.hop_limit(), *hop_limit);
            if full {
                let n = usize::from(*hbh) + usize::from(*dstopts) + usize::from(*atomic_frag);
                prop_assert_eq!(v.extension_types().len(), n);
                prop_assert!(v.fragment().is_none(), "atomic fragments are not fragments");
            }
        }
        (_, Net::None) if !full => return Ok(()),
        (s, n) => prop_assert!(false, "net mismatch: {s:?} vs {n:?}"),
    }
    match (&spec.l4, &p.transport) {
        (
            L4Spec::Tcp {
                src,
                dst,
                seq,
                ack,
                syn,
                fin,
                psh,
                window,
                mss,
                ws,
                ts,
            },
            Transport::Tcp(t),
        ) => {
            prop_assert_eq!((t.src_port(), t.dst_port()), (*src, *dst));
            prop_assert_eq!(t.seq(), *seq);
            prop_assert_eq!(t.ack(), ack.unwrap_or(0));
            let f = t.flags();
            prop_assert_eq!(
                (f.syn(), f.fin(), f.ack(), f.has(0x08)),
                (*syn, *fin, ack.is_some(), *psh)
            );
            prop_assert_eq!(t.window(), *window);
            let o = t.options();
            prop_assert_eq!((o.mss, o.window_scale, o.timestamps), (*mss, *ws, *ts));
            prop_assert!(!o.malformed);
        }
        (L4Spec::Udp { src, dst }, Transport::Udp(u)) => {
            prop_assert_eq!((u.src_port(), u.dst_port()), (*src, *dst));
        }
        (
            L4Spec::Tcp { src, dst, .. } | L4Spec::Udp { src, dst },
            Transport::Partial {
                src_port, dst_port, ..
            },
        ) if !full => {
            prop_assert_eq!((*src_port, *dst_port), (*src, *dst));
            return Ok(());
        }
        (_, Transport::None) if !full => return Ok(()),
        (s, t) => prop_assert!(false, "transport mismatch: {s:?} vs {t:?}"),
    }
    if full {
        prop_assert_eq!(p.payload, &spec.payload[..]);
    } else {
        prop_assert!(spec.payload.starts_with(p.payload));
    }
    Ok(())
}

/// Invariants that hold for any input.
fn invariants(p: &Packet<'_>) -> Result<(), TestCaseError> {
    let end = p.payload_offset.checked_add(p.payload.len());
    prop_assert!(
        end.is_some_and(|e| e <= p.data.len()),
        "payload out of frame"
    );
    if !p.payload.is_empty() {
        prop_assert_eq!(
            &p.data[p.payload_offset..p.payload_offset + p.payload.len()],
            p.payload
        );
    }
    if let Some(e) = p.error {
        prop_assert!(
            e.offset <= p.data.len(),
            "error offset {} past frame {}",
            e.offset,
            p.data.len()
        );
    }
    if let Some(t) = p.tunnel {
        prop_assert!(t.inner_offset + t.inner.len() <= p.data.len());
        prop_assert_eq!(
            &p.data[t.inner_offset..t.inner_offset + t.inner.len()],
            t.inner
        );
        if let Some(inner) = p.inner() {
            invariants_inner(p, &inner)?;
        }
    }
    Ok(())
}

fn invariants_inner(outer: &Packet<'_>, inner: &Packet<'_>) -> Result<(), TestCaseError> {
    // Inner offsets are relative to the outer frame.
    let end = inner.payload_offset + inner.payload.len();
    prop_assert!(end <= outer.data.len());
    if !inner.payload.is_empty() {
        prop_assert_eq!(&outer.data[inner.payload_offset..end], inner.payload);
    }
    Ok(())
}

proptest! {
    // Failures are persisted next to this file and committed, so they are re-run forever.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            "tests/proptest-regressions/roundtrip.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn roundtrip_built_frames(spec in frame()) {
        let (lt, bytes) = build(&spec);
        let p = Packet::parse(lt, &bytes);
        prop_assert_eq!(p.error, None, "unexpected error");
        check(&spec, &p, true)?;
        invariants(&p)?;
    }

    #[test]
    fn truncated_frames_keep_what_is_there(spec in frame(), cut in any::<prop::sample::Index>()) {
        let (lt, bytes) = build(&spec);
        let n = cut.index(bytes.len() + 1);
        let p = Packet::parse_frame(lt, &bytes[..n], bytes.len());
        prop_assert!(p.snaplen_truncated() || n == bytes.len());
        if let Some(e) = p.error {
            prop_assert!(e.is_truncation(), "non-truncation error {e} at cut {n}");
        }
        check(&spec, &p, n == bytes.len())?;
        invariants(&p)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(link in prop::sample::select(vec![0u32, 1, 12, 101, 108, 113, 228, 229, 276, 147]),
                                   bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let p = Packet::parse(LinkType(link), &bytes);
        invariants(&p)?;
    }

    /// Random bytes after a valid Ethernet/IP prefix reach the deeper parsers more often.
    #[test]
    fn arbitrary_transport_never_panics(proto in any::<u8>(), v6 in any::<bool>(),
                                        body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut f = vec![0u8; 12];
        if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(body.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&[0u8; 32]);
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        }
        f.extend_from_slice(&body);
        let p = Packet::parse(LinkType::ETHERNET, &f);
        invariants(&p)?;
        prop_assert!(p.src_ip().is_some());
    }
}

#[test]
fn vlan_stack_of_three_and_padding() {
    let spec = FrameSpec {
        link: LinkSpec::Ethernet {
            src: [2, 0, 0, 0, 0, 1],
            dst: [2, 0, 0, 0, 0, 2],
            vlans: vec![(10, 1), (20, 0), (30, 7)],
            padding: 20,
        },
        ip: IpSpec::V4 {
            src: [192, 168, 0, 1],
            dst: [192, 168, 0, 2],
            ttl: 64,
            id: 1,
            df: true,
            options_words: 1,
        },
        l4: L4Spec::Udp {
            src: 5353,
            dst: 5353,
        },
        payload: b"x".to_vec(),
    };
    let (lt, bytes) = build(&spec);
    let p = Packet::parse(lt, &bytes);
    assert_eq!(p.error, None);
    assert_eq!(p.vlans.len(), 3);
    assert_eq!(p.vlans[0].tpid, 0x88a8);
    assert_eq!(p.payload, b"x", "padding must not leak into the payload");
}
