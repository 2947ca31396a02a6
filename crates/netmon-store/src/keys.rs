//! `flow_keys`: the per-chunk key summaries that find flows by host, port, app and name.
//!
//! A SQLite index costs a B-tree insert per flow and value (a descent, a binary search per
//! level, a page split every few dozen rows): six per flow for the endpoints, the app and the
//! names, most of the store thread's work. Instead, the values of the flows of each chunk
//! (`seq >> 12`: 4 096 consecutive rows) are hashed into [`BUCKETS`] buckets per kind; a bucket
//! is one row of `flow_keys (chunk, bucket, entries)` whose BLOB lists its entries:
//!
//! ```text
//! entries = { offset: u16 LE (seq & 0xfff) | len: u16 LE | value: len bytes }*
//! ```
//!
//! A transaction writes the entries of its rows as one new row per bucket it fills,
//! `(chunk, bucket, part)` (`part`: the transaction's first seq), a few hundred inserts in key
//! order instead of six scattered index inserts per flow. A query reads the rows of one
//! bucket per chunk of its time range (a primary-key range: index-backed, no scan), keeps the
//! entries whose value matches and reads those flows by `seq`.
//!
//! Values: a host is its address's 4 or 16 bytes (source and destination in the same
//! buckets), a port its 2 bytes big-endian (both sides), an app its name ASCII-lower-cased
//! (the `app` column compares `NOCASE`), a name its reversed normalised form
//! (`moc.elpmaxe.www`), filed under every label-aligned prefix (`moc`, `moc.elpmaxe`,
//! `moc.elpmaxe.www`) so that a domain and its subdomains are in the domain's bucket.

use core::net::IpAddr;

use crate::schema;

/// Buckets per kind and chunk (at most 64: [`KeyBuf::add_name`] keeps one bit per bucket).
pub(crate) const BUCKETS: u64 = 64;

/// Longest name filed under its label-aligned prefixes (a DNS name has at most 253
/// characters, RFC 1035 §2.3.4); a longer one is filed under itself only.
pub(crate) const MAX_SUFFIX_NAME: usize = 255;

/// What a value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An endpoint address (either side).
    Host = 1,
    /// A port (either side).
    Port = 2,
    /// The application, ASCII lower case.
    App = 3,
    /// A name (SNI, HTTP Host, DNS question, domain), reversed.
    Name = 4,
}

impl Kind {
    /// The history filter that looks values of this kind up.
    pub(crate) fn filter(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Port => "port",
            Kind::App => "app",
            Kind::Name => "domain",
        }
    }
}

