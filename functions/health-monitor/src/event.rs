//! What starts a monitor run: the EventBridge schedule, or an operator's failback approval.

use serde_json::Value;

use crate::error::MonitorError;

/// What started the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorEvent {
    /// The EventBridge schedule.
    Scheduled,
    /// A manual `{"approveFailback": true}`: approves a pending failback.
    ApproveFailback,
}

impl MonitorEvent {
    /// Recognises a Scheduled Event or a failback approval.
    pub fn from_value(value: &Value) -> Result<Self, MonitorError> {
        if value.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            return Ok(Self::Scheduled);
        }
        if value.get("approveFailback").and_then(Value::as_bool) == Some(true)
            && value.as_object().is_some_and(|o| o.len() == 1)
        {
            return Ok(Self::ApproveFailback);
        }
        Err(MonitorError::InvalidEvent(
            "expected an EventBridge Scheduled Event or {\"approveFailback\": true}".into(),
        ))
    }
}
