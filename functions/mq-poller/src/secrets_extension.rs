//! The broker secret through the secrets-cache extension, when its layer is attached
//! (`/opt/extensions/secrets-cache` exists): plain HTTP to 127.0.0.1 on its port, with the
//! session token it checks. The extension had it fetched during init, so the first poll reads
//! no Secrets Manager. Any failure here, an exchange over `TIMEOUT` or an answer over
//! `MAX_ANSWER` included, is the caller's cue to read the secret with the SDK.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Lambda puts the extension when its layer is attached.
pub const EXTENSION_PATH: &str = "/opt/extensions/secrets-cache";

/// How long one exchange may take, connecting included: the extension answers from memory or
/// waits on one fetch; a hung or overloaded extension must not hold the poll, the SDK takes over.
pub const TIMEOUT: Duration = Duration::from_millis(1500);
/// The largest answer read: a secret is at most 64 KB, its JSON answer fits well under this.
pub const MAX_ANSWER: u64 = 128 * 1024;

pub struct SecretsExtension {
    port: u16,
    token: String,
    timeout: Duration,
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
        Some(SecretsExtension { port, token, timeout: TIMEOUT })
    }

    /// The secret's `SecretString` at AWSCURRENT, and its `VersionId`. The error says what
    /// failed, never a value.
    pub async fn secret(&self, secret_id: &str) -> Result<ExtensionSecret, String> {
        let answer = tokio::time::timeout(self.timeout, self.exchange(secret_id))
            .await
            .map_err(|_| format!("no answer within {} ms", self.timeout.as_millis()))??;
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

impl SecretsExtension {
    /// One request, one answer (the connection closed after it), at most `MAX_ANSWER` bytes.
    async fn exchange(&self, secret_id: &str) -> Result<Vec<u8>, String> {
        let mut stream =
            tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.map_err(|e| format!("connecting: {e}"))?;
        let id: String = form_encode(secret_id);
        let request = format!(
            "GET /secretsmanager/get?secretId={id} HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: {}\r\nConnection: close\r\n\r\n",
            self.token
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("writing: {e}"))?;
        let mut answer = Vec::new();
        (&mut stream).take(MAX_ANSWER + 1).read_to_end(&mut answer).await.map_err(|e| format!("reading: {e}"))?;
        if answer.len() as u64 > MAX_ANSWER {
            return Err(format!("an answer over {} KB", MAX_ANSWER / 1024));
        }
        Ok(answer)
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

    /// An extension on a free port that answers each connection with `answer` (after reading the
    /// request), or never answers when `None`.
    async fn extension(answer: Option<Vec<u8>>) -> (SecretsExtension, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            match answer {
                Some(answer) => {
                    let _ = stream.write_all(&answer).await;
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        });
        let timeout = Duration::from_millis(300);
        (SecretsExtension { port, token: "t".into(), timeout }, server)
    }

    #[tokio::test]
    async fn an_extension_that_does_not_answer_is_given_up_on_in_time() {
        let (extension, server) = extension(None).await;
        let started = std::time::Instant::now();
        let outcome = extension.secret("s").await.map(|_| ());
        assert!(outcome.as_ref().is_err_and(|e| e.contains("no answer within")), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        server.abort();
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n{\"SecretString\":\"".to_vec();
        answer.extend(std::iter::repeat_n(b'a', 200 * 1024));
        answer.extend(b"\"}");
        let (extension, server) = extension(Some(answer)).await;
        let outcome = extension.secret("s").await.map(|_| ());
        assert!(outcome.as_ref().is_err_and(|e| e.contains("over 128 KB")), "{outcome:?}");
        server.abort();
    }

    #[tokio::test]
    async fn a_plain_answer_gives_the_value_and_its_version() {
        let answer = b"HTTP/1.1 200 OK\r\n\r\n{\"SecretString\":\"v\",\"VersionId\":\"id-1\"}".to_vec();
        let (extension, server) = extension(Some(answer)).await;
        let secret = extension.secret("s").await.expect("answer");
        assert_eq!((secret.text.as_str(), secret.version.as_deref()), ("v", Some("id-1")));
        server.abort();
    }
}
