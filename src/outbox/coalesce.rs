//! Coalescing queued shadow reports: several reported-state patches of one thing become one
//! patch that leaves the shadow exactly as sending them one by one would.
//!
//! The server deep-merges `state.reported` (RFC 7386 JSON merge patch: objects merge
//! recursively, `null` deletes a key, anything else replaces the value). Two patches `a` then
//! `b` compose into one patch `c` with `apply(apply(s, a), b) == apply(s, c)` for every shadow
//! `s`, except in one case: `a` sets a key to a non-object (or deletes it) and `b` then merges
//! an object into that key. Sequentially the old object under that key is gone; in one patch
//! it would survive. Such a pair is not composed: the report is sent on its own.

use serde_json::{Map, Value};

/// Composes patch `b` after patch `a` into `a`; returns false (leaving `a` unusable) when no
/// single patch has the same effect.
pub(crate) fn compose(a: &mut Map<String, Value>, b: Map<String, Value>) -> bool {
    for (key, later) in b {
        match later {
            Value::Object(later_object) => match a.get_mut(&key) {
                None => {
                    a.insert(key, Value::Object(later_object));
                }
                Some(Value::Object(earlier_object)) => {
                    if !compose(earlier_object, later_object) {
                        return false;
                    }
                }
                // The earlier patch replaced or deleted what the later one merges into.
                Some(_) => return false,
            },
            // A scalar, an array or null replaces (or deletes) whatever came before.
            other => {
                a.insert(key, other);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the server does with one patch (as the emulator does).
    fn apply(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
        for (k, v) in patch {
            match v {
                Value::Null => {
                    target.remove(k);
                }
                Value::Object(p) => {
                    if !matches!(target.get(k), Some(Value::Object(_))) {
                        target.insert(k.clone(), Value::Object(Map::new()));
                    }
                    if let Some(Value::Object(t)) = target.get_mut(k) {
                        apply(t, p);
                    }
                }
                other => {
                    target.insert(k.clone(), other.clone());
                }
            }
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn composed_patch_equals_sequential_application() {
        let shadows = [
            json!({}),
            json!({"a": 1, "b": {"x": 1, "y": 2}, "c": [1], "d": "keep"}),
            json!({"a": {"deep": true}, "b": 5, "e": {"f": {"g": 1}}}),
        ];
        let patches = [
            json!({"a": 2}),
            json!({"a": null}),
            json!({"b": {"x": null, "z": 3}}),
            json!({"b": {"y": {"n": 1}}}),
            json!({"c": [2, 3], "e": {"f": {"g": null, "h": 2}}}),
            json!({"new": {"k": null, "v": 1}}),
            json!({"d": null, "b": null}),
            json!({"e": {"f": 7}}),
        ];
        let mut composed_pairs = 0;
        for s in &shadows {
            for p1 in &patches {
                for p2 in &patches {
                    for p3 in &patches {
                        let mut sequential = obj(s.clone());
                        for p in [p1, p2, p3] {
                            apply(&mut sequential, &obj(p.clone()));
                        }
                        let mut c = obj(p1.clone());
                        if !compose(&mut c, obj(p2.clone())) || !compose(&mut c, obj(p3.clone())) {
                            continue;
                        }
                        composed_pairs += 1;
                        let mut once = obj(s.clone());
                        apply(&mut once, &c);
                        assert_eq!(once, sequential, "{s} <- {p1} {p2} {p3} as {c:?}");
                    }
                }
            }
        }
        assert!(composed_pairs > 1000, "{composed_pairs}");
    }

    #[test]
    fn deletes_survive_composition() {
        let mut c = obj(json!({"a": 1, "b": 2}));
        assert!(compose(&mut c, obj(json!({"a": null}))));
        assert_eq!(Value::Object(c), json!({"a": null, "b": 2}));
    }

    #[test]
    fn object_merged_into_a_replaced_key_is_not_composed() {
        let mut c = obj(json!({"a": 1}));
        assert!(!compose(&mut c, obj(json!({"a": {"x": 1}}))));
        let mut c = obj(json!({"a": null}));
        assert!(!compose(&mut c, obj(json!({"a": {"x": 1}}))));
    }
}
