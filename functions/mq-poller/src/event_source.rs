//! Batches from Lambda's native Amazon MQ event source, read leniently: real payloads differ
//! from the documented examples (`aws:mq` or `aws:amq`, `messageID` or `messageId`, fields
//! missing or `null`, RabbitMQ header values as byte arrays). Only a missing message list is an
//! error; an odd optional field never rejects the batch.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use crate::error::PollError;
use crate::header::{set_property, HeaderValue, Headers};
use crate::message::{now_ms, BrokerMessage, MessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    ActiveMq,
    RabbitMq,
}

/// Which event source sent this event, if it is one.
pub fn event_source(event: &Value) -> Option<EventSource> {
    match event.get("eventSource").and_then(Value::as_str) {
        Some("aws:amq" | "aws:mq") => Some(EventSource::ActiveMq),
        Some("aws:rmq") => Some(EventSource::RabbitMq),
        _ if event.get("rmqMessagesByQueue").is_some() => Some(EventSource::RabbitMq),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_text(object: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| text(object.get(*name)))
}

/// Base64 as the event source sends it; anything else is kept as the text it is, so nothing is lost.
fn body(data: Option<&Value>) -> Vec<u8> {
    match data {
        Some(Value::String(s)) => {
            base64::engine::general_purpose::STANDARD.decode(s.trim()).unwrap_or_else(|_| s.as_bytes().to_vec())
        }
        _ => Vec::new(),
    }
}

/// A header value: strings as they are; RabbitMQ's `{"bytes": [..]}` or plain byte arrays decoded.
fn header_value(value: &Value) -> String {
    let bytes = match value {
        Value::String(s) => return s.clone(),
        Value::Object(o) => o.get("bytes").and_then(Value::as_array),
        Value::Array(a) => Some(a),
        _ => None,
    };
    match bytes.map(|b| b.iter().filter_map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok())).collect::<Vec<u8>>()) {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => value.to_string(),
    }
}

/// The headers as mq-poller rendered them before it kept their types, which keys of messages
/// without an id digest: they must not change.
fn key_headers_of(object: Option<&Value>) -> BTreeMap<String, String> {
    object
        .and_then(Value::as_object)
        .map(|o| o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), header_value(v))).collect())
        .unwrap_or_default()
}

/// The headers with their types.
fn headers_of(object: Option<&Value>) -> Headers {
    object
        .and_then(Value::as_object)
        .map(|o| o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), HeaderValue::from_json(v))).collect())
        .unwrap_or_default()
}

/// Properties of the event's message, under the names STOMP gives them: each `(name, fields the
/// event may carry it as)`; a property wins over a header of its name, kept as `header.<name>`.
fn add_properties(headers: &mut Headers, object: &Value, names: &[(&str, &[&str])]) {
    for (name, fields) in names {
        if let Some(value) = fields.iter().find_map(|f| object.get(*f)).filter(|v| !v.is_null()) {
            set_property(headers, name, HeaderValue::from_json(value));
        }
    }
}

fn redelivered(object: &Value) -> bool {
    object.get("redelivered").and_then(Value::as_bool).unwrap_or(false)
}

/// The messages of an event-source batch.
pub fn messages_from_event(event: &Value, default_queue: &str) -> Result<Vec<BrokerMessage>, PollError> {
    let received_at_ms = now_ms();
    match event_source(event) {
        Some(EventSource::ActiveMq) => activemq_messages(event, default_queue, received_at_ms),
        Some(EventSource::RabbitMq) => rabbitmq_messages(event, default_queue, received_at_ms),
        None => Err(PollError::MalformedEvent("not an Amazon MQ event".into())),
    }
}

