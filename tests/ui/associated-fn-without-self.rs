use smartcache::smart_cached;

struct Service;

impl Service {
    // Neither `self` nor `Self`: the attribute cannot tell it from a free fn. Mark the `impl`
    // block with `#[smart_cached]` too.
    #[smart_cached]
    async fn version(major: u8) -> String {
        format!("v{major}")
    }
}

fn main() {}
