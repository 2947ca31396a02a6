//! SqliteStore on real files in a temporary directory: round trips, queries against a model,
//! idempotence, retention, migrations and errors.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use netmon_store::{
    AlertQuery, DomainFilter, FlowQuery, FlowRow, FlowSort, MAX_STORED, Order, Retention, RunInfo,
    SCHEMA_VERSION, SeriesQuery, SqliteConfig, SqliteStore, Store, StoreError,
};
use netmon_types::Timestamp;

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("netmon.db")).unwrap()
}

fn all_flows(s: &mut SqliteStore) -> Vec<FlowRow> {
    s.query_flows(&FlowQuery {
        order: Order::Asc,
        limit: 10_000,
        ..FlowQuery::default()
    })
    .unwrap()
    .rows
}

#[test]
fn every_field_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let run = s
        .begin_run(&RunInfo {
            host: "sensor-ü".into(),
            source: "eth0".into(),
            started: ts(0),
            version: "test".into(),
        })
        .unwrap();
    assert_eq!(run, 1);
    let full = full_flow(run, 7);
    let empty = FlowRow {
        run_id: run,
        id: 8,
        src_ip: v6(0xffff),
        dst_ip: "::ffff:192.0.2.1".parse().unwrap(),
        first_seen: Timestamp(-5),
        last_seen: Timestamp(i64::MAX),
        duration_ns: -1,
        ..FlowRow::default()
    };
    s.write_flows(&[full.clone(), empty.clone()]).unwrap();
    drop(s);
    // Through a fresh read-only connection, so nothing comes from a cache.
    let mut r = SqliteStore::open_read_only(dir.path().join("netmon.db")).unwrap();
    assert_eq!(all_flows(&mut r), vec![empty, full], "first_seen order");
}

#[test]
fn counters_beyond_the_integer_range_are_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut f = flow(1, 1, 0, 1);
    f.bytes_c2s = u64::MAX;
    f.bytes_s2c = u64::MAX;
    f.packets_c2s = MAX_STORED;
    s.write_flows(&[f]).unwrap();
    let got = all_flows(&mut s).remove(0);
    assert_eq!((got.bytes_c2s, got.bytes_s2c), (MAX_STORED, MAX_STORED));
    assert_eq!(got.packets_c2s, MAX_STORED);
    // The sum column stays an integer: sorting by bytes and its cursor work.
    let p = s
        .query_flows(&FlowQuery {
            sort: FlowSort::Bytes,
            limit: 1,
            ..FlowQuery::default()
        })
        .unwrap();
    assert_eq!(p.rows.len(), 1);
    assert!(p.next.is_none());
}

#[test]
fn series_and_alerts_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let pts = vec![
        series(1, 1, 0, "tcp"),
        series(1, 10, 0, "ünï"),
        series(2, 1, 5, "tcp"),
    ];
    s.write_series(&pts).unwrap();
    let got = s.query_series(&SeriesQuery::default()).unwrap();
    let mut want = pts.clone();
    want.sort_by_key(|p| p.start);
    assert_eq!(got.rows, want);

    let mut a = alert(1, 1, 100, "vertical_scan", "10.0.0.1");
    a.evidence = r#"{"rule":"pps > 10 \"x\"","value":1e300}"#.into();
    let b = alert(1, 2, 50, "syn_flood", "2001:db8::1");
    s.write_alerts(&[a.clone(), b.clone()]).unwrap();
    let got = s.query_alerts(&AlertQuery::default()).unwrap();
    assert_eq!(got.rows, vec![a, b], "newest first");
}

#[test]
fn rewriting_keeps_one_row_and_the_newer_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let batch: Vec<FlowRow> = (0..50).map(|i| full_flow(1, i)).collect();
    s.write_flows(&batch).unwrap();
    s.write_flows(&batch).unwrap(); // a retried batch
    s.write_flows(&batch[10..20]).unwrap();
    assert_eq!(all_flows(&mut s), batch);
    assert_eq!(s.row_counts().unwrap().0, 50);

    // The same id in another run is another flow.
    let mut other = full_flow(2, 3);
    other.sni = Some("other.example".into());
    s.write_flows(&[other.clone()]).unwrap();
    assert_eq!(s.row_counts().unwrap().0, 51);

    // A live update, then the final record, then a stale update arriving late.
    let mut live = flow(3, 1, 0, 10);
    live.end_reason = None;
    live.packets_c2s = 5;
    s.write_flows(&[live.clone()]).unwrap();
    let mut fin = live.clone();
    fin.last_seen = ts(20);
    fin.packets_c2s = 9;
    fin.end_reason = Some("fin".into());
    fin.sni = Some("late.example".into());
    s.write_flows(&[fin.clone()]).unwrap();
    s.write_flows(&[live.clone()]).unwrap();
    let q = |s: &mut SqliteStore| {
        s.query_flows(&FlowQuery {
            run_id: Some(3),
            ..FlowQuery::default()
        })
        .unwrap()
        .rows
    };
    assert_eq!(q(&mut s), vec![fin.clone()]);
    // Same times and packets: the ended record wins over the live one, not the reverse.
    let mut live2 = fin.clone();
    live2.end_reason = None;
    s.write_flows(&[live2]).unwrap();
    assert_eq!(q(&mut s), vec![fin]);
    // The name learnt by the update is searchable.
    let by_name = s
        .query_flows(&FlowQuery {
            domain: Some(DomainFilter::Exact("late.example".into())),
            ..FlowQuery::default()
        })
        .unwrap();
    assert_eq!(by_name.rows.len(), 1);

    // Series and alerts: retries change nothing; a closed alert replaces the raised one.
    let pts = vec![series(1, 1, 0, "tcp"), series(1, 1, 1, "tcp")];
    s.write_series(&pts).unwrap();
    s.write_series(&pts).unwrap();
    let raised = alert(1, 1, 100, "vertical_scan", "10.0.0.1");
    let mut closed = raised.clone();
    closed.closed = true;
    closed.last_seen = ts(200);
    s.write_alerts(std::slice::from_ref(&raised)).unwrap();
    s.write_alerts(&[closed.clone()]).unwrap();
    s.write_alerts(&[raised]).unwrap();
    assert_eq!(s.row_counts().unwrap(), (52, 2, 1));
    assert_eq!(
        s.query_alerts(&AlertQuery::default()).unwrap().rows,
        vec![closed]
    );
}

