use smartcache::smart_cached;

/// An item of the user's that happens to have the handle's name.
pub fn users_cache() -> usize {
    0
}

#[smart_cached]
pub async fn users(page: u32) -> Vec<u32> {
    vec![page]
}

fn main() {}
