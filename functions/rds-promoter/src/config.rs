//! rds-promoter configuration, read once from the environment at start.

use std::time::Duration;

use failover_core::alarm::AlarmPolicy;
use failover_core::parameters::ParameterNames;
use failover_core::{ConfigError, EnvReader, Region};

use crate::domain::FenceMode;
use failover_core::evidence::QuorumRule;

const ANYWAY_EXPECTED: &str = "a whole number of minutes from 0 (never) to 10080 (a week)";

/// The replica to promote, named by id or ARN in configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRef {
    /// The instance identifier.
    pub id: String,
    /// Its region.
    pub region: Region,
}

/// Everything the function needs, validated.
#[derive(Debug, Clone)]
pub struct PromoterConfig {
    /// The read replica in the secondary region.
    pub replica: ReplicaRef,
    /// The primary region, where the replica's source lives (for the split-brain guard).
    pub source_region: Region,
    /// Which alarms may trigger a promotion.
    pub policy: AlarmPolicy,
    /// Alarms trusted to prove on their own that the primary is gone.
    pub authoritative_alarms: Vec<String>,
    /// Check the source primary before promoting.
    pub split_brain_guard: bool,
    /// How long the source's region may take to answer.
    pub source_probe_timeout: Duration,
    /// `BackupRetentionPeriod` set on the promoted instance.
    pub backup_retention_days: i32,
    /// Upper bound of the wait for the instance to become writable, per invocation.
    pub max_wait: Duration,
    /// First and longest pause between status polls.
    pub poll_initial: Duration,
    /// Longest pause between status polls.
    pub poll_max: Duration,
    /// Check everything, change nothing.
    pub dry_run: bool,
    /// Where the endpoint and active region are published.
    pub parameters: ParameterNames,
    /// The DynamoDB state table holding the failover lock (in the replica's region).
    pub state_table: String,
    /// How the old primary database is fenced once the replica is writable.
    pub fence_mode: FenceMode,
    /// The forward stream replicator in the primary region, whose event source mappings
    /// the fence pauses; `None` when the shop replicates no DynamoDB table this way.
    pub forward_replicator: Option<String>,
    /// How long the region-switch plan waits for the promoted replica to become writable,
    /// from PromoteReadReplica on, across all its checks.
    pub promotion_max_wait: Duration,
    /// The replica gate's limit: a replica further behind is not promoted without an override.
    pub max_replica_lag_seconds: f64,
    /// Past this long since the alarm fired, the replica gate lets a broken or lagging
    /// replica be promoted (`None`: only the operator's override does).
    pub promote_anyway_after: Option<Duration>,
    /// Alarms whose evidence is health-monitor's: the decide step re-reads the monitors'
    /// observations and promotes only on their quorum.
    pub quorum_alarms: Vec<String>,
    /// The witness monitor's region (`None`: no witness deployed).
    pub witness_region: Option<Region>,
    /// The quorum rule the decide step applies to the observations.
    pub quorum_rule: QuorumRule,
    /// The failback plan's settings.
    pub failback: crate::failback_config::FailbackConfig,
}

