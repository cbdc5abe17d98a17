//! [`HeartbeatProbe`] and [`HealthStateStore`] over DynamoDB.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{CheckResult, HealthState};
use crate::ports::{HealthStateStore, HeartbeatProbe};
use failover_core::error::conditional_write as conditional;
use failover_core::error::{describe_chain, AwsFailure, ErrorClass};
use failover_core::evidence::{CheckOutcome, Observation};
use failover_core::Region;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The failure taxonomy of one SDK error: no HTTP answer, a 5xx or throttling is the
/// region down; another 4xx (AccessDenied, ResourceNotFound…) is our misconfiguration.
fn outcome_of<E>(
    err: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> CheckOutcome
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
    match err {
        SdkError::ServiceError(service) => {
            CheckOutcome::of_error(Some(service.raw().status().as_u16()), service.err().code())
        }
        SdkError::ResponseError(response) => CheckOutcome::of_error(Some(response.raw().status().as_u16()), err.code()),
        _ => CheckOutcome::of_error(None, None),
    }
}

/// The pause before the n-th retry of a heartbeat call is n times this.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Calls `call` up to `attempts` times while it fails with a down answer (no answer, 5xx,
/// throttling): a region that fails one call in five is up, and AWS's own clients retry
/// such errors; a dead region fails every attempt, within the check's timeout that bounds
/// the whole check. A misconfigured answer is final at once.
async fn retrying<T, E, F, Fut>(
    attempts: u32,
    mut call: F,
) -> Result<T, aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<T, aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
    >,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if attempt < attempts && outcome_of(&e) == CheckOutcome::Down => {
                tokio::time::sleep(RETRY_PAUSE * attempt).await;
                attempt += 1;
            }
            answer => return answer,
        }
    }
}

/// How long a heartbeat item lives (the table's TTL attribute `expires_at` removes it).
const HEARTBEAT_TTL_SECONDS: i64 = 24 * 3600;

/// Heartbeat items `pk = "heartbeat#<region>#<writer>"` in a same-named table in each
/// region. Each monitor process writes its own item, so overlapping runs cannot read
/// each other's heartbeat and mistake it for a stale read.
#[derive(Debug, Clone)]
pub struct DynamoDbHeartbeats {
    clients: BTreeMap<Region, aws_sdk_dynamodb::Client>,
    table: String,
    timeout: Duration,
    attempts: u32,
    writer: String,
}

impl DynamoDbHeartbeats {
    /// One client per region (built with short timeouts and no retries of their own), the
    /// table name, the per-check timeout and the attempts of each call within it.
    pub fn new(
        clients: BTreeMap<Region, aws_sdk_dynamodb::Client>,
        table: impl Into<String>,
        timeout: Duration,
        attempts: u32,
    ) -> Self {
        Self {
            clients,
            table: table.into(),
            timeout,
            attempts: attempts.max(1),
            writer: format!("{:016x}", fastrand::u64(..)),
        }
    }

    fn key(&self, region: &Region) -> AttributeValue {
        AttributeValue::S(format!("heartbeat#{region}#{}", self.writer))
    }

    async fn write_then_read(
        &self,
        client: &aws_sdk_dynamodb::Client,
        region: &Region,
    ) -> Result<(u64, u64), (CheckOutcome, String)> {
        let written_at = now_ms();
        let started = Instant::now();
        retrying(self.attempts, || {
            client
                .put_item()
                .table_name(&self.table)
                .item("pk", self.key(region))
                .item("written_at_ms", AttributeValue::N(written_at.to_string()))
                .item(
                    "expires_at",
                    AttributeValue::N((written_at / 1000 + HEARTBEAT_TTL_SECONDS).to_string()),
                )
                .send()
        })
        .await
        .map_err(|e| (outcome_of(&e), format!("heartbeat write: {}", describe_chain(&e))))?;
        let write_ms = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let read = retrying(self.attempts, || {
            client
                .get_item()
                .table_name(&self.table)
                .key("pk", self.key(region))
                .consistent_read(true)
                .send()
        })
        .await
        .map_err(|e| (outcome_of(&e), format!("heartbeat read: {}", describe_chain(&e))))?;
        let read_ms = started.elapsed().as_millis() as u64;
        let seen = read
            .item()
            .and_then(|i| i.get("written_at_ms"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok());
        match seen {
            Some(value) if value == written_at => Ok((write_ms, read_ms)),
            // The region answered, but not with what a consistent read must return.
            other => Err((
                CheckOutcome::Down,
                format!("heartbeat read back {other:?}, expected {written_at}"),
            )),
        }
    }
}

impl HeartbeatProbe for DynamoDbHeartbeats {
    async fn check(&self, region: &Region) -> CheckResult {
        let Some(client) = self.clients.get(region) else {
            return CheckResult::unhealthy(region.clone(), format!("no client for {region}"));
        };
        match tokio::time::timeout(self.timeout, self.write_then_read(client, region)).await {
            Ok(Ok((write_ms, read_ms))) => CheckResult::healthy(region.clone(), write_ms, read_ms),
            Ok(Err((CheckOutcome::Misconfigured, error))) => CheckResult::misconfigured(region.clone(), error),
            Ok(Err((_, error))) => CheckResult::unhealthy(region.clone(), error),
            Err(_) => CheckResult::unhealthy(
                region.clone(),
                format!("no answer within {} ms", self.timeout.as_millis()),
            ),
        }
    }

