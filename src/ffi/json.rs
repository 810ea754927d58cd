//! JSON helpers for C code without a JSON parser: read values out of a response with
//! RFC 6901 JSON Pointers.

use std::ffi::c_char;

use crate::ffi::boundary::{guard, output, required_str, OutBuffer};
use crate::ffi::types::fleets_result;
use crate::json;

/// Runs a JSON lookup that yields text and writes it into the caller's buffer.
///
/// # Safety
/// As for the exports below.
unsafe fn text_lookup(
    document: *const c_char,
    pointer: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
    lookup: fn(&str, &str) -> crate::Result<String>,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from the exports' contract.
        let (document, pointer, buffer) = unsafe {
            (
                required_str(document, "json")?,
                required_str(pointer, "pointer")?,
                OutBuffer::new(out, out_cap, out_len)?,
            )
        };
        // `lookup` returns an owned copy: `out` may overlap `document`.
        let text = lookup(document, pointer)?;
        buffer.write(&text)
    })
}

/// Runs a JSON lookup that yields a scalar and writes it to `*out` on success.
///
/// # Safety
/// As for the exports below.
unsafe fn scalar_lookup<T>(
    document: *const c_char,
    pointer: *const c_char,
    out: *mut T,
    lookup: fn(&str, &str) -> crate::Result<T>,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from the exports' contract.
        let (document, pointer, out) = unsafe {
            (
                required_str(document, "json")?,
                required_str(pointer, "pointer")?,
                output(out, "out")?,
            )
        };
        *out = lookup(document, pointer)?;
        Ok(())
    })
}

/// Copies the JSON text of the value that `pointer` names in `json` (`""` is the whole
/// document, `/delta/targetTemperature`, `/a~1b` for key `a/b`), exactly as it appears in
/// `json`: not re-serialised, so numbers keep every digit (`12345678901234567890123`, `-0`,
/// `1.50`), keys keep their order, escapes stay as written, and whitespace inside the value is
/// kept; whitespace around it is not.
///
/// Pointers follow RFC 6901: `~1` is `/` and `~0` is `~` in a token; an array index is `0` or
/// digits without a leading zero (`01` and `-` name no element). When an object repeats a
/// key, the last one counts. The whole document must be JSON; there is no limit on its
/// nesting depth (it is walked without recursion) and none on its size beyond the caller's.
///
/// `json` and `pointer` are required NUL-terminated UTF-8. Buffer rules: NUL-terminated copy,
/// `*out_len` = length without the NUL; `FLEETS_ERR_BUFFER_TOO_SMALL` with the size needed
/// when it does not fit; `out` may be NULL when `out_cap` is 0; `out_len` may be NULL; `out`
/// may be the buffer that holds `json` (the value is copied before `out` is written). Errors:
/// `FLEETS_ERR_INVALID_JSON` (unparsable document), `FLEETS_ERR_JSON_NO_VALUE`,
/// `FLEETS_ERR_INVALID_ARGUMENT` (pointer not empty and not starting with `/`, or a `~` not
/// followed by `0` or `1`). Thread-safe; no state kept.
///
/// # Safety
/// Non-NULL strings are NUL-terminated; a non-NULL `out` is valid for `out_cap` bytes and a
/// non-NULL `out_len` for one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn fleets_json_get(
    json: *const c_char,
    pointer: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe { text_lookup(json, pointer, out, out_cap, out_len, json::get_raw) }
}

/// Copies the unescaped string that `pointer` names in `json`, as UTF-8. As
/// `fleets_json_get`, plus `FLEETS_ERR_JSON_TYPE` when the value is not a string and
/// `FLEETS_ERR_INVALID_JSON` when it holds a lone surrogate escape (`\ud800`), which is not
/// Unicode. A string with an embedded NUL (`\u0000`) is copied whole: use `*out_len`.
///
/// # Safety
/// As for `fleets_json_get`.
#[no_mangle]
pub unsafe extern "C" fn fleets_json_get_string(
    json: *const c_char,
    pointer: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe { text_lookup(json, pointer, out, out_cap, out_len, json::get_string) }
}

/// Reads the number that `pointer` names in `json` into `*out` (written only on success), as
/// the nearest double (correctly rounded). `FLEETS_ERR_JSON_TYPE` when it is not a number or
/// is beyond the range of a double (`1e400`). Pointer and document rules as for
/// `fleets_json_get`. All pointers required. Thread-safe.
///
/// # Safety
/// Non-NULL strings are NUL-terminated; a non-NULL `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn fleets_json_get_f64(
    json: *const c_char,
    pointer: *const c_char,
    out: *mut f64,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe { scalar_lookup(json, pointer, out, json::get_f64) }
}

/// Reads the integer that `pointer` names in `json` into `*out` (written only on success):
/// a number written without fraction or exponent, from -9223372036854775808 to
/// 9223372036854775807 (`-0` reads as 0). `FLEETS_ERR_JSON_TYPE` for any other value (`21.5`,
/// `1.0`, `1e2`, `9223372036854775808`, a string). Pointer and document rules as for
/// `fleets_json_get`. All pointers required. Thread-safe.
///
/// # Safety
/// Non-NULL strings are NUL-terminated; a non-NULL `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn fleets_json_get_i64(
    json: *const c_char,
    pointer: *const c_char,
    out: *mut i64,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe { scalar_lookup(json, pointer, out, json::get_i64) }
}

/// Reads the boolean that `pointer` names in `json` into `*out` (written only on success).
/// `FLEETS_ERR_JSON_TYPE` when it is not a boolean. Pointer and document rules as for
/// `fleets_json_get`. All pointers required. Thread-safe.
///
/// # Safety
/// Non-NULL strings are NUL-terminated; a non-NULL `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn fleets_json_get_bool(
    json: *const c_char,
    pointer: *const c_char,
    out: *mut bool,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe { scalar_lookup(json, pointer, out, json::get_bool) }
}
