//! Code generation: from the checked model to the cached function, its cache handle and its
//! uncached body.
//!
//! Generated code names everything by absolute path (`::smartcache::__private::..`,
//! `::core::..`) and its own locals with a `__smartcache_` prefix. The cached function starts
//! with a check per type (`check_key_arg::<T, _>(verdict)`, `check_value::<V>()`, ..),
//! spanned on the user's tokens, so that a type that cannot be cached is reported on the
//! argument or return type at fault, with the hint of the helper trait's
//! `#[diagnostic::on_unimplemented]`. Everything after the checks goes through the fitness
//! probes of `smartcache::__private`, whose fallbacks have no bounds: a type that cannot be
//! cached gives that one error and no other.
//!
//! One file per generated item: `wrapper` (the cached fn), `handle` (`<fn>_cache` and its
//! static), `uncached` (`<fn>_uncached`), `key` (the key and the cache's types, with their
//! checks), `methods` (an `impl` block under the attribute).

mod handle;
mod key;
mod methods;
mod uncached;
mod wrapper;

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote};
use syn::ext::IdentExt;
use syn::{Item, ItemFn, Visibility};

use crate::ast::{CachedFn, Place};
use crate::attr::Options;
use crate::ctxt::Errors;
use crate::{fallback, valid};
use key::{CacheTypes, KeyPart, arg_key, custom_key, receiver_key};

/// The attribute's entry point: a free `async fn`, or an `impl` block with marked methods.
pub(crate) fn smart_cached(args: TokenStream, input: TokenStream) -> TokenStream {
    match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Fn(item)) => free_fn(args, item, input),
        Ok(Item::Impl(item)) => methods::impl_block(&args, item),
        Ok(_) => fallback::emit(
            input,
            syn::Error::new(
                Span::call_site(),
                "`#[smart_cached]` applies to an `async fn` or to an `impl` block",
            ),
        ),
        Err(error) => fallback::emit(input, error),
    }
}

// Input:
//     #[smart_cached(retry = "1m")]
//     pub async fn fetch(id: u64) -> Result<User, CacheError<ApiError>> { body }
// Output:
//     pub async fn fetch(id: u64) -> .. { <the cached call, see `wrapper`> }
//     pub fn fetch_cache() -> &'static AsyncSmartCache<(u64,), User, CacheError<ApiError>> { .. }
//     pub async fn fetch_uncached(id: u64) -> Result<User, CacheError<ApiError>> { body }
// A fn with a receiver or `Self` in its signature is a method whose `impl` block is unseen:
// its items are written as associated items (see `Place::Method`).
fn free_fn(args: TokenStream, item: ItemFn, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = Options::parse(args, &mut errors);
    let is_method = item
        .sig
        .inputs
        .iter()
        .any(|input| matches!(input, syn::FnArg::Receiver(_)))
        || valid::names_self(&item.sig);
    let place = if is_method {
        Place::Method { self_ty: None }
    } else {
        Place::Free
    };
    let function = CachedFn::new(item.attrs, item.vis, item.sig, *item.block, options, place);
    valid::check(&function, &mut errors);
    match errors.finish() {
        Ok(()) => Generator::new(&function).items(),
        Err(error) => fallback::emit(input, error),
    }
}

/// The pieces of one cached function's expansion.
struct Generator<'a> {
    function: &'a CachedFn,
    cache_fn: Ident,
    /// The hidden fn holding the static, which the cached fn calls.
    static_fn: Ident,
    uncached_fn: Ident,
    /// The visibility of the handle and of the uncached fn.
    companion_vis: Visibility,
    /// The body as an `async fn` of owned arguments and the route probe (see
    /// [`Generator::route_fns`]): nested in the cached fn, or associated for a method.
    body_fn: Ident,
    route_fn: Ident,
    /// The `Self` type of a method when the `impl` block's attribute gave it, to write the
    /// static, which cannot name `Self`.
    self_ty: Option<TokenStream>,
    keys: Vec<KeyPart>,
    types: CacheTypes,
}