/// `aws:mq` / `aws:amq`: a `messages` list; ids are the broker's, unique per message.
fn activemq_messages(event: &Value, default_queue: &str, received_at_ms: u64) -> Result<Vec<BrokerMessage>, PollError> {
    let list = event
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| PollError::MalformedEvent("ActiveMQ event without a \"messages\" list".into()))?;
    Ok(list
        .iter()
        .map(|m| {
            let mut key_headers = key_headers_of(m.get("properties"));
            for (name, keys) in [
                ("messageType", &["messageType"][..]),
                ("correlationId", &["correlationId", "correlationID"][..]),
                ("timestamp", &["timestamp"][..]),
            ] {
                if let Some(v) = first_text(m, keys) {
                    key_headers.insert(name.to_owned(), v);
                }
            }
            let mut headers = headers_of(m.get("properties"));
            add_properties(
                &mut headers,
                m,
                &[
                    ("message-type", &["messageType"]),
                    ("correlation-id", &["correlationId", "correlationID"]),
                    ("reply-to", &["replyTo"]),
                    ("type", &["type", "jmsType"]),
                    ("timestamp", &["timestamp"]),
                    ("expiration", &["expiration"]),
                    ("priority", &["priority"]),
                    ("delivery-mode", &["deliveryMode"]),
                    ("broker-in-time", &["brokerInTime"]),
                    ("broker-out-time", &["brokerOutTime"]),
                ],
            );
            let queue = m
                .get("destination")
                .and_then(|d| first_text(d, &["physicalName", "name"]).or_else(|| d.as_str().map(str::to_owned)))
                .unwrap_or_else(|| default_queue.to_owned());
            BrokerMessage {
                id: String::new(),
                body: body(m.get("data")).into(),
                headers,
                redelivered: redelivered(m),
                queue,
                received_at_ms,
            }
            .keyed(MessageId::broker(
                first_text(m, &["messageID", "messageId", "message_id", "JMSMessageID"]),
                key_headers,
            ))
        })
        .collect())
}