/// The flows of the query model: varied endpoints, protocols, apps, names and times, with
/// ties in bytes and packets.
fn dataset() -> Vec<FlowRow> {
    let srcs = [v4(10, 0, 0, 1), v4(10, 0, 0, 2), v6(1), v6(2)];
    let dsts = [v4(8, 8, 8, 8), v4(1, 1, 1, 1), v6(3)];
    let names = [
        "example.com",
        "www.example.com",
        "badexample.com",
        "A.B.Example.COM.",
        "other.org",
    ];
    (0..150u64)
        .map(|i| {
            // Starts 61 s apart and durations up to 10 min: flows span the store's 68.7 s
            // first_seen slices.
            let mut f = flow(
                1 + i % 2,
                i / 2,
                ((i * 7) % 100) as i64 * 61,
                (i % 13) as i64 * 50,
            );
            f.src_ip = srcs[(i % 4) as usize];
            f.dst_ip = dsts[(i % 3) as usize];
            f.src_port = Some(40000 + (i % 5) as u16);
            match i % 4 {
                0 => {
                    f.proto = 6;
                    f.dst_port = Some(443);
                    f.app = Some("tls".into());
                    f.sni = Some(names[(i % 5) as usize].into());
                }
                1 => {
                    f.proto = 17;
                    f.dst_port = Some(53);
                    f.app = Some("dns".into());
                    f.dns = vec![netmon_store::DnsRow {
                        query: names[((i + 1) % 5) as usize].into(),
                        ..Default::default()
                    }];
                }
                2 => {
                    f.proto = 6;
                    f.dst_port = Some(40001); // equal to some src ports
                    f.app = Some("HTTP".into());
                    f.http = vec![netmon_store::HttpRow {
                        host: Some(names[((i + 2) % 5) as usize].into()),
                        ..Default::default()
                    }];
                    f.domain = Some("cdn.other.org".into());
                }
                _ => {
                    f.proto = 1;
                    f.src_port = None;
                    f.dst_port = None;
                }
            }
            f.packets_c2s = i % 6;
            f.bytes_c2s = (i % 9) * 100;
            f
        })
        .collect()
}

fn norm(n: &str) -> String {
    n.trim_end_matches('.').to_ascii_lowercase()
}

fn model_match(q: &FlowQuery, f: &FlowRow) -> bool {
    q.run_id.is_none_or(|r| f.run_id == r)
        && q.from.is_none_or(|t| f.last_seen >= t)
        && q.to.is_none_or(|t| f.first_seen < t)
        && q.host.is_none_or(|h| f.src_ip == h || f.dst_ip == h)
        && q.port
            .is_none_or(|p| f.src_port == Some(p) || f.dst_port == Some(p))
        && q.app
            .as_ref()
            .is_none_or(|a| f.app.as_ref().is_some_and(|x| x.eq_ignore_ascii_case(a)))
        && q.proto.is_none_or(|p| f.proto == p)
        && match &q.domain {
            None => true,
            Some(DomainFilter::Exact(d)) => f.names().any(|n| norm(n) == norm(d)),
            Some(DomainFilter::Suffix(d)) => f.names().any(|n| {
                let (n, d) = (norm(n), norm(d));
                n == d || n.ends_with(&format!(".{d}"))
            }),
        }
}

fn model(q: &FlowQuery, data: &[FlowRow]) -> Vec<FlowRow> {
    let mut v: Vec<(usize, &FlowRow)> = data
        .iter()
        .enumerate()
        .filter(|(_, f)| model_match(q, f))
        .collect();
    let key = |f: &FlowRow| match q.sort {
        FlowSort::FirstSeen => f.first_seen.0,
        FlowSort::Bytes => f.bytes() as i64,
        FlowSort::Packets => f.packets() as i64,
    };
    v.sort_by_key(|(i, f)| (key(f), *i));
    if q.order == Order::Desc {
        v.reverse();
    }
    v.into_iter().map(|(_, f)| f.clone()).collect()
}

#[test]
fn queries_match_the_model_with_every_filter_sort_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let data = dataset();
    s.write_flows(&data[..70]).unwrap();
    s.write_flows(&data[70..]).unwrap();

    let base = FlowQuery::default();
    let filters: Vec<FlowQuery> = vec![
        base.clone(),
        FlowQuery {
            run_id: Some(2),
            ..base.clone()
        },
        FlowQuery {
            from: Some(ts(50)),
            ..base.clone()
        },
        FlowQuery {
            to: Some(ts(30)),
            ..base.clone()
        },
        FlowQuery {
            from: Some(ts(40)),
            to: Some(ts(45)),
            ..base.clone()
        },
        FlowQuery {
            host: Some(v4(10, 0, 0, 2)),
            ..base.clone()
        },
        FlowQuery {
            host: Some(v4(8, 8, 8, 8)),
            ..base.clone()
        },
        FlowQuery {
            host: Some(v6(3)),
            ..base.clone()
        },
        FlowQuery {
            host: Some("2001:db8:0:0::1".parse::<IpAddr>().unwrap()),
            ..base.clone()
        },
        FlowQuery {
            port: Some(443),
            ..base.clone()
        },
        FlowQuery {
            port: Some(40001),
            ..base.clone()
        },
        FlowQuery {
            port: Some(9),
            ..base.clone()
        },
        FlowQuery {
            app: Some("http".into()),
            ..base.clone()
        },
        FlowQuery {
            app: Some("TLS".into()),
            ..base.clone()
        },
        FlowQuery {
            proto: Some(1),
            ..base.clone()
        },
        FlowQuery {
            domain: Some(DomainFilter::Exact("example.com".into())),
            ..base.clone()
        },
        FlowQuery {
            domain: Some(DomainFilter::Exact("a.b.example.com".into())),
            ..base.clone()
        },
        FlowQuery {
            domain: Some(DomainFilter::Suffix("Example.com.".into())),
            ..base.clone()
        },
        FlowQuery {
            domain: Some(DomainFilter::Suffix("other.org".into())),
            ..base.clone()
        },
        FlowQuery {
            domain: Some(DomainFilter::Suffix("le.com".into())),
            ..base.clone()
        },
        FlowQuery {
            run_id: Some(1),
            from: Some(ts(1220)),
            to: Some(ts(5490)),
            host: Some(v4(10, 0, 0, 1)),
            app: Some("tls".into()),
            domain: Some(DomainFilter::Suffix("example.com".into())),
            proto: Some(6),
            port: Some(443),
            ..base.clone()
        },
    ];
    let mut empty = Vec::new();
    for f in &filters {
        for sort in [FlowSort::FirstSeen, FlowSort::Bytes, FlowSort::Packets] {
            for order in [Order::Asc, Order::Desc] {
                let q = FlowQuery {
                    sort,
                    order,
                    limit: 10_000,
                    ..f.clone()
                };
                let want = model(&q, &data);
                let got = s.query_flows(&q).unwrap();
                assert_eq!(got.rows, want, "{q:?}");
                assert!(got.next.is_none());
                if want.is_empty() && sort == FlowSort::FirstSeen && order == Order::Asc {
                    empty.push(f.clone());
                }

                // Keyset paging, 7 rows a page, through the cursor's text form.
                let mut paged = Vec::new();
                let mut cursor = None;
                loop {
                    let p = s
                        .query_flows(&FlowQuery {
                            limit: 7,
                            cursor,
                            ..q.clone()
                        })
                        .unwrap();
                    assert!(p.rows.len() <= 7);
                    paged.extend(p.rows);
                    match p.next {
                        Some(c) => cursor = Some(c.to_string().parse().unwrap()),
                        None => break,
                    }
                }
                assert_eq!(paged, want, "cursor paging {q:?}");

                // Offset paging.
                let p = s
                    .query_flows(&FlowQuery {
                        limit: 5,
                        offset: 3,
                        ..q.clone()
                    })
                    .unwrap();
                let end = want.len().min(8);
                assert_eq!(
                    p.rows,
                    want.get(3.min(end)..end).unwrap_or_default(),
                    "offset {q:?}"
                );
                assert_eq!(p.next.is_some(), want.len() > 8);
            }
        }
    }
    // Every filter selects something but the unused port and the part of a label.
    assert_eq!(
        empty,
        vec![
            FlowQuery {
                port: Some(9),
                ..base.clone()
            },
            FlowQuery {
                domain: Some(DomainFilter::Suffix("le.com".into())),
                ..base.clone()
            },
        ]
    );

    // A cursor only fits its own sort order.
    let p = s
        .query_flows(&FlowQuery {
            limit: 1,
            ..base.clone()
        })
        .unwrap();
    let err = s
        .query_flows(&FlowQuery {
            sort: FlowSort::Bytes,
            cursor: p.next,
            ..base.clone()
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::BadCursor { .. }), "{err}");
    // Limits: 0 is the default page, huge is capped.
    assert_eq!(s.query_flows(&base).unwrap().rows.len(), 100);
    let big = s
        .query_flows(&FlowQuery {
            limit: u32::MAX,
            ..base
        })
        .unwrap();
    assert_eq!(big.rows.len(), data.len());
}

