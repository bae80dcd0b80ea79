use std::future::Future;

use smartcache::smart_cached;

#[smart_cached]
fn square(x: u64) -> impl Future<Output = u64> {
    async move { x * x }
}

fn main() {}
