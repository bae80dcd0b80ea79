//! What the shared tier stores for a key: an envelope around the value or the error, with
//! the freshness, retry window and failure count the other processes need, versioned and
//! stamped with the cache's schema fingerprint. Encoded with `MessagePack` (`rmp-serde`).
//!
//! Times in an envelope are *durations* from the moment the entry was written; the moment
//! itself is Redis's clock (`TIME`), stored beside the envelope by the commit script. So no
//! two processes ever compare their own clocks.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The envelope format. A reader that meets another version treats the entry as absent.
pub(crate) const VERSION: u8 = 1;

/// The envelope as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) version: u8,
    /// The fingerprint of the cache's key, value and error types (see [`fingerprint`]).
    pub(crate) schema: u64,
    pub(crate) body: Body,
}

/// A stored value or a cached failure, still encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Body {
    Value {
        #[serde(with = "serde_bytes_compat")]
        value: Vec<u8>,
        /// How long the value stays fresh after it was written; `None`: for ever.
        fresh_ms: Option<u64>,
    },
    Error {
        #[serde(with = "serde_bytes_compat")]
        error: Vec<u8>,
        /// How long the failure is cached after it was written (its retry interval).
        retry_ms: u64,
        /// Consecutive failures of the key, this one included.
        failures: u32,
    },
}

/// A decoded entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<V, E> {
    Value {
        value: V,
        fresh_ms: Option<u64>,
    },
    Error {
        error: E,
        retry_ms: u64,
        failures: u32,
    },
}

impl Envelope {
    /// The envelope of a value.
    pub(crate) fn value<V: Serialize>(
        schema: u64,
        value: &V,
        fresh_ms: Option<u64>,
    ) -> Option<Self> {
        Some(Self {
            version: VERSION,
            schema,
            body: Body::Value {
                value: rmp_serde::to_vec(value).ok()?,
                fresh_ms,
            },
        })
    }

    /// The envelope of a failure.
    #[cfg(test)]
    pub(crate) fn error<E: Serialize>(
        schema: u64,
        error: &E,
        retry_ms: u64,
        failures: u32,
    ) -> Option<Self> {
        let error = rmp_serde::to_vec(error).ok()?;
        Some(Self::encoded_error(schema, error, retry_ms, failures))
    }

    /// The envelope of a failure already encoded (by the cache's error codec).
    pub(crate) fn encoded_error(schema: u64, error: Vec<u8>, retry_ms: u64, failures: u32) -> Self {
        Self {
            version: VERSION,
            schema,
            body: Body::Error {
                error,
                retry_ms,
                failures,
            },
        }
    }

    /// The stored bytes. `None` only if the encoder fails (it does not for these types).
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        rmp_serde::to_vec(self).ok()
    }

    /// Decodes stored bytes for a cache of fingerprint `schema`. Anything else (another
    /// version, another schema, bytes that do not decode as `V` or `E`) is `None`: the
    /// entry counts as absent, and the next write replaces it.
    #[cfg(test)]
    pub(crate) fn decode<V: DeserializeOwned, E: DeserializeOwned>(
        bytes: &[u8],
        schema: u64,
    ) -> Option<Decoded<V, E>> {
        Self::decode_with(bytes, schema, |error| rmp_serde::from_slice(error).ok())
    }

    /// Decodes stored bytes for a cache of fingerprint `schema`, by the rules of `decode` (a
    /// test helper), with the error decoded by `error` (the cache's codec).
    pub(crate) fn decode_with<V: DeserializeOwned, E>(
        bytes: &[u8],
        schema: u64,
        error: impl FnOnce(&[u8]) -> Option<E>,
    ) -> Option<Decoded<V, E>> {
        let envelope: Self = rmp_serde::from_slice(bytes).ok()?;
        if envelope.version != VERSION || envelope.schema != schema {
            return None;
        }
        match envelope.body {
            Body::Value { value, fresh_ms } => Some(Decoded::Value {
                value: rmp_serde::from_slice(&value).ok()?,
                fresh_ms,
            }),
            Body::Error {
                error: bytes,
                retry_ms,
                failures,
            } => Some(Decoded::Error {
                error: error(&bytes)?,
                retry_ms,
                failures,
            }),
        }
    }
}

/// The schema fingerprint of a cache of `K -> V` (errors `E`): a hash of the three type
/// names. Two builds that name the same types agree; a change of any of them (a new field
/// type, a renamed struct) gives a new fingerprint, and so a fresh key space, instead of
/// entries that fail to decode.
pub(crate) fn fingerprint<K, V, E>() -> u64 {
    // FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`.
    let names = [
        std::any::type_name::<K>(),
        std::any::type_name::<V>(),
        std::any::type_name::<E>(),
    ];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in names.iter().flat_map(|name| name.bytes().chain([0])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Bytes as a `MessagePack` `bin` rather than an array of integers.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
                Ok(bytes.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(bytes)
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_errors_round_trip() {
        let schema = fingerprint::<u64, String, String>();
        let value = Envelope::value(schema, &"hello".to_owned(), Some(5_000)).unwrap();
        let bytes = value.encode().unwrap();
        assert_eq!(
            Envelope::decode::<String, String>(&bytes, schema),
            Some(Decoded::Value {
                value: "hello".to_owned(),
                fresh_ms: Some(5_000)
            })
        );
        let error = Envelope::error(schema, &"down".to_owned(), 300_000, 3).unwrap();
        let bytes = error.encode().unwrap();
        assert_eq!(
            Envelope::decode::<String, String>(&bytes, schema),
            Some(Decoded::Error {
                error: "down".to_owned(),
                retry_ms: 300_000,
                failures: 3
            })
        );
    }

    #[test]
    fn another_schema_version_or_type_reads_as_absent() {
        let schema = fingerprint::<u64, String, String>();
        let other = fingerprint::<u64, u32, String>();
        assert_ne!(schema, other);
        let bytes = Envelope::value(schema, &"hello".to_owned(), None)
            .unwrap()
            .encode()
            .unwrap();
        assert_eq!(Envelope::decode::<String, String>(&bytes, other), None);
        // Same fingerprint claimed, but the bytes are not a `u32`.
        assert_eq!(Envelope::decode::<u32, String>(&bytes, schema), None);
        let mut future = Envelope::value(schema, &"hello".to_owned(), None).unwrap();
        future.version = VERSION + 1;
        let bytes = future.encode().unwrap();
        assert_eq!(Envelope::decode::<String, String>(&bytes, schema), None);
        assert_eq!(
            Envelope::decode::<String, String>(b"\xc1garbage", schema),
            None
        );
    }
}
