//! A shared tier on Redis (feature `redis`): every process of a fleet shares one
//! computation and one cached failure per key.
//!
//! Connect a [`RedisTier`] (one multiplexed RESP3 connection per process, reconnecting on its
//! own, behind a circuit breaker) and put a cache on it with the builder's
//! [`shared`](crate::AsyncSmartCacheBuilder::shared). A local miss, in any form of call,
//! then asks the fleet first: a usable entry (a value, or a failure inside its retry window) answers at
//! once; otherwise the call takes the key's lease and computes, renewing the lease while it
//! runs, and commits the result for every process; the other processes wait for that
//! commit. `invalidate` and `clear` reach every process's local copies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), smartcache::redis::RedisTierError> {
//! use smartcache::AsyncSmartCache;
//! use smartcache::redis::RedisTier;
//!
//! let tier = RedisTier::connect("redis://127.0.0.1:6379").await?;
//! let prices: AsyncSmartCache<String, u64, String> =
//!     AsyncSmartCache::builder().name("prices").shared(tier.clone()).build();
//! let price = prices
//!     .get_or_compute_shared("ACME".to_owned(), || async { Ok(101) })
//!     .await;
//! # drop(price); Ok(()) }
//! ```
//!
//! Nothing here fails a call because Redis is down: every command has a short timeout, a
//! fault counts towards the breaker, and while it is open the cache runs local-only.
//!
//! `#[smart_cached(shared)]` puts a generated cache on the tier installed with [`install`]
//! (local-only, said once in a `tracing` event, when none is).
//!
//! Every form of call goes through the tier on a local miss; a hit on the local copy costs
//! what a local hit does. See `docs/design.md`, "Shared tier", for the protocol and its
//! failure modes.

pub(crate) mod attribute;
mod breaker;
mod envelope;
mod protocol;
pub(crate) mod shared;
mod tier;

pub use tier::{RedisTier, RedisTierError, TierConfig, TierStats, install, installed};

#[cfg(test)]
mod tests;
