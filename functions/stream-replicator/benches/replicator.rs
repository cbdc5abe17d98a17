//! `cargo bench -p stream-replicator`: prints `BENCH <name> <value> <unit>` lines.
//!
//! - write_requests.*: write calls the handler makes, counted by the in-memory table
//!   (which enforces DynamoDB's batch rules), next to the one-call-per-record approach.
//! - plan_throughput.10000: JSON decode + validation + coalescing + decisions of a
//!   10,000-record event on one thread, median of several runs.
//! - peak_rss.10000: the peak resident set (VmHWM) of a fresh child process that receives a
//!   10,000-record event as raw JSON bytes (as the Lambda runtime does) and handles it end to
//!   end through the real SDK adapter, whose HTTP layer is replaced by aws-smithy-mocks. The
//!   child is this binary re-executed, so nothing else inflates the high-water mark.

#[path = "../tests/common/events.rs"]
#[allow(dead_code)]
mod events;

use std::io::Write;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use events::{item, n, s, StreamBuilder};
use failover_core::retry::Deadline;
use failover_core::EnvReader;
use serde_json::Value as Json;
use stream_replicator::adapters::dynamodb::DynamoDbTable;
use stream_replicator::adapters::memory::MemoryTable;
use stream_replicator::adapters::memory_bucket::MemoryBucket;
use stream_replicator::ports::{ItemWriter, WriteRequest};
use stream_replicator::{allocator, Attributes, KeySchema, PlanPhase, Replicator, ReplicatorConfig};

const RSS_CHILD: &str = "STREAM_REPLICATOR_BENCH_RSS_EVENT";

fn config() -> ReplicatorConfig {
    ReplicatorConfig::from_env(&EnvReader::from_pairs([
        ("TARGET_TABLE_NAME", events::TABLE),
        ("TARGET_REGION", "us-west-2"),
        ("AWS_REGION", events::REGION),
        ("DEAD_LETTER_BUCKET", "bench-dead-letter"),
    ]))
    .expect("benchmark configuration")
}

fn schema() -> KeySchema {
    KeySchema::parse("pk,sk").expect("key schema")
}

/// A replicator over in-memory tables (which enforce DynamoDB's batch rules).
fn memory_replicator() -> Replicator<MemoryTable, MemoryTable, MemoryBucket> {
    Replicator::new(
        config(),
        schema(),
        MemoryTable::new(schema()),
        MemoryTable::new(schema()),
        MemoryBucket::new(),
    )
    .expect("replicator")
}

fn order_item(key: usize, version: u64) -> Json {
    item(
        &format!("ORDER#{:08}", 10_000_000 + key / 4),
        &format!("ITEM#{:02}", key % 4),
        &[
            ("sku", s(&format!("24-MB{:02}", key % 97))),
            ("qty", n(1 + version % 5)),
            ("price", n(format!("{}.{:02}", 10 + key % 90, key % 100))),
            ("status", s(["pending", "paid", "shipped"][(version % 3) as usize])),
            ("updated_at", n(1_763_694_000_000u64 + version)),
        ],
    )
}

/// `records` changes over `keys` distinct keys: inserts, then modifies and removes of
/// existing items, with correct old images, in a seeded random order.
fn workload(records: usize, keys: usize, seed: u64) -> StreamBuilder {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut stream = StreamBuilder::new();
    let mut current: Vec<Option<Json>> = vec![None; keys];
    for version in 0..records as u64 {
        // Until every key exists, keys are taken in turn so `keys` distinct ones appear.
        let key = if (version as usize) < keys {
            version as usize
        } else {
            rng.usize(0..keys)
        };
        let new = order_item(key, version);
        match current[key].take() {
            None => {
                stream.insert(new.clone());
                current[key] = Some(new);
            }
            Some(old) if rng.u8(0..100) < 20 => {
                stream.remove(old);
            }
            Some(old) => {
                stream.modify(old, new.clone());
                current[key] = Some(new);
            }
        }
    }
    stream
}

/// One thread, as the Lambda binary's main runs.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bench(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("BENCH {name} {value} {unit}");
}

/// Write calls the replicator makes for a batch (overwrite mode).
fn replicator_writes(rt: &tokio::runtime::Runtime, stream: &StreamBuilder) -> usize {
    let r = memory_replicator();
    let handled = rt.block_on(r.replicate(stream.event(), Deadline::after(Duration::from_secs(60))));
    let response = handled.result.expect("batch handled");
    assert!(
        response.batch_item_failures.is_empty(),
        "the in-memory batch must succeed"
    );
    r.writer().calls.writes()
}

/// The tutorial approach: one write per record, in order.
fn per_record_writes(rt: &tokio::runtime::Runtime, stream: &StreamBuilder) -> usize {
    let table = MemoryTable::new(schema());
    let event = stream.event();
    rt.block_on(async {
        for record in event.records {
            let keys: Attributes = record.change.keys.into_inner().into_iter().collect();
            let result = if record.event_name == "REMOVE" {
                table.batch_write(&[WriteRequest::Delete(&keys)]).await
            } else {
                let item: Attributes = record.change.new_image.into_inner().into_iter().collect();
                table.batch_write(&[WriteRequest::Put(&item)]).await
            };
            result.expect("single write");
        }
    });
    table.calls.writes()
}

