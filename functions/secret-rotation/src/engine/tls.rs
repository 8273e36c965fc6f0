//! TLS for database connections: always verified, against the system's roots or `DB_CA_BUNDLE`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::{DbError, DbSettings};

/// One process-wide crypto provider (aws-lc-rs, as the AWS SDK uses), so libraries that build
/// their own rustls configuration agree with ours.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The CA certificates of a PEM bundle.
pub fn load_bundle(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, DbError> {
    let bad = |message: String| DbError::Tls { host: "-".into(), port: 0, message };
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("reading DB_CA_BUNDLE {}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| bad(format!("parsing DB_CA_BUNDLE {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(format!("DB_CA_BUNDLE {} holds no certificate", path.display())));
    }
    Ok(certs)
}

/// A rustls client configuration that verifies the server against the bundle, or the system roots.
pub fn client_config(settings: &DbSettings) -> Result<ClientConfig, DbError> {
    install_crypto_provider();
    let mut roots = RootCertStore::empty();
    match &settings.ca_bundle {
        Some(path) => {
            for cert in load_bundle(path)? {
                let _ = roots.add(cert);
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls { host: "-".into(), port: 0, message: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
