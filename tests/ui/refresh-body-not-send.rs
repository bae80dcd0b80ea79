// Refresh-ahead moves the body into a background task: its future must be `Send`.

use std::rc::Rc;

use smartcache::smart_cached;

#[smart_cached(ttl = "10m", refresh = "1m")]
async fn local_state(id: u64) -> u64 {
    let shared = Rc::new(id);
    tokio::task::yield_now().await;
    *shared
}

fn main() {}
