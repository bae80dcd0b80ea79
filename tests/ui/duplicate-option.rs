use smartcache::smart_cached;

#[smart_cached(ttl = "1m", capacity = 10, ttl = "2m")]
async fn fetch(id: u64) -> u64 {
    id
}

fn main() {}