impl PromoterConfig {
    /// Reads and validates every variable; the first problem names its variable.
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        let replica_region = env.region("REPLICA_REGION")?;
        let replica = parse_replica(
            env.required("REPLICA_IDENTIFIER", "the read replica's DB instance id or ARN")?,
            &replica_region,
        )?;
        let source_region = env.region("PRIMARY_REGION")?;
        if source_region == replica.region {
            return Err(ConfigError::Inconsistent {
                vars: "PRIMARY_REGION, REPLICA_REGION".into(),
                problem: format!("both are {source_region}; the replica must be in another region than its source"),
            });
        }
        let retention = env.parsed_or("BACKUP_RETENTION_DAYS", 7i32, "a number of days from 1 to 35")?;
        if !(1..=35).contains(&retention) {
            return Err(ConfigError::invalid(
                "BACKUP_RETENTION_DAYS",
                &retention.to_string(),
                "a number of days from 1 to 35",
            ));
        }
        let witness_region = env
            .optional("WITNESS_REGION")
            .map(|_| env.region("WITNESS_REGION"))
            .transpose()?;
        if let Some(witness) = witness_region
            .as_ref()
            .filter(|w| **w == source_region || **w == replica.region)
        {
            return Err(ConfigError::Inconsistent {
                vars: "WITNESS_REGION, PRIMARY_REGION, REPLICA_REGION".into(),
                problem: format!("the witness must watch from a third region, not {witness}"),
            });
        }
        let poll_initial = Duration::from_millis(
            env.parsed_or("POLL_INITIAL_MS", 2_000u64, "milliseconds")?
                .clamp(10, 60_000),
        );
        let poll_max = Duration::from_millis(
            env.parsed_or("POLL_MAX_MS", 20_000u64, "milliseconds")?
                .clamp(10, 120_000),
        );
        Ok(Self {
            replica,
            source_region,
            policy: AlarmPolicy::from_env(env)?,
            authoritative_alarms: env.list("AUTHORITATIVE_ALARMS"),
            split_brain_guard: env.flag("SPLIT_BRAIN_GUARD", true)?,
            source_probe_timeout: env.seconds("SOURCE_PROBE_TIMEOUT_SECONDS", Duration::from_secs(5), 1..=60)?,
            backup_retention_days: retention,
            max_wait: env.seconds("MAX_WAIT_SECONDS", Duration::from_secs(840), 1..=900)?,
            poll_initial,
            poll_max: poll_max.max(poll_initial),
            dry_run: env.flag("DRY_RUN", false)?,
            parameters: ParameterNames::new(
                "PARAMETER_PREFIX",
                env.required("PARAMETER_PREFIX", "a Parameter Store path such as /shop/failover")?,
            )?,
            state_table: env.table_name("STATE_TABLE", "the DynamoDB state table name")?,
            fence_mode: match env.optional("FENCE_DATABASE") {
                None => FenceMode::Stop,
                Some(raw) => FenceMode::parse(raw)
                    .ok_or_else(|| ConfigError::invalid("FENCE_DATABASE", raw, "stop, rename or none"))?,
            },
            forward_replicator: match env.optional("FORWARD_REPLICATOR_FUNCTION") {
                None => None,
                Some(_) => Some(env.resource_name(
                    "FORWARD_REPLICATOR_FUNCTION",
                    "the forward stream replicator's Lambda function name",
                    1..=64,
                    "a Lambda function name (1-64 letters, digits, - _)",
                )?),
            },
            promotion_max_wait: env.seconds("PROMOTION_MAX_WAIT_SECONDS", Duration::from_secs(3_600), 60..=86_400)?,
            max_replica_lag_seconds: env
                .seconds("MAX_REPLICA_LAG_SECONDS", Duration::from_secs(120), 0..=86_400)?
                .as_secs() as f64,
            promote_anyway_after: match env.parsed_or("PROMOTE_ANYWAY_AFTER_MINUTES", 0u64, ANYWAY_EXPECTED)? {
                0 => None,
                minutes if minutes <= 10_080 => Some(Duration::from_secs(minutes * 60)),
                minutes => {
                    return Err(ConfigError::invalid(
                        "PROMOTE_ANYWAY_AFTER_MINUTES",
                        &minutes.to_string(),
                        ANYWAY_EXPECTED,
                    ))
                }
            },
            quorum_alarms: env.list("QUORUM_ALARMS"),
            quorum_rule: QuorumRule {
                failures: env
                    .parsed_or("FAILURE_THRESHOLD", 3u32, "a whole number from 1 to 100")?
                    .clamp(1, 100),
                max_age_ms: env
                    .seconds("EVIDENCE_MAX_AGE_SECONDS", Duration::from_secs(120), 10..=3_600)?
                    .as_millis() as i64,
                witness_required: witness_region.is_some(),
            },
            witness_region,
            failback: crate::failback_config::FailbackConfig::from_env(env)?,
        })
    }

    /// The operator's override of the replica gate: its value is the reason.
    pub fn promote_override_parameter(&self) -> String {
        format!("{}/promote-override", self.parameters.prefix())
    }

    /// The health-monitor state item (the decider's observation) of this region pair.
    pub fn health_state_key(&self) -> String {
        format!("health#{}#{}", self.source_region, self.replica.region)
    }

    /// The item of the observer in `observer`, beside the health state.
    pub fn observation_key(&self, observer: &Region) -> String {
        format!("{}#observer#{observer}", self.health_state_key())
    }

    /// True when the decide step must find health-monitor's quorum for `alarm_name`.
    pub fn needs_quorum(&self, alarm_name: &str) -> bool {
        self.quorum_alarms.iter().any(|a| a == alarm_name)
    }

    /// True when `alarm_name` alone proves the primary is lost.
    pub fn is_authoritative(&self, alarm_name: &str) -> bool {
        self.authoritative_alarms.iter().any(|a| a == alarm_name)
    }
}

