//! QUIC: recognition by version, and the client's ClientHello recovered from its Initial
//! packets.
//!
//! * [`looks_like_quic`] — a cheap, allocation-free check of a UDP payload's first packet:
//!   QUIC v1 and v2, IETF drafts, Google QUIC (`Q0xx`/`T0xx`, long and legacy headers),
//!   mvfst, reserved versions and Version Negotiation.
//! * [`QuicInitialState`] — per flow, client→server: takes UDP payloads, walks coalesced
//!   packets, derives the Initial keys from the client's first Destination Connection ID
//!   (RFC 9001 §5.2; RFC 9369 §3.3 for v2), removes header protection, decrypts with
//!   AES-128-GCM, and reassembles the CRYPTO stream across packets and datagrams until the
//!   ClientHello is complete ([`QuicInitialState::client_hello`] returns the bare handshake
//!   message, without a TLS record header).
//! * [`open_initial`] — one Initial packet, decrypted with given keys (tests, tools).
//!
//! Everything is bounded: [`MAX_DATAGRAMS`] datagrams per flow, [`MAX_COALESCED`] packets
//! per datagram, [`MAX_CRYPTO`] bytes of CRYPTO data, at most two key derivations per packet.
//! Nothing is allocated before a datagram holds a complete v1/v2 client Initial packet.
//! Failures (wrong keys, truncated packets, unknown versions) are counted in
//! [`QuicStats`], never returned as errors that stop the flow.
//!
//! ```
//! use netmon_classify::quic::{looks_like_quic, QuicVersionKind, LongPacketType};
//!
//! // A v1 Initial header: flags, version, DCID (8 bytes), SCID (0), token (0), Length.
//! let mut p = vec![0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x44, 0x9e];
//! let info = looks_like_quic(&p).unwrap();
//! assert_eq!((info.version, info.kind), (1, QuicVersionKind::V1));
//! assert_eq!(info.packet_type, Some(LongPacketType::Initial));
//! p[0] = 0x43; // a short header: nothing to say
//! assert!(looks_like_quic(&p).is_none());
//! ```

mod crypto;
mod frames;
mod packet;

pub use crypto::{InitialKeys, InitialSecrets, Side, initial_keys_known};
pub use frames::MAX_CRYPTO;
pub use packet::{LongPacketType, MAX_CID_LEN, QuicVersionInfo, QuicVersionKind, read_varint};

use frames::{CryptoStream, walk_frames};
use packet::{parse_length_framed, parse_long_header};

/// QUIC version 1 (RFC 9000).
pub const QUIC_V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const QUIC_V2: u32 = 0x6b33_43cf;
/// The provisional codepoint used by the QUIC v2 drafts (RFC 9369 §9).
pub const QUIC_V2_DRAFT: u32 = 0x709a_50c4;

/// Most client datagrams a [`QuicInitialState`] examines before it gives up.
pub const MAX_DATAGRAMS: u16 = 16;
/// Most coalesced packets walked in one datagram.
pub const MAX_COALESCED: usize = 8;
/// Most distinct versions remembered per flow.
pub const MAX_VERSIONS: usize = 4;

/// Recognises QUIC by the first packet of a UDP payload: a long header with a known
/// version (v1, v2, v2 draft, IETF drafts `0xff0000xx`, Google QUIC `Q0xx`/`T0xx`, mvfst
/// `0xfaceb0xx`, reserved `0x?a?a?a?a`), a Version Negotiation packet (version 0 and a
/// version list), or a legacy Google QUIC public header with the version flag. IETF-style
/// headers must also have the fixed bit, connection IDs of at most 20 bytes and, for
/// Initial/0-RTT/Handshake packets, readable Token Length and Length fields.
///
/// Short-header packets carry no version and return `None`. Cheap and allocation-free.
pub fn looks_like_quic(udp_payload: &[u8]) -> Option<QuicVersionInfo> {
    packet::detect(udp_payload)
}

