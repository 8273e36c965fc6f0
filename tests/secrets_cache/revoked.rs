//! Entries that are no longer readable stop being served: a secret scheduled for deletion
//! (DescribeSecret still answers, with `DeletedDate`), and entries read by version id or
//! parameter version, which never move but can still be deleted or denied, and a version read
//! at a stage the stage has moved off.

use std::time::Duration;

use harness_runtime::sandbox::Sandbox;
use serde_json::Value;

use crate::{read, read_until, secret_path, Scene};

/// Reads `path` until it is no longer served: 10 s at most, room for a refresh against moto on a
/// loaded machine (CI builds beside the tests on two cores).
async fn until_refused(sandbox: &Sandbox, path: &str) -> (u64, Value) {
    read_until(sandbox, path, 500, |(status, _)| *status != 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_scheduled_for_deletion_is_no_longer_served() {
    let scene = Scene::start(Duration::ZERO).await;
    scene.secret("app/doomed", "to-be-deleted").await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/doomed"), ("SECRETS_MANAGER_TTL", "1")]).await;
    assert_eq!(read(&sandbox, &secret_path("app/doomed")).await.1["SecretString"], "to-be-deleted");
    scene
        .sm
        .delete_secret()
        .secret_id("app/doomed")
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("delete_secret with a recovery window");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = until_refused(&sandbox, &secret_path("app/doomed")).await;
    // 404 from the refresh's DescribeSecret; 400 when GetSecretValue answers first (AWS says
    // InvalidRequestException for a secret marked for deletion).
    assert!(status == 404 || status == 400, "{status} {body}");
    assert!(body.get("SecretString").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_read_by_version_are_dropped_once_deleted() {
    let scene = Scene::start(Duration::ZERO).await;
    let version = scene.secret("app/pinned", "pinned-value").await;
    scene.parameter("/app/pinned", "pinned-parameter", aws_sdk_ssm::types::ParameterType::String).await;
    let sandbox = scene.sandbox(&[("SECRETS_MANAGER_TTL", "1"), ("SSM_PARAMETER_STORE_TTL", "1")]).await;
    let secret = format!("{}&versionId={version}", secret_path("app/pinned"));
    let parameter = "/systemsmanager/parameters/get?name=%2Fapp%2Fpinned&version=1";
    assert_eq!(read(&sandbox, &secret).await.1["SecretString"], "pinned-value");
    assert_eq!(read(&sandbox, parameter).await.1["Parameter"]["Value"], "pinned-parameter");

    scene.sm.delete_secret().secret_id("app/pinned").force_delete_without_recovery(true).send().await.expect("delete");
    scene.ssm.delete_parameter().name("/app/pinned").send().await.expect("delete_parameter");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = until_refused(&sandbox, &secret).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.get("SecretString").is_none(), "{body}");
    let (status, body) = until_refused(&sandbox, parameter).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.get("Parameter").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_read_at_its_stage_stops_being_served_once_the_stage_moves_off_it() {
    let scene = Scene::start(Duration::ZERO).await;
    let first = scene.secret("app/staged", "staged-first").await;
    let sandbox = scene.sandbox(&[("SECRETS_MANAGER_TTL", "1")]).await;
    // versionId and versionStage together, as AWS's extension takes them.
    let path = format!("{}&versionId={first}&versionStage=AWSCURRENT", secret_path("app/staged"));
    let (status, body) = read(&sandbox, &path).await;
    assert_eq!((status, body["SecretString"].as_str()), (200, Some("staged-first")), "{body}");
    assert_eq!(body["VersionId"], first.as_str());

    // A rotation: AWSCURRENT moves to a new version, the first keeps AWSPREVIOUS.
    scene.sm.put_secret_value().secret_id("app/staged").secret_string("staged-second").send().await.expect("put");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = until_refused(&sandbox, &path).await;
    assert!(matches!(status, 400 | 404), "{status} {body}");
    assert!(body.get("SecretString").is_none(), "{body}");
    let previous = format!("{}&versionId={first}&versionStage=AWSPREVIOUS", secret_path("app/staged"));
    let (status, body) = read(&sandbox, &previous).await;
    assert_eq!((status, body["SecretString"].as_str()), (200, Some("staged-first")), "{body}");
    sandbox.shutdown().await;
}