    async fn replication_lag_ms(&self, source: &Region, replica: &Region) -> Option<u64> {
        let client = self.clients.get(replica)?;
        // Our own heartbeat from `source`, as replicated into `replica`'s table.
        let read = client
            .get_item()
            .table_name(&self.table)
            .key("pk", self.key(source))
            .send();
        let output = tokio::time::timeout(self.timeout, read).await.ok()?.ok()?;
        let written_at: i64 = output.item()?.get("written_at_ms")?.as_n().ok()?.parse().ok()?;
        u64::try_from(now_ms() - written_at).ok()
    }
}

/// The health state as one item: `pk`, `version`, and the state as JSON; each observer's
/// observation as an item beside it (`<pk>#observer#<region>`, the same shape).
#[derive(Debug, Clone)]
pub struct DynamoDbHealthStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    key: String,
}

impl DynamoDbHealthStore {
    /// The item `pk = key` (e.g. `health#us-east-1#us-west-2`) in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            key: key.into(),
        }
    }

    fn observation_key(&self, observer: &Region) -> String {
        format!("{}#observer#{observer}", self.key)
    }

    /// The item `pk = key`, read consistently.
    async fn get_item(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, AwsFailure> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("GetItem", &e))?;
        Ok(output.item)
    }

    async fn load_item<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<(T, u64)>, AwsFailure> {
        let Some(item) = self.get_item(key).await? else {
            return Ok(None);
        };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| damaged(format!("health state {key} has no numeric version")))?;
        let json = item
            .get("state")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| damaged(format!("health state {key} has no state attribute")))?;
        let state = serde_json::from_str(json).map_err(|e| damaged(format!("health state {key} is damaged: {e}")))?;
        Ok(Some((state, version)))
    }

    async fn save_item<T: serde::Serialize>(
        &self,
        key: &str,
        kind: &str,
        value: &T,
        active_region: Option<&Region>,
        expected: Option<u64>,
    ) -> Result<bool, AwsFailure> {
        let json = serde_json::to_string(value).map_err(|e| damaged(e.to_string()))?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("kind", AttributeValue::S(kind.into()))
            .item("version", AttributeValue::N((expected.unwrap_or(0) + 1).to_string()))
            .item("state", AttributeValue::S(json.clone()))
            .item("updated_at_ms", AttributeValue::N(now_ms().to_string()));
        if let Some(region) = active_region {
            request = request.item("active_region", AttributeValue::S(region.to_string()));
        }
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
        if conditional("PutItem", request.send().await)? {
            return Ok(true);
        }
        self.holds_own_write(key, expected.unwrap_or(0) + 1, &json).await
    }

    /// Whether a refused conditional put is this run's own earlier attempt: the SDK retries a
    /// put whose answer was lost (a dropped connection, a 500 after the write), and the retry
    /// then fails the condition its first attempt already satisfied. The item then holds
    /// exactly what this run wrote, at the version it wrote; another run's write would differ.
    async fn holds_own_write(&self, key: &str, version: u64, json: &str) -> Result<bool, AwsFailure> {
        let Some(item) = self.get_item(key).await? else {
            return Ok(false);
        };
        let stored_version = item.get("version").and_then(|v| v.as_n().ok()).map(String::as_str);
        let stored_state = item.get("state").and_then(|v| v.as_s().ok()).map(String::as_str);
        Ok(stored_version == Some(version.to_string().as_str()) && stored_state == Some(json))
    }
}

fn damaged(message: String) -> AwsFailure {
    AwsFailure {
        operation: "GetItem",
        code: None,
        message,
        class: ErrorClass::NonRetryable,
    }
}

impl HealthStateStore for DynamoDbHealthStore {
    async fn load(&self) -> Result<Option<(HealthState, u64)>, AwsFailure> {
        self.load_item(&self.key).await
    }

    async fn save(&self, state: &HealthState, expected: Option<u64>) -> Result<bool, AwsFailure> {
        self.save_item(&self.key, "health", state, Some(&state.active_region), expected)
            .await
    }

    async fn load_observation(&self, observer: &Region) -> Result<Option<(Observation, u64)>, AwsFailure> {
        self.load_item(&self.observation_key(observer)).await
    }

    async fn save_observation(
        &self,
        observer: &Region,
        observation: &Observation,
        expected: Option<u64>,
    ) -> Result<bool, AwsFailure> {
        self.save_item(
            &self.observation_key(observer),
            "observation",
            observation,
            None,
            expected,
        )
        .await
    }
}
