//! Endpoint and credential parsing: fleets::Config::new, set_proxy, set_ca_pem, and the
//! same through fleets_config_new / fleets_config_set_proxy / fleets_config_set_ca_pem /
//! fleets_client_new. No request is ever sent from this target.
//!
//! Input: byte 0 = flags, then `endpoint NUL api_key NUL api_secret NUL proxy NUL ca_pem`.
#![no_main]

use fleets::ffi::*;
use fleets_fuzz::{check_result, fields, ptr};
use libfuzzer_sys::fuzz_target;

fn lossy(f: &Option<std::ffi::CString>) -> String {
    f.as_ref().map_or(String::new(), |s| {
        String::from_utf8_lossy(s.as_bytes()).into_owned()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest, 5);
    let (endpoint, key, secret, proxy, pem) = (
        lossy(&f[0]),
        lossy(&f[1]),
        lossy(&f[2]),
        lossy(&f[3]),
        lossy(&f[4]),
    );

    // Safe Rust API.
    let rust_ok = match fleets::Config::new(&endpoint, &key, &secret) {
        Ok(mut cfg) => {
            let base = cfg.endpoint().to_owned();
            assert!(
                base.starts_with("https://") || base.starts_with("http://"),
                "accepted endpoint {endpoint:?} as {base:?}"
            );
            assert!(!base.ends_with('/'), "trailing slash kept: {base:?}");
            assert!(
                !base.contains('#') && !base.contains('?'),
                "query/fragment kept: {base:?}"
            );
            let authority = base.split_once("://").unwrap().1.split('/').next().unwrap();
            assert!(!authority.is_empty(), "empty host: {base:?}");
            assert!(!authority.contains('@'), "credentials kept: {base:?}");
            // ASCII controls and spaces never pass. Non-ASCII (C1 controls included) does:
            // http::Uri is lenient in paths (reported; see fuzz/README.md).
            assert!(
                !base.chars().any(|c| c.is_ascii_control() || c == ' '),
                "control/space in {base:?}"
            );
            if base.starts_with("http://") {
                // Plain HTTP only for loopback hosts, with the host as the HTTP stack (the http
                // crate's Authority::host) reads it: an IPv6 literal ends at ']'.
                let host = if authority.starts_with('[') {
                    &authority[..=authority.find(']').expect("IPv6 literal closed")]
                } else {
                    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
                };
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                assert!(
                    bare.eq_ignore_ascii_case("localhost")
                        || bare
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback()),
                    "http:// accepted for non-loopback {base:?}"
                );
            }
            assert_eq!(cfg.api_key(), key);
            // Debug never shows the secret.
            // Debug never shows the secret: it is the same whatever the secret is.
            let other = fleets::Config::new(&endpoint, &key, "another-secret")
                .expect("same endpoint and key");
            assert_eq!(
                format!("{cfg:?}"),
                format!("{other:?}"),
                "secret shows in Debug"
            );
            let before = cfg.endpoint().to_owned();
            if let Err(e) = cfg.set_proxy(&proxy) {
                assert_eq!(e.code(), fleets::ErrorCode::InvalidConfig);
            }
            if let Err(e) = cfg.set_ca_pem(&pem) {
                assert_eq!(e.code(), fleets::ErrorCode::InvalidConfig);
            }
            assert_eq!(cfg.endpoint(), before);
            if flags & 1 != 0 {
                // Building a client does no I/O.
                if let Err(e) = fleets::Client::new(&cfg) {
                    assert_eq!(
                        e.code(),
                        fleets::ErrorCode::InvalidConfig,
                        "{}",
                        e.message()
                    );
                }
            }
            true
        }
        Err(e) => {
            assert_eq!(
                e.code(),
                fleets::ErrorCode::InvalidConfig,
                "{}",
                e.message()
            );
            false
        }
    };

    // The C entries, with the raw bytes (NULL and non-UTF-8 included).
    unsafe {
        let mut cfg: *mut fleets_config_t = std::ptr::null_mut();
        let r = fleets_config_new(ptr(&f[0]), ptr(&f[1]), ptr(&f[2]), &mut cfg);
        check_result("fleets_config_new", r);
        let all_text = f[..3]
            .iter()
            .all(|x| x.as_ref().is_some_and(|s| s.to_str().is_ok()));
        if all_text {
            assert_eq!(
                r == FLEETS_OK,
                rust_ok,
                "C and Rust disagree on {endpoint:?}"
            );
        }
        if r != FLEETS_OK {
            assert!(cfg.is_null(), "*out written on failure");
            assert!(
                matches!(
                    r,
                    FLEETS_ERR_NULL_ARGUMENT
                        | FLEETS_ERR_INVALID_ARGUMENT
                        | FLEETS_ERR_INVALID_CONFIG
                ),
                "{r}"
            );
            return;
        }
        assert!(!cfg.is_null());
        let r = fleets_config_set_proxy(cfg, ptr(&f[3]));
        check_result("fleets_config_set_proxy", r);
        let r = fleets_config_set_ca_pem(cfg, ptr(&f[4]));
        check_result("fleets_config_set_ca_pem", r);
        let r = fleets_config_set_timeouts(cfg, u32::from(flags), u32::from(flags) << 4);
        check_result("fleets_config_set_timeouts", r);
        let r = fleets_config_set_retry(
            cfg,
            u32::from(flags >> 4),
            u32::from(flags) * 3,
            u32::from(flags) * 7,
        );
        check_result("fleets_config_set_retry", r);
        if flags & 2 != 0 {
            let mut client: *mut fleets_client_t = std::ptr::null_mut();
            let r = fleets_client_new(cfg, &mut client);
            check_result("fleets_client_new", r);
            assert_eq!(r == FLEETS_OK, !client.is_null());
            fleets_client_free(client);
        }
        fleets_config_free(cfg);
    }
});
