//! Code generation: from the checked model to the cached function, its cache handle and its
//! uncached body.
//!
//! Generated code names everything by absolute path (`::smartcache::__private::..`,
//! `::core::..`) and its own locals with a `__smartcache_` prefix. The cached function starts
//! with a check per type (`check_key::<T>()`, ..), spanned on the user's tokens, so that a
//! type that cannot be cached is reported on the argument or return type at fault, with the
//! hint of the helper trait's `#[diagnostic::on_unimplemented]`.

use proc_macro2::{Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, ImplItem, ImplItemFn, Item, ItemFn, ItemImpl, Meta, Pat, PatIdent, PatType,
    Signature, Type,
};

use crate::ast::{Arg, CachedFn, Output, Pass, Place, SelfArg};
use crate::attr::{self, Options};
use crate::ctxt::Errors;
use crate::{fallback, valid};

/// The attribute's entry point: a free `async fn`, or an `impl` block with marked methods.
pub(crate) fn smart_cached(args: TokenStream, input: TokenStream) -> TokenStream {
    match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Fn(item)) => free_fn(args, item, input),
        Ok(Item::Impl(item)) => impl_block(&args, item),
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
fn impl_block(args: &TokenStream, mut item: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    check_impl_header(args, &item, &mut errors);
    if let Err(error) = errors.finish() {
        strip_markers(&mut item);
        return fallback::emit(item.into_token_stream(), error);
    }
    let mut errors = Errors::default();
    let mut cached_methods = 0;
    for impl_item in std::mem::take(&mut item.items) {
        let cached = match impl_item {
            ImplItem::Fn(method) if method.attrs.iter().any(attr::is_marker) => {
                cached_methods += 1;
                cached_method(method, &item.self_ty, &mut errors)
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
fn cached_method(mut method: ImplItemFn, self_ty: &Type, errors: &mut Errors) -> ImplItem {
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
            self_ty: Box::new(self_ty.clone()),
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
    if !item.generics.params.is_empty() {
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

/// One element of the key tuple.
struct KeyPart {
    /// What the documentation calls it.
    label: String,
    /// The owned type (`String` for `&str`).
    ty: TokenStream,
    /// `check_key::<ty>()`, spanned on the argument.
    check: TokenStream,
    /// The expression that builds it from the argument.
    expr: TokenStream,
}

/// The `V` and `E` of the cache, and the checks of the return type.
struct CacheTypes {
    value: TokenStream,
    error: TokenStream,
    checks: Vec<TokenStream>,
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
    //         check_key::<u64>(); check_key::<String>(); check_value::<User>(); ..
    //         let __smartcache_cache = Checked(fetch_cache()).cache();
    //         let __smartcache_key = (key_clone(&id), to_owned(name));
    //         let __smartcache_answer = match __smartcache_route(None) {
    //             Route::Shared(_) => cache.get_or_compute_shared(key, move || {
    //                 shared_future(__smartcache_route(Some((id, to_owned(name)))))
    //             }).await,
    //             Route::Local => cache.get_or_compute(key, move || fetch_uncached(id, name)).await,
    //         };
    //         full(__smartcache_answer)
    //     }
    // A body that borrows (`&self`, a skipped reference) only has the `Route::Local` call.
    fn wrapper(&self) -> TokenStream {
        let function = self.function;
        let attrs = self.wrapper_attrs();
        let vis = &function.vis;
        let sig = wrapper_signature(&function.sig, &function.args);
        let checks = self
            .keys
            .iter()
            .map(|key| &key.check)
            .chain(&self.types.checks);
        let cache_fn = &self.cache_fn;
        let cache_call = match function.place {
            Place::Free => quote!(#cache_fn()),
            Place::Method { .. } => quote!(Self::#cache_fn()),
        };
        let key_exprs = self.keys.iter().map(|key| &key.expr);
        let local_call = self.local_call();
        let (nested, call) = if function.body_borrows() {
            (TokenStream::new(), local_call)
        } else {
            (self.nested_fns(), self.routed_call(&local_call))
        };
        let answer = match function.output {
            Output::Full { .. } => quote!(::smartcache::__private::full),
            Output::Transparent { .. } | Output::Alias { .. } => {
                quote!(::smartcache::__private::transparent)
            }
            Output::Infallible { .. } => quote!(::smartcache::__private::infallible),
        };
        quote! {
            #(#attrs)*
            #vis #sig {
                #nested
                #(#checks;)*
                let __smartcache_cache = ::smartcache::__private::Checked(#cache_call).cache();
                let __smartcache_key = (#(#key_exprs,)*);
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
    fn local_call(&self) -> TokenStream {
        let uncached = self.uncached_path(false);
        let receiver = self.function.receiver.as_ref().map(|_| quote!(self));
        let args = receiver.into_iter().chain(
            self.function
                .args
                .iter()
                .map(|arg| arg.binding.to_token_stream()),
        );
        let body = quote!(#uncached(#(#args),*));
        let body = match self.function.output {
            Output::Infallible { .. } => quote!(::smartcache::__private::never_fails(#body)),
            _ => body,
        };
        quote! {
            __smartcache_cache
                .get_or_compute(__smartcache_key, move || #body)
                .await
        }
    }

    /// The shared call when the body's future is `Send`, else the local one.
    fn routed_call(&self, local_call: &TokenStream) -> TokenStream {
        let receiver = self.function.receiver.as_ref().map(|_| quote!(self));
        let args =
            receiver
                .into_iter()
                .chain(self.function.args.iter().map(|arg| match arg.pass {
                    Pass::Ref if !arg.skipped => owned_copy(arg),
                    _ => arg.binding.to_token_stream(),
                }));
        quote! {
            match __smartcache_route(::core::option::Option::None) {
                ::smartcache::__private::Route::Shared(_) => {
                    __smartcache_cache
                        .get_or_compute_shared(__smartcache_key, move || {
                            ::smartcache::__private::shared_future(__smartcache_route(
                                ::core::option::Option::Some((#(#args,)*)),
                            ))
                        })
                        .await
                }
                ::smartcache::__private::Route::Local => #local_call,
            }
        }
    }

    /// The body as a free-standing `async fn` of owned arguments (so that its future is
    /// `'static`, and its `Send` is known inside `__smartcache_route`), and the route probe.
    /// Nested items cannot name `Self`: a method's is spelled out.
    fn nested_fns(&self) -> TokenStream {
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
        let uncached = self.uncached_path(true);
        let call = quote!(#uncached(#(#call_args),*).await);
        let body = match function.output {
            Output::Infallible { .. } => quote!(::core::result::Result::Ok(#call)),
            _ => call,
        };
        let CacheTypes { value, error, .. } = &self.types;
        let output = quote!(::core::result::Result<#value, #error>);
        let tokens = quote! {
            async fn __smartcache_body(#(#names: #params),*) -> #output {
                #body
            }
            fn __smartcache_route(
                __smartcache_args: ::core::option::Option<(#(#params,)*)>,
            ) -> ::smartcache::__private::Route<#output> {
                #[allow(unused_imports)]
                use ::smartcache::__private::{ViaLocal as _, ViaShared as _};
                let __smartcache_probe = ::smartcache::__private::Probe::new(
                    __smartcache_args,
                    |(#(#names,)*)| __smartcache_body(#(#names),*),
                );
                (&__smartcache_probe).route()
            }
        };
        self.outside_impl(tokens)
    }

    // Input:
    //     #[smart_cached(retry = "1m", name = "users")]
    //     pub async fn fetch(id: u64) -> Result<User, CacheError<ApiError>> { .. }
    // Output:
    //     pub fn fetch_cache() -> &'static AsyncSmartCache<(u64,), User, CacheError<ApiError>> {
    //         static __SMARTCACHE: OnceLock<AsyncSmartCache<..>> = OnceLock::new();
    //         __SMARTCACHE.get_or_init(|| {
    //             AsyncSmartCache::builder().retry_interval(Duration::new(60, 0)).name("users").build()
    //         })
    //     }
    fn handle(&self) -> TokenStream {
        let function = self.function;
        let vis = &function.vis;
        let cfg = &function.attrs.cfg;
        let cache_fn = &self.cache_fn;
        let cache_type = self.cache_type();
        let static_type = self.outside_impl(cache_type.clone());
        let options = &function.options;
        let retry = options.retry.map(|(retry, _)| {
            let retry = duration(retry);
            quote!(.retry_interval(#retry))
        });
        let ttl = options.ttl.map(|ttl| {
            let ttl = duration(ttl);
            quote!(.time_to_live(#ttl))
        });
        let capacity = options.capacity.map(|capacity| {
            let capacity = Literal::u64_unsuffixed(capacity);
            quote!(.max_capacity(#capacity))
        });
        let name = self.registry_name();
        let doc = self.handle_doc();
        quote! {
            #[doc = #doc]
            #(#cfg)*
            #[must_use]
            #vis fn #cache_fn() -> &'static #cache_type {
                static __SMARTCACHE: ::smartcache::__private::OnceLock<#static_type> =
                    ::smartcache::__private::OnceLock::new();
                __SMARTCACHE.get_or_init(|| {
                    ::smartcache::AsyncSmartCache::builder()
                        #retry
                        #ttl
                        #capacity
                        .name(#name)
                        .build()
                })
            }
        }
    }

    /// `module::path::fn_name` (`module::path::Type::fn_name` for a method), or the name given.
    fn registry_name(&self) -> TokenStream {
        if let Some(name) = &self.function.options.name {
            return name.to_token_stream();
        }
        let ident = self.function.sig.ident.to_string();
        let ty = self
            .self_ty
            .as_ref()
            .map(|ty| format!("{}::", ty.to_string().replace(' ', "")));
        let tail = format!("::{}{ident}", ty.unwrap_or_default());
        quote!(::core::concat!(::core::module_path!(), #tail))
    }

    fn handle_doc(&self) -> String {
        let labels: Vec<&str> = self.keys.iter().map(|key| key.label.as_str()).collect();
        let key = match labels.as_slice() {
            [single] => format!("`({single},)`"),
            labels => format!("`({})`", labels.join(", ")),
        };
        format!(
            " The cache behind `{}`: statistics, invalidation, priming.\n\n Keyed by {key}. \
             Built on first use, when it is also listed in `smartcache::registry`.",
            self.function.sig.ident
        )
    }

    // Input:
    //     pub async fn fetch(mut id: u64) -> Result<User, ApiError> { body }
    // Output:
    //     #[allow(clippy::unused_async, ..)]
    //     pub async fn fetch_uncached(mut id: u64) -> Result<User, ApiError> { body }
    fn uncached(&self) -> TokenStream {
        let function = self.function;
        let attrs = &function.attrs;
        let (cfg, lints, must_use) = (&attrs.cfg, &attrs.lints, &attrs.must_use);
        let vis = &function.vis;
        let mut sig = function.sig.clone();
        sig.ident = self.uncached_fn.clone();
        let block = &function.block;
        let mut doc = format!(
            " `{}` without its cache: runs the body on every call and stores nothing.",
            function.sig.ident
        );
        if !matches!(function.output, Output::Infallible { .. }) {
            doc.push_str("\n\n # Errors\n\n Those of the body.");
        }
        quote! {
            #[doc = #doc]
            #(#cfg)*
            #(#must_use)*
            #(#lints)*
            // The body's `async` is required by the attribute, and clippy does not read
            // documentation generated by a macro (its `# Errors` section included).
            #[allow(
                clippy::unused_async,
                clippy::missing_errors_doc,
                clippy::missing_panics_doc
            )]
            #vis #sig #block
        }
    }

    /// `AsyncSmartCache<K, V, E>`.
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

impl CacheTypes {
    fn of(output: &Output) -> Self {
        match output {
            Output::Full { value, error } => Self {
                value: value.to_token_stream(),
                error: quote!(::smartcache::CacheError<#error>),
                checks: vec![check("check_value", value), check("check_error", error)],
            },
            Output::Transparent { value, error } => Self {
                value: value.to_token_stream(),
                error: error.to_token_stream(),
                checks: vec![
                    check("check_value", value),
                    check("check_cloned_error", error),
                ],
            },
            Output::Alias { result } => {
                let span = result.span();
                let fallible = quote_spanned!(span=> ::smartcache::__private::Fallible);
                let value = quote_spanned!(span=> <#result as #fallible>::Value);
                let error = quote_spanned!(span=> <#result as #fallible>::Error);
                Self {
                    value,
                    error,
                    checks: vec![check("check_alias", result)],
                }
            }
            Output::Infallible { value } => Self {
                value: value.to_token_stream(),
                error: quote!(::core::convert::Infallible),
                checks: vec![check("check_value", value)],
            },
        }
    }
}

/// `::smartcache::__private::<function>::<ty>()`, spanned on `ty` so that an unmet bound
/// is reported there.
fn check(function: &str, ty: &impl ToTokens) -> TokenStream {
    let span = ty.span();
    let function = Ident::new(function, span);
    quote_spanned!(span=> ::smartcache::__private::#function::<#ty>())
}

fn receiver_key(receiver: &SelfArg) -> KeyPart {
    let span = receiver.token.span();
    let ty = &receiver.ty;
    let self_token = &receiver.token;
    let borrow = matches!(receiver.pass, Pass::Value).then(|| quote!(&));
    KeyPart {
        label: "self".to_owned(),
        ty: ty.to_token_stream(),
        check: quote_spanned!(span=> ::smartcache::__private::check_key::<#ty>()),
        expr: quote_spanned!(span=> <#ty as ::smartcache::__private::CacheKey>::key_clone(#borrow #self_token)),
    }
}

fn arg_key(arg: &Arg) -> KeyPart {
    let span = arg.ty.span();
    let binding = &arg.binding;
    let (ty, expr) = match arg.pass {
        Pass::Ref => (owned_type(arg), owned_copy(arg)),
        // `&mut` key arguments are rejected by `valid`.
        Pass::Value | Pass::MutRef => {
            let ty = &arg.ty;
            let expr = quote_spanned!(span=> <#ty as ::smartcache::__private::CacheKey>::key_clone(&#binding));
            (ty.to_token_stream(), expr)
        }
    };
    KeyPart {
        label: binding.to_string(),
        check: quote_spanned!(span=> ::smartcache::__private::check_key::<#ty>()),
        ty,
        expr,
    }
}

/// The owned form of a `&T` argument's type: `String` for `str`, `Vec<T>` for `[T]`,
/// `PathBuf`, `OsString`, `CString` for `Path`, `OsStr`, `CStr`, `T` otherwise.
fn owned_type(arg: &Arg) -> TokenStream {
    let span = arg.ty.span();
    match unsized_kind(&arg.elem) {
        Some(Unsized::Slice(elem)) => quote_spanned!(span=> ::smartcache::__private::Vec<#elem>),
        Some(Unsized::Named(owned)) => {
            let owned = Ident::new(owned, span);
            quote_spanned!(span=> ::smartcache::__private::#owned)
        }
        None => arg.elem.to_token_stream(),
    }
}

/// The expression that copies a `&T` argument into its owned form.
fn owned_copy(arg: &Arg) -> TokenStream {
    let span = arg.ty.span();
    let binding = &arg.binding;
    let elem = &arg.elem;
    if unsized_kind(elem).is_some() {
        quote_spanned!(span=> ::smartcache::__private::ToOwned::to_owned(#binding))
    } else {
        quote_spanned!(span=> <#elem as ::smartcache::__private::CacheKey>::key_clone(#binding))
    }
}

enum Unsized<'a> {
    Slice(&'a Type),
    /// The owned type's name in `__private`.
    Named(&'static str),
}

fn unsized_kind(ty: &Type) -> Option<Unsized<'_>> {
    match ty {
        Type::Slice(slice) => Some(Unsized::Slice(&slice.elem)),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if !last.arguments.is_none() {
                return None;
            }
            let owned = match last.ident.to_string().as_str() {
                "str" => "String",
                "Path" => "PathBuf",
                "OsStr" => "OsString",
                "CStr" => "CString",
                _ => return None,
            };
            Some(Unsized::Named(owned))
        }
        Type::Paren(paren) => unsized_kind(&paren.elem),
        Type::Group(group) => unsized_kind(&group.elem),
        _ => None,
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

/// `Duration::new(secs, nanos)`.
fn duration(duration: std::time::Duration) -> TokenStream {
    let secs = Literal::u64_unsuffixed(duration.as_secs());
    let nanos = Literal::u32_unsuffixed(duration.subsec_nanos());
    quote!(::smartcache::__private::Duration::new(#secs, #nanos))
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
