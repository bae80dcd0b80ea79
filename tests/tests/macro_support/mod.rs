//! What the `macro_*` behaviour tests share.

/// Yields to the other tasks of this (current-thread) runtime until `done` holds: the
/// spawned callers run between two checks, so no sleep is needed to reach a given state.
pub(crate) async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}
