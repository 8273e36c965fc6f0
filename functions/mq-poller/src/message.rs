//! A message as it is stored: from either broker or the event source, to one DynamoDB item.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub struct BrokerMessage {
    /// The table key: the broker's message id, or a generated one when it gave none.
    pub id: String,
    pub body: Vec<u8>,
    pub headers: BTreeMap<String, String>,
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

/// A key for a message the broker gave no id: unique, so no message is lost, but a redelivery
/// of such a message is stored again under a new key.
pub fn generated_id() -> String {
    format!("generated:{}", uuid::Uuid::new_v4())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl BrokerMessage {
    /// The item's size as DynamoDB counts it (attribute names plus values), rounded up a little.
    pub fn item_size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len() + 3).sum();
        let fixed = "id".len() + self.id.len() + "message".len() + "timestamp".len() + 21 + "queue".len()
            + self.queue.len() + "headers".len() + 3 + "redelivered".len() + 1 + "expiresAt".len() + 21;
        fixed + self.body.len() + headers
    }

    pub fn fits_in_an_item(&self) -> bool {
        self.item_size() <= MAX_ITEM_BYTES
    }

    /// The item: `message` is a string when the body is UTF-8, binary otherwise, byte for byte.
    pub fn to_item(&self, ttl_days: Option<u64>) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::new();
        item.insert("id".to_owned(), AttributeValue::S(self.id.clone()));
        let message = match std::str::from_utf8(&self.body) {
            Ok(text) => AttributeValue::S(text.to_owned()),
            Err(_) => AttributeValue::B(Blob::new(self.body.clone())),
        };
        item.insert("message".to_owned(), message);
        item.insert("timestamp".to_owned(), AttributeValue::N(self.received_at_ms.to_string()));
        item.insert("queue".to_owned(), AttributeValue::S(self.queue.clone()));
        let headers = self.headers.iter().map(|(k, v)| (k.clone(), AttributeValue::S(v.clone()))).collect();
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

    fn message(body: &[u8]) -> BrokerMessage {
        BrokerMessage {
            id: "ID:1".into(),
            body: body.to_vec(),
            headers: BTreeMap::from([("priority".to_owned(), "4".to_owned())]),
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
    fn oversized_bodies_do_not_fit_and_debug_hides_the_body() {
        assert!(message(&vec![b'a'; 300 * 1024]).fits_in_an_item());
        assert!(!message(&vec![b'a'; 400 * 1024]).fits_in_an_item());
        assert!(!format!("{:?}", message(b"password=hunter2")).contains("hunter2"));
    }

    #[test]
    fn generated_ids_are_unique() {
        assert_ne!(generated_id(), generated_id());
    }
}
