use smartcache::smart_cached;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Store<T>(T);

#[smart_cached]
impl<T: Clone + Send + Sync + 'static> Store<T> {
    #[smart_cached(skip(self))]
    async fn len(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
