//! `prime` is one step for every caller: a flight that starts while `prime(k)` runs neither
//! overwrites the primed value nor leaves a cached error beside it.
//!
//! The interleaving is forced with a key whose `Hash` stops the priming thread in the middle
//! of `prime`, at its second hash (after the look at the key's flight, before the value is
//! stored), until the test lets it go.

use std::hash::{Hash, Hasher};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smartcache::AsyncSmartCache;

/// Stops the thread that hashes a trapped key for the `at`-th time, until released.
struct Trap {
    at: usize,
    hashes: Mutex<usize>,
    reached: Mutex<Option<Sender<()>>>,
    release: Mutex<Option<Receiver<()>>>,
}

#[derive(Clone)]
struct Key {
    id: u64,
    trap: Option<Arc<Trap>>,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        if let Some(trap) = &self.trap {
            let count = {
                let mut hashes = trap.hashes.lock().unwrap();
                *hashes += 1;
                *hashes
            };
            if count == trap.at {
                if let Some(reached) = trap.reached.lock().unwrap().take() {
                    reached.send(()).unwrap();
                }
                if let Some(release) = trap.release.lock().unwrap().take() {
                    release.recv().unwrap();
                }
            }
        }
    }
}

type Cache = AsyncSmartCache<Key, &'static str, &'static str>;

/// Runs `prime(1, "primed")` on a thread stopped at its second hash, and meanwhile a call
/// of key 1 on another thread whose computation returns `computed`. Returns the cache once
/// both are done, and how many computations ran.
fn race_prime_with_a_flight(computed: Result<&'static str, &'static str>) -> (Arc<Cache>, usize) {
    let cache = Arc::new(Cache::new());
    let (reached_tx, reached) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let trap = Arc::new(Trap {
        at: 2,
        hashes: Mutex::new(0),
        reached: Mutex::new(Some(reached_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    let primer = {
        let cache = Arc::clone(&cache);
        let key = Key {
            id: 1,
            trap: Some(trap),
        };
        std::thread::spawn(move || cache.prime(key, "primed"))
    };
    reached.recv().unwrap();

    // The priming thread is stopped inside `prime`. A caller of the same key now either
    // waits for `prime` (it cannot start a flight in the middle of it), or, if `prime` is not
    // one step, starts a flight at once and says so.
    let (computing_tx, computing) = mpsc::channel();
    let (finish, finish_rx) = mpsc::channel::<()>();
    let caller = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(
                cache.get_or_compute(Key { id: 1, trap: None }, || async move {
                    computing_tx.send(()).unwrap();
                    finish_rx.recv().unwrap();
                    computed
                }),
            )
        })
    };
    // NOTE: this bounded wait decides nothing about the verdict. With `prime` in one step the
    // computation cannot start while `prime` is stopped, so the message never comes and the
    // wait only ends the test's chance to see it; without, it always comes, at once.
    let computations = match computing.recv_timeout(Duration::from_millis(200)) {
        Ok(()) => 1,
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => 0,
    };
    release.send(()).unwrap();
    primer.join().unwrap();
    let _ = finish.send(()); // lets a computation that did start finish after `prime`
    let _ = caller.join().unwrap();
    (cache, computations)
}

#[test]
fn a_flight_starting_while_prime_runs_does_not_overwrite_the_primed_value() {
    let (cache, computations) = race_prime_with_a_flight(Ok("computed"));
    assert_eq!(
        computations, 0,
        "the caller waited for prime and hit its value"
    );
    assert_eq!(cache.get(&Key { id: 1, trap: None }), Some("primed"));
    assert_eq!(cache.stats().total_entries, 1);
}

#[test]
fn a_failing_flight_starting_while_prime_runs_leaves_no_error_beside_the_value() {
    let (cache, computations) = race_prime_with_a_flight(Err("backend down"));
    assert_eq!(computations, 0);
    let stats = cache.stats();
    assert_eq!(
        (stats.total_entries, stats.error_entries),
        (1, 0),
        "one value, no cached error beside it"
    );
    assert_eq!(cache.get(&Key { id: 1, trap: None }), Some("primed"));
}
