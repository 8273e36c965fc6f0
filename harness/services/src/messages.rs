//! Test messages for the brokers: the i-th of a varied series (text, binary, text with headers),
//! sent to ActiveMQ over STOMP, and what a queue still holds counted by draining it.

use std::ops::Range;
use std::time::Duration;

use crate::activemq::{self, ActiveMq};
use crate::stomp::StompClient;

/// The i-th test message: text, binary (not UTF-8) or text with headers, in turn.
pub fn test_message(i: usize) -> (Vec<u8>, Vec<(String, String)>) {
    match i % 3 {
        0 => (format!("text message {i} ✓").into_bytes(), vec![]),
        1 => (vec![0xff, 0x00, 0xfe, (i % 256) as u8, 0x00], vec![]),
        _ => (
            format!("{{\"order\": {i}}}").into_bytes(),
            vec![("x-order".to_owned(), i.to_string()), ("content-type".to_owned(), "application/json".to_owned())],
        ),
    }
}

/// Sends the test messages of `range` to `queue`, persistent, and waits for the broker's receipt.
pub async fn send_messages(broker: &ActiveMq, queue: &str, range: Range<usize>) {
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in range {
        let (body, headers) = test_message(i);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        producer.send(queue, &body, &headers).await;
    }
    producer.flush().await;
}

/// How many messages `queue` still holds: it is drained (taken and acknowledged) to count them.
pub async fn remaining(broker: &ActiveMq, queue: &str) -> usize {
    let consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    consumer.drain(queue, Duration::from_millis(1500)).await.len()
}
