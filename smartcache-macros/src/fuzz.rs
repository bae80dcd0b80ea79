//! Property tests of the macro's input handling: random and mutated durations, option lists
//! and items go through the option parser and the whole expansion. Whatever the input,
//! nothing panics, and the answer is either a valid configuration (an expansion that parses)
//! or errors that read like the macro's own: non-empty, lowercase, without a final period.
//!
//! 256 cases per property; `PROPTEST_CASES=100000 cargo test -p smartcache-macros fuzz` runs
//! more. A shrunk failure becomes a named test in `regressions`, at the end.
//!
//! Outside a macro, proc-macro2 gives every token the same fallback span, so whether an
//! error points at the right token cannot be seen here; the ui tests (`tests/ui`) do that.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use quote::quote;
use syn::ext::IdentExt;

use crate::attr::{self, Options};
use crate::ctxt::Errors;

/// 256 cases, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256)
}

/// Tokens that print as source text when a case fails.
#[derive(Clone)]
struct Tokens(Vec<TokenTree>);

impl Tokens {
    fn stream(&self) -> TokenStream {
        self.0.iter().cloned().collect()
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.stream())
    }
}

/// `run()`, with a panic turned into a failure that shows `input`.
fn no_panic<T>(input: &str, run: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    panic::catch_unwind(AssertUnwindSafe(run)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        TestCaseError::fail(format!("panicked ({message}) on `{input}`"))
    })
}

/// The options parsed from `args`, and the errors if there are any.
fn parse_options(args: &TokenStream) -> Result<(Options, Option<syn::Error>), TestCaseError> {
    no_panic(&args.to_string(), || {
        let mut errors = Errors::default();
        let options = Options::parse(args.clone(), &mut errors);
        (options, errors.finish().err())
    })
}

/// A message reads like the others: ``unknown option `retyr`; expected ..``.
fn check_message(message: &str, input: &str) -> Result<(), TestCaseError> {
    prop_assert!(!message.is_empty(), "empty message for `{}`", input);
    prop_assert!(
        !message.starts_with(char::is_uppercase) && !message.ends_with('.'),
        "message `{}` for `{}`: lowercase, no final period",
        message,
        input
    );
    Ok(())
}

/// Every error of `error` has a message that reads well and becomes a `compile_error!`.
fn check_errors(error: &syn::Error, input: &str) -> Result<(), TestCaseError> {
    let messages: Vec<String> = error.clone().into_iter().map(|e| e.to_string()).collect();
    prop_assert!(!messages.is_empty());
    for message in &messages {
        check_message(message, input)?;
    }
    let rendered = check_compile_errors(&error.to_compile_error(), input)?;
    prop_assert_eq!(rendered, messages.len(), "one `compile_error!` per error");
    Ok(())
}

/// Checks that `tokens` is one or more `compile_error!` invocations with good messages, and
/// returns how many.
fn check_compile_errors(tokens: &TokenStream, input: &str) -> Result<usize, TestCaseError> {
    let file = syn::parse2::<syn::File>(tokens.clone())
        .map_err(|e| TestCaseError::fail(format!("{e}: `{tokens}` for `{input}`")))?;
    prop_assert!(!file.items.is_empty(), "no error for `{}`", input);
    for item in &file.items {
        let syn::Item::Macro(invocation) = item else {
            return Err(TestCaseError::fail(format!(
                "not a `compile_error!`: `{tokens}` for `{input}`"
            )));
        };
        let name = invocation.mac.path.segments.last().map(|s| &s.ident);
        prop_assert!(name.is_some_and(|name| name == "compile_error"));
        let message = syn::parse2::<syn::LitStr>(invocation.mac.tokens.clone())
            .map_err(|e| TestCaseError::fail(format!("{e} in `{tokens}`")))?;
        check_message(&message.value(), input)?;
    }
    Ok(file.items.len())
}

fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

// Durations.

/// humantime's units, some of them written wrongly, and no unit.
const UNITS: &[&str] = &[
    "ns", "nsec", "us", "µs", "usec", "ms", "msec", "millis", "s", "sec", "secs", "second",
    "seconds", "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d",
    "day", "days", "w", "week", "weeks", "M", "month", "months", "y", "year", "years", "", "x",
    "H", "S", "Ms", "sek", "hh", "µ", "mss", "1",
];

const GAPS: &[&str] = &["", "", " ", "  ", "\t", "\n", ",", ", ", "+"];

const VALID_DURATIONS: &[&str] = &[
    "500ms",
    "30s",
    "5m",
    "1h30m",
    "2d",
    "1h 30m",
    "0s",
    "0",
    "10 minutes",
    "1y 2M 3w",
];

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<u16>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[1-9][0-9]{19,30}",
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("{a}.{b}")),
        1 => any::<u16>().prop_map(|n| format!("-{n}")),
        1 => any::<u16>().prop_map(|n| format!("+{n}")),
        1 => "[0-9_]{1,6}",
        1 => Just(String::new()),
    ]
}

