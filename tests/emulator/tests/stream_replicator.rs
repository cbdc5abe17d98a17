//! stream-replicator against the emulator: random workloads on the primary table, its real
//! stream wrapped into Lambda events and handed to the handler as Lambda would (replaying
//! from the reported sequence number), then the secondary must equal the primary. With a
//! fault-injecting proxy between the SDK and the emulator, whatever spent its retry budget
//! is in the dead-letter bucket, and a redrive makes the secondary equal the primary.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use aws_sdk_dynamodb::Client;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::parameters::ParameterHistoryReader;
use failover_core::retry::{Backoff, Deadline};
use failover_core::{EnvReader, ErrorClass, FailoverError, Region};
use failover_testkit::fixtures::{dynamodb, s3, stream_event};
use failover_testkit::{unique_name, Emulator, FaultPlan, FaultProxy, PRIMARY, SECONDARY};
use stream_replicator::adapters::dynamodb::DynamoDbTable;
use stream_replicator::adapters::s3::S3Bucket;
use stream_replicator::{wiring, KeySchema, Replicator, ReplicatorConfig};

const MARKER: &str = "replica_origin";

type Table = BTreeMap<String, HashMap<String, AttributeValue>>;

/// The dead-letter bucket all tests share (each table has its own folder in it).
const DEAD_LETTER_BUCKET: &str = "stream-replicator-tests-dead-letter";

/// Creates the shared bucket once per test process.
async fn dead_letter_bucket(emu: &Emulator) -> &'static str {
    static CREATED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CREATED
        .get_or_init(|| async { s3::create_bucket(&emu.clients(PRIMARY).await, DEAD_LETTER_BUCKET).await })
        .await;
    DEAD_LETTER_BUCKET
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_of(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s("META"))])
}

/// A random mix of puts, updates and deletes over `keys` keys. Keys are split into lanes run
/// concurrently; each key's operations stay in order within its lane. With `versioned`,
/// every write carries `v`, increasing per key across deletes and re-creations.
async fn random_workload(client: &Client, table: &str, operations: usize, keys: usize, seed: u64, versioned: bool) {
    const LANES: usize = 8;
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..LANES {
        let (client, table) = (client.clone(), table.to_owned());
        lanes.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed * 1_000 + lane as u64);
            let mut versions: HashMap<usize, u64> = HashMap::new();
            let lane_keys: Vec<usize> = (0..keys).filter(|k| k % LANES == lane).collect();
            for _ in 0..operations / LANES {
                let k = lane_keys[rng.usize(0..lane_keys.len())];
                let pk = format!("ORDER#{k:05}");
                let version = versions.entry(k).or_insert(0);
                *version += 1;
                let roll = rng.u8(0..100);
                let result = if roll < 45 {
                    let mut item = key_of(&pk);
                    item.insert("status".into(), s(["pending", "paid", "shipped"][rng.usize(0..3)]));
                    item.insert("total".into(), n(format!("{}.{:02}", rng.u32(1..500), rng.u32(0..100))));
                    item.insert("paid".into(), AttributeValue::Bool(rng.bool()));
                    item.insert(
                        "lines".into(),
                        AttributeValue::L(
                            (0..rng.usize(0..4))
                                .map(|i| {
                                    AttributeValue::M(HashMap::from([
                                        ("sku".to_string(), s(format!("24-MB{i:02}"))),
                                        ("qty".to_string(), n(rng.u32(1..5))),
                                    ]))
                                })
                                .collect(),
                        ),
                    );
                    if rng.bool() {
                        item.insert(
                            "tags".into(),
                            AttributeValue::Ss(vec!["web".into(), format!("t{}", rng.u8(0..9))]),
                        );
                    }
                    if versioned {
                        item.insert("v".into(), n(*version));
                    }
                    client
                        .put_item()
                        .table_name(&table)
                        .set_item(Some(item))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}"))
                } else if roll < 80 {
                    let mut update = client
                        .update_item()
                        .table_name(&table)
                        .set_key(Some(key_of(&pk)))
                        .update_expression(if versioned {
                            "SET #st = :st, note = :note, v = :v"
                        } else {
                            "SET #st = :st, note = :note"
                        })
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_values(":st", s("updated"))
                        .expression_attribute_values(":note", s(format!("note {}", rng.u32(..))));
                    if versioned {
                        // moto records an UpdateItem that creates an item as an INSERT of the
                        // bare key followed by a MODIFY (DynamoDB records one INSERT). The bare
                        // key has no version, which last-writer-wins rightly refuses, so the
                        // versioned workload only updates existing items.
                        update = update
                            .expression_attribute_values(":v", n(*version))
                            .condition_expression("attribute_exists(pk)");
                    }
                    match update.send().await {
                        Ok(_) => Ok(()),
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                        {
                            Ok(())
                        }
                        Err(e) => Err(format!("{e:?}")),
                    }
                } else {
                    client
                        .delete_item()
                        .table_name(&table)
                        .set_key(Some(key_of(&pk)))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}"))
                };
                result.unwrap_or_else(|e| panic!("workload operation on {pk}: {e}"));
            }
        });
    }
    while let Some(done) = lanes.join_next().await {
        done.expect("workload lane");
    }
}

