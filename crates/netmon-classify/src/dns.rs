//! A zero-copy, bounded view of DNS messages (RFC 1035 §4), also used for mDNS (RFC 6762) and
//! LLMNR (RFC 4795), which share the format, and DNS over TCP (RFC 1035 §4.2.2, RFC 7766).
//!
//! * [`DnsMessage::parse`] checks the 12-byte header and borrows the message; sections are
//!   read lazily by [`DnsMessage::questions`] and [`DnsMessage::records`].
//! * Names are decoded into a [`Name`]: an inline 255-byte buffer (no heap), following
//!   compression pointers that must point backwards, at most [`MAX_POINTERS`] of them, and at
//!   most 255 bytes of wire form (RFC 1035 §2.3.4) — a pointer loop is an error, not a hang.
//! * Label bytes are untrusted and kept raw: the dotted form joins labels with `.` even if a
//!   label itself holds a dot or non-printable bytes; show names through [`Name::escaped`].
//! * Iterators yield `Result` items; after the first error they end. Every loop is bounded by
//!   the message length, nothing allocates.
//! * EDNS(0) OPT pseudo-records (RFC 6891) are ordinary records of type 41 here.
//! * [`DnsOverTcp`] splits one TCP payload into length-prefixed messages; [`TcpDnsBuf`] is the
//!   bounded per-direction reassembly buffer for messages that span segments.
//! * [`looks_like_dns`] is a cheap, allocation-free detection heuristic for any UDP payload.
//!
//! ```
//! use netmon_classify::dns::{DnsMessage, RData};
//! // Response to "a.example IN A": one answer 192.0.2.1, its owner name compressed (→ 12).
//! let msg = [
//!     0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // header
//!     1, b'a', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1, // question
//!     0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1, // answer
//! ];
//! let m = DnsMessage::parse(&msg).unwrap();
//! assert!(m.flags().qr());
//! let q = m.questions().next().unwrap().unwrap();
//! assert_eq!(q.name.as_bytes(), b"a.example");
//! let r = m.records().next().unwrap().unwrap();
//! assert_eq!((r.ttl, r.data), (3600, RData::A([192, 0, 2, 1].into())));
//! ```

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use netmon_packet::Escaped;
use netmon_packet::bytes::{be16, be32};

/// Length of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// Longest name in wire form (length octets, labels and the root octet), RFC 1035 §2.3.4.
pub const MAX_NAME_WIRE: usize = 255;
/// Longest label, RFC 1035 §2.3.4 (the two top bits of a length octet select the label type).
pub const MAX_LABEL: usize = 63;
/// Most compression pointers followed while decoding one name. A name has at most 127
/// labels, so a real encoder never needs more than 128.
pub const MAX_POINTERS: usize = 128;
/// Resource record type A (RFC 1035).
pub const TYPE_A: u16 = 1;
/// Resource record type NS (RFC 1035).
pub const TYPE_NS: u16 = 2;
/// Resource record type CNAME (RFC 1035).
pub const TYPE_CNAME: u16 = 5;
/// Resource record type PTR (RFC 1035).
pub const TYPE_PTR: u16 = 12;
/// Resource record type MX (RFC 1035).
pub const TYPE_MX: u16 = 15;
/// Resource record type AAAA (RFC 3596).
pub const TYPE_AAAA: u16 = 28;
/// EDNS(0) OPT pseudo-record type (RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// mDNS top bit of a question's class: unicast response requested ("QU", RFC 6762 §5.4); the
/// same bit in a record's class is the cache-flush bit (RFC 6762 §10.2).
pub const CLASS_TOP_BIT: u16 = 0x8000;

/// Why a DNS message (or part of it) could not be read. Offsets count from the first byte of
/// the message (after the TCP length prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("dns: {0} bytes, shorter than the 12-byte header")]
    ShortHeader(usize),
    /// A field runs past the end of the message.
    #[error("dns: {what} at byte {offset} runs past the end of the message")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// A length octet with top bits `01` or `10` (extended/reserved label types, or a "label
    /// longer than 63").
    #[error("dns: label type {octet:#04x} at byte {offset} is not a label or pointer")]
    BadLabel {
        /// Where the octet is.
        offset: usize,
        /// Its value.
        octet: u8,
    },
    /// A compression pointer that does not point backwards into the message body (pointer
    /// loops and forward pointers end here).
    #[error("dns: compression pointer at byte {offset} to {target} does not point backwards")]
    BadPointer {
        /// Where the pointer is.
        offset: usize,
        /// Where it points.
        target: usize,
    },
    /// More than [`MAX_POINTERS`] pointers in one name.
    #[error("dns: name at byte {offset} follows more than {MAX_POINTERS} compression pointers")]
    TooManyPointers {
        /// Where the name starts.
        offset: usize,
    },
    /// A name longer than [`MAX_NAME_WIRE`] bytes in wire form.
    #[error("dns: name at byte {offset} is longer than 255 bytes")]
    NameTooLong {
        /// Where the name starts.
        offset: usize,
    },
}

