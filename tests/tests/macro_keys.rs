//! What makes up the key of a `#[smart_cached]` fn beyond the argument tuple: a custom
//! `key: Type = expr`, `skip` of names bound in argument patterns (axum's extractors),
//! lifetime parameters; and the companions' names and visibility.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use smartcache::smart_cached;

/// An axum-like extractor: the state is destructured in the argument pattern.
struct State<S>(S);

struct AppState {
    region: &'static str,
}

#[tokio::test]
async fn a_custom_key_replaces_the_argument_tuple() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    /// Keyed by the tenant alone: the request id does not matter.
    #[smart_cached(key: String = format!("{tenant}/{}", state.region))]
    async fn quota(tenant: &str, _request: u64, State(state): State<&AppState>) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        tenant.len() as u64 * 100 + state.region.len() as u64 % 2
    }

    let eu = AppState { region: "eu" };
    let us = AppState { region: "us" };
    assert_eq!(quota("acme", 1, State(&eu)).await, 400);
    assert_eq!(
        quota("acme", 2, State(&eu)).await,
        400,
        "another request, a hit"
    );
    assert_eq!(quota("acme", 3, State(&us)).await, 400);
    assert_eq!(RUNS.load(SeqCst), 2);
    assert_eq!(quota_cache().get("acme/eu"), Some(400));
    assert!(quota_cache().invalidate("acme/us"));
}

#[tokio::test]
async fn a_custom_key_sees_the_arguments_by_reference() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    /// `cached`'s `convert` use: two arguments folded into one `u64`.
    #[smart_cached(key: u64 = u64::from(*x) << 32 | u64::from(*y))]
    async fn distance(mut x: u32, y: u32) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        x += 1;
        u64::from(x) + u64::from(y)
    }

    assert_eq!(distance(1, 2).await, 4);
    assert_eq!(distance(1, 2).await, 4);
    assert_eq!(distance(2, 1).await, 4);
    assert_eq!(RUNS.load(SeqCst), 2);
    assert_eq!(distance_cache().get(&(1_u64 << 32 | 2)), Some(4));
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Account {
    id: u32,
    /// Not part of the key: `key` picks the id.
    balance_cents: u64,
}

impl Account {
    /// A custom key over the receiver.
    #[smart_cached(key: u32 = self.id)]
    async fn statement(&self) -> String {
        format!("account {}: {}", self.id, self.balance_cents)
    }
}

#[tokio::test]
async fn a_custom_key_may_use_the_receiver() {
    let first = Account {
        id: 1,
        balance_cents: 10,
    };
    let changed = Account {
        id: 1,
        balance_cents: 99,
    };
    assert_eq!(first.statement().await, "account 1: 10");
    assert_eq!(changed.statement().await, "account 1: 10", "same id, a hit");
    assert_eq!(
        Account::statement_cache().get(&1).as_deref(),
        Some("account 1: 10")
    );
}

#[tokio::test]
async fn a_name_bound_in_a_pattern_skips_its_argument() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(skip(state))]
    async fn greeting(State(state): State<&AppState>, user: u32) -> String {
        RUNS.fetch_add(1, SeqCst);
        format!("{} {user}", state.region)
    }

    let eu = AppState { region: "eu" };
    let us = AppState { region: "us" };
    assert_eq!(greeting(State(&eu), 1).await, "eu 1");
    assert_eq!(
        greeting(State(&us), 1).await,
        "eu 1",
        "the state is not in the key"
    );
    assert_eq!(RUNS.load(SeqCst), 1);
    assert_eq!(greeting_cache().get(&(1,)).as_deref(), Some("eu 1"));
}

struct Index {
    words: Vec<&'static str>,
}

#[tokio::test]
async fn lifetime_parameters_are_fine() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(skip(engine))]
    async fn search<'a, 'b>(engine: &'a Index, prefix: &'b str) -> Vec<String>
    where
        'a: 'b,
    {
        RUNS.fetch_add(1, SeqCst);
        engine
            .words
            .iter()
            .filter(|word| word.starts_with(prefix))
            .map(|word| (*word).to_owned())
            .collect()
    }

    let index = Index {
        words: vec!["apple", "apricot", "banana"],
    };
    assert_eq!(search(&index, "ap").await, ["apple", "apricot"]);
    assert_eq!(search(&index, "ap").await.len(), 2);
    assert_eq!(RUNS.load(SeqCst), 1);
    assert!(search_cache().get(&("ap".to_owned(),)).is_some());
}

mod api {
    use smartcache::smart_cached;

    /// A public fn whose companions stay inside the crate, under names of their own.
    #[smart_cached(companions = "pub(crate)", handle = user_pages, uncached = fetch_users)]
    pub async fn users(page: u32) -> Vec<u32> {
        (page * 10..page * 10 + 3).collect()
    }
}

#[tokio::test]
async fn companions_take_the_names_and_visibility_given() {
    assert_eq!(api::users(1).await, [10, 11, 12]);
    assert_eq!(api::users(1).await.len(), 3);
    assert_eq!(api::user_pages().stats().hits, 1);
    assert_eq!(api::fetch_users(2).await, [20, 21, 22]);
    assert_eq!(
        api::user_pages().stats().misses,
        1,
        "the uncached fn stores nothing"
    );
}

/// A borrowing service: lifetime parameters on the `impl` block are fine too.
struct Borrowing<'a> {
    words: &'a [&'static str],
}

#[smart_cached]
impl<'a> Borrowing<'a> {
    #[smart_cached(skip(self))]
    async fn count(&self, prefix: &str) -> usize {
        self.words()
            .iter()
            .filter(|w| w.starts_with(prefix))
            .count()
    }

    /// Names the impl's lifetime.
    fn words(&self) -> &'a [&'static str] {
        self.words
    }
}

#[tokio::test]
async fn an_impl_block_with_lifetimes_is_fine() {
    let words = ["ant", "apple", "bee"];
    let service = Borrowing { words: &words };
    assert_eq!(service.count("a").await, 2);
    assert_eq!(service.count("a").await, 2);
    assert_eq!(Borrowing::count_cache().stats().hits, 1);
}

#[tokio::test]
async fn str_arguments_of_every_length_find_their_own_entry() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    /// A `&str` part of the key is compared without `memcmp` for most lengths (`StrArg`):
    /// keys one byte apart, at every length and position, must still be told apart.
    #[smart_cached]
    async fn echo(tag: u8, name: &str) -> String {
        RUNS.fetch_add(1, SeqCst);
        format!("{tag}:{name}")
    }

    let base: String = ('a'..='z').collect();
    let mut names = Vec::new();
    for len in 0..=base.len() {
        let name = &base[..len];
        names.push(name.to_owned());
        for at in 0..len {
            let mut other = name.as_bytes().to_vec();
            other[at] = b'_';
            names.push(String::from_utf8(other).unwrap());
        }
    }
    for name in &names {
        assert_eq!(echo(1, name).await, format!("1:{name}"));
    }
    let computed = RUNS.load(SeqCst);
    assert_eq!(computed, names.len(), "every name its own entry");
    for name in &names {
        assert_eq!(echo(1, name).await, format!("1:{name}"), "a hit");
    }
    assert_eq!(echo(2, "abc").await, "2:abc", "the other part still counts");
    assert_eq!(RUNS.load(SeqCst), computed + 1);
    assert_eq!(echo_cache().stats().hits, names.len() as u64);
}
