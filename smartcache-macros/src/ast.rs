//! The typed model of a cached function: its arguments (how each one enters the key and the
//! body), its return type (which decides the error behaviour), and its attributes, sorted by
//! the generated items they belong to. The original syn nodes are kept for their spans.

use syn::{
    Attribute, Block, FnArg, GenericArgument, Ident, Pat, PathArguments, ReceiverKind, ReturnType,
    Signature, Type, TypePath, Visibility,
};

use crate::attr::Options;

/// Where the function is: the generated paths and the `Self` type depend on it.
pub(crate) enum Place {
    /// A free function (`foo_cache()`).
    Free,
    /// A method (`Self::foo_cache()`): its `Self` type is known when the attribute is also
    /// on the `impl` block, and unknown when it is on the method alone.
    Method { self_ty: Option<Box<Type>> },
}

/// A function under `#[smart_cached]`.
pub(crate) struct CachedFn {
    pub(crate) attrs: Attrs,
    pub(crate) vis: Visibility,
    /// The signature as written.
    pub(crate) sig: Signature,
    pub(crate) block: Block,
    pub(crate) receiver: Option<SelfArg>,
    pub(crate) args: Vec<Arg>,
    pub(crate) output: Output,
    pub(crate) options: Options,
    pub(crate) place: Place,
}

/// The function's attributes, by destination.
#[derive(Default)]
pub(crate) struct Attrs {
    /// `#[cfg]`: on every generated item.
    pub(crate) cfg: Vec<Attribute>,
    /// `#[allow]`, `#[expect]`, `#[warn]`, `#[deny]`, `#[forbid]`: on the cached function and
    /// on the uncached one (which holds the body).
    pub(crate) lints: Vec<Attribute>,
    /// `#[must_use]`: on the cached and the uncached function.
    pub(crate) must_use: Vec<Attribute>,
    /// Everything else (`#[doc]`, `#[tracing::instrument]`, `#[inline]`, ..): on the cached
    /// function only.
    pub(crate) rest: Vec<Attribute>,
}

impl Attrs {
    fn sort(attrs: Vec<Attribute>) -> Self {
        let mut sorted = Self::default();
        for attr in attrs {
            let path = attr.path();
            let bucket = if path.is_ident("cfg") {
                &mut sorted.cfg
            } else if ["allow", "expect", "warn", "deny", "forbid"]
                .iter()
                .any(|lint| path.is_ident(lint))
            {
                &mut sorted.lints
            } else if path.is_ident("must_use") {
                &mut sorted.must_use
            } else {
                &mut sorted.rest
            };
            bucket.push(attr);
        }
        sorted
    }
}

/// How an argument (or the receiver) is passed.
pub(crate) enum Pass {
    /// By value: `x: T`, `self`, `self: Arc<Self>`.
    Value,
    /// By shared reference: `x: &T`, `&self`.
    Ref,
    /// By exclusive reference: `x: &mut T`, `&mut self`.
    MutRef,
}

/// The `self` argument of a method.
pub(crate) struct SelfArg {
    /// The `self` token, for spans.
    pub(crate) token: Ident,
    pub(crate) pass: Pass,
    /// The type behind the receiver: `Self` for `self`, `&self`, `&mut self`; the written
    /// type for `self: Arc<Self>`; the referenced type for `self: &T`.
    pub(crate) ty: Type,
    /// Whether the receiver's type names a lifetime or a reference beyond its own `&`.
    pub(crate) borrows: bool,
    pub(crate) skipped: bool,
}

/// A typed argument.
pub(crate) struct Arg {
    /// The name the generated code uses: the pattern's identifier, or a hidden one.
    pub(crate) binding: Ident,
    /// The type as written.
    pub(crate) ty: Box<Type>,
    pub(crate) pass: Pass,
    /// The type behind the reference, for `&T` and `&mut T`; the type itself otherwise.
    pub(crate) elem: Type,
    /// The pattern as written (`State(state)`), for a custom key's expression.
    pub(crate) pat: Pat,
    /// The names the pattern binds (`state` in `State(state)`), any of which `skip` takes.
    pub(crate) names: Vec<Ident>,
    pub(crate) skipped: bool,
}

/// What the return type says about failures.
pub(crate) enum Output {
    /// `Result<T, CacheError<E>>`: the cache's error type is `CacheError<E>`.
    Full { value: Type, error: Type },
    /// `Result<T, E>`: a cached error is handed back as a clone of `E`.
    Transparent { value: Type, error: Type },
    /// `io::Result<T>`, `fmt::Result`: as `Transparent`, through the alias.
    Alias { result: Type },
    /// `Option<T>`: `Some` is stored as a value, `None` as a failure (for the retry interval).
    Optional { value: Type },
    /// Anything else (`()` when there is no return type): the value is cached.
    Infallible { value: Type },
}

