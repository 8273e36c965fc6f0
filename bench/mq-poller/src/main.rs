//! Benchmark: mq-poller moving messages from ActiveMQ (STOMP) to DynamoDB (moto) in one
//! invocation, beside the seed's design measured in the same run: acknowledge on delivery and one
//! PutItem per message. For 1,000 and 10,000 messages; prints messages per second and DynamoDB
//! requests per message, and writes bench-results/mq-poller.md.
//!
//! Both sides write to the same moto server on this machine, so the absolute rates are moto's;
//! the requests per message are what AWS would bill and throttle.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use harness_runtime::paths::publish_bench_table;
use harness_services::activemq::{self, ActiveMq};
use harness_services::call_counter::CallCounter;
use harness_services::dynamo::{create_table, scan_all};
use harness_services::moto::Moto;
use harness_services::stomp::StompClient;
use mq_poller::credentials::{BrokerCredentials, CredentialSource, CredentialsProvider};
use mq_poller::message::{now_ms, BrokerMessage};
use mq_poller::{handle_event, AwsClients, Outcome, Settings};

const SIZES: [usize; 2] = [1_000, 10_000];

struct Row {
    messages: usize,
    design: &'static str,
    elapsed: Duration,
    requests: usize,
}

async fn fill(broker: &ActiveMq, queue: &str, count: usize) {
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 0..count {
        producer.send(queue, format!("{{\"order\": {i}, \"item\": \"benchmark payload of a typical small message\"}}").as_bytes(), &[("x-order", &i.to_string())]).await;
    }
    producer.flush().await;
}

#[tokio::main]
async fn main() {
    let moto = Moto::start();
    let broker = ActiveMq::start();
    let config = moto.sdk_config().await;
    let counter = CallCounter::default();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(&config).interceptor(counter.clone()).build());
    let aws = AwsClients { dynamo: dynamo.clone(), s3: None };
    let credentials = CredentialsProvider::new(CredentialSource::Given(BrokerCredentials::new(activemq::USER, activemq::PASSWORD)), None);
    let event = harness_runtime::paths::read_event("mq-scheduled-poll.json");
    let mut rows = Vec::new();

    for count in SIZES {
        // mq-poller: batches of 25, acknowledged after each batch is stored.
        let (queue, table) = (format!("bench-{count}"), format!("bench-{count}"));
        create_table(&dynamo, &table).await;
        fill(&broker, &queue, count).await;
        let settings = Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table.clone()),
            "QUEUE_NAME" => Some(queue.clone()),
            "BROKER_URL" => Some(broker.stomp_url()),
            "IDLE_TIMEOUT_MS" => Some("500".into()),
            _ => None,
        })
        .expect("settings");
        counter.reset();
        let start = Instant::now();
        let outcome = handle_event(&aws, &settings, &credentials, &event, tokio::time::Instant::now() + Duration::from_secs(900)).await.expect("poll");
        // The idle wait at the end is not work: take it off.
        let elapsed = start.elapsed().saturating_sub(settings.idle_timeout);
        let Outcome::Poll(summary) = outcome else { panic!("poll") };
        assert_eq!(summary.stored as usize, count);
        rows.push(Row { messages: count, design: "mq-poller (BatchWriteItem, ack after store)", elapsed, requests: counter.total() });
        eprintln!("measured mq-poller with {count} messages");

        // The seed's design: acknowledge on delivery, one PutItem per message.
        let (queue, table) = (format!("seed-{count}"), format!("seed-{count}"));
        create_table(&dynamo, &table).await;
        fill(&broker, &queue, count).await;
        let mut consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
        consumer.subscribe_auto(&queue).await;
        counter.reset();
        let start = Instant::now();
        let mut stored = 0;
        while let Some((id, headers, body)) = consumer.next_message(Duration::from_millis(500)).await {
            let message = BrokerMessage { id, body, headers: headers.into_iter().collect(), redelivered: false, queue: queue.clone(), received_at_ms: now_ms() };
            dynamo.put_item().table_name(&table).set_item(Some(message.to_item(None))).send().await.expect("put_item");
            stored += 1;
        }
        let elapsed = start.elapsed().saturating_sub(Duration::from_millis(500));
        let requests = counter.total();
        assert_eq!(stored, count);
        assert_eq!(scan_all(&dynamo, &table).await.len(), count);
        rows.push(Row { messages: count, design: "seed design (ack on delivery, PutItem each)", elapsed, requests });
        eprintln!("measured the seed design with {count} messages");
    }

    let mut table = String::new();
    let _ = writeln!(table, "mq-poller, ActiveMQ (STOMP) to DynamoDB (moto), one invocation, in-process\n");
    let _ = writeln!(table, "| messages | design | wall time | messages/s | DynamoDB requests | requests per message |");
    let _ = writeln!(table, "|---:|---|---:|---:|---:|---:|");
    for row in &rows {
        let _ = writeln!(
            table,
            "| {} | {} | {:.2} s | {:.0} | {} | {:.3} |",
            row.messages,
            row.design,
            row.elapsed.as_secs_f64(),
            row.messages as f64 / row.elapsed.as_secs_f64(),
            row.requests,
            row.requests as f64 / row.messages as f64
        );
    }
    publish_bench_table("mq-poller", &table);
}
