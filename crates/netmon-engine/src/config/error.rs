//! Why a configuration file was refused: one line naming the file, line, column, key and what
//! is allowed.

use std::fmt;

/// A position in the configuration file, both 1-based (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A configuration that was refused.
///
/// Displayed as one line: `FILE:LINE:COLUMN: KEY.PATH: what is wrong (what is allowed)`, e.g.
/// `netmon.yaml:7:12: flows.timeouts.udp: "sixty" is not a duration (write 30s, 500ms, 5m)`.
#[derive(Debug)]
pub struct Error(Box<Detail>);

#[derive(Debug)]
struct Detail {
    file: String,
    pos: Option<Pos>,
    path: String,
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(file: &str, pos: Option<Pos>, path: String, kind: ErrorKind) -> Error {
        Error(Box::new(Detail {
            file: file.to_owned(),
            pos,
            path,
            kind,
        }))
    }

    /// The file as named by the caller.
    pub fn file(&self) -> &str {
        &self.0.file
    }

    /// Where in the file; `None` when the file could not be read at all.
    pub fn pos(&self) -> Option<Pos> {
        self.0.pos
    }

    /// The key path, e.g. `flows.timeouts.udp` or `alerts[2].rule`; empty for the whole file.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Io(#[source] std::io::Error),
    /// The file is larger than [`super::MAX_FILE_BYTES`].
    #[error("{0} bytes is too large for a config file (at most {max})", max = super::MAX_FILE_BYTES)]
    TooLarge(u64),
    /// Not YAML (or a YAML feature that is refused, such as a second document).
    #[error("YAML syntax: {0}")]
    Syntax(String),
    /// A key that the section does not have (the error's path is that key).
    #[error("unknown key{} (known: {})", Hint(*.suggestion), known.join(", "))]
    UnknownKey {
        /// The keys the section has.
        known: &'static [&'static str],
        /// The closest known key, when one is close.
        suggestion: Option<&'static str>,
    },
    /// A word that is not one of the allowed ones (a backend, a log format, ...).
    #[error("{} is not one of {}{}", super::yaml::quote(value), known.join(", "), Paren(*.suggestion))]
    UnknownValue {
        /// The value as written.
        value: String,
        /// The allowed words.
        known: &'static [&'static str],
        /// The closest allowed word, when one is close.
        suggestion: Option<&'static str>,
    },
    /// A value of the wrong type or out of range.
    #[error("{found} is not {expected}")]
    Type {
        /// What was written (a quoted scalar, `a list`, `a mapping`, `an empty value`).
        found: String,
        /// What is allowed there.
        expected: String,
    },
    /// A required key is missing (the path is the mapping that lacks it).
    #[error("missing key {0}")]
    MissingKey(&'static str),
    /// A key given twice in one mapping.
    #[error("duplicate key (first given at line {})", .first.line)]
    DuplicateKey {
        /// Where it was given first.
        first: Pos,
    },
    /// A value that parses but is not allowed, or contradicts another key; the message says
    /// why and what is allowed.
    #[error("{0}")]
    Invalid(String),
}

/// `, did you mean X?` or nothing.
struct Hint(Option<&'static str>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, ", did you mean {s}?"),
            None => Ok(()),
        }
    }
}

/// ` (did you mean X?)` or nothing.
struct Paren(Option<&'static str>);

impl fmt::Display for Paren {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, " (did you mean {s}?)"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        f.write_str(&d.file)?;
        if let Some(p) = d.pos {
            write!(f, ":{p}")?;
        }
        f.write_str(": ")?;
        match &d.kind {
            // "unknown key capture.bfp, did you mean bpf? (known: ...)": the path is the key.
            ErrorKind::UnknownKey { known, suggestion } => write!(
                f,
                "unknown key {}{} (known: {})",
                d.path,
                Hint(*suggestion),
                known.join(", ")
            ),
            kind if d.path.is_empty() => write!(f, "{kind}"),
            kind => write!(f, "{}: {kind}", d.path),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0.kind)
    }
}

/// The word of `known` closest to `word`, if it is close enough to be a likely typo: an edit
/// distance (with transpositions) of 1 for words up to 4 letters, 2 up to 8, else 3; or a
/// prefix of at least 3 letters.
pub(crate) fn suggest(word: &str, known: &'static [&'static str]) -> Option<&'static str> {
    let w = word.to_ascii_lowercase();
    if w.is_empty() || w.len() > 64 {
        return None;
    }
    let limit = match w.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &'static str)> = None;
    for &k in known {
        let d = distance(&w, &k.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k).or_else(|| {
        known
            .iter()
            .copied()
            .find(|k| w.len() >= 3 && k.len() > w.len() && k.starts_with(w.as_str()))
    })
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the DP table.
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(c0) = cur.first_mut() {
            *c0 = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let del = prev.get(j + 1).map_or(usize::MAX, |v| v + 1);
            let ins = cur.get(j).map_or(usize::MAX, |v| v + 1);
            let sub = prev.get(j).map_or(usize::MAX, |v| v + cost);
            let mut v = del.min(ins).min(sub);
            if i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca) {
                v = v.min(prev2.get(j - 1).map_or(usize::MAX, |v| v + 1));
            }
            if let Some(c) = cur.get_mut(j + 1) {
                *c = v;
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("bfp", "bpf"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("udp", "udp"), 0);
    }

    #[test]
    fn suggestions() {
        const K: &[&str] = &["backend", "bpf", "promiscuous", "snaplen"];
        assert_eq!(suggest("bfp", K), Some("bpf"));
        assert_eq!(suggest("BACKEND", K), Some("backend"));
        assert_eq!(suggest("snaplne", K), Some("snaplen"));
        assert_eq!(suggest("promisc", K), Some("promiscuous"));
        assert_eq!(suggest("interfaces", K), None);
        assert_eq!(suggest("", K), None);
    }
}
