use smartcache::smart_cached;

trait Lookup {
    async fn get(&self, id: u64) -> u64;
}

struct Db;

#[smart_cached]
impl Lookup for Db {
    #[smart_cached(skip(self))]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
