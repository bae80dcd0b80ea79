//! `#[smart_cached]` on an `impl` block: each marked method expanded as a cached function
//! whose `Self` type is known.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{ImplItem, ImplItemFn, ItemImpl, Type};

use super::Generator;
use crate::ast::{CachedFn, Place};
use crate::attr::{self, Options};
use crate::ctxt::Errors;
use crate::{fallback, valid};

// Input:
//     #[smart_cached]
//     impl Service {
//         #[smart_cached(ttl = "1m")]
//         pub async fn user(&self, id: u64) -> Result<User, CacheError<ApiError>> { body }
//         pub fn other(&self) {}
//     }
// Output:
//     impl Service {
//         <`user`, `user_cache` and `user_uncached`, as for a free fn, with `Self::` paths>
//         pub fn other(&self) {}
//     }
pub(super) fn impl_block(args: &TokenStream, mut item: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    check_impl_header(args, &item, &mut errors);
    if let Err(error) = errors.finish() {
        strip_markers(&mut item);
        return fallback::emit(item.into_token_stream(), error);
    }
    let mut errors = Errors::default();
    let mut cached_methods = 0;
    // With lifetime parameters, `Self` cannot be spelled in a static (the lifetimes are the
    // impl's): the methods are expanded as with the attribute on the method alone.
    let self_ty = item
        .generics
        .params
        .is_empty()
        .then(|| (*item.self_ty).clone());
    for impl_item in std::mem::take(&mut item.items) {
        let cached = match impl_item {
            ImplItem::Fn(method) if method.attrs.iter().any(attr::is_marker) => {
                cached_methods += 1;
                cached_method(method, self_ty.as_ref(), &mut errors)
            }
            other => other,
        };
        item.items.push(cached);
    }
    if cached_methods == 0 {
        errors.spanned(
            item.impl_token,
            "no method of this `impl` block is marked `#[smart_cached]`",
        );
    }
    let errors = errors.finish().err().map(syn::Error::into_compile_error);
    quote!(#item #errors)
}

/// A marked method: its three items, or itself without the marker if it has errors.
fn cached_method(mut method: ImplItemFn, self_ty: Option<&Type>, errors: &mut Errors) -> ImplItem {
    let mut method_errors = Errors::default();
    let mut markers = method.attrs.iter().filter(|a| attr::is_marker(a));
    let args = markers
        .next()
        .map(|marker| attr::marker_args(marker, &mut method_errors))
        .unwrap_or_default();
    for repeated in markers {
        method_errors.spanned(repeated, "duplicate `#[smart_cached]`");
    }
    method.attrs.retain(|a| !attr::is_marker(a));
    let options = Options::parse(args, &mut method_errors);
    let original = method.clone();
    let function = CachedFn::new(
        method.attrs,
        method.vis,
        method.sig,
        method.block,
        options,
        Place::Method {
            self_ty: self_ty.map(|ty| Box::new(ty.clone())),
        },
    );
    valid::check(&function, &mut method_errors);
    match method_errors.finish() {
        Ok(()) => ImplItem::Verbatim(Generator::new(&function).items()),
        Err(error) => {
            errors.push(error);
            ImplItem::Fn(original)
        }
    }
}

fn check_impl_header(args: &TokenStream, item: &ItemImpl, errors: &mut Errors) {
    if !args.is_empty() {
        errors.spanned(
            args,
            "options go on each method: `#[smart_cached(ttl = \"1m\")] async fn ..`",
        );
    }
    let lifetimes_only = item
        .generics
        .params
        .iter()
        .all(|param| matches!(param, syn::GenericParam::Lifetime(_)));
    if !lifetimes_only {
        errors.spanned(
            &item.generics,
            "a generic impl block cannot be cached: each cached fn has one static cache, for one set of types",
        );
    }
    if let Some((path, _)) = &item.trait_ {
        errors.spanned(
            path,
            "cached methods cannot be added to a trait impl; cache an inherent method and call it from here",
        );
    }
}

/// Removes the markers of the methods of `item`, so that they do not expand on their own.
fn strip_markers(item: &mut ItemImpl) {
    for impl_item in &mut item.items {
        if let ImplItem::Fn(method) = impl_item {
            method.attrs.retain(|a| !attr::is_marker(a));
        }
    }
}
