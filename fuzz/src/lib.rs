//! Helpers shared by the fuzz targets: splitting an input into NUL-free C strings, checking
//! result codes and the C buffer rules.
//!
//! libfuzzer-sys installs a panic hook that aborts, so a panic anywhere in the library is a
//! crash here even when the FFI guard would have caught it and returned FLEETS_ERR_PANIC.

use std::ffi::{c_char, CString};

use fleets::ffi::*;

/// Splits `data` at NUL bytes into up to `n` fields (missing fields are empty). A field that
/// starts with 0xFF stands for a NULL pointer, so required/optional NULL handling is fuzzed
/// too. Fields contain no NUL, so each is a valid C string (not necessarily UTF-8).
pub fn fields(data: &[u8], n: usize) -> Vec<Option<CString>> {
    let mut out: Vec<Option<CString>> = data
        .splitn(n, |&b| b == 0)
        .map(|f| {
            if f.first() == Some(&0xFF) {
                None
            } else {
                // splitn leaves NULs only in the last field; cut it there.
                let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
                Some(CString::new(&f[..end]).unwrap())
            }
        })
        .collect();
    while out.len() < n {
        out.push(Some(CString::default()));
    }
    out
}

/// The pointer for a field: NULL for `None`.
pub fn ptr(field: &Option<CString>) -> *const c_char {
    field.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Every result code the header defines.
pub const KNOWN_RESULTS: &[fleets_result] = &[
    FLEETS_OK,
    FLEETS_ERR_NULL_ARGUMENT,
    FLEETS_ERR_INVALID_ARGUMENT,
    FLEETS_ERR_INVALID_JSON,
    FLEETS_ERR_BUFFER_TOO_SMALL,
    FLEETS_ERR_INVALID_CONFIG,
    FLEETS_ERR_JSON_NO_VALUE,
    FLEETS_ERR_JSON_TYPE,
    FLEETS_ERR_CONNECT,
    FLEETS_ERR_TLS,
    FLEETS_ERR_TIMEOUT,
    FLEETS_ERR_IO,
    FLEETS_ERR_BAD_REQUEST,
    FLEETS_ERR_UNAUTHORIZED,
    FLEETS_ERR_FORBIDDEN,
    FLEETS_ERR_NOT_FOUND,
    FLEETS_ERR_CONFLICT,
    FLEETS_ERR_PAYLOAD_TOO_LARGE,
    FLEETS_ERR_RATE_LIMITED,
    FLEETS_ERR_SERVER,
    FLEETS_ERR_HTTP,
    FLEETS_ERR_BAD_RESPONSE,
    FLEETS_ERR_PANIC,
    FLEETS_ERR_INTERNAL,
];

/// Asserts `r` is a defined result code, never FLEETS_ERR_PANIC / FLEETS_ERR_INTERNAL, and
/// that a failure left a non-empty, NUL-terminated message for fleets_last_error_message.
pub fn check_result(what: &str, r: fleets_result) {
    assert!(
        KNOWN_RESULTS.contains(&r),
        "{what}: unknown result code {r}"
    );
    assert_ne!(r, FLEETS_ERR_PANIC, "{what}: FLEETS_ERR_PANIC");
    assert_ne!(r, FLEETS_ERR_INTERNAL, "{what}: FLEETS_ERR_INTERNAL");
    let name = unsafe { std::ffi::CStr::from_ptr(fleets_result_name(r)) };
    assert_ne!(
        name.to_bytes(),
        b"FLEETS_ERR_UNKNOWN",
        "{what}: {r} has no name"
    );
    if r != FLEETS_OK {
        let needed = unsafe { fleets_last_error_message(std::ptr::null_mut(), 0) };
        assert!(needed > 0, "{what}: failure {r} without a message");
        let mut buf = vec![0x55u8; needed + 1];
        let n = unsafe { fleets_last_error_message(buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(n, needed);
        assert_eq!(buf[needed], 0, "{what}: message not NUL-terminated");
        assert!(
            !buf[..needed].contains(&0),
            "{what}: NUL inside the message"
        );
        assert!(std::str::from_utf8(&buf[..needed]).is_ok());
    }
}

const CANARY: u8 = 0xA5;
const LEN_UNSET: usize = usize::MAX;

/// An output buffer triple for the `out, out_cap, out_len` convention, with canaries to see
/// what the call wrote.
pub struct OutBuf {
    storage: Vec<u8>,
    cap: usize,
    null_out: bool,
    pub len: usize,
    null_len: bool,
}

impl OutBuf {
    /// `shape` picks the capacity and whether `out`/`out_len` are NULL.
    pub fn new(shape: u8) -> OutBuf {
        let cap = match shape & 0x0F {
            0 => 0,
            1 => 1,
            2 => 2,
            3 => 8,
            4 => 16,
            5 => 64,
            _ => 8192,
        };
        // out may be NULL only with cap 0; also try NULL with cap > 0 (must be NULL_ARGUMENT).
        let null_out = shape & 0x10 != 0 && (cap == 0 || shape & 0x40 != 0);
        OutBuf {
            storage: vec![CANARY; cap + 16],
            cap,
            null_out,
            len: LEN_UNSET,
            null_len: shape & 0x20 != 0,
        }
    }

    pub fn out(&mut self) -> *mut c_char {
        if self.null_out {
            std::ptr::null_mut()
        } else {
            self.storage.as_mut_ptr().cast()
        }
    }

    /// True when the triple itself is invalid (NULL `out` with `out_cap` > 0): the call
    /// must fail with FLEETS_ERR_NULL_ARGUMENT once its other arguments pass.
    pub fn rejected(&self) -> bool {
        self.null_out && self.cap > 0
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn out_len(&mut self) -> *mut usize {
        if self.null_len {
            std::ptr::null_mut()
        } else {
            &mut self.len
        }
    }

    /// Checks the buffer rules for result `r`. `expected` is the text the call should have
    /// produced on success / BUFFER_TOO_SMALL when known. Returns the copied text on OK.
    pub fn check(&self, what: &str, r: fleets_result, expected: Option<&[u8]>) -> Option<Vec<u8>> {
        // Never a byte beyond out_cap.
        assert!(
            self.storage[self.cap..].iter().all(|&b| b == CANARY),
            "{what}: wrote past out_cap {}",
            self.cap
        );
        if self.null_out && self.cap > 0 {
            // Rejected (NULL_ARGUMENT, or an earlier argument's error), never served.
            assert!(
                r != FLEETS_OK && r != FLEETS_ERR_BUFFER_TOO_SMALL,
                "{what}: NULL out with cap > 0 gave {r}"
            );
            return None;
        }
        match r {
            FLEETS_OK => {
                if !self.null_len {
                    assert_ne!(self.len, LEN_UNSET, "{what}: OK without *out_len");
                    if let Some(e) = expected {
                        assert_eq!(self.len, e.len(), "{what}: *out_len");
                    }
                }
                if self.null_out {
                    return None;
                }
                // The text plus its NUL fit; find the NUL the call wrote.
                let n = if self.null_len {
                    expected?.len()
                } else {
                    self.len
                };
                assert!(n < self.cap, "{what}: OK but {n} + NUL > cap {}", self.cap);
                assert_eq!(self.storage[n], 0, "{what}: no NUL at out[{n}]");
                assert!(
                    self.storage[n + 1..self.cap].iter().all(|&b| b == CANARY),
                    "{what}: wrote after the NUL"
                );
                let text = self.storage[..n].to_vec();
                if let Some(e) = expected {
                    assert_eq!(text, e, "{what}: copied text differs");
                }
                Some(text)
            }
            FLEETS_ERR_BUFFER_TOO_SMALL => {
                assert!(!self.null_out, "{what}: too small with a NULL buffer");
                if !self.null_len {
                    assert!(
                        self.len >= self.cap,
                        "{what}: too small, but needs {}",
                        self.len
                    );
                    if let Some(e) = expected {
                        assert_eq!(self.len, e.len(), "{what}: needed length");
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// For calls that never write the buffer on failure (the JSON helpers).
    pub fn assert_untouched(&self, what: &str) {
        assert!(
            self.storage.iter().all(|&b| b == CANARY),
            "{what}: buffer written on failure"
        );
        assert_eq!(self.len, LEN_UNSET, "{what}: *out_len written on failure");
    }
}
