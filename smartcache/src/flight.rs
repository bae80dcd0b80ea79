//! A flight: one running computation for one key, shared by every caller of that key.
//!
//! ```text
//!                     lead (first caller)
//!                            |
//!              +-------------+---------------+
//!              | local form, or no runtime   | shared form on a tokio runtime: polled once
//!              v                             v  by the leader, then moved into a task
//!           Caller  --- handed to the ---->  Task  (callers may come and go; it runs on)
//!            |  ^       task (shared form)    |  \
//!  driver    |  | a waiter                    |   \ task dropped unfinished (its runtime
//!  dropped,  |  | takes over                  |    \ shut down, or the cache was dropped)
//!  callers   v  |                             |     v
//!  remain  Orphaned --- last caller --->  Abandoned (computation dropped, nothing stored)
//!                       dropped               ^
//!              |                              |  last caller dropped (Caller driver)
//!              +---- computation returns or panics ----> Finished (outcome set, waiters woken)
//! ```
//!
//! The callers of a flight are its *participants*. With a `Caller` driver, one of them polls
//! the computation and the others wait on [`Flight::notify`]; when the driver is dropped, a
//! shared (boxed, `'static`) computation is handed to a waiter, which goes on polling the
//! very same future, while a caller-local one cannot outlive its caller, so the waiter that
//! takes over runs its own. With a `Task` driver, the computation belongs to the flight: a
//! tokio task polls it, every participant only waits, and a flight that every caller has
//! left still runs to completion and stores its result.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::CacheError;
use crate::clock::lock;
use crate::reentry::{self, Edges, Node, NodeRef};
use crate::resilience::{Answer, Served};

/// A computation that any participant can poll: owned by the flight, not by a caller.
pub(crate) type SharedComputation<V, E> = Pin<Box<dyn Future<Output = Result<V, E>> + Send>>;

/// How a flight ended.
#[derive(Debug)]
pub(crate) enum Outcome<V, E> {
    Value(V),
    Error(Arc<E>),
    /// A failure that another process computed, still cached on the shared tier for this
    /// long: every caller answers it as a cached error.
    Cached(Arc<E>, Duration),
    /// A failure, answered with the key's last good value (stale-if-error), which expired
    /// this long ago.
    Stale(Arc<E>, V, Duration),
    Panicked(String),
}

/// A flight as its computation is built (see `engine`'s `Computation`): a shared-tier
/// computation notes there that its failure came from the fleet (`Flight::fleet`).
pub(crate) type Building<V, E> = Arc<Flight<V, E>>;

impl<V: Clone, E> Outcome<V, E> {
    /// The answer for one participant of the flight.
    pub(crate) fn to_answer(&self) -> Answer<V, E> {
        match self {
            Self::Value(value) => Ok(Served::Fresh(value.clone())),
            Self::Stale(error, value, expired_for) => Ok(Served::Stale {
                value: value.clone(),
                error: Arc::clone(error),
                expired_for: *expired_for,
            }),
            Self::Error(error) => Err(CacheError::Failed(Arc::clone(error))),
            Self::Cached(error, retry_in) => Err(CacheError::Cached {
                error: Arc::clone(error),
                retry_in: *retry_in,
            }),
            Self::Panicked(message) => Err(CacheError::Panicked {
                message: message.clone(),
            }),
        }
    }
}

pub(crate) struct Flight<V, E> {
    state: Mutex<State<V, E>>,
    /// Set once, before the state becomes `Finished`.
    outcome: OnceLock<Outcome<V, E>>,
    /// Wakes waiters when the flight finishes or is orphaned.
    notify: Notify,
    /// When the computation started, on the cache clock (nanoseconds).
    pub(crate) started: u64,
    /// The flights this flight's computation is waiting for, for cycle detection.
    edges: Edges,
    /// The task driving the flight, if it has one: aborted when the flight is dropped.
    task: OnceLock<tokio::task::AbortHandle>,
    /// Wakes the flight's task when its last caller leaves (see `engine::spawn`).
    task_waker: Mutex<Option<Waker>>,
    /// Set by a shared-tier computation whose failure came from the fleet: how long it stays
    /// cached there (see `redis::shared`).
    pub(crate) fleet: OnceLock<Duration>,
    /// Set by a shared-tier computation whose failure was committed to the fleet: the retry
    /// window it has there, which this process keeps too.
    pub(crate) window: OnceLock<Duration>,
    /// The key's consecutive failures before this computation (for the backoff of a failure).
    pub(crate) failures: u32,
    /// Whether it refreshes a stored value (refresh-ahead, or an explicit refresh).
    pub(crate) refresh: bool,
}

