//! The shared tier's protocol on Redis: one namespace per cache, a lease per key, commits
//! by compare-and-set, and events on a channel that wake waiters and fan invalidations out.
//!
//! # Keys (per cache name and schema fingerprint, `ns = sc:{name}:{schema}`)
//!
//! | key | type | what |
//! |---|---|---|
//! | `{ns}:gen` | string | the generation: `clear` increments it, so every entry of the old one is gone at once |
//! | `{ns}:{gen}:k:{key}` | hash | `e`: the envelope; `a`: when it was written (Redis `TIME`, ms); `u`: how long after that it answers calls (ms; -1: for ever) |
//! | `{ns}:{gen}:l:{key}` | string | the lease: a random token, `PX` the lease time, renewed while computing |
//! | `{ns}:events` | channel | `s`, `d`, `r` + origin + key: set, deleted, lease released; `c{gen}` cleared |
//!
//! `{key}` is the `MessagePack` encoding of the cache key. Every deadline is computed by the
//! scripts from Redis's own clock, so the processes' clocks never need to agree.

use redis::Script;

/// Looks the key up; when it has no usable entry, tries to take its lease.
///
/// KEYS: data, lease. ARGV: token, lease ms.
/// Returns `{1, envelope, age_ms}` (a usable entry), `{2, envelope or false, age_ms}` (the
/// lease is ours; the unusable old entry, if any, comes along: its failure count and last
/// good value matter), or `{3, lease_pttl_ms}` (someone else holds the lease).
pub(crate) const LOOKUP_OR_LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HMGET', KEYS[1], 'e', 'a', 'u')
local age = 0
if fields[1] then
  age = now - tonumber(fields[2])
  local usable = tonumber(fields[3])
  if usable < 0 or age < usable then
    return {1, fields[1], age}
  end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, fields[1] or false, age}
end
return {3, redis.call('PTTL', KEYS[2])}
";

/// Stores an envelope, only while the caller still holds the lease, then frees the lease
/// and announces the entry.
///
/// KEYS: data, lease. ARGV: token, envelope, usable ms (-1: for ever), keep ms (0: no
/// expiry), channel, event.
/// Returns 1 if stored, 0 if the lease was lost (expired, or taken by an invalidation).
pub(crate) const COMMIT: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', ARGV[2], 'a', now, 'u', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
";

/// Extends the lease while the caller still holds it. KEYS: lease. ARGV: token, lease ms.
pub(crate) const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Frees the lease (the computation was dropped) and wakes the waiters, one of whom takes
/// it. KEYS: lease. ARGV: token, channel, event.
pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
";

/// Removes the entry *and* the lease: a computation that started before the invalidation
/// can no longer commit (no stale resurrection, fleet-wide). KEYS: data, lease. ARGV:
/// channel, event.
pub(crate) const INVALIDATE: &str = r"
local removed = redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return removed
";

/// Starts a new generation and announces it. KEYS: generation. ARGV: channel.
pub(crate) const CLEAR: &str = r"
local generation = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], 'c' .. generation)
return generation
";

/// The scripts, loaded once per tier (`EVALSHA`, with `EVAL` on a cache miss of Redis).
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) lookup_or_lease: Script,
    pub(crate) commit: Script,
    pub(crate) renew: Script,
    pub(crate) release: Script,
    pub(crate) invalidate: Script,
    pub(crate) clear: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            lookup_or_lease: Script::new(LOOKUP_OR_LEASE),
            commit: Script::new(COMMIT),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            invalidate: Script::new(INVALIDATE),
            clear: Script::new(CLEAR),
        }
    }
}

/// The Redis key names of one cache.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// `sc:{name}:{schema}`.
    prefix: Vec<u8>,
}

impl Names {
    pub(crate) fn new(name: &str, schema: u64) -> Self {
        Self {
            prefix: format!("sc:{name}:{schema:016x}").into_bytes(),
        }
    }

    fn join(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut name = self.prefix.clone();
        for part in parts {
            name.push(b':');
            name.extend_from_slice(part);
        }
        name
    }

    pub(crate) fn generation(&self) -> Vec<u8> {
        self.join(&[b"gen"])
    }

    pub(crate) fn channel(&self) -> Vec<u8> {
        self.join(&[b"events"])
    }

    pub(crate) fn data(&self, generation: u64, key: &[u8]) -> Vec<u8> {
        self.join(&[generation.to_string().as_bytes(), b"k", key])
    }

    pub(crate) fn lease(&self, generation: u64, key: &[u8]) -> Vec<u8> {
        self.join(&[generation.to_string().as_bytes(), b"l", key])
    }

