//! The reverse direction at failback: the copy's stream sent back to the primary table. Only
//! changes made while the copy's region was active are the shop's (`SOURCE_AUTHORITY=
//! while-active`); older ones are the forward direction's copies, which must never overwrite
//! writes stranded in the primary. The drain check tells when every outage write is back.

mod common;

use std::time::Duration;

use common::events::{item, n, s, stream_arn, StreamBuilder};
use failover_core::parameters::MemoryParameters;
use failover_core::retry::Deadline;
use failover_core::{EnvReader, FailoverError};
use serde_json::Value as Json;
use stream_replicator::adapters::memory::MemoryTable;
use stream_replicator::adapters::memory_bucket::MemoryBucket;
use stream_replicator::adapters::memory_stream::MemoryStream;
use stream_replicator::{entry, Attributes, DrainOptions, KeySchema, Replicator, ReplicatorConfig, Value};

type Reverse = Replicator<MemoryTable, MemoryTable, MemoryBucket, MemoryParameters>;

const ACTIVE_REGION: &str = "/shop/failover/active-region";
/// The failover published the copy's region (the source here) at this moment.
const FAILOVER_MS: i64 = 1_763_694_100_500;
const BEFORE_FAILOVER: i64 = 1_763_694_000;
const DURING_OUTAGE: i64 = 1_763_694_200;

fn schema() -> KeySchema {
    KeySchema::parse("pk,sk").unwrap()
}

fn attrs(image: &Json) -> Attributes {
    serde_json::from_value::<serde_dynamo::Item>(image.clone())
        .unwrap()
        .into_inner()
        .into_iter()
        .collect()
}

/// A reverse replicator (source us-east-1, the copy; target us-west-2, the primary) after
/// a failover that made the source's region active.
fn reverse(authority: &str) -> Reverse {
    let env = [
        ("TARGET_TABLE_NAME", "shop-data"),
        ("TARGET_REGION", "us-west-2"),
        ("AWS_REGION", "us-east-1"),
        ("DEAD_LETTER_BUCKET", "shop-dead-letter"),
        ("PARAMETER_PREFIX", "/shop/failover"),
        ("SOURCE_AUTHORITY", authority),
    ];
    let config = ReplicatorConfig::from_env(&EnvReader::from_pairs(env)).unwrap();
    let parameters = MemoryParameters::default();
    parameters.set_at(ACTIVE_REGION, "us-west-2", FAILOVER_MS - 86_400_000);
    parameters.set_at(ACTIVE_REGION, "us-east-1", FAILOVER_MS);
    // A retried publish re-puts the same value later: the switch stays where it was.
    parameters.set_at(ACTIVE_REGION, "us-east-1", FAILOVER_MS + 60_000);
    Replicator::new(
        config,
        schema(),
        MemoryTable::new(schema()),
        MemoryTable::new(schema()),
        MemoryBucket::new(),
    )
    .unwrap()
    .with_active_region(parameters)
}

/// The copy's stream: the forward direction's copy of order A (older than the write to A
/// stranded in the primary), then an order B and an update of C placed during the outage.
fn copy_stream() -> StreamBuilder {
    let mut stream = StreamBuilder::new();
    stream
        .at(BEFORE_FAILOVER)
        .insert(item("A", "order", &[("status", s("pending"))]))
        .insert(item("C", "order", &[("status", s("pending"))]))
        .at(DURING_OUTAGE)
        .insert(item("B", "order", &[("status", s("paid")), ("total", n(42))]))
        .modify(
            item("C", "order", &[("status", s("pending"))]),
            item("C", "order", &[("status", s("shipped"))]),
        );
    stream
}

/// The primary table as the outage left it: A paid (stranded: never reached the copy), C pending.
fn stranded_primary(r: &Reverse) {
    r.writer().insert(attrs(&item("A", "order", &[("status", s("paid"))])));
    r.writer()
        .insert(attrs(&item("C", "order", &[("status", s("pending"))])));
}

