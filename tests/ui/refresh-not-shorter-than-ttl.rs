use smartcache::smart_cached;

#[smart_cached(ttl = "1m", refresh = "1m")]
async fn equal(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[smart_cached(refresh = "1h", ttl = "10m")]
async fn longer(id: u64) -> u64 {
    id
}

fn main() {}
