use smartcache::smart_cached;

#[smart_cached(retry = "30s", stale_if_error = "1h")]
async fn fetch(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
