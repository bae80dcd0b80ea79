//! The checks: what `#[smart_cached]` cannot turn into a cached function, reported on the
//! offending token. Type requirements (`Hash`, `Clone`, `Send`, ..) are not checked here but
//! by the compiler, through the helper traits of `smartcache::__private`.

use std::time::Duration;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::visit::{self, Visit};
use syn::{
    GenericParam, Lifetime, ReturnType, Signature, Type, TypeImplTrait, TypeReference,
    WherePredicate,
};

use crate::ast::{CachedFn, Output, Pass};
use crate::ctxt::Errors;

/// Records every reason why `function` cannot be cached.
pub(crate) fn check(function: &CachedFn, errors: &mut Errors) {
    check_signature(function, errors);
    check_skip(function, errors);
    check_key(function, errors);
    check_output(function, errors);
    check_companion_names(function, errors);
    check_retry_max(function, errors);
    check_refresh(function, errors);
    check_stale_if_error(function, errors);
}

/// `retry`'s default, as `smartcache::DEFAULT_RETRY_INTERVAL` (which this crate cannot name).
const DEFAULT_RETRY: Duration = Duration::from_secs(5 * 60);

/// `retry_max` caps an interval that doubles from `retry`: it is neither zero nor shorter
/// than `retry`, and there is a `retry` to grow.
fn check_retry_max(function: &CachedFn, errors: &mut Errors) {
    let options = &function.options;
    let Some(retry_max) = &options.retry_max else {
        return;
    };
    if let Output::Infallible { .. } = function.output {
        return; // reported as an option for failures
    }
    let retry = options.retry.as_ref();
    if retry_max.duration.is_zero() {
        errors.spanned(
            &retry_max.literal,
            "`retry_max` cannot be zero: it caps the retry interval, which doubles from `retry` with each consecutive failure; give a cap like `retry_max = \"1h\"`",
        );
    } else if let Some(retry) = retry.filter(|retry| retry.duration.is_zero()) {
        errors.spanned(
            retry_max.option(),
            format!(
                "`retry_max` has no effect with `retry = \"{}\"`: no failure is cached, so nothing backs off; remove `retry_max`, or give `retry` a duration",
                retry.text()
            ),
        );
    } else if let Some(retry) = retry.filter(|retry| retry_max.duration < retry.duration) {
        errors.spanned(
            &retry_max.literal,
            format!(
                "`retry_max` must not be shorter than `retry` ({}): it caps the interval that doubles from `retry` with each consecutive failure",
                retry.text()
            ),
        );
    } else if retry.is_none() && retry_max.duration < DEFAULT_RETRY {
        errors.spanned(
            &retry_max.literal,
            "`retry_max` must not be shorter than the default `retry` of 5m: it caps the interval that doubles from `retry` with each consecutive failure; set a shorter `retry` too, like `retry = \"30s\"`",
        );
    }
}

/// `refresh` is an age within the time to live, and the body can run in a background task.
fn check_refresh(function: &CachedFn, errors: &mut Errors) {
    let options = &function.options;
    let Some(refresh) = &options.refresh else {
        return;
    };
    if refresh.duration.is_zero() {
        errors.spanned(
            &refresh.literal,
            format!(
                "`refresh = \"{}\"` would refresh on every hit; give the age at which a value is refreshed ahead, like `refresh = \"1m\"`",
                refresh.text()
            ),
        );
    } else if let Some(ttl) = options
        .ttl
        .as_ref()
        .filter(|ttl| refresh.duration >= ttl.duration)
    {
        errors.spanned(
            &refresh.literal,
            format!(
                "`refresh` must be shorter than `ttl` ({}): a value is refreshed ahead while it is still within its time to live",
                ttl.text()
            ),
        );
    }
    if function.sig.asyncness.is_none() {
        errors.spanned(
            refresh.option(),
            "`refresh` needs an `async fn`: refresh-ahead runs the body in a background task",
        );
    } else if function.body_borrows() {
        errors.spanned(
            refresh.option(),
            "`refresh` needs a body that borrows nothing from its caller, to run it in a background task: take the receiver by value (`self`, `self: Arc<Self>`) and skipped arguments as owned types",
        );
    }
}