#[test]
fn series_and_alert_queries_filter_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut pts = Vec::new();
    for t in 0..30 {
        pts.push(series(1, 1, t, "tcp"));
        pts.push(series(1, 1, t, "udp"));
        if t % 10 == 0 {
            pts.push(series(1, 10, t, "tcp"));
        }
    }
    s.write_series(&pts).unwrap();
    let q = SeriesQuery {
        window_secs: Some(1),
        proto: Some("tcp".into()),
        from: Some(ts(5)),
        to: Some(ts(25)),
        ..SeriesQuery::default()
    };
    let got = s.query_series(&q).unwrap().rows;
    assert_eq!(got.len(), 20);
    assert!(got.windows(2).all(|w| w[0].start < w[1].start));
    assert!(got.iter().all(|p| p.proto == "tcp" && p.window_secs == 1));
    let ten = s
        .query_series(&SeriesQuery {
            window_secs: Some(10),
            order: Order::Desc,
            ..SeriesQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(
        ten.iter().map(|p| p.start).collect::<Vec<_>>(),
        vec![ts(20), ts(10), ts(0)]
    );
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let p = s
            .query_series(&SeriesQuery {
                limit: 4,
                cursor,
                ..q.clone()
            })
            .unwrap();
        paged.extend(p.rows);
        cursor = p.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, got);
    assert!(
        s.query_series(&SeriesQuery {
            iface: Some(2),
            ..SeriesQuery::default()
        })
        .unwrap()
        .rows
        .is_empty()
    );
    assert_eq!(
        s.query_series(&SeriesQuery {
            layer: Some("l4".into()),
            limit: 1000,
            ..SeriesQuery::default()
        })
        .unwrap()
        .rows
        .len(),
        pts.len()
    );

    let alerts: Vec<_> = (0..20u64)
        .map(|i| {
            alert(
                1 + i % 2,
                i,
                i as i64 * 10,
                if i % 3 == 0 {
                    "syn_flood"
                } else {
                    "vertical_scan"
                },
                if i % 4 == 0 { "10.0.0.1" } else { "eth0" },
            )
        })
        .collect();
    s.write_alerts(&alerts).unwrap();
    let got = s
        .query_alerts(&AlertQuery {
            kind: Some("syn_flood".into()),
            ..AlertQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(
        got.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![18, 15, 12, 9, 6, 3, 0]
    );
    let got = s
        .query_alerts(&AlertQuery {
            subject: Some("10.0.0.1".into()),
            run_id: Some(1),
            order: Order::Asc,
            ..AlertQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(
        got.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![0, 4, 8, 12, 16]
    );
    let got = s
        .query_alerts(&AlertQuery {
            subject: Some("10.0.0.9".into()),
            from: Some(ts(50)),
            to: Some(ts(100)),
            ..AlertQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(
        got.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![9, 8, 7, 6, 5]
    );
    assert!(
        s.query_alerts(&AlertQuery {
            severity: Some("low".into()),
            ..AlertQuery::default()
        })
        .unwrap()
        .rows
        .is_empty()
    );
    let p1 = s
        .query_alerts(&AlertQuery {
            limit: 15,
            ..AlertQuery::default()
        })
        .unwrap();
    let p2 = s
        .query_alerts(&AlertQuery {
            limit: 15,
            cursor: p1.next,
            ..AlertQuery::default()
        })
        .unwrap();
    assert_eq!((p1.rows.len(), p2.rows.len()), (15, 5));
    assert!(p2.next.is_none());
}

#[test]
fn retention_by_age_deletes_what_is_older() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    // Flows ending at 10, 20, ..., 100 s; one long flow started at 0 and still going at 100.
    let mut flows: Vec<FlowRow> = (0..10).map(|i| flow(1, i, i as i64 * 10, 10)).collect();
    flows.push(flow(1, 99, 0, 100));
    flows[3].sni = Some("gone.example".into());
    s.write_flows(&flows).unwrap();
    s.write_series(
        &(0..10)
            .map(|t| series(1, 10, t * 10, "all"))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    s.write_alerts(
        &(0..10)
            .map(|i| alert(1, i, i as i64 * 10 + 10, "syn_flood", "x"))
            .collect::<Vec<_>>(),
    )
    .unwrap();

    // Keep what was seen in the last 55 s before t = 100: last_seen >= 45.
    let st = s
        .retention(
            &Retention {
                max_age: Some(Duration::from_secs(55)),
                max_bytes: None,
            },
            ts(100),
        )
        .unwrap();
    assert_eq!((st.flows, st.series, st.alerts), (4, 4, 4), "{st:?}");
    assert_eq!(st.total(), 12);
    let left = all_flows(&mut s);
    assert_eq!(
        left.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![99, 4, 5, 6, 7, 8, 9]
    );
    assert!(left.iter().all(|f| f.last_seen >= ts(45)));
    // Names of deleted flows go with them.
    let q = FlowQuery {
        domain: Some(DomainFilter::Exact("gone.example".into())),
        ..FlowQuery::default()
    };
    assert!(s.query_flows(&q).unwrap().rows.is_empty());
    // Nothing more to do: a second pass deletes nothing.
    let st = s
        .retention(
            &Retention {
                max_age: Some(Duration::from_secs(55)),
                max_bytes: None,
            },
            ts(100),
        )
        .unwrap();
    assert_eq!(st.total(), 0);
    assert_eq!(s.integrity_check().unwrap(), vec!["ok"]);
}

#[test]
fn retention_by_size_deletes_the_oldest_and_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let mut s = open(&dir);
    let flows: Vec<FlowRow> = (0..20_000u64)
        .map(|i| {
            let mut f = full_flow(1, i);
            f.first_seen = ts(i as i64);
            f.last_seen = ts(i as i64 + 5);
            f
        })
        .collect();
    for chunk in flows.chunks(2000) {
        s.write_flows(chunk).unwrap();
    }
    s.write_series(
        &(0..100)
            .map(|t| series(1, 60, t * 200, "all"))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    s.flush().unwrap();
    s.checkpoint().unwrap(); // every page in the file
    let used = s.used_bytes().unwrap();
    let file_before = std::fs::metadata(&path).unwrap().len();
    assert!(used > 10_000_000, "{used}");

    // Half the bytes: about 45 % of the rows stay (90 % of the bound).
    let max = used / 2;
    let st = s
        .retention(
            &Retention {
                max_age: None,
                max_bytes: Some(max),
            },
            ts(0),
        )
        .unwrap();
    let left = all_flows(&mut s);
    assert_eq!(st.flows as usize + left.len(), flows.len());
    let kept = left.len() as f64 / flows.len() as f64;
    assert!((0.40..=0.50).contains(&kept), "kept {kept}");
    // The oldest went: what is left is the newest rows, contiguous.
    let oldest_left = left.iter().map(|f| f.first_seen).min().unwrap();
    assert_eq!(left.len() as i64, 20_000 - (oldest_left.0 - T0) / SEC);
    assert!(st.series > 0 && st.series < 100, "{st:?}");
    // Pages were freed and given back: the file shrank (after the checkpoint).
    let used_after = s.used_bytes().unwrap();
    assert!(used_after < used, "{used_after} {used}");
    assert!(std::fs::metadata(&path).unwrap().len() < file_before);
    // Right after a pass the pages in use have not grown: the next pass does nothing, even
    // if index pages are still sparse.
    let st2 = s
        .retention(
            &Retention {
                max_age: None,
                max_bytes: Some(max),
            },
            ts(0),
        )
        .unwrap();
    assert_eq!(st2.total(), 0);
    // A bound already met deletes nothing.
    let mut fresh = SqliteStore::open(&path).unwrap();
    let st3 = fresh
        .retention(
            &Retention {
                max_age: None,
                max_bytes: Some(u64::MAX),
            },
            ts(0),
        )
        .unwrap();
    assert_eq!(st3.total(), 0);
    assert_eq!(fresh.integrity_check().unwrap(), vec!["ok"]);
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn new_and_version_0_files_migrate() {
    let dir = tempfile::tempdir().unwrap();
    // An empty file, and a SQLite database at version 0 with no tables.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let v0 = dir.path().join("v0.db");
    raw(&v0)
        .execute_batch("PRAGMA user_version = 0; VACUUM;")
        .unwrap();
    for p in [empty, v0, dir.path().join("new.db")] {
        let mut s = SqliteStore::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        s.write_flows(&[flow(1, 1, 0, 1)]).unwrap();
        drop(s);
        let c = raw(&p);
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let app: i64 = c
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        let vacuum: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
        assert_eq!(
            (mode.as_str(), app, vacuum),
            ("wal", netmon_store::APPLICATION_ID, 2),
            "{}",
            p.display()
        );
        // Opening again migrates nothing and keeps the data.
        let mut s = SqliteStore::open(&p).unwrap();
        assert_eq!(all_flows(&mut s).len(), 1);
    }
}

#[test]
fn newer_foreign_and_broken_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // A netmon database from the future.
    let future = dir.path().join("future.db");
    drop(SqliteStore::open(&future).unwrap());
    raw(&future)
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let e = SqliteStore::open(&future).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooNew {
                found: 99,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("future.db") && msg.contains("newer than this netmon supports"),
        "{msg}"
    );
    assert!(matches!(
        SqliteStore::open_read_only(&future),
        Err(StoreError::TooNew { .. })
    ));

    // Another program's database: refused, and not switched to WAL or changed.
    let foreign = dir.path().join("foreign.db");
    raw(&foreign)
        .execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep');")
        .unwrap();
    let e = SqliteStore::open(&foreign).unwrap_err();
    assert!(matches!(e, StoreError::NotNetmon { .. }), "{e}");
    assert!(e.to_string().contains("not a netmon database"), "{e}");
    let c = raw(&foreign);
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), n), ("delete", 1));
    let other_app = dir.path().join("app.db");
    raw(&other_app)
        .execute_batch("PRAGMA application_id = 42")
        .unwrap();
    assert!(
        SqliteStore::open(&other_app)
            .unwrap_err()
            .to_string()
            .contains("0x2a")
    );

    // Not a database at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let e = SqliteStore::open(&junk).unwrap_err();
    assert!(matches!(e, StoreError::NotNetmon { .. }), "{e}");
    assert!(e.to_string().contains("not a SQLite database"), "{e}");
    assert_eq!(std::fs::read(&junk).unwrap(), vec![0x5a; 8192]);

    // Read-only needs the schema.
    let blank = dir.path().join("blank.db");
    std::fs::write(&blank, b"").unwrap();
    let e = SqliteStore::open_read_only(&blank).unwrap_err();
    assert!(
        matches!(e, StoreError::NotInitialised { found: 0, .. }),
        "{e}"
    );
}

#[test]
fn errors_name_the_file_and_give_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/netmon.db");
    let e = SqliteStore::open(&missing).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no/such/dir/netmon.db")
            && msg.contains("hint:")
            && msg.contains("directory exists"),
        "{msg}"
    );
    assert_eq!(e.sqlite_code(), Some(rusqlite::ErrorCode::CannotOpen));

    // Another connection holds the write lock longer than the busy timeout.
    let path = dir.path().join("locked.db");
    let mut s = SqliteStore::open_with(
        &path,
        &SqliteConfig {
            busy_timeout: Duration::from_millis(50),
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = s.write_flows(&[flow(1, 1, 0, 1)]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("locked.db: insert flows: database is locked")
            && msg.contains("another netmond"),
        "{msg}"
    );
    other.execute_batch("ROLLBACK").unwrap();
    s.write_flows(&[flow(1, 1, 0, 1)]).unwrap();

    // A damaged value is an error naming the table, row and column, not a panic.
    raw(&path)
        .execute_batch("UPDATE flows SET src_ip = 'not-an-ip'; ")
        .unwrap();
    let e = s.query_flows(&FlowQuery::default()).unwrap_err();
    assert!(
        matches!(e, StoreError::Corrupt { table: "flows", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("column src_ip"), "{e}");
    raw(&path)
        .execute_batch("UPDATE flows SET src_ip = '10.0.0.1', src_port = 70000, http = '[{'")
        .unwrap();
    let e = s.query_flows(&FlowQuery::default()).unwrap_err();
    assert!(e.to_string().contains("column src_port"), "{e}");
    raw(&path)
        .execute_batch("UPDATE flows SET src_port = 1, packets_c2s = -1")
        .unwrap();
    assert!(
        s.query_flows(&FlowQuery::default())
            .unwrap_err()
            .to_string()
            .contains("negative")
    );
    raw(&path)
        .execute_batch("UPDATE flows SET packets_c2s = 1")
        .unwrap();
    assert!(
        s.query_flows(&FlowQuery::default())
            .unwrap_err()
            .to_string()
            .contains("column http")
    );
}

#[test]
fn readers_query_while_the_writer_holds_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let mut w = SqliteStore::open(&path).unwrap();
    w.write_flows(&[flow(1, 1, 0, 1)]).unwrap();
    let mut r = SqliteStore::open_read_only(&path).unwrap();
    let other = raw(&path);
    other
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM flows;")
        .unwrap();
    // WAL: the reader sees the last commit, without waiting.
    assert_eq!(all_flows(&mut r).len(), 1);
    // A read-only store cannot write.
    let e = r.write_flows(&[flow(1, 2, 0, 1)]).unwrap_err();
    assert!(e.to_string().contains("hint:"), "{e}");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(all_flows(&mut r).len(), 0);
}

/// A version 1 file (text addresses, first_seen-slice indexes) opens, is migrated to the
/// current version in place, and every row stays readable and findable by each filter.
#[test]
fn version_1_file_migrates_and_stays_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    raw(&path)
        .execute_batch(include_str!("fixtures/v1.sql"))
        .unwrap();
    // Read-only openers refuse a file that is not migrated yet.
    assert!(matches!(
        SqliteStore::open_read_only(&path),
        Err(StoreError::NotInitialised { found: 1, .. })
    ));
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.integrity_check().unwrap(), vec!["ok"]);
    // Addresses are converted to their bytes.
    let types: Vec<String> = {
        let c = raw(&path);
        let mut st = c
            .prepare("SELECT typeof(src_ip) || typeof(dst_ip) FROM flows ORDER BY seq")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(types, vec!["blobblob"; 3]);

    let t = |ms: i64| Timestamp(T0 + ms * 1_000_000);
    let rows = all_flows(&mut s);
    assert_eq!(rows.len(), 3);
    let tls = &rows[0];
    assert_eq!(
        (tls.src_ip, tls.src_port, tls.dst_ip, tls.dst_port),
        (
            v4(10, 0, 0, 1),
            Some(51000),
            v4(93, 184, 216, 34),
            Some(443)
        )
    );
    assert_eq!((tls.first_seen, tls.last_seen), (t(1000), t(3000)));
    assert_eq!(tls.alpn, vec!["h2".to_string(), "http/1.1".into()]);
    assert_eq!(tls.tcp_c2s.unwrap().retransmits, 1);
    assert_eq!(tls.sni.as_deref(), Some("www.example.com"));
    let dns = &rows[1];
    let v6a: IpAddr = "2001:db8::1".parse().unwrap();
    let v6b: IpAddr = "2001:db8::53".parse().unwrap();
    assert_eq!(
        (dns.src_ip, dns.dst_ip, dns.vlan.clone()),
        (v6a, v6b, vec![7])
    );
    assert_eq!(dns.dns[0].answers, vec!["2001:db8::80".to_string()]);
    let icmp = &rows[2];
    assert_eq!((icmp.src_port, icmp.icmp_id), (None, Some(77)));
    assert_eq!(icmp.quoted.as_ref().unwrap().b_port, Some(4000));

    // Each filter finds the old rows through the new indexes.
    let ids = |s: &mut SqliteStore, q: FlowQuery| -> Vec<u64> {
        let mut v: Vec<u64> = s
            .query_flows(&q)
            .unwrap()
            .rows
            .iter()
            .map(|r| r.id)
            .collect();
        v.sort_unstable();
        v
    };
    let q = FlowQuery::default;
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                host: Some(v4(93, 184, 216, 34)),
                ..q()
            }
        ),
        [1]
    );
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                host: Some(v6b),
                ..q()
            }
        ),
        [2]
    );
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                host: Some(v4(192, 168, 1, 1)),
                ..q()
            }
        ),
        [3]
    );
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                port: Some(53),
                ..q()
            }
        ),
        [2]
    );
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                app: Some("DNS".into()),
                ..q()
            }
        ),
        [2]
    );
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                domain: Some(DomainFilter::Suffix("example.org".into())),
                ..q()
            }
        ),
        [2]
    );
    // The chunk ranges were filled from the stored rows: a time range still finds them.
    let range = |from: i64, to: i64| FlowQuery {
        from: Some(t(from)),
        to: Some(t(to)),
        port: Some(443),
        ..q()
    };
    assert_eq!(ids(&mut s, range(2500, 2600)), [1]);
    assert_eq!(ids(&mut s, range(3001, 9000)), Vec::<u64>::new());
    let series = s.query_series(&SeriesQuery::default()).unwrap().rows;
    assert_eq!((series.len(), series[0].packets), (1, 21));
    let alerts = s.query_alerts(&AlertQuery::default()).unwrap().rows;
    assert_eq!(alerts[0].source, "10.0.0.1");

    // New rows go in beside the old ones; a repeat of an old key changes nothing.
    let mut old = tls.clone();
    old.bytes_c2s = 1;
    let new = flow(1, 4, 20, 1);
    s.write_flows(&[old, new.clone()]).unwrap();
    let rows = all_flows(&mut s);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].bytes_c2s, 1500);
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                host: Some(new.dst_ip),
                ..q()
            }
        )
        .last(),
        Some(&4)
    );
    drop(s);
    // Opening again migrates nothing.
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(all_flows(&mut s).len(), 4);
    assert_eq!(s.integrity_check().unwrap(), vec!["ok"]);
}

