//! Shared by the `reliability_*` test binaries.

/// Panics that the reliability tests cause on purpose start with one of these.
const EXPECTED: [&str; 3] = ["injected panic", "hostile ", "a deliberate leak"];

/// Keeps the panics the tests inject out of the output; every other panic is reported as
/// usual. Installed once per test binary.
pub(crate) fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = (payload.downcast_ref::<String>().map(String::as_str))
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if !EXPECTED.iter().any(|prefix| message.starts_with(prefix)) {
                report(info);
            }
        }));
    });
}
