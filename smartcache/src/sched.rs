//! Where flight tasks run, and the schedule points of the flight engine.
//!
//! Normally a flight's task runs on the tokio runtime of the caller that started it, and a
//! schedule point does nothing. In the crate's model-checking tests (`RUSTFLAGS="--cfg
//! shuttle" cargo test -p smartcache --lib shuttle`), tasks run on shuttle's executor and each
//! schedule point lets shuttle switch threads there, so that it explores the interleavings of
//! the engine's steps: every step between two points is one critical section (or none), so
//! switching at the points reaches every order in which the steps of concurrent calls can
//! take their locks.

use std::future::Future;

/// A place where another thread may run next. No lock may be held here.
#[inline(always)]
pub(crate) fn point() {
    #[cfg(all(test, shuttle))]
    shuttle::thread::yield_now();
}

/// Something that can run a flight's task.
#[derive(Debug)]
pub(crate) enum Spawner {
    #[cfg_attr(all(test, shuttle), allow(dead_code))] // the model runs every task on shuttle
    Tokio(tokio::runtime::Handle),
    #[cfg(all(test, shuttle))]
    Shuttle,
}

impl Spawner {
    /// The executor of the current context: the current tokio runtime, if any.
    pub(crate) fn current() -> Option<Self> {
        #[cfg(all(test, shuttle))]
        return Some(Self::Shuttle);
        #[cfg(not(all(test, shuttle)))]
        tokio::runtime::Handle::try_current().ok().map(Self::Tokio)
    }

    /// Runs `task` to completion in the background; its abort handle where it has one.
    #[cfg_attr(not(all(test, shuttle)), allow(clippy::unnecessary_wraps))] // `None`: shuttle
    pub(crate) fn spawn(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::AbortHandle> {
        match self {
            Self::Tokio(runtime) => Some(runtime.spawn(task).abort_handle()),
            #[cfg(all(test, shuttle))]
            Self::Shuttle => {
                drop(shuttle::future::spawn(task));
                None
            }
        }
    }
}