/// Walks the (possibly compressed) name at `start` of `msg` (RFC 1035 §4.1.4), calling
/// `label` for each label in order. Returns the offset just after the name's encoding at
/// `start` (after its root octet or its first pointer).
///
/// ```text
/// label:    | 00 len (6 bits) | len bytes ... |      len 0 = the root, end of name
/// pointer:  | 11 offset (14 bits)             |      offset from the message start
/// ```
///
/// Pointers must point backwards (before themselves) and past the header, at most
/// [`MAX_POINTERS`] of them; the wire form is at most 255 bytes. Together these bound the work
/// and reject every loop: a cycle of pointers needs a forward one, a cycle through labels
/// grows the name past 255 bytes.
fn walk_name<'a>(
    msg: &'a [u8],
    start: usize,
    mut label: impl FnMut(&'a [u8]),
) -> Result<usize, DnsError> {
    let mut pos = start;
    let mut end = None;
    let mut wire = 0usize;
    let mut hops = 0usize;
    loop {
        let Some(&octet) = msg.get(pos) else {
            return Err(DnsError::Truncated {
                what: "name",
                offset: pos,
            });
        };
        match octet & 0xc0 {
            0x00 => {
                let len = usize::from(octet);
                wire += 1 + len;
                if wire > MAX_NAME_WIRE {
                    return Err(DnsError::NameTooLong { offset: start });
                }
                let next = pos + 1;
                if len == 0 {
                    return Ok(end.unwrap_or(next));
                }
                // The root octet still has to fit.
                if wire >= MAX_NAME_WIRE {
                    return Err(DnsError::NameTooLong { offset: start });
                }
                let Some(bytes) = msg.get(next..next + len) else {
                    return Err(DnsError::Truncated {
                        what: "label",
                        offset: pos,
                    });
                };
                label(bytes);
                pos = next + len;
            }
            0xc0 => {
                let Some(&lo) = msg.get(pos + 1) else {
                    return Err(DnsError::Truncated {
                        what: "compression pointer",
                        offset: pos,
                    });
                };
                let target = usize::from(octet & 0x3f) << 8 | usize::from(lo);
                if target >= pos || target < HEADER_LEN {
                    return Err(DnsError::BadPointer {
                        offset: pos,
                        target,
                    });
                }
                hops += 1;
                if hops > MAX_POINTERS {
                    return Err(DnsError::TooManyPointers { offset: start });
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(DnsError::BadLabel { offset: pos, octet }),
        }
    }
}

/// Skips the name at `start`; returns the offset after it.
fn skip_name(msg: &[u8], start: usize) -> Result<usize, DnsError> {
    walk_name(msg, start, |_| {})
}

/// A decoded domain name in dotted form, held inline (no heap): labels joined by `.`, without
/// a trailing dot; the root is empty. Label bytes are raw and untrusted (a label may hold a
/// `.`, control characters or invalid UTF-8): show them through [`Name::escaped`] or
/// `Display` (which escapes). Equality is byte-exact; see [`Name::eq_ignore_ascii_case`].
#[derive(Clone)]
pub struct Name {
    buf: [u8; MAX_NAME_WIRE],
    len: u8,
    labels: u8,
}

impl Name {
    /// The root name (empty).
    pub const ROOT: Name = Name {
        buf: [0; MAX_NAME_WIRE],
        len: 0,
        labels: 0,
    };

    /// Decodes the name at byte `offset` of `msg` (a whole DNS message, so that compression
    /// pointers resolve). Returns the name and the offset just after its encoding.
    pub fn decode(msg: &[u8], offset: usize) -> Result<(Name, usize), DnsError> {
        let mut n = Name::ROOT;
        let end = walk_name(msg, offset, |l| n.push_label(l))?;
        Ok((n, end))
    }

    /// Builds a name from dotted text (for tests and configuration); `None` if it would be
    /// longer than a DNS name can be, or has an empty or over-long label. A trailing dot is
    /// allowed; `""` and `"."` are the root.
    pub fn from_dotted(s: &[u8]) -> Option<Name> {
        let s = s.strip_suffix(b".").unwrap_or(s);
        let mut n = Name::ROOT;
        if s.is_empty() {
            return Some(n);
        }
        let mut wire = 1usize;
        for l in s.split(|&b| b == b'.') {
            wire += 1 + l.len();
            if l.is_empty() || l.len() > MAX_LABEL || wire > MAX_NAME_WIRE {
                return None;
            }
            n.push_label(l);
        }
        Some(n)
    }

    /// Appends a label. Callers guarantee the 255-byte wire bound, which keeps the dotted form
    /// within the buffer (253 bytes at most); writes past it are dropped, never a panic.
    fn push_label(&mut self, l: &[u8]) {
        let mut at = usize::from(self.len);
        if self.labels > 0 {
            if let Some(b) = self.buf.get_mut(at) {
                *b = b'.';
            }
            at += 1;
        }
        let end = (at + l.len()).min(self.buf.len());
        if let (Some(dst), Some(src)) = (self.buf.get_mut(at..end), l.get(..end - at.min(end))) {
            dst.copy_from_slice(src);
        }
        self.len = u8::try_from(end).unwrap_or(u8::MAX);
        self.labels = self.labels.saturating_add(1);
    }

    /// The dotted form's bytes (empty for the root).
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Length of the dotted form.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether this is the root name.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of labels (0 for the root).
    pub fn label_count(&self) -> usize {
        usize::from(self.labels)
    }

    /// Case-insensitive comparison of the dotted forms (DNS names compare ASCII
    /// case-insensitively, RFC 4343).
    pub fn eq_ignore_ascii_case(&self, other: &Name) -> bool {
        self.as_bytes().eq_ignore_ascii_case(other.as_bytes())
    }

    /// The escaped, printable form (the root shows as nothing; `Display` shows it as `.`).
    pub fn escaped(&self) -> Escaped<'_> {
        Escaped::new(self.as_bytes()).max_len(MAX_NAME_WIRE)
    }

    /// A bounded owned copy for records that outlive the packet.
    pub fn to_text(&self) -> crate::Text {
        crate::Text::new(self.as_bytes())
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl core::hash::Hash for Name {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.as_bytes().hash(h);
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name(\"{self}\")")
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str(".")
        } else {
            fmt::Display::fmt(&self.escaped(), f)
        }
    }
}

/// The flags word of the header (second 16 bits). Unknown opcodes and rcodes are data.
///
/// ```text
///   0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
/// |QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flags(pub u16);

impl Flags {
    /// QR: this is a response.
    pub const fn qr(self) -> bool {
        self.0 & 0x8000 != 0
    }
    /// Opcode (0 query, 1 inverse query, 2 status, 4 notify, 5 update).
    pub const fn opcode(self) -> u8 {
        ((self.0 >> 11) & 0x0f) as u8
    }
    /// AA: authoritative answer.
    pub const fn aa(self) -> bool {
        self.0 & 0x0400 != 0
    }
    /// TC: truncated (the client should retry over TCP).
    pub const fn tc(self) -> bool {
        self.0 & 0x0200 != 0
    }
    /// RD: recursion desired.
    pub const fn rd(self) -> bool {
        self.0 & 0x0100 != 0
    }
    /// RA: recursion available.
    pub const fn ra(self) -> bool {
        self.0 & 0x0080 != 0
    }
    /// AD: authentic data (RFC 4035).
    pub const fn ad(self) -> bool {
        self.0 & 0x0020 != 0
    }
    /// CD: checking disabled (RFC 4035).
    pub const fn cd(self) -> bool {
        self.0 & 0x0010 != 0
    }
    /// Response code (the low 4 bits; EDNS extends it in the OPT record).
    pub const fn rcode(self) -> u8 {
        (self.0 & 0x000f) as u8
    }
}

/// A DNS message: a view of its bytes whose 12-byte header has been checked present.
///
/// RFC 1035 §4.1.1:
///
/// ```text
/// |              ID (16)              |
/// |QR|Opcode|AA|TC|RD|RA|Z|AD|CD|RCODE|   see Flags
/// |           QDCOUNT (16)            |   questions
/// |           ANCOUNT (16)            |   answer records
/// |           NSCOUNT (16)            |   authority records
/// |           ARCOUNT (16)            |   additional records
/// | question section | answer | authority | additional |
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsMessage<'a> {
    bytes: &'a [u8],
}

impl<'a> DnsMessage<'a> {
    /// Checks that `bytes` holds at least the header. Sections are read lazily.
    pub fn parse(bytes: &'a [u8]) -> Result<DnsMessage<'a>, DnsError> {
        if bytes.len() < HEADER_LEN {
            return Err(DnsError::ShortHeader(bytes.len()));
        }
        Ok(DnsMessage { bytes })
    }

    fn header16(&self, at: usize) -> u16 {
        be16(self.bytes, at).unwrap_or(0)
    }

    /// The message's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Transaction id.
    pub fn id(&self) -> u16 {
        self.header16(0)
    }
    /// The flags word.
    pub fn flags(&self) -> Flags {
        Flags(self.header16(2))
    }
    /// QDCOUNT: number of questions announced.
    pub fn qdcount(&self) -> u16 {
        self.header16(4)
    }
    /// ANCOUNT: number of answer records announced.
    pub fn ancount(&self) -> u16 {
        self.header16(6)
    }
    /// NSCOUNT: number of authority records announced.
    pub fn nscount(&self) -> u16 {
        self.header16(8)
    }
    /// ARCOUNT: number of additional records announced.
    pub fn arcount(&self) -> u16 {
        self.header16(10)
    }

    /// The questions, in order. Ends after QDCOUNT questions or the first error.
    pub fn questions(&self) -> Questions<'a> {
        Questions {
            msg: self.bytes,
            pos: HEADER_LEN,
            left: self.qdcount(),
        }
    }

