//! Cancellation through generated functions: which forms continue the computation of a
//! cancelled first caller (shared) and which hand over to a waiter that computes again.
//!
//! Each test holds the computation at a gate (a semaphore with no permit), so the order of
//! events is forced: the first caller is computing, a second has joined, the first is
//! aborted, then the gate opens.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use smartcache::smart_cached;
use tokio::sync::Semaphore;

mod macro_support;
use macro_support::until;

/// Runs `first` until its computation started, joins `second`, aborts `first`.
async fn cancel_the_first_caller<T: 'static>(
    first: tokio::task::JoinHandle<T>,
    second_joined: impl FnMut() -> bool,
    runs: &AtomicUsize,
) {
    until(|| runs.load(SeqCst) == 1).await;
    until(second_joined).await;
    first.abort();
    assert!(first.await.is_err_and(|e| e.is_cancelled()));
}

#[tokio::test]
async fn an_owned_body_survives_its_cancelled_first_caller() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static GATE: Semaphore = Semaphore::const_new(0);

    #[smart_cached]
    async fn report(id: u64, title: &str) -> String {
        RUNS.fetch_add(1, SeqCst);
        GATE.acquire().await.expect("open").forget();
        format!("{id}: {title}")
    }

    let first = tokio::spawn(report(1, "q3"));
    let second = tokio::spawn(report(1, "q3"));
    let joined = || report_cache().stats().coalesced == 1;
    cancel_the_first_caller(first, joined, &RUNS).await;
    GATE.add_permits(1);
    assert_eq!(second.await.expect("no panic"), "1: q3");
    assert_eq!(
        RUNS.load(SeqCst),
        1,
        "the computation went on, never restarted"
    );
    assert_eq!(report_cache().stats().load_successes, 1);
}

#[tokio::test]
async fn when_every_caller_is_gone_the_computation_runs_on_and_the_next_call_gets_it() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static GATE: Semaphore = Semaphore::const_new(0);

    #[smart_cached]
    async fn slow(id: u64) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        GATE.acquire().await.expect("open").forget();
        id
    }

    let only = tokio::spawn(slow(3));
    until(|| RUNS.load(SeqCst) == 1).await;
    only.abort();
    assert!(only.await.is_err_and(|e| e.is_cancelled()));
    assert_eq!(
        slow_cache().stats().in_flight,
        1,
        "the computation runs on in its task"
    );
    let next = tokio::spawn(slow(3));
    until(|| slow_cache().stats().coalesced == 1).await;
    GATE.add_permits(1);
    assert_eq!(next.await.expect("no panic"), 3);
    assert_eq!(RUNS.load(SeqCst), 1, "joined, not restarted");
}

#[tokio::test]
async fn moka_240_a_first_caller_never_polled_again_stalls_nobody() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static GATE: Semaphore = Semaphore::const_new(0);

    #[smart_cached]
    async fn lookup(id: u64) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        GATE.acquire().await.expect("open").forget();
        id * 10
    }

    // Polled once, then parked for good: its task is stuck elsewhere.
    let mut first = Box::pin(lookup(4));
    let waker = std::task::Waker::noop();
    let polled = first
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker));
    assert!(polled.is_pending());
    let others: Vec<_> = (0..3).map(|_| tokio::spawn(lookup(4))).collect();
    until(|| lookup_cache().stats().coalesced == 3).await;
    GATE.add_permits(1);
    for other in others {
        assert_eq!(other.await.expect("no panic"), 40);
    }
    assert_eq!(RUNS.load(SeqCst), 1);
    assert_eq!(first.await, 40);
}

struct Repository {
    runs: AtomicUsize,
    gate: Semaphore,
}

#[smart_cached]
impl Repository {
    #[smart_cached(skip(self))]
    async fn row(&self, id: u64) -> u64 {
        self.runs.fetch_add(1, SeqCst);
        self.gate.acquire().await.expect("open").forget();
        id * 10
    }
}

#[tokio::test]
async fn a_borrowing_method_hands_over_to_a_waiter_that_computes_again() {
    let repo = Arc::new(Repository {
        runs: AtomicUsize::new(0),
        gate: Semaphore::new(0),
    });
    let (a, b) = (Arc::clone(&repo), Arc::clone(&repo));
    let first = tokio::spawn(async move { a.row(4).await });
    let second = tokio::spawn(async move { b.row(4).await });
    let joined = || Repository::row_cache().stats().coalesced == 1;
    cancel_the_first_caller(first, joined, &repo.runs).await;
    until(|| repo.runs.load(SeqCst) == 2).await;
    repo.gate.add_permits(1);
    assert_eq!(second.await.expect("no panic"), 40);
    assert_eq!(
        repo.runs.load(SeqCst),
        2,
        "`&self` borrows: the waiter ran its own"
    );
    assert_eq!(Repository::row_cache().stats().load_successes, 1);
}

#[tokio::test]
async fn a_body_that_is_not_send_is_polled_by_its_callers() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static GATE: Semaphore = Semaphore::const_new(0);

    #[smart_cached]
    async fn local(id: u64) -> u64 {
        // Held across an `.await`: the future is not `Send`, so it cannot move into the
        // flight; the generated code falls back to the caller-polled form.
        let label = Rc::new(id);
        RUNS.fetch_add(1, SeqCst);
        GATE.acquire().await.expect("open").forget();
        *label + 1
    }

    let tasks = tokio::task::LocalSet::new();
    tasks
        .run_until(async {
            let first = tokio::task::spawn_local(local(8));
            let second = tokio::task::spawn_local(local(8));
            let joined = || local_cache().stats().coalesced == 1;
            cancel_the_first_caller(first, joined, &RUNS).await;
            until(|| RUNS.load(SeqCst) == 2).await;
            GATE.add_permits(1);
            assert_eq!(second.await.expect("no panic"), 9);
        })
        .await;
    assert_eq!(
        RUNS.load(SeqCst),
        2,
        "handed over: the waiter ran its own computation"
    );
}

/// A method with the attribute alone, receiver by value: its body goes into the flight
/// through the hidden associated route fns.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Job(u64);

static JOB_RUNS: AtomicUsize = AtomicUsize::new(0);
static JOB_GATE: Semaphore = Semaphore::const_new(0);

impl Job {
    #[smart_cached]
    async fn run(self, scale: u64) -> u64 {
        JOB_RUNS.fetch_add(1, SeqCst);
        JOB_GATE.acquire().await.expect("open").forget();
        self.0 * scale
    }
}

#[tokio::test]
async fn a_method_alone_with_an_owned_body_survives_its_cancelled_first_caller() {
    let first = tokio::spawn(Job(2).run(5));
    let second = tokio::spawn(Job(2).run(5));
    let joined = || Job::run_cache().stats().coalesced == 1;
    cancel_the_first_caller(first, joined, &JOB_RUNS).await;
    JOB_GATE.add_permits(1);
    assert_eq!(second.await.expect("no panic"), 10);
    assert_eq!(JOB_RUNS.load(SeqCst), 1, "the shared form: never restarted");
}