/// `stale_if_error` is a window past the time to live.
fn check_stale_if_error(function: &CachedFn, errors: &mut Errors) {
    let options = &function.options;
    let Some(stale) = &options.stale_if_error else {
        return;
    };
    if let Output::Infallible { .. } = function.output {
        return; // reported as an option for failures
    }
    if stale.duration.is_zero() {
        errors.spanned(
            &stale.literal,
            format!(
                "`stale_if_error = \"{}\"` serves no stale value; give how long past its expiry a value may stand in for a failure, like `stale_if_error = \"1h\"`",
                stale.text()
            ),
        );
    } else if options.ttl.is_none() {
        errors.spanned(
            stale.option(),
            "`stale_if_error` needs a `ttl`: without one values never expire, so there is nothing to serve stale; add `ttl = \"..\"`",
        );
    }
}

/// `handle = ..` and `uncached = ..` must not take the cached fn's name, nor each other's.
fn check_companion_names(function: &CachedFn, errors: &mut Errors) {
    let options = &function.options;
    let fn_name = &function.sig.ident;
    for name in options.handle.iter().chain(&options.uncached) {
        if name == fn_name {
            errors.spanned(
                name,
                format!("`{name}` is the cached fn's own name; give its companion another"),
            );
        }
    }
    if let (Some(handle), Some(uncached)) = (&options.handle, &options.uncached) {
        if handle == uncached {
            errors.spanned(
                uncached,
                format!("`{uncached}` is already the handle's name; give the uncached fn another"),
            );
        }
    }
}

fn check_signature(function: &CachedFn, errors: &mut Errors) {
    let sig = &function.sig;
    if let (None, ReturnType::Type(_, ty)) = (&sig.asyncness, &sig.output) {
        if let Some(impl_trait) = find_impl_trait(ty) {
            errors.spanned(
                impl_trait,
                "a fn returning `impl Future` cannot be cached; write it as an `async fn` returning the output type",
            );
        }
    }
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, "a `const fn` cannot be cached");
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        errors.spanned(unsafety, "an `unsafe fn` cannot be cached");
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, "an `extern` fn cannot be cached");
    }
    let generics = &sig.generics;
    // Lifetimes are fine: the key and the value are owned, the static is for one set of types.
    let lifetimes_only = generics
        .params
        .iter()
        .all(|param| matches!(param, GenericParam::Lifetime(_)));
    if !lifetimes_only {
        errors.spanned(
            generics,
            "a generic fn cannot be cached: its cache is one static, for one set of types",
        );
    } else if let Some(where_clause) = &generics.where_clause {
        let bounds_types = where_clause
            .predicates
            .iter()
            .any(|predicate| !matches!(predicate, WherePredicate::Lifetime(_)));
        if bounds_types {
            errors.spanned(
                where_clause,
                "a cached fn's `where` clause can only bound lifetimes",
            );
        }
    }
    for arg in &function.args {
        if let Some(impl_trait) = find_impl_trait(&arg.ty) {
            errors.spanned(
                impl_trait,
                "an `impl Trait` argument cannot be cached; name a concrete type",
            );
        }
    }
}

fn check_skip(function: &CachedFn, errors: &mut Errors) {
    if function.options.key.is_some() {
        for name in &function.options.skip {
            errors.spanned(
                name,
                "`skip` has no effect with a custom `key`, which leaves out every argument it does not use; remove it",
            );
        }
        return;
    }
    for name in &function.options.skip {
        let exists = if name == "self" {
            function.receiver.is_some()
        } else {
            function
                .args
                .iter()
                .any(|arg| arg.binding == *name || arg.names.contains(name))
        };
        if !exists {
            errors.spanned(
                name,
                format!("cannot skip `{name}`: no argument has this name"),
            );
        }
    }
}

/// Key arguments are copied into a `'static` key: no `&mut`, no borrowed parts.
fn check_key(function: &CachedFn, errors: &mut Errors) {
    if let Some(receiver) = function.receiver.as_ref().filter(|r| !r.skipped) {
        if matches!(receiver.pass, Pass::MutRef) {
            errors.spanned(
                &receiver.token,
                "`&mut self` cannot be part of the key; leave it out with `skip(self)`",
            );
        } else if receiver.borrows {
            errors.spanned(
                &receiver.token,
                "a borrowing receiver cannot be part of the key; leave it out with `skip(self)`",
            );
        }
    }
    for arg in function.args.iter().filter(|arg| !arg.skipped) {
        let name = &arg.binding;
        if matches!(arg.pass, Pass::MutRef) {
            errors.spanned(
                &arg.ty,
                format!(
                    "a `&mut` argument cannot be part of the key; leave it out with `skip({name})`"
                ),
            );
        } else if let Some(span) = first_borrow(&arg.elem) {
            errors.push(syn::Error::new(
                span,
                format!("a key argument cannot hold a borrow; take an owned type or leave it out with `skip({name})`"),
            ));
        }
    }
}

