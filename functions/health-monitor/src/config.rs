//! health-monitor configuration, read once from the environment at start.

use std::time::Duration;

use crate::domain::Thresholds;
use failover_core::parameters::ParameterNames;
use failover_core::{ConfigError, EnvReader, Region, RegionPair};

/// Everything the function needs, validated.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The home region and the failover region.
    pub regions: RegionPair,
    /// Heartbeat table name (the same in both regions).
    pub heartbeat_table: String,
    /// State table name.
    pub state_table: String,
    /// Region of the state table and of Parameter Store writes (default: the secondary).
    pub state_region: Region,
    /// Where the active region is published, and the failback approval parameter.
    pub parameters: ParameterNames,
    /// N, M and automatic failback.
    pub thresholds: Thresholds,
    /// Per-region check timeout.
    pub check_timeout: Duration,
}

impl MonitorConfig {
    /// Reads and validates every variable; the first problem names its variable.
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        let regions = RegionPair::from_env(env)?;
        let failover_after = env.parsed_or("FAILURE_THRESHOLD", 3u32, "a whole number from 1 to 100")?;
        if !(1..=100).contains(&failover_after) {
            return Err(ConfigError::invalid(
                "FAILURE_THRESHOLD",
                &failover_after.to_string(),
                "a whole number from 1 to 100",
            ));
        }
        let failback_after = env.parsed_or("FAILBACK_THRESHOLD", 10u32, "a whole number from 1 to 1000")?;
        if !(1..=1000).contains(&failback_after) {
            return Err(ConfigError::invalid(
                "FAILBACK_THRESHOLD",
                &failback_after.to_string(),
                "a whole number from 1 to 1000",
            ));
        }
        let timeout_ms = env.parsed_or("CHECK_TIMEOUT_MS", 2_000u64, "milliseconds from 100 to 20000")?;
        if !(100..=20_000).contains(&timeout_ms) {
            return Err(ConfigError::invalid(
                "CHECK_TIMEOUT_MS",
                &timeout_ms.to_string(),
                "milliseconds from 100 to 20000",
            ));
        }
        let state_region = match env.optional("STATE_REGION") {
            Some(_) => env.region("STATE_REGION")?,
            None => regions.secondary.clone(),
        };
        if regions.other(&state_region).is_none() {
            return Err(ConfigError::Inconsistent {
                vars: "STATE_REGION, PRIMARY_REGION, SECONDARY_REGION".into(),
                problem: format!("{state_region} is neither the primary nor the secondary region"),
            });
        }
        Ok(Self {
            heartbeat_table: env.table_name("HEARTBEAT_TABLE", "the heartbeat table name (same in both regions)")?,
            state_table: env.table_name("STATE_TABLE", "the DynamoDB state table name")?,
            state_region,
            parameters: ParameterNames::new(
                "PARAMETER_PREFIX",
                env.required("PARAMETER_PREFIX", "a Parameter Store path such as /shop/failover")?,
            )?,
            thresholds: Thresholds {
                failover_after,
                failback_after,
                auto_failback: env.flag("AUTO_FAILBACK", false)?,
            },
            check_timeout: Duration::from_millis(timeout_ms),
            regions,
        })
    }

    /// The state item key: one state per region pair.
    pub fn state_key(&self) -> String {
        format!("health#{}#{}", self.regions.primary, self.regions.secondary)
    }

    /// The parameter that approves a failback when set to `true`.
    pub fn approval_parameter(&self) -> String {
        format!("{}/failback-approved", self.parameters.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(overrides: &[(&'static str, &'static str)]) -> Result<MonitorConfig, ConfigError> {
        let mut vars = vec![
            ("PRIMARY_REGION", "us-east-1"),
            ("SECONDARY_REGION", "us-west-2"),
            ("HEARTBEAT_TABLE", "shop-heartbeats"),
            ("STATE_TABLE", "shop-failover-state"),
            ("PARAMETER_PREFIX", "/shop/failover"),
        ];
        vars.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        vars.extend(overrides.iter().filter(|(_, v)| !v.is_empty()));
        MonitorConfig::from_env(&EnvReader::from_pairs(vars))
    }

    #[test]
    fn defaults_are_conservative() {
        let config = with(&[]).unwrap();
        assert_eq!(
            config.thresholds,
            Thresholds {
                failover_after: 3,
                failback_after: 10,
                auto_failback: false
            }
        );
        assert_eq!(config.state_region.as_str(), "us-west-2");
        assert_eq!(config.state_key(), "health#us-east-1#us-west-2");
        assert_eq!(config.approval_parameter(), "/shop/failover/failback-approved");
    }

    #[test]
    fn bad_configuration_stops_at_init_with_the_variable_named() {
        for (var, value, needle) in [
            ("SECONDARY_REGION", "", "missing environment variable SECONDARY_REGION"),
            ("SECONDARY_REGION", "us-east-1", "two different regions"),
            ("FAILURE_THRESHOLD", "0", "FAILURE_THRESHOLD"),
            ("FAILBACK_THRESHOLD", "0", "FAILBACK_THRESHOLD"),
            ("CHECK_TIMEOUT_MS", "5", "CHECK_TIMEOUT_MS"),
            ("STATE_REGION", "eu-west-1", "neither the primary nor the secondary"),
            ("HEARTBEAT_TABLE", "", "HEARTBEAT_TABLE"),
            ("AUTO_FAILBACK", "sometimes", "AUTO_FAILBACK"),
        ] {
            let err = with(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(needle), "{var}={value:?}: {err}");
        }
    }
}
