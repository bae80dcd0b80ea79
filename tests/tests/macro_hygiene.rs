//! Generated code only uses absolute paths and hidden names: local modules named `core`
//! and `std`, a module without the prelude, shadowing types and arguments named like the
//! generated locals must not break it.

#![allow(dead_code)]

mod core {}
mod std {}

/// Names the generated code must not pick up instead of the real ones.
struct Option;
struct Result;
struct Some;
struct None;
struct Ok;
struct Box;
struct Vec;
struct String;
struct Duration;
struct OnceLock;
struct Clone;

#[::smartcache::smart_cached(ttl = "1m", capacity = 10)]
async fn shadowed(key: u64, cache: u64, result: u64, answer: u64) -> u64 {
    key + cache + result + answer
}

#[::smartcache::smart_cached(retry = "10s", skip(route, probe))]
async fn named_like_generated(
    args: u64,
    route: u64,
    probe: &str,
    body: &str,
) -> ::core::result::Result<u64, ::smartcache::CacheError<u8>> {
    ::core::result::Result::Ok(args + route + probe.len() as u64 + body.len() as u64)
}

/// Named like the locals that borrow by-value key parts (which are mixed-site: none of these
/// can be taken for one of them).
#[::smartcache::smart_cached]
async fn named_like_key_parts(
    __smartcache_k1: u64,
    __smartcache_k0: ::std::string::String,
    id: u64,
) -> u64 {
    __smartcache_k1 * 100 + __smartcache_k0.len() as u64 * 10 + id
}

#[::smartcache::smart_cached]
async fn transparent(flag: bool) -> ::core::result::Result<u8, u8> {
    if flag {
        ::core::result::Result::Ok(1)
    } else {
        ::core::result::Result::Err(0)
    }
}

#[no_implicit_prelude]
mod no_prelude {
    use ::smartcache::smart_cached;

    mod core {}
    mod std {}

    #[derive(::core::clone::Clone, ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash)]
    pub(crate) struct Id(pub(crate) u32);

    #[smart_cached]
    pub(crate) async fn double(id: Id) -> u32 {
        id.0 * 2
    }

    #[smart_cached]
    pub(crate) async fn label(name: &str) -> ::std::string::String {
        ::std::format!("<{name}>")
    }

    #[smart_cached]
    impl Id {
        #[smart_cached]
        pub(crate) async fn square(
            &self,
        ) -> ::core::result::Result<u32, ::smartcache::CacheError<()>> {
            ::core::result::Result::Ok(self.0 * self.0)
        }
    }
}

#[tokio::test]
async fn generated_code_ignores_local_names() {
    assert_eq!(shadowed(1, 2, 3, 4).await, 10);
    assert_eq!(named_like_generated(1, 2, "abc", "de").await.unwrap(), 8);
    assert_eq!(named_like_generated(1, 9, "zz", "de").await.unwrap(), 8);
    assert_eq!(named_like_key_parts(1, "ab".into(), 3).await, 123);
    assert_eq!(named_like_key_parts(1, "ab".into(), 3).await, 123);
    let key = (1, ::std::string::String::from("ab"), 3);
    assert_eq!(
        named_like_key_parts_cache().get(&key),
        ::core::option::Option::Some(123)
    );
    assert_eq!(transparent(false).await, ::core::result::Result::Err(0));
    assert_eq!(no_prelude::double(no_prelude::Id(21)).await, 42);
    assert_eq!(no_prelude::label("x").await, "<x>");
    assert_eq!(no_prelude::Id(3).square().await.unwrap(), 9);
    assert_eq!(no_prelude::Id::square_cache().stats().misses, 1);
}
