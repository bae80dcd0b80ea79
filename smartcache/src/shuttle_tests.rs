//! Model checking of the flight engine under shuttle's controlled scheduler: the real cache,
//! with threads switched at the engine's schedule points (see `sched.rs`) and flight tasks
//! run on shuttle's executor. Every scenario is explored with the random and the PCT
//! schedulers; shuttle fails a schedule that deadlocks (every thread blocked), and each
//! scenario checks its invariants at the end of every schedule.
//!
//! `RUSTFLAGS="--cfg shuttle" cargo test -p smartcache --lib shuttle` runs them;
//! `SMARTCACHE_SHUTTLE_ITERATIONS` sets the schedules per scheduler and scenario (default 1000).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::task::{Context, Waker};

use shuttle::{future, thread};

use crate::{AsyncSmartCache, CacheError};

type Cache = AsyncSmartCache<u8, u32, u32>;

fn explore(scenario: fn()) {
    let iterations = std::env::var("SMARTCACHE_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    shuttle::check_random(scenario, iterations);
    shuttle::check_pct(scenario, iterations, 3);
}

/// A computation that records the phase it started in, yields once, and answers it.
fn phase_computation(
    phase: &Arc<AtomicU32>,
    calls: &Arc<AtomicU32>,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u32, u32>> + Send>> + use<> {
    let (phase, calls) = (Arc::clone(phase), Arc::clone(calls));
    move || {
        let started_in = phase.load(SeqCst);
        calls.fetch_add(1, SeqCst);
        Box::pin(async move {
            future::yield_now().await;
            Ok(started_in)
        })
    }
}

/// Polls a future once and drops it: a caller cancelled after its first poll.
fn poll_once_then_cancel<F: Future>(future: F) {
    let mut future = pin!(future);
    let _ = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
}

/// Lets flight tasks finish after every caller has returned.
fn settle(cache: &Cache) {
    for _ in 0..10_000 {
        if cache.stats().in_flight == 0 {
            return;
        }
        thread::yield_now();
    }
    panic!("a flight never finished: {:?}", cache.stats());
}

/// Two shared-form callers and a borrowing-form one on one key, one of them cancelled after
/// its first poll, against an `invalidate`: every caller that stays gets an answer, nothing
/// computed by a flight that started before the invalidation is stored after it, and the
/// gauges come back to rest.
fn herd_cancel_invalidate() {
    let cache = Arc::new(Cache::new());
    let (phase, calls) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut threads = Vec::new();
    for role in 0..3 {
        let (cache, compute) = (Arc::clone(&cache), phase_computation(&phase, &calls));
        threads.push(thread::spawn(move || match role {
            0 => assert!(future::block_on(cache.get_or_compute_shared(1, compute)).is_ok()),
            1 => poll_once_then_cancel(cache.get_or_compute_shared(1, compute)),
            _ => assert!(future::block_on(cache.get_or_compute(1, compute)).is_ok()),
        }));
    }
    let invalidator = {
        let (cache, phase) = (Arc::clone(&cache), Arc::clone(&phase));
        thread::spawn(move || {
            phase.store(1, SeqCst);
            cache.invalidate(&1);
        })
    };
    for thread in threads {
        thread.join().unwrap();
    }
    invalidator.join().unwrap();
    settle(&cache);
    if let Some(stored) = cache.get(&1) {
        assert_eq!(stored, 1, "a value from before the invalidation was stored");
    }
    let stats = cache.stats();
    assert!(
        stats.total_entries <= 1 && stats.error_entries == 0,
        "{stats:?}"
    );
    assert!(calls.load(SeqCst) >= 1);
}

/// Failing computations on one key against a `prime`: the key ends with the primed value
/// or a cached error, never both, and a flight that started before `prime` stores nothing
/// after it.
fn failing_flights_against_prime() {
    let cache = Arc::new(Cache::new());
    let mut threads = Vec::new();
    for shared in [true, false] {
        let cache = Arc::clone(&cache);
        threads.push(thread::spawn(move || {
            let compute = || async {
                future::yield_now().await;
                Err(7)
            };
            let answer = if shared {
                future::block_on(cache.get_or_compute_shared(1, compute))
            } else {
                future::block_on(cache.get_or_compute(1, compute))
            };
            assert!(matches!(answer, Ok(1000) | Err(_)), "{answer:?}");
        }));
    }
    let primer = {
        let cache = Arc::clone(&cache);
        thread::spawn(move || cache.prime(1, 1000))
    };
    primer.join().unwrap();
    // `prime` has returned: whatever computes from now on started after it.
    for thread in threads {
        thread.join().unwrap();
    }
    settle(&cache);
    // A flight that ended before `prime` had its error replaced; one that ended after was
    // detached by it; none could start after it (the primed value answers).
    let stats = cache.stats();
    assert_eq!(
        (stats.total_entries, stats.error_entries),
        (1, 0),
        "{stats:?}"
    );
    assert_eq!(cache.get(&1), Some(1000));
}

/// Every caller of a shared-form flight is cancelled after its first poll: the task runs
/// the computation to the end and stores it, and a later caller gets that value without
/// computing again.
fn every_caller_cancelled_then_a_newcomer() {
    let cache = Arc::new(Cache::new());
    let (phase, calls) = (Arc::new(AtomicU32::new(7)), Arc::new(AtomicU32::new(0)));
    let cancelled: Vec<_> = (0..2)
        .map(|_| {
            let (cache, compute) = (Arc::clone(&cache), phase_computation(&phase, &calls));
            thread::spawn(move || poll_once_then_cancel(cache.get_or_compute_shared(1, compute)))
        })
        .collect();
    for thread in cancelled {
        thread.join().unwrap();
    }
    let compute = phase_computation(&phase, &calls);
    let late = future::block_on(cache.get_or_compute_shared(1, compute));
    assert_eq!(late, Ok(7));
    settle(&cache);
    assert_eq!(calls.load(SeqCst), 1, "never restarted");
    let stats = cache.stats();
    assert_eq!((stats.load_successes, stats.total_entries), (1, 1));
}

/// Two computations that each ask for the other's key as they start: no schedule hangs
/// (shuttle fails a schedule in which every thread is blocked). When both computations run,
/// at least one of them is answered with a cycle; when one call instead joins the flight the
/// other side's inner call started, there is no cycle, and both get values.
fn mutual_wait() {
    let cache = Arc::new(Cache::new());
    let sides: Vec<_> = [(1u8, 2u8), (2, 1)]
        .into_iter()
        .map(|(mine, theirs)| {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let inner = Arc::clone(&cache);
                future::block_on(cache.get_or_compute_shared(mine, move || async move {
                    match inner
                        .get_or_compute_shared(theirs, || async { Ok(0) })
                        .await
                    {
                        Err(CacheError::Cycle) => Err(0),
                        _ => Ok(1),
                    }
                }))
            })
        })
        .collect();
    let answers: Vec<_> = sides.into_iter().map(|t| t.join().unwrap()).collect();
    settle(&cache);
    // A side answered `Ok(1)` ran its computation and got a value for the other key; if
    // both did, both computations ran and neither saw the cycle between them, unless one
    // inner call was answered from a flight that had finished (value 0 from `Ok(0)`).
    let both_ran_without_cycle = answers.iter().all(|a| *a == Ok(1));
    assert!(
        !both_ran_without_cycle || cache.stats().load_successes >= 3,
        "{answers:?} {:?}",
        cache.stats()
    );
}

#[test]
fn shuttle_herd_cancel_invalidate() {
    explore(herd_cancel_invalidate);
}

#[test]
fn shuttle_failing_flights_against_prime() {
    explore(failing_flights_against_prime);
}

#[test]
fn shuttle_every_caller_cancelled_then_a_newcomer() {
    explore(every_caller_cancelled_then_a_newcomer);
}

#[test]
fn shuttle_mutual_wait() {
    explore(mutual_wait);
}
