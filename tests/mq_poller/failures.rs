//! Peers that are unreachable, refuse, or go away mid-drain, and a poller killed or frozen
//! mid-drain: nothing is acknowledged that is not stored, nothing is lost, nothing stored twice.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use harness_fixtures::mq_poller::{
    credentials, in_a_minute, scene, schedule_event, scheduled_poll, settings, table_only, until_stored, TABLE,
};
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{create_table, item_bodies, scan_all};
use harness_services::messages::{remaining, send_messages, test_message};
use harness_services::moto::Moto;
use harness_services::stomp::StompClient;
use mq_poller::{handle_payload, Outcome};
use tokio::time::Instant;

// --- Unreachable or refusing peers ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_table_acknowledges_nothing_and_bad_endpoints_fail_clearly() {
    let broker = ActiveMq::start();
    let queue = "kept";
    send_messages(&broker, queue, 0..60).await;

    // DynamoDB unreachable: an error, nothing acknowledged, every message still queued.
    let nowhere = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("k", "s", None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let dynamo = aws_sdk_dynamodb::Client::new(&nowhere);
    let good = settings(&[broker.stomp_url()], queue, None);
    let error = handle_payload(
        &table_only(&dynamo),
        &good,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("writing to DynamoDB failed") && error.contains("not acknowledged"), "{error}");
    assert_eq!(remaining(&broker, queue).await, 60, "every message is still on the queue");

    let scene = scene().await;
    // Wrong password: refused by the broker, named as such, and the password is not echoed.
    let error = handle_payload(
        &scene.aws,
        &good,
        &credentials(activemq::USER, "not-the-Passw0rd"),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("refused the login of user \"mq-user\""), "{error}");
    assert!(!error.contains("not-the-Passw0rd"), "{error}");

    // Unreachable broker.
    let closed = format!("stomp://127.0.0.1:{}", harness_runtime::process::free_port());
    let error = handle_payload(
        &scene.aws,
        &settings(std::slice::from_ref(&closed), queue, None),
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("cannot reach"), "{error}");

    // Active/standby: the first endpoint is down, the second answers.
    send_messages(&broker, queue, 100..110).await;
    let pair = settings(&[closed, broker.stomp_url()], queue, None);
    let outcome = handle_payload(
        &scene.aws,
        &pair,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("the standby answers");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!(summary.endpoint, broker.stomp_url());
    assert_eq!(summary.stored, 10);
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 10);
}

