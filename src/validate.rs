//! Input validation, done before anything is sent: nothing reaches the network for a rejected
//! argument.

use serde_json::value::RawValue;

use crate::error::{Error, ErrorCode, Result};

/// Longest identifier (thing name, job id, execution id) accepted.
pub const MAX_IDENTIFIER_LEN: usize = 128;
/// Longest client token accepted (bytes of printable ASCII).
pub const MAX_CLIENT_TOKEN_LEN: usize = 64;
/// Longest free-text label (event type, app id) accepted.
pub const MAX_LABEL_LEN: usize = 128;
/// Deepest nesting accepted in a `*_json` argument, the object itself being level 1
/// (`{"a":[1]}` is 2 levels deep). The emulator, like serde_json, refuses request bodies
/// nested 128 levels or more, and a request wraps the argument in up to two more levels
/// (`{"state":{"reported":...}}`): 100 stays clear of that with a round number.
pub const MAX_JSON_DEPTH: usize = 100;

/// Checks an identifier that goes into a URL path or names a device:
/// `[A-Za-z0-9._:-]{1,128}`, and not `.` or `..`.
pub fn identifier<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    let valid_chars = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if value.is_empty() || value.len() > MAX_IDENTIFIER_LEN || !valid_chars {
        return Err(Error::invalid_argument(format!(
            "{what} must match [A-Za-z0-9._:-]{{1,{MAX_IDENTIFIER_LEN}}} (got {} bytes{})",
            value.len(),
            if valid_chars {
                ""
            } else {
                " with other characters"
            }
        )));
    }
    if value == "." || value == ".." {
        return Err(Error::invalid_argument(format!(
            "{what} must not be '.' or '..'"
        )));
    }
    Ok(value)
}

/// Checks an optional client token: at most 64 bytes of printable ASCII.
pub fn client_token(value: Option<&str>) -> Result<Option<&str>> {
    if let Some(token) = value {
        if token.is_empty()
            || token.len() > MAX_CLIENT_TOKEN_LEN
            || !token.bytes().all(|b| (0x20..=0x7e).contains(&b))
        {
            return Err(Error::invalid_argument(format!(
                "client_token must be 1 to {MAX_CLIENT_TOKEN_LEN} bytes of printable ASCII (got {} bytes)",
                token.len()
            )));
        }
    }
    Ok(value)
}

/// Checks a free-text label such as an event type or app id: 1 to 128 bytes, no control
/// characters.
pub fn label<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() || value.len() > MAX_LABEL_LEN || value.chars().any(char::is_control) {
        return Err(Error::invalid_argument(format!(
            "{what} must be 1 to {MAX_LABEL_LEN} bytes without control characters"
        )));
    }
    Ok(value)
}

/// JSON text that has been checked to be a JSON object nested at most [`MAX_JSON_DEPTH`]
/// levels deep. It is sent verbatim, without being re-serialised.
#[derive(Debug, Clone, Copy)]
pub struct JsonObject<'a>(&'a RawValue);

impl<'a> JsonObject<'a> {
    /// Parses `text` and checks that it is a single JSON object, without lone surrogate
    /// escapes, nested at most [`MAX_JSON_DEPTH`] levels deep (`InvalidJson` otherwise).
    pub fn parse(what: &str, text: &'a str) -> Result<JsonObject<'a>> {
        let raw: &RawValue = serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorCode::InvalidJson,
                format!("{what} is not valid JSON: {e}"),
            )
        })?;
        if !raw.get().starts_with('{') {
            return Err(Error::new(
                ErrorCode::InvalidJson,
                format!("{what} must be a JSON object"),
            ));
        }
        // The raw check does not limit nesting; serde_json's tree parse (and a server built
        // on it) does. Check it the same way whatever the text holds.
        if nests_deeper_than(raw.get(), MAX_JSON_DEPTH) {
            return Err(Error::new(
                ErrorCode::InvalidJson,
                format!("{what} nests deeper than {MAX_JSON_DEPTH} levels"),
            ));
        }
        // The raw check does not decode `\u` escapes; a lone surrogate such as "\ud800" is
        // not Unicode and strict servers refuse it. Decode fully only when escapes are present.
        if raw.get().contains("\\u") {
            serde_json::from_str::<serde_json::Value>(raw.get()).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidJson,
                    format!("{what} is not valid JSON: {e}"),
                )
            })?;
        }
        Ok(JsonObject(raw))
    }

    /// Parses an optional JSON object.
    pub fn parse_opt(what: &str, text: Option<&'a str>) -> Result<Option<JsonObject<'a>>> {
        text.map(|t| JsonObject::parse(what, t)).transpose()
    }

    /// The JSON text.
    pub fn as_str(&self) -> &'a str {
        self.0.get()
    }
}

