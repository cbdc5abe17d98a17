//! Parsing alarm state changes from EventBridge events and direct alarm-action payloads.

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::region::Region;

/// The EventBridge `detail-type` of alarm state changes.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

/// A CloudWatch alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    /// The metric is within its threshold.
    Ok,
    /// The metric breached its threshold.
    Alarm,
    /// Not enough data to decide.
    InsufficientData,
}

impl AlarmState {
    fn parse(raw: &str) -> Result<Self, AlarmEventError> {
        match raw {
            "OK" => Ok(Self::Ok),
            "ALARM" => Ok(Self::Alarm),
            "INSUFFICIENT_DATA" => Ok(Self::InsufficientData),
            other => Err(AlarmEventError::Malformed(format!(
                "unknown alarm state {:?} (expected OK, ALARM or INSUFFICIENT_DATA)",
                truncate(other)
            ))),
        }
    }
}

impl std::fmt::Display for AlarmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        })
    }
}

/// CloudWatch is not running the alarm's actions in a state: composite alarm action
/// suppression (`actionsSuppressedBy` = `Alarm`: the suppressor alarm is in ALARM;
/// `WaitPeriod`: waiting for the suppressor to go into ALARM; `ExtensionPeriod`: waiting
/// after the suppressor left ALARM). When the wait ends without the suppressor, CloudWatch
/// runs the actions and reports the state again with its previous state suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// `Alarm`, `WaitPeriod` or `ExtensionPeriod`, as CloudWatch names it.
    pub by: String,
    /// CloudWatch's `actionsSuppressedReason`.
    pub reason: String,
}

/// How the transition reached the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransitionSource {
    /// An EventBridge "CloudWatch Alarm State Change" event.
    EventBridge,
    /// The alarm invoked the function directly (Lambda alarm action).
    AlarmAction,
}

/// One alarm state change, whatever its delivery path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmTransition {
    /// Alarm name, as in the allow list.
    pub alarm_name: String,
    /// Alarm ARN, when the event carries one.
    pub alarm_arn: Option<String>,
    /// Region of the alarm.
    pub region: Region,
    /// Account of the alarm, when known.
    pub account: Option<String>,
    /// State before the change; `None` when the event does not say.
    pub from_state: Option<AlarmState>,
    /// State after the change.
    pub to_state: AlarmState,
    /// CloudWatch's human-readable reason.
    pub reason: String,
    /// When the alarm entered `to_state`.
    pub timestamp: DateTime<Utc>,
    /// Delivery path.
    pub source: TransitionSource,
    /// Action suppression of the new state, if CloudWatch suppresses its actions.
    pub suppressed: Option<Suppression>,
    /// Action suppression of the previous state: set when this event reports that a
    /// suppression ended while the alarm stayed in ALARM, i.e. the actions now run.
    pub previously_suppressed: Option<Suppression>,
}

/// Why an event is not a usable alarm transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmEventError {
    /// The payload is not JSON at all.
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but neither an EventBridge event nor an alarm-action payload.
    #[error("event is neither an EventBridge event (no \"detail-type\") nor a CloudWatch alarm-action payload (no \"alarmData\")")]
    UnknownShape,
    /// An EventBridge event of another kind.
    #[error("EventBridge event has detail-type {0:?}, expected \"CloudWatch Alarm State Change\"")]
    WrongDetailType(String),
    /// The right kind of event, with a missing or invalid field.
    #[error("malformed alarm event: {0}")]
    Malformed(String),
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The `detail` of an EventBridge alarm state change (only what we use).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: StateDetail,
    #[serde(default)]
    previous_state: Option<StateDetail>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct StateDetail {
    value: String,
    #[serde(default)]
    reason: String,
    timestamp: DateTime<Utc>,
    #[serde(default, rename = "actionsSuppressedBy")]
    actions_suppressed_by: Option<String>,
    #[serde(default, rename = "actionsSuppressedReason")]
    actions_suppressed_reason: Option<String>,
}

impl StateDetail {
    fn suppression(&self) -> Option<Suppression> {
        let by = self.actions_suppressed_by.as_deref()?.trim();
        (!by.is_empty()).then(|| Suppression {
            by: truncate(by),
            reason: self
                .actions_suppressed_reason
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
        })
    }
}

