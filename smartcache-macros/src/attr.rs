//! Parsing the options: `#[smart_cached(retry = "5m", ttl = "10m", capacity = 10_000,
//! skip(client), name = "users", key: u64 = id.0, companions = "pub(crate)", handle = users,
//! uncached = fetch_users, retry_max = "1h", refresh = "1m", stale_if_error = "1h")]`.
//!
//! Only the syntax is checked here; what the values mean together (`refresh` shorter than
//! `ttl`, ..) is checked in [`crate::valid`].
//!
//! Every option is read even after a mistake, so that all mistakes are reported together.
//! The options of the `cached` crate are recognised, each with the smartcache spelling as
//! the hint (see [`MIGRATION_HINTS`]).

use std::time::Duration;

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Meta, Path, Token, Type, Visibility};

use crate::ctxt::Errors;

/// The options, as given (a missing option is `None`: the runtime's default applies).
#[derive(Default)]
pub(crate) struct Options {
    /// `retry = ".."`: the first failure's retry interval.
    pub(crate) retry: Option<Timing>,
    /// `ttl = ".."`: the time to live.
    pub(crate) ttl: Option<Timing>,
    /// `retry_max = ".."`: the cap on a key's retry interval under backoff.
    pub(crate) retry_max: Option<Timing>,
    /// `refresh = ".."`: the age at which a value is refreshed ahead, in the background.
    pub(crate) refresh: Option<Timing>,
    /// `stale_if_error = ".."`: how long past its expiry a value stands in for a failure.
    pub(crate) stale_if_error: Option<Timing>,
    pub(crate) capacity: Option<u64>,
    /// `skip(..)`: the arguments left out of the key (`self` included), in order.
    pub(crate) skip: Vec<Ident>,
    pub(crate) name: Option<LitStr>,
    /// `key: Type = expr`: the key, replacing the argument tuple.
    pub(crate) key: Option<CustomKey>,
    /// `companions = "pub(crate)"`: the visibility of `<fn>_cache` and `<fn>_uncached`.
    pub(crate) companions: Option<Visibility>,
    /// `handle = name`: the name of `<fn>_cache`.
    pub(crate) handle: Option<Ident>,
    /// `uncached = name`: the name of `<fn>_uncached`.
    pub(crate) uncached: Option<Ident>,
    /// `shared`: the cache goes on the process-wide shared tier (`smartcache::redis::install`).
    pub(crate) shared: bool,
}

/// A duration option, `name = "5m"`, with its tokens for the errors about it.
pub(crate) struct Timing {
    pub(crate) duration: Duration,
    /// The option's name (`retry`).
    pub(crate) name: Ident,
    /// The duration string as written.
    pub(crate) literal: LitStr,
}

