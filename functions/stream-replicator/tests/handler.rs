//! The handler end to end over in-memory tables: coalescing, batching, failure sequence
//! numbers, retries, last-writer-wins, loop markers, TTL policy, view types, bad input.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use common::events::{item, n, s, stream_arn, StreamBuilder};
use failover_core::retry::{Backoff, Deadline};
use failover_core::{AwsFailure, EnvReader, ErrorClass, FailoverError};
use serde_json::Value as Json;
use stream_replicator::adapters::memory::{Fault, MemoryTable};
use stream_replicator::adapters::memory_bucket::MemoryBucket;
use stream_replicator::{Attributes, HandledBatch, KeySchema, OriginMarker, Replicator, ReplicatorConfig, Value};

const MARKER: &str = "replica_origin";

type MemoryReplicator = Replicator<MemoryTable, MemoryTable, MemoryBucket>;

fn schema() -> KeySchema {
    KeySchema::parse("pk,sk").unwrap()
}

fn replicator(extra: &[(&str, &str)]) -> MemoryReplicator {
    let base = [
        ("TARGET_TABLE_NAME", "shop-data"),
        ("TARGET_REGION", "us-west-2"),
        ("AWS_REGION", "us-east-1"),
        ("DEAD_LETTER_BUCKET", "shop-dead-letter"),
        // One call at a time keeps injected faults aimed at a known call.
        ("WRITE_CONCURRENCY", "1"),
    ];
    let config = ReplicatorConfig::from_env(&EnvReader::from_pairs(base.iter().chain(extra).copied())).unwrap();
    let (target, source) = (MemoryTable::new(schema()), MemoryTable::new(schema()));
    Replicator::new(config, schema(), target, source, MemoryBucket::new())
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
            max_attempts: 4,
        })
}

fn lww() -> MemoryReplicator {
    replicator(&[("REPLICATION_MODE", "last-writer-wins"), ("VERSION_ATTRIBUTE", "v")])
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

fn attrs(image: &Json) -> Attributes {
    serde_json::from_value::<serde_dynamo::Item>(image.clone())
        .unwrap()
        .into_inner()
        .into_iter()
        .collect()
}

/// `Attributes` as serde_dynamo's own map type.
fn std_map(item: Attributes) -> std::collections::HashMap<String, Value> {
    item.into_iter().collect()
}

fn without_marker(mut item: Attributes) -> Attributes {
    item.remove(MARKER);
    item
}

fn key_string(item: &Attributes) -> String {
    match (&item["pk"], &item["sk"]) {
        (Value::S(pk), Value::S(sk)) => format!("{pk}/{sk}"),
        other => panic!("unexpected key {other:?}"),
    }
}

/// The target's content without markers, by key.
fn target(r: &MemoryReplicator) -> BTreeMap<String, Attributes> {
    r.writer()
        .items()
        .into_iter()
        .map(|i| (key_string(&i), without_marker(i)))
        .collect()
}

/// The state a table reaches by applying the builder's records in order.
fn expected(stream: &StreamBuilder) -> BTreeMap<String, Attributes> {
    let mut state = BTreeMap::new();
    for record in stream.records() {
        let body = &record["dynamodb"];
        let key = attrs(&body["Keys"]);
        match record["eventName"].as_str().unwrap() {
            "REMOVE" => {
                state.remove(&key_string(&key));
            }
            _ => {
                state.insert(key_string(&key), attrs(&body["NewImage"]));
            }
        }
    }
    state
}

async fn run(r: &MemoryReplicator, stream: &StreamBuilder) -> HandledBatch {
    r.replicate(stream.event(), deadline()).await
}

fn ok(handled: &HandledBatch) -> &DynamoDbEventResponse {
    handled.result.as_ref().expect("the batch is handled")
}

fn resume_point(handled: &HandledBatch) -> Option<String> {
    ok(handled)
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .min()
}

fn qty(pk: &str, q: u32) -> Json {
    item(pk, "META", &[("qty", n(q))])
}

#[tokio::test]
async fn only_the_last_change_per_key_is_written_in_one_request() {
    let r = replicator(&[]);
    let mut stream = StreamBuilder::new();
    stream
        .insert(qty("A", 1))
        .insert(qty("B", 1))
        .modify(qty("A", 1), qty("A", 2))
        .remove(qty("B", 1))
        .insert(qty("C", 1))
        .modify(qty("A", 2), qty("A", 3))
        .insert(qty("B", 9));
    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(target(&r), expected(&stream));
    assert_eq!(target(&r)["A/META"]["qty"], Value::N("3".into()));
    assert_eq!(
        r.writer().calls.batch_write.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let report = &handled.report;
    assert_eq!((report.received, report.keys, report.write_requests), (7, 3, 1));
    assert_eq!((report.tally.written, report.tally.retried), (7, 0));
}

#[tokio::test]
async fn a_put_then_delete_leaves_nothing_and_a_delete_then_put_recreates() {
    let r = replicator(&[]);
    r.writer().insert(attrs(&qty("OLD", 1)));
    let mut stream = StreamBuilder::new();
    stream
        .insert(qty("GONE", 1))
        .remove(qty("GONE", 1))
        .remove(qty("OLD", 1))
        .insert(qty("OLD", 5));
    ok(&run(&r, &stream).await);
    assert_eq!(target(&r), expected(&stream));
    assert!(!target(&r).contains_key("GONE/META"));
}

#[tokio::test]
async fn batches_hold_at_most_25_distinct_keys() {
    for (records, distinct, calls) in [(1_000, 1_000, 40), (1_000, 500, 20), (26, 26, 2), (25, 25, 1)] {
        let r = replicator(&[("WRITE_CONCURRENCY", "8")]);
        let mut stream = StreamBuilder::new();
        for i in 0..records {
            stream.insert(qty(&format!("K{}", i % distinct), i as u32));
        }
        let handled = run(&r, &stream).await;
        assert!(ok(&handled).batch_item_failures.is_empty());
        assert_eq!(
            handled.report.write_requests, calls,
            "{records} records, {distinct} keys"
        );
        assert_eq!(target(&r), expected(&stream));
    }
}

#[tokio::test]
async fn unprocessed_items_are_retried_until_written() {
    let r = replicator(&[]);
    r.writer()
        .inject([Fault::Unprocessed(10), Fault::Unprocessed(3), Fault::Pass]);
    let mut stream = StreamBuilder::new();
    for i in 0..20 {
        stream.insert(qty(&format!("K{i}"), i));
    }
    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(target(&r), expected(&stream));
    assert_eq!((handled.report.write_requests, handled.report.retries), (3, 2));
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let r = replicator(&[]);
    r.writer().inject([Fault::throttled(), Fault::throttled(), Fault::Pass]);
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1)).insert(qty("B", 1));
    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(target(&r), expected(&stream));
    assert_eq!(handled.report.retries, 2);
}

