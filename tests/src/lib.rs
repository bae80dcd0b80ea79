//! Behaviour tests of smartcache live in `tests/`; this library holds nothing.
