use smartcache::smart_cached;

#[smart_cached(retry = "1m")]
async fn total(ids: Vec<u64>) -> u64 {
    ids.iter().sum()
}

fn main() {}
