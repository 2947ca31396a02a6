//! The router, the handlers and the server loop.

use core::future::Future;
use core::net::{Ipv4Addr, SocketAddr};
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use core::task::{Context, Poll};
use core::time::Duration;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures_util::FutureExt as _;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use crate::auth::{Token, valid_token};
use crate::backend::{ApiBackend, LiveEvent};
use crate::dashboard;
use crate::error::{ApiError, HttpError};
use crate::metrics::{self, MetricsWriter};
use crate::query;

/// The OpenAPI 3.1 document served at `/api/v1/openapi.json` (the repository's
/// `docs/openapi.json`).
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

/// Default bind address: loopback only.
pub const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(core::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9100);

/// Open connections served at once; further clients wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 256;
/// Event-stream clients at once; more get `503`.
pub const MAX_EVENT_CLIENTS: usize = 64;
/// Backend calls running at once on the blocking pool; further requests wait their turn.
pub const MAX_BACKEND_CALLS: usize = 8;
/// Default interval of the event stream's keep-alive comments.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a graceful shutdown waits for requests in flight before the server returns
/// anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where and how to serve.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Listening address; default `127.0.0.1:9100`. Anything but a loopback address requires
    /// a `token`.
    pub bind: SocketAddr,
    /// Bearer token required on every endpoint except `/healthz`; `None` serves without
    /// authentication (loopback binds only).
    pub token: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bind: DEFAULT_BIND,
            token: None,
        }
    }
}

impl core::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ApiConfig {
    /// Checks the token rules: a non-loopback `bind` needs a token, and a token must be
    /// non-empty visible ASCII.
    pub fn validate(&self) -> Result<(), ApiError> {
        match &self.token {
            Some(t) if !valid_token(t) => Err(ApiError::InvalidToken),
            Some(_) => Ok(()),
            None if self.bind.ip().to_canonical().is_loopback() => Ok(()),
            None => Err(ApiError::TokenRequired(self.bind)),
        }
    }
}

/// The API's own counters, shown at `/metrics` as `netmon_api_*`.
#[derive(Debug, Default)]
struct ApiCounters {
    /// Responses by status class: 1xx..5xx.
    responses: [AtomicU64; 5],
    panics: AtomicU64,
    event_clients: AtomicU64,
    event_clients_rejected: AtomicU64,
    events_sent: AtomicU64,
    events_lagged: AtomicU64,
}

#[derive(Clone)]
struct AppState {
    backend: Arc<dyn ApiBackend>,
    token: Option<Token>,
    counters: Arc<ApiCounters>,
    shutdown: watch::Receiver<bool>,
    keep_alive: Duration,
    backend_calls: Arc<Semaphore>,
}

/// A bound server, not yet serving: [`Server::bind`], then [`Server::run`].
pub struct Server {
    listener: TcpListener,
    backend: Arc<dyn ApiBackend>,
    token: Option<Token>,
    keep_alive: Duration,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("token", &self.token)
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks `cfg` ([`ApiConfig::validate`]) and opens the listening socket.
    pub async fn bind(cfg: ApiConfig, backend: Arc<dyn ApiBackend>) -> Result<Server, ApiError> {
        cfg.validate()?;
        let listener = TcpListener::bind(cfg.bind)
            .await
            .map_err(|source| ApiError::Bind {
                addr: cfg.bind,
                source,
            })?;
        Ok(Server {
            listener,
            backend,
            token: cfg.token.as_deref().map(Token::new),
            keep_alive: DEFAULT_KEEP_ALIVE,
        })
    }

