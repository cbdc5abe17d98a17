//! Test doubles with the same semantics as the real adapters, and mock RDS answers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_rds::types::{DbInstance, DbInstanceStatusInfo, Endpoint};
use failover_core::retry::Deadline;
use failover_core::EnvReader;
use rds_promoter::{Invocation, PromoterConfig};

pub const REPLICA: &str = "shop-db-replica";
pub const SOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:db:shop-db";
/// The replica's `InstanceCreateTime` (epoch seconds).
pub const REPLICA_CREATED_SECS: i64 = 1_763_000_000;
/// The replica incarnation its promotion claim is keyed by.
pub const REPLICA_INCARNATION: &str = "shop-db-replica@1763000000000";
pub const REPLICA_HOST: &str = "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com";

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
