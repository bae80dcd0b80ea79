//! Compile-time fitness probes for the code of `#[smart_cached]` (re-exported from
//! `__private`): whether a type can be a key, whether a cache's types can be cached, and
//! how a transparent fn hands a cached error back.
//!
//! Each probe picks its impl by method resolution ("autoref specialization"): on
//! `(&Probe::<T>::new()).method()`, an impl for `Probe<T>` whose bounds hold is found
//! before the fallback impl for `&Probe<T>`. The fallbacks have no bounds, so that code
//! using a type that cannot be cached still type-checks, and the one error the user sees is
//! the check on the type at fault, with a hint naming the fix. A fallback is never run: the
//! check that picks the same impl fails to compile first.

use std::fmt;
use std::future::{Pending, pending};
use std::marker::PhantomData;
use std::time::Duration;

use crate::__private::{CacheKey, CachedError, CachedValue};
use crate::{AsyncSmartCache, AsyncSmartCacheBuilder, CacheError};

/// The verdict of a probe whose bounds hold.
#[derive(Debug)]
pub struct Fits;

/// The verdict of a probe that fell back.
#[derive(Debug)]
pub struct Unfit;

/// No verdict: the second impl of each check's trait, so that the compiler takes the verdict
/// from the probe's answer instead of from the one impl (which would report a mismatch of
/// `Fits` and `Unfit` rather than the check's message).
#[derive(Debug)]
pub enum Undecided {}

/// The probe of a type `T` as (part of) a key.
pub struct KeyProbe<T: ?Sized>(PhantomData<fn() -> *const T>);

impl<T: ?Sized> KeyProbe<T> {
    /// The probe.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: ?Sized> Default for KeyProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ?Sized> fmt::Debug for KeyProbe<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyProbe")
    }
}

/// `T` can be part of a key.
pub trait KeyFits<T> {
    /// [`Fits`].
    fn verdict(&self) -> Fits {
        Fits
    }
    /// A copy of `value` for the key.
    #[must_use]
    fn key_clone(&self, value: &T) -> T;
}

impl<T: CacheKey> KeyFits<T> for KeyProbe<T> {
    #[inline]
    fn key_clone(&self, value: &T) -> T {
        value.clone()
    }
}

/// `T` cannot be part of a key (the fallback).
pub trait KeyUnfit<T> {
    /// [`Unfit`].
    fn verdict(&self) -> Unfit {
        Unfit
    }
    /// Never called.
    fn key_clone(&self, value: &T) -> T;
}

impl<T> KeyUnfit<T> for &KeyProbe<T> {
    fn key_clone(&self, _: &T) -> T {
        unreachable!("a key that cannot be cached fails to compile")
    }
}

/// The check of a key argument: fails (with the hint) when its probe fell back. `Name` is a
/// type parameter of the generated code named like the argument, so that the hint reads
/// `skip(pool)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of the cache key",
    label = "leave it out of the key with `skip({Name})`",
    note = "a key must be `Hash + Eq + Clone + Send + Sync + 'static`"
)]
pub trait KeyArg<Verdict, Name: ?Sized> {}

impl<T: ?Sized, Name: ?Sized> KeyArg<Fits, Name> for T {}
impl<T: ?Sized, Name: ?Sized> KeyArg<Undecided, Name> for T {}

/// Reports, on the argument, a type that cannot be part of the key.
pub fn check_key_arg<T, Verdict, Name>(_: Verdict)
where
    T: ?Sized + KeyArg<Verdict, Name>,
    Name: ?Sized,
{
}

/// The check of a key argument whose name cannot be given (its type names `Self`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of the cache key",
    label = "leave this argument out of the key with `skip(<its name>)`",
    note = "a key must be `Hash + Eq + Clone + Send + Sync + 'static`"
)]
pub trait KeyArgUnnamed<Verdict> {}

impl<T: ?Sized> KeyArgUnnamed<Fits> for T {}
impl<T: ?Sized> KeyArgUnnamed<Undecided> for T {}

/// Reports, on the argument, a type that cannot be part of the key.
pub fn check_key_arg_unnamed<T: ?Sized + KeyArgUnnamed<Verdict>, Verdict>(_: Verdict) {}

/// The check of a receiver in the key: fails (with the hint) when its probe fell back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of the cache key",
    label = "leave the receiver out of the key: `skip(self)`",
    note = "a key must be `Hash + Eq + Clone + Send + Sync + 'static`"
)]
pub trait KeyReceiver<Verdict> {}

