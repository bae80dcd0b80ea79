use smartcache::smart_cached;

#[smart_cached]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
