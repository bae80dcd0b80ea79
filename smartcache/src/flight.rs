//! A flight: one running computation for one key, shared by every caller of that key.
//!
//! ```text
//!            lead (first caller)
//!                  |
//!                  v           driver dropped,       a waiter takes over
//!   +-------->  Running  ---- callers remain ---->  Orphaned  ---------------+
//!   |              |                                   |                     |
//!   |              | computation returns or panics     | last caller         |
//!   |              v                                   v dropped             |
//!   |          Finished                            Abandoned                 |
//!   +--------------------------------------------------------------------- --+
//! ```
//!
//! The callers of a flight are its *participants*: the one polling the computation is the
//! driver, the others wait on [`Flight::notify`]. Whatever the driver was polling survives
//! it when it can: a shared (boxed, `'static`) computation is handed to a waiter, which goes
//! on polling the very same future; a caller-local computation cannot outlive its caller, so
//! the waiter that takes over runs its own. When the last participant leaves, the flight is
//! abandoned: the computation is dropped and nothing is stored.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use tokio::sync::Notify;

use crate::CacheError;
use crate::clock::lock;

/// A computation that any participant can poll: owned by the flight, not by a caller.
pub(crate) type SharedComputation<V, E> = Pin<Box<dyn Future<Output = Result<V, E>> + Send>>;

/// How a flight ended.
#[derive(Debug)]
pub(crate) enum Outcome<V, E> {
    Value(V),
    Error(Arc<E>),
    Panicked(String),
}

impl<V: Clone, E> Outcome<V, E> {
    /// The answer for one participant of the flight.
    pub(crate) fn to_answer(&self) -> Result<V, CacheError<E>> {
        match self {
            Self::Value(value) => Ok(value.clone()),
            Self::Error(error) => Err(CacheError::Failed(Arc::clone(error))),
            Self::Panicked(message) => Err(CacheError::Panicked {
                message: message.clone(),
            }),
        }
    }
}

pub(crate) struct Flight<V, E> {
    state: Mutex<State<V, E>>,
    /// Set once, by the driver, before the state becomes `Finished`.
    outcome: OnceLock<Outcome<V, E>>,
    /// Wakes waiters when the flight finishes or is orphaned.
    notify: Notify,
    /// When the computation started, on the cache clock (nanoseconds).
    pub(crate) started: u64,
}

impl<V, E> std::fmt::Debug for Flight<V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight")
            .field("finished", &self.outcome.get().is_some())
            .finish_non_exhaustive()
    }
}

struct State<V, E> {
    /// Participants that have not left: the driver and the waiters.
    callers: usize,
    driver: Driver<V, E>,
}

enum Driver<V, E> {
    /// A participant is polling the computation.
    Running,
    /// The driver left before the computation finished; the next waiter to look takes over,
    /// continuing the shared computation if there is one, or else running its own.
    Orphaned(Option<SharedComputation<V, E>>),
    Finished,
    /// Every participant left before the computation finished; it was dropped.
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
    Answer(Result<V, CacheError<E>>),
    /// The driver left: drive the flight from here, with its shared computation if any.
    TakeOver(Option<SharedComputation<V, E>>),
}

impl<V, E> Flight<V, E> {
    /// A new flight started at `started` (cache clock), with its first participant (the
    /// driver) counted.
    pub(crate) fn new(started: u64) -> Self {
        Self {
            state: Mutex::new(State {
                callers: 1,
                driver: Driver::Running,
            }),
            outcome: OnceLock::new(),
            notify: Notify::new(),
            started,
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
        let running = matches!(state.driver, Driver::Running | Driver::Orphaned(_));
        if running {
            state.callers += 1;
        }
        running
    }

    /// Records the outcome and wakes every waiter.
    pub(crate) fn finish(&self, outcome: Outcome<V, E>) {
        // Ignored error: only the driver finishes, and a flight has one driver at a time.
        let _ = self.outcome.set(outcome);
        lock(&self.state).driver = Driver::Finished;
        self.notify.notify_waiters();
    }

    /// A participant leaves before the flight finished.
    ///
    /// Returns whether the flight is now abandoned (this was the last participant), with
    /// the shared computation to drop. The caller drops it *after* releasing every lock:
    /// dropping user code may do anything, including call the cache.
    pub(crate) fn leave(&self, leaving: Leaving<V, E>) -> (bool, Option<SharedComputation<V, E>>) {
        let mut state = lock(&self.state);
        state.callers -= 1;
        match (&state.driver, leaving) {
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
}

impl<V: Clone, E> Flight<V, E> {
    /// Waits until the flight finishes or this participant has to take over.
    ///
    /// NOTE: no lock is held across the `.await`: the state is checked under the lock, then
    /// the lock is released before waiting.
    pub(crate) async fn wait(&self) -> Turn<V, E> {
        loop {
            let notified = std::pin::pin!(self.notify.notified());
            let mut notified = notified;
            // Register before looking, so a wake-up between the look and the wait is kept.
            notified.as_mut().enable();
            if let Some(turn) = self.look() {
                return turn;
            }
            notified.await;
        }
    }

    /// The answer of a finished flight.
    pub(crate) fn answer(&self) -> Result<V, CacheError<E>> {
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
                state.driver = Driver::Running;
                Some(Turn::TakeOver(computation))
            }
            Driver::Running => None,
            // `finish` sets the outcome before the state, so a finished flight has one.
            Driver::Finished => self.outcome.get().map(|o| Turn::Answer(o.to_answer())),
            // Impossible: a participant is still here, so the flight was not abandoned.
            Driver::Abandoned => Some(Turn::Answer(Err(CacheError::Panicked {
                message: "computation abandoned".into(),
            }))),
        }
    }
}

/// Polls a computation, turning a panic in it into `Err(message)`.
pub(crate) struct CatchPanic<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
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
