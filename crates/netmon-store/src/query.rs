//! Queries over the stored history, their pages and paging cursors, and the retention policy.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;
use std::time::Duration;

use netmon_types::Timestamp;

use crate::error::StoreError;

/// The most rows one page holds; larger limits are cut to this.
pub const MAX_PAGE: u32 = 10_000;

/// Rows per page when the query says 0.
pub const DEFAULT_PAGE: u32 = 100;

/// Ascending or descending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Smallest (oldest) first.
    Asc,
    /// Largest (newest) first.
    #[default]
    Desc,
}

/// What flows are sorted by. Ties are broken by storage order, so paging is stable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FlowSort {
    /// `first_seen`.
    #[default]
    FirstSeen,
    /// Wire bytes in both directions.
    Bytes,
    /// Packets in both directions.
    Packets,
}

/// A name filter on flows: matches when the SNI, an HTTP Host, a DNS question or the
/// DNS-learnt `domain` of the flow matches, compared without ASCII case and ignoring a trailing
/// dot (the `name` filter of `netmon flows`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DomainFilter {
    /// The name itself only.
    Exact(String),
    /// The name or any subdomain of it (`example.com` matches `www.example.com`, not
    /// `badexample.com`).
    Suffix(String),
}

/// A query over stored flows. Every filter that is set must match; `Default` matches every
/// flow, newest first, [`DEFAULT_PAGE`] per page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowQuery {
    /// Only this run's flows.
    pub run_id: Option<u64>,
    /// Only flows still active at or after this time (`last_seen >= from`).
    pub from: Option<Timestamp>,
    /// Only flows that started before this time (`first_seen < to`). With `from`: the flows
    /// that overlap `[from, to)`.
    pub to: Option<Timestamp>,
    /// Either endpoint has this address.
    pub host: Option<IpAddr>,
    /// Either endpoint has this port (flows without ports never match).
    pub port: Option<u16>,
    /// The `app` field is this (ASCII case-insensitive; guesses included).
    pub app: Option<String>,
    /// A name of the flow matches.
    pub domain: Option<DomainFilter>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Sort key.
    pub sort: FlowSort,
    /// Sort direction.
    pub order: Order,
    /// Rows per page: 0 means [`DEFAULT_PAGE`], more than [`MAX_PAGE`] means [`MAX_PAGE`].
    pub limit: u32,
    /// Rows to skip before the page (offset paging). Prefer `cursor` for deep pages: an offset
    /// is walked, a cursor is sought.
    pub offset: u64,
    /// Start after this row ([`Page::next`] of the previous page; keyset paging, stable under
    /// inserts). Must come from a query with the same `sort` and `order`.
    pub cursor: Option<Cursor>,
}

/// A query over stored alerts; `Default` matches every alert, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// Only this run's alerts.
    pub run_id: Option<u64>,
    /// Only alerts raised at or after this time (`ts >= from`).
    pub from: Option<Timestamp>,
    /// Only alerts raised before this time (`ts < to`).
    pub to: Option<Timestamp>,
    /// Only this kind (`vertical_scan`, ...).
    pub kind: Option<String>,
    /// Only this severity (`low`, `medium`, `high`).
    pub severity: Option<String>,
    /// The alert's source or target is this (an address or an interface name, as stored).
    pub subject: Option<String>,
    /// Sorted by `ts`, this way.
    pub order: Order,
    /// Rows per page, as in [`FlowQuery::limit`].
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
    /// Start after this row.
    pub cursor: Option<Cursor>,
}

/// A query over stored series points; `Default` matches every point, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesQuery {
    /// Only this run's points.
    pub run_id: Option<u64>,
    /// Only this window length (seconds).
    pub window_secs: Option<u32>,
    /// Only points whose interval starts at or after this time.
    pub from: Option<Timestamp>,
    /// Only points whose interval starts before this time.
    pub to: Option<Timestamp>,
    /// Only this interface index.
    pub iface: Option<u32>,
    /// Only this layer (`all`, `l3`, `l4`, `app`, `overflow`).
    pub layer: Option<String>,
    /// Only this protocol key (`all`, `tcp`, `tls`, ...).
    pub proto: Option<String>,
    /// Sorted by interval start, this way.
    pub order: Order,
    /// Rows per page, as in [`FlowQuery::limit`].
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
    /// Start after this row.
    pub cursor: Option<Cursor>,
}

impl Default for SeriesQuery {
    fn default() -> Self {
        SeriesQuery {
            run_id: None,
            window_secs: None,
            from: None,
            to: None,
            iface: None,
            layer: None,
            proto: None,
            order: Order::Asc,
            limit: 0,
            offset: 0,
            cursor: None,
        }
    }
}

/// One page of results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page<T> {
    /// The rows, in the query's order.
    pub rows: Vec<T>,
    /// Where the next page starts; `None` when this page was the last.
    pub next: Option<Cursor>,
}

/// What a cursor's key is: the sort column of the query that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CursorKind {
    FirstSeen,
    Bytes,
    Packets,
    AlertTs,
    SeriesStart,
}

impl CursorKind {
    const fn tag(self) -> char {
        match self {
            CursorKind::FirstSeen => 'f',
            CursorKind::Bytes => 'b',
            CursorKind::Packets => 'p',
            CursorKind::AlertTs => 'a',
            CursorKind::SeriesStart => 's',
        }
    }

