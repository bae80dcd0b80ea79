//! The cache handle, `<fn>_cache()`, and the static cache behind it.

use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, quote};

use super::Generator;

impl Generator<'_> {
    // Input:
    //     #[smart_cached(retry = "1m", name = "users")]
    //     pub async fn fetch(id: u64) -> Result<User, CacheError<ApiError>> { .. }
    // Output:
    //     pub fn fetch_cache() -> &'static AsyncSmartCache<(u64,), User, CacheError<ApiError>> {
    //         __smartcache_fetch_cache()
    //     }
    //     fn __smartcache_fetch_cache() -> &'static AsyncSmartCache<..> {
    //         static __SMARTCACHE: OnceLock<AsyncSmartCache<..>> = OnceLock::new();
    //         __SMARTCACHE.get_or_init(|| {
    //             AsyncSmartCache::builder().retry_interval(Duration::new(60, 0)).name("users").build()
    //             // with an error type: Settings::with_hint(<the builder>, <its hint>) (see `hint`)
    //             // with `shared`: __private::share(AsyncSmartCache::builder()..).build()
    //         })
    //     }
    // The cached fn calls the hidden fn, which the user's items cannot shadow: a clash with
    // the handle's name is then one error, E0428, on the attribute.
    // A method whose cache type names `Self`, seen without its `impl` block, cannot spell
    // that type in a static: its static holds the cache type-erased (see `ErasedCache`).
    pub(super) fn handle(&self) -> TokenStream {
        let function = self.function;
        let vis = &self.companion_vis;
        let cfg = &function.attrs.cfg;
        let cache_fn = &self.cache_fn;
        let cache_type = self.cache_type();
        let static_type = self.outside_impl(cache_type.clone());
        let settings = self.settings();
        let static_fn = &self.static_fn;
        let static_fn_path = self.path_to(static_fn);
        let name = self.registry_name();
        let doc = self.handle_doc();
        let static_item = if self.self_ty.is_none() && super::names_self(cache_type.clone()) {
            quote! {
                static __SMARTCACHE: ::smartcache::__private::ErasedCache =
                    ::smartcache::__private::ErasedCache::new();
            }
        } else {
            quote! {
                static __SMARTCACHE: ::smartcache::__private::OnceLock<#static_type> =
                    ::smartcache::__private::OnceLock::new();
            }
        };
        let builder = quote! {
            (&::smartcache::__private::CacheProbe::<#cache_type>::new())
                .builder()
                #settings
                .name(#name)
        };
        let builder = match self.hint() {
            Some(hint) => quote!(::smartcache::__private::Settings::with_hint(#builder, #hint)),
            None => builder,
        };
        let builder = if function.options.shared {
            let share = self.share_fn();
            quote!(::smartcache::__private::#share(#builder))
        } else {
            builder
        };
        quote! {
            #[doc = #doc]
            #(#cfg)*
            #[must_use]
            #[inline]
            #vis fn #cache_fn() -> &'static #cache_type {
                #static_fn_path()
            }

            #[doc(hidden)]
            #(#cfg)*
            #[inline]
            fn #static_fn() -> &'static #cache_type {
                #static_item
                __SMARTCACHE.get_or_init(|| {
                    #[allow(unused_imports)]
                    use ::smartcache::__private::{
                        CacheFits as _, CacheUnfit as _, HintGiven as _, HintNone as _,
                    };
                    #builder.build()
                })
            }
        }
    }

    /// The builder calls of the options given: `.retry_interval(..)`, `.time_to_live(..)`, ..
    fn settings(&self) -> TokenStream {
        let options = &self.function.options;
        let timings = [
            ("retry_interval", &options.retry),
            ("max_retry_interval", &options.retry_max),
            ("time_to_live", &options.ttl),
            ("refresh_after", &options.refresh),
            ("stale_if_error", &options.stale_if_error),
        ];
        let timings = timings.into_iter().filter_map(|(method, timing)| {
            let method = proc_macro2::Ident::new(method, proc_macro2::Span::call_site());
            let duration = duration(timing.as_ref()?.duration);
            Some(quote!(.#method(#duration)))
        });
        let capacity = options.capacity.map(|capacity| {
            let capacity = Literal::u64_unsuffixed(capacity);
            quote!(.max_capacity(#capacity))
        });
        quote!(#(#timings)* #capacity)
    }

    // Output (`Result<T, E>`; `Result<T, CacheError<E>>` asks for `nested_hint`):
    //     Settings::with_hint(<builder>, (&HintProbe::<E>::new()).hint())
    /// The retry hint of the fn's error type, `Some` at run time when it implements
    /// `smartcache::RetryAfter` (see `HintProbe`); no code for fns whose failures are not
    /// errors of theirs (`Option`, infallible).
    fn hint(&self) -> Option<TokenStream> {
        let (error, method) = match &self.function.output {
            crate::ast::Output::Full { error, .. } => (error.to_token_stream(), "nested_hint"),
            crate::ast::Output::Transparent { .. } | crate::ast::Output::Alias { .. } => {
                (self.types.error.clone(), "hint")
            }
            crate::ast::Output::Optional { .. } | crate::ast::Output::Infallible { .. } => {
                return None;
            }
        };
        let method = proc_macro2::Ident::new(method, proc_macro2::Span::call_site());
        Some(quote!((&::smartcache::__private::HintProbe::<#error>::new()).#method()))
    }

    /// The runtime helper that puts the cache on the installed shared tier, for the fn's
    /// return mode: errors shared as `serde` values (`Result<T, E>`, `Option<T>`), as the
    /// original inside a `CacheError` (`Result<T, CacheError<E>>`), or not at all (no error).
    fn share_fn(&self) -> proc_macro2::Ident {
        let name = match &self.function.output {
            crate::ast::Output::Full { .. } => "share_nested",
            crate::ast::Output::Infallible { .. } => "share_values",
            crate::ast::Output::Transparent { .. }
            | crate::ast::Output::Alias { .. }
            | crate::ast::Output::Optional { .. } => "share",
        };
        proc_macro2::Ident::new(name, proc_macro2::Span::call_site())
    }

    /// `module::path::fn_name` (`module::path::Type::fn_name` for a method), or the name given.
    fn registry_name(&self) -> TokenStream {
        if let Some(name) = &self.function.options.name {
            return name.to_token_stream();
        }
        let ident = self.function.sig.ident.to_string();
        if self.is_method() && self.self_ty.is_none() {
            // The `impl` block is unseen: the type's name comes from the compiler.
            return quote! {
                ::smartcache::__private::method_name(::core::any::type_name::<Self>(), #ident)
            };
        }
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
            [custom] if self.function.options.key.is_some() => format!("`{custom}` (a custom key)"),
            [single] => format!("`({single},)`"),
            labels => format!("`({})`", labels.join(", ")),
        };
        format!(
            " The cache behind `{}`: statistics, invalidation, priming.\n\n Keyed by {key}. \
             Built on first use, when it is also listed in `smartcache::registry`.",
            self.function.sig.ident
        )
    }
}

/// `Duration::new(secs, nanos)`.
fn duration(duration: std::time::Duration) -> TokenStream {
    let secs = Literal::u64_unsuffixed(duration.as_secs());
    let nanos = Literal::u32_unsuffixed(duration.subsec_nanos());
    quote!(::smartcache::__private::Duration::new(#secs, #nanos))
}
