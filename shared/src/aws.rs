//! AWS SDK configuration, loaded once per execution environment.
//!
//! Everything but trust comes from the SDK's standard chain: credentials (Lambda's role, or the
//! usual variables and profiles locally), region (`AWS_REGION`), proxies (`HTTPS_PROXY`), and
//! endpoints: `AWS_ENDPOINT_URL` for every service or `AWS_ENDPOINT_URL_<SERVICE>` for one, which
//! is how the tests reach moto and how a VPC interface endpoint is used.
//!
//! Trust, the AWS half of the suite's one TLS rule: AWS endpoints are verified against Mozilla's
//! root set, compiled in (it holds Amazon's roots), so a cold start reads no certificate file;
//! `AWS_CA_BUNDLE` adds a PEM bundle to it, for an endpoint behind a TLS-inspecting proxy or a
//! private CA. The SDK's default client would load the system store instead (the whole bundle,
//! then every file of the certificate directory), which was most of these functions' init.

use aws_config::BehaviorVersion;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_types::config_bag::ConfigBag;
use base64::Engine;
use rustls::pki_types::CertificateDer;

use crate::tls::{ExtraBundle, TlsError};

pub use aws_config::SdkConfig;

/// The variable naming extra CAs for AWS endpoints (the name the AWS CLI and other SDKs use).
pub const CA_BUNDLE_VARIABLE: &str = "AWS_CA_BUNDLE";

/// Loads the SDK configuration from the environment, with the suite's HTTPS client.
///
/// Lambda hands a function its region and its role's credentials as environment variables
/// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). When they
/// are there, they are used directly: building the SDK's whole provider chains (profiles, SSO,
/// web identity, ECS, IMDS, each with clients of its own) is init work for providers a Lambda
/// function never reaches. Without them (a local run), the chains are the SDK's own.
pub async fn load_config() -> Result<SdkConfig, TlsError> {
    let extra = ExtraBundle::from_lookup(CA_BUNDLE_VARIABLE, |name| std::env::var(name).ok());
    let client = https_client(extra.as_ref())?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(client);
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(region) = std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()) {
        loader = loader.region(aws_config::Region::new(region));
    }
    Ok(loader.load().await)
}

/// Mozilla's roots (the `webpki-root-certs` crate) as one PEM bundle, made by `build.rs`.
const MOZILLA_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mozilla-roots.pem"));

/// The SDK's default HTTPS client (rustls on aws-lc, proxies from the environment), trusting
/// Mozilla's compiled-in roots plus `extra`.
pub fn https_client(extra: Option<&ExtraBundle>) -> Result<SharedHttpClient, TlsError> {
    let mut store = TrustStore::empty();
    store.add_pem_certificate(MOZILLA_ROOTS_PEM);
    if let Some(bundle) = extra {
        // Checked here: the client would panic on a certificate it cannot use as a root.
        for cert in crate::tls::read_roots(bundle)? {
            store.add_pem_certificate(pem(&cert));
        }
    }
    let context = TlsContext::builder().with_trust_store(store).build().map_err(|e| TlsError::Config(e.to_string()))?;
    // As the SDK builds its default client, with our trust store.
    let client = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.tls_context(context.clone()).build()
    });
    Ok(SharedHttpClient::new(NoWarmUp(client)))
}

/// The client above, without the warm-up the SDK's client does when each SDK client is made: it
/// builds a connector and throws it away, so that a *system* trust store is read at init rather
/// than on the first request. Ours is compiled in, so that connector only parsed every root
/// again, once per SDK client, at every cold start; the one the first request uses is built
/// then, as it always was.
#[derive(Debug)]
struct NoWarmUp(SharedHttpClient);

impl HttpClient for NoWarmUp {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// One certificate as PEM, the form the client's trust store takes.
fn pem(cert: &CertificateDer<'_>) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = Vec::with_capacity(body.len() + body.len() / 64 + 60);
    pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_compiled_in_roots_include_amazons() {
        let names: Vec<String> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|cert| String::from_utf8_lossy(cert.as_ref()).into_owned())
            .filter(|text| text.contains("Amazon Root CA"))
            .collect();
        // Amazon Root CA 1 to 4 sign the certificates of AWS endpoints.
        assert!(names.len() >= 4, "found {}", names.len());
    }

    #[test]
    fn the_bundle_built_at_compile_time_holds_every_mozilla_root() {
        let parsed: Vec<_> =
            CertificateDer::pem_slice_iter(MOZILLA_ROOTS_PEM).collect::<Result<_, _>>().expect("the bundle parses");
        let expected: Vec<&[u8]> = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().map(|c| c.as_ref()).collect();
        assert_eq!(parsed.iter().map(|c| c.as_ref()).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn pem_round_trips_to_the_same_certificate() {
        let cert = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[0];
        let back = CertificateDer::from_pem_slice(&pem(cert)).expect("PEM parses");
        assert_eq!(back.as_ref(), cert.as_ref());
    }

    #[test]
    fn an_unusable_extra_bundle_is_an_error_not_a_panic() {
        let path = std::env::temp_dir().join(format!("shared-aws-{}-bad.pem", std::process::id()));
        // PEM-framed, but not a certificate.
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").expect("write");
        let bundle = crate::tls::bundle(CA_BUNDLE_VARIABLE, &path);
        let err = https_client(Some(&bundle)).expect_err("bad bundle");
        assert!(matches!(err, TlsError::BadCertificate { variable: CA_BUNDLE_VARIABLE, .. }), "{err:?}");
        let _ = std::fs::remove_file(path);
    }
}
