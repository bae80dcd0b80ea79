//! Parsing the options: `#[smart_cached(retry = "5m", ttl = "10m", capacity = 10_000,
//! skip(client), name = "users")]`.
//!
//! Every option is read even after a mistake, so that all mistakes are reported together.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Meta, Path, Token};

use crate::ctxt::Errors;

/// The options, as given (a missing option is `None`: the runtime's default applies).
#[derive(Default)]
pub(crate) struct Options {
    /// `retry = ".."`: the duration, and the span of `retry` for errors about it.
    pub(crate) retry: Option<(Duration, Span)>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) capacity: Option<u64>,
    /// `skip(..)`: the arguments left out of the key (`self` included), in order.
    pub(crate) skip: Vec<Ident>,
    pub(crate) name: Option<LitStr>,
}

const OPTIONS: [&str; 5] = ["retry", "ttl", "capacity", "skip", "name"];

impl Options {
    /// Parses the arguments of the attribute, recording every mistake in `errors`.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut options = Self::default();
        let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
            Ok(metas) => metas,
            Err(error) => {
                errors.push(error);
                return options;
            }
        };
        let mut seen = Vec::new();
        for meta in metas {
            let Some(name) = option_name(meta.path(), errors) else {
                continue;
            };
            if !first_time(&mut seen, &name, meta.path(), errors) {
                continue;
            }
            match name.as_str() {
                "retry" => {
                    let span = meta
                        .path()
                        .get_ident()
                        .map_or_else(Span::call_site, Ident::span);
                    options.retry = duration(&meta, errors).map(|d| (d, span));
                }
                "ttl" => options.ttl = duration(&meta, errors),
                "capacity" => options.capacity = capacity(&meta, errors),
                "name" => options.name = string(&meta, errors),
                _ => options.skip = skip_list(&meta, errors),
            }
        }
        options
    }
}

/// The option's name, if it is one of [`OPTIONS`]; else records the error.
fn option_name(path: &Path, errors: &mut Errors) -> Option<String> {
    let name = path.get_ident().map(|ident| ident.unraw().to_string());
    match name {
        Some(name) if OPTIONS.contains(&name.as_str()) => Some(name),
        _ => {
            let expected = OPTIONS.map(|o| format!("`{o}`")).join(", ");
            let given = quote::quote!(#path).to_string().replace(' ', "");
            errors.spanned(
                path,
                format!("unknown option `{given}`; expected one of {expected}"),
            );
            None
        }
    }
}

/// The one place that detects a repeated option: `false` (and an error on the repetition)
/// if `name` was seen before.
fn first_time(seen: &mut Vec<String>, name: &str, path: &Path, errors: &mut Errors) -> bool {
    if seen.iter().any(|s| s == name) {
        errors.spanned(path, format!("duplicate option `{name}`"));
        return false;
    }
    seen.push(name.to_owned());
    true
}

/// The literal of `name = <literal>`, or an error on what stands in its place: `expects`
/// says what the option takes, `example` shows it.
fn literal<'a>(
    meta: &'a Meta,
    expects: &str,
    example: &str,
    errors: &mut Errors,
) -> Option<&'a Lit> {
    let name = meta
        .path()
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    match meta {
        Meta::NameValue(pair) => match &pair.value {
            // A suffix means nothing to the options, and rustc rejects one on a string: it
            // is a mistake, not to be dropped silently (`"5m"ms`, `300u8`).
            Expr::Lit(ExprLit { lit, .. }) if !suffix_allowed(lit) => {
                let suffix = lit.suffix();
                errors.spanned(lit, format!("unexpected suffix `{suffix}` on `{name}`"));
                None
            }
            Expr::Lit(ExprLit { lit, .. }) => Some(lit),
            other => {
                errors.spanned(
                    other,
                    format!("`{name}` expects {expects}, like `{example}`"),
                );
                None
            }
        },
        other => {
            errors.spanned(other, format!("expected `{example}`"));
            None
        }
    }
}

