//! The flight engine: the miss path that ties the store and the flights together. It joins
//! or leads a flight, drives the computation (in the caller, or in a task of its own),
//! stores the outcome, and handles every way a caller can leave early.
//!
//! # Who drives a flight
//!
//! - Shared form on a tokio runtime: the leader polls the computation once, in its own
//!   call (a computation that is ready at once costs no task); if it is still pending, the
//!   future moves into a task spawned on the current runtime, which polls it to the end and
//!   stores the outcome. From then on every caller, the leader included, only waits: a
//!   caller that is never polled again, or is dropped, holds nobody up, and when every
//!   caller has gone the task still finishes and stores its result for the next call.
//! - Shared form outside a runtime, and the local form: the leader polls the computation in
//!   its own call. A dropped driver hands over to a waiter (the same future for the shared
//!   form, the waiter's own computation for the local form); the last caller to leave drops
//!   the computation and nothing is stored.
//!
//! # Lock order
//!
//! Flight shard → flight state → (store: queue → value/failure shards); flight shard →
//! wait-for edges (one flight's at a time). Nothing that holds a store lock or a flight
//! state takes a flight shard. No lock is held across an `.await`, and none while user code
//! runs (computations, `Clone`, `Drop` of a computation).

use std::future::Future;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::CacheError;
use crate::clock::nanos;
use crate::flight::{
    Building, Computing, Flight, Leaving, Mark, Outcome, SharedComputation, ToNode, Turn,
    panic_message,
};
use crate::reentry::{self, NodeRef};
use crate::resilience::{Answer, Served};
use crate::sched::{self, Spawner};
use crate::stats::Request;
use crate::store::{Hasher, Lookup, Store};
use crate::trace::{Ended, Tracer};

/// Everything a cache is, shared with the tasks that drive its flights (which hold it
/// weakly: a running computation never keeps a dropped cache alive).
pub(crate) struct Inner<K, V, E> {
    pub(crate) store: Store<K, V, E>,
    /// Flights in progress. A flight leaves this map, under its shard lock, when it
    /// finishes, is abandoned, is superseded after a wait timeout, or is detached by
    /// invalidate, clear or prime.
    pub(crate) flights: DashMap<K, Arc<Flight<V, E>>, Hasher>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) tracer: Tracer<K>,
    /// How long a caller waits for another's computation before running its own.
    pub(crate) wait_timeout: Option<Duration>,
    /// How long a task-driven computation that every caller has left runs on (`None`:
    /// until it ends).
    pub(crate) abandon_after: Option<Duration>,
    /// The shared tier, for a cache built with `.shared(tier)` (set once, after building).
    #[cfg(feature = "redis")]
    pub(crate) shared: crate::redis::shared::HookSlot<K, V, E>,
}

/// How a caller's computation starts, when it has to: a future that lives in the caller
/// (`Local`), or one boxed into the flight (`Shared`) that a task or another caller can
/// continue.
pub(crate) enum Computation<F, S> {
    Local(F),
    Shared(S),
}

/// A failure to store: the error, its retry window (nanoseconds), and the key's count of
/// consecutive failures with it.
type Failure<E> = (Arc<E>, u64, u32);

/// What a call asks of the store before it computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Answer from the store if it can (a value, a cached error); compute otherwise.
    Lookup,
    /// Compute now, whatever is stored (an explicit refresh): the stored value stays until
    /// the computation succeeds.
    Refresh,
}

/// What the miss path found for a key.
enum Step<V, E> {
    Answer(Answer<V, E>),
    Lead(Arc<Flight<V, E>>),
    Join(Arc<Flight<V, E>>),
}

