//! The events that make env-rewriter act.

use serde::Deserialize;
use serde_json::Value;

use super::db_host::DbHost;
use super::target::Maintenance;
use failover_core::alarm::AlarmTransition;
use failover_core::parameter_change::{ParameterChange, PARAMETER_STORE_CHANGE};
use failover_core::Region;

/// What asked for a rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteTrigger {
    /// A published parameter changed; the current values are read from Parameter Store.
    ParameterChange {
        /// The parameter and the kind of change.
        change: ParameterChange,
        /// Names this change event the same way on every delivery of it (see
        /// [`parameter_trigger_id`]), for the command comment and the report.
        trigger_id: String,
    },
    /// An alarm transition: a region-only switch to the failover region.
    Alarm(Box<AlarmTransition>),
    /// A manual request, for drills and failback.
    Manual {
        /// Region to point at.
        region: Region,
        /// Database host to point at, if it changes.
        db_host: Option<DbHost>,
        /// Database port, if it changes.
        db_port: Option<u16>,
        /// Maintenance mode to switch to, if any.
        maintenance: Option<Maintenance>,
        /// Whose servers: APP_REGION's (`None`) or FENCE_REGION's, the other fleet.
        fleet_region: Option<Region>,
        /// How the rewrite is carried out and answered.
        mode: RewriteMode,
    },
}

/// How a rewrite is carried out and answered (a manual request sets it; the other
/// triggers run the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteMode {
    /// Only report what would be done.
    pub dry_run: bool,
    /// Answer a partial repoint with its report (status `partial`) instead of a
    /// retryable error: the region-switch plan applies its own repoint failure policy.
    pub report_partial: bool,
    /// Send the commands and answer at once (status `sent`): the plan collects the
    /// results in its own Wait loop (`{"collect": <that report>}`), not this invocation.
    pub send_only: bool,
}

/// Why an event is not a rewrite trigger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TriggerError(String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualRequest {
    region: String,
    #[serde(default)]
    db_host: Option<String>,
    #[serde(default)]
    db_port: Option<u16>,
    #[serde(default)]
    maintenance: Option<Maintenance>,
    #[serde(default)]
    fleet_region: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    report_partial: bool,
    #[serde(default)]
    send_only: bool,
}

impl RewriteTrigger {
    /// Names the trigger in the report: `parameter-change <name>`, `alarm <name>` or `manual`.
    pub fn describe(&self) -> String {
        match self {
            Self::ParameterChange { change, .. } => format!("parameter-change {}", change.name),
            Self::Alarm(t) => format!("alarm {}", t.alarm_name),
            Self::Manual { .. } => "manual".to_owned(),
        }
    }

    /// Recognises the event: a Parameter Store Change, an alarm transition (EventBridge or
    /// direct), or a manual `{"region", "dbHost"?, "dbPort"?, "maintenance"?, "fleetRegion"?,
    /// "dryRun"?, "reportPartial"?, "sendOnly"?}` request.
    pub fn from_value(value: Value) -> Result<Self, TriggerError> {
        let detail_type = value.get("detail-type").and_then(Value::as_str).map(str::to_owned);
        match detail_type.as_deref() {
            Some(PARAMETER_STORE_CHANGE) => {
                let text = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
                let (event_id, time) = (text("id"), text("time"));
                let change = ParameterChange::from_value(value).map_err(|e| TriggerError(e.to_string()))?;
                let trigger_id = parameter_trigger_id(&change.name, &time, &event_id);
                Ok(Self::ParameterChange { change, trigger_id })
            }
            Some(_) => AlarmTransition::from_value(value)
                .map(|t| Self::Alarm(Box::new(t)))
                .map_err(|e| TriggerError(e.to_string())),
            None if value.get("alarmData").is_some() => AlarmTransition::from_value(value)
                .map(|t| Self::Alarm(Box::new(t)))
                .map_err(|e| TriggerError(e.to_string())),
            None if value.get("region").is_some() => Self::manual(value),
            None => Err(TriggerError(
                "event is neither a Parameter Store Change, an alarm state change, nor a manual {\"region\": …, \"dbHost\": …, \"dryRun\": …} request".into(),
            )),
        }
    }

    fn manual(value: Value) -> Result<Self, TriggerError> {
        let request: ManualRequest =
            serde_json::from_value(value).map_err(|e| TriggerError(format!("manual request: {e}")))?;
        let region = Region::new(&request.region).map_err(|e| TriggerError(format!("manual request region: {e}")))?;
        let db_host = request
            .db_host
            .as_deref()
            .filter(|h| !h.is_empty())
            .map(DbHost::new)
            .transpose()
            .map_err(|e| TriggerError(format!("manual request dbHost: {e}")))?;
        if request.db_port == Some(0) {
            return Err(TriggerError("manual request dbPort: 0 is not a port number".into()));
        }
        let fleet_region = request
            .fleet_region
            .as_deref()
            .map(Region::new)
            .transpose()
            .map_err(|e| TriggerError(format!("manual request fleetRegion: {e}")))?;
        Ok(Self::Manual {
            region,
            db_host,
            db_port: request.db_port,
            maintenance: request.maintenance,
            fleet_region,
            mode: RewriteMode {
                dry_run: request.dry_run,
                report_partial: request.report_partial,
                send_only: request.send_only,
            },
        })
    }
}

