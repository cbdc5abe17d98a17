//! `failoverctl approve` / `reject`: the answer to a plan's approval request.

use failover_core::error::AwsFailure;
use serde_json::json;

use crate::answer::Answer;
use crate::args::TaskTarget;
use crate::control::Control;
use crate::error::CtlError;
use crate::executions;

/// Approves (`reason: None`) or rejects the request.
pub async fn answer(control: &Control, target: &TaskTarget, reason: Option<&str>) -> Result<Answer, CtlError> {
    let token = match target {
        TaskTarget::Token(token) => token.clone(),
        TaskTarget::Execution(execution) => {
            let events = executions::history(&control.sfn, execution).await?;
            executions::pending_token(&events).ok_or_else(|| {
                CtlError::NotFound(format!(
                    "execution {execution} has no approval request waiting (it is in {})",
                    executions::current_state(&events).as_deref().unwrap_or("no state")
                ))
            })?
        }
    };
    let sent = match reason {
        None => control
            .sfn
            .send_task_success()
            .task_token(&token)
            .output("true")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("SendTaskSuccess", &e)),
        Some(reason) => control
            .sfn
            .send_task_failure()
            .task_token(&token)
            .error("Rejected")
            .cause(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("SendTaskFailure", &e)),
    };
    sent.map_err(|failure| {
        if failure.has_code("TaskDoesNotExist") || failure.has_code("InvalidToken") || failure.has_code("TaskTimedOut")
        {
            CtlError::NotFound(format!(
                "the approval request is no longer waiting (answered, timed out, or the token is wrong): {failure}"
            ))
        } else {
            CtlError::aws("the approval request", failure)
        }
    })?;
    let verb = if reason.is_some() { "rejected" } else { "approved" };
    Ok(Answer {
        json: json!({"answer": verb, "reason": reason}),
        text: match reason {
            None => "approved: the plan goes on (failoverctl status shows where it is)".into(),
            Some(reason) => format!("rejected ({reason}): the plan ends and changes nothing"),
        },
    })
}
