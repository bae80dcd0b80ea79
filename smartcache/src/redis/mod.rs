//! A shared tier on Redis (feature `redis`): the protocol that lets every process of a
//! fleet share one computation and one cached failure per key.
//!
//! This release has the tier's foundation: [`RedisTier`] (one multiplexed RESP3 connection
//! per process, reconnecting on its own, behind a circuit breaker), the process-wide
//! [`install`], and the protocol the caches will speak (leases taken and renewed by token,
//! commits by compare-and-set, entries in a versioned envelope stamped with Redis's clock,
//! events that wake waiters and fan invalidations out). Wiring it into
//! [`AsyncSmartCache`](crate::AsyncSmartCache) (the builder's `.shared(tier)`) comes next;
//! see `docs/design.md`, "Shared tier".
//!
//! Nothing here fails a call because Redis is down: every command has a short timeout, a
//! fault counts towards the breaker, and an open breaker answers "degraded" at once.

// The protocol's operations are called by the caches from the next step on (`.shared`);
// until then only the tests call them.
#![allow(dead_code)]

mod breaker;
mod envelope;
mod protocol;
mod tier;

pub use tier::{RedisTier, RedisTierError, TierConfig, TierStats, install, installed};

#[cfg(test)]
mod tests;