/// The dead-lettered envelopes, as JSON, by object key.
fn dead_letters(r: &MemoryReplicator) -> BTreeMap<String, Json> {
    r.dead_letter_store()
        .objects()
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect()
}

#[tokio::test]
async fn writes_that_spend_their_retry_budget_go_whole_to_the_dead_letter_and_the_batch_goes_on() {
    let r = replicator(&[]);
    // 60 keys make chunks of 25, 25 and 10; the first passes, the second never does.
    r.writer()
        .inject(std::iter::once(Fault::Pass).chain(std::iter::repeat_n(Fault::throttled(), 4)));
    let mut stream = StreamBuilder::new();
    for i in 0..60 {
        stream.insert(qty(&format!("K{i:02}"), 1));
    }
    stream.modify(qty("K25", 1), qty("K25", 2));
    let handled = run(&r, &stream).await;
    assert_eq!(resume_point(&handled), None, "nothing for Lambda to retry");
    let tally = &handled.report.tally;
    assert_eq!((tally.written, tally.dead_lettered, tally.retried), (35, 26, 0));
    let letters = dead_letters(&r);
    assert_eq!(letters.len(), 25);
    let k25 = letters.values().find(|e| e["keys"]["pk"]["S"] == "K25").unwrap();
    assert_eq!(k25["newImage"]["qty"]["N"], "2", "the key's last change");
    assert_eq!(k25["recordsCovered"], 2);
    assert_eq!(k25["firstSequenceNumber"], stream.sequence(25));
    assert_eq!(k25["sequenceNumber"], stream.sequence(60));
    assert!(
        k25["error"].as_str().unwrap().starts_with("retry budget spent"),
        "{k25}"
    );
    let doc = handled.report.metric_line("N", "us-west-2").render(0);
    assert_eq!(doc["RecordsDeadLettered"], 26.0);
    // Redriven against the source (which holds the stream's final state), the target holds
    // exactly that state and the bucket is empty.
    for item in expected(&stream).into_values() {
        r.reader().insert(item);
    }
    let report = r.redrive(&Default::default(), deadline()).await.unwrap();
    assert_eq!(
        (report.objects, report.written, report.stale, report.more),
        (25, 25, 0, false)
    );
    assert_eq!(target(&r), expected(&stream));
    assert!(dead_letters(&r).is_empty());
}

#[tokio::test]
async fn the_failure_is_the_first_record_of_the_earliest_key_not_written() {
    let r = replicator(&[]);
    // 60 keys make chunks of 25, 25 and 10; the first passes, the second never does, and
    // the dead-letter bucket is unavailable too (25 puts of 4 attempts each).
    r.writer()
        .inject(std::iter::once(Fault::Pass).chain(std::iter::repeat_n(Fault::throttled(), 4)));
    r.dead_letter_store().fail_next(100);
    let mut stream = StreamBuilder::new();
    for i in 0..60 {
        stream.insert(qty(&format!("K{i:02}"), 1));
    }
    // K25, the second chunk's first key, changed again at the end: its first record (25) is
    // where Lambda must resume, although the change to write is the batch's last record.
    stream.modify(qty("K25", 1), qty("K25", 2));
    let handled = run(&r, &stream).await;
    assert_eq!(resume_point(&handled), Some(stream.sequence(25)));
    assert_eq!(ok(&handled).batch_item_failures.len(), 1);
    let tally = &handled.report.tally;
    assert_eq!((tally.written, tally.retried), (25, 61 - 25));
    // Replaying from there as Lambda does converges.
    let resume = 25;
    let replay = r
        .replicate(stream.event_of(resume..stream.records().len()), deadline())
        .await;
    assert!(ok(&replay).batch_item_failures.is_empty());
    assert_eq!(target(&r), expected(&stream));
}

#[tokio::test]
async fn a_past_deadline_stops_retries_and_fails_from_the_first_unwritten_key() {
    let r = replicator(&[]);
    r.writer().inject([Fault::throttled()]);
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1)).insert(qty("B", 1));
    let handled = r.replicate(stream.event(), Deadline::after(Duration::ZERO)).await;
    assert_eq!(resume_point(&handled), Some(stream.sequence(0)));
    assert!(r.writer().is_empty());
    assert_eq!(handled.report.retries, 0);
}