/// Retention drops the first_seen range of a chunk whose rows are all gone, keeps the others,
/// and queries through the key summaries still find what is left.
#[test]
fn retention_forgets_emptied_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let rows: Vec<FlowRow> = (1..=5000).map(|i| flow(1, i, i as i64, 0)).collect();
    s.write_flows(&rows).unwrap();
    let chunks = |p: &Path| -> Vec<i64> {
        let c = raw(p);
        let mut st = c
            .prepare("SELECT chunk FROM flow_chunks ORDER BY chunk")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let path = dir.path().join("netmon.db");
    assert_eq!(chunks(&path), [0, 1]);
    let st = s
        .retention(
            &Retention {
                max_age: Some(Duration::from_secs(500)),
                max_bytes: None,
            },
            ts(5000),
        )
        .unwrap();
    assert_eq!(st.flows, 4499);
    assert_eq!(chunks(&path), [1]);
    let page = s
        .query_flows(&FlowQuery {
            host: Some(v4(10, 0, 0, 2)),
            from: Some(ts(4990)),
            limit: 10_000,
            ..FlowQuery::default()
        })
        .unwrap();
    assert_eq!(page.rows.len(), 11);
}

/// The address rewrite of the version 2 migration goes in batches: a version 1 file with
/// 10 000 more flows than the fixture (several batches) and one damaged address converts every
/// good address and leaves the damaged one as it was (reading that row reports it).
#[test]
fn version_1_migration_rewrites_every_address_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1-many.db");
    {
        let c = raw(&path);
        c.execute_batch(include_str!("fixtures/v1.sql")).unwrap();
        c.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 10 UNION ALL SELECT i + 1 FROM n WHERE i < 10009) \
             INSERT INTO flows (seq, run_id, id, proto, src_ip, src_port, dst_ip, dst_port, \
             packets_c2s, bytes_c2s, packets_s2c, bytes_s2c, payload_bytes_c2s, \
             payload_bytes_s2c, first_seen_ns, last_seen_ns, duration_ns, state, iface, \
             icmp_errors, app_guess, ech) \
             SELECT i, 1, i, 17, '10.1.' || (i / 256) || '.' || (i % 256), 1000, \
             'fd00::' || printf('%x', i), 53, 1, 60, 1, 60, 32, 32, \
             1704067300000000000 + i, 1704067300000000000 + i, 0, 'none', 1, 0, 0, 0 FROM n; \
             UPDATE flows SET dst_ip = 'not an address' WHERE seq = 5000;",
        )
        .unwrap();
    }
    SqliteStore::open(&path).unwrap();
    let c = raw(&path);
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM flows"), 10_003);
    // Version 1's first_seen slice column went with its indexes.
    assert_eq!(
        count("SELECT count(*) FROM pragma_table_xinfo('flows') WHERE name = 'bucket'"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM pragma_table_xinfo('flows') WHERE name = 'chunk'"),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM flows WHERE typeof(src_ip) = 'blob'"),
        10_003
    );
    assert_eq!(
        count("SELECT count(*) FROM flows WHERE typeof(dst_ip) = 'blob'"),
        10_002
    );
    assert_eq!(
        count("SELECT seq FROM flows WHERE typeof(dst_ip) = 'text'"),
        5_000
    );
    // The bytes are the address's: 10.1.39.16 is flow 10 000's source, fd00::2710 its
    // destination.
    let (src, dst): (Vec<u8>, Vec<u8>) = c
        .query_row(
            "SELECT src_ip, dst_ip FROM flows WHERE seq = 10000",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(src, [10, 1, 39, 16]);
    let want: std::net::Ipv6Addr = "fd00::2710".parse().unwrap();
    assert_eq!(dst, want.octets());
}

