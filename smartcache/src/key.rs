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

/// A tuple of borrowed forms standing for a tuple key, field by field: `KeyRef((name, &id))`
/// with `name: &str` looks up the key `(String, u64)` without building it. This is how
/// `#[smart_cached]` keys (a tuple of the arguments) can be looked up from borrowed
/// arguments; tuples of 1 to 6 fields are supported, each field a reference to a
/// [`BorrowedKey`] of the key's field.
///
/// (A wrapper rather than the bare tuple, because a bare tuple of references already is a
/// `BorrowedKey` of itself through the blanket implementation.)
///
/// ```
/// use smartcache::{AsyncSmartCache, KeyRef};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache: AsyncSmartCache<(String, u64), u64> = AsyncSmartCache::new();
/// let (name, id): (&str, u64) = ("ada", 7);
/// let key = KeyRef((name, &id));
/// assert_eq!(cache.get_or_compute_ref(&key, || async { Ok(1) }).await.unwrap(), 1);
/// assert_eq!(cache.get(&("ada".to_owned(), 7)), Some(1), "stored under the owned key");
/// # }
/// ```
#[derive(Debug)]
pub struct KeyRef<T>(pub T);

macro_rules! tuple_keys {
    ($(($($key:ident $borrowed:ident $index:tt),+))+) => {$(
        impl<$($borrowed: Hash + ?Sized),+> Hash for KeyRef<($(&$borrowed,)+)> {
            #[inline]
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                // As the tuple key does: each field in order, nothing else.
                $(self.0.$index.hash(state);)+
            }
        }

        impl<$($key, $borrowed),+> BorrowedKey<($($key,)+)> for KeyRef<($(&$borrowed,)+)>
        where
            $($borrowed: BorrowedKey<$key> + ?Sized,)+
        {
            #[inline]
            fn equivalent(&self, key: &($($key,)+)) -> bool {
                $(self.0.$index.equivalent(&key.$index))&&+
            }

            fn to_key(&self) -> ($($key,)+) {
                ($(self.0.$index.to_key(),)+)
            }
        }
    )+};
}

tuple_keys! {
    (A QA 0)
    (A QA 0, B QB 1)
    (A QA 0, B QB 1, C QC 2)
    (A QA 0, B QB 1, C QC 2, D QD 3)
    (A QA 0, B QB 1, C QC 2, D QD 3, E QE 4)
    (A QA 0, B QB 1, C QC 2, D QD 3, E QE 4, F QF 5)
}

/// Whether `a` and `b` hold the same bytes, without a call for the lengths of most keys.
///
/// NOTE: `a == b` on byte slices is a call to `memcmp`, whose length the compiler cannot
/// see: for a 13-byte key, the call, the registers the probe loop saves around it and
/// glibc's own branches on the length cost more than the rest of a `u64` hit's probe. From 4
/// to 16 bytes, two loads from each end that overlap in the middle cover every byte, and
/// two compares answer; other lengths take `memcmp`.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    match len {
        8..=16 => {
            let word = |bytes: &[u8], at: usize| {
                u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
            };
            let tail = len - 8;
            (word(a, 0) ^ word(b, 0)) | (word(a, tail) ^ word(b, tail)) == 0
        }
        4..=7 => {
            let word = |bytes: &[u8], at: usize| {
                u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap_or_default())
            };
            let tail = len - 4;
            (word(a, 0) ^ word(b, 0)) | (word(a, tail) ^ word(b, tail)) == 0
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn same_bytes_is_slice_equality_at_every_length() {
        let text: Vec<u8> = (0..40).map(|i| b'a' + (i % 26)).collect();
        for len in 0..=text.len() {
            let a = &text[..len];
            let copy = a.to_vec(); // another place in memory, the same bytes
            assert!(same_bytes(a, &copy), "{len} bytes, equal");
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "{len} bytes, byte {at} differs");
            }
            if len > 0 {
                assert!(
                    !same_bytes(a, &a[..len - 1]),
                    "{len} bytes against a prefix"
                );
            }
        }
    }
}
