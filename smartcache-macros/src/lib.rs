//! The `#[smart_cached]` attribute of [smartcache](https://docs.rs/smartcache).
//!
//! Use it through `smartcache::smart_cached`; this crate is an implementation detail. The
//! phases live in their own modules: `attr` parses the options, `ast` models the function,
//! `valid` checks it, `expand` generates the code, and `fallback` emits the input unchanged
//! next to the errors when there are any.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod fallback;
#[cfg(test)]
mod fuzz;
mod valid;

use proc_macro::TokenStream;

/// Memoizes a function (an `async fn`, or a plain fn): every call goes through a generated static
/// [`AsyncSmartCache`](https://docs.rs/smartcache/latest/smartcache/struct.AsyncSmartCache.html),
/// with single-flight per key, cached errors, and statistics.
///
/// ```
/// use smartcache::{CacheError, smart_cached};
///
/// #[derive(Debug)]
/// struct ApiError(String);
///
/// /// Fetches a user's name.
/// #[smart_cached(retry = "30s", ttl = "10m")]
/// async fn user_name(id: u64) -> Result<String, CacheError<ApiError>> {
///     if id == 0 {
///         return Err(ApiError("no user 0".into()).into());
///     }
///     Ok(format!("user {id}"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(user_name(7).await.unwrap(), "user 7");
/// assert_eq!(user_name(7).await.unwrap(), "user 7"); // a hit
/// assert!(user_name(0).await.unwrap_err().error().is_some()); // failed, now cached
/// assert!(user_name(0).await.unwrap_err().is_cached()); // nothing ran
///
/// let stats = user_name_cache().stats();
/// assert_eq!((stats.hits, stats.load_successes, stats.cached_error_hits), (1, 1, 1));
/// # }
/// ```
///
/// # Options
///
/// | option | meaning | default |
/// |---|---|---|
/// | `retry = "5m"` | how long a failure stays cached; `"0s"` caches no error | `"5m"` |
/// | `ttl = "10m"` | how long a value stays fresh | for ever |
/// | `capacity = 10_000` | most entries kept (values and cached errors) | no bound |
/// | `skip(arg, ..)` | arguments left out of the key (`self` included) | none |
/// | `name = "users"` | name in `smartcache::registry` | `module::path::fn_name` |
/// | `key: Type = expr` | the key: `expr`, over the arguments by reference, replaces the argument tuple | the arguments |
/// | `companions = "pub(crate)"` | visibility of `<fn>_cache` and `<fn>_uncached` (`"private"`: none) | the fn's |
/// | `handle = name` | name of the cache handle | `<fn>_cache` |
/// | `uncached = name` | name of the uncached fn | `<fn>_uncached` |
/// | `retry_max = "1h"` | cap on a key's retry interval: each consecutive failure (or `None`) doubles it, jittered by up to ±20%; a success resets it | `retry` (no growth) |
/// | `refresh = "1m"` | refresh-ahead: a value older than this is answered at once and refreshed in the background, once per key; shorter than `ttl` | never |
/// | `stale_if_error = "1h"` | when recomputing an expired value fails, its last good value is answered for up to this long past its expiry (the failure is still cached); needs `ttl` | never |
///
/// Durations are parsed at compile time: `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"2d"`. A
/// mistake in the options is a compile error on the offending token, and all of them are
/// reported at once. The options of the `cached` crate (`size`, `time`, `result`,
/// `sync_writes`, `convert`, ..) are errors that name what to write instead.
///
/// # The key
///
/// Every argument not skipped, the receiver included, makes up the key, as a tuple in the
/// order of the arguments: `fn f(a: u64, b: &str)` is keyed by `(u64, String)`, and
/// `fn g(id: u64)` by `(u64,)`. Reference arguments are stored owned: `&str` as `String`,
/// `&[T]` as `Vec<T>`, `&Path`, `&OsStr`, `&CStr` as `PathBuf`, `OsString`, `CString`, and
/// `&T` as `T`. A key argument must be `Hash + Eq + Clone + Send + Sync + 'static`; a `&mut`
/// argument or one that holds a borrow (`Option<&str>`) must be skipped. `skip` takes the
/// names bound inside a pattern too: `skip(state)` leaves out `State(state): State<App>`.
///
/// A hit builds no key: the tuple is looked up through references to the arguments
/// ([`KeyRef`](https://docs.rs/smartcache/latest/smartcache/struct.KeyRef.html)), and the
/// owned key is built on a miss only, when the body also gets a clone of each by-value key
/// argument. A key of more than 6 parts is built on every call.
///
/// `key: Type = expr` replaces the tuple: `expr` sees every argument by reference, as its
/// pattern binds it (and `self` as it is received), and `skip` is then not needed.
///
/// ```
/// use smartcache::smart_cached;
///
/// pub struct State<S>(pub S);
/// pub struct App {
///     region: &'static str,
/// }
///
/// /// One entry per tenant and region: the request id and the state are not in the key.
/// #[smart_cached(key: String = format!("{tenant}@{}", state.region))]
/// async fn quota(tenant: &str, _request: u64, State(state): State<&App>) -> u64 {
///     tenant.len() as u64 + state.region.len() as u64 % 2
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let app = App { region: "eu" };
/// assert_eq!(quota("acme", 1, State(&app)).await, 4);
/// assert_eq!(quota("acme", 2, State(&app)).await, 4); // a hit
/// assert_eq!(quota_cache().get("acme@eu"), Some(4));
/// # }
/// ```
///
/// # The return type decides what happens to failures
///
/// The declared signature is kept exactly.
///
/// | return type | failure | `<fn>_cache()` is |
/// |---|---|---|
/// | `Result<T, CacheError<E>>` | cached; callers see `Failed` or `Cached` | `AsyncSmartCache<K, T, CacheError<E>>` |
/// | `Result<T, E>`, `E: Clone` | cached; callers get a clone of the original `E` | `AsyncSmartCache<K, T, E>` |
/// | `io::Result<T>`, `fmt::Result`, any alias named `Result` | as `Result<T, E>` | as `Result<T, E>` |
/// | `Result<T, Box<dyn Error + Send + Sync>>` | cached; callers get an error with the original's message and source chain | `AsyncSmartCache<K, T, Box<dyn Error + Send + Sync>>` |
/// | `anyhow::Result<T>` (feature `anyhow` of smartcache) | cached; callers get an `anyhow::Error` with the original's message and chain | `AsyncSmartCache<K, T, anyhow::Error>` |
/// | `Option<T>` | `None` is cached like a failure, for `retry` | `AsyncSmartCache<K, T, _>` (a hidden marker error for `None`) |
/// | anything else | cannot fail: the value is cached | `AsyncSmartCache<K, T>` |
///
/// With `Result<T, CacheError<E>>`, `?` works on an `E` inside the body, and on the
/// `CacheError<E>` of another cached function (it is passed on as it is). `CacheError`
/// must be spelled out in the return type: through an alias, the error is taken as an
/// opaque `E`, cloned. Aliases whose error is not `Clone` (`std::io::Result`) are a compile
/// error that says to return `Result<T, CacheError<E>>`. A cached `anyhow::Error` or boxed
/// error cannot be cloned: callers after the first get a stand-in that displays and chains as
/// the original (`{:#}`, `chain()`, `root_cause()`), and the original itself only when the
/// cache keeps no copy (`retry = "0s"`); `downcast_ref` to the original type works on that
/// one only. `?` from a `CacheError<E>` into `anyhow::Error` works for any `E:
/// std::error::Error + Send + Sync`; for `CacheError<anyhow::Error>`, use
/// `.map_err(CacheError::into_anyhow)?`, and for `CacheError<Box<dyn Error + Send + Sync>>`,
/// `.map_err(CacheError::into_boxed)?`.
///
/// # Generated items
///
/// For `async fn fetch(..)`, with the function's visibility (or that of `companions`) and
/// `#[cfg]`:
///
/// - `fetch`: the cached function, with the original signature, documentation and
///   attributes (`#[must_use]`, `#[tracing::instrument]`, ..);
/// - `fetch_cache()`: `&'static AsyncSmartCache<..>` for statistics, invalidation and
///   priming; built on first use, when it is also registered in `smartcache::registry`;
/// - `fetch_uncached(..)`: the original body, run without the cache.
///
/// `handle = ..` and `uncached = ..` rename the last two, `companions = ".."` sets their
/// visibility (a `pub fn` then need not grow the public API). An item of yours with one of
/// these names is reported by the compiler as defined twice (E0428).
///
/// ```
/// use smartcache::smart_cached;
///
/// #[smart_cached(skip(client))]
/// async fn page(client: &str, id: u32) -> String {
///     format!("{client}/pages/{id}")
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// page_cache().prime((1,), "primed".to_owned());
/// assert_eq!(page("http://a", 1).await, "primed");
/// assert_eq!(page_uncached("http://a", 1).await, "http://a/pages/1");
/// assert!(page_cache().invalidate(&(1,)));
/// let listed = smartcache::registry::snapshot();
/// assert!(listed.iter().any(|cache| cache.name.ends_with("::page")));
/// # }
/// ```
///
/// # Methods
///
/// `#[smart_cached(..)]` on the method is enough: the handle is `Self::<fn>_cache()`, the
/// receiver is part of the key unless skipped. The `impl` block must be inherent, and
/// generic over lifetimes only.
///
/// ```
/// use smartcache::smart_cached;
///
/// #[derive(Clone, PartialEq, Eq, Hash)]
/// struct Region(&'static str);
///
/// struct Catalog {
///     base: String,
/// }
///
/// impl Region {
///     /// The receiver is part of the key: one entry per region and service.
///     #[smart_cached(ttl = "1h")]
///     async fn endpoint(&self, service: &str) -> String {
///         format!("https://{service}.{}.example.com", self.0)
///     }
/// }
///
/// impl Catalog {
///     /// The receiver is left out of the key: one cache for every `Catalog`.
///     #[smart_cached(skip(self), ttl = "1m")]
///     async fn item(&self, sku: u32) -> String {
///         format!("{}/{sku}", self.base)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(Region("eu").endpoint("auth").await, "https://auth.eu.example.com");
/// assert_eq!(Region::endpoint_cache().stats().misses, 1);
/// let catalog = Catalog { base: "shop".into() };
/// assert_eq!(catalog.item(3).await, "shop/3");
/// assert_eq!(Catalog::item_cache().stats().misses, 1);
/// # }
/// ```
///
/// The attribute sees a fn with `self`, or with `Self` in its signature, as a method. An
/// associated fn with neither looks like a free fn to it: put `#[smart_cached]` on the `impl`
/// block too, which then expands each method marked `#[smart_cached(..)]` knowing the `Self`
/// type. Without that, a cache type that names `Self` (the receiver in the key) is held by
/// its static type-erased and found again by a downcast, a nanosecond or two per call (see
/// `docs/design.md`); with it, the static is typed, as for a free fn.
///
/// # Plain fns
///
/// On a fn that is not `async`, the attribute memoizes it through the blocking form
/// (`get_or_compute_blocking`): concurrent calls from several threads share one computation,
/// failures are cached, a panic is raised again in every caller. A fn that returns
/// `impl Future` without being `async` is an error: write it as an `async fn`.
///
/// ```
/// use smartcache::smart_cached;
///
/// #[smart_cached(capacity = 1_000)]
/// fn parse_version(text: &str) -> Option<(u32, u32)> {
///     let (major, minor) = text.split_once('.')?;
///     Some((major.parse().ok()?, minor.parse().ok()?))
/// }
///
/// assert_eq!(parse_version("1.95"), Some((1, 95)));
/// assert_eq!(parse_version("x"), None); // cached too, for `retry`
/// assert_eq!(parse_version_cache().stats().load_failures, 1);
/// ```
///
/// # `#[tracing::instrument]` and other attributes
///
/// Attributes below `#[smart_cached]` are applied to the cached function, those above it see
/// the function before it is expanded, that is the body:
///
/// ```
/// # use smartcache::smart_cached;
/// /// A span for every call, hits included.
/// #[smart_cached]
/// #[tracing::instrument]
/// async fn every_call(id: u32) -> u32 {
///     id
/// }
///
/// /// A span for each computation only.
/// #[tracing::instrument]
/// #[smart_cached]
/// async fn computations(id: u32) -> u32 {
///     id
/// }
/// ```
///
/// # Failing backends
///
/// `retry_max`, `refresh` and `stale_if_error` set the builder's `max_retry_interval`,
/// `refresh_after` and `stale_if_error`. When the fn's error type (the `E` of `Result<T, E>`
/// or of `Result<T, CacheError<E>>`) implements `smartcache::RetryAfter`, the hint of each
/// failure is its retry interval, not jittered, capped by `retry_max` (by `retry` without
/// it): nothing to write in the attribute.
///
/// ```
/// use smartcache::{CacheError, RetryAfter, smart_cached};
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// enum ApiError {
///     RateLimited { secs: u64 },
///     Down,
/// }
///
/// impl RetryAfter for ApiError {
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             Self::RateLimited { secs } => Some(Duration::from_secs(*secs)),
///             Self::Down => None, // `retry`, doubling up to `retry_max`
///         }
///     }
/// }
///
/// #[smart_cached(retry = "30s", retry_max = "10m", ttl = "5m", refresh = "4m", stale_if_error = "1h")]
/// async fn quote(symbol: String) -> Result<u64, CacheError<ApiError>> {
///     Err(ApiError::RateLimited { secs: 90 }.into())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let _ = quote("ACME".into()).await;
/// let cached = quote("ACME".into()).await.unwrap_err();
/// assert!(cached.retry_in().unwrap() > Duration::from_secs(80)); // the hint's 90 s
/// # }
/// ```
///
/// Refresh-ahead runs the body in a background task: it needs the shared form (see below),
/// an `async fn` whose body borrows nothing from its caller and whose future is `Send`;
/// `refresh` on any other fn is a compile error.
///
/// # Concurrent calls and cancellation
///
/// Concurrent calls with the same key share one computation. Whether that computation
/// survives the caller that started it, when that caller is dropped, depends on whether the
/// body borrows from its caller:
///
/// | function | form | a cancelled first caller |
/// |---|---|---|
/// | owned arguments, key references (`&str` in the key), `self` by value, `self: Arc<Self>` | shared (`get_or_compute_shared`) | the computation goes on for the others, never restarted |
/// | `&self`, `&mut self`, or a skipped reference argument | borrowing (`get_or_compute`) | a waiting caller takes over and computes again |
/// | a body whose future is not `Send` (it holds an `Rc` across an `.await`) | borrowing | as above |
///
/// The shared form moves the body into the flight, so its future must be `Send + 'static`:
/// key references are copied for it. When the body's future is not `Send`, the borrowing
/// form is chosen instead, at compile time, so that such functions (for a `LocalSet`, say)
/// still work. When every caller is gone, the computation is dropped and the next call
/// starts afresh.
///
/// # Panics
///
/// A panic in the body stores nothing. With `Result<T, CacheError<E>>`, callers receive
/// `CacheError::Panicked`; in the other modes, where there is no error to carry it, the
/// panic is raised again in every caller of that computation.
///
/// # Recursion
///
/// A cached function may call itself (box the recursive future as usual); each call goes
/// through the cache, so a memoized Fibonacci is linear:
///
/// ```
/// use smartcache::smart_cached;
///
/// #[smart_cached]
/// async fn fib(n: u64) -> u64 {
///     if n < 2 {
///         return n;
///     }
///     Box::pin(fib(n - 1)).await + Box::pin(fib(n - 2)).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(fib(90).await, 2_880_067_194_370_816_120);
/// assert_eq!(fib_cache().stats().load_successes, 91);
/// # }
/// ```
///
/// # Compile errors
///
/// A fn returning `impl Future` without `async`, type-generic functions or `impl` blocks,
/// trait `impl`s, `impl Trait` arguments, unknown or repeated options (the `cached` crate's
/// with the smartcache spelling as the hint), bad durations and literals, `skip` of an
/// unknown argument or next to a custom `key`, `retry`, `retry_max` or `stale_if_error` on a
/// function that cannot fail, `refresh` not shorter than `ttl` (or on a fn that cannot
/// refresh in the background), `stale_if_error` without `ttl`, `retry_max` shorter than
/// `retry` or with `retry = "0s"`, zero `refresh`, `retry_max` and `stale_if_error`, a
/// companion named like the fn, and `Box<dyn Error>` without `Send + Sync` are reported by
/// the macro. A key, value or error type that cannot be cached is reported by the compiler,
/// once, on the argument or return type, with the fix (`skip(pool)`, `skip(self)`, ..); a
/// body whose future is not `Send` next to `refresh`, on the `refresh` option.
///
/// # Limits
///
/// - The generated code refers to the runtime as `::smartcache`: the dependency cannot be
///   renamed.
/// - In an `impl` block under the attribute, cached methods are found by the attribute's
///   last path segment, `smart_cached`: do not import it under another name.
/// - The attribute on a method cannot tell an inherent `impl` from a trait `impl`, nor see a
///   generic one: in a trait `impl`, the companions are reported as not members of the
///   trait. In a generic `impl`, a method whose key holds `Self` gets a cache per
///   instantiation (the later ones found under a lock, a slow path); otherwise the cache is
///   one static for every instantiation, and one whose type names a type parameter is
///   refused by the compiler (E0401).
/// - A type with a hidden lifetime (`Formatter` for `Formatter<'_>`) cannot be seen as
///   borrowing; write the lifetime.
#[proc_macro_attribute]
pub fn smart_cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::smart_cached(args.into(), item.into()).into()
}