/// A deleted flow's values stay in its chunk's key summary until the whole chunk goes; they
/// find nothing, also after the newest rows were deleted and new ones written: a seq is never
/// handed out twice (SQLite's default would give the next row the deleted row's seq, and the
/// deleted row's name would find it). A chunk emptied by retention loses its summary.
#[test]
fn seqs_are_never_reused_and_emptied_chunks_lose_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut old = flow(1, 3, 0, 1);
    old.sni = Some("old.example".into());
    s.write_flows(&[flow(1, 1, 50, 1), flow(1, 2, 50, 1), old])
        .unwrap();
    let age = |secs| Retention {
        max_age: Some(Duration::from_secs(secs)),
        max_bytes: None,
    };
    // The newest row (seq 3) is the oldest flow.
    assert_eq!(s.retention(&age(10), ts(40)).unwrap().flows, 1);
    let mut new = flow(1, 4, 60, 1);
    new.src_ip = v4(192, 0, 2, 9);
    s.write_flows(&[new]).unwrap();
    let ids = |s: &mut SqliteStore, q: FlowQuery| -> Vec<u64> {
        s.query_flows(&q)
            .unwrap()
            .rows
            .iter()
            .map(|r| r.id)
            .collect()
    };
    let by_name = || FlowQuery {
        domain: Some(DomainFilter::Suffix("old.example".into())),
        ..FlowQuery::default()
    };
    assert_eq!(ids(&mut s, by_name()), Vec::<u64>::new());
    let by_host = FlowQuery {
        host: Some(v4(192, 0, 2, 9)),
        ..FlowQuery::default()
    };
    assert_eq!(ids(&mut s, by_host), [4]);
    // Everything goes: the chunk's summary with it; new rows start after the old seqs.
    assert_eq!(s.retention(&age(1), ts(1000)).unwrap().flows, 3);
    let c = raw(&dir.path().join("netmon.db"));
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM flow_keys"), 0);
    let mut again = flow(1, 5, 2000, 1);
    again.sni = Some("new.example".into());
    s.write_flows(&[again]).unwrap();
    assert_eq!(count("SELECT seq FROM flows"), 5);
    assert_eq!(ids(&mut s, by_name()), Vec::<u64>::new());
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                domain: Some(DomainFilter::Exact("new.example".into())),
                ..FlowQuery::default()
            }
        ),
        [5]
    );
}

