//! mq-poller's large-message scenario, shared by its memory test and its bench: seventy 4 MiB
//! messages, more in all than the function's memory, on a queue of either broker, drained by a
//! built mq-poller binary run as a Lambda function of a given memory size, its peak RSS read.

use std::path::Path;
use std::time::{Duration, Instant};

use harness_runtime::lambda_env::Output;
use harness_runtime::process::peak_rss_kib;
use harness_runtime::runtime_api::RuntimeApi;

use crate::activemq::{self, ActiveMq};
use crate::rabbitmq::RabbitMq;
use crate::stomp::StompClient;

pub const COUNT: usize = 70;
pub const BODY_BYTES: usize = 4 * 1024 * 1024;
/// Each message carries its index in this header, so a reader can tell which body it holds.
pub const INDEX_HEADER: &str = "x-index";

/// Message `i`'s body: 4 MiB that neither compress nor repeat across messages.
pub fn body(i: usize) -> Vec<u8> {
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut body = Vec::with_capacity(BODY_BYTES);
    while body.len() < BODY_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        body.extend_from_slice(&state.to_le_bytes());
    }
    body
}

/// Sends the messages to `queue` over STOMP, persistent.
pub async fn send_to_activemq(broker: &ActiveMq, queue: &str) {
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 0..COUNT {
        producer.send(queue, &body(i), &[(INDEX_HEADER, &i.to_string())]).await;
    }
    producer.flush().await;
}

/// Declares `queue` and publishes the messages to it, each confirmed, with a `message_id`.
pub async fn send_to_rabbitmq(broker: &RabbitMq, queue: &str) {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for i in 0..COUNT {
        let mut headers = FieldTable::default();
        headers.insert(INDEX_HEADER.into(), AMQPValue::LongString(i.to_string().into()));
        let properties = BasicProperties::default().with_message_id(format!("large-{i}").into()).with_headers(headers);
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), &body(i), properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    let _ = connection.close(200, "published".into()).await;
}

/// How many messages `queue` still holds on RabbitMQ.
pub async fn left_on_rabbitmq(broker: &RabbitMq, queue: &str) -> u32 {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    use lapin::{Connection, ConnectionProperties};
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let left = channel.queue_declare(queue.into(), passive, FieldTable::default()).await.expect("passive declare");
    left.message_count()
}

/// One drain: the poll's summary, the process's peak RSS in KiB, the invocation's wall time.
pub struct Drained {
    pub summary: serde_json::Value,
    pub peak_kib: u64,
    pub elapsed: Duration,
}

/// The function's variables for a drain of `queue` at `broker` (`url`, user, password) into
/// `table` and `bucket`, as a function of `memory_mb`, beside the AWS stand-ins' `aws_env`.
pub fn function_env(
    aws_env: &[(String, String)],
    (table, bucket): (&str, &str),
    (url, user, password): (&str, &str, &str),
    queue: &str,
    memory_mb: u64,
) -> Vec<(String, String)> {
    let mut env = aws_env.to_vec();
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("TABLE_NAME", table.to_owned()),
        ("BODY_BUCKET", bucket.to_owned()),
        ("QUEUE_NAME", queue.to_owned()),
        ("BROKER_URL", url.to_owned()),
        ("BROKER_USERNAME", user.to_owned()),
        ("BROKER_PASSWORD", password.to_owned()),
        ("IDLE_TIMEOUT_MS", "3000".to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    env
}

/// Runs one scheduled poll of the mq-poller `binary` with `env` through a Runtime API of its own.
pub async fn drain_with(binary: &Path, env: &[(String, String)], output: Output) -> Drained {
    let api = RuntimeApi::start().await;
    let function = api.spawn_function(binary, "mq-poller", env, output);
    let event = harness_runtime::paths::read_event("mq-scheduled-poll.json");
    let started = Instant::now();
    let summary = api.invoke(&event, Duration::from_secs(600)).await.response();
    let elapsed = started.elapsed();
    Drained { summary, peak_kib: peak_rss_kib(function.0.id()), elapsed }
}