#[tokio::test]
async fn an_invalid_request_is_isolated_and_dead_lettered_and_its_neighbours_are_written() {
    {
        let r = replicator(&[]);
        // The batch of 5 is rejected; one by one, only the third request is.
        r.writer().inject([
            Fault::rejected(),
            Fault::Pass,
            Fault::Pass,
            Fault::rejected(),
            Fault::Pass,
            Fault::Pass,
        ]);
        let mut stream = StreamBuilder::new();
        for i in 0..5 {
            stream.insert(qty(&format!("K{i}"), 1));
        }
        let handled = run(&r, &stream).await;
        assert_eq!(r.writer().len(), 4);
        assert!(r.writer().get(&attrs(&qty("K2", 1))).is_none());
        assert_eq!(resume_point(&handled), None);
        assert_eq!(handled.report.tally.dead_lettered, 1);
        assert_eq!(handled.report.write_requests, 6);
        let letters = dead_letters(&r);
        let only = letters.values().next().unwrap();
        assert_eq!((letters.len(), &only["keys"]["pk"]["S"]), (1, &Json::from("K2")));
        assert!(
            only["error"].as_str().unwrap().contains("rejected by DynamoDB"),
            "{only}"
        );
    }
}

/// One poison record among 100 costs exactly that record: 99 written, 1 dead-lettered,
/// nothing left for Lambda to retry (so no bisection ever splits the batch).
#[tokio::test]
async fn a_poison_record_among_100_costs_exactly_itself() {
    let r = lww();
    let mut stream = StreamBuilder::new();
    for i in 0..100 {
        if i == 37 {
            stream.insert(qty("POISON", 1)); // no version in last-writer-wins mode
        } else {
            stream.insert(versioned(&format!("K{i:02}"), 1));
        }
    }
    let handled = run(&r, &stream).await;
    assert_eq!(resume_point(&handled), None);
    assert_eq!(r.writer().len(), 99);
    let tally = &handled.report.tally;
    assert_eq!((tally.written, tally.dead_lettered), (99, 1));
    let letters = dead_letters(&r);
    let (key, poison) = letters.iter().next().unwrap();
    assert!(
        key.ends_with(&format!(
            "{:0>40}-{}.json",
            stream.sequence(37),
            poison["eventID"].as_str().unwrap()
        )),
        "{key}"
    );
    assert_eq!(poison["newImage"]["qty"]["N"], "1");
    assert!(
        poison["error"].as_str().unwrap().contains("no numeric version"),
        "{poison}"
    );
}

#[tokio::test]
async fn a_one_way_copy_writes_a_400_kb_item_as_it_is_and_two_way_dead_letters_it() {
    let big = || item("BIG", "META", &[("blob", s(&"x".repeat(400 * 1024 - 20)))]);
    let r = replicator(&[]);
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1)).insert(big()).insert(qty("C", 1));
    let handled = run(&r, &stream).await;
    assert_eq!((r.writer().len(), resume_point(&handled)), (3, None));
    let written = r.writer().get(&attrs(&big())).unwrap();
    assert!(!written.contains_key(MARKER), "overwrite mode adds no origin marker");
    assert_eq!(written, attrs(&big()));

    let r = lww();
    let mut stream = StreamBuilder::new();
    let mut versioned_big = big();
    versioned_big["v"] = n(1);
    stream.insert(versioned("A", 1)).insert(versioned_big);
    let handled = run(&r, &stream).await;
    assert_eq!((r.writer().len(), resume_point(&handled)), (1, None));
    let letters = dead_letters(&r);
    let envelope = letters.values().next().unwrap();
    assert_eq!(
        envelope["newImage"]["blob"]["S"].as_str().unwrap().len(),
        400 * 1024 - 20
    );
    assert!(envelope["error"].as_str().unwrap().contains("over the 400 KB limit"));
}

#[tokio::test]
async fn a_change_the_dead_letter_bucket_does_not_take_is_retried_by_lambda() {
    let r = lww();
    r.dead_letter_store().fail_next(4);
    let mut stream = StreamBuilder::new();
    stream.insert(versioned("A", 1)).insert(qty("NO-VERSION", 1));
    let handled = run(&r, &stream).await;
    assert_eq!(resume_point(&handled), Some(stream.sequence(1)), "never dropped");
    assert!(dead_letters(&r).is_empty());
    // Lambda delivers it again; now the bucket answers.
    let handled = r.replicate(stream.event_of(1..2), deadline()).await;
    assert_eq!((resume_point(&handled), dead_letters(&r).len()), (None, 1));
}

#[tokio::test]
async fn a_missing_table_fails_the_whole_batch_as_non_retryable() {
    let r = replicator(&[]);
    r.writer().inject([Fault::Fail(AwsFailure {
        operation: "BatchWriteItem",
        code: Some("ResourceNotFoundException".into()),
        message: "Requested resource not found".into(),
        class: ErrorClass::NonRetryable,
    })]);
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1));
    let handled = run(&r, &stream).await;
    let err = handled.result.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(err.to_string().contains("ResourceNotFoundException"), "{err}");
}

