use smartcache::smart_cached;

#[smart_cached(skip(client, usr))]
async fn fetch(client: &str, user: u64) -> String {
    format!("{client}/{user}")
}

fn main() {}
