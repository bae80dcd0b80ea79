//! A hit through `#[smart_cached]` allocates nothing when the key is the argument tuple: the
//! key is looked up borrowed (`KeyRef((&id, name))`), and the owned key (a `String` for a
//! `&str`, a clone of a by-value argument) is built on a miss only.
//!
//! Counted with a global allocator that counts every thread: one test, on a current-thread
//! runtime, so that nothing else allocates while a hit is measured. Each fn is called once
//! (a miss, which allocates), then its hits are counted.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use smartcache::{CacheError, smart_cached};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Allocations (and reallocations) so far, on every thread.
fn allocations() -> usize {
    let stats = INSTRUMENTED_SYSTEM.stats();
    stats.allocations + stats.reallocations
}

/// Hits measured per fn.
const HITS: usize = 10;

/// How many allocations `HITS` calls of `$call` make, after one call that fills the cache.
/// With `arg = prepare;`, `$call` takes an `arg` built by `prepare` before the count starts
/// (a `String` moved into the call is the caller's allocation, not the cache's).
macro_rules! hit_allocations {
    ($arg:ident = $prepare:expr; $call:expr) => {{
        let first = {
            let $arg = $prepare;
            $call
        };
        let mut args: Vec<_> = (0..HITS).map(|_| $prepare).collect();
        let before = allocations();
        for $arg in args.drain(..) {
            assert_eq!($call, first);
        }
        allocations() - before
    }};
    ($call:expr) => {
        hit_allocations!(_none = (); $call)
    };
}

#[smart_cached]
async fn by_str(name: &str) -> usize {
    name.len()
}

#[smart_cached]
async fn by_string(name: String) -> usize {
    name.len()
}

#[smart_cached]
async fn by_id(id: u64) -> u64 {
    id * 2
}

#[smart_cached]
async fn mixed(id: u64, name: &str, tag: String, path: &Path, bytes: &[u8]) -> u64 {
    id + (name.len() + tag.len() + path.as_os_str().len() + bytes.len()) as u64
}

/// A body whose future is not `Send`: the local route (`get_or_compute_ref`).
#[smart_cached]
async fn local_route(name: &str, tag: String) -> usize {
    let not_send = Rc::new(name.len() + tag.len());
    tokio::task::yield_now().await;
    *not_send
}

#[smart_cached]
async fn fallible(name: &str) -> Result<u64, CacheError<String>> {
    Ok(name.len() as u64)
}

#[smart_cached]
async fn transparent(name: String) -> Result<u64, String> {
    Ok(name.len() as u64)
}

#[smart_cached]
async fn optional(name: &str) -> Option<u64> {
    Some(name.len() as u64)
}

/// A sync fn: `get_or_compute_blocking_ref`.
#[allow(clippy::needless_pass_by_value)] // a `String` moved in, as its callers do
#[smart_cached]
fn blocking(name: &str, tag: String) -> usize {
    name.len() + tag.len()
}

#[smart_cached(skip(pool))]
async fn skipped(pool: &[String], name: &str) -> usize {
    pool.len() + name.len()
}

/// Seven key parts: more than `KeyRef` takes, looked up owned.
#[allow(clippy::too_many_arguments)]
#[smart_cached]
async fn seven(name: &str, n1: u8, n2: u8, n3: u8, n4: u8, n5: u8, n6: u8) -> usize {
    name.len() + usize::from(n1 + n2 + n3 + n4 + n5 + n6)
}