/// DynamoDB Streams orders each item's changes by SequenceNumber. A batch whose array puts
/// a key's older change last would, coalesced by position, write the older image: it is
/// refused, with both records named, before anything is written. The same records in
/// sequence order replicate the newer image, so the check is what makes the difference.
#[tokio::test]
async fn a_key_whose_sequence_numbers_go_backwards_is_refused_before_anything_is_written() {
    let r = replicator(&[]);
    let mut stream = StreamBuilder::new();
    stream
        .insert(qty("A", 1))
        .modify(qty("A", 1), qty("A", 2))
        .insert(qty("B", 1));
    let mut swapped = stream.records().to_vec();
    swapped.swap(0, 1);
    let event = serde_json::from_value(serde_json::json!({ "Records": swapped })).unwrap();
    let err = r.replicate(event, deadline()).await.result.unwrap_err();
    assert!(matches!(err, FailoverError::InvalidEvent(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("record 1 has SequenceNumber {}", stream.sequence(0)))
            && message.contains(&format!("below {} of record 0", stream.sequence(1))),
        "{message}"
    );
    assert!(r.writer().is_empty(), "nothing was written");

    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(target(&r)["A/META"]["qty"], Value::N("2".into()));
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_written() {
    let r = replicator(&[]);
    // A record of another table after a valid one.
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1));
    let mut other = StreamBuilder::new().with_arn(&stream_arn().replace("shop-data", "sessions"));
    other.insert(qty("B", 1));
    let mut records = stream.records().to_vec();
    records.extend(other.records().iter().cloned());
    let event = serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    let handled = r.replicate(event, deadline()).await;
    let err = handled.result.unwrap_err();
    assert!(matches!(err, FailoverError::InvalidEvent(_)));
    assert!(err.to_string().contains("record 1"), "{err}");
    assert!(err.to_string().contains("table sessions"), "{err}");

    // A record without keys.
    let mut no_keys = stream.records()[0].clone();
    no_keys["dynamodb"].as_object_mut().unwrap().remove("Keys");
    let event =
        serde_json::from_value(serde_json::json!({ "Records": [stream.records()[0].clone(), no_keys] })).unwrap();
    let err = r.replicate(event, deadline()).await.result.unwrap_err();
    assert!(
        err.to_string().contains("record 1") && err.to_string().contains("no Keys"),
        "{err}"
    );

    // A malformed payload, through the raw entry point.
    let raw = serde_json::value::RawValue::from_string(r#"{"Records": [{"eventName": "INSERT"}]}"#.into()).unwrap();
    let err = r.handle_payload(raw, deadline()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(err.to_string().contains("at Records[0]"), "{err}");

    assert!(r.writer().is_empty());
    assert_eq!(r.writer().calls.writes(), 0);
}

#[tokio::test]
async fn the_raw_entry_point_replicates_a_valid_payload() {
    let r = replicator(&[]);
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1));
    let raw = serde_json::value::RawValue::from_string(stream.json()).unwrap();
    let response = r.handle_payload(raw, deadline()).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(target(&r), expected(&stream));
    // Serialized as Lambda expects it.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": []})
    );
}

#[tokio::test]
async fn ttl_deletes_follow_the_policy() {
    for (policy, kept) in [("replicate", false), ("skip", true)] {
        let r = replicator(&[("TTL_DELETES", policy)]);
        r.writer().insert(attrs(&qty("SESSION", 1)));
        let mut stream = StreamBuilder::new();
        stream.ttl_remove(qty("SESSION", 1)).remove(qty("OTHER", 1));
        let handled = run(&r, &stream).await;
        assert!(ok(&handled).batch_item_failures.is_empty());
        assert_eq!(target(&r).contains_key("SESSION/META"), kept, "{policy}");
        let skipped = handled.report.metric_line("N", "r").render(0)["RecordsSkippedTtl"].clone();
        assert_eq!(skipped, if kept { 1.0 } else { 0.0 });
    }
}

#[tokio::test]
async fn new_image_streams_replicate_directly() {
    let r = replicator(&[]);
    let mut stream = StreamBuilder::new().view("NEW_IMAGE");
    stream
        .insert(qty("A", 1))
        .modify(qty("A", 1), qty("A", 2))
        .insert(qty("B", 1))
        .remove(qty("B", 1));
    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(target(&r), expected(&stream));
    assert_eq!(handled.report.read_requests, 0);
}

#[tokio::test]
async fn keys_only_streams_read_the_current_item_consistently() {
    let r = replicator(&[]);
    // The source's current state: A was updated again after the records, C was deleted.
    r.reader().insert(attrs(&qty("A", 7)));
    r.reader().insert(attrs(&qty("B", 1)));
    r.reader().inject([Fault::Unprocessed(1), Fault::Pass]);
    let mut stream = StreamBuilder::new().view("KEYS_ONLY");
    stream
        .insert(qty("A", 1))
        .insert(qty("B", 1))
        .insert(qty("C", 1))
        .modify(qty("A", 1), qty("A", 2));
    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(target(&r)["A/META"]["qty"], Value::N("7".into()));
    assert!(target(&r).contains_key("B/META"));
    assert!(!target(&r).contains_key("C/META"));
    assert_eq!((handled.report.read_requests, handled.report.retries), (2, 1));
    let doc = handled.report.metric_line("N", "r").render(0);
    assert_eq!(doc["RecordsSkippedGoneAtSource"], 1.0);
    // A failed read is not durable: the batch resumes at the key's first record.
    let r = replicator(&[]);
    r.reader().inject(std::iter::repeat_n(Fault::throttled(), 4));
    let handled = run(&r, &stream).await;
    assert_eq!(resume_point(&handled), Some(stream.sequence(0)));
}

fn versioned(pk: &str, version: u32) -> Json {
    item(pk, "META", &[("v", n(version)), ("status", s(&format!("v{version}")))])
}

