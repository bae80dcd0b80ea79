use smartcache::smart_cached;

#[smart_cached(key: f64 = *ratio)]
async fn scaled(ratio: f64) -> u64 {
    ratio as u64
}

fn main() {}
