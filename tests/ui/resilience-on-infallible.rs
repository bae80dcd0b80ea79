use smartcache::smart_cached;

#[smart_cached(ttl = "1m", retry_max = "1h", stale_if_error = "1h")]
async fn total(ids: Vec<u64>) -> u64 {
    ids.iter().sum()
}

fn main() {}
