//! The flow record: counters per direction, TCP lifecycle, timestamps, and the extension slot.

use netmon_packet::{Packet, TcpFlags};
use netmon_types::Timestamp;

use crate::key::{Endpoint, FlowKey, Side};

/// Counters for one direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Packets.
    pub packets: u64,
    /// Bytes on the wire: the sum of the frames' original lengths (tshark's `frame.len`).
    pub bytes: u64,
    /// Transport payload bytes (TCP/UDP data; the body of other protocols), as captured.
    pub payload_bytes: u64,
    /// Segments with PSH.
    pub psh: u32,
    /// Estimated retransmissions: TCP data segments that end at or before data already seen.
    pub retransmits: u32,
    /// Segments with SYN (including SYN-ACK).
    pub syn: u16,
    /// Segments with FIN.
    pub fin: u16,
    /// Segments with RST.
    pub rst: u16,
    /// Segments with URG.
    pub urg: u16,
    /// Segments with ECE.
    pub ece: u16,
    /// Segments with CWR.
    pub cwr: u16,
    /// OR of every TCP flag seen in this direction.
    pub flags_seen: TcpFlags,
    /// Highest sequence number + data length seen (for the retransmission estimate).
    pub(crate) next_seq: u32,
    pub(crate) seq_valid: bool,
}

impl DirStats {
    /// Adds a TCP segment's flags and sequence progress.
    pub(crate) fn tcp(&mut self, flags: TcpFlags, seq: u32, data_len: u32) {
        self.flags_seen = TcpFlags(self.flags_seen.0 | flags.0);
        let inc = |c: &mut u16, on: bool| *c = c.saturating_add(u16::from(on));
        inc(&mut self.syn, flags.syn());
        inc(&mut self.fin, flags.fin());
        inc(&mut self.rst, flags.rst());
        inc(&mut self.urg, flags.has(TcpFlags::URG));
        inc(&mut self.ece, flags.has(TcpFlags::ECE));
        inc(&mut self.cwr, flags.has(TcpFlags::CWR));
        self.psh = self.psh.saturating_add(u32::from(flags.has(TcpFlags::PSH)));
        // SYN and FIN each take one sequence number.
        let len = data_len
            .wrapping_add(u32::from(flags.syn()))
            .wrapping_add(u32::from(flags.fin()));
        if len == 0 || flags.rst() {
            return;
        }
        let end = seq.wrapping_add(len);
        if !self.seq_valid {
            self.next_seq = end;
            self.seq_valid = true;
        } else if seq_lt(self.next_seq, end) {
            // New data (possibly after a gap): move the edge forward.
            self.next_seq = end;
        } else if data_len > 0 {
            // Everything in this segment was seen before: a retransmission (or a reordered
            // duplicate). Keep-alive probes (1 byte below the edge) count too.
            self.retransmits = self.retransmits.saturating_add(1);
        }
    }
}

/// `a < b` in 32-bit sequence space (RFC 1982).
fn seq_lt(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

/// TCP connection state as seen from the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// Not TCP.
    #[default]
    None,
    /// The initiator's SYN was seen, no answer yet.
    SynSent,
    /// The responder's SYN-ACK was seen.
    SynReceived,
    /// The handshake completed (or data flowed after a SYN-ACK).
    Established,
    /// Picked up mid-stream: no SYN was seen.
    MidStream,
    /// One side sent FIN.
    FinWait,
    /// Both sides sent FIN; the last ACK is outstanding.
    Closing,
    /// Both sides sent FIN and the last one was acknowledged.
    Closed,
    /// A RST was seen.
    Reset,
}

impl TcpState {
    /// Lower-case name for output (`syn_sent`, `established`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynReceived => "syn_received",
            TcpState::Established => "established",
            TcpState::MidStream => "midstream",
            TcpState::FinWait => "fin_wait",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
            TcpState::Reset => "reset",
        }
    }

    /// Whether the connection is over (a new SYN on the same 5-tuple starts a new flow).
    pub const fn is_finished(self) -> bool {
        matches!(self, TcpState::Closing | TcpState::Closed | TcpState::Reset)
    }
}

/// Why a flow record ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// TCP closed with FIN from both sides.
    Fin,
    /// TCP reset.
    Rst,
    /// No packet for the protocol's idle timeout.
    IdleTimeout,
    /// The record reached the active timeout (only with [`crate::ActiveTimeout::Split`]).
    ActiveTimeout,
    /// The table was full and this was the least recently seen flow.
    Evicted,
    /// The capture ended (end of file).
    EndOfCapture,
    /// The monitor shut down.
    Shutdown,
}

