//! The `#[smart_cached]` attribute of [smartcache](https://docs.rs/smartcache).
//!
//! Use it through `smartcache::smart_cached`; this crate is an implementation detail. The
//! phases are in their own modules: [`attr`] parses the options, [`ast`] models the function,
//! [`valid`] checks it, [`expand`] generates the code and [`fallback`] emits the input
//! unchanged next to the errors when there are any.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;

/// Memoizes an `async fn`.
#[proc_macro_attribute]
pub fn smart_cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::smart_cached(args.into(), item.into()).into()
}
