//! The broker secret through the secrets-cache extension, when its layer is attached
//! (`/opt/extensions/secrets-cache` exists): plain HTTP to 127.0.0.1 on its port, with the
//! session token it checks. The extension had it fetched during init, so the first poll reads
//! no Secrets Manager. Any failure here is the caller's cue to read the secret with the SDK.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Lambda puts the extension when its layer is attached.
pub const EXTENSION_PATH: &str = "/opt/extensions/secrets-cache";

pub struct SecretsExtension {
    port: u16,
    token: String,
}

impl std::fmt::Debug for SecretsExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsExtension").field("port", &self.port).finish_non_exhaustive()
    }
}

impl SecretsExtension {
    /// The extension's address and token when `attached`; `None` otherwise, or without a token.
    pub fn from_lookup(attached: bool, lookup: impl Fn(&str) -> Option<String>) -> Option<SecretsExtension> {
        if !attached {
            return None;
        }
        let token = lookup("AWS_SESSION_TOKEN").filter(|t| !t.is_empty())?;
        let port = lookup("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").and_then(|p| p.trim().parse().ok()).unwrap_or(2773);
        Some(SecretsExtension { port, token })
    }

    /// The secret's `SecretString` at AWSCURRENT, and its `VersionId`. The error says what
    /// failed, never a value.
    pub async fn secret(&self, secret_id: &str) -> Result<ExtensionSecret, String> {
        let mut stream =
            tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.map_err(|e| format!("connecting: {e}"))?;
        let id: String = form_encode(secret_id);
        let request = format!(
            "GET /secretsmanager/get?secretId={id} HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: {}\r\nConnection: close\r\n\r\n",
            self.token
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("writing: {e}"))?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(|e| format!("reading: {e}"))?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        let status = head.split(' ').nth(1).unwrap_or_default();
        if status != "200" {
            return Err(format!("status {status}"));
        }
        let value: serde_json::Value = serde_json::from_str(body).map_err(|_| "not JSON".to_owned())?;
        let text = value["SecretString"].as_str().map(str::to_owned).ok_or_else(|| "no SecretString".to_owned())?;
        Ok(ExtensionSecret { text, version: value["VersionId"].as_str().map(str::to_owned) })
    }
}

/// What the extension served: the value (no `Debug`, so it is never printed) and its version,
/// which tells a stale answer from the version read directly after a refused login.
pub struct ExtensionSecret {
    pub text: String,
    pub version: Option<String>,
}

/// Percent-encodes everything but unreserved characters (a secret id may hold `/`, `+`, `=`).
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_when_attached_and_with_a_token() {
        let env = |name: &str| match name {
            "AWS_SESSION_TOKEN" => Some("t".to_owned()),
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" => Some("3000".to_owned()),
            _ => None,
        };
        assert!(SecretsExtension::from_lookup(false, env).is_none());
        assert_eq!(SecretsExtension::from_lookup(true, env).map(|e| e.port), Some(3000));
        assert!(SecretsExtension::from_lookup(true, |_| None).is_none());
        assert_eq!(form_encode("arn:aws:x/y+z"), "arn%3Aaws%3Ax%2Fy%2Bz");
    }
}