impl<V, E> std::fmt::Debug for Flight<V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight")
            .field("finished", &self.outcome.get().is_some())
            .finish_non_exhaustive()
    }
}

struct State<V, E> {
    /// Participants that have not left: the callers waiting for the answer, the driving
    /// caller included. A task is not a participant.
    callers: usize,
    driver: Driver<V, E>,
    /// When the last caller of a task-driven flight left (`None` while any waits).
    unwatched_since: Option<Instant>,
}

enum Driver<V, E> {
    /// A participant is polling the computation.
    Caller,
    /// A tokio task is polling the computation; participants only wait.
    Task,
    /// The driving caller left, or the task was dropped, before the computation finished;
    /// the next waiter to look takes over, continuing the shared computation if there is
    /// one, or else running its own.
    Orphaned(Option<SharedComputation<V, E>>),
    Finished,
    /// The computation was dropped unfinished with nobody left to take over.
    Abandoned,
}

/// Who leaves a flight unfinished.
pub(crate) enum Leaving<V, E> {
    Waiter,
    /// The driver, with the shared computation it was polling (`None`: a caller-local one).
    Driver(Option<SharedComputation<V, E>>),
}

impl<V, E> Leaving<V, E> {
    fn into_shared(self) -> Option<SharedComputation<V, E>> {
        match self {
            Self::Waiter => None,
            Self::Driver(computation) => computation,
        }
    }
}

/// What a waiting participant is told to do.
pub(crate) enum Turn<V, E> {
    /// The flight finished: here is the answer.
    Answer(Answer<V, E>),
    /// The driver left: drive the flight from here, with its shared computation if any.
    TakeOver(Option<SharedComputation<V, E>>),
    /// The wait deadline passed and the flight has not finished.
    TimedOut,
}

impl<V, E> Flight<V, E> {
    /// A new flight started at `started` (cache clock), with its first participant (the
    /// driver) counted.
    /// `failures` is the key's count of consecutive failures so far; `refresh` whether it
    /// refreshes a stored value.
    pub(crate) fn new(started: u64, failures: u32, refresh: bool) -> Self {
        Self::with_state(
            started,
            failures,
            refresh,
            State {
                callers: 1,
                driver: Driver::Caller,
                unwatched_since: None,
            },
        )
    }

    /// A background refresh started at `started`: no caller, to be driven by a task from
    /// the start, and unwatched since now (so `abandon_after` bounds it like any flight
    /// nobody waits for).
    pub(crate) fn background(started: u64, failures: u32) -> Self {
        Self::with_state(
            started,
            failures,
            true,
            State {
                callers: 0,
                driver: Driver::Task,
                unwatched_since: Some(Instant::now()),
            },
        )
    }

    fn with_state(started: u64, failures: u32, refresh: bool, state: State<V, E>) -> Self {
        Self {
            state: Mutex::new(state),
            outcome: OnceLock::new(),
            notify: Notify::new(),
            started,
            edges: Edges::default(),
            task: OnceLock::new(),
            task_waker: Mutex::new(None),
            fleet: OnceLock::new(),
            window: OnceLock::new(),
            failures,
            refresh,
        }
    }

    /// Counts one more waiter, if the flight is still running; `false` if it is over.
    ///
    /// A flight that is over normally left the map already; one can stay behind only when
    /// removing it unwound (a key whose `Eq` panicked), and the caller then replaces it.
    // INVARIANT: called under the flight map's shard lock for this key, while the flight is
    // in the map; finishing or abandoning it takes that lock to remove it, so the answer
    // holds until the lock is released.
    pub(crate) fn join(&self) -> bool {
        let mut state = lock(&self.state);
        let running = !matches!(state.driver, Driver::Finished | Driver::Abandoned);
        if running {
            state.callers += 1;
            state.unwatched_since = None;
        }
        running
    }

    /// The driving caller hands the computation to a task: from now on participants only
    /// wait, and the flight no longer ends when they all leave.
    pub(crate) fn hand_to_task(&self) {
        let mut state = lock(&self.state);
        if matches!(state.driver, Driver::Caller) {
            state.driver = Driver::Task;
        }
    }

    /// Remembers the flight's task, to abort it if the cache is dropped.
    pub(crate) fn set_task(&self, task: tokio::task::AbortHandle) {
        // Ignored error: a flight is handed to a task once (its computation moves there).
        let _ = self.task.set(task);
    }

    /// Whether a caller drives the computation (rather than a task): one that stops being
    /// polled stalls the flight, which is what a wait timeout is for.
    fn driven_by_caller(&self) -> bool {
        matches!(lock(&self.state).driver, Driver::Caller)
    }

