use smartcache::smart_cached;

/// Not `Hash`.
#[derive(Clone, PartialEq, Eq)]
struct Node(u32);

impl Node {
    // An argument whose type names `Self`: the hint cannot name it.
    #[smart_cached]
    async fn distance(other: Self, to: u32) -> u32 {
        other.0.abs_diff(to)
    }
}

fn main() {}
