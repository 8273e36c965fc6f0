//! Mozilla's root set as one PEM bundle, written at build time: the SDK's HTTPS client takes
//! trust roots as PEM only, and encoding some 150 certificates at every cold start is init time
//! spent on the same bytes every time.

use std::fmt::Write as _;

use base64::Engine as _;

fn main() {
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            // Base64 is ASCII: every chunk is valid UTF-8.
            let _ = writeln!(pem, "{}", String::from_utf8_lossy(line));
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("mozilla-roots.pem"), pem).expect("writing the root bundle");
    println!("cargo:rerun-if-changed=build.rs");
}
