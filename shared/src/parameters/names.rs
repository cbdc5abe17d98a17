//! The Parameter Store names the failover publishes and env-rewriter and health-monitor read.

use crate::config::ConfigError;

/// Parameter names under one validated path prefix, e.g. `/shop/failover`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterNames {
    prefix: String,
}

/// The values a completed failover publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedValues {
    /// Writable database endpoint address.
    pub db_host: String,
    /// Its port.
    pub db_port: u16,
    /// The region now serving the shop.
    pub active_region: String,
}

impl ParameterNames {
    /// Validates `prefix`: an absolute path of 1–10 segments of letters, digits, `_`, `.`, `-`.
    pub fn new(var: &str, prefix: &str) -> Result<Self, ConfigError> {
        let expected = "a Parameter Store path such as /shop/failover (segments of letters, digits, _ . -)";
        let trimmed = prefix.trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
        let valid = trimmed.starts_with('/')
            && trimmed.len() <= 200
            && (1..=10).contains(&segments.len())
            && segments.iter().all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            })
            && !segments[0].to_ascii_lowercase().starts_with("aws")
            && !segments[0].to_ascii_lowercase().starts_with("ssm");
        if valid {
            Ok(Self {
                prefix: trimmed.to_owned(),
            })
        } else {
            Err(ConfigError::invalid(var, prefix, expected))
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The writable database host.
    pub fn db_host(&self) -> String {
        format!("{}/db-host", self.prefix)
    }

    /// The database port.
    pub fn db_port(&self) -> String {
        format!("{}/db-port", self.prefix)
    }

    /// The region serving the shop.
    pub fn active_region(&self) -> String {
        format!("{}/active-region", self.prefix)
    }

    /// Name/value pairs in publishing order: the database first, the active region last,
    /// because readers treat a change of active region as "the failover is complete".
    pub fn pairs(&self, values: &PublishedValues) -> Vec<(String, String)> {
        vec![
            (self.db_host(), values.db_host.clone()),
            (self.db_port(), values.db_port.to_string()),
            (self.active_region(), values.active_region.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        let names = ParameterNames::new("PARAMETER_PREFIX", "/shop/failover/").unwrap();
        let pairs = names.pairs(&PublishedValues {
            db_host: "db.example".into(),
            db_port: 3306,
            active_region: "us-west-2".into(),
        });
        assert_eq!(
            pairs,
            vec![
                ("/shop/failover/db-host".to_string(), "db.example".to_string()),
                ("/shop/failover/db-port".to_string(), "3306".to_string()),
                ("/shop/failover/active-region".to_string(), "us-west-2".to_string()),
            ]
        );
    }

    #[test]
    fn rejects_invalid_prefixes() {
        for bad in [
            "shop",
            "/",
            "//x",
            "/shop//x",
            "/shop/fail over",
            "/aws/x",
            "/ssm",
            "/shop/$(id)",
        ] {
            let err = ParameterNames::new("PARAMETER_PREFIX", bad).unwrap_err();
            assert!(err.to_string().contains("PARAMETER_PREFIX"), "{bad}");
        }
    }
}