/// Why an Initial packet could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// Not a long-header packet (or its connection IDs are cut or longer than 20 bytes).
    #[error("not a QUIC long-header packet")]
    NotLongHeader,
    /// A version whose Initial keys are unknown here (only v1 and v2 are decrypted).
    #[error("no Initial keys for QUIC version {0:#010x}")]
    UnsupportedVersion(u32),
    /// A long-header packet of another type than Initial.
    #[error("not an Initial packet")]
    NotInitial,
    /// The packet's Length field runs past the end of the data (capture snaplen or a lying
    /// length), or the header itself is cut.
    #[error("Initial packet truncated: {need} bytes needed, {have} present")]
    Truncated {
        /// Bytes the header says the packet has (0 when the header itself is cut).
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The packet is too short to hold the header-protection sample and the AEAD tag.
    #[error("Initial packet too short for header protection")]
    TooShort,
    /// AEAD authentication failed: wrong keys (another connection ID or version) or
    /// corrupted bytes.
    #[error("Initial packet failed authentication")]
    Authentication,
}

/// An Initial packet opened by [`open_initial`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenedInitial {
    /// The version field.
    pub version: u32,
    /// The full (decoded) packet number.
    pub packet_number: u64,
    /// Length of the unprotected header, packet number included (`buf[..header_len]`).
    pub header_len: usize,
    /// Length of the plaintext frames (`buf[header_len..header_len + payload_len]`).
    pub payload_len: usize,
    /// Length of the whole protected packet (the next coalesced packet starts here).
    pub packet_len: usize,
}

/// Decodes a truncated packet number (RFC 9000 §A.3) against the largest packet number
/// received so far in the space (`None`: nothing yet).
fn decode_packet_number(largest: Option<u64>, truncated: u64, bits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << bits;
    let hwin = win / 2;
    let candidate = (expected & !(win - 1)) | truncated;
    if expected.checked_sub(hwin).is_some_and(|lo| candidate <= lo)
        && candidate < (1u64 << 62) - win
    {
        candidate + win
    } else if expected.checked_add(hwin).is_some_and(|hi| candidate > hi) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// Removes header protection from the Initial packet at the start of `packet` and decrypts
/// it with `keys` (RFC 9001 §5.3-5.4). Coalesced packets after it are left alone; the next
/// one starts at [`OpenedInitial::packet_len`].
///
/// `largest_pn` is the largest packet number opened so far in the Initial space (for
/// decoding the truncated packet number). `buf` is cleared and receives the unprotected
/// header followed by the plaintext (and the tag, which is not part of the payload).
///
/// Header protection (RFC 9001 §5.4.2): the 16-byte sample starts 4 bytes after the start
/// of the Packet Number field; `mask = AES-ECB(hp, sample)`; the low 4 bits of the first
/// byte are XORed with `mask[0]`, giving the packet number length, and the packet number
/// bytes with `mask[1..]`. The AEAD nonce is the IV XORed with the packet number; the AAD is
/// the unprotected header.
pub fn open_initial(
    packet: &[u8],
    keys: &InitialKeys,
    largest_pn: Option<u64>,
    buf: &mut Vec<u8>,
) -> Result<OpenedInitial, QuicError> {
    let h = parse_long_header(packet, MAX_CID_LEN).ok_or(QuicError::NotLongHeader)?;
    if !initial_keys_known(h.version) {
        return Err(QuicError::UnsupportedVersion(h.version));
    }
    let kind = QuicVersionKind::of(h.version).ok_or(QuicError::UnsupportedVersion(h.version))?;
    if LongPacketType::of(kind, h.first) != Some(LongPacketType::Initial) {
        return Err(QuicError::NotInitial);
    }
    let lf =
        parse_length_framed(packet, &h, LongPacketType::Initial).ok_or(QuicError::Truncated {
            need: 0,
            have: packet.len(),
        })?;
    let protected = packet.get(..lf.end).ok_or(QuicError::Truncated {
        need: lf.end,
        have: packet.len(),
    })?;
    let sample_at = lf.pn_offset + 4;
    let sample: &[u8; 16] = protected
        .get(sample_at..sample_at + 16)
        .and_then(|s| s.try_into().ok())
        .ok_or(QuicError::TooShort)?;
    let mask = keys.header_mask(sample);

    buf.clear();
    buf.extend_from_slice(protected);
    let first = buf.first_mut().ok_or(QuicError::TooShort)?;
    *first ^= mask[0] & 0x0f;
    let pn_len = usize::from(*first & 0x03) + 1;
    let mut truncated = 0u64;
    let pn_bytes = buf
        .get_mut(lf.pn_offset..lf.pn_offset + pn_len)
        .ok_or(QuicError::TooShort)?;
    for (b, m) in pn_bytes.iter_mut().zip(mask.iter().skip(1)) {
        *b ^= m;
        truncated = (truncated << 8) | u64::from(*b);
    }
    let pn = decode_packet_number(largest_pn, truncated, 8 * pn_len as u32);
    let header_len = lf.pn_offset + pn_len;
    let (header, body) = buf.split_at_mut(header_len);
    let payload_len = keys
        .open_in_place(pn, header, body)
        .ok_or(QuicError::Authentication)?;
    Ok(OpenedInitial {
        version: h.version,
        packet_number: pn,
        header_len,
        payload_len,
        packet_len: lf.end,
    })
}

/// Where a [`QuicInitialState`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Progress {
    /// No complete v1/v2 client Initial packet seen yet (nothing allocated).
    NotStarted,
    /// Collecting CRYPTO data; the ClientHello is not complete yet.
    InProgress,
    /// The ClientHello is complete: [`QuicInitialState::client_hello`] returns it. Further
    /// datagrams are ignored.
    Complete,
    /// The state stopped looking (see [`GiveUp`]). Further datagrams are ignored.
    GaveUp(GiveUp),
}