    /// The resource records of the answer, authority and additional sections, in order. Ends
    /// after the announced counts or the first error (which is yielded; a malformed question
    /// section yields its error first).
    pub fn records(&self) -> Records<'a> {
        let mut q = self.questions();
        let mut err = None;
        while q.left > 0 {
            q.left -= 1;
            match skip_name(self.bytes, q.pos) {
                Ok(p) if p + 4 <= self.bytes.len() => q.pos = p + 4,
                Ok(p) => {
                    err = Some(DnsError::Truncated {
                        what: "question type/class",
                        offset: p,
                    });
                    break;
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        Records {
            msg: self.bytes,
            pos: q.pos,
            left: [self.ancount(), self.nscount(), self.arcount()],
            err,
        }
    }
}

/// A question (RFC 1035 §4.1.2).
///
/// ```text
/// | QNAME (labels / pointer) | QTYPE (16) | QCLASS (16) |
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// Query type (1 A, 28 AAAA, 255 ANY, ...).
    pub qtype: u16,
    /// Query class, raw. In mDNS the top bit is the QU bit ([`Question::unicast_response`]).
    pub qclass: u16,
}

impl Question {
    /// mDNS QU bit: the asker wants a unicast response (RFC 6762 §5.4).
    pub const fn unicast_response(&self) -> bool {
        self.qclass & CLASS_TOP_BIT != 0
    }
    /// The class without the mDNS QU bit (1 = IN).
    pub const fn class(&self) -> u16 {
        self.qclass & !CLASS_TOP_BIT
    }
}

/// Iterator over a message's questions; see [`DnsMessage::questions`].
#[derive(Clone, Debug)]
pub struct Questions<'a> {
    msg: &'a [u8],
    pos: usize,
    left: u16,
}

impl Iterator for Questions<'_> {
    type Item = Result<Question, DnsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = (|| {
            let (name, p) = Name::decode(self.msg, self.pos)?;
            let (Some(qtype), Some(qclass)) = (be16(self.msg, p), be16(self.msg, p + 2)) else {
                return Err(DnsError::Truncated {
                    what: "question type/class",
                    offset: p,
                });
            };
            self.pos = p + 4;
            Ok(Question {
                name,
                qtype,
                qclass,
            })
        })();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// The section a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// Answer section (ANCOUNT).
    Answer,
    /// Authority section (NSCOUNT).
    Authority,
    /// Additional section (ARCOUNT), which also holds the EDNS OPT pseudo-record.
    Additional,
}

/// Record data, decoded for the types netmon uses. Data that does not have its type's
/// format (an A record whose length is not 4, a CNAME whose name is malformed) is kept as
/// [`RData::Other`], like every other type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData<'a> {
    /// An IPv4 address (type A).
    A(Ipv4Addr),
    /// An IPv6 address (type AAAA).
    Aaaa(Ipv6Addr),
    /// The canonical name an alias points to (type CNAME).
    Cname(Name),
    /// A name server (type NS).
    Ns(Name),
    /// A domain name pointer (type PTR).
    Ptr(Name),
    /// A mail exchanger (type MX).
    Mx {
        /// Preference (lower is preferred).
        preference: u16,
        /// The exchanger's name.
        exchange: Name,
    },
    /// Any other type (or a malformed known one): the raw RDATA.
    Other {
        /// The record type.
        rtype: u16,
        /// The RDATA bytes.
        bytes: &'a [u8],
    },
}

/// A resource record (RFC 1035 §4.1.3).
///
/// ```text
/// | NAME | TYPE (16) | CLASS (16) | TTL (32) | RDLENGTH (16) | RDATA (RDLENGTH bytes) |
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Which section it is in.
    pub section: Section,
    /// Owner name.
    pub name: Name,
    /// Record type.
    pub rtype: u16,
    /// Class, raw (mDNS: top bit = cache flush). For OPT: the requester's UDP payload size.
    pub class: u16,
    /// Time to live in seconds (RFC 2181 §8: values with the top bit set mean 0; kept raw).
    /// For OPT: extended rcode, version and flags.
    pub ttl: u32,
    /// The data.
    pub data: RData<'a>,
}

impl Record<'_> {
    /// Whether this is an EDNS OPT pseudo-record.
    pub const fn is_opt(&self) -> bool {
        self.rtype == TYPE_OPT
    }
    /// mDNS cache-flush bit (RFC 6762 §10.2).
    pub const fn cache_flush(&self) -> bool {
        self.class & CLASS_TOP_BIT != 0
    }
}

/// Iterator over a message's records; see [`DnsMessage::records`].
#[derive(Clone, Debug)]
pub struct Records<'a> {
    msg: &'a [u8],
    pos: usize,
    /// Records left in the answer, authority and additional sections.
    left: [u16; 3],
    err: Option<DnsError>,
}

