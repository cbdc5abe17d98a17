//! Typed configuration read from environment variables once, at init.
//!
//! Every function reads its settings through [`EnvReader`], so a missing or malformed
//! variable stops the function at start with a message naming the variable and what was
//! expected, instead of failing later in the middle of a failover.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use crate::region::Region;

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or is empty).
    #[error("missing environment variable {var}: expected {expected}")]
    Missing {
        /// The variable name.
        var: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// A variable is set but its value is not acceptable.
    #[error("invalid environment variable {var}={value:?}: expected {expected}")]
    Invalid {
        /// The variable name.
        var: String,
        /// The rejected value, truncated.
        value: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// Several variables are individually valid but contradict each other.
    #[error("inconsistent configuration ({vars}): {problem}")]
    Inconsistent {
        /// The variables involved, comma separated.
        vars: String,
        /// What is wrong with the combination.
        problem: String,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] with the value truncated for safe logging.
    pub fn invalid(var: &str, value: &str, expected: impl Into<String>) -> Self {
        Self::Invalid {
            var: var.to_owned(),
            value: value.chars().take(80).collect(),
            expected: expected.into(),
        }
    }
}

/// Reads variables from a snapshot of the environment (the process's, or a map in tests).
#[derive(Debug, Clone, Default)]
pub struct EnvReader {
    vars: HashMap<String, String>,
}

impl EnvReader {
    /// Snapshot of the process environment; call once at init.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// A reader over explicit pairs, for tests and tools.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// The trimmed value, or `None` when unset or blank.
    pub fn optional(&self, var: &str) -> Option<&str> {
        self.vars.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A value that must be present.
    pub fn required(&self, var: &str, expected: &str) -> Result<&str, ConfigError> {
        self.optional(var).ok_or_else(|| ConfigError::Missing {
            var: var.to_owned(),
            expected: expected.to_owned(),
        })
    }

    /// A required value parsed with [`FromStr`].
    pub fn required_parsed<T: FromStr>(&self, var: &str, expected: &str) -> Result<T, ConfigError> {
        let raw = self.required(var, expected)?;
        raw.parse().map_err(|_| ConfigError::invalid(var, raw, expected))
    }

    /// An optional value parsed with [`FromStr`], falling back to `default` when unset.
    pub fn parsed_or<T: FromStr>(&self, var: &str, default: T, expected: &str) -> Result<T, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| ConfigError::invalid(var, raw, expected)),
        }
    }

    /// A required AWS region name.
    pub fn region(&self, var: &str) -> Result<Region, ConfigError> {
        self.required_parsed(var, "an AWS region name such as us-east-1")
    }

    /// A boolean flag: `true/false`, `1/0`, `yes/no` (any case); `default` when unset.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => parse_flag(raw).ok_or_else(|| ConfigError::invalid(var, raw, "true or false")),
        }
    }

    /// A whole number within `range`; `default` when unset.
    pub fn whole_number(
        &self,
        var: &str,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<u32, ConfigError> {
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => match raw.parse::<u32>() {
                Ok(number) if range.contains(&number) => Ok(number),
                _ => Err(ConfigError::invalid(var, raw, expected)),
            },
        }
    }

    /// A duration in whole seconds within `range`; `default` when unset.
    pub fn seconds(
        &self,
        var: &str,
        default: Duration,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let expected = format!("a whole number of seconds from {} to {}", range.start(), range.end());
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => match raw.parse::<u64>() {
                Ok(secs) if range.contains(&secs) => Ok(Duration::from_secs(secs)),
                _ => Err(ConfigError::invalid(var, raw, expected)),
            },
        }
    }

    /// A comma-separated list with blanks removed; empty when unset.
    pub fn list(&self, var: &str) -> Vec<String> {
        self.optional(var)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A required DynamoDB table name; `what` says which table, for the missing-variable message.
    pub fn table_name(&self, var: &str, what: &str) -> Result<String, ConfigError> {
        self.resource_name(
            var,
            what,
            3..=255,
            "a DynamoDB table name (3-255 letters, digits, _ - .)",
        )
    }

    /// A required AWS resource name of `length` characters drawn from letters, digits, `_`,
    /// `-` and `.` (the alphabet shared by DynamoDB tables and SSM documents).
    pub fn resource_name(
        &self,
        var: &str,
        what: &str,
        length: std::ops::RangeInclusive<usize>,
        expected: &str,
    ) -> Result<String, ConfigError> {
        let raw = self.required(var, what)?;
        let valid = length.contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if valid {
            Ok(raw.to_owned())
        } else {
            Err(ConfigError::invalid(var, raw, expected))
        }
    }
}

