//! What WinDivert hands over, turned into netmon's packet metadata (platform-independent,
//! tested on every platform).
//!
//! A WinDivert handle at the network layer yields IP packets (no link-layer header: link
//! type [`LinkType::RAW`]) each with a `WINDIVERT_ADDRESS` (windivert.h, WinDivert 2.2):
//!
//! ```text
//! typedef struct {
//!     INT64  Timestamp;        // when WinDivert captured it, in QueryPerformanceCounter() ticks
//!     UINT64 Layer:8;          // WINDIVERT_LAYER_NETWORK = 0
//!     UINT64 Event:8;          // WINDIVERT_EVENT_NETWORK_PACKET = 0
//!     UINT64 Sniffed:1;        // copied, not diverted (sniff mode)
//!     UINT64 Outbound:1;       // 1 outbound, 0 inbound
//!     UINT64 Loopback:1;       // from and to this machine; only ever seen outbound
//!     UINT64 Impostor:1;       // injected by another driver
//!     UINT64 IPv6:1;           // 1 IPv6, 0 IPv4
//!     UINT64 IPChecksum:1; UINT64 TCPChecksum:1; UINT64 UDPChecksum:1;
//!     union {
//!         WINDIVERT_DATA_NETWORK Network;   // { UINT32 IfIdx; UINT32 SubIfIdx; }
//!         ...                               // flow, socket, reflect layers
//!     };
//! } WINDIVERT_ADDRESS;
//! ```
//!
//! **Timestamps.** `Timestamp` counts `QueryPerformanceCounter` ticks (`QueryPerformanceFrequency`
//! per second, since boot): monotonic, but not wall-clock time. At open the source reads
//! the counter, the system clock and the counter again; the midpoint of the two counter
//! readings is paired with the clock reading ([`QpcClock::calibrate`]), and every packet's
//! time is that clock reading plus its tick distance from the midpoint. The error is at
//! most half the time between the two counter readings (microseconds) plus whatever the
//! system clock is adjusted by after open (NTP slews are not followed: packet times stay
//! monotonic, like those of a capture file).
//!
//! **Direction.** `Outbound` set: [`Direction::Outbound`], else [`Direction::Inbound`].
//! WinDivert sees loopback packets (from and to this machine, on any address) on their
//! outbound path only, so each is captured once, outbound.
//!
//! **Interfaces.** The network layer sees every interface. A capture on `any` builds its
//! interface table as packets arrive, one entry `if<IfIdx>` per interface index (the
//! sub-interface index is not told apart); a capture on interface indexes (`-i 7 -i 12`)
//! starts with those entries, in that order, and its filter only admits them.
//!
//! **Filters.** WinDivert filters packets in the driver, in its own language (`tcp.DstPort
//! == 443 and ip.DstAddr == 10.0.0.1`, `outbound and !loopback`), not tcpdump's. A
//! [`LiveConfig::filter`](crate::LiveConfig::filter) is passed through unchanged as a
//! WinDivert filter string; none means `true` (everything). No translation from tcpdump
//! syntax is attempted. [`filter_string`] adds the interface restriction.
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use netmon_types::{LinkType, Timestamp};

use crate::{CaptureError, Direction, Interface, PacketMeta};

/// Link type of every packet: raw IPv4 or IPv6, version in the first nibble.
pub const LINK_TYPE: LinkType = LinkType::RAW;

/// The largest packet WinDivert delivers (`WINDIVERT_MTU_MAX`: 40 + 0xFFFF bytes); the
/// receive buffer has this size, so no packet is ever cut by it.
pub const MAX_PACKET: usize = 40 + 0xFFFF;

/// The interface table's limit; packets from further interfaces share one entry, `other`.
pub const MAX_INTERFACES: usize = 256;

/// What the WinDivert filter language is told when there is no filter.
pub const MATCH_ALL: &str = "true";

/// What a rejected filter's error says, besides WinDivert's own message.
pub const FILTER_HINT: &str = "the windivert backend takes WinDivert's filter language \
     (e.g. `tcp.DstPort == 443 or udp`, `outbound and !loopback`), not tcpdump's";

