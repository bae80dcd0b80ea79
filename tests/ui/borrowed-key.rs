use std::borrow::Cow;

use smartcache::smart_cached;

#[smart_cached]
async fn greet(name: Cow<'static, str>, title: Option<&str>) -> String {
    format!("{} {name}", title.unwrap_or(""))
}

fn main() {}
