//! [`HeartbeatProbe`] and [`HealthStateStore`] over DynamoDB.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{CheckResult, HealthState};
use crate::ports::{HealthStateStore, HeartbeatProbe};
use failover_core::error::conditional_write as conditional;
use failover_core::error::{describe_chain, AwsFailure, ErrorClass};
use failover_core::Region;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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
    writer: String,
}

impl DynamoDbHeartbeats {
    /// One client per region (built with short timeouts), the table name, the per-check timeout.
    pub fn new(
        clients: BTreeMap<Region, aws_sdk_dynamodb::Client>,
        table: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            clients,
            table: table.into(),
            timeout,
            writer: format!("{:016x}", fastrand::u64(..)),
        }
    }

    fn key(&self, region: &Region) -> AttributeValue {
        AttributeValue::S(format!("heartbeat#{region}#{}", self.writer))
    }

    async fn write_then_read(&self, client: &aws_sdk_dynamodb::Client, region: &Region) -> Result<(u64, u64), String> {
        let written_at = now_ms();
        let started = Instant::now();
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
            .await
            .map_err(|e| format!("heartbeat write: {}", describe_chain(&e)))?;
        let write_ms = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let read = client
            .get_item()
            .table_name(&self.table)
            .key("pk", self.key(region))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("heartbeat read: {}", describe_chain(&e)))?;
        let read_ms = started.elapsed().as_millis() as u64;
        let seen = read
            .item()
            .and_then(|i| i.get("written_at_ms"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok());
        match seen {
            Some(value) if value == written_at => Ok((write_ms, read_ms)),
            other => Err(format!("heartbeat read back {other:?}, expected {written_at}")),
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
            Ok(Err(error)) => CheckResult::unhealthy(region.clone(), error),
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

/// The health state as one item: `pk`, `version`, and the state as JSON.
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(self.key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("GetItem", &e))?;
        let Some(item) = output.item() else { return Ok(None) };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| damaged(format!("health state {} has no numeric version", self.key)))?;
        let json = item
            .get("state")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| damaged(format!("health state {} has no state attribute", self.key)))?;
        let state =
            serde_json::from_str(json).map_err(|e| damaged(format!("health state {} is damaged: {e}", self.key)))?;
        Ok(Some((state, version)))
    }

    async fn save(&self, state: &HealthState, expected: Option<u64>) -> Result<bool, AwsFailure> {
        let json = serde_json::to_string(state).map_err(|e| damaged(e.to_string()))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(self.key.clone()))
            .item("kind", AttributeValue::S("health".into()))
            .item("version", AttributeValue::N((expected.unwrap_or(0) + 1).to_string()))
            .item("active_region", AttributeValue::S(state.active_region.to_string()))
            .item("state", AttributeValue::S(json))
            .item("updated_at_ms", AttributeValue::N(now_ms().to_string()));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
        conditional("PutItem", request.send().await)
    }
}
