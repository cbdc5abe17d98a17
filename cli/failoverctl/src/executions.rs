//! Reading plan executions: their history (current state, a pending approval's token) and
//! their output.

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use failover_core::error::AwsFailure;
use serde_json::Value;

use crate::error::CtlError;

/// The events of `execution`, oldest first (bounded: 10 pages of 1000).
pub async fn history(sfn: &aws_sdk_sfn::Client, execution: &str) -> Result<Vec<HistoryEvent>, CtlError> {
    let mut events = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(execution)
        .max_results(1000)
        .into_paginator()
        .send();
    for _ in 0..10 {
        let Some(page) = pages.next().await else { break };
        let page = page.map_err(|e| {
            CtlError::aws(
                &format!("execution {execution}"),
                AwsFailure::from_sdk("GetExecutionHistory", &e),
            )
        })?;
        events.extend(page.events().iter().cloned());
    }
    Ok(events)
}

/// The state the execution is in (the last one entered).
pub fn current_state(events: &[HistoryEvent]) -> Option<String> {
    events
        .iter()
        .rev()
        .find_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned()))
}

/// The task token of an approval request still waiting for an answer: the last
/// `waitForTaskToken` task scheduled, with no result after it. The token is in the request's
/// message, which the plan formats with `$$.Task.Token`.
pub fn pending_token(events: &[HistoryEvent]) -> Option<String> {
    let scheduled = events.iter().rposition(|e| {
        e.task_scheduled_event_details()
            .is_some_and(|d| d.resource().ends_with(".waitForTaskToken"))
    })?;
    let answered = events[scheduled..].iter().any(|e| {
        matches!(
            e.r#type(),
            HistoryEventType::TaskSucceeded | HistoryEventType::TaskFailed | HistoryEventType::TaskTimedOut
        )
    });
    if answered {
        return None;
    }
    let parameters: Value =
        serde_json::from_str(events[scheduled].task_scheduled_event_details()?.parameters()).ok()?;
    token_in(parameters.get("Message")?.as_str()?)
}

/// The token after `--token ` in an approval request's message.
pub fn token_in(message: &str) -> Option<String> {
    let rest = message.split("--token ").nth(1)?;
    let token: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    (!token.is_empty()).then_some(token)
}

/// `DescribeExecution`: status, output (parsed), error and cause.
pub struct Described {
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: ExecutionStatus,
    /// The plan's output (its report), when it ended with one.
    pub output: Option<Value>,
    /// The Fail state's error and cause.
    pub error: Option<String>,
    /// The cause.
    pub cause: Option<String>,
    /// Start and stop (RFC 3339).
    pub started: String,
    /// Absent while it runs.
    pub stopped: Option<String>,
}

/// Describes `execution`.
pub async fn describe(sfn: &aws_sdk_sfn::Client, execution: &str) -> Result<Described, CtlError> {
    let out = sfn
        .describe_execution()
        .execution_arn(execution)
        .send()
        .await
        .map_err(|e| {
            CtlError::aws(
                &format!("execution {execution}"),
                AwsFailure::from_sdk("DescribeExecution", &e),
            )
        })?;
    Ok(Described {
        status: out.status().clone(),
        output: out.output().and_then(|o| serde_json::from_str(o).ok()),
        error: out.error().map(str::to_owned),
        cause: out.cause().map(str::to_owned),
        started: rfc3339(out.start_date()),
        stopped: out.stop_date().map(rfc3339),
    })
}

/// A timestamp as RFC 3339.
pub fn rfc3339(at: &aws_sdk_sfn::primitives::DateTime) -> String {
    chrono::DateTime::from_timestamp_millis(at.to_millis().unwrap_or_default())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Whether `events` show the execution waiting in `state` now.
pub fn waiting_in(events: &[HistoryEvent], state: &str) -> bool {
    current_state(events).as_deref() == Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_request_message() {
        let message =
            "Failback x awaits your approval. ... To approve: failoverctl approve --token AbC+/=123 (or: aws ...";
        assert_eq!(token_in(message).as_deref(), Some("AbC+/=123"));
        assert_eq!(token_in("no token here"), None);
    }
}
