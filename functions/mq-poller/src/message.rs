//! A message as it is stored: from either broker or the event source, to one DynamoDB item.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;

use crate::header::Headers;
use aws_sdk_dynamodb::types::AttributeValue;

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub struct BrokerMessage {
    /// The table key (see [`MessageId`] and [`BrokerMessage::keyed`]).
    pub id: String,
    pub body: bytes::Bytes,
    /// The broker's headers and properties with their types (see [`crate::header`]).
    pub headers: Headers,
    pub redelivered: bool,
    pub queue: String,
    /// When we received it, epoch milliseconds (the seed's `timestamp`).
    pub received_at_ms: u64,
}

// Bodies and headers may carry credentials: Debug shows neither.
impl std::fmt::Debug for BrokerMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerMessage")
            .field("id", &self.id)
            .field("body_bytes", &self.body.len())
            .field("headers", &self.headers.len())
            .field("redelivered", &self.redelivered)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Where a message's id came from: that decides whether the id alone can be the table key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageId {
    /// Assigned by the broker, unique per message (ActiveMQ's `message-id`, the `aws:mq` event
    /// source's `messageID`): the key as it is.
    Broker(String),
    /// Set by the publisher, who may reuse it (AMQP `message_id`, the RabbitMQ event source's
    /// `messageId`): the key is the id plus a digest of the body, so a redelivery reproduces its
    /// key and a different body under the same id gets its own item.
    Publisher(String),
    /// None given: the key is a digest of the queue, the body and the publisher's headers, which
    /// a redelivered or retried batch reproduces. The headers are given as text, named and
    /// rendered as mq-poller did before it kept their types, so keys stay what they were.
    Missing(BTreeMap<String, String>),
}

impl MessageId {
    /// `Broker`/`Publisher` of a non-empty id, else `Missing`.
    pub fn broker(id: Option<String>, key_headers: BTreeMap<String, String>) -> MessageId {
        id.filter(|id| !id.is_empty()).map_or(MessageId::Missing(key_headers), MessageId::Broker)
    }

    pub fn publisher(id: Option<String>, key_headers: BTreeMap<String, String>) -> MessageId {
        id.filter(|id| !id.is_empty()).map_or(MessageId::Missing(key_headers), MessageId::Publisher)
    }
}

