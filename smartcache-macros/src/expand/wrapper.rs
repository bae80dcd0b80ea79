//! The cached function: the original signature, whose body asks the cache (see
//! [`Generator::wrapper`]).

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Meta, Pat, PatIdent, PatType, Signature};

use super::Generator;
use super::key::{BorrowedKey, CacheTypes, borrowed_key, owned_copy, owned_type};
use crate::ast::{Arg, Output, Pass, Place};

impl Generator<'_> {
    // Input:
    //     #[doc = " Fetches a user."]
    //     pub async fn fetch(id: u64, name: &str) -> Result<User, CacheError<ApiError>> { .. }
    // Output (a body that borrows nothing from its caller):
    //     #[doc = " Fetches a user."]
    //     pub async fn fetch(id: u64, name: &str) -> Result<User, CacheError<ApiError>> {
    //         async fn __smartcache_body(p0: u64, p1: String) -> Result<..> {
    //             fetch_uncached(p0, Borrow::borrow(&p1)).await
    //         }
    //         fn __smartcache_route(args: Option<(u64, String)>) -> Route<Result<..>> {
    //             (&Probe::new(args, |(p0, p1)| __smartcache_body(p0, p1))).route()
    //         }
    //         { fn __smartcache_key<id>() { check_key_arg::<u64, _, id>(verdict) } } ..
    //         check_value::<User>(); ..
    //         let __smartcache_cache = (&CacheProbe::<AsyncSmartCache<..>>::new())
    //             .cache(__smartcache_fetch_cache());
    //         let __smartcache_k0 = (&KeyProbe::<u64>::new()).key_ref(&id);
    //         let __smartcache_key = KeyRef((__smartcache_k0, name));
    //         let __smartcache_answer = match __smartcache_route(None) {
    //             Route::Shared(_) => cache.get_or_compute_shared_ref(&key, move || {
    //                 shared_future(__smartcache_route(Some((
    //                     (&KeyProbe::<u64>::new()).key_copy(__smartcache_k0),
    //                     to_owned(name),
    //                 ))))
    //             }).await,
    //             Route::Local => cache.get_or_compute_ref(&key, move || {
    //                 fetch_uncached((&KeyProbe::<u64>::new()).key_copy(__smartcache_k0), name)
    //             }).await,
    //         };
    //         full(__smartcache_answer)
    //     }
    // The key is borrowed (see `key::borrowed_key`): a hit builds nothing, the owned key
    // `(u64, String)` is built on a miss. Where it does not apply (a custom key, more than 6
    // parts, none), the key is owned and built first, and the calls are the owned forms
    // (`get_or_compute(key, move || fetch_uncached(id, name))`).
    // A body that borrows (`&self`, a skipped reference) only has the `Route::Local` call; a
    // sync fn calls `get_or_compute_blocking(_ref)`. A method's route fns are associated (see
    // `route_fns`).
    pub(super) fn wrapper(&self) -> TokenStream {
        let function = self.function;
        let attrs = self.wrapper_attrs();
        let vis = &function.vis;
        let sig = wrapper_signature(&function.sig, &function.args);
        let checks = self
            .keys
            .iter()
            .map(|key| &key.check)
            .chain(&self.types.checks);
        let cache_call = self.path_to(&self.static_fn);
        let borrowed = borrowed_key(function);
        let key = if let Some(BorrowedKey { lets, key, .. }) = &borrowed {
            quote! {
                #lets
                let __smartcache_key = #key;
            }
        } else {
            let key_exprs = self.keys.iter().map(|key| &key.expr);
            let key = if function.options.key.is_some() {
                quote!(#(#key_exprs)*)
            } else {
                quote!((#(#key_exprs,)*))
            };
            quote!(let __smartcache_key = #key;)
        };
        let borrowed = borrowed.as_ref();
        let (nested, call) = if function.sig.asyncness.is_none() {
            (TokenStream::new(), self.blocking_call(borrowed))
        } else if self.uses_route() {
            let nested = match function.place {
                Place::Free => self.route_fns(),
                Place::Method { .. } => TokenStream::new(),
            };
            (nested, self.routed_call(borrowed))
        } else {
            (TokenStream::new(), self.local_call(borrowed))
        };
        let error = &self.types.error;
        let answer = match function.output {
            Output::Full { .. } => quote!(::smartcache::__private::full),
            Output::Transparent { .. } | Output::Alias { .. } => quote! {
                (&::smartcache::__private::ErrorProbe::<#error>::new()).hand_back
            },
            Output::Infallible { .. } => quote!(::smartcache::__private::infallible),
            Output::Optional { .. } => quote!(::smartcache::__private::optional),
        };
        let cache_type = self.cache_type();
        quote! {
            #(#attrs)*
            #vis #sig {
                #[allow(unused_imports)]
                use ::smartcache::__private::{
                    CacheFits as _, CacheUnfit as _, ErrorCloned as _, ErrorUnfit as _,
                    KeyBorrowed as _, KeyFits as _, KeyNotBorrowed as _, KeyUnfit as _,
                };
                #nested
                #(#checks;)*
                let __smartcache_cache = (&::smartcache::__private::CacheProbe::<#cache_type>::new())
                    .cache(#cache_call());
                #key
                let __smartcache_answer = #call;
                #answer(__smartcache_answer)
            }
        }
    }

    /// The cfg, then the other attributes, then `must_use` and the lints (an `expect` made
    /// an `allow`: the body, where most expectations are met, is in the uncached fn).
    fn wrapper_attrs(&self) -> Vec<Attribute> {
        let attrs = &self.function.attrs;
        let lints = attrs.lints.iter().map(|attr| {
            let mut attr = attr.clone();
            if let Meta::List(list) = &mut attr.meta {
                if list.path.is_ident("expect") {
                    list.path = syn::parse_quote_spanned!(list.path.span()=> allow);
                }
            }
            attr
        });
        attrs
            .cfg
            .iter()
            .chain(&attrs.rest)
            .chain(&attrs.must_use)
            .cloned()
            .chain(lints)
            .collect()
    }

    /// `cache.get_or_compute(key, move || <body>).await`: the caller polls the body.
    fn local_call(&self, borrowed: Option<&BorrowedKey>) -> TokenStream {
        let body = self.uncached_call(borrowed);
        let body = match self.function.output {
            Output::Infallible { .. } => quote!(::smartcache::__private::never_fails(#body)),
            Output::Optional { .. } => quote!(::smartcache::__private::present_later(#body)),
            _ => body,
        };
        let (method, key) = lookup("get_or_compute", borrowed);
        quote! {
            __smartcache_cache
                .#method(#key, move || #body)
                .await
        }
    }

    /// `cache.get_or_compute_blocking(key, move || <body>)`: a sync fn, single-flight
    /// across threads.
    fn blocking_call(&self, borrowed: Option<&BorrowedKey>) -> TokenStream {
        let body = self.uncached_call(borrowed);
        let body = match self.function.output {
            Output::Infallible { .. } => quote! {
                ::core::result::Result::<_, ::core::convert::Infallible>::Ok(#body)
            },
            Output::Optional { .. } => quote!(::smartcache::__private::present(#body)),
            _ => body,
        };
        let (method, key) = lookup("get_or_compute_blocking", borrowed);
        quote! {
            __smartcache_cache.#method(#key, move || #body)
        }
    }

    /// `fetch_uncached(self, id, name)`: the body, with the cached fn's arguments (a copy of
    /// those that the borrowed key holds by reference).
    fn uncached_call(&self, borrowed: Option<&BorrowedKey>) -> TokenStream {
        let uncached = self.path_to(&self.uncached_fn);
        let args = self.body_args(borrowed, |arg| arg.binding.to_token_stream());
        quote!(#uncached(#(#args),*))
    }

    /// What the body gets for the receiver and each argument: a copy of a by-value part of a
    /// borrowed key, else `self`, else `other(arg)`.
    fn body_args(
        &self,
        borrowed: Option<&BorrowedKey>,
        other: impl Fn(&Arg) -> TokenStream,
    ) -> Vec<TokenStream> {
        let function = self.function;
        let copy_of_receiver = borrowed.and_then(|key| key.receiver.clone());
        let receiver = function
            .receiver
            .as_ref()
            .map(|_| copy_of_receiver.unwrap_or_else(|| quote!(self)));
        let copies = borrowed.map(|key| &key.args[..]).unwrap_or_default();
        let args = function.args.iter().enumerate().map(|(i, arg)| {
            match copies.get(i).cloned().flatten() {
                Some(copy) => copy,
                None => other(arg),
            }
        });
        receiver.into_iter().chain(args).collect()
    }

    /// The shared call when the body's future is `Send`, else the local one.
    fn routed_call(&self, borrowed: Option<&BorrowedKey>) -> TokenStream {
        let local_call = self.local_call(borrowed);
        let args = self.body_args(borrowed, |arg| match arg.pass {
            Pass::Ref if !arg.skipped => owned_copy(arg),
            _ => arg.binding.to_token_stream(),
        });
        let route = self.path_to(&self.route_fn);
        let (method, key) = lookup("get_or_compute_shared", borrowed);
        quote! {
            match #route(::core::option::Option::None) {
                ::smartcache::__private::Route::Shared(_) => {
                    __smartcache_cache
                        .#method(#key, move || {
                            ::smartcache::__private::shared_future(#route(
                                ::core::option::Option::Some((#(#args,)*)),
                            ))
                        })
                        .await
                }
                ::smartcache::__private::Route::Local => #local_call,
            }
        }
    }

    // Output (a free fn: nested in the cached fn; a method: associated, hidden):
    //     async fn __smartcache_body(p0: u64, p1: String) -> Result<V, E> {
    //         fetch_uncached(p0, Borrow::borrow(&p1)).await
    //     }
    //     fn __smartcache_route(args: Option<(u64, String)>) -> Route<Result<V, E>> {
    //         (&Probe::new(args, |(p0, p1)| __smartcache_body(p0, p1))).route()
    //     }
    /// The body as an `async fn` of owned arguments (so that its future is `'static`, and
    /// its `Send` is known inside the route fn, which is outside the cached fn's body), and
    /// the route probe.
    pub(super) fn route_fns(&self) -> TokenStream {
        let function = self.function;
        let mut params = Vec::new();
        let mut borrowed = Vec::new();
        if let Some(receiver) = &function.receiver {
            params.push(receiver.ty.to_token_stream());
            borrowed.push(false);
        }
        for arg in &function.args {
            let by_ref = matches!(arg.pass, Pass::Ref);
            params.push(if by_ref {
                owned_type(arg)
            } else {
                arg.ty.to_token_stream()
            });
            borrowed.push(by_ref);
        }
        let names: Vec<_> = (0..params.len())
            .map(|i| format_ident!("__smartcache_p{}", i))
            .collect();
        let call_args = names.iter().zip(&borrowed).map(|(name, &borrow)| {
            if borrow {
                quote!(::smartcache::__private::Borrow::borrow(&#name))
            } else {
                quote!(#name)
            }
        });
        let uncached = self.path_to(&self.uncached_fn);
        let call = quote!(#uncached(#(#call_args),*).await);
        let body = match function.output {
            Output::Infallible { .. } => quote!(::core::result::Result::Ok(#call)),
            Output::Optional { .. } => quote!(::smartcache::__private::present(#call)),
            _ => call,
        };
        let CacheTypes { value, error, .. } = &self.types;
        let output = quote!(::core::result::Result<#value, #error>);
        // `refresh`: a body that takes the local route would never be refreshed ahead.
        let refresh_check = function.options.refresh.as_ref().map(|refresh| {
            let span = refresh.literal.span();
            quote_spanned! {span=>
                ::smartcache::__private::check_refresh((&__smartcache_probe).verdict());
            }
        });
        let (body_fn, route_fn) = (&self.body_fn, &self.route_fn);
        let body_path = self.path_to(body_fn);
        let (hidden, cfg) = match function.place {
            Place::Free => (None, &[][..]),
            Place::Method { .. } => (Some(quote!(#[doc(hidden)])), &function.attrs.cfg[..]),
        };
        quote! {
            #hidden
            #(#cfg)*
            async fn #body_fn(#(#names: #params),*) -> #output {
                #body
            }
            #hidden
            #(#cfg)*
            fn #route_fn(
                __smartcache_args: ::core::option::Option<(#(#params,)*)>,
            ) -> ::smartcache::__private::Route<#output> {
                #[allow(unused_imports)]
                use ::smartcache::__private::{ViaLocal as _, ViaShared as _};
                let __smartcache_probe = ::smartcache::__private::Probe::new(
                    __smartcache_args,
                    |(#(#names,)*)| #body_path(#(#names),*),
                );
                #refresh_check
                (&__smartcache_probe).route()
            }
        }
    }
}

/// The cache method and its key argument: `get_or_compute_ref(&__smartcache_key, ..)` for a
/// borrowed key, `get_or_compute(__smartcache_key, ..)` for an owned one.
fn lookup(method: &str, borrowed: Option<&BorrowedKey>) -> (Ident, TokenStream) {
    match borrowed {
        Some(_) => (format_ident!("{}_ref", method), quote!(&__smartcache_key)),
        None => (format_ident!("{}", method), quote!(__smartcache_key)),
    }
}

/// The cached function's signature: each argument bound to a plain name (patterns stay on
/// the uncached function), without `mut`.
fn wrapper_signature(sig: &Signature, args: &[Arg]) -> Signature {
    let mut sig = sig.clone();
    let mut args = args.iter();
    for input in &mut sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                receiver.attrs.clear();
                receiver.mutability = None;
            }
            FnArg::Typed(typed) => {
                let Some(arg) = args.next() else { continue };
                *typed = PatType {
                    attrs: Vec::new(),
                    pat: Box::new(Pat::Ident(PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: arg.binding.clone(),
                        subpat: None,
                    })),
                    colon_token: typed.colon_token,
                    ty: typed.ty.clone(),
                };
            }
        }
    }
    sig
}
