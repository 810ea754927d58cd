//! Shadow document logic: deep merge with null deletes, delta computation, JSON equality.

use serde_json::{Map, Value};

/// Deep-merges `patch` into `target`, AWS IoT Device Shadow style:
/// a `null` value deletes the key, objects merge recursively, anything else
/// (scalars, arrays) replaces the old value as a whole.
pub fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => match target.get_mut(k) {
                Some(Value::Object(t)) => merge(t, p),
                _ => {
                    target.insert(k.clone(), strip_nulls(v));
                }
            },
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A copy of `v` with `null` members of objects removed, recursively
/// (what merging `v` into an empty object yields). Arrays are kept as they are.
pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The delta: the desired fields that are missing from `reported` or differ from it,
/// recursively for objects. Arrays and scalars are compared as whole values.
/// An empty map means the shadow is in sync.
pub fn delta(desired: &Map<String, Value>, reported: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, d) in desired {
        match (d, reported.get(k)) {
            (Value::Object(dm), Some(Value::Object(rm))) => {
                let sub = delta(dm, rm);
                if !sub.is_empty() {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            (_, Some(r)) if json_eq(d, r) => {}
            _ => {
                out.insert(k.clone(), d.clone());
            }
        }
    }
    out
}

/// JSON equality where numbers compare by value (`24` equals `24.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Formats Unix seconds as an RFC 3339 UTC timestamp, e.g. `2026-05-27T10:05:00Z`.
pub fn rfc3339(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merge_adds_replaces_and_deletes() {
        let mut t = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "arr": [1, 2], "gone": true}));
        merge(
            &mut t,
            &obj(
                json!({"a": 5, "b": {"c": null, "e": 4}, "arr": [3], "gone": null, "new": {"x": null, "y": 1}}),
            ),
        );
        assert_eq!(
            Value::Object(t),
            json!({"a": 5, "b": {"d": 3, "e": 4}, "arr": [3], "new": {"y": 1}})
        );
    }

    #[test]
    fn merge_object_over_scalar_and_scalar_over_object() {
        let mut t = obj(json!({"a": 1, "b": {"c": 1}}));
        merge(&mut t, &obj(json!({"a": {"z": 1}, "b": 7})));
        assert_eq!(Value::Object(t), json!({"a": {"z": 1}, "b": 7}));
    }

    #[test]
    fn merge_deleting_missing_key_is_noop() {
        let mut t = obj(json!({"a": 1}));
        merge(&mut t, &obj(json!({"zz": null})));
        assert_eq!(Value::Object(t), json!({"a": 1}));
    }

    #[test]
    fn delta_rules() {
        // missing and different scalars
        assert_eq!(
            Value::Object(delta(
                &obj(json!({"t": 24, "m": "eco"})),
                &obj(json!({"t": 21.5, "m": "eco"}))
            )),
            json!({"t": 24})
        );
        // nested objects: only differing leaves
        assert_eq!(
            Value::Object(delta(
                &obj(json!({"cfg": {"a": 1, "b": {"c": 2, "d": 3}}})),
                &obj(json!({"cfg": {"a": 1, "b": {"c": 2, "d": 4}, "extra": 9}}))
            )),
            json!({"cfg": {"b": {"d": 3}}})
        );
        // arrays as whole values
        assert_eq!(
            Value::Object(delta(
                &obj(json!({"l": [1, 2, 3]})),
                &obj(json!({"l": [1, 2]}))
            )),
            json!({"l": [1, 2, 3]})
        );
        assert!(delta(&obj(json!({"l": [1, 2]})), &obj(json!({"l": [1, 2]}))).is_empty());
        // desired object vs reported scalar
        assert_eq!(
            Value::Object(delta(&obj(json!({"o": {"a": 1}})), &obj(json!({"o": 1})))),
            json!({"o": {"a": 1}})
        );
        // in sync (numbers by value) -> empty
        assert!(delta(
            &obj(json!({"t": 24, "o": {"x": true}})),
            &obj(json!({"t": 24.0, "o": {"x": true}, "h": 5}))
        )
        .is_empty());
        // reported-only keys never appear
        assert!(delta(&Map::new(), &obj(json!({"a": 1}))).is_empty());
    }

    #[test]
    fn json_eq_numbers() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!(-3), &json!(-3)));
        assert!(!json_eq(&json!(1), &json!(2)));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(json_eq(&json!([1, {"a": 2}]), &json!([1.0, {"a": 2.0}])));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn rfc3339_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_779_876_300), "2026-05-27T10:05:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
