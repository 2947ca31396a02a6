//! `--stats`: counters kept in fixed arrays indexed by small enums (no maps, no strings on the
//! per-packet path), printed as text or as one JSON object at the end.

use std::io::{self, Write};

use netmon_capture::PacketMeta;
use netmon_packet::{ChecksumStatus, ErrorKind, Timestamp, TunnelKind};

use super::decode::{Decoded, Layered};
use super::proto::Proto;
use super::ts_epoch;
use crate::json::Obj;

/// Parse-error kinds, in [`kind_index`] order (the last catches kinds added later).
const KIND_LABELS: [&str; 8] = [
    "truncated",
    "unsupported-linktype",
    "bad-version",
    "bad-header-length",
    "bad-length",
    "too-deep",
    "invalid",
    "other",
];

#[inline]
fn kind_index(k: &ErrorKind) -> usize {
    match k {
        ErrorKind::Truncated { .. } => 0,
        ErrorKind::UnsupportedLinkType(_) => 1,
        ErrorKind::BadVersion(_) => 2,
        ErrorKind::BadHeaderLength(_) => 3,
        ErrorKind::BadLength(_) => 4,
        ErrorKind::TooDeep => 5,
        ErrorKind::Invalid(_) => 6,
        _ => 7,
    }
}

/// Tunnel kinds, in [`tunnel_index`] order.
const TUNNEL_LABELS: [&str; 6] = ["ipip", "gre", "vxlan", "geneve", "teredo", "gtp-u"];

#[inline]
fn tunnel_index(k: &TunnelKind) -> usize {
    match k {
        TunnelKind::IpInIp => 0,
        TunnelKind::Gre { .. } => 1,
        TunnelKind::Vxlan { .. } => 2,
        TunnelKind::Geneve { .. } => 3,
        TunnelKind::Teredo => 4,
        TunnelKind::GtpU { .. } => 5,
    }
}

/// Per-layer counters of one nesting level (outer packets, or tunnels' inner packets).
#[derive(Clone, Debug)]
pub(crate) struct LayerCounts {
    /// Packets in which each layer occurs (once per packet, however often it is stacked).
    protocols: [u64; Proto::COUNT],
    /// Parse errors by the layer that failed and the kind.
    errors: [[u64; KIND_LABELS.len()]; Proto::COUNT],
    /// Checksums that did not verify, by layer.
    bad_checksums: [u64; Proto::COUNT],
    /// Checksums left to the NIC by transmit offload, by layer.
    offloaded_checksums: [u64; Proto::COUNT],
}

impl Default for LayerCounts {
    fn default() -> Self {
        LayerCounts {
            protocols: [0; Proto::COUNT],
            errors: [[0; KIND_LABELS.len()]; Proto::COUNT],
            bad_checksums: [0; Proto::COUNT],
            offloaded_checksums: [0; Proto::COUNT],
        }
    }
}

impl LayerCounts {
    #[inline]
    fn add(&mut self, l: &Layered<'_, '_>) {
        let mut mask = l.mask;
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            if let Some(c) = self.protocols.get_mut(i) {
                *c += 1;
            }
            mask &= mask - 1;
        }
        if let Some(e) = &l.pkt.error {
            let row = Proto::of_layer(e.layer) as usize;
            if let Some(c) = self
                .errors
                .get_mut(row)
                .and_then(|r| r.get_mut(kind_index(&e.kind)))
            {
                *c += 1;
            }
        }
        if let Some(s) = l.ck.ipv4 {
            self.checksum(Proto::Ipv4, s);
        }
        if let Some((layer, s)) = l.ck.transport {
            self.checksum(Proto::of_layer(layer), s);
        }
    }

    #[inline]
    fn checksum(&mut self, p: Proto, s: ChecksumStatus) {
        let counter = match s {
            ChecksumStatus::Bad { .. } => &mut self.bad_checksums,
            ChecksumStatus::Offloaded => &mut self.offloaded_checksums,
            _ => return,
        };
        if let Some(c) = counter.get_mut(p as usize) {
            *c += 1;
        }
    }

    /// `(name, count)` of every non-zero entry of a per-layer array, in table order.
    fn nonzero(arr: &[u64; Proto::COUNT]) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Proto::ALL
            .iter()
            .zip(arr.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(p, c)| (p.name(), *c))
    }

    /// `(layer, kind, count)` of every parse-error counter that is not zero.
    fn error_counts(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        Proto::ALL
            .iter()
            .zip(self.errors.iter())
            .flat_map(|(p, row)| {
                KIND_LABELS
                    .iter()
                    .zip(row.iter())
                    .filter(|(_, c)| **c > 0)
                    .map(move |(k, c)| (p.name(), *k, *c))
            })
    }
}

