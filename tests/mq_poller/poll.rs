//! The scheduled poll draining a real broker into moto's table: ActiveMQ over STOMP (and TLS),
//! RabbitMQ over AMQP; where a poll stops (idle, deadline, MAX_MESSAGES) and how it closes.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use harness_fixtures::mq_poller::{credentials, in_a_minute, scene, schedule_event, scheduled_poll, settings, TABLE};
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{item_bodies, scan_all};
use harness_services::messages::{remaining, send_messages, test_message};
use harness_services::rabbitmq::{self, RabbitMq};
use harness_services::stomp::StompClient;
use mq_poller::BrokerCredentials;
use mq_poller::StopReason;
use mq_poller::{handle_payload, Outcome};
use tokio::time::Instant;

// --- ActiveMQ over STOMP -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_over_tls_drains_a_thousand_messages_byte_for_byte() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "orders";
    send_messages(&broker, queue, 0..1000).await;

    let settings = settings(&[broker.stomp_ssl_url()], queue, Some(&broker.ca));
    let summary = scheduled_poll(&scene.aws, &settings, &credentials(activemq::USER, activemq::PASSWORD), "poll").await;
    assert_eq!((summary.received, summary.stored, summary.rejected), (1000, 1000, 0), "{summary:?}");
    assert_eq!(summary.stop_reason, StopReason::Idle);

    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 1000);
    let expected: BTreeSet<Vec<u8>> = (0..1000).map(|i| test_message(i).0).collect();
    assert_eq!(item_bodies(&items), expected, "bodies byte for byte");
    let binary = items.iter().filter(|i| matches!(i.get("message"), Some(AttributeValue::B(_)))).count();
    assert_eq!(binary, 333, "bodies that are not UTF-8 are stored as binary");
    let with_header = items
        .iter()
        .find(|i| matches!(i.get("message"), Some(AttributeValue::S(s)) if s == "{\"order\": 2}"))
        .expect("item 2");
    let Some(AttributeValue::M(headers)) = with_header.get("headers") else { panic!("headers") };
    assert_eq!(headers.get("x-order"), Some(&AttributeValue::S("2".into())));
    assert!(
        matches!(with_header.get("id"), Some(AttributeValue::S(id)) if id.starts_with("ID:")),
        "keyed by the STOMP message-id"
    );
    assert_eq!(with_header.get("queue"), Some(&AttributeValue::S(queue.into())));
    assert_eq!(with_header.get("redelivered"), Some(&AttributeValue::Bool(false)));
    assert_eq!(remaining(&broker, queue).await, 0, "the queue is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_stops_before_the_deadline_when_the_queue_never_goes_idle() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "busy";
    let port = broker.stomp_port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = stop.clone();
    let producer = tokio::spawn(async move {
        let mut client = StompClient::connect(port, activemq::USER, activemq::PASSWORD).await;
        let mut i = 0u64;
        // Bounded: at most 20,000 messages or until told to stop.
        while !producing.load(std::sync::atomic::Ordering::Relaxed) && i < 20_000 {
            client.send(queue, format!("busy {i}").as_bytes(), &[]).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client.flush().await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut settings = settings(&[broker.stomp_url()], queue, None);
    settings.deadline_margin = Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = handle_payload(
        &scene.aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        deadline,
    )
    .await
    .expect("poll");
    let returned_at = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = producer.await;
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!(summary.stop_reason, StopReason::Deadline, "{summary:?}");
    assert!(returned_at < deadline, "returned before the invocation's deadline");
    assert!(summary.stored > 0 && summary.stored == summary.received);
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len() as u64, summary.stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stomp_close_waits_for_the_brokers_receipt_and_heart_beats_are_negotiated() {
    use mq_poller::StompConsumer;
    use mq_poller::{Endpoint, QueueConsumer};
    let broker = ActiveMq::start();
    let mut settings = settings(&[broker.stomp_url()], "receipts", None);
    settings.broker_heartbeat_ms = 700;
    let endpoint = Endpoint::parse(&broker.stomp_url()).expect("endpoint");
    let consumer = StompConsumer::connect(
        &endpoint,
        &settings.connect_options(),
        &BrokerCredentials::new(activemq::USER, activemq::PASSWORD),
    )
    .await
    .expect("connect");
    assert_eq!(consumer.heartbeat, Some(Duration::from_millis(700)), "ActiveMQ takes the beats we offer");
    // Idle for several intervals: the beats keep the connection, and the close is confirmed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(consumer.close().await, "ActiveMQ answered DISCONNECT with its receipt");
}

// --- RabbitMQ over AMQP --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_drains_with_manual_acks_and_ids_from_the_message_id_property() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "mq-poller-test";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for i in 0..300usize {
        let (body, _) = test_message(i);
        // Every tenth message has no message_id: it is keyed by its content.
        let properties = if i % 10 == 0 {
            BasicProperties::default()
        } else {
            BasicProperties::default().with_message_id(format!("m-{i}").into())
        };
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), &body, properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }

    let settings = settings(&[broker.broker_url()], queue, None);
    let summary = scheduled_poll(&scene.aws, &settings, &credentials(rabbitmq::USER, rabbitmq::PASSWORD), "poll").await;
    assert_eq!((summary.received, summary.stored), (300, 300));
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 300);
    assert_eq!(item_bodies(&items), (0..300).map(|i| test_message(i).0).collect::<BTreeSet<_>>());
    let by_content = items
        .iter()
        .filter(|i| matches!(i.get("id"), Some(AttributeValue::S(id)) if id.starts_with("content:")))
        .count();
    assert_eq!(by_content, 30, "messages without message_id are keyed by their content");
    let left = channel
        .queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("passive declare");
    assert_eq!(left.message_count(), 0, "the queue is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_messages_sharing_a_publisher_id_are_all_stored_and_a_redelivery_is_not_doubled() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "orders";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for body in [&b"two teas"[..], b"one coffee"] {
        let properties = BasicProperties::default().with_message_id("order".into());
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    let settings = settings(&[broker.broker_url()], queue, None);
    let summary = scheduled_poll(&scene.aws, &settings, &credentials(rabbitmq::USER, rabbitmq::PASSWORD), "poll").await;
    assert_eq!((summary.received, summary.stored), (2, 2));
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(
        item_bodies(&items),
        BTreeSet::from([b"two teas".to_vec(), b"one coffee".to_vec()]),
        "both bodies are in the table"
    );

    // The same two again, as a redelivery would bring them: nothing new.
    for body in [&b"two teas"[..], b"one coffee"] {
        let properties = BasicProperties::default().with_message_id("order".into());
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    handle_payload(
        &scene.aws,
        &settings,
        &credentials(rabbitmq::USER, rabbitmq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("poll");
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_capped_by_max_messages_is_sent_no_more_than_it_takes() {
    use futures::StreamExt;
    use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "capped";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for i in 0..50usize {
        let properties = BasicProperties::default().with_message_id(format!("c-{i}").into());
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("capped {i}").as_bytes(),
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    // A cap beyond the prefetch window (the acknowledgements that would open the window past
    // the cap wait until deliveries stop), then one within it.
    for (prefetch, max) in [(10, 30), (100, 5)] {
        let mut settings = settings(&[broker.broker_url()], queue, None);
        settings.prefetch = prefetch;
        settings.max_messages = Some(max);
        let summary =
            scheduled_poll(&scene.aws, &settings, &credentials(rabbitmq::USER, rabbitmq::PASSWORD), "poll").await;
        assert_eq!(
            (summary.received, summary.stored, summary.stop_reason),
            (max, max, StopReason::MaxMessages),
            "PREFETCH {prefetch}"
        );
    }
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 35);
    // The other 15 were never handed to the poller, so none counts a redelivery.
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "check".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut redelivered = 0;
    for _ in 0..15 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a message")
            .expect("delivery")
            .expect("ok");
        redelivered += usize::from(delivery.redelivered);
    }
    assert_eq!(redelivered, 0, "messages the poll never took came back marked redelivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_drains_only_the_messages_this_function_owns() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "shared";
    let mut publisher = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 0..10 {
        let owner = if i % 2 == 0 { "us" } else { "them" };
        publisher.send(queue, format!("message {i}").as_bytes(), &[("owner", owner), ("persistent", "true")]).await;
    }
    publisher.flush().await;

    let mut settings = settings(&[broker.stomp_url()], queue, None);
    settings.selector = Some("owner = 'us'".into());
    let summary = scheduled_poll(&scene.aws, &settings, &credentials(activemq::USER, activemq::PASSWORD), "poll").await;
    assert_eq!((summary.received, summary.stored), (5, 5), "{summary:?}");
    let bodies = item_bodies(&scan_all(&scene.dynamo, TABLE).await);
    let ours: BTreeSet<Vec<u8>> = (0..10).step_by(2).map(|i| format!("message {i}").into_bytes()).collect();
    assert_eq!(bodies, ours, "only the messages the selector names were stored");
    assert_eq!(remaining(&broker, queue).await, 5, "the other consumers' messages are still on the queue");
}

/// Keys of messages without an id, as the code before typed headers computed them: an upgrade
/// must leave them byte for byte, so a message delivered before it and redelivered after it
/// overwrites its own item. Headers of every AMQP type and every property are set, and read back
/// typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_keys_stay_as_they_were_and_headers_of_every_type_read_back_typed() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable};
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "pinned";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.confirm_select(lapin::options::ConfirmSelectOptions::default()).await.expect("confirms");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    let mut nested = FieldTable::default();
    nested.insert("inner".into(), AMQPValue::LongString("x".into()));
    let mut headers = FieldTable::default();
    for (name, value) in [
        ("text", AMQPValue::LongString("hello".into())),
        ("not-utf8", AMQPValue::LongString(vec![0xff, 0xfe].into())),
        ("flag", AMQPValue::Boolean(true)),
        ("count", AMQPValue::LongLongInt(-42)),
        ("ratio", AMQPValue::Double(1.5)),
        ("price", AMQPValue::DecimalValue(DecimalValue { scale: 2, value: 1999 })),
        ("when", AMQPValue::Timestamp(1_700_000_000)),
        (
            "list",
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString("a".into()), AMQPValue::LongInt(1)])),
        ),
        ("table", AMQPValue::FieldTable(nested)),
        ("raw", AMQPValue::ByteArray(ByteArray::from(vec![0xffu8, 0x00]))),
        ("nothing", AMQPValue::Void),
    ] {
        headers.insert(name.into(), value);
    }
    let everything = BasicProperties::default()
        .with_headers(headers)
        .with_content_type("application/json".into())
        .with_content_encoding("identity".into())
        .with_correlation_id("c-1".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_timestamp(1_700_000_000)
        .with_type("order.created".into())
        .with_app_id("billing".into())
        .with_priority(5)
        .with_delivery_mode(2);
    for (body, properties) in [(&b"plain"[..], BasicProperties::default()), (b"everything", everything)] {
        let confirmation = channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirmation.is_ack(), "RabbitMQ took the message");
    }
    let settings = settings(&[broker.broker_url()], queue, None);
    let summary = scheduled_poll(&scene.aws, &settings, &credentials(rabbitmq::USER, rabbitmq::PASSWORD), "poll").await;
    assert_eq!(summary.stored, 2, "{summary:?}");
    let items = scan_all(&scene.dynamo, TABLE).await;
    let key_of = |body: &[u8]| {
        let item =
            items.iter().find(|i| i.get("message") == Some(&AttributeValue::S(String::from_utf8_lossy(body).into())));
        item.map(|i| harness_services::dynamo::item_text(i, "id")).unwrap_or_default()
    };
    // Computed by mq-poller before its headers were typed (commit 236cc11).
    assert_eq!(key_of(b"plain"), "content:7ba40dca4bff304b2fbdf2d8f8cef00c");
    assert_eq!(key_of(b"everything"), "content:ca6880d8a9b1db4fdf42fcbbc3cb3d9a");

    // Each header read back with its type, and the properties under STOMP's names.
    use aws_sdk_dynamodb::primitives::Blob;
    let everything =
        items.iter().find(|i| i.get("message") == Some(&AttributeValue::S("everything".into()))).expect("the item");
    let Some(AttributeValue::M(headers)) = everything.get("headers") else { panic!("headers") };
    let (s, n) = (|v: &str| AttributeValue::S(v.into()), |v: &str| AttributeValue::N(v.into()));
    let expected = [
        ("text", s("hello")),
        ("not-utf8", AttributeValue::B(Blob::new(vec![0xff, 0xfe]))),
        ("flag", AttributeValue::Bool(true)),
        ("count", n("-42")),
        ("ratio", n("1.5")),
        ("price", n("19.99")),
        ("when", n("1700000000")),
        ("list", AttributeValue::L(vec![s("a"), n("1")])),
        ("table", AttributeValue::M([("inner".to_owned(), s("x"))].into())),
        ("raw", AttributeValue::B(Blob::new(vec![0xff, 0x00]))),
        ("nothing", AttributeValue::Null(true)),
        ("content-type", s("application/json")),
        ("content-encoding", s("identity")),
        ("correlation-id", s("c-1")),
        ("reply-to", s("replies")),
        ("expiration", s("60000")),
        ("timestamp", n("1700000000")),
        ("type", s("order.created")),
        ("app-id", s("billing")),
        ("priority", n("5")),
        ("delivery-mode", n("2")),
        ("exchange", s("")),
        ("routing-key", s("pinned")),
    ];
    for (name, value) in &expected {
        assert_eq!(headers.get(*name), Some(value), "{name}");
    }
    assert_eq!(headers.len(), expected.len(), "{headers:?}");
}