#[tokio::test]
async fn last_writer_wins_keeps_the_newer_version_and_counts_stale_as_skipped() {
    let r = lww();
    r.writer().insert(attrs(&versioned("NEWER", 9)));
    r.writer().insert(attrs(&versioned("OLDER", 1)));
    r.writer().insert(attrs(&versioned("DEL-NEWER", 9)));
    r.writer().insert(attrs(&versioned("DEL-OK", 2)));
    let mut stream = StreamBuilder::new();
    stream
        .modify(versioned("NEWER", 4), versioned("NEWER", 5))
        .modify(versioned("OLDER", 1), versioned("OLDER", 2))
        .insert(versioned("FRESH", 1))
        .remove(versioned("DEL-NEWER", 3))
        .remove(versioned("DEL-OK", 2))
        .remove(versioned("ABSENT", 2));
    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty(), "stale is never a failure");
    let t = target(&r);
    assert_eq!(t["NEWER/META"]["v"], Value::N("9".into()));
    assert_eq!(t["OLDER/META"]["v"], Value::N("2".into()));
    assert_eq!(t["FRESH/META"]["v"], Value::N("1".into()));
    assert_eq!(t["DEL-NEWER/META"]["v"], Value::N("9".into()));
    assert!(!t.contains_key("DEL-OK/META"));
    let tally = &handled.report.tally;
    assert_eq!(tally.written, 3);
    assert_eq!(tally.skipped.values().sum::<usize>(), 3, "{tally:?}");
    // Puts: 3 calls; deletes: a tag each (3), the delete of DEL-OK, and for the two stale
    // deletes the conditional removal of a tag an earlier attempt may have left.
    assert_eq!(handled.report.write_requests, 3 + 3 + 1 + 2);
}

#[tokio::test]
async fn last_writer_wins_retries_throttled_writes() {
    let r = lww();
    r.writer().inject([Fault::throttled(), Fault::Pass, Fault::throttled()]);
    let mut stream = StreamBuilder::new();
    stream.insert(versioned("A", 1)).insert(versioned("B", 1));
    let handled = run(&r, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(target(&r), expected(&stream));
    assert_eq!(handled.report.retries, 2);
}

#[tokio::test]
async fn last_writer_wins_dead_letters_changes_without_versions_never_skips_them() {
    let r = lww();
    let mut stream = StreamBuilder::new();
    stream.insert(versioned("A", 1)).insert(qty("NO-VERSION", 1));
    let handled = run(&r, &stream).await;
    assert_eq!(resume_point(&handled), None);
    assert_eq!((handled.report.tally.dead_lettered, dead_letters(&r).len()), (1, 1));
    let r = lww();
    let mut stream = StreamBuilder::new().view("NEW_IMAGE");
    stream.remove(versioned("A", 1));
    assert_eq!(resume_point(&run(&r, &stream).await), None);
    let letters = dead_letters(&r);
    let delete = letters.values().next().unwrap();
    assert_eq!(
        (delete["operation"].as_str(), delete["newImage"].is_null()),
        (Some("delete"), true)
    );
}

/// The changes a stream on `table` would show for its current items (as INSERTs).
fn stream_of(table: &MemoryTable) -> StreamBuilder {
    let mut stream = StreamBuilder::new();
    let mut items = table.items();
    items.sort_by_key(key_string);
    for it in items {
        stream.insert(serde_json::to_value(serde_dynamo::Item::from(std_map(it))).unwrap());
    }
    stream
}

#[tokio::test]
async fn two_way_replication_never_sends_a_change_back() {
    // A -> B, then B's stream (holding exactly what the replicator wrote) back toward A.
    // Two-way needs last-writer-wins: a one-way copy (overwrite) carries no marker.
    {
        let forward = lww();
        let mut stream = StreamBuilder::new();
        stream.insert(versioned("A", 1)).insert(versioned("B", 3));
        ok(&run(&forward, &stream).await);
        let echo = stream_of(forward.writer());
        let backward = lww();
        let handled = run(&backward, &echo).await;
        assert!(ok(&handled).batch_item_failures.is_empty());
        assert_eq!(backward.writer().calls.writes(), 0, "nothing is sent back");
        assert_eq!(handled.report.tally.skipped.values().sum::<usize>(), 2);
    }
}

/// A last-writer-wins delete of `A` v4 whose tag went through and whose delete gave up, so
/// Lambda will retry the record: the replicator and that one-record stream.
async fn tagged_but_not_deleted() -> (MemoryReplicator, StreamBuilder) {
    let forward = lww();
    forward.writer().insert(attrs(&versioned("A", 4)));
    forward.writer().inject([
        Fault::Pass,
        Fault::throttled(),
        Fault::throttled(),
        Fault::throttled(),
        Fault::throttled(),
    ]);
    // The bucket is unavailable too, so Lambda retries the record.
    forward.dead_letter_store().fail_next(4);
    let mut stream = StreamBuilder::new();
    stream.remove(versioned("A", 4));
    assert_eq!(resume_point(&run(&forward, &stream).await), Some(stream.sequence(0)));
    (forward, stream)
}

#[tokio::test]
async fn two_way_deletes_are_tagged_so_their_echo_is_recognised() {
    // Watch the tagging step: fail the delete once, so the tagged item stays visible.
    let (forward, stream) = tagged_but_not_deleted().await;
    let tagged = forward.writer().get(&attrs(&versioned("A", 4))).unwrap();
    let tagged_json = serde_json::to_value(serde_dynamo::Item::from(std_map(tagged))).unwrap();
    // The target's stream shows the tag (a MODIFY) and then the REMOVE of the tagged item.
    let mut echo = StreamBuilder::new();
    echo.modify(versioned("A", 4), tagged_json.clone()).remove(tagged_json);
    let backward = lww();
    backward.writer().insert(attrs(&versioned("A", 4)));
    let handled = run(&backward, &echo).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert_eq!(backward.writer().calls.writes(), 0);
    // Lambda's retry finishes the delete.
    let handled = run(&forward, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    assert!(forward.writer().is_empty());
}

#[tokio::test]
async fn a_delete_tag_left_by_a_failed_attempt_is_removed_when_a_newer_write_wins() {
    let (forward, stream) = tagged_but_not_deleted().await;
    // Meanwhile the application updates the item in the target (UpdateItem keeps the tag).
    let mut updated = forward.writer().get(&attrs(&versioned("A", 4))).unwrap();
    assert!(updated.contains_key(MARKER), "tagged by the first attempt");
    updated.insert("v".into(), Value::N("5".into()));
    forward.writer().insert(updated);

    let handled = run(&forward, &stream).await;
    assert!(ok(&handled).batch_item_failures.is_empty());
    let kept = forward.writer().get(&attrs(&versioned("A", 4))).unwrap();
    assert_eq!(kept["v"], Value::N("5".into()), "the newer write wins");
    assert!(
        !kept.contains_key(MARKER),
        "no stale tag: a later application delete must not look like the replicator's own"
    );
}

#[tokio::test]
async fn an_application_update_of_a_replicated_item_is_replicated_back() {
    let forward = lww();
    let mut stream = StreamBuilder::new();
    stream.insert(versioned("A", 1));
    ok(&run(&forward, &stream).await);
    let replicated = forward.writer().items().remove(0);
    let old = serde_json::to_value(serde_dynamo::Item::from(std_map(replicated.clone()))).unwrap();
    let mut updated = replicated;
    updated.insert("v".into(), Value::N("2".into()));
    let new = serde_json::to_value(serde_dynamo::Item::from(std_map(updated))).unwrap();
    let mut echo = StreamBuilder::new();
    echo.modify(old, new);
    let backward = lww();
    ok(&run(&backward, &echo).await);
    assert_eq!(target(&backward)["A/META"]["v"], Value::N("2".into()));
    let written = backward.writer().items().remove(0);
    assert!(OriginMarker::new(MARKER, "us-east-1").upsert_is_own(&written, None));
}

#[tokio::test]
async fn replication_lag_is_measured_from_the_creation_time() {
    let r = replicator(&[]);
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1)).insert(qty("B", 1)).insert(qty("C", 1));
    let handled = run(&r, &stream).await;
    let lag = handled.report.lag.unwrap();
    let expected_ms = chrono::Utc::now().timestamp_millis() - 1_763_694_000_000;
    assert!((lag.max_ms - expected_ms).abs() < 60_000, "{lag:?}");
    assert_eq!(lag.max_ms, lag.median_ms);
}

