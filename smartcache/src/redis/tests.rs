//! The protocol against a real Redis server, started by the tests on a free loopback port
//! (`redis-server` must be on PATH: `.ci/run` installs Debian's `redis-server`).

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use super::envelope::{Decoded, Envelope, fingerprint};
use super::protocol::Event;
use super::tier::{Found, Listener, Namespace, TierConfig};
use super::{RedisTier, RedisTierError};

#[path = "../../tests/redis_support/mod.rs"]
mod redis_support;
use redis_support::Server;

fn config() -> TierConfig {
    TierConfig {
        lease: Duration::from_secs(1),
        breaker_open_for: Duration::from_millis(200),
        ..TierConfig::default()
    }
}

async fn tier(server: &Server) -> RedisTier {
    let client = redis::Client::open(server.url()).unwrap();
    RedisTier::from_client(client, config()).await.unwrap()
}

/// A namespace that counts the events it receives.
async fn namespace(
    tier: &RedisTier,
    name: &str,
) -> (
    Namespace,
    Arc<AtomicUsize>,
    Arc<dyn Fn(&Event) + Send + Sync>,
) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let on_event: Arc<Listener> = Arc::new(move |_: &Event| {
        counter.fetch_add(1, SeqCst);
    });
    let ns = tier
        .namespace(name, fingerprint::<u64, String, String>(), &on_event)
        .await;
    (ns, seen, on_event)
}

fn value_envelope(text: &str) -> Vec<u8> {
    Envelope::value(fingerprint::<u64, String, String>(), &text.to_owned(), None)
        .unwrap()
        .encode()
        .unwrap()
}

#[tokio::test]
async fn one_lease_per_key_across_processes_and_the_commit_is_seen_by_all() {
    let server = Server::start();
    // Two tiers: two connections, as two processes would have.
    let (a, b) = (tier(&server).await, tier(&server).await);
    let (ns_a, _, _keep_a) = namespace(&a, "lease").await;
    let (ns_b, seen_b, _keep_b) = namespace(&b, "lease").await;
    assert_eq!(
        ns_a.lookup_or_lease(b"k", "ta").await,
        Ok(Found::Leased { old: None })
    );
    let held = ns_b.lookup_or_lease(b"k", "tb").await.unwrap();
    assert!(matches!(held, Found::Held { for_at_most } if for_at_most <= Duration::from_secs(1)));
    assert_eq!(
        ns_a.commit(b"k", "ta", &value_envelope("v"), None, None)
            .await,
        Ok(true)
    );
    // The other process's waiter hears of it, and then finds the entry.
    ns_b.wait_for(b"k", Duration::from_secs(5)).await;
    for _ in 0..100 {
        if seen_b.load(SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen_b.load(SeqCst) > 0,
        "the commit's event reached the other process"
    );
    match ns_b.lookup_or_lease(b"k", "tb").await.unwrap() {
        Found::Entry { envelope, .. } => {
            let decoded =
                Envelope::decode::<String, String>(&envelope, fingerprint::<u64, String, String>());
            assert_eq!(
                decoded,
                Some(Decoded::Value {
                    value: "v".to_owned(),
                    fresh_ms: None
                })
            );
        }
        other => panic!("expected the entry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_holder_that_lost_its_lease_cannot_overwrite_the_newer_result() {
    let server = Server::start();
    let (a, b) = (tier(&server).await, tier(&server).await);
    let (ns_a, _, _keep_a) = namespace(&a, "cas").await;
    let (ns_b, _, _keep_b) = namespace(&b, "cas").await;
    assert!(matches!(
        ns_a.lookup_or_lease(b"k", "ta").await,
        Ok(Found::Leased { .. })
    ));
    // A's lease runs out (it stalled); B takes the key over and commits.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(matches!(
        ns_b.lookup_or_lease(b"k", "tb").await,
        Ok(Found::Leased { .. })
    ));
    assert_eq!(
        ns_b.commit(b"k", "tb", &value_envelope("newer"), None, None)
            .await,
        Ok(true)
    );
    assert_eq!(ns_a.renew(b"k", "ta").await, Ok(false), "the lease is gone");
    assert_eq!(
        ns_a.commit(b"k", "ta", &value_envelope("older"), None, None)
            .await,
        Ok(false)
    );
    let Ok(Found::Entry { envelope, .. }) = ns_a.lookup_or_lease(b"k", "ta").await else {
        panic!("the entry is there");
    };
    assert_eq!(envelope, value_envelope("newer"));
}

#[tokio::test]
async fn renewal_keeps_the_lease_and_invalidation_revokes_it() {
    let server = Server::start();
    let a = tier(&server).await;
    let (ns, _, _keep) = namespace(&a, "renew").await;
    assert!(matches!(
        ns.lookup_or_lease(b"k", "t").await,
        Ok(Found::Leased { .. })
    ));
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            ns.renew(b"k", "t").await,
            Ok(true),
            "renewed before it ran out"
        );
    }
    // Past the lease time in all, still held.
    assert!(matches!(
        ns.lookup_or_lease(b"k", "other").await,
        Ok(Found::Held { .. })
    ));
    // An invalidation takes the lease too: the running computation can no longer commit.
    ns.invalidate(b"k").await.unwrap();
    assert_eq!(
        ns.commit(b"k", "t", &value_envelope("stale"), None, None)
            .await,
        Ok(false)
    );
}

