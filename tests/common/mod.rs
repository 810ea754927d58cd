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

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}
