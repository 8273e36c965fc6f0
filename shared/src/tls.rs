//! The suite's one TLS rule, for every connection a function makes to a database or a broker:
//! - always verified; a failed check is an error, never a reason to fall back to plain text;
//! - trusted roots: the system's store, plus roots a function ships for its peers (the Amazon
//!   RDS CAs, for databases), plus the operator's PEM bundle (`DB_CA_BUNDLE`,
//!   `BROKER_CA_BUNDLE`) *added* to them;
//! - loaded once per execution environment: the system store on first use, each bundle on its
//!   first use, then reused by every connection.
//!
//! Connections to AWS endpoints follow the AWS half of the rule, in [`crate::aws`]: Mozilla's
//! roots compiled in, plus `AWS_CA_BUNDLE`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why the roots or the TLS configuration could not be set up. Names the variable and the file,
/// never a certificate's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("{variable} {}: {reason}", path.display())]
    UnreadableBundle { variable: &'static str, path: PathBuf, reason: String },
    #[error("{variable} {} holds no PEM certificate", path.display())]
    EmptyBundle { variable: &'static str, path: PathBuf },
    #[error("{variable} {}: a certificate is not usable as a root: {reason}", path.display())]
    BadCertificate { variable: &'static str, path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

impl TlsError {
    /// The `errorType` Lambda reports for it.
    pub fn error_type(&self) -> &'static str {
        "TrustedRootsInvalid"
    }
}

/// An operator's PEM bundle of extra CAs, and the variable that named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtraBundle {
    pub variable: &'static str,
    pub path: PathBuf,
}

impl ExtraBundle {
    /// The bundle named by `variable`, when it is set and not blank.
    pub fn from_lookup(variable: &'static str, lookup: impl Fn(&str) -> Option<String>) -> Option<ExtraBundle> {
        lookup(variable).filter(|p| !p.trim().is_empty()).map(|p| ExtraBundle { variable, path: p.trim().into() })
    }
}

/// Roots a function ships for its peers, compiled in as PEM (the RDS CAs for databases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShippedRoots {
    pub name: &'static str,
    pub pem: &'static [u8],
}

impl ShippedRoots {
    /// No roots beyond the system's (brokers).
    pub const NONE: ShippedRoots = ShippedRoots { name: "none", pem: b"" };

    /// The certificates, each checked usable as a root.
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bad = |reason: String| TlsError::Config(format!("the shipped {} roots: {reason}", self.name));
        let certs =
            CertificateDer::pem_slice_iter(self.pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
        let mut check = RootCertStore::empty();
        for cert in &certs {
            check.add(cert.clone()).map_err(|e| bad(e.to_string()))?;
        }
        Ok(certs)
    }
}

/// The roots one kind of peer is verified against, and a rustls configuration built on them.
#[derive(Debug)]
pub struct PeerTrust {
    /// Every trusted root (system, shipped, then bundle), for clients that take certificates, not a
    /// configuration.
    pub roots: Vec<CertificateDer<'static>>,
    /// The bundle's PEM text as read, for clients that add PEM to their own system roots.
    pub bundle_pem: Option<String>,
    pub config: Arc<ClientConfig>,
}

/// One process-wide crypto provider (aws-lc-rs, as the AWS SDK uses), so that libraries which
/// build their own rustls configuration agree with ours.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The system's roots, read once per process. Certificates it cannot parse are skipped, as
/// every TLS client does with a system store.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static SYSTEM: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The trust for peers verified against the system roots plus `shipped` plus `bundle`: built
/// on first use, then the same `Arc` for the life of the execution environment.
pub fn peer_trust(shipped: &ShippedRoots, bundle: Option<&ExtraBundle>) -> Result<Arc<PeerTrust>, TlsError> {
    type Key = (ShippedRoots, Option<ExtraBundle>);
    static BUILT: Mutex<Vec<(Key, Arc<PeerTrust>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, trust)) = built.iter().find(|((s, b), _)| s == shipped && b.as_ref() == bundle) {
        return Ok(trust.clone());
    }
    let trust = Arc::new(build_peer_trust(system_roots(), shipped, bundle)?);
    built.push(((*shipped, bundle.cloned()), trust.clone()));
    Ok(trust)
}

