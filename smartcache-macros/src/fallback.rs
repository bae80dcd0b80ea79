//! Failing soft: on error, the item goes out as it came in, next to the errors, so that the
//! rest of the crate (and the IDE) keeps working and only the real mistakes are reported.

use proc_macro2::TokenStream;

/// `original` followed by `error` as `compile_error!` invocations.
pub(crate) fn emit(mut original: TokenStream, error: syn::Error) -> TokenStream {
    original.extend(error.into_compile_error());
    original
}
