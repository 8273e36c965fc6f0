use std::time::Duration;

use crate::{read, read_until, secret_path, Scene};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_is_served_after_the_ttl_with_one_describe_and_one_fetch() {
    let scene = Scene::start(Duration::from_millis(5)).await;
    let first = scene.secret("app/rotated", "value-one").await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/rotated"), ("SECRETS_MANAGER_TTL", "1")]).await;
    assert_eq!(read(&sandbox, &secret_path("app/rotated")).await.1["SecretString"], "value-one");

    // A rotation: the new version staged AWSPENDING, then AWSCURRENT moved onto it.
    let put = scene
        .sm
        .put_secret_value()
        .secret_id("app/rotated")
        .secret_string("value-two")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("put_secret_value");
    let second = put.version_id().expect("version").to_owned();
    scene
        .sm
        .update_secret_version_stage()
        .secret_id("app/rotated")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&second)
        .remove_from_version_id(&first)
        .send()
        .await
        .expect("moving AWSCURRENT");
    scene.front.reset();

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Past it: served at once, refreshed beside the invoke.
    let (status, body) = read(&sandbox, &secret_path("app/rotated")).await;
    assert_eq!(status, 200);
    assert!(body["SecretString"] == "value-one" || body["SecretString"] == "value-two", "{body}");
    // Within 2 s: the refresh is two calls at 5 ms each, on a busy machine.
    let served = if body["SecretString"] == "value-two" {
        body
    } else {
        read_until(&sandbox, &secret_path("app/rotated"), 100, |(_, b)| b["SecretString"] == "value-two").await.1
    };
    assert_eq!(served["SecretString"], "value-two");
    assert_eq!(served["VersionId"], second.as_str());
    assert_eq!((scene.calls("DescribeSecret"), scene.calls("GetSecretValue")), (1, 1), "{:?}", scene.front.counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_secret_costs_one_describe_and_no_fetch_after_its_ttl() {
    let scene = Scene::start(Duration::ZERO).await;
    scene.secret("app/still", "unchanged").await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/still"), ("SECRETS_MANAGER_TTL", "1")]).await;
    scene.front.reset();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(read(&sandbox, &secret_path("app/still")).await.1["SecretString"], "unchanged");
    for _ in 0..100 {
        if scene.calls("DescribeSecret") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(read(&sandbox, &secret_path("app/still")).await.1["SecretString"], "unchanged");
    assert_eq!((scene.calls("DescribeSecret"), scene.calls("GetSecretValue")), (1, 0), "{:?}", scene.front.counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_served_stale_up_to_the_bound_then_answered_with_an_error() {
    let scene = Scene::start(Duration::ZERO).await;
    scene.secret("app/outage", "kept-through-outage").await;
    let sandbox = scene
        .sandbox(&[
            ("SECRETS_CACHE_PREFETCH", "app/outage"),
            ("SECRETS_MANAGER_TTL", "1"),
            ("SECRETS_CACHE_STALE_MAX_SECONDS", "2"),
            ("SECRETS_MANAGER_TIMEOUT_MILLIS", "500"),
        ])
        .await;
    let fetched = std::time::Instant::now();
    scene.front.cut();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = read(&sandbox, &secret_path("app/outage")).await;
    assert_eq!((status, body["SecretString"].as_str()), (200, Some("kept-through-outage")), "stale within the bound");
    // Past TTL + bound (3 s): no longer served.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(fetched.elapsed()) + Duration::from_millis(200)).await;
    let (status, body) = read(&sandbox, &secret_path("app/outage")).await;
    assert!(status == 502 || status == 504, "{status} {body}");
    assert!(matches!(body["error"].as_str(), Some("UpstreamUnavailable" | "UpstreamTimeout")), "{body}");
    assert!(body.get("SecretString").is_none());
    scene.front.restore();
    let (status, body) = read(&sandbox, &secret_path("app/outage")).await;
    assert_eq!((status, body["SecretString"].as_str()), (200, Some("kept-through-outage")), "back once it is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_size_of_zero_starts_and_fetches_every_read() {
    let scene = Scene::start(Duration::ZERO).await;
    scene.secret("app/uncached", "read-each-time").await;
    // AWS's documented "no caching": init must not fail on it.
    let sandbox = scene.sandbox(&[("PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE", "0")]).await;
    scene.front.reset();
    for _ in 0..2 {
        assert_eq!(read(&sandbox, &secret_path("app/uncached")).await.1["SecretString"], "read-each-time");
    }
    assert_eq!(scene.calls("GetSecretValue"), 2, "{:?}", scene.front.counts());
}
