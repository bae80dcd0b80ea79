#![deny(unused_must_use)]

use smartcache::smart_cached;

#[smart_cached]
#[must_use = "the token is the whole point"]
async fn token(user: u64) -> String {
    format!("t{user}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    token(1).await;
}