/// Rows of one transaction alternate between every field set and every optional field empty:
/// each reads back as written (the insert statement's parameters keep their values between
/// rows: a stale value must never leak into the next row).
#[test]
fn full_and_empty_rows_in_one_transaction_keep_their_own_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let rows: Vec<FlowRow> = (1..=6)
        .map(|i| {
            if i % 2 == 1 {
                full_flow(1, i)
            } else {
                flow(1, i, i as i64, 1)
            }
        })
        .collect();
    s.write_flows(&rows).unwrap();
    let mut got = all_flows(&mut s);
    got.sort_by_key(|r| r.id);
    assert_eq!(got, rows);
}

/// A version 2 file (chunk indexes, `flow_names`) migrates in place to the key summaries:
/// every filter still finds its rows, the old indexes and tables are gone, new rows go in after
/// the old seqs and are found too.
#[test]
fn version_2_file_migrates_and_every_filter_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    raw(&path)
        .execute_batch(include_str!("fixtures/v2.sql"))
        .unwrap();
    assert!(matches!(
        SqliteStore::open_read_only(&path),
        Err(StoreError::NotInitialised { found: 2, .. })
    ));
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.integrity_check().unwrap(), vec!["ok"]);
    {
        let c = raw(&path);
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            count(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('flow_names', \
                 'flow_names_seq', 'flows_delete_names', 'flows_src_ip', 'flows_dst_ip', \
                 'flows_src_port', 'flows_dst_port', 'flows_app')"
            ),
            0
        );
        // Two chunks, each with its summary; the next seq follows the last.
        assert_eq!(count("SELECT count(DISTINCT chunk) FROM flow_keys"), 2);
        assert_eq!(count("SELECT value FROM meta WHERE key = 'next_seq'"), 4101);
    }
    let t = |ms: i64| Timestamp(T0 + ms * 1_000_000);
    let ids = |s: &mut SqliteStore, q: FlowQuery| -> Vec<u64> {
        let mut v: Vec<u64> = s
            .query_flows(&q)
            .unwrap()
            .rows
            .iter()
            .map(|r| r.id)
            .collect();
        v.sort_unstable();
        v
    };
    let q = FlowQuery::default;
    let v6b: IpAddr = "2001:db8::53".parse().unwrap();
    let cases: Vec<(FlowQuery, Vec<u64>)> = vec![
        (q(), vec![1, 2, 3, 4]),
        (
            FlowQuery {
                host: Some(v4(10, 0, 0, 1)),
                ..q()
            },
            vec![1],
        ),
        (
            FlowQuery {
                host: Some(v4(93, 184, 216, 34)),
                ..q()
            },
            vec![1],
        ),
        (
            FlowQuery {
                host: Some(v6b),
                ..q()
            },
            vec![2],
        ),
        (
            FlowQuery {
                host: Some(v4(192, 168, 1, 1)),
                ..q()
            },
            vec![3],
        ),
        (
            FlowQuery {
                host: Some(v4(198, 51, 100, 7)),
                ..q()
            },
            vec![4],
        ),
        (
            FlowQuery {
                host: Some(v4(10, 9, 9, 9)),
                ..q()
            },
            vec![],
        ),
        (
            FlowQuery {
                port: Some(53),
                ..q()
            },
            vec![2],
        ),
        (
            FlowQuery {
                port: Some(40000),
                ..q()
            },
            vec![4],
        ),
        (
            FlowQuery {
                port: Some(443),
                from: Some(t(2500)),
                to: Some(t(2600)),
                ..q()
            },
            vec![1],
        ),
        (
            FlowQuery {
                port: Some(443),
                from: Some(t(3001)),
                to: Some(t(9000)),
                ..q()
            },
            vec![],
        ),
        (
            FlowQuery {
                app: Some("DNS".into()),
                ..q()
            },
            vec![2],
        ),
        (
            FlowQuery {
                app: Some("http".into()),
                ..q()
            },
            vec![4],
        ),
        (
            FlowQuery {
                domain: Some(DomainFilter::Suffix("example.org".into())),
                ..q()
            },
            vec![2],
        ),
        (
            FlowQuery {
                domain: Some(DomainFilter::Suffix("example.net".into())),
                ..q()
            },
            vec![4],
        ),
        (
            FlowQuery {
                domain: Some(DomainFilter::Exact("www.example.com".into())),
                ..q()
            },
            vec![1],
        ),
        (
            FlowQuery {
                domain: Some(DomainFilter::Exact("example.com".into())),
                ..q()
            },
            vec![],
        ),
        (
            FlowQuery {
                domain: Some(DomainFilter::Suffix("lan".into())),
                ..q()
            },
            vec![3],
        ),
        (
            FlowQuery {
                host: Some(v4(10, 0, 0, 9)),
                from: Some(t(20_000)),
                to: Some(t(20_001)),
                ..q()
            },
            vec![4],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(ids(&mut s, query.clone()), want, "{query:?}");
    }
    // A new row goes in after the old seqs and is found by its values.
    let mut new = flow(1, 5, 30, 1);
    new.dst_ip = v4(198, 51, 100, 7);
    new.sni = Some("cdn.example.net".into());
    s.write_flows(&[new]).unwrap();
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                host: Some(v4(198, 51, 100, 7)),
                ..q()
            }
        ),
        [4, 5]
    );
    assert_eq!(
        ids(
            &mut s,
            FlowQuery {
                domain: Some(DomainFilter::Suffix("example.net".into())),
                ..q()
            }
        ),
        [4, 5]
    );
    let seq: i64 = raw(&path)
        .query_row("SELECT seq FROM flows WHERE id = 5", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seq, 4101);
}