/// Why a [`QuicInitialState`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUp {
    /// [`MAX_DATAGRAMS`] client datagrams examined without a complete ClientHello.
    DatagramBudget,
    /// The handshake message announced is longer than [`MAX_CRYPTO`].
    HelloTooLarge,
    /// The CRYPTO stream does not start with a ClientHello (handshake type 1).
    NotClientHello,
    /// [`MAX_UNDECRYPTABLE`] client Initial packets failed authentication and none
    /// decrypted: the capture began after the client's first Initial (whose Destination
    /// Connection ID keys them all), or the packets only look like QUIC.
    Undecryptable,
}

/// Client Initial packets that may fail authentication, while none has decrypted, before a
/// [`QuicInitialState`] gives up ([`GiveUp::Undecryptable`]). Two, not one: a single damaged
/// packet is followed by the client's retransmission, which decrypts. Later packets would not
/// do better: every client Initial is keyed from the Destination Connection ID of the client's
/// first Initial (RFC 9001 §5.2), so when that packet was missed (its header names another
/// DCID) none of them decrypts. A Retry or a new connection on the same ports brings a DCID
/// of its own, which decrypts before this limit.
pub const MAX_UNDECRYPTABLE: u32 = 2;

/// Counters of a [`QuicInitialState`]: what was seen and what failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuicStats {
    /// Client datagrams examined.
    pub datagrams: u32,
    /// Client long-header Initial packets seen (any version).
    pub initial_packets: u32,
    /// Initial packets decrypted.
    pub decrypted: u32,
    /// Initial packets that failed authentication with every candidate key.
    pub decrypt_failures: u32,
    /// Initial packets cut short (snaplen, lying Length) or too short for a sample and tag.
    pub truncated: u32,
    /// Initial packets of versions without known keys (drafts, mvfst, ...).
    pub unsupported_version: u32,
    /// Initial packets ignored because no connection was started yet and their DCID is
    /// shorter than the 8 bytes a client's first Initial uses (capture began mid-handshake).
    pub short_dcid: u32,
    /// Other long-header packets skipped (0-RTT, Handshake, unknown layouts).
    pub skipped_packets: u32,
    /// CRYPTO frames taken from decrypted packets.
    pub crypto_frames: u32,
    /// Decrypted packets whose frame walk stopped at a malformed or unexpected frame.
    pub malformed_frames: u32,
    /// CRYPTO bytes beyond [`MAX_CRYPTO`], dropped.
    pub crypto_bytes_dropped: u64,
    /// Initial key derivations done.
    pub key_derivations: u32,
    /// Server datagrams examined with [`QuicInitialState::push_server_datagram`].
    pub server_datagrams: u32,
    /// Server Initial packets seen.
    pub server_initials: u32,
    /// Retry packets seen from the server.
    pub retries: u32,
}

/// A connection ID, kept by value (at most [`MAX_CID_LEN`] bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cid {
    len: u8,
    bytes: [u8; MAX_CID_LEN],
}

impl Cid {
    fn new(b: &[u8]) -> Option<Cid> {
        let mut bytes = [0; MAX_CID_LEN];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Cid {
            len: u8::try_from(b.len()).ok()?,
            bytes,
        })
    }
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// Keys derived for one (version, DCID).
struct CachedKeys {
    version: u32,
    dcid: Cid,
    keys: InitialKeys,
}