/// FNV-1a (64 bit) of the kind and the value: stable across builds and platforms (it is
/// stored).
fn fnv(kind: Kind, v: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in core::iter::once(kind as u8).chain(v.iter().copied()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The bucket (`flow_keys.bucket`) of a value: `kind << 8 | hash % BUCKETS`.
pub(crate) fn bucket(kind: Kind, v: &[u8]) -> i64 {
    ((kind as i64) << 8) | (fnv(kind, v) % BUCKETS) as i64
}

/// The bytes a port is filed under.
pub(crate) fn port_value(p: u16) -> [u8; 2] {
    p.to_be_bytes()
}

/// The bytes an app is filed under.
pub(crate) fn app_value(app: &str) -> Vec<u8> {
    app.as_bytes().to_ascii_lowercase()
}

/// One entry waiting to be appended: where it goes and its value (in [`KeyBuf::arena`]).
#[derive(Clone, Copy, Debug)]
struct Pending {
    chunk: i64,
    bucket: i64,
    offset: u16,
    start: usize,
    len: usize,
}

/// The entries of a transaction's rows, grouped by bucket at the end.
#[derive(Debug, Default)]
pub(crate) struct KeyBuf {
    pending: Vec<Pending>,
    arena: Vec<u8>,
    /// Scratch: the bucket being rewritten.
    blob: Vec<u8>,
    /// Scratch: the entries in bucket order.
    sorted: Vec<Option<Pending>>,
}

impl KeyBuf {
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.arena.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn push(&mut self, seq: i64, kind: Kind, v: &[u8]) {
        self.push_in(seq, bucket(kind, v), v);
    }

    fn push_in(&mut self, seq: i64, bucket: i64, v: &[u8]) {
        // Longer values cannot be encoded; no name or app is that long in practice (a DNS
        // name has at most 255 bytes), and such a flow is then only found by other filters.
        if v.len() > usize::from(u16::MAX) {
            return;
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(v);
        self.pending.push(Pending {
            chunk: seq >> schema::CHUNK_SHIFT,
            bucket,
            offset: (seq & ((1 << schema::CHUNK_SHIFT) - 1)) as u16,
            start,
            len: v.len(),
        });
    }

    /// Files a flow's values under `seq` (an address that did not decode is `None`). `names`
    /// are reversed normalised names (distinct, non-empty). A row written again (an update)
    /// files its values again: a query drops the duplicates.
    pub(crate) fn add_flow(
        &mut self,
        seq: i64,
        hosts: [Option<IpAddr>; 2],
        ports: [Option<u16>; 2],
        app: Option<&str>,
        names: &[String],
    ) {
        let [a, b] = hosts.map(|h| h.map(|h| schema::ip_bytes(&h)));
        if let Some(a) = a {
            self.push(seq, Kind::Host, a.as_slice());
        }
        if let Some(b) = b.filter(|b| Some(*b) != a) {
            self.push(seq, Kind::Host, b.as_slice());
        }
        match ports {
            [Some(p), Some(q)] if p == q => self.push(seq, Kind::Port, &port_value(p)),
            [p, q] => {
                for p in [p, q].into_iter().flatten() {
                    self.push(seq, Kind::Port, &port_value(p));
                }
            }
        }
        if let Some(app) = app {
            let v = app_value(app);
            self.push(seq, Kind::App, &v);
        }
        for n in names {
            self.add_name(seq, n.as_bytes());
        }
    }

    /// Files a reversed name under each of its label-aligned prefixes, each bucket once: at
    /// most [`BUCKETS`] entries however many labels the name has (names come from packets:
    /// a 60 KB HTTP Host of one-letter labels must not become 30 000 entries of 60 KB). A name
    /// longer than [`MAX_SUFFIX_NAME`] bytes is no DNS name: it is filed under itself only
    /// (found by an exact domain filter, not by a suffix).
    pub(crate) fn add_name(&mut self, seq: i64, rev: &[u8]) {
        if rev.len() > MAX_SUFFIX_NAME {
            self.push(seq, Kind::Name, rev);
            return;
        }
        // Buckets done, by `hash % BUCKETS` (the kind is the same for all).
        let mut done: u64 = 0;
        let ends = rev
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == b'.')
            .map(|(i, _)| i)
            .chain(core::iter::once(rev.len()));
        for end in ends {
            let Some(prefix) = rev.get(..end) else {
                continue;
            };
            if prefix.is_empty() {
                continue;
            }
            let b = bucket(Kind::Name, prefix);
            let bit = 1u64 << (b & 63);
            if done & bit != 0 {
                continue;
            }
            done |= bit;
            self.push_in(seq, b, rev);
        }
    }

    /// Writes the pending entries: one new row per bucket, `(chunk, bucket, part)`. `part`
    /// tells apart the rows of one bucket written by different transactions (the first seq
    /// the transaction handed out); should a row of that part exist already (a transaction
    /// that only updated rows, the migration), the entries are appended to it.
    pub(crate) fn write(&mut self, tx: &rusqlite::Connection, part: i64) -> rusqlite::Result<()> {
        self.group();
        let mut put = tx.prepare_cached(
            "INSERT INTO flow_keys (chunk, bucket, part, entries) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (chunk, bucket, part) DO UPDATE \
             SET entries = CAST(entries || excluded.entries AS BLOB)",
        )?;
        let mut i = 0;
        while let Some(first) = self.pending.get(i).copied() {
            let group_end = self
                .pending
                .iter()
                .skip(i)
                .position(|p| p.chunk != first.chunk || p.bucket != first.bucket)
                .map_or(self.pending.len(), |n| i + n);
            self.blob.clear();
            for p in self.pending.get(i..group_end).unwrap_or_default() {
                if let Some(v) = self.arena.get(p.start..p.start + p.len) {
                    encode(&mut self.blob, p.offset, v);
                }
            }
            put.execute(rusqlite::params![
                first.chunk,
                first.bucket,
                part,
                self.blob
            ])?;
            i = group_end;
        }
        self.clear();
        Ok(())
    }
}

impl KeyBuf {
    /// Orders the pending entries by chunk and bucket, each bucket's in the order they were
    /// added (a counting sort: a transaction holds a few chunks of [`SLOTS`] buckets).
    fn group(&mut self) {
        let mut chunks: Vec<i64> = self.pending.iter().map(|p| p.chunk).collect();
        chunks.sort_unstable();
        chunks.dedup();
        let slot = |p: &Pending| -> usize {
            let c = chunks.binary_search(&p.chunk).unwrap_or(0);
            c * SLOTS + slot_of(p.bucket)
        };
        let mut starts = vec![0usize; chunks.len() * SLOTS + 1];
        for p in &self.pending {
            if let Some(n) = starts.get_mut(slot(p) + 1) {
                *n += 1;
            }
        }
        for i in 1..starts.len() {
            let prev = starts.get(i - 1).copied().unwrap_or(0);
            if let Some(n) = starts.get_mut(i) {
                *n += prev;
            }
        }
        self.sorted.clear();
        self.sorted.resize(self.pending.len(), None);
        for p in &self.pending {
            if let Some(at) = starts.get_mut(slot(p)) {
                if let Some(dst) = self.sorted.get_mut(*at) {
                    *dst = Some(*p);
                }
                *at += 1;
            }
        }
        self.pending.clear();
        self.pending.extend(self.sorted.iter().flatten());
    }
}

/// Bucket numbers per chunk: `(kind - 1) * BUCKETS + hash % BUCKETS` for the four kinds.
const SLOTS: usize = 4 * BUCKETS as usize;

/// A bucket's place among a chunk's [`SLOTS`].
fn slot_of(bucket: i64) -> usize {
    let kind = usize::try_from((bucket >> 8) - 1).unwrap_or(0).min(3);
    kind * BUCKETS as usize + usize::try_from(bucket & 0xff).unwrap_or(0) % BUCKETS as usize
}

fn encode(out: &mut Vec<u8>, offset: u16, v: &[u8]) {
    out.extend_from_slice(&offset.to_le_bytes());
    // Values longer than u16::MAX are never queued (see `push_in`).
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(v);
}

/// A stored bucket that does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadEntries {
    /// Byte position of the damaged entry.
    pub(crate) at: usize,
}

/// The entries of a bucket: `(offset, value)`, or where it stops making sense.
pub(crate) fn entries(b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), BadEntries>> + '_ {
    let mut pos = 0usize;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || pos >= b.len() {
            return None;
        }
        let at = pos;
        let head = b.get(pos..pos + 4);
        let entry = head.and_then(|h| {
            let offset = u16::from_le_bytes([*h.first()?, *h.get(1)?]);
            let len = usize::from(u16::from_le_bytes([*h.get(2)?, *h.get(3)?]));
            let v = b.get(pos + 4..pos + 4 + len)?;
            Some((offset, v, 4 + len))
        });
        match entry {
            Some((offset, v, n)) => {
                pos += n;
                Some(Ok((offset, v)))
            }
            None => {
                failed = true;
                Some(Err(BadEntries { at }))
            }
        }
    })
}