/// Sequences of numbers and units: `"1h30m"`, `" 5 mins, 2x"`, `"99999999999999999999d"`.
fn structured_duration() -> impl Strategy<Value = String> {
    let part = (number(), select(GAPS), select(UNITS), select(GAPS));
    (select(GAPS), vec(part, 0..5), select(GAPS)).prop_map(|(lead, parts, trail)| {
        let mut text = lead.to_owned();
        for (number, gap, unit, separator) in parts {
            text.push_str(&number);
            text.push_str(gap);
            text.push_str(unit);
            text.push_str(separator);
        }
        text.push_str(trail);
        text
    })
}

#[derive(Clone, Copy, Debug)]
enum Edit {
    Delete,
    Insert(char),
    Replace(char),
    Duplicate,
}

fn edit() -> impl Strategy<Value = Edit> {
    let near = prop_oneof![
        select(&['0', '9', ' ', '.', '-', 'm', 's', 'h', 'd', 'µ', '\u{0}'][..]),
        any::<char>(),
    ];
    prop_oneof![
        Just(Edit::Delete),
        near.clone().prop_map(Edit::Insert),
        near.prop_map(Edit::Replace),
        Just(Edit::Duplicate),
    ]
}

/// A valid duration with a few characters deleted, inserted, replaced or doubled.
fn mutated_duration() -> impl Strategy<Value = String> {
    (select(VALID_DURATIONS), vec((any::<Index>(), edit()), 1..4)).prop_map(|(valid, edits)| {
        let mut chars: Vec<char> = valid.chars().collect();
        for (at, edit) in edits {
            let at = at.index(chars.len() + 1);
            match edit {
                Edit::Insert(c) => chars.insert(at, c),
                Edit::Delete if at < chars.len() => drop(chars.remove(at)),
                Edit::Replace(c) if at < chars.len() => chars[at] = c,
                Edit::Duplicate if at < chars.len() => chars.insert(at, chars[at]),
                _ => {}
            }
        }
        chars.into_iter().collect()
    })
}

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => vec(any::<char>(), 0..12).prop_map(|chars| chars.into_iter().collect()),
        4 => structured_duration(),
        2 => mutated_duration(),
        2 => (select(GAPS), valid_duration(), select(GAPS))
            .prop_map(|(lead, text, trail)| format!("{lead}{text}{trail}")),
    ]
}

/// The duration options.
const TIMINGS: &[&str] = &["retry", "ttl", "retry_max", "refresh", "stale_if_error"];

/// The duration of the option `option` (one of [`TIMINGS`]) in `options`.
fn timing(options: &Options, option: &str) -> Option<std::time::Duration> {
    let timing = match option {
        "retry" => &options.retry,
        "ttl" => &options.ttl,
        "retry_max" => &options.retry_max,
        "refresh" => &options.refresh,
        "stale_if_error" => &options.stale_if_error,
        _ => return None,
    };
    timing.as_ref().map(|timing| timing.duration)
}

/// `option = "<text>"` parses to humantime's reading of the trimmed text, or to one error.
fn check_duration(option: &str, text: &str) -> Result<(), TestCaseError> {
    let name = ident(option);
    let literal = Literal::string(text);
    let args = quote!(#name = #literal);
    let (options, error) = parse_options(&args)?;
    let expected = humantime::parse_duration(text.trim()).ok();
    let parsed = timing(&options, option);
    prop_assert_eq!(parsed, expected, "for {:?}", text);
    match error {
        None => prop_assert!(expected.is_some(), "no error for {:?}", text),
        Some(error) => {
            check_errors(&error, &args.to_string())?;
            prop_assert_eq!(error.clone().into_iter().count(), 1);
            prop_assert!(error.to_string().starts_with("invalid duration"));
        }
    }
    Ok(())
}

// Option lists.

/// The options, misspelled ones, keywords and raw identifiers.
const NAMES: &[&str] = &[
    "retry",
    "ttl",
    "capacity",
    "skip",
    "name",
    "retyr",
    "rety",
    "ttl_",
    "TTL",
    "Retry",
    "capacit",
    "skp",
    "skips",
    "nam",
    "names",
    "self",
    "Self",
    "crate",
    "fn",
    "async",
    "true",
    "false",
    "_",
    "r#retry",
    "r#skip",
    "r#type",
    "id",
    "client",
    "retry_max",
    "refresh",
    "stale_if_error",
    "retrymax",
    "stale",
];

/// Literals that the constructors of `Literal` do not write: other bases, separators,
/// suffixes, raw and C strings, integers past `u64`.
const LITERALS: &[&str] = &[
    "1_000",
    "0x10",
    "0b1",
    "0o7",
    "1e3",
    "1.",
    "1u8",
    "300u8",
    "1_u64",
    "5usize",
    "1.5f32",
    "5f32",
    "'\\n'",
    "r#\"5m\"#",
    "c\"5m\"",
    "b'a'",
    "\"\\u{1F600}\"",
    "\"5m\"suffix",
    "99999999999999999999999999999999999999999999",
    "18446744073709551616",
    "18446744073709551615",
    "\"5m\"ms",
    "\"users\"_x",
    "10_000u64",
    "10usize",
    "5i32",
];

fn literal() -> impl Strategy<Value = TokenTree> {
    let literal = prop_oneof![
        duration_text().prop_map(|text| Literal::string(&text)),
        any::<u64>().prop_map(Literal::u64_unsuffixed),
        any::<i64>().prop_map(Literal::i64_unsuffixed),
        any::<u128>().prop_map(Literal::u128_suffixed),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Literal::f64_unsuffixed),
        any::<char>().prop_map(Literal::character),
        vec(any::<u8>(), 0..8).prop_map(|bytes| Literal::byte_string(&bytes)),
        any::<u8>().prop_map(Literal::byte_character),
        select(LITERALS).prop_map(|text| text.parse().expect("a literal")),
    ];
    literal.prop_map(TokenTree::Literal)
}

