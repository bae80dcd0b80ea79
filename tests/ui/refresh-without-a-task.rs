// Refresh-ahead runs the body in a background task: it needs an `async fn` whose body
// borrows nothing from its caller.

use smartcache::smart_cached;

#[smart_cached(ttl = "10m", refresh = "1m")]
fn blocking(id: u64) -> u64 {
    id
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Service;

impl Service {
    #[smart_cached(ttl = "10m", refresh = "1m")]
    async fn borrowing(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
