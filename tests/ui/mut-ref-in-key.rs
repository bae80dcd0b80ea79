use smartcache::smart_cached;

#[smart_cached]
async fn next_id(counter: &mut u64, prefix: String) -> String {
    *counter += 1;
    format!("{prefix}{counter}")
}

fn main() {}