/// Everything `--stats` reports.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    packets: u64,
    bytes_captured: u64,
    bytes_wire: u64,
    earliest: i64,
    latest: i64,
    outer: LayerCounts,
    inner: LayerCounts,
    tunnels: [u64; TUNNEL_LABELS.len()],
    /// Frames the source says were dropped (pcapng `isb_ifdrop`), if it says.
    pub(crate) iface_dropped: Option<u64>,
    /// The capture error that ended reading early, if any.
    pub(crate) capture_error: Option<String>,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            packets: 0,
            bytes_captured: 0,
            bytes_wire: 0,
            earliest: i64::MAX,
            latest: i64::MIN,
            outer: LayerCounts::default(),
            inner: LayerCounts::default(),
            tunnels: [0; TUNNEL_LABELS.len()],
            iface_dropped: None,
            capture_error: None,
        }
    }
}

impl Summary {
    /// Counts one record. Allocation-free; array updates only.
    #[inline]
    pub(crate) fn add(&mut self, meta: &PacketMeta<'_>, d: &Decoded<'_, '_>) {
        self.packets += 1;
        self.bytes_captured += u64::from(meta.cap_len);
        self.bytes_wire += u64::from(meta.orig_len);
        let t = meta.ts.as_nanos();
        self.earliest = self.earliest.min(t);
        self.latest = self.latest.max(t);
        self.outer.add(&d.outer);
        if let Some(t) = &d.outer.pkt.tunnel {
            if let Some(c) = self.tunnels.get_mut(tunnel_index(&t.kind)) {
                *c += 1;
            }
        }
        if let Some(i) = &d.inner {
            self.inner.add(i);
        }
    }

    /// Packets counted.
    pub(crate) fn packets(&self) -> u64 {
        self.packets
    }

    fn span(&self) -> Option<(Timestamp, Timestamp)> {
        (self.packets > 0).then_some((Timestamp(self.earliest), Timestamp(self.latest)))
    }

