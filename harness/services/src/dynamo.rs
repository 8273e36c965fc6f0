//! DynamoDB in moto: the messages table as the template defines it (key `id`), and reads of it.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use tokio::time::Instant;

pub async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) {
    dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("key"))
        .send()
        .await
        .expect("create_table");
}

/// Every item of the table (all pages).
pub async fn scan_all(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = dynamo.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("scan");
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

/// An item's `message` as bytes, whether stored as a string or as binary.
pub fn item_body(item: &HashMap<String, AttributeValue>) -> Vec<u8> {
    match item.get("message") {
        Some(AttributeValue::S(text)) => text.as_bytes().to_vec(),
        Some(AttributeValue::B(blob)) => blob.as_ref().to_vec(),
        other => panic!("no message attribute: {other:?}"),
    }
}

/// The items' `message`s as bytes, as a set.
pub fn item_bodies(items: &[HashMap<String, AttributeValue>]) -> BTreeSet<Vec<u8>> {
    items.iter().map(item_body).collect()
}

/// An item's string attribute `name`; panics if it is absent or not a string.
pub fn item_text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

/// Waits until the table holds at least `count` items (moto's item count is exact), for a minute
/// at most.
pub async fn until_item_count(dynamo: &aws_sdk_dynamodb::Client, table: &str, count: i64) {
    let started = Instant::now();
    loop {
        let described = dynamo.describe_table().table_name(table).send().await.expect("describe_table");
        if described.table().and_then(|t| t.item_count()).unwrap_or_default() >= count {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the poll stored fewer than {count}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