impl CachedFn {
    /// The model of `sig` and friends. Shape errors (a pattern `self`, ..) are left to the
    /// compiler or to [`crate::valid`]; building the model never fails.
    pub(crate) fn new(
        attrs: Vec<Attribute>,
        vis: Visibility,
        sig: Signature,
        block: Block,
        options: Options,
        place: Place,
    ) -> Self {
        // A custom key replaces the argument tuple: every argument is then "skipped".
        let custom_key = options.key.is_some();
        let is_skipped = |name: &str| custom_key || options.skip.iter().any(|s| s == name);
        let mut receiver = None;
        let mut args = Vec::new();
        for (index, input) in sig.inputs.iter().enumerate() {
            match input {
                FnArg::Receiver(recv) => {
                    // `Self` on the `self` token, for the errors about the receiver's type.
                    let self_type = || self_type(recv.self_token.span);
                    let (pass, ty) = match &recv.kind {
                        ReceiverKind::Reference(_, _, None) => (Pass::Ref, self_type()),
                        ReceiverKind::Reference(_, _, Some(_)) => (Pass::MutRef, self_type()),
                        ReceiverKind::Typed(_, ty) => split_reference(ty),
                        _ => (Pass::Value, self_type()),
                    };
                    receiver = Some(SelfArg {
                        token: Ident::new("self", recv.self_token.span),
                        borrows: crate::valid::borrows(&ty),
                        pass,
                        ty,
                        skipped: is_skipped("self"),
                    });
                }
                FnArg::Typed(typed) => {
                    let binding = match &*typed.pat {
                        // `_name` is used by the generated code: as a user's token, lints
                        // would take that use for the user's.
                        Pat::Ident(pat) if pat.subpat.is_none() => {
                            let mut ident = pat.ident.clone();
                            if ident.to_string().starts_with('_') {
                                ident.set_span(proc_macro2::Span::call_site());
                            }
                            ident
                        }
                        _ => quote::format_ident!("__smartcache_arg{}", index),
                    };
                    let (pass, elem) = split_reference(&typed.ty);
                    let names = bound_names(&typed.pat);
                    let skipped = is_skipped(&binding.to_string())
                        || names.iter().any(|name| is_skipped(&name.to_string()));
                    args.push(Arg {
                        skipped,
                        binding,
                        ty: typed.ty.clone(),
                        pass,
                        elem,
                        pat: (*typed.pat).clone(),
                        names,
                    });
                }
            }
        }
        let output = Output::of(&sig.output);
        Self {
            attrs: Attrs::sort(attrs),
            vis,
            sig,
            block,
            receiver,
            args,
            output,
            options,
            place,
        }
    }

    /// Whether the body holds on to something of its caller's: `&self`, or an argument
    /// passed by reference and left out of the key (a key argument is copied for the body).
    pub(crate) fn body_borrows(&self) -> bool {
        let receiver = self
            .receiver
            .as_ref()
            .is_some_and(|r| !matches!(r.pass, Pass::Value) || r.borrows);
        let args = self.args.iter().any(|arg| {
            arg.skipped && (!matches!(arg.pass, Pass::Value) || crate::valid::borrows(&arg.ty))
        });
        receiver || args
    }
}

/// The names bound by `pat`: `state` in `State(state)`, `a` and `b` in `(a, b)`.
fn bound_names(pat: &Pat) -> Vec<Ident> {
    struct Names(Vec<Ident>);
    impl<'a> syn::visit::Visit<'a> for Names {
        fn visit_pat_ident(&mut self, pat: &'a syn::PatIdent) {
            self.0.push(pat.ident.clone());
            syn::visit::visit_pat_ident(self, pat);
        }
    }
    let mut names = Names(Vec::new());
    syn::visit::Visit::visit_pat(&mut names, pat);
    names.0
}

fn self_type(span: proc_macro2::Span) -> Type {
    let ident = Ident::new("Self", span);
    syn::parse_quote!(#ident)
}

/// `&T` into (`Ref`, `T`), `&mut T` into (`MutRef`, `T`), anything else into (`Value`, it).
fn split_reference(ty: &Type) -> (Pass, Type) {
    match ty {
        Type::Reference(reference) => {
            let pass = if reference.mutability.is_some() {
                Pass::MutRef
            } else {
                Pass::Ref
            };
            (pass, (*reference.elem).clone())
        }
        Type::Paren(paren) => split_reference(&paren.elem),
        Type::Group(group) => split_reference(&group.elem),
        other => (Pass::Value, other.clone()),
    }
}

impl Output {
    fn of(output: &ReturnType) -> Self {
        let ty = match output {
            ReturnType::Default => {
                return Self::Infallible {
                    value: syn::parse_quote!(()),
                };
            }
            ReturnType::Type(_, ty) => &**ty,
        };
        if let Some(value) = option_argument(ty) {
            return Self::Optional {
                value: value.clone(),
            };
        }
        let Some(args) = result_arguments(ty) else {
            return Self::Infallible { value: ty.clone() };
        };
        match args.as_slice() {
            [value, error] => match cache_error_argument(error) {
                Some(inner) => Self::Full {
                    value: (*value).clone(),
                    error: inner.clone(),
                },
                None => Self::Transparent {
                    value: (*value).clone(),
                    error: (*error).clone(),
                },
            },
            [] | [_] => Self::Alias { result: ty.clone() },
            _ => Self::Infallible { value: ty.clone() },
        }
    }
}

/// The type arguments of a type whose last path segment is `Result`.
fn result_arguments(ty: &Type) -> Option<Vec<&Type>> {
    let segment = last_segment(ty)?;
    if segment.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    Some(
        args.args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
    )
}

/// `T` in `Option<T>` (under any path).
fn option_argument(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

/// `E` in `CacheError<E>` (under any path).
fn cache_error_argument(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "CacheError" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(TypePath {
            qself: None, path, ..
        }) => path.segments.last(),
        Type::Paren(paren) => last_segment(&paren.elem),
        Type::Group(group) => last_segment(&group.elem),
        _ => None,
    }
}
