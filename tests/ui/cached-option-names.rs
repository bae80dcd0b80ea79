// The options of the `cached` crate, as a user moving from `#[cached]` writes them: each one
// is an error naming what to write instead.

use smartcache::smart_cached;

#[smart_cached(size = 100)]
async fn a(x: u8) -> u8 { x }

#[smart_cached(max_size = 100)]
async fn b(x: u8) -> u8 { x }

#[smart_cached(time = 60)]
async fn c(x: u8) -> u8 { x }

#[smart_cached(ttl_secs = 60)]
async fn d(x: u8) -> u8 { x }

#[smart_cached(result = true)]
async fn e(x: u8) -> Result<u8, String> { Ok(x) }

#[smart_cached(option = true)]
async fn f(x: u8) -> Option<u8> { Some(x) }

#[smart_cached(sync_writes = "by_key")]
async fn g(x: u8) -> u8 { x }

#[smart_cached(in_impl = true)]
async fn h(x: u8) -> u8 { x }

#[smart_cached(convert = r#"{ format!("{x}") }"#)]
async fn i(x: u8) -> u8 { x }

#[smart_cached(key = "String")]
async fn j(x: u8) -> u8 { x }

#[smart_cached(with_cached_flag = true)]
async fn k(x: u8) -> u8 { x }

#[smart_cached(time_refresh = true, unbound)]
async fn l(x: u8) -> u8 { x }

#[smart_cached(ttl = "core::time::Duration::from_secs(60)", cache_err = true, companions_vis = "pub")]
async fn m(x: u8) -> Result<u8, String> { Ok(x) }

#[smart_cached(name = "FIB_CACHE")]
async fn n(x: u8) -> u8 { x }

fn main() {}
