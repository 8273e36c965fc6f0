//! Header values with their types, as an item keeps them: text, numbers, booleans, bytes, lists
//! and maps, from any source (STOMP, AMQP, either event source), under one naming scheme.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Text(String),
    /// A number as DynamoDB takes it (decimal text, at most 38 significant digits); numbers it
    /// would refuse are kept as `Text`.
    Number(String),
    Bool(bool),
    Bytes(Vec<u8>),
    List(Vec<HeaderValue>),
    Map(BTreeMap<String, HeaderValue>),
    Null,
}

pub type Headers = BTreeMap<String, HeaderValue>;

/// Sets property `name` in `headers`: a header of the publisher's under that name is kept beside
/// it as `header.<name>`, not dropped.
pub fn set_property(headers: &mut Headers, name: &str, value: HeaderValue) {
    if let Some(displaced) = headers.insert(name.to_owned(), value) {
        headers.entry(format!("header.{name}")).or_insert(displaced);
    }
}

/// How deep lists and maps are kept as such: DynamoDB refuses an item nested 32 levels deep (the
/// item and its `headers` map are two); a value deeper than this is kept as its JSON text.
pub const MAX_DEPTH: usize = 16;

/// A nested map as it is, or, with an empty key (DynamoDB names no attribute ""), as its JSON
/// text, so the message is still stored. (Callers keep values past `MAX_DEPTH` as text first.)
pub fn nested_map(map: Headers) -> HeaderValue {
    if map.contains_key("") {
        return HeaderValue::Text(HeaderValue::Map(map).to_json().to_string());
    }
    HeaderValue::Map(map)
}

impl HeaderValue {
    /// A number from its decimal text: `Number` when DynamoDB can hold it, else `Text`.
    pub fn number(text: String) -> HeaderValue {
        if dynamodb_number(&text) {
            HeaderValue::Number(text)
        } else {
            HeaderValue::Text(text)
        }
    }

    pub fn float(value: f64) -> HeaderValue {
        if value.is_finite() {
            HeaderValue::number(value.to_string())
        } else {
            HeaderValue::Text(value.to_string())
        }
    }

    /// Text when the bytes are UTF-8 (AMQP's long strings are bytes on the wire), else bytes.
    pub fn text_or_bytes(bytes: Vec<u8>) -> HeaderValue {
        match String::from_utf8(bytes) {
            Ok(text) => HeaderValue::Text(text),
            Err(e) => HeaderValue::Bytes(e.into_bytes()),
        }
    }

    /// A JSON value as the event sources send headers: RabbitMQ's long strings as
    /// `{"bytes": [..]}`, arrays as lists, objects as maps.
    pub fn from_json(value: &Value) -> HeaderValue {
        HeaderValue::from_json_at(value, 1)
    }

    fn from_json_at(value: &Value, depth: usize) -> HeaderValue {
        match value {
            Value::Null => HeaderValue::Null,
            Value::Bool(b) => HeaderValue::Bool(*b),
            // serde_json writes some numbers with an exponent (`1e16`), which DynamoDB's check
            // here does not take: read as a float, they are written out in full.
            Value::Number(n) if n.is_i64() || n.is_u64() => HeaderValue::Number(n.to_string()),
            Value::Number(n) => n.as_f64().map_or_else(|| HeaderValue::Text(n.to_string()), HeaderValue::float),
            Value::String(s) => HeaderValue::Text(s.clone()),
            Value::Array(items) => {
                if depth >= MAX_DEPTH {
                    return HeaderValue::Text(value.to_string());
                }
                HeaderValue::List(items.iter().map(|v| HeaderValue::from_json_at(v, depth + 1)).collect())
            }
            Value::Object(o) => match o.get("bytes").and_then(Value::as_array) {
                Some(bytes) if o.len() == 1 => {
                    let bytes: Option<Vec<u8>> =
                        bytes.iter().map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok())).collect();
                    match bytes {
                        Some(bytes) => HeaderValue::text_or_bytes(bytes),
                        None => HeaderValue::from_json_object(o, depth),
                    }
                }
                _ => HeaderValue::from_json_object(o, depth),
            },
        }
    }

    fn from_json_object(o: &serde_json::Map<String, Value>, depth: usize) -> HeaderValue {
        if depth >= MAX_DEPTH {
            return HeaderValue::Text(Value::Object(o.clone()).to_string());
        }
        nested_map(o.iter().map(|(k, v)| (k.clone(), HeaderValue::from_json_at(v, depth + 1))).collect())
    }

    pub fn to_attribute(&self) -> AttributeValue {
        match self {
            HeaderValue::Text(s) => AttributeValue::S(s.clone()),
            HeaderValue::Number(n) => AttributeValue::N(n.clone()),
            HeaderValue::Bool(b) => AttributeValue::Bool(*b),
            HeaderValue::Bytes(b) => AttributeValue::B(Blob::new(b.clone())),
            HeaderValue::List(items) => AttributeValue::L(items.iter().map(HeaderValue::to_attribute).collect()),
            HeaderValue::Map(map) => {
                AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), v.to_attribute())).collect())
            }
            HeaderValue::Null => AttributeValue::Null(true),
        }
    }

    /// For a parked record (JSON): bytes as `{"base64": ..}`, numbers as JSON numbers.
    pub fn to_json(&self) -> Value {
        use base64::Engine as _;
        match self {
            HeaderValue::Text(s) => Value::String(s.clone()),
            // Integers as JSON numbers; others as their text, which a JSON reader's float would round.
            HeaderValue::Number(n) => match (n.parse::<i64>(), n.parse::<u64>()) {
                (Ok(i), _) => Value::from(i),
                (_, Ok(u)) => Value::from(u),
                _ => Value::String(n.clone()),
            },
            HeaderValue::Bool(b) => Value::Bool(*b),
            HeaderValue::Bytes(b) => serde_json::json!({"base64": base64::engine::general_purpose::STANDARD.encode(b)}),
            HeaderValue::List(items) => Value::Array(items.iter().map(HeaderValue::to_json).collect()),
            HeaderValue::Map(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            HeaderValue::Null => Value::Null,
        }
    }

    /// Roughly the bytes DynamoDB counts for the value.
    pub fn size(&self) -> usize {
        match self {
            HeaderValue::Text(s) => s.len(),
            // DynamoDB: a byte per two significant digits, and one more; the text is never less.
            HeaderValue::Number(n) => n.len() + 1,
            HeaderValue::Bytes(b) => b.len(),
            HeaderValue::Bool(_) | HeaderValue::Null => 1,
            HeaderValue::List(items) => 3 + items.iter().map(|v| 1 + v.size()).sum::<usize>(),
            HeaderValue::Map(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + v.size()).sum::<usize>(),
        }
    }
}

