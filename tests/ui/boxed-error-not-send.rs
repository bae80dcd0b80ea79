use smartcache::smart_cached;

#[smart_cached]
async fn load(id: u64) -> Result<String, Box<dyn std::error::Error>> {
    Ok(id.to_string())
}

fn main() {}