impl Timing {
    /// The whole option, `name = "5m"`, for an error about the option rather than its value.
    pub(crate) fn option(&self) -> TokenStream {
        let Self { name, literal, .. } = self;
        quote::quote!(#name = #literal)
    }

    /// The duration as the user wrote it, trimmed: `1h30m`.
    pub(crate) fn text(&self) -> String {
        self.literal.value().trim().to_owned()
    }
}

/// `key: Type = expr`.
pub(crate) struct CustomKey {
    /// The `key` token, for errors about the option.
    pub(crate) token: Ident,
    pub(crate) ty: Type,
    pub(crate) expr: Expr,
}

const OPTIONS: [&str; 13] = [
    "retry",
    "ttl",
    "retry_max",
    "refresh",
    "stale_if_error",
    "capacity",
    "skip",
    "name",
    "key",
    "companions",
    "handle",
    "uncached",
    "shared",
];

/// The options of the `cached` crate's `#[cached]`, `#[once]` and `#[io_cached]`, each
/// with what to write instead.
const MIGRATION_HINTS: &[(&str, &str)] = &[
    ("size", "the bound is `capacity` here: `capacity = 1000`"),
    (
        "max_size",
        "the bound is `capacity` here: `capacity = 1000`",
    ),
    (
        "time",
        "the time to live is a duration here: `ttl = \"60s\"`",
    ),
    (
        "ttl_secs",
        "the time to live is a duration here: `ttl = \"60s\"`",
    ),
    (
        "time_refresh",
        "a hit never extends the time to live here; remove it",
    ),
    (
        "result",
        "not needed: the return type decides, and errors are cached for `retry`; add `retry = \"0s\"` to cache only successes",
    ),
    (
        "option",
        "not needed: the return type decides, and `None` is cached for `retry`; add `retry = \"0s\"` to cache only `Some`",
    ),
    (
        "sync_writes",
        "not needed: concurrent calls with the same key always share one computation",
    ),
    (
        "in_impl",
        "not needed: `#[smart_cached]` on the method is enough",
    ),
    (
        "convert",
        "write the key as `key: Type = expr`, an expression over the arguments, like `key: String = format!(\"{a}{b}\")`",
    ),
    (
        "with_cached_flag",
        "no flag here: return `Result<T, CacheError<E>>` to tell a cached error from a fresh one; hits are counted in `<fn>_cache().stats()`",
    ),
    (
        "unbound",
        "not needed: a cache is unbounded unless `capacity` is set",
    ),
    (
        "ty",
        "the cache is always an `AsyncSmartCache`; set it up with `ttl`, `capacity` and `retry`",
    ),
    (
        "create",
        "the cache is always an `AsyncSmartCache`; set it up with `ttl`, `capacity` and `retry`",
    ),
    (
        "result_fallback",
        "no equivalent in the attribute; a cached error is handed back until `retry` has passed",
    ),
    (
        "map_error",
        "no equivalent: errors are kept as they are; there is no disk or Redis store to map from",
    ),
    (
        "ttl_millis",
        "the time to live is a duration here: `ttl = \"500ms\"`",
    ),
    (
        "cache_err",
        "not needed: errors are cached for `retry` (default 5 minutes); `retry = \"0s\"` caches none",
    ),
    (
        "cache_none",
        "not needed: `None` is cached for `retry` (default 5 minutes); `retry = \"0s\"` caches none",
    ),
    (
        "sync_writes_buckets",
        "not needed: concurrent calls with the same key always share one computation, with no lock held while it runs",
    ),
    (
        "sync_lock",
        "not needed: concurrent calls with the same key always share one computation, with no lock held while it runs",
    ),
    (
        "unsync_reads",
        "not needed: a hit never waits on a computation",
    ),
    (
        "expires",
        "no per-value expiry here; use `ttl = \"..\"` for every value",
    ),
    (
        "force_refresh",
        "no equivalent in the attribute; call `<fn>_cache().invalidate(&key)` before the call",
    ),
    (
        "companions_vis",
        "the companions' visibility is `companions = \"pub(crate)\"` here (`\"private\"` for none)",
    ),
    ("disk", "no disk store: the cache is in memory"),
    ("disk_dir", "no disk store: the cache is in memory"),
    ("durable", "no disk store: the cache is in memory"),
    (
        "redis",
        "no Redis store in the attribute: the cache is in memory",
    ),
    (
        "cache_prefix_block",
        "no Redis store in the attribute: the cache is in memory",
    ),
    ("shards", "not needed: the cache is sharded already"),
];

/// One option as written: a `key: Type = expr`, or any other as a [`Meta`].
#[allow(clippy::large_enum_variant, reason = "a handful, parsed once per fn")]
enum RawOption {
    Key(CustomKey),
    Meta(Meta),
}

impl syn::parse::Parse for RawOption {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let typed_key =
            input.peek(Ident::peek_any) && input.peek2(Token![:]) && !input.peek2(Token![::]);
        if !typed_key {
            return input.parse().map(Self::Meta);
        }
        let token = Ident::parse_any(input)?;
        if token != "key" {
            return Err(syn::Error::new(
                token.span(),
                format!(
                    "unexpected `:` after `{token}`; only `key` takes a type: `key: Type = expr`"
                ),
            ));
        }
        let _: Token![:] = input.parse()?;
        let ty = input.parse()?;
        let _: Token![=] = input.parse()?;
        let expr = input.parse()?;
        Ok(Self::Key(CustomKey { token, ty, expr }))
    }
}

