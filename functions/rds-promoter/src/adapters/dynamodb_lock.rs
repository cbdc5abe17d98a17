//! [`FailoverLockStore`] over a DynamoDB state table (partition key `pk`, a string).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{FenceRecord, LockRecord, Stage};
use crate::ports::{EvidenceStore, FailoverLockStore, FenceStore};
use failover_core::error::{conditional_write as conditional, AwsFailure, ErrorClass};
use failover_core::evidence::Observation;

#[path = "dynamodb_failback.rs"]
mod failback;

/// Lock records in one table; each is the item `pk = "promotion#<failover id>"`, each
/// replica claim the item `pk = "replica-claim#<replica incarnation>"`, and each failover's
/// fence the item `pk = "fence#<failover id>"` (the record as JSON, and `pending`), and
/// each failback the item `pk = "failback#<failover id>"` (the record as JSON, `version`).
#[derive(Debug, Clone)]
pub struct DynamoDbLockStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbLockStore {
    /// Wraps a client of the table's region.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn key(failover_id: &str) -> AttributeValue {
    AttributeValue::S(format!("promotion#{failover_id}"))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The stored form of a record.
pub(crate) fn to_item(record: &LockRecord) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("pk".to_owned(), key(&record.failover_id)),
        ("kind".to_owned(), s("promotion")),
        ("failover_id".to_owned(), s(&record.failover_id)),
        ("stage".to_owned(), s(record.stage.as_str())),
        ("owner".to_owned(), s(&record.owner)),
        ("lease_until_ms".to_owned(), n(record.lease_until_ms)),
        ("replica_id".to_owned(), s(&record.replica_id)),
        ("created_at_ms".to_owned(), n(record.created_at_ms)),
    ]);
    let optional = [
        ("former_source", record.former_source.as_deref().map(s)),
        ("promote_requested_at_ms", record.promote_requested_at_ms.map(n)),
        ("writable_at_ms", record.writable_at_ms.map(n)),
        ("published_at_ms", record.published_at_ms.map(n)),
        ("endpoint_address", record.endpoint_address.as_deref().map(s)),
        ("endpoint_port", record.endpoint_port.map(|p| n(p.into()))),
        (
            "rpo",
            record
                .rpo
                .as_ref()
                .and_then(|r| serde_json::to_string(r).ok())
                .map(|j| s(&j)),
        ),
    ];
    item.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))));
    item
}

/// Reads a stored record back; a damaged item is a permanent error naming the attribute.
pub(crate) fn from_item(item: &HashMap<String, AttributeValue>) -> Result<LockRecord, AwsFailure> {
    let damaged = |attribute: &str| AwsFailure {
        operation: "GetItem",
        code: None,
        message: format!("lock item is damaged: attribute {attribute} is missing or has the wrong type"),
        class: ErrorClass::NonRetryable,
    };
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Ok(LockRecord {
        failover_id: text("failover_id").ok_or_else(|| damaged("failover_id"))?,
        stage: text("stage")
            .and_then(|s| Stage::parse(&s))
            .ok_or_else(|| damaged("stage"))?,
        owner: text("owner").ok_or_else(|| damaged("owner"))?,
        lease_until_ms: number("lease_until_ms").ok_or_else(|| damaged("lease_until_ms"))?,
        replica_id: text("replica_id").ok_or_else(|| damaged("replica_id"))?,
        created_at_ms: number("created_at_ms").ok_or_else(|| damaged("created_at_ms"))?,
        former_source: text("former_source"),
        promote_requested_at_ms: number("promote_requested_at_ms"),
        writable_at_ms: number("writable_at_ms"),
        published_at_ms: number("published_at_ms"),
        endpoint_address: text("endpoint_address"),
        endpoint_port: number("endpoint_port").and_then(|p| u16::try_from(p).ok()),
        rpo: match text("rpo") {
            Some(json) => Some(serde_json::from_str(&json).map_err(|_| damaged("rpo"))?),
            None => None,
        },
    })
}

