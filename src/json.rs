//! Reading values out of JSON documents with RFC 6901 JSON Pointers, for C code that has no
//! JSON parser of its own.
//!
//! The document is checked once, then walked one pointer token at a time over borrowed
//! slices (serde_json's `RawValue`): no tree of the document is built, a value comes back as
//! the exact text it has in the document, and the walk does not recurse, so nesting depth is
//! not limited.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorCode, Result};

/// The exact text of the value `pointer` names in `document` (`""` is the whole document),
/// without the whitespace around it.
///
/// Pointers follow RFC 6901: `~1` is `/` and `~0` is `~` inside a token; an array index is
/// `0` or a decimal number without leading zeros (`-` names no element). When an object has
/// a key twice, the last one counts, as for most JSON parsers.
///
/// Errors: `InvalidArgument` for a pointer that is not empty and does not start with `/`, or
/// has a `~` not followed by `0` or `1`; `InvalidJson` when the document is not JSON;
/// `JsonNoValue` when the pointer names nothing.
pub fn lookup<'a>(document: &'a str, pointer: &str) -> Result<&'a str> {
    let tokens = parse_pointer(pointer)?;
    let mut value: &'a RawValue = serde_json::from_str(document).map_err(|e| {
        Error::new(
            ErrorCode::InvalidJson,
            format!("document is not valid JSON: {e}"),
        )
    })?;
    for token in &tokens {
        value = child(value, token)?.ok_or_else(|| {
            Error::new(
                ErrorCode::JsonNoValue,
                format!("JSON pointer {pointer:?} names no value"),
            )
        })?;
    }
    Ok(value.get())
}

/// The unescaped tokens of a JSON pointer.
fn parse_pointer(pointer: &str) -> Result<Vec<Cow<'_, str>>> {
    let Some(rest) = pointer.strip_prefix('/') else {
        if pointer.is_empty() {
            return Ok(Vec::new());
        }
        return Err(Error::invalid_argument(format!(
            "JSON pointer {pointer:?} must be empty or start with '/'"
        )));
    };
    rest.split('/')
        .map(|token| {
            if !token.contains('~') {
                return Ok(Cow::Borrowed(token));
            }
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(Error::invalid_argument(format!(
                            "JSON pointer {pointer:?} has a '~' not followed by 0 or 1"
                        )))
                    }
                }
            }
            Ok(Cow::Owned(out))
        })
        .collect()
}

/// The member `token` of an object or the element `token` of an array; None when there is
/// none (or `value` is a scalar).
fn child<'a>(value: &'a RawValue, token: &str) -> Result<Option<&'a RawValue>> {
    let text = value.get();
    let mut de = serde_json::Deserializer::from_str(text);
    let found = match text.as_bytes().first() {
        Some(b'{') => de.deserialize_map(Member(token)),
        Some(b'[') => match array_index(token) {
            Some(index) => de.deserialize_seq(Element(index)),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    // The document was checked whole; what can still fail here is decoding a key (a lone
    // surrogate escape, which the check does not decode).
    found.map_err(|e| {
        Error::new(
            ErrorCode::InvalidJson,
            format!("document is not valid JSON: {e}"),
        )
    })
}

/// An RFC 6901 array index: `0`, or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// Finds the value of one key in an object, skipping the others without building them.
struct Member<'t>(&'t str);

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_it) = map.next_key_seed(KeyIs(self.0))? {
            if is_it {
                found = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Compares a key with the wanted one, without allocating when it has no escapes.
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Finds one element of an array, skipping the others without building them.
struct Element(usize);

impl<'de> Visitor<'de> for Element {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        for _ in 0..self.0 {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(None);
            }
        }
        let found = seq.next_element()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(found)
    }
}

/// The kind of JSON value `text` (a checked value) is, for messages.
fn kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

fn is_number(text: &str) -> bool {
    kind(text) == "a number"
}

fn wrong_type(pointer: &str, expected: &str, found: &str) -> Error {
    Error::new(
        ErrorCode::JsonType,
        format!("value at {pointer:?} is {found}, not {expected}"),
    )
}

/// The exact JSON text of the value at `pointer`, as [`lookup`].
pub fn get_raw(document: &str, pointer: &str) -> Result<String> {
    lookup(document, pointer).map(str::to_owned)
}

/// The unescaped string at `pointer`. `InvalidJson` when it holds a lone surrogate escape
/// (`"\ud800"`), which is not Unicode.
pub fn get_string(document: &str, pointer: &str) -> Result<String> {
    let text = lookup(document, pointer)?;
    if kind(text) != "a string" {
        return Err(wrong_type(pointer, "a string", kind(text)));
    }
    serde_json::from_str(text).map_err(|e| {
        Error::new(
            ErrorCode::InvalidJson,
            format!("string at {pointer:?} is not valid Unicode: {e}"),
        )
    })
}