    fn from_tag(c: char) -> Option<CursorKind> {
        Some(match c {
            'f' => CursorKind::FirstSeen,
            'b' => CursorKind::Bytes,
            'p' => CursorKind::Packets,
            'a' => CursorKind::AlertTs,
            's' => CursorKind::SeriesStart,
            _ => return None,
        })
    }
}

impl From<FlowSort> for CursorKind {
    fn from(s: FlowSort) -> Self {
        match s {
            FlowSort::FirstSeen => CursorKind::FirstSeen,
            FlowSort::Bytes => CursorKind::Bytes,
            FlowSort::Packets => CursorKind::Packets,
        }
    }
}

/// A keyset paging position: the sort key and storage position of the last row of a page.
/// Opaque to callers; it prints as a short token (`fd.1700000000000000000.42`) and parses back
/// with [`str::parse`], so an API can hand it out and take it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub(crate) kind: CursorKind,
    pub(crate) order: Order,
    pub(crate) key: i64,
    pub(crate) seq: i64,
}

impl Cursor {
    /// Checks that the cursor belongs to a query of this kind and order.
    pub(crate) fn check(self, kind: CursorKind, order: Order) -> Result<Cursor, StoreError> {
        if self.kind != kind || self.order != order {
            return Err(StoreError::BadCursor {
                cursor: self.to_string(),
                reason: "it comes from a query with another sort order",
            });
        }
        Ok(self)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = match self.order {
            Order::Asc => 'a',
            Order::Desc => 'd',
        };
        write!(f, "{}{o}.{}.{}", self.kind.tag(), self.key, self.seq)
    }
}

impl FromStr for Cursor {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| StoreError::BadCursor {
            // Bounded: the text may come from an HTTP query string.
            cursor: s.chars().take(64).collect(),
            reason,
        };
        let mut parts = s.splitn(3, '.');
        let (Some(head), Some(key), Some(seq)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected KIND.KEY.SEQ"));
        };
        let mut hc = head.chars();
        let (Some(k), Some(o), None) = (hc.next(), hc.next(), hc.next()) else {
            return Err(bad("expected a two-letter kind"));
        };
        let kind = CursorKind::from_tag(k).ok_or_else(|| bad("unknown kind"))?;
        let order = match o {
            'a' => Order::Asc,
            'd' => Order::Desc,
            _ => return Err(bad("unknown order")),
        };
        let key = key.parse().map_err(|_| bad("bad key"))?;
        let seq = seq.parse().map_err(|_| bad("bad position"))?;
        Ok(Cursor {
            kind,
            order,
            key,
            seq,
        })
    }
}

/// How much history to keep. Either bound may be unset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Delete flows whose `last_seen`, series points whose interval `end` and alerts whose
    /// `last_seen` lie more than this before `now`.
    pub max_age: Option<Duration>,
    /// Then delete the oldest flows (by `last_seen`), and the series points and alerts older
    /// than the oldest flow kept, until the database's pages in use take at most this many
    /// bytes. The file shrinks to match (incremental vacuum) once the write-ahead log is
    /// checkpointed.
    pub max_bytes: Option<u64>,
}

/// Rows deleted by one retention pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionStats {
    /// Flows deleted.
    pub flows: u64,
    /// Series points deleted.
    pub series: u64,
    /// Alerts deleted.
    pub alerts: u64,
}

impl RetentionStats {
    /// Rows deleted in all tables.
    pub fn total(&self) -> u64 {
        self.flows + self.series + self.alerts
    }
}

/// The form names are filed and compared in: lower-cased (ASCII), without a trailing dot,
/// reversed (`www.example.com` → `moc.elpmaxe.www`), so that a domain is a label-aligned
/// prefix of its subdomains.
pub(crate) fn reversed_name(name: &str) -> String {
    let mut out = String::new();
    reversed_name_into(name, &mut out);
    out
}

/// [`reversed_name`] into a reused buffer.
pub(crate) fn reversed_name_into(name: &str, out: &mut String) {
    out.clear();
    out.extend(
        name.trim_end_matches('.')
            .chars()
            .rev()
            .map(|c| c.to_ascii_lowercase()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_junk() {
        let c = Cursor {
            kind: CursorKind::Bytes,
            order: Order::Asc,
            key: -5,
            seq: 42,
        };
        assert_eq!(c.to_string(), "ba.-5.42");
        assert_eq!("ba.-5.42".parse::<Cursor>().unwrap(), c);
        for bad in [
            "", "ba", "ba.1", "xa.1.2", "bx.1.2", "bad.1.2", "ba.1.x", "ba.x.1", "ba.1.2.3",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
        assert!(c.check(CursorKind::Bytes, Order::Asc).is_ok());
        assert!(c.check(CursorKind::Bytes, Order::Desc).is_err());
        assert!(c.check(CursorKind::FirstSeen, Order::Asc).is_err());
    }

    #[test]
    fn names_reverse_for_suffix_ranges() {
        assert_eq!(reversed_name("WWW.Example.COM."), "moc.elpmaxe.www");
        assert_eq!(reversed_name("ünï.de"), "ed.ïnü");
        assert_eq!(reversed_name(""), "");
    }
}
