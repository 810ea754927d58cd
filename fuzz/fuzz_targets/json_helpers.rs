//! fleets::json (lookup, get_*) and the fleets_json_* C entries with an arbitrary document
//! and JSON pointer. The C results are checked against the Rust API (same code, same value)
//! and against the buffer rules (out_len, NUL termination, BUFFER_TOO_SMALL, nothing written
//! past out_cap or on failure).
//!
//! Input: byte 0 = buffer shape (see OutBuf::new), then `pointer NUL document`.
#![no_main]

use fleets::ffi::*;
use fleets_fuzz::{check_result, fields, ptr, OutBuf};
use libfuzzer_sys::fuzz_target;

fn code<T>(r: &fleets::Result<T>) -> fleets_result {
    match r {
        Ok(_) => FLEETS_OK,
        Err(e) => e.code() as fleets_result,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest, 2);
    let (pointer, document) = (&f[0], &f[1]);

    // The Rust API directly, on the same text (when it is text).
    let strs = match (pointer, document) {
        (Some(p), Some(d)) => match (p.to_str(), d.to_str()) {
            (Ok(p), Ok(d)) => Some((p, d)),
            _ => None,
        },
        _ => None,
    };
    let rust = strs.map(|(p, d)| {
        let raw = fleets::json::get_raw(d, p);
        let string = fleets::json::get_string(d, p);
        let f64v = fleets::json::get_f64(d, p);
        let i64v = fleets::json::get_i64(d, p);
        let boolv = fleets::json::get_bool(d, p);
        let looked = fleets::json::lookup(d, p);
        assert_eq!(code(&looked), code(&raw));
        if let (Ok(v), Ok(r)) = (&looked, &raw) {
            // The text is a slice of the document itself, one JSON value without the
            // whitespace around it.
            assert_eq!(v, r);
            let start = (v.as_ptr() as usize)
                .checked_sub(d.as_ptr() as usize)
                .expect("a slice of the document");
            assert!(start + v.len() <= d.len(), "a slice of the document");
            let again: &serde_json::value::RawValue =
                serde_json::from_str(v).expect("get_raw output reparses");
            assert_eq!(again.get(), *v, "whitespace around the value");
            if p.is_empty() {
                assert_eq!(*v, d.trim_matches([' ', '\t', '\n', '\r']));
            }
        }
        for e in [&raw.as_ref().err(), &string.as_ref().err()]
            .into_iter()
            .flatten()
        {
            assert!(!e.message().is_empty());
        }
        (raw, string, f64v, i64v, boolv)
    });
    // Expected C result when the arguments reach the Rust API: NULL is NULL_ARGUMENT,
    // non-UTF-8 is INVALID_ARGUMENT (document checked first).
    let pre = if document.is_none() {
        Some(FLEETS_ERR_NULL_ARGUMENT)
    } else if document.as_ref().unwrap().to_str().is_err() {
        Some(FLEETS_ERR_INVALID_ARGUMENT)
    } else if pointer.is_none() {
        Some(FLEETS_ERR_NULL_ARGUMENT)
    } else if pointer.as_ref().unwrap().to_str().is_err() {
        Some(FLEETS_ERR_INVALID_ARGUMENT)
    } else {
        None
    };

    unsafe {
        // Text lookups.
        for (name, which) in [("fleets_json_get", 0), ("fleets_json_get_string", 1)] {
            let mut buf = OutBuf::new(shape);
            let r = if which == 0 {
                fleets_json_get(
                    ptr(document),
                    ptr(pointer),
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                )
            } else {
                fleets_json_get_string(
                    ptr(document),
                    ptr(pointer),
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                )
            };
            check_result(name, r);
            let expected: Option<Result<Vec<u8>, fleets_result>> = rust.as_ref().map(|t| {
                let res = if which == 0 { &t.0 } else { &t.1 };
                match res {
                    Ok(s) => Ok(s.as_bytes().to_vec()),
                    Err(e) => Err(e.code() as fleets_result),
                }
            });
            let pre = pre.or(buf.rejected().then_some(FLEETS_ERR_NULL_ARGUMENT));
            match (&pre, &expected) {
                (Some(p), _) => assert_eq!(r, *p, "{name}: argument check"),
                (None, Some(Err(c))) => {
                    assert_eq!(r, *c, "{name}: same code as the Rust API");
                    buf.assert_untouched(name);
                }
                (None, Some(Ok(text))) => {
                    assert!(
                        r == FLEETS_OK
                            || r == FLEETS_ERR_BUFFER_TOO_SMALL
                            || r == FLEETS_ERR_NULL_ARGUMENT,
                        "{name}: {r}"
                    );
                    buf.check(name, r, Some(text));
                }
                (None, None) => unreachable!(),
            }
            if r != FLEETS_OK && r != FLEETS_ERR_BUFFER_TOO_SMALL && pre.is_some() {
                buf.assert_untouched(name);
            }
        }

        // Scalar lookups: *out written only on success, with the Rust API's value.
        let null_out = shape & 0x80 != 0;
        let mut d = f64::from_bits(0x7FF8_DEAD_BEEF_0001);
        let r = fleets_json_get_f64(
            ptr(document),
            ptr(pointer),
            if null_out {
                std::ptr::null_mut()
            } else {
                &mut d
            },
        );
        check_result("fleets_json_get_f64", r);
        let mut i = 0x5A5A_5A5A_i64;
        let ri = fleets_json_get_i64(
            ptr(document),
            ptr(pointer),
            if null_out {
                std::ptr::null_mut()
            } else {
                &mut i
            },
        );
        check_result("fleets_json_get_i64", ri);
        let mut b = false;
        let bp: *mut bool = &mut b;
        let rb = fleets_json_get_bool(
            ptr(document),
            ptr(pointer),
            if null_out { std::ptr::null_mut() } else { bp },
        );
        check_result("fleets_json_get_bool", rb);
        if let Some(p) = pre {
            for x in [r, ri, rb] {
                assert_eq!(x, p);
            }
        } else if null_out {
            for x in [r, ri, rb] {
                assert_ne!(x, FLEETS_OK);
            }
        } else if let Some((_, _, f64v, i64v, boolv)) = &rust {
            assert_eq!(r, code(f64v));
            assert_eq!(ri, code(i64v));
            assert_eq!(rb, code(boolv));
            match f64v {
                Ok(v) => assert_eq!(d.to_bits(), v.to_bits()),
                Err(_) => assert_eq!(d.to_bits(), 0x7FF8_DEAD_BEEF_0001),
            }
            match i64v {
                Ok(v) => assert_eq!(i, *v),
                Err(_) => assert_eq!(i, 0x5A5A_5A5A),
            }
            match boolv {
                Ok(v) => assert_eq!(b, *v),
                Err(_) => assert!(!b),
            }
        }
    }
});
