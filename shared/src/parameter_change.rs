//! The EventBridge "Parameter Store Change" event, emitted when a parameter is written.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use crate::region::Region;

/// The EventBridge `detail-type` of Parameter Store changes.
pub const PARAMETER_STORE_CHANGE: &str = "Parameter Store Change";

/// A parameter that was created, updated, deleted or labelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterChange {
    /// Full parameter name, e.g. `/shop/failover/active-region`.
    pub name: String,
    /// `Create`, `Update`, `Delete`, `LabelParameterVersion`.
    pub operation: String,
    /// Region whose Parameter Store changed.
    pub region: Region,
}

#[derive(Debug, Deserialize, Serialize)]
struct Detail {
    name: String,
    operation: String,
}

/// Why an event is not a usable Parameter Store change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Parameter Store Change event: {0}")]
pub struct ParameterChangeError(String);

impl ParameterChange {
    /// Parses an EventBridge Parameter Store Change event.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ParameterChangeError> {
        let event: EventBridgeEvent<serde_json::Value> =
            serde_json::from_value(value).map_err(|e| ParameterChangeError(e.to_string()))?;
        if event.detail_type != PARAMETER_STORE_CHANGE {
            return Err(ParameterChangeError(format!(
                "detail-type is {:?}",
                event.detail_type.chars().take(80).collect::<String>()
            )));
        }
        let detail: Detail =
            serde_json::from_value(event.detail).map_err(|e| ParameterChangeError(format!("detail: {e}")))?;
        let region = event
            .region
            .as_deref()
            .ok_or_else(|| ParameterChangeError("no region".into()))
            .and_then(|r| Region::new(r).map_err(|e| ParameterChangeError(e.to_string())))?;
        Ok(Self {
            name: detail.name,
            operation: detail.operation,
            region,
        })
    }

    /// True when the parameter lies under `prefix` (a path such as `/shop/failover`).
    pub fn is_under(&self, prefix: &str) -> bool {
        let prefix = prefix.trim_end_matches('/');
        self.name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(detail_type: &str) -> serde_json::Value {
        json!({
            "version": "0", "id": "1", "detail-type": detail_type, "source": "aws.ssm",
            "account": "123456789012", "time": "2026-11-21T03:01:00Z", "region": "us-west-2",
            "resources": ["arn:aws:ssm:us-west-2:123456789012:parameter/shop/failover/db-endpoint"],
            "detail": {"operation": "Update", "name": "/shop/failover/db-endpoint", "type": "String", "description": ""}
        })
    }

    #[test]
    fn parses_and_matches_prefix_on_path_boundaries() {
        let change = ParameterChange::from_value(event(PARAMETER_STORE_CHANGE)).unwrap();
        assert_eq!(change.operation, "Update");
        assert_eq!(change.region.as_str(), "us-west-2");
        assert!(change.is_under("/shop/failover"));
        assert!(change.is_under("/shop/failover/"));
        assert!(!change.is_under("/shop/fail"));
    }

    #[test]
    fn rejects_other_detail_types() {
        let err = ParameterChange::from_value(event("Scheduled Event")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a Parameter Store Change event: detail-type is \"Scheduled Event\""
        );
    }
}
