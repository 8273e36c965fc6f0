//! A throwaway certificate authority and a server certificate for localhost / 127.0.0.1, made
//! with the openssl command, for the TLS listeners of the test databases and brokers (as PEM
//! files, or as a PKCS#12 keystore for Java servers). The certificate also names
//! host.docker.internal: the name `sam local`'s containers are given for this machine
//! (scripts/sam-local), so that they verify the same stand-ins through the Docker bridge.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCerts {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("running openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl TestCerts {
    pub fn create(dir: &Path) -> TestCerts {
        std::fs::create_dir_all(dir).expect("creating the certificate folder");
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:host.docker.internal\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("writing server.ext");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=ops-suite test CA",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        TestCerts { ca: dir.join("ca.pem"), server_cert: dir.join("server.pem"), server_key: dir.join("server.key") }
    }

    /// The server certificate and key as a PKCS#12 keystore (password `password`), for servers
    /// that take no PEM files (ActiveMQ).
    pub fn pkcs12_keystore(&self, path: &Path, password: &str) {
        let output = Command::new("openssl")
            .args(["pkcs12", "-export", "-name", "server", "-passout", &format!("pass:{password}"), "-in"])
            .arg(&self.server_cert)
            .arg("-inkey")
            .arg(&self.server_key)
            .arg("-out")
            .arg(path)
            .output()
            .expect("running openssl pkcs12");
        assert!(output.status.success(), "keystore: {}", String::from_utf8_lossy(&output.stderr));
    }
}
