//! TLS setup: a throwaway CA plus a server certificate, or PEM files, served with rustls on
//! the ring provider.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// A generated CA and a server certificate signed by it.
pub struct GeneratedPki {
    /// The CA certificate, PEM (what clients must trust).
    pub ca_pem: String,
    /// The server certificate chain (leaf, then CA), DER.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server key, DER.
    pub key: PrivateKeyDer<'static>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Creates a CA and a server certificate for 127.0.0.1, ::1, localhost and `extra_ip`.
pub fn generate(extra_ip: Option<IpAddr>) -> io::Result<GeneratedPki> {
    let ca_key = KeyPair::generate().map_err(other)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "fleets-emulator throwaway CA");
    dn.push(DnType::OrganizationName, "fleets-emulator");
    ca_params.distinguished_name = dn;
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(other)?;

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(ip) = extra_ip.filter(|ip| !ip.is_unspecified() && !ip.is_loopback()) {
        names.push(ip.to_string());
    }
    let mut params = CertificateParams::new(names).map_err(other)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "fleets-emulator");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(other)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).map_err(other)?;

    Ok(GeneratedPki {
        ca_pem: ca_cert.pem(),
        chain: vec![cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::try_from(key.serialize_der()).map_err(other)?,
    })
}

/// Loads a PEM certificate chain and a PEM private key.
pub fn load_files(
    cert: &Path,
    key: &Path,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| other(format!("{}: {e}", cert.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| other(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(other(format!("{}: no certificate found", cert.display())));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| other(format!("{}: {e}", key.display())))?;
    Ok((chain, key))
}

/// Server-side TLS sessions remembered for TLS 1.2 session-id resumption.
pub const SESSION_CACHE_SIZE: usize = 1024;

/// A rustls server config (ring provider, TLS 1.2 and 1.3, ALPN http/1.1).
///
/// With `resumption`, the server issues stateless tickets (TLS 1.3, and TLS 1.2 to clients
/// that ask for them; rustls' ring `Ticketer`, keys rotated every 6 hours) and keeps a
/// session-id cache for TLS 1.2 clients without tickets. Without it, every handshake is full.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    resumption: bool,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(other)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if resumption {
        cfg.ticketer = rustls::crypto::ring::Ticketer::new().map_err(other)?;
        cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    } else {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    }
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pki_builds_a_server_config() {
        let pki = generate(Some("10.1.2.3".parse().unwrap())).unwrap();
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(pki.chain.len(), 2);
        let on = server_config(pki.chain.clone(), pki.key.clone_key(), true).unwrap();
        assert!(on.ticketer.enabled());
        let off = server_config(pki.chain, pki.key, false).unwrap();
        assert!(!off.ticketer.enabled());
        assert_eq!(off.send_tls13_tickets, 0);
    }

    #[test]
    fn load_files_reports_missing_and_empty() {
        let dir = std::env::temp_dir().join(format!("fleets-emu-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(load_files(&dir.join("missing.pem"), &empty).is_err());
        assert!(load_files(&empty, &empty).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