fn parse_flag(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The two regions of a failover pair, checked to be distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionPair {
    /// Where the shop normally runs.
    pub primary: Region,
    /// Where it fails over to.
    pub secondary: Region,
}

impl RegionPair {
    /// Reads `PRIMARY_REGION` and `SECONDARY_REGION`.
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        let primary = env.region("PRIMARY_REGION")?;
        let secondary = env.region("SECONDARY_REGION")?;
        if primary == secondary {
            return Err(ConfigError::Inconsistent {
                vars: "PRIMARY_REGION, SECONDARY_REGION".into(),
                problem: format!("both are {primary}; a failover pair needs two different regions"),
            });
        }
        Ok(Self { primary, secondary })
    }

    /// The other region of the pair, or `None` if `region` is not part of it.
    pub fn other(&self, region: &Region) -> Option<&Region> {
        if region == &self.primary {
            Some(&self.secondary)
        } else if region == &self.secondary {
            Some(&self.primary)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn missing_variable_is_named_with_expectation() {
        let err = env(&[]).required("STATE_TABLE", "a DynamoDB table name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing environment variable STATE_TABLE: expected a DynamoDB table name"
        );
    }

    #[test]
    fn table_names_are_checked_against_dynamodb_rules() {
        let e = env(&[
            ("OK", "shop-failover.state_1"),
            ("SHORT", "ab"),
            ("SPACE", "shop state"),
        ]);
        assert_eq!(e.table_name("OK", "t").unwrap(), "shop-failover.state_1");
        for var in ["SHORT", "SPACE"] {
            let err = e.table_name(var, "t").unwrap_err().to_string();
            assert!(err.contains(var) && err.contains("a DynamoDB table name"), "{err}");
        }
        assert!(matches!(e.table_name("UNSET", "t"), Err(ConfigError::Missing { .. })));
    }

    #[test]
    fn whole_numbers_are_checked_against_their_range() {
        let e = env(&[("IN", "4"), ("OUT", "9"), ("WORD", "three")]);
        assert_eq!(e.whole_number("IN", 3, 1..=5).unwrap(), 4);
        assert_eq!(e.whole_number("UNSET", 3, 1..=5).unwrap(), 3);
        for var in ["OUT", "WORD"] {
            let err = e.whole_number(var, 3, 1..=5).unwrap_err().to_string();
            assert!(err.contains(var) && err.contains("a whole number from 1 to 5"), "{err}");
        }
    }

    #[test]
    fn blank_counts_as_missing() {
        assert!(matches!(
            env(&[("X", "   ")]).required("X", "x"),
            Err(ConfigError::Missing { .. })
        ));
    }

    #[test]
    fn malformed_values_name_variable_value_and_expectation() {
        let e = env(&[
            ("MAX_WAIT_SECONDS", "ten"),
            ("DRY_RUN", "maybe"),
            ("PRIMARY_REGION", "mars"),
        ]);
        let err = e
            .seconds("MAX_WAIT_SECONDS", Duration::from_secs(5), 1..=900)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid environment variable MAX_WAIT_SECONDS=\"ten\": expected a whole number of seconds from 1 to 900"
        );
        assert!(e
            .flag("DRY_RUN", false)
            .unwrap_err()
            .to_string()
            .contains("DRY_RUN=\"maybe\": expected true or false"));
        assert!(e
            .region("PRIMARY_REGION")
            .unwrap_err()
            .to_string()
            .contains("PRIMARY_REGION=\"mars\""));
    }

    #[test]
    fn out_of_range_seconds_rejected_and_defaults_apply() {
        let e = env(&[("WAIT", "0")]);
        assert!(e.seconds("WAIT", Duration::from_secs(5), 1..=900).is_err());
        assert_eq!(
            e.seconds("OTHER", Duration::from_secs(5), 1..=900).unwrap(),
            Duration::from_secs(5)
        );
        assert!(e.flag("OTHER", true).unwrap());
    }

    #[test]
    fn lists_are_trimmed_and_blank_items_dropped() {
        assert_eq!(env(&[("A", " a, ,b ,c,")]).list("A"), vec!["a", "b", "c"]);
        assert!(env(&[]).list("A").is_empty());
    }

    #[test]
    fn hostile_values_are_truncated_in_errors() {
        let long = "x".repeat(500);
        let err = env(&[("N", long.as_str())])
            .required_parsed::<u32>("N", "a number")
            .unwrap_err();
        assert!(err.to_string().len() < 200);
    }

    #[test]
    fn region_pair_must_differ() {
        let same = env(&[("PRIMARY_REGION", "us-east-1"), ("SECONDARY_REGION", "us-east-1")]);
        assert!(RegionPair::from_env(&same)
            .unwrap_err()
            .to_string()
            .contains("two different regions"));
        let pair = RegionPair::from_env(&env(&[
            ("PRIMARY_REGION", "us-east-1"),
            ("SECONDARY_REGION", "us-west-2"),
        ]))
        .unwrap();
        assert_eq!(pair.other(&pair.primary), Some(&pair.secondary));
        assert_eq!(pair.other(&Region::new("eu-west-1").unwrap()), None);
    }
}
