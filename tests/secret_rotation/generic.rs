//! Generic secrets (no database): a new password, the other fields kept.

use harness_fixtures::secret_rotation::{full_rotation, scene, step};
use harness_services::rotation::{begin_rotation, end_rotation};
use harness_services::secrets::{create_secret, current, current_version};
use secret_rotation::Settings;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_secret_without_the_field_to_rotate_is_refused_not_rotated_into_a_no_op() {
    let scene = scene().await;
    let id = create_secret(&scene.sm, "api-key-only", &json!({"api_key": "old-key"})).await;
    let before = current_version(&scene.sm, &id).await;
    let token = "56565656-5656-4565-8565-565656565656";
    begin_rotation(&scene.sm, &id, token).await;
    let error = step(&scene, &scene.settings, "createSecret", &id, token).await.expect_err("refused");
    assert_eq!(error.error_type(), "MalformedSecret", "{error}");
    assert!(error.to_string().contains("GENERIC_FIELD"), "the error says what to set: {error}");
    assert!(!error.to_string().contains("old-key"));
    assert_eq!(current_version(&scene.sm, &id).await, before);
    // Told which field it is, the function rotates that one.
    let settings = Settings { generic_field: "api_key".into(), ..scene.settings.clone() };
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.expect(name);
    }
    end_rotation(&scene.sm, &id, token).await;
    let now = current(&scene.sm, &id).await;
    assert!(now["api_key"].as_str().is_some_and(|k| k != "old-key"), "{now}");
    assert!(now.get("password").is_none(), "no field is added");
}