/// True when valid JSON `text` has more than `max` levels of `[`/`{` nesting.
///
/// Text too short or with too few opening brackets to nest that deep (every ordinary report)
/// is answered without tracking strings; otherwise one pass over the bytes, skipping string
/// contents.
fn nests_deeper_than(text: &str, max: usize) -> bool {
    let bytes = text.as_bytes();
    // Each level takes an opening and a closing byte.
    if bytes.len() <= 2 * max {
        return false;
    }
    if bytes.iter().filter(|&&b| b == b'[' || b == b'{').count() <= max {
        return false;
    }
    // Most bytes matter to neither state: one table lookup and a well-predicted branch each.
    const fn table(special: &[u8]) -> [bool; 256] {
        let mut t = [false; 256];
        let mut i = 0;
        while i < special.len() {
            t[special[i] as usize] = true;
            i += 1;
        }
        t
    }
    const STRUCTURAL: [bool; 256] = table(b"\"[]{}");
    const IN_STRING: [bool; 256] = table(b"\"\\");
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if !STRUCTURAL[usize::from(b)] {
            continue;
        }
        match b {
            b'"' => {
                // Skip the string: to its closing quote, stepping over escaped characters.
                while let Some(&c) = bytes.get(i) {
                    i += 1;
                    if IN_STRING[usize::from(c)] {
                        if c == b'"' {
                            break;
                        }
                        i += 1;
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            _ => depth = depth.saturating_sub(1),
        }
    }
    false
}

impl serde::Serialize for JsonObject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["thermostat-001", "a", "A.b_c:d-e", &"x".repeat(128), "..."] {
            assert!(identifier("thing_name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "x?y",
            "a b",
            "é",
            &"x".repeat(129),
            "a%2F",
        ] {
            let err = identifier("thing_name", bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn client_tokens() {
        assert!(client_token(None).is_ok());
        assert!(client_token(Some("tok-001")).is_ok());
        assert!(client_token(Some(&"t".repeat(64))).is_ok());
        assert!(client_token(Some(&"t".repeat(65))).is_err());
        assert!(client_token(Some("")).is_err());
        assert!(client_token(Some("tab\there")).is_err());
        assert!(client_token(Some("ü")).is_err());
    }

    #[test]
    fn json_objects() {
        assert!(JsonObject::parse("x", r#"{"k":"caf\u00e9 \ud83d\ude00"}"#).is_ok());
        assert_eq!(
            JsonObject::parse("x", " {\"a\": 1} ").unwrap().as_str(),
            "{\"a\": 1}"
        );
        for (text, code) in [
            ("[1]", ErrorCode::InvalidJson),
            ("1", ErrorCode::InvalidJson),
            ("\"s\"", ErrorCode::InvalidJson),
            ("null", ErrorCode::InvalidJson),
            ("{", ErrorCode::InvalidJson),
            ("{} {}", ErrorCode::InvalidJson),
            ("", ErrorCode::InvalidJson),
            (r#"{"k":"\ud800"}"#, ErrorCode::InvalidJson),
        ] {
            assert_eq!(
                JsonObject::parse("x", text).unwrap_err().code(),
                code,
                "{text}"
            );
        }
    }

    #[test]
    fn labels() {
        assert!(label("event_type", "highTemperature").is_ok());
        assert!(label("event_type", "").is_err());
        assert!(label("event_type", "a\nb").is_err());
        assert!(label("event_type", &"e".repeat(128)).is_ok());
        assert!(label("event_type", &"e".repeat(129)).is_err());
    }

    /// An object nested `depth` levels deep (the object itself is level 1), through objects
    /// or arrays, with `inner` at the bottom.
    fn nested(depth: usize, arrays: bool, inner: &str) -> String {
        let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
        format!(
            "{{\"k\":{}{inner}{}}}",
            open.repeat(depth - 1),
            close.repeat(depth - 1)
        )
    }

    #[test]
    fn nesting_is_limited_with_or_without_escapes() {
        for arrays in [false, true] {
            for inner in ["1", "\"caf\\u00e9\"", "[]"] {
                let inner_depth = usize::from(inner == "[]");
                let at_limit = nested(MAX_JSON_DEPTH - inner_depth, arrays, inner);
                let over = nested(MAX_JSON_DEPTH + 1 - inner_depth, arrays, inner);
                assert!(
                    JsonObject::parse("x", &at_limit).is_ok(),
                    "{arrays} {inner}: {at_limit}"
                );
                let err = JsonObject::parse("x", &over).unwrap_err();
                assert_eq!(err.code(), ErrorCode::InvalidJson, "{arrays} {inner}");
                assert!(err.message().contains("100 levels"), "{}", err.message());
            }
        }
        // Far deeper: refused, without recursion.
        let deep = nested(if cfg!(miri) { 2_000 } else { 200_000 }, true, "1");
        assert_eq!(
            JsonObject::parse("x", &deep).unwrap_err().code(),
            ErrorCode::InvalidJson
        );
    }

    #[test]
    fn brackets_in_strings_are_not_nesting() {
        for text in [
            format!("{{\"a\":\"{}\"}}", "[{".repeat(500)),
            format!("{{\"a\":\"\\\"{}\", \"b\":1}}", "[{".repeat(500)),
            format!("{{\"{}\":[[1]]}}", "{".repeat(500)),
            format!("{{\"a\":\"\\\\\",\"b\":\"{}\"}}", "[".repeat(500)),
        ] {
            assert!(JsonObject::parse("x", &text).is_ok(), "{text}");
        }
        // Many brackets side by side are not deep either.
        let wide = format!("{{\"a\":[{}]}}", vec!["[{}]"; 1000].join(","));
        assert!(JsonObject::parse("x", &wide).is_ok());
    }

    /// Validation cost of a typical report object (the hot path of every report). Not a
    /// pass/fail test: `cargo test --release -p fleets --lib -- --ignored --nocapture
    /// json_object_timing` prints ns per call.
    #[test]
    #[ignore]
    fn json_object_timing() {
        let typical = r#"{"temperature":21.5,"humidity":48,"mode":"eco","fan":{"speed":3,"on":true},"fw":"1.4.2-rc1","rssi":-67}"#;
        let escaped =
            r#"{"temperature":21.5,"humidity":48,"mode":"\u00e9co","fan":{"speed":3,"on":true}}"#;
        let large = format!(
            "{{{}}}",
            (0..100)
                .map(|i| format!("\"sensor{i}\":{{\"v\":[{i},2,3],\"ok\":true}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        for (name, text, rounds) in [
            ("typical", typical, 2_000_000),
            ("escaped", escaped, 500_000),
            ("large", large.as_str(), 20_000),
        ] {
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(JsonObject::parse("x", std::hint::black_box(text)).unwrap());
            }
            let ns = started.elapsed().as_nanos() / rounds;
            println!("JsonObject::parse {name} ({} bytes): {ns} ns", text.len());
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(nests_deeper_than(
                    std::hint::black_box(text),
                    MAX_JSON_DEPTH,
                ));
            }
            let ns = started.elapsed().as_nanos() / rounds;
            println!("  of which the nesting check: {ns} ns");
        }
    }
}
