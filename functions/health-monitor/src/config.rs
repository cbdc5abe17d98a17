//! health-monitor configuration, read once from the environment at start.

use std::time::Duration;

use crate::domain::Thresholds;
use failover_core::evidence::QuorumRule;
use failover_core::parameters::ParameterNames;
use failover_core::{ConfigError, EnvReader, Region, RegionPair};

/// What this deployment of the monitor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserverRole {
    /// Runs in the secondary region: keeps the health state, combines its checks with the
    /// witness's by the quorum rule, decides.
    Decider {
        /// The witness's region, whose observation confirms an outage (`None`: no witness
        /// deployed; one vantage point, and the report says so).
        witness: Option<Region>,
    },
    /// Runs in a third region: checks both regions and saves its observation for the
    /// decider; decides nothing, publishes nothing.
    Witness,
}

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
    /// Attempts of each heartbeat call within the check timeout (a down answer is retried).
    pub heartbeat_attempts: u32,
    /// The region this monitor runs in (its vantage point).
    pub observer: Region,
    /// Decider or witness.
    pub role: ObserverRole,
    /// Time between two check rounds of one scheduled invocation.
    pub check_interval: Duration,
    /// A scheduled invocation starts rounds until this long after its first (so one
    /// invocation a minute checks every `check_interval`).
    pub run_for: Duration,
}

impl MonitorConfig {
    /// Reads and validates every variable; the first problem names its variable.
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        let regions = RegionPair::from_env(env)?;
        let failover_after = env.whole_number("FAILURE_THRESHOLD", 3, 1..=100)?;
        let failback_after = env.whole_number("FAILBACK_THRESHOLD", 10, 1..=1000)?;
        let timeout_ms = env.parsed_or("CHECK_TIMEOUT_MS", 2_000u64, "milliseconds from 100 to 20000")?;
        if !(100..=20_000).contains(&timeout_ms) {
            return Err(ConfigError::invalid(
                "CHECK_TIMEOUT_MS",
                &timeout_ms.to_string(),
                "milliseconds from 100 to 20000",
            ));
        }
        let heartbeat_attempts = env.whole_number("HEARTBEAT_ATTEMPTS", 3, 1..=5)?;
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
        let observer = match env.optional("OBSERVER_REGION") {
            Some(_) => env.region("OBSERVER_REGION")?,
            None => regions.secondary.clone(),
        };
        let witness = env
            .optional("WITNESS_REGION")
            .map(|_| env.region("WITNESS_REGION"))
            .transpose()?;
        let role = if observer == regions.secondary {
            if let Some(witness) = witness.as_ref().filter(|w| regions.other(w).is_some()) {
                return Err(ConfigError::Inconsistent {
                    vars: "WITNESS_REGION, PRIMARY_REGION, SECONDARY_REGION".into(),
                    problem: format!("the witness must watch from a third region, not {witness}"),
                });
            }
            ObserverRole::Decider { witness }
        } else if observer == regions.primary {
            return Err(ConfigError::Inconsistent {
                vars: "OBSERVER_REGION, PRIMARY_REGION".into(),
                problem: format!(
                    "{observer} is the primary region: a monitor there cannot tell the primary is down; run the decider in SECONDARY_REGION and the witness in a third region"
                ),
            });
        } else {
            ObserverRole::Witness
        };
        let check_interval = env.seconds("CHECK_INTERVAL_SECONDS", Duration::from_secs(10), 1..=60)?;
        let run_for = env.seconds("RUN_SECONDS", Duration::from_secs(50), 0..=840)?;
        if check_interval < Duration::from_millis(timeout_ms) {
            return Err(ConfigError::Inconsistent {
                vars: "CHECK_INTERVAL_SECONDS, CHECK_TIMEOUT_MS".into(),
                problem: format!(
                    "a round may take the check timeout ({timeout_ms} ms); checks every {} s would overlap",
                    check_interval.as_secs()
                ),
            });
        }
        Ok(Self {
            observer,
            role,
            check_interval,
            run_for,
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
            heartbeat_attempts,
            regions,
        })
    }

    /// The state item key: one state per region pair.
    pub fn state_key(&self) -> String {
        format!("health#{}#{}", self.regions.primary, self.regions.secondary)
    }

    /// The item where the observer in `observer` saves its observation, beside the state.
    pub fn observation_key(&self, observer: &Region) -> String {
        format!("{}#observer#{observer}", self.state_key())
    }

    /// The quorum rule: N consecutive failures from each observer, observations at most
    /// three check intervals (and two check timeouts) old, a witness where one is deployed.
    pub fn quorum_rule(&self) -> QuorumRule {
        QuorumRule {
            failures: self.thresholds.failover_after,
            max_age_ms: (3 * self.check_interval + 2 * self.check_timeout).as_millis() as i64,
            witness_required: matches!(self.role, ObserverRole::Decider { witness: Some(_) }),
        }
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
        assert_eq!(config.heartbeat_attempts, 3);
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
            ("HEARTBEAT_ATTEMPTS", "0", "HEARTBEAT_ATTEMPTS"),
            ("HEARTBEAT_ATTEMPTS", "9", "HEARTBEAT_ATTEMPTS"),
            ("STATE_REGION", "eu-west-1", "neither the primary nor the secondary"),
            ("HEARTBEAT_TABLE", "", "HEARTBEAT_TABLE"),
            ("AUTO_FAILBACK", "sometimes", "AUTO_FAILBACK"),
        ] {
            let err = with(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(needle), "{var}={value:?}: {err}");
        }
    }
}