/// The per-connection part, allocated once a plausible client Initial was seen.
struct Conn {
    /// The DCID the client's Initial keys derive from: that of its first Initial, or the
    /// SCID of a server Retry once a client Initial decrypted with it.
    key_dcid: Cid,
    /// The SCID of a Retry seen from the server: the client's next DCID.
    retry_scid: Option<Cid>,
    keys: Option<CachedKeys>,
    largest_pn: Option<u64>,
    crypto: CryptoStream,
    /// Total length of the ClientHello (4-byte handshake header included), once known.
    hello_len: Option<usize>,
    /// Decryption buffer, reused.
    scratch: Vec<u8>,
}

/// The keys for (`version`, `dcid`), derived on a cache miss.
fn keys_for<'k>(
    cache: &'k mut Option<CachedKeys>,
    stats: &mut QuicStats,
    version: u32,
    dcid: &Cid,
) -> Option<&'k InitialKeys> {
    let hit = cache
        .as_ref()
        .is_some_and(|c| c.version == version && c.dcid == *dcid);
    if !hit {
        stats.key_derivations = stats.key_derivations.saturating_add(1);
        let keys = InitialKeys::derive(version, dcid.as_slice(), Side::Client)?;
        *cache = Some(CachedKeys {
            version,
            dcid: *dcid,
            keys,
        });
    }
    cache.as_ref().map(|c| &c.keys)
}

/// Recovers a client's ClientHello from its QUIC Initial packets: one per flow, fed the
/// client→server UDP payloads with [`push_datagram`](Self::push_datagram) (and, optionally,
/// the server→client ones with [`push_server_datagram`](Self::push_server_datagram) so that
/// Retry packets are noticed).
///
/// Keys: the client's Initial packets are protected with keys derived from the Destination
/// Connection ID of its first Initial (RFC 9001 §5.2); later Initials keep those keys even
/// when their DCID changes to the server's chosen ID. After a Retry the client uses the
/// Retry's Source Connection ID as DCID and as key input. A packet that fails with the
/// current keys is tried once more with keys derived from its own DCID (a Retry not seen,
/// a new connection on the same 5-tuple, or a version change); success switches the keys.
///
/// ```
/// use netmon_classify::quic::{Progress, QuicInitialState};
///
/// let mut st = QuicInitialState::new();
/// assert_eq!(st.push_datagram(b"not quic at all"), Progress::NotStarted);
/// assert!(st.client_hello().is_none());
/// assert_eq!(st.stats().datagrams, 1);
/// ```
#[derive(Default)]
pub struct QuicInitialState {
    progress: Option<Progress>,
    datagrams: u16,
    stats: QuicStats,
    versions: [u32; MAX_VERSIONS],
    n_versions: u8,
    conn: Option<Box<Conn>>,
}

