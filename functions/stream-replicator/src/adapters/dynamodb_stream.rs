//! [`StreamSource`] over DynamoDB Streams: every record the source table's stream still
//! holds (24 hours), shard by shard with parents before children (a key's changes stay in
//! order across a shard split), wrapped in exactly the event Lambda would deliver, so the
//! drain check plans them with the same code as a live batch.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, Shard, ShardIteratorType};
use failover_core::retry::Deadline;
use failover_core::{AwsFailure, ErrorClass};
use serde_json::{json, Map, Value};

use crate::ports::{StreamRead, StreamSource};

/// Empty GetRecords pages in a row after which an open shard counts as read to its end
/// ("it might take multiple calls to get to a portion of the shard that contains stream
/// records", DynamoDB Streams API reference, GetRecords).
const EMPTY_PAGES_AT_THE_END: usize = 3;

/// The source table's stream, read through DynamoDB Streams in the source region.
#[derive(Debug, Clone)]
pub struct DynamoDbStream {
    tables: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
}

impl DynamoDbStream {
    /// The stream of `table` (its latest stream, found with DescribeTable).
    pub fn new(tables: aws_sdk_dynamodb::Client, streams: aws_sdk_dynamodbstreams::Client, table: &str) -> Self {
        Self {
            tables,
            streams,
            table: table.to_owned(),
        }
    }

    async fn stream_arn(&self) -> Result<String, AwsFailure> {
        let table = self
            .tables
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("DescribeTable", &e))?;
        table
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| unusable("DescribeTable", format!("table {} has no stream", self.table)))
    }

    async fn shards(&self, stream_arn: &str) -> Result<Vec<Shard>, AwsFailure> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .streams
                .describe_stream()
                .stream_arn(stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk("DescribeStream", &e))?;
            let Some(description) = page.stream_description else {
                return Err(unusable("DescribeStream", format!("no description of {stream_arn}")));
            };
            shards.extend(description.shards.unwrap_or_default());
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(parents_first(shards)),
            }
        }
    }
}

impl StreamSource for DynamoDbStream {
    async fn read_all(&self, max_records: usize, deadline: Deadline) -> Result<StreamRead, AwsFailure> {
        let stream_arn = self.stream_arn().await?;
        let shards = self.shards(&stream_arn).await?;
        let mut read = StreamRead {
            stream_arn: stream_arn.clone(),
            shards: shards.len(),
            ..StreamRead::default()
        };
        let mut records = Vec::new();
        'shards: for shard in &shards {
            let shard_id = shard.shard_id().unwrap_or_default();
            let closed = shard
                .sequence_number_range()
                .is_some_and(|r| r.ending_sequence_number().is_some());
            let mut iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&stream_arn)
                .shard_id(shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk("GetShardIterator", &e))?
                .shard_iterator;
            let mut empty_pages = 0;
            while let Some(current) = iterator.take() {
                if deadline.remaining().is_zero() || records.len() >= max_records {
                    read.truncated = true;
                    break 'shards;
                }
                let page = self
                    .streams
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .map_err(|e| AwsFailure::from_sdk("GetRecords", &e))?;
                if page.records().is_empty() {
                    empty_pages += 1;
                } else {
                    empty_pages = 0;
                }
                for record in page.records() {
                    records.push(lambda_record(record, &stream_arn)?);
                }
                iterator = page.next_shard_iterator;
                // A closed shard ends where its iterator does; an open one once it stays empty.
                if !closed && empty_pages >= EMPTY_PAGES_AT_THE_END {
                    break;
                }
            }
        }
        read.records = records.len();
        read.records_json = json!({ "Records": records }).to_string();
        Ok(read)
    }
}

/// The shards ordered so that every parent comes before its children (DescribeStream lists
/// them in no promised order).
fn parents_first(shards: Vec<Shard>) -> Vec<Shard> {
    let ids: HashSet<String> = shards.iter().filter_map(|s| s.shard_id.clone()).collect();
    let mut children: HashMap<String, Vec<Shard>> = HashMap::new();
    let mut roots = Vec::new();
    for shard in shards {
        match shard.parent_shard_id.clone().filter(|p| ids.contains(p)) {
            Some(parent) => children.entry(parent).or_default().push(shard),
            None => roots.push(shard),
        }
    }
    let mut ordered = Vec::new();
    let mut queue: std::collections::VecDeque<Shard> = roots.into();
    while let Some(shard) = queue.pop_front() {
        if let Some(kids) = shard.shard_id.as_ref().and_then(|id| children.remove(id)) {
            queue.extend(kids);
        }
        ordered.push(shard);
    }
    ordered
}

/// One stream record in Lambda's shape (camelCase envelope, `dynamodb` body, `eventSourceARN`).
pub fn lambda_record(record: &Record, stream_arn: &str) -> Result<Value, AwsFailure> {
    let change = record
        .dynamodb
        .as_ref()
        .ok_or_else(|| unusable("GetRecords", "a stream record without a dynamodb body"))?;
    let mut body = Map::new();
    if let Some(time) = change.approximate_creation_date_time() {
        body.insert("ApproximateCreationDateTime".into(), json!(time.secs()));
    }
    body.insert("Keys".into(), item_json(change.keys())?);
    if let Some(image) = change.new_image() {
        body.insert("NewImage".into(), item_json(Some(image))?);
    }
    if let Some(image) = change.old_image() {
        body.insert("OldImage".into(), item_json(Some(image))?);
    }
    body.insert("SequenceNumber".into(), json!(change.sequence_number()));
    body.insert("SizeBytes".into(), json!(change.size_bytes()));
    body.insert(
        "StreamViewType".into(),
        json!(change.stream_view_type().map(|v| v.as_str())),
    );
    let mut envelope = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source().unwrap_or("aws:dynamodb"),
        "awsRegion": record.aws_region(),
        "dynamodb": Value::Object(body),
        "eventSourceARN": stream_arn,
    });
    if let Some(identity) = record.user_identity() {
        envelope["userIdentity"] = json!({"type": identity.r#type(), "principalId": identity.principal_id()});
    }
    Ok(envelope)
}

fn item_json(item: Option<&HashMap<String, AttributeValue>>) -> Result<Value, AwsFailure> {
    let mut object = Map::new();
    for (name, value) in item.into_iter().flatten() {
        object.insert(name.clone(), attribute_json(value)?);
    }
    Ok(Value::Object(object))
}

/// DynamoDB's JSON wire form of one attribute value (`{"S": "…"}`, `{"N": "…"}`, …).
pub fn attribute_json(value: &AttributeValue) -> Result<Value, AwsFailure> {
    use aws_smithy_types::base64::encode;
    Ok(match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": encode(b.as_ref())}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::Bs(v) => json!({"BS": v.iter().map(|b| encode(b.as_ref())).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": item_json(Some(m))?}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute_json).collect::<Result<Vec<_>, _>>()?}),
        AttributeValue::Null(n) => json!({"NULL": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        other => {
            return Err(unusable(
                "GetRecords",
                format!("an attribute type this version does not know: {other:?}"),
            ))
        }
    })
}

/// A stream answer this code cannot use: retrying it would give the same.
fn unusable(operation: &'static str, message: impl Into<String>) -> AwsFailure {
    AwsFailure {
        operation,
        code: None,
        message: message.into(),
        class: ErrorClass::NonRetryable,
    }
}