impl Options {
    /// Parses the arguments of the attribute, recording every mistake in `errors`.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut options = Self::default();
        let raw = match Punctuated::<RawOption, Token![,]>::parse_terminated.parse2(args) {
            Ok(raw) => raw,
            Err(error) => {
                errors.push(error);
                return options;
            }
        };
        let mut seen = Vec::new();
        for raw in raw {
            let meta = match raw {
                RawOption::Key(key) => {
                    let path = Path::from(key.token.clone());
                    if first_time(&mut seen, "key", &path, errors) {
                        options.key = Some(key);
                    }
                    continue;
                }
                RawOption::Meta(meta) => meta,
            };
            let Some(name) = option_name(meta.path(), errors) else {
                continue;
            };
            if !first_time(&mut seen, &name, meta.path(), errors) {
                continue;
            }
            match name.as_str() {
                "retry" => options.retry = duration(&meta, errors),
                "ttl" => options.ttl = duration(&meta, errors),
                "retry_max" => options.retry_max = duration(&meta, errors),
                "refresh" if flag_value(&meta).is_some() => errors.spanned(
                    flag_value(&meta),
                    "`refresh` is refresh-ahead here and takes a duration: `refresh = \"1m\"` refreshes a value in the background once it is a minute old; `cached`'s `refresh = true` (a hit extends the time to live) has no equivalent: remove it",
                ),
                "refresh" => options.refresh = duration(&meta, errors),
                "stale_if_error" => options.stale_if_error = duration(&meta, errors),
                "capacity" => options.capacity = capacity(&meta, errors),
                "name" => options.name = registry_name(&meta, errors),
                "key" => errors.spanned(
                    meta.path(),
                    "the key takes a type and an expression over the arguments: `key: String = id.to_string()`",
                ),
                "companions" => options.companions = visibility(&meta, errors),
                "handle" => options.handle = identifier(&meta, errors),
                "uncached" => options.uncached = identifier(&meta, errors),
                "shared" => options.shared = flag(&meta, errors),
                _ => options.skip = skip_list(&meta, errors),
            }
        }
        options
    }
}

/// `shared`, a flag: it takes no value.
fn flag(meta: &Meta, errors: &mut Errors) -> bool {
    if let Meta::Path(_) = meta {
        return true;
    }
    errors.spanned(meta, "`shared` takes no value: write `shared`");
    false
}

/// The option's name, if it is one of [`OPTIONS`]; else records the error.
fn option_name(path: &Path, errors: &mut Errors) -> Option<String> {
    let name = path.get_ident().map(|ident| ident.unraw().to_string());
    match name {
        Some(name) if OPTIONS.contains(&name.as_str()) => Some(name),
        Some(name) if migration_hint(&name).is_some() => {
            let hint = migration_hint(&name).unwrap_or_default();
            errors.spanned(path, format!("`{name}` is an option of `cached`; {hint}"));
            None
        }
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

fn migration_hint(name: &str) -> Option<&'static str> {
    MIGRATION_HINTS
        .iter()
        .find(|(option, _)| *option == name)
        .map(|(_, hint)| *hint)
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

/// `true` in `name = true` (or `false`).
fn flag_value(meta: &Meta) -> Option<&syn::LitBool> {
    match meta {
        Meta::NameValue(syn::MetaNameValue {
            value:
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(flag),
                    ..
                }),
            ..
        }) => Some(flag),
        _ => None,
    }
}