/// Whether DynamoDB takes `text` as a number: an optional sign, digits with at most one point, up
/// to 38 significant digits, within its range (1E-130 to 9.9E+125).
fn dynamodb_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let all: String = format!("{whole}{fraction}");
    let significant = all.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return true;
    }
    let whole_digits = whole.trim_start_matches('0').len();
    let leading_fraction_zeros =
        if whole_digits == 0 { fraction.len() - fraction.trim_start_matches('0').len() } else { 0 };
    significant.len() <= 38 && whole_digits <= 126 && leading_fraction_zeros < 130
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_dynamodb_would_refuse_are_kept_as_text() {
        assert_eq!(HeaderValue::number("-42".into()), HeaderValue::Number("-42".into()));
        assert_eq!(HeaderValue::float(1.5), HeaderValue::Number("1.5".into()));
        assert_eq!(HeaderValue::float(f64::NAN), HeaderValue::Text("NaN".into()));
        assert!(matches!(HeaderValue::float(1e300), HeaderValue::Text(_)), "past DynamoDB's range");
        assert!(matches!(HeaderValue::number("1e5".into()), HeaderValue::Text(_)));
        assert!(matches!(HeaderValue::number("1".repeat(39)), HeaderValue::Text(_)), "39 significant digits");
        assert!(matches!(HeaderValue::number(format!("1{}", "0".repeat(60))), HeaderValue::Number(_)));
    }

    #[test]
    fn values_dynamodb_would_refuse_are_kept_as_text() {
        let mut deep = serde_json::json!("bottom");
        for _ in 0..40 {
            deep = serde_json::json!([deep]);
        }
        let mut depth = 0;
        let mut value = HeaderValue::from_json(&deep);
        while let HeaderValue::List(mut items) = value {
            depth += 1;
            value = items.pop().expect("one item");
        }
        assert!(depth < MAX_DEPTH && matches!(value, HeaderValue::Text(_)), "{depth}: {value:?}");
        let empty_key = HeaderValue::from_json(&serde_json::json!({"outer": {"": 1}}));
        let HeaderValue::Map(outer) = empty_key else { panic!("a map") };
        assert_eq!(outer["outer"], HeaderValue::Text(r#"{"":1}"#.into()));
        assert_eq!(HeaderValue::from_json(&serde_json::json!(1e16)), HeaderValue::Number("10000000000000000".into()));
    }

    #[test]
    fn a_property_keeps_the_publisher_s_header_of_its_name_beside_it() {
        let mut headers = Headers::from([("exchange".to_owned(), HeaderValue::Text("the publisher's".into()))]);
        set_property(&mut headers, "exchange", HeaderValue::Text("orders".into()));
        assert_eq!(headers["exchange"], HeaderValue::Text("orders".into()));
        assert_eq!(headers["header.exchange"], HeaderValue::Text("the publisher's".into()));
    }

    #[test]
    fn event_source_json_keeps_its_types() {
        let value = serde_json::json!({"s": "x", "n": 10, "b": true, "bytes": {"bytes": [104, 105]},
                                       "binary": {"bytes": [255]}, "list": [1, "a"], "null": null});
        let HeaderValue::Map(map) = HeaderValue::from_json(&value) else { panic!("a map") };
        assert_eq!(map["s"], HeaderValue::Text("x".into()));
        assert_eq!(map["n"], HeaderValue::Number("10".into()));
        assert_eq!(map["b"], HeaderValue::Bool(true));
        assert_eq!(map["bytes"], HeaderValue::Text("hi".into()));
        assert_eq!(map["binary"], HeaderValue::Bytes(vec![255]));
        assert_eq!(
            map["list"],
            HeaderValue::List(vec![HeaderValue::Number("1".into()), HeaderValue::Text("a".into())])
        );
        assert_eq!(map["null"], HeaderValue::Null);
    }
}
