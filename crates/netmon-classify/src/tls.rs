//! TLS handshake metadata: ClientHello (SNI, ALPN, offered versions, cipher count, ECH, JA4)
//! and ServerHello (selected version, cipher and ALPN), parsed with
//! [tls-parser](https://docs.rs/tls-parser) from a reassembled byte stream.
//!
//! The input of [`ClientHelloInfo::parse_records`] is the client→server byte stream from its
//! first byte (typically [`crate::reasm::StreamBuf::contiguous`]): one or more TLS records. A
//! ClientHello may be split over several records (RFC 8446 §5.1 allows any fragmentation of
//! handshake messages); their fragments are concatenated until the handshake message is
//! complete. The answer says whether more bytes are needed ([`Parse::Incomplete`]), whether
//! the stream is not TLS at all ([`Parse::NotTls`]), or is TLS but broken
//! ([`Parse::Malformed`]).
//!
//! QUIC carries the handshake without a record layer (RFC 9001 §4): its CRYPTO stream goes to
//! [`ClientHelloInfo::parse_handshake`].
//!
//! Allocation: a stream whose first bytes are not a TLS handshake record is rejected without
//! allocating; a ClientHello contained in one record is parsed in place; only a hello spread
//! over several records is copied (once, when complete). Everything kept is bounded: strings
//! are [`Text`], lists are capped ([`MAX_ALPN`], [`MAX_VERSIONS`]).

use tls_parser::{
    SNIType, TlsExtension, TlsMessageHandshake, parse_tls_client_hello_extension,
    parse_tls_extension_alpn_content, parse_tls_extension_signature_algorithms_content,
    parse_tls_extension_sni_content, parse_tls_handshake_client_hello,
    parse_tls_handshake_msg_server_hello,
};

use crate::Text;
use crate::ja4::{self, Ja4Input, Ja4Transport, is_grease};

/// Most ALPN protocol names kept from a ClientHello.
pub const MAX_ALPN: usize = 16;
/// Most (non-GREASE) supported_versions values kept in a [`ClientHelloInfo`].
pub const MAX_VERSIONS: usize = 16;

/// Longest TLS record body accepted (RFC 8446 §5.2: TLSCiphertext.length ≤ 2¹⁴ + 256; RFC 5246
/// §6.2.3 allowed 2¹⁴ + 2048 for TLS ≤ 1.2).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// Longest ClientHello/ServerHello body accepted: version (2) + random (32) + session id (33) +
/// cipher suites (2 + 2¹⁶ − 2) + compression (1 + 255) + extensions (2 + 2¹⁶ − 1).
const MAX_HELLO_LEN: usize = 2 + 32 + 33 + (1 << 16) + 256 + 2 + (1 << 16);

/// TLS record content type `handshake` (RFC 8446 §5.1).
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message types (RFC 8446 §4).
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;

/// Extension types (IANA TLS ExtensionType Values).
const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// encrypted_client_hello (draft-ietf-tls-esni-18 §11.1).
const EXT_ECH: u16 = 0xfe0d;

/// ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The outcome of parsing a prefix of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// Parsed.
    Done(T),
    /// Consistent so far; more bytes are needed.
    Incomplete,
    /// Not this protocol (or not the message looked for, e.g. a ServerHello where a
    /// ClientHello was expected): the caller may try something else.
    NotTls,
    /// This protocol, but broken: the reason names what did not parse.
    Malformed(&'static str),
}

impl<T> Parse<T> {
    /// Maps the parsed value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parse<U> {
        match self {
            Parse::Done(t) => Parse::Done(f(t)),
            Parse::Incomplete => Parse::Incomplete,
            Parse::NotTls => Parse::NotTls,
            Parse::Malformed(why) => Parse::Malformed(why),
        }
    }

    /// The parsed value, if any.
    pub fn done(self) -> Option<T> {
        match self {
            Parse::Done(t) => Some(t),
            _ => None,
        }
    }

    /// Whether more bytes could change the answer.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Parse::Incomplete)
    }
}

/// Whether `first_bytes` (the start of a stream) look like a TLS handshake record:
///
/// ```text
/// struct {                              RFC 8446 §5.1 (and RFC 5246 §6.2.1)
///     ContentType type;                 22 = handshake
///     ProtocolVersion legacy_record_version;   0x0300 ..= 0x0304
///     uint16 length;                    1 ..= 2^14 + 2048
///     opaque fragment[length];          starts with HandshakeType: 1 client_hello, 2 server_hello
/// } TLSPlaintext;
/// ```
///
/// Needs the 5-byte header; the handshake type is checked when a 6th byte is there.
pub fn looks_like_tls(first_bytes: &[u8]) -> bool {
    match first_bytes {
        [CONTENT_HANDSHAKE, 3, 0..=4, hi, lo, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            (1..=MAX_RECORD_LEN).contains(&len)
                && rest
                    .first()
                    .is_none_or(|&t| t == HS_CLIENT_HELLO || t == HS_SERVER_HELLO)
        }
        _ => false,
    }
}

/// Why no message came out (the non-`Done` cases of [`Parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Incomplete,
    NotTls,
    Malformed(&'static str),
}

impl<T> From<Stop> for Parse<T> {
    fn from(s: Stop) -> Parse<T> {
        match s {
            Stop::Incomplete => Parse::Incomplete,
            Stop::NotTls => Parse::NotTls,
            Stop::Malformed(why) => Parse::Malformed(why),
        }
    }
}

