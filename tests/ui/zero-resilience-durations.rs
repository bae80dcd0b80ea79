use smartcache::smart_cached;

#[smart_cached(ttl = "10m", refresh = "0s")]
async fn refresh_on_every_hit(id: u64) -> u64 {
    id
}

#[smart_cached(retry = "1m", retry_max = "0s")]
async fn no_cap(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[smart_cached(ttl = "10m", stale_if_error = "0ms")]
async fn no_window(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