/// A custom key: built by its expression on every call.
#[smart_cached(key: String = (*name).to_owned())]
async fn custom(name: &str) -> usize {
    name.len()
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Account {
    name: String,
}

#[smart_cached]
impl Account {
    /// `&self` in the key: the receiver is its own borrowed form.
    #[smart_cached]
    async fn label(&self, suffix: &str) -> usize {
        self.name.len() + suffix.len()
    }

    /// `self` by value in the key: borrowed for the lookup, cloned for the body on a miss.
    #[smart_cached]
    async fn owned_label(self, id: u64) -> u64 {
        self.name.len() as u64 + id
    }

    #[smart_cached]
    async fn shared_label(self: Arc<Self>) -> usize {
        self.name.len()
    }
}

/// A method seen without its `impl` block: the cache is found through `ErasedCache`.
struct Erased;

impl Erased {
    #[smart_cached]
    async fn length(name: &str, other: Self) -> usize {
        let _ = other;
        name.len()
    }
}

impl Clone for Erased {
    fn clone(&self) -> Self {
        Self
    }
}
impl PartialEq for Erased {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Erased {}
impl std::hash::Hash for Erased {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

#[test]
fn a_hit_through_the_attribute_allocates_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let name: &str = "ada lovelace";
    let tag = String::from("mathematician");
    let path = PathBuf::from("/analytical/engine");
    let pool = vec![String::from("db")];
    let account = Account {
        name: String::from("ada"),
    };
    let shared_account = Arc::new(account.clone());

    // The blocking form, outside any runtime.
    let blocking_hits = hit_allocations!(tag = tag.clone(); blocking(name, tag));

    let counts = runtime.block_on(async {
        [
            ("&str", hit_allocations!(by_str(name).await)),
            (
                "String",
                hit_allocations!(tag = tag.clone(); by_string(tag).await),
            ),
            ("u64", hit_allocations!(by_id(7).await)),
            (
                "mixed",
                hit_allocations!(tag = tag.clone(); mixed(7, name, tag, &path, b"xyz").await),
            ),
            (
                "local route",
                hit_allocations!(tag = tag.clone(); local_route(name, tag).await),
            ),
            ("CacheError", hit_allocations!(fallible(name).await)),
            (
                "transparent",
                hit_allocations!(tag = tag.clone(); transparent(tag).await),
            ),
            ("Option", hit_allocations!(optional(name).await)),
            ("skipped", hit_allocations!(skipped(&pool, name).await)),
            ("&self", hit_allocations!(account.label(name).await)),
            (
                "self",
                hit_allocations!(account = account.clone(); account.owned_label(1).await),
            ),
            (
                "Arc<Self>",
                hit_allocations!(account = Arc::clone(&shared_account); {
                    account.shared_label().await
                }),
            ),
            (
                "ErasedCache",
                hit_allocations!(Erased::length(name, Erased).await),
            ),
            ("blocking", blocking_hits),
            (
                "7 parts",
                hit_allocations!(seven(name, 1, 2, 3, 4, 5, 6).await),
            ),
            ("custom key", hit_allocations!(custom(name).await)),
        ]
    });
    let expected = [
        ("&str", 0),
        ("String", 0),
        ("u64", 0),
        ("mixed", 0),
        ("local route", 0),
        ("CacheError", 0),
        ("transparent", 0),
        ("Option", 0),
        ("skipped", 0),
        ("&self", 0),
        ("self", 0),
        ("Arc<Self>", 0),
        ("ErasedCache", 0),
        ("blocking", 0),
        // Looked up owned: the key's `String`, built on every call (which also shows that
        // the count sees what a hit allocates).
        ("7 parts", HITS),
        ("custom key", HITS),
    ];
    assert_eq!(counts, expected, "allocations in {HITS} hits");

    stored_keys_are_owned(name, &tag, &path, &account);
}

/// The stored keys are the owned tuples, as before; one miss each, then the hits.
fn stored_keys_are_owned(name: &str, tag: &str, path: &Path, account: &Account) {
    // Counted first: `get` counts too.
    for stats in [
        by_str_cache().stats(),
        mixed_cache().stats(),
        blocking_cache().stats(),
    ] {
        assert_eq!((stats.misses, stats.hits), (1, HITS as u64));
    }

    assert_eq!(by_str_cache().get(&(name.to_owned(),)), Some(name.len()));
    assert_eq!(by_string_cache().get(&(tag.to_owned(),)), Some(tag.len()));
    let mixed_key = (
        7,
        name.to_owned(),
        tag.to_owned(),
        path.to_owned(),
        b"xyz".to_vec(),
    );
    assert!(mixed_cache().get(&mixed_key).is_some());
    assert_eq!(
        Account::label_cache().get(&(account.clone(), name.to_owned())),
        Some(15)
    );
    assert_eq!(
        Account::owned_label_cache().get(&(account.clone(), 1)),
        Some(4)
    );
    assert_eq!(
        blocking_cache().get(&(name.to_owned(), tag.to_owned())),
        Some(25)
    );
}