    fn tunnel_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        TUNNEL_LABELS
            .iter()
            .zip(self.tunnels.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (*k, *c))
    }

    /// The human-readable summary.
    pub(crate) fn write_text<W: Write>(&self, w: &mut W) -> io::Result<()> {
        writeln!(w, "summary:")?;
        writeln!(w, "  packets: {}", self.packets)?;
        writeln!(
            w,
            "  bytes: {} captured, {} on the wire",
            self.bytes_captured, self.bytes_wire
        )?;
        if let Some((first, last)) = self.span() {
            writeln!(w, "  first: {first}")?;
            writeln!(w, "  last: {last}")?;
            writeln!(w, "  duration: {} s", ts_epoch(last.nanos_since(first)))?;
        }
        list(w, "protocols", LayerCounts::nonzero(&self.outer.protocols))?;
        if self.tunnels.iter().any(|&c| c > 0) {
            list(
                w,
                "inner protocols",
                LayerCounts::nonzero(&self.inner.protocols),
            )?;
        }
        write!(w, "  parse errors:")?;
        let mut none = true;
        for (i, (layer, kind, n)) in self.outer.error_counts().enumerate() {
            write!(w, "{} {layer}/{kind} {n}", if i > 0 { "," } else { "" })?;
            none = false;
        }
        for (layer, kind, n) in self.inner.error_counts() {
            write!(
                w,
                "{} inner {layer}/{kind} {n}",
                if none { "" } else { "," }
            )?;
            none = false;
        }
        if none {
            write!(w, " none")?;
        }
        writeln!(w)?;
        list(
            w,
            "bad checksums",
            LayerCounts::nonzero(&self.outer.bad_checksums),
        )?;
        if self.inner.bad_checksums.iter().any(|&c| c > 0) {
            list(
                w,
                "inner bad checksums",
                LayerCounts::nonzero(&self.inner.bad_checksums),
            )?;
        }
        if self.outer.offloaded_checksums.iter().any(|&c| c > 0) {
            list(
                w,
                "offloaded checksums",
                LayerCounts::nonzero(&self.outer.offloaded_checksums),
            )?;
        }
        list(w, "tunnels", self.tunnel_counts())?;
        if let Some(d) = self.iface_dropped {
            writeln!(w, "  dropped by interface: {d}")?;
        }
        match &self.capture_error {
            Some(e) => writeln!(w, "  capture errors: 1 ({e})"),
            None => writeln!(w, "  capture errors: 0"),
        }
    }

    /// The summary as one JSON line, `{"summary": {...}}`.
    pub(crate) fn write_json<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut top = Obj::open(w)?;
        let mut o = top.obj("summary")?;
        o.u64("packets", self.packets)?;
        o.u64("bytes_captured", self.bytes_captured)?;
        o.u64("bytes_wire", self.bytes_wire)?;
        if let Some((first, last)) = self.span() {
            o.display("first_ts", first)?;
            o.display("last_ts", last)?;
            o.i64("duration_ns", last.nanos_since(first))?;
        }
        counts(
            &mut o,
            "protocols",
            LayerCounts::nonzero(&self.outer.protocols),
        )?;
        counts(
            &mut o,
            "inner_protocols",
            LayerCounts::nonzero(&self.inner.protocols),
        )?;
        error_counts(&mut o, "parse_errors", &self.outer)?;
        error_counts(&mut o, "inner_parse_errors", &self.inner)?;
        counts(
            &mut o,
            "bad_checksums",
            LayerCounts::nonzero(&self.outer.bad_checksums),
        )?;
        counts(
            &mut o,
            "inner_bad_checksums",
            LayerCounts::nonzero(&self.inner.bad_checksums),
        )?;
        counts(
            &mut o,
            "offloaded_checksums",
            LayerCounts::nonzero(&self.outer.offloaded_checksums),
        )?;
        counts(&mut o, "tunnels", self.tunnel_counts())?;
        if let Some(d) = self.iface_dropped {
            o.u64("iface_dropped", d)?;
        }
        o.u64("capture_errors", u64::from(self.capture_error.is_some()))?;
        if let Some(e) = &self.capture_error {
            o.bytes("capture_error", e.as_bytes())?;
        }
        o.end()?;
        top.end()?;
        w.write_all(b"\n")
    }
}

/// `  label: a 1, b 2` (or `none`).
fn list<W: Write>(
    w: &mut W,
    label: &str,
    items: impl Iterator<Item = (&'static str, u64)>,
) -> io::Result<()> {
    write!(w, "  {label}:")?;
    let mut any = false;
    for (i, (name, n)) in items.enumerate() {
        write!(w, "{} {name} {n}", if i > 0 { "," } else { "" })?;
        any = true;
    }
    if !any {
        write!(w, " none")?;
    }
    writeln!(w)
}

/// `"key": {"name": count, ...}`.
fn counts<W: Write>(
    o: &mut Obj<'_, W>,
    key: &str,
    items: impl Iterator<Item = (&'static str, u64)>,
) -> io::Result<()> {
    let mut m = o.obj(key)?;
    for (name, n) in items {
        m.u64(name, n)?;
    }
    m.end()
}

/// `"key": {"layer": {"kind": count}}`.
fn error_counts<W: Write>(o: &mut Obj<'_, W>, key: &str, c: &LayerCounts) -> io::Result<()> {
    let mut m = o.obj(key)?;
    for (p, row) in Proto::ALL.iter().zip(c.errors.iter()) {
        if row.iter().all(|&n| n == 0) {
            continue;
        }
        let mut r = m.obj(p.name())?;
        for (k, n) in KIND_LABELS.iter().zip(row.iter()) {
            if *n > 0 {
                r.u64(k, *n)?;
            }
        }
        r.end()?;
    }
    m.end()
}