/// A clean close leaves no write-ahead log (or an empty one), also while a read-only
/// connection stays open and closes last (it cannot checkpoint).
#[test]
fn a_clean_close_leaves_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netmon.db");
    let wal = dir.path().join("netmon.db-wal");
    let mut s = SqliteStore::open(&path).unwrap();
    let rows: Vec<FlowRow> = (1..=3000).map(|i| full_flow(1, i)).collect();
    s.write_flows(&rows).unwrap();
    let mut reader = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(
        reader
            .query_flows(&FlowQuery::default())
            .unwrap()
            .rows
            .len(),
        100
    );
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    // Through the writer thread, as netmond closes it.
    let w = netmon_store::StoreWriter::spawn(Box::new(s), &netmon_store::WriterConfig::default())
        .unwrap();
    w.send(netmon_store::Batch::Flows(vec![full_flow(1, 5000)]))
        .unwrap();
    w.close().unwrap();
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    drop(reader);
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    // Everything is in the file itself.
    let c = raw(&path);
    let n: i64 = c
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3001);
}

/// A filter may gather at most `max_key_matches` flows in a query's time range: beyond it the
/// query is refused with a message saying what to narrow (a client error, no unbounded
/// memory); a narrower time range gets its rows. (The range narrows by chunks of 4 096 rows:
/// the flows of two chunks here, a bound above one chunk.)
#[test]
fn a_filter_matching_too_many_flows_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broad.db");
    let mut s = SqliteStore::open_with(
        &path,
        &SqliteConfig {
            max_key_matches: 5_000,
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    let rows: Vec<FlowRow> = (1..=8_192).map(|i| flow(1, i, i as i64, 1)).collect();
    s.write_flows(&rows).unwrap();
    let host = FlowQuery {
        host: Some("10.0.0.2".parse().unwrap()),
        ..FlowQuery::default()
    };
    let e = s.query_flows(&host).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooBroad {
                filter: "host",
                max: 5_000
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("narrow the time range"), "{msg}");
    let port = FlowQuery {
        port: Some(53),
        ..FlowQuery::default()
    };
    assert!(matches!(
        s.query_flows(&port),
        Err(StoreError::TooBroad { filter: "port", .. })
    ));
    // Flows 5 000 to 5 099, in the second chunk: under the bound.
    let narrow = FlowQuery {
        from: Some(ts(5_001)),
        to: Some(ts(5_100)),
        limit: 1_000,
        ..host
    };
    let got = s.query_flows(&narrow).unwrap().rows;
    assert_eq!(got.len(), 100, "{}", got.len());

    // Rows written again (updates) file their values again: 3 000 flows written four times
    // are 12 000 entries, 3 000 flows — under the bound, all found.
    let path = dir.path().join("rewritten.db");
    let mut s = SqliteStore::open_with(
        &path,
        &SqliteConfig {
            max_key_matches: 5_000,
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    let rows: Vec<FlowRow> = (1..=3_000).map(|i| flow(1, i, i as i64, 1)).collect();
    for _ in 0..4 {
        s.write_flows(&rows).unwrap();
    }
    let all = FlowQuery {
        host: Some("10.0.0.2".parse().unwrap()),
        limit: 10_000,
        ..FlowQuery::default()
    };
    assert_eq!(s.query_flows(&all).unwrap().rows.len(), 3_000);
}

/// Pages of the log (at 16 KiB), from its file size.
fn wal_pages(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len()) / (16 * 1024 + 24)
}

/// Waits (up to 20 s) until `done` holds for the store's checkpoint counters.
fn wait_for(s: &SqliteStore, done: impl Fn(&netmon_store::CheckpointStats) -> bool) {
    let t = std::time::Instant::now();
    while !done(&s.checkpoint_stats()) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            s.checkpoint_stats()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The log's checkpoints run on a thread of their own: a writer that pauses never
/// checkpoints itself, and once the background thread has copied the log, the next commit
/// starts the log over.
#[test]
fn checkpoints_run_in_the_background_and_the_log_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.db");
    let cfg = SqliteConfig {
        checkpoint_pages: 64,
        ..SqliteConfig::default()
    };
    let mut s = SqliteStore::open_with(&path, &cfg).unwrap();
    let mut id = 0;
    let mut batch = |s: &mut SqliteStore| {
        let rows: Vec<FlowRow> = (0..10)
            .map(|_| {
                id += 1;
                full_flow(1, id)
            })
            .collect();
        s.write_flows(&rows).unwrap();
    };
    // Until the log passes 64 pages (a transaction adds about 8): the thread is nudged.
    while s.checkpoint_stats().log_frames < 64 {
        batch(&mut s);
    }
    wait_for(&s, |c| c.background >= 1);
    let before = s.checkpoint_stats().log_frames;
    batch(&mut s);
    let c = s.checkpoint_stats();
    assert!(c.log_frames < before, "the log did not start over: {c:?}");
    assert_eq!(c.writer, 0, "{c:?}");
    assert_eq!(c.background_failed, 0, "{c:?}");
    // Everything written is there, and the file is intact.
    drop(s);
    let n: i64 = raw(&path)
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, i64::from(u32::try_from(id).unwrap()));
    let s = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(s.integrity_check().unwrap(), ["ok"]);
}

/// A writer that never pauses still keeps the log bounded: from four times
/// `checkpoint_pages` it copies the rest itself, from eight it waits for the background
/// checkpoint to do so; then the log starts over. Without the bound the log would hold every
/// page written (here about 100 times `checkpoint_pages`).
#[test]
fn a_writer_that_never_pauses_keeps_the_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let wal = dir.path().join("busy.db-wal");
    let pages = 16;
    let cfg = SqliteConfig {
        checkpoint_pages: pages,
        ..SqliteConfig::default()
    };
    let mut s = SqliteStore::open_with(&path, &cfg).unwrap();
    let (mut appended, mut largest) = (0, 0);
    for b in 0..200u64 {
        let before = s.checkpoint_stats().log_frames;
        let rows: Vec<FlowRow> = (1..=100).map(|i| full_flow(1, b * 100 + i)).collect();
        s.write_flows(&rows).unwrap();
        let after = s.checkpoint_stats().log_frames;
        // The transaction's frames (all of the log when it started over).
        let added = if after > before {
            after - before
        } else {
            after
        };
        appended += added;
        largest = largest.max(added);
    }
    let c = s.checkpoint_stats();
    let bound = u64::from(2 * pages * netmon_store::WRITER_FACTOR) + largest;
    assert!(appended > 50 * u64::from(pages), "{appended} frames");
    assert!(c.writer >= 1, "{c:?}");
    assert!(c.max_log_frames <= bound, "{c:?} > {bound}");
    assert!(wal_pages(&wal) <= bound, "{} pages", wal_pages(&wal));
    drop(s);
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    let n: i64 = raw(&path)
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 20_000);
}

/// Background checkpoints off: SQLite checkpoints on the writing connection, and the store
/// reports no background work; read-only and in-memory stores have no thread.
#[test]
fn background_checkpoints_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fg.db");
    let wal = dir.path().join("fg.db-wal");
    let cfg = SqliteConfig {
        checkpoint_pages: 16,
        background_checkpoints: false,
        ..SqliteConfig::default()
    };
    let mut s = SqliteStore::open_with(&path, &cfg).unwrap();
    for b in 0..100u64 {
        let rows: Vec<FlowRow> = (1..=100).map(|i| full_flow(1, b * 100 + i)).collect();
        s.write_flows(&rows).unwrap();
    }
    assert_eq!(
        s.checkpoint_stats(),
        netmon_store::CheckpointStats::default()
    );
    // SQLite's own checkpoint kept the log short (it starts over after each).
    assert!(wal_pages(&wal) < 64, "{} pages", wal_pages(&wal));
    let r = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(
        r.checkpoint_stats(),
        netmon_store::CheckpointStats::default()
    );
    let m = SqliteStore::open_in_memory().unwrap();
    assert_eq!(
        m.checkpoint_stats(),
        netmon_store::CheckpointStats::default()
    );
}
