//! A minimal writer of MaxMind DB files (format 2.0,
//! <https://maxmind.github.io/MaxMind-DB/>), so that GeoIP/ASN tests build their own small
//! databases instead of shipping MaxMind's.
//!
//! ```text
//! search tree: node_count × (left record, right record), 32-bit records, big-endian
//!              record <  node_count  → next node
//!              record == node_count  → no data
//!              record >  node_count  → data at (record − node_count − 16) in the data section
//! 16 zero bytes
//! data section: the records' values, MaxMind DB encoded
//! "\xAB\xCD\xEFMaxMind.com" metadata map
//! ```
//!
//! The tree is an IPv6 tree (IPv4 networks live under `::/96`); networks must not overlap.

use std::net::IpAddr;

/// A MaxMind DB value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A map with string keys, in the given order.
    Map(Vec<(String, Value)>),
    /// A UTF-8 string.
    Str(String),
    /// An unsigned 16-bit integer.
    U16(u16),
    /// An unsigned 32-bit integer.
    U32(u32),
    /// An unsigned 64-bit integer.
    U64(u64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// An array.
    Array(Vec<Value>),
}

impl Value {
    /// A map from `(key, value)` pairs.
    pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A string.
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    // Types above 7 are "extended": type 0 in the control byte, type − 7 in the next byte.
    let (first, ext) = if kind > 7 {
        (0u8, Some(kind - 7))
    } else {
        (kind << 5, None)
    };
    let (bits, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, Vec::new())
    } else if size < 285 {
        (29, vec![(size - 29) as u8])
    } else if size < 65_821 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    out.push(first | bits);
    if let Some(e) = ext {
        out.push(e);
    }
    out.extend_from_slice(&extra);
}

fn uint(out: &mut Vec<u8>, kind: u8, v: u64, width: usize) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().max(8 - width);
    let body = &bytes[skip..];
    control(out, kind, body.len());
    out.extend_from_slice(body);
}

/// Appends the encoding of `v`.
pub fn encode(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Double(d) => {
            control(out, 3, 8);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::U16(n) => uint(out, 5, u64::from(*n), 2),
        Value::U32(n) => uint(out, 6, u64::from(*n), 4),
        Value::U64(n) => uint(out, 9, *n, 8),
        Value::Map(pairs) => {
            control(out, 7, pairs.len());
            for (k, v) in pairs {
                encode(out, &Value::Str(k.clone()));
                encode(out, v);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(out, v);
            }
        }
        Value::Bool(b) => control(out, 14, usize::from(*b)),
    }
}

#[derive(Clone, Copy)]
enum Rec {
    Node(u32),
    Empty,
    Data(u32),
}

/// The bytes of a database of type `database_type` (e.g. `GeoLite2-City`) holding `value`
/// for each `(network address, prefix length)`.
///
/// # Panics
///
/// On overlapping networks or a prefix longer than the address (test input errors).
pub fn build(database_type: &str, networks: &[(IpAddr, u8, Value)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
    for (addr, prefix, value) in networks {
        let (bits, len): (u128, u32) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(*a)), 96 + u32::from(*prefix)),
            IpAddr::V6(a) => (u128::from(*a), u32::from(*prefix)),
        };
        assert!(len <= 128, "prefix too long: {addr}/{prefix}");
        assert!(len > 0, "a /0 network is not supported");
        let offset = data.len() as u32;
        encode(&mut data, value);
        let mut node = 0usize;
        for i in 0..len {
            let bit = ((bits >> (127 - i)) & 1) as usize;
            if i + 1 == len {
                match nodes[node][bit] {
                    Rec::Empty => nodes[node][bit] = Rec::Data(offset),
                    _ => panic!("{addr}/{prefix} overlaps another network"),
                }
                break;
            }
            node = match nodes[node][bit] {
                Rec::Node(n) => n as usize,
                Rec::Empty => {
                    nodes.push([Rec::Empty, Rec::Empty]);
                    let n = nodes.len() - 1;
                    nodes[node][bit] = Rec::Node(n as u32);
                    n
                }
                Rec::Data(_) => panic!("{addr}/{prefix} lies inside another network"),
            };
        }
    }
    let count = nodes.len() as u32;
    let mut out = Vec::with_capacity(nodes.len() * 8 + data.len() + 256);
    for pair in &nodes {
        for r in pair {
            let v = match *r {
                Rec::Node(n) => n,
                Rec::Empty => count,
                Rec::Data(off) => count + 16 + off,
            };
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let meta = Value::map([
        ("binary_format_major_version", Value::U16(2)),
        ("binary_format_minor_version", Value::U16(0)),
        ("build_epoch", Value::U64(1_700_000_000)),
        ("database_type", Value::str(database_type)),
        (
            "description",
            Value::map([("en", Value::str("netmon test database"))]),
        ),
        ("ip_version", Value::U16(6)),
        ("languages", Value::Array(vec![Value::str("en")])),
        ("node_count", Value::U32(count)),
        ("record_size", Value::U16(32)),
    ]);
    encode(&mut out, &meta);
    out
}
