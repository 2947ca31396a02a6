//! Query-string parsing: every parameter is validated, and every problem becomes a `400` with
//! the parameter's name, the value and what is allowed.

use core::net::IpAddr;

use netmon_stats::RankBy;
use netmon_types::Timestamp;

use crate::backend::{DEFAULT_LIMIT, FlowFilter, HistoryQuery, LiveEvent, Order, SortKey};
use crate::error::HttpError;
use crate::time::parse_time;

/// Largest `limit` of `/api/v1/flows`.
pub const MAX_FLOWS_LIMIT: usize = 10_000;
/// Largest `limit` of `/api/v1/flows/history` and `/api/v1/alerts`.
pub const MAX_PAGE_LIMIT: usize = 1_000;
/// Largest `n` of `/api/v1/top`.
pub const MAX_TOP_N: usize = 1_000;
/// Default `n` of `/api/v1/top`.
pub const DEFAULT_TOP_N: usize = 10;
/// Longest accepted query string, bytes.
pub const MAX_QUERY_LEN: usize = 4096;
/// Longest `domain` (a DNS name's limit).
const MAX_DOMAIN_LEN: usize = 253;
/// Longest `app`.
const MAX_APP_LEN: usize = 32;
/// Longest `cursor`.
const MAX_CURSOR_LEN: usize = 512;

/// Decoded `name=value` pairs, each name at most once and from an allowed set.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Params, HttpError> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_LEN {
            return Err(HttpError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "query string too long",
                Some(format!("at most {MAX_QUERY_LEN} bytes")),
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if k.is_empty() && v.is_empty() {
                continue;
            }
            if !allowed.contains(&k.as_ref()) {
                let allowed = if allowed.is_empty() {
                    "this endpoint takes no parameters".to_string()
                } else {
                    format!("allowed: {}", allowed.join(", "))
                };
                return Err(HttpError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    &format!("unknown query parameter `{}`", truncate(&k)),
                    Some(allowed),
                ));
            }
            if pairs.iter().any(|(n, _)| *n == k) {
                return Err(HttpError::param(&k, "given more than once"));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn usize_in(
        &self,
        name: &str,
        min: usize,
        max: usize,
        default: usize,
    ) -> Result<usize, HttpError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) && v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(HttpError::param(
                name,
                format!(
                    "{:?} is not an integer between {min} and {max}",
                    truncate(v)
                ),
            )),
        }
    }

    fn time(&self, name: &str) -> Result<Option<Timestamp>, HttpError> {
        self.get(name)
            .map(|v| parse_time(v).map_err(|e| HttpError::param(name, truncate(&e))))
            .transpose()
    }

    fn one_of<T: Copy>(
        &self,
        name: &str,
        choices: &[(&str, T)],
        default: T,
    ) -> Result<T, HttpError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|(n, _)| *n == v)
            .map(|&(_, t)| t)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                HttpError::param(
                    name,
                    format!("{:?} is not one of: {}", truncate(v), names.join(", ")),
                )
            })
    }
}

/// At most 64 characters of a value, for error messages.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", s.get(..i).unwrap_or("")),
        None => s.to_string(),
    }
}

/// Parameters of `/api/v1/flows`.
pub(crate) const FLOWS_PARAMS: &[&str] =
    &["host", "port", "app", "domain", "sort", "order", "limit"];
/// Parameters of `/api/v1/flows/history`.
pub(crate) const HISTORY_PARAMS: &[&str] = &[
    "host", "port", "app", "domain", "sort", "order", "limit", "from", "to", "cursor",
];

const ORDERS: [(&str, Order); 2] = [("asc", Order::Asc), ("desc", Order::Desc)];