impl<'a> Records<'a> {
    fn read(&mut self, section: Section) -> Result<Record<'a>, DnsError> {
        let msg = self.msg;
        let (name, p) = Name::decode(msg, self.pos)?;
        let trunc = DnsError::Truncated {
            what: "record header",
            offset: p,
        };
        let (Some(rtype), Some(class), Some(ttl), Some(rdlen)) = (
            be16(msg, p),
            be16(msg, p + 2),
            be32(msg, p + 4),
            be16(msg, p + 8),
        ) else {
            return Err(trunc);
        };
        let start = p + 10;
        let end = start + usize::from(rdlen);
        let Some(bytes) = msg.get(start..end) else {
            return Err(DnsError::Truncated {
                what: "record data",
                offset: start,
            });
        };
        self.pos = end;
        // A name inside RDATA: decoded against the whole message (pointers), but its
        // in-place encoding must end inside the RDATA.
        let name_at = |at: usize| match Name::decode(msg, at) {
            Ok((n, e)) if e <= end => Some(n),
            _ => None,
        };
        let data = match (rtype, bytes) {
            (TYPE_A, &[a, b, c, d]) => Some(RData::A(Ipv4Addr::new(a, b, c, d))),
            (TYPE_AAAA, _) => <[u8; 16]>::try_from(bytes)
                .ok()
                .map(|a| RData::Aaaa(Ipv6Addr::from(a))),
            (TYPE_CNAME, _) => name_at(start).map(RData::Cname),
            (TYPE_NS, _) => name_at(start).map(RData::Ns),
            (TYPE_PTR, _) => name_at(start).map(RData::Ptr),
            (TYPE_MX, _) => be16(bytes, 0).and_then(|preference| {
                name_at(start + 2).map(|exchange| RData::Mx {
                    preference,
                    exchange,
                })
            }),
            _ => None,
        }
        .unwrap_or(RData::Other { rtype, bytes });
        Ok(Record {
            section,
            name,
            rtype,
            class,
            ttl,
            data,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, DnsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.err.take() {
            self.left = [0; 3];
            return Some(Err(e));
        }
        let (i, section) = match self.left {
            [1..=u16::MAX, _, _] => (0, Section::Answer),
            [0, 1..=u16::MAX, _] => (1, Section::Authority),
            [0, 0, 1..=u16::MAX] => (2, Section::Additional),
            [0, 0, 0] => return None,
        };
        if let Some(n) = self.left.get_mut(i) {
            *n -= 1;
        }
        let r = self.read(section);
        if r.is_err() {
            self.left = [0; 3];
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left.iter().map(|&n| usize::from(n)).sum::<usize>();
        (0, Some(n + usize::from(self.err.is_some())))
    }
}

/// Well-known ports of DNS (53), mDNS (5353) and LLMNR (5355).
pub const DNS_PORTS: [u16; 3] = [53, 5353, 5355];

/// Header sanity shared by [`looks_like_dns`] and [`TcpDnsBuf`]'s resynchronisation: opcode
/// at most 5, Z bit clear, and the announced counts fit the length (a question takes at least
/// 5 bytes, a record at least 11).
fn header_plausible(msg: &[u8], mdns: bool) -> bool {
    let (Some(flags), Some(qd), Some(an), Some(ns), Some(ar)) = (
        be16(msg, 2),
        be16(msg, 4),
        be16(msg, 6),
        be16(msg, 8),
        be16(msg, 10),
    ) else {
        return false;
    };
    let flags = Flags(flags);
    let [qd, an, ns, ar] = [qd, an, ns, ar].map(usize::from);
    // mDNS responses usually carry no question (RFC 6762 §6).
    let questions_ok = (1..=16).contains(&qd) || (mdns && qd == 0 && flags.qr() && an > 0);
    questions_ok
        && flags.opcode() <= 5
        && flags.0 & 0x0040 == 0
        && HEADER_LEN + qd * 5 + (an + ns + ar) * 11 <= msg.len()
}

/// NetBIOS name service port (RFC 1002): DNS wire format, but not DNS.
pub const NBNS_PORT: u16 = 137;

/// A cheap, allocation-free test of whether a UDP payload is a DNS message, usable on any
/// port: QDCOUNT 1..=16 (0 is accepted for mDNS responses with answers when either port is
/// 5353), opcode ≤ 5, the Z bit clear, the counts fit the length, and the first question
/// (if any) has a well-formed name (pointers resolved) followed by a type and a known class
/// (IN, CH, HS, NONE or ANY, ignoring the mDNS QU bit).
///
/// NetBIOS name service (RFC 1002) uses the same wire format but is another protocol (tshark
/// calls it NBNS, not DNS): port 137 on either side, or a first label of 32 letters `A`..=`P`
/// (the NetBIOS "first-level encoding"), is not DNS.
pub fn looks_like_dns(udp_payload: &[u8], src_port: u16, dst_port: u16) -> bool {
    let mdns = src_port == 5353 || dst_port == 5353;
    if src_port == NBNS_PORT || dst_port == NBNS_PORT || !header_plausible(udp_payload, mdns) {
        return false;
    }
    if be16(udp_payload, 4) == Some(0) {
        return true;
    }
    let nbns = udp_payload.get(HEADER_LEN) == Some(&32)
        && udp_payload
            .get(HEADER_LEN + 1..HEADER_LEN + 33)
            .is_some_and(|l| l.iter().all(|b| (b'A'..=b'P').contains(b)));
    if nbns {
        return false;
    }
    match skip_name(udp_payload, HEADER_LEN) {
        Ok(p) => {
            be16(udp_payload, p).is_some()
                && be16(udp_payload, p + 2)
                    .is_some_and(|c| matches!(c & !CLASS_TOP_BIT, 1 | 3 | 4 | 254 | 255))
        }
        Err(_) => false,
    }
}

/// The DNS messages of one TCP payload that starts at a message boundary (RFC 1035 §4.2.2:
/// each message is preceded by a 2-byte length). Yields each complete message; what is
/// left (an incomplete message) is [`DnsOverTcp::rest`]. Zero-copy; for messages that span
/// segments use [`TcpDnsBuf`].
///
/// ```
/// use netmon_classify::dns::DnsOverTcp;
/// let seg = [0, 2, 0xaa, 0xbb, 0, 1, 0xcc, 0, 9, 1];
/// let mut it = DnsOverTcp::new(&seg);
/// assert_eq!(it.next(), Some(&[0xaa, 0xbb][..]));
/// assert_eq!(it.next(), Some(&[0xcc][..]));
/// assert_eq!(it.next(), None);
/// assert_eq!(it.rest(), &[0, 9, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct DnsOverTcp<'a> {
    rest: &'a [u8],
}

impl<'a> DnsOverTcp<'a> {
    /// Starts at the beginning of `payload`.
    pub const fn new(payload: &'a [u8]) -> Self {
        DnsOverTcp { rest: payload }
    }
    /// The bytes not yielded: an incomplete last message (with its length prefix).
    pub const fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for DnsOverTcp<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(be16(self.rest, 0)?);
        let msg = self.rest.get(2..2 + len)?;
        self.rest = self.rest.get(2 + len..).unwrap_or(&[]);
        Some(msg)
    }
}

/// Most bytes a [`TcpDnsBuf`] holds: one maximal message and its length prefix.
pub const TCP_DNS_BUF_MAX: usize = 2 + 65535;

/// Counters of a [`TcpDnsBuf`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpDnsStats {
    /// Complete messages delivered.
    pub messages: u64,
    /// Sequence gaps (lost or reordered segments) that dropped a partial message.
    pub gaps: u64,
    /// Payload bytes dropped (gaps, retransmissions, unsynchronised data, bad lengths).
    pub dropped_bytes: u64,
}

/// Per-direction reassembly of DNS over TCP: feed each TCP payload with its sequence number;
/// complete messages are handed to a callback — straight from the segment when they lie
/// within it (no copy), from the buffer when they span segments. Bounded to
/// [`TCP_DNS_BUF_MAX`] bytes; the buffer is allocated only for a message that spans
/// segments and released (if above 4 KiB) once empty.
///
/// Retransmitted bytes (sequence before the next expected) are skipped. A gap drops the
/// partial message; the stream is then resynchronised at the next segment that starts with
/// a plausible length prefix and DNS header (as is the very first segment seen, so a capture
/// that starts mid-message does not yield garbage). Segments arriving out of order are
/// treated as a gap (DNS over TCP rarely reorders; nothing is held back).
///
/// ```
/// use netmon_classify::dns::TcpDnsBuf;
/// let msg = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1];
/// let mut framed = vec![0, msg.len() as u8];
/// framed.extend_from_slice(&msg);
/// let mut b = TcpDnsBuf::new();
/// let mut got = Vec::new();
/// b.push(1000, &framed[..5], |m| got.push(m.to_vec()));
/// assert!(got.is_empty());
/// b.push(1005, &framed[5..], |m| got.push(m.to_vec()));
/// assert_eq!(got, [msg.to_vec()]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct TcpDnsBuf {
    buf: Vec<u8>,
    next_seq: Option<u32>,
    synced: bool,
    stats: TcpDnsStats,
}

/// Capacity kept after the buffer empties; larger buffers are released.
const TCP_DNS_KEEP: usize = 4096;

impl TcpDnsBuf {
    /// An empty buffer (allocates nothing).
    pub const fn new() -> Self {
        TcpDnsBuf {
            buf: Vec::new(),
            next_seq: None,
            synced: false,
            stats: TcpDnsStats {
                messages: 0,
                gaps: 0,
                dropped_bytes: 0,
            },
        }
    }

    /// Bytes of an incomplete message held.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes held (the buffer's capacity).
    pub fn memory_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Counters.
    pub fn stats(&self) -> TcpDnsStats {
        self.stats
    }

