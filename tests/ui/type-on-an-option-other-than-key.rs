use smartcache::smart_cached;

#[smart_cached(capacity: u64 = 5)]
async fn lookup(id: u64) -> u64 {
    id
}

fn main() {}