/// `retry = "5m"`, `ttl = "1h30m"`: a duration string, parsed now.
fn duration(meta: &Meta, errors: &mut Errors) -> Option<Timing> {
    const EXPECTS: &str = "a duration string";
    let ident = meta.path().get_ident()?;
    let name = ident.to_string();
    let example = format!("{name} = \"5m\"");
    let lit = literal(meta, EXPECTS, &example, errors)?;
    let Lit::Str(text) = lit else {
        errors.spanned(lit, format!("`{name}` expects {EXPECTS}, like `{example}`"));
        return None;
    };
    let Ok(duration) = humantime::parse_duration(text.value().trim()) else {
        if text.value().contains("Duration") {
            // `cached`'s `ttl` takes an expression in a string.
            errors.spanned(
                text,
                format!(
                    "`{name}` takes a duration string here, not an expression: `{name} = \"60s\"`"
                ),
            );
            return None;
        }
        errors.spanned(
            text,
            format!(
                "invalid duration `{}`; expected a number and a unit, like `500ms`, `30s`, `5m`, `1h30m` or `2d`",
                text.value()
            ),
        );
        return None;
    };
    Some(Timing {
        duration,
        name: ident.clone(),
        literal: text.clone(),
    })
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

/// `name = "users"`, refusing what looks like the name of `cached`'s static (`"FIB_CACHE"`).
fn registry_name(meta: &Meta, errors: &mut Errors) -> Option<LitStr> {
    let name = string(meta, errors)?;
    let text = name.value();
    let screaming = text
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && text.starts_with(|c: char| c.is_ascii_uppercase());
    if screaming && (text.contains('_') || text.ends_with("CACHE")) {
        errors.spanned(
            &name,
            format!(
                "`name` is the cache's name in the registry here, not a static's: the handle is `<fn>_cache()` (`handle = ..` renames it); for the registry, write a name like `\"{}\"`",
                text.to_ascii_lowercase().replace('_', "-")
            ),
        );
        return None;
    }
    Some(name)
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

/// `companions = "pub(crate)"`: a visibility, `"private"` for none.
fn visibility(meta: &Meta, errors: &mut Errors) -> Option<Visibility> {
    const EXPECTS: &str = "a visibility in a string";
    const EXAMPLE: &str = "companions = \"pub(crate)\"";
    if let Meta::NameValue(pair) = meta {
        if let Expr::Lit(ExprLit {
            lit: Lit::Bool(_), ..
        }) = &pair.value
        {
            // `cached`'s `companions = false`.
            errors.spanned(
                &pair.value,
                "the companions are always generated here; to keep them private, `companions = \"private\"`",
            );
            return None;
        }
    }
    let lit = literal(meta, EXPECTS, EXAMPLE, errors)?;
    let Lit::Str(text) = lit else {
        errors.spanned(
            lit,
            format!("`companions` expects {EXPECTS}, like `{EXAMPLE}`"),
        );
        return None;
    };
    if text.value().trim() == "private" {
        return Some(Visibility::Inherited);
    }
    match text.parse::<Visibility>() {
        Ok(Visibility::Inherited) | Err(_) => {
            errors.spanned(
                text,
                format!(
                    "invalid visibility `{}`; expected `pub`, `pub(crate)`, `pub(super)`, `pub(in path)` or `private`",
                    text.value()
                ),
            );
            None
        }
        Ok(vis) => Some(vis),
    }
}

/// `handle = users_cache`: a name for a generated item.
fn identifier(meta: &Meta, errors: &mut Errors) -> Option<Ident> {
    let name = meta.path().get_ident()?.to_string();
    let example = format!("{name} = my_{name}");
    if let Meta::NameValue(pair) = meta {
        if let Expr::Path(path) = &pair.value {
            if let Some(ident) = path.path.get_ident() {
                if path.attrs.is_empty() && path.qself.is_none() {
                    return Some(ident.clone());
                }
            }
        }
        errors.spanned(
            &pair.value,
            format!("`{name}` expects a name, like `{example}`"),
        );
    } else {
        errors.spanned(meta, format!("expected `{example}`"));
    }
    None
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