    /// Forgets everything (and frees the buffer); the next segment resynchronises.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.next_seq = None;
        self.synced = false;
    }

    fn drop_bytes(&mut self, n: usize) {
        self.stats.dropped_bytes = self.stats.dropped_bytes.saturating_add(n as u64);
    }

    fn desync(&mut self) {
        self.drop_bytes(self.buf.len());
        self.buf.clear();
        self.release();
        self.synced = false;
    }

    fn release(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > TCP_DNS_KEEP {
            self.buf = Vec::new();
        }
    }

    /// Feeds the payload of a TCP segment whose first byte has sequence number `seq`; calls
    /// `on_message` with each DNS message completed (without its length prefix). Returns the
    /// number of messages delivered.
    pub fn push(&mut self, seq: u32, payload: &[u8], mut on_message: impl FnMut(&[u8])) -> usize {
        if payload.is_empty() {
            return 0;
        }
        let mut data = payload;
        let mut seq = seq;
        if let Some(next) = self.next_seq {
            // Signed distance in sequence space (RFC 9293 modular arithmetic).
            let off = seq.wrapping_sub(next) as i32;
            if off < 0 {
                let skip = off.unsigned_abs() as usize;
                if skip >= data.len() {
                    self.drop_bytes(data.len());
                    return 0;
                }
                self.drop_bytes(skip);
                data = data.get(skip..).unwrap_or(&[]);
                seq = next;
            } else if off > 0 {
                self.stats.gaps += 1;
                self.desync();
            }
        }
        self.next_seq = Some(seq.wrapping_add(data.len() as u32));
        if !self.synced {
            // Judged on what this segment has: the length prefix (if complete) and the
            // flags and QDCOUNT (if present); a shorter segment is accepted tentatively.
            let plausible = be16(data, 0).is_none_or(|l| usize::from(l) >= HEADER_LEN)
                && data
                    .get(2..)
                    .is_none_or(|m| m.len() < 6 || header_plausible_prefix(m));
            if !plausible {
                self.drop_bytes(data.len());
                return 0;
            }
            self.synced = true;
        }
        let mut delivered = 0;
        // Complete the message in the buffer, if any.
        if !self.buf.is_empty() {
            if self.buf.len() < 2 {
                let take = 2 - self.buf.len();
                let (head, rest) = data.split_at(take.min(data.len()));
                self.buf.extend_from_slice(head);
                data = rest;
            }
            let want = be16(&self.buf, 0).map_or(2, |l| 2 + usize::from(l));
            if want < 2 + HEADER_LEN && self.buf.len() >= 2 {
                self.drop_bytes(data.len());
                self.desync();
                return delivered;
            }
            let take = want.saturating_sub(self.buf.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.buf.extend_from_slice(head);
            data = rest;
            if self.buf.len() < want {
                return delivered;
            }
            on_message(self.buf.get(2..).unwrap_or(&[]));
            delivered += 1;
            self.buf.clear();
            self.release();
        }
        // Messages inside the segment, zero-copy.
        let mut it = DnsOverTcp::new(data);
        loop {
            if be16(it.rest(), 0).is_some_and(|l| usize::from(l) < HEADER_LEN) {
                self.drop_bytes(it.rest().len());
                self.desync();
                break;
            }
            match it.next() {
                Some(m) => {
                    on_message(m);
                    delivered += 1;
                }
                None => {
                    // An incomplete message (at most 65536 bytes + prefix) waits for more.
                    self.buf.extend_from_slice(it.rest());
                    break;
                }
            }
        }
        self.stats.messages += delivered as u64;
        delivered
    }
}

/// Header sanity on a possibly incomplete message (for resynchronisation): opcode ≤ 5, Z
/// clear, QDCOUNT ≤ 16.
fn header_plausible_prefix(msg: &[u8]) -> bool {
    match (be16(msg, 2), be16(msg, 4)) {
        (Some(f), Some(qd)) => Flags(f).opcode() <= 5 && f & 0x0040 == 0 && qd <= 16,
        _ => false,
    }
}

/// A tiny DNS message writer for the unit tests of this crate.
#[cfg(test)]
pub(crate) mod build {
    /// Message bytes under construction.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Msg(pub(crate) Vec<u8>);

    impl Msg {
        /// A header with `id`, `flags` and the four counts.
        pub(crate) fn new(id: u16, flags: u16, counts: [u16; 4]) -> Msg {
            let mut b = Vec::new();
            for v in [id, flags, counts[0], counts[1], counts[2], counts[3]] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            Msg(b)
        }
        /// Current length (the offset of what is written next).
        pub(crate) fn pos(&self) -> u16 {
            u16::try_from(self.0.len()).unwrap()
        }
        /// Raw bytes.
        pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Msg {
            self.0.extend_from_slice(b);
            self
        }
        /// Labels of a dotted name (no terminator).
        pub(crate) fn labels(&mut self, dotted: &str) -> &mut Msg {
            for l in dotted.split('.').filter(|l| !l.is_empty()) {
                self.0.push(u8::try_from(l.len()).unwrap());
                self.0.extend_from_slice(l.as_bytes());
            }
            self
        }
        /// An uncompressed name (labels + root).
        pub(crate) fn name(&mut self, dotted: &str) -> &mut Msg {
            self.labels(dotted);
            self.0.push(0);
            self
        }
        /// A compression pointer.
        pub(crate) fn ptr(&mut self, to: u16) -> &mut Msg {
            self.raw(&(0xc000 | to).to_be_bytes())
        }
        /// Question type and class (after a name).
        pub(crate) fn q(&mut self, qtype: u16, qclass: u16) -> &mut Msg {
            self.raw(&qtype.to_be_bytes()).raw(&qclass.to_be_bytes())
        }
        /// Record fields after the owner name: type, class, TTL, RDLENGTH, RDATA.
        pub(crate) fn rr(&mut self, rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> &mut Msg {
            self.raw(&rtype.to_be_bytes())
                .raw(&class.to_be_bytes())
                .raw(&ttl.to_be_bytes())
                .raw(&u16::try_from(rdata.len()).unwrap().to_be_bytes())
                .raw(rdata)
        }
        /// The bytes.
        pub(crate) fn bytes(&self) -> &[u8] {
            &self.0
        }
    }

    /// A name in uncompressed wire form.
    pub(crate) fn wire(dotted: &str) -> Vec<u8> {
        let mut m = Msg::default();
        m.name(dotted);
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::build::{Msg, wire};
    use super::*;

    /// Response for www.example.com A: CNAME www.example.com → cdn.example.net, two A, one
    /// AAAA, an NS in authority, an A glue and an OPT in additional; names compressed.
    fn response() -> Vec<u8> {
        let mut m = Msg::new(0xbeef, 0x8180, [1, 4, 1, 2]);
        m.name("www.example.com").q(TYPE_A, 1); // question name at 12
        // answer 1: www.example.com CNAME cdn.example.net (target "cdn" + pointer? no: new)
        m.ptr(12);
        let cname_rdata_at = m.pos() + 10;
        let mut rd = wire("cdn.example.net");
        m.rr(TYPE_CNAME, 1, 300, &rd);
        m.ptr(cname_rdata_at).rr(TYPE_A, 1, 60, &[192, 0, 2, 1]);
        m.ptr(cname_rdata_at).rr(TYPE_A, 1, 60, &[192, 0, 2, 2]);
        m.ptr(cname_rdata_at).rr(
            TYPE_AAAA,
            1,
            60,
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        // authority: example.com NS ns1.example.com (rdata "ns1" + pointer to example.com)
        m.ptr(16);
        rd = vec![3, b'n', b's', b'1', 0xc0, 16];
        m.rr(TYPE_NS, 1, 3600, &rd);
        let ns_rdata_at = m.pos() - 6;
        m.ptr(ns_rdata_at).rr(TYPE_A, 1, 3600, &[198, 51, 100, 53]);
        m.raw(&[0]).rr(TYPE_OPT, 1232, 0, &[]);
        m.0
    }

    type Parsed<'a> = (
        Vec<Result<Question, DnsError>>,
        Vec<Result<Record<'a>, DnsError>>,
    );

    fn all(msg: &[u8]) -> Parsed<'_> {
        let m = DnsMessage::parse(msg).unwrap();
        (m.questions().collect(), m.records().collect())
    }

