//! The SDK adapter against real DynamoDB wire-format answers (aws-smithy-mocks): unprocessed
//! items then success, throttling then success, ConditionalCheckFailed, validation errors,
//! unprocessed keys, and the exact conditions sent.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::AttributeValue as SdkValue;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use common::events::{item, n, StreamBuilder};
use failover_core::retry::{Backoff, Deadline};
use failover_core::{EnvReader, ErrorClass};
use stream_replicator::adapters::dynamodb::{
    describe_key_schema, DynamoDbTable, DELETE_IF_TAGGED, PUT_IF_NEWER, TAG_IF_NOT_NEWER,
};
use stream_replicator::adapters::memory_bucket::MemoryBucket;
use stream_replicator::ports::{
    failure_kind, Conditional, FailureKind, Guard, ItemReader, ItemWriter, Tag, WriteRequest,
};
use stream_replicator::{Attributes, KeySchema, Replicator, ReplicatorConfig, Value};

const TABLE: &str = "shop-data";

fn http(status: u16, body: &'static str) -> Response {
    Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#;
const CONDITION_FAILED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
const VALIDATION: &str = r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Item size has exceeded the maximum allowed size"}"#;

fn schema() -> KeySchema {
    KeySchema::parse("pk,sk").unwrap()
}

fn key(pk: &str) -> Attributes {
    [
        ("pk".to_string(), Value::S(pk.into())),
        ("sk".to_string(), Value::S("META".into())),
    ]
    .into_iter()
    .collect()
}

fn full(pk: &str) -> Attributes {
    let mut item = key(pk);
    item.insert("qty".into(), Value::N("1".into()));
    item
}

fn guard() -> Guard<'static> {
    Guard {
        version_attribute: "v",
        version: "7",
    }
}

fn replicator(
    client: aws_sdk_dynamodb::Client,
    extra: &[(&str, &str)],
) -> Replicator<DynamoDbTable, DynamoDbTable, MemoryBucket> {
    let base = [
        ("TARGET_TABLE_NAME", TABLE),
        ("TARGET_REGION", "us-west-2"),
        ("AWS_REGION", "us-east-1"),
        ("DEAD_LETTER_BUCKET", "shop-dead-letter"),
    ];
    let config = ReplicatorConfig::from_env(&EnvReader::from_pairs(base.iter().chain(extra).copied())).unwrap();
    let table = DynamoDbTable::new(client, TABLE, schema());
    Replicator::new(config, schema(), table.clone(), table, MemoryBucket::new())
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
            max_attempts: 5,
        })
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

#[tokio::test]
async fn unprocessed_items_are_mapped_back_then_retried_to_success() {
    let partial = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .match_requests(|r| r.request_items().is_some_and(|m| m[TABLE].len() == 3))
        .then_http_response(|| {
            http(
                200,
                r#"{"UnprocessedItems":{"shop-data":[{"PutRequest":{"Item":{"pk":{"S":"C"},"sk":{"S":"META"},"qty":{"N":"1"}}}},{"DeleteRequest":{"Key":{"pk":{"S":"B"},"sk":{"S":"META"}}}}]}}"#,
            )
        });
    let rest = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .match_requests(|r| {
            r.request_items().is_some_and(|m| {
                let requests = &m[TABLE];
                requests.len() == 2 && requests[0].delete_request().is_some() && requests[1].put_request().is_some()
            })
        })
        .then_http_response(|| http(200, r#"{"UnprocessedItems":{}}"#));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&partial, &rest], |c| c
        .retry_config(RetryConfig::disabled()));
    let table = DynamoDbTable::new(client.clone(), TABLE, schema());
    let (a, b, c) = (full("A"), key("B"), full("C"));
    let positions = table
        .batch_write(&[WriteRequest::Put(&a), WriteRequest::Delete(&b), WriteRequest::Put(&c)])
        .await
        .unwrap();
    assert_eq!(positions, [1, 2]);
    let positions = table
        .batch_write(&[WriteRequest::Delete(&b), WriteRequest::Put(&c)])
        .await
        .unwrap();
    assert!(positions.is_empty());
    assert_eq!((partial.num_calls(), rest.num_calls()), (1, 1));
}

#[tokio::test]
async fn the_handler_retries_unprocessed_items_until_success() {
    let partial = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_http_response(|| {
        http(
            200,
            r#"{"UnprocessedItems":{"shop-data":[{"PutRequest":{"Item":{"pk":{"S":"B"},"sk":{"S":"META"},"qty":{"N":"1"}}}}]}}"#,
        )
    });
    let done = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .match_requests(|r| r.request_items().is_some_and(|m| m[TABLE].len() == 1))
        .then_http_response(|| http(200, "{}"));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&partial, &done], |c| c
        .retry_config(RetryConfig::disabled()));
    let r = replicator(client, &[]);
    let mut stream = StreamBuilder::new();
    stream
        .insert(item("A", "META", &[("qty", n(1))]))
        .insert(item("B", "META", &[("qty", n(1))]));
    let handled = r.replicate(stream.event(), deadline()).await;
    assert!(handled.result.unwrap().batch_item_failures.is_empty());
    assert_eq!((handled.report.write_requests, handled.report.retries), (2, 1));
    assert_eq!((partial.num_calls(), done.num_calls()), (1, 1));
}

