//! The types of the cache: the key tuple, built from the arguments, and the value and
//! error types, from the return type; each with the check that reports a type that cannot
//! be cached on the user's token.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use crate::ast::{Arg, CachedFn, Output, Pass, SelfArg};
use crate::attr::CustomKey;

/// One element of the key tuple.
pub(super) struct KeyPart {
    /// What the documentation calls it.
    pub(super) label: String,
    /// The owned type (`String` for `&str`).
    pub(super) ty: TokenStream,
    /// `check_key_arg::<ty, _>(verdict)`, spanned on the argument.
    pub(super) check: TokenStream,
    /// The expression that builds it from the argument.
    pub(super) expr: TokenStream,
}

/// The `V` and `E` of the cache, and the checks of the return type.
pub(super) struct CacheTypes {
    pub(super) value: TokenStream,
    pub(super) error: TokenStream,
    pub(super) checks: Vec<TokenStream>,
}

impl CacheTypes {
    pub(super) fn of(output: &Output) -> Self {
        match output {
            Output::Full { value, error } => Self {
                value: value.to_token_stream(),
                error: quote!(::smartcache::CacheError<#error>),
                checks: vec![check("check_value", value), check("check_error", error)],
            },
            Output::Transparent { value, error } => Self {
                value: value.to_token_stream(),
                error: error.to_token_stream(),
                checks: vec![check("check_value", value), hand_back_check(error)],
            },
            Output::Alias { result } => {
                let span = result.span();
                let fallible = quote_spanned!(span=> ::smartcache::__private::Fallible);
                let value = quote_spanned!(span=> <#result as #fallible>::Value);
                let error = quote_spanned!(span=> <#result as #fallible>::Error);
                let checks = vec![check("check_alias", result), hand_back_check(&error)];
                Self {
                    value,
                    error,
                    checks,
                }
            }
            Output::Infallible { value } => Self {
                value: value.to_token_stream(),
                error: quote!(::core::convert::Infallible),
                checks: vec![check("check_value", value)],
            },
            Output::Optional { value } => Self {
                value: value.to_token_stream(),
                error: quote!(::smartcache::__private::Absent),
                checks: vec![check("check_value", value)],
            },
        }
    }
}

/// The check that a transparent fn can hand a cached error back as its `error` type.
fn hand_back_check(error: &impl ToTokens) -> TokenStream {
    let span = error.span();
    quote_spanned! {span=>
        ::smartcache::__private::check_hand_back::<#error, _>(
            (&::smartcache::__private::ErrorProbe::<#error>::new()).verdict(),
        )
    }
}

/// `::smartcache::__private::<function>::<ty>()`, spanned on `ty` so that an unmet bound
/// is reported there.
fn check(function: &str, ty: &impl ToTokens) -> TokenStream {
    let span = ty.span();
    let function = Ident::new(function, span);
    quote_spanned!(span=> ::smartcache::__private::#function::<#ty>())
}

// Input:
//     #[smart_cached(key: String = format!("{id}/{}", state.region))]
//     async fn price(id: u64, State(state): State<AppState>) -> u64 { .. }
// Output (the key, in the cached fn):
//     {
//         let id = &id;
//         let State(state) = &__smartcache_arg1;
//         format!("{id}/{}", state.region)
//     }
/// The key given by `key: Type = expr`: the expression, evaluated over the arguments by
/// reference, as their patterns bind them.
pub(super) fn custom_key(key: &CustomKey, function: &CachedFn) -> KeyPart {
    let CustomKey { ty, expr, .. } = key;
    let span = ty.span();
    let lets = function.args.iter().map(|arg| {
        let pat = plain_bindings(&arg.pat);
        let binding = &arg.binding;
        quote! {
            #[allow(unused_variables, clippy::no_effect_underscore_binding)]
            let #pat = &#binding;
        }
    });
    KeyPart {
        label: quote!(#ty).to_string(),
        ty: ty.to_token_stream(),
        check: key_check(ty, span, "check_custom_key"),
        expr: quote_spanned! {span=>
            {
                #(#lets)*
                let __smartcache_key: #ty = #expr;
                __smartcache_key
            }
        },
    }
}

/// `pat` without `mut` and `ref`, as a pattern matched against a reference (where the
/// binding mode is already `ref`).
fn plain_bindings(pat: &syn::Pat) -> syn::Pat {
    struct Strip;
    impl syn::visit_mut::VisitMut for Strip {
        fn visit_pat_ident_mut(&mut self, pat: &mut syn::PatIdent) {
            pat.by_ref = None;
            pat.mutability = None;
            syn::visit_mut::visit_pat_ident_mut(self, pat);
        }
    }
    let mut pat = pat.clone();
    syn::visit_mut::VisitMut::visit_pat_mut(&mut Strip, &mut pat);
    pat
}

pub(super) fn receiver_key(receiver: &SelfArg) -> KeyPart {
    let span = receiver.token.span();
    let ty = &receiver.ty;
    let self_token = &receiver.token;
    let borrow = matches!(receiver.pass, Pass::Value).then(|| quote!(&));
    KeyPart {
        label: "self".to_owned(),
        ty: ty.to_token_stream(),
        check: key_check(ty, span, "check_key_receiver"),
        expr: quote_spanned!(span=> (&::smartcache::__private::KeyProbe::<#ty>::new()).key_clone(#borrow #self_token)),
    }
}

pub(super) fn arg_key(arg: &Arg) -> KeyPart {
    let span = arg.ty.span();
    let binding = &arg.binding;
    let (ty, expr) = match arg.pass {
        Pass::Ref => (owned_type(arg), owned_copy(arg)),
        // `&mut` key arguments are rejected by `valid`.
        Pass::Value | Pass::MutRef => {
            let ty = &arg.ty;
            let expr = quote_spanned!(span=> (&::smartcache::__private::KeyProbe::<#ty>::new()).key_clone(&#binding));
            (ty.to_token_stream(), expr)
        }
    };
    let name = arg.names.first().unwrap_or(binding);
    let check = if super::names_self(ty.clone()) {
        // A nested fn cannot name `Self`: the hint cannot name the argument either.
        let span = arg.ty.span();
        quote_spanned! {span=>
            ::smartcache::__private::check_key_arg_unnamed::<#ty, _>(
                (&::smartcache::__private::KeyProbe::<#ty>::new()).verdict(),
            )
        }
    } else {
        named_key_check(&ty, name)
    };
    KeyPart {
        label: binding.to_string(),
        check,
        ty,
        expr,
    }
}

/// The most fields a [`KeyRef`](https://docs.rs/smartcache/latest/smartcache/struct.KeyRef.html)
/// takes: a longer key is looked up owned.
const KEY_REF_FIELDS: usize = 6;

/// The argument tuple as a borrowed key, for the `_ref` lookups of the cache: a hit builds
/// no key (no `String` for a `&str`, no clone of a by-value argument).
pub(super) struct BorrowedKey {
    /// `let __smartcache_k0 = (&KeyProbe::<u64>::new()).key_ref(&id);`: a reference to each
    /// by-value part (`self` included).
    pub(super) lets: TokenStream,
    /// `::smartcache::KeyRef((__smartcache_k0, name,))`: each field a reference to a
    /// `BorrowedKey` of the key's field (`&u64` for `u64`, `&str` for `String`).
    pub(super) key: TokenStream,
    /// What the body gets for the receiver, if the key borrows it by value.
    pub(super) receiver: Option<BorrowedPart>,
    /// The same for each argument (aligned with `CachedFn::args`).
    pub(super) args: Vec<Option<BorrowedPart>>,
}

/// A by-value part of a [`BorrowedKey`].
#[derive(Clone)]
pub(super) struct BorrowedPart {
    /// `__smartcache_k0`: the local holding the reference.
    pub(super) local: Ident,
    /// `(&KeyProbe::<u64>::new()).key_copy(__smartcache_k0)`: the body's copy.
    pub(super) copy: TokenStream,
}

// Input:
//     #[smart_cached(skip(pool))]
//     async fn fetch(id: u64, name: &str, pool: Pool) -> .. { .. }
// Output:
//     lets: let __smartcache_k0 = (&KeyProbe::<u64>::new()).key_ref(&id);
//           let __smartcache_k1 = ::smartcache::__private::StrArg(name);
//           (mixed-site names: no name of the user's can meet them)
//     key:  ::smartcache::KeyRef((__smartcache_k0, &__smartcache_k1,))
//     args: [Some(__smartcache_k0 and (&KeyProbe::<u64>::new()).key_copy(__smartcache_k0)),
//            None, None]
/// The borrowed form of the default key (the argument tuple), or `None` where it does not
/// apply: a custom key (`key: T = expr`, built by its expression), no key part (`()` costs
/// nothing), more than [`KEY_REF_FIELDS`] parts.
///
/// A part passed by reference is its own borrowed form (`&self` for `Self`, `&[T]` for a
/// `Vec<T>`), or for a `&str`, a `StrArg` of it (the same hash as the `String`, a cheaper
/// comparison), and the body gets it as before. A part passed by value is borrowed (`&id`),
/// so it cannot move into the body while the key holds it: the body gets a copy, made when
/// it is called, on a miss only (`KeyBorrowed` in `smartcache::__private`).
///
/// Nothing here has a bound: for a type that cannot be a key, the cache is the probe's
/// stand-in, whose `_ref` forms take any key, a by-value part is not borrowed at all (the
/// probe's fallback, so that the fn's future is `Send` exactly as with an owned key), and
/// `check_key_arg` stays the one error.
pub(super) fn borrowed_key(function: &CachedFn) -> Option<BorrowedKey> {
    if function.options.key.is_some() {
        return None;
    }
    let mut lets = TokenStream::new();
    let mut fields = Vec::new();
    let borrow =
        |value: TokenStream, ty: &Type, fields: &mut Vec<TokenStream>, lets: &mut TokenStream| {
            let local = part_local(fields.len());
            let span = ty.span();
            let probe = quote_spanned!(span=> (&::smartcache::__private::KeyProbe::<#ty>::new()));
            lets.extend(quote!(let #local = #probe.key_ref(&#value);));
            fields.push(local.to_token_stream());
            let copy = quote!(#probe.key_copy(#local));
            BorrowedPart { local, copy }
        };
    let mut receiver_body = None;
    if let Some(receiver) = function.receiver.as_ref().filter(|r| !r.skipped) {
        let token = receiver.token.to_token_stream();
        match receiver.pass {
            Pass::Ref => fields.push(token),
            Pass::Value => {
                receiver_body = Some(borrow(token, &receiver.ty, &mut fields, &mut lets));
            }
            // Rejected by `valid`.
            Pass::MutRef => return None,
        }
    }
    let mut args = Vec::new();
    for arg in &function.args {
        let body = if arg.skipped {
            None
        } else {
            let binding = arg.binding.to_token_stream();
            match arg.pass {
                // A `&str` goes in as `StrArg`, which compares without a call to `memcmp`.
                Pass::Ref if matches!(unsized_kind(&arg.elem), Some(Unsized::Named("String"))) => {
                    let local = part_local(fields.len());
                    lets.extend(quote!(let #local = ::smartcache::__private::StrArg(#binding);));
                    fields.push(quote!(&#local));
                    None
                }
                Pass::Ref => {
                    fields.push(binding);
                    None
                }
                Pass::Value => Some(borrow(binding, &arg.ty, &mut fields, &mut lets)),
                // Rejected by `valid`.
                Pass::MutRef => return None,
            }
        };
        args.push(body);
    }
    if fields.is_empty() || fields.len() > KEY_REF_FIELDS {
        return None;
    }
    Some(BorrowedKey {
        lets,
        key: quote!(::smartcache::KeyRef((#(#fields,)*))),
        receiver: receiver_body,
        args,
    })
}

/// The local holding the key's part `index`: a mixed-site name, which no name of the user's
/// can meet.
fn part_local(index: usize) -> Ident {
    Ident::new(&format!("__smartcache_k{index}"), Span::mixed_site())
}

// Output (for `pool: Pool`, spanned on `Pool`):
//     {
//         fn __smartcache_key<pool>() {
//             check_key_arg::<Pool, _, pool>((&KeyProbe::<Pool>::new()).verdict())
//         }
//     }
/// The check of a key argument, in the cached fn: the probe's verdict is `Fits` only if
/// `ty` can be a key, and a verdict that is not fails the bound of `check_key_arg`, whose
/// message names the fix. The argument's name reaches that message as a type parameter
/// named like it (`{Name}` prints `pool`), in a nested fn that is never called: one error, on
/// the argument's type, `skip(pool)`, and no suggestion to derive `Hash` on a pool.
fn named_key_check(ty: &TokenStream, name: &Ident) -> TokenStream {
    let span = ty.span();
    let name = name.clone();
    quote_spanned! {span=>
        {
            #[allow(dead_code, non_camel_case_types, clippy::extra_unused_type_parameters)]
            fn __smartcache_key<#name>() {
                #[allow(unused_imports)]
                use ::smartcache::__private::{KeyFits as _, KeyUnfit as _};
                ::smartcache::__private::check_key_arg::<#ty, _, #name>(
                    (&::smartcache::__private::KeyProbe::<#ty>::new()).verdict(),
                );
            }
        }
    }
}

// Output (for `self` or a custom key's type, spanned on it):
//     check_key_receiver::<Self, _>((&KeyProbe::<Self>::new()).verdict())
/// The check of a key type, in the cached fn: the probe's verdict is `Fits` only if `ty` can
/// be a key, and a verdict that is not fails the bound of `check`'s helper trait, whose
/// message names the fix (`skip(..)`): one error, on the argument's type, with no suggestion
/// to derive `Hash` on a connection pool.
fn key_check(ty: &impl ToTokens, span: Span, check: &str) -> TokenStream {
    let check = Ident::new(check, span);
    quote_spanned! {span=>
        ::smartcache::__private::#check::<#ty, _>(
            (&::smartcache::__private::KeyProbe::<#ty>::new()).verdict(),
        )
    }
}

/// The owned form of a `&T` argument's type: `String` for `str`, `Vec<T>` for `[T]`,
/// `PathBuf`, `OsString`, `CString` for `Path`, `OsStr`, `CStr`, `T` otherwise.
pub(super) fn owned_type(arg: &Arg) -> TokenStream {
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
pub(super) fn owned_copy(arg: &Arg) -> TokenStream {
    let span = arg.ty.span();
    let binding = &arg.binding;
    let elem = &arg.elem;
    if unsized_kind(elem).is_some() {
        quote_spanned!(span=> ::smartcache::__private::ToOwned::to_owned(#binding))
    } else {
        quote_spanned!(span=> (&::smartcache::__private::KeyProbe::<#elem>::new()).key_clone(#binding))
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
