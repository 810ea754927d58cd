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

/// JSON text that has been checked to be a JSON object. It is sent verbatim, without being
/// re-serialised.
#[derive(Debug, Clone, Copy)]
pub struct JsonObject<'a>(&'a RawValue);

impl<'a> JsonObject<'a> {
    /// Parses `text` and checks that it is a single JSON object.
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
}