fn leaf() -> impl Strategy<Value = TokenTree> {
    let puncts = &[
        '=', ',', ':', '-', '#', '.', ';', '@', '!', '&', '+', '<', '>', '*',
    ][..];
    let spacing = prop_oneof![Just(Spacing::Alone), Just(Spacing::Joint)];
    prop_oneof![
        4 => select(NAMES).prop_map(|name| TokenTree::Ident(ident(name))),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}"
            .prop_map(|name| TokenTree::Ident(Ident::new(&name, Span::call_site()))),
        3 => (select(puncts), spacing).prop_map(|(c, s)| TokenTree::Punct(Punct::new(c, s))),
        3 => literal(),
    ]
}

const DELIMITERS: [Delimiter; 4] = [
    Delimiter::Parenthesis,
    Delimiter::Bracket,
    Delimiter::Brace,
    Delimiter::None,
];

/// Any token, groups (of every delimiter, invisible ones included) up to three deep.
fn token() -> impl Strategy<Value = TokenTree> {
    leaf().prop_recursive(3, 32, 6, |inner| {
        (select(&DELIMITERS[..]), vec(inner, 0..6)).prop_map(|(delimiter, trees)| {
            TokenTree::Group(Group::new(delimiter, trees.into_iter().collect()))
        })
    })
}

fn soup() -> impl Strategy<Value = Tokens> {
    vec(token(), 0..12).prop_map(Tokens)
}

