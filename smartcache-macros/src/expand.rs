//! Code generation: from the checked model to the cached function, its cache handle and its
//! uncached body.
//!
//! Generated code names everything by absolute path (`::smartcache::__private::..`,
//! `::core::..`) and its own locals with a `__smartcache_` prefix. The cached function starts
//! with a check per type (`check_key::<T>()`, ..), spanned on the user's tokens, so that a
//! type that cannot be cached is reported on the argument or return type at fault, with the
//! hint of the helper trait's `#[diagnostic::on_unimplemented]`.

mod handle;
mod key;
mod methods;
mod uncached;
mod wrapper;

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote};
use syn::{Item, ItemFn};

use crate::ast::{CachedFn, Place};
use crate::attr::Options;
use crate::ctxt::Errors;
use crate::{fallback, valid};
use key::{CacheTypes, KeyPart, arg_key, receiver_key};

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
fn free_fn(args: TokenStream, item: ItemFn, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = Options::parse(args, &mut errors);
    let function = CachedFn::new(
        item.attrs,
        item.vis,
        item.sig,
        *item.block,
        options,
        Place::Free,
    );
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
    uncached_fn: Ident,
    /// The `Self` type of a method, to write the items that cannot name `Self` (the
    /// static and the wrapper's nested functions).
    self_ty: Option<TokenStream>,
    keys: Vec<KeyPart>,
    types: CacheTypes,
}

impl<'a> Generator<'a> {
    fn new(function: &'a CachedFn) -> Self {
        let ident = &function.sig.ident;
        let self_ty = match &function.place {
            Place::Free => None,
            Place::Method { self_ty } => Some(self_ty.to_token_stream()),
        };
        let mut keys = Vec::new();
        if let Some(receiver) = function.receiver.as_ref().filter(|r| !r.skipped) {
            keys.push(receiver_key(receiver));
        }
        keys.extend(function.args.iter().filter(|a| !a.skipped).map(arg_key));
        Self {
            function,
            cache_fn: format_ident!("{}_cache", ident, span = ident.span()),
            uncached_fn: format_ident!("{}_uncached", ident, span = ident.span()),
            self_ty,
            keys,
            types: CacheTypes::of(&function.output),
        }
    }

    /// The three items: the cached function, its cache handle, its uncached body.
    fn items(&self) -> TokenStream {
        let wrapper = self.wrapper();
        let handle = self.handle();
        let uncached = self.uncached();
        quote!(#wrapper #handle #uncached)
    }

    fn cache_type(&self) -> TokenStream {
        let keys = self.keys.iter().map(|key| &key.ty);
        let CacheTypes { value, error, .. } = &self.types;
        quote!(::smartcache::AsyncSmartCache<(#(#keys,)*), #value, #error>)
    }

    /// The uncached function's path: `Self::x_uncached` for a method (spelled out when
    /// `outside` is set, for nested items), `x_uncached` otherwise.
    fn uncached_path(&self, outside: bool) -> TokenStream {
        let uncached_fn = &self.uncached_fn;
        match &self.self_ty {
            Some(self_ty) if outside => quote!(<#self_ty>::#uncached_fn),
            Some(_) => quote!(Self::#uncached_fn),
            None => quote!(#uncached_fn),
        }
    }

    /// `tokens` with `Self` spelled out, for items nested in a method.
    fn outside_impl(&self, tokens: TokenStream) -> TokenStream {
        match &self.self_ty {
            Some(self_ty) => replace_self(tokens, self_ty),
            None => tokens,
        }
    }
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
                fn fetch(id: u64) -> u8 {
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
        assert_eq!(errors, 3, "unknown option, literal type, not async");
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
