//! TLS session resumption within a process: a client that has to open a new connection
//! resumes its earlier TLS session instead of a full handshake (the emulator counts both).

mod common;

use common::{emulator, THING};

#[test]
fn new_connections_of_a_client_resume_its_tls_session() {
    let emu = emulator();
    // The server closes after every response: each call needs a new connection.
    emu.set_requests_per_connection(Some(1));
    let client = common::client(&emu);
    for _ in 0..5 {
        client.shadow_get(THING).unwrap();
    }
    let stats = emu.stats();
    println!(
        "5 calls, one connection each: {} full handshakes, {} resumed",
        stats.tls_handshakes_full, stats.tls_handshakes_resumed
    );
    assert_eq!(client.stats().connections, 5);
    assert_eq!(stats.tls_handshakes_full, 1, "{stats:?}");
    assert_eq!(stats.tls_handshakes_resumed, 4, "{stats:?}");
}