/// Every item of `table`, by key, without the origin marker.
async fn contents(client: &Client, table: &str) -> Table {
    let mut pages = client.scan().table_name(table).into_paginator().send();
    let mut all = Table::new();
    while let Some(page) = pages.next().await {
        for item in page.expect("scan").items.unwrap_or_default() {
            let mut item = item;
            item.remove(MARKER);
            let key = match (&item["pk"], &item["sk"]) {
                (AttributeValue::S(pk), AttributeValue::S(sk)) => format!("{pk}/{sk}"),
                other => panic!("unexpected key {other:?}"),
            };
            all.insert(key, item);
        }
    }
    all
}

fn assert_same(primary: &Table, secondary: &Table) {
    let missing: Vec<&String> = primary.keys().filter(|k| !secondary.contains_key(*k)).collect();
    let resurrected: Vec<&String> = secondary.keys().filter(|k| !primary.contains_key(*k)).collect();
    let different: Vec<&String> = primary
        .iter()
        .filter(|(k, v)| secondary.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && resurrected.is_empty() && different.is_empty(),
        "secondary differs from primary: missing {missing:?}, resurrected {resurrected:?}, different {different:?}"
    );
}

fn env(table: &str, extra: &[(&str, &str)]) -> EnvReader {
    let base = [
        ("TARGET_TABLE_NAME", table),
        ("TARGET_REGION", SECONDARY),
        ("SOURCE_REGION", PRIMARY),
        ("DEAD_LETTER_BUCKET", DEAD_LETTER_BUCKET),
    ];
    EnvReader::from_pairs(base.iter().chain(extra).copied())
}

const LWW: &[(&str, &str)] = &[("REPLICATION_MODE", "last-writer-wins"), ("VERSION_ATTRIBUTE", "v")];

/// A DynamoDB client for `region` whose requests go through `endpoint` (the fault proxy),
/// without the SDK's own retries: every injected fault reaches the replicator, so its
/// retries, its give-up and Lambda's replay from the reported record are all exercised.
async fn client_via(endpoint: &str, region: &str) -> Client {
    let config = sdk_config(&Region::new(region).unwrap(), ClientTimeouts::default()).await;
    Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// Few, short retries (`attempts` per write request), so that at a 20% fault rate some
/// writes exhaust them and batches give up.
fn quick_backoff(attempts: u32) -> Backoff {
    Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(50),
        max_attempts: attempts,
    }
}

/// What driving a stream through the handler took.
#[derive(Debug, Default)]
struct Drive {
    invocations: usize,
    partial_failures: usize,
    whole_batch_errors: usize,
    write_requests: usize,
    dead_lettered: usize,
}