    #[test]
    fn header_fields() {
        let msg = response();
        let m = DnsMessage::parse(&msg).unwrap();
        assert_eq!(m.id(), 0xbeef);
        let f = m.flags();
        assert!(f.qr() && f.rd() && f.ra() && !f.aa() && !f.tc() && !f.ad() && !f.cd());
        assert_eq!((f.opcode(), f.rcode()), (0, 0));
        assert_eq!(
            (m.qdcount(), m.ancount(), m.nscount(), m.arcount()),
            (1, 4, 1, 2)
        );
        assert_eq!(m.bytes().len(), msg.len());
        // Every field of the flags word.
        // QR 0, opcode 10, AA, TC, RD 0, RA 0, Z 0, AD, CD, rcode 5.
        let f = Flags(0b0101_0110_0011_0101);
        assert!(!f.qr() && f.aa() && f.tc() && !f.rd() && !f.ra() && f.ad() && f.cd());
        assert_eq!((f.opcode(), f.rcode()), (10, 5));
        for n in 0..HEADER_LEN {
            assert_eq!(DnsMessage::parse(&msg[..n]), Err(DnsError::ShortHeader(n)));
        }
        let tc = Msg::new(1, 0x8380, [0; 4]);
        assert!(DnsMessage::parse(tc.bytes()).unwrap().flags().tc());
    }

