use smartcache::smart_cached;

#[smart_cached(shared = true)]
async fn price(id: u64) -> u64 {
    id
}

fn main() {}
