#![no_main]
//! Arbitrary bytes as the start of a TLS stream (records) and as a bare handshake message
//! (QUIC's CRYPTO stream): the ClientHello and ServerHello parsers must never panic, hang or
//! allocate without bound, and what they return must be bounded and self-consistent.

use libfuzzer_sys::fuzz_target;
use netmon_classify::MAX_TEXT;
use netmon_classify::ja4::Ja4Transport;
use netmon_classify::tls::{
    ClientHello, ClientHelloInfo, MAX_ALPN, MAX_VERSIONS, Parse, ServerHelloInfo, looks_like_tls,
};

fn check_info(info: &ClientHelloInfo, transport: Ja4Transport) {
    assert!(info.alpn.len() <= MAX_ALPN);
    assert!(info.supported_versions.len() <= MAX_VERSIONS);
    assert!(info.alpn.iter().all(|t| t.as_bytes().len() <= MAX_TEXT));
    assert!(
        info.sni
            .as_ref()
            .is_none_or(|t| t.as_bytes().len() <= MAX_TEXT)
    );
    // JA4 is always 36 ASCII characters: a (10) _ b (12) _ c (12).
    assert_eq!(info.ja4.len(), 36, "{}", info.ja4);
    assert!(info.ja4.is_ascii());
    assert!(info.ja4.starts_with(transport.code()));
    let _ = info.sni.as_ref().map(|t| t.escaped().to_string());
}

fn check_hello(h: &ClientHello, transport: Ja4Transport) {
    assert!(h.alpn.len() <= MAX_ALPN);
    let info = h.info(transport);
    check_info(&info, transport);
    let raw = h.ja4_r(transport);
    assert!(raw.starts_with(&info.ja4[..10]));
}

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_tls(data);

    let records = ClientHello::parse_records(data);
    if let Parse::Done(h) = &records {
        check_hello(h, Ja4Transport::Tcp);
        // Bytes after a complete hello do not change it.
        let mut more = data.to_vec();
        more.extend_from_slice(&[0x16, 0x03, 0x03, 0x00, 0x01, 0x02]);
        assert_eq!(ClientHello::parse_records(&more), records);
        // The compact form agrees with the detailed one.
        let info = ClientHelloInfo::parse_records(data);
        assert_eq!(info, Parse::Done(h.info(Ja4Transport::Tcp)));
    }
    if records.is_incomplete() {
        // A prefix of an incomplete stream is incomplete too (nothing was decided early).
        let half = &data[..data.len() / 2];
        assert_eq!(ClientHello::parse_records(half), Parse::Incomplete);
    }

    if let Parse::Done(info) = ClientHelloInfo::parse_handshake(data) {
        check_info(&info, Ja4Transport::Quic);
    }
    if let Parse::Done(h) = ClientHello::parse_body(data) {
        check_hello(&h, Ja4Transport::Dtls);
    }

    for sh in [
        ServerHelloInfo::parse_records(data),
        ServerHelloInfo::parse_handshake(data),
    ] {
        if let Parse::Done(sh) = sh {
            assert!(
                sh.alpn
                    .as_ref()
                    .is_none_or(|t| t.as_bytes().len() <= MAX_TEXT)
            );
        }
    }
});
