use smartcache::smart_cached;

#[smart_cached(retry = 300, capacity = "10k", name = users)]
async fn fetch(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
