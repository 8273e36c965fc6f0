//! Broker credentials from Secrets Manager: a warm environment follows a password rotated
//! between two polls, also when the standby of an active/standby pair cannot be reached (any
//! reachable endpoint refusing the login is reason to read the secret again).

use harness_fixtures::mq_poller::{in_a_minute, schedule_event, scheduled_poll, settings, table_only, TABLE};
use harness_services::dynamo::{create_table, scan_all};
use harness_services::moto::Moto;
use harness_services::rabbitmq::{self, RabbitMq};
use mq_poller::handle_payload;
use mq_poller::{CredentialSource, CredentialsProvider};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_environment_follows_a_broker_password_rotated_between_two_polls() {
    follows_a_rotated_password(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_password_is_followed_while_the_standby_is_down() {
    follows_a_rotated_password(true).await;
}

async fn follows_a_rotated_password(standby_down: bool) {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, TABLE).await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let secret = |password: &str| json!({"username": rabbitmq::USER, "password": password}).to_string();
    sm.create_secret().name("broker").secret_string(secret(rabbitmq::PASSWORD)).send().await.expect("secret");
    // One provider for both polls: one warm execution environment.
    let provider = CredentialsProvider::new(CredentialSource::Secret("broker".into()), Some(sm.clone()));

    let broker = RabbitMq::start();
    let queue = "rotating";
    let publish = |range: std::ops::Range<usize>, password: &'static str| {
        let url = format!("amqp://{}:{password}@127.0.0.1:{}/%2f", rabbitmq::USER, broker.port);
        async move {
            let connection =
                Connection::connect(&url, ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
            let channel = connection.create_channel().await.expect("channel");
            channel
                .queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default())
                .await
                .expect("declare");
            for i in range {
                let properties = BasicProperties::default().with_message_id(format!("r-{i}").into());
                let body = format!("rotation message {i}");
                channel
                    .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body.as_bytes(), properties)
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
            }
            let _ = connection.close(200, "done".into()).await;
        }
    };
    // The standby's port has nothing listening: the active refuses, the standby cannot be reached.
    let standby = format!("amqp://127.0.0.1:{}", harness_runtime::process::free_port());
    let urls = if standby_down { vec![broker.broker_url(), standby] } else { vec![broker.broker_url()] };
    let settings = settings(&urls, queue, None);
    publish(0..5, rabbitmq::PASSWORD).await;
    handle_payload(&table_only(&dynamo), &settings, &provider, &schedule_event(), in_a_minute())
        .await
        .expect("first poll");

    // The operator rotates the broker's password, and the secret with it.
    broker.change_password(rabbitmq::USER, "rotated-Passw0rd");
    sm.put_secret_value()
        .secret_id("broker")
        .secret_string(secret("rotated-Passw0rd"))
        .send()
        .await
        .expect("new secret version");
    publish(5..10, "rotated-Passw0rd").await;

    let summary = scheduled_poll(
        &table_only(&dynamo),
        &settings,
        &provider,
        "the refused login re-reads the secret and the poll goes on",
    )
    .await;
    assert_eq!(summary.stored, 5);
    assert_eq!(scan_all(&dynamo, TABLE).await.len(), 10);
}