/// The `WINDIVERT_ADDRESS` fields of a network-layer packet, as plain values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressInfo {
    /// `Timestamp`: `QueryPerformanceCounter` ticks when WinDivert captured the packet.
    pub timestamp: i64,
    /// `Layer` (0 = network).
    pub layer: u8,
    /// `Outbound`.
    pub outbound: bool,
    /// `Loopback`: from and to this machine.
    pub loopback: bool,
    /// `Impostor`: injected by another driver.
    pub impostor: bool,
    /// `IPv6`.
    pub ipv6: bool,
    /// `Network.IfIdx`: the interface the packet arrived on or leaves by.
    pub if_idx: u32,
    /// `Network.SubIfIdx`.
    pub sub_if_idx: u32,
}

impl AddressInfo {
    /// [`Direction::Outbound`] or [`Direction::Inbound`], from the `Outbound` flag.
    pub fn direction(&self) -> Direction {
        if self.outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        }
    }
}

/// Turns `QueryPerformanceCounter` ticks into wall-clock timestamps (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QpcClock {
    origin_ticks: i64,
    ticks_per_sec: i64,
    origin: Timestamp,
}

const NANOS: i128 = 1_000_000_000;

impl QpcClock {
    /// A clock on which `origin_ticks` happened at `origin`, counting `ticks_per_sec`.
    pub fn new(origin_ticks: i64, ticks_per_sec: i64, origin: Timestamp) -> QpcClock {
        QpcClock {
            origin_ticks,
            ticks_per_sec,
            origin,
        }
    }

    /// A clock from the counter read `before` and `after` the system clock read `wall`:
    /// `wall` is taken to have happened at their midpoint.
    pub fn calibrate(before: i64, wall: Timestamp, after: i64, ticks_per_sec: i64) -> QpcClock {
        let mid = (i128::from(before) + i128::from(after)).div_euclid(2);
        QpcClock::new(i64::try_from(mid).unwrap_or(before), ticks_per_sec, wall)
    }

