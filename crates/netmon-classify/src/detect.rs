//! Small protocol recognisers (SSH banners, STUN/TURN, DTLS) and the port table for guesses.
//!
//! Payload signatures decide; ports only guess, and results from ports are marked as guesses.

use crate::Text;
use netmon_packet::bytes::{be16, be32};

/// An SSH identification string (RFC 4253 §4.2): `SSH-protoversion-softwareversion SP comments CR LF`.
/// Returns the line without its line end, bounded to 255 bytes (the RFC's maximum).
pub fn ssh_banner(payload: &[u8]) -> Option<&[u8]> {
    if !payload.starts_with(b"SSH-") {
        return None;
    }
    let end = payload
        .iter()
        .take(255)
        .position(|&b| b == b'\n')
        .unwrap_or(payload.len().min(255));
    let line = payload.get(..end)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // "SSH-" digits "." digits "-" ...: reject random data that starts with "SSH-".
    let rest = line.get(4..)?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let ver = rest.get(..dash)?;
    if ver.is_empty() || !ver.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some(line)
}

/// STUN magic cookie (RFC 5389 §6).
pub const STUN_COOKIE: u32 = 0x2112_a442;

/// What a STUN message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StunInfo {
    /// Message type (method and class bits).
    pub msg_type: u16,
    /// The SOFTWARE attribute (0x8022), if present.
    pub software: Option<Text>,
    /// Whether the message carries TURN methods (allocate, refresh, send, data, ...).
    pub turn: bool,
}

/// Recognises a STUN/TURN message (RFC 5389/8489 header with the magic cookie):
///
/// ```text
/// |0 0| STUN Message Type (14) | Message Length (16) | Magic Cookie (32) | Transaction ID (96) |
/// attributes: | Type (16) | Length (16) | Value (padded to 4 bytes) |
/// ```
pub fn stun(p: &[u8]) -> Option<StunInfo> {
    let msg_type = be16(p, 0)?;
    let len = usize::from(be16(p, 2)?);
    let cookie = be32(p, 4)?;
    if msg_type & 0xc000 != 0 || cookie != STUN_COOKIE || len % 4 != 0 || 20 + len > p.len() {
        return None;
    }
    let method = (msg_type & 0x000f) | ((msg_type & 0x00e0) >> 1) | ((msg_type & 0x3e00) >> 2);
    let mut info = StunInfo {
        msg_type,
        software: None,
        turn: matches!(method, 0x003..=0x00a),
    };
    let attrs = p.get(20..20 + len)?;
    let mut at = 0;
    let mut n = 0;
    while at + 4 <= attrs.len() && n < 64 {
        n += 1;
        let (Some(t), Some(l)) = (be16(attrs, at), be16(attrs, at + 2)) else {
            break;
        };
        let l = usize::from(l);
        let Some(v) = attrs.get(at + 4..at + 4 + l) else {
            break;
        };
        if t == 0x8022 {
            info.software = Some(Text::new(v));
        }
        at += 4 + l.div_ceil(4) * 4;
    }
    Some(info)
}

/// Recognises a DTLS record (RFC 6347 §4.1 / RFC 9147) and returns its version:
///
/// ```text
/// | ContentType (8) | ProtocolVersion (16) | epoch (16) | sequence_number (48) | length (16) |
/// ```
pub fn dtls(p: &[u8]) -> Option<u16> {
    let ct = *p.first()?;
    let version = be16(p, 1)?;
    let len = usize::from(be16(p, 11)?);
    if !(20..=25).contains(&ct)
        || !matches!(version, 0xfeff | 0xfefd | 0xfefc)
        || 13 + len > p.len()
    {
        return None;
    }
    Some(version)
}

