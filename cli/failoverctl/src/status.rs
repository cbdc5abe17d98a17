//! `failoverctl status`: where the shop runs and what is in flight, from the same state
//! table, parameters and executions the plans use.

use aws_sdk_sfn::types::ExecutionStatus;
use failover_core::error::AwsFailure;
use rds_promoter::domain::{FailbackStage, LockRecord};
use rds_promoter::ports::{DbInstances, FailbackStore, FenceStore};
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::control::{Control, Plan};
use crate::error::CtlError;
use crate::executions;
use crate::servers;

/// Reads everything and answers.
pub async fn status(control: &Control) -> Result<Answer, CtlError> {
    let parameters = published(control).await?;
    let table = |e: AwsFailure| CtlError::aws(&format!("state table {} in {}", control.state_table, control.region), e);
    let failover = control.state.latest_published().await.map_err(table)?;
    let (fence, failback) = match &failover {
        Some(f) => (
            control.state.load_fence(&f.failover_id).await.map_err(table)?,
            control.state.load_failback(&f.failover_id).await.map_err(table)?,
        ),
        None => (None, None),
    };
    let replica_id = control.args.replica.clone().or_else(|| match (&failover, &failback) {
        (_, Some(fb)) if fb.stage >= FailbackStage::Reprotecting => Some(fb.protecting_replica.clone()),
        (Some(f), _) => Some(f.replica_id.clone()),
        (None, _) => None,
    });
    let replica = match replica_id {
        Some(id) => Some(replica(control, &id).await?),
        None => None,
    };
    let (running, approvals) = in_flight(control).await?;
    let active = parameters
        .get("active-region")
        .and_then(|p| p["value"].as_str())
        .map(str::to_owned);
    let host = parameters
        .get("db-host")
        .and_then(|p| p["value"].as_str())
        .map(str::to_owned);
    let mut fleets = vec![
        servers::convergence(
            &control.ssm,
            control.region.as_str(),
            &control.document(),
            active.as_deref(),
            host.as_deref(),
        )
        .await?,
    ];
    if let Some((region, ssm)) = &control.primary_ssm {
        fleets.push(
            servers::convergence(
                ssm,
                region.as_str(),
                &control.document(),
                active.as_deref(),
                host.as_deref(),
            )
            .await?,
        );
    }
    let json = json!({
        "region": control.region.as_str(),
        "activeRegion": parameters.get("active-region"),
        "dbHost": parameters.get("db-host"),
        "dbPort": parameters.get("db-port"),
        "lastFailover": failover.as_ref().map(failover_json),
        "fence": fence,
        "failback": failback,
        "replica": replica,
        "running": running,
        "pendingApprovals": approvals,
        "fleets": fleets,
    });
    let text = render(&json);
    Ok(Answer { json, text })
}

/// `<prefix>/active-region`, `db-host`, `db-port` with their last change.
async fn published(control: &Control) -> Result<serde_json::Map<String, Value>, CtlError> {
    let prefix = &control.args.parameter_prefix;
    let names: Vec<String> = ["active-region", "db-host", "db-port"]
        .iter()
        .map(|leaf| format!("{prefix}/{leaf}"))
        .collect();
    let out = control
        .ssm
        .get_parameters()
        .set_names(Some(names))
        .send()
        .await
        .map_err(|e| CtlError::aws("Parameter Store", AwsFailure::from_sdk("GetParameters", &e)))?;
    let mut found = serde_json::Map::new();
    for parameter in out.parameters() {
        let leaf = parameter
            .name()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let changed = parameter
            .last_modified_date()
            .and_then(|d| chrono::DateTime::from_timestamp_millis(d.to_millis().ok()?))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        found.insert(leaf, json!({"value": parameter.value(), "lastModified": changed}));
    }
    Ok(found)
}

fn failover_json(record: &LockRecord) -> Value {
    json!({
        "failoverId": record.failover_id,
        "stage": record.stage.as_str(),
        "promoted": record.replica_id,
        "formerPrimary": record.former_source,
        "publishedAt": record.published_at_ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "endpoint": record.endpoint_address.as_ref().map(|a| format!("{a}:{}", record.endpoint_port.unwrap_or(3306))),
    })
}

/// The instance, whether it replicates and from what, and its latest ReplicaLag.
async fn replica(control: &Control, id: &str) -> Result<Value, CtlError> {
    let view = control
        .rds
        .describe(id)
        .await
        .map_err(|e| CtlError::aws(&format!("RDS instance {id}"), e))?;
    let Some(view) = view else {
        return Ok(json!({"id": id, "exists": false}));
    };
    let lag = if view.replica_source.is_some() {
        control
            .rds
            .replica_lag(id)
            .await
            .ok()
            .and_then(|minutes| minutes.iter().max_by_key(|m| m.at_ms).map(|m| m.maximum))
    } else {
        None
    };
    Ok(json!({
        "id": view.id,
        "exists": true,
        "status": view.status,
        "role": if view.replica_source.is_some() { "replica" } else { "primary (not replicating)" },
        "replicatesFrom": view.replica_source,
        "replication": view.status_infos.iter().map(|(kind, status)| json!({"type": kind, "status": status})).collect::<Vec<_>>(),
        "replicaLagSeconds": lag,
    }))
}

