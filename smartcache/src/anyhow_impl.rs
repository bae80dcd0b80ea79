//! The `anyhow` feature: `anyhow::Result<T>` under `#[smart_cached]`, and `?` from a
//! `CacheError` whose error is an `anyhow::Error` or a `Box<dyn Error + Send + Sync>`.

use std::panic::resume_unwind;
use std::sync::Arc;

use crate::CacheError;
use crate::error_glue::Layer;
use crate::fitness::{ErrorProbe, Fits, SharedError};

/// Hands back a cached `anyhow::Error`: the original itself when no one else holds it (the
/// retry interval is zero), else a new `anyhow::Error` whose message, `{:#}` and chain are
/// the original's.
impl ErrorProbe<anyhow::Error> {
    /// [`Fits`].
    #[must_use]
    pub fn verdict(&self) -> Fits {
        Fits
    }

    /// The answer as the fn's `anyhow::Result<V>`.
    ///
    /// # Errors
    ///
    /// The body's error, fresh or cached.
    pub fn hand_back<V>(
        &self,
        answer: Result<V, CacheError<anyhow::Error>>,
    ) -> Result<V, anyhow::Error> {
        answer.map_err(|error| match error {
            CacheError::Failed(error) | CacheError::Cached { error, .. } => Arc::try_unwrap(error)
                .unwrap_or_else(|shared| anyhow::Error::new(SharedError(shared))),
            CacheError::Panicked { message } => resume_unwind(Box::new(message)),
            // An error type with room for it: the cycle is an error, not a panic.
            CacheError::Cycle => anyhow::Error::msg(crate::error::CYCLE),
        })
    }
}

/// `?` from a `CacheError<E>` into `anyhow::Error` works for every `E: std::error::Error +
/// Send + Sync + 'static`, as for any error. `anyhow::Error` is not a `std::error::Error`,
/// so neither is `CacheError<anyhow::Error>`, and a `From` impl for it would overlap with
/// anyhow's own: this method is the conversion.
impl CacheError<anyhow::Error> {
    /// This error as an `anyhow::Error` that displays this layer (`cached error (retry in
    /// 4m12s): ..`), with the original error as its source: for `?` in a fn returning
    /// `anyhow::Result`, `.map_err(CacheError::into_anyhow)?`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::{AsyncSmartCache, CacheError};
    ///
    /// async fn port(cache: &AsyncSmartCache<u8, u16, anyhow::Error>) -> anyhow::Result<u16> {
    ///     let computed = cache.get_or_compute(1, || async { Err(anyhow::anyhow!("no port")) });
    ///     Ok(computed.await.map_err(CacheError::into_anyhow)?)
    /// }
    ///
    /// let cache = AsyncSmartCache::new();
    /// assert_eq!(port(&cache).await.unwrap_err().to_string(), "no port");
    /// let cached = port(&cache).await.unwrap_err();
    /// assert!(format!("{cached:#}").starts_with("cached error (retry in "));
    /// assert_eq!(cached.root_cause().to_string(), "no port");
    /// # }
    /// ```
    #[must_use]
    pub fn into_anyhow(self) -> anyhow::Error {
        anyhow::Error::new(Layer(self))
    }
}