#[tokio::test]
async fn throttling_then_success() {
    // Throttled twice (once for the direct call, once in the handler), then accepted.
    let rule = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .sequence()
        .http_response(|| http(400, THROTTLED))
        .times(2)
        .http_response(|| http(200, "{}"))
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let table = DynamoDbTable::new(client.clone(), TABLE, schema());
    let a = full("A");
    let err = table.batch_write(&[WriteRequest::Put(&a)]).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Retryable);
    assert_eq!(failure_kind(&err), FailureKind::Transient);
    assert!(err.has_code("ProvisionedThroughputExceededException"), "{err:?}");

    let r = replicator(client, &[]);
    let mut stream = StreamBuilder::new();
    stream.insert(item("A", "META", &[("qty", n(1))]));
    let handled = r.replicate(stream.event(), deadline()).await;
    assert!(handled.result.unwrap().batch_item_failures.is_empty());
    assert_eq!(handled.report.retries, 1);
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_dead_letters_the_change_whole() {
    let throttled = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_http_response(|| http(400, THROTTLED));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled], |c| c
        .retry_config(RetryConfig::disabled()));
    let r = replicator(client, &[]);
    let mut stream = StreamBuilder::new();
    stream.insert(item("A", "META", &[("qty", n(1))]));
    let handled = r.replicate(stream.event(), deadline()).await;
    assert!(handled.result.unwrap().batch_item_failures.is_empty());
    assert_eq!(throttled.num_calls(), 5, "the retry budget (WRITE_ATTEMPTS) first");
    let objects = r.dead_letter_store().objects();
    let envelope: serde_json::Value = serde_json::from_slice(objects.values().next().unwrap()).unwrap();
    assert_eq!(envelope["newImage"]["qty"]["N"], "1");
    assert!(
        envelope["error"]
            .as_str()
            .unwrap()
            .contains("ProvisionedThroughputExceededException"),
        "{envelope}"
    );
}

#[tokio::test]
async fn conditional_check_failed_is_stale_not_a_failure() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some(PUT_IF_NEWER)
                && r.expression_attribute_names().is_some_and(|n| n["#v"] == "v")
                && r.expression_attribute_values()
                    .is_some_and(|v| v[":v"] == SdkValue::N("7".into()))
        })
        .then_http_response(|| http(400, CONDITION_FAILED));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put], |c| c
        .retry_config(RetryConfig::disabled()));
    let table = DynamoDbTable::new(client.clone(), TABLE, schema());
    assert_eq!(
        table.put_if_newer(&full("A"), guard()).await.unwrap(),
        Conditional::ConditionFailed
    );

    let r = replicator(
        client,
        &[("REPLICATION_MODE", "last-writer-wins"), ("VERSION_ATTRIBUTE", "v")],
    );
    let mut stream = StreamBuilder::new();
    stream.insert(item("A", "META", &[("v", n(7))]));
    let handled = r.replicate(stream.event(), deadline()).await;
    assert!(handled.result.unwrap().batch_item_failures.is_empty());
    let doc = handled.report.metric_line("N", "us-west-2").render(0);
    assert_eq!(doc["RecordsSkippedStale"], 1.0);
    assert_eq!(doc["RecordsWritten"], 0.0);
}

