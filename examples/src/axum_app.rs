//! The `axum_service` example's application: a user lookup in front of a slow upstream.
//!
//! | route | what it does |
//! |---|---|
//! | `GET /users/{id}` | the user, through the cached [`lookup_user`]; 404 for an unknown id (cached for 10 s) |
//! | `GET /stats` | every registered cache's statistics, as JSON |
//!
//! Every response passes through the [`enrich_response`] middleware, which adds the
//! `x-served-by` (the cached [`hostname`](crate::enrich::hostname)) and `x-process-id`
//! headers.
//!
//! The upstream is simulated ([`Upstream`]) and counts its calls, so the integration test
//! can prove that concurrent requests for one user made one upstream call. It can be
//! *gated*: every call waits until the test opens the gate, which lets the test hold the
//! first call until all the requests it sent have arrived.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use smartcache::{CacheError, registry, smart_cached};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::enrich;

/// Ids above this are unknown to the upstream.
pub const KNOWN_USERS: u64 = 1_000_000;

/// A user, as the upstream knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: u64,
    /// The user's display name.
    pub name: String,
}

/// Why the upstream answered no user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No user has this id.
    NotFound(u64),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(id) => write!(f, "no user with id {id}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// A simulated slow upstream (a user directory) that counts its calls.
#[derive(Debug)]
pub struct Upstream {
    calls: AtomicU64,
    delay: Delay,
}

#[derive(Debug)]
enum Delay {
    /// Every call takes this long.
    Latency(Duration),
    /// Every call waits until the gate opens.
    Gate(Arc<Semaphore>),
}

/// Holds a gated [`Upstream`]'s calls until [`open`](Self::open) is called.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    /// Lets every waiting and future call through.
    pub fn open(&self) {
        // A closed semaphore fails every `acquire` at once: that is the "open" signal, and
        // it is remembered, so a call that arrives later does not wait either.
        self.0.close();
    }
}

impl Upstream {
    /// An upstream whose every call takes `latency`.
    #[must_use]
    pub fn with_latency(latency: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicU64::new(0),
            delay: Delay::Latency(latency),
        })
    }

    /// An upstream whose calls wait until the returned gate is opened.
    #[must_use]
    pub fn gated() -> (Arc<Self>, Gate) {
        let gate = Arc::new(Semaphore::new(0));
        let upstream = Arc::new(Self {
            calls: AtomicU64::new(0),
            delay: Delay::Gate(Arc::clone(&gate)),
        });
        (upstream, Gate(gate))
    }

    /// How many calls the upstream has received.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    async fn fetch_user(&self, id: u64) -> Result<User, UpstreamError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match &self.delay {
            Delay::Latency(latency) => tokio::time::sleep(*latency).await,
            // Err means closed, which means open (see `Gate::open`).
            Delay::Gate(gate) => drop(gate.acquire().await),
        }
        if id > KNOWN_USERS {
            return Err(UpstreamError::NotFound(id));
        }
        Ok(User {
            id,
            name: format!("user-{id}"),
        })
    }
}

/// The cached lookup: concurrent requests for one id share one upstream call, a user is kept
/// for a minute, an unknown id is remembered for 10 seconds, and at most 10,000 are kept.
///
/// The upstream is skipped: it is not part of the key (every upstream is asked the same
/// question), and since it is passed owned, the computation does not borrow from the
/// request, so a request that hangs up does not cancel the lookup the others wait for.
///
/// # Errors
///
/// [`CacheError::Failed`] when the upstream has no such user, then [`CacheError::Cached`]
/// for 10 seconds.
#[smart_cached(skip(upstream), ttl = "60s", retry = "10s", capacity = 10_000)]
pub async fn lookup_user(
    upstream: Arc<Upstream>,
    id: u64,
) -> Result<User, CacheError<UpstreamError>> {
    Ok(upstream.fetch_user(id).await?)
}

/// The routes, with the [`enrich_response`] middleware, serving `upstream`.
pub fn router(upstream: Arc<Upstream>) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/stats", get(stats))
        .layer(middleware::from_fn(enrich_response))
        .with_state(upstream)
}

/// Serves the app on `listener` until the process ends.
///
/// # Errors
///
/// When accepting connections fails for good.
pub async fn serve(listener: TcpListener, upstream: Arc<Upstream>) -> io::Result<()> {
    axum::serve(listener, router(upstream)).await
}

async fn user(State(upstream): State<Arc<Upstream>>, Path(id): Path<u64>) -> Response {
    match lookup_user(upstream, id).await {
        Ok(user) => Json(json!({ "id": user.id, "name": user.name })).into_response(),
        // `error()` is the upstream's own error; `CacheError`'s `Display` says only what the
        // cache did ("computation failed", "cached error (retry in 10s)").
        Err(error @ CacheError::Cached { .. }) => {
            let retry_in_ms = error.retry_in().map_or(0, |left| left.as_millis());
            let body = json!({ "error": upstream_message(&error), "cached": true, "retry_in_ms": retry_in_ms });
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
        Err(error @ CacheError::Failed(_)) => {
            let body = json!({ "error": upstream_message(&error), "cached": false });
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
        Err(error) => {
            let body = json!({ "error": error.to_string() });
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

/// The upstream's message for a failure, fresh or cached.
fn upstream_message(error: &CacheError<UpstreamError>) -> String {
    error
        .error()
        .map_or_else(|| error.to_string(), ToString::to_string)
}

async fn stats() -> Json<Vec<registry::RegisteredCache>> {
    Json(registry::snapshot())
}

/// Middleware: adds `x-served-by` (the cached host name) and `x-process-id` to every
/// response. A host name that cannot be had, or cannot be a header, is left out.
pub async fn enrich_response(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Some(host) = enrich::hostname()
        .await
        .ok()
        .and_then(|host| HeaderValue::from_str(&host).ok())
    {
        headers.insert(HeaderName::from_static("x-served-by"), host);
    }
    headers.insert(
        HeaderName::from_static("x-process-id"),
        HeaderValue::from(enrich::pid().await),
    );
    response
}
