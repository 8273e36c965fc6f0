//! Benchmark: mq-poller moving messages from ActiveMQ (STOMP) to DynamoDB (moto) in one
//! invocation, beside the seed's design measured in the same run: acknowledge on delivery and one
//! PutItem per message. For 1,000 and 10,000 messages; prints messages per second and DynamoDB
//! requests per message, and writes bench-results/mq-poller.md.
//!
//! Both sides write to the same moto server on this machine, first straight to it (the rates are
//! then bounded by moto's own cost per item), then through a front that adds 5 ms to every
//! request, a typical in-region round trip, where requests in flight decide the rate, as against
//! AWS. The requests per message are what AWS would bill and throttle.
//!
//! Then large messages: seventy 4 MiB bodies from each broker, drained by the release binary run
//! as a 256 MB function (bodies to the bucket), with its peak RSS and rate.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use harness_runtime::paths::publish_bench_table;
use harness_services::activemq::{self, ActiveMq};
use harness_services::aws_front::AwsFront;
use harness_services::call_counter::CallCounter;
use harness_services::dynamo::{create_table, scan_all};
use harness_services::moto::Moto;
use harness_services::rabbitmq::{self, RabbitMq};
use harness_services::stomp::StompClient;
use mq_poller::{handle_payload, AwsClients, Outcome, Settings};
use mq_poller::{now_ms, BrokerMessage};
use mq_poller::{BrokerCredentials, CredentialSource, CredentialsProvider};

const SIZES: [usize; 2] = [1_000, 10_000];

struct Row {
    /// 0: straight to moto.
    latency_ms: u64,
    messages: usize,
    design: String,
    elapsed: Duration,
    requests: usize,
}

async fn fill(broker: &ActiveMq, queue: &str, count: usize) {
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 0..count {
        producer
            .send(
                queue,
                format!("{{\"order\": {i}, \"item\": \"benchmark payload of a typical small message\"}}").as_bytes(),
                &[("x-order", &i.to_string())],
            )
            .await;
    }
    producer.flush().await;
}

/// How DynamoDB is reached: straight to moto (its own cost per item only), and through the front
/// with 5 ms added to every request, a typical in-region round trip, where the number of
/// requests in flight decides the rate (the front also opens a connection to moto per request).
const LATENCIES_MS: [Option<u64>; 2] = [None, Some(5)];

/// mq-poller's PREFETCH settings measured: the default, and a window for four writes in flight.
const PREFETCHES: [&str; 2] = ["100", "200"];

#[tokio::main]
async fn main() {
    let moto = Moto::start();
    let broker = ActiveMq::start();
    let config = moto.sdk_config().await;
    let credentials = CredentialsProvider::new(
        CredentialSource::Given(BrokerCredentials::new(activemq::USER, activemq::PASSWORD)),
        None,
    );
    let event = harness_runtime::paths::read_event("mq-scheduled-poll.json");
    let mut rows = Vec::new();

    for latency in LATENCIES_MS {
        let front = AwsFront::start(moto.port, Duration::from_millis(latency.unwrap_or_default()), Vec::new()).await;
        let endpoint = if latency.is_some() { front.endpoint() } else { moto.endpoint.clone() };
        let latency_ms = latency.unwrap_or_default();
        let counter = CallCounter::default();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .endpoint_url(endpoint)
                .interceptor(counter.clone())
                .build(),
        );
        let aws = AwsClients { dynamo: dynamo.clone(), s3: None };
        for count in SIZES {
            for prefetch in PREFETCHES {
                // mq-poller: batches of up to 25 per request, several requests in flight, each
                // message acknowledged after it is stored.
                let name = format!("bench-{latency_ms}-{count}-{prefetch}");
                create_table(&dynamo, &name).await;
                fill(&broker, &name, count).await;
                let settings = Settings::from_lookup(|variable| match variable {
                    "TABLE_NAME" | "QUEUE_NAME" => Some(name.clone()),
                    "BROKER_URL" => Some(broker.stomp_url()),
                    "IDLE_TIMEOUT_MS" => Some("500".into()),
                    "PREFETCH" => Some(prefetch.into()),
                    _ => None,
                })
                .expect("settings");
                counter.reset();
                let start = Instant::now();
                let outcome = handle_payload(
                    &aws,
                    &settings,
                    &credentials,
                    &event,
                    tokio::time::Instant::now() + Duration::from_secs(900),
                )
                .await
                .expect("poll");
                // The idle wait at the end is not work: take it off.
                let elapsed = start.elapsed().saturating_sub(settings.idle_timeout);
                let Outcome::Poll(summary) = outcome else { panic!("poll") };
                assert_eq!(summary.stored as usize, count);
                assert_eq!(scan_all(&dynamo, &name).await.len(), count);
                let design = format!("mq-poller, PREFETCH {prefetch} ({} per poll batch)", settings.poll_batch());
                rows.push(Row { latency_ms, messages: count, design, elapsed, requests: counter.total() });
                eprintln!("measured mq-poller with {count} messages, {latency_ms} ms, PREFETCH {prefetch}");
            }

            // The seed's design: acknowledge on delivery, one PutItem per message.
            let name = format!("seed-{latency_ms}-{count}");
            create_table(&dynamo, &name).await;
            fill(&broker, &name, count).await;
            let mut consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
            consumer.subscribe_auto(&name).await;
            counter.reset();
            let start = Instant::now();
            let mut stored = 0;
            while let Some((id, headers, body)) = consumer.next_message(Duration::from_millis(500)).await {
                let message = BrokerMessage {
                    id,
                    body: body.into(),
                    headers: headers.into_iter().map(|(k, v)| (k, mq_poller::HeaderValue::Text(v))).collect(),
                    redelivered: false,
                    queue: name.clone(),
                    received_at_ms: now_ms(),
                };
                dynamo
                    .put_item()
                    .table_name(&name)
                    .set_item(Some(message.to_item(None)))
                    .send()
                    .await
                    .expect("put_item");
                stored += 1;
            }
            let elapsed = start.elapsed().saturating_sub(Duration::from_millis(500));
            let requests = counter.total();
            assert_eq!(stored, count);
            assert_eq!(scan_all(&dynamo, &name).await.len(), count);
            rows.push(Row {
                latency_ms,
                messages: count,
                design: "seed design (ack on delivery, PutItem each)".into(),
                elapsed,
                requests,
            });
            eprintln!("measured the seed design with {count} messages, {latency_ms} ms");
        }
    }

    let mut table = String::new();
    let _ = writeln!(table, "mq-poller, ActiveMQ (STOMP) to DynamoDB (moto, with the added latency per request), one invocation, in-process, release build\n");
    let _ = writeln!(table, "| added latency | messages | design | wall time | messages/s | x seed | DynamoDB requests | requests per message |");
    let _ = writeln!(table, "|---:|---:|---|---:|---:|---:|---:|---:|");
    for row in &rows {
        let rate = |r: &Row| r.messages as f64 / r.elapsed.as_secs_f64();
        let seed = rows
            .iter()
            .find(|r| r.latency_ms == row.latency_ms && r.messages == row.messages && r.design.starts_with("seed"));
        let _ = writeln!(
            table,
            "| {} | {} | {} | {:.2} s | {:.0} | {:.1} | {} | {:.3} |",
            if row.latency_ms == 0 {
                "none (straight to moto)".to_owned()
            } else {
                format!("{} ms (through the front)", row.latency_ms)
            },
            row.messages,
            row.design,
            row.elapsed.as_secs_f64(),
            rate(row),
            seed.map_or(f64::NAN, |seed| rate(row) / rate(seed)),
            row.requests,
            row.requests as f64 / row.messages as f64
        );
    }
    table.push_str(&large_message_rows(&moto, &config, &broker).await);
    publish_bench_table("mq-poller", &table);
}