/// The handshake message found by [`first_handshake`].
enum Found<'a> {
    /// Inside the first record: borrowed.
    Whole(&'a [u8]),
    /// Spread over several records (copied into the sink, when one was given).
    Spans,
}

/// Checks the bytes of a record header that are present. A bad first record means the stream
/// is not TLS; a bad later one, a broken handshake.
fn check_record_header(rec: &[u8], first: bool) -> Result<(), Stop> {
    let bad = |why| {
        if first {
            Stop::NotTls
        } else {
            Stop::Malformed(why)
        }
    };
    if rec.first().is_some_and(|&t| t != CONTENT_HANDSHAKE) {
        return Err(bad("non-handshake record inside a handshake message"));
    }
    if rec.get(1).is_some_and(|&m| m != 3) || rec.get(2).is_some_and(|&m| m > 4) {
        return Err(bad("bad record version"));
    }
    if let [_, _, _, hi, lo, ..] = rec {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(bad("bad record length"));
        }
    }
    Ok(())
}

/// Walks the TLS records at the start of `stream` and gathers the first handshake message
/// (header included), which must be of type `want`.
///
/// ```text
/// struct {                              RFC 8446 §4
///     HandshakeType msg_type;           1 byte
///     uint24 length;                    bytes in the body
///     select (msg_type) { ... } body;   may be fragmented over several records
/// } Handshake;
/// ```
///
/// With a `sink`, the bytes of a message spread over several records are appended to it.
/// Every record carries at least one byte, so the walk is bounded by the stream length.
fn first_handshake<'a>(
    stream: &'a [u8],
    want: u8,
    mut sink: Option<&mut Vec<u8>>,
) -> Result<Found<'a>, Stop> {
    let mut pos = 0usize;
    let mut hdr = [0u8; 4];
    let mut have = 0usize;
    let mut need: Option<usize> = None;
    let mut first = true;
    loop {
        let rec = stream.get(pos..).unwrap_or(&[]);
        check_record_header(rec, first)?;
        let [_, _, _, hi, lo, body @ ..] = rec else {
            return Err(Stop::Incomplete);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let frag = body.get(..len).unwrap_or(body);
        // Message bytes in this fragment (all of it until the message length is known).
        let take = match need {
            Some(n) => frag.get(..n.saturating_sub(have)).unwrap_or(frag),
            None => frag,
        };
        for (slot, &b) in hdr.iter_mut().skip(have).zip(take) {
            *slot = b;
        }
        if let Some(s) = sink.as_deref_mut() {
            s.extend_from_slice(take);
        }
        have += take.len();
        if need.is_none() && have >= 4 {
            let [t, a, b, c] = hdr;
            if t != want {
                return Err(Stop::NotTls);
            }
            let n = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
            if n > MAX_HELLO_LEN {
                return Err(Stop::Malformed("hello longer than the protocol allows"));
            }
            need = Some(4 + n);
        } else if have > 0 && hdr[0] != want {
            // The message type is known from its first byte.
            return Err(Stop::NotTls);
        }
        if let Some(n) = need.filter(|&n| have >= n) {
            if first {
                return frag.get(..n).map(Found::Whole).ok_or(Stop::Incomplete);
            }
            if let Some(s) = sink {
                s.truncate(n);
            }
            return Ok(Found::Spans);
        }
        if frag.len() < len {
            return Err(Stop::Incomplete);
        }
        pos += 5 + len;
        first = false;
    }
}

/// Runs `parse` on the first handshake message of type `want` in `stream` (see
/// [`first_handshake`]): in place when it sits in one record, else on a copy made once the
/// message is complete.
fn with_first_handshake<T>(
    stream: &[u8],
    want: u8,
    parse: impl FnOnce(&[u8]) -> Parse<T>,
) -> Parse<T> {
    match first_handshake(stream, want, None) {
        Ok(Found::Whole(msg)) => parse(msg),
        Ok(Found::Spans) => {
            let mut msg = Vec::new();
            match first_handshake(stream, want, Some(&mut msg)) {
                Ok(_) => parse(&msg),
                Err(e) => e.into(),
            }
        }
        Err(e) => e.into(),
    }
}

/// Splits a handshake message into its type and complete body.
fn handshake_body(msg: &[u8], want: u8) -> Result<&[u8], Stop> {
    let [t, a, b, c, rest @ ..] = msg else {
        return Err(if msg.first().is_some_and(|&t| t != want) {
            Stop::NotTls
        } else {
            Stop::Incomplete
        });
    };
    if *t != want {
        return Err(Stop::NotTls);
    }
    let len = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
    if len > MAX_HELLO_LEN {
        return Err(Stop::Malformed("hello longer than the protocol allows"));
    }
    rest.get(..len).ok_or(Stop::Incomplete)
}

