use std::time::Duration;

use mq_poller::{BrokerCredentials, CredentialSource, CredentialsProvider, SecretsExtension};

use crate::{Scene, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_poller_reads_its_broker_secret_through_the_extension_and_directly_after_a_refusal() {
    let scene = Scene::start(Duration::from_millis(5)).await;
    scene.secret("mq/broker", r#"{"username":"poller","password":"first-pass"}"#).await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "mq/broker")]).await;
    assert_eq!(scene.calls("GetSecretValue"), 1, "the prefetch");

    let port = scene.port.to_string();
    let env = |name: &str| match name {
        "AWS_SESSION_TOKEN" => Some(TOKEN.to_owned()),
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" => Some(port.clone()),
        _ => None,
    };
    let direct = scene.front_client().await;
    let provider = || {
        CredentialsProvider::with_ttl(
            CredentialSource::Secret("mq/broker".into()),
            Some(direct.clone()),
            Duration::ZERO,
        )
        .through_extension(SecretsExtension::from_lookup(true, env))
    };
    let credentials = provider();
    let first = credentials.get().await.expect("credentials");
    assert_eq!(first, BrokerCredentials::new("poller", "first-pass"));
    assert_eq!(scene.calls("GetSecretValue"), 1, "read through the extension: {:?}", scene.front.counts());

    // Rotated: the extension still holds the old version; a refused login reads Secrets Manager.
    scene
        .sm
        .put_secret_value()
        .secret_id("mq/broker")
        .secret_string(r#"{"username":"poller","password":"second-pass"}"#)
        .send()
        .await
        .expect("put_secret_value");
    let fresh = credentials.refresh_after_refusal(&first).await.expect("refresh");
    assert_eq!(fresh, Some(BrokerCredentials::new("poller", "second-pass")));
    assert_eq!(scene.calls("GetSecretValue"), 2, "straight from Secrets Manager");

    // Past its TTL (zero here) the same provider reads again: the extension still serves the
    // refused version for its own TTL, so it is not believed until it has the new one.
    let next = credentials.get().await.expect("credentials after the refusal");
    assert_eq!(next, BrokerCredentials::new("poller", "second-pass"));
    assert_eq!(scene.calls("GetSecretValue"), 3, "still straight from Secrets Manager");

    // Without the extension (gone), the SDK.
    sandbox.shutdown().await;
    let again = provider().get().await.expect("credentials from the SDK");
    assert_eq!(again, BrokerCredentials::new("poller", "second-pass"));
    assert_eq!(scene.calls("GetSecretValue"), 4);
}
