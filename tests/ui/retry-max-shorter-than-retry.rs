use smartcache::smart_cached;

#[smart_cached(retry = "10m", retry_max = "1m")]
async fn shorter(id: u64) -> Result<u64, String> {
    Ok(id)
}

// The default `retry` is 5 minutes.
#[smart_cached(retry_max = "1m")]
async fn shorter_than_the_default(id: u64) -> Option<u64> {
    Some(id)
}

#[smart_cached(retry = "0s", retry_max = "1h")]
async fn nothing_to_back_off(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