impl<K, V, E> Inner<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// Removes `key`'s stored value or error and detaches its flight, in this process.
    pub(crate) fn invalidate_local<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Order matters: detach the flight first, so that it cannot store after the value
        // is removed (a flight stores only while it is in the map, under its shard lock).
        let detached = self.flights.remove(key).is_some();
        sched::point();
        let removed = self.store.remove(key);
        detached || removed
    }

    /// Removes everything stored and detaches every flight, in this process.
    pub(crate) fn clear_local(&self) {
        // Flights first, as in `invalidate_local`: a flight that stored before it was
        // detached has its value removed by the store clear that follows.
        self.flights.clear();
        sched::point();
        self.store.clear();
    }

    /// Refresh-ahead of `key`, whose value a hit found due: starts one background refresh
    /// with the computation `build` makes, unless the key has a flight already, its last
    /// failure is still inside its window, or its value no longer needs one (a refresh just
    /// stored it). Needs a tokio runtime (the refresh runs in a task); does nothing outside
    /// one. Never waits: the caller answers its hit at once.
    pub(crate) fn refresh_ahead<S>(self: &Arc<Self>, key: K, build: S)
    where
        S: FnOnce(&Building<V, E>) -> SharedComputation<V, E>,
    {
        // Read-locked looks first: while a refresh runs, every hit of the key comes here,
        // and should not queue for the shard's write lock.
        let running = |flight: &Arc<Flight<V, E>>| !flight.is_done();
        if self
            .flights
            .get(&key)
            .is_some_and(|flight| running(&flight))
        {
            return;
        }
        let now = self.store.clock.now();
        if self.store.may_refresh(&key, now).is_none() {
            return;
        }
        let Some(runtime) = Spawner::current() else {
            return;
        };
        let flight = {
            // Under the flight shard lock, like every start of a flight: one refresh per key.
            let slot = self.flights.entry(key.clone());
            if let MapEntry::Occupied(current) = &slot {
                if running(current.get()) {
                    return; // a refresh or a miss is computing the key already
                }
            }
            if !self.store.needs_refresh(&key, now) {
                return;
            }
            let Some(failures) = self.store.may_refresh(&key, now) else {
                return; // the last refresh failed: not before its retry interval passed
            };
            let flight = Arc::new(Flight::background(now, failures));
            let stats = &self.store.stats;
            slot.insert(Arc::clone(&flight));
            stats.in_flight.fetch_add(1, Relaxed);
            stats.record_refresh();
            self.tracer.refresh_started(&key);
            flight
        };
        // Built outside every lock (user code), counting as computing for the flight.
        let node = Arc::clone(&flight) as NodeRef;
        let computation =
            reentry::within(node, || catch_unwind(AssertUnwindSafe(|| build(&flight))));
        match computation {
            Ok(computation) => self.spawn(&runtime, key, &flight, computation),
            Err(payload) => self.complete(&key, &flight, Err(panic_message(payload.as_ref()))),
        }
    }

    /// The miss path: joins or leads a flight, then waits or drives until it has an answer.
    pub(crate) async fn get_or_compute_slow<F, Fut, S>(
        self: &Arc<Self>,
        key: K,
        computation: Computation<F, S>,
        mode: Mode,
    ) -> Answer<V, E>
    where
        F: FnOnce(&Building<V, E>) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        S: FnOnce(&Building<V, E>) -> SharedComputation<V, E>,
    {
        let answer = self.miss(key, computation, mode).await;
        if matches!(answer, Ok(Served::Stale { .. })) {
            self.store.stats.record_stale_hits(1);
        }
        answer
    }

    async fn miss<F, Fut, S>(
        self: &Arc<Self>,
        key: K,
        computation: Computation<F, S>,
        mode: Mode,
    ) -> Answer<V, E>
    where
        F: FnOnce(&Building<V, E>) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        S: FnOnce(&Building<V, E>) -> SharedComputation<V, E>,
    {
        // One clock reading serves the whole look-up: sweep, expiry, retry window, start.
        let now = self.store.clock.now();
        self.store.sweep_if_due(now);
        // The flight whose computation makes this call, if any: it now waits for this one.
        let parent = reentry::current();
        sched::point();
        let (flight, leading) = match self.join_or_lead(&key, now, parent.as_ref(), None, mode) {
            Step::Answer(answer) => return answer,
            Step::Lead(flight) => (flight, true),
            Step::Join(flight) => (flight, false),
        };
        let mut participant = Participant::new(self, key, flight, parent);
        let mut computation = Some(computation);
        sched::point();
        let mut turn = if leading {
            Turn::TakeOver(None)
        } else {
            participant.wait().await
        };
        loop {
            turn = match turn {
                Turn::Answer(answer) => {
                    participant.role = Role::Done;
                    return answer;
                }
                // A shared future handed over by a driver that was polling it in its call.
                Turn::TakeOver(Some(shared)) => match participant.drive_shared(shared).await {
                    Some(answer) => return answer,
                    None => participant.wait().await,
                },
                Turn::TakeOver(None) => match computation.take() {
                    Some(computation) => match participant.run(computation).await {
                        Some(answer) => return answer,
                        None => participant.wait().await,
                    },
                    // This caller's computation went into a task that was dropped unfinished
                    // (its runtime shut down): hand the flight on and answer the loss.
                    None => return participant.give_up(),
                },
                Turn::TimedOut => match participant.supersede() {
                    Next::Answer(answer) => return answer,
                    Next::Lead => Turn::TakeOver(None),
                    Next::Join => participant.wait().await,
                },
            };
        }
    }

    /// Under the flight shard lock for `key`: joins the flight in progress, answers from
    /// the store, or starts a flight. Counts the request, unless it was counted already
    /// (`superseding`: the caller timed out waiting for that flight and replaces it).
    fn join_or_lead(
        &self,
        key: &K,
        now: u64,
        parent: Option<&NodeRef>,
        superseding: Option<&Arc<Flight<V, E>>>,
        mode: Mode,
    ) -> Step<V, E> {
        let stats = &self.store.stats;
        let count = |request| {
            if superseding.is_none() {
                stats.record(request);
            }
        };
        let slot = self.flights.entry(key.clone());
        if let MapEntry::Occupied(current) = &slot {
            let stuck = superseding.is_some_and(|stuck| Arc::ptr_eq(stuck, current.get()));
            if !stuck {
                let flight = current.get();
                if let Some(parent) = parent {
                    let node = Arc::clone(flight) as NodeRef;
                    if !reentry::wait_for(parent, &node) {
                        count(Request::Miss);
                        self.tracer.cycle(key);
                        return Step::Answer(Err(CacheError::Cycle));
                    }
                }
                if flight.join() {
                    count(Request::Coalesced);
                    return Step::Join(Arc::clone(flight));
                }
                if let Some(parent) = parent {
                    parent.edges().remove(&**flight);
                }
            }
        }
        // No flight to join: the slot is vacant, holds one that is over but could not leave
        // (see `Flight::join`), or holds the stuck flight being superseded; it is replaced or
        // dropped here. Looking in the store under the flight shard lock: a flight that
        // finished stored its result before leaving the map, so nothing is missed in between.
        let lookup = match mode {
            Mode::Lookup => self.store.lookup(key, now),
            Mode::Refresh => Lookup::Absent {
                failures: self.store.failures_so_far(key),
            },
        };
        match lookup {
            Lookup::Value(value) => {
                count(Request::Hit);
                remove_stale(slot);
                Step::Answer(Ok(Served::Fresh(value)))
            }
            Lookup::Error {
                error,
                retry_in,
                stale,
            } => {
                count(Request::CachedError);
                self.tracer.cached_error(key, retry_in);
                remove_stale(slot);
                Step::Answer(match stale {
                    Some((value, expired_for)) => {
                        self.tracer.stale(key, expired_for);
                        Ok(Served::Stale {
                            value,
                            error,
                            expired_for,
                        })
                    }
                    None => Err(CacheError::Cached { error, retry_in }),
                })
            }
            Lookup::Absent { failures } => {
                let refresh = mode == Mode::Refresh;
                let flight = Arc::new(Flight::new(now, failures, refresh));
                if refresh {
                    stats.record_refresh();
                }
                if let Some(parent) = parent {
                    // A new flight waits for nothing yet: this edge cannot close a cycle.
                    parent.edges().add(&(Arc::clone(&flight) as NodeRef));
                }
                slot.insert(Arc::clone(&flight));
                count(Request::Miss);
                stats.in_flight.fetch_add(1, Relaxed);
                self.tracer.started(key);
                Step::Lead(flight)
            }
        }
    }

    /// Ends a flight with its computation's result: stores it if the flight is still the
    /// key's current one, then wakes the waiters.
    fn complete(&self, key: &K, flight: &Arc<Flight<V, E>>, result: Result<Result<V, E>, String>) {
        let now = self.store.clock.now();
        let failures = flight.failures.saturating_add(1);
        let outcome = match (result, flight.fleet.get()) {
            (Ok(Ok(value)), _) => Outcome::Value(value),
            (Ok(Err(error)), Some(retry_in)) => Outcome::Cached(Arc::new(error), *retry_in),
            (Ok(Err(error)), None) => Outcome::Error(Arc::new(error)),
            (Err(message), _) => Outcome::Panicked(message),
        };
        // The copies to store, made outside any lock: user `Clone` code does not run under it.
        // The failure's window too: the user's retry hint runs here, outside every lock. A
        // failure from the fleet keeps the fleet's time left.
        let record = catch_unwind(AssertUnwindSafe(|| match &outcome {
            Outcome::Value(value) => Some((key.clone(), Ok(value.clone()))),
            Outcome::Error(error) => {
                let window = match flight.window.get() {
                    Some(fleet) => nanos(*fleet),
                    None => self.store.failure_window(key, error, failures, now),
                };
                Some((key.clone(), Err((Arc::clone(error), window, failures))))
            }
            Outcome::Cached(error, retry_in) => {
                let window = nanos(*retry_in);
                Some((key.clone(), Err((Arc::clone(error), window, failures))))
            }
            Outcome::Stale(..) | Outcome::Panicked(_) => None,
        }));
        // A panic in the user's `Clone`: the flight still ends, with that panic as its
        // outcome and nothing stored, so no waiter is left hanging.
        let (mut outcome, record) = match record {
            Ok(record) => (outcome, record),
            Err(payload) => (Outcome::Panicked(panic_message(payload.as_ref())), None),
        };
        // Leaves the map whatever happens, so no later caller joins a finished flight. Only a
        // panicking `Hash` or `Eq` can unwind out of here, and with such a key every call
        // panics in the map lookup anyway.
        sched::point();
        let failed = record.as_ref().is_some_and(|(_, result)| result.is_err());
        let stored = catch_unwind(AssertUnwindSafe(|| {
            self.store_outcome(key, flight, record, now)
        }));
        sched::point();
        match stored {
            // Stale-if-error: a failure answered with the last good value.
            Ok(Some((value, expired_for))) => {
                if let Outcome::Error(error) | Outcome::Cached(error, _) = &outcome {
                    self.tracer.stale(key, expired_for);
                    outcome = Outcome::Stale(Arc::clone(error), value, expired_for);
                }
            }
            Ok(None) => {}
            Err(payload) => outcome = Outcome::Panicked(panic_message(payload.as_ref())),
        }
        if flight.refresh && (failed || matches!(outcome, Outcome::Panicked(_))) {
            self.store.stats.record_refresh_failure();
        }
        let (stats, took) = (
            &self.store.stats,
            Duration::from_nanos(now.saturating_sub(flight.started)),
        );
        stats.record_load(matches!(outcome, Outcome::Value(_)), took);
        stats.in_flight.fetch_sub(1, Relaxed);
        let ended = match &outcome {
            Outcome::Value(_) => Ended::Value,
            Outcome::Error(_) | Outcome::Cached(..) | Outcome::Stale(..) => Ended::Error,
            Outcome::Panicked(message) => Ended::Panic(message),
        };
        self.tracer.ended(key, &ended, took);
        flight.finish(outcome);
    }

    /// Removes the flight from the map and, if it was still the key's flight, stores
    /// `record` (a value or an error; `None` stores nothing) as of `now`. For a failure,
    /// the key's stale value if stale-if-error serves it (and how long ago it expired).
    fn store_outcome(
        &self,
        key: &K,
        flight: &Arc<Flight<V, E>>,
        mut record: Option<(K, Result<V, Failure<E>>)>,
        now: u64,
    ) -> Option<(V, Duration)> {
        let mut stale = None;
        // INVARIANT (no stale resurrection): store only while this flight is still the key's
        // flight, under the shard lock that invalidate, clear and prime take to detach it.
        self.flights.remove_if(key, |_, current| {
            if !Arc::ptr_eq(current, flight) {
                return false;
            }
            match record.take() {
                Some((key, Ok(value))) => self.store.insert_value(key, value, now),
                Some((key, Err((error, window, failures)))) => {
                    // Read under the same lock as the failure is stored: the value the next
                    // callers see beside it.
                    stale = self.store.stale_value(&key, now);
                    self.store.insert_failure(key, error, now, window, failures);
                }
                None => {}
            }
            true
        });
        stale
    }

    /// A participant leaves its flight unfinished (it was dropped, or gave up waiting).
    fn leave(&self, key: &K, flight: &Arc<Flight<V, E>>, leaving: Leaving<V, E>) {
        let driver = matches!(leaving, Leaving::Driver(_));
        sched::point();
        let mut leaving = Some(leaving);
        let mut left = (false, None);
        // Under the shard lock while the flight is still in the map, so that no caller can
        // join a flight that its last participant is abandoning at the same moment.
        self.flights.remove_if(key, |_, current| {
            if !Arc::ptr_eq(current, flight) {
                return false;
            }
            // `leaving` is always there: the closure runs at most once.
            left = flight.leave(leaving.take().unwrap_or(Leaving::Waiter));
            left.0
        });
        if let Some(leaving) = leaving {
            // Detached or already gone from the map: nobody can join it any more.
            left = flight.leave(leaving);
        }
        let (abandoned, computation) = left;
        if abandoned {
            self.store.stats.in_flight.fetch_sub(1, Relaxed);
        }
        if abandoned || driver {
            self.tracer.left(key, abandoned);
        }
        // Dropped here, outside every lock: dropping a future runs user code.
        drop(computation);
    }

    /// A flight's task was dropped before its computation finished (its runtime shut down,
    /// or the task was aborted): a waiter takes over, or, with nobody left, it is abandoned.
    fn task_dropped(&self, key: &K, flight: &Arc<Flight<V, E>>) {
        sched::point();
        let mut abandoned = None;
        self.flights.remove_if(key, |_, current| {
            if !Arc::ptr_eq(current, flight) {
                return false;
            }
            let gone = flight.task_dropped();
            abandoned = Some(gone);
            gone
        });
        let abandoned = abandoned.unwrap_or_else(|| flight.task_dropped());
        if abandoned {
            self.store.stats.in_flight.fetch_sub(1, Relaxed);
            self.tracer.left(key, true);
        }
    }

    /// Abandons a task-driven flight that no caller has waited for since `since` (one
    /// `abandon_after` ago): it leaves the map (the next call starts afresh), and its
    /// computation is dropped. `false` if a caller came back meanwhile.
    fn abandon_unwatched(
        &self,
        key: &K,
        flight: &Arc<Flight<V, E>>,
        since: tokio::time::Instant,
    ) -> bool {
        let mut abandoned = None;
        // Under the shard lock, so that no caller joins while it is being abandoned.
        self.flights.remove_if(key, |_, current| {
            if !Arc::ptr_eq(current, flight) {
                return false;
            }
            let gone = flight.abandon_unwatched(since);
            abandoned = Some(gone);
            gone
        });
        let abandoned = abandoned.unwrap_or_else(|| flight.abandon_unwatched(since));
        if abandoned {
            self.store.stats.in_flight.fetch_sub(1, Relaxed);
            self.tracer.left(key, true);
        }
        abandoned
    }

    /// A task-driven flight was dropped before its task completed it: nobody waited for it
    /// and it was out of the map, so its result was not wanted. It no longer runs.
    fn flight_dropped(&self) {
        self.store.stats.in_flight.fetch_sub(1, Relaxed);
    }

    /// Moves a pending shared computation into a task on `runtime`, which drives it to the
    /// end and stores the outcome.
    fn spawn(
        self: &Arc<Self>,
        runtime: &Spawner,
        key: K,
        flight: &Arc<Flight<V, E>>,
        computation: SharedComputation<V, E>,
    ) {
        // INVARIANT: the flight is marked task-driven *before* the task exists, so that a
        // task dropped at once (a runtime shutting down) finds the state it must undo.
        flight.hand_to_task();
        // INVARIANT: the task holds its flight weakly. The flight map and the callers hold
        // it strongly; when none of them does (the cache was dropped, or the flight was
        // detached and every caller left), nothing would receive or store the result, and
        // the flight's `Drop` aborts the task.
        let mut guard = TaskGuard {
            cache: Arc::downgrade(self),
            key,
            flight: Arc::downgrade(flight),
            armed: true,
        };
        let computing = Computing {
            flight: Mark::Task(Arc::downgrade(&(Arc::clone(flight) as NodeRef))),
            future: computation,
        };
        let mut grace = self.abandon_after;
        let task = runtime.spawn(async move {
            let mut computing = std::pin::pin!(computing);
            let mut timer = None;
            let result = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = computing.as_mut().poll(cx) {
                    return Poll::Ready(Some(result));
                }
                let Some(after) = grace else {
                    return Poll::Pending;
                };
                let Some(since) = guard.unwatched(cx.waker()) else {
                    timer = None;
                    return Poll::Pending;
                };
                let deadline = since + after;
                match poll_timer(&mut timer, deadline, cx) {
                    // Abandoned only if nobody came back since `since` (then it would have
                    // a later one, and the timer starts over at the next poll).
                    Some(Poll::Ready(())) if guard.abandon(since) => Poll::Ready(None),
                    Some(Poll::Ready(())) => {
                        cx.waker().wake_by_ref(); // look again at the new `since`
                        timer = None;
                        Poll::Pending
                    }
                    Some(Poll::Pending) => Poll::Pending,
                    // No timer on this runtime: run on until the end.
                    None => {
                        grace = None;
                        Poll::Pending
                    }
                }
            })
            .await;
            match result {
                Some(result) => guard.complete(result),
                // Abandoned: the computation is dropped as the task ends, outside every lock.
                None => guard.disarm(),
            }
        });
        if let Some(task) = task {
            flight.set_task(task);
        }
    }
}

