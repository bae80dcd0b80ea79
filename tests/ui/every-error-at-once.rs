use smartcache::smart_cached;

#[smart_cached(retyr = "1m", ttl = "soon", capacity = -1, skip(nobody))]
fn fetch<T>(id: T) -> T {
    id
}

fn main() {}
