//! `#[smart_cached]` on methods, with the attribute on the `impl` block too or on the method
//! alone: the receiver in the key or skipped, `Self::<fn>_cache()`, associated functions,
//! receivers by value, argument patterns.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use smartcache::{CacheError, smart_cached};
use tokio::sync::Semaphore;

mod macro_support;
use macro_support::until;

/// A value receiver: part of the key unless skipped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Region(&'static str);

static REGION_RUNS: AtomicUsize = AtomicUsize::new(0);

#[smart_cached]
impl Region {
    /// The price of `item` in this region.
    #[smart_cached]
    async fn price(&self, item: u32) -> u64 {
        REGION_RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        u64::from(item) * self.0.len() as u64
    }

    fn name(&self) -> &'static str {
        self.0
    }
}

#[tokio::test]
async fn the_receiver_is_part_of_the_key() {
    let eu = Region("eu");
    let asia = Region("asia");
    assert_eq!(eu.price(10).await, 20);
    assert_eq!(eu.clone().price(10).await, 20);
    assert_eq!(asia.price(10).await, 40);
    assert_eq!(REGION_RUNS.load(SeqCst), 2);
    assert_eq!(Region::price_cache().get(&(Region("eu"), 10)), Some(20));
    assert_eq!(eu.name(), "eu", "unmarked methods are kept");
}

/// A service holding a client: left out of the key with `skip(self)`.
struct Service {
    runs: AtomicUsize,
    base: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NotFound(u64);

#[smart_cached]
impl Service {
    #[smart_cached(skip(self), retry = "1m", name = "service::user")]
    pub(crate) async fn user(&self, id: u64) -> Result<String, CacheError<NotFound>> {
        self.runs.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        if id == 0 {
            return Err(NotFound(id).into());
        }
        Ok(format!("{}/{id}", self.base))
    }

    /// An associated function: no receiver.
    #[smart_cached]
    async fn version(major: u8) -> String {
        tokio::task::yield_now().await;
        format!("v{major}")
    }

    /// Reads its own handle through `Self::`.
    fn user_loads() -> u64 {
        Self::user_cache().stats().load_successes
    }
}

#[tokio::test]
async fn a_skipped_receiver_shares_one_cache_between_instances() {
    let first = Service {
        runs: AtomicUsize::new(0),
        base: "one".into(),
    };
    let second = Service {
        runs: AtomicUsize::new(0),
        base: "two".into(),
    };
    assert_eq!(first.user(5).await.unwrap(), "one/5");
    assert_eq!(second.user(5).await.unwrap(), "one/5");
    assert!(first.user(0).await.is_err());
    assert!(second.user(0).await.unwrap_err().is_cached());
    assert_eq!(first.runs.load(SeqCst), 2);
    assert_eq!(second.runs.load(SeqCst), 0);
    assert_eq!(Service::user_loads(), 1);
    assert_eq!(first.user_uncached(5).await.unwrap(), "one/5");
    assert_eq!(first.runs.load(SeqCst), 3, "the uncached method runs");
    let listed = smartcache::registry::find("service::user").expect("registered");
    assert_eq!(listed.load_failures, 1);
}

#[tokio::test]
async fn associated_functions_are_cached_and_registered_with_their_type() {
    assert_eq!(Service::version(2).await, "v2");
    assert_eq!(Service::version(2).await, "v2");
    let stats = Service::version_cache().stats();
    assert_eq!((stats.misses, stats.hits), (1, 1));
    assert!(smartcache::registry::find("macro_methods::Service::version").is_some());
}

/// Receivers by value: the body owns everything, so it runs as a shared computation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Query {
    text: String,
}

static QUERY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[smart_cached]
impl Query {
    #[smart_cached]
    async fn run(self, limit: usize) -> Vec<String> {
        QUERY_RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        self.text
            .split(' ')
            .take(limit)
            .map(str::to_owned)
            .collect()
    }