/// The function's memory in the large-message rows.
const LARGE_MEMORY_MB: u64 = 256;

/// Seventy 4 MiB messages from each broker drained by the release binary as a 256 MB function.
async fn large_message_rows(moto: &Moto, config: &aws_config::SdkConfig, activemq: &ActiveMq) -> String {
    use harness_services::large_messages::{self as large, Drained};
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    let s3 = harness_services::s3::path_style_client(config);
    let rabbitmq = RabbitMq::start();
    let binary = harness_runtime::paths::release_binary("mq-poller");
    let mut table = String::new();
    let _ = writeln!(table, "\nLarge messages: {} bodies of 4 MiB drained by the release binary as a {LARGE_MEMORY_MB} MB function (byte budget {} MiB), bodies to the bucket (moto), one invocation\n", large::COUNT, LARGE_MEMORY_MB / 4);
    let _ = writeln!(table, "| broker | peak RSS | wall time | messages/s | MiB/s |");
    let _ = writeln!(table, "|---|---:|---:|---:|---:|");
    for engine in ["ActiveMQ (STOMP)", "RabbitMQ (AMQP)"] {
        let name = format!("large-{}", if engine.starts_with("Active") { "activemq" } else { "rabbitmq" });
        create_table(&dynamo, &name).await;
        s3.create_bucket().bucket(&name).send().await.expect("create_bucket");
        let broker = if engine.starts_with("Active") {
            large::send_to_activemq(activemq, &name).await;
            (activemq.stomp_url(), activemq::USER, activemq::PASSWORD)
        } else {
            large::send_to_rabbitmq(&rabbitmq, &name).await;
            (rabbitmq.broker_url(), rabbitmq::USER, rabbitmq::PASSWORD)
        };
        let env =
            large::function_env(&moto.env(), (&name, &name), (&broker.0, broker.1, broker.2), &name, LARGE_MEMORY_MB);
        let Drained { summary, peak_kib, elapsed } =
            large::drain_with(&binary, &env, harness_runtime::lambda_env::Output::Discard).await;
        assert_eq!(summary["stored"].as_u64(), Some(large::COUNT as u64), "{summary}");
        // The idle wait at the end (IDLE_TIMEOUT_MS) is not work.
        let work = elapsed.saturating_sub(Duration::from_secs(3)).as_secs_f64();
        let mib = (large::COUNT * large::BODY_BYTES) as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            table,
            "| {engine} | {} MiB | {:.2} s | {:.1} | {:.0} |",
            peak_kib / 1024,
            work,
            large::COUNT as f64 / work,
            mib / work
        );
        eprintln!("measured {} large messages from {engine}", large::COUNT);
    }
    table
}
