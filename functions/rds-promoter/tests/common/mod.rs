//! Test doubles with the same semantics as the real adapters, and mock RDS answers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_rds::types::{DbInstance, DbInstanceStatusInfo, Endpoint};
use failover_core::error::ErrorClass;
use failover_core::ports::{FailoverLockStore, ParameterWriter};
use failover_core::promotion::LockRecord;
use failover_core::retry::Deadline;
use failover_core::{AwsFailure, EnvReader};
use rds_promoter::{Invocation, PromoterConfig};

pub const REPLICA: &str = "shop-db-replica";
pub const SOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:db:shop-db";
/// The replica's `InstanceCreateTime` (epoch seconds).
pub const REPLICA_CREATED_SECS: i64 = 1_763_000_000;
/// The replica incarnation its promotion claim is keyed by.
pub const REPLICA_INCARNATION: &str = "shop-db-replica@1763000000000";
pub const REPLICA_HOST: &str = "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com";

/// A lock store with DynamoDB's conditional-write semantics, in memory.
#[derive(Default)]
pub struct MemoryLock {
    pub records: Mutex<HashMap<String, LockRecord>>,
    /// Replica incarnation → the failover id holding its promotion claim, and its lease end.
    pub replica_claims: Mutex<HashMap<String, (String, i64)>>,
}

impl MemoryLock {
    pub fn get(&self, id: &str) -> Option<LockRecord> {
        self.records.lock().unwrap().get(id).cloned()
    }
}

impl FailoverLockStore for MemoryLock {
    async fn create(&self, record: &LockRecord) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        if records.contains_key(&record.failover_id) {
            return Ok(false);
        }
        records.insert(record.failover_id.clone(), record.clone());
        Ok(true)
    }

    async fn load(&self, failover_id: &str) -> Result<Option<LockRecord>, AwsFailure> {
        Ok(self.get(failover_id))
    }

    async fn take_over(&self, seen: &LockRecord, owner: &str, lease_until_ms: i64) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        match records.get_mut(&seen.failover_id) {
            Some(r) if r.owner == seen.owner && r.lease_until_ms == seen.lease_until_ms => {
                r.owner = owner.to_owned();
                r.lease_until_ms = lease_until_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save(&self, record: &LockRecord) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        match records.get_mut(&record.failover_id) {
            Some(r) if r.owner == record.owner => {
                *r = record.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn claim_replica(
        &self,
        incarnation: &str,
        failover_id: &str,
        lease_until_ms: i64,
    ) -> Result<Option<String>, AwsFailure> {
        let mut claims = self.replica_claims.lock().unwrap();
        let now_ms = chrono::Utc::now().timestamp_millis();
        match claims.get(incarnation) {
            Some((holder, lease)) if holder != failover_id && *lease >= now_ms => Ok(Some(holder.clone())),
            _ => {
                claims.insert(incarnation.to_owned(), (failover_id.to_owned(), lease_until_ms));
                Ok(None)
            }
        }
    }
}

/// Records parameter writes; the first `fail_first` writes fail with throttling.
#[derive(Default)]
pub struct RecordingParameters {
    pub writes: Mutex<Vec<(String, String)>>,
    pub fail_first: Mutex<u32>,
}

impl ParameterWriter for RecordingParameters {
    async fn put(&self, name: &str, value: &str) -> Result<(), AwsFailure> {
        let mut fail = self.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(AwsFailure {
                operation: "PutParameter",
                code: Some("ThrottlingException".into()),
                message: "Rate exceeded".into(),
                class: ErrorClass::Retryable,
            });
        }
        self.writes.lock().unwrap().push((name.to_owned(), value.to_owned()));
        Ok(())
    }
}

/// The configuration of the tests, with `overrides` replacing or adding variables.
pub fn config(overrides: &[(&str, &str)]) -> PromoterConfig {
    let mut vars: HashMap<String, String> = [
        ("REPLICA_IDENTIFIER", REPLICA),
        ("REPLICA_REGION", "us-west-2"),
        ("PRIMARY_REGION", "us-east-1"),
        ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
        ("PARAMETER_PREFIX", "/shop/failover"),
        ("STATE_TABLE", "shop-failover-state"),
        ("POLL_INITIAL_MS", "10"),
        ("POLL_MAX_MS", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    PromoterConfig::from_env(&EnvReader::from_pairs(vars)).expect("test configuration is valid")
}

/// An invocation with `budget` left.
pub fn invocation(request_id: &str, budget: Duration) -> Invocation {
    Invocation {
        request_id: request_id.to_owned(),
        deadline: Deadline::after(budget),
        lease_until_ms: chrono::Utc::now().timestamp_millis() + budget.as_millis() as i64,
    }
}

/// A sample event from `events/`.
pub fn event(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// A DescribeDBInstances answer for the replica.
pub fn replica(
    status: &str,
    source: Option<&str>,
    replicating: bool,
) -> aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput {
    let mut instance = DbInstance::builder()
        .db_instance_identifier(REPLICA)
        .db_instance_arn(format!("arn:aws:rds:us-west-2:123456789012:db:{REPLICA}"))
        .db_instance_status(status)
        .engine("mysql")
        .instance_create_time(aws_smithy_types::DateTime::from_secs(REPLICA_CREATED_SECS))
        .endpoint(Endpoint::builder().address(REPLICA_HOST).port(3306).build());
    if let Some(source) = source {
        instance = instance.read_replica_source_db_instance_identifier(source);
    }
    if replicating {
        instance = instance.status_infos(
            DbInstanceStatusInfo::builder()
                .status_type("read replication")
                .normal(true)
                .status("replicating")
                .build(),
        );
    }
    aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput::builder()
        .db_instances(instance.build())
        .build()
}

/// A DescribeDBInstances answer for the source primary.
pub fn source(status: &str) -> aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput {
    aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput::builder()
        .db_instances(
            DbInstance::builder()
                .db_instance_identifier("shop-db")
                .db_instance_arn(SOURCE_ARN)
                .db_instance_status(status)
                .build(),
        )
        .build()
}

/// An RDS (AWS query protocol) error response, as the service sends it.
pub fn rds_error(status: u16, code: &str, message: &str) -> aws_smithy_runtime_api::http::Response {
    let body = format!(
        r#"<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>8c3a1f0e-0000-4000-8000-000000000000</RequestId></ErrorResponse>"#
    );
    aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
        aws_smithy_types::body::SdkBody::from(body),
    )
}
