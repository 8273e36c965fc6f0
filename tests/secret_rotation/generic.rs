//! Generic secrets (no database): a new password, the other fields kept.

use harness_fixtures::secret_rotation::{full_rotation, scene};
use harness_services::secrets::{create_secret, current};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_secrets_rotate_without_an_external_system() {
    let scene = scene().await;
    let id = create_secret(
        &scene.sm,
        "api-key",
        &json!({"username": "partner", "password": "old-api-key", "endpoint": "https://api.example"}),
    )
    .await;
    full_rotation(&scene, &scene.settings, &id, "55555555-5555-4555-8555-555555555555").await;
    let now = current(&scene.sm, &id).await;
    assert_ne!(now["password"], "old-api-key");
    assert_eq!(now["endpoint"], "https://api.example");
    assert_eq!(now["username"], "partner");
}
