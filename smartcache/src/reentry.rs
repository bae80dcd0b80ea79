//! Cycle detection: a computation that waits, directly or through other keys (of any
//! cache), for its own flight would wait forever; it is answered [`CacheError::Cycle`]
//! instead.
//!
//! While a computation is polled, the thread records which flight it computes for
//! ([`within`]). A call made from inside it that takes part in another flight records a
//! wait-for edge from the computing flight to that one, and a call that would join a flight
//! checks first whether that flight already waits, through the edges, for the caller's own.
//! The edges form the wait-for graph of running flights; a cycle in it is a deadlock.
//!
//! What it sees: calls made while the computation is being polled (the `.await`s of its
//! body, however deep), on any thread. What it cannot see: a computation that spawns a task
//! and waits for that task's call. Such a cycle still waits forever; see the builder's
//! `wait_timeout` for a way out.
//!
//! [`CacheError::Cycle`]: crate::CacheError::Cycle

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::clock::lock;

/// A flight as a node of the wait-for graph, whatever the types of its cache.
pub(crate) trait Node: Send + Sync {
    fn edges(&self) -> &Edges;
    fn is_over(&self) -> bool;
}

pub(crate) type NodeRef = Arc<dyn Node>;

/// The flights that one flight's computation waits for now.
#[derive(Default)]
pub(crate) struct Edges(Mutex<Vec<NodeRef>>);

impl Edges {
    pub(crate) fn add(&self, to: &NodeRef) {
        lock(&self.0).push(Arc::clone(to));
    }

    /// Removes one edge to `to` (a computation may wait for the same flight twice).
    pub(crate) fn remove(&self, to: &dyn Node) {
        let mut edges = lock(&self.0);
        let to: *const dyn Node = to;
        if let Some(at) = edges
            .iter()
            .position(|edge| std::ptr::addr_eq(Arc::as_ptr(edge), to))
        {
            edges.swap_remove(at);
        }
    }

    fn snapshot(&self) -> Vec<NodeRef> {
        lock(&self.0).clone()
    }
}

thread_local! {
    /// The flight whose computation this thread is polling, if any.
    static COMPUTING: RefCell<Option<NodeRef>> = const { RefCell::new(None) };
}

/// The flight whose computation is being polled on this thread: the flight a call made now
/// would wait on behalf of.
pub(crate) fn current() -> Option<NodeRef> {
    COMPUTING.with(|computing| computing.borrow().clone())
}

/// Runs `poll` (one poll of `flight`'s computation, or the call that builds it) with the
/// thread marked as computing for `flight`; the previous mark comes back afterwards, also
/// when `poll` unwinds. Takes the handle the mark holds.
pub(crate) fn within<T>(flight: NodeRef, poll: impl FnOnce() -> T) -> T {
    struct Restore(Option<NodeRef>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            // `try_with`: during thread teardown the slot may be gone; nothing to restore.
            let _ = COMPUTING.try_with(|computing| *computing.borrow_mut() = previous);
        }
    }
    let previous = COMPUTING.with(|computing| computing.replace(Some(flight)));
    let _restore = Restore(previous);
    poll()
}

/// Whether `from` is `target`, or waits for it through running flights.
///
/// Locks one flight's edges at a time. The graph is acyclic (every edge that would close a
/// cycle is refused), so the walk ends; a flight that is over waits for nothing.
pub(crate) fn reaches(from: &NodeRef, target: &NodeRef) -> bool {
    let mut pending = vec![Arc::clone(from)];
    let mut steps = 0usize;
    while let Some(node) = pending.pop() {
        if same(&node, target) {
            return true;
        }
        // A bound all the same: a graph this large is not a call stack; give up looking.
        steps += 1;
        if steps > 10_000 {
            return false;
        }
        if !node.is_over() {
            pending.extend(node.edges().snapshot());
        }
    }
    false
}

/// Records that `from`'s computation waits for `to`, unless that closes a cycle. Returns
/// whether the edge was added.
///
/// INVARIANT: the edge is added *before* the check. Two computations that start waiting for
/// each other at once each add, then look: the later look of the two sees the other's edge
/// (each mutex orders them), so at least one of them finds the cycle and backs out.
pub(crate) fn wait_for(from: &NodeRef, to: &NodeRef) -> bool {
    if same(from, to) {
        return false;
    }
    from.edges().add(to);
    if reaches(to, from) {
        from.edges().remove(&**to);
        return false;
    }
    true
}

/// Whether two handles are the same flight (compared by address, whatever the vtable).
pub(crate) fn same(a: &NodeRef, b: &NodeRef) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