fn build_peer_trust(
    system: &[CertificateDer<'static>],
    shipped: &ShippedRoots,
    bundle: Option<&ExtraBundle>,
) -> Result<PeerTrust, TlsError> {
    let mut store = RootCertStore::empty();
    let (_valid, _invalid) = store.add_parsable_certificates(system.iter().cloned());
    let mut roots = system.to_vec();
    for cert in shipped.certificates()? {
        store.add(cert.clone()).map_err(|e| TlsError::Config(e.to_string()))?;
        roots.push(cert);
    }
    let mut bundle_pem = None;
    if let Some(bundle) = bundle {
        let (pem, certs) = read_bundle(bundle)?;
        for cert in certs {
            store.add(cert.clone()).map_err(|e| bad_certificate(bundle, e))?;
            roots.push(cert);
        }
        bundle_pem = Some(pem);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(PeerTrust { roots, bundle_pem, config: Arc::new(config) })
}

/// The bundle's text and its certificates; at least one.
fn read_bundle(bundle: &ExtraBundle) -> Result<(String, Vec<CertificateDer<'static>>), TlsError> {
    let unreadable =
        |reason: String| TlsError::UnreadableBundle { variable: bundle.variable, path: bundle.path.clone(), reason };
    let pem = std::fs::read_to_string(&bundle.path).map_err(|e| unreadable(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::EmptyBundle { variable: bundle.variable, path: bundle.path.clone() });
    }
    Ok((pem, certs))
}

/// The certificates of an operator's bundle, each checked usable as a root: a bundle is an
/// explicit choice, so a certificate in it that cannot be used is an error, not skipped.
pub fn read_roots(bundle: &ExtraBundle) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (_, certs) = read_bundle(bundle)?;
    let mut check = RootCertStore::empty();
    for cert in &certs {
        check.add(cert.clone()).map_err(|e| bad_certificate(bundle, e))?;
    }
    Ok(certs)
}

fn bad_certificate(bundle: &ExtraBundle, error: rustls::Error) -> TlsError {
    TlsError::BadCertificate { variable: bundle.variable, path: bundle.path.clone(), reason: error.to_string() }
}

/// `path` as the bundle of `variable`: what tests and tools pass where settings would.
pub fn bundle(variable: &'static str, path: &Path) -> ExtraBundle {
    ExtraBundle { variable, path: path.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("shared-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("writing a test file");
        path
    }

    #[test]
    fn a_missing_bundle_names_the_variable_and_the_path() {
        let missing = bundle("DB_CA_BUNDLE", Path::new("/nonexistent/ca.pem"));
        let err = build_peer_trust(&[], &ShippedRoots::NONE, Some(&missing)).expect_err("missing file");
        assert!(matches!(err, TlsError::UnreadableBundle { variable: "DB_CA_BUNDLE", .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let path = temp_file("empty.pem", "not a certificate\n");
        let err = build_peer_trust(&[], &ShippedRoots::NONE, Some(&bundle("BROKER_CA_BUNDLE", &path)))
            .expect_err("empty bundle");
        assert_eq!(err, TlsError::EmptyBundle { variable: "BROKER_CA_BUNDLE", path: path.clone() });
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_bundle_is_added_to_the_system_roots_not_put_in_their_place() {
        let system = system_roots();
        assert!(!system.is_empty(), "this machine has a system CA store");
        // One of the system's own roots, written out as an operator's bundle.
        let der = system[0].as_ref();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", base64_lines(der));
        let path = temp_file("one.pem", &pem);
        let trust = build_peer_trust(system, &ShippedRoots::NONE, Some(&bundle("DB_CA_BUNDLE", &path))).expect("trust");
        assert_eq!(trust.roots.len(), system.len() + 1);
        assert_eq!(trust.bundle_pem.as_deref(), Some(pem.as_str()));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn each_bundle_is_loaded_once_and_shared() {
        let first = peer_trust(&ShippedRoots::NONE, None).expect("system trust");
        let again = peer_trust(&ShippedRoots::NONE, None).expect("system trust");
        assert!(Arc::ptr_eq(&first, &again));
    }

    fn base64_lines(bytes: &[u8]) -> String {
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        text.as_bytes().chunks(64).map(|l| String::from_utf8_lossy(l).into_owned()).collect::<Vec<_>>().join("\n")
    }
}