pub(crate) fn flow_filter(p: &Params, max_limit: usize) -> Result<FlowFilter, HttpError> {
    let host = p
        .get("host")
        .map(|v| {
            v.parse::<IpAddr>().map_err(|_| {
                HttpError::param("host", format!("{:?} is not an IP address", truncate(v)))
            })
        })
        .transpose()?;
    let port = p
        .get("port")
        .map(|v| match v.parse::<u16>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(HttpError::param(
                "port",
                format!("{:?} is not a port number (0 to 65535)", truncate(v)),
            )),
        })
        .transpose()?;
    let app = p
        .get("app")
        .map(|v| {
            let ok = !v.is_empty()
                && v.len() <= MAX_APP_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
            if ok {
                Ok(v.to_ascii_lowercase())
            } else {
                Err(HttpError::param(
                    "app",
                    format!(
                        "{:?} is not an application name (1 to {MAX_APP_LEN} of a-z, 0-9, _ - .)",
                        truncate(v)
                    ),
                ))
            }
        })
        .transpose()?;
    let domain = p
        .get("domain")
        .map(|v| {
            let d = v.strip_suffix('.').unwrap_or(v);
            let ok = !d.is_empty()
                && d.len() <= MAX_DOMAIN_LEN
                && d.bytes().all(|b| b.is_ascii_graphic())
                && !d.starts_with('.');
            if ok {
                Ok(d.to_ascii_lowercase())
            } else {
                Err(HttpError::param(
                    "domain",
                    format!(
                        "{:?} is not a domain name (1 to {MAX_DOMAIN_LEN} visible ASCII characters)",
                        truncate(v)
                    ),
                ))
            }
        })
        .transpose()?;
    Ok(FlowFilter {
        host,
        port,
        app,
        domain,
        sort: p.one_of("sort", &SortKey::ALL, SortKey::default())?,
        order: p.one_of("order", &ORDERS, Order::default())?,
        limit: p.usize_in("limit", 1, max_limit, DEFAULT_LIMIT.min(max_limit))?,
    })
}

pub(crate) fn flows(raw: Option<&str>) -> Result<FlowFilter, HttpError> {
    flow_filter(&Params::parse(raw, FLOWS_PARAMS)?, MAX_FLOWS_LIMIT)
}

pub(crate) fn history(raw: Option<&str>) -> Result<HistoryQuery, HttpError> {
    let p = Params::parse(raw, HISTORY_PARAMS)?;
    let filter = flow_filter(&p, MAX_PAGE_LIMIT)?;
    let from = p.time("from")?;
    let to = p.time("to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(HttpError::param("from", "`from` is after `to`"));
        }
    }
    let cursor = p
        .get("cursor")
        .map(|c| {
            let ok = !c.is_empty()
                && c.len() <= MAX_CURSOR_LEN
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:=+/~".contains(&b));
            if ok {
                Ok(c.to_string())
            } else {
                Err(HttpError::param(
                    "cursor",
                    "not a cursor returned by this endpoint (pass `next_cursor` back as it is)",
                ))
            }
        })
        .transpose()?;
    Ok(HistoryQuery {
        from,
        to,
        filter,
        cursor,
    })
}

pub(crate) fn top(raw: Option<&str>) -> Result<(usize, RankBy), HttpError> {
    let p = Params::parse(raw, &["n", "by"])?;
    let n = p.usize_in("n", 1, MAX_TOP_N, DEFAULT_TOP_N)?;
    let by = p.one_of(
        "by",
        &[("bytes", RankBy::Bytes), ("packets", RankBy::Packets)],
        RankBy::Bytes,
    )?;
    Ok((n, by))
}

pub(crate) fn alerts(raw: Option<&str>) -> Result<(Option<Timestamp>, usize), HttpError> {
    let p = Params::parse(raw, &["since", "limit"])?;
    Ok((
        p.time("since")?,
        p.usize_in("limit", 1, MAX_PAGE_LIMIT, DEFAULT_LIMIT)?,
    ))
}

/// `types=flow_started,alert`: a bit per [`LiveEvent::KINDS`] entry; all when absent.
pub(crate) fn events(raw: Option<&str>) -> Result<u8, HttpError> {
    let p = Params::parse(raw, &["types"])?;
    let Some(v) = p.get("types") else {
        return Ok(u8::MAX);
    };
    let mut mask = 0u8;
    for t in v.split(',') {
        let i = LiveEvent::KINDS
            .iter()
            .position(|k| *k == t)
            .ok_or_else(|| {
                HttpError::param(
                    "types",
                    format!(
                        "{:?} is not one of: {}",
                        truncate(t),
                        LiveEvent::KINDS.join(", ")
                    ),
                )
            })?;
        mask |= 1 << i;
    }
    Ok(mask)
}

