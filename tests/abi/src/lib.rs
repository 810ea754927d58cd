//! A bindgen-generated Rust view of `include/fleets.h`, compiled and called against the Rust
//! exports, so the header and the library cannot drift apart unnoticed.

/// The header as bindgen sees it.
// The opaque handles are Rust structs without repr(C); only pointers to them cross.
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    improper_ctypes
)]
pub mod header {
    include!(concat!(env!("OUT_DIR"), "/header.rs"));
}

/// The header's own definitions of the structs shared with C, for layout checks.
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    improper_ctypes
)]
pub mod layout {
    include!(concat!(env!("OUT_DIR"), "/layout.rs"));
}

#[cfg(test)]
// Every constant is compared as u64, some already are.
#[allow(clippy::unnecessary_cast)]
mod checks {
    include!(concat!(env!("OUT_DIR"), "/checks.rs"));

    #[test]
    fn header_declares_every_function() {
        assert!(FUNCTIONS.len() >= 25, "{FUNCTIONS:?}");
    }

    #[test]
    fn calls_through_the_header_declarations() {
        use std::ffi::CStr;
        // SAFETY: fleets_version returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(crate::header::fleets_version()) };
        assert_eq!(version.to_str().unwrap(), fleets::VERSION);
        let mut value = 0i64;
        // SAFETY: NUL-terminated literals and a valid output pointer.
        let code = unsafe {
            crate::header::fleets_json_get_i64(
                c"{\"delta\":{\"t\":24}}".as_ptr(),
                c"/delta/t".as_ptr(),
                &mut value,
            )
        };
        assert_eq!(code, crate::header::FLEETS_OK);
        assert_eq!(value, 24);
        // SAFETY: NULL is documented as a no-op.
        unsafe { crate::header::fleets_client_free(std::ptr::null_mut()) };
    }
}
