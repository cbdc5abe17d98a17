//! Lambda's stream poller for one event source mapping, which the emulator does not run:
//! while the function's mapping is Enabled, the stream's records (from TRIM_HORIZON) are
//! delivered to the function through Invoke (which the emulator forwards to `cargo lambda
//! watch`) in batches of up to 100, resuming at the record a batch reports as failed, as
//! Lambda does. A disabled mapping delivers nothing and keeps its place.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fixtures::stream_event::read_stream_as_lambda_event;

/// Records per Invoke (the template's BatchSize).
const BATCH: usize = 100;
/// How long a pump runs at most.
const LIFETIME: Duration = Duration::from_secs(900);

/// A record the test wants lost (a defect: the poller drops it).
pub type LoseRecord = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// A running pump; stopped when dropped.
pub struct StreamPump {
    stop: Arc<AtomicBool>,
    delivered: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamPump {
    /// Pumps `stream_arn` into `function` while its mapping is enabled; `lose` (a test's
    /// defect) names records never delivered.
    pub fn start(
        lambda: aws_sdk_lambda::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        function: String,
        stream_arn: String,
        lose: Option<LoseRecord>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (stop_flag, delivered_count, dropped_count) = (stop.clone(), delivered.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut position = 0;
            while !stop_flag.load(Ordering::Relaxed) && started.elapsed() < LIFETIME {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if !enabled(&lambda, &function).await {
                    continue;
                }
                let records = read_stream_as_lambda_event(&streams, &stream_arn).await.payload["Records"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                while position < records.len() {
                    let batch: Vec<Value> = records[position..(position + BATCH).min(records.len())]
                        .iter()
                        .filter(|record| {
                            let lost = lose.as_ref().is_some_and(|lose| lose(record));
                            if lost {
                                dropped_count.fetch_add(1, Ordering::Relaxed);
                            }
                            !lost
                        })
                        .cloned()
                        .collect();
                    let taken = (records.len() - position).min(BATCH);
                    if batch.is_empty() {
                        position += taken;
                        continue;
                    }
                    match invoke(&lambda, &function, &batch).await {
                        Some(None) => {
                            position += taken;
                            delivered_count.fetch_add(batch.len(), Ordering::Relaxed);
                        }
                        Some(Some(failed)) => {
                            let at = records[position..]
                                .iter()
                                .position(|r| r["dynamodb"]["SequenceNumber"] == failed.as_str())
                                .unwrap_or(0);
                            position += at;
                            break;
                        }
                        // The function failed as a whole: Lambda retries the same batch.
                        None => break,
                    }
                }
            }
        });
        Self {
            stop,
            delivered,
            dropped,
            task,
        }
    }

    /// Records delivered so far.
    pub fn delivered(&self) -> usize {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Records dropped by the test's defect so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for StreamPump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

async fn enabled(lambda: &aws_sdk_lambda::Client, function: &str) -> bool {
    match lambda.list_event_source_mappings().function_name(function).send().await {
        Ok(page) => page
            .event_source_mappings()
            .iter()
            .any(|m| matches!(m.state(), Some("Enabled" | "Enabling"))),
        Err(_) => false,
    }
}

/// `Some(None)`: every record done; `Some(Some(seq))`: resume at `seq`; `None`: the
/// invocation failed (retry the batch).
async fn invoke(lambda: &aws_sdk_lambda::Client, function: &str, batch: &[Value]) -> Option<Option<String>> {
    let payload = json!({ "Records": batch }).to_string();
    let output = lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.into_bytes()))
        .send()
        .await
        .ok()?;
    if output.function_error().is_some() {
        return None;
    }
    let answer: Value = serde_json::from_slice(output.payload()?.as_ref()).ok()?;
    Some(
        answer["batchItemFailures"]
            .as_array()
            .and_then(|f| f.first())
            .and_then(|f| f["itemIdentifier"].as_str())
            .map(str::to_owned),
    )
}
