//! Every supported form compiles without a warning, with the strictest lints on.

#![deny(
    warnings,
    missing_docs,
    unused_qualifications,
    unreachable_pub,
    unused_results
)]

use std::sync::Arc;

use smartcache::{AsyncSmartCache, CacheError, smart_cached};

/// An error.
#[derive(Debug, Clone)]
pub struct Error;

/// Full mode.
#[smart_cached(retry = "500ms", ttl = "2d", capacity = 1_000, name = "forms::full")]
pub async fn full(id: u64, name: &str) -> Result<String, CacheError<Error>> {
    Ok(format!("{id}{name}"))
}

/// Transparent mode.
#[smart_cached(retry = "1h30m")]
pub async fn transparent(bytes: &[u8]) -> Result<usize, Error> {
    Ok(bytes.len())
}

mod api {
    pub(crate) type Result<T> = std::result::Result<T, super::Error>;
}

/// Transparent mode through an alias.
#[smart_cached]
pub async fn alias(path: &std::path::Path) -> api::Result<bool> {
    Ok(path.is_absolute())
}

/// Transparent mode through an alias without arguments.
#[smart_cached]
pub async fn formatted(value: u32) -> std::fmt::Result {
    if value == 0 {
        Err(std::fmt::Error)
    } else {
        Ok(())
    }
}

/// Infallible mode, no arguments.
#[smart_cached]
pub async fn config() -> Arc<Vec<String>> {
    Arc::new(Vec::new())
}

/// A skipped argument that borrows: the body is polled by its caller.
#[smart_cached(skip(label))]
pub async fn tagged(id: u64, label: std::borrow::Cow<'_, str>) -> u64 {
    id + label.len() as u64
}

/// A service.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Service(u8);

#[smart_cached]
impl Service {
    /// `&self` in the key.
    #[smart_cached]
    pub async fn by_ref(&self, id: u64) -> u64 {
        id + u64::from(self.0)
    }

    /// `self` by value, skipped reference argument.
    #[smart_cached(skip(log))]
    pub async fn by_value(self, id: u64, log: &mut Vec<u64>) -> u64 {
        log.push(id);
        id
    }

    /// Associated function.
    #[smart_cached]
    pub async fn associated(id: u64) -> Result<u64, CacheError<Error>> {
        Ok(id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _: &'static AsyncSmartCache<(u64, String), String, CacheError<Error>> = full_cache();
    let _: &'static AsyncSmartCache<(Vec<u8>,), usize, Error> = transparent_cache();
    let _: &'static AsyncSmartCache<(std::path::PathBuf,), bool, Error> = alias_cache();
    let _: &'static AsyncSmartCache<(), Arc<Vec<String>>> = config_cache();
    let _: &'static AsyncSmartCache<(Service, u64), u64> = Service::by_ref_cache();
    assert_eq!(full(1, "a").await.ok().as_deref(), Some("1a"));
    assert_eq!(transparent(b"abc").await.ok(), Some(3));
    assert_eq!(alias(std::path::Path::new("/")).await.ok(), Some(true));
    assert!(formatted(0).await.is_err());
    assert!(config().await.is_empty());
    assert_eq!(tagged(1, "ab".into()).await, 3);
    assert_eq!(Service(1).by_ref(1).await, 2);
    let mut log = Vec::new();
    assert_eq!(Service(1).by_value(5, &mut log).await, 5);
    assert_eq!(Service::associated(3).await.ok(), Some(3));
    assert_eq!(full_uncached(2, "b").await.ok().as_deref(), Some("2b"));
}
