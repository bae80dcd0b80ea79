//! The reclaimer: one thread per process that frees large blocks of memory (emptied map
//! tables, the storage `clear` swapped out) off the callers' paths.
//!
//! Why: with glibc's malloc, freeing a large block at the top of the heap can hand tens of
//! megabytes back to the kernel in that one `free` (the heap is trimmed from its top, and the
//! freed block merges with all the free memory below it). The kernel's work for it is
//! milliseconds of CPU, and it lands on whichever call frees the block: measured at a million
//! entries, an expiry step that shrank one map shard (freeing its 804 KiB table) took up to
//! 6.6 ms (`docs/benchmarks.md`, "Worst call under housekeeping"). Freed here, the same trim
//! costs the caller nothing; the memory still goes back at once, microseconds later.
//!
//! The thread starts on the first large release and then waits for work for the life of the
//! process. Where no thread can be started (or in a child process forked after it started),
//! [`release`] drops its garbage inline, as if there were no reclaimer.

use std::sync::{Condvar, Mutex, OnceLock};

use crate::clock::lock;

/// Blocks of fewer bytes are freed by the caller: a small `free` trims little, and a
/// hand-over costs an allocation (the `Box`) and a wake-up.
pub(crate) const RECLAIM_BYTES: usize = 64 * 1024;

/// Garbage waiting to be dropped.
type Garbage = Box<dyn Send>;

/// The hand-over between callers and the reclaimer thread.
struct Reclaimer {
    queue: Mutex<Queue>,
    /// Signalled when garbage is queued.
    queued: Condvar,
    /// Signalled when the thread has dropped a batch.
    freed: Condvar,
}

struct Queue {
    items: Vec<Garbage>,
    /// Items queued so far.
    sent: u64,
    /// Items dropped so far: every item up to this count is freed.
    dropped: u64,
}

static RECLAIMER: Reclaimer = Reclaimer {
    queue: Mutex::new(Queue {
        items: Vec::new(),
        sent: 0,
        dropped: 0,
    }),
    queued: Condvar::new(),
    freed: Condvar::new(),
};

/// The id of the process the thread was started in; `None` if it could not be started.
static STARTED: OnceLock<Option<u32>> = OnceLock::new();

/// Whether the reclaimer thread runs in this process, starting it if it never was.
fn running() -> bool {
    let started = STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("smartcache-reclaim".to_owned())
            .spawn(run);
        // The handle is dropped: the thread is detached, and waits for work until the
        // process exits (anything still queued then goes with the process).
        spawned.ok().map(|_| std::process::id())
    });
    // A child forked after the thread started has no such thread (`fork` copies only the
    // calling thread): there, everything is dropped inline.
    *started == Some(std::process::id())
}

/// Drops `garbage`, which holds `bytes` bytes of memory: on the reclaimer thread if they are
/// [`RECLAIM_BYTES`] or more (and the thread runs), else here.
///
/// NOTE: the garbage's drop must run no user code (the caller checks with
/// [`std::mem::needs_drop`], or empties it first): user `Drop` code runs in the call that
/// removed the entry, as it always has, never later on another thread, and a panic in it
/// could not stop the reclaimer.
pub(crate) fn release<T: Send + 'static>(garbage: T, bytes: usize) {
    if bytes < RECLAIM_BYTES || !running() {
        drop(garbage);
        return;
    }
    let garbage: Garbage = Box::new(garbage);
    let mut queue = lock(&RECLAIMER.queue);
    queue.items.push(garbage);
    queue.sent += 1;
    // INVARIANT: held for a push only (the thread takes the whole batch and drops it after
    // releasing the lock), so a caller never waits on a free here.
    drop(queue);
    RECLAIMER.queued.notify_one();
}

/// Waits until everything handed to the reclaimer before this call has been freed: for
/// tests and measurements that count the bytes held.
pub(crate) fn flush() {
    if STARTED.get().copied().flatten() != Some(std::process::id()) {
        return; // nothing was ever handed over in this process
    }
    let mut queue = lock(&RECLAIMER.queue);
    let sent = queue.sent;
    while queue.dropped < sent {
        queue = (RECLAIMER.freed.wait(queue)).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// The reclaimer thread: drops each batch of garbage as it comes.
fn run() {
    loop {
        let mut queue = lock(&RECLAIMER.queue);
        while queue.items.is_empty() {
            queue =
                (RECLAIMER.queued.wait(queue)).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let (batch, sent) = (std::mem::take(&mut queue.items), queue.sent);
        drop(queue);
        // The frees (and any trim of the heap they cause) happen here, under no lock of
        // ours. The batch's own buffer goes too, before `dropped` says so: after `flush`, the
        // reclaimer holds no memory but its empty queue.
        drop(batch);
        lock(&RECLAIMER.queue).dropped = sent;
        RECLAIMER.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn large_garbage_is_dropped_by_the_thread_and_flush_waits_for_it() {
        /// Garbage that records the thread that drops it.
        struct Tell(
            Arc<Mutex<Option<std::thread::ThreadId>>>,
            #[allow(dead_code)] Vec<u8>,
        );
        impl Drop for Tell {
            fn drop(&mut self) {
                *lock(&self.0) = Some(std::thread::current().id());
            }
        }
        let small = Arc::new(Mutex::new(None));
        release(Tell(Arc::clone(&small), Vec::new()), RECLAIM_BYTES - 1);
        assert_eq!(*lock(&small), Some(std::thread::current().id()));

        let large = Arc::new(Mutex::new(None));
        release(
            Tell(Arc::clone(&large), vec![0; RECLAIM_BYTES]),
            RECLAIM_BYTES,
        );
        flush();
        let dropper = lock(&large).expect("dropped before flush returned");
        assert_ne!(dropper, std::thread::current().id());
        assert_eq!(Arc::strong_count(&large), 1);
    }
}
