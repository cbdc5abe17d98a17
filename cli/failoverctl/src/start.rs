//! `failoverctl failover --dry-run` and `failoverctl failback`: start a plan, wait (bounded)
//! for its answer, and say what it is.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use failover_core::error::AwsFailure;
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::control::{Control, Plan};
use crate::error::CtlError;
use crate::executions;

async fn start(control: &Control, plan: Plan, input: &Value) -> Result<(String, String), CtlError> {
    let machine = control.plan_arn(plan).await?;
    let execution = control
        .sfn
        .start_execution()
        .state_machine_arn(&machine)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| CtlError::aws(&format!("plan {machine}"), AwsFailure::from_sdk("StartExecution", &e)))?
        .execution_arn;
    Ok((machine, execution))
}

/// The region-switch plan's dry run: every check, every step it would take; nothing changes.
pub async fn failover_dry_run(control: &Control) -> Result<Answer, CtlError> {
    let account = control
        .plan_arn(Plan::RegionSwitch)
        .await?
        .split(':')
        .nth(4)
        .unwrap_or_default()
        .to_owned();
    let now = chrono::Utc::now();
    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let alarm = format!("{}-primary-region-unhealthy", control.args.name_prefix);
    let input = json!({
        "dryRun": true,
        "alarm": {
            "version": "0", "id": format!("failoverctl-dry-run-{}", now.timestamp_millis()),
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": account, "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": control.region.as_str(),
            "resources": [format!("arn:aws:cloudwatch:{}:{account}:alarm:{alarm}", control.region)],
            "detail": {
                "alarmName": alarm,
                "state": {"value": "ALARM", "reason": "failoverctl failover --dry-run", "timestamp": stamp},
                "previousState": {"value": "OK", "reason": "failoverctl failover --dry-run", "timestamp": stamp}
            }
        }
    });
    let (_, execution) = start(control, Plan::RegionSwitch, &input).await?;
    let (done, _) = until_ended(control, &execution, None).await?;
    let output = done.output.clone().unwrap_or(Value::Null);
    if done.status != ExecutionStatus::Succeeded {
        return Err(CtlError::Refused(format!(
            "the dry run {execution} ended {}: {} {}",
            done.status.as_str(),
            done.error.unwrap_or_default(),
            done.cause.unwrap_or_default()
        )));
    }
    let steps = output["dryRunPromotion"]["report"]["plan"].clone();
    let text = format!(
        "dry run {execution}: nothing was changed\nwould do:\n{}\nservers it would command: {}",
        steps
            .as_array()
            .map(|s| s
                .iter()
                .map(|step| format!(
                    "  - {}",
                    step.as_str().map(str::to_owned).unwrap_or_else(|| step.to_string())
                ))
                .collect::<Vec<_>>()
                .join("\n"))
            .unwrap_or_else(|| format!("  {steps}")),
        output["dryRunRepoint"]["instances"].as_array().map_or(0, Vec::len)
    );
    Ok(Answer {
        json: json!({"executionArn": execution, "output": output}),
        text,
    })
}

/// Starts the failback plan and waits until it asks for approval or ends.
pub async fn failback(control: &Control) -> Result<Answer, CtlError> {
    let (_, execution) = start(control, Plan::Failback, &json!({})).await?;
    let (done, token) = until_ended(control, &execution, Some("AskApproval")).await?;
    if let Some(token) = token {
        return Ok(Answer {
            text: format!(
                "failback {execution} awaits approval (the notification says what it will do)\n  failoverctl approve --execution {execution}\n  failoverctl reject --execution {execution}"
            ),
            json: json!({"executionArn": execution, "state": "AskApproval", "token": token}),
        });
    }
    let output = done.output.clone().unwrap_or(Value::Null);
    match (&done.status, output["outcome"].as_str()) {
        (ExecutionStatus::Succeeded, Some(outcome)) => Ok(Answer {
            text: format!("failback {execution}: {outcome}; nothing was changed"),
            json: json!({"executionArn": execution, "outcome": outcome, "output": output}),
        }),
        _ => Err(CtlError::Refused(format!(
            "failback {execution} ended {}: {} {}",
            done.status.as_str(),
            done.error.unwrap_or_default(),
            done.cause.unwrap_or_default()
        ))),
    }
}

/// Polls (bounded by `--wait-seconds`) until the execution ends, or waits in `state` for
/// an approval (then with the request's token).
async fn until_ended(
    control: &Control,
    execution: &str,
    state: Option<&str>,
) -> Result<(executions::Described, Option<String>), CtlError> {
    let started = Instant::now();
    loop {
        let described = executions::describe(&control.sfn, execution).await?;
        if described.status != ExecutionStatus::Running {
            return Ok((described, None));
        }
        if let Some(state) = state {
            let events = executions::history(&control.sfn, execution).await?;
            if executions::waiting_in(&events, state) {
                if let Some(token) = executions::pending_token(&events) {
                    return Ok((described, Some(token)));
                }
            }
        }
        if started.elapsed() > Duration::from_secs(control.args.wait_seconds) {
            return Err(CtlError::Aws(format!(
                "{execution} is still running after {} s (--wait-seconds); failoverctl status shows where it is",
                control.args.wait_seconds
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
