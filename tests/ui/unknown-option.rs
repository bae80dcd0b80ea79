use smartcache::smart_cached;

#[smart_cached(retyr = "5m")]
async fn fetch(id: u64) -> u64 {
    id
}

fn main() {}