/// Hex of the SHA-256 of `parts`, each length-prefixed so no two splits of the same bytes agree.
pub(crate) fn digest(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

impl BrokerMessage {
    /// The message with its table key set from `id` and its content (see [`MessageId`]).
    pub fn keyed(mut self, id: MessageId) -> BrokerMessage {
        self.id = match id {
            MessageId::Broker(id) => id,
            MessageId::Publisher(id) => format!("{id}#{}", &digest(&[&self.body])[..16]),
            MessageId::Missing(key_headers) => {
                let headers: Vec<u8> =
                    key_headers.iter().flat_map(|(k, v)| [k.as_bytes(), b"\0", v.as_bytes(), b"\0"].concat()).collect();
                format!("content:{}", &digest(&[self.queue.as_bytes(), &self.body, &headers])[..32])
            }
        };
        self
    }

    /// The item's size as DynamoDB counts it (attribute names plus values), rounded up a little.
    pub fn item_size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.size() + 3).sum();
        let fixed = "id".len()
            + self.id.len()
            + "message".len()
            + "timestamp".len()
            + 21
            + "queue".len()
            + self.queue.len()
            + "headers".len()
            + 3
            + "redelivered".len()
            + 1
            + "expiresAt".len()
            + 21;
        fixed + self.body.len() + headers
    }

    pub fn fits_in_an_item(&self) -> bool {
        self.item_size() <= MAX_ITEM_BYTES
    }

    /// The item: `message` is a string when the body is UTF-8, binary otherwise, byte for byte.
    pub fn to_item(&self, ttl_days: Option<u64>) -> HashMap<String, AttributeValue> {
        let message = match std::str::from_utf8(&self.body) {
            Ok(text) => AttributeValue::S(text.to_owned()),
            Err(_) => AttributeValue::B(Blob::new(self.body.to_vec())),
        };
        self.item_with(ttl_days, [("message", message)])
    }

    /// Where this message's body is kept when it is too large for an item (claim check): the
    /// object key is derived from the item key, so a retry rewrites the same object.
    pub fn body_object_key(&self) -> String {
        format!("bodies/{}", digest(&[self.id.as_bytes()]))
    }

    /// Where a message no retry can store is parked, whole, with the reason.
    pub fn parked_object_key(&self) -> String {
        format!("parked/{}.json", digest(&[self.id.as_bytes()]))
    }

    /// The parked message: every attribute the item would have had, the body in base64, and
    /// why it could not be stored.
    pub fn parked_record(&self, reason: &str) -> Vec<u8> {
        use base64::Engine as _;
        let record = serde_json::json!({
            "id": self.id,
            "queue": self.queue,
            "timestamp": self.received_at_ms,
            "redelivered": self.redelivered,
            "headers": self.headers.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>(),
            "bodyBase64": base64::engine::general_purpose::STANDARD.encode(&self.body),
            "reason": reason,
        });
        record.to_string().into_bytes()
    }

    /// The item of a message whose body is in `bucket` under [`Self::body_object_key`]: every
    /// attribute but `message`, and the body's location and size instead.
    pub fn to_claim_item(&self, ttl_days: Option<u64>, bucket: &str) -> HashMap<String, AttributeValue> {
        self.item_with(
            ttl_days,
            [
                ("bodyBucket", AttributeValue::S(bucket.to_owned())),
                ("bodyKey", AttributeValue::S(self.body_object_key())),
                ("bodyBytes", AttributeValue::N(self.body.len().to_string())),
            ],
        )
    }

    fn item_with<const N: usize>(
        &self,
        ttl_days: Option<u64>,
        body: [(&str, AttributeValue); N],
    ) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::new();
        item.insert("id".to_owned(), AttributeValue::S(self.id.clone()));
        for (name, value) in body {
            item.insert(name.to_owned(), value);
        }
        item.insert("timestamp".to_owned(), AttributeValue::N(self.received_at_ms.to_string()));
        item.insert("queue".to_owned(), AttributeValue::S(self.queue.clone()));
        let headers = self.headers.iter().map(|(k, v)| (k.clone(), v.to_attribute())).collect();
        item.insert("headers".to_owned(), AttributeValue::M(headers));
        item.insert("redelivered".to_owned(), AttributeValue::Bool(self.redelivered));
        if let Some(days) = ttl_days {
            let expires = self.received_at_ms / 1000 + days * 86_400;
            item.insert("expiresAt".to_owned(), AttributeValue::N(expires.to_string()));
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::HeaderValue;

    fn message(body: &[u8]) -> BrokerMessage {
        BrokerMessage {
            id: "ID:1".into(),
            body: bytes::Bytes::copy_from_slice(body),
            headers: BTreeMap::from([("priority".to_owned(), HeaderValue::Number("4".into()))]),
            redelivered: false,
            queue: "q".into(),
            received_at_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn text_is_a_string_binary_stays_bytes_and_ttl_is_epoch_seconds() {
        let item = message(b"hello").to_item(Some(2));
        assert_eq!(item["message"], AttributeValue::S("hello".into()));
        assert_eq!(item["expiresAt"], AttributeValue::N((1_700_000_000 + 2 * 86_400).to_string()));
        let item = message(&[0xff, 0x00, 0x10]).to_item(None);
        assert_eq!(item["message"], AttributeValue::B(Blob::new(vec![0xff, 0x00, 0x10])));
        assert!(!item.contains_key("expiresAt"));
    }

    #[test]
    fn a_claim_item_points_at_an_object_named_after_the_key_and_holds_no_body() {
        let large = message(&vec![b's'; 500 * 1024]);
        let item = large.to_claim_item(Some(1), "bodies-bucket");
        assert!(!item.contains_key("message"));
        assert_eq!(item["bodyBucket"], AttributeValue::S("bodies-bucket".into()));
        assert_eq!(item["bodyBytes"], AttributeValue::N((500 * 1024).to_string()));
        assert_eq!(item["bodyKey"], AttributeValue::S(large.body_object_key()));
        assert!(item.contains_key("expiresAt") && item.contains_key("headers"));
        // The same key, the same object; another key, another object.
        let other = BrokerMessage { id: "ID:2".into(), ..large.clone() };
        assert_eq!(large.body_object_key(), large.clone().body_object_key());
        assert_ne!(large.body_object_key(), other.body_object_key());
        assert!(large.body_object_key().starts_with("bodies/"));
    }

    #[test]
    fn oversized_bodies_do_not_fit_and_debug_hides_the_body() {
        assert!(message(&vec![b'a'; 300 * 1024]).fits_in_an_item());
        assert!(!message(&vec![b'a'; 400 * 1024]).fits_in_an_item());
        assert!(!format!("{:?}", message(b"password=hunter2")).contains("hunter2"));
    }

    #[test]
    fn keys_neither_merge_distinct_messages_nor_duplicate_a_redelivery() {
        let keyed = |body: &[u8], id: MessageId| message(body).keyed(id).id;
        // Broker ids are unique: the key as it is.
        assert_eq!(keyed(b"a", MessageId::Broker("ID:7".into())), "ID:7");
        // A publisher's id reused for another body gets another key; the same body, the same key.
        let first = keyed(b"order for tea", MessageId::Publisher("order".into()));
        assert!(first.starts_with("order#"));
        assert_ne!(first, keyed(b"order for coffee", MessageId::Publisher("order".into())));
        assert_eq!(first, keyed(b"order for tea", MessageId::Publisher("order".into())));
        // No id: the content decides, reproducibly.
        let none = keyed(b"x", MessageId::Missing(BTreeMap::new()));
        assert!(none.starts_with("content:"));
        assert_eq!(none, keyed(b"x", MessageId::Missing(BTreeMap::new())));
        assert_ne!(none, keyed(b"y", MessageId::Missing(BTreeMap::new())));
        let with = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        assert_ne!(none, keyed(b"x", MessageId::Missing(with.clone())), "the headers given count");
        assert_eq!(MessageId::publisher(Some(String::new()), with.clone()), MessageId::Missing(with));
    }
}
