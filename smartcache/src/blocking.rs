//! The blocking and infallible forms: thin layers over `get_or_compute` (and
//! `get_or_compute_ref`).

use std::convert::Infallible;
use std::future::Future;
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::{AsyncSmartCache, BorrowedKey, CacheError};

impl<K, V, E> AsyncSmartCache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// [`get_or_compute_sync`](Self::get_or_compute_sync) for callers outside async code:
    /// blocks the calling thread until the answer is there.
    ///
    /// Needs no runtime: when the key's computation is in flight elsewhere (say, on a tokio
    /// runtime), this thread sleeps until it finishes and shares its result.
    ///
    /// # Deadlock
    ///
    /// Do not call it from async code (use `get_or_compute` there): if it has to wait for a
    /// flight that a task of the same thread drives, that task never runs again. From
    /// [`tokio::task::spawn_blocking`](https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html) or a plain thread it is fine.
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute).
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<&str, usize, std::io::Error> = AsyncSmartCache::new();
    /// let pid = cache.get_or_compute_blocking("pid", || Ok(std::process::id() as usize));
    /// assert_eq!(pid.unwrap(), std::process::id() as usize);
    /// ```
    pub fn get_or_compute_blocking<F>(&self, key: K, compute: F) -> Result<V, CacheError<E>>
    where
        F: FnOnce() -> Result<V, E>,
    {
        block_on(self.get_or_compute_sync(key, compute))
    }

    /// [`get_or_compute_blocking`](Self::get_or_compute_blocking), looking the key up by a
    /// borrowed form of it (`&str` for a `String` key, or any [`BorrowedKey`]), as
    /// [`get_or_compute_ref`](Self::get_or_compute_ref) does: a hit allocates nothing, and
    /// the owned key is built (with [`BorrowedKey::to_key`]) only on a miss.
    ///
    /// Do not call it from async code: see the deadlock section of
    /// [`get_or_compute_blocking`](Self::get_or_compute_blocking).
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute).
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<String, usize, std::io::Error> = AsyncSmartCache::new();
    /// let name: &str = "ada";
    /// assert_eq!(cache.get_or_compute_blocking_ref(name, || Ok(name.len())).unwrap(), 3);
    /// assert_eq!(cache.get("ada"), Some(3), "stored under the owned key");
    /// ```
    pub fn get_or_compute_blocking_ref<Q, F>(&self, key: &Q, compute: F) -> Result<V, CacheError<E>>
    where
        Q: BorrowedKey<K> + ?Sized,
        F: FnOnce() -> Result<V, E>,
    {
        // Called inside the flight's panic guard, as in `get_or_compute_sync`.
        block_on(self.get_or_compute_ref(key, || std::future::ready(compute())))
    }
}

impl<K, V> AsyncSmartCache<K, V, Infallible>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The stored value for `key`, or the value `init` computes: the form for computations
    /// that cannot fail, on a cache whose error type is [`Infallible`] (the default).
    ///
    /// Single-flight and cancellation as for [`get_or_compute`](Self::get_or_compute).
    ///
    /// # Panics
    ///
    /// If the computation panics, every caller that shared it panics with the same message
    /// (there is no error to return it as); nothing is stored and the cache keeps working.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let squares: AsyncSmartCache<u64, u64> = AsyncSmartCache::new();
    /// assert_eq!(squares.get_or_init(12, || async { 144 }).await, 144);
    /// # }
    /// ```
    pub async fn get_or_init<F, Fut>(&self, key: K, init: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let answer = self
            .get_or_compute(key, || async { Ok::<V, Infallible>(init().await) })
            .await;
        unwrap_infallible(answer)
    }
}

/// The value of an answer that cannot be an error, re-raising a computation's panic.
pub(crate) fn unwrap_infallible<V>(answer: Result<V, CacheError<Infallible>>) -> V {
    match answer {
        Ok(value) => value,
        Err(CacheError::Panicked { message }) => std::panic::resume_unwind(Box::new(message)),
        Err(CacheError::Failed(never) | CacheError::Cached { error: never, .. }) => match *never {},
        // No error to return it as: a deadlock reported as a panic beats one that hangs.
        Err(CacheError::Cycle) => panic!("{}", crate::error::CYCLE),
    }
}

/// Runs a future to completion on this thread, parking it while the future waits.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = pin!(future);
    // A hit is ready at once, and needs no waker of this thread's (which is allocated). A
    // pending future schedules the waker of its latest poll only: the one given next
    // replaces the no-op one.
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return output;
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            // A wake-up before `park` leaves a token, so `park` returns at once: none is lost.
            Poll::Pending => thread::park(),
        }
    }
}