/// Polls the abandon timer for `deadline`, (re)started as needed. `None` if this runtime
/// has no timer (built without `enable_time`), where tokio refuses to make one.
fn poll_timer(
    timer: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    deadline: tokio::time::Instant,
    cx: &mut std::task::Context<'_>,
) -> Option<Poll<()>> {
    catch_unwind(AssertUnwindSafe(|| {
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }))
    .ok()
}

/// Drops a flight left in the map after it was over (only a flight that is over, or one
/// being superseded, reaches here).
fn remove_stale<K: Hash + Eq, T>(slot: MapEntry<'_, K, T>) {
    if let MapEntry::Occupied(stale) = slot {
        stale.remove();
    }
}

/// Owned by a flight's task: completes the flight when the computation ends, and hands it
/// on if the task is dropped before that.
struct TaskGuard<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    cache: Weak<Inner<K, V, E>>,
    key: K,
    flight: Weak<Flight<V, E>>,
    armed: bool,
}

impl<K, V, E> TaskGuard<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// The flight's end is accounted for: dropping the guard does nothing more.
    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Since when no caller waits for the flight, if none does (then the abandon timer
    /// runs).
    fn unwatched(&self, task: &std::task::Waker) -> Option<tokio::time::Instant> {
        self.flight
            .upgrade()
            .and_then(|flight| flight.unwatched(task))
    }

    /// Abandons the flight if no caller came back since `since`.
    fn abandon(&self, since: tokio::time::Instant) -> bool {
        match (self.cache.upgrade(), self.flight.upgrade()) {
            (Some(cache), Some(flight)) => cache.abandon_unwatched(&self.key, &flight, since),
            (Some(cache), None) => {
                cache.flight_dropped();
                true
            }
            (None, _) => true,
        }
    }

    fn complete(&mut self, result: Result<Result<V, E>, String>) {
        self.armed = false;
        match (self.cache.upgrade(), self.flight.upgrade()) {
            (Some(cache), Some(flight)) => cache.complete(&self.key, &flight, result),
            (Some(cache), None) => cache.flight_dropped(),
            // The cache is gone, and with it every caller (they borrow it): nothing to do.
            (None, _) => {}
        }
    }
}