impl AlarmTransition {
    /// Parses raw bytes (e.g. a file in `events/`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, AlarmEventError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| AlarmEventError::NotJson(e.to_string()))?;
        Self::from_value(value)
    }

    /// Parses an event already decoded as JSON, detecting its delivery path.
    pub fn from_value(value: Value) -> Result<Self, AlarmEventError> {
        if value.get("detail-type").is_some() {
            Self::from_eventbridge(value)
        } else if value.get("alarmData").is_some() {
            Self::from_alarm_action(value)
        } else {
            Err(AlarmEventError::UnknownShape)
        }
    }

    fn from_eventbridge(value: Value) -> Result<Self, AlarmEventError> {
        let event: EventBridgeEvent<Value> =
            serde_json::from_value(value).map_err(|e| AlarmEventError::Malformed(e.to_string()))?;
        if event.detail_type != ALARM_STATE_CHANGE {
            return Err(AlarmEventError::WrongDetailType(truncate(&event.detail_type)));
        }
        let detail: AlarmDetail =
            serde_json::from_value(event.detail).map_err(|e| AlarmEventError::Malformed(format!("detail: {e}")))?;
        let alarm_arn = event
            .resources
            .and_then(|r| r.into_iter().find(|arn| arn.contains(":alarm:")));
        let region = resolve_region(event.region.as_deref(), alarm_arn.as_deref())?;
        Self::assemble(detail, alarm_arn, region, event.account, TransitionSource::EventBridge)
    }

    fn from_alarm_action(value: Value) -> Result<Self, AlarmEventError> {
        let alarm: CloudWatchAlarm<Value, Value> =
            serde_json::from_value(value.clone()).map_err(|e| AlarmEventError::Malformed(e.to_string()))?;
        let detail: AlarmDetail = serde_json::from_value(value["alarmData"].clone())
            .map_err(|e| AlarmEventError::Malformed(format!("alarmData: {e}")))?;
        let region = resolve_region(alarm.region.as_deref(), alarm.alarm_arn.as_deref())?;
        Self::assemble(
            detail,
            alarm.alarm_arn,
            region,
            alarm.account_id,
            TransitionSource::AlarmAction,
        )
    }

    fn assemble(
        detail: AlarmDetail,
        alarm_arn: Option<String>,
        region: Region,
        account: Option<String>,
        source: TransitionSource,
    ) -> Result<Self, AlarmEventError> {
        if detail.alarm_name.trim().is_empty() {
            return Err(AlarmEventError::Malformed("alarm name is empty".into()));
        }
        let from_state = detail
            .previous_state
            .as_ref()
            .map(|s| AlarmState::parse(&s.value))
            .transpose()?;
        Ok(Self {
            to_state: AlarmState::parse(&detail.state.value)?,
            from_state,
            suppressed: detail.state.suppression(),
            previously_suppressed: detail.previous_state.as_ref().and_then(StateDetail::suppression),
            alarm_name: detail.alarm_name,
            alarm_arn,
            region,
            account,
            reason: detail.state.reason,
            timestamp: detail.state.timestamp,
            source,
        })
    }

    /// Identifies one failover: the same alarm entering the same state at the same instant
    /// is the same failover, however many times it is delivered.
    pub fn failover_id(&self) -> String {
        format!(
            "{}@{}",
            self.alarm_name,
            self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)
        )
    }
}

/// The region from the event's `region` field, else from the alarm ARN
/// (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`).
fn resolve_region(region: Option<&str>, arn: Option<&str>) -> Result<Region, AlarmEventError> {
    let from_arn = arn.and_then(|a| a.split(':').nth(3)).filter(|r| !r.is_empty());
    let raw = region
        .filter(|r| !r.is_empty())
        .or(from_arn)
        .ok_or_else(|| AlarmEventError::Malformed("no region: neither a \"region\" field nor an alarm ARN".into()))?;
    Region::new(raw).map_err(|e| AlarmEventError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eventbridge(from: &str, to: &str) -> Value {
        json!({
            "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": "123456789012", "time": "2026-11-21T03:00:05Z", "region": "us-east-1",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-primary-unhealthy"],
            "detail": {
                "alarmName": "shop-primary-unhealthy",
                "state": {"value": to, "reason": "Threshold Crossed", "timestamp": "2026-11-21T03:00:05.123+0000"},
                "previousState": {"value": from, "reason": "ok", "timestamp": "2026-11-20T10:00:00.000+0000"},
                "configuration": {"metrics": []}
            }
        })
    }

    #[test]
    fn parses_eventbridge_state_change() {
        let t = AlarmTransition::from_value(eventbridge("OK", "ALARM")).unwrap();
        assert_eq!(t.alarm_name, "shop-primary-unhealthy");
        assert_eq!(t.region.as_str(), "us-east-1");
        assert_eq!(t.account.as_deref(), Some("123456789012"));
        assert_eq!(t.from_state, Some(AlarmState::Ok));
        assert_eq!(t.to_state, AlarmState::Alarm);
        assert_eq!(t.source, TransitionSource::EventBridge);
        assert_eq!(
            t.alarm_arn.as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-primary-unhealthy")
        );
        assert_eq!(t.failover_id(), "shop-primary-unhealthy@2026-11-21T03:00:05.123Z");
    }

    #[test]
    fn region_falls_back_to_the_arn() {
        let mut event = eventbridge("OK", "ALARM");
        event.as_object_mut().unwrap().remove("region");
        assert_eq!(AlarmTransition::from_value(event).unwrap().region.as_str(), "us-east-1");
    }

    #[test]
    fn other_eventbridge_events_are_rejected_by_name() {
        let mut event = eventbridge("OK", "ALARM");
        event["detail-type"] = json!("Scheduled Event");
        assert_eq!(
            AlarmTransition::from_value(event).unwrap_err(),
            AlarmEventError::WrongDetailType("Scheduled Event".into())
        );
    }

    #[test]
    fn unknown_state_and_missing_fields_are_clear_errors() {
        let mut event = eventbridge("OK", "EXPLODED");
        let err = AlarmTransition::from_value(event.clone()).unwrap_err().to_string();
        assert!(err.contains("unknown alarm state \"EXPLODED\""), "{err}");
        event["detail"].as_object_mut().unwrap().remove("alarmName");
        let err = AlarmTransition::from_value(event).unwrap_err().to_string();
        assert!(err.contains("alarmName"), "{err}");
    }

    #[test]
    fn hostile_region_is_rejected() {
        let mut event = eventbridge("OK", "ALARM");
        event["region"] = json!("us-east-1; curl evil");
        assert!(AlarmTransition::from_value(event)
            .unwrap_err()
            .to_string()
            .contains("not an AWS region name"));
    }

    #[test]
    fn not_json_and_unknown_shapes() {
        assert!(matches!(
            AlarmTransition::from_slice(b"{not json"),
            Err(AlarmEventError::NotJson(_))
        ));
        assert_eq!(
            AlarmTransition::from_slice(b"{\"hello\":1}").unwrap_err(),
            AlarmEventError::UnknownShape
        );
        assert_eq!(
            AlarmTransition::from_slice(b"[]").unwrap_err(),
            AlarmEventError::UnknownShape
        );
    }
}
