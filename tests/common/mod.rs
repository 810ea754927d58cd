//! Shared set-up for the integration tests: an in-process `fleets-emulator` over real HTTPS
//! on loopback, and clients configured to trust its throwaway CA.
#![allow(dead_code)]

pub mod c_build;
pub mod delay_relay;
pub mod file_server;
pub mod nginx;
pub mod raw_server;
pub mod scratch;

use fleets::{Client, Config};
use fleets_emulator::{Emulator, EmulatorOptions};

pub const THING: &str = "thermostat-001";

/// A running emulator with `THING` registered.
pub fn emulator() -> Emulator {
    let emulator = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
    emulator.register_thing(THING);
    emulator
}

/// A configuration for `emulator` that trusts its CA.
pub fn config(emulator: &Emulator) -> Config {
    let mut config = Config::new(
        emulator.endpoint(),
        emulator.api_key(),
        emulator.api_secret(),
    )
    .expect("valid config");
    config
        .set_ca_file(emulator.ca_file().expect("generated CA"))
        .expect("CA file usable");
    config
}

pub fn client(emulator: &Emulator) -> Client {
    Client::new(&config(emulator)).expect("client")
}

/// The C ABI's view of [`client`]: a `fleets_client_t` for `emulator` that trusts its CA
/// file (default retry policy; the configuration is freed here). Free it with
/// `fleets_client_free`.
pub fn c_client(emulator: &Emulator) -> *mut fleets::ffi::fleets_client_t {
    use fleets::ffi::*;
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).unwrap();
    let (endpoint, key, secret) = (
        c(emulator.endpoint()),
        c(emulator.api_key()),
        c(emulator.api_secret()),
    );
    let ca = c(emulator.ca_file().unwrap().to_str().unwrap());
    let (mut cfg, mut client) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: valid NUL-terminated strings and out pointers; the configuration is freed once
    // the client holds its own copy.
    unsafe {
        assert_eq!(
            fleets_config_new(endpoint.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut cfg),
            FLEETS_OK
        );
        assert_eq!(fleets_config_set_ca_file(cfg, ca.as_ptr()), FLEETS_OK);
        assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
        fleets_config_free(cfg);
    }
    client
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}
