//! The cached function: the original signature, whose body asks the cache (see
//! [`Generator::wrapper`]).

use proc_macro2::{Ident, Span, TokenStream};
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
    //         let __smartcache_miss = {
    //             let __smartcache_k0 = (&KeyProbe::<u64>::new()).key_ref(&id);
    //             let __smartcache_k1 = StrArg(name);
    //             let __smartcache_key = KeyRef((__smartcache_k0, &__smartcache_k1));
    //             match cache.routed_lookup_ref(
    //                 &key,
    //                 Route::is_shared(__smartcache_route(None)),
    //                 (__smartcache_k0, name),
    //                 |(__smartcache_k0, name)| shared_future(__smartcache_route(Some((
    //                     (&KeyProbe::<u64>::new()).key_copy(__smartcache_k0),
    //                     to_owned(name),
    //                 )))),
    //                 |(__smartcache_k0, name)| {
    //                     fetch_uncached((&KeyProbe::<u64>::new()).key_copy(__smartcache_k0), name)
    //                 },
    //             ) {
    //                 Ok(value) => return full(Ok(value)), // a hit: no future of the cache's
    //                 Err(miss) => miss,
    //             }
    //         };
    //         full(__smartcache_miss.run().await)
    //     }
    // The key is borrowed (see `key::borrowed_key`): a hit builds nothing, the owned key
    // `(u64, String)` is built on a miss. Where it does not apply (a custom key, more than 6
    // parts, none), the key is owned and built first, and the calls are the owned forms
    // (`routed_lookup(key, ..)`).
    // A body that borrows (`&self`, a skipped reference) only has the local call
    // (`get_or_compute_ref(&key, move || fetch_uncached(..))`); a
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
        let error = &self.types.error;
        let answer = match function.output {
            Output::Full { .. } => quote!(::smartcache::__private::full),
            Output::Transparent { .. } | Output::Alias { .. } => quote! {
                (&::smartcache::__private::ErrorProbe::<#error>::new()).hand_back
            },
            Output::Infallible { .. } => quote!(::smartcache::__private::infallible),
            Output::Optional { .. } => quote!(::smartcache::__private::optional),
        };
        let (nested, tail) = if function.sig.asyncness.is_none() {
            let call = self.blocking_call(borrowed);
            (TokenStream::new(), answered(&key, &call, &answer))
        } else if self.uses_route() {
            let nested = match function.place {
                Place::Free => self.route_fns(),
                Place::Method { .. } => TokenStream::new(),
            };
            (nested, self.routed_call(borrowed, &key, &answer))
        } else {
            let call = self.local_call(borrowed);
            (TokenStream::new(), answered(&key, &call, &answer))
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
                #tail
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
        let body = self.local_body(borrowed, &quote!(self));
        let (method, key) = lookup("get_or_compute", borrowed);
        quote! {
            __smartcache_cache
                .#method(#key, move || #body)
                .await
        }
    }

    /// The body's future for a local call, as a computation (`Result<V, E>`), with
    /// `receiver` for `self`.
    fn local_body(&self, borrowed: Option<&BorrowedKey>, receiver: &TokenStream) -> TokenStream {
        let body = self.uncached_call(borrowed, receiver);
        match self.function.output {
            Output::Infallible { .. } => quote!(::smartcache::__private::never_fails(#body)),
            Output::Optional { .. } => quote!(::smartcache::__private::present_later(#body)),
            _ => body,
        }
    }

    /// `cache.get_or_compute_blocking(key, move || <body>)`: a sync fn, single-flight
    /// across threads.
    fn blocking_call(&self, borrowed: Option<&BorrowedKey>) -> TokenStream {
        let body = self.uncached_call(borrowed, &quote!(self));
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
    /// those that the borrowed key holds by reference), and `receiver` for `self`.
    fn uncached_call(&self, borrowed: Option<&BorrowedKey>, receiver: &TokenStream) -> TokenStream {
        let uncached = self.path_to(&self.uncached_fn);
        let args = self.body_args(borrowed, receiver, |arg| arg.binding.to_token_stream());
        quote!(#uncached(#(#args),*))
    }

    /// What the body gets for the receiver and each argument: a copy of a by-value part of a
    /// borrowed key, else `receiver` (for `self`), else `other(arg)`.
    fn body_args(
        &self,
        borrowed: Option<&BorrowedKey>,
        receiver: &TokenStream,
        other: impl Fn(&Arg) -> TokenStream,
    ) -> Vec<TokenStream> {
        let function = self.function;
        let copy_of_receiver = borrowed.and_then(|key| key.receiver.as_ref());
        let receiver = function.receiver.as_ref().map(|_| match copy_of_receiver {
            Some(part) => part.copy.clone(),
            None => receiver.clone(),
        });
        let copies = borrowed.map(|key| &key.args[..]).unwrap_or_default();
        let args = function.args.iter().enumerate().map(|(i, arg)| {
            match copies.get(i).and_then(Option::as_ref) {
                Some(part) => part.copy.clone(),
                None => other(arg),
            }
        });
        receiver.into_iter().chain(args).collect()
    }

    // Output (`fetch(id: u64, name: &str)`, with the borrowed key of `wrapper`):
    //     let __smartcache_lookup = cache.routed_lookup_ref(
    //         &__smartcache_key,
    //         Route::is_shared(__smartcache_route(None)),
    //         (__smartcache_k0, name),
    //         |(__smartcache_k0, name)| shared_future(__smartcache_route(Some((
    //             (&KeyProbe::<u64>::new()).key_copy(__smartcache_k0),
    //             to_owned(name),
    //         )))),
    //         |(__smartcache_k0, name)| {
    //             fetch_uncached((&KeyProbe::<u64>::new()).key_copy(__smartcache_k0), name)
    //         },
    //     );
    //     match __smartcache_lookup { Ok(value) => return <answer>(Ok(value)), Err(miss) => miss }
    // (in a block, `__smartcache_miss`, after the key's lets), then
    //     <answer>(__smartcache_miss.run().await)
    /// The shared call when the body's future is `Send`, else the local one: one call, which
    /// takes what the body needs (`args`) and how to call it either way, the tuple's names
    /// shadowing the cached fn's (`self`, which no closure can take, as `__smartcache_self`).
    fn routed_call(
        &self,
        borrowed: Option<&BorrowedKey>,
        key_lets: &TokenStream,
        answer: &TokenStream,
    ) -> TokenStream {
        let function = self.function;
        let receiver = Ident::new("__smartcache_self", Span::mixed_site()).to_token_stream();
        let mut values = Vec::new();
        let mut names = Vec::new();
        if function.receiver.is_some() {
            if let Some(part) = borrowed.and_then(|key| key.receiver.as_ref()) {
                values.push(part.local.to_token_stream());
                names.push(part.local.to_token_stream());
            } else {
                values.push(quote!(self));
                names.push(receiver.clone());
            }
        }
        let copies = borrowed.map(|key| &key.args[..]).unwrap_or_default();
        for (i, arg) in function.args.iter().enumerate() {
            let name = match copies.get(i).and_then(Option::as_ref) {
                Some(part) => part.local.to_token_stream(),
                None => arg.binding.to_token_stream(),
            };
            values.push(name.clone());
            names.push(name);
        }
        let local_body = self.local_body(borrowed, &receiver);
        let shared_args = self.body_args(borrowed, &receiver, |arg| match arg.pass {
            Pass::Ref if !arg.skipped => owned_copy(arg),
            _ => arg.binding.to_token_stream(),
        });
        let route = self.path_to(&self.route_fn);
        let (method, key) = lookup("routed_lookup", borrowed);
        // NOTE: the route is read into a `bool` in the call: a `match` on the route itself
        // would keep it (an `Option<Box<dyn Future>>`) alive across the `.await`, a field of
        // the fn's future with a drop flag, tested and dropped on every call. A hit returns
        // at once, and the key lives in a block that ends before the miss is awaited: what
        // lives across an `.await` is a field of the future, written on every call.
        quote! {
            let __smartcache_miss = {
                #key_lets
                let __smartcache_lookup = __smartcache_cache.#method(
                    #key,
                    ::smartcache::__private::Route::is_shared(#route(::core::option::Option::None)),
                    (#(#values,)*),
                    |(#(#names,)*)| {
                        ::smartcache::__private::shared_future(#route(
                            ::core::option::Option::Some((#(#shared_args,)*)),
                        ))
                    },
                    |(#(#names,)*)| #local_body,
                );
                match __smartcache_lookup {
                    ::core::result::Result::Ok(__smartcache_value) => {
                        return #answer(::core::result::Result::Ok(__smartcache_value));
                    }
                    ::core::result::Result::Err(__smartcache_miss) => __smartcache_miss,
                }
            };
            #answer(__smartcache_miss.run().await)
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
            #[inline]
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

/// `key_lets`, then `answer` of `call`'s result.
fn answered(key_lets: &TokenStream, call: &TokenStream, answer: &TokenStream) -> TokenStream {
    quote! {
        #key_lets
        let __smartcache_answer = #call;
        #answer(__smartcache_answer)
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