impl<T: ?Sized> KeyReceiver<Fits> for T {}
impl<T: ?Sized> KeyReceiver<Undecided> for T {}

/// Reports, on `self`, a receiver that cannot be part of the key.
pub fn check_key_receiver<T: ?Sized + KeyReceiver<Verdict>, Verdict>(_: Verdict) {}

/// The check of a custom key's type: fails (with the hint) when its probe fell back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a cache key",
    label = "the type of `key: Type = expr`",
    note = "a key must be `Hash + Eq + Clone + Send + Sync + 'static`"
)]
pub trait CustomKey<Verdict> {}

impl<T: ?Sized> CustomKey<Fits> for T {}
impl<T: ?Sized> CustomKey<Undecided> for T {}

/// Reports, on the type of `key: Type = expr`, a type that cannot be a key.
pub fn check_custom_key<T: ?Sized + CustomKey<Verdict>, Verdict>(_: Verdict) {}

/// The probe of a cache type `C` (`AsyncSmartCache<K, V, E>`).
pub struct CacheProbe<C>(PhantomData<fn() -> C>);

impl<C> CacheProbe<C> {
    /// The probe.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<C> Default for CacheProbe<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> fmt::Debug for CacheProbe<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheProbe")
    }
}

/// The cache's types can be cached: its builder and the cache itself.
pub trait CacheFits<K, V, E> {
    /// [`AsyncSmartCache::builder`].
    fn builder(&self) -> AsyncSmartCacheBuilder<K, V, E>;
    /// `cache`, as it is.
    fn cache(&self, cache: &'static AsyncSmartCache<K, V, E>) -> &'static AsyncSmartCache<K, V, E>;
}

impl<K: CacheKey, V: CachedValue, E: CachedError> CacheFits<K, V, E>
    for CacheProbe<AsyncSmartCache<K, V, E>>
{
    #[inline]
    fn builder(&self) -> AsyncSmartCacheBuilder<K, V, E> {
        AsyncSmartCache::builder()
    }
    #[inline]
    fn cache(&self, cache: &'static AsyncSmartCache<K, V, E>) -> &'static AsyncSmartCache<K, V, E> {
        cache
    }
}

/// Some type of the cache cannot be cached (the fallback): stand-ins without bounds.
pub trait CacheUnfit<K, V, E> {
    /// A builder that is never used.
    fn builder(&self) -> Unusable<AsyncSmartCache<K, V, E>>;
    /// A cache that is never used.
    fn cache(&self, cache: &'static AsyncSmartCache<K, V, E>) -> Unusable<(K, V, E)>;
}

impl<K, V, E> CacheUnfit<K, V, E> for &CacheProbe<AsyncSmartCache<K, V, E>> {
    fn builder(&self) -> Unusable<AsyncSmartCache<K, V, E>> {
        Unusable(PhantomData)
    }
    fn cache(&self, _: &'static AsyncSmartCache<K, V, E>) -> Unusable<(K, V, E)> {
        Unusable(PhantomData)
    }
}

/// What the fallbacks hand out: the methods the generated code calls, without bounds.
pub struct Unusable<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for Unusable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unusable")
    }
}

#[allow(clippy::unused_self, clippy::needless_pass_by_value)]
impl<K, V, E> Unusable<AsyncSmartCache<K, V, E>> {
    /// Never called.
    #[must_use]
    pub fn retry_interval(self, _: Duration) -> Self {
        self
    }
    /// Never called.
    #[must_use]
    pub fn time_to_live(self, _: Duration) -> Self {
        self
    }
    /// Never called.
    #[must_use]
    pub fn max_capacity(self, _: u64) -> Self {
        self
    }
    /// Never called.
    #[must_use]
    pub fn name(self, _: impl Into<String>) -> Self {
        self
    }
    /// Never called.
    #[must_use]
    pub fn build(self) -> AsyncSmartCache<K, V, E> {
        unreachable!("a cache that cannot be built fails to compile")
    }
}

#[allow(clippy::unused_self, clippy::needless_pass_by_value)]
impl<K, V, E> Unusable<(K, V, E)> {
    /// Never called.
    pub fn get_or_compute<F>(&self, _: K, _: F) -> Pending<Result<V, CacheError<E>>> {
        pending()
    }
    /// Never called.
    pub fn get_or_compute_shared<F>(&self, _: K, _: F) -> Pending<Result<V, CacheError<E>>> {
        pending()
    }
    /// Never called.
    ///
    /// # Errors
    ///
    /// Never.
    pub fn get_or_compute_blocking<F>(&self, _: K, _: F) -> Result<V, CacheError<E>> {
        unreachable!("a cache that cannot be built fails to compile")
    }
}

/// The probe of an error type `E` returned by a transparent fn (`Result<T, E>`): how a
/// cached failure is handed back as an `E`.
pub struct ErrorProbe<E: ?Sized>(PhantomData<fn() -> *const E>);

impl<E: ?Sized> ErrorProbe<E> {
    /// The probe.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<E: ?Sized> Default for ErrorProbe<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: ?Sized> fmt::Debug for ErrorProbe<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorProbe")
    }
}

