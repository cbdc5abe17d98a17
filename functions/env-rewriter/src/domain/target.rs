//! Where the app servers must point after a switch.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::db_host::DbHost;
use failover_core::parameters::ParameterNames;
use failover_core::Region;

/// The region the app must use and, when the database moved, its new host and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewriteTarget {
    /// Region for AWS_REGION / DYNAMODB_REGION.
    pub region: Region,
    /// New database host; `None` leaves the database setting alone (region-only switch).
    pub db_host: Option<DbHost>,
    /// New database port, when known.
    pub db_port: Option<u16>,
    /// Maintenance mode to switch to; `None` leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

/// Maintenance mode of the shop on the commanded servers: the fence and failback's write
/// freeze turn it on, the end of a failback turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Maintenance {
    /// The shop answers with its maintenance page and takes no orders.
    On,
    /// The shop serves.
    Off,
}

impl Maintenance {
    /// The document's `maintenance` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
        }
    }
}

impl RewriteTarget {
    /// Reads the target from the published parameters (`values` keyed by full name).
    /// The active region is required; host and port are optional but validated.
    pub fn from_parameters(names: &ParameterNames, values: &HashMap<String, String>) -> Result<Self, String> {
        let region_name = names.active_region();
        let region = values
            .get(&region_name)
            .ok_or_else(|| format!("parameter {region_name} is not set"))?;
        let region = Region::new(region).map_err(|e| format!("parameter {region_name}: {e}"))?;
        let db_host = values
            .get(&names.db_host())
            .map(|h| DbHost::new(h).map_err(|e| format!("parameter {}: {e}", names.db_host())))
            .transpose()?;
        let db_port = values
            .get(&names.db_port())
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("parameter {}: {p:?} is not a port number", names.db_port()))
            })
            .transpose()?;
        Ok(Self {
            region,
            db_host,
            db_port,
            maintenance: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ParameterNames {
        ParameterNames::new("PARAMETER_PREFIX", "/shop/failover").unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("/shop/failover/{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_region_host_and_port() {
        let target = RewriteTarget::from_parameters(
            &names(),
            &values(&[
                ("active-region", "us-west-2"),
                ("db-host", "db.example"),
                ("db-port", "3307"),
            ]),
        )
        .unwrap();
        assert_eq!(target.region.as_str(), "us-west-2");
        assert_eq!(target.db_host.unwrap().as_str(), "db.example");
        assert_eq!(target.db_port, Some(3307));
    }

    #[test]
    fn region_only_when_no_database_parameters() {
        let target = RewriteTarget::from_parameters(&names(), &values(&[("active-region", "us-west-2")])).unwrap();
        assert_eq!((target.db_host, target.db_port), (None, None));
    }

    #[test]
    fn bad_values_are_named() {
        let err = RewriteTarget::from_parameters(&names(), &values(&[])).unwrap_err();
        assert_eq!(err, "parameter /shop/failover/active-region is not set");
        let err = RewriteTarget::from_parameters(
            &names(),
            &values(&[("active-region", "us-west-2"), ("db-host", "db;reboot")]),
        )
        .unwrap_err();
        assert!(err.starts_with("parameter /shop/failover/db-host:"), "{err}");
        let err = RewriteTarget::from_parameters(
            &names(),
            &values(&[("active-region", "us-west-2"), ("db-port", "99999")]),
        )
        .unwrap_err();
        assert!(err.contains("is not a port number"), "{err}");
    }
}
