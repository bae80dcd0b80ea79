use smartcache::smart_cached;

/// A service holding a connection pool: not `Hash`, not meant to be in a key.
struct Service {
    pool: Vec<String>,
}

impl Service {
    #[smart_cached]
    async fn user(&self, id: u64) -> String {
        format!("{}{id}", self.pool.len())
    }
}

fn main() {}
