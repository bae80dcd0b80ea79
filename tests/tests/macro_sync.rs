//! `#[smart_cached]` on a plain (non-async) fn: memoized through the blocking form, with
//! single-flight across threads, cached errors and panics handed back.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread;

use smartcache::{CacheError, smart_cached};

/// Spins (yielding the thread, never sleeping) until `done` holds.
fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000_000 {
        if done() {
            return;
        }
        thread::yield_now();
    }
    panic!("condition not reached");
}

#[test]
fn concurrent_calls_from_threads_share_one_computation() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static RELEASE: std::sync::Mutex<Option<mpsc::Receiver<()>>> = std::sync::Mutex::new(None);

    #[smart_cached]
    fn parse(text: &str) -> usize {
        RUNS.fetch_add(1, SeqCst);
        // The first computation waits for the test to release it; any other runs through.
        let gate = RELEASE.lock().expect("lock").take();
        if let Some(gate) = gate {
            gate.recv().expect("released");
        }
        text.len()
    }

    let (release, gate) = mpsc::channel();
    *RELEASE.lock().expect("lock") = Some(gate);
    let callers: Vec<_> = (0..4).map(|_| thread::spawn(|| parse("four"))).collect();
    until(|| parse_cache().stats().misses == 4);
    assert_eq!(RUNS.load(SeqCst), 1, "the other threads wait for the first");
    release.send(()).expect("computing");
    for caller in callers {
        assert_eq!(caller.join().expect("no panic"), 4);
    }
    assert_eq!(parse("four"), 4);
    let stats = parse_cache().stats();
    assert_eq!(
        (stats.load_successes, stats.coalesced, stats.hits),
        (1, 3, 1)
    );
    assert_eq!(parse_uncached("four"), 4);
    assert_eq!(RUNS.load(SeqCst), 2, "the uncached fn runs the body");
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Invalid(u8);

#[test]
fn a_sync_failure_is_cached() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "1h")]
    fn decode(byte: u8) -> Result<char, Invalid> {
        RUNS.fetch_add(1, SeqCst);
        char::from_u32(u32::from(byte))
            .filter(char::is_ascii_alphabetic)
            .ok_or(Invalid(byte))
    }

    #[smart_cached(retry = "1h")]
    fn decode_full(byte: u8) -> Result<char, CacheError<Invalid>> {
        Ok(decode(byte)?)
    }

    assert_eq!(decode(b'a'), Ok('a'));
    assert_eq!(decode(b'1'), Err(Invalid(b'1')));
    assert_eq!(
        decode(b'1'),
        Err(Invalid(b'1')),
        "a clone of the cached error"
    );
    assert_eq!(RUNS.load(SeqCst), 2);
    assert!(decode_full(b'1').unwrap_err().error().is_some());
    assert!(decode_full(b'1').unwrap_err().is_cached());
    assert_eq!(decode_cache().stats().cached_error_hits, 2);
}

#[test]
fn a_sync_panic_is_raised_in_the_caller_and_nothing_is_stored() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    fn fragile(n: u32) -> u32 {
        assert!(RUNS.fetch_add(1, SeqCst) > 0, "first run fails");
        n
    }

    assert!(std::panic::catch_unwind(|| fragile(1)).is_err());
    assert_eq!(fragile(1), 1, "the next call computes again");
    assert_eq!(fragile_cache().stats().load_successes, 1);
}

struct Counter {
    step: u32,
}

impl Counter {
    /// A sync method, attribute alone, receiver skipped.
    #[smart_cached(skip(self))]
    fn scaled(&self, n: u32) -> u32 {
        n * self.step
    }
}

#[test]
fn sync_methods_are_cached() {
    assert_eq!(Counter { step: 2 }.scaled(3), 6);
    assert_eq!(
        Counter { step: 5 }.scaled(3),
        6,
        "a hit: the receiver is skipped"
    );
    assert_eq!(Counter::scaled_cache().stats().hits, 1);
}
