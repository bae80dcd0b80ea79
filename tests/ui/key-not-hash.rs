use smartcache::smart_cached;

#[derive(Clone, PartialEq, Eq)]
struct Filter {
    term: String,
}

#[smart_cached]
async fn search(page: u32, filter: Filter) -> Vec<String> {
    vec![format!("{page}: {}", filter.term)]
}

fn main() {}
