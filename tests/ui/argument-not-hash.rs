use std::sync::Mutex;

use smartcache::smart_cached;

/// A connection pool.
#[derive(Clone)]
pub struct Pool {
    pub url: String,
}

#[smart_cached]
async fn user(pool: Pool, id: u64) -> String {
    format!("{}{id}", pool.url)
}

#[smart_cached]
async fn count(lock: &Mutex<u64>, State(state): State<Pool>) -> u64 {
    *lock.lock().unwrap() + state.url.len() as u64
}

pub struct State<S>(pub S);

fn main() {}