fn plan_throughput(json: &str, records: usize) -> f64 {
    let r = memory_replicator();
    let mut runs: Vec<Duration> = (0..9)
        .map(|_| {
            let started = Instant::now();
            let plan = r.plan_json(json, 1_763_694_100_000).expect("valid batch");
            let elapsed = started.elapsed();
            assert_eq!(plan.sequences.len(), records);
            drop(plan);
            elapsed
        })
        .collect();
    runs.sort();
    records as f64 / runs[runs.len() / 2].as_secs_f64()
}

/// Median milliseconds of each planning phase, printed beside the throughput so a
/// regression points at its phase.
fn plan_phases(json: &str) {
    let r = memory_replicator();
    let mut phases: [Vec<f64>; 4] = Default::default();
    for _ in 0..9 {
        let started = Instant::now();
        serde_json::from_str::<serde::de::IgnoredAny>(json).expect("valid JSON");
        phases[3].push(started.elapsed().as_secs_f64() * 1000.0);
        let mut lap = Instant::now();
        // Phases 0, 1, 2: read+check, coalesce, build last images+decide.
        let mark = |phase: PlanPhase| {
            phases[phase as usize].push(lap.elapsed().as_secs_f64() * 1000.0);
            lap = Instant::now();
        };
        r.plan_json_by_phase(json, mark).expect("valid batch");
    }
    let median = |runs: &mut Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    println!(
        "# plan phases, one after the other (median ms): read+check {:.1}, coalesce {:.1}, \
         build last images+decide {:.1}; \
         a bare JSON scan of the event takes {:.1}",
        median(&mut phases[0]),
        median(&mut phases[1]),
        median(&mut phases[2]),
        median(&mut phases[3])
    );
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The child: handles one event end to end and reports its peak RSS.
fn rss_child(path: &str) {
    let rt = runtime();
    let baseline = vm_hwm_kb().unwrap_or(0);
    let ok = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_output(|| BatchWriteItemOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&ok]);
    let table = DynamoDbTable::new(client, events::TABLE, schema());
    let r = Replicator::new(config(), schema(), table.clone(), table, MemoryBucket::new()).expect("replicator");
    // As the runtime: the body arrives as bytes, is parsed into the payload type, then dropped.
    let body = std::fs::read(path).expect("event file");
    let payload: Box<serde_json::value::RawValue> = serde_json::from_slice(&body).expect("JSON payload");
    drop(body);
    let response = rt
        .block_on(r.handle_payload(payload, Deadline::after(Duration::from_secs(120))))
        .expect("batch handled");
    assert!(response.batch_item_failures.is_empty());
    assert!(ok.num_calls() > 0);
    println!("RSS_BASELINE_KB {baseline}");
    println!("RSS_HWM_KB {}", vm_hwm_kb().unwrap_or(0));
}

fn peak_rss_mb(json: &str) -> f64 {
    let path = std::env::temp_dir().join(format!("stream-replicator-bench-{}.json", std::process::id()));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(json.as_bytes()))
        .expect("write event file");
    let output = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(RSS_CHILD, &path)
        .output()
        .expect("run the RSS child");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "RSS child failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("child printed no {name}: {stdout}"))
    };
    println!(
        "# peak RSS child: {:.1} MB before the event (runtime, SDK client), {:.1} MB peak",
        value("RSS_BASELINE_KB ") as f64 / 1024.0,
        value("RSS_HWM_KB ") as f64 / 1024.0
    );
    value("RSS_HWM_KB ") as f64 / 1024.0
}

fn main() {
    // As the Lambda binary's main does.
    allocator::return_freed_memory();
    if let Ok(path) = std::env::var(RSS_CHILD) {
        rss_child(&path);
        return;
    }
    let rt = runtime();

    let distinct = workload(1_000, 1_000, 1);
    bench(
        "replicator.write_requests.distinct_1000",
        replicator_writes(&rt, &distinct),
        "requests",
    );
    bench(
        "replicator.write_requests.per_record_baseline_1000",
        per_record_writes(&rt, &distinct),
        "requests",
    );
    let half = workload(1_000, 500, 2);
    bench(
        "replicator.write_requests.half_repeated_1000",
        replicator_writes(&rt, &half),
        "requests",
    );

    let big = workload(10_000, 5_000, 3);
    let json = big.json();
    println!(
        "# 10,000-record event: {:.2} MB of JSON (Lambda's payload limit is 6 MB)",
        json.len() as f64 / 1024.0 / 1024.0
    );
    bench(
        "replicator.plan_throughput.10000",
        format!("{:.0}", plan_throughput(&json, 10_000)),
        "records/s",
    );
    plan_phases(&json);
    bench("replicator.peak_rss.10000", format!("{:.1}", peak_rss_mb(&json)), "MB");
}
