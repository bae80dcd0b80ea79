use smartcache::smart_cached;

struct Service;

impl Service {
    #[smart_cached(skip(self))]
    async fn user(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {}
