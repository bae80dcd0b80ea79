use smartcache::smart_cached;

struct Db;

#[smart_cached(ttl = "1m")]
impl Db {
    #[smart_cached(skip(self))]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