/// Running executions of both plans, and the approval requests among them.
async fn in_flight(control: &Control) -> Result<(Vec<Value>, Vec<Value>), CtlError> {
    let (mut running, mut approvals) = (Vec::new(), Vec::new());
    for plan in [Plan::RegionSwitch, Plan::Failback] {
        let arn = match control.plan_arn(plan).await {
            Ok(arn) => arn,
            Err(CtlError::NotFound(why)) => {
                running.push(json!({"plan": plan.as_str(), "notDeployed": why}));
                continue;
            }
            Err(other) => return Err(other),
        };
        let listed = control
            .sfn
            .list_executions()
            .state_machine_arn(&arn)
            .status_filter(ExecutionStatus::Running)
            .max_results(20)
            .send()
            .await
            .map_err(|e| CtlError::aws(&format!("plan {arn}"), AwsFailure::from_sdk("ListExecutions", &e)))?;
        for execution in listed.executions() {
            let events = executions::history(&control.sfn, execution.execution_arn()).await?;
            running.push(json!({
                "plan": plan.as_str(),
                "executionArn": execution.execution_arn(),
                "startedAt": executions::rfc3339(execution.start_date()),
                "state": executions::current_state(&events),
            }));
            if let Some(token) = executions::pending_token(&events) {
                approvals.push(json!({
                    "plan": plan.as_str(),
                    "executionArn": execution.execution_arn(),
                    "token": token,
                    "approve": format!("failoverctl approve --execution {}", execution.execution_arn()),
                    "reject": format!("failoverctl reject --execution {}", execution.execution_arn()),
                }));
            }
        }
    }
    Ok((running, approvals))
}

fn render(json: &Value) -> String {
    let value = |v: &Value| {
        v["value"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| "(not published)".into())
    };
    let mut lines = vec![
        format!("active region: {}", value(&json["activeRegion"])),
        format!("database: {}:{}", value(&json["dbHost"]), value(&json["dbPort"])),
    ];
    match &json["lastFailover"] {
        Value::Null => lines.push("last failover: none recorded".into()),
        f => lines.push(format!(
            "last failover: {} ({}, published {})",
            f["failoverId"].as_str().unwrap_or("?"),
            f["stage"].as_str().unwrap_or("?"),
            f["publishedAt"].as_str().unwrap_or("-")
        )),
    }
    if !json["fence"].is_null() {
        lines.push(format!(
            "fence: database {}, forward replication {}",
            json["fence"]["database"], json["fence"]["replication"]
        ));
    }
    if !json["failback"].is_null() {
        lines.push(format!(
            "failback: {} (new primary {} in {})",
            json["failback"]["stage"].as_str().unwrap_or("?"),
            json["failback"]["newPrimary"].as_str().unwrap_or("?"),
            json["failback"]["toRegion"].as_str().unwrap_or("?")
        ));
    }
    if let Some(r) = json["replica"].as_object() {
        lines.push(format!(
            "replica: {} {} {} lag {} s",
            r["id"].as_str().unwrap_or("?"),
            r["status"].as_str().unwrap_or("(missing)"),
            r["role"].as_str().unwrap_or(""),
            r["replicaLagSeconds"]
        ));
    }
    for execution in json["running"].as_array().into_iter().flatten() {
        if let Some(why) = execution["notDeployed"].as_str() {
            lines.push(format!("{} plan: {why}", execution["plan"].as_str().unwrap_or("?")));
        } else {
            lines.push(format!(
                "running: {} {} in {}",
                execution["plan"].as_str().unwrap_or("?"),
                execution["executionArn"].as_str().unwrap_or("?"),
                execution["state"].as_str().unwrap_or("?")
            ));
        }
    }
    for fleet in json["fleets"].as_array().into_iter().flatten() {
        let not: Vec<&str> = fleet["notConverged"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        lines.push(format!(
            "app servers in {}: {} converged{}",
            fleet["region"].as_str().unwrap_or("?"),
            fleet["converged"],
            if not.is_empty() {
                format!(", not converged: {}", not.join(", "))
            } else {
                String::new()
            }
        ));
    }
    for approval in json["pendingApprovals"].as_array().into_iter().flatten() {
        lines.push(format!(
            "awaiting approval: {}\n  {}\n  {}",
            approval["executionArn"].as_str().unwrap_or("?"),
            approval["approve"].as_str().unwrap_or(""),
            approval["reject"].as_str().unwrap_or("")
        ));
    }
    lines.join("\n")
}
