//! Measures how fast ONE keep-alive client connection (ureq, rustls/ring) can issue shadow
//! reports against an in-process emulator, for comparison with the server's own capacity
//! (see README, "Performance").
//!
//! `cargo run --release -p fleets-emulator --example one_client [SECONDS]`

use fleets_emulator::{Emulator, EmulatorOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let emu = Emulator::start(EmulatorOptions {
        auto_register: true,
        ..Default::default()
    })
    .expect("start");
    let cert = ureq::tls::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap();
    let agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        )
        .build()
        .new_agent();
    let url = format!("{}/api/v1/thing-datas/shadow/reported", emu.endpoint());
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", emu.api_key(), emu.api_secret())
        )
    );
    let body = r#"{"thingName":"bench-001","state":{"reported":{"temperature":21.5,"humidity":58}},"clientToken":"tok-001","version":0}"#;
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        let mut r = agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body)
            .expect("request");
        let _ = r.body_mut().read_to_string().expect("body");
        n += 1;
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "one ureq connection: {n} requests in {el:.2} s = {:.0} req/s",
        n as f64 / el
    );
}
