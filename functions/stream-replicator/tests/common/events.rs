//! Builds Lambda DynamoDB stream events the way Lambda delivers them (also used by the benchmark).

use aws_lambda_events::event::dynamodb::Event;
use serde_json::{json, Map, Value};

/// The table and region every test event comes from.
pub const TABLE: &str = "shop-data";
/// The source region.
pub const REGION: &str = "us-east-1";

/// The stream ARN of [`TABLE`] in [`REGION`].
pub fn stream_arn() -> String {
    format!("arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-11-01T00:00:00.000")
}

/// An item image keyed by `pk`/`sk`, with extra attributes in DynamoDB JSON.
pub fn item(pk: &str, sk: &str, extra: &[(&str, Value)]) -> Value {
    let mut image = Map::new();
    image.insert("pk".into(), json!({"S": pk}));
    image.insert("sk".into(), json!({"S": sk}));
    for (name, value) in extra {
        image.insert((*name).into(), value.clone());
    }
    Value::Object(image)
}

/// `{"S": s}`
pub fn s(value: &str) -> Value {
    json!({ "S": value })
}

/// `{"N": n}`
pub fn n(value: impl ToString) -> Value {
    json!({ "N": value.to_string() })
}

/// Appends records with increasing sequence numbers.
#[derive(Debug, Clone)]
pub struct StreamBuilder {
    arn: String,
    next_sequence: u64,
    view: &'static str,
    created_at: i64,
    records: Vec<Value>,
}

impl Default for StreamBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamBuilder {
    /// NEW_AND_OLD_IMAGES records of [`TABLE`].
    pub fn new() -> Self {
        Self {
            arn: stream_arn(),
            next_sequence: 100_000_000_000_000_000,
            view: "NEW_AND_OLD_IMAGES",
            created_at: 1_763_694_000,
            records: Vec::new(),
        }
    }

    /// Records of another stream (for "record of another table" tests).
    pub fn with_arn(mut self, arn: &str) -> Self {
        self.arn = arn.to_owned();
        self
    }

    /// The view type of the following records.
    /// Records pushed from now on are dated `epoch_seconds` (ApproximateCreationDateTime).
    pub fn at(&mut self, epoch_seconds: i64) -> &mut Self {
        self.created_at = epoch_seconds;
        self
    }

    pub fn view(mut self, view: &'static str) -> Self {
        self.view = view;
        self
    }

    fn push(&mut self, name: &str, keys: Value, new: Option<Value>, old: Option<Value>, ttl: bool) -> &mut Self {
        let sequence = self.next_sequence.to_string();
        self.next_sequence += 1;
        let mut body = json!({
            "ApproximateCreationDateTime": self.created_at,
            "Keys": keys,
            "SequenceNumber": sequence,
            "SizeBytes": 100,
            "StreamViewType": self.view,
        });
        let keys_only = self.view == "KEYS_ONLY";
        if let Some(new) = new.filter(|_| !keys_only && self.view != "OLD_IMAGE") {
            body["NewImage"] = new;
        }
        if let Some(old) = old.filter(|_| !keys_only && self.view != "NEW_IMAGE") {
            body["OldImage"] = old;
        }
        let mut record = json!({
            "eventID": format!("event-{sequence}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": body,
            "eventSourceARN": self.arn,
        });
        if ttl {
            record["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
        }
        self.records.push(record);
        self
    }

    /// An INSERT of `new`.
    pub fn insert(&mut self, new: Value) -> &mut Self {
        let keys = keys_of(&new);
        self.push("INSERT", keys, Some(new), None, false)
    }

    /// A MODIFY from `old` to `new`.
    pub fn modify(&mut self, old: Value, new: Value) -> &mut Self {
        let keys = keys_of(&new);
        self.push("MODIFY", keys, Some(new), Some(old), false)
    }

    /// A REMOVE of `old` by a user.
    pub fn remove(&mut self, old: Value) -> &mut Self {
        let keys = keys_of(&old);
        self.push("REMOVE", keys, None, Some(old), false)
    }

    /// A REMOVE of `old` by DynamoDB's TTL process.
    pub fn ttl_remove(&mut self, old: Value) -> &mut Self {
        let keys = keys_of(&old);
        self.push("REMOVE", keys, None, Some(old), true)
    }

    /// The records so far.
    pub fn records(&self) -> &[Value] {
        &self.records
    }

    /// The sequence number of record `index`.
    pub fn sequence(&self, index: usize) -> String {
        self.records[index]["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The event JSON of records `range`.
    pub fn json_of(&self, range: std::ops::Range<usize>) -> String {
        json!({ "Records": &self.records[range] }).to_string()
    }

    /// The event JSON of every record.
    pub fn json(&self) -> String {
        self.json_of(0..self.records.len())
    }

    /// The parsed event of records `range`.
    pub fn event_of(&self, range: std::ops::Range<usize>) -> Event {
        serde_json::from_str(&self.json_of(range)).expect("a valid event")
    }

    /// The parsed event of every record.
    pub fn event(&self) -> Event {
        self.event_of(0..self.records.len())
    }
}

fn keys_of(image: &Value) -> Value {
    json!({"pk": image["pk"], "sk": image["sk"]})
}
