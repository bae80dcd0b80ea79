mod api {
    use smartcache::smart_cached;

    /// A public fn whose companions stay private to this module.
    #[smart_cached(companions = "private")]
    pub async fn users(page: u32) -> Vec<u32> {
        vec![page]
    }
}

fn main() {
    let _ = api::users_cache();
}