/// Hands `records` to the handler in batches of `batch_size`, exactly as Lambda's stream
/// mapping does: after a partial failure the next batch starts at the reported record, after
/// a retryable error the same batch is retried, and nothing is ever skipped.
async fn drive<P: ParameterHistoryReader>(
    r: &Replicator<DynamoDbTable, DynamoDbTable, S3Bucket, P>,
    records: &[EventRecord],
    batch_size: usize,
) -> Drive {
    let mut stats = Drive::default();
    let mut position = 0;
    let limit = 20 * records.len().div_ceil(batch_size) + 20;
    while position < records.len() {
        assert!(
            stats.invocations < limit,
            "no progress after {} invocations at record {position}",
            stats.invocations
        );
        stats.invocations += 1;
        let batch = &records[position..(position + batch_size).min(records.len())];
        let mut event = Event::default();
        event.records = batch.to_vec();
        let handled = r.replicate(event, Deadline::after(Duration::from_secs(20))).await;
        stats.write_requests += handled.report.write_requests;
        stats.dead_lettered += handled.report.tally.dead_lettered;
        match handled.result {
            Ok(response) => match response.batch_item_failures.first() {
                None => position += batch.len(),
                Some(failure) => {
                    stats.partial_failures += 1;
                    let at = batch
                        .iter()
                        .position(|rec| rec.change.sequence_number == failure.item_identifier)
                        .unwrap_or_else(|| panic!("reported {failure:?} is not in the batch"));
                    position += at;
                }
            },
            Err(e) if e.class() == ErrorClass::Retryable => stats.whole_batch_errors += 1,
            Err(e) => panic!("non-retryable failure: {e}"),
        }
    }
    stats
}

async fn stream_records(emu: &Emulator, stream_arn: &str) -> Vec<EventRecord> {
    stream_event::read_stream_as_lambda_event(&emu.streams(PRIMARY).await, stream_arn)
        .await
        .event
        .records
}

#[tokio::test]
async fn overwrite_mode_makes_the_secondary_equal_the_primary() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-ow");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;
    random_workload(&a.dynamodb, &name, 320, 60, 1, false).await;
    let records = stream_records(emu, &pair.stream_arn).await;
    assert!(records.len() >= 200, "only {} stream records", records.len());

    // The production init path: configuration, clients from the environment, DescribeTable.
    let r = wiring::build(&env(&name, &[])).await.expect("init");
    assert_eq!(r.schema(), &KeySchema::parse("pk,sk").unwrap());
    let stats = drive(&r, &records, 100).await;
    assert_eq!((stats.partial_failures, stats.whole_batch_errors), (0, 0), "{stats:?}");
    assert_same(&contents(&a.dynamodb, &name).await, &contents(&b.dynamodb, &name).await);
    // Coalescing and batching: far fewer requests than records.
    assert!(
        stats.write_requests * 4 < records.len(),
        "{stats:?} for {} records",
        records.len()
    );
}

