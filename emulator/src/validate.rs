//! Field extraction and validation for request bodies (pure functions).
//!
//! Every failure is a 400 `InvalidRequest` naming the offending field.

use crate::error::ApiError;
use serde_json::{Map, Value};

/// Maximum length in bytes of a `clientToken`.
pub const MAX_CLIENT_TOKEN_BYTES: usize = 64;
/// Maximum length of a thing name, job id or execution id.
pub const MAX_ID_BYTES: usize = 128;

/// A JSON object body.
pub type Obj = Map<String, Value>;

/// True when `s` is a valid thing name / job id: `[A-Za-z0-9._:-]{1,128}`, not `.` or `..`.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_BYTES
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A required string field.
pub fn req_str<'a>(o: &'a Obj, field: &str) -> Result<&'a str, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(format!(
            "missing required field `{field}`"
        ))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(format!("`{field}` must be a string"))),
    }
}

/// An optional string field (`null` counts as absent).
pub fn opt_str<'a>(o: &'a Obj, field: &str) -> Result<Option<&'a str>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("`{field}` must be a string"))),
    }
}

/// A required object field.
pub fn req_obj<'a>(o: &'a Obj, field: &str) -> Result<&'a Obj, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(format!(
            "missing required field `{field}`"
        ))),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(ApiError::invalid(format!(
            "`{field}` must be a JSON object"
        ))),
    }
}

/// An optional object field (`null` counts as absent).
pub fn opt_obj<'a>(o: &'a Obj, field: &str) -> Result<Option<&'a Obj>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ApiError::invalid(format!(
            "`{field}` must be a JSON object"
        ))),
    }
}

/// An optional non-negative integer field.
pub fn opt_u64(o: &Obj, field: &str) -> Result<Option<u64>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("`{field}` must be a non-negative integer"))),
        Some(_) => Err(ApiError::invalid(format!(
            "`{field}` must be a non-negative integer"
        ))),
    }
}

/// A required non-negative integer field.
pub fn req_u64(o: &Obj, field: &str) -> Result<u64, ApiError> {
    opt_u64(o, field)?.ok_or_else(|| ApiError::invalid(format!("missing required field `{field}`")))
}

/// An optional boolean field.
pub fn opt_bool(o: &Obj, field: &str) -> Result<Option<bool>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(format!("`{field}` must be a boolean"))),
    }
}

/// The required `thingName` field, checked against the identifier rule.
pub fn thing_name(o: &Obj) -> Result<&str, ApiError> {
    let name = req_str(o, "thingName")?;
    check_identifier("thingName", name)?;
    Ok(name)
}

/// Checks an identifier (thing name, job id) and names the field in the error.
pub fn check_identifier(field: &str, s: &str) -> Result<(), ApiError> {
    if is_identifier(s) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "`{field}` must match [A-Za-z0-9._:-]{{1,128}} and not be `.` or `..`"
        )))
    }
}

/// The optional `clientToken` (a string of at most 64 bytes).
pub fn client_token(o: &Obj) -> Result<Option<&str>, ApiError> {
    let t = opt_str(o, "clientToken")?;
    if let Some(t) = t {
        if t.len() > MAX_CLIENT_TOKEN_BYTES {
            return Err(ApiError::invalid(format!(
                "`clientToken` is longer than {MAX_CLIENT_TOKEN_BYTES} bytes"
            )));
        }
    }
    Ok(t)
}

/// The `clientToken` of a body if it is a usable string, for echoing in error bodies.
pub fn echo_token(o: &Obj) -> Option<&str> {
    match o.get("clientToken") {
        Some(Value::String(s)) if s.len() <= MAX_CLIENT_TOKEN_BYTES => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("thermostat-001"));
        assert!(is_identifier("a.b_c:d-E9"));
        assert!(is_identifier(&"x".repeat(128)));
        assert!(!is_identifier(&"x".repeat(129)));
        assert!(!is_identifier(""));
        assert!(!is_identifier("."));
        assert!(!is_identifier(".."));
        assert!(!is_identifier("a/b"));
        assert!(!is_identifier("a b"));
        assert!(!is_identifier("é"));
    }

    #[test]
    fn fields() {
        let o =
            obj(json!({"s": "x", "n": 5, "f": 1.5, "neg": -1, "o": {}, "nul": null, "b": true}));
        assert_eq!(req_str(&o, "s").unwrap(), "x");
        assert_eq!(req_str(&o, "n").unwrap_err().status, 400);
        assert!(req_str(&o, "missing")
            .unwrap_err()
            .message
            .contains("missing"));
        assert!(req_str(&o, "nul").is_err());
        assert_eq!(opt_str(&o, "nul").unwrap(), None);
        assert_eq!(opt_u64(&o, "n").unwrap(), Some(5));
        assert!(opt_u64(&o, "f").is_err());
        assert!(opt_u64(&o, "neg").is_err());
        assert!(opt_u64(&o, "s").is_err());
        assert_eq!(req_u64(&o, "n").unwrap(), 5);
        assert!(req_u64(&o, "missing").is_err());
        assert!(req_obj(&o, "o").is_ok());
        assert!(req_obj(&o, "s").is_err());
        assert_eq!(opt_obj(&o, "missing").unwrap(), None);
        assert_eq!(opt_bool(&o, "b").unwrap(), Some(true));
        assert!(opt_bool(&o, "n").is_err());
    }

    #[test]
    fn tokens_and_names() {
        assert_eq!(
            client_token(&obj(json!({"clientToken": "t"}))).unwrap(),
            Some("t")
        );
        assert!(client_token(&obj(json!({"clientToken": "x".repeat(65)}))).is_err());
        assert!(client_token(&obj(json!({"clientToken": 5}))).is_err());
        assert_eq!(
            echo_token(&obj(json!({"clientToken": "x".repeat(65)}))),
            None
        );
        assert_eq!(
            thing_name(&obj(json!({"thingName": "t-1"}))).unwrap(),
            "t-1"
        );
        assert!(thing_name(&obj(json!({"thingName": "bad name"}))).is_err());
        assert!(thing_name(&obj(json!({}))).is_err());
    }
}
