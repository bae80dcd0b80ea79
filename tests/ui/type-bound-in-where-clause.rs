use smartcache::smart_cached;

#[smart_cached]
async fn total<'a>(items: &'a [u64]) -> u64
where
    u64: Copy,
{
    items.iter().sum()
}

fn main() {}
