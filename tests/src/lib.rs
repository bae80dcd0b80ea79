//! Behaviour tests of smartcache live in `tests/`; this library holds only the doctests of
//! the repository's markdown (README and guides).

#[cfg(doctest)]
mod markdown;