/// Dead-letters every change of `stream` in batches of `ranges` (the target refuses
/// everything as invalid), then sets the source to `source` and redrives.
async fn redriven(
    r: &MemoryReplicator,
    stream: &StreamBuilder,
    ranges: &[std::ops::Range<usize>],
    source: &[Json],
) -> stream_replicator::RedriveReport {
    for range in ranges {
        // The chunk is refused, then each request alone.
        let refusals = if range.len() > 1 { 1 + range.len() } else { 1 };
        r.writer().inject(std::iter::repeat_n(Fault::rejected(), refusals));
        let handled = r.replicate(stream.event_of(range.clone()), deadline()).await;
        assert_eq!(resume_point(&handled), None);
        assert_eq!(handled.report.tally.dead_lettered, range.len());
    }
    for item in source {
        r.reader().insert(attrs(item));
    }
    r.redrive(&Default::default(), deadline()).await.unwrap()
}

#[tokio::test]
async fn a_redrive_writes_what_the_source_still_holds_and_never_an_older_state() {
    let r = replicator(&[]);
    r.writer().insert(attrs(&qty("GONE", 1)));
    // Two batches: SUPERSEDED's change in the second supersedes its dead letter of the first.
    let mut stream = StreamBuilder::new();
    stream
        .insert(qty("SAME", 1))
        .insert(qty("CHANGED", 1))
        .insert(qty("DELETED", 1))
        .insert(qty("SUPERSEDED", 1))
        .modify(qty("SUPERSEDED", 1), qty("SUPERSEDED", 2))
        .remove(qty("GONE", 1));
    let source = [qty("SAME", 1), qty("CHANGED", 5), qty("SUPERSEDED", 2)];
    let report = redriven(&r, &stream, &[0..4, 4..6], &source).await;
    // SAME, SUPERSEDED (its later change) and GONE (the delete) written; CHANGED and
    // DELETED stale; SUPERSEDED's first object superseded.
    assert_eq!((report.objects, report.written), (6, 3), "{report:?}");
    assert_eq!((report.stale, report.superseded, report.left), (2, 1, 0), "{report:?}");
    let target = target(&r);
    assert_eq!(target["SAME/META"]["qty"], Value::N("1".into()));
    assert_eq!(target["SUPERSEDED/META"]["qty"], Value::N("2".into()));
    assert!(!target.contains_key("GONE/META"), "the dead-lettered delete is done");
    assert!(
        !target.contains_key("CHANGED/META"),
        "its newer state is the live stream's to write"
    );
    assert!(!target.contains_key("DELETED/META"), "nothing resurrected");
    assert!(dead_letters(&r).is_empty(), "every object done with is deleted");
}

