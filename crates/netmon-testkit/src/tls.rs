//! TLS handshake builders for tests: a TLS 1.3-shaped ClientHello and ServerHello, and their
//! framing into handshake records; and an independent reading of a ClientHello ([`sni_alpn`]).
//!
//! ```text
//! ClientHello (RFC 8446 §4.1.2)              ServerHello (RFC 8446 §4.1.3)
//!   uint16 legacy_version = 0x0303             uint16 legacy_version = 0x0303
//!   opaque random[32]                          opaque random[32]
//!   opaque legacy_session_id<0..32>            opaque legacy_session_id_echo<0..32>
//!   CipherSuite cipher_suites<2..2^16-2>       CipherSuite cipher_suite
//!   opaque legacy_compression_methods<1..255>  uint8 legacy_compression_method = 0
//!   Extension extensions<8..2^16-1>            Extension extensions<6..2^16-1>
//! Handshake: uint8 msg_type; uint24 length; body
//! TLSPlaintext: uint8 type = 22; uint16 legacy_record_version; uint16 length; fragment
//! ```

use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_message_handshake,
};

/// One extension: `uint16 type; opaque data<0..2^16-1>`.
pub fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut v = t.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A handshake message of type `msg_type` around `body`.
pub fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![msg_type];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(body);
    msg
}

/// A ClientHello handshake message (no record header) with server name `sni`, ALPN protocols
/// `alpn`, and a key share of `key_share_len` bytes (1216 for X25519MLKEM768, 36 for X25519):
/// a GREASE extension, TLS 1.3 and 1.2 in supported_versions, three cipher suites (one GREASE).
pub fn client_hello(sni: &[u8], alpn: &[Vec<u8>], key_share_len: usize) -> Vec<u8> {
    let mut name = vec![0u8];
    name.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    name.extend_from_slice(sni);
    let mut sni_list = (name.len() as u16).to_be_bytes().to_vec();
    sni_list.extend(name);
    let alpn_body: Vec<u8> = alpn
        .iter()
        .flat_map(|n| std::iter::once(n.len() as u8).chain(n.iter().copied()))
        .collect();
    let mut alpn_list = (alpn_body.len() as u16).to_be_bytes().to_vec();
    alpn_list.extend(alpn_body);
    let exts = [
        ext(0x0a0a, &[]),
        ext(0x0000, &sni_list),
        ext(0x0010, &alpn_list),
        ext(0x000d, &[0, 4, 0x04, 0x03, 0x08, 0x04]),
        ext(0x002b, &[4, 0x03, 0x04, 0x03, 0x03]),
        ext(0x0033, &vec![0x11; key_share_len]),
        ext(0x0015, &[]),
    ]
    .concat();
    let mut body = vec![0x03, 0x03];
    body.extend([0x5a; 32]);
    body.push(0);
    body.extend([0, 6, 0x13, 0x01, 0x13, 0x02, 0x3a, 0x3a]);
    body.extend([1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    handshake(1, &body)
}

/// A TLS 1.3 ServerHello handshake message (no record header): cipher `cipher`, a 32-byte
/// session id echo, supported_versions = TLS 1.3 and an X25519 key share.
pub fn server_hello(cipher: u16) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([0x6b; 32]);
    body.push(32);
    body.extend([0x5a; 32]);
    body.extend_from_slice(&cipher.to_be_bytes());
    body.push(0);
    let mut share = vec![0x00, 0x1d, 0x00, 0x20];
    share.extend([0x22; 32]);
    let exts = [ext(0x002b, &[0x03, 0x04]), ext(0x0033, &share)].concat();
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    handshake(2, &body)
}

/// `msg` as TLS handshake records (record version 0x0301) cut at `cuts` (offsets into `msg`,
/// taken modulo its length; duplicates and 0 ignored).
pub fn records(msg: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|c| c % msg.len().max(1))
        .filter(|&c| c > 0)
        .collect();
    cuts.push(msg.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in cuts {
        out.extend([0x16, 0x03, 0x01]);
        out.extend_from_slice(&((c - prev) as u16).to_be_bytes());
        out.extend_from_slice(&msg[prev..c]);
        prev = c;
    }
    out
}

/// A record of content type `content_type` (20 change_cipher_spec, 21 alert, 23
/// application_data) with record version 0x0303 around `fragment`.
pub fn record(content_type: u8, fragment: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type, 0x03, 0x03];
    out.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
    out.extend_from_slice(fragment);
    out
}

/// SNI (host names) and ALPN of a bare ClientHello handshake message, read with tls-parser:
/// an independent reading for tests of netmon's own hello parsers. Panics on anything else.
pub fn sni_alpn(msg: &[u8]) -> (Vec<String>, Vec<String>) {
    let (_, m) = parse_tls_message_handshake(msg).expect("a handshake message");
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = m else {
        panic!("not a ClientHello: {m:?}");
    };
    let (_, exts) = parse_tls_client_hello_extensions(ch.ext.unwrap_or_default())
        .expect("ClientHello extensions parse");
    let (mut sni, mut alpn) = (Vec::new(), Vec::new());
    for e in exts {
        match e {
            TlsExtension::SNI(v) => sni.extend(
                v.iter()
                    .filter(|(t, _)| *t == SNIType::HostName)
                    .map(|(_, n)| String::from_utf8_lossy(n).into_owned()),
            ),
            TlsExtension::ALPN(v) => {
                alpn.extend(v.iter().map(|p| String::from_utf8_lossy(p).into_owned()))
            }
            _ => {}
        }
    }
    (sni, alpn)
}