impl<'a> Generator<'a> {
    fn new(function: &'a CachedFn) -> Self {
        let ident = &function.sig.ident;
        let (self_ty, body_fn, route_fn) = match &function.place {
            Place::Free => (
                None,
                format_ident!("__smartcache_body"),
                format_ident!("__smartcache_route"),
            ),
            Place::Method { self_ty } => (
                self_ty.as_ref().map(ToTokens::to_token_stream),
                format_ident!("__smartcache_{}_body", ident.unraw()),
                format_ident!("__smartcache_{}_route", ident.unraw()),
            ),
        };
        let mut keys = Vec::new();
        if let Some(key) = &function.options.key {
            keys.push(custom_key(key, function));
        } else {
            if let Some(receiver) = function.receiver.as_ref().filter(|r| !r.skipped) {
                keys.push(receiver_key(receiver));
            }
            keys.extend(function.args.iter().filter(|a| !a.skipped).map(arg_key));
        }
        let options = &function.options;
        let cache_fn = options
            .handle
            .clone()
            .unwrap_or_else(|| format_ident!("{}_cache", ident.unraw(), span = ident.span()));
        let uncached_fn = options
            .uncached
            .clone()
            .unwrap_or_else(|| format_ident!("{}_uncached", ident.unraw(), span = ident.span()));
        Self {
            function,
            static_fn: format_ident!("__smartcache_{}_cache", ident.unraw()),
            cache_fn,
            uncached_fn,
            companion_vis: options
                .companions
                .clone()
                .unwrap_or_else(|| function.vis.clone()),
            body_fn,
            route_fn,
            self_ty,
            keys,
            types: CacheTypes::of(&function.output),
        }
    }

