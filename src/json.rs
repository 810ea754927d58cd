//! Reading values out of JSON documents with RFC 6901 JSON Pointers, for C code that has no
//! JSON parser of its own.

use serde_json::Value;

use crate::error::{Error, ErrorCode, Result};

/// Parses `document` and returns the value `pointer` names (`""` is the whole document).
pub fn lookup(document: &str, pointer: &str) -> Result<Value> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(Error::invalid_argument(format!(
            "JSON pointer {pointer:?} must be empty or start with '/'"
        )));
    }
    let mut root: Value = serde_json::from_str(document).map_err(|e| {
        Error::new(
            ErrorCode::InvalidJson,
            format!("document is not valid JSON: {e}"),
        )
    })?;
    match root.pointer_mut(pointer) {
        Some(value) => Ok(value.take()),
        None => Err(Error::new(
            ErrorCode::JsonNoValue,
            format!("JSON pointer {pointer:?} names no value"),
        )),
    }
}

fn wrong_type(pointer: &str, expected: &str, found: &Value) -> Error {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Error::new(
        ErrorCode::JsonType,
        format!("value at {pointer:?} is {found}, not {expected}"),
    )
}

/// The compact JSON text of the value at `pointer`.
pub fn get_raw(document: &str, pointer: &str) -> Result<String> {
    lookup(document, pointer).map(|v| v.to_string())
}

/// The unescaped string at `pointer`.
pub fn get_string(document: &str, pointer: &str) -> Result<String> {
    match lookup(document, pointer)? {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(pointer, "a string", &other)),
    }
}

/// The number at `pointer` as a double.
pub fn get_f64(document: &str, pointer: &str) -> Result<f64> {
    let value = lookup(document, pointer)?;
    value
        .as_f64()
        .ok_or_else(|| wrong_type(pointer, "a number", &value))
}

/// The integer at `pointer`; a fractional or out-of-range number is a type error.
pub fn get_i64(document: &str, pointer: &str) -> Result<i64> {
    let value = lookup(document, pointer)?;
    value
        .as_i64()
        .ok_or_else(|| wrong_type(pointer, "an integer that fits in 64 bits", &value))
}

/// The boolean at `pointer`.
pub fn get_bool(document: &str, pointer: &str) -> Result<bool> {
    let value = lookup(document, pointer)?;
    value
        .as_bool()
        .ok_or_else(|| wrong_type(pointer, "a boolean", &value))
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
}