    #[test]
    fn sections_and_compression() {
        let msg = response();
        let (qs, rs) = all(&msg);
        let q = qs[0].clone().unwrap();
        assert_eq!(q.name.as_bytes(), b"www.example.com");
        assert_eq!(
            (q.qtype, q.qclass, q.class(), q.unicast_response()),
            (1, 1, 1, false)
        );
        let rs: Vec<Record<'_>> = rs.into_iter().map(Result::unwrap).collect();
        let summary: Vec<(Section, String, u16, u32)> = rs
            .iter()
            .map(|r| (r.section, r.name.to_string(), r.rtype, r.ttl))
            .collect();
        assert_eq!(
            summary,
            [
                (Section::Answer, "www.example.com".into(), 5, 300),
                (Section::Answer, "cdn.example.net".into(), 1, 60),
                (Section::Answer, "cdn.example.net".into(), 1, 60),
                (Section::Answer, "cdn.example.net".into(), 28, 60),
                (Section::Authority, "example.com".into(), 2, 3600),
                (Section::Additional, "ns1.example.com".into(), 1, 3600),
                (Section::Additional, ".".into(), 41, 0),
            ]
        );
        assert_eq!(
            rs[0].data,
            RData::Cname(Name::from_dotted(b"cdn.example.net").unwrap())
        );
        assert_eq!(rs[1].data, RData::A(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(rs[3].data, RData::Aaaa("2001:db8::1".parse().unwrap()));
        assert_eq!(
            rs[4].data,
            RData::Ns(Name::from_dotted(b"ns1.example.com").unwrap())
        );
        assert!(rs[6].is_opt() && rs[6].name.is_empty());
        assert_eq!(rs[6].class, 1232);
        assert_eq!(
            rs[6].data,
            RData::Other {
                rtype: 41,
                bytes: &[]
            }
        );
    }

    #[test]
    fn ptr_mx_and_malformed_rdata_are_kept() {
        let mut m = Msg::new(1, 0x8400, [0, 5, 0, 0]);
        m.name("1.2.0.192.in-addr.arpa");
        m.rr(TYPE_PTR, 1, 5, &wire("host.example"));
        m.ptr(12)
            .rr(TYPE_MX, 1, 5, &[0, 10, 2, b'm', b'x', 0xc0, 14]);
        m.ptr(12).rr(TYPE_A, 1, 5, &[1, 2, 3]); // A with 3 bytes
        m.ptr(12).rr(TYPE_CNAME, 1, 5, &[5, b'a']); // name cut by RDLENGTH
        m.ptr(12).rr(TYPE_CNAME, 1, 5, &[1, b'a', 0, 0xff]); // trailing junk: still a name
        let (_, rs) = all(m.bytes());
        let d: Vec<RData<'_>> = rs.into_iter().map(|r| r.unwrap().data).collect();
        assert_eq!(
            d[0],
            RData::Ptr(Name::from_dotted(b"host.example").unwrap())
        );
        assert_eq!(
            d[1],
            RData::Mx {
                preference: 10,
                exchange: Name::from_dotted(b"mx.2.0.192.in-addr.arpa").unwrap()
            }
        );
        assert_eq!(
            d[2],
            RData::Other {
                rtype: 1,
                bytes: &[1, 2, 3]
            }
        );
        assert_eq!(
            d[3],
            RData::Other {
                rtype: 5,
                bytes: &[5, b'a']
            }
        );
        assert_eq!(d[4], RData::Cname(Name::from_dotted(b"a").unwrap()));
    }

    #[test]
    fn mdns_bits() {
        let mut m = Msg::new(0, 0x8400, [1, 1, 0, 0]);
        m.name("printer.local").q(TYPE_A, 0x8001);
        m.ptr(12).rr(TYPE_A, 0x8001, 120, &[10, 0, 0, 9]);
        let (qs, rs) = all(m.bytes());
        let q = qs[0].clone().unwrap();
        assert!(q.unicast_response());
        assert_eq!(q.class(), 1);
        let r = rs[0].clone().unwrap();
        assert!(r.cache_flush());
        assert_eq!(r.class, 0x8001);
    }

    #[test]
    fn names_keep_raw_bytes() {
        // A label holding a dot, an escape sequence and invalid UTF-8.
        let mut m = Msg::new(0, 0, [1, 0, 0, 0]);
        m.raw(&[3, b'a', b'.', b'b', 4, 0x1b, b'[', b'm', 0xff, 0])
            .q(1, 1);
        let (qs, _) = all(m.bytes());
        let n = qs[0].clone().unwrap().name;
        assert_eq!(n.as_bytes(), b"a.b.\x1b[m\xff");
        assert_eq!(n.label_count(), 2);
        assert_eq!(n.to_string(), r"a.b.\x1b[m\xff");
        assert_eq!(format!("{n:?}"), r#"Name("a.b.\x1b[m\xff")"#);
        assert_eq!(n.to_text().as_bytes(), n.as_bytes());
        assert_eq!(Name::ROOT.to_string(), ".");
        assert!(
            Name::from_dotted(b"WWW.Example.COM")
                .unwrap()
                .eq_ignore_ascii_case(&Name::from_dotted(b"www.example.com.").unwrap())
        );
        assert_eq!(Name::from_dotted(b"."), Some(Name::ROOT));
        assert_eq!(Name::from_dotted(b"a..b"), None);
        assert_eq!(Name::from_dotted(&[b'x'; 64]), None);
    }

    #[test]
    fn longest_names() {
        let l63 = "x".repeat(63);
        let l61 = "y".repeat(61);
        // 3 × (1 + 63) + (1 + 61) + 1 = 255: the longest legal name, 253 bytes dotted.
        let ok = format!("{l63}.{l63}.{l63}.{l61}");
        let mut m = Msg::new(0, 0, [1, 0, 0, 0]);
        m.name(&ok).q(1, 1);
        let (qs, _) = all(m.bytes());
        let n = qs[0].clone().unwrap().name;
        assert_eq!(n.len(), 253);
        assert_eq!(n.as_bytes(), ok.as_bytes());
        assert_eq!(Name::from_dotted(ok.as_bytes()), Some(n));
        // One more byte: 256.
        let long = format!("{l63}.{l63}.{l63}.{l61}y");
        assert_eq!(Name::from_dotted(long.as_bytes()), None);
        let mut m = Msg::new(0, 0, [1, 0, 0, 0]);
        m.name(&long).q(1, 1);
        let (qs, _) = all(m.bytes());
        assert_eq!(qs, [Err(DnsError::NameTooLong { offset: 12 })]);
        // Too long only through a pointer: "yyyy…" + pointer to the 3×63 name.
        let mut m = Msg::new(0, 0, [2, 0, 0, 0]);
        m.name(&format!("{l63}.{l63}.{l63}")).q(1, 1);
        let p = m.pos();
        m.labels(&"z".repeat(62)).ptr(12).q(1, 1);
        let (qs, _) = all(m.bytes());
        assert!(qs[0].is_ok());
        assert_eq!(
            qs[1],
            Err(DnsError::NameTooLong {
                offset: usize::from(p)
            })
        );
    }

    #[test]
    fn label_types_over_63_are_errors() {
        for octet in [0x40u8, 0x7f, 0x80, 0xbf] {
            let mut m = Msg::new(0, 0, [1, 0, 0, 0]);
            m.raw(&[1, b'a', octet, b'b', 0]).q(1, 1);
            let (qs, rs) = all(m.bytes());
            let e = DnsError::BadLabel { offset: 14, octet };
            assert_eq!(qs, [Err(e)]);
            assert_eq!(
                rs,
                [Err(e)],
                "a broken question section ends the records too"
            );
        }
    }

    #[test]
    fn pointer_loops_and_bad_pointers_end() {
        // A pointer to itself (the zlip case), forward, into the header, and cut short.
        let cases: [(&[u8], DnsError); 4] = [
            (
                &[0xc0, 12],
                DnsError::BadPointer {
                    offset: 12,
                    target: 12,
                },
            ),
            (
                &[0xc0, 14, 0],
                DnsError::BadPointer {
                    offset: 12,
                    target: 14,
                },
            ),
            (
                &[0xc0, 3],
                DnsError::BadPointer {
                    offset: 12,
                    target: 3,
                },
            ),
            (
                &[1, b'a', 0xc0, 12],
                // label "a", pointer back to it: grows until the 255-byte bound.
                DnsError::NameTooLong { offset: 12 },
            ),
        ];
        for (name, err) in cases {
            let mut m = Msg::new(0, 0, [1, 0, 0, 0]);
            m.raw(name).q(1, 1);
            let (qs, _) = all(m.bytes());
            assert_eq!(qs, [Err(err)], "{name:x?}");
        }
        let mut m = Msg::new(0, 0, [1, 0, 0, 0]);
        m.raw(&[1, b'a', 0xc0]);
        let (qs, _) = all(m.bytes());
        assert_eq!(
            qs,
            [Err(DnsError::Truncated {
                what: "compression pointer",
                offset: 14
            })]
        );
        // A chain of pointers each pointing to the previous one (all backwards): bounded by
        // MAX_POINTERS.
        let mut m = Msg::new(0, 0, [1, 0, 0, 0]);
        m.name("a");
        let mut prev = 12;
        for _ in 0..200 {
            let here = m.pos();
            m.ptr(prev);
            prev = here;
        }
        let start = usize::from(m.pos() - 2);
        assert_eq!(
            Name::decode(m.bytes(), start).map(|(n, _)| n),
            Err(DnsError::TooManyPointers { offset: start })
        );
        // 100 hops are fine.
        let (n, end) = Name::decode(m.bytes(), 15 + 2 * 99).unwrap();
        assert_eq!((n.as_bytes(), end), (&b"a"[..], 15 + 2 * 100));
    }

    #[test]
    fn truncation_at_every_length() {
        let msg = response();
        let (fq, fr) = all(&msg);
        assert!(
            fq.iter()
                .chain(fr.iter().map(|_| &fq[0]))
                .all(Result::is_ok)
        );
        for n in 0..msg.len() {
            let Ok(m) = DnsMessage::parse(&msg[..n]) else {
                assert!(n < HEADER_LEN);
                continue;
            };
            let qs: Vec<_> = m.questions().collect();
            let rs: Vec<_> = m.records().collect();
            // What parsed is a prefix of the full result, and the cut is reported.
            let good_q = qs.iter().take_while(|r| r.is_ok()).count();
            let good_r = rs.iter().take_while(|r| r.is_ok()).count();
            assert_eq!(&qs[..good_q], &fq[..good_q], "n={n}");
            assert_eq!(&rs[..good_r], &fr[..good_r], "n={n}");
            assert!(
                qs.iter()
                    .chain(rs.iter().map(|_| &qs[0]))
                    .any(Result::is_err)
                    || rs.iter().any(Result::is_err),
                "n={n}: no error for a cut message"
            );
            assert!(qs.len() <= fq.len() && rs.len() <= fr.len());
        }
    }

    #[test]
    fn bogus_counts_stop_at_the_end() {
        let mut m = Msg::new(0, 0x8180, [u16::MAX; 4]);
        m.name("a").q(1, 1);
        let (qs, rs) = all(m.bytes());
        assert_eq!(qs.len(), 2);
        assert!(qs[0].is_ok());
        assert_eq!(
            qs[1],
            Err(DnsError::Truncated {
                what: "name",
                offset: 19
            })
        );
        assert_eq!(rs.len(), 1);
        assert!(rs[0].is_err());
        // Counts of zero: nothing, even with trailing bytes.
        let mut m = Msg::new(0, 0, [0; 4]);
        m.raw(&[1, 2, 3]);
        let (qs, rs) = all(m.bytes());
        assert!(qs.is_empty() && rs.is_empty());
        // Records cut inside the fixed fields and inside RDATA.
        let mut m = Msg::new(0, 0x8180, [0, 2, 0, 0]);
        m.name("a")
            .rr(TYPE_A, 1, 1, &[1, 2, 3, 4])
            .name("b")
            .raw(&[0, 1, 0, 1, 0, 0]);
        let (_, rs) = all(m.bytes());
        assert_eq!(
            rs[1],
            Err(DnsError::Truncated {
                what: "record header",
                offset: 32
            })
        );
        let mut m = Msg::new(0, 0x8180, [0, 1, 0, 0]);
        m.name("a").raw(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1]);
        let (_, rs) = all(m.bytes());
        assert_eq!(
            rs,
            [Err(DnsError::Truncated {
                what: "record data",
                offset: 25
            })]
        );
    }

    fn query(name: &str) -> Vec<u8> {
        let mut m = Msg::new(0x1234, 0x0100, [1, 0, 0, 0]);
        m.name(name).q(TYPE_A, 1);
        m.0
    }

    #[test]
    fn detection_heuristic() {
        let q = query("example.com");
        assert!(looks_like_dns(&q, 40000, 53));
        assert!(looks_like_dns(&q, 40000, 9999), "any port");
        assert!(looks_like_dns(&response(), 53, 40000));
        // mDNS announcement: no question.
        let mut a = Msg::new(0, 0x8400, [0, 1, 0, 0]);
        a.name("h.local").rr(TYPE_A, 0x8001, 120, &[10, 0, 0, 1]);
        assert!(looks_like_dns(a.bytes(), 5353, 5353));
        assert!(!looks_like_dns(a.bytes(), 40000, 53));
        let no = |b: &[u8]| assert!(!looks_like_dns(b, 1, 2), "{b:x?}");
        no(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
        no(&[
            0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        no(&q[..q.len() - 1]); // class cut
        no(&q[..HEADER_LEN]);
        no(&[]);
        let mut bad = q.clone();
        bad[5] = 17; // 17 questions
        no(&bad);
        let mut bad = q.clone();
        bad[2] = 0x30; // opcode 6
        no(&bad);
        let mut bad = q.clone();
        bad[3] = 0x40; // Z bit
        no(&bad);
        let mut bad = q.clone();
        bad[7] = 200; // 200 answers cannot fit
        no(&bad);
        let mut bad = q.clone();
        let n = bad.len();
        bad[n - 1] = 7; // class 7
        no(&bad);
        let mut bad = q.clone();
        bad[12] = 0x41; // label type 01
        no(&bad);
        let mut ch = q.clone();
        ch[n - 1] = 3; // CHAOS
        assert!(looks_like_dns(&ch, 1, 2));
        // NetBIOS name service: by port, or by its encoded name on any port.
        assert!(!looks_like_dns(&q, 137, 137));
        let nb = query("FHEPFCELEHFCEPFFFACACACACACACAAA.example");
        assert!(!looks_like_dns(&nb, 5000, 5001));
        let almost = query("FHEPFCELEHFCEPFFFACACACACACACAAZ.example");
        assert!(looks_like_dns(&almost, 5000, 5001));
    }

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&u16::try_from(m.len()).unwrap().to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    fn several_messages_per_segment() {
        let (a, b) = (query("a.example"), response());
        let seg = framed(&[&a, &b, &a]);
        let got: Vec<&[u8]> = DnsOverTcp::new(&seg).collect();
        assert_eq!(got, [&a[..], &b[..], &a[..]]);
        let mut it = DnsOverTcp::new(&seg[..seg.len() - 1]);
        assert_eq!(it.by_ref().count(), 2);
        assert_eq!(it.rest(), &seg[2 * 2 + a.len() + b.len()..seg.len() - 1]);
        assert_eq!(DnsOverTcp::new(&[0]).next(), None);
    }

    /// Feeds `stream` to a fresh buffer cut at `cuts`, returning the messages.
    fn reassemble(stream: &[u8], cuts: &[usize], isn: u32) -> Vec<Vec<u8>> {
        let mut b = TcpDnsBuf::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain([stream.len()].iter()) {
            let seq = isn.wrapping_add(prev as u32);
            b.push(seq, &stream[prev..c], |m| out.push(m.to_vec()));
            prev = c;
        }
        assert_eq!(b.pending(), 0);
        out
    }

    #[test]
    fn tcp_buffer_any_split() {
        let (a, r) = (query("a.example"), response());
        let stream = framed(&[&a, &r, &a]);
        let want = vec![a.clone(), r.clone(), a.clone()];
        for i in 0..=stream.len() {
            assert_eq!(reassemble(&stream, &[i], 7), want, "cut {i}");
            for j in i..=stream.len() {
                assert_eq!(
                    reassemble(&stream, &[i, j], u32::MAX - 20),
                    want,
                    "cuts {i} {j}"
                );
            }
        }
        // One byte at a time.
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(reassemble(&stream, &cuts, 0), want);
    }

    #[test]
    fn tcp_buffer_retransmissions_gaps_and_resync() {
        let (a, r) = (query("a.example"), response());
        let stream = framed(&[&a, &r]);
        let mut b = TcpDnsBuf::new();
        let mut out: Vec<Vec<u8>> = Vec::new();
        // Starts mid-message: dropped until a plausible boundary.
        b.push(100, &stream[5..9], |m| out.push(m.to_vec()));
        assert!(out.is_empty());
        assert_eq!(b.stats().dropped_bytes, 4);
        // A gap, then a segment at a boundary: resynchronised.
        b.push(500, &stream[..10], |m| out.push(m.to_vec()));
        // Full retransmission, then a partial overlap.
        b.push(500, &stream[..10], |m| out.push(m.to_vec()));
        b.push(505, &stream[5..20], |m| out.push(m.to_vec()));
        b.push(520, &stream[20..], |m| out.push(m.to_vec()));
        assert_eq!(out, [a.clone(), r.clone()]);
        assert_eq!(b.stats().messages, 2);
        assert_eq!(b.stats().dropped_bytes, 4 + 10 + 5);
        // A gap in the middle of a message drops it; the next boundary resyncs.
        let stream2 = framed(&[&r, &a]);
        let base = 520 + (stream.len() as u32 - 20);
        out.clear();
        b.push(base, &stream2[..30], |m| out.push(m.to_vec()));
        b.push(base + 40, &stream2[40..r.len() + 2], |m| {
            out.push(m.to_vec())
        });
        assert!(out.is_empty());
        assert_eq!(b.stats().gaps, 2, "the first gap and this one");
        b.push(base + r.len() as u32 + 2, &stream2[r.len() + 2..], |m| {
            out.push(m.to_vec())
        });
        assert_eq!(out, std::slice::from_ref(&a));
        // A length prefix below the header size desynchronises.
        out.clear();
        let mut c = TcpDnsBuf::new();
        let mut bad = framed(&[&a]);
        bad.extend_from_slice(&[0, 3, 1, 2, 3]);
        bad.extend_from_slice(&framed(&[&a]));
        c.push(0, &bad, |m| out.push(m.to_vec()));
        assert_eq!(out, std::slice::from_ref(&a));
        c.clear();
        assert_eq!((c.pending(), c.memory_bytes()), (0, 0));
    }

    #[test]
    fn tcp_buffer_is_bounded() {
        // A 65535-byte message (counts 0, padding) split in 1400-byte segments.
        let mut big = Msg::new(1, 0, [0; 4]).0;
        big.resize(65535, 0);
        let stream = framed(&[&big]);
        let cuts: Vec<usize> = (1..stream.len()).step_by(1400).skip(1).collect();
        let mut b = TcpDnsBuf::new();
        let mut n = 0;
        let mut prev = 0;
        for &c in cuts.iter().chain([stream.len()].iter()) {
            b.push(prev as u32, &stream[prev..c], |m| {
                assert_eq!(m.len(), 65535);
                n += 1;
            });
            assert!(b.pending() <= TCP_DNS_BUF_MAX);
            prev = c;
        }
        assert_eq!(n, 1);
        assert_eq!(b.memory_bytes(), 0, "large buffers are released once empty");
    }
}