impl<K, V, E> Drop for TaskGuard<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match (self.cache.upgrade(), self.flight.upgrade()) {
            (Some(cache), Some(flight)) => cache.task_dropped(&self.key, &flight),
            // Aborted by the flight's `Drop`: nobody held the flight any more.
            (Some(cache), None) => cache.flight_dropped(),
            (None, _) => {}
        }
    }
}

/// The role of a caller in its flight.
enum Role<V, E> {
    Waiting,
    /// Polling its own future, which cannot be handed over.
    DrivingLocal,
    /// Polling the flight's shared future; `None` only while the future is being polled.
    DrivingShared(Option<SharedComputation<V, E>>),
    /// The flight answered this caller.
    Done,
}

/// A caller taking part in a flight. If dropped before the flight answered it (the caller
/// was cancelled), it leaves the flight, handing over what it was driving.
struct Participant<'a, K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    cache: &'a Arc<Inner<K, V, E>>,
    key: K,
    flight: Arc<Flight<V, E>>,
    /// The flight whose computation made this call; it has an edge to `flight` while this
    /// participant takes part.
    parent: Option<NodeRef>,
    role: Role<V, E>,
    /// When this caller stops waiting for someone else's computation (see `wait_timeout`).
    deadline: Option<tokio::time::Instant>,
}

