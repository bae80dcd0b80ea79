//! The `#[smart_cached]` attribute of [smartcache](https://docs.rs/smartcache).
//!
//! Use it through `smartcache::smart_cached`; this crate is an implementation detail.
