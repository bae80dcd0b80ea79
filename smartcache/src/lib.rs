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
//! - **Failing backends**: per-key retry backoff with jitter (or the error's own
//!   [`RetryAfter`] hint), refresh-ahead in the background, and stale-if-error (the last
//!   good value, told apart by [`Served`]); see the builder's
//!   [`max_retry_interval`](AsyncSmartCacheBuilder::max_retry_interval),
//!   [`refresh_after`](AsyncSmartCacheBuilder::refresh_after) and
//!   [`stale_if_error`](AsyncSmartCacheBuilder::stale_if_error).
//! - **Cancellation and progress**: dropping a caller, the first one included, never stalls
//!   or fails the others; a shared computation runs in a task of its own, so a caller that
//!   is never polled again holds nobody up (see [`AsyncSmartCache#cancellation`]).
//! - **No deadlock on reentrancy**: a computation that would wait for its own key is
//!   answered [`CacheError::Cycle`].
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
//! | [`get_or_compute_shared`](AsyncSmartCache::get_or_compute_shared) | `Send + 'static` future | nothing changes: a task drives it (outside a runtime, a waiter continues the same future) |
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
//! | `redis` | no | the module `smartcache::redis` (not linked here: it exists only with the feature): a shared tier on Redis, the builder's `.shared(tier)` (one computation and one cached failure per key across processes) | redis-rs and `rmp-serde`; a round trip per shared-form miss; needs Rust 1.88 (redis-rs's MSRV) rather than 1.85 |
//! | `anyhow` | no | `#[smart_cached]` on fns returning `anyhow::Result<T>`; `CacheError::<anyhow::Error>::into_anyhow` | compile time of `anyhow` only |
// docs.rs (`--cfg docsrs`, see `[package.metadata.docs.rs]`): a badge on every item that
// needs a feature. Nightly only, hence the cfg; stable builds never see it.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

// First, on its own: rustdoc lists a type's impl blocks in the order it meets them, so the
// core methods (`new`, `builder`, `get_or_compute`, ..) come before the blocking and
// infallible forms of `blocking.rs`.
mod cache;

#[cfg(feature = "anyhow")]
mod anyhow_impl;
mod blocking;
mod blocks;
mod builder;
mod clock;
mod engine;
mod error;
mod error_glue;
mod expiry;
mod fitness;
mod flight;
mod hasher;
mod key;
mod listener;
#[cfg(feature = "metrics")]
pub mod metrics;
mod minisim;
mod policy;
mod reclaim;
#[cfg(feature = "redis")]
pub mod redis;
mod reentry;
pub mod registry;
mod resilience;
mod sched;
#[cfg(feature = "serde")]
mod serde_impl;
mod shard_map;
#[cfg(all(test, shuttle))]
mod shuttle_tests;
mod sketch;
mod stats;
mod store;
mod trace;
mod tuner;

pub use builder::{AsyncSmartCacheBuilder, DEFAULT_ABANDON_AFTER, DEFAULT_RETRY_INTERVAL};
pub use cache::AsyncSmartCache;
pub use error::CacheError;
pub use hasher::KeyHasher;
pub use key::{BorrowedKey, KeyRef};
pub use listener::RemovalCause;
pub use resilience::{Absent, RetryAfter, Served};
pub use stats::{CacheStats, SharedStats};
pub use store::DEFAULT_MAX_CACHED_ERRORS;

#[cfg(feature = "macros")]
pub use smartcache_macros::smart_cached;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

// The README and the guides are doctested by the unpublished `tests` member
// (`tests/src/markdown.rs`): they live outside this package, which must build and test on
// its own once packaged.