/// A correct option, with its value.
#[derive(Clone, Debug)]
enum ValidOption {
    Retry(String),
    Ttl(String),
    Capacity(u64),
    Skip(Vec<&'static str>),
    Name(String),
    /// `key: <type> = <expr>`.
    Key(&'static str, &'static str),
    Companions(&'static str),
    Handle(&'static str),
    Uncached(&'static str),
    RetryMax(String),
    Refresh(String),
    StaleIfError(String),
}

const KEYS: &[(&str, &str)] = &[
    ("u64", "*id"),
    ("String", "format!(\"{id}/{x}\")"),
    ("(u8, String)", "(1, client.to_string())"),
    ("std::sync::Arc<str>", "\"k\".into()"),
];

const VISIBILITIES: &[&str] = &[
    "pub",
    "pub(crate)",
    "pub(super)",
    "pub(in crate::a)",
    "private",
];

const COMPANION_NAMES: &[&str] = &["users", "handle", "r#type", "fetch_raw", "_x"];

const SKIPPABLE: &[&str] = &[
    "id", "client", "self", "x", "r#type", "m", "key", "_ignored",
];

fn valid_duration() -> impl Strategy<Value = String> {
    let units = &UNITS[..UNITS.iter().position(|unit| unit.is_empty()).unwrap_or(0)];
    let part = (any::<u32>(), select(units), select(&["", " "][..]));
    vec(part, 1..4).prop_map(|parts| {
        let mut text = String::new();
        for (number, unit, gap) in parts {
            text.push_str(&number.to_string());
            text.push_str(unit);
            text.push_str(gap);
        }
        text.trim_end().to_owned()
    })
}

fn valid_option(kind: usize) -> BoxedStrategy<ValidOption> {
    match kind {
        0 => valid_duration().prop_map(ValidOption::Retry).boxed(),
        1 => valid_duration().prop_map(ValidOption::Ttl).boxed(),
        2 => any::<u64>().prop_map(ValidOption::Capacity).boxed(),
        3 => proptest::sample::subsequence(SKIPPABLE, 0..4)
            .prop_shuffle()
            .prop_map(ValidOption::Skip)
            .boxed(),
        4 => any::<String>()
            .prop_filter("a static's name", |name| !looks_static(name))
            .prop_map(ValidOption::Name)
            .boxed(),
        5 => select(KEYS)
            .prop_map(|(ty, expr)| ValidOption::Key(ty, expr))
            .boxed(),
        6 => select(VISIBILITIES)
            .prop_map(ValidOption::Companions)
            .boxed(),
        7 => select(COMPANION_NAMES)
            .prop_map(ValidOption::Handle)
            .boxed(),
        9 => valid_duration().prop_map(ValidOption::RetryMax).boxed(),
        10 => valid_duration().prop_map(ValidOption::Refresh).boxed(),
        11 => valid_duration().prop_map(ValidOption::StaleIfError).boxed(),
        _ => select(COMPANION_NAMES)
            .prop_map(ValidOption::Uncached)
            .boxed(),
    }
}

/// Each option at most once, in any order.
fn valid_options() -> impl Strategy<Value = Vec<ValidOption>> {
    proptest::sample::subsequence(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11][..], 0..=12)
        .prop_shuffle()
        .prop_flat_map(|kinds| kinds.into_iter().map(valid_option).collect::<Vec<_>>())
}

fn option_tokens(option: &ValidOption) -> TokenStream {
    match option {
        ValidOption::Retry(text) => quote!(retry = #text),
        ValidOption::Ttl(text) => quote!(ttl = #text),
        ValidOption::Capacity(capacity) => {
            let capacity = Literal::u64_unsuffixed(*capacity);
            quote!(capacity = #capacity)
        }
        ValidOption::Skip(names) => {
            let names = names.iter().map(|name| ident(name));
            quote!(skip(#(#names),*))
        }
        ValidOption::Name(name) => quote!(name = #name),
        ValidOption::Key(ty, expr) => {
            let ty: TokenStream = ty.parse().unwrap_or_default();
            let expr: TokenStream = expr.parse().unwrap_or_default();
            quote!(key: #ty = #expr)
        }
        ValidOption::Companions(vis) => quote!(companions = #vis),
        ValidOption::Handle(name) => {
            let name = ident(name);
            quote!(handle = #name)
        }
        ValidOption::Uncached(name) => {
            let name = ident(name);
            quote!(uncached = #name)
        }
        ValidOption::RetryMax(text) => quote!(retry_max = #text),
        ValidOption::Refresh(text) => quote!(refresh = #text),
        ValidOption::StaleIfError(text) => quote!(stale_if_error = #text),
    }
}

/// `options`, separated by commas, and with one after them if `trailing_comma` (and any).
fn list_tokens(options: &[ValidOption], trailing_comma: bool) -> Tokens {
    let comma = (trailing_comma && !options.is_empty()).then(|| quote!(,));
    let options = options.iter().map(option_tokens);
    Tokens(quote!(#(#options),* #comma).into_iter().collect())
}

fn valid_list() -> impl Strategy<Value = Tokens> {
    (valid_options(), any::<bool>()).prop_map(|(options, comma)| list_tokens(&options, comma))
}

#[derive(Clone, Debug)]
enum Mutation {
    Drop(Index),
    Duplicate(Index),
    Swap(Index, Index),
    Insert(Index, TokenTree),
    Replace(Index, TokenTree),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Drop),
        any::<Index>().prop_map(Mutation::Duplicate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<Index>(), token()).prop_map(|(at, tree)| Mutation::Insert(at, tree)),
        (any::<Index>(), token()).prop_map(|(at, tree)| Mutation::Replace(at, tree)),
    ]
}

/// `trees` with `mutations` applied to its top level.
fn mutate(mut trees: Vec<TokenTree>, mutations: &[Mutation]) -> Tokens {
    for mutation in mutations {
        let len = trees.len();
        if len == 0 {
            if let Mutation::Insert(_, tree) | Mutation::Replace(_, tree) = mutation {
                trees.push(tree.clone());
            }
            continue;
        }
        match mutation {
            Mutation::Drop(at) => drop(trees.remove(at.index(len))),
            Mutation::Duplicate(at) => {
                let at = at.index(len);
                trees.insert(at, trees[at].clone());
            }
            Mutation::Swap(a, b) => trees.swap(a.index(len), b.index(len)),
            Mutation::Insert(at, tree) => trees.insert(at.index(len + 1), tree.clone()),
            Mutation::Replace(at, tree) => trees[at.index(len)] = tree.clone(),
        }
    }
    Tokens(trees)
}

fn mutated_list() -> impl Strategy<Value = Tokens> {
    (valid_list(), vec(mutation(), 1..4)).prop_map(|(list, mutations)| mutate(list.0, &mutations))
}

/// Attribute arguments: correct, mutated, or random.
fn args() -> impl Strategy<Value = Tokens> {
    prop_oneof![
        2 => valid_list(),
        3 => mutated_list(),
        2 => soup(),
    ]
}

/// Whatever `args` are, the parser answers with options or with well-formed errors.
fn check_args(args: &TokenStream) -> Result<(), TestCaseError> {
    let (options, error) = parse_options(args)?;
    if let Some(error) = error {
        return check_errors(&error, &args.to_string());
    }
    for (i, name) in options.skip.iter().enumerate() {
        prop_assert!(!options.skip[..i].contains(name), "`{}` twice", name);
    }
    Ok(())
}

/// Correct options parse to their values, without an error.
fn check_valid_list(options: &[ValidOption], args: &TokenStream) -> Result<(), TestCaseError> {
    let (parsed, error) = parse_options(args)?;
    if let Some(error) = error {
        return Err(TestCaseError::fail(format!("`{error}` for `{args}`")));
    }
    let duration = |text: &str| humantime::parse_duration(text).ok();
    for option in options {
        match option {
            ValidOption::Retry(text) => prop_assert_eq!(timing(&parsed, "retry"), duration(text)),
            ValidOption::Ttl(text) => prop_assert_eq!(timing(&parsed, "ttl"), duration(text)),
            ValidOption::RetryMax(text) => {
                prop_assert_eq!(timing(&parsed, "retry_max"), duration(text));
            }
            ValidOption::Refresh(text) => {
                prop_assert_eq!(timing(&parsed, "refresh"), duration(text));
            }
            ValidOption::StaleIfError(text) => {
                prop_assert_eq!(timing(&parsed, "stale_if_error"), duration(text));
            }
            ValidOption::Capacity(capacity) => prop_assert_eq!(parsed.capacity, Some(*capacity)),
            ValidOption::Skip(names) => {
                let skipped: Vec<String> = parsed.skip.iter().map(ToString::to_string).collect();
                prop_assert_eq!(&skipped, names);
            }
            ValidOption::Name(name) => {
                prop_assert_eq!(
                    parsed.name.as_ref().map(syn::LitStr::value),
                    Some(name.clone())
                );
            }
            ValidOption::Key(ty, _) => {
                let key = parsed.key.as_ref().map(|key| &key.ty);
                let expected: syn::Type =
                    syn::parse_str(ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(
                    key.map(|ty| quote!(#ty).to_string()),
                    Some(quote!(#expected).to_string())
                );
            }
            ValidOption::Companions(vis) => {
                let parsed = parsed
                    .companions
                    .as_ref()
                    .map(|vis| quote!(#vis).to_string().replace(' ', ""));
                let expected = if *vis == "private" {
                    String::new()
                } else {
                    vis.replace(' ', "")
                };
                prop_assert_eq!(parsed, Some(expected));
            }
            ValidOption::Handle(name) => {
                prop_assert_eq!(
                    parsed.handle.as_ref().map(ToString::to_string),
                    Some((*name).to_owned())
                );
            }
            ValidOption::Uncached(name) => {
                prop_assert_eq!(
                    parsed.uncached.as_ref().map(ToString::to_string),
                    Some((*name).to_owned())
                );
            }
        }
    }
    Ok(())
}

/// What a single option's value should parse to.
#[derive(Debug, PartialEq)]
enum Value {
    Duration(std::time::Duration),
    Capacity(u64),
    Name(String),
}

/// The documented rule: a duration is a string that humantime reads (trimmed), a capacity an
/// integer that fits in a `u64`, a name a string; anything else is an error.
fn expected_value(option: &str, value: &TokenStream) -> Option<Value> {
    let lit = syn::parse2::<syn::Lit>(value.clone()).ok()?;
    match (option, lit) {
        (option, syn::Lit::Str(text)) if TIMINGS.contains(&option) && text.suffix().is_empty() => {
            let duration = humantime::parse_duration(text.value().trim());
            duration.ok().map(Value::Duration)
        }
        ("capacity", syn::Lit::Int(int)) if ["", "u64", "usize"].contains(&int.suffix()) => {
            int.base10_parse().ok().map(Value::Capacity)
        }
        ("name", syn::Lit::Str(text))
            if text.suffix().is_empty() && !looks_static(&text.value()) =>
        {
            Some(Value::Name(text.value()))
        }
        _ => None,
    }
}

/// Whether `name` reads like the name of `cached`'s static (`"FIB_CACHE"`), which `name`
/// refuses with a hint.
fn looks_static(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && (name.contains('_') || name.ends_with("CACHE"))
}

/// A value: mostly a literal, sometimes in a group (of any delimiter) or after a `-`.
fn value() -> impl Strategy<Value = Tokens> {
    let single = prop_oneof![
        3 => duration_text().prop_map(|text| TokenTree::Literal(Literal::string(&text))),
        3 => literal(),
        1 => leaf(),
    ];
    prop_oneof![
        4 => single.clone().prop_map(|tree| Tokens(vec![tree])),
        1 => (select(&DELIMITERS[..]), single.clone()).prop_map(|(delimiter, tree)| {
            Tokens(vec![TokenTree::Group(Group::new(delimiter, tree.into()))])
        }),
        1 => single.prop_map(|tree| {
            Tokens(vec![TokenTree::Punct(Punct::new('-', Spacing::Alone)), tree])
        }),
    ]
}

/// `option = <value>` parses to exactly what [`expected_value`] says, or to one error.
fn check_value(option: &str, value: &TokenStream) -> Result<(), TestCaseError> {
    let name = ident(option);
    let args = quote!(#name = #value);
    let (options, error) = parse_options(&args)?;
    let parsed = match option {
        option if TIMINGS.contains(&option) => timing(&options, option).map(Value::Duration),
        "capacity" => options.capacity.map(Value::Capacity),
        _ => options.name.map(|name| Value::Name(name.value())),
    };
    let expected = expected_value(option, value);
    prop_assert_eq!(&parsed, &expected, "for `{}`", args);
    match error {
        None => prop_assert!(expected.is_some(), "no error for `{}`", args),
        Some(error) => {
            check_errors(&error, &args.to_string())?;
            prop_assert_eq!(error.into_iter().count(), 1, "for `{}`", args);
        }
    }
    Ok(())
}

// Whole expansions.

/// Free items: cacheable or not, and not functions.
fn free_item(index: usize) -> TokenStream {
    match index {
        0 => quote!(
            async fn fetch(id: u64) -> Result<u8, CacheError<E>> {
                Ok(1)
            }
        ),
        1 => quote!(
            pub async fn page(client: &str, id: u32) -> String {
                format!("{client}/{id}")
            }
        ),
        2 => quote!(
            async fn run() {}
        ),
        3 => quote!(
            fn blocking(id: u64) -> u8 {
                1
            }
        ),
        4 => quote!(
            async fn generic<T: Clone>(x: T) -> T {
                x
            }
        ),
        5 => quote!(
            async fn method(&self, id: u64) -> u8 {
                0
            }
        ),
        6 => quote!(
            async fn with_impl(x: impl Into<u64>) -> u64 {
                x.into()
            }
        ),
        7 => quote!(
            async fn io(path: &std::path::Path, key: &[u8]) -> std::io::Result<Vec<u8>> {
                todo!()
            }
        ),
        8 => quote!(
            #[cfg(test)]
            #[must_use]
            #[expect(clippy::unused_async)]
            pub(crate) async fn r#match(r#type: u8, mut m: u8, (a, b): (u8, u8), _: u8) -> u8 {
                0
            }
        ),
        9 => quote!(
            async fn borrowing(x: &mut Vec<u8>, client: Option<&str>) -> impl Sized {}
        ),
        10 => quote!(
            struct NotAFn;
        ),
        11 => quote!(
            const X: u8 = 1;
        ),
        12 => quote!(
            fn lookup<'a>(id: u64, x: &'a str, client: State(inner): State<Db>) -> Option<String> {
                None
            }
        ),
        13 => quote!(
            async fn with_self(id: u64, x: u8, client: &str) -> Self {
                todo!()
            }
        ),
        14 => quote!(
            async fn fallible(id: u64, x: u8, client: &str) -> anyhow::Result<u8> {
                Ok(0)
            }
        ),
        _ => quote!(
            trait Tr {
                async fn f(&self);
            }
        ),
    }
}

const FREE_ITEMS: usize = 16;

/// `impl` blocks, with `args` in a method's marker.
fn impl_item(index: usize, args: &TokenStream) -> TokenStream {
    match index {
        0 => quote!(
            impl Service {
                #[smart_cached(#args)]
                pub async fn user(&self, id: u64) -> Result<u8, E> {
                    Ok(0)
                }
                pub fn other(&self) {}
            }
        ),
        1 => quote!(
            impl Service {
                #[smart_cached(#args)]
                async fn by_value(self, key: &str) -> u8 {
                    0
                }
                #[smart_cached]
                fn not_async(&mut self) {}
                #[smart_cached(#args)]
                #[smart_cached]
                async fn twice(&self) {}
            }
        ),
        2 => quote!(
            impl<T> Tr for S<T> {
                #[smart_cached(#args)]
                async fn f(&self, x: T) {}
            }
        ),
        _ => quote!(
            impl Service {
                #[a::smart_cached(#args)]
                async fn shared(self: std::sync::Arc<Self>, id: u64) -> Self {
                    todo!()
                }
            }
        ),
    }
}

const IMPL_ITEMS: usize = 4;

/// Items: fixed ones, mutated ones, `impl` blocks with random markers, and token soup.
fn item() -> impl Strategy<Value = Tokens> {
    prop_oneof![
        4 => (0..FREE_ITEMS).prop_map(|index| Tokens(free_item(index).into_iter().collect())),
        2 => (0..FREE_ITEMS, vec(mutation(), 1..3)).prop_map(|(index, mutations)| {
            mutate(free_item(index).into_iter().collect(), &mutations)
        }),
        3 => (0..IMPL_ITEMS, prop_oneof![Just(Tokens(Vec::new())), args()]).prop_map(|(index, args)| {
            Tokens(impl_item(index, &args.stream()).into_iter().collect())
        }),
        1 => soup(),
    ]
}

/// The attribute's own arguments: mostly none for an `impl` block, often none or correct
/// ones for a fn (so that some expansions succeed).
fn args_for(item: &Tokens) -> BoxedStrategy<Tokens> {
    let is_impl = matches!(item.0.first(), Some(TokenTree::Ident(i)) if i == "impl");
    let none = Just(Tokens(Vec::new()));
    if is_impl {
        prop_oneof![3 => none, 1 => args()].boxed()
    } else {
        prop_oneof![1 => none, 1 => valid_list(), 2 => args()].boxed()
    }
}

/// Expanding never panics; the answer is the expansion of a fn, the expansion of an `impl`
/// block, or the item as it came with `compile_error!`s after it.
fn check_expansion(args: &TokenStream, item: &TokenStream) -> Result<(), TestCaseError> {
    let shown = format!("#[smart_cached({args})] {item}");
    let output = no_panic(&shown, || {
        crate::expand::smart_cached(args.clone(), item.clone())
    })?;
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Impl(input)) => check_impl_expansion(&input, &output, &shown),
        parsed => {
            let input: Vec<String> = item.clone().into_iter().map(|t| t.to_string()).collect();
            let output: Vec<TokenTree> = output.into_iter().collect();
            let kept = output.len() > input.len()
                && input.iter().zip(&output).all(|(a, b)| *a == b.to_string());
            if kept {
                let errors = output[input.len()..].iter().cloned().collect();
                check_compile_errors(&errors, &shown).map(drop)
            } else {
                let Ok(syn::Item::Fn(function)) = parsed else {
                    return Err(TestCaseError::fail(format!(
                        "not a fn, yet no fail-soft output for `{shown}`"
                    )));
                };
                check_fn_expansion(&function, args, &output.into_iter().collect(), &shown)
            }
        }
    }
}

/// A fn expands to itself, its handle and its uncached fn (under the names given, if any),
/// and hidden helpers.
fn check_fn_expansion(
    function: &syn::ItemFn,
    args: &TokenStream,
    output: &TokenStream,
    shown: &str,
) -> Result<(), TestCaseError> {
    let file = syn::parse2::<syn::File>(output.clone())
        .map_err(|e| TestCaseError::fail(format!("{e} in `{output}` for `{shown}`")))?;
    let names: Vec<String> = file
        .items
        .iter()
        .map(|item| match item {
            syn::Item::Fn(f) => f.sig.ident.to_string(),
            other => format!("not a fn: {}", quote!(#other)),
        })
        .collect();
    let (options, _) = parse_options(args)?;
    let ident = &function.sig.ident;
    let base = ident.unraw();
    let expected = [
        ident.to_string(),
        options
            .handle
            .map_or_else(|| format!("{base}_cache"), |name| name.to_string()),
        options
            .uncached
            .map_or_else(|| format!("{base}_uncached"), |name| name.to_string()),
    ];
    let public: Vec<&String> = names
        .iter()
        .filter(|name| !name.starts_with("__smartcache_"))
        .collect();
    prop_assert_eq!(
        public,
        expected.iter().collect::<Vec<_>>(),
        "for `{}`",
        shown
    );
    Ok(())
}

fn check_impl_expansion(
    input: &syn::ItemImpl,
    output: &TokenStream,
    shown: &str,
) -> Result<(), TestCaseError> {
    let file = syn::parse2::<syn::File>(output.clone())
        .map_err(|e| TestCaseError::fail(format!("{e} in `{output}` for `{shown}`")))?;
    let Some((syn::Item::Impl(expanded), errors)) = file.items.split_first() else {
        return Err(TestCaseError::fail(format!("no impl in `{output}`")));
    };
    if !errors.is_empty() {
        check_compile_errors(&quote!(#(#errors)*), shown)?;
    }
    let self_ty = &input.self_ty;
    let expanded_ty = &expanded.self_ty;
    prop_assert_eq!(
        quote!(#self_ty).to_string(),
        quote!(#expanded_ty).to_string()
    );
    let methods = |block: &syn::ItemImpl| -> Vec<syn::ImplItemFn> {
        let fns = block.items.iter().filter_map(|item| match item {
            syn::ImplItem::Fn(method) => Some(method.clone()),
            _ => None,
        });
        fns.collect()
    };
    let expanded_methods = methods(expanded);
    let names: Vec<String> = expanded_methods
        .iter()
        .map(|m| m.sig.ident.to_string())
        .collect();
    for method in &expanded_methods {
        prop_assert!(
            !method.attrs.iter().any(attr::is_marker),
            "marker left on `{}` for `{}`",
            method.sig.ident,
            shown
        );
    }
    for method in methods(input) {
        let name = method.sig.ident.to_string();
        prop_assert!(names.contains(&name), "`{}` lost for `{}`", name, shown);
        let marker = method.attrs.iter().find(|a| attr::is_marker(a));
        if let (true, Some(marker)) = (errors.is_empty(), marker) {
            let mut marker_errors = Errors::default();
            let args = attr::marker_args(marker, &mut marker_errors);
            let (options, _) = parse_options(&args)?;
            let handle = options
                .handle
                .map_or_else(|| format!("{name}_cache"), |h| h.to_string());
            let uncached = options
                .uncached
                .map_or_else(|| format!("{name}_uncached"), |u| u.to_string());
            for generated in [handle, uncached] {
                prop_assert!(
                    names.contains(&generated),
                    "no `{}` for `{}`",
                    generated,
                    shown
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A duration is accepted exactly when humantime reads the trimmed string.
    #[test]
    fn durations_parse_as_humantime_does(
        option in select(TIMINGS),
        text in duration_text(),
    ) {
        check_duration(option, &text)?;
    }

    /// One option's value is read exactly as documented.
    #[test]
    fn option_values_are_read_as_documented(
        option in select(&["retry", "ttl", "retry_max", "refresh", "stale_if_error", "capacity", "name"][..]),
        value in value(),
    ) {
        check_value(option, &value.stream())?;
    }

    /// Random and mutated option lists give options or well-formed errors.
    #[test]
    fn any_option_list_gives_options_or_errors(args in args()) {
        check_args(&args.stream())?;
    }

    /// Correct option lists are accepted with their values.
    #[test]
    fn correct_option_lists_are_accepted(
        options in valid_options(),
        trailing_comma in any::<bool>(),
    ) {
        check_valid_list(&options, &list_tokens(&options, trailing_comma).stream())?;
    }

    /// The whole expansion fails soft or gives code that parses.
    #[test]
    fn any_input_expands_or_fails_soft(
        (args, item) in item().prop_flat_map(|item| (args_for(&item), Just(item))),
    ) {
        check_expansion(&args.stream(), &item.stream())?;
    }
}

/// Shrunk failures of the properties above.
mod regressions {
    use quote::quote;

    use super::{check_value, parse_options};

    /// `ttl = "5m"ms` was read as five minutes, the suffix dropped (rustc rejects a suffix
    /// on a string).
    #[test]
    fn a_suffix_on_a_duration_string_is_an_error() {
        check_value("ttl", &quote!("5m"ms)).unwrap();
        check_value("retry", &quote!("30s"_x)).unwrap();
        let (options, error) = parse_options(&quote!(ttl = "5m"ms)).unwrap();
        assert!(options.ttl.is_none());
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("unexpected suffix `ms` on `ttl`")
        );
    }

    /// `name = "users"_x` was accepted, and the suffix left for rustc to reject.
    #[test]
    fn a_suffix_on_a_name_is_an_error() {
        check_value("name", &quote!("users"_x)).unwrap();
    }

    /// Shrunk from `option_values_are_read_as_documented`: `capacity = 1u8` was read as 1,
    /// and `300u8` as 300, though it is no `u8`. A `u64` or `usize` suffix is still taken.
    #[test]
    fn a_capacity_suffix_other_than_u64_or_usize_is_an_error() {
        for value in [quote!(1u8), quote!(300u8), quote!(5i32), quote!(5u128)] {
            check_value("capacity", &value).unwrap();
            assert!(
                parse_options(&quote!(capacity = #value))
                    .unwrap()
                    .1
                    .is_some()
            );
        }
        for value in [quote!(10_000u64), quote!(10_000usize)] {
            check_value("capacity", &value).unwrap();
            let (options, error) = parse_options(&quote!(capacity = #value)).unwrap();
            assert_eq!((options.capacity, error.is_none()), (Some(10_000), true));
        }
    }
}