/// Whether `lit` has no suffix, or that of a `u64` or a `usize` (`capacity = 10_000u64`).
fn suffix_allowed(lit: &Lit) -> bool {
    match lit {
        Lit::Int(int) => matches!(int.suffix(), "" | "u64" | "usize"),
        other => other.suffix().is_empty(),
    }
}

/// `retry = "5m"`, `ttl = "1h30m"`: a duration string, parsed now.
fn duration(meta: &Meta, errors: &mut Errors) -> Option<Duration> {
    const EXPECTS: &str = "a duration string";
    let name = meta.path().get_ident()?.to_string();
    let example = format!("{name} = \"5m\"");
    let lit = literal(meta, EXPECTS, &example, errors)?;
    let Lit::Str(text) = lit else {
        errors.spanned(lit, format!("`{name}` expects {EXPECTS}, like `{example}`"));
        return None;
    };
    let Ok(duration) = humantime::parse_duration(text.value().trim()) else {
        errors.spanned(
            text,
            format!(
                "invalid duration `{}`; expected a number and a unit, like `500ms`, `30s`, `5m`, `1h30m` or `2d`",
                text.value()
            ),
        );
        return None;
    };
    Some(duration)
}

/// `capacity = 10_000`.
fn capacity(meta: &Meta, errors: &mut Errors) -> Option<u64> {
    const EXPECTS: &str = "an unsigned integer";
    const EXAMPLE: &str = "capacity = 10_000";
    let lit = literal(meta, EXPECTS, EXAMPLE, errors)?;
    let Lit::Int(int) = lit else {
        errors.spanned(
            lit,
            format!("`capacity` expects {EXPECTS}, like `{EXAMPLE}`"),
        );
        return None;
    };
    let Ok(capacity) = int.base10_parse::<u64>() else {
        errors.spanned(int, "`capacity` must fit in a `u64`");
        return None;
    };
    Some(capacity)
}

/// `name = "users"`.
fn string(meta: &Meta, errors: &mut Errors) -> Option<LitStr> {
    const EXPECTS: &str = "a string";
    const EXAMPLE: &str = "name = \"users\"";
    match literal(meta, EXPECTS, EXAMPLE, errors)? {
        Lit::Str(text) => Some(text.clone()),
        other => {
            errors.spanned(other, format!("`name` expects {EXPECTS}, like `{EXAMPLE}`"));
            None
        }
    }
}

/// `skip(client, self)`: argument names, each at most once.
fn skip_list(meta: &Meta, errors: &mut Errors) -> Vec<Ident> {
    let Meta::List(list) = meta else {
        errors.spanned(meta, "expected a list of arguments, like `skip(client)`");
        return Vec::new();
    };
    let parser = |input: ParseStream| {
        Punctuated::<Ident, Token![,]>::parse_terminated_with(input, Ident::parse_any)
    };
    let names = match list.parse_args_with(parser) {
        Ok(names) => names,
        Err(error) => {
            errors.push(error);
            return Vec::new();
        }
    };
    let mut skip: Vec<Ident> = Vec::new();
    for name in names {
        if skip.contains(&name) {
            errors.spanned(&name, format!("`{name}` is already skipped"));
        } else {
            skip.push(name);
        }
    }
    skip
}

/// Whether `attr` is `#[smart_cached]` or `#[smart_cached(..)]` (under any path), as it
/// marks the cached methods of an `impl` block.
pub(crate) fn is_marker(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "smart_cached")
}

/// The options of a method's marker: the tokens inside `#[smart_cached(..)]`.
pub(crate) fn marker_args(attr: &Attribute, errors: &mut Errors) -> TokenStream {
    match &attr.meta {
        Meta::Path(_) => TokenStream::new(),
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(pair) => {
            errors.spanned(pair, "expected `#[smart_cached]` or `#[smart_cached(..)]`");
            TokenStream::new()
        }
    }
}