    /// The address actually bound (with the port the system chose for port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ApiError> {
        self.listener.local_addr().map_err(ApiError::Serve)
    }

    /// Sets the interval of the event stream's keep-alive comments (default 15 s; at least
    /// 10 ms).
    pub fn keep_alive(mut self, interval: Duration) -> Server {
        self.keep_alive = interval.max(Duration::from_millis(10));
        self
    }

    /// Serves until `shutdown` completes, then stops accepting, ends the event streams and
    /// waits for the requests in flight (at most [`SHUTDOWN_GRACE`]).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ApiError> {
        let (tx, rx) = watch::channel(false);
        let state = AppState {
            backend: self.backend,
            token: self.token,
            counters: Arc::new(ApiCounters::default()),
            shutdown: rx.clone(),
            keep_alive: self.keep_alive,
            backend_calls: Arc::new(Semaphore::new(MAX_BACKEND_CALLS)),
        };
        let app = app(state);
        let listener = Limited {
            inner: self.listener,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        };
        let signal = async move {
            shutdown.await;
            let _ = tx.send(true);
        };
        let server = axum::serve(listener, app).with_graceful_shutdown(signal);
        let mut rx = rx;
        let grace = async move {
            if rx.wait_for(|stop| *stop).await.is_err() {
                core::future::pending::<()>().await;
            }
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            r = server => r.map_err(ApiError::Serve),
            () = grace => Ok(()),
        }
    }
}

/// Checks `cfg`, binds and serves `backend` until `shutdown` completes (see [`Server::run`]).
pub async fn serve(
    cfg: ApiConfig,
    backend: Arc<dyn ApiBackend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    Server::bind(cfg, backend).await?.run(shutdown).await
}

/// Every route: path and handler. The router is built from this table, and a test checks that
/// the OpenAPI document describes each path.
fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/healthz", get(healthz)),
        ("/readyz", get(readyz)),
        ("/metrics", get(metrics_text)),
        ("/api/v1/interfaces", get(interfaces)),
        ("/api/v1/status", get(status)),
        ("/api/v1/flows", get(flows)),
        ("/api/v1/flows/history", get(history)),
        ("/api/v1/stats", get(stats)),
        ("/api/v1/top", get(top)),
        ("/api/v1/alerts", get(alerts)),
        ("/api/v1/events", get(events)),
        ("/api/v1/openapi.json", get(openapi)),
    ]
}

fn app(state: AppState) -> Router {
    let mut r = Router::new();
    for (path, handler) in routes() {
        r = r.route(path, handler);
    }
    for path in dashboard::paths() {
        r = r.route(path, get(move || async move { dashboard::serve(path) }));
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(state.clone(), catch_panic))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn count(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let class = usize::from(r.status().as_u16() / 100);
    if let Some(c) = class
        .checked_sub(1)
        .and_then(|i| st.counters.responses.get(i))
    {
        c.fetch_add(1, Relaxed);
    }
    r
}

/// The last line of defence: a panic anywhere below becomes a `500` JSON error.
async fn catch_panic(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => {
            st.counters.panics.fetch_add(1, Relaxed);
            HttpError::internal("the request handler failed").into_response()
        }
    }
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.token {
        // The dashboard's files hold no data: the page loads, then asks for the token.
        let path = req.uri().path();
        if path != "/healthz" && !dashboard::is_asset(path) {
            let ok = req
                .headers()
                .get(header::AUTHORIZATION)
                .is_some_and(|v| token.verify_header(v.as_bytes()));
            if !ok {
                return HttpError::unauthorized().into_response();
            }
        }
    }
    next.run(req).await
}

async fn not_found() -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not found",
        Some("see /api/v1/openapi.json for the endpoints".into()),
    )
}

async fn method_not_allowed() -> Response {
    let mut r = HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        Some("every endpoint answers GET (and HEAD)".into()),
    )
    .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

fn json<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => HttpError::internal(format!("serialisation failed: {e}")).into_response(),
    }
}

/// Runs `f` on the blocking pool (bounded by [`MAX_BACKEND_CALLS`]); a panic in it is a `500`.
async fn call<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&dyn ApiBackend) -> T + Send + 'static,
) -> Result<T, HttpError> {
    let _permit = st
        .backend_calls
        .acquire()
        .await
        .map_err(|_| HttpError::internal("shutting down"))?;
    let b = Arc::clone(&st.backend);
    tokio::task::spawn_blocking(move || f(&*b))
        .await
        .map_err(|e| {
            if e.is_panic() {
                st.counters.panics.fetch_add(1, Relaxed);
            }
            HttpError::internal("the request handler failed")
        })
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

async fn healthz(RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    query::none(q.as_deref())?;
    Ok(json(StatusCode::OK, &Status { status: "ok" }))
}

async fn readyz(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    query::none(q.as_deref())?;
    if st.backend.ready() {
        Ok(json(StatusCode::OK, &Status { status: "ready" }))
    } else {
        Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready",
            Some("the capture sources are not open yet".into()),
        ))
    }
}

