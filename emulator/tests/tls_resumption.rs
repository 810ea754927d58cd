//! TLS session resumption (TLS 1.3 tickets, TLS 1.2 session ids and tickets) and the
//! handshake counters.

mod common;

use common::{admin_port_client, raw_get, Conn};
use fleets_emulator::{Emulator, EmulatorOptions};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use std::sync::Arc;

const T: &str = "thermostat-001";

fn client_config(
    emu: &Emulator,
    version: &'static rustls::SupportedProtocolVersion,
    tls12: Tls12Resumption,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(emu.ca_pem().unwrap().as_bytes())
        .unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A session cache shared by every connection made with this config.
    cfg.resumption = Resumption::in_memory_sessions(16).tls12_resumption(tls12);
    Arc::new(cfg)
}

/// Makes `n` connections with one client config, one request each; returns the server's
/// (full, resumed) handshake counts.
fn handshakes(emu: &Emulator, cfg: &Arc<rustls::ClientConfig>, n: usize) -> (u64, u64) {
    let req = raw_get(emu, &format!("/api/v1/thing-datas/{T}/shadow"), "");
    for _ in 0..n {
        let mut conn = Conn::open_with(emu, Some(cfg.clone()));
        // Reading the response also reads the TLS 1.3 tickets sent after the handshake.
        assert_eq!(conn.exchange(&req).unwrap().status, 200);
    }
    let s = emu.stats();
    (s.tls_handshakes_full, s.tls_handshakes_resumed)
}

fn start(resumption: bool) -> Emulator {
    let emu = common::start_with(EmulatorOptions {
        tls_resumption: resumption,
        ..Default::default()
    });
    emu.register_thing(T);
    emu
}

#[test]
fn tls13_tickets_resume_the_second_connection() {
    let emu = start(true);
    let cfg = client_config(&emu, &rustls::version::TLS13, Tls12Resumption::Disabled);
    assert_eq!(handshakes(&emu, &cfg, 2), (1, 1));
    assert_eq!(handshakes(&emu, &cfg, 1), (1, 2));
    // another client (its own cache) starts with a full handshake
    let other = client_config(&emu, &rustls::version::TLS13, Tls12Resumption::Disabled);
    assert_eq!(handshakes(&emu, &other, 1), (2, 2));
    let s = admin_port_client(&emu)
        .admin("GET", "/admin/v1/stats", None)
        .ok();
    assert_eq!(
        (&s["tls_handshakes_full"], &s["tls_handshakes_resumed"]),
        (&json!(2), &json!(2))
    );
}

#[test]
fn tls12_session_ids_resume_the_second_connection() {
    let emu = start(true);
    let cfg = client_config(
        &emu,
        &rustls::version::TLS12,
        Tls12Resumption::SessionIdOnly,
    );
    assert_eq!(handshakes(&emu, &cfg, 2), (1, 1));
}

#[test]
fn tls12_tickets_resume_the_second_connection() {
    let emu = start(true);
    let cfg = client_config(
        &emu,
        &rustls::version::TLS12,
        Tls12Resumption::SessionIdOrTickets,
    );
    assert_eq!(handshakes(&emu, &cfg, 2), (1, 1));
}

#[test]
fn without_resumption_every_handshake_is_full() {
    let emu = start(false);
    let cfg = client_config(&emu, &rustls::version::TLS13, Tls12Resumption::Disabled);
    assert_eq!(handshakes(&emu, &cfg, 2), (2, 0));
    let cfg = client_config(
        &emu,
        &rustls::version::TLS12,
        Tls12Resumption::SessionIdOrTickets,
    );
    assert_eq!(handshakes(&emu, &cfg, 2), (4, 0));
    emu.reset();
    assert_eq!(
        (
            emu.stats().tls_handshakes_full,
            emu.stats().tls_handshakes_resumed
        ),
        (0, 0)
    );
}

#[test]
fn admin_port_handshakes_are_not_counted() {
    let emu = start(true);
    let admin = admin_port_client(&emu);
    admin.admin("GET", "/admin/v1/stats", None).ok();
    assert_eq!(
        (
            emu.stats().tls_handshakes_full,
            emu.stats().tls_handshakes_resumed
        ),
        (0, 0)
    );
}
