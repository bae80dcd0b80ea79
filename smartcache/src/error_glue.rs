//! `CacheError`s over errors that are not `std::error::Error` themselves
//! (`Box<dyn Error + Send + Sync>`, `anyhow::Error`): their conversion into a boxed error,
//! through [`Layer`].

use std::error::Error;
use std::fmt;

use crate::CacheError;
use crate::error::{CYCLE, Countdown};

/// `Box<dyn Error + Send + Sync>` is not a `std::error::Error`, so neither is
/// `CacheError<Box<dyn Error + Send + Sync>>`, and `?` cannot convert it: this method does.
impl CacheError<Box<dyn Error + Send + Sync>> {
    /// This error as a boxed error that displays this layer (`cached error (retry in
    /// 4m12s)`, ..), with the original error as its source: for `?` in a fn returning
    /// `Result<T, Box<dyn Error + Send + Sync>>`, `.map_err(CacheError::into_boxed)?`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::{AsyncSmartCache, CacheError};
    /// use std::error::Error;
    ///
    /// type Boxed = Box<dyn Error + Send + Sync>;
    ///
    /// async fn port(cache: &AsyncSmartCache<u8, u16, Boxed>) -> Result<u16, Boxed> {
    ///     let computed = cache.get_or_compute(1, || async { Err("no port".into()) });
    ///     Ok(computed.await.map_err(CacheError::into_boxed)?)
    /// }
    ///
    /// let cache = AsyncSmartCache::new();
    /// assert_eq!(port(&cache).await.unwrap_err().to_string(), "no port");
    /// let cached = port(&cache).await.unwrap_err();
    /// assert!(cached.to_string().starts_with("cached error (retry in "));
    /// assert_eq!(cached.source().unwrap().to_string(), "no port");
    /// # }
    /// ```
    #[must_use]
    pub fn into_boxed(self) -> Box<dyn Error + Send + Sync> {
        Box::new(Layer(self))
    }
}

/// A `CacheError` over an error that derefs to `dyn Error`, as a `std::error::Error`: a
/// fresh failure shows as the original (and chains to its sources), a cached one as this
/// layer with the original as its source.
pub(crate) struct Layer<E>(pub(crate) CacheError<E>);

impl<E> fmt::Display for Layer<E>
where
    E: std::ops::Deref<Target = dyn Error + Send + Sync + 'static>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            // A fresh failure is the original error: it shows as it.
            CacheError::Failed(error) => fmt::Display::fmt(&***error, f),
            // This layer only; the original follows in the chain.
            CacheError::Cached { retry_in, .. } => {
                write!(f, "cached error (retry in {})", Countdown(*retry_in))
            }
            CacheError::Panicked { message } => write!(f, "computation panicked: {message}"),
            CacheError::Cycle => f.write_str(CYCLE),
        }
    }
}

impl<E> fmt::Debug for Layer<E>
where
    E: std::ops::Deref<Target = dyn Error + Send + Sync + 'static>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<E> Error for Layer<E>
where
    E: std::ops::Deref<Target = dyn Error + Send + Sync + 'static>,
{
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.0 {
            CacheError::Failed(error) => error.source(),
            CacheError::Cached { error, .. } => {
                let original: &(dyn Error + 'static) = &***error;
                Some(original)
            }
            CacheError::Panicked { .. } | CacheError::Cycle => None,
        }
    }
}
