// `cached`'s `refresh = true` extends the time to live on a hit; here `refresh` is
// refresh-ahead and takes a duration.

use smartcache::smart_cached;

#[smart_cached(ttl = "10m", refresh = true)]
async fn fetch(id: u64) -> u64 {
    id
}

fn main() {}