    /// The wall-clock time of counter value `ticks`, saturating at the ends of
    /// [`Timestamp`]'s range. A non-positive frequency (never reported by Windows) maps every
    /// tick to the origin.
    pub fn to_timestamp(&self, ticks: i64) -> Timestamp {
        if self.ticks_per_sec <= 0 {
            return self.origin;
        }
        let delta = i128::from(ticks) - i128::from(self.origin_ticks);
        let nanos = (delta * NANOS).div_euclid(i128::from(self.ticks_per_sec));
        let t = i128::from(self.origin.as_nanos()) + nanos;
        Timestamp::from_nanos(t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

/// `t` as a [`Timestamp`] (nanoseconds since the Unix epoch, negative before it).
pub fn timestamp_of(t: SystemTime) -> Timestamp {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    Timestamp::from_nanos(nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// Which interfaces a capture is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceSelection {
    /// Every interface (`any`).
    All,
    /// These interface indexes (`IfIdx`), in the order given, without repeats.
    Indexes(Vec<u32>),
}

/// Reads [`LiveConfig::interfaces`](crate::LiveConfig::interfaces) for WinDivert: `any`
/// (alone or among others) selects every interface; otherwise each entry is an interface
/// index, optionally written `if<N>` as the interface table names them. Names are refused
/// with a message saying so: WinDivert knows interfaces by index only.
pub fn parse_interfaces(names: &[String]) -> Result<InterfaceSelection, CaptureError> {
    if names.is_empty() {
        return Err(CaptureError::InvalidArgument("no interface given".into()));
    }
    if names.iter().any(|n| n.eq_ignore_ascii_case("any")) {
        return Ok(InterfaceSelection::All);
    }
    let mut idx = Vec::with_capacity(names.len());
    for n in names {
        let digits = n.strip_prefix("if").unwrap_or(n);
        let i: u32 = digits.parse().map_err(|_| {
            CaptureError::InvalidArgument(format!(
                "interface {n:?}: the windivert backend takes `any` or interface indexes \
                 (numbers, as `netmon interfaces` lists them)"
            ))
        })?;
        if !idx.contains(&i) {
            idx.push(i);
        }
    }
    Ok(InterfaceSelection::Indexes(idx))
}

/// The WinDivert filter string for a capture: `filter` as given ([`MATCH_ALL`] when none
/// or blank), restricted to the selected interfaces:
/// `(ifIdx == 7 or ifIdx == 12) and (FILTER)`.
///
/// Fails with [`CaptureError::BadFilter`] if `filter` contains a NUL byte (it could not be
/// passed to the driver); the driver itself judges the syntax at open.
pub fn filter_string(
    filter: Option<&str>,
    interfaces: &InterfaceSelection,
) -> Result<String, CaptureError> {
    let user = filter.map(str::trim).filter(|f| !f.is_empty());
    if let Some(f) = user {
        if f.contains('\0') {
            return Err(CaptureError::BadFilter {
                filter: f.to_owned(),
                reason: "it contains a NUL byte".into(),
            });
        }
    }
    let ifs = match interfaces {
        InterfaceSelection::Indexes(idx) if !idx.is_empty() => Some(
            idx.iter()
                .map(|i| format!("ifIdx == {i}"))
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        _ => None,
    };
    Ok(match (ifs, user) {
        (None, None) => MATCH_ALL.to_owned(),
        (None, Some(f)) => f.to_owned(),
        (Some(i), None) => format!("({i})"),
        (Some(i), Some(f)) => format!("({i}) and ({f})"),
    })
}

/// WinDivert queue parameters (`WINDIVERT_PARAM_QUEUE_*`) for a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueParams {
    /// `QUEUE_LENGTH`: packets the driver queues for us (32..=16384; we take the most).
    pub length: u64,
    /// `QUEUE_TIME`: milliseconds a packet may wait before the driver drops it
    /// (100..=16000; we take the most).
    pub time_ms: u64,
    /// `QUEUE_SIZE`: bytes the queue holds (65535..=32 MiB), from
    /// [`LiveConfig::buffer_bytes`](crate::LiveConfig::buffer_bytes).
    pub size: u64,
}

/// The queue parameters for a kernel buffer of `buffer_bytes`: a sniffer wants packets
/// queued rather than dropped, so length and time are the maxima and the size is the
/// buffer, clamped to what the driver accepts.
pub fn queue_params(buffer_bytes: usize) -> QueueParams {
    QueueParams {
        length: 16_384,
        time_ms: 16_000,
        size: u64::try_from(buffer_bytes)
            .unwrap_or(u64::MAX)
            .clamp(65_535, 32 << 20),
    }
}

/// Turns (address, length) pairs into [`PacketMeta`], keeping the interface table.
#[derive(Clone, Debug)]
pub struct Converter {
    clock: QpcClock,
    snaplen: u32,
    /// `if_idx` of each entry of `interfaces` (the `other` entry has none).
    idx: Vec<u32>,
    interfaces: Vec<Interface>,
    /// Slot of the shared `other` entry, once the table is full.
    other: Option<u32>,
    loopback: u64,
}

impl Converter {
    /// A converter for packets cut at `snaplen` bytes (0: never cut) whose table starts
    /// with the selected interfaces.
    pub fn new(clock: QpcClock, snaplen: u32, selection: &InterfaceSelection) -> Converter {
        let mut c = Converter {
            clock,
            snaplen,
            idx: Vec::new(),
            interfaces: Vec::new(),
            other: None,
            loopback: 0,
        };
        if let InterfaceSelection::Indexes(idx) = selection {
            for &i in idx {
                c.slot(i);
            }
        }
        c
    }

    /// The interface table (indexed by [`PacketMeta::iface`]).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Loopback packets converted so far.
    pub fn loopback_packets(&self) -> u64 {
        self.loopback
    }

    /// The table slot of interface index `if_idx`, adding an entry on first sight.
    fn slot(&mut self, if_idx: u32) -> u32 {
        if let Some(p) = self.idx.iter().position(|&i| i == if_idx) {
            return u32::try_from(p).unwrap_or(0);
        }
        if self.idx.len() < MAX_INTERFACES {
            self.idx.push(if_idx);
            self.interfaces.push(self.entry(format!("if{if_idx}")));
            return u32::try_from(self.interfaces.len() - 1).unwrap_or(0);
        }
        if let Some(o) = self.other {
            return o;
        }
        self.interfaces.push(self.entry("other".into()));
        let o = u32::try_from(self.interfaces.len() - 1).unwrap_or(0);
        self.other = Some(o);
        o
    }

    fn entry(&self, name: String) -> Interface {
        Interface {
            name,
            description: None,
            link_type: LINK_TYPE,
            snaplen: self.snaplen,
        }
    }

    /// The metadata of a packet of `len` bytes received with `addr`. Its `cap_len` is
    /// `len` cut at the snaplen: the caller lends that many bytes.
    pub fn meta(&mut self, addr: &AddressInfo, len: usize) -> PacketMeta<'_> {
        let slot = self.slot(addr.if_idx);
        if addr.loopback {
            self.loopback += 1;
        }
        let orig = u32::try_from(len).unwrap_or(u32::MAX);
        let cap = if self.snaplen == 0 {
            orig
        } else {
            orig.min(self.snaplen)
        };
        PacketMeta {
            direction: addr.direction(),
            ts: self.clock.to_timestamp(addr.timestamp),
            iface: slot,
            iface_name: self.interfaces.get(slot as usize).map(|i| i.name.as_str()),
            link_type: LINK_TYPE,
            cap_len: cap,
            orig_len: orig,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T0: Timestamp = Timestamp::from_secs_nanos(1_700_000_000, 0);

    #[test]
    fn ticks_become_wall_clock_time() {
        // 10 MHz, Windows 10's usual QPC frequency: one tick is 100 ns.
        let c = QpcClock::new(5_000_000, 10_000_000, T0);
        assert_eq!(c.to_timestamp(5_000_000), T0);
        assert_eq!(c.to_timestamp(5_000_001).nanos_since(T0), 100);
        assert_eq!(c.to_timestamp(15_000_000).nanos_since(T0), 1_000_000_000);
        // Before the origin (queued before open): earlier, not wrapped.
        assert_eq!(c.to_timestamp(4_999_999).nanos_since(T0), -100);
        // An odd frequency rounds towards the past, never overflows.
        let c = QpcClock::new(0, 3, T0);
        assert_eq!(c.to_timestamp(1).nanos_since(T0), 333_333_333);
        assert_eq!(c.to_timestamp(-1).nanos_since(T0), -333_333_334);
        assert_eq!(c.to_timestamp(i64::MAX), Timestamp(i64::MAX));
        assert_eq!(c.to_timestamp(i64::MIN), Timestamp(i64::MIN));
        // A broken frequency maps everything to the origin.
        assert_eq!(QpcClock::new(0, 0, T0).to_timestamp(12345), T0);
        assert_eq!(QpcClock::new(0, -5, T0).to_timestamp(12345), T0);
    }

    #[test]
    fn calibration_pairs_the_clock_with_the_counter_midpoint() {
        let c = QpcClock::calibrate(1_000, T0, 1_200, 1_000_000);
        // Midpoint 1_100 ↔ T0; 1 MHz: a tick is a microsecond.
        assert_eq!(c.to_timestamp(1_100), T0);
        assert_eq!(c.to_timestamp(1_000).nanos_since(T0), -100_000);
        let c = QpcClock::calibrate(i64::MAX - 1, T0, i64::MAX, 1);
        assert_eq!(c.to_timestamp(i64::MAX - 1), T0);
    }

    #[test]
    fn system_time_converts_both_sides_of_the_epoch() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(
            timestamp_of(t),
            Timestamp::from_secs_nanos(1_700_000_000, 5)
        );
        let t = UNIX_EPOCH - Duration::from_nanos(1_500);
        assert_eq!(timestamp_of(t), Timestamp(-1_500));
    }

    #[test]
    fn interfaces_are_any_or_indexes() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_interfaces(&v(&["any"])).unwrap(),
            InterfaceSelection::All
        );
        assert_eq!(
            parse_interfaces(&v(&["7", "ANY"])).unwrap(),
            InterfaceSelection::All
        );
        assert_eq!(
            parse_interfaces(&v(&["12", "if7", "12"])).unwrap(),
            InterfaceSelection::Indexes(vec![12, 7])
        );
        let e = parse_interfaces(&v(&["Ethernet"])).unwrap_err().to_string();
        assert!(
            e.contains("\"Ethernet\"") && e.contains("interface indexes"),
            "{e}"
        );
        assert!(parse_interfaces(&v(&["-1"])).is_err());
        assert!(parse_interfaces(&[]).is_err());
    }

    #[test]
    fn filter_is_passed_through_and_restricted_to_interfaces() {
        let all = InterfaceSelection::All;
        assert_eq!(filter_string(None, &all).unwrap(), "true");
        assert_eq!(filter_string(Some("  "), &all).unwrap(), "true");
        assert_eq!(
            filter_string(Some("tcp.DstPort == 443"), &all).unwrap(),
            "tcp.DstPort == 443"
        );
        let two = InterfaceSelection::Indexes(vec![7, 12]);
        assert_eq!(
            filter_string(None, &two).unwrap(),
            "(ifIdx == 7 or ifIdx == 12)"
        );
        assert_eq!(
            filter_string(Some("udp or icmp"), &two).unwrap(),
            "(ifIdx == 7 or ifIdx == 12) and (udp or icmp)"
        );
        let e = filter_string(Some("tcp\0"), &all).unwrap_err();
        assert!(matches!(e, CaptureError::BadFilter { .. }), "{e}");
    }

    #[test]
    fn queue_size_follows_the_buffer_within_the_drivers_limits() {
        assert_eq!(queue_params(0).size, 65_535);
        assert_eq!(queue_params(8 << 20).size, 8 << 20);
        assert_eq!(queue_params(64 << 20).size, 32 << 20);
        assert_eq!(queue_params(usize::MAX).size, 32 << 20);
        assert_eq!(queue_params(1).length, 16_384);
        assert_eq!(queue_params(1).time_ms, 16_000);
    }

    fn addr(ticks: i64, outbound: bool, if_idx: u32) -> AddressInfo {
        AddressInfo {
            timestamp: ticks,
            outbound,
            if_idx,
            ..AddressInfo::default()
        }
    }

    #[test]
    fn metadata_of_packets() {
        let clock = QpcClock::new(0, 1_000_000_000, T0);
        let mut c = Converter::new(clock, 100, &InterfaceSelection::All);
        let m = c.meta(&addr(42, true, 9), 1500);
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(m.ts.nanos_since(T0), 42);
        assert_eq!((m.iface, m.iface_name), (0, Some("if9")));
        assert_eq!(m.link_type, LinkType::RAW);
        assert_eq!((m.cap_len, m.orig_len), (100, 1500));
        let m = c.meta(&addr(43, false, 3), 60);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!((m.iface, m.iface_name), (1, Some("if3")));
        assert_eq!((m.cap_len, m.orig_len), (60, 60));
        // Back on the first interface: same slot, table unchanged.
        assert_eq!(c.meta(&addr(44, false, 9), 1).iface, 0);
        assert_eq!(c.interfaces().len(), 2);
        assert_eq!(c.interfaces()[1].link_type, LinkType::RAW);
        assert_eq!(c.interfaces()[1].snaplen, 100);
        // Snaplen 0: never cut.
        let mut c = Converter::new(clock, 0, &InterfaceSelection::All);
        assert_eq!(c.meta(&addr(0, false, 1), MAX_PACKET).cap_len, 65_575);
        let mut lo = addr(0, true, 1);
        lo.loopback = true;
        c.meta(&lo, 20);
        assert_eq!(c.loopback_packets(), 1);
    }

    #[test]
    fn selected_interfaces_come_first_in_their_order() {
        let clock = QpcClock::new(0, 1, T0);
        let mut c = Converter::new(clock, 0, &InterfaceSelection::Indexes(vec![12, 7]));
        let names: Vec<&str> = c.interfaces().iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["if12", "if7"]);
        assert_eq!(c.meta(&addr(0, false, 7), 1).iface, 1);
    }

    #[test]
    fn interface_table_is_bounded() {
        let clock = QpcClock::new(0, 1, T0);
        let mut c = Converter::new(clock, 0, &InterfaceSelection::All);
        for i in 0..MAX_INTERFACES as u32 {
            assert_eq!(c.meta(&addr(0, false, i), 1).iface, i);
        }
        let a = c.meta(&addr(0, false, 100_000), 1).iface;
        let b = c.meta(&addr(0, false, 100_001), 1).iface;
        assert_eq!(a, MAX_INTERFACES as u32);
        assert_eq!(a, b);
        assert_eq!(c.interfaces().len(), MAX_INTERFACES + 1);
        assert_eq!(c.interfaces()[MAX_INTERFACES].name, "other");
    }
}
