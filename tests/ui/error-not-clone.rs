use smartcache::smart_cached;

#[derive(Debug)]
struct ApiError;

#[smart_cached]
async fn fetch(id: u64) -> Result<String, ApiError> {
    if id == 0 {
        Err(ApiError)
    } else {
        Ok(id.to_string())
    }
}

fn main() {}