    /// Records the outcome and wakes every waiter, if there is any.
    pub(crate) fn finish(&self, outcome: Outcome<V, E>) {
        // Ignored error: only the driver finishes, and a flight has one driver at a time.
        let _ = self.outcome.set(outcome);
        let waiters = {
            let mut state = lock(&self.state);
            // The finisher is the driving caller, one of `callers`, or the task, which is
            // none of them.
            let finisher = usize::from(matches!(state.driver, Driver::Caller));
            state.driver = Driver::Finished;
            state.callers > finisher
        };
        // INVARIANT: only participants wait on `notify`, and each is counted in `callers`
        // (under this lock, in `join`) before it registers there; one that joins after the
        // look above finds the flight finished. With no other participant, the wake-up (a
        // lock inside `Notify`) would wake nobody: a lone leader's miss skips it.
        if waiters {
            self.notify.notify_waiters();
        }
    }

    /// A participant leaves before the flight finished.
    ///
    /// Returns whether the flight is now abandoned (this was the last participant of a
    /// flight that no task drives), with the shared computation to drop. The caller drops
    /// it *after* releasing every lock: dropping user code may do anything, including call
    /// the cache.
    pub(crate) fn leave(&self, leaving: Leaving<V, E>) -> (bool, Option<SharedComputation<V, E>>) {
        let mut state = lock(&self.state);
        state.callers -= 1;
        match (&state.driver, leaving) {
            // A task needs no caller: it runs on, and stores its result for the next ones.
            // Left without any, it is told, so that it can start counting `abandon_after`.
            (Driver::Task, leaving) => {
                let unwatched = state.callers == 0;
                if unwatched {
                    state.unwatched_since = Some(Instant::now());
                }
                drop(state);
                if unwatched {
                    if let Some(task) = lock(&self.task_waker).take() {
                        task.wake();
                    }
                }
                (false, leaving.into_shared())
            }
            (Driver::Finished | Driver::Abandoned, leaving) => (false, leaving.into_shared()),
            (_, leaving) if state.callers == 0 => {
                let orphan = match std::mem::replace(&mut state.driver, Driver::Abandoned) {
                    Driver::Orphaned(orphan) => orphan,
                    _ => None,
                };
                (true, leaving.into_shared().or(orphan))
            }
            (_, Leaving::Driver(computation)) => {
                state.driver = Driver::Orphaned(computation);
                drop(state);
                self.notify.notify_waiters();
                (false, None)
            }
            (_, Leaving::Waiter) => (false, None),
        }
    }

    /// Since when the flight's task drives it with no caller waiting, if it does. Remembers
    /// `task` to wake when that begins.
    pub(crate) fn unwatched(&self, task: &Waker) -> Option<Instant> {
        let state = lock(&self.state);
        let unwatched = (matches!(state.driver, Driver::Task) && state.callers == 0)
            .then_some(state.unwatched_since)
            .flatten();
        if unwatched.is_none() {
            // Registered under the state lock: a `leave` that empties the flight after this
            // look finds the waker.
            let mut waker = lock(&self.task_waker);
            if !waker.as_ref().is_some_and(|w| w.will_wake(task)) {
                *waker = Some(task.clone());
            }
        }
        unwatched
    }

    /// Abandons a task-driven flight that no caller has waited for since `since` (as
    /// [`unwatched`](Self::unwatched) told); `false` if one came back meanwhile.
    pub(crate) fn abandon_unwatched(&self, since: Instant) -> bool {
        let mut state = lock(&self.state);
        let unwatched = matches!(state.driver, Driver::Task)
            && state.callers == 0
            && state.unwatched_since.is_some_and(|last| last <= since);
        if unwatched {
            state.driver = Driver::Abandoned;
        }
        unwatched
    }

    /// The flight's task was dropped before the computation finished. Returns whether the
    /// flight is now abandoned (no participant is left to take over).
    pub(crate) fn task_dropped(&self) -> bool {
        let mut state = lock(&self.state);
        if !matches!(state.driver, Driver::Task) {
            return false;
        }
        if state.callers == 0 {
            state.driver = Driver::Abandoned;
            return true;
        }
        // A waiter takes over with its own computation (the task's future is gone).
        state.driver = Driver::Orphaned(None);
        drop(state);
        self.notify.notify_waiters();
        false
    }
}

impl<V: Clone, E> Flight<V, E> {
    /// Whether the flight is over (finished or abandoned): a caller replaces it.
    pub(crate) fn is_done(&self) -> bool {
        matches!(
            lock(&self.state).driver,
            Driver::Finished | Driver::Abandoned
        )
    }