/// Iterates over `(type, data)` of an extension block, stopping at the first extension whose
/// length runs past the block (a truncated or malformed block keeps what parsed before).
///
/// ```text
/// struct {                              RFC 8446 §4.2
///     ExtensionType extension_type;     uint16
///     opaque extension_data<0..2^16-1>; uint16 length + bytes
/// } Extension;
/// ```
fn extensions(mut block: &[u8]) -> impl Iterator<Item = (u16, &[u8], &[u8])> {
    core::iter::from_fn(move || {
        let [t0, t1, l0, l1, rest @ ..] = block else {
            return None;
        };
        let typ = u16::from_be_bytes([*t0, *t1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let data = rest.get(..len)?;
        let raw = block.get(..4 + len)?;
        block = rest.get(len..).unwrap_or(&[]);
        Some((typ, data, raw))
    })
}

/// A ClientHello with every list in full, GREASE values included: the detail JA4 needs.
/// Transient; keep the compact [`ClientHelloInfo`] instead.
///
/// ```text
/// struct {                                              RFC 8446 §4.1.2
///     ProtocolVersion legacy_version = 0x0303;          (SSL 3.0 0x0300 … TLS 1.2 0x0303)
///     Random random;                                    32 bytes
///     opaque legacy_session_id<0..32>;
///     CipherSuite cipher_suites<2..2^16-2>;             uint16 each
///     opaque legacy_compression_methods<1..2^8-1>;
///     Extension extensions<8..2^16-1>;                  absent in SSL 3.0 / early TLS hellos
/// } ClientHello;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` (0x0303 for TLS 1.2 and 1.3 hellos).
    pub legacy_version: u16,
    /// Cipher suites in wire order.
    pub ciphers: Vec<u16>,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// The first `host_name` of the server_name extension (RFC 6066 §3).
    pub sni: Option<Text>,
    /// Whether the server_name extension is present (JA4's `d`/`i`), even if empty or broken.
    pub sni_present: bool,
    /// ALPN protocol names (RFC 7301 §3.1), at most [`MAX_ALPN`].
    pub alpn: Vec<Text>,
    /// The supported_versions extension's list (RFC 8446 §4.2.1); empty when absent.
    pub supported_versions: Vec<u16>,
    /// The signature_algorithms extension's list (RFC 8446 §4.2.3), in wire order.
    pub signature_algorithms: Vec<u16>,
    /// Whether an encrypted_client_hello extension (0xfe0d) is present: the SNI is then the
    /// public (outer) name. Browsers also send it as "GREASE ECH" when they have no ECH
    /// configuration, which an observer cannot tell apart.
    pub ech: bool,
}

impl ClientHello {
    /// Parses the client→server stream from its first byte (one or more TLS records).
    pub fn parse_records(stream: &[u8]) -> Parse<ClientHello> {
        with_first_handshake(stream, HS_CLIENT_HELLO, ClientHello::parse_handshake)
    }

    /// Parses a bare handshake message (type, 24-bit length, body), e.g. from QUIC's CRYPTO
    /// stream. Bytes after the message are ignored.
    pub fn parse_handshake(msg: &[u8]) -> Parse<ClientHello> {
        match handshake_body(msg, HS_CLIENT_HELLO) {
            Ok(body) => ClientHello::parse_body(body),
            Err(e) => e.into(),
        }
    }

    /// Parses a complete ClientHello body (after the 4-byte handshake header).
    pub fn parse_body(body: &[u8]) -> Parse<ClientHello> {
        let Ok((rest, ch)) = parse_tls_handshake_client_hello(body) else {
            return Parse::Malformed("ClientHello body");
        };
        // tls-parser drops an extension block whose length runs past the body; keep the
        // extensions that are complete, like other dissectors do.
        let ext_block = match ch.ext {
            Some(e) => e,
            None => rest.get(2..).unwrap_or(&[]),
        };
        let mut hello = ClientHello {
            legacy_version: ch.version.0,
            ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
            ..ClientHello::default()
        };
        for (typ, data, raw) in extensions(ext_block) {
            hello.extensions.push(typ);
            hello.extension(typ, data, raw);
        }
        Parse::Done(hello)
    }

    /// Takes what is needed from one extension (the first of each type counts).
    fn extension(&mut self, typ: u16, data: &[u8], raw: &[u8]) {
        match typ {
            EXT_SERVER_NAME if !self.sni_present => {
                self.sni_present = true;
                // struct { NameType name_type; opaque HostName<1..2^16-1>; } ServerName;
                // ServerName server_name_list<1..2^16-1>;                     RFC 6066 §3
                if let Ok((_, TlsExtension::SNI(names))) = parse_tls_extension_sni_content(data) {
                    self.sni = names
                        .iter()
                        .find(|(t, _)| *t == SNIType::HostName)
                        .map(|(_, name)| Text::new(name));
                }
            }
            EXT_ALPN if self.alpn.is_empty() => {
                // opaque ProtocolName<1..2^8-1>; ProtocolName protocol_name_list<2..2^16-1>;
                if let Ok((_, TlsExtension::ALPN(names))) = parse_tls_extension_alpn_content(data) {
                    self.alpn = names.iter().take(MAX_ALPN).map(|n| Text::new(n)).collect();
                }
            }
            EXT_SUPPORTED_VERSIONS if self.supported_versions.is_empty() => {
                // ProtocolVersion versions<2..254>;  (ClientHello form)
                if let Ok((_, TlsExtension::SupportedVersions(v))) =
                    parse_tls_client_hello_extension(raw)
                {
                    self.supported_versions = v.iter().map(|v| v.0).collect();
                }
            }
            EXT_SIGNATURE_ALGORITHMS if self.signature_algorithms.is_empty() => {
                // SignatureScheme supported_signature_algorithms<2..2^16-2>;
                if let Ok((_, TlsExtension::SignatureAlgorithms(v))) =
                    parse_tls_extension_signature_algorithms_content(data)
                {
                    self.signature_algorithms = v;
                }
            }
            EXT_ECH => self.ech = true,
            _ => {}
        }
    }

    /// The fields JA4 is computed from.
    pub fn ja4_input(&self) -> Ja4Input<'_> {
        Ja4Input {
            legacy_version: self.legacy_version,
            supported_versions: &self.supported_versions,
            sni: self.sni_present,
            ciphers: &self.ciphers,
            extensions: &self.extensions,
            first_alpn: self.alpn.first().map(Text::as_bytes),
            signature_algorithms: &self.signature_algorithms,
        }
    }

    /// The JA4 fingerprint.
    pub fn ja4(&self, transport: Ja4Transport) -> String {
        ja4::ja4(transport, &self.ja4_input())
    }

    /// The raw JA4 (JA4_r).
    pub fn ja4_r(&self, transport: Ja4Transport) -> String {
        ja4::ja4_r(transport, &self.ja4_input())
    }

    /// The compact summary kept per flow.
    pub fn info(&self, transport: Ja4Transport) -> ClientHelloInfo {
        let non_grease = |l: &[u16]| l.iter().filter(|&&v| !is_grease(v)).count();
        let count = |l: &[u16]| u16::try_from(non_grease(l)).unwrap_or(u16::MAX);
        ClientHelloInfo {
            sni: self.sni.clone(),
            alpn: self.alpn.clone(),
            legacy_version: self.legacy_version,
            supported_versions: self
                .supported_versions
                .iter()
                .copied()
                .filter(|&v| !is_grease(v))
                .take(MAX_VERSIONS)
                .collect(),
            cipher_count: count(&self.ciphers),
            extension_count: count(&self.extensions),
            ech: self.ech,
            ja4: self.ja4(transport),
        }
    }
}