#[tokio::test]
async fn a_redrive_sends_back_what_still_fails_and_leaves_foreign_objects_alone() {
    let r = lww();
    let mut stream = StreamBuilder::new();
    stream.insert(qty("NO-VERSION", 1));
    let one_batch = [std::ops::Range { start: 0, end: 1 }];
    let report = redriven(&r, &stream, &one_batch, &[qty("NO-VERSION", 1)]).await;
    assert_eq!((report.written, report.dead_lettered_again), (0, 1), "{report:?}");
    let letters = dead_letters(&r);
    let again = letters.values().next().unwrap();
    assert_eq!(again["timesDeadLettered"], 2);
    r.dead_letter_store()
        .insert("dead-letter/shop-data/not-an-envelope.json", b"{\"hello\": 1}".to_vec());
    let report = r.redrive(&Default::default(), deadline()).await.unwrap();
    assert_eq!(report.unreadable.len(), 1, "{report:?}");
    assert!(report.unreadable[0].contains("not-an-envelope.json"), "{report:?}");
    assert_eq!(dead_letters(&r).len(), 2, "a foreign object is never deleted");
    let err = r
        .redrive(
            &serde_json::from_value(serde_json::json!({"maxObjects": 0})).unwrap(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maxObjects"), "{err}");
}

/// The target of a redrive racing a live write: the first BatchWriteItem (the redrive's)
/// finds that the application changed the item at the source and the live replicator wrote
/// that newer state to the target just before, so the redrive's write brings back the older
/// state, which only its verification round can undo.
struct RacingTarget {
    target: MemoryTable,
    source: std::sync::Arc<MemoryTable>,
    newer: std::sync::Mutex<Option<Attributes>>,
}

impl stream_replicator::ports::ItemReader for RacingTarget {
    async fn batch_get(&self, keys: &[&Attributes]) -> Result<stream_replicator::ports::BatchGet, AwsFailure> {
        self.target.batch_get(keys).await
    }
}

impl stream_replicator::ports::ItemWriter for RacingTarget {
    async fn batch_write(
        &self,
        requests: &[stream_replicator::ports::WriteRequest<'_>],
    ) -> Result<Vec<usize>, AwsFailure> {
        if let Some(newer) = self.newer.lock().unwrap().take() {
            self.source.insert(newer.clone());
            self.target.insert(newer);
        }
        self.target.batch_write(requests).await
    }
    async fn put_if_newer(
        &self,
        item: &Attributes,
        guard: stream_replicator::ports::Guard<'_>,
    ) -> Result<stream_replicator::ports::Conditional, AwsFailure> {
        self.target.put_if_newer(item, guard).await
    }
    async fn tag_for_delete(
        &self,
        key: &Attributes,
        tag: stream_replicator::ports::Tag<'_>,
        guard: stream_replicator::ports::Guard<'_>,
    ) -> Result<stream_replicator::ports::Conditional, AwsFailure> {
        self.target.tag_for_delete(key, tag, guard).await
    }
    async fn delete_if_tagged(
        &self,
        key: &Attributes,
        tag: stream_replicator::ports::Tag<'_>,
        guard: stream_replicator::ports::Guard<'_>,
    ) -> Result<stream_replicator::ports::Conditional, AwsFailure> {
        self.target.delete_if_tagged(key, tag, guard).await
    }
    async fn untag(
        &self,
        key: &Attributes,
        tag: stream_replicator::ports::Tag<'_>,
    ) -> Result<stream_replicator::ports::Conditional, AwsFailure> {
        self.target.untag(key, tag).await
    }
}

#[tokio::test]
async fn a_redrive_racing_a_live_write_ends_with_the_newer_state() {
    let source = std::sync::Arc::new(MemoryTable::new(schema()));
    let target = RacingTarget {
        target: MemoryTable::new(schema()),
        source: source.clone(),
        newer: std::sync::Mutex::new(None),
    };
    let base = [
        ("TARGET_TABLE_NAME", "shop-data"),
        ("TARGET_REGION", "us-west-2"),
        ("AWS_REGION", "us-east-1"),
        ("DEAD_LETTER_BUCKET", "shop-dead-letter"),
        ("WRITE_CONCURRENCY", "1"),
    ];
    let config = ReplicatorConfig::from_env(&EnvReader::from_pairs(base)).unwrap();
    let r = Replicator::new(config, schema(), target, source.clone(), MemoryBucket::new()).unwrap();
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1));
    source.insert(attrs(&qty("A", 1)));
    r.writer().target.inject([Fault::rejected()]);
    assert_eq!(
        run_any_report(&r, &stream).await.tally.dead_lettered,
        1,
        "dead-lettered"
    );
    *r.writer().newer.lock().unwrap() = Some(attrs(&qty("A", 2)));
    let report = r.redrive(&Default::default(), deadline()).await.unwrap();
    assert_eq!((report.written, report.left), (1, 0), "{report:?}");
    let now = r.writer().target.get(&attrs(&qty("A", 1))).unwrap();
    assert_eq!(
        now["qty"],
        Value::N("2".into()),
        "the newer state, not the dead-lettered one"
    );
}

const ACTIVE_REGION: &str = "/shop/failover/active-region";

/// A replicator that reads the published active region from `active`.
fn after_failover(
    extra: &[(&str, &str)],
    active: &str,
) -> Replicator<MemoryTable, MemoryTable, MemoryBucket, failover_core::parameters::MemoryParameters> {
    let with_prefix: Vec<(&str, &str)> = extra
        .iter()
        .copied()
        .chain([("PARAMETER_PREFIX", "/shop/failover")])
        .collect();
    replicator(&with_prefix).with_active_region(failover_core::parameters::MemoryParameters::with_values([(
        ACTIVE_REGION,
        active,
    )]))
}

fn conflicts(bucket: &MemoryBucket) -> Vec<Json> {
    bucket
        .objects()
        .into_iter()
        .filter(|(k, _)| k.starts_with("conflicts/"))
        .map(|(_, v)| serde_json::from_slice(&v).unwrap())
        .collect()
}

/// After a failover (the target's region is active) the records still in the source's
/// stream are stranded: the newer side wins by version, the loser is logged, and the
/// authoritative target never takes an older write.
#[tokio::test]
async fn stranded_records_are_reconciled_by_version_and_losers_logged() {
    let r = after_failover(LWW_ENV, "us-west-2");
    for (pk, v) in [("A", 5), ("B", 1), ("D", 1), ("E", 1)] {
        r.writer().insert(attrs(&versioned(pk, v)));
    }
    let mut stream = StreamBuilder::new();
    stream
        .insert(versioned("A", 2)) // older than the target's v5: conflict
        .insert(versioned("B", 3)) // newer: applied
        .insert(versioned("C", 2)) // the target has none: applied
        .remove(versioned("D", 1)) // deleted at the source, unchanged in the target: applied
        .insert(versioned("E", 1)); // already there
    let handled = run_any_report(&r, &stream).await;
    let get = |pk: &str| r.writer().get(&attrs(&versioned(pk, 0)));
    assert_eq!(get("A").unwrap()["v"], Value::N("5".into()), "never an older write");
    assert_eq!(get("B").unwrap()["v"], Value::N("3".into()));
    assert_eq!(get("C").unwrap()["v"], Value::N("2".into()));
    assert!(get("D").is_none());
    let logged = conflicts(r.dead_letter_store());
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["stranded"]["newImage"]["v"]["N"], "2");
    assert_eq!(logged[0]["target"]["v"]["N"], "5");
    assert_eq!(logged[0]["reason"], "the target's version is newer or equal");
    let doc = handled.metric_line("N", "us-west-2").render(0);
    assert_eq!(doc["RecordsStranded"], 5.0);
    assert_eq!(doc["RecordsSkippedConflict"], 1.0);
    assert_eq!(doc["RecordsSkippedAlreadyInTarget"], 1.0);
    assert_eq!(doc["RecordsWritten"], 3.0);
}