/// How a query matches the values of a bucket.
#[derive(Clone, Debug)]
pub(crate) enum Match {
    /// Equal bytes.
    Exact(Vec<u8>),
    /// A reversed name equal to this or below it (`moc.elpmaxe` matches `moc.elpmaxe.www`).
    Suffix(Vec<u8>),
}

impl Match {
    pub(crate) fn matches(&self, v: &[u8]) -> bool {
        match self {
            Match::Exact(w) => v == w.as_slice(),
            Match::Suffix(w) => {
                v.starts_with(w) && (v.len() == w.len() || v.get(w.len()) == Some(&b'.'))
            }
        }
    }

    pub(crate) fn key(&self) -> &[u8] {
        match self {
            Match::Exact(w) | Match::Suffix(w) => w,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_junk_stops_with_an_error() {
        let mut b = Vec::new();
        encode(&mut b, 7, b"abc");
        encode(&mut b, 4095, &[]);
        encode(&mut b, 1, &[10, 0, 0, 1]);
        let got: Vec<_> = entries(&b).collect();
        assert_eq!(
            got,
            vec![
                Ok((7, &b"abc"[..])),
                Ok((4095, &[][..])),
                Ok((1, &[10, 0, 0, 1][..]))
            ]
        );
        // Truncated anywhere: the good entries, then one error, never a panic.
        for cut in 0..b.len() {
            let got: Vec<_> = entries(&b[..cut]).collect();
            let errs = got.iter().filter(|e| e.is_err()).count();
            let ok_boundary = [0, 7, 11, 19].contains(&cut);
            assert_eq!(errs, usize::from(!ok_boundary), "cut {cut}: {got:?}");
        }
        assert_eq!(
            entries(&[1, 0, 255, 255, 1]).collect::<Vec<_>>(),
            vec![Err(BadEntries { at: 0 })]
        );
    }

    #[test]
    fn a_name_is_filed_under_each_label_prefix_and_matches_suffixes() {
        let mut k = KeyBuf::default();
        k.add_name(4097, b"moc.elpmaxe.www");
        let buckets: Vec<i64> = k.pending.iter().map(|p| p.bucket).collect();
        for prefix in ["moc", "moc.elpmaxe", "moc.elpmaxe.www"] {
            assert!(
                buckets.contains(&bucket(Kind::Name, prefix.as_bytes())),
                "{prefix}"
            );
        }
        assert!(k.pending.iter().all(|p| p.chunk == 1 && p.offset == 1));
        let m = Match::Suffix(b"moc.elpmaxe".to_vec());
        assert!(m.matches(b"moc.elpmaxe.www"));
        assert!(m.matches(b"moc.elpmaxe"));
        assert!(!m.matches(b"moc.elpmaxeda"));
        assert!(!Match::Exact(b"moc.elpmaxe".to_vec()).matches(b"moc.elpmaxe.www"));
    }

    /// Names come from packets: however many labels, a name makes at most one entry per
    /// bucket, and a name too long for DNS one entry in all; every label prefix of a DNS-sized
    /// name still lands in a bucket holding the name.
    #[test]
    fn a_name_of_many_labels_is_filed_at_most_once_per_bucket() {
        let many: Vec<u8> = b"a.".repeat(120).into_iter().chain(*b"b").collect();
        assert!(many.len() <= MAX_SUFFIX_NAME);
        let mut k = KeyBuf::default();
        k.add_name(1, &many);
        assert!(k.pending.len() <= BUCKETS as usize, "{}", k.pending.len());
        let mut buckets: Vec<i64> = k.pending.iter().map(|p| p.bucket).collect();
        buckets.sort_unstable();
        buckets.dedup();
        assert_eq!(buckets.len(), k.pending.len(), "a bucket filed twice");
        for end in (1..many.len()).filter(|&i| many[i] == b'.') {
            assert!(buckets.contains(&bucket(Kind::Name, &many[..end])), "{end}");
        }
        let long = b"x.".repeat(30_000);
        let mut k = KeyBuf::default();
        k.add_name(1, &long);
        assert_eq!(k.pending.len(), 1);
        assert_eq!(k.pending[0].bucket, bucket(Kind::Name, &long));
    }

    #[test]
    fn buckets_are_stable_and_separate_kinds() {
        // Stored: a change of the hash would lose every filed value.
        assert_eq!(fnv(Kind::Host, b""), 0xaf63_bc4c_8601_b62c);
        let b = bucket(Kind::Port, &port_value(443));
        assert_eq!(b >> 8, 2);
        assert!((b & 0xff) < BUCKETS as i64);
    }
}
