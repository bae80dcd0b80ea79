use smartcache::smart_cached;

#[smart_cached]
async fn render(value: impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {}
