use std::time::Duration;

use serde_json::json;

use crate::{read, read_with, secret_path, Scene};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_s_read_during_its_init_is_served_from_the_prefetch() {
    // 150 ms a call: a read that did not wait on the prefetch would make a call of its own.
    let scene = Scene::start(Duration::from_millis(150)).await;
    let version = scene.secret("app/db", r#"{"password":"prefetch-canary-7f3a"}"#).await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/db"), ("READ_AT_INIT", "app/db")]).await;
    assert!(sandbox.init_done_at.is_some(), "init ended: {:?}", sandbox.api.extensions.list());
    assert_eq!(scene.calls("GetSecretValue"), 1, "the prefetch alone: {:?}", scene.front.counts());

    // The first `next` was held until the prefetch was in: init ended after the fetch answered.
    let answered = scene.front.answered_at("GetSecretValue");
    let init_done = sandbox.init_done_at.expect("init done");
    assert!(answered.first().is_some_and(|at| at.into_std() <= init_done), "init ended before the prefetch");

    let (status, body) = read(&sandbox, &secret_path("app/db")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SecretString"], r#"{"password":"prefetch-canary-7f3a"}"#);
    assert_eq!(body["VersionId"], version.as_str());
    assert_eq!(body["Name"], "app/db");
    assert_eq!(body["VersionStages"], json!(["AWSCURRENT"]));
    let answer = sandbox.invoke(&json!({"path": "/ping"}), Duration::from_secs(30)).await.response();
    assert_eq!(answer["init"]["status"], 200, "the read during init: {answer}");
    assert_eq!(answer["init"]["versionId"], version.as_str());
    assert_eq!(scene.calls("GetSecretValue"), 1, "every read was a hit: {:?}", scene.front.counts());
    let report = sandbox.shutdown().await;
    assert!(report.exited_after[0].1.is_some(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extension_s_first_next_waits_for_the_prefetch_up_to_its_deadline() {
    let scene = Scene::start(Duration::from_millis(300)).await;
    scene.secret("app/one", "one").await;
    scene.secret("app/two", "two").await;
    scene.parameter("/app/flag", "on", aws_sdk_ssm::types::ParameterType::String).await;
    // Nothing read at init by the function: only the extension holds init open.
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/one,app/two,ssm:/app/flag")]).await;
    let first_next = sandbox.api.extensions.list()[0].first_next_at.expect("the extension called next");
    // The two secrets in one batch, the parameter beside it.
    let batch = scene.front.answered_at("BatchGetSecretValue");
    let parameter = scene.front.answered_at("GetParameter");
    assert_eq!((batch.len(), parameter.len()), (1, 1), "{:?}", scene.front.counts());
    let answered = [batch[0], parameter[0]];
    assert!(answered.iter().all(|at| at.into_std() <= first_next), "next before the prefetch was in");
    // In parallel: both within one latency of each other, not one after the other.
    let (first, last) = (answered.iter().min().expect("two"), answered.iter().max().expect("two"));
    let spread = last.into_std().saturating_duration_since(first.into_std());
    assert!(spread < Duration::from_millis(250), "{spread:?}");

    // A prefetch slower than its deadline holds init for the deadline only.
    let slow = Scene::start(Duration::from_millis(2500)).await;
    slow.secret("app/slow", "slow").await;
    let sandbox =
        slow.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/slow"), ("SECRETS_CACHE_PREFETCH_DEADLINE_MS", "300")]).await;
    let first_next = sandbox.api.extensions.list()[0].first_next_at.expect("the extension called next");
    let held = first_next.duration_since(sandbox.registered_at);
    assert!(held >= Duration::from_millis(250) && held < Duration::from_millis(2000), "{held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_are_prefetched_and_read_decrypted() {
    let scene = Scene::start(Duration::ZERO).await;
    scene
        .parameter("/app/url", "https://example.test/param-canary", aws_sdk_ssm::types::ParameterType::SecureString)
        .await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "ssm:/app/url")]).await;
    assert_eq!(scene.calls("GetParameter"), 1);
    let (status, body) =
        read_with(&sandbox, json!({"path": "/systemsmanager/parameters/get?name=%2Fapp%2Furl&withDecryption=true"}))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Parameter"]["Value"], "https://example.test/param-canary");
    assert_eq!(body["Parameter"]["Type"], "SecureString");
    assert_eq!(body["Parameter"]["Version"], 1);
    assert_eq!(scene.calls("GetParameter"), 1, "a hit");
    let (status, body) = read(&sandbox, "/systemsmanager/parameters/get?name=%2Fapp%2Fnone").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NotFound")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_prefetched_together_take_one_batch_call() {
    let scene = Scene::start(Duration::ZERO).await;
    let db = scene.secret("app/db", "batch-canary-db").await;
    let api = scene.secret("app/api-key", "batch-canary-api").await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/db,app/api-key")]).await;
    assert!(sandbox.init_done_at.is_some(), "init ended: {:?}", sandbox.api.extensions.list());
    for (id, value, version) in [("app/db", "batch-canary-db", &db), ("app/api-key", "batch-canary-api", &api)] {
        let (status, body) = read(&sandbox, &secret_path(id)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["SecretString"].as_str(), body["VersionId"].as_str()), (Some(value), Some(version.as_str())));
        assert_eq!((body["Name"].as_str(), body["VersionStages"].clone()), (Some(id), json!(["AWSCURRENT"])));
    }
    assert_eq!(
        (scene.calls("BatchGetSecretValue"), scene.calls("GetSecretValue")),
        (1, 0),
        "one batch, and every read a hit: {:?}",
        scene.front.counts()
    );
    sandbox.shutdown().await;
}
