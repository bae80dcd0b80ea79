//! The README and the guides are doctested here rather than in `smartcache`: they live
//! outside its package directory, so an `include_str!` there would break the packaged
//! crate. Their Rust blocks compile and run with `cargo test --workspace --all-features`
//! (blocks under `#[cfg(feature = "serde")]` or `"metrics"` need this crate's features of
//! those names, which `--all-features` turns on).

#[doc = include_str!("../../README.md")]
struct Readme;

#[doc = include_str!("../../docs/guide.md")]
struct Guide;

#[doc = include_str!("../../docs/migration.md")]
struct Migration;