impl EndReason {
    /// Lower-case name for output.
    pub const fn name(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::ActiveTimeout => "active_timeout",
            EndReason::Evicted => "evicted",
            EndReason::EndOfCapture => "end_of_capture",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Everything the flow tracker knows about a flow (without the extension state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowCore {
    /// The normalised key.
    pub key: FlowKey,
    /// A number unique within the table's lifetime, increasing with creation order.
    pub id: u64,
    /// Which side of the key started the conversation.
    pub initiator: Side,
    /// Timestamp of the first packet.
    pub first_seen: Timestamp,
    /// Timestamp of the latest packet.
    pub last_seen: Timestamp,
    /// Counters per side of the key (`stats[Side::Lo.index()]` = sent by the lower endpoint).
    pub stats: [DirStats; 2],
    /// TCP state (`None` for other protocols).
    pub tcp_state: TcpState,
    /// ICMP errors (unreachable, time exceeded, ...) seen that quote this flow.
    pub icmp_errors: u32,
    /// Set when the flow has ended.
    pub end_reason: Option<EndReason>,
    /// Keys of related flows (tunnel, quoted flow), boxed: most flows have none, and the flow
    /// record's size decides how many flows fit in cache.
    pub(crate) related: Option<Box<Related>>,
    /// When the record was last exported by the active timeout.
    pub(crate) last_export: Timestamp,
}

/// Flows related to a flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Related {
    pub(crate) outer: Option<FlowKey>,
    pub(crate) quoted: Option<FlowKey>,
}

impl FlowCore {
    /// For flows inside a tunnel: the key of the flow that carried them.
    pub fn outer(&self) -> Option<&FlowKey> {
        self.related.as_deref().and_then(|r| r.outer.as_ref())
    }
    /// For ICMP flows that carried errors: the flow the latest error quoted.
    pub fn quoted(&self) -> Option<&FlowKey> {
        self.related.as_deref().and_then(|r| r.quoted.as_ref())
    }
    pub(crate) fn set_quoted(&mut self, k: FlowKey) {
        self.related.get_or_insert_with(Box::default).quoted = Some(k);
    }
    /// The initiator's endpoint (client).
    pub fn src(&self) -> Endpoint {
        self.key.endpoint(self.initiator)
    }
    /// The responder's endpoint (server).
    pub fn dst(&self) -> Endpoint {
        self.key.endpoint(self.initiator.other())
    }
    /// Counters of the packets sent by `side`.
    pub fn sent_by(&self, side: Side) -> &DirStats {
        let [lo, hi] = &self.stats;
        match side {
            Side::Lo => lo,
            Side::Hi => hi,
        }
    }
    /// Mutable counters of the packets sent by `side`.
    pub(crate) fn sent_by_mut(&mut self, side: Side) -> &mut DirStats {
        let [lo, hi] = &mut self.stats;
        match side {
            Side::Lo => lo,
            Side::Hi => hi,
        }
    }
    /// Counters of the initiator → responder direction.
    pub fn c2s(&self) -> &DirStats {
        self.sent_by(self.initiator)
    }
    /// Counters of the responder → initiator direction.
    pub fn s2c(&self) -> &DirStats {
        self.sent_by(self.initiator.other())
    }
    /// Total packets, both directions.
    pub fn packets(&self) -> u64 {
        self.stats[0].packets + self.stats[1].packets
    }
    /// Total bytes on the wire, both directions.
    pub fn bytes(&self) -> u64 {
        self.stats[0].bytes + self.stats[1].bytes
    }
    /// Whether `side` is the initiator.
    pub fn is_from_initiator(&self, side: Side) -> bool {
        side == self.initiator
    }
}

/// Direction of a packet relative to the flow's initiator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Initiator → responder.
    ClientToServer,
    /// Responder → initiator.
    ServerToClient,
}

/// Per-flow state that another crate attaches to every flow (the flow crate's extension
/// point). The classifier implements it; `()` is the empty extension.
///
/// `on_packet` runs for every packet of the flow, after the flow's counters were updated, on
/// the packet path: it must not block, and should stop doing work once it has what it needs.
pub trait FlowExt: Default {
    /// Shared context handed to every call (e.g. a DNS correlator). `()` when unused.
    type Ctx;

    /// Sees one packet of the flow. `packet` is the layer this flow is keyed on (the inner
    /// packet for a flow inside a tunnel).
    fn on_packet(
        &mut self,
        ctx: &mut Self::Ctx,
        flow: &FlowCore,
        dir: Direction,
        packet: &Packet<'_>,
    );

    /// The flow ended; release what is not needed for the final record.
    fn on_end(&mut self, _ctx: &mut Self::Ctx, _flow: &FlowCore) {}

    /// The application protocol, once known (`"tls"`, `"dns"`, ...), for statistics.
    fn app(&self) -> Option<&'static str> {
        None
    }
}

impl FlowExt for () {
    type Ctx = ();
    #[inline]
    fn on_packet(&mut self, _: &mut (), _: &FlowCore, _: Direction, _: &Packet<'_>) {}
}

/// A flow: the tracker's record plus the extension's state.
#[derive(Clone, Debug)]
pub struct Flow<E> {
    /// The tracker's part.
    pub core: FlowCore,
    /// The extension's part.
    pub ext: E,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmission_estimate() {
        let mut d = DirStats::default();
        d.tcp(TcpFlags(TcpFlags::SYN), 1000, 0);
        d.tcp(TcpFlags(TcpFlags::ACK | TcpFlags::PSH), 1001, 100);
        d.tcp(TcpFlags(TcpFlags::ACK | TcpFlags::PSH), 1101, 100);
        assert_eq!(d.retransmits, 0);
        d.tcp(TcpFlags(TcpFlags::ACK | TcpFlags::PSH), 1001, 100); // resent
        assert_eq!(d.retransmits, 1);
        d.tcp(TcpFlags(TcpFlags::ACK), 1201, 0); // pure ACK: never a retransmission
        assert_eq!(d.retransmits, 1);
        // Across the 2^32 wrap.
        let mut w = DirStats::default();
        w.tcp(TcpFlags(TcpFlags::ACK), u32::MAX - 10, 20);
        w.tcp(TcpFlags(TcpFlags::ACK), 9, 5);
        assert_eq!(w.retransmits, 0);
        w.tcp(TcpFlags(TcpFlags::ACK), u32::MAX - 10, 20);
        assert_eq!(w.retransmits, 1);
        assert_eq!((d.syn, d.psh, w.psh), (1, 3, 0));
    }
}