impl<'a, K, V, E> Participant<'a, K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn new(
        cache: &'a Arc<Inner<K, V, E>>,
        key: K,
        flight: Arc<Flight<V, E>>,
        parent: Option<NodeRef>,
    ) -> Self {
        Self {
            cache,
            key,
            flight,
            parent,
            role: Role::Waiting,
            deadline: None,
        }
    }

    /// Waits for the flight, until `wait_timeout` has passed since this caller began to
    /// wait (the first time it waits).
    async fn wait(&mut self) -> Turn<V, E> {
        if self.deadline.is_none() {
            // Timers need a runtime: outside one (a blocking caller), a caller waits as
            // long as it takes.
            self.deadline = self
                .cache
                .wait_timeout
                .filter(|_| tokio::runtime::Handle::try_current().is_ok())
                .map(|timeout| tokio::time::Instant::now() + timeout);
        }
        // Boxed: waiting (a `Notified`, and a timer with a wait timeout) is most of a miss's
        // state, and a leader whose computation is ready at once never waits. Unboxed, every
        // miss would carry that state in its own boxed future, and copy it there.
        Box::pin(self.flight.wait(self.deadline)).await
    }

    /// Starts this caller's own computation and drives it. `None`: it went into a task, and
    /// the caller now waits like the others.
    async fn run<F, Fut, S>(&mut self, computation: Computation<F, S>) -> Option<Answer<V, E>>
    where
        F: FnOnce(&Building<V, E>) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        S: FnOnce(&Building<V, E>) -> SharedComputation<V, E>,
    {
        // Building the computation runs user code: it counts as computing for the flight.
        match computation {
            Computation::Local(compute) => Some(self.drive_local(compute).await),
            Computation::Shared(compute) => {
                let flight = &self.flight;
                let build = || compute(flight);
                match reentry::within(flight.to_node(), || catch_unwind(AssertUnwindSafe(build))) {
                    Ok(future) => self.drive_shared(future).await,
                    Err(payload) => Some(self.end(Err(panic_message(payload.as_ref())))),
                }
            }
        }
    }

    /// Builds the caller-local computation and polls it to the end. The build and the first
    /// poll are marked as computing for the flight together (one mark for a computation that
    /// is ready at once).
    async fn drive_local<F, Fut>(&mut self, compute: F) -> Answer<V, E>
    where
        F: FnOnce(&Building<V, E>) -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.role = Role::DrivingLocal;
        let flight = &self.flight;
        let mut compute = Some(compute);
        let mut future = std::pin::pin!(None::<Fut>);
        let result = std::future::poll_fn(|cx| {
            reentry::within(flight.to_node(), || {
                if let Some(compute) = compute.take() {
                    match catch_unwind(AssertUnwindSafe(|| compute(flight))) {
                        Ok(built) => future.set(Some(built)),
                        Err(payload) => return Poll::Ready(Err(panic_message(payload.as_ref()))),
                    }
                }
                let Some(running) = future.as_mut().as_pin_mut() else {
                    return Poll::Ready(Err("local computation missing".to_owned()));
                };
                match catch_unwind(AssertUnwindSafe(|| running.poll(cx))) {
                    Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
                    Ok(Poll::Pending) => Poll::Pending,
                    Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
                }
            })
        })
        .await;
        self.end(result)
    }

    /// Polls the flight's shared computation. On a runtime, a computation still pending
    /// after its first poll moves into a task and this returns `None`; elsewhere this
    /// caller polls it to the end.
    async fn drive_shared(&mut self, future: SharedComputation<V, E>) -> Option<Answer<V, E>> {
        self.role = Role::DrivingShared(Some(future));
        let runtime = Spawner::current();
        // NOTE: the future stays in `self.role` while it is polled, so that if this caller
        // is dropped at the `.await`, `Drop` finds it there and hands it to a waiter.
        let result = std::future::poll_fn(|cx| {
            let Role::DrivingShared(slot) = &mut self.role else {
                return Poll::Ready(Some(Err("shared computation missing".to_owned())));
            };
            let Some(future) = slot.as_mut() else {
                return Poll::Ready(Some(Err("shared computation missing".to_owned())));
            };
            let mut computing = Computing {
                flight: Mark::Caller(&self.flight),
                future: future.as_mut(),
            };
            match Pin::new(&mut computing).poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending => match (&runtime, slot.take()) {
                    (Some(runtime), Some(future)) => {
                        self.cache
                            .spawn(runtime, self.key.clone(), &self.flight, future);
                        self.role = Role::Waiting;
                        Poll::Ready(None)
                    }
                    (_, future) => {
                        *slot = future;
                        Poll::Pending
                    }
                },
            }
        })
        .await;
        result.map(|result| self.end(result))
    }

    /// The computation ended: finish the flight and take this caller's answer.
    fn end(&mut self, result: Result<Result<V, E>, String>) -> Answer<V, E> {
        // Drop the future first (outside any lock): it is done, and may hold resources.
        self.role = Role::Done;
        self.cache.complete(&self.key, &self.flight, result);
        // Waiters were woken before this caller's copy is made: if the user's `Clone`
        // panics now, it unwinds into this caller alone, and nobody is left waiting.
        self.flight.answer()
    }

    /// Took over a flight with no computation of its own to run: leaves it (a waiter that
    /// has one takes over next) and answers the loss.
    fn give_up(&mut self) -> Answer<V, E> {
        self.role = Role::Done;
        self.cache
            .leave(&self.key, &self.flight, Leaving::Driver(None));
        Err(CacheError::Panicked {
            message: "computation cancelled: its task was dropped before it finished".to_owned(),
        })
    }

    /// The wait timed out behind a driving caller that made no progress: replaces that
    /// flight with one this caller leads, or joins whatever replaced it already. The stuck
    /// flight is detached, so whatever it computes is not stored.
    fn supersede(&mut self) -> Next<V, E> {
        let cache = self.cache;
        let stuck = Arc::clone(&self.flight);
        // The edge to the stuck flight goes; `join_or_lead` records the one to the next.
        if let Some(parent) = &self.parent {
            parent.edges().remove(&*self.flight);
        }
        let now = cache.store.clock.now();
        let mode = if stuck.refresh {
            Mode::Refresh
        } else {
            Mode::Lookup
        };
        let step = cache.join_or_lead(&self.key, now, self.parent.as_ref(), Some(&stuck), mode);
        cache.leave(&self.key, &stuck, Leaving::Waiter);
        cache.tracer.superseded(&self.key);
        self.deadline = None;
        let (flight, next) = match step {
            Step::Answer(answer) => {
                self.role = Role::Done;
                self.parent = None; // its edge is gone already
                return Next::Answer(answer);
            }
            Step::Lead(flight) => (flight, Next::Lead),
            Step::Join(flight) => (flight, Next::Join),
        };
        self.flight = flight;
        next
    }
}

/// What a caller does after superseding a stuck flight.
enum Next<V, E> {
    Answer(Answer<V, E>),
    /// Run its own computation for the new flight.
    Lead,
    /// Wait for the flight that another caller started meanwhile.
    Join,
}

impl<K, V, E> Drop for Participant<'_, K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some(parent) = &self.parent {
            parent.edges().remove(&*self.flight);
        }
        let leaving = match std::mem::replace(&mut self.role, Role::Done) {
            Role::Done => return,
            Role::Waiting => Leaving::Waiter,
            Role::DrivingLocal => Leaving::Driver(None),
            Role::DrivingShared(future) => Leaving::Driver(future),
        };
        self.cache.leave(&self.key, &self.flight, leaving);
    }
}