/// What a flow record keeps of a ClientHello. Bounded: strings are [`Text`], lists capped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHelloInfo {
    /// Server name (first `host_name` of the SNI extension). With [`ech`](Self::ech) set, the
    /// public name of the ECH outer hello, not necessarily the real destination.
    pub sni: Option<Text>,
    /// ALPN protocol names offered, in order (at most [`MAX_ALPN`]).
    pub alpn: Vec<Text>,
    /// `legacy_version` of the hello (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// Non-GREASE supported_versions values, in order (at most [`MAX_VERSIONS`]); empty when
    /// the extension is absent (then `legacy_version` is the highest offered version).
    pub supported_versions: Vec<u16>,
    /// Number of non-GREASE cipher suites offered.
    pub cipher_count: u16,
    /// Number of non-GREASE extensions.
    pub extension_count: u16,
    /// An encrypted_client_hello extension (0xfe0d) is present.
    pub ech: bool,
    /// JA4 fingerprint (`t…` for TLS over TCP, `q…` for QUIC).
    pub ja4: String,
}

impl ClientHelloInfo {
    /// Parses the client→server stream of a TLS-over-TCP connection from its first byte; JA4
    /// starts with `t`. See the [module docs](self).
    ///
    /// ```
    /// use netmon_classify::tls::{ClientHelloInfo, Parse};
    /// assert_eq!(ClientHelloInfo::parse_records(&[0x16, 0x03, 0x01]), Parse::Incomplete);
    /// assert_eq!(ClientHelloInfo::parse_records(b"GET / HTTP/1.1\r\n"), Parse::NotTls);
    /// ```
    pub fn parse_records(stream: &[u8]) -> Parse<ClientHelloInfo> {
        ClientHello::parse_records(stream).map(|h| h.info(Ja4Transport::Tcp))
    }

    /// Parses a bare handshake message (QUIC's CRYPTO stream from offset 0); JA4 starts with
    /// `q`.
    pub fn parse_handshake(msg: &[u8]) -> Parse<ClientHelloInfo> {
        ClientHelloInfo::parse_handshake_as(msg, Ja4Transport::Quic)
    }

    /// Parses a bare handshake message, fingerprinting it as carried by `transport`.
    pub fn parse_handshake_as(msg: &[u8], transport: Ja4Transport) -> Parse<ClientHelloInfo> {
        ClientHello::parse_handshake(msg).map(|h| h.info(transport))
    }

    /// The highest version offered: the highest non-GREASE supported_versions value, else
    /// `legacy_version`.
    pub fn max_version(&self) -> u16 {
        ja4::ja4_version(self.legacy_version, &self.supported_versions)
    }
}

/// What a flow record keeps of a ServerHello.
///
/// ```text
/// struct {                                              RFC 8446 §4.1.3
///     ProtocolVersion legacy_version = 0x0303;
///     Random random;                                    HelloRetryRequest: fixed value
///     opaque legacy_session_id_echo<0..32>;
///     CipherSuite cipher_suite;
///     uint8 legacy_compression_method = 0;
///     Extension extensions<6..2^16-1>;                  supported_versions carries 1.3
/// } ServerHello;
/// ```
///
/// TLS 1.3 draft 18 (legacy_version 0x7f12) has no session id and no compression method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHelloInfo {
    /// `legacy_version` of the ServerHello.
    pub legacy_version: u16,
    /// The selected version: the supported_versions extension's value if present, else
    /// `legacy_version`.
    pub version: u16,
    /// The selected cipher suite.
    pub cipher: u16,
    /// The selected ALPN protocol (TLS ≤ 1.2; TLS 1.3 sends it encrypted).
    pub alpn: Option<Text>,
    /// This is a HelloRetryRequest (RFC 8446 §4.1.4), not a real ServerHello.
    pub hello_retry: bool,
}

