//! Code shared by the smartcache examples and their integration tests.
//!
//! - [`enrich`]: log-event enrichers (host name, pid, resource snapshot) as `#[smart_cached]`
//!   functions, and a small pipeline that runs them; used by the `enrichers` example.
//! - [`axum_app`]: an HTTP service with a cached upstream lookup, an enriching middleware and
//!   a `/stats` endpoint; served by the `axum_service` example and started by its test.
//! - [`http`]: a minimal HTTP/1.1 client for that service.

pub mod axum_app;
pub mod enrich;
pub mod http;