    /// Waits until the flight finishes, this participant has to take over, or `deadline`
    /// (if any) passes while a caller, not a task, drives the computation.
    ///
    /// NOTE: no lock is held across the `.await`: the state is checked under the lock, then
    /// the lock is released before waiting.
    pub(crate) async fn wait(&self, mut deadline: Option<Instant>) -> Turn<V, E> {
        loop {
            let notified = std::pin::pin!(self.notify.notified());
            let mut notified = notified;
            // Register before looking, so a wake-up between the look and the wait is kept.
            notified.as_mut().enable();
            crate::sched::point();
            if let Some(turn) = self.look() {
                return turn;
            }
            match deadline {
                Some(at) => {
                    if tokio::time::timeout_at(at, notified).await.is_ok() {
                        continue;
                    }
                    if let Some(turn) = self.look() {
                        return turn;
                    }
                    if self.driven_by_caller() {
                        return Turn::TimedOut;
                    }
                    // A task makes progress on its own: superseding it would only restart
                    // the work, so this caller waits for it like the others.
                    deadline = None;
                }
                None => notified.await,
            }
        }
    }

    /// The answer of a finished flight.
    pub(crate) fn answer(&self) -> Answer<V, E> {
        self.outcome.get().map_or_else(
            // Unreachable: called after `finish`. An answer beats a panic all the same.
            || {
                Err(CacheError::Panicked {
                    message: "flight has no outcome".into(),
                })
            },
            Outcome::to_answer,
        )
    }

    fn look(&self) -> Option<Turn<V, E>> {
        if let Some(outcome) = self.outcome.get() {
            return Some(Turn::Answer(outcome.to_answer()));
        }
        let mut state = lock(&self.state);
        match &mut state.driver {
            Driver::Orphaned(computation) => {
                let computation = computation.take();
                state.driver = Driver::Caller;
                Some(Turn::TakeOver(computation))
            }
            Driver::Caller | Driver::Task => None,
            // `finish` sets the outcome before the state, so a finished flight has one.
            Driver::Finished => self.outcome.get().map(|o| Turn::Answer(o.to_answer())),
            // Impossible: a participant is still here, so the flight was not abandoned.
            Driver::Abandoned => Some(Turn::Answer(Err(CacheError::Panicked {
                message: "computation abandoned".into(),
            }))),
        }
    }
}

impl<V, E> Drop for Flight<V, E> {
    fn drop(&mut self) {
        // Nobody holds the flight: no caller waits for it, and it is out of the map, so its
        // result would not be stored. Its task, if one still runs, has nothing left to do.
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

impl<V: Send + Sync, E: Send + Sync> Node for Flight<V, E> {
    fn edges(&self) -> &Edges {
        &self.edges
    }

    fn is_over(&self) -> bool {
        self.outcome.get().is_some()
    }
}

/// A flight's handle as a node of the wait-for graph, made when a mark needs one (a
/// participant keeps only its typed handle).
pub(crate) trait ToNode {
    fn to_node(&self) -> NodeRef;
}

impl<V: Send + Sync + 'static, E: Send + Sync + 'static> ToNode for Arc<Flight<V, E>> {
    fn to_node(&self) -> NodeRef {
        Arc::clone(self) as NodeRef
    }
}

/// Polls a computation on behalf of `flight`: catches a panic in it (as `Err(message)`),
/// and marks the thread as computing for `flight` meanwhile, so that a call the computation
/// makes into any cache can tell whether it would wait for its own flight.
pub(crate) struct Computing<'a, F> {
    pub(crate) flight: Mark<'a>,
    pub(crate) future: F,
}

/// How a computation's poller holds its flight.
pub(crate) enum Mark<'a> {
    /// A caller polling it, which holds the flight anyway.
    Caller(&'a (dyn ToNode + Sync)),
    /// A flight's task: weakly, since a task must not keep its flight alive (see
    /// `engine::spawn`).
    Task(Weak<dyn Node>),
}

impl<F: Future + Unpin> Future for Computing<'_, F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let future = &mut this.future;
        let poll = || match catch_unwind(AssertUnwindSafe(|| Pin::new(future).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        };
        match &this.flight {
            Mark::Caller(flight) => reentry::within(flight.to_node(), poll),
            Mark::Task(flight) => match flight.upgrade() {
                Some(flight) => reentry::within(flight, poll),
                // The flight is gone (its task is being aborted): nobody can wait for it.
                None => poll(),
            },
        }
    }
}

/// The message of a panic payload: the `&str` or `String` passed to `panic!`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}
