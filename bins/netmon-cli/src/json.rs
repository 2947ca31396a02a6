//! A small streaming JSON writer: objects and arrays written straight into an [`io::Write`]
//! (a `BufWriter`), no intermediate values, no allocation.
//!
//! Keys are `&'static str` chosen by netmon (plain ASCII, written as is). Values that come from
//! a packet go through [`Escaped::json`]; values netmon renders itself (IP and MAC addresses,
//! static protocol names, numbers) are ASCII without quotes or backslashes and are written
//! with [`Obj::display`].

use std::fmt::Display;
use std::io::{self, Write};

use netmon_packet::Escaped;

/// Writes `v` in decimal without going through `core::fmt`.
#[inline]
pub(crate) fn write_u64<W: Write>(w: &mut W, mut v: u64) -> io::Result<()> {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    w.write_all(buf.get(i..).unwrap_or(&[]))
}

/// Writes `v` in decimal, with a leading `-` when negative.
pub(crate) fn write_i64<W: Write>(w: &mut W, v: i64) -> io::Result<()> {
    if v < 0 {
        w.write_all(b"-")?;
    }
    write_u64(w, v.unsigned_abs())
}

/// An open JSON object; [`Obj::end`] closes it.
pub(crate) struct Obj<'w, W: Write> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: Write> Obj<'w, W> {
    /// Writes `{`.
    pub(crate) fn open(w: &'w mut W) -> io::Result<Self> {
        w.write_all(b"{")?;
        Ok(Obj { w, first: true })
    }

    /// Writes `,"key":` (the comma only after the first member).
    #[inline]
    pub(crate) fn key(&mut self, key: &str) -> io::Result<()> {
        if !self.first {
            self.w.write_all(b",")?;
        }
        self.first = false;
        self.w.write_all(b"\"")?;
        self.w.write_all(key.as_bytes())?;
        self.w.write_all(b"\":")
    }

    /// A number member.
    #[inline]
    pub(crate) fn u64(&mut self, key: &str, v: u64) -> io::Result<()> {
        self.key(key)?;
        write_u64(self.w, v)
    }

    /// A number member from a signed value.
    pub(crate) fn i64(&mut self, key: &str, v: i64) -> io::Result<()> {
        self.key(key)?;
        write_i64(self.w, v)
    }

    /// A boolean member.
    pub(crate) fn bool(&mut self, key: &str, v: bool) -> io::Result<()> {
        self.key(key)?;
        self.w.write_all(if v { b"true" } else { b"false" })
    }

    /// A string member holding untrusted bytes (from a packet), escaped with [`Escaped::json`].
    pub(crate) fn bytes(&mut self, key: &str, v: &[u8]) -> io::Result<()> {
        self.key(key)?;
        write_escaped(self.w, v)
    }

    /// A string member holding text netmon produced (addresses, names, numbers): written
    /// without escaping, so it must not contain `"`, `\` or control characters.
    pub(crate) fn display(&mut self, key: &str, v: impl Display) -> io::Result<()> {
        self.key(key)?;
        write!(self.w, "\"{v}\"")
    }

    /// A string member whose text `f` writes (netmon-produced text, as for [`Obj::display`]).
    #[inline]
    pub(crate) fn with(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut W) -> io::Result<()>,
    ) -> io::Result<()> {
        self.key(key)?;
        self.w.write_all(b"\"")?;
        f(self.w)?;
        self.w.write_all(b"\"")
    }

    /// A string member from a static name.
    pub(crate) fn str(&mut self, key: &str, v: &str) -> io::Result<()> {
        self.key(key)?;
        self.w.write_all(b"\"")?;
        self.w.write_all(v.as_bytes())?;
        self.w.write_all(b"\"")
    }

    /// A nested object member.
    pub(crate) fn obj(&mut self, key: &str) -> io::Result<Obj<'_, W>> {
        self.key(key)?;
        Obj::open(self.w)
    }

    /// A nested array member.
    pub(crate) fn arr(&mut self, key: &str) -> io::Result<Arr<'_, W>> {
        self.key(key)?;
        Arr::open(self.w)
    }

    /// Writes `}`.
    pub(crate) fn end(self) -> io::Result<()> {
        self.w.write_all(b"}")
    }
}

