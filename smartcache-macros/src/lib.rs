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

/// Memoizes an `async fn`: every call goes through a generated static
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
///
/// Durations are parsed at compile time: `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"2d"`. A
/// mistake in the options is a compile error on the offending token, and all of them are
/// reported at once.
///
/// # The key
///
/// Every argument not skipped, the receiver included, makes up the key, as a tuple in the
/// order of the arguments: `fn f(a: u64, b: &str)` is keyed by `(u64, String)`, and
/// `fn g(id: u64)` by `(u64,)`. Reference arguments are stored owned: `&str` as `String`,
/// `&[T]` as `Vec<T>`, `&Path`, `&OsStr`, `&CStr` as `PathBuf`, `OsString`, `CString`, and
/// `&T` as `T`. A key argument must be `Hash + Eq + Clone + Send + Sync + 'static`; a `&mut`
/// argument or one that holds a borrow (`Option<&str>`) must be skipped.
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
/// | anything else | cannot fail: the value is cached | `AsyncSmartCache<K, T>` |
///
/// With `Result<T, CacheError<E>>`, `?` works on an `E` inside the body, and on the
/// `CacheError<E>` of another cached function (it is passed on as it is). `CacheError`
/// must be spelled out in the return type: through an alias, the error is taken as an
/// opaque `E`, cloned. Aliases whose error is not `Clone` (`std::io::Result`,
/// `anyhow::Result`) are a compile error that says to return `Result<T, CacheError<E>>`.
///
/// # Generated items
///
/// For `async fn fetch(..)`, with the function's visibility and `#[cfg]`:
///
/// - `fetch`: the cached function, with the original signature, documentation and
///   attributes (`#[must_use]`, `#[tracing::instrument]`, ..);
/// - `fetch_cache()`: `&'static AsyncSmartCache<..>` for statistics, invalidation and
///   priming; built on first use, when it is also registered in `smartcache::registry`;
/// - `fetch_uncached(..)`: the original body, run without the cache.
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
/// Put `#[smart_cached]` on the `impl` block too (it needs the `Self` type, which a method
/// alone cannot see), and `#[smart_cached(..)]` on each method to cache. The handle is
/// `Self::<fn>_cache()`. The block must be an inherent, non-generic `impl`.
///
/// ```
/// use smartcache::smart_cached;
///
/// struct Catalog {
///     base: String,
/// }
///
/// #[smart_cached]
/// impl Catalog {
///     /// The receiver is left out of the key: one cache for every `Catalog`.
///     #[smart_cached(skip(self), ttl = "1m")]
///     async fn item(&self, sku: u32) -> String {
///         format!("{}/{sku}", self.base)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let catalog = Catalog { base: "shop".into() };
/// assert_eq!(catalog.item(3).await, "shop/3");
/// assert_eq!(Catalog::item_cache().stats().misses, 1);
/// # }
/// ```
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
/// Not `async`, generic functions or `impl` blocks, trait `impl`s, `impl Trait` arguments,
/// unknown or repeated options, bad durations and literals, `skip` of an unknown argument,
/// `retry` on a function that cannot fail, and a method without the `impl` attribute are
/// reported by the macro. A key, value or error type that cannot be cached is reported by
/// the compiler on the argument or return type, with a hint.
///
/// # Limits
///
/// - The generated code refers to the runtime as `::smartcache`: the dependency cannot be
///   renamed.
/// - In an `impl` block, cached methods are found by the attribute's last path segment,
///   `smart_cached`: do not import it under another name.
/// - A type with a hidden lifetime (`Formatter` for `Formatter<'_>`) cannot be seen as
///   borrowing; write the lifetime.
#[proc_macro_attribute]
pub fn smart_cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::smart_cached(args.into(), item.into()).into()
}