#[tokio::test]
async fn without_versions_the_target_wins_every_stranded_difference() {
    let r = after_failover(&[], "us-west-2");
    r.writer().insert(attrs(&qty("A", 9)));
    r.writer().insert(attrs(&qty("SAME", 1)));
    let mut stream = StreamBuilder::new();
    stream.insert(qty("A", 1)).insert(qty("NEW", 1)).insert(qty("SAME", 1));
    let handled = run_any_report(&r, &stream).await;
    assert_eq!(
        r.writer().calls.writes(),
        0,
        "nothing written over the authoritative side"
    );
    assert_eq!(
        r.writer().get(&attrs(&qty("A", 0))).unwrap()["qty"],
        Value::N("9".into())
    );
    assert!(r.writer().get(&attrs(&qty("NEW", 0))).is_none());
    let logged = conflicts(r.dead_letter_store());
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(logged
        .iter()
        .any(|c| c["target"].is_null() && c["stranded"]["keys"]["pk"]["S"] == "NEW"));
    assert_eq!(handled.tally.skipped.values().sum::<usize>(), 3);

    // With the source active again, the same records replicate.
    let r = after_failover(&[], "us-east-1");
    let handled = run_any_report(&r, &stream).await;
    assert_eq!((handled.stranded, handled.tally.written), (0, 3));
    // A redrive is refused while the target is the authority.
    let r = after_failover(&[], "us-west-2");
    let raw = serde_json::value::RawValue::from_string(r#"{"redrive": {}}"#.into()).unwrap();
    let event = lambda_runtime::LambdaEvent::new(raw, lambda_runtime::Context::default());
    let err = r.handle_lambda_event(event).await.unwrap_err();
    assert!(err.to_string().contains("redrive refused"), "{err}");
    // A published region that is neither side refuses the batch before anything is written.
    let r = after_failover(&[], "eu-west-1");
    let err = r.replicate(stream.event(), deadline()).await.result.unwrap_err();
    assert!(err.to_string().contains("neither the source"), "{err}");
    assert!(r.writer().is_empty());
}

const LWW_ENV: &[(&str, &str)] = &[("REPLICATION_MODE", "last-writer-wins"), ("VERSION_ATTRIBUTE", "v")];

/// Replicates `stream` with any replicator (nothing left for Lambda); the batch's report.
async fn run_any_report<W, R, P>(
    r: &Replicator<W, R, MemoryBucket, P>,
    stream: &StreamBuilder,
) -> stream_replicator::BatchReport
where
    W: stream_replicator::ports::ItemWriter + stream_replicator::ports::ItemReader,
    R: stream_replicator::ports::ItemReader,
    P: failover_core::parameters::ParameterHistoryReader,
{
    let handled = r.replicate(stream.event(), deadline()).await;
    assert!(
        handled.result.as_ref().unwrap().batch_item_failures.is_empty(),
        "{:?}",
        handled.result
    );
    handled.report
}

/// The sample in `events/` (what `cargo lambda invoke --data-file` sends) is a redrive.
#[tokio::test]
async fn the_sample_redrive_event_redrives() {
    let r = replicator(&[]);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/stream-replicator-redrive.json"
    );
    let raw = serde_json::value::RawValue::from_string(std::fs::read_to_string(path).unwrap()).unwrap();
    let event = lambda_runtime::LambdaEvent::new(raw, lambda_runtime::Context::default());
    let answer = serde_json::to_value(r.handle_lambda_event(event).await.unwrap()).unwrap();
    assert_eq!(
        (answer["objects"].as_u64(), answer["more"].as_bool()),
        (Some(0), Some(false)),
        "{answer}"
    );
}