fn status(r: &Reverse, pk: &str) -> Option<Value> {
    r.writer()
        .get(&attrs(&item(pk, "order", &[])))
        .map(|i| i["status"].clone())
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

async fn drain_check(r: &Reverse, stream: &StreamBuilder) -> stream_replicator::DrainReport {
    let source = MemoryStream::new(&stream_arn(), stream.json(), stream.records().len());
    r.drain_check(&source, &DrainOptions::default(), deadline())
        .await
        .unwrap()
}

#[tokio::test]
async fn copies_from_before_the_failover_never_overwrite_a_stranded_write() {
    let r = reverse("while-active");
    stranded_primary(&r);
    let handled = r.replicate(copy_stream().event(), deadline()).await;
    assert!(handled.result.unwrap().batch_item_failures.is_empty());
    assert_eq!(
        status(&r, "A"),
        Some(Value::S("paid".into())),
        "the stranded write stays"
    );
    assert_eq!(
        status(&r, "B"),
        Some(Value::S("paid".into())),
        "the outage order is back"
    );
    assert_eq!(
        status(&r, "C"),
        Some(Value::S("shipped".into())),
        "the outage update is back"
    );
    let doc = handled.report.metric_line("N", "us-west-2").render(0);
    assert_eq!(doc["RecordsSkippedCopyFromBeforeActive"], 1.0, "{doc}");
}

/// The defect the setting guards against: every change counted, the copy of A is sent back
/// over the stranded write.
#[tokio::test]
async fn without_the_cutoff_the_copy_overwrites_the_stranded_write() {
    let r = reverse("always");
    stranded_primary(&r);
    let handled = r.replicate(copy_stream().event(), deadline()).await;
    assert!(handled.result.unwrap().batch_item_failures.is_empty());
    assert_eq!(
        status(&r, "A"),
        Some(Value::S("pending".into())),
        "the stranded write is lost"
    );
}

#[tokio::test]
async fn the_drain_check_sees_every_outage_write_back_in_the_primary() {
    let r = reverse("while-active");
    stranded_primary(&r);
    let stream = copy_stream();
    let before = drain_check(&r, &stream).await;
    assert!(!before.drained, "{before:?}");
    assert_eq!((before.records_read, before.keys), (4, 3));
    assert_eq!(before.keys_pending, 2, "B missing, C older: {before:?}");
    assert_eq!(before.keys_nothing_to_write, 1, "A is a copy from before the failover");
    let pending: Vec<&Json> = before.pending_keys.iter().map(|k| &k["pk"]["S"]).collect();
    assert_eq!(pending, ["C", "B"], "in the order of their first record");
    assert!(before.oldest_pending_age_seconds.unwrap() > 0.0);
    assert_eq!(before.direction, "replicate");

    r.replicate(stream.event(), deadline()).await.result.unwrap();
    let after = drain_check(&r, &stream).await;
    assert!(after.drained, "{after:?}");
    assert_eq!((after.keys_in_target, after.keys_pending), (2, 0));

    // One outage write lost on the way (deleted from the primary): no longer drained.
    r.writer().remove(&attrs(&item("B", "order", &[])));
    let lost = drain_check(&r, &stream).await;
    assert!(!lost.drained);
    assert_eq!(lost.keys_pending, 1);
}

#[tokio::test]
async fn a_stream_larger_than_the_limit_is_never_called_drained() {
    let r = reverse("while-active");
    let stream = copy_stream();
    r.replicate(stream.event(), deadline()).await.result.unwrap();
    let source = MemoryStream::new(&stream_arn(), stream.json(), stream.records().len());
    let options = DrainOptions { max_records: Some(2) };
    let report = r.drain_check(&source, &options, deadline()).await.unwrap();
    assert!(report.truncated && !report.drained, "{report:?}");
    let refused = r
        .drain_check(&source, &DrainOptions { max_records: Some(0) }, deadline())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("drainCheck.maxRecords 0"), "{refused}");
}

#[tokio::test]
async fn a_malformed_drain_check_event_is_refused_naming_it() {
    let r = reverse("while-active");
    let source = MemoryStream::default();
    let raw = serde_json::value::RawValue::from_string(r#"{"drainCheck": {"maxRecord": 5}}"#.into()).unwrap();
    let event = lambda_runtime::LambdaEvent::new(raw, lambda_runtime::Context::default());
    match entry::handle(&r, &source, event).await {
        Err(FailoverError::InvalidEvent(message)) => {
            assert!(
                message.contains("drainCheck") && message.contains("maxRecord"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}
