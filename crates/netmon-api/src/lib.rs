//! The HTTP API of the netmon daemon (axum on tokio, HTTP/1.1).
//!
//! | Endpoint | What |
//! | --- | --- |
//! | `GET /healthz` | `200` while the process serves (never needs the token) |
//! | `GET /readyz` | `200` once [`ApiBackend::ready`], else `503` |
//! | `GET /metrics` | Prometheus text format 0.0.4 |
//! | `GET /api/v1/interfaces` | capture interfaces and their counters |
//! | `GET /api/v1/status` | version, uptime, readiness, each sink (store, database, exporters) |
//! | `GET /api/v1/flows` | active flows: `host`, `port`, `app`, `domain`, `sort`, `order`, `limit` |
//! | `GET /api/v1/flows/history` | stored flows: `from`, `to`, the same filters, `limit`, `cursor` |
//! | `GET /api/v1/stats` | window metrics per interface and protocol, protocol hierarchy |
//! | `GET /api/v1/top` | top talkers: `n`, `by` (`bytes` or `packets`) |
//! | `GET /api/v1/alerts` | alerts: `since`, `limit` |
//! | `GET /api/v1/events` | live events (Server-Sent Events): `flow_started`, `flow_ended`, `alert`, `stats`, `endpoints` |
//! | `GET /api/v1/openapi.json` | the OpenAPI 3.1 document of all of these |
//! | `GET /`, `/assets/*` | the live dashboard ([`dashboard`]), no token needed: it holds no data |
//!
//! The daemon provides the data by implementing [`ApiBackend`]: owned snapshots, so the HTTP
//! side never holds the engine's locks, and a broadcast [`EventBus`] for the live events that
//! never makes the engine wait for a slow client.
//!
//! Security: the server binds `127.0.0.1:9100` by default; any other address is refused unless
//! a token is configured ([`ApiConfig::token`]). With a token, every endpoint but `/healthz`
//! requires `Authorization: Bearer <token>`, compared in constant time. Every bad request gets
//! a JSON error `{"error": "...", "detail": "..."}` with a 4xx status; a panic in a handler
//! becomes a `500` JSON error, never a dropped connection. See `docs/api.md`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use netmon_api::{
//!     ApiBackend, ApiConfig, BackendError, EventBus, FlowFilter, HistoryPage, HistoryQuery,
//!     InterfaceInfo, LiveEvent, StatsView, TopTalkers, metrics::MetricsWriter,
//! };
//! use netmon_engine::FlowRecord;
//! use netmon_stats::{AlertEvent, RankBy, Timestamp};
//!
//! struct Daemon {
//!     events: EventBus,
//! }
//!
//! impl ApiBackend for Daemon {
//!     fn ready(&self) -> bool { true }
//!     fn interfaces(&self) -> Vec<InterfaceInfo> { Vec::new() }
//!     fn active_flows(&self, filter: &FlowFilter) -> Vec<FlowRecord> {
//!         filter.apply(Vec::new()) // every active flow's record, filtered, sorted, cut
//!     }
//!     fn flow_history(&self, _q: &HistoryQuery) -> Result<HistoryPage, BackendError> {
//!         Err(BackendError::Unavailable("no store configured".into()))
//!     }
//!     fn stats(&self) -> StatsView { StatsView::default() }
//!     fn top(&self, _n: usize, by: RankBy) -> TopTalkers {
//!         TopTalkers { by, hosts: vec![], pairs: vec![], ports: vec![] }
//!     }
//!     fn alerts(&self, _since: Option<Timestamp>, _limit: usize) -> Vec<AlertEvent> { vec![] }
//!     fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<LiveEvent>> {
//!         self.events.subscribe()
//!     }
//!     fn metrics(&self, out: &mut MetricsWriter) {
//!         out.counter("netmon_packets_total", "Packets captured.", &[("interface", "eth0")], 42);
//!     }
//! }
//!
//! # async fn run() -> Result<(), netmon_api::ApiError> {
//! let daemon = Arc::new(Daemon { events: EventBus::new(1024) });
//! // The engine publishes into a clone of the bus: `bus.publish(LiveEvent::FlowEnded(record))`.
//! let cfg = ApiConfig { bind: "127.0.0.1:9100".parse().unwrap(), token: None };
//! let stop = async { let _ = tokio::signal::ctrl_c().await; };
//! netmon_api::serve(cfg, daemon, stop).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod auth;
pub mod backend;
pub mod dashboard;
mod error;
pub mod metrics;
mod query;
pub mod radar;
mod server;
pub mod time;

pub use backend::{
    ApiBackend, BackendError, DEFAULT_LIMIT, EventBus, FlowFilter, HistoryPage, HistoryQuery,
    InterfaceInfo, LiveEvent, Order, SinkStatus, SortKey, StatsView, StatusView, TopTalkers,
};
pub use error::ApiError;
pub use query::{DEFAULT_TOP_N, MAX_FLOWS_LIMIT, MAX_PAGE_LIMIT, MAX_QUERY_LEN, MAX_TOP_N};
pub use server::{
    ApiConfig, DEFAULT_BIND, DEFAULT_KEEP_ALIVE, MAX_BACKEND_CALLS, MAX_CONNECTIONS,
    MAX_EVENT_CLIENTS, OPENAPI_JSON, SHUTDOWN_GRACE, Server, serve,
};
