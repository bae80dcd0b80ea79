//! The function's attributes survive `#[smart_cached]`: `#[cfg]` applies to every generated
//! item, `#[tracing::instrument]` works stacked above or below, lint attributes apply.

#![deny(unused_must_use)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use smartcache::smart_cached;

/// A subscriber that counts the spans created, by name.
#[derive(Default)]
struct SpanCounter {
    below: AtomicUsize,
    above: AtomicUsize,
    next_id: AtomicU64,
}

impl tracing::Subscriber for &'static SpanCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        match span.metadata().name() {
            "traced_below" => self.below.fetch_add(1, SeqCst),
            "traced_above" => self.above.fetch_add(1, SeqCst),
            _ => 0,
        };
        tracing::span::Id::from_u64(self.next_id.fetch_add(1, SeqCst) + 1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Compiled out with everything it generates: else `gone_cache` below would clash.
#[cfg(not(test))]
#[smart_cached]
async fn gone(id: u8) -> u8 {
    id
}

fn gone_cache() -> &'static str {
    "not generated"
}

#[smart_cached]
#[cfg(test)]
async fn kept(id: u8) -> u8 {
    id
}

static TRACED_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Instrumented on every call, hits included: `instrument` is applied to the cached fn.
#[smart_cached]
#[tracing::instrument(level = "debug")]
async fn traced_below(id: u32) -> u32 {
    TRACED_RUNS.fetch_add(1, SeqCst);
    id + 1
}

/// Instrumented before `#[smart_cached]` runs: the span wraps the computations only.
#[tracing::instrument(level = "debug", skip(secret))]
#[smart_cached(skip(secret))]
async fn traced_above(id: u32, secret: &str) -> u32 {
    TRACED_RUNS.fetch_add(1, SeqCst);
    id + u32::try_from(secret.len()).unwrap_or(0)
}

#[smart_cached]
#[must_use]
#[allow(clippy::too_many_arguments)]
#[expect(clippy::many_single_char_names)]
async fn eight(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8) -> u16 {
    [a, b, c, d, e, f, g, h].iter().map(|&x| u16::from(x)).sum()
}

#[tokio::test]
async fn attributes_are_kept() {
    let spans: &'static SpanCounter = Box::leak(Box::default());
    let _guard = tracing::subscriber::set_default(spans);
    assert_eq!(gone_cache(), "not generated");
    assert_eq!(kept(3).await, 3);
    assert_eq!(kept_cache().stats().misses, 1);
    assert_eq!(traced_below(1).await, 2);
    assert_eq!(traced_below(1).await, 2);
    assert_eq!(traced_above(1, "abc").await, 4);
    assert_eq!(traced_above(1, "xyz").await, 4);
    assert_eq!(TRACED_RUNS.load(SeqCst), 2);
    assert_eq!(
        spans.below.load(SeqCst),
        2,
        "a span for each call, hit included"
    );
    assert_eq!(
        spans.above.load(SeqCst),
        1,
        "a span for the computation only"
    );
    assert_eq!(eight(1, 1, 1, 1, 1, 1, 1, 1).await, 8);
}

/// A counter of the spans named `traced_method`.
static METHOD_SPANS: AtomicUsize = AtomicUsize::new(0);

struct MethodSpans;

impl tracing::Subscriber for MethodSpans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if span.metadata().name() == "traced_method" {
            METHOD_SPANS.fetch_add(1, SeqCst);
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Traced(u32);

impl Traced {
    /// The attribute alone on a method, `instrument` below it: a span per call.
    #[smart_cached(skip(self))]
    #[tracing::instrument(level = "debug", skip(self))]
    fn traced_method(&self, id: u32) -> u32 {
        id * self.0
    }
}

#[test]
fn instrument_below_the_attribute_of_a_sync_method_spans_every_call() {
    let _guard = tracing::subscriber::set_default(MethodSpans);
    assert_eq!(Traced(2).traced_method(2), 4);
    assert_eq!(Traced(2).traced_method(2), 4);
    assert_eq!(Traced::traced_method_cache().stats().hits, 1);
    assert_eq!(METHOD_SPANS.load(SeqCst), 2, "hit included");
}
