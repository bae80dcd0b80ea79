//! Compile-fail and compile-pass tests of `#[smart_cached]` (trybuild).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite`, then read every `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    cases.pass("ui/pass/*.rs");
}
