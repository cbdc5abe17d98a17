//! [`DbInstances`] over the RDS API, and the `AWS/RDS` `ReplicaLag` metric in CloudWatch.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_rds::types::DbInstance;

use crate::domain::{DbInstanceView, LagMinute};
use crate::ports::{DbInstances, ReplicaSpec};
use failover_core::error::AwsFailure;

/// How far back the replica's lag is read: the last minutes before a promotion.
const LAG_WINDOW: Duration = Duration::from_secs(15 * 60);

/// RDS instances in the client's region.
#[derive(Debug, Clone)]
pub struct RdsInstances {
    client: aws_sdk_rds::Client,
    metrics: Option<aws_sdk_cloudwatch::Client>,
}

impl RdsInstances {
    /// Wraps a client (its region is the instances' region).
    pub fn new(client: aws_sdk_rds::Client) -> Self {
        Self { client, metrics: None }
    }

    /// Also reads the instances' metrics (CloudWatch in the same region): the replica side.
    pub fn with_metrics(self, metrics: aws_sdk_cloudwatch::Client) -> Self {
        Self {
            metrics: Some(metrics),
            ..self
        }
    }
}

impl DbInstances for RdsInstances {
    async fn describe(&self, id: &str) -> Result<Option<DbInstanceView>, AwsFailure> {
        match self
            .client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(output) => Ok(output.db_instances().first().map(|i| view(id, i))),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_instance_not_found_fault()) =>
            {
                Ok(None)
            }
            Err(err) => Err(AwsFailure::from_sdk("DescribeDBInstances", &err)),
        }
    }

    async fn promote(&self, id: &str, backup_retention_days: i32) -> Result<(), AwsFailure> {
        self.client
            .promote_read_replica()
            .db_instance_identifier(id)
            .backup_retention_period(backup_retention_days)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("PromoteReadReplica", &err))
    }

    async fn replica_lag(&self, id: &str) -> Result<Vec<LagMinute>, AwsFailure> {
        let Some(metrics) = &self.metrics else {
            return Err(AwsFailure {
                operation: "GetMetricStatistics",
                code: None,
                message: "this RDS side is not wired to CloudWatch (only the replica's side is)".into(),
                class: failover_core::ErrorClass::NonRetryable,
            });
        };
        let now = SystemTime::now();
        let output = metrics
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name("ReplicaLag")
            .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(id).build())
            .start_time(DateTime::from(now - LAG_WINDOW))
            .end_time(DateTime::from(now))
            .period(60)
            .statistics(Statistic::Maximum)
            .statistics(Statistic::Minimum)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("GetMetricStatistics", &err))?;
        Ok(output
            .datapoints()
            .iter()
            .filter_map(|d| {
                Some(LagMinute {
                    at_ms: d.timestamp()?.to_millis().ok()?,
                    maximum: d.maximum()?,
                    minimum: d.minimum()?,
                })
            })
            .collect())
    }

    /// Called in the replica's region with the source's ARN. No `PreSignedUrl`: RDS needs one
    /// only between GovCloud or China Regions and ignores it elsewhere (CreateDBInstanceReadReplica,
    /// API reference), and this SDK would not sign it for us.
    async fn create_replica(&self, spec: &ReplicaSpec) -> Result<(), AwsFailure> {
        self.client
            .create_db_instance_read_replica()
            .db_instance_identifier(&spec.id)
            .source_db_instance_identifier(&spec.source_arn)
            .set_db_instance_class(spec.instance_class.clone())
            .set_db_subnet_group_name(spec.subnet_group.clone())
            .set_db_parameter_group_name(spec.parameter_group.clone())
            .set_kms_key_id(spec.kms_key_id.clone())
            .copy_tags_to_snapshot(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("CreateDBInstanceReadReplica", &err))
    }

    async fn stop(&self, id: &str) -> Result<(), AwsFailure> {
        self.client
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("StopDBInstance", &err))
    }

    async fn rename(&self, id: &str, to: &str) -> Result<(), AwsFailure> {
        self.client
            .modify_db_instance()
            .db_instance_identifier(id)
            .new_db_instance_identifier(to)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("ModifyDBInstance", &err))
    }
}

fn view(requested_id: &str, instance: &DbInstance) -> DbInstanceView {
    let endpoint = instance.endpoint();
    DbInstanceView {
        id: instance.db_instance_identifier().unwrap_or(requested_id).to_owned(),
        arn: instance.db_instance_arn().map(str::to_owned),
        status: instance.db_instance_status().unwrap_or("unknown").to_owned(),
        replica_source: instance
            .read_replica_source_db_instance_identifier()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        status_infos: instance
            .status_infos()
            .iter()
            .map(|s| {
                (
                    s.status_type().unwrap_or_default().to_owned(),
                    s.status().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        endpoint_address: endpoint.and_then(|e| e.address()).map(str::to_owned),
        endpoint_port: endpoint.and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()),
        created_at_ms: instance.instance_create_time().and_then(|t| t.to_millis().ok()),
    }
}