    #[smart_cached]
    async fn shared(self: Arc<Self>, upper: bool) -> String {
        tokio::task::yield_now().await;
        if upper {
            self.text.to_uppercase()
        } else {
            self.text.clone()
        }
    }
}

#[tokio::test]
async fn receivers_by_value_and_arc() {
    let query = Query {
        text: "a b c".into(),
    };
    assert_eq!(query.clone().run(2).await, ["a", "b"]);
    assert_eq!(query.clone().run(2).await, ["a", "b"]);
    assert_eq!(QUERY_RUNS.load(SeqCst), 1);
    let shared = Arc::new(query);
    assert_eq!(Arc::clone(&shared).shared(true).await, "A B C");
    assert_eq!(
        Query::shared_cache().get(&(shared, true)).as_deref(),
        Some("A B C")
    );
}

static PATTERN_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Arguments given as patterns, `mut` bindings and `_`-prefixed names.
#[smart_cached]
async fn area((width, height): (u32, u32), mut scale: u32, _unit: char) -> u32 {
    PATTERN_RUNS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    scale += 1;
    width * height * scale
}

#[tokio::test]
async fn argument_patterns_stay_on_the_body() {
    assert_eq!(area((2, 3), 1, 'm').await, 12);
    assert_eq!(area((2, 3), 1, 'm').await, 12);
    assert_eq!(area((2, 3), 1, 'c').await, 12);
    assert_eq!(PATTERN_RUNS.load(SeqCst), 2, "every argument is in the key");
    assert!(area_cache().get(&((2, 3), 1, 'c')).is_some());
}

// The attribute on the method alone: no `#[smart_cached]` on the `impl` block.

/// A key receiver, its `impl` block unmarked: the cache type names `Self`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shelf(u32);

static SHELF_RUNS: AtomicUsize = AtomicUsize::new(0);
static SHELF_GATE: Semaphore = Semaphore::const_new(0);

impl Shelf {
    /// The receiver is part of the key.
    #[smart_cached]
    async fn count(&self, kind: &str) -> usize {
        SHELF_RUNS.fetch_add(1, SeqCst);
        SHELF_GATE.acquire().await.expect("open").forget();
        self.0 as usize * kind.len()
    }

    /// The receiver by value, an `Arc` receiver: the shared route, through associated
    /// helpers.
    #[smart_cached]
    async fn label(self: Arc<Self>, upper: bool) -> String {
        tokio::task::yield_now().await;
        if upper {
            format!("SHELF {}", self.0)
        } else {
            format!("shelf {}", self.0)
        }
    }

    /// `Self` in the return type, no receiver: still a method.
    #[smart_cached]
    async fn numbered(number: u32) -> Self {
        Self(number)
    }

    /// A skipped receiver: the cache type does not name `Self`.
    #[smart_cached(skip(self), name = "shelf::size")]
    async fn size(&self, factor: u32) -> u32 {
        factor * 10
    }
}

#[tokio::test]
async fn a_method_with_the_attribute_alone_has_one_cache_shared_by_its_callers() {
    let callers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async { Shelf(3).count("ab").await }))
        .collect();
    until(|| Shelf::count_cache().stats().misses == 4).await;
    assert_eq!(SHELF_RUNS.load(SeqCst), 1, "one computation for the herd");
    SHELF_GATE.add_permits(1);
    for caller in callers {
        assert_eq!(caller.await.expect("no panic"), 6);
    }
    assert_eq!(Shelf(3).count("ab").await, 6, "a hit");
    SHELF_GATE.add_permits(1);
    assert_eq!(
        Shelf(4).count("ab").await,
        8,
        "another receiver, another key"
    );
    assert_eq!(SHELF_RUNS.load(SeqCst), 2);
    let stats = Shelf::count_cache().stats();
    assert_eq!(
        (stats.load_successes, stats.coalesced, stats.hits),
        (2, 3, 1)
    );
    assert_eq!(
        Shelf::count_cache().get(&(Shelf(3), "ab".to_owned())),
        Some(6)
    );
    let listed = smartcache::registry::find("macro_methods::Shelf::count").expect("registered");
    assert_eq!(listed.load_successes, 2);
}

