//! `failoverctl history`: past executions of both plans, newest first, with what their
//! reports say.

use failover_core::error::AwsFailure;
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::control::{Control, Plan};
use crate::error::CtlError;
use crate::executions;

/// Lists up to `limit` executions per plan.
pub async fn history(control: &Control, limit: i32) -> Result<Answer, CtlError> {
    let mut rows: Vec<Value> = Vec::new();
    for plan in [Plan::RegionSwitch, Plan::Failback] {
        let machine = control.plan_arn(plan).await?;
        let listed = control
            .sfn
            .list_executions()
            .state_machine_arn(&machine)
            .max_results(limit)
            .send()
            .await
            .map_err(|e| CtlError::aws(&format!("plan {machine}"), AwsFailure::from_sdk("ListExecutions", &e)))?;
        for item in listed.executions() {
            let described = executions::describe(&control.sfn, item.execution_arn()).await?;
            let report = described.output.unwrap_or(Value::Null);
            rows.push(json!({
                "plan": plan.as_str(),
                "executionArn": item.execution_arn(),
                "status": described.status.as_str(),
                "startedAt": described.started,
                "stoppedAt": described.stopped,
                "outcome": report["outcome"],
                "error": described.error,
                "elapsedS": report["elapsedS"],
                "writeFreezeS": report["writeFreeze"]["seconds"],
                "timeline": report["timeline"],
            }));
        }
    }
    rows.sort_by(|a, b| b["startedAt"].as_str().cmp(&a["startedAt"].as_str()));
    let text = if rows.is_empty() {
        "no executions".to_owned()
    } else {
        rows.iter()
            .map(|r| {
                format!(
                    "{} {:13} {:9} {} {}{}",
                    r["startedAt"].as_str().unwrap_or("?"),
                    r["plan"].as_str().unwrap_or("?"),
                    r["status"].as_str().unwrap_or("?"),
                    r["outcome"].as_str().or(r["error"].as_str()).unwrap_or("-"),
                    r["elapsedS"].as_f64().map(|s| format!("{s:.0} s")).unwrap_or_default(),
                    r["writeFreezeS"]
                        .as_f64()
                        .map(|s| format!(", writes frozen {s:.1} s"))
                        .unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(Answer {
        json: json!({"executions": rows}),
        text,
    })
}