#[tokio::test]
async fn a_released_lease_goes_to_the_next_process_and_usable_time_is_on_redis_clock() {
    let server = Server::start();
    let a = tier(&server).await;
    let (ns, _, _keep) = namespace(&a, "release").await;
    assert!(matches!(
        ns.lookup_or_lease(b"k", "t1").await,
        Ok(Found::Leased { .. })
    ));
    assert_eq!(ns.release(b"k", "t1").await, Ok(true));
    assert!(matches!(
        ns.lookup_or_lease(b"k", "t2").await,
        Ok(Found::Leased { .. })
    ));
    let usable = Some(Duration::from_secs(1));
    assert_eq!(
        ns.commit(b"k", "t2", &value_envelope("v"), usable, None)
            .await,
        Ok(true)
    );
    assert!(matches!(
        ns.lookup_or_lease(b"k", "t3").await,
        Ok(Found::Entry { .. })
    ));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // No longer usable: the lease is offered, with the old entry and its age.
    match ns.lookup_or_lease(b"k", "t3").await.unwrap() {
        Found::Leased {
            old: Some((envelope, age)),
        } => {
            assert_eq!(envelope, value_envelope("v"));
            assert!(age >= Duration::from_secs(1), "{age:?}");
        }
        other => panic!("expected the lease with the old entry, got {other:?}"),
    }
}

#[tokio::test]
async fn clear_starts_a_new_generation_for_every_process_and_deletes_the_old_keys() {
    let server = Server::start();
    let (a, b) = (tier(&server).await, tier(&server).await);
    let (ns_a, _, _keep_a) = namespace(&a, "clear").await;
    let (ns_b, seen_b, _keep_b) = namespace(&b, "clear").await;
    for key in [&b"k1"[..], b"k2"] {
        assert!(matches!(
            ns_a.lookup_or_lease(key, "t").await,
            Ok(Found::Leased { .. })
        ));
        assert_eq!(
            ns_a.commit(key, "t", &value_envelope("v"), None, None)
                .await,
            Ok(true)
        );
    }
    let before = seen_b.load(SeqCst);
    ns_a.clear().await.unwrap();
    for _ in 0..200 {
        if seen_b.load(SeqCst) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen_b.load(SeqCst) > before,
        "the clear reached the other process"
    );
    ns_b.refresh_generation().await;
    assert!(matches!(
        ns_b.lookup_or_lease(b"k1", "t").await,
        Ok(Found::Leased { old: None })
    ));
    // The old generation's keys go in the background.
    let mut connection = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut left = usize::MAX;
    for _ in 0..200 {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("sc:clear:*:0:*")
            .query_async(&mut connection)
            .await
            .unwrap();
        left = keys.len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 0, "the old generation's keys were deleted");
}

#[tokio::test]
async fn redis_down_degrades_within_the_command_timeout_and_recovers() {
    let mut server = Server::start();
    let port = server.port;
    let a = tier(&server).await;
    let (ns, _, _keep) = namespace(&a, "down").await;
    assert!(ns.lookup_or_lease(b"k", "t").await.is_ok());
    server.stop();
    // Every command answers `Degraded` (an error or the timeout), none hangs; the breaker
    // opens after the threshold and later calls are answered at once.
    for _ in 0..5 {
        let answer = tokio::time::timeout(Duration::from_secs(2), ns.lookup_or_lease(b"k", "t"))
            .await
            .expect("bounded by the command timeout");
        assert!(answer.is_err());
    }
    assert!(a.is_degraded());
    assert!(a.stats().breaker_opened >= 1 && a.stats().redis_errors >= 3);
    // Redis comes back on the same port: after the breaker's open time, a probe succeeds.
    let _server = Server::start_on(port);
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if ns.lookup_or_lease(b"k2", "t").await.is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the tier recovered: {:?}", a.stats());
    assert!(!a.is_degraded());
    assert!(a.stats().degraded > Duration::ZERO);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_at_connect_not_a_hang() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let answer = RedisTier::from_client(client, config()).await;
    assert!(matches!(
        answer,
        Err(RedisTierError::Client(_) | RedisTierError::Unreachable)
    ));
}
