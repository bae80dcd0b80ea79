use smartcache::smart_cached;

#[smart_cached]
struct Config {
    retries: u32,
}

fn main() {}