/// `<parameter leaf>@<event time>/<event id>`, e.g.
/// `active-region@2026-11-21T03:01:42Z/6a7e8feb-b491-4cf7-a9f1-bf3703467718`: EventBridge
/// keeps the id and time of an event across its redeliveries and Lambda's retries, so every
/// command sent for one change carries the same id, and two changes never share one. A part
/// the event lacks is left out.
pub fn parameter_trigger_id(name: &str, time: &str, event_id: &str) -> String {
    let leaf = name.rsplit('/').find(|s| !s.is_empty()).unwrap_or(name);
    let mut id = leaf.to_owned();
    if !time.is_empty() {
        id.push('@');
        id.push_str(time);
    }
    if !event_id.is_empty() {
        id.push('/');
        id.push_str(event_id);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manual_requests_are_validated() {
        let trigger =
            RewriteTrigger::from_value(json!({"region": "us-east-1", "dbHost": "db.example", "dryRun": true})).unwrap();
        assert_eq!(
            trigger,
            RewriteTrigger::Manual {
                region: Region::new("us-east-1").unwrap(),
                db_host: Some(DbHost::new("db.example").unwrap()),
                db_port: None,
                maintenance: None,
                fleet_region: None,
                mode: RewriteMode {
                    dry_run: true,
                    ..RewriteMode::default()
                },
            }
        );
        let plan = RewriteTrigger::from_value(json!({"region": "us-east-1", "reportPartial": true})).unwrap();
        assert!(
            matches!(
                plan,
                RewriteTrigger::Manual { mode, .. } if mode.report_partial && !mode.send_only
            ),
            "{plan:?}"
        );
        for (bad, needle) in [
            (json!({"region": "us-east-1; id"}), "manual request region"),
            (
                json!({"region": "us-east-1", "dbHost": "$(id)"}),
                "manual request dbHost",
            ),
            (json!({"region": "us-east-1", "dbPort": 0}), "dbPort"),
            (json!({"region": "us-east-1", "dbhost": "x"}), "unknown field `dbhost`"),
            (json!({"region": 7}), "manual request"),
            (
                json!({"region": "us-east-1", "maintenance": "maybe"}),
                "unknown variant `maybe`",
            ),
            (
                json!({"region": "us-east-1", "fleetRegion": "east"}),
                "manual request fleetRegion",
            ),
        ] {
            let err = RewriteTrigger::from_value(bad.clone()).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn a_fence_request_names_the_other_fleet_and_maintenance() {
        let fence = RewriteTrigger::from_value(
            json!({"region": "us-west-2", "fleetRegion": "us-east-1", "maintenance": "on", "sendOnly": true}),
        )
        .unwrap();
        let RewriteTrigger::Manual {
            maintenance,
            fleet_region,
            mode,
            ..
        } = fence
        else {
            panic!("{fence:?}");
        };
        assert_eq!(maintenance, Some(Maintenance::On));
        assert_eq!(fleet_region, Some(Region::new("us-east-1").unwrap()));
        assert!(mode.send_only);
    }

    #[test]
    fn parameter_changes_carry_an_id_stable_across_deliveries() {
        let event = json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "Parameter Store Change",
            "source": "aws.ssm", "account": "123456789012", "time": "2026-11-21T03:01:42Z", "region": "us-west-2",
            "resources": [], "detail": {"operation": "Update", "name": "/shop/failover/active-region", "type": "String"}
        });
        let expected = "active-region@2026-11-21T03:01:42Z/6a7e8feb-b491-4cf7-a9f1-bf3703467718";
        for _delivery in 0..2 {
            match RewriteTrigger::from_value(event.clone()).unwrap() {
                RewriteTrigger::ParameterChange { change, trigger_id } => {
                    assert_eq!(change.name, "/shop/failover/active-region");
                    assert_eq!(trigger_id, expected);
                }
                other => panic!("{other:?}"),
            }
        }
        let mut later = event;
        later["id"] = json!("0b1c2d3e-0000-4000-8000-000000000000");
        let RewriteTrigger::ParameterChange { trigger_id, .. } = RewriteTrigger::from_value(later).unwrap() else {
            panic!("not a parameter change");
        };
        assert_ne!(trigger_id, expected, "another change, another id");
        assert_eq!(parameter_trigger_id("/p/active-region", "", ""), "active-region");
        assert_eq!(parameter_trigger_id("", "", "e-1"), "/e-1");
    }

    #[test]
    fn unknown_events_are_named() {
        let err = RewriteTrigger::from_value(json!({"hello": 1})).unwrap_err();
        assert!(err.to_string().starts_with("event is neither a Parameter Store Change"));
        let err =
            RewriteTrigger::from_value(json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
                .unwrap_err();
        assert!(err.to_string().contains("Scheduled Event"), "{err}");
    }
}
