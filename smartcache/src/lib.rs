//! Async memoization for Rust: one computation per key at a time, failures remembered and
//! handed back until a retry interval has passed, optional time to live and capacity, and
//! statistics for every cache.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use smartcache::{AsyncSmartCache, CacheError};
//! use std::time::Duration;
//!
//! let cache: AsyncSmartCache<u64, String, String> = AsyncSmartCache::builder()
//!     .retry_interval(Duration::from_secs(300))
//!     .time_to_live(Duration::from_secs(600))
//!     .name("users")
//!     .build();
//!
//! let user = cache.get_or_compute(1, || async { Ok(format!("user {}", 1)) }).await;
//! assert_eq!(user.unwrap(), "user 1");
//! assert_eq!(cache.stats().load_successes, 1);
//! # }
//! ```
//!
//! # What a cache guarantees
//!
//! - **Single-flight per key**: concurrent calls for a missing key share one computation;
//!   distinct keys compute in parallel; a hit never waits on any computation.
//! - **Error caching**: a failure is stored with its original error (shared as `Arc<E>`)
//!   and answered as [`CacheError::Cached`] until the retry interval has passed since it
//!   failed, on tokio's monotonic clock.
//! - **Cancellation**: dropping a caller, the first one included, never stalls or fails the
//!   others (see [`AsyncSmartCache#cancellation`]).
//! - **Panics** are caught: every caller of the flight gets [`CacheError::Panicked`],
//!   nothing is stored, the cache keeps working.
//! - **No stale resurrection**: after `invalidate`, `clear` or `prime` returns, no flight
//!   that started earlier stores its result.
//! - **Statistics** that add up ([`CacheStats`]), and a [`registry`] of named caches.
//!
//! # Forms of call
//!
//! | method | computation | cancelled driver |
//! |---|---|---|
//! | [`get_or_compute`](AsyncSmartCache::get_or_compute) | any future, may borrow | a waiter runs its own |
//! | [`get_or_compute_shared`](AsyncSmartCache::get_or_compute_shared) | `Send + 'static` future | a waiter continues the same future |
//! | [`get_or_compute_sync`](AsyncSmartCache::get_or_compute_sync) | a plain function | a waiter runs its own |
//! | [`get_or_compute_blocking`](AsyncSmartCache::get_or_compute_blocking) | a plain function, no async caller | (blocks the thread) |
//! | [`get_or_init`](AsyncSmartCache::get_or_init) | a future that cannot fail | a waiter runs its own |
//!
//! # Features
//!
//! | feature | default | what it adds | cost |
//! |---|---|---|---|
//! | `macros` | yes | the `#[smart_cached]` attribute | compile time of `syn`; none at run time |
//! | `tracing` | no | `tracing` events on the slow path, target `smartcache`, with the cache name (keys only after the builder's `trace_keys`) | a few ns per miss when no subscriber listens; nothing on hits |
//! | `metrics` | no | `metrics::publish()`: every registered cache's figures through the `metrics` facade, labelled by name | nothing on the request path; `publish` walks the registry |
//! | `serde` | no | `Serialize` for [`CacheStats`] and [`registry::RegisteredCache`] | compile time of `serde` only |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod blocking;
mod blocks;
mod builder;
mod cache;
mod clock;
mod error;
mod expiry;
mod flight;
mod hasher;
mod key;
mod listener;
#[cfg(feature = "metrics")]
pub mod metrics;
mod policy;
pub mod registry;
#[cfg(feature = "serde")]
mod serde_impl;
mod stats;
mod store;
mod trace;

pub use builder::{AsyncSmartCacheBuilder, DEFAULT_RETRY_INTERVAL};
pub use cache::AsyncSmartCache;
pub use error::CacheError;
pub use hasher::KeyHasher;
pub use key::{BorrowedKey, KeyRef};
pub use listener::RemovalCause;
pub use stats::CacheStats;
pub use store::DEFAULT_MAX_CACHED_ERRORS;

#[cfg(feature = "macros")]
pub use smartcache_macros::smart_cached;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

// The README and the guides are doctested: their Rust blocks compile and run with the tests.
#[cfg(all(doctest, feature = "macros"))]
mod markdown_doctests {
    #[doc = include_str!("../../README.md")]
    struct Readme;
    #[doc = include_str!("../../docs/guide.md")]
    struct Guide;
    #[doc = include_str!("../../docs/migration.md")]
    struct Migration;
}