impl FailoverLockStore for DynamoDbLockStore {
    async fn create(&self, record: &LockRecord) -> Result<bool, AwsFailure> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn load(&self, failover_id: &str) -> Result<Option<LockRecord>, AwsFailure> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key(failover_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("GetItem", &err))?;
        output.item().map(from_item).transpose()
    }

    async fn take_over(&self, seen: &LockRecord, owner: &str, lease_until_ms: i64) -> Result<bool, AwsFailure> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(&seen.failover_id))
            .update_expression("SET #owner = :owner, lease_until_ms = :lease")
            .condition_expression("#owner = :seen_owner AND lease_until_ms = :seen_lease")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":seen_owner", s(&seen.owner))
            .expression_attribute_values(":seen_lease", n(seen.lease_until_ms))
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn save(&self, record: &LockRecord) -> Result<bool, AwsFailure> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(&record.owner))
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn claim_replica(
        &self,
        incarnation: &str,
        failover_id: &str,
        lease_until_ms: i64,
    ) -> Result<Option<String>, AwsFailure> {
        let pk = s(&format!("replica-claim#{incarnation}"));
        let now_ms = chrono::Utc::now().timestamp_millis();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk.clone())
            .item("kind", s("replica-claim"))
            .item("failover_id", s(failover_id))
            .item("claimed_at_ms", n(now_ms))
            .item("lease_until_ms", n(lease_until_ms))
            .condition_expression("attribute_not_exists(pk) OR failover_id = :me OR lease_until_ms < :now")
            .expression_attribute_values(":me", s(failover_id))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        if conditional("PutItem", result)? {
            return Ok(None);
        }
        let holder = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("GetItem", &err))?
            .item()
            .and_then(|item| item.get("failover_id"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| "another failover".to_owned());
        Ok(Some(holder))
    }
}

fn damaged_fence(message: String) -> AwsFailure {
    AwsFailure {
        operation: "GetItem",
        code: None,
        message: format!("fence item is damaged: {message}"),
        class: ErrorClass::NonRetryable,
    }
}

fn fence_from_item(item: &HashMap<String, AttributeValue>) -> Result<FenceRecord, AwsFailure> {
    let body = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| damaged_fence("attribute record is missing or not a string".into()))?;
    serde_json::from_str(body).map_err(|e| damaged_fence(e.to_string()))
}

/// health-monitor's items: `state` holds the saved state (or observation) as JSON, whose
/// `regions` and `checkedAtMs` are the observation.
impl EvidenceStore for DynamoDbLockStore {
    async fn observation(&self, key: &str) -> Result<Option<Observation>, AwsFailure> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("GetItem", &e))?;
        let Some(json) = output.item().and_then(|i| i.get("state")).and_then(|v| v.as_s().ok()) else {
            return Ok(None);
        };
        serde_json::from_str(json).map(Some).map_err(|e| AwsFailure {
            operation: "GetItem",
            code: None,
            message: format!("health-monitor item {key} is damaged: {e}"),
            class: ErrorClass::NonRetryable,
        })
    }
}

impl FenceStore for DynamoDbLockStore {
    async fn save_fence(&self, record: &FenceRecord) -> Result<(), AwsFailure> {
        let body = serde_json::to_string(record).unwrap_or_default();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("fence#{}", record.failover_id)))
            .item("kind", s("fence"))
            .item("failover_id", s(&record.failover_id))
            .item("pending", AttributeValue::Bool(record.is_pending()))
            .item("updated_at_ms", n(record.updated_at_ms))
            .item("record", s(&body))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("PutItem", &err))
    }

    async fn load_fence(&self, failover_id: &str) -> Result<Option<FenceRecord>, AwsFailure> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&format!("fence#{failover_id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("GetItem", &err))?;
        output.item().map(fence_from_item).transpose()
    }

    async fn fences(&self) -> Result<Vec<FenceRecord>, AwsFailure> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("kind = :fence")
            .expression_attribute_values(":fence", s("fence"))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| AwsFailure::from_sdk("Scan", &err))?;
            for item in page.items() {
                records.push(fence_from_item(item)?);
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_items() {
        let mut record = LockRecord::new("alarm@2026-11-21T03:00:05.123Z", "shop-db-replica", "req-1", 10, 20);
        assert_eq!(from_item(&to_item(&record)).unwrap(), record);
        record.stage = Stage::Published;
        record.former_source = Some("arn:aws:rds:us-east-1:1:db:shop-db".into());
        record.promote_requested_at_ms = Some(11);
        record.writable_at_ms = Some(12);
        record.published_at_ms = Some(13);
        record.endpoint_address = Some("db.example".into());
        record.endpoint_port = Some(3306);
        assert_eq!(from_item(&to_item(&record)).unwrap(), record);
    }

    #[test]
    fn damaged_items_name_the_attribute() {
        let mut item = to_item(&LockRecord::new("a@t", "r", "o", 1, 2));
        item.insert("stage".into(), s("exploded"));
        let err = from_item(&item).unwrap_err();
        assert!(err.message.contains("attribute stage"), "{err}");
        assert_eq!(err.class, ErrorClass::NonRetryable);
    }
}
