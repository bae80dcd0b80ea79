//! What `#[smart_cached(shared)]` calls when it builds its cache: the process-wide tier
//! ([`install`](super::install)), if there is one, with the errors carried as the fn's
//! return type allows.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::shared::ErrorCodec;
use crate::{AsyncSmartCacheBuilder, CacheError};

/// The installed tier, or `None` after saying (once per process) that the attribute's
/// shared caches run local-only.
fn tier() -> Option<super::RedisTier> {
    static SAID: AtomicBool = AtomicBool::new(false);
    let tier = super::installed();
    if tier.is_none() && !SAID.swap(true, Relaxed) {
        crate::trace::no_tier_installed();
    }
    tier
}

/// `Result<T, E>` and `Option<T>` fns: values and errors shared with `serde`.
pub fn share<K, V, E>(builder: AsyncSmartCacheBuilder<K, V, E>) -> AsyncSmartCacheBuilder<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    E: Send + Sync + Serialize + DeserializeOwned + 'static,
{
    match tier() {
        Some(tier) => builder.shared_with(tier, ErrorCodec::serde()),
        None => builder,
    }
}

/// `Result<T, CacheError<E>>` fns: the original error is what travels.
pub fn share_nested<K, V, E>(
    builder: AsyncSmartCacheBuilder<K, V, CacheError<E>>,
) -> AsyncSmartCacheBuilder<K, V, CacheError<E>>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    E: Send + Sync + Serialize + DeserializeOwned + 'static,
{
    let codec = ErrorCodec {
        encode: |error: &CacheError<E>| {
            let original = error.error()?; // a panic or a cycle is not a failure to share
            rmp_serde::to_vec(&**original).ok()
        },
        decode: |bytes| {
            let original: E = rmp_serde::from_slice(bytes).ok()?;
            Some(CacheError::Failed(Arc::new(original)))
        },
    };
    match tier() {
        Some(tier) => builder.shared_with(tier, codec),
        None => builder,
    }
}

/// Fns that cannot fail: values shared.
pub fn share_values<K, V, E>(
    builder: AsyncSmartCacheBuilder<K, V, E>,
) -> AsyncSmartCacheBuilder<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    E: Send + Sync + 'static,
{
    match tier() {
        Some(tier) => builder.shared_with(tier, ErrorCodec::local()),
        None => builder,
    }
}