impl std::fmt::Debug for QuicInitialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicInitialState")
            .field("progress", &self.progress())
            .field("versions", &self.versions())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl QuicInitialState {
    /// A fresh state; allocates nothing.
    pub fn new() -> QuicInitialState {
        QuicInitialState::default()
    }

    /// Where the state stands.
    pub fn progress(&self) -> Progress {
        match self.progress {
            Some(p) => p,
            None if self.conn.is_some() => Progress::InProgress,
            None => Progress::NotStarted,
        }
    }

    /// Whether the state is finished ([`Progress::Complete`] or [`Progress::GaveUp`]):
    /// further datagrams are ignored, so callers can stop feeding it.
    pub fn is_done(&self) -> bool {
        self.progress.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> &QuicStats {
        &self.stats
    }

    /// The distinct versions seen in long headers (both directions), first seen first, at
    /// most [`MAX_VERSIONS`].
    pub fn versions(&self) -> &[u32] {
        self.versions
            .get(..usize::from(self.n_versions))
            .unwrap_or(&[])
    }

    /// The complete ClientHello handshake message (`msg_type` 1, 24-bit length, body), with
    /// no TLS record header; `None` until [`Progress::Complete`].
    pub fn client_hello(&self) -> Option<&[u8]> {
        if self.progress != Some(Progress::Complete) {
            return None;
        }
        let conn = self.conn.as_ref()?;
        conn.crypto.prefix(conn.hello_len?)
    }

    /// Whether a Retry was seen from the server.
    pub fn retry_seen(&self) -> bool {
        self.stats.retries > 0
    }

    fn note_version(&mut self, v: u32) {
        let n = usize::from(self.n_versions);
        if self.versions().contains(&v) || n >= MAX_VERSIONS {
            return;
        }
        if let Some(slot) = self.versions.get_mut(n) {
            *slot = v;
            self.n_versions += 1;
        }
    }

    /// Examines one client→server UDP payload: every coalesced long-header packet in it
    /// (Initial packets decrypted, 0-RTT/Handshake skipped by their Length; a short-header
    /// packet or padding ends the walk). Returns the state's progress afterwards.
    pub fn push_datagram(&mut self, udp_payload: &[u8]) -> Progress {
        if let Some(p) = self.progress {
            return p;
        }
        self.stats.datagrams = self.stats.datagrams.saturating_add(1);
        self.datagrams = self.datagrams.saturating_add(1);
        let mut off = 0usize;
        for _ in 0..MAX_COALESCED {
            let Some(rest) = udp_payload.get(off..).filter(|r| !r.is_empty()) else {
                break;
            };
            let Some(h) = parse_long_header(rest, MAX_CID_LEN) else {
                break;
            };
            self.note_version(h.version);
            let kind = QuicVersionKind::of(h.version).filter(|k| k.is_ietf_layout());
            let ty = kind.and_then(|k| LongPacketType::of(k, h.first));
            let Some(
                ty
                @ (LongPacketType::Initial | LongPacketType::ZeroRtt | LongPacketType::Handshake),
            ) = ty
            else {
                self.stats.skipped_packets = self.stats.skipped_packets.saturating_add(1);
                break;
            };
            let Some(lf) = parse_length_framed(rest, &h, ty) else {
                if ty == LongPacketType::Initial {
                    self.stats.initial_packets = self.stats.initial_packets.saturating_add(1);
                    self.stats.truncated = self.stats.truncated.saturating_add(1);
                }
                break;
            };
            if ty == LongPacketType::Initial {
                self.stats.initial_packets = self.stats.initial_packets.saturating_add(1);
                self.client_initial(rest, h.version, h.dcid, lf.end);
            } else {
                self.stats.skipped_packets = self.stats.skipped_packets.saturating_add(1);
            }
            if lf.end >= rest.len() {
                break;
            }
            off += lf.end;
        }
        self.update_progress();
        self.progress()
    }

    /// One client Initial packet at the start of `packet` (`end`: its length per its header).
    fn client_initial(&mut self, packet: &[u8], version: u32, dcid: &[u8], end: usize) {
        if end > packet.len() {
            self.stats.truncated = self.stats.truncated.saturating_add(1);
            return;
        }
        if !initial_keys_known(version) {
            self.stats.unsupported_version = self.stats.unsupported_version.saturating_add(1);
            return;
        }
        let Some(pkt_dcid) = Cid::new(dcid) else {
            return;
        };
        if self.conn.is_none() {
            // RFC 9000 §7.2: a client's first DCID is at least 8 bytes; a shorter one means
            // the capture started after the first Initial.
            if dcid.len() < 8 {
                self.stats.short_dcid = self.stats.short_dcid.saturating_add(1);
                return;
            }
            self.conn = Some(Box::new(Conn {
                key_dcid: pkt_dcid,
                retry_scid: None,
                keys: None,
                largest_pn: None,
                crypto: CryptoStream::default(),
                hello_len: None,
                scratch: Vec::with_capacity(packet.len().min(2048)),
            }));
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        // Candidate key DCIDs: the current one, then the packet's own (first when it is the
        // SCID of a Retry we saw).
        let mut candidates = [Some(conn.key_dcid), None];
        if pkt_dcid != conn.key_dcid {
            if conn.retry_scid == Some(pkt_dcid) {
                candidates = [Some(pkt_dcid), Some(conn.key_dcid)];
            } else {
                candidates[1] = Some(pkt_dcid);
            }
        }
        let mut opened = None;
        let mut truncated = false;
        for cand in candidates.into_iter().flatten() {
            let Some(keys) = keys_for(&mut conn.keys, &mut self.stats, version, &cand) else {
                continue;
            };
            match open_initial(packet, keys, conn.largest_pn, &mut conn.scratch) {
                Ok(o) => {
                    opened = Some((o, cand));
                    break;
                }
                Err(QuicError::Authentication) => {}
                Err(_) => {
                    truncated = true;
                    break;
                }
            }
        }
        let Some((o, cand)) = opened else {
            if truncated {
                self.stats.truncated = self.stats.truncated.saturating_add(1);
            } else {
                self.stats.decrypt_failures = self.stats.decrypt_failures.saturating_add(1);
            }
            if self.stats.decrypted == 0 {
                // Nothing to reassemble yet: the decryption buffer (a datagram's size) is not
                // kept for a flow that may never decrypt.
                conn.scratch = Vec::new();
            }
            return;
        };
        self.stats.decrypted = self.stats.decrypted.saturating_add(1);
        conn.key_dcid = cand;
        conn.largest_pn = Some(
            conn.largest_pn
                .map_or(o.packet_number, |l| l.max(o.packet_number)),
        );
        let payload = conn
            .scratch
            .get(o.header_len..o.header_len + o.payload_len)
            .unwrap_or(&[]);
        let crypto = &mut conn.crypto;
        let walk = walk_frames(payload, |offset, data| crypto.insert(offset, data));
        self.stats.crypto_frames = self.stats.crypto_frames.saturating_add(walk.crypto);
        if walk.stopped {
            self.stats.malformed_frames = self.stats.malformed_frames.saturating_add(1);
        }
        self.stats.crypto_bytes_dropped = conn.crypto.dropped;
    }

    fn update_progress(&mut self) {
        if self.progress.is_some() {
            return;
        }
        if let Some(conn) = &mut self.conn {
            if conn.hello_len.is_none() {
                if let Some(&[ty, a, b, c]) = conn.crypto.prefix(4) {
                    if ty != 1 {
                        self.progress = Some(Progress::GaveUp(GiveUp::NotClientHello));
                    } else {
                        let len = 4 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c));
                        if len > MAX_CRYPTO {
                            self.progress = Some(Progress::GaveUp(GiveUp::HelloTooLarge));
                        } else {
                            conn.hello_len = Some(len);
                        }
                    }
                }
            }
            if let Some(n) = conn.hello_len {
                if conn.crypto.contiguous() >= n {
                    self.progress = Some(Progress::Complete);
                }
            }
        }
        if self.progress.is_none()
            && self.stats.decrypted == 0
            && self.stats.decrypt_failures >= MAX_UNDECRYPTABLE
        {
            self.progress = Some(Progress::GaveUp(GiveUp::Undecryptable));
        }
        if self.progress.is_none() && self.datagrams >= MAX_DATAGRAMS {
            self.progress = Some(Progress::GaveUp(GiveUp::DatagramBudget));
        }
        if self.progress.is_some() {
            // Finished: keep only the CRYPTO bytes (the hello), free keys and scratch.
            if let Some(conn) = &mut self.conn {
                conn.keys = None;
                conn.scratch = Vec::new();
            }
        }
    }

    /// Examines one server→client UDP payload: records versions, counts server Initials, and
    /// notes a Retry's Source Connection ID (the client's next Initial uses it as DCID and as
    /// key input). No decryption. Ignored once the state is done.
    pub fn push_server_datagram(&mut self, udp_payload: &[u8]) {
        if self.progress.is_some() {
            return;
        }
        self.stats.server_datagrams = self.stats.server_datagrams.saturating_add(1);
        let mut off = 0usize;
        for _ in 0..MAX_COALESCED {
            let Some(rest) = udp_payload.get(off..).filter(|r| !r.is_empty()) else {
                break;
            };
            let Some(h) = parse_long_header(rest, MAX_CID_LEN) else {
                break;
            };
            self.note_version(h.version);
            let kind = QuicVersionKind::of(h.version).filter(|k| k.is_ietf_layout());
            let Some(ty) = kind.and_then(|k| LongPacketType::of(k, h.first)) else {
                break;
            };
            match ty {
                LongPacketType::Retry => {
                    // RFC 9000 §17.2.5: Retry has no Length; it ends the datagram.
                    self.stats.retries = self.stats.retries.saturating_add(1);
                    if let Some(conn) = &mut self.conn {
                        conn.retry_scid = Cid::new(h.scid);
                    }
                    break;
                }
                LongPacketType::Initial => {
                    self.stats.server_initials = self.stats.server_initials.saturating_add(1);
                }
                _ => {}
            }
            let Some(lf) = parse_length_framed(rest, &h, ty) else {
                break;
            };
            if lf.end >= rest.len() {
                break;
            }
            off += lf.end;
        }
    }
}

#[cfg(test)]
mod tests;
