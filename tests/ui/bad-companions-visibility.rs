use smartcache::smart_cached;

#[smart_cached(companions = "public")]
pub async fn users(page: u32) -> Vec<u32> {
    vec![page]
}

#[smart_cached(handle = "users_handle")]
pub async fn pages(page: u32) -> Vec<u32> {
    vec![page]
}

#[smart_cached(companions = false)]
pub async fn books(page: u32) -> Vec<u32> {
    vec![page]
}

fn main() {}