impl ServerHelloInfo {
    /// Parses the server→client stream from its first byte (one or more TLS records).
    pub fn parse_records(stream: &[u8]) -> Parse<ServerHelloInfo> {
        with_first_handshake(stream, HS_SERVER_HELLO, ServerHelloInfo::parse_handshake)
    }

    /// Parses a bare ServerHello handshake message (type, 24-bit length, body).
    pub fn parse_handshake(msg: &[u8]) -> Parse<ServerHelloInfo> {
        let body = match handshake_body(msg, HS_SERVER_HELLO) {
            Ok(body) => body,
            Err(e) => return e.into(),
        };
        // tls-parser parses by handshake version: 0x0300 (no extensions), 0x0301..=0x0303,
        // 0x7f12 (TLS 1.3 draft 18).
        let (legacy_version, random, cipher, ext) = match parse_tls_handshake_msg_server_hello(body)
        {
            Ok((_, TlsMessageHandshake::ServerHello(sh))) => {
                (sh.version.0, Some(sh.random), sh.cipher.0, sh.ext)
            }
            Ok((_, TlsMessageHandshake::ServerHelloV13Draft18(sh))) => {
                (sh.version.0, None, sh.cipher.0, sh.ext)
            }
            _ => return Parse::Malformed("ServerHello body"),
        };
        let mut info = ServerHelloInfo {
            legacy_version,
            version: legacy_version,
            cipher,
            alpn: None,
            hello_retry: random == Some(&HRR_RANDOM[..]),
        };
        let mut seen_version = false;
        for (typ, data, _) in extensions(ext.unwrap_or(&[])) {
            match typ {
                // ProtocolVersion selected_version;   (ServerHello form)
                EXT_SUPPORTED_VERSIONS if !seen_version => {
                    if let [hi, lo] = data {
                        info.version = u16::from_be_bytes([*hi, *lo]);
                        seen_version = true;
                    }
                }
                // Exactly one ProtocolName (RFC 7301 §3.1).
                EXT_ALPN if info.alpn.is_none() => {
                    if let Ok((_, TlsExtension::ALPN(names))) =
                        parse_tls_extension_alpn_content(data)
                    {
                        info.alpn = names.first().map(|n| Text::new(n));
                    }
                }
                _ => {}
            }
        }
        Parse::Done(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// Frame 4 of arkime's tls-alpn-h2.pcap (curl to www.cloudflare.com, TLS 1.2, ALPN h2).
    /// Arkime's test expectation for it: JA4 t12d4605h2_85626a9a5f7f_aaf95bb78ec9.
    const ALPN_H2_HELLO: &str = "
        16030100e8010000e40303858226c04fbaeddef4246093b4cfdab38f9dcfef145360e417686575cac49c7000005cc030
        c02cc028c024c014c00a009f006b0039cca9cca8ccaaff8500c400880081009d003d003500c00084c02fc02bc027c023
        c013c009009e0067003300be0045009c003c002f00ba0041c011c00700050004c012c0080016000a00ff0100005f0000
        001700150000127777772e636c6f7564666c6172652e636f6d000b00020100000a00080006001d00170018000d001c00
        1a06010603efef0501050304010403eeeeeded03010303020102030010000e000c02683208687474702f312e31";
    /// Frame 6 of the same capture, the first record: the ServerHello (cipher 0xcca9, ALPN h2).
    const ALPN_H2_SERVER_HELLO: &str = "
        16030300640200006003035f0236c07f47bfb12dc2da706ecb3fe7f9eeac9968cc2ddf444f574e4752440120b89ff1ab
        695278c69b8a73f76242ef755e0b13dc6d459aaaa784fec9c2dfce34cca900001800000000ff01000100000b00020100
        0010000500030268321603030a0c0b000a08";

    fn ext(t: u16, data: &[u8]) -> Vec<u8> {
        let mut v = t.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }
    fn u16_list(len_bytes: usize, list: &[u16]) -> Vec<u8> {
        let body: Vec<u8> = list.iter().flat_map(|v| v.to_be_bytes()).collect();
        let mut v = (body.len() as u32).to_be_bytes()[4 - len_bytes..].to_vec();
        v.extend(body);
        v
    }
    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut entry = vec![0u8];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name);
        let mut list = (entry.len() as u16).to_be_bytes().to_vec();
        list.extend(entry);
        ext(EXT_SERVER_NAME, &list)
    }
    fn alpn_ext(names: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = names
            .iter()
            .flat_map(|n| std::iter::once(n.len() as u8).chain(n.iter().copied()))
            .collect();
        let mut list = (body.len() as u16).to_be_bytes().to_vec();
        list.extend(body);
        ext(EXT_ALPN, &list)
    }
    fn client_hello(version: u16, ciphers: &[u16], exts: Option<&[Vec<u8>]>) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend([7u8; 32]); // random
        b.push(32);
        b.extend([9u8; 32]); // session id
        b.extend(u16_list(2, ciphers));
        b.extend([1, 0]); // compression: null
        if let Some(exts) = exts {
            let e: Vec<u8> = exts.concat();
            b.extend_from_slice(&(e.len() as u16).to_be_bytes());
            b.extend(e);
        }
        handshake(HS_CLIENT_HELLO, &b)
    }
    fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }
    /// `msg` in TLS records, split at the given handshake offsets.
    fn records(version: u16, msg: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&msg.len())) {
            let frag = &msg[prev..c];
            out.push(CONTENT_HANDSHAKE);
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&(frag.len() as u16).to_be_bytes());
            out.extend_from_slice(frag);
            prev = c;
        }
        out
    }
    /// A Chrome-like TLS 1.3 hello with GREASE values and an ECH extension.
    fn chrome_like(sni: &[u8]) -> Vec<u8> {
        let exts = vec![
            ext(0x1a1a, &[]),
            sni_ext(sni),
            ext(0x0017, &[]),
            alpn_ext(&[b"h2", b"http/1.1"]),
            ext(
                EXT_SIGNATURE_ALGORITHMS,
                &u16_list(2, &[0x0403, 0x0804, 0x0401]),
            ),
            ext(
                EXT_SUPPORTED_VERSIONS,
                &u16_list(1, &[0x9a9a, 0x0304, 0x0303]),
            ),
            ext(EXT_ECH, &[0, 0, 1, 0, 1, 0x42, 0, 0, 0, 0]),
            ext(0x0033, &[0; 36]),
            ext(0x2a2a, &[0]),
        ];
        client_hello(0x0303, &[0x4a4a, 0x1301, 0x1302, 0xc02b], Some(&exts))
    }

    #[test]
    fn real_hello_and_arkime_ja4() {
        let stream = unhex(ALPN_H2_HELLO);
        assert!(looks_like_tls(&stream));
        let h = ClientHello::parse_records(&stream).done().unwrap();
        assert_eq!(h.sni, Some(Text::from("www.cloudflare.com")));
        assert_eq!(h.alpn, vec![Text::from("h2"), Text::from("http/1.1")]);
        assert_eq!(h.legacy_version, 0x0303);
        assert_eq!(h.ciphers.len(), 46);
        assert_eq!(h.extensions, vec![0x0000, 0x000b, 0x000a, 0x000d, 0x0010]);
        assert_eq!(
            h.ja4(Ja4Transport::Tcp),
            "t12d4605h2_85626a9a5f7f_aaf95bb78ec9"
        );
        assert_eq!(
            h.ja4_r(Ja4Transport::Tcp),
            "t12d4605h2_0004,0005,000a,0016,002f,0033,0035,0039,003c,003d,0041,0045,0067,006b,\
             0081,0084,0088,009c,009d,009e,009f,00ba,00be,00c0,00c4,00ff,c007,c008,c009,c00a,\
             c011,c012,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa,ff85_\
             000a,000b,000d_0601,0603,efef,0501,0503,0401,0403,eeee,eded,0301,0303,0201,0203"
        );
        let info = ClientHelloInfo::parse_records(&stream).done().unwrap();
        assert_eq!(info.cipher_count, 46);
        assert_eq!(info.extension_count, 5);
        assert!(!info.ech && info.supported_versions.is_empty());
        assert_eq!(info.max_version(), 0x0303);
        assert_eq!(info.ja4, "t12d4605h2_85626a9a5f7f_aaf95bb78ec9");
        // The bare handshake message (QUIC's view) gives the same fields, JA4 with `q`.
        let q = ClientHelloInfo::parse_handshake(&stream[5..])
            .done()
            .unwrap();
        assert_eq!(q.sni, info.sni);
        assert_eq!(q.ja4, info.ja4.replacen('t', "q", 1));
        // Not a ServerHello.
        assert_eq!(ServerHelloInfo::parse_records(&stream), Parse::NotTls);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let stream = unhex(ALPN_H2_HELLO);
        for n in 0..stream.len() {
            assert_eq!(
                ClientHelloInfo::parse_records(&stream[..n]),
                Parse::Incomplete,
                "prefix {n}"
            );
        }
        // Trailing bytes (the next record) do not matter.
        let mut more = stream.clone();
        more.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
        assert_eq!(
            ClientHelloInfo::parse_records(&more),
            ClientHelloInfo::parse_records(&stream)
        );
    }

    #[test]
    fn split_into_two_records_at_every_offset() {
        let stream = unhex(ALPN_H2_HELLO);
        let msg = &stream[5..];
        let want = ClientHelloInfo::parse_records(&stream).done().unwrap();
        for cut in 1..msg.len() {
            let two = records(0x0301, msg, &[cut]);
            assert_eq!(
                ClientHelloInfo::parse_records(&two),
                Parse::Done(want.clone()),
                "cut {cut}"
            );
            // Until the second record is complete, more is needed.
            for n in [cut + 5, two.len() - 1] {
                assert_eq!(ClientHelloInfo::parse_records(&two[..n]), Parse::Incomplete);
            }
        }
        // Many tiny records.
        let cuts: Vec<usize> = (1..msg.len()).collect();
        assert_eq!(
            ClientHelloInfo::parse_records(&records(0x0303, msg, &cuts)),
            Parse::Done(want)
        );
    }

    #[test]
    fn grease_and_ech() {
        let msg = chrome_like(b"public.example.com");
        let stream = records(0x0301, &msg, &[]);
        let info = ClientHelloInfo::parse_records(&stream).done().unwrap();
        assert!(info.ech);
        assert_eq!(info.sni, Some(Text::from("public.example.com")));
        assert_eq!(info.supported_versions, vec![0x0304, 0x0303]);
        assert_eq!(info.max_version(), 0x0304);
        assert_eq!(info.cipher_count, 3);
        assert_eq!(info.extension_count, 7);
        assert!(info.ja4.starts_with("t13d0307h2_"), "{}", info.ja4);
        // GREASE values are kept as data in the detailed view.
        let h = ClientHello::parse_records(&stream).done().unwrap();
        assert_eq!(h.ciphers[0], 0x4a4a);
        assert_eq!(h.supported_versions, vec![0x9a9a, 0x0304, 0x0303]);
        assert_eq!(h.signature_algorithms, vec![0x0403, 0x0804, 0x0401]);
        // JA4 does not see them: the same hello without GREASE has the same fingerprint.
        let plain = {
            let exts = vec![
                sni_ext(b"public.example.com"),
                ext(0x0017, &[]),
                alpn_ext(&[b"h2", b"http/1.1"]),
                ext(
                    EXT_SIGNATURE_ALGORITHMS,
                    &u16_list(2, &[0x0403, 0x0804, 0x0401]),
                ),
                ext(EXT_SUPPORTED_VERSIONS, &u16_list(1, &[0x0304, 0x0303])),
                ext(EXT_ECH, &[]),
                ext(0x0033, &[]),
            ];
            client_hello(0x0303, &[0x1301, 0x1302, 0xc02b], Some(&exts))
        };
        let plain = ClientHelloInfo::parse_handshake_as(&plain, Ja4Transport::Tcp)
            .done()
            .unwrap();
        assert_eq!(plain.ja4, info.ja4);
    }

    #[test]
    fn legacy_hellos() {
        // SSL 3.0: no extension block at all.
        let msg = client_hello(0x0300, &[0x000a, 0x0005, 0x00ff], None);
        let stream = records(0x0300, &msg, &[]);
        assert!(looks_like_tls(&stream));
        let info = ClientHelloInfo::parse_records(&stream).done().unwrap();
        assert_eq!(info.legacy_version, 0x0300);
        assert_eq!((info.cipher_count, info.extension_count), (3, 0));
        assert!(info.sni.is_none() && info.alpn.is_empty());
        assert!(
            info.ja4.starts_with("ts3i030000_") && info.ja4.ends_with("_000000000000"),
            "{}",
            info.ja4
        );
        // TLS 1.0 with SNI only.
        let msg = client_hello(0x0301, &[0x002f], Some(&[sni_ext(b"old.example")]));
        let info = ClientHelloInfo::parse_records(&records(0x0301, &msg, &[]))
            .done()
            .unwrap();
        assert_eq!(info.sni, Some(Text::from("old.example")));
        assert!(info.ja4.starts_with("t10d010100_"), "{}", info.ja4);
    }

    #[test]
    fn not_tls_and_malformed() {
        for s in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"SSH-2.0-x",
            b"\x17\x03\x03\x00\x10",
            b"\x16\x02",
        ] {
            assert!(!looks_like_tls(s));
            assert_eq!(ClientHelloInfo::parse_records(s), Parse::NotTls);
        }
        assert!(!looks_like_tls(b"\x16\x03\x01\x00\x00"));
        assert!(!looks_like_tls(b"\x16\x03\x01\x48\x01"));
        assert!(!looks_like_tls(b"\x16\x03\x01\x00\x10\x0b"));
        assert_eq!(
            ClientHelloInfo::parse_records(b"\x16\x03\x05"),
            Parse::NotTls
        );
        assert_eq!(ClientHelloInfo::parse_records(b""), Parse::Incomplete);
        assert_eq!(ClientHelloInfo::parse_records(b"\x16"), Parse::Incomplete);
        // A handshake record that is not a ClientHello.
        assert_eq!(
            ClientHelloInfo::parse_records(b"\x16\x03\x03\x00\x04\x0b\x00\x00\x00"),
            Parse::NotTls
        );
        let stream = unhex(ALPN_H2_HELLO);
        let msg = &stream[5..];
        // A second record of another content type in the middle of the hello.
        let mut two = records(0x0303, msg, &[100]);
        two[105] = 0x17;
        assert!(matches!(
            ClientHelloInfo::parse_records(&two),
            Parse::Malformed(_)
        ));
        // A zero-length record in the middle.
        let mut zero = records(0x0303, &msg[..100], &[]);
        zero.extend_from_slice(&[0x16, 3, 3, 0, 0]);
        assert!(matches!(
            ClientHelloInfo::parse_records(&zero),
            Parse::Malformed(_)
        ));
        // Cipher suite length running past the body.
        let mut bad = stream.clone();
        bad[5 + 4 + 2 + 32 + 1] = 0xff;
        assert!(matches!(
            ClientHelloInfo::parse_records(&bad),
            Parse::Malformed(_)
        ));
        // An absurd handshake length.
        assert!(matches!(
            ClientHelloInfo::parse_records(b"\x16\x03\x01\x00\x04\x01\xff\xff\xff"),
            Parse::Malformed(_)
        ));
        // Extension block truncated inside the last extension: what parsed before stays.
        let mut cut = msg.to_vec();
        let total = cut.len();
        cut.truncate(total - 4); // into the ALPN extension
        let body_len = (cut.len() - 4) as u32;
        cut[1..4].copy_from_slice(&body_len.to_be_bytes()[1..]);
        let h = ClientHello::parse_handshake(&cut).done().unwrap();
        assert_eq!(h.sni, Some(Text::from("www.cloudflare.com")));
        assert!(h.alpn.is_empty());
        assert_eq!(h.extensions, vec![0x0000, 0x000b, 0x000a, 0x000d]);
    }

    #[test]
    fn server_hello() {
        let stream = unhex(ALPN_H2_SERVER_HELLO);
        assert!(looks_like_tls(&stream));
        let sh = ServerHelloInfo::parse_records(&stream).done().unwrap();
        assert_eq!(sh.version, 0x0303);
        assert_eq!(sh.cipher, 0xcca9);
        assert_eq!(sh.alpn, Some(Text::from("h2")));
        assert!(!sh.hello_retry);
        assert_eq!(ClientHelloInfo::parse_records(&stream), Parse::NotTls);
        for n in 0..105 {
            assert_eq!(
                ServerHelloInfo::parse_records(&stream[..n]),
                Parse::Incomplete
            );
        }
        // TLS 1.3: the version is in supported_versions; a HelloRetryRequest is flagged.
        let mut body = 0x0303u16.to_be_bytes().to_vec();
        body.extend(HRR_RANDOM);
        body.push(0);
        body.extend([0x13, 0x01, 0]);
        let e = [
            ext(EXT_SUPPORTED_VERSIONS, &[3, 4]),
            ext(0x0033, &[0, 0x1d]),
        ]
        .concat();
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend(e);
        let msg = handshake(HS_SERVER_HELLO, &body);
        let sh = ServerHelloInfo::parse_records(&records(0x0303, &msg, &[3, 40]))
            .done()
            .unwrap();
        assert_eq!(
            (sh.legacy_version, sh.version, sh.cipher),
            (0x0303, 0x0304, 0x1301)
        );
        assert!(sh.hello_retry && sh.alpn.is_none());
        // TLS 1.3 draft 18: version 0x7f12, no session id.
        let mut body = 0x7f12u16.to_be_bytes().to_vec();
        body.extend([1u8; 32]);
        body.extend([0x13, 0x01, 0, 0]);
        let sh = ServerHelloInfo::parse_handshake(&handshake(HS_SERVER_HELLO, &body))
            .done()
            .unwrap();
        assert_eq!((sh.version, sh.cipher), (0x7f12, 0x1301));
        // SSL 3.0 (no extensions) and an unknown version.
        let mut body = 0x0300u16.to_be_bytes().to_vec();
        body.extend([1u8; 32]);
        body.extend([0, 0x00, 0x0a, 0]);
        let sh = ServerHelloInfo::parse_handshake(&handshake(HS_SERVER_HELLO, &body));
        assert_eq!(sh.done().map(|s| s.version), Some(0x0300));
        body[0] = 9;
        assert!(matches!(
            ServerHelloInfo::parse_handshake(&handshake(HS_SERVER_HELLO, &body)),
            Parse::Malformed(_)
        ));
    }

    #[test]
    fn hostile_sni() {
        // Control characters and an ANSI escape: kept as bytes, escaped on display.
        let name = b"evil\x1b[31m\r\n\x00.example\xff\xfe";
        let msg = client_hello(0x0303, &[0x1301], Some(&[sni_ext(name)]));
        let info = ClientHelloInfo::parse_records(&records(0x0303, &msg, &[]))
            .done()
            .unwrap();
        let sni = info.sni.unwrap();
        assert_eq!(sni.as_bytes(), name);
        let shown = sni.escaped().to_string();
        assert!(!shown.bytes().any(|b| b.is_ascii_control()), "{shown}");
        assert_eq!(shown, r"evil\x1b[31m\x0d\x0a\x00.example\xff\xfe");
        // 10 KB of SNI (invalid UTF-8 included): bounded, marked truncated.
        let long: Vec<u8> = (0..10_240u32)
            .map(|i| [b'a', 0xc3, 0x28][i as usize % 3])
            .collect();
        let msg = client_hello(0x0303, &[0x1301], Some(&[sni_ext(&long)]));
        let info = ClientHelloInfo::parse_records(&records(0x0303, &msg, &[]))
            .done()
            .unwrap();
        let sni = info.sni.unwrap();
        assert!(sni.truncated());
        assert_eq!(sni.as_bytes(), &long[..crate::MAX_TEXT]);
        let shown = sni.escaped().to_string();
        assert!(!shown.bytes().any(|b| b.is_ascii_control()));
        assert!(shown.len() <= 4 * crate::MAX_TEXT);
        assert!(shown.starts_with(r"a\xc3(a\xc3("), "{}", &shown[..20]);
        // Many ALPN names: at most MAX_ALPN kept.
        let names: Vec<Vec<u8>> = (0..100u8).map(|i| vec![b'p', i]).collect();
        let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        let msg = client_hello(0x0303, &[0x1301], Some(&[alpn_ext(&refs)]));
        let info = ClientHelloInfo::parse_handshake(&msg).done().unwrap();
        assert_eq!(info.alpn.len(), MAX_ALPN);
    }
}
