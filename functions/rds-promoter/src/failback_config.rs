//! The failback plan's configuration: when it may start, how close the re-protecting
//! replicas must be, how long it waits, and where each region's new replica is placed.

use std::time::Duration;

use failover_core::{ConfigError, EnvReader};

/// Where a replica created in one region goes (each `None`: RDS's default there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// `DBSubnetGroupName`.
    pub subnet_group: Option<String>,
    /// `DBParameterGroupName`.
    pub parameter_group: Option<String>,
    /// `KmsKeyId` (required by RDS for an encrypted cross-region replica).
    pub kms_key_id: Option<String>,
}

impl Placement {
    /// Reads `<side>_DB_SUBNET_GROUP`, `<side>_DB_PARAMETER_GROUP`, `<side>_KMS_KEY_ID`.
    fn from_env(env: &EnvReader, side: &str) -> Result<Self, ConfigError> {
        let name = |suffix: &str, what: &str, expected: &str| -> Result<Option<String>, ConfigError> {
            let var = format!("{side}_{suffix}");
            match env.optional(&var) {
                None => Ok(None),
                Some(_) => env.resource_name(&var, what, 1..=255, expected).map(Some),
            }
        };
        let kms_var = format!("{side}_KMS_KEY_ID");
        let kms_key_id = match env.optional(&kms_var) {
            None => None,
            Some(raw)
                if raw.len() <= 2048
                    && raw
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'-' | b'_')) =>
            {
                Some(raw.to_owned())
            }
            Some(raw) => return Err(ConfigError::invalid(&kms_var, raw, "a KMS key id, ARN or alias/… name")),
        };
        Ok(Self {
            subnet_group: name(
                "DB_SUBNET_GROUP",
                "a DB subnet group name",
                "a DB subnet group name (letters, digits, - _ .)",
            )?,
            parameter_group: name(
                "DB_PARAMETER_GROUP",
                "a DB parameter group name",
                "a DB parameter group name (letters, digits, - _ .)",
            )?,
            kms_key_id,
        })
    }
}

/// Everything failback needs beyond the failover's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FailbackConfig {
    /// health-monitor's healthy checks of the original primary region in a row (M).
    pub healthy_checks: u32,
    /// A re-protecting replica is ready once its `ReplicaLag` is at most this.
    pub max_replica_lag_seconds: f64,
    /// How long a new replica may take to replicate (a large database takes hours).
    pub reprotect_max_wait: Duration,
    /// How long the write freeze may wait for the replica to drain before failback is
    /// abandoned (the plan then lifts the freeze; nothing was switched).
    pub drain_max_wait: Duration,
    /// `DBInstanceClass` of the new replicas; `None`: the source's (RDS's default).
    pub instance_class: Option<String>,
    /// The original (primary) region's new replica.
    pub primary_placement: Placement,
    /// The failover region's new replica (re-protection after the switch).
    pub replica_placement: Placement,
    /// The reverse stream replicator (failover region → primary), whose mappings failback
    /// turns on before the switch and off after it.
    pub reverse_replicator: Option<String>,
}

impl FailbackConfig {
    /// Reads and validates the failback variables; each problem names its variable.
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        let healthy_checks = env.parsed_or("FAILBACK_HEALTHY_CHECKS", 10u32, "a whole number from 1 to 1000")?;
        if !(1..=1000).contains(&healthy_checks) {
            return Err(ConfigError::invalid(
                "FAILBACK_HEALTHY_CHECKS",
                &healthy_checks.to_string(),
                "a whole number from 1 to 1000",
            ));
        }
        let optional_name = |var: &str, what: &str, expected: &str, length| match env.optional(var) {
            None => Ok(None),
            Some(_) => env.resource_name(var, what, length, expected).map(Some),
        };
        Ok(Self {
            healthy_checks,
            max_replica_lag_seconds: env
                .seconds("FAILBACK_MAX_REPLICA_LAG_SECONDS", Duration::from_secs(30), 0..=3_600)?
                .as_secs() as f64,
            reprotect_max_wait: env.seconds("REPROTECT_MAX_WAIT_SECONDS", Duration::from_secs(21_600), 60..=172_800)?,
            drain_max_wait: env.seconds("DRAIN_MAX_WAIT_SECONDS", Duration::from_secs(300), 60..=3_600)?,
            instance_class: optional_name(
                "FAILBACK_INSTANCE_CLASS",
                "a DB instance class",
                "a DB instance class such as db.r6g.large",
                1..=64,
            )?,
            primary_placement: Placement::from_env(env, "PRIMARY")?,
            replica_placement: Placement::from_env(env, "REPLICA")?,
            reverse_replicator: optional_name(
                "REVERSE_REPLICATOR_FUNCTION",
                "the reverse stream replicator's Lambda function name",
                "a Lambda function name (1-64 letters, digits, - _)",
                1..=64,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<FailbackConfig, ConfigError> {
        FailbackConfig::from_env(&EnvReader::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_and_bad_values_are_named() {
        let config = read(&[]).unwrap();
        assert_eq!(config.healthy_checks, 10);
        assert_eq!(config.max_replica_lag_seconds, 30.0);
        assert_eq!(config.drain_max_wait, Duration::from_secs(300));
        assert_eq!(config.primary_placement, Placement::default());
        let placed = read(&[
            ("PRIMARY_DB_SUBNET_GROUP", "shop-db-east"),
            ("PRIMARY_KMS_KEY_ID", "arn:aws:kms:us-east-1:123456789012:key/abc-123"),
        ])
        .unwrap();
        assert_eq!(placed.primary_placement.subnet_group.as_deref(), Some("shop-db-east"));
        assert!(placed.primary_placement.kms_key_id.is_some());
        for (var, value) in [
            ("FAILBACK_HEALTHY_CHECKS", "0"),
            ("FAILBACK_HEALTHY_CHECKS", "many"),
            ("DRAIN_MAX_WAIT_SECONDS", "5"),
            ("REPLICA_DB_PARAMETER_GROUP", "a;b"),
            ("PRIMARY_KMS_KEY_ID", "key $(reboot)"),
            ("FAILBACK_INSTANCE_CLASS", "db r6g"),
            ("REVERSE_REPLICATOR_FUNCTION", "f`x`"),
        ] {
            let err = read(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={value}: {err}");
        }
    }
}
