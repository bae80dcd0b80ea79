use smartcache::smart_cached;

#[smart_cached(key: u64 = *id, skip(label))]
async fn lookup(id: u64, label: &str) -> String {
    format!("{label}{id}")
}

fn main() {}