#[tokio::test]
async fn methods_with_the_attribute_alone_take_every_receiver_form() {
    let shelf = Arc::new(Shelf(7));
    assert_eq!(Arc::clone(&shelf).label(true).await, "SHELF 7");
    assert_eq!(Arc::clone(&shelf).label(true).await, "SHELF 7");
    assert_eq!(Shelf::label_cache().stats().hits, 1);
    assert_eq!(Shelf::numbered(5).await, Shelf(5));
    assert_eq!(Shelf::numbered_cache().get(&(5,)), Some(Shelf(5)));
    assert_eq!(Shelf(1).size(2).await, 20);
    assert_eq!(Shelf(9).size(2).await, 20, "the receiver is skipped");
    assert_eq!(Shelf::size_cache().stats().hits, 1);
    assert!(smartcache::registry::find("shelf::size").is_some());
    assert_eq!(Shelf(1).size_uncached(3).await, 30);
}

/// A generic `impl`, which the attribute on a method cannot see: with the receiver in the
/// key, one type-erased static serves every instantiation, each with its own cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Tagged<T>(T);

impl<T: Clone + Eq + std::hash::Hash + Send + Sync + 'static> Tagged<T> {
    #[smart_cached]
    async fn size(&self) -> usize {
        size_of::<T>()
    }
}

#[tokio::test]
async fn each_instantiation_of_a_generic_impl_gets_its_own_cache() {
    assert_eq!(Tagged(1_u8).size().await, 1);
    assert_eq!(Tagged(1_u64).size().await, 8);
    assert_eq!(Tagged(1_u8).size().await, 1);
    assert_eq!(Tagged(1_u64).size().await, 8);
    let (bytes, words) = (Tagged::<u8>::size_cache(), Tagged::<u64>::size_cache());
    assert_eq!((bytes.stats().hits, bytes.stats().misses), (1, 1));
    assert_eq!((words.stats().hits, words.stats().misses), (1, 1));
    assert_eq!(bytes.get(&(Tagged(1),)), Some(1));
    assert_eq!(words.get(&(Tagged(1),)), Some(8));
}

struct Renamed;

impl Renamed {
    /// Companions of a method under other names.
    #[smart_cached(skip(self), handle = totals, uncached = total_now)]
    async fn total(&self, n: u32) -> u32 {
        n + 1
    }
}

#[tokio::test]
async fn a_method_s_companions_take_the_names_given() {
    assert_eq!(Renamed.total(1).await, 2);
    assert_eq!(Renamed.total(1).await, 2);
    assert_eq!(Renamed::totals().stats().hits, 1);
    assert_eq!(Renamed.total_now(5).await, 6);
}

/// A client passed by value and left out of the key: the generated fn hands it to the body
/// under a name of its own (no closure can take `self`).
struct Client {
    calls: AtomicUsize,
}

impl Client {
    #[smart_cached(skip(self))]
    async fn double(self: Arc<Self>, id: u64) -> u64 {
        self.calls.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        id * 2
    }
}

#[tokio::test]
async fn a_skipped_receiver_by_value_reaches_the_body() {
    let client = Arc::new(Client {
        calls: AtomicUsize::new(0),
    });
    assert_eq!(Arc::clone(&client).double(21).await, 42);
    assert_eq!(Arc::clone(&client).double(21).await, 42, "a hit");
    assert_eq!(Arc::clone(&client).double(4).await, 8);
    assert_eq!(client.calls.load(SeqCst), 2);
    assert_eq!(Client::double_cache().get(&(21,)), Some(42));
}