/// A guess from well-known ports: the protocol the responder's (or, failing that, the other)
/// port is registered for. Only ports a monitor meets often; everything else stays unknown.
pub fn port_guess(proto: u8, responder_port: u16, initiator_port: u16) -> Option<&'static str> {
    let one = |port: u16| -> Option<&'static str> {
        Some(match (proto, port) {
            (6, 20 | 21) => "ftp",
            (6, 22) => "ssh",
            (6, 23) => "telnet",
            (6, 25 | 465 | 587) => "smtp",
            (6 | 17, 53) => "dns",
            (17, 67 | 68) => "dhcp",
            (17, 69) => "tftp",
            (6, 80 | 8080 | 8000) => "http",
            (6 | 17, 88) => "kerberos",
            (6, 110 | 995) => "pop3",
            (17, 123) => "ntp",
            (6 | 17, 137..=139) => "netbios",
            (6, 143 | 993) => "imap",
            (17, 161 | 162) => "snmp",
            (6, 179) => "bgp",
            (6 | 17, 389 | 636) => "ldap",
            (6, 443 | 8443) => "tls",
            (17, 443) => "quic",
            (6, 445) => "smb",
            (17, 500 | 4500) => "ipsec",
            (17 | 6, 514) => "syslog",
            (17, 546 | 547) => "dhcpv6",
            (6, 554) => "rtsp",
            (17, 1194) | (6, 1194) => "openvpn",
            (6, 1433) => "mssql",
            (6, 1521) => "oracle",
            (6, 1883 | 8883) => "mqtt",
            (17, 1900) => "ssdp",
            (6, 2049) | (17, 2049) => "nfs",
            (6, 3306) => "mysql",
            (6, 3389) => "rdp",
            (17, 3478 | 19302..=19309) => "stun",
            (17, 5060) | (6, 5060 | 5061) => "sip",
            (17, 5353) => "mdns",
            (17, 5355) => "llmnr",
            (6, 5432) => "postgresql",
            (6, 5672) => "amqp",
            (6, 5900) => "vnc",
            (6, 6379) => "redis",
            (6, 9092) => "kafka",
            (6, 9200) => "elasticsearch",
            (6 | 17, 11211) => "memcache",
            (17, 51820) => "wireguard",
            (6, 27017) => "mongodb",
            _ => return None,
        })
    };
    one(responder_port).or_else(|| one(initiator_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_banners() {
        assert_eq!(
            ssh_banner(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n"),
            Some(&b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3"[..])
        );
        assert_eq!(
            ssh_banner(b"SSH-1.99-Cisco-1.25\n"),
            Some(&b"SSH-1.99-Cisco-1.25"[..])
        );
        assert_eq!(
            ssh_banner(b"SSH-2.0-x"),
            Some(&b"SSH-2.0-x"[..]),
            "line end not captured yet"
        );
        assert_eq!(ssh_banner(b"SSH-xx-y\r\n"), None);
        assert_eq!(ssh_banner(b"GET / HTTP/1.1"), None);
        let long = [b"SSH-2.0-".as_slice(), &[b'a'; 1000]].concat();
        assert_eq!(ssh_banner(&long).unwrap().len(), 255);
    }

    #[test]
    fn stun_binding_with_software() {
        // Binding request, SOFTWARE "netmon" (6 bytes, padded to 8).
        let mut m = vec![0x00, 0x01, 0x00, 12, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&[0x80, 0x22, 0x00, 6]);
        m.extend_from_slice(b"netmon\0\0");
        let s = stun(&m).unwrap();
        assert_eq!(s.software.unwrap().as_bytes(), b"netmon");
        assert!(!s.turn);
        // Allocate (method 3) is TURN.
        let mut a = m.clone();
        a[1] = 0x03;
        assert!(stun(&a).unwrap().turn);
        // Without the cookie, or with a lying length: not STUN.
        let mut bad = m.clone();
        bad[4] = 0;
        assert!(stun(&bad).is_none());
        bad = m.clone();
        bad[3] = 200;
        assert!(stun(&bad).is_none());
        // An attribute length past the end stops the walk, no panic.
        let mut cut = m.clone();
        cut[23] = 250;
        assert_eq!(stun(&cut).unwrap().software, None);
        for n in 0..m.len() {
            let _ = stun(&m[..n]);
        }
    }

    #[test]
    fn dtls_records() {
        let mut r = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
        assert_eq!(dtls(&r), Some(0xfefd));
        r[12] = 4;
        assert_eq!(dtls(&r), None, "length past the datagram");
        assert_eq!(
            dtls(&[22, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None,
            "TLS, not DTLS"
        );
    }

    #[test]
    fn port_guesses() {
        assert_eq!(port_guess(6, 443, 51000), Some("tls"));
        assert_eq!(port_guess(17, 443, 51000), Some("quic"));
        assert_eq!(
            port_guess(17, 40000, 53),
            Some("dns"),
            "the other port when the responder's is unknown"
        );
        assert_eq!(port_guess(6, 40000, 40001), None);
    }
}