/// An open JSON array; [`Arr::end`] closes it.
pub(crate) struct Arr<'w, W: Write> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: Write> Arr<'w, W> {
    fn open(w: &'w mut W) -> io::Result<Self> {
        w.write_all(b"[")?;
        Ok(Arr { w, first: true })
    }

    fn sep(&mut self) -> io::Result<()> {
        if !self.first {
            self.w.write_all(b",")?;
        }
        self.first = false;
        Ok(())
    }

    /// A number element.
    pub(crate) fn u64(&mut self, v: u64) -> io::Result<()> {
        self.sep()?;
        write_u64(self.w, v)
    }

    /// A string element from a static name.
    pub(crate) fn str(&mut self, v: &str) -> io::Result<()> {
        self.sep()?;
        self.w.write_all(b"\"")?;
        self.w.write_all(v.as_bytes())?;
        self.w.write_all(b"\"")
    }

    /// A string element of netmon-produced text (see [`Obj::display`]).
    pub(crate) fn display(&mut self, v: impl Display) -> io::Result<()> {
        self.sep()?;
        write!(self.w, "\"{v}\"")
    }

    /// An object element.
    pub(crate) fn obj(&mut self) -> io::Result<Obj<'_, W>> {
        self.sep()?;
        Obj::open(self.w)
    }

    /// A nested array element.
    pub(crate) fn arr(&mut self) -> io::Result<Arr<'_, W>> {
        self.sep()?;
        Arr::open(self.w)
    }

    /// Writes `]`.
    pub(crate) fn end(self) -> io::Result<()> {
        self.w.write_all(b"]")
    }
}

/// Writes untrusted bytes as a quoted JSON string.
pub(crate) fn write_escaped<W: Write>(w: &mut W, v: &[u8]) -> io::Result<()> {
    write!(w, "\"{}\"", Escaped::new(v).json())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: u64) -> String {
        let mut b = Vec::new();
        write_u64(&mut b, v).unwrap();
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn numbers() {
        for v in [0, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            assert_eq!(num(v), v.to_string());
        }
        let mut b = Vec::new();
        write_i64(&mut b, i64::MIN).unwrap();
        assert_eq!(String::from_utf8(b).unwrap(), i64::MIN.to_string());
    }

    #[test]
    fn nested_document_parses() {
        let mut b = Vec::new();
        let mut o = Obj::open(&mut b).unwrap();
        o.u64("n", 1).unwrap();
        o.bytes("s", b"a\"b\\c\x1b[31m\xff").unwrap();
        {
            let mut a = o.arr("l").unwrap();
            a.str("eth").unwrap();
            let mut inner = a.obj().unwrap();
            inner.bool("t", true).unwrap();
            inner.i64("neg", -5).unwrap();
            inner.end().unwrap();
            let mut pair = a.arr().unwrap();
            pair.u64(1).unwrap();
            pair.u64(2).unwrap();
            pair.end().unwrap();
            a.end().unwrap();
        }
        let e = o.obj("empty").unwrap();
        e.end().unwrap();
        o.display("ip", "10.0.0.1").unwrap();
        o.end().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["n"], 1);
        assert_eq!(v["s"], "a\"b\\c\u{1b}[31m\\xff");
        assert_eq!(v["l"][0], "eth");
        assert_eq!(v["l"][1]["neg"], -5);
        assert_eq!(v["l"][2][1], 2);
        assert_eq!(v["empty"], serde_json::json!({}));
        assert_eq!(v["ip"], "10.0.0.1");
        // The raw text holds no control character.
        assert!(!b.iter().any(|&c| c < 0x20));
    }
}