/// Accepts `shop-db-replica` or `arn:aws:rds:<region>:<account>:db:shop-db-replica`;
/// an ARN's region must agree with `REPLICA_REGION`.
fn parse_replica(raw: &str, region: &Region) -> Result<ReplicaRef, ConfigError> {
    let expected = "a DB instance id (letters, digits, hyphens; starts with a letter) or its arn:aws:rds:<region>:<account>:db:<id> ARN";
    let id = if raw.starts_with("arn:") {
        let parts: Vec<&str> = raw.split(':').collect();
        if parts.len() != 7 || parts[2] != "rds" || parts[5] != "db" {
            return Err(ConfigError::invalid("REPLICA_IDENTIFIER", raw, expected));
        }
        if parts[3] != region.as_str() {
            return Err(ConfigError::Inconsistent {
                vars: "REPLICA_IDENTIFIER, REPLICA_REGION".into(),
                problem: format!("the ARN is in {} but REPLICA_REGION is {region}", parts[3]),
            });
        }
        parts[6]
    } else {
        raw
    };
    let valid = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !id.ends_with('-')
        && !id.contains("--");
    if !valid {
        return Err(ConfigError::invalid("REPLICA_IDENTIFIER", raw, expected));
    }
    Ok(ReplicaRef {
        id: id.to_owned(),
        region: region.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("REPLICA_IDENTIFIER", "shop-db-replica"),
            ("REPLICA_REGION", "us-west-2"),
            ("PRIMARY_REGION", "us-east-1"),
            ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
            ("PARAMETER_PREFIX", "/shop/failover"),
            ("STATE_TABLE", "shop-failover-state"),
        ]
    }

    fn with(overrides: &[(&'static str, &'static str)]) -> Result<PromoterConfig, ConfigError> {
        let mut vars = base();
        vars.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        vars.extend(overrides.iter().filter(|(_, v)| !v.is_empty()));
        PromoterConfig::from_env(&EnvReader::from_pairs(vars))
    }

    #[test]
    fn defaults_are_safe() {
        let config = with(&[]).unwrap();
        assert_eq!(
            config.replica,
            ReplicaRef {
                id: "shop-db-replica".into(),
                region: Region::new("us-west-2").unwrap()
            }
        );
        assert!(config.split_brain_guard);
        assert!(!config.dry_run);
        assert_eq!(config.backup_retention_days, 7);
        assert_eq!(config.max_wait, Duration::from_secs(840));
        assert!(!config.is_authoritative("shop-failover-x"));
    }

    #[test]
    fn replica_arn_is_accepted_when_its_region_matches() {
        let config = with(&[(
            "REPLICA_IDENTIFIER",
            "arn:aws:rds:us-west-2:123456789012:db:shop-db-replica",
        )])
        .unwrap();
        assert_eq!(config.replica.id, "shop-db-replica");
        let err = with(&[(
            "REPLICA_IDENTIFIER",
            "arn:aws:rds:eu-west-1:123456789012:db:shop-db-replica",
        )])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("the ARN is in eu-west-1 but REPLICA_REGION is us-west-2"),
            "{err}"
        );
    }

    #[test]
    fn each_missing_or_bad_variable_is_named() {
        for (var, value, needle) in [
            (
                "REPLICA_IDENTIFIER",
                "",
                "missing environment variable REPLICA_IDENTIFIER",
            ),
            (
                "REPLICA_IDENTIFIER",
                "db;reboot",
                "invalid environment variable REPLICA_IDENTIFIER",
            ),
            ("REPLICA_REGION", "", "missing environment variable REPLICA_REGION"),
            ("PRIMARY_REGION", "us-west-2", "PRIMARY_REGION, REPLICA_REGION"),
            ("STATE_TABLE", "x", "invalid environment variable STATE_TABLE"),
            (
                "PARAMETER_PREFIX",
                "shop",
                "invalid environment variable PARAMETER_PREFIX",
            ),
            ("BACKUP_RETENTION_DAYS", "0", "BACKUP_RETENTION_DAYS"),
            ("MAX_WAIT_SECONDS", "3600", "MAX_WAIT_SECONDS"),
            ("SPLIT_BRAIN_GUARD", "perhaps", "SPLIT_BRAIN_GUARD"),
            (
                "ALLOWED_ALARM_PREFIXES",
                "",
                "ALLOWED_ALARM_NAMES or ALLOWED_ALARM_PREFIXES",
            ),
        ] {
            let err = with(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(needle), "{var}={value:?}: {err}");
        }
    }
}