/// The drain check against the emulator's stream (DescribeTable, DescribeStream,
/// GetShardIterator, GetRecords): every key pending until replicated, drained after, and a
/// key lost in the target is pending again.
#[tokio::test]
async fn the_drain_check_reads_the_real_stream_and_compares_with_the_target() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-drain");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;
    random_workload(&a.dynamodb, &name, 120, 40, 7, false).await;
    let (r, stream) = wiring::build_with_stream(&env(&name, &[])).await.expect("init");
    let options = stream_replicator::DrainOptions::default();
    let before = r
        .drain_check(&stream, &options, Deadline::after(Duration::from_secs(30)))
        .await
        .unwrap();
    let live_keys = contents(&a.dynamodb, &name).await.len();
    assert!(!before.drained, "{before:?}");
    assert_eq!(before.stream_arn, pair.stream_arn);
    assert!(before.records_read >= 100 && before.keys <= 40, "{before:?}");
    assert_eq!(
        before.keys_pending, live_keys,
        "every live key missing in the target: {before:?}"
    );

    let records = stream_records(emu, &pair.stream_arn).await;
    drive(&r, &records, 100).await;
    let after = r
        .drain_check(&stream, &options, Deadline::after(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(after.drained, "{after:?}");
    assert_eq!((after.keys_in_target, after.keys_pending), (before.keys, 0));
    println!(
        "drain check: {} records, {} keys, {} shard(s) read from the emulator's stream",
        after.records_read, after.keys, after.shards
    );

    // One replicated item lost in the target: pending again.
    let lost = contents(&b.dynamodb, &name)
        .await
        .into_values()
        .next()
        .expect("an item");
    b.dynamodb
        .delete_item()
        .table_name(&name)
        .key("pk", lost["pk"].clone())
        .key("sk", lost["sk"].clone())
        .send()
        .await
        .unwrap();
    let missing = r
        .drain_check(&stream, &options, Deadline::after(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!((missing.drained, missing.keys_pending), (false, 1), "{missing:?}");
}

#[tokio::test]
async fn last_writer_wins_mode_makes_the_secondary_equal_the_primary() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-lww");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;
    random_workload(&a.dynamodb, &name, 320, 60, 2, true).await;
    let records = stream_records(emu, &pair.stream_arn).await;
    assert!(records.len() >= 200, "only {} stream records", records.len());
    let r = wiring::build(&env(&name, LWW)).await.expect("init");
    let stats = drive(&r, &records, 100).await;
    assert_eq!((stats.partial_failures, stats.whole_batch_errors), (0, 0), "{stats:?}");
    let primary = contents(&a.dynamodb, &name).await;
    assert_same(&primary, &contents(&b.dynamodb, &name).await);

    // Replaying the whole stream again changes nothing: every write is now stale.
    let again = drive(&r, &records, 100).await;
    assert_eq!(again.partial_failures, 0);
    assert_same(&primary, &contents(&b.dynamodb, &name).await);
}

#[tokio::test]
async fn new_image_and_keys_only_streams_are_replicated() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    for view in [StreamViewType::NewImage, StreamViewType::KeysOnly] {
        let name = unique_name("replica-view");
        let pair = dynamodb::create_table_pair(&a, &b, &name, view.clone()).await;
        random_workload(&a.dynamodb, &name, 120, 25, 3, false).await;
        let records = stream_records(emu, &pair.stream_arn).await;
        assert!(records
            .iter()
            .all(|rec| rec.change.stream_view_type.as_ref().map(|v| v.to_string()) == Some(view.as_str().to_owned())));
        let r = wiring::build(&env(&name, &[])).await.expect("init");
        let stats = drive(&r, &records, 50).await;
        assert_eq!(stats.partial_failures, 0, "{view:?}: {stats:?}");
        assert_same(&contents(&a.dynamodb, &name).await, &contents(&b.dynamodb, &name).await);
    }
}

#[tokio::test]
async fn two_way_replication_does_not_echo_changes_back() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-2way");
    // Both tables have a stream: the secondary's would feed the reverse replicator.
    let a_table = dynamodb::create_table(&a, &name, Some(StreamViewType::NewAndOldImages)).await;
    let b_table = dynamodb::create_table(&b, &name, Some(StreamViewType::NewAndOldImages)).await;
    let (a_stream, b_stream) = (
        a_table.and_then(|t| t.latest_stream_arn).expect("stream in A"),
        b_table.and_then(|t| t.latest_stream_arn).expect("stream in B"),
    );
    random_workload(&a.dynamodb, &name, 200, 30, 4, true).await;
    let forward = wiring::build(&env(&name, LWW)).await.expect("init");
    drive(&forward, &stream_records(emu, &a_stream).await, 100).await;
    assert_same(&contents(&a.dynamodb, &name).await, &contents(&b.dynamodb, &name).await);

    // Everything in B's stream was written by the replicator, deletes included.
    let echoes = stream_event::read_stream_as_lambda_event(&emu.streams(SECONDARY).await, &b_stream)
        .await
        .event
        .records;
    assert!(echoes.iter().any(|r| r.event_name == "REMOVE"), "the workload deletes");
    let backward = wiring::build(&EnvReader::from_pairs([
        ("TARGET_TABLE_NAME", name.as_str()),
        ("TARGET_REGION", PRIMARY),
        ("SOURCE_REGION", SECONDARY),
        ("REPLICATION_MODE", "last-writer-wins"),
        ("VERSION_ATTRIBUTE", "v"),
        ("DEAD_LETTER_BUCKET", DEAD_LETTER_BUCKET),
    ]))
    .await
    .expect("init");
    let mut event = Event::default();
    event.records = echoes.clone();
    let handled = backward
        .replicate(event, Deadline::after(Duration::from_secs(20)))
        .await;
    assert!(handled.result.expect("handled").batch_item_failures.is_empty());
    assert_eq!(
        handled.report.write_requests, 0,
        "nothing is sent back: {:?}",
        handled.report
    );
    assert_eq!(
        handled.report.tally.skipped.values().sum::<usize>(),
        echoes.len(),
        "{:?}",
        handled.report.tally
    );

    // An application write in B is a real change and goes back to A.
    let mut edited = key_of("ORDER#EDITED-IN-B");
    edited.insert("v".into(), n(1_000));
    edited.insert("note".into(), s("written in B"));
    b.dynamodb
        .put_item()
        .table_name(&name)
        .set_item(Some(edited))
        .send()
        .await
        .unwrap();
    let all = stream_event::read_stream_as_lambda_event(&emu.streams(SECONDARY).await, &b_stream)
        .await
        .event
        .records;
    let mut event = Event::default();
    event.records = all[echoes.len()..].to_vec();
    let handled = backward
        .replicate(event, Deadline::after(Duration::from_secs(20)))
        .await;
    assert!(handled.result.expect("handled").batch_item_failures.is_empty());
    assert_eq!((handled.report.tally.written, handled.report.write_requests), (1, 1));
    assert_same(&contents(&b.dynamodb, &name).await, &contents(&a.dynamodb, &name).await);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-bad");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;
    random_workload(&a.dynamodb, &name, 40, 10, 5, false).await;
    let mut records = stream_records(emu, &pair.stream_arn).await;
    let r = wiring::build(&env(&name, &[])).await.expect("init");

    // The last record comes from another table: the whole batch is refused.
    let mut foreign = records[0].clone();
    foreign.event_source_arn = Some(pair.stream_arn.replace(&format!("table/{name}/"), "table/sessions/"));
    records.push(foreign);
    let mut event = Event::default();
    event.records = records.clone();
    let err = r
        .replicate(event, Deadline::after(Duration::from_secs(20)))
        .await
        .result
        .unwrap_err();
    assert!(matches!(err, FailoverError::InvalidEvent(_)), "{err}");
    assert!(err.to_string().contains("table sessions"), "{err}");

    // A record without keys.
    let mut keyless = records[1].clone();
    keyless.change.keys = serde_dynamo::Item::from(HashMap::<String, serde_dynamo::AttributeValue>::new());
    let mut event = Event::default();
    event.records = vec![records[0].clone(), keyless];
    let err = r
        .replicate(event, Deadline::after(Duration::from_secs(20)))
        .await
        .result
        .unwrap_err();
    assert!(err.to_string().contains("no Keys"), "{err}");

    // A malformed payload.
    let raw = serde_json::value::RawValue::from_string(r#"{"Records": {"not": "a list"}}"#.into()).unwrap();
    let err = r
        .handle_payload(raw, Deadline::after(Duration::from_secs(20)))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(err.to_string().contains("malformed"), "{err}");

    assert!(
        contents(&b.dynamodb, &name).await.is_empty(),
        "nothing written half-way"
    );
}

/// ≥ 5,000 random operations, 20% of the replicator's requests failing (throttling, 500s,
/// dropped connections, half of them after the write took effect), with a retry budget so
/// small that some writes spend it: replaying as Lambda does, every key is either equal in
/// the secondary or its latest change is in the dead-letter bucket (nothing else is there);
/// a redrive, under the same faults, then makes the secondary exactly equal the primary.
async fn converges_under_faults(extra: &[(&str, &str)], versioned: bool, seed: u64, attempts: u32) {
    let started = Instant::now();
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-faults");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;
    random_workload(&a.dynamodb, &name, 5_000, 800, seed, versioned).await;
    let records = stream_records(emu, &pair.stream_arn).await;
    // 5,000 operations; deletes of absent items and (versioned) updates of absent items
    // leave no stream record, so somewhat fewer records than operations.
    assert!(records.len() >= 3_500, "only {} stream records", records.len());
    let workload_done = started.elapsed();

    let proxy = FaultProxy::start(&emu.endpoint(), FaultPlan::even(0.2), seed).expect("proxy");
    let config = ReplicatorConfig::from_env(&env(&name, extra)).expect("config");
    let schema = KeySchema::parse("pk,sk").unwrap();
    let writer = DynamoDbTable::new(client_via(&proxy.endpoint(), SECONDARY).await, &name, schema.clone());
    let reader = DynamoDbTable::new(client_via(&proxy.endpoint(), PRIMARY).await, &name, schema.clone());
    let bucket = S3Bucket::new(a.s3.clone(), DEAD_LETTER_BUCKET);
    let r = Replicator::new(config, schema, writer, reader, bucket)
        .unwrap()
        .with_backoff(quick_backoff(attempts));
    let stats = drive(&r, &records, 500).await;
    let replicated = started.elapsed() - workload_done;

    // Each key: equal, or its latest change is in the bucket; and the bucket holds nothing else.
    let primary = contents(&a.dynamodb, &name).await;
    let secondary = contents(&b.dynamodb, &name).await;
    let folder = format!("dead-letter/{name}/");
    let letters = s3::json_objects(&a, DEAD_LETTER_BUCKET, &folder).await;
    let mut latest_letter: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for (_, envelope) in &letters {
        let key = format!(
            "{}/{}",
            envelope["keys"]["pk"]["S"].as_str().unwrap(),
            envelope["keys"]["sk"]["S"].as_str().unwrap()
        );
        latest_letter.insert(key, envelope); // objects list in stream order: the last wins
    }
    let covered: usize = letters
        .iter()
        .map(|(_, e)| e["recordsCovered"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(
        covered, stats.dead_lettered,
        "the bucket holds exactly what the reports counted"
    );
    let keys: std::collections::BTreeSet<&String> = primary.keys().chain(secondary.keys()).collect();
    let mut unequal = 0;
    for key in keys {
        if primary.get(key) == secondary.get(key) {
            continue;
        }
        unequal += 1;
        let letter = latest_letter
            .get(key)
            .unwrap_or_else(|| panic!("{key} differs and is not in the dead-letter bucket"));
        let expected = if primary.contains_key(key) { "put" } else { "delete" };
        assert_eq!(letter["operation"], expected, "{key}: its latest change, {letter}");
    }
    assert!(
        stats.dead_lettered > 0 && !letters.is_empty(),
        "no write spent its retry budget, so dead-lettering went untested: {stats:?}"
    );

    // Redrive (through the same faults) until the bucket is empty.
    let mut redrives = Vec::new();
    for _ in 0..10 {
        let report = r
            .redrive(&Default::default(), Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap();
        let done = report.objects == 0;
        redrives.push(report);
        if done {
            break;
        }
    }
    let proxied = proxy.stats();
    drop(proxy);
    assert!(
        s3::json_objects(&a, DEAD_LETTER_BUCKET, &folder).await.is_empty(),
        "dead letters left after {} redrives: {redrives:?}",
        redrives.len()
    );
    assert_same(&contents(&a.dynamodb, &name).await, &contents(&b.dynamodb, &name).await);
    let rate = proxied.faults() as f64 / proxied.requests as f64;
    assert!((0.12..0.28).contains(&rate), "fault rate {rate:.3}: {proxied:?}");
    assert!(proxied.dropped > 0 && proxied.throttled > 0 && proxied.server_errors > 0);
    let written: usize = redrives.iter().map(|r| r.written).sum();
    let stale: usize = redrives.iter().map(|r| r.stale + r.superseded).sum();
    let again: usize = redrives.iter().map(|r| r.dead_lettered_again).sum();
    eprintln!(
        "FAULTS {} records, {} faults of {} requests, workload {:.1?}, replication {:.1?}: {stats:?}; \
         dead-letter objects {}, keys unequal before redrive {unequal}; {} redrives: written {written}, \
         stale {stale}, dead-lettered again {again}; secondary equals primary",
        records.len(),
        proxied.faults(),
        proxied.requests,
        workload_done,
        replicated,
        letters.len(),
        redrives.len(),
    );
}

#[tokio::test]
async fn overwrite_mode_converges_under_injected_faults() {
    // About 180 BatchWriteItem requests: two attempts each make ~7 give-ups likely.
    converges_under_faults(&[], false, 2026, 2).await;
}

#[tokio::test]
async fn last_writer_wins_mode_converges_under_injected_faults() {
    // One conditional write per record: three attempts keep the replays bounded.
    converges_under_faults(LWW, true, 2027, 3).await;
}

/// A poison record among 100: the target table has an index on `status` (a string) that the
/// source lacks, and one order carries `status` as a number, which DynamoDB refuses
/// (ValidationException, the whole BatchWriteItem). It costs exactly that record: 99 written,
/// the poison whole in the dead-letter bucket, nothing for Lambda to retry or bisect.
#[tokio::test]
async fn a_poison_record_among_100_costs_exactly_that_record() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-poison");
    let source = dynamodb::create_table(&a, &name, Some(StreamViewType::NewAndOldImages)).await;
    let stream_arn = source.and_then(|t| t.latest_stream_arn).expect("stream");
    dynamodb::create_table_with_string_index(&b, &name, "status").await;
    for i in 0..100 {
        let mut item = key_of(&format!("ORDER#{i:03}"));
        item.insert("status".into(), if i == 42 { n(7) } else { s("paid") });
        a.dynamodb
            .put_item()
            .table_name(&name)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let records = stream_records(emu, &stream_arn).await;
    assert_eq!(records.len(), 100);
    let r = wiring::build(&env(&name, &[("KEY_ATTRIBUTES", "pk,sk")]))
        .await
        .expect("init");
    let stats = drive(&r, &records, 100).await;
    assert_eq!(
        (
            stats.invocations,
            stats.partial_failures,
            stats.whole_batch_errors,
            stats.dead_lettered
        ),
        (1, 0, 0, 1),
        "{stats:?}"
    );
    let target = contents(&b.dynamodb, &name).await;
    assert_eq!(target.len(), 99);
    assert!(!target.contains_key("ORDER#042/META"));
    let letters = s3::json_objects(&a, DEAD_LETTER_BUCKET, &format!("dead-letter/{name}/")).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let (object, poison) = &letters[0];
    assert_eq!(poison["newImage"]["status"]["N"], "7", "the poison's full content");
    assert_eq!(poison["keys"]["pk"]["S"], "ORDER#042");
    assert_eq!(
        poison["sequenceNumber"],
        records[42].change.sequence_number.clone().unwrap()
    );
    assert!(
        poison["error"]
            .as_str()
            .unwrap()
            .contains("Type mismatch for Index Key status"),
        "{poison}"
    );
    assert!(object.ends_with(".json"), "{object}");
}

/// A failover mid-stream: the first 40 orders were replicated; then the plan published the
/// secondary as active, the shop wrote there, and the primary's stream still held changes
/// made before the outage that were never replicated ("stranded"). When the primary's
/// stream is consumed again they are reconciled: the newer version wins, the authoritative
/// copy never takes an older write, and every loser is in the conflict log.
#[tokio::test]
async fn stranded_records_after_a_failover_are_reconciled_and_losers_logged() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-stranded");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;
    let prefix = format!("/{name}/failover");
    let active = format!("{prefix}/active-region");
    failover_testkit::fixtures::ssm::put_parameter(&b, &active, PRIMARY).await;
    let put = |client: &Client, pk: String, v: u32, note: &str| {
        let mut item = key_of(&pk);
        item.insert("v".into(), n(v));
        item.insert("note".into(), s(note));
        client.put_item().table_name(&name).set_item(Some(item)).send()
    };
    let delete = |client: &Client, pk: String| client.delete_item().table_name(&name).set_key(Some(key_of(&pk))).send();
    let k = |i: u32| format!("ORDER#{i:02}");
    for i in 0..40 {
        put(&a.dynamodb, k(i), 1, "placed").await.unwrap();
    }
    let extra = [
        ("REPLICATION_MODE", "last-writer-wins"),
        ("VERSION_ATTRIBUTE", "v"),
        ("PARAMETER_PREFIX", prefix.as_str()),
    ];
    let replicated = stream_records(emu, &pair.stream_arn).await;
    let before = wiring::build(&env(&name, &extra)).await.expect("init");
    drive(&before, &replicated, 100).await;
    assert_same(&contents(&a.dynamodb, &name).await, &contents(&b.dynamodb, &name).await);

    // The switch, then the shop writes in the secondary.
    failover_testkit::fixtures::ssm::put_parameter(&b, &active, SECONDARY).await;
    for i in 0..10 {
        put(&b.dynamodb, k(i), 10, "changed in the secondary").await.unwrap();
    }
    for i in 10..15 {
        delete(&b.dynamodb, k(i)).await.unwrap();
    }
    // Changes the primary made before the outage and never replicated.
    for i in 0..5 {
        put(&a.dynamodb, k(i), 2, "stranded, older").await.unwrap();
    }
    for i in 15..25 {
        put(&a.dynamodb, k(i), 2, "stranded, newer").await.unwrap();
    }
    for i in 25..30 {
        delete(&a.dynamodb, k(i)).await.unwrap();
    }
    for i in 40..45 {
        put(&a.dynamodb, k(i), 1, "stranded new order").await.unwrap();
    }
    let authoritative = contents(&b.dynamodb, &name).await;
    let all = stream_records(emu, &pair.stream_arn).await;
    let stranded = &all[replicated.len()..];
    assert_eq!(stranded.len(), 25);

    let after = wiring::build(&env(&name, &extra)).await.expect("init");
    let stats = drive(&after, stranded, 100).await;
    assert_eq!((stats.partial_failures, stats.whole_batch_errors), (0, 0), "{stats:?}");
    let now = contents(&b.dynamodb, &name).await;
    let version = |t: &Table, i: u32| t.get(&format!("{}/META", k(i))).map(|item| item["v"].clone());
    for i in 0..45 {
        let (was, is) = (version(&authoritative, i), version(&now, i));
        let expected = match i {
            0..=9 => Some(n(10)),  // the secondary's newer writes stand
            10..=14 => None,       // deleted in the secondary, untouched at the source
            15..=24 => Some(n(2)), // stranded and newer: applied
            25..=29 => None,       // deleted at the source before the outage: applied
            30..=44 => Some(n(1)), // unchanged (30-39); stranded new orders (40-44)
            _ => unreachable!(),
        };
        assert_eq!(is, expected, "{}: was {was:?}", k(i));
    }
    let logged = s3::json_objects(&a, DEAD_LETTER_BUCKET, &format!("conflicts/{name}/")).await;
    let mut losers: Vec<String> = logged
        .iter()
        .map(|(_, c)| c["stranded"]["keys"]["pk"]["S"].as_str().unwrap().to_owned())
        .collect();
    losers.sort();
    assert_eq!(losers, (0..5).map(k).collect::<Vec<_>>(), "{logged:?}");
    assert!(logged
        .iter()
        .all(|(_, c)| c["target"]["v"]["N"] == "10" && c["stranded"]["newImage"]["v"]["N"] == "2"));
    eprintln!(
        "STRANDED last-writer-wins: {} records reconciled, {} conflicts logged, {} write requests, the secondary's newer writes kept",
        stranded.len(),
        logged.len(),
        stats.write_requests
    );
}

/// The same failover in overwrite mode (no versions): the secondary wins every difference,
/// so nothing is written over it and every stranded change is in the conflict log. The
/// injected defect: the same stranded records through a replicator that does not read the
/// active region (no PARAMETER_PREFIX) overwrite the authoritative copy, which is what the
/// first assertion guards against.
#[tokio::test]
async fn without_versions_stranded_records_never_overwrite_the_authoritative_copy() {
    let emu = Emulator::shared();
    dead_letter_bucket(emu).await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("replica-stranded-ow");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;
    let prefix = format!("/{name}/failover");
    let active = format!("{prefix}/active-region");
    failover_testkit::fixtures::ssm::put_parameter(&b, &active, PRIMARY).await;
    random_workload(&a.dynamodb, &name, 200, 40, 11, false).await;
    let replicated = stream_records(emu, &pair.stream_arn).await;
    let extra = [("PARAMETER_PREFIX", prefix.as_str())];
    drive(
        &wiring::build(&env(&name, &extra)).await.expect("init"),
        &replicated,
        100,
    )
    .await;
    assert_same(&contents(&a.dynamodb, &name).await, &contents(&b.dynamodb, &name).await);

    failover_testkit::fixtures::ssm::put_parameter(&b, &active, SECONDARY).await;
    random_workload(&b.dynamodb, &name, 60, 40, 12, false).await; // the shop in the secondary
    random_workload(&a.dynamodb, &name, 120, 40, 13, false).await; // stranded in the primary
    let authoritative = contents(&b.dynamodb, &name).await;
    let all = stream_records(emu, &pair.stream_arn).await;
    let stranded = &all[replicated.len()..];
    let stats = drive(&wiring::build(&env(&name, &extra)).await.expect("init"), stranded, 50).await;
    assert_eq!(stats.write_requests, 0, "{stats:?}");
    assert!(
        contents(&b.dynamodb, &name).await == authoritative,
        "a stranded record was written over the authoritative copy"
    );
    let logged = s3::json_objects(&a, DEAD_LETTER_BUCKET, &format!("conflicts/{name}/")).await;
    assert!(!logged.is_empty(), "the stranded changes that differ are logged");
    eprintln!(
        "STRANDED overwrite: {} records, {} conflicts logged, 0 writes",
        stranded.len(),
        logged.len()
    );

    // The injected defect: without the active-region check the same records are replicated.
    let blind = wiring::build(&env(&name, &[])).await.expect("init");
    drive(&blind, stranded, 50).await;
    assert!(
        contents(&b.dynamodb, &name).await != authoritative,
        "the check above could not fail: the stranded records changed nothing even unguarded"
    );
}
