//! The shop's writes on the primary table, their replication through stream-replicator,
//! and the RPO check (acknowledged writes missing in the secondary).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use failover_testkit::clients::RegionClients;
use serde_json::{json, Value};

use crate::world::DATA_TABLE;
use failover_testkit::fixtures::stream_event::read_stream_as_lambda_event;
use failover_testkit::lambda_watch::LambdaWatch;

/// An item as stored.
pub type Item = HashMap<String, AttributeValue>;

/// What the primary acknowledged: the expected final state of every key touched.
#[derive(Debug, Default)]
pub struct Acknowledged {
    /// `pk` → the item after the last acknowledged write (`None`: deleted).
    pub items: BTreeMap<String, Option<Item>>,
    /// Writes the primary answered with success.
    pub writes: usize,
}

fn key(pk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S("META".to_owned())),
    ])
}

/// Writes `count` random puts, updates and deletes over 80 order keys; only writes the
/// primary acknowledged are recorded.
pub async fn write(a: &RegionClients, acknowledged: &mut Acknowledged, count: usize, rng: &mut fastrand::Rng) {
    for _ in 0..count {
        let pk = format!("ORDER#{:04}", rng.u32(0..80));
        if rng.u8(0..10) < 2 {
            if a.dynamodb
                .delete_item()
                .table_name(DATA_TABLE)
                .set_key(Some(key(&pk)))
                .send()
                .await
                .is_ok()
            {
                acknowledged.items.insert(pk, None);
                acknowledged.writes += 1;
            }
        } else {
            let mut item = key(&pk);
            item.insert(
                "status".into(),
                AttributeValue::S(["pending", "paid", "shipped"][rng.usize(0..3)].into()),
            );
            item.insert(
                "grand_total".into(),
                AttributeValue::N(format!("{}.{:02}", rng.u32(1..500), rng.u32(0..100))),
            );
            item.insert("version".into(), AttributeValue::N(acknowledged.writes.to_string()));
            if a.dynamodb
                .put_item()
                .table_name(DATA_TABLE)
                .set_item(Some(item.clone()))
                .send()
                .await
                .is_ok()
            {
                acknowledged.items.insert(pk, Some(item));
                acknowledged.writes += 1;
            }
        }
    }
}

/// How replication went.
#[derive(Debug, Default, Clone)]
pub struct Replication {
    /// Stream records handed to the function.
    pub records: usize,
    /// Invocations (including redeliveries after a reported failure).
    pub invocations: usize,
    /// The sequence number of the last record delivered: the next pass starts after it.
    pub delivered_through: u128,
    /// When the last pass read the stream: every change acknowledged before it was in it.
    pub last_read_at: Option<std::time::Instant>,
    /// Test-only defect: the next record whose `pk` starts with this is never delivered
    /// (a replicator that loses one record); then cleared.
    pub drop_next_matching: Option<String>,
    /// The keys of the records dropped so.
    pub dropped: Vec<String>,
}

/// Feeds the stream records after `stats.delivered_through` to stream-replicator in
/// batches of `batch`, redelivering from the reported sequence number as Lambda does, and
/// moves `delivered_through` to the last record delivered.
pub async fn replicate(
    watch: &LambdaWatch,
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    batch: usize,
    stats: &mut Replication,
) -> Result<(), String> {
    let after = stats.delivered_through;
    stats.last_read_at = Some(std::time::Instant::now());
    let all = read_stream_as_lambda_event(streams, stream_arn).await.payload["Records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sequence = |r: &Value| {
        r["dynamodb"]["SequenceNumber"]
            .as_str()
            .and_then(|s| s.parse::<u128>().ok())
            .unwrap_or(0)
    };
    let mut pending: Vec<Value> = all.into_iter().filter(|r| sequence(r) > after).collect();
    let mut last = after;
    if let Some(prefix) = stats.drop_next_matching.clone() {
        let key = |r: &Value| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap_or("").to_owned();
        if let Some(at) = pending.iter().position(|r| key(r).starts_with(&prefix)) {
            let dropped = pending.remove(at);
            last = last.max(sequence(&dropped));
            stats.dropped.push(key(&dropped));
            stats.drop_next_matching = None;
        }
    }
    let mut stalled = 0;
    while !pending.is_empty() {
        if stalled >= 20 {
            return Err(format!(
                "stream-replicator made no progress in 20 invocations ({} records left)",
                pending.len()
            ));
        }
        let take = batch.min(pending.len());
        let records: Vec<Value> = pending[..take].to_vec();
        stats.invocations += 1;
        let answer = watch
            .invoke("stream-replicator", &json!({ "Records": records }))
            .map_err(|e| e.to_string())?;
        // A failed invocation delivers nothing: the mapping retries the whole batch.
        let Ok(answer) = answer else {
            stalled += 1;
            continue;
        };
        let failed_from = answer["batchItemFailures"]
            .as_array()
            .and_then(|f| f.first())
            .and_then(|f| f["itemIdentifier"].as_str())
            .and_then(|s| s.parse::<u128>().ok());
        let done = match failed_from {
            Some(seq) => records.iter().take_while(|r| sequence(r) < seq).count(),
            None => take,
        };
        stalled = if done == 0 { stalled + 1 } else { 0 };
        stats.records += done;
        if let Some(record) = records[..done].last() {
            last = last.max(sequence(record));
        }
        pending.drain(..done);
    }
    stats.delivered_through = last;
    Ok(())
}

/// The replicator's origin marker (its default name): replication metadata, not shop data.
const ORIGIN_MARKER: &str = "replica_origin";

/// Keys whose last acknowledged write is missing or different in the secondary (comparing
/// the shop's attributes, without the replicator's origin marker). A read that fails is an
/// error, never counted either way.
pub async fn lost_writes(b: &RegionClients, acknowledged: &Acknowledged) -> Result<usize, String> {
    let mut lost = 0;
    for (pk, expected) in &acknowledged.items {
        let found = b
            .dynamodb
            .get_item()
            .table_name(DATA_TABLE)
            .set_key(Some(key(pk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("cannot read {pk} in the secondary to measure RPO: {e}"))?
            .item
            .map(|mut item| {
                item.remove(ORIGIN_MARKER);
                item
            });
        if &found != expected {
            lost += 1;
        }
    }
    Ok(lost)
}