/// `aws:rmq`: lists by `"queue::vhost"`; ids are the publisher's, which may repeat.
fn rabbitmq_messages(event: &Value, default_queue: &str, received_at_ms: u64) -> Result<Vec<BrokerMessage>, PollError> {
    let by_queue = event
        .get("rmqMessagesByQueue")
        .and_then(Value::as_object)
        .ok_or_else(|| PollError::MalformedEvent("RabbitMQ event without \"rmqMessagesByQueue\"".into()))?;
    let mut messages = Vec::new();
    for (key, list) in by_queue {
        let queue = key.split("::").next().filter(|q| !q.is_empty()).unwrap_or(default_queue).to_owned();
        for m in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            let properties = m.get("basicProperties").cloned().unwrap_or(Value::Null);
            let mut key_headers = key_headers_of(properties.get("headers"));
            for (name, keys) in [
                ("contentType", &["contentType"][..]),
                ("correlationId", &["correlationId"][..]),
                ("type", &["type"][..]),
            ] {
                if let Some(v) = first_text(&properties, keys) {
                    key_headers.insert(name.to_owned(), v);
                }
            }
            let mut headers = headers_of(properties.get("headers"));
            add_properties(
                &mut headers,
                &properties,
                &[
                    ("content-type", &["contentType"]),
                    ("content-encoding", &["contentEncoding"]),
                    ("correlation-id", &["correlationId"]),
                    ("reply-to", &["replyTo"]),
                    ("expiration", &["expiration"]),
                    ("message-id", &["messageId"]),
                    ("type", &["type"]),
                    ("user-id", &["userId"]),
                    ("app-id", &["appId"]),
                    ("timestamp", &["timestamp"]),
                    ("priority", &["priority"]),
                    ("delivery-mode", &["deliveryMode"]),
                ],
            );
            let message = BrokerMessage {
                id: String::new(),
                body: body(m.get("data")).into(),
                headers,
                redelivered: redelivered(m),
                queue: queue.clone(),
                received_at_ms,
            };
            messages.push(message.keyed(MessageId::publisher(
                first_text(&properties, &["messageId", "messageID", "message_id"]),
                key_headers,
            )));
        }
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn activemq_documented_and_odd_payloads() {
        let event = json!({
            "eventSource": "aws:mq",
            "messages": [
                {"messageID": "ID:b-1", "messageType": "jms/text-message", "data": "QUJD", "redelivered": false,
                 "destination": {"physicalName": "orders"}, "properties": {"index": "1", "n": 5, "gone": null}},
                {"messageId": "ID:b-2", "data": null, "redelivered": null, "destination": null, "properties": "odd"},
                {"data": "not base64 !!"}
            ]
        });
        let messages = messages_from_event(&event, "SAMPLE_QUEUE").unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            (messages[0].id.as_str(), &messages[0].body[..], messages[0].queue.as_str()),
            ("ID:b-1", &b"ABC"[..], "orders")
        );
        assert_eq!(messages[0].headers["index"], HeaderValue::Text("1".into()));
        assert_eq!(messages[0].headers["n"], HeaderValue::Number("5".into()), "typed as the event sends it");
        assert_eq!(messages[0].headers["message-type"], HeaderValue::Text("jms/text-message".into()));
        assert!(!messages[0].headers.contains_key("gone"));
        assert_eq!(
            (messages[1].id.as_str(), messages[1].body.len(), messages[1].queue.as_str()),
            ("ID:b-2", 0, "SAMPLE_QUEUE")
        );
        assert!(messages[2].id.starts_with("content:"));
        assert_eq!(&messages[2].body[..], b"not base64 !!");
    }

    #[test]
    fn rabbitmq_with_byte_array_headers_and_missing_properties() {
        let event = json!({
            "eventSource": "aws:rmq",
            "rmqMessagesByQueue": {
                "pizzaQueue::/": [
                    {"basicProperties": {"messageId": "m-1", "contentType": "text/plain",
                                         "headers": {"header1": {"bytes": [118, 97, 108, 117, 101, 49]}, "numberInHeader": 10}},
                     "redelivered": true, "data": "SGVsbG8="},
                    {"data": "SGk="}
                ]
            }
        });
        let messages = messages_from_event(&event, "q").unwrap();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].id.starts_with("m-1#"), "a publisher's id carries a digest of the body");
        assert_eq!(messages[0].queue, "pizzaQueue");
        assert_eq!(messages[0].headers["header1"], HeaderValue::Text("value1".into()));
        assert_eq!(messages[0].headers["numberInHeader"], HeaderValue::Number("10".into()));
        assert_eq!(messages[0].headers["content-type"], HeaderValue::Text("text/plain".into()), "STOMP's name");
        assert!(messages[0].redelivered);
        assert_eq!(&messages[0].body[..], b"Hello");
        assert!(messages[1].id.starts_with("content:"));
    }

    /// Keys of event-source messages without an id, as the code before typed headers computed
    /// them (commit 236cc11): a batch retried across an upgrade must overwrite its own items.
    #[test]
    fn keys_of_messages_without_an_id_stay_as_they_were() {
        let event = json!({
            "eventSource": "aws:rmq",
            "rmqMessagesByQueue": {
                "orders::/": [
                    {"basicProperties": {"contentType": "application/json", "correlationId": "c-1", "type": "t",
                                         "deliveryMode": 2, "priority": 5, "timestamp": "Nov 14, 2023, 10:13:20 PM",
                                         "headers": {"bytes": {"bytes": [104, 105]}, "n": 10, "b": true, "s": "x",
                                                     "list": [1, 2], "null": null}},
                     "data": "SGVsbG8="},
                    {"data": "SGk="}
                ]
            }
        });
        let keys: Vec<String> = messages_from_event(&event, "q").unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(keys, ["content:ac85b9da33fcad1da4e222223ee57eef", "content:80739b8d6f4a0e9bde5cb9b26ec8bd89"]);
    }

    #[test]
    fn only_a_missing_list_is_an_error() {
        assert!(messages_from_event(&json!({"eventSource": "aws:mq"}), "q").is_err());
        assert!(messages_from_event(&json!({"eventSource": "aws:rmq", "rmqMessagesByQueue": []}), "q").is_err());
        assert_eq!(event_source(&json!({"source": "aws.events"})), None);
    }
}
