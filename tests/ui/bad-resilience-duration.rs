use smartcache::smart_cached;

#[smart_cached(retry_max = 3600, refresh = "1 fortnight", stale_if_error = "1h"ms, ttl = "1h")]
async fn fetch(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