// --- Gone, killed or frozen mid-drain ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_drain_then_run_again_loses_nothing_and_stores_nothing_twice() {
    use harness_runtime::lambda_env::Output;
    use harness_runtime::paths::function_binary;
    use harness_runtime::runtime_api::RuntimeApi;

    let moto = Moto::start();
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_table(&dynamo, TABLE).await;
    let broker = ActiveMq::start();
    let queue = "crashy";
    // Enough that the drain takes a while even on a loaded machine, so the kill lands mid-way.
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;

    let mut env = moto.env();
    for (k, v) in [
        ("TABLE_NAME", TABLE.to_owned()),
        ("QUEUE_NAME", queue.to_owned()),
        ("BROKER_URL", broker.stomp_ssl_url()),
        ("BROKER_CA_BUNDLE", broker.ca.display().to_string()),
        ("BROKER_USERNAME", activemq::USER.to_owned()),
        ("BROKER_PASSWORD", activemq::PASSWORD.to_owned()),
        ("PREFETCH", "50".to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let api = std::sync::Arc::new(RuntimeApi::start().await);
    let mut first = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let invoking = api.clone();
    let first_invoke = tokio::spawn(async move {
        invoking.invoke(&schedule_event(), Duration::from_secs(120)).await;
    });
    // Let it store some, then SIGKILL it mid-drain.
    let started = Instant::now();
    loop {
        let described = dynamo.describe_table().table_name(TABLE).send().await.expect("describe_table");
        let stored = described.table().and_then(|t| t.item_count()).unwrap_or_default();
        if stored >= 100 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the first run stored nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().expect("SIGKILL");
    let _ = first.0.wait();
    first_invoke.abort();
    let partial = scan_all(&dynamo, TABLE).await.len();
    assert!(partial < COUNT, "killed too late to test anything ({partial} stored)");

    let api = RuntimeApi::start().await;
    let _second = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let summary = api.invoke(&schedule_event(), Duration::from_secs(120)).await.response();
    assert_eq!(summary["mode"], "poll", "{summary}");

    let items = scan_all(&dynamo, TABLE).await;
    assert_eq!(items.len(), COUNT, "every message is in the table, none twice (killed after {partial})");
    assert_eq!(item_bodies(&items), (0..COUNT).map(|i| test_message(i).0).collect::<BTreeSet<_>>());
    let redelivered = items.iter().filter(|i| i.get("redelivered") == Some(&AttributeValue::Bool(true))).count();
    assert!(redelivered > 0, "the unacknowledged ones came back marked redelivered");
    assert_eq!(remaining(&broker, queue).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_gone_mid_drain_fails_the_poll_and_loses_nothing() {
    use harness_services::aws_front::AwsFront;
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "table-gone";
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;
    // The function reaches DynamoDB through a front that the test cuts mid-drain, answers lost
    // on the way included; moto itself keeps what was written.
    let front = AwsFront::start(scene.moto.port, Duration::ZERO, Vec::new()).await;
    let config = scene.moto.sdk_config().await;
    let through_front = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config).endpoint_url(front.endpoint()).build(),
    );
    let settings = settings(&[broker.stomp_url()], queue, None);
    let credentials = credentials(activemq::USER, activemq::PASSWORD);
    let (aws, event) = (table_only(&through_front), schedule_event());
    let polling = handle_payload(&aws, &settings, &credentials, &event, in_a_minute());
    let cutting = async {
        until_stored(&scene.dynamo, 200).await;
        front.cut();
    };
    let (result, ()) = tokio::join!(polling, cutting);
    let error = result.expect_err("the table went away");
    assert_eq!(error.error_type(), "StoreUnavailable", "{error}");
    assert!(error.to_string().contains("not acknowledged"), "{error}");

    // Nothing is lost: what is not in the table is still on the queue (a message stored but not
    // acknowledged is in both, and its redelivery overwrites its own item).
    let stored = item_bodies(&scan_all(&scene.dynamo, TABLE).await);
    assert!(stored.len() < COUNT, "cut too late to test anything");
    let consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    let left: BTreeSet<Vec<u8>> =
        consumer.drain(queue, Duration::from_millis(1500)).await.into_iter().map(|(_, body)| body).collect();
    let all: BTreeSet<Vec<u8>> = (0..COUNT).map(|i| test_message(i).0).collect();
    assert_eq!(stored.union(&left).cloned().collect::<BTreeSet<_>>(), all, "every message is stored or still queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_drain_fails_the_poll_and_the_next_poll_completes_the_table() {
    let scene = scene().await;
    let mut broker = ActiveMq::start();
    let queue = "broker-restart";
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;
    let settings = settings(&[broker.stomp_ssl_url()], queue, Some(&broker.ca));
    let credentials = credentials(activemq::USER, activemq::PASSWORD);
    let event = schedule_event();
    let polling = handle_payload(&scene.aws, &settings, &credentials, &event, in_a_minute());
    let restarting = async {
        until_stored(&scene.dynamo, 200).await;
        // The broker dies with acknowledgements in flight, and comes back with its store.
        tokio::task::block_in_place(|| broker.restart());
    };
    let (result, ()) = tokio::join!(polling, restarting);
    let error = result.expect_err("the broker went away mid-drain");
    assert!(
        ["BrokerProtocolError", "BrokerUnreachable", "AllEndpointsFailed"].contains(&error.error_type()),
        "{}: {error}",
        error.error_type()
    );
    let partial = scan_all(&scene.dynamo, TABLE).await.len();
    assert!(partial < COUNT, "restarted too late to test anything");

    let summary = scheduled_poll(&scene.aws, &settings, &credentials, "the next poll").await;
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(
        items.len(),
        COUNT,
        "every message once (the first poll stored {partial}, the second {})",
        summary.stored
    );
    assert_eq!(item_bodies(&items), (0..COUNT).map(|i| test_message(i).0).collect::<BTreeSet<_>>());
    assert_eq!(remaining(&broker, queue).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_frozen_mid_drain_stops_beating_and_the_broker_hands_its_messages_on() {
    use harness_runtime::lambda_env::Output;
    use harness_runtime::paths::function_binary;
    use harness_runtime::runtime_api::RuntimeApi;

    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "frozen";
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;
    let mut env = scene.moto.env();
    for (k, v) in [
        ("TABLE_NAME", TABLE.to_owned()),
        ("QUEUE_NAME", queue.to_owned()),
        ("BROKER_URL", broker.stomp_url()),
        ("BROKER_USERNAME", activemq::USER.to_owned()),
        ("BROKER_PASSWORD", activemq::PASSWORD.to_owned()),
        // A short beat, so the test is quick.
        ("PREFETCH", "100".to_owned()),
        // (With 0, no beats, the frozen poll keeps what it was sent and this test fails.)
        ("BROKER_HEARTBEAT_MS", "1000".to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let api = std::sync::Arc::new(RuntimeApi::start().await);
    let mut function = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let invoking = api.clone();
    let invocation = tokio::spawn(async move { invoking.invoke(&schedule_event(), Duration::from_secs(120)).await });
    until_stored(&scene.dynamo, 200).await;
    // Lambda freezes an environment that times out (or whose invocation is abandoned) with its
    // sockets open: SIGSTOP does the same to the process.
    let pid = function.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().expect("kill -STOP").success());
    let stored = item_bodies(&scan_all(&scene.dynamo, TABLE).await);

    // Another consumer gets everything not stored, the frozen poll's prefetched messages too,
    // once the broker has given up on the silent connection.
    let consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    // (The broker checks for beats at 1.5 times the interval, so a few seconds of quiet.)
    let taken: BTreeSet<Vec<u8>> =
        consumer.drain(queue, Duration::from_secs(10)).await.into_iter().map(|(_, body)| body).collect();
    let _ = function.0.kill();
    let _ = function.0.wait();
    invocation.abort();
    assert!(stored.len() < COUNT, "froze too late to test anything");
    let all: BTreeSet<Vec<u8>> = (0..COUNT).map(|i| test_message(i).0).collect();
    let missing = all.len() - stored.union(&taken).count();
    assert_eq!(
        missing,
        0,
        "messages held by the frozen poll: {missing} (stored {}, taken {})",
        stored.len(),
        taken.len()
    );
}
