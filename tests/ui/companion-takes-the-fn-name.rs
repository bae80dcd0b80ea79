use smartcache::smart_cached;

#[smart_cached(handle = users)]
pub async fn users(page: u32) -> Vec<u32> {
    vec![page]
}

#[smart_cached(handle = pages, uncached = pages)]
pub async fn page(page: u32) -> Vec<u32> {
    vec![page]
}

fn main() {}
