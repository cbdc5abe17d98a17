//! The failback record in the state table: one `failback#<failover id>` item per failover,
//! its JSON body versioned so two executions cannot both move it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{conditional, from_item, n, s, DynamoDbLockStore};
use crate::domain::{FailbackRecord, LockRecord, Stage};
use crate::ports::FailbackStore;
use failover_core::error::{AwsFailure, ErrorClass};

fn failback_key(failover_id: &str) -> AttributeValue {
    s(&format!("failback#{failover_id}"))
}

fn failback_item(record: &FailbackRecord, version: u64) -> HashMap<String, AttributeValue> {
    let stored = FailbackRecord {
        version,
        ..record.clone()
    };
    HashMap::from([
        ("pk".to_owned(), failback_key(&record.failover_id)),
        ("kind".to_owned(), s("failback")),
        ("failover_id".to_owned(), s(&record.failover_id)),
        ("stage".to_owned(), s(record.stage.as_str())),
        ("version".to_owned(), n(version as i64)),
        (
            "record".to_owned(),
            s(&serde_json::to_string(&stored).unwrap_or_default()),
        ),
    ])
}

impl FailbackStore for DynamoDbLockStore {
    async fn create_failback(&self, record: &FailbackRecord) -> Result<bool, AwsFailure> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(failback_item(record, record.version)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn load_failback(&self, failover_id: &str) -> Result<Option<FailbackRecord>, AwsFailure> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", failback_key(failover_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("GetItem", &err))?;
        let Some(item) = output.item() else { return Ok(None) };
        let body = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| AwsFailure {
                operation: "GetItem",
                code: None,
                message: format!("failback item of {failover_id} is damaged: attribute record is missing"),
                class: ErrorClass::NonRetryable,
            })?;
        serde_json::from_str(body).map(Some).map_err(|e| AwsFailure {
            operation: "GetItem",
            code: None,
            message: format!("failback item of {failover_id} is damaged: {e}"),
            class: ErrorClass::NonRetryable,
        })
    }

    async fn save_failback(&self, record: &FailbackRecord) -> Result<bool, AwsFailure> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(failback_item(record, record.version + 1)))
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", n(record.version as i64))
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn latest_published(&self) -> Result<Option<LockRecord>, AwsFailure> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("kind = :promotion AND stage = :published")
            .expression_attribute_values(":promotion", s("promotion"))
            .expression_attribute_values(":published", s(Stage::Published.as_str()))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut latest: Option<LockRecord> = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| AwsFailure::from_sdk("Scan", &err))?;
            for item in page.items() {
                let record = from_item(item)?;
                if latest
                    .as_ref()
                    .is_none_or(|l| record.published_at_ms > l.published_at_ms)
                {
                    latest = Some(record);
                }
            }
        }
        Ok(latest)
    }
}
