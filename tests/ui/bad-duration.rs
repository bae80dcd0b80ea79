use smartcache::smart_cached;

#[smart_cached(retry = "5")]
async fn fetch(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
