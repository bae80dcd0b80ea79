use smartcache::smart_cached;

struct Report {
    lines: Vec<String>,
}

#[smart_cached]
async fn report(id: u64) -> Report {
    Report {
        lines: vec![id.to_string()],
    }
}

fn main() {}