/// The number at `pointer` as the nearest double. A number beyond the range of a double
/// (`1e400`) is a type error.
pub fn get_f64(document: &str, pointer: &str) -> Result<f64> {
    let text = lookup(document, pointer)?;
    if !is_number(text) {
        return Err(wrong_type(pointer, "a number", kind(text)));
    }
    // Rust's parser rounds correctly; JSON number syntax is a subset of what it accepts.
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(wrong_type(
            pointer,
            "a number in the range of a double",
            "a number out of that range",
        )),
    }
}

/// The integer at `pointer`: a number written without fraction or exponent that fits in 64
/// bits (`-0` is 0). `1.0`, `1e2` and `9223372036854775808` are type errors.
pub fn get_i64(document: &str, pointer: &str) -> Result<i64> {
    let text = lookup(document, pointer)?;
    let expected = "an integer that fits in 64 bits";
    if !is_number(text) {
        return Err(wrong_type(pointer, expected, kind(text)));
    }
    if text.contains(['.', 'e', 'E']) {
        return Err(wrong_type(
            pointer,
            expected,
            "a number with a fraction or exponent",
        ));
    }
    text.parse::<i64>()
        .map_err(|_| wrong_type(pointer, expected, "an integer out of that range"))
}

/// The boolean at `pointer`.
pub fn get_bool(document: &str, pointer: &str) -> Result<bool> {
    match lookup(document, pointer)? {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(wrong_type(pointer, "a boolean", kind(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHADOW: &str = r#"{"reported":{"temperature":21.5},"desired":{"targetTemperature":24},
        "delta":{"targetTemperature":24,"a/b":{"m~n":true}},"version":5,"name":"caf\u00e9","list":[1,2]}"#;

    #[test]
    fn pointers() {
        assert_eq!(get_i64(SHADOW, "/delta/targetTemperature").unwrap(), 24);
        assert_eq!(get_f64(SHADOW, "/reported/temperature").unwrap(), 21.5);
        assert_eq!(get_f64(SHADOW, "/version").unwrap(), 5.0);
        assert!(get_bool(SHADOW, "/delta/a~1b/m~0n").unwrap());
        assert_eq!(get_string(SHADOW, "/name").unwrap(), "café");
        assert_eq!(get_raw(SHADOW, "/list").unwrap(), "[1,2]");
        assert_eq!(get_i64(SHADOW, "/list/1").unwrap(), 2);
        assert!(get_raw(SHADOW, "").unwrap().starts_with('{'));
    }

    #[test]
    fn errors() {
        let code = |r: Result<i64>| r.unwrap_err().code();
        assert_eq!(code(get_i64(SHADOW, "/nope")), ErrorCode::JsonNoValue);
        assert_eq!(
            code(get_i64(SHADOW, "/reported/temperature")),
            ErrorCode::JsonType
        );
        assert_eq!(code(get_i64(SHADOW, "/name")), ErrorCode::JsonType);
        assert_eq!(code(get_i64("{", "/a")), ErrorCode::InvalidJson);
        assert_eq!(code(get_i64(SHADOW, "version")), ErrorCode::InvalidArgument);
        assert_eq!(
            get_string(SHADOW, "/version").unwrap_err().code(),
            ErrorCode::JsonType
        );
        assert_eq!(
            get_bool(SHADOW, "/list").unwrap_err().code(),
            ErrorCode::JsonType
        );
    }

    #[test]
    fn values_are_the_original_text() {
        let doc = r#"{"b":1, "a":{ "z" : [1, 2.50,  -0], "y":"caf\u00e9" },
            "big":12345678901234567890123, "neg":-0, "exp":1E2, "f":1.0, "huge":1e400}"#;
        for (pointer, text) in [
            ("/big", "12345678901234567890123"),
            ("/neg", "-0"),
            ("/exp", "1E2"),
            ("/f", "1.0"),
            ("/huge", "1e400"),
            ("/a", r#"{ "z" : [1, 2.50,  -0], "y":"caf\u00e9" }"#),
            ("/a/z", "[1, 2.50,  -0]"),
            ("/a/z/1", "2.50"),
            ("/a/z/2", "-0"),
            ("/a/y", r#""caf\u00e9""#),
        ] {
            assert_eq!(get_raw(doc, pointer).unwrap(), text, "{pointer}");
        }
        // The whole document keeps its key order and inner whitespace, without the
        // whitespace around it.
        assert_eq!(
            get_raw(" {\"b\":1,\n \"a\":2} \n", "").unwrap(),
            "{\"b\":1,\n \"a\":2}"
        );
        assert_eq!(get_string(doc, "/a/y").unwrap(), "café");
        assert_eq!(get_raw("{\"a\": 1 ,\"b\":[ 2\n] }", "/a").unwrap(), "1");
        assert_eq!(get_raw("{\"a\": 1 ,\"b\":[ 2\n] }", "/b/0").unwrap(), "2");
    }

    #[test]
    fn integers_and_doubles() {
        let doc = r#"{"max":9223372036854775807,"min":-9223372036854775808,
            "over":9223372036854775808,"under":-9223372036854775809,"neg":-0,
            "f":1.0,"e":1e2,"half":0.5,"huge":1e400,"tiny":-1e-400,
            "precise":0.30000000000000004}"#;
        assert_eq!(get_i64(doc, "/max").unwrap(), i64::MAX);
        assert_eq!(get_i64(doc, "/min").unwrap(), i64::MIN);
        assert_eq!(get_i64(doc, "/neg").unwrap(), 0);
        for pointer in ["/over", "/under", "/f", "/e", "/half", "/huge"] {
            assert_eq!(
                get_i64(doc, pointer).unwrap_err().code(),
                ErrorCode::JsonType,
                "{pointer}"
            );
        }
        assert_eq!(get_f64(doc, "/over").unwrap(), 9223372036854775808.0);
        assert_eq!(get_f64(doc, "/e").unwrap(), 100.0);
        assert_eq!(get_f64(doc, "/neg").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(
            get_f64(doc, "/tiny").unwrap().to_bits(),
            (-0.0f64).to_bits()
        );
        assert_eq!(get_f64(doc, "/precise").unwrap(), 0.1 + 0.2);
        assert_eq!(
            get_f64(doc, "/huge").unwrap_err().code(),
            ErrorCode::JsonType
        );
    }

    #[test]
    fn pointer_syntax_follows_rfc_6901() {
        let doc = r#"{"":0,"a/b":1,"m~n":2,"~1":3,"c%d":4," ":5,"x":{"":6},
            "list":[10,11,12],"caf\u00e9":7,"k\/e\"y":8,"dup":1,"dup":2}"#;
        for (pointer, value) in [
            ("/", 0),
            ("/a~1b", 1),
            ("/m~0n", 2),
            ("/~01", 3),
            ("/c%d", 4),
            ("/ ", 5),
            ("/x/", 6),
            ("/list/0", 10),
            ("/list/2", 12),
            ("/café", 7),
            ("/k~1e\"y", 8),
            ("/dup", 2),
        ] {
            assert_eq!(get_i64(doc, pointer).unwrap(), value, "{pointer}");
        }
        for pointer in [
            "/list/3",
            "/list/01",
            "/list/-",
            "/list/+1",
            "/list/-1",
            "/list/ 1",
            "/list/1.0",
            "/list/18446744073709551616",
            "/list/0/x",
            "/a~1b/c",
            "/x//",
            "/nope",
            "/a/b",
        ] {
            assert_eq!(
                get_raw(doc, pointer).unwrap_err().code(),
                ErrorCode::JsonNoValue,
                "{pointer}"
            );
        }
        for pointer in ["/m~2n", "/a~", "/~", "list", " /list"] {
            assert_eq!(
                get_raw(doc, pointer).unwrap_err().code(),
                ErrorCode::InvalidArgument,
                "{pointer}"
            );
        }
    }

    #[test]
    fn documents_are_checked_whole() {
        for doc in [
            r#"{"a":1,"b":}"#,
            r#"{"a":1} x"#,
            r#"{"a":1,}"#,
            r#"[1,2"#,
            "",
            "  ",
            r#"{"a":"\x"}"#,
        ] {
            assert_eq!(
                get_raw(doc, "/a").unwrap_err().code(),
                ErrorCode::InvalidJson,
                "{doc}"
            );
        }
        // A scalar document, and deep nesting: the walk does not recurse.
        assert_eq!(get_i64(" 7 ", "").unwrap(), 7);
        // Miri interprets ~1000x slower: a shallower document still shows the walk is flat.
        let depth = if cfg!(miri) { 2_000 } else { 100_000 };
        let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            get_i64(&deep, "/0/0/0").unwrap_err().code(),
            ErrorCode::JsonType
        );
        assert_eq!(
            get_raw(&deep, "/0/0/1").unwrap_err().code(),
            ErrorCode::JsonNoValue
        );
    }

    #[test]
    fn strings_that_are_not_unicode() {
        let doc = r#"{"lone":"\ud800","ok":"\ud83d\ude00"}"#;
        assert_eq!(get_raw(doc, "/lone").unwrap(), r#""\ud800""#);
        assert_eq!(get_string(doc, "/ok").unwrap(), "\u{1f600}");
        assert_eq!(
            get_string(doc, "/lone").unwrap_err().code(),
            ErrorCode::InvalidJson
        );
    }
}
