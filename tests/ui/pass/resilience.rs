//! The resilience options compile without a warning in every form, with the strictest lints
//! on; an error type's `RetryAfter` is picked up whatever the form.

#![deny(
    warnings,
    missing_docs,
    unused_qualifications,
    unreachable_pub,
    unused_results
)]

use std::time::Duration;

use smartcache::{AsyncSmartCache, CacheError, RetryAfter, smart_cached};

/// An error that says when to retry.
#[derive(Debug, Clone)]
pub struct Limited(u64);

impl RetryAfter for Limited {
    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.0))
    }
}

/// Full mode, every option.
#[smart_cached(retry = "30s", retry_max = "1h", ttl = "10m", refresh = "1m", stale_if_error = "1h")]
pub async fn full(id: u64) -> Result<u64, CacheError<Limited>> {
    Ok(id)
}

/// Transparent mode.
#[smart_cached(retry_max = "1h", ttl = "10m", stale_if_error = "1d")]
pub async fn transparent(id: u64) -> Result<u64, Limited> {
    Ok(id)
}

mod api {
    pub(crate) type Result<T> = std::result::Result<T, super::Limited>;
}

/// Transparent mode through an alias; `refresh` without `ttl` (values never expire, and are
/// refreshed ahead all the same).
#[smart_cached(retry = "1s", retry_max = "1m", refresh = "1m")]
pub async fn alias(id: u64) -> api::Result<u64> {
    Ok(id)
}

/// `Option` mode.
#[smart_cached(retry = "1m", retry_max = "1h", ttl = "1h", refresh = "5m", stale_if_error = "1h")]
pub async fn optional(id: u64) -> Option<u64> {
    Some(id)
}

/// Infallible mode.
#[smart_cached(ttl = "1h", refresh = "30m", capacity = 10)]
pub async fn infallible(id: u64) -> u64 {
    id
}

/// A plain fn.
#[smart_cached(retry = "1m", retry_max = "10m", ttl = "1m", stale_if_error = "1h")]
pub fn sync(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

/// A service, its own error type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service(u8);

impl RetryAfter for Service {}

#[smart_cached]
impl Service {
    /// In a marked `impl`, `Self` as the error.
    #[smart_cached(retry_max = "1h", ttl = "5m", refresh = "1m")]
    pub async fn by_value(self, id: u64) -> Result<u64, CacheError<Self>> {
        Ok(id + u64::from(self.0))
    }
}

impl Service {
    /// With the attribute alone, `Self` as the value and the error.
    #[smart_cached(retry_max = "1h", ttl = "5m", stale_if_error = "1h")]
    pub async fn alone(self, id: u8) -> Result<Self, Self> {
        Ok(Self(self.0 + id))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(full(1).await.ok(), Some(1));
    assert_eq!(transparent(2).await.ok(), Some(2));
    assert_eq!(alias(3).await.ok(), Some(3));
    assert_eq!(optional(4).await, Some(4));
    assert_eq!(infallible(5).await, 5);
    assert_eq!(sync("6").ok(), Some(6));
    assert_eq!(Service(1).by_value(6).await.ok(), Some(7));
    assert_eq!(Service(1).alone(7).await.ok(), Some(Service(8)));
    let _: &'static AsyncSmartCache<(u64,), u64, CacheError<Limited>> = full_cache();
    let _: &'static AsyncSmartCache<(Service, u8), Service, Service> = Service::alone_cache();
}