/// Endpoints without parameters still refuse unknown ones.
pub(crate) fn none(raw: Option<&str>) -> Result<(), HttpError> {
    Params::parse(raw, &[]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn err(r: Result<impl core::fmt::Debug, HttpError>) -> HttpError {
        let e = r.unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        e
    }

    #[test]
    fn flows_defaults_and_values() {
        assert_eq!(flows(None).unwrap(), FlowFilter::default());
        let f = flows(Some(
            "host=2001%3Adb8%3A%3A1&port=443&app=TLS&domain=Example.COM.&sort=first_seen&order=asc&limit=7",
        ))
        .unwrap();
        assert_eq!(f.host, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(f.port, Some(443));
        assert_eq!(f.app.as_deref(), Some("tls"));
        assert_eq!(f.domain.as_deref(), Some("example.com"));
        assert_eq!(
            (f.sort, f.order, f.limit),
            (SortKey::FirstSeen, Order::Asc, 7)
        );
    }

    #[test]
    fn flows_rejects_bad_values() {
        for q in [
            "host=10.0.0",
            "port=65536",
            "port=-1",
            "port=+1",
            "app=",
            "app=a%20b",
            "domain=.",
            "domain=a%0Ab",
            "sort=size",
            "order=up",
            "limit=0",
            "limit=10001",
            "limit=1e3",
            "limit=99999999999999999999999",
            "color=red",
            "host=10.0.0.1&host=10.0.0.2",
        ] {
            let e = err(flows(Some(q)));
            assert!(e.body.detail.is_some(), "{q}");
        }
        let e = err(flows(Some("sort=size")));
        assert!(e.body.detail.unwrap().contains("first_seen"));
    }

    #[test]
    fn history_times_and_cursor() {
        let h = history(Some(
            "from=1700000000&to=2023-11-14T22:13:21Z&cursor=abc%3D%3D&limit=1000",
        ))
        .unwrap();
        assert_eq!(h.from, Some(Timestamp::from_secs_nanos(1_700_000_000, 0)));
        assert_eq!(h.to, Some(Timestamp::from_secs_nanos(1_700_000_001, 0)));
        assert_eq!(h.cursor.as_deref(), Some("abc=="));
        assert_eq!(h.filter.limit, 1000);
        for q in [
            "from=yesterday",
            "from=2&to=1",
            "limit=1001",
            "cursor=",
            "cursor=a%20b",
            "to=2024-02-30T00:00:00Z",
        ] {
            err(history(Some(q)));
        }
        let long = format!("cursor={}", "a".repeat(513));
        err(history(Some(&long)));
        let huge = format!("domain={}", "a".repeat(MAX_QUERY_LEN));
        err(history(Some(&huge)));
    }

    #[test]
    fn top_alerts_events() {
        assert_eq!(top(None).unwrap(), (DEFAULT_TOP_N, RankBy::Bytes));
        assert_eq!(top(Some("n=3&by=packets")).unwrap(), (3, RankBy::Packets));
        err(top(Some("n=0")));
        err(top(Some("by=flows")));
        assert_eq!(alerts(None).unwrap(), (None, DEFAULT_LIMIT));
        err(alerts(Some("since=x")));
        assert_eq!(events(None).unwrap(), u8::MAX);
        assert_eq!(events(Some("types=alert,stats")).unwrap(), 0b1100);
        err(events(Some("types=alert,")));
        err(events(Some("types=")));
        assert!(none(Some("")).is_ok());
        assert!(none(Some("&&")).is_ok());
        err(none(Some("x=1")));
    }

    #[test]
    fn error_values_are_truncated() {
        let q = format!("sort={}", "x".repeat(1000));
        let e = err(flows(Some(&q)));
        assert!(e.body.detail.unwrap().len() < 200);
    }
}
