//! The `bundled-roots` cargo feature (default on): with it, a configuration without a CA trusts
//! the bundled Mozilla roots (which do not include the emulator's throwaway CA); without it
//! (`cargo test -p fleets --no-default-features --test bundled_roots`), such a client is
//! refused before anything is sent, and a configured CA works as usual.

mod common;

use common::{emulator, THING};
use fleets::{Client, Config, ErrorCode, ReportOptions};

fn config_without_ca(emu: &fleets_emulator::Emulator) -> Config {
    Config::new(emu.endpoint(), emu.api_key(), emu.api_secret()).expect("valid config")
}

#[cfg(feature = "bundled-roots")]
#[test]
fn without_a_ca_the_bundled_roots_are_used() {
    let emu = emulator();
    let client = Client::new(&config_without_ca(&emu)).expect("client with bundled roots");
    let err = client
        .shadow_report(THING, r#"{"t":1}"#, ReportOptions::default())
        .expect_err("the emulator's CA is not a Mozilla root");
    assert_eq!(err.code(), ErrorCode::Tls, "{err}");
    assert_eq!(emu.stats().total, 0, "no request passed the TLS handshake");
}

#[cfg(not(feature = "bundled-roots"))]
#[test]
fn without_bundled_roots_a_client_needs_a_ca() {
    let emu = emulator();
    let err = Client::new(&config_without_ca(&emu)).expect_err("no trust anchors: refused");
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    assert!(err.to_string().contains("bundled-roots"), "{err}");
    assert_eq!(emu.stats().connections_accepted, 0);

    let client = common::client(&emu);
    client
        .shadow_report(THING, r#"{"t":1}"#, ReportOptions::default())
        .expect("a configured CA works without bundled roots");
}
