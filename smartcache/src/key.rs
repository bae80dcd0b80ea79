//! [`BorrowedKey`]: looking a key up by a borrowed form of it, with no allocation on a hit.

use std::borrow::Borrow;
use std::hash::Hash;

/// A borrowed form of a cache key `K`, for
/// [`get_or_compute_ref`](crate::AsyncSmartCache::get_or_compute_ref): it finds a stored
/// entry without building a `K`, and builds one only on a miss.
///
/// Implemented for every `Q` that `K` borrows as and that turns back into a `K` (`&str` for
/// `String`, `&[T]` for `Vec<T>`, `&u64` for `u64`, ...). Implement it for a key type of
/// your own to look up composite keys by reference, as in the example.
///
/// # Contract
///
/// As for [`Borrow`]: `self` must hash exactly as the key it stands for
/// (`hash(self) == hash(&self.to_key())`, with any hasher), and `equivalent(k)` must hold
/// exactly when `k == self.to_key()`. A type that breaks it gets misses for stored keys
/// (never a wrong value: an entry is only answered when `equivalent` says so).
///
/// ```
/// use std::hash::{Hash, Hasher};
/// use smartcache::{AsyncSmartCache, BorrowedKey};
///
/// /// `(&str, u32)` standing for the stored key `(String, u32)`.
/// #[derive(Hash)] // a tuple hashes its fields in order, exactly as this struct does
/// struct UserRef<'a>(&'a str, u32);
///
/// impl BorrowedKey<(String, u32)> for UserRef<'_> {
///     fn equivalent(&self, key: &(String, u32)) -> bool {
///         self.0 == key.0 && self.1 == key.1
///     }
///     fn to_key(&self) -> (String, u32) {
///         (self.0.to_owned(), self.1)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache: AsyncSmartCache<(String, u32), u64> = AsyncSmartCache::new();
/// let load = || async { Ok(7) };
/// assert_eq!(cache.get_or_compute_ref(&UserRef("ada", 1), load).await.unwrap(), 7);
/// // A hit: no String is built.
/// assert_eq!(cache.get_or_compute_ref(&UserRef("ada", 1), load).await.unwrap(), 7);
/// assert_eq!(cache.stats().hits, 1);
/// # }
/// ```
pub trait BorrowedKey<K>: Hash {
    /// Whether `key` is the key this stands for.
    fn equivalent(&self, key: &K) -> bool;

    /// The owned key, built on a miss.
    fn to_key(&self) -> K;
}

impl<K, Q> BorrowedKey<K> for Q
where
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    K: Borrow<Q>,
{
    #[inline]
    fn equivalent(&self, key: &K) -> bool {
        self == key.borrow()
    }

    fn to_key(&self) -> K {
        self.to_owned()
    }
}
