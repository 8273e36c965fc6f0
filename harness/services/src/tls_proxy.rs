//! A TLS front for a plain-TCP stand-in (moto): terminates TLS with a certificate from a test CA
//! and forwards the bytes, so a test can reach an "AWS endpoint" over HTTPS whose certificate
//! only that CA vouches for.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::certs::TestCerts;

pub struct TlsProxy {
    pub port: u16,
    /// The CA that signed the proxy's certificate (for localhost and 127.0.0.1).
    pub ca: PathBuf,
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Forwards TLS connections on a free loopback port to `127.0.0.1:<backend_port>`.
    pub async fn start(backend_port: u16) -> TlsProxy {
        let dir = crate::scratch_dir("tls-proxy");
        let certs = TestCerts::create(&dir);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.server_cert)
            .expect("server cert")
            .collect::<Result<_, _>>()
            .expect("server cert PEM");
        let key = PrivateKeyDer::from_pem_file(&certs.server_key).expect("server key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the TLS proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses our certificate ends here: that is what tests look for.
                    let Ok(mut tls) = acceptor.accept(client).await else { return };
                    let Ok(mut backend) = TcpStream::connect(("127.0.0.1", backend_port)).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut backend).await;
                });
            }
        });
        TlsProxy { port, ca: certs.ca, dir, task }
    }

    /// The HTTPS endpoint, by name, as an SDK's endpoint URL.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