fn check_output(function: &CachedFn, errors: &mut Errors) {
    if let ReturnType::Type(_, ty) = &function.sig.output {
        if let Some(impl_trait) = find_impl_trait(ty) {
            if function.sig.asyncness.is_none() {
                return; // reported as a fn that should be `async`
            }
            errors.spanned(
                impl_trait,
                "an `impl Trait` return type cannot be cached; name a concrete type",
            );
        } else if let Some(span) = first_borrow(ty) {
            errors.push(syn::Error::new(
                span,
                "a cached value cannot hold a borrow; return an owned type",
            ));
        }
    }
    if let Output::Transparent { error, .. } = &function.output {
        check_boxed_error(error, errors);
    }
    if let Output::Infallible { .. } = &function.output {
        let options = &function.options;
        let failure_options = [&options.retry, &options.retry_max, &options.stale_if_error];
        for timing in failure_options.into_iter().flatten() {
            let name = timing.name.unraw();
            errors.spanned(
                &timing.name,
                format!(
                    "`{name}` applies to failures, and this fn cannot fail: its return type is not a `Result`"
                ),
            );
        }
    }
}

/// `Box<dyn Error>` without `Send + Sync` cannot be shared between threads, as a cached
/// error is.
fn check_boxed_error(error: &Type, errors: &mut Errors) {
    let Type::Path(path) = error else { return };
    let Some(last) = path.path.segments.last() else {
        return;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return;
    };
    let Some(syn::GenericArgument::Type(Type::TraitObject(object))) = args.args.first() else {
        return;
    };
    if last.ident != "Box" {
        return;
    }
    let names: Vec<String> = object
        .bounds
        .iter()
        .filter_map(|bound| match bound {
            syn::TypeParamBound::Trait(bound) => {
                bound.path.segments.last().map(|s| s.ident.to_string())
            }
            _ => None,
        })
        .collect();
    let is_error = names.iter().any(|name| name == "Error");
    let shared = names.iter().any(|name| name == "Send") && names.iter().any(|name| name == "Sync");
    if is_error && !shared {
        errors.spanned(
            object,
            "a cached error is shared between threads; write `Box<dyn Error + Send + Sync>`",
        );
    }
}

/// Whether `ty` holds a reference or names a lifetime other than `'static`.
pub(crate) fn borrows(ty: &Type) -> bool {
    first_borrow(ty).is_some()
}

/// The first reference or non-`'static` lifetime in `ty`, outside of function types (whose
/// lifetimes are their own).
fn first_borrow(ty: &Type) -> Option<Span> {
    struct Finder(Option<Span>);
    impl Visit<'_> for Finder {
        fn visit_type_reference(&mut self, reference: &TypeReference) {
            let is_static = reference
                .lifetime
                .as_ref()
                .is_some_and(|lifetime| lifetime.ident == "static");
            if is_static {
                visit::visit_type_reference(self, reference);
            } else if self.0.is_none() {
                self.0 = Some(reference.and_token.span);
            }
        }
        fn visit_lifetime(&mut self, lifetime: &Lifetime) {
            if lifetime.ident != "static" && self.0.is_none() {
                self.0 = Some(lifetime.apostrophe);
            }
        }
        fn visit_type_fn_ptr(&mut self, _: &syn::TypeFnPtr) {}
        fn visit_parenthesized_generic_arguments(
            &mut self,
            _: &syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}

fn find_impl_trait(ty: &Type) -> Option<&TypeImplTrait> {
    struct Finder<'a>(Option<&'a TypeImplTrait>);
    impl<'a> Visit<'a> for Finder<'a> {
        fn visit_type_impl_trait(&mut self, impl_trait: &'a TypeImplTrait) {
            self.0.get_or_insert(impl_trait);
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}

/// Whether `sig` names `Self` (a method, even without a receiver).
pub(crate) fn names_self(sig: &Signature) -> bool {
    let mut finder = SelfFinder(None);
    finder.visit_signature(sig);
    finder.0.is_some()
}

/// The first `Self` in a signature.
struct SelfFinder(Option<Span>);

impl Visit<'_> for SelfFinder {
    fn visit_ident(&mut self, ident: &proc_macro2::Ident) {
        if ident == "Self" && self.0.is_none() {
            self.0 = Some(ident.span());
        }
    }
}