#[tokio::test]
async fn guarded_delete_sends_tag_then_conditional_delete() {
    let tag = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression() == Some("SET #m = :t")
                && r.condition_expression() == Some(TAG_IF_NOT_NEWER)
                && r.expression_attribute_names()
                    .is_some_and(|n| n["#m"] == "replica_origin" && n["#k"] == "pk" && n["#v"] == "v")
                && r.expression_attribute_values()
                    .is_some_and(|v| v[":t"] == SdkValue::S("us-east-1#delete#100000000000000000".into()))
        })
        .then_http_response(|| http(200, "{}"));
    let delete = mock!(aws_sdk_dynamodb::Client::delete_item)
        .match_requests(|r| {
            r.condition_expression() == Some(DELETE_IF_TAGGED)
                && r.key()
                    .is_some_and(|k| k.len() == 2 && k["pk"] == SdkValue::S("A".into()))
        })
        .then_http_response(|| http(200, "{}"));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&tag, &delete], |c| c
        .retry_config(RetryConfig::disabled()));
    let r = replicator(
        client,
        &[("REPLICATION_MODE", "last-writer-wins"), ("VERSION_ATTRIBUTE", "v")],
    );
    let mut stream = StreamBuilder::new();
    stream.remove(item("A", "META", &[("v", n(3))]));
    let handled = r.replicate(stream.event(), deadline()).await;
    assert!(handled.result.unwrap().batch_item_failures.is_empty());
    assert_eq!((tag.num_calls(), delete.num_calls()), (1, 1));
    assert_eq!(handled.report.tally.written, 1);
}

#[tokio::test]
async fn a_lost_delete_race_removes_the_tag_again() {
    let tag = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.update_expression() == Some("SET #m = :t"))
        .then_http_response(|| http(200, "{}"));
    let delete = mock!(aws_sdk_dynamodb::Client::delete_item).then_http_response(|| http(400, CONDITION_FAILED));
    let untag = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.update_expression() == Some("REMOVE #m") && r.condition_expression() == Some("#m = :t"))
        .then_http_response(|| http(200, "{}"));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&tag, &delete, &untag], |c| c
        .retry_config(RetryConfig::disabled()));
    let table = DynamoDbTable::new(client, TABLE, schema());
    let t = Tag {
        marker_attribute: "replica_origin",
        token: "us-east-1#delete#1",
    };
    assert_eq!(
        table.tag_for_delete(&key("A"), t, guard()).await.unwrap(),
        Conditional::Applied
    );
    assert_eq!(
        table.delete_if_tagged(&key("A"), t, guard()).await.unwrap(),
        Conditional::ConditionFailed
    );
    assert_eq!(table.untag(&key("A"), t).await.unwrap(), Conditional::Applied);
    assert_eq!((tag.num_calls(), delete.num_calls(), untag.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn a_validation_error_is_an_item_rejection() {
    let rejected = mock!(aws_sdk_dynamodb::Client::put_item).then_http_response(|| http(400, VALIDATION));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rejected], |c| c
        .retry_config(RetryConfig::disabled()));
    let table = DynamoDbTable::new(client, TABLE, schema());
    let err = table.put_if_newer(&full("A"), guard()).await.unwrap_err();
    assert_eq!(failure_kind(&err), FailureKind::ItemRejected);
    assert_eq!(err.message, "Item size has exceeded the maximum allowed size");
}

#[tokio::test]
async fn batch_get_is_consistent_and_maps_unprocessed_keys() {
    let get = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .match_requests(|r| {
            r.request_items()
                .is_some_and(|m| m[TABLE].consistent_read() == Some(true) && m[TABLE].keys().len() == 3)
        })
        .then_http_response(|| {
            http(
                200,
                r#"{"Responses":{"shop-data":[{"pk":{"S":"A"},"sk":{"S":"META"},"qty":{"N":"1"}}]},"UnprocessedKeys":{"shop-data":{"Keys":[{"pk":{"S":"C"},"sk":{"S":"META"}}],"ConsistentRead":true}}}"#,
            )
        });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&get], |c| c
        .retry_config(RetryConfig::disabled()));
    let table = DynamoDbTable::new(client, TABLE, schema());
    let (a, b, c) = (key("A"), key("B"), key("C"));
    let answer = table.batch_get(&[&a, &b, &c]).await.unwrap();
    assert_eq!(answer.items, [full("A")]);
    assert_eq!(answer.unprocessed, [2]);
}

#[tokio::test]
async fn the_key_schema_is_learned_from_describe_table() {
    let describe = mock!(aws_sdk_dynamodb::Client::describe_table).then_http_response(|| {
        http(
            200,
            r#"{"Table":{"TableName":"shop-data","TableStatus":"ACTIVE","KeySchema":[{"AttributeName":"sk","KeyType":"RANGE"},{"AttributeName":"pk","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"S"}]}}"#,
        )
    });
    let missing = mock!(aws_sdk_dynamodb::Client::describe_table).then_http_response(|| {
        http(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found: Table: nope not found"}"#,
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&describe, &missing], |c| c
        .retry_config(RetryConfig::disabled()));
    assert_eq!(describe_key_schema(&client, TABLE).await.unwrap(), schema());
    let err = describe_key_schema(&client, "nope").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(err.to_string().contains("ResourceNotFoundException"), "{err}");
}
