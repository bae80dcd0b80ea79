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

/// A plain fn, `Option` return.
#[smart_cached(retry = "1m")]
pub fn parsed(text: &str) -> Option<u32> {
    text.parse().ok()
}

/// A custom key, a destructured argument skipped by the key, a lifetime parameter.
#[smart_cached(key: u64 = u64::from(*id))]
pub async fn keyed<'a>(id: u32, Wrapper(label): Wrapper<&'a str>) -> String {
    format!("{label}{id}")
}

/// A destructured argument skipped by name.
#[smart_cached(skip(label))]
pub async fn skipped(id: u32, Wrapper(label): Wrapper<String>) -> u32 {
    id + u32::try_from(label.len()).unwrap_or(0)
}

/// An extractor-like wrapper.
pub struct Wrapper<T>(pub T);

/// Companions kept in the crate under other names.
#[smart_cached(companions = "pub(crate)", handle = renamed_handle, uncached = renamed_body)]
pub async fn renamed(id: u64) -> u64 {
    id
}

/// `anyhow::Result` (smartcache's `anyhow` feature).
#[smart_cached]
pub async fn with_anyhow(id: u64) -> anyhow::Result<u64> {
    Ok(id)
}

/// A boxed error.
#[smart_cached]
pub async fn boxed(id: u64) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    Ok(id)
}

/// Methods with the attribute alone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Alone(u8);

impl Alone {
    /// The receiver in the key.
    #[smart_cached]
    pub async fn keyed(&self, id: u64) -> u64 {
        id + u64::from(self.0)
    }

    /// The receiver by value: the shared route, through hidden associated fns.
    #[smart_cached]
    pub async fn owned(self, id: u64) -> u64 {
        id * u64::from(self.0)
    }

    /// `Self` in the return type, sync.
    #[smart_cached]
    pub fn made(id: u8) -> Self {
        Self(id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parsed("7"), Some(7));
    let _: &'static AsyncSmartCache<u64, String, _> = keyed_cache();
    assert_eq!(keyed(1, Wrapper("a")).await, "a1");
    assert_eq!(skipped(1, Wrapper("ab".into())).await, 3);
    assert_eq!(renamed(4).await, 4);
    assert_eq!(renamed_handle().stats().misses, 1);
    assert_eq!(renamed_body(5).await, 5);
    assert_eq!(with_anyhow(1).await.ok(), Some(1));
    assert_eq!(boxed(2).await.ok(), Some(2));
    let _: &'static AsyncSmartCache<(Alone, u64), u64> = Alone::keyed_cache();
    assert_eq!(Alone(1).keyed(1).await, 2);
    assert_eq!(Alone(2).owned(3).await, 6);
    assert!(Alone::made(3) == Alone(3));
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