async fn metrics_text(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, HttpError> {
    query::none(q.as_deref())?;
    let mut w = call(&st, |b| {
        let mut w = MetricsWriter::new();
        b.metrics(&mut w);
        w
    })
    .await?;
    let c = &st.counters;
    const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    for (class, n) in CLASSES.iter().zip(&c.responses) {
        w.counter(
            "netmon_api_responses_total",
            "HTTP responses of the API by status class.",
            &[("code", class)],
            n.load(Relaxed),
        );
    }
    w.counter(
        "netmon_api_panics_total",
        "Requests whose handler panicked (answered 500).",
        &[],
        c.panics.load(Relaxed),
    );
    w.gauge_int(
        "netmon_api_event_clients",
        "Event-stream clients connected now.",
        &[],
        c.event_clients.load(Relaxed),
    );
    w.counter(
        "netmon_api_event_clients_rejected_total",
        "Event-stream clients refused because the limit was reached.",
        &[],
        c.event_clients_rejected.load(Relaxed),
    );
    w.counter(
        "netmon_api_events_sent_total",
        "Live events sent to event-stream clients.",
        &[],
        c.events_sent.load(Relaxed),
    );
    w.counter(
        "netmon_api_events_lagged_total",
        "Live events event-stream clients missed because they read too slowly.",
        &[],
        c.events_lagged.load(Relaxed),
    );
    w.gauge_int(
        "netmon_api_ready",
        "1 when the daemon is ready (its sources are open).",
        &[],
        u64::from(st.backend.ready()),
    );
    let mut r = w.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(r)
}

async fn status(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    query::none(q.as_deref())?;
    let v = call(&st, |b| b.status()).await?;
    Ok(json(StatusCode::OK, &v))
}

async fn interfaces(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, HttpError> {
    query::none(q.as_deref())?;
    let v = call(&st, |b| b.interfaces()).await?;
    Ok(json(StatusCode::OK, &v))
}

async fn flows(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    let filter = query::flows(q.as_deref())?;
    let limit = filter.limit;
    let mut v = call(&st, move |b| b.active_flows(&filter)).await?;
    v.truncate(limit);
    Ok(json(StatusCode::OK, &v))
}

async fn history(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    let hq = query::history(q.as_deref())?;
    let limit = hq.filter.limit;
    let mut page = call(&st, move |b| b.flow_history(&hq)).await??;
    page.flows.truncate(limit);
    Ok(json(StatusCode::OK, &page))
}

async fn stats(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    query::none(q.as_deref())?;
    let v = call(&st, |b| b.stats()).await?;
    Ok(json(StatusCode::OK, &v))
}

async fn top(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    let (n, by) = query::top(q.as_deref())?;
    let mut v = call(&st, move |b| b.top(n, by)).await?;
    v.hosts.truncate(n);
    v.pairs.truncate(n);
    v.ports.truncate(n);
    Ok(json(StatusCode::OK, &v))
}

async fn alerts(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    let (since, limit) = query::alerts(q.as_deref())?;
    let mut v = call(&st, move |b| b.alerts(since, limit)).await?;
    v.truncate(limit);
    Ok(json(StatusCode::OK, &v))
}

async fn openapi(RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    query::none(q.as_deref())?;
    let mut r = OPENAPI_JSON.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Counts a connected event-stream client while it lives.
struct ClientSlot(Arc<ApiCounters>);

impl ClientSlot {
    fn take(c: &Arc<ApiCounters>) -> Option<ClientSlot> {
        let ok = c
            .event_clients
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < MAX_EVENT_CLIENTS as u64).then_some(n + 1)
            })
            .is_ok();
        if ok {
            Some(ClientSlot(Arc::clone(c)))
        } else {
            c.event_clients_rejected.fetch_add(1, Relaxed);
            None
        }
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.event_clients.fetch_sub(1, Relaxed);
    }
}

