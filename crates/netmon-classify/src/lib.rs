//! Traffic classification for netmon: which application a flow carries, and what it says.
//!
//! The per-flow entry point is [`classifier::FlowClass`], a [`netmon_flow::FlowExt`]: the flow
//! table gives it every packet of its flow until it has decided, then it costs one branch per
//! packet. It recognises TLS, HTTP/1.x, HTTP/2 (prior knowledge, h2c upgrade), DNS over UDP and
//! TCP, mDNS, LLMNR, QUIC v1/v2 and gQUIC, STUN/TURN, DTLS, SSH and SSDP from the payload, and
//! guesses from well-known ports otherwise. The protocol modules are usable on their own:
//!
//! * [`tls`]: ClientHello/ServerHello through tls-parser (SNI, ALPN, versions, ECH, [`ja4`]);
//! * [`reasm`]: the bounded in-order reassembly of a TCP direction's first bytes;
//! * [`quic`]: Initial packet protection removal and CRYPTO reassembly (RFC 9001, RFC 9369);
//! * [`http`]: HTTP/1.x request/response heads through httparse, bodies skipped;
//! * [`dns`]: a zero-copy DNS message reader;
//! * [`correlate`]: which name a server address was resolved from, learnt from DNS answers.
//!
//! Everything read from a packet is hostile: parsers are bounded, never panic, and keep
//! strings as bytes ([`Text`]) that are escaped wherever they are shown.
//!
//! ```
//! use netmon_classify::tls::{ClientHelloInfo, Parse};
//! use netmon_classify::Text;
//!
//! // The first bytes of a TCP stream that are not TLS are told apart at once.
//! assert_eq!(ClientHelloInfo::parse_records(b"GET / HTTP/1.1\r\n"), Parse::NotTls);
//! // Strings from packets are shown escaped.
//! assert_eq!(Text::from(&b"ev\x1bil"[..]).to_escaped_string(), "ev\\x1bil");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod classifier;
pub mod correlate;
pub mod dns;
pub mod ja4;
pub mod quic;
pub mod reasm;
pub mod tls;

/// Longest string kept from a packet (SNI, Host, DNS name, user agent, ...), in bytes. Longer
/// ones are cut and marked [`Text::truncated`].
pub const MAX_TEXT: usize = 1024;

pub mod detect;
pub mod http;

/// A string taken from a packet: raw bytes (possibly invalid UTF-8, control characters, ...),
/// bounded to [`MAX_TEXT`] bytes. Show it through [`netmon_packet::Escaped`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text {
    bytes: Box<[u8]>,
    truncated: bool,
}

impl Text {
    /// Copies at most [`MAX_TEXT`] bytes of `b`.
    pub fn new(b: &[u8]) -> Text {
        let truncated = b.len() > MAX_TEXT;
        Text {
            bytes: b.get(..MAX_TEXT).unwrap_or(b).into(),
            truncated,
        }
    }
    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Whether the original was longer than what is kept.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
    /// [`escaped`](Self::escaped) as a `String`, without the formatting machinery when the bytes
    /// are plain printable ASCII (the common case: host names, methods, paths).
    pub fn to_escaped_string(&self) -> String {
        let plain = !self.truncated
            && self
                .bytes
                .iter()
                .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"');
        match core::str::from_utf8(&self.bytes) {
            Ok(s) if plain => s.to_owned(),
            _ => self.escaped().to_string(),
        }
    }

    /// The escaped, printable form (see [`netmon_packet::Escaped`]), with `…` appended when
    /// the original was longer than what was kept.
    pub fn escaped(&self) -> TextDisplay<'_> {
        TextDisplay(self)
    }
}

/// Displays a [`Text`] escaped, marking truncation with `…`.
#[derive(Clone, Copy, Debug)]
pub struct TextDisplay<'a>(&'a Text);

impl core::fmt::Display for TextDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let t = self.0;
        write!(
            f,
            "{}",
            netmon_packet::Escaped::new(&t.bytes).max_len(MAX_TEXT)
        )?;
        if t.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl From<&[u8]> for Text {
    fn from(b: &[u8]) -> Text {
        Text::new(b)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s.as_bytes())
    }
}