    /// The cached function, its cache handle, its uncached body (and, for a method, the
    /// associated helpers of the shared route).
    fn items(&self) -> TokenStream {
        let wrapper = self.wrapper();
        let handle = self.handle();
        let uncached = self.uncached();
        let helpers = match self.function.place {
            Place::Method { .. } if self.uses_route() => self.route_fns(),
            _ => TokenStream::new(),
        };
        quote!(#wrapper #handle #uncached #helpers)
    }

    /// Whether the cached fn picks its call form with the route probe: an `async fn` whose
    /// body borrows nothing from its caller.
    fn uses_route(&self) -> bool {
        self.function.sig.asyncness.is_some() && !self.function.body_borrows()
    }

    fn is_method(&self) -> bool {
        matches!(self.function.place, Place::Method { .. })
    }

    fn cache_type(&self) -> TokenStream {
        let keys = self.keys.iter().map(|key| &key.ty);
        let CacheTypes { value, error, .. } = &self.types;
        if self.function.options.key.is_some() {
            quote!(::smartcache::AsyncSmartCache<#(#keys)*, #value, #error>)
        } else {
            quote!(::smartcache::AsyncSmartCache<(#(#keys,)*), #value, #error>)
        }
    }

    /// The path of a companion or helper `item`: `Self::item` for a method.
    fn path_to(&self, item: &Ident) -> TokenStream {
        if self.is_method() {
            quote!(Self::#item)
        } else {
            quote!(#item)
        }
    }

    /// `tokens` with `Self` spelled out, for the static of a method of a marked `impl`.
    fn outside_impl(&self, tokens: TokenStream) -> TokenStream {
        match &self.self_ty {
            Some(self_ty) => replace_self(tokens, self_ty),
            None => tokens,
        }
    }
}

/// Whether `tokens` name `Self`.
fn names_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == "Self",
        TokenTree::Group(group) => names_self(group.stream()),
        _ => false,
    })
}

/// `tokens` with every `Self` replaced by `self_ty`.
fn replace_self(tokens: TokenStream, self_ty: &TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tree| -> Vec<TokenTree> {
            match tree {
                TokenTree::Ident(ident) if ident == "Self" => self_ty.clone().into_iter().collect(),
                TokenTree::Group(group) => {
                    let mut replaced =
                        Group::new(group.delimiter(), replace_self(group.stream(), self_ty));
                    replaced.set_span(group.span());
                    vec![TokenTree::Group(replaced)]
                }
                other => vec![other],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    fn expand(args: TokenStream, item: TokenStream) -> syn::File {
        let output = super::smart_cached(args, item);
        syn::parse2(output.clone()).unwrap_or_else(|e| panic!("{e}: {output}"))
    }

    fn item_names(file: &syn::File) -> Vec<String> {
        file.items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            })
            .filter(|name| !name.starts_with("__smartcache_"))
            .collect()
    }

    #[test]
    fn a_free_fn_becomes_three_functions() {
        let file = expand(
            quote!(retry = "1m"),
            quote!(
                pub async fn fetch(id: u64) -> Result<u8, CacheError<E>> {
                    Ok(1)
                }
            ),
        );
        assert_eq!(
            item_names(&file),
            ["fetch", "fetch_cache", "fetch_uncached"]
        );
    }

    #[test]
    fn raw_identifiers_stay_raw() {
        let file = expand(
            quote!(skip(r#type)),
            quote!(
                async fn r#match(r#type: u8) {}
            ),
        );
        assert_eq!(
            item_names(&file),
            ["r#match", "match_cache", "match_uncached"]
        );
    }

    #[test]
    fn errors_keep_the_original_item() {
        let file = expand(
            quote!(retyr = "1m", ttl = 5),
            quote!(
                fn fetch<T>(id: T) -> u8 {
                    1
                }
            ),
        );
        assert_eq!(item_names(&file), ["fetch"]);
        let errors = file
            .items
            .iter()
            .filter(|item| matches!(item, syn::Item::Macro(_)))
            .count();
        assert_eq!(errors, 3, "unknown option, literal type, generic");
    }

    /// The cache methods the cached fn calls.
    fn lookups(args: TokenStream, item: TokenStream) -> Vec<String> {
        let output = super::smart_cached(args, item).to_string();
        let mut found: Vec<String> = output
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|word| word.starts_with("get_or_compute") || word.starts_with("routed_lookup"))
            .map(str::to_owned)
            .collect();
        found.dedup();
        found
    }

    #[test]
    fn the_default_key_is_looked_up_borrowed() {
        assert_eq!(
            lookups(
                quote!(),
                quote!(
                    async fn f(id: u64, name: &str) -> u8 {
                        0
                    }
                )
            ),
            ["routed_lookup_ref"]
        );
        assert_eq!(
            lookups(
                quote!(),
                quote!(
                    fn f(name: String) -> u8 {
                        0
                    }
                )
            ),
            ["get_or_compute_blocking_ref"]
        );
        let method = quote!(impl S { #[smart_cached] async fn f(&self, x: u8) -> u8 { 0 } });
        assert_eq!(lookups(quote!(), method), ["get_or_compute_ref"]);
    }

    #[test]
    fn other_keys_are_looked_up_owned() {
        let custom = quote!(
            async fn f(id: u64) -> u8 {
                0
            }
        );
        assert_eq!(
            lookups(quote!(key: u64 = *id + 1), custom),
            ["routed_lookup"]
        );
        let seven = quote!(
            async fn f(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8) {}
        );
        assert_eq!(lookups(quote!(), seven), ["routed_lookup"]);
        let six = quote!(
            async fn f(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8) {}
        );
        assert_eq!(lookups(quote!(skip(g)), six), ["routed_lookup_ref"]);
        let none = quote!(
            async fn f(a: u8) {}
        );
        assert_eq!(lookups(quote!(skip(a)), none), ["routed_lookup"]);
    }

    #[test]
    fn odd_inputs_never_panic() {
        let args = [
            quote!(),
            quote!(,),
            quote!(retry),
            quote!(retry()),
            quote!(retry = ""),
            quote!(retry = "99999999999999999999999d"),
            quote!(capacity = 18446744073709551616),
            quote!(capacity = 1.5),
            quote!(skip),
            quote!(skip = "x"),
            quote!(skip()),
            quote!(skip(self, self)),
            quote!(skip(1)),
            quote!(skip(r#type)),
            quote!(a::b = 1),
            quote!(name = b"x"),
            quote!(= =),
        ];
        let items = [
            quote!(),
            quote!(
                struct S;
            ),
            quote!(
                async fn f() {}
            ),
            quote!(
                async fn f(self) {}
            ),
            quote!(
                async fn f((a, b): (u8, u8), _: u8, r#type: u8, mut m: u8) -> u8 {
                    0
                }
            ),
            quote!(
                async fn f(x: &'a mut &'b [&'c str]) -> &'static str {
                    ""
                }
            ),
            quote!(
                async fn f(x: fn(&str) -> u8) -> impl Sized {}
            ),
            quote!(
                async unsafe extern "C" fn f<'a, T, const N: usize>(x: T)
                where
                    T: Clone,
                {
                }
            ),
            quote!(
                async fn f(x: u8) -> Result {}
            ),
            quote!(
                async fn r#match(r#type: u8) -> u8 {
                    0
                }
            ),
            quote!(
                async fn f(x: u8) -> Result {}
            ),
            quote!(
                async fn f(x: u8) -> Result<u8, CacheError> {}
            ),
            quote!(
                async fn f(x: u8) -> Result<u8, u8, u8> {}
            ),
            quote!(impl S {}),
            quote!(impl S { #[smart_cached = "x"] async fn f(&self) {} }),
            quote!(impl S { #[smart_cached] #[smart_cached] async fn f(&mut self) {} }),
            quote!(impl S { #[a::smart_cached(retry = 1)] fn f(self: Box<Self>) {} }),
            quote!(impl<T> dyn Tr<T> for S { #[smart_cached] async fn f() {} }),
            quote!(impl S { #[smart_cached] async fn f(self: Pin<&mut Self>, x: Self) -> Self {} }),
        ];
        for args in &args {
            for item in &items {
                let _ = super::smart_cached(args.clone(), item.clone());
            }
        }
    }
}