struct EventState {
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    shutdown: watch::Receiver<bool>,
    mask: u8,
    slot: ClientSlot,
}

fn kind_bit(kind: &str) -> u8 {
    LiveEvent::KINDS
        .iter()
        .position(|k| *k == kind)
        .map_or(0, |i| 1 << i)
}

async fn next_event(
    mut s: EventState,
) -> Option<(Result<Event, core::convert::Infallible>, EventState)> {
    loop {
        let r = tokio::select! {
            stop = s.shutdown.wait_for(|stop| *stop) => {
                let _ = stop;
                return None;
            }
            r = s.rx.recv() => r,
        };
        let c = &s.slot.0;
        match r {
            Ok(ev) => {
                let kind = ev.kind();
                if s.mask & kind_bit(kind) == 0 {
                    continue;
                }
                let Ok(data) = ev.to_json() else { continue };
                c.events_sent.fetch_add(1, Relaxed);
                return Some((Ok(Event::default().event(kind).data(data)), s));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                c.events_lagged.fetch_add(n, Relaxed);
                let ev = Event::default()
                    .event("lagged")
                    .data(format!("{{\"missed\":{n}}}"));
                return Some((Ok(ev), s));
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

async fn events(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, HttpError> {
    let mask = query::events(q.as_deref())?;
    let Some(slot) = ClientSlot::take(&st.counters) else {
        return Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event-stream clients",
            Some(format!("at most {MAX_EVENT_CLIENTS} at once")),
        ));
    };
    let state = EventState {
        rx: st.backend.subscribe(),
        shutdown: st.shutdown.clone(),
        mask,
        slot,
    };
    let stream = futures_util::stream::unfold(state, next_event);
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(st.keep_alive).text("keep-alive"))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// A listener that serves at most [`MAX_CONNECTIONS`] connections at once and turns Nagle's
/// algorithm off (small JSON answers and events go out at once).
struct Limited {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

impl axum::serve::Listener for Limited {
    type Io = SlotStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = loop {
            match Arc::clone(&self.slots).acquire_owned().await {
                Ok(p) => break p,
                // Never closed; wait rather than spin if it were.
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        };
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let _ = io.set_nodelay(true);
        (
            SlotStream {
                io,
                _permit: permit,
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its slot until dropped.
struct SlotStream {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for SlotStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for SlotStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        let routes: Vec<&str> = routes().into_iter().map(|(p, _)| p).collect();
        for p in &routes {
            let item = paths
                .get(*p)
                .unwrap_or_else(|| panic!("{p} missing from openapi.json"));
            assert!(item.get("get").is_some(), "{p}: no GET operation");
        }
        for p in paths.keys() {
            assert!(
                routes.contains(&p.as_str()),
                "{p} documented but not routed"
            );
        }
    }

    #[test]
    fn token_rules() {
        let lo = ApiConfig::default();
        assert!(lo.validate().is_ok());
        let v6lo = ApiConfig {
            bind: "[::1]:0".parse().unwrap(),
            token: None,
        };
        assert!(v6lo.validate().is_ok());
        let mapped = ApiConfig {
            bind: "[::ffff:127.0.0.1]:0".parse().unwrap(),
            token: None,
        };
        assert!(mapped.validate().is_ok());
        for bind in ["0.0.0.0:9100", "10.0.0.1:9100", "[::]:9100"] {
            let c = ApiConfig {
                bind: bind.parse().unwrap(),
                token: None,
            };
            let e = c.validate().unwrap_err();
            assert!(matches!(e, ApiError::TokenRequired(_)), "{bind}");
            assert!(e.to_string().contains("api.token"));
            let c = ApiConfig {
                token: Some("x".repeat(32)),
                ..c
            };
            assert!(c.validate().is_ok());
        }
        let c = ApiConfig {
            token: Some(String::new()),
            ..ApiConfig::default()
        };
        assert!(matches!(c.validate(), Err(ApiError::InvalidToken)));
        let c = ApiConfig {
            token: Some("secret".into()),
            ..ApiConfig::default()
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
