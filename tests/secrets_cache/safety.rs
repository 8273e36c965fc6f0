use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::{read, read_with, secret_path, Scene, TOKEN};

const CANARY: &str = "canary-4b1d-never-printed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_the_address_the_cap_and_no_value_in_any_output() {
    let scene = Scene::start(Duration::ZERO).await;
    scene.secret("app/canary", CANARY).await;
    let sandbox = scene
        .sandbox(&[
            ("SECRETS_CACHE_PREFETCH", "app/canary,app/absent"),
            ("PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL", "debug"),
            ("PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS", "1"),
            ("RUST_LOG", "trace"),
        ])
        .await;

    // The token: missing or wrong is 403, whatever the key.
    for token in [json!(null), json!("wrong"), json!(format!("{TOKEN}x")), json!("")] {
        let (status, body) = read_with(&sandbox, json!({"path": secret_path("app/canary"), "token": token})).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("Forbidden")), "{token}: {body}");
    }
    assert_eq!(read(&sandbox, &secret_path("app/canary")).await.1["SecretString"], CANARY);
    let (status, body) = read(&sandbox, &secret_path("app/absent")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NotFound")), "{body}");
    let (status, _) = read(&sandbox, "/secretsmanager/get").await;
    assert_eq!(status, 400);

    // 127.0.0.1 only: the listening socket's address, and another loopback address refused.
    let tcp = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = format!(":{:04X}", scene.port);
    let listening: Vec<&str> = tcp
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1)?.ends_with(&port) && fields.get(3) == Some(&"0A")).then_some(*fields.get(1)?)
        })
        .collect();
    assert_eq!(listening, vec![format!("0100007F{port}")], "listening on 127.0.0.1 alone");
    let tcp6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    assert!(!tcp6.lines().any(|l| l.split_whitespace().nth(1).is_some_and(|a| a.ends_with(&port))), "no IPv6");
    assert!(TcpStream::connect(("127.0.0.2", scene.port)).is_err());

    // The cap: while one connection is held open, the next is answered 429.
    let held = TcpStream::connect(("127.0.0.1", scene.port)).expect("a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, body) = read(&sandbox, &secret_path("app/canary")).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("TooManyConnections")), "{body}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(read(&sandbox, &secret_path("app/canary")).await.0, 200);

    let report = sandbox.shutdown().await;
    let exited = report.exited_after[0].1.expect("the extension exited at SHUTDOWN");
    assert!(exited < Duration::from_millis(100), "{exited:?}");

    let output = scene.output();
    assert!(output.contains("prefetch"), "the extension logged at debug: {output}");
    assert!(output.contains("SecretsCacheHits"), "its metrics are in the output: {output}");
    assert!(!output.contains(CANARY), "a value in the output:\n{output}");
    assert!(!output.contains(TOKEN), "the token in the output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_is_reported_through_init_error_and_the_extension_exits() {
    let scene = Scene::start(Duration::ZERO).await;
    let mut sandbox = scene.sandbox(&[("SECRETS_MANAGER_TTL", "900")]).await;
    let extensions = sandbox.api.extensions.list();
    let (error_type, body) = extensions[0].init_error.clone().expect("an init/error report");
    assert_eq!(error_type, "Extension.ConfigInvalid");
    assert!(body["errorMessage"].as_str().is_some_and(|m| m.contains("SECRETS_MANAGER_TTL")), "{body}");
    for _ in 0..100 {
        if !sandbox.extension_running(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!sandbox.extension_running(0), "the extension exited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_gives_its_place_under_the_cap_back() {
    use std::io::{Read, Write};
    let scene = Scene::start(Duration::ZERO).await;
    scene.secret("app/idle", "v").await;
    let sandbox = scene
        .sandbox(&[
            ("SECRETS_CACHE_PREFETCH", "app/idle"),
            ("PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS", "1"),
            ("SECRETS_CACHE_IDLE_CONNECTION_MS", "400"),
        ])
        .await;
    // A client that keeps its connection alive after one request, as an HTTP pool does.
    let mut pooled = TcpStream::connect(("127.0.0.1", scene.port)).expect("a connection");
    pooled.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("a request");
    let mut answer = [0u8; 512];
    let read_now = pooled.read(&mut answer).expect("an answer");
    assert!(String::from_utf8_lossy(&answer[..read_now]).starts_with("HTTP/1.1 200"));
    let (status, _) = read(&sandbox, &secret_path("app/idle")).await;
    assert_eq!(status, 429, "the pooled connection holds the only place");
    tokio::time::sleep(Duration::from_millis(900)).await;
    pooled.set_read_timeout(Some(Duration::from_secs(2))).expect("a timeout");
    assert_eq!(pooled.read(&mut answer).unwrap_or(0), 0, "the idle connection was closed");
    assert_eq!(read(&sandbox, &secret_path("app/idle")).await.0, 200, "and its place is free again");
    sandbox.shutdown().await;
}
