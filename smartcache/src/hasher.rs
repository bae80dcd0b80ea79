//! The hash function of a cache's maps, chosen on the builder ([`KeyHasher`]).

use std::hash::{BuildHasher, Hash, Hasher};

/// The hash function a cache uses for its keys, set with
/// [`AsyncSmartCacheBuilder::key_hasher`](crate::AsyncSmartCacheBuilder::key_hasher).
///
/// Both are seeded at random per cache.
///
/// ```
/// use smartcache::{AsyncSmartCache, KeyHasher};
///
/// // Keys come from the network: resist hash flooding.
/// let cache: AsyncSmartCache<String, u64> = AsyncSmartCache::builder()
///     .key_hasher(KeyHasher::SipHash)
///     .build();
/// # let _ = cache;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyHasher {
    /// [foldhash](https://docs.rs/foldhash)'s fast hasher (the default): a few nanoseconds
    /// per small key. It makes no claim of resistance to hash flooding, where an attacker
    /// who picks the keys makes them collide.
    #[default]
    Foldhash,
    /// SipHash-1-3, as `std::collections::HashMap` uses: keyed, designed against hash
    /// flooding, and a few nanoseconds slower per lookup for small keys. Choose it when
    /// keys come from untrusted input.
    SipHash,
}

/// The `BuildHasher` of every map of a cache.
#[derive(Debug, Clone)]
pub(crate) enum MapHasher {
    Fast(foldhash::fast::RandomState),
    Sip(std::hash::RandomState),
    /// foldhash with a fixed seed: for tests whose outcome depends on how keys spread.
    #[cfg(test)]
    Fixed(foldhash::fast::FixedState),
}

impl MapHasher {
    pub(crate) fn new(kind: KeyHasher) -> Self {
        match kind {
            KeyHasher::Foldhash => Self::Fast(foldhash::fast::RandomState::default()),
            KeyHasher::SipHash => Self::Sip(std::hash::RandomState::new()),
        }
    }

    #[cfg(test)]
    pub(crate) fn fixed(seed: u64) -> Self {
        Self::Fixed(foldhash::fast::FixedState::with_seed(seed))
    }
}

impl Default for MapHasher {
    fn default() -> Self {
        Self::new(KeyHasher::default())
    }
}

impl BuildHasher for MapHasher {
    type Hasher = AnyHasher;

    #[inline]
    fn build_hasher(&self) -> AnyHasher {
        match self {
            Self::Fast(state) => AnyHasher::Fast(state.build_hasher()),
            Self::Sip(state) => AnyHasher::Sip(state.build_hasher()),
            #[cfg(test)]
            Self::Fixed(state) => AnyHasher::Fast(state.build_hasher()),
        }
    }

    /// The same hash as `build_hasher`, `hash` and `finish`, with the kind matched once, up
    /// front: the hit path hashes through here, and through an [`AnyHasher`] the compiler
    /// built the hasher on the stack and called its `finish` out of line (about 17
    /// instructions more per `u64` hit than foldhash alone).
    #[inline]
    fn hash_one<T: Hash>(&self, key: T) -> u64 {
        match self {
            Self::Fast(state) => state.hash_one(key),
            Self::Sip(state) => state.hash_one(key),
            #[cfg(test)]
            Self::Fixed(state) => state.hash_one(key),
        }
    }
}

/// One of the hashers of [`MapHasher`]; the branch on every write is predicted right.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // foldhash's hasher has no `Debug`; nothing prints it
pub(crate) enum AnyHasher {
    Fast(foldhash::fast::FoldHasher<'static>),
    Sip(std::hash::DefaultHasher),
}

macro_rules! forward {
    ($($name:ident($ty:ty)),* $(,)?) => {
        $(
            #[inline]
            fn $name(&mut self, value: $ty) {
                match self {
                    Self::Fast(hasher) => hasher.$name(value),
                    Self::Sip(hasher) => hasher.$name(value),
                }
            }
        )*
    };
}

impl Hasher for AnyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        match self {
            Self::Fast(hasher) => hasher.finish(),
            Self::Sip(hasher) => hasher.finish(),
        }
    }

    forward!(
        write(&[u8]),
        write_u8(u8),
        write_u16(u16),
        write_u32(u32),
        write_u64(u64),
        write_u128(u128),
        write_usize(usize),
        write_i8(i8),
        write_i16(i16),
        write_i32(i32),
        write_i64(i64),
        write_i128(i128),
        write_isize(isize),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_hashes_equal_keys_equally_and_differs_from_the_other_seed() {
        for kind in [KeyHasher::Foldhash, KeyHasher::SipHash] {
            let hasher = MapHasher::new(kind);
            assert_eq!(hasher.hash_one("key"), hasher.hash_one(String::from("key")));
            assert_ne!(hasher.hash_one(1_u64), hasher.hash_one(2_u64));
        }
        assert!(matches!(MapHasher::default(), MapHasher::Fast(_)));
        assert!(matches!(
            MapHasher::new(KeyHasher::SipHash),
            MapHasher::Sip(_)
        ));
    }

    /// The maps hash through `build_hasher` (`DashMap` does) and the hit path through
    /// `hash_one`: both must agree, or a hit would probe the wrong shard and bucket.
    #[test]
    fn hash_one_agrees_with_the_hasher_it_builds() {
        #[allow(clippy::manual_hash_one)] // the reference the override is checked against
        fn built<T: Hash + ?Sized>(hasher: &MapHasher, key: &T) -> u64 {
            let mut state = hasher.build_hasher();
            key.hash(&mut state);
            state.finish()
        }
        for kind in [KeyHasher::Foldhash, KeyHasher::SipHash] {
            let hasher = MapHasher::new(kind);
            for key in [0_u64, 1, 42, u64::MAX] {
                assert_eq!(hasher.hash_one(key), built(&hasher, &key));
            }
            for key in [
                "",
                "a",
                "a key longer than sixteen bytes, to take the long path",
            ] {
                assert_eq!(hasher.hash_one(key), built(&hasher, key));
                assert_eq!(
                    hasher.hash_one(key.to_owned()),
                    built(&hasher, &key.to_owned())
                );
            }
            let tuple = (7_u32, "seven", vec![1_u8, 2, 3], Some('x'));
            assert_eq!(hasher.hash_one(&tuple), built(&hasher, &tuple));
        }
    }
}