    /// The pattern of every data and lease key of generations other than `current`, for
    /// the clean-up after a clear (`SCAN MATCH`): all keys of the namespace, filtered.
    pub(crate) fn all_keys(&self) -> Vec<u8> {
        self.join(&[b"*"])
    }

    /// Whether `key` (a name from [`all_keys`](Self::all_keys)) belongs to a generation
    /// before `current`.
    pub(crate) fn is_older_than(&self, key: &[u8], current: u64) -> bool {
        let Some(rest) = key.strip_prefix(self.prefix.as_slice()) else {
            return false;
        };
        let Some(rest) = rest.strip_prefix(b":") else {
            return false;
        };
        let digits: Vec<u8> = rest
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
            .is_some_and(|generation| generation < current)
    }
}

/// An event on a cache's channel. Key events name the process that caused them (its
/// tier's random `origin`), so that a process can skip its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// An entry was written.
    Set { origin: u64, key: Vec<u8> },
    /// An entry (and its lease) were removed by an invalidation.
    Deleted { origin: u64, key: Vec<u8> },
    /// A lease was released without a result.
    Released { origin: u64, key: Vec<u8> },
    /// Everything was cleared; this is the new generation.
    Cleared(u64),
    /// Not on the channel: this process's connection dropped, or came back after faults.
    /// Events may have been missed meanwhile, so local copies from the fleet are dropped.
    Reconnected,
}

impl Event {
    /// A tag, then for key events the origin (8 bytes, big-endian) and the key; for a clear
    /// the generation in decimal (the `CLEAR` script writes it).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (tag, origin, key) = match self {
            Self::Set { origin, key } => (b's', origin, key),
            Self::Deleted { origin, key } => (b'd', origin, key),
            Self::Released { origin, key } => (b'r', origin, key),
            Self::Cleared(generation) => {
                return std::iter::once(b'c')
                    .chain(generation.to_string().into_bytes())
                    .collect();
            }
            // Never published; a tag no decoder reads.
            Self::Reconnected => return vec![b'x'],
        };
        let mut message = vec![tag];
        message.extend_from_slice(&origin.to_be_bytes());
        message.extend_from_slice(key);
        message
    }

    /// `None` for a message this version does not know (it is ignored).
    pub(crate) fn decode(message: &[u8]) -> Option<Self> {
        let (&tag, body) = message.split_first()?;
        if tag == b'c' {
            return std::str::from_utf8(body)
                .ok()?
                .parse()
                .ok()
                .map(Self::Cleared);
        }
        let (origin, key) = body.split_first_chunk::<8>()?;
        let (origin, key) = (u64::from_be_bytes(*origin), key.to_vec());
        match tag {
            b's' => Some(Self::Set { origin, key }),
            b'd' => Some(Self::Deleted { origin, key }),
            b'r' => Some(Self::Released { origin, key }),
            _ => None,
        }
    }

    /// The key the event is about, if it is about one.
    pub(crate) fn key(&self) -> Option<&[u8]> {
        match self {
            Self::Set { key, .. } | Self::Deleted { key, .. } | Self::Released { key, .. } => {
                Some(key)
            }
            Self::Cleared(_) | Self::Reconnected => None,
        }
    }

    /// The process that caused a key event.
    pub(crate) fn origin(&self) -> Option<u64> {
        match self {
            Self::Set { origin, .. }
            | Self::Deleted { origin, .. }
            | Self::Released { origin, .. } => Some(*origin),
            Self::Cleared(_) | Self::Reconnected => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        for event in [
            Event::Set {
                origin: 7,
                key: b"\x01k".to_vec(),
            },
            Event::Deleted {
                origin: u64::MAX,
                key: vec![],
            },
            Event::Released {
                origin: 0,
                key: b"x".to_vec(),
            },
            Event::Cleared(42),
        ] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        assert_eq!(Event::decode(b""), None);
        assert_eq!(Event::decode(b"zwhat_and_more"), None);
        assert_eq!(Event::decode(b"sshort"), None, "no room for the origin");
    }

    #[test]
    fn key_names_are_namespaced_by_name_schema_and_generation() {
        let names = Names::new("users", 0xab);
        assert_eq!(names.data(3, b"k1"), b"sc:users:00000000000000ab:3:k:k1");
        assert_eq!(names.lease(3, b"k1"), b"sc:users:00000000000000ab:3:l:k1");
        assert!(names.is_older_than(b"sc:users:00000000000000ab:2:k:k1", 3));
        assert!(!names.is_older_than(b"sc:users:00000000000000ab:3:k:k1", 3));
        assert!(!names.is_older_than(b"sc:users:00000000000000ab:gen", 3));
        assert!(!names.is_older_than(b"sc:other:00000000000000ab:1:k:k1", 3));
    }
}