/// `E` is handed back by cloning it.
pub trait ErrorCloned<E> {
    /// [`Fits`].
    fn verdict(&self) -> Fits {
        Fits
    }
    /// The answer as the fn's `Result<V, E>`.
    ///
    /// # Errors
    ///
    /// A clone of the error, fresh or cached.
    fn hand_back<V>(&self, answer: Result<V, CacheError<E>>) -> Result<V, E>;
}

impl<E: Clone + Send + Sync + 'static> ErrorCloned<E> for ErrorProbe<E> {
    #[inline]
    fn hand_back<V>(&self, answer: Result<V, CacheError<E>>) -> Result<V, E> {
        crate::__private::transparent(answer)
    }
}

/// `E` cannot be handed back (the fallback).
pub trait ErrorUnfit<E> {
    /// [`Unfit`].
    fn verdict(&self) -> Unfit {
        Unfit
    }
    /// Never called.
    ///
    /// # Errors
    ///
    /// Never.
    fn hand_back<V>(&self, answer: Result<V, CacheError<E>>) -> Result<V, E>;
}

impl<E> ErrorUnfit<E> for &ErrorProbe<E> {
    fn hand_back<V>(&self, _: Result<V, CacheError<E>>) -> Result<V, E> {
        unreachable!("an error that cannot be handed back fails to compile")
    }
}

/// The check of a transparent fn's error type: fails (with the hint) when its probe fell
/// back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Clone`, so a cached error cannot be returned as `{Self}`",
    label = "every caller of a cached failure receives this error",
    note = "return `Result<T, CacheError<E>>` instead: the error is then shared as `Arc<E>`, no `Clone` needed",
    note = "`anyhow::Error` is handed back with smartcache's `anyhow` feature, `Box<dyn Error + Send + Sync>` always"
)]
pub trait HandsBack<Verdict> {}

impl<E: ?Sized> HandsBack<Fits> for E {}
impl<E: ?Sized> HandsBack<Undecided> for E {}

/// Reports, on the return type, an error type that a transparent fn cannot hand back.
pub fn check_hand_back<E: ?Sized + HandsBack<Verdict>, Verdict>(_: Verdict) {}

/// Hands back a cached `Box<dyn Error + Send + Sync>`: a new box whose message and source
/// chain are the original's.
impl ErrorProbe<Box<dyn std::error::Error + Send + Sync>> {
    /// [`Fits`].
    #[must_use]
    pub fn verdict(&self) -> Fits {
        Fits
    }

    /// The answer as the fn's `Result<V, Box<dyn Error + Send + Sync>>`.
    ///
    /// # Errors
    ///
    /// The original error itself when no one else holds it, else an error that displays and
    /// chains as the original.
    pub fn hand_back<V>(
        &self,
        answer: Result<V, CacheError<Box<dyn std::error::Error + Send + Sync>>>,
    ) -> Result<V, Box<dyn std::error::Error + Send + Sync>> {
        answer.map_err(|error| match error {
            CacheError::Failed(error) | CacheError::Cached { error, .. } => {
                match std::sync::Arc::try_unwrap(error) {
                    Ok(original) => original,
                    Err(shared) => Box::new(SharedError(shared)),
                }
            }
            CacheError::Panicked { message } => std::panic::resume_unwind(Box::new(message)),
            // An error type with room for it: the cycle is an error, not a panic.
            CacheError::Cycle => crate::error::CYCLE.into(),
        })
    }
}

/// An error shared by the cache, standing in for the original: the same `Display`, `Debug`
/// and `source()`.
pub struct SharedError<E: ?Sized>(pub std::sync::Arc<E>);

impl<E> fmt::Display for SharedError<E>
where
    E: std::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self.0, f)
    }
}

impl<E> fmt::Debug for SharedError<E>
where
    E: std::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}

impl<E> std::error::Error for SharedError<E>
where
    E: std::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static>,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
