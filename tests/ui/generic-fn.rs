use smartcache::smart_cached;

#[smart_cached]
async fn first<T: Clone + Send + Sync + 'static>(items: Vec<T>) -> Option<T> {
    items.first().cloned()
}

fn main() {}
