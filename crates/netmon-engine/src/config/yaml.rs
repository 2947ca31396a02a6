//! The YAML layer: the file is parsed once (by serde-saphyr) into a small tree of positioned
//! nodes, and the typed configuration is deserialised from that tree by the [`De`] below,
//! which knows the key path and the position of every value. So every error — a type error, an
//! unknown key (serde hands us the list of known ones), a bad duration from a field's own
//! parser, a semantic check after the fact — names the line, the column and the key.
//!
//! Scalars are kept as text, and the target type decides what they mean (as StrictYAML does):
//! `token: 0123` is the string `0123`, `snaplen: "65535"` the number 65535, and only `true` and
//! `false` are booleans (not YAML 1.1's `yes`/`no`/`on`/`off`, which are words).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

use super::error::{ErrorKind, Pos, suggest};

/// A node of the document.
#[derive(Debug)]
pub(crate) enum Node {
    /// `~`, `null` or nothing.
    Null,
    /// Any scalar, as text (quotes and escapes resolved).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Item>),
    /// A mapping: (key, value) in file order.
    Map(Vec<(Item, Item)>),
}

/// A node and where it starts.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) pos: Pos,
    pub(crate) node: Node,
}

impl Item {
    /// The value at `path` (keys and indices from this node), with the position of the key
    /// that names it (`None` for the root), or `None` when the path is not in the file.
    pub(crate) fn find(&self, path: &[Seg<'_>]) -> Option<(Option<Pos>, &Item)> {
        let mut cur = (None, self);
        for seg in path {
            cur = match (seg, &cur.1.node) {
                (Seg::Key(k), Node::Map(entries)) => entries
                    .iter()
                    .find(|(key, _)| matches!(&key.node, Node::Scalar(s) if s == k))
                    .map(|(key, v)| (Some(key.pos), v))?,
                (Seg::Index(i), Node::Seq(items)) => (None, items.get(*i)?),
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Where to report a problem with the value at `path`: the value when the file has it,
    /// else the deepest part of the path that the file has (or the file's start).
    pub(crate) fn locate(&self, path: &[Seg<'_>]) -> Pos {
        for n in (0..=path.len()).rev() {
            if let Some((key, v)) = path.get(..n).and_then(|p| self.find(p)) {
                return if n == path.len() {
                    v.pos
                } else {
                    key.unwrap_or(v.pos)
                };
            }
        }
        self.pos
    }
}

/// One step of a key path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seg<'s> {
    /// A mapping key.
    Key(&'s str),
    /// A sequence index.
    Index(usize),
}

/// Renders `a.b[2].c`.
pub(crate) fn render(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// The most nested collections accepted. The configuration needs 4 (`detectors.x.y`, or
/// `alerts[i].rule`); more is refused before it costs stack (each level of the parser's
/// recursive descent takes tens of KiB of stack in debug builds).
const MAX_DEPTH: usize = 16;

/// Parses `src` into a tree. An empty document (nothing, or only comments) is an empty
/// mapping's equivalent: a `Null` root.
pub(crate) fn parse(src: &str) -> Result<Item, (Option<Pos>, ErrorKind)> {
    let opts = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
        },
        // Duplicates reach the tree and are reported with their key path (see `MapAcc`).
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        strict_booleans: true,
        // `.nan` is a word to us, not a reason to refuse the file.
        reject_non_finite_typeless_float: false,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Option<Spanned<Raw>>>(src, opts) {
        Ok(None) => Ok(Item {
            pos: Pos { line: 1, column: 1 },
            node: Node::Null,
        }),
        Ok(Some(raw)) => convert(raw, src, 0),
        Err(e) => {
            let msg = match e.without_snippet() {
                serde_saphyr::Error::Budget {
                    breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
                    ..
                } => format!("nested more than {MAX_DEPTH} levels deep"),
                inner => serde_saphyr::UserMessageFormatter
                    .format_message(inner)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            Err((e.location().and_then(pos), ErrorKind::Syntax(msg)))
        }
    }
}

fn pos(l: serde_saphyr::Location) -> Option<Pos> {
    (l.line() > 0).then(|| Pos {
        line: l.line(),
        column: l.column().max(1),
    })
}

fn convert(raw: Spanned<Raw>, src: &str, depth: usize) -> Result<Item, (Option<Pos>, ErrorKind)> {
    let at = pos(raw.referenced).unwrap_or(Pos { line: 1, column: 1 });
    if depth > MAX_DEPTH {
        return Err((
            Some(at),
            ErrorKind::Syntax(format!("nested more than {MAX_DEPTH} levels deep")),
        ));
    }
    let node = match raw.value {
        Raw::Null => Node::Null,
        Raw::Text(s) => Node::Scalar(s),
        // A plain scalar the parser typed (a number, a boolean): its text as written.
        Raw::Plain(fallback) => {
            let span = raw.defined.span();
            let text = span
                .byte_offset()
                .zip(span.byte_len())
                .and_then(|(o, l)| src.get(usize::try_from(o).ok()?..usize::try_from(o + l).ok()?))
                .filter(|t| !t.is_empty() && !t.starts_with('*'))
                .map_or(fallback, str::to_owned);
            Node::Scalar(text)
        }
        Raw::Seq(items) => Node::Seq(
            items
                .into_iter()
                .map(|i| convert(i, src, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Raw::Map(entries) => Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((convert(k, src, depth + 1)?, convert(v, src, depth + 1)?)))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Item { pos: at, node })
}

/// What serde-saphyr's self-describing pass gives us.
enum Raw {
    Null,
    Text(String),
    /// A plain scalar typed by the parser; the string is a rendering used only if the source
    /// text cannot be sliced.
    Plain(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

impl<'de> de::Deserialize<'de> for Raw {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Plain(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Plain(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Plain(v.to_string()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Plain(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        Ok(Raw::Plain(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Plain(v.to_string()))
    }
    fn visit_char<E>(self, v: char) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Text(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Text(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Raw::Seq(v))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_entry()? {
            v.push(x);
        }
        Ok(Raw::Map(v))
    }
}

/// An error while deserialising the tree; the position and path are filled in by the
/// innermost node that sees it pass.
#[derive(Debug)]
pub(crate) struct DeError {
    pub(crate) pos: Option<Pos>,
    pub(crate) path: Option<String>,
    pub(crate) kind: ErrorKind,
}

impl DeError {
    fn new(kind: ErrorKind) -> DeError {
        DeError {
            pos: None,
            path: None,
            kind,
        }
    }

    fn at(mut self, item: &Item, path: &Path<'_>) -> DeError {
        if self.pos.is_none() {
            self.pos = Some(item.pos);
            self.path = Some(path.to_string());
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> DeError {
        DeError::new(ErrorKind::Invalid(msg.to_string()))
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> DeError {
        DeError::new(ErrorKind::Type {
            found: unexpected(unexp),
            expected: exp.to_string(),
        })
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> DeError {
        DeError::new(ErrorKind::Type {
            found: unexpected(unexp),
            expected: exp.to_string(),
        })
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(ErrorKind::UnknownValue {
            value: variant.to_owned(),
            known: expected,
            suggestion: suggest(variant, expected),
        })
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(ErrorKind::UnknownKey {
            known: expected,
            suggestion: suggest(field, expected),
        })
    }
    fn missing_field(field: &'static str) -> DeError {
        DeError::new(ErrorKind::MissingKey(field))
    }
}

fn unexpected(u: de::Unexpected<'_>) -> String {
    match u {
        de::Unexpected::Str(s) => quote(s),
        de::Unexpected::Unsigned(n) => n.to_string(),
        de::Unexpected::Signed(n) => n.to_string(),
        de::Unexpected::Float(n) => n.to_string(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Map => "a mapping".into(),
        de::Unexpected::Unit | de::Unexpected::Option => "an empty value".into(),
        other => other.to_string(),
    }
}

/// A scalar as shown in messages: quoted, escaped, at most 60 characters.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", s.get(..cut).unwrap_or_default()),
        None => format!("{s:?}"),
    }
}

/// A key path while deserialising: a linked list up the stack, rendered only for errors.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    fn write(&self, f: &mut fmt::Formatter<'_>, pattern: bool) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(parent, k) => {
                parent.write(f, pattern)?;
                if !matches!(parent, Path::Root) {
                    f.write_str(".")?;
                }
                f.write_str(k)
            }
            Path::Index(parent, i) => {
                parent.write(f, pattern)?;
                if pattern {
                    f.write_str("[]")
                } else {
                    write!(f, "[{i}]")
                }
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

/// `alerts[].rule`: the path with indices left out.
struct Pattern<'a, 'p>(&'a Path<'p>);

impl fmt::Display for Pattern<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, true)
    }
}

/// Records each struct deserialised (its path pattern and field names): how the tests check
/// that the template and the reference name every key.
pub(crate) type Recorder = RefCell<Vec<(String, &'static [&'static str])>>;

/// Deserialises a typed value from a node.
#[derive(Clone, Copy)]
pub(crate) struct De<'a> {
    item: &'a Item,
    path: Path<'a>,
    rec: Option<&'a Recorder>,
}

/// Deserialises `T` from the root.
pub(crate) fn from_tree<T: de::DeserializeOwned>(
    root: &Item,
    rec: Option<&Recorder>,
) -> Result<T, DeError> {
    let de = De {
        item: root,
        path: Path::Root,
        rec,
    };
    T::deserialize(de).map_err(|e| e.at(root, &Path::Root))
}

impl De<'_> {
    fn found(&self) -> String {
        match &self.item.node {
            Node::Null => "an empty value".into(),
            Node::Scalar(s) => quote(s),
            Node::Seq(_) => "a list".into(),
            Node::Map(_) => "a mapping".into(),
        }
    }

    fn type_error(&self, expected: impl Into<String>) -> DeError {
        DeError::new(ErrorKind::Type {
            found: self.found(),
            expected: expected.into(),
        })
    }

    fn scalar(&self, expected: &str) -> Result<&str, DeError> {
        match &self.item.node {
            Node::Scalar(s) => Ok(s),
            _ => Err(self.type_error(expected)),
        }
    }

    fn int<T: TryFrom<i128> + fmt::Display>(&self, min: T, max: T) -> Result<T, DeError> {
        let expected = || format!("a whole number from {min} to {max}");
        let s = self.scalar(&expected())?;
        parse_int(s)
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| self.type_error(expected()))
    }

    fn float(&self) -> Result<f64, DeError> {
        const EXP: &str = "a number (like 0.8 or 1e6)";
        let s = self.scalar(EXP)?;
        parse_float(s).ok_or_else(|| self.type_error(EXP))
    }
}

/// A whole number: decimal, `0x` hex, `0o` octal or `0b` binary, with an optional sign and
/// `_` between digits.
pub(crate) fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, s.get(1..)?),
        b'+' => (false, s.get(1..)?),
        _ => (false, s),
    };
    let (radix, digits) = match s.get(..2) {
        Some("0x" | "0X") => (16, s.get(2..)?),
        Some("0o" | "0O") => (8, s.get(2..)?),
        Some("0b" | "0B") => (2, s.get(2..)?),
        _ => (10, s),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.len() > 64 {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// A finite decimal number: `[-+]digits[.digits][e[-+]digits]` (no `inf`, no `nan`).
fn parse_float(s: &str) -> Option<f64> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-' | '_'))
        && s.chars().any(|c| c.is_ascii_digit());
    if !ok {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    clean.parse::<f64>().ok().filter(|v| v.is_finite())
}

macro_rules! de_int {
    ($($method:ident $visit:ident $t:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            v.$visit(self.int::<$t>(<$t>::MIN, <$t>::MAX)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.item.node {
            Node::Null => v.visit_unit(),
            Node::Scalar(s) => v.visit_str(s),
            Node::Seq(_) => self.deserialize_seq(v),
            Node::Map(_) => self.deserialize_map(v),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        const EXP: &str = "true or false";
        match self.scalar(EXP)? {
            "true" | "True" | "TRUE" => v.visit_bool(true),
            "false" | "False" | "FALSE" => v.visit_bool(false),
            _ => Err(self.type_error(EXP)),
        }
    }

    de_int! {
        deserialize_i8 visit_i8 i8;
        deserialize_i16 visit_i16 i16;
        deserialize_i32 visit_i32 i32;
        deserialize_i64 visit_i64 i64;
        deserialize_i128 visit_i128 i128;
        deserialize_u8 visit_u8 u8;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
    }

    fn deserialize_u128<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_u128(self.int::<u128>(0, i128::MAX.unsigned_abs())?)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_f64(self.float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        const EXP: &str = "a single character";
        let s = self.scalar(EXP)?;
        let mut it = s.chars();
        match (it.next(), it.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => Err(self.type_error(EXP)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let expected = (&v as &dyn de::Expected).to_string();
        v.visit_str(self.scalar(&expected)?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.item.node {
            Node::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.item.node {
            Node::Null => v.visit_unit(),
            _ => Err(self.type_error("an empty value")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.item.node {
            Node::Seq(items) => v.visit_seq(SeqAcc {
                items,
                i: 0,
                path: &self.path,
                rec: self.rec,
            }),
            Node::Null => v.visit_seq(SeqAcc {
                items: &[],
                i: 0,
                path: &self.path,
                rec: self.rec,
            }),
            Node::Scalar(s) => Err(self.type_error(format!(
                "a list (write [{s}], or one `- {s}` per line below the key)"
            ))),
            Node::Map(_) => Err(self.type_error("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.item.node {
            // `capture:` with every key left out (or commented out): all defaults.
            Node::Null => v.visit_map(MapAcc {
                entries: &[],
                i: 0,
                path: &self.path,
                rec: self.rec,
            }),
            Node::Map(entries) => {
                check_keys(entries, &self.path)?;
                v.visit_map(MapAcc {
                    entries,
                    i: 0,
                    path: &self.path,
                    rec: self.rec,
                })
            }
            _ => Err(self.type_error("a mapping of keys to values")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        if let Some(r) = self.rec {
            r.borrow_mut()
                .push((Pattern(&self.path).to_string(), fields));
        }
        match &self.item.node {
            Node::Scalar(_) | Node::Seq(_) => {
                Err(self.type_error(format!("a mapping (with keys among {})", fields.join(", "))))
            }
            _ => self.deserialize_map(v),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.item.node {
            Node::Scalar(_) => v.visit_enum(UnitEnum(self)),
            _ => Err(self.type_error(format!("one of {}", variants.join(", ")))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_str(self.scalar("a name")?)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

/// Keys must be names, each given once.
fn check_keys(entries: &[(Item, Item)], path: &Path<'_>) -> Result<(), DeError> {
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    for (k, _) in entries {
        let Node::Scalar(name) = &k.node else {
            let de = De {
                item: k,
                path: *path,
                rec: None,
            };
            return Err(de.type_error("a key name").at(k, path));
        };
        if let Some(&first) = seen.get(name.as_str()) {
            return Err(
                DeError::new(ErrorKind::DuplicateKey { first }).at(k, &Path::Key(path, name))
            );
        }
        seen.insert(name, k.pos);
    }
    Ok(())
}

struct SeqAcc<'a> {
    items: &'a [Item],
    i: usize,
    path: &'a Path<'a>,
    rec: Option<&'a Recorder>,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.i) else {
            return Ok(None);
        };
        let path = Path::Index(self.path, self.i);
        self.i += 1;
        seed.deserialize(De {
            item,
            path,
            rec: self.rec,
        })
        .map(Some)
        .map_err(|e| e.at(item, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len().saturating_sub(self.i))
    }
}

struct MapAcc<'a> {
    entries: &'a [(Item, Item)],
    i: usize,
    path: &'a Path<'a>,
    rec: Option<&'a Recorder>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, _)) = self.entries.get(self.i) else {
            return Ok(None);
        };
        let name = match &key.node {
            Node::Scalar(s) => s.as_str(),
            _ => "",
        };
        let path = Path::Key(self.path, name);
        seed.deserialize(De {
            item: key,
            path,
            rec: self.rec,
        })
        .map(Some)
        .map_err(|e| e.at(key, &path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.entries.get(self.i) else {
            return Err(DeError::new(ErrorKind::Invalid(
                "internal: a value asked for before its key".into(),
            )));
        };
        self.i += 1;
        let name = match &key.node {
            Node::Scalar(s) => s.as_str(),
            _ => "",
        };
        let path = Path::Key(self.path, name);
        seed.deserialize(De {
            item: value,
            path,
            rec: self.rec,
        })
        .map_err(|e| e.at(value, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len().saturating_sub(self.i))
    }
}

/// A scalar read as a unit enum variant (`format: json`).
struct UnitEnum<'a>(De<'a>);

impl<'de, 'a> de::EnumAccess<'de> for UnitEnum<'a> {
    type Error = DeError;
    type Variant = UnitEnum<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, UnitEnum<'a>), DeError> {
        let v = seed.deserialize(self.0)?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitEnum<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(self.0.type_error("a mapping"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, DeError> {
        Err(self.0.type_error("a list"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, DeError> {
        Err(self.0.type_error("a mapping"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-7"), Some(-7));
        assert_eq!(parse_int("0x1F"), Some(31));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("0b101"), Some(5));
        assert_eq!(parse_int("2_097_152"), Some(2_097_152));
        assert_eq!(parse_int("010"), Some(10));
        for bad in ["", "-", "0x", "_1", "1_", "1.5", "abc", "1e3", "ten", "0xg"] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
        assert_eq!(parse_int(&"9".repeat(200)), None);
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float("0.8"), Some(0.8));
        assert_eq!(parse_float("1e6"), Some(1e6));
        assert_eq!(parse_float("5"), Some(5.0));
        for bad in ["", ".", "inf", ".inf", "nan", "NaN", "1e999", "abc", "e"] {
            assert_eq!(parse_float(bad), None, "{bad}");
        }
    }

    #[test]
    fn tree_positions_and_locate() {
        let t = parse("a:\n  b: [x, 'y']\n  c: 010\nd: ~\n").unwrap();
        let (kpos, b) = t.find(&[Seg::Key("a"), Seg::Key("b")]).unwrap();
        assert_eq!(kpos, Some(Pos { line: 2, column: 3 }));
        assert_eq!(b.pos, Pos { line: 2, column: 6 });
        let (_, c) = t.find(&[Seg::Key("a"), Seg::Key("c")]).unwrap();
        assert!(matches!(&c.node, Node::Scalar(s) if s == "010"));
        let (_, y) = t
            .find(&[Seg::Key("a"), Seg::Key("b"), Seg::Index(1)])
            .unwrap();
        assert!(matches!(&y.node, Node::Scalar(s) if s == "y"));
        // Missing keys point at the deepest part that exists.
        assert_eq!(
            t.locate(&[Seg::Key("a"), Seg::Key("zz")]),
            Pos { line: 1, column: 1 }
        );
        assert_eq!(t.locate(&[Seg::Key("nope")]), Pos { line: 1, column: 1 });
        assert_eq!(
            render(&[Seg::Key("alerts"), Seg::Index(2), Seg::Key("rule")]),
            "alerts[2].rule"
        );
    }

    #[test]
    fn empty_documents() {
        assert!(matches!(parse("").unwrap().node, Node::Null));
        assert!(matches!(
            parse("# just a comment\n").unwrap().node,
            Node::Null
        ));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (p, k) = parse("a: [1, 2\n").unwrap_err();
        assert_eq!(p, Some(Pos { line: 1, column: 4 }));
        assert!(matches!(k, ErrorKind::Syntax(_)));
        let (p, _) = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(p, Some(Pos { line: 3, column: 1 }));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(matches!(parse(&s), Err((_, ErrorKind::Syntax(_)))));
    }
}
